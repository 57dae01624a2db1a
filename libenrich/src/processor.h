/*
 * processor.h - the Kafka side of libenrich, shared by its files: processor.c (creation, the
 * rebalance callback), processor_step.c (the poll loop, stop, destroy, statistics), txn.c
 * (transactions: begin, produce, commit, abort and rewind), state.c (changelog topic and
 * restore, the profile topic consumer), subscribe.c (which topics the group reads), owned.c
 * (the partitions owned and how far each is processed), monitor.c (librdkafka statistics,
 * under-replicated partitions).
 */
#ifndef ENR_PROCESSOR_H
#define ENR_PROCESSOR_H

#include "pipeline.h"
#include "ue_kstats.h"
#include "ue_log.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>

#define ENR__MAX_PATTERNS 16

/* What the group reads: "input.topics" resolved against the cluster (subscribe.c). */
typedef struct enr__subscription {
    regex_t patterns[ENR__MAX_PATTERNS]; /* the ^regexes of input.topics */
    int npatterns;
    rd_kafka_topic_partition_list_t *names;   /* the plain names of input.topics */
    rd_kafka_topic_partition_list_t *current; /* subscribed now, sorted by name */
    int64_t next_refresh_ms;
} enr__subscription_t;

struct enr_processor_s {
    enr_conf_t *conf;
    ue__logger_t log;
    rd_kafka_t *consumer;        /* the group consumer of the raw topics */
    rd_kafka_queue_t *queue;     /* its message queue */
    rd_kafka_t *producer;        /* transactional: outputs, changelog, offsets */
    rd_kafka_t *profiles;        /* consumer of the profile topic (no group); may be NULL */
    rd_kafka_queue_t *profiles_queue;
    enr_pipeline_t *pipe;
    enr__sink_t sink;
    char *transactional_id;
    char *changelog_topic;
    enr__subscription_t sub;
    rd_kafka_topic_partition_list_t *owned; /* assigned partitions, offset: next to process */
    rd_kafka_topic_partition_t *owned_last; /* the entry of the last record (owned.c) */
    int64_t queued_min;          /* the consumer's queued.min.messages */
    int fetch_parked;            /* its queue reached queued_min: fetching has stopped */
    int kick_next;               /* assigned partition the next fetch kick asks about */
    int in_txn;
    int64_t txn_started_ms;
    int64_t txn_events;
    int64_t commit_started_ms;   /* when the commit (or abort) of the open transaction began */
    int in_callback;             /* inside the rebalance callback: no recursive commit */
    enr_err_t fatal;             /* set once the processor cannot go on */
    char last_error[512];        /* why: enr_processor_last_error() (txn.c) */
    int produce_failed;          /* a record of the open transaction was refused: abort it */
    _Atomic int stop;
    _Atomic int64_t stats[ENR_STAT__CNT];
    ue__kstats_t kstats;         /* the group consumer's latest librdkafka statistics */
};

/* txn.c */
int enr__txn_begin(enr_processor_t *p);
void enr__txn_produce(enr_processor_t *p, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t value_len, rd_kafka_headers_t *hdrs);
/* Flushes the stages, sends the consumed offsets and commits; aborts and rewinds on error. */
enr_err_t enr__txn_commit(enr_processor_t *p, int timeout_ms);
/* Aborts the open transaction and rewinds state and positions to the last commit. */
enr_err_t enr__txn_abort(enr_processor_t *p, const char *why);

/* state.c */
int enr__changelog_ensure(enr_processor_t *p, char *errstr, size_t errstr_size);
/* Restores p->pipe, just built, from the changelog; 0 or -1. */
int enr__state_restore(enr_processor_t *p, char *errstr, size_t errstr_size);
/* Replaces p->pipe with a fresh one and restores it (after an abort); 0 or -1. */
int enr__state_reload(enr_processor_t *p, char *errstr, size_t errstr_size);
int enr__profiles_open(enr_processor_t *p, char *errstr, size_t errstr_size);
/* Applies what the profile topic has now (all of it when @p to_end, waiting up to 30 s). */
void enr__profiles_poll(enr_processor_t *p, int to_end);

/* subscribe.c */
int enr__subscription_init(enr_processor_t *p, char *errstr, size_t errstr_size);
void enr__subscription_free(enr_processor_t *p);
/* Subscribes to the input topics the cluster has now when they changed (every few seconds;
 * a metadata request of at most @p timeout_ms). 1 when the subscription changed, 0, -1. */
int enr__subscription_refresh(enr_processor_t *p, int timeout_ms);
/* 1 when @p topic is one the processor writes (never read as input). */
int enr__is_output(const enr_processor_t *p, const char *topic);

/* owned.c */
/* The partitions now owned (NULL: none), each with the next offset to process (or
 * RD_KAFKA_OFFSET_INVALID: from the first record that comes). */
void enr__owned_set(enr_processor_t *p, const rd_kafka_topic_partition_list_t *parts);
/* 1 when the record at @p offset is to be processed now (and counts as processed once the
 * open transaction commits); 0 for a record of a partition not owned, or a stale one. */
int enr__owned_take(enr_processor_t *p, const char *topic, int32_t partition, int64_t offset);
/* The offsets the open transaction commits: owned partitions with a processed record. */
rd_kafka_topic_partition_list_t *enr__owned_offsets(const enr_processor_t *p);

/* monitor.c: the group consumer's statistics callback (served by enr_poll()). */
int enr__on_kafka_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);

/* A copy of @p base for one of the processor's clients: opaque @p p, librdkafka's log lines
 * through the processor's logger. */
rd_kafka_conf_t *enr__kafka_conf(enr_processor_t *p, const rd_kafka_conf_t *base);

/* Frees the clients and the pipeline (no commit, no group leave). */
void enr__processor_free(enr_processor_t *p);

/* Publishes the pipeline's counters for enr_stat() (any thread). */
void enr__processor_publish_stats(enr_processor_t *p);

#endif
