/*
 * processor.h - the Kafka side of libenrich, shared by its files: processor.c (creation, the
 * rebalance callback), processor_step.c (the poll loop, stop, destroy, statistics), txn.c
 * (transactions: begin, produce, commit, abort and rewind), state.c (changelog topic and
 * restore, the profile topic consumer), monitor.c (librdkafka statistics, under-replicated
 * partitions).
 */
#ifndef ENR_PROCESSOR_H
#define ENR_PROCESSOR_H

#include "pipeline.h"
#include "ue_kstats.h"
#include "ue_log.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

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
    rd_kafka_message_t **batch;  /* batch.max.events slots for one consume */
    int64_t queued_min;          /* the consumer's queued.min.messages */
    int fetch_parked;            /* its queue reached queued_min: fetching has stopped */
    int kick_next;               /* assigned partition the next fetch kick asks about */
    int in_txn;
    int64_t txn_started_ms;
    int64_t txn_events;
    int64_t commit_started_ms;   /* when the commit (or abort) of the open transaction began */
    int in_callback;             /* inside the rebalance callback: no recursive commit */
    enr_err_t fatal;             /* set once the processor cannot go on */
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
