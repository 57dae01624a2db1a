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

#include "image.h"
#include "pipeline.h"
#include "uc_fetch_kick.h"
#include "uc_kstats.h"
#include "uc_log.h"

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
    rd_kafka_topic_partition_list_t *current; /* input topics read now, sorted by name */
    int64_t next_refresh_ms;
} enr__subscription_t;

typedef struct enr__merger enr__merger_t;

/*
 * A task: the unit of work and state, partition p of every input topic (co-partitioned by
 * user id) plus partition p of the repartition topic. It has its own stages and writes its
 * state to partition p of the changelog only, so it can move to another processor of the
 * group with nothing but that partition.
 */
typedef struct enr__task {
    struct enr_processor_s *p;
    int32_t id;
    enr_pipeline_t *pipe;
    enr__sink_t sink;         /* the stages' outputs into the open transaction, partition id */
    enr__merger_t *merger;    /* window partials of every task whose key hashes here */
    struct enr__image *image; /* its committed state, to roll an abort back (image.h) */
    int64_t horizon_sent[2];    /* the window / anomaly horizon last broadcast */
    int64_t horizon_sent_ms[2]; /* when (monotonic) */
} enr__task_t;

struct enr_processor_s {
    enr_conf_t *conf;
    uc__logger_t log;
    rd_kafka_t *consumer;        /* the group consumer: repartition topic + input topics */
    rd_kafka_queue_t *queue;     /* its message queue */
    rd_kafka_t *producer;        /* transactional: outputs, changelog, offsets */
    rd_kafka_t *restorer;        /* reads changelog partitions when tasks are restored */
    rd_kafka_t *profiles;        /* consumer of the profile topic (no group); may be NULL */
    rd_kafka_queue_t *profiles_queue;
    enr_pipeline_t *pipe;        /* the stages as configured: checked at start, owns the
                                    profile table every task shares; never runs events */
    char *instance_id;
    char *transactional_id;
    char *changelog_topic;
    char *repartition_topic;
    int32_t ntasks;              /* the input's partition count; 0 until an input topic exists */
    enr__task_t **tasks;         /* [ntasks], NULL where not owned */
    int64_t retired[ENR_STAT__CNT]; /* counters of tasks given away, so totals only grow */
    enr__image_budget_t image_budget; /* what the tasks' images may hold (rollback.max.bytes) */
    enr__subscription_t sub;
    rd_kafka_topic_partition_list_t *owned; /* assigned partitions, offset: next to process */
    rd_kafka_topic_partition_t *owned_last; /* the entry of the last record (owned.c) */
    uc__fetch_kick_t fetch_kick; /* wakes librdkafka 2.0's fetcher (uc_fetch_kick.h) */
    int in_txn;
    int64_t txn_started_ms;
    int64_t txn_events;
    int64_t txn_bytes;           /* keys and values produced into the open transaction */
    int64_t commit_started_ms;   /* when the commit (or abort) of the open transaction began */
    int in_callback;             /* inside the rebalance callback: no recursive commit */
    int closing;                 /* destroy waits for a first assignment: take no task */
    enr_err_t fatal;             /* set once the processor cannot go on */
    char last_error[512];        /* why: enr_processor_last_error() */
    int produce_failed;          /* a record of the open transaction was refused: abort it */
    _Atomic int stop;
    _Atomic int64_t session_lost_ms; /* when librdkafka last said the group session timed out */
    _Atomic int64_t stats[ENR_STAT__CNT];
    uc__kstats_t kstats;         /* the group consumer's latest librdkafka statistics */
};

/* txn.c */
int enr__txn_begin(enr_processor_t *p);
/* Produces into the open transaction; @p partition RD_KAFKA_PARTITION_UA: by key. */
void enr__txn_produce(enr_processor_t *p, const char *topic, int32_t partition, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      rd_kafka_headers_t *hdrs);
/* Flushes the stages, sends the consumed offsets and commits; aborts and rewinds on error. */
enr_err_t enr__txn_commit(enr_processor_t *p, int timeout_ms);
/* Aborts the open transaction and rewinds state and positions to the last commit. */
enr_err_t enr__txn_abort(enr_processor_t *p, const char *why);

/* state.c */
/* Makes sure the changelog and repartition topics exist with ntasks partitions each. */
int enr__topics_ensure(enr_processor_t *p, char *errstr, size_t errstr_size);
/* Rebuilds the stages of @p n tasks and restores each from its changelog partition, with one
 * reader; 0 or -1. */
int enr__tasks_restore(enr_processor_t *p, enr__task_t *const *tasks, int n, char *errstr,
                       size_t errstr_size);
int enr__profiles_open(enr_processor_t *p, char *errstr, size_t errstr_size);
/* Applies what the profile topic has now (all of it when @p to_end, waiting up to 30 s). */
void enr__profiles_poll(enr_processor_t *p, int to_end);

/* task.c */
/* Takes tasks @p ids (restoring each) / gives them away (their state dropped). */
void enr__tasks_take(enr_processor_t *p, const int32_t *ids, int n);
void enr__tasks_drop(enr_processor_t *p, const int32_t *ids, int n);
/* Runs one input record through its task's stages. */
void enr__task_process(enr_processor_t *p, const rd_kafka_message_t *m);
/* Before a commit: every owned task's stages flush, window horizons go out. */
void enr__tasks_flush(enr_processor_t *p);
/* After a commit: what the transaction wrote to each task's changelog is its committed state
 * now (image.h). */
void enr__tasks_committed(enr_processor_t *p);
/* After an abort: every owned task back to its committed state, in memory from its image, or
 * from its changelog partition when the image was lost to a lack of memory. 0 or -1. */
int enr__tasks_roll_back(enr_processor_t *p, char *errstr, size_t errstr_size);
void enr__tasks_free(enr_processor_t *p);
/* The counters of every task, owned now or before, into @p sum[ENR_STAT__CNT]. */
void enr__tasks_sum_stats(const enr_processor_t *p, int64_t *sum);
/* Fresh stages and merger for @p t: with @p from_image its committed state replayed into
 * them, else an empty image and state.c restores them from the changelog. 0 or -1. */
int enr__task_rebuild(enr__task_t *t, int from_image, char *errstr, size_t errstr_size);
/* Hands a committed record of @p t's changelog partition (a restore reading it) to its image
 * and to its merger or its stages. */
void enr__task_apply_changelog(enr__task_t *t, const void *key, size_t key_len,
                               const void *value, size_t value_len);

/* subscribe.c */
int enr__subscription_init(enr_processor_t *p, char *errstr, size_t errstr_size);
void enr__subscription_free(enr_processor_t *p);
/* Looks for input topics the cluster has now (every few seconds; a metadata request of at
 * most @p timeout_ms). The first time some exist it checks their partition counts, makes
 * sure the internal topics exist and joins the group; later ones are assigned for the
 * tasks owned. 1 when the input topics changed, 0, or -1 with the reason (fatal: the topics
 * are not co-partitioned, or an internal topic has the wrong count). */
int enr__subscription_refresh(enr_processor_t *p, int timeout_ms, char *errstr,
                              size_t errstr_size);
/* Partition @p task of the repartition topic and of every input topic, appended to @p l. */
void enr__task_partitions(const enr_processor_t *p, int32_t task,
                          rd_kafka_topic_partition_list_t *l);
/* 1 when @p topic is one the processor writes (never read as input). */
int enr__is_output(const enr_processor_t *p, const char *topic);

/* owned.c */
/* The partitions now owned (NULL: none), each with the next offset to process (or
 * RD_KAFKA_OFFSET_INVALID: from the first record that comes). */
void enr__owned_set(enr_processor_t *p, const rd_kafka_topic_partition_list_t *parts);
/* Partitions added to (@p add 1) or removed from (0) what is owned. */
void enr__owned_change(enr_processor_t *p, const rd_kafka_topic_partition_list_t *parts,
                       int add);
/* 1 when the record at @p offset is to be processed now (and counts as processed once the
 * open transaction commits); 0 for a record of a partition not owned, or a stale one. */
int enr__owned_take(enr_processor_t *p, const char *topic, int32_t partition, int64_t offset);
/* The offsets the open transaction commits: owned partitions with a processed record. */
rd_kafka_topic_partition_list_t *enr__owned_offsets(const enr_processor_t *p);

/* processor.c: adds (@p add 1) or removes partitions of the consumer's assignment. */
void enr__assignment_change(enr_processor_t *p, rd_kafka_topic_partition_list_t *parts, int add);

/* monitor.c: the group consumer's statistics callback (served by enr_poll()). */
int enr__on_kafka_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque);

/* A copy of @p base for one of the processor's clients: opaque @p p, librdkafka's log lines
 * through the processor's logger. */
rd_kafka_conf_t *enr__kafka_conf(enr_processor_t *p, const rd_kafka_conf_t *base);

/* Stops the processor for good with @p err (negative) and its reason, logged and kept for
 * enr_processor_last_error(); enr_poll() returns it from now on. Returns the first error. */
enr_err_t enr__processor_fail(enr_processor_t *p, enr_err_t err, const char *reason);

/* Leaves the group (revocations served by the rebalance callback) by monotonic @p deadline;
 * -1: not by then (the coordinator did not answer), the group moves the tasks after the
 * session timeout. */
int enr__consumer_close(enr_processor_t *p, int64_t deadline);

/* Frees the clients and the pipeline (no commit, no group leave). */
void enr__processor_free(enr_processor_t *p);

/* Publishes the pipeline's counters for enr_stat() (any thread). */
void enr__processor_publish_stats(enr_processor_t *p);

/* A fence that follows the processor's own session timeout or a transaction open past
 * transaction.timeout.ms: its own doing, not another instance (processor_step.c). */
int enr__fence_is_own(const enr_processor_t *p);

#endif
