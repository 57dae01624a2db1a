/*
 * conf.h - libenrich's configuration: the settings struct, the property table, and the
 * librdkafka configurations the "kafka.*" keys fill.
 */
#ifndef ENR_CONF_H
#define ENR_CONF_H

#include "enrich.h"
#include "uc_log.h"
#include "uc_props.h"

#include <librdkafka/rdkafka.h>

#define ENR__MAX_STAGES 16

typedef struct enr__settings {
    char *group_id;
    char *instance_id;          /* empty: the host name */
    char *transactional_id;
    char *input_topics;         /* comma-separated names or ^regexes */
    char *output_topic;
    char *dead_letter_topic;
    char *aggregates_topic;
    char *alerts_topic;
    char *changelog_topic;
    char *repartition_topic;
    char *stages;               /* comma-separated stage names, in order */
    int64_t txn_max_events;
    int64_t txn_max_bytes;
    int64_t rollback_max_bytes;
    int64_t txn_max_ms;
    int64_t batch_max_events;
    int64_t input_max_bytes;
    int64_t time_max_future_ms;
    int64_t dedup_window_ms;
    int64_t dedup_max_ids;
    char *profile_topic;
    char *geoip_database;
    int64_t session_gap_ms;
    int64_t window_size_ms;
    int64_t window_lateness_ms;
    char *window_sum_property;
    int64_t window_idle_ms;
    int anomaly_key;            /* 0 type, 1 user */
    int64_t anomaly_window_ms;
    double anomaly_zscore;
    double anomaly_alpha;
    int64_t anomaly_min_windows;
    int64_t anomaly_max_keys;
    int log_level;              /* index into "error,warning,notice,info,debug" */
} enr__settings_t;

struct enr_conf_s {
    enr__settings_t s;
    rd_kafka_conf_t *consumer;  /* "kafka.*" and "kafka.consumer.*" */
    rd_kafka_conf_t *producer;  /* "kafka.*" and "kafka.producer.*" */
    enr_stage_t *custom;        /* stages added with enr_conf_add_stage(), a list */
    enr_log_cb_t *log_cb;
    void *log_opaque;
    enr_txn_cb_t *txn_cb;       /* enr_conf_set_txn_cb() */
    void *txn_opaque;
};

extern const uc__prop_t enr__conf_props[];

/* The logger a conf describes (level and callback). */
uc__logger_t enr__conf_logger(const enr_conf_t *conf, const char *prefix);

#endif
