/*
 * client.h - the client object, shared by client.c (the public API, on callers' threads) and
 * sender.c (the background thread that spools, sends and reports).
 */
#ifndef UE_CLIENT_H
#define UE_CLIENT_H

#include "conf.h"
#include "queue.h"
#include "spool.h"
#include "transport.h"
#include "uc_log.h"
#include "userevents.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct ue__counter {
    _Alignas(64) _Atomic int64_t v;
} ue__counter_t;

struct ue_client_s {
    ue_conf_t *conf;
    uc__logger_t log;
    ue__queue_t queue;
    ue__spool_t *spool;               /* NULL without spool.dir */
    ue__transport_t *transport;
    pthread_t thread;
    uint32_t fork_generation;         /* uc__fork_generation() at creation */

    /* identity and defaults stamped by ue_track() */
    pthread_rwlock_t identity_lock;
    _Atomic int has_user_id;
    char *user_id;
    char anonymous_id[201];
    Userevents__Context context;

    /* Statistics: each counter on its own cache line, so callers (tracked, drops) and the
     * sender (everything else) never write the same line. The sender counts in plain
     * integers and publishes once per turn. */
    ue__counter_t stats[UE_STAT__CNT];
    ue__counter_t resolved;           /* delivered, failed or dropped after acceptance */
    int64_t replay_total;             /* accepted from the spool at start */
    int64_t snd_stats[UE_STAT__CNT];  /* background thread only: not yet published */
    int64_t snd_resolved;

    /* flush and stop */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;         /* broadcast when `resolved` grows or the thread ends */
    _Atomic int flush_requests;       /* > 0: do not linger */
    _Atomic int stopping;
    /* ue_flush_spooled(): every record up to this queue position (ue__queue_taken()) is in
     * the spool or resolved, or counted in unspooled: handed to the transport after its spool
     * write failed, and not resolved yet (safe only once acknowledged). */
    _Atomic uint64_t safe_through;
    _Atomic uint64_t unspooled;

    /* background thread only */
    ue__record_t *pending_head, *pending_tail; /* to (re)send before anything newer */
    int direct;                       /* spool caught up: send batches straight from memory */
    int safe_moved;                   /* safe_through grew this turn: wake flushers */
};

/* Adds to a counter from a caller's thread. */
static inline void ue__stat_add(ue_client_t *c, ue_stat_t s, int64_t n)
{
    atomic_fetch_add_explicit(&c->stats[s].v, n, memory_order_relaxed);
}

/* Adds to a counter from the background thread (published by ue__sender_publish). */
static inline void ue__snd_add(ue_client_t *c, ue_stat_t s, int64_t n)
{
    c->snd_stats[s] += n;
}

/* Events flush waits for: accepted by ue_track() plus replayed from the spool. */
static inline int64_t ue__accepted(ue_client_t *c)
{
    return atomic_load(&c->stats[UE_STAT_TRACKED].v) + c->replay_total;
}

/* Counts @p n accepted events as resolved, from a caller's thread. */
void ue__client_resolved(ue_client_t *c, int64_t n);

/* The same from the background thread; published with the counters. */
static inline void ue__snd_resolved(ue_client_t *c, int64_t n)
{
    c->snd_resolved += n;
}

/* Publishes the background thread's counters (once per turn). */
void ue__sender_publish(ue_client_t *c);

/* Wakes ue_flush() callers when everything accepted is resolved. */
void ue__client_wake_flushers(ue_client_t *c);

/* Runs the delivery callback, marking this thread as inside it (see RECURSIVE_CALL). */
void ue__client_report(ue_client_t *c, const uint8_t *event_id, const char *type,
                       ue_outcome_t outcome, ue_err_t reason, const char *reason_str);

/* The background thread's entry point and the transport's result callback. */
void *ue__sender_main(void *arg);
void ue__sender_on_result(void *owner, ue__record_t *rec, ue_err_t err, const char *reason,
                          int retriable);
void ue__sender_on_retry(void *owner, const ue__record_t *rec, ue_err_t err, const char *reason);

#endif
