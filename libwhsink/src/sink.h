/*
 * sink.h - the sink object, shared by sink.c (the public API and the poll loop), consumer.c
 * (the Kafka consumer, assignments and revocations), flush.c (handing batches to the writer
 * and taking results back) and stats.c.
 *
 * Everything here runs on the caller's thread (the one calling whs_poll()), except what the
 * writer thread touches: the batch in flight (owned by the writer until taken back) and the
 * atomic statistics.
 */
#ifndef WHS_SINK_H
#define WHS_SINK_H

#include "backend.h"
#include "batch.h"
#include "conf.h"
#include "deadletter.h"
#include "row.h"
#include "uc_fetch_kick.h"
#include "uc_kstats.h"
#include "uc_log.h"
#include "writer.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

/* What the sink knows of one input partition. */
typedef struct whs__pstate {
    int assigned;
    int64_t handed;       /* offset after the last record handed to the writer, or where the
                             warehouse stands: the fencing base of the next batch (-1: none) */
    int64_t committed;    /* offset the warehouse holds after our last commit (-1: none) */
    int64_t expect;       /* next offset expected; a smaller one is a stale duplicate */
    whs__resume_t resume; /* records already in the warehouse past `handed`, to skip */
} whs__pstate_t;

struct whs_sink_s {
    whs_conf_t *conf;
    const whs__settings_t *s;
    uc__logger_t log;
    uc__kstats_t kstats;      /* the consumer's latest librdkafka statistics (lag, brokers) */
    whs__schema_t schema;
    whs__mapper_t mapper;
    whs__backend_t *be;
    whs__dl_t *dl;
    whs__writer_t *writer;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue: records, rebalances, errors */
    uc__fetch_kick_t fetch_kick; /* wakes librdkafka 2.0's fetcher (uc_fetch_kick.h) */

    whs__pstate_t *parts; /* indexed by partition number */
    int32_t nparts;

    whs__batch_t batches[2];
    whs__batch_t *cur;   /* filling */
    whs__batch_t *spare; /* in flight with the writer, or free */
    int inflight;        /* 1 while the writer owns `spare` */
    uint64_t batch_seq;  /* ids: random start per process, +1 per batch */
    int paused;
    int64_t blocked_since; /* monotonic ms since the batch is full and the writer busy; 0 */

    _Atomic int64_t stats[WHS_STAT__CNT];
    _Atomic int stop;
    int in_callback;
    int closing, closed;
    int fatal;        /* a fatal Kafka error: whs_poll() returns it from now on */
    char reason[512]; /* scratch: the reason a record is dead-lettered */
};

static inline void whs__stat_add(whs_sink_t *s, whs_stat_t which, int64_t n)
{
    atomic_fetch_add_explicit(&s->stats[which], n, memory_order_relaxed);
}

static inline void whs__stat_set(whs_sink_t *s, whs_stat_t which, int64_t v)
{
    atomic_store_explicit(&s->stats[which], v, memory_order_relaxed);
}

/* Reports an error through the error callback (and the log). */
void whs__sink_error(whs_sink_t *s, whs_err_t err, int retriable, const char *msg);

/* The state of @p partition, grown on demand; NULL when out of memory. */
whs__pstate_t *whs__sink_part(whs_sink_t *s, int32_t partition);

/* ---- consumer.c ---- */

/* Creates the consumer and subscribes to the topic. 0 or -1 with the reason. */
int whs__consumer_start(whs_sink_t *s, char *errstr, size_t errstr_size);

/* Leaves the group (revocations served) by monotonic @p deadline; -1: not by then. */
int whs__consumer_close(whs_sink_t *s, int64_t deadline);

/* Reads where @p partition stands from the warehouse (retrying until it answers or the sink
 * stops) and resets its state there. 0, or -1 when stopped first. */
int whs__consumer_resolve(whs_sink_t *s, int32_t partition, int64_t *start);

/* Seeks @p partition to where the warehouse stands (after a fenced or cancelled batch). */
void whs__consumer_reseek(whs_sink_t *s, int32_t partition);

/* Pauses (1) or resumes (0) every assigned partition: backpressure. */
void whs__consumer_pause(whs_sink_t *s, int pause);

/* Commits @p next of @p partition to the Kafka group: a hint for lag monitoring only. */
void whs__consumer_commit_hint(whs_sink_t *s, const whs__batch_t *b);

/* ---- flush.c ---- */

/* 1 when the filling batch should be handed over: full, old, or a quarter full while the
 * writer is idle. */
int whs__flush_due(whs_sink_t *s, int64_t now_ms);

/* 1 when the filling batch is full: consuming more would grow memory. */
int whs__flush_full(whs_sink_t *s);

/* Takes back a finished batch and reports it; drains writer events. */
void whs__flush_service(whs_sink_t *s);

/* Hands the filling batch to the writer if it is idle and the batch's dead letters are
 * delivered (waiting up to @p dl_wait_ms for them). 1 when handed over. */
int whs__flush_handoff(whs_sink_t *s, int dl_wait_ms);

/* Hands over and waits until everything consumed is committed, or the deadline passes.
 * 0, or -1 on timeout (the work goes on). */
int whs__flush_all(whs_sink_t *s, int64_t deadline);

/* Gives up what is not committed: cancels the writer's batch, waits for it, empties the
 * filling batch. Partitions still assigned are re-sought to the warehouse's offsets. */
void whs__flush_abandon(whs_sink_t *s);

/* Refreshes the gauges of buffered rows and bytes. */
void whs__flush_gauges(whs_sink_t *s);

#endif
