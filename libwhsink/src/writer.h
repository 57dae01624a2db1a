/*
 * writer.h - the writer thread: every warehouse call of a running sink happens here, so the
 * consumer thread keeps reading (and mapping the next batch) while a batch is written.
 *
 * It takes one request at a time from the sink's thread: a batch to commit (retried with
 * full-jitter backoff until it commits, is fenced, or is cancelled), or a question about a
 * partition's committed offsets. Rows the warehouse refuses are isolated by bisection and
 * dead-lettered one by one; the rest of the batch still commits. Failures are queued as
 * events for the sink's thread, which reports them through the error callback.
 */
#ifndef WHS_WRITER_H
#define WHS_WRITER_H

#include "backend.h"
#include "batch.h"
#include "deadletter.h"
#include "uc_log.h"
#include "whsink.h"

#include <stdatomic.h>

typedef struct whs__writer whs__writer_t;

/* Outcome of a batch. */
typedef enum whs__wstatus {
    WHS__W_COMMITTED = 0,
    WHS__W_FENCED = 1,    /* another sink moved a partition: drop, re-resolve, re-read */
    WHS__W_CANCELLED = 2, /* given up (shutdown, revocation deadline): nothing committed */
} whs__wstatus_t;

typedef struct whs__wevent {
    whs_err_t err;
    int retriable;
    char msg[512];
} whs__wevent_t;

typedef struct whs__writer_conf {
    whs__backend_t *be;
    whs__dl_t *dl; /* may be NULL: refused rows are then only counted */
    const char *topic;
    const whs__schema_t *schema;
    int64_t backoff_ms, backoff_max_ms;
    const uc__logger_t *log;
    _Atomic int64_t *stats; /* the sink's WHS_STAT_* array */
    /* Called on the writer thread after each request finishes (may be NULL): the sink wakes
     * its consumer poll so a finished batch is taken back at once, not at the poll's end. */
    void (*on_done)(void *opaque);
    void *on_done_opaque;
} whs__writer_conf_t;

/* Starts the thread; the writer uses (does not own) the backend. NULL on failure. */
whs__writer_t *whs__writer_new(const whs__writer_conf_t *conf);

/* Stops the thread (cancelling a batch in progress) and frees the writer. NULL is a no-op. */
void whs__writer_destroy(whs__writer_t *w);

/* 1 when no batch is in flight and no result is waiting to be taken. */
int whs__writer_idle(whs__writer_t *w);

/* Hands @p b over; the writer owns it until whs__writer_take() returns it. Must be idle. */
void whs__writer_submit(whs__writer_t *w, whs__batch_t *b);

/* Waits up to @p timeout_ms (-1: forever) for the batch in flight to finish; 1 when done. */
int whs__writer_wait(whs__writer_t *w, int timeout_ms);

/* The finished batch and its outcome, or NULL when none is finished. */
whs__batch_t *whs__writer_take(whs__writer_t *w, whs__wstatus_t *status);

/* Asks the writer to give up the batch in flight at the next retry point. */
void whs__writer_cancel(whs__writer_t *w);

/*
 * Reads where @p partition stands in the warehouse, on the writer thread (one connection,
 * one thread). Waits for a batch in flight first. One attempt: the caller retries.
 */
whs__be_rc_t whs__writer_resolve(whs__writer_t *w, int32_t partition, whs__resume_t *out, char *err,
                                 size_t err_size);

/* Moves up to @p max queued failure events into @p out; returns how many. */
size_t whs__writer_events(whs__writer_t *w, whs__wevent_t *out, size_t max);

#endif
