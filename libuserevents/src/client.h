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
#include "ue_log.h"
#include "userevents.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>

struct ue_client_s {
    ue_conf_t *conf;
    ue__logger_t log;
    ue__queue_t queue;
    ue__spool_t *spool;               /* NULL without spool.dir */
    ue__transport_t *transport;
    pthread_t thread;
    uint32_t fork_generation;         /* ue__fork_generation() at creation */

    /* identity and defaults stamped by ue_track() */
    pthread_rwlock_t identity_lock;
    _Atomic int has_user_id;
    char *user_id;
    char anonymous_id[201];
    Userevents__Context context;

    /* statistics: counters, and gauges the background thread refreshes */
    _Atomic int64_t stats[UE_STAT__CNT];
    _Atomic int64_t accepted;         /* tracked + replayed: what flush waits for */
    _Atomic int64_t resolved;         /* delivered, failed or dropped after acceptance */

    /* flush and stop */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;         /* broadcast when `resolved` grows or the thread ends */
    _Atomic int flush_requests;       /* > 0: do not linger */
    _Atomic int stopping;

    /* background thread only */
    ue__record_t *pending_head, *pending_tail; /* to (re)send before anything newer */
    int direct;                       /* spool caught up: send batches straight from memory */
};

static inline void ue__stat_add(ue_client_t *c, ue_stat_t s, int64_t n)
{
    atomic_fetch_add_explicit(&c->stats[s], n, memory_order_relaxed);
}

/* Counts @p n accepted events as resolved (delivered, failed or dropped). */
void ue__client_resolved(ue_client_t *c, int64_t n);

/* Wakes ue_flush() callers when everything accepted is resolved. */
void ue__client_wake_flushers(ue_client_t *c);

/* Runs the delivery callback, marking this thread as inside it (see RECURSIVE_CALL). */
void ue__client_report(ue_client_t *c, const uint8_t *event_id, const char *type,
                       ue_outcome_t outcome, ue_err_t reason, const char *reason_str);

/* The background thread's entry point and the transport's result callback. */
void *ue__sender_main(void *arg);
void ue__sender_on_result(void *owner, ue__record_t *rec, ue_err_t err, const char *reason,
                          int retriable);

#endif
