/*
 * conf.h - the SDK's configuration: the settings struct and the property table behind
 * ue_conf_set()/_get()/_dump() and CONFIGURATION.md.
 */
#ifndef UE_CONF_H
#define UE_CONF_H

#include "context.h"
#include "uc_log.h"
#include "uc_props.h"
#include "userevents.h"

#include <librdkafka/rdkafka.h>

/* Index of the "transport" choice. */
typedef enum ue__transport_kind {
    UE__TRANSPORT_KAFKA = 0,
    UE__TRANSPORT_HTTP = 1,
} ue__transport_kind_t;

typedef struct ue__settings {
    char *topic_template;
    char *anonymous_id;
    int64_t queue_max_events;
    int64_t queue_max_bytes;
    int queue_full_policy;          /* ue__full_policy_t */
    int64_t queue_block_timeout_ms;
    int64_t batch_max_events;
    int64_t batch_max_bytes;
    int64_t linger_ms;
    int64_t event_max_bytes;
    char *spool_dir;
    int64_t spool_max_bytes;
    int64_t spool_max_age_ms;
    int64_t spool_segment_bytes;
    int spool_fsync;
    int64_t spool_compression_level;
    int64_t shutdown_timeout_ms;
    int log_level;                  /* index into "error,warning,notice,info,debug" */
    int transport;                  /* ue__transport_kind_t */
    char *http_url;
    char *http_ca_location;         /* CA bundle for https:// (NULL or "": the system's) */
    char *http_api_key;             /* secret: masked by ue_conf_dump(), never logged */
    int64_t http_max_batch_bytes;
    int64_t http_backoff_base_ms;
    int64_t http_backoff_max_ms;
    int64_t http_retry_after_max_ms;
    int64_t http_timeout_ms;
    char *context[UE__CTX_CNT];     /* "context.*" defaults, indexed like ue__ctx_fields */
} ue__settings_t;

struct ue_conf_s {
    ue__settings_t s;
    rd_kafka_conf_t *kconf;         /* "kafka.*", validated by librdkafka at set time */
    ue_delivery_cb_t *dr_cb;
    void *dr_opaque;
    ue_log_cb_t *log_cb;
    void *log_opaque;
};

extern const uc__prop_t ue__conf_props[];

/* Syslog level of the "log.level" choice index. */
int ue__conf_log_level(const ue_conf_t *conf);

#endif
