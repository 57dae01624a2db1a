/*
 * writer.c - the writer thread (see writer.h).
 *
 * One attempt at a batch: begin, write every group, commit with the offsets. A refused range
 * of rows (WHS__BE_DATA) is split in halves until the single bad rows are found; each goes to
 * the dead-letter topic as JSON with the warehouse's reason, and the rest commits. Transient
 * and other failures end the attempt; the writer waits (full jitter, doubling up to the cap,
 * interruptible by cancel) and tries again, forever: a warehouse outage makes the sink wait,
 * never lose or duplicate. Between attempts, rows dead-lettered (and, for backends without
 * transactions, rows already durably written) are removed from the batch.
 */
#include "writer.h"
#include "json.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX 32

enum { REQ_NONE, REQ_BATCH, REQ_RESOLVE };

struct whs__writer {
    whs__writer_conf_t c;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* to the writer: a request, cancel or stop */
    pthread_cond_t done; /* to the sink: a request finished */
    int stop;
    _Atomic int cancel;
    int req;             /* REQ_*: the request being served, REQ_NONE when idle */
    whs__batch_t *batch; /* REQ_BATCH: in flight; then finished, until taken */
    int finished;
    whs__wstatus_t status;
    int32_t partition; /* REQ_RESOLVE */
    whs__resume_t *resume;
    whs__be_rc_t resolve_rc;
    char resolve_err[512];
    whs__wevent_t events[EVENTS_MAX];
    size_t nevents;
    whs__buf_t json; /* a dead-lettered row */
};

static void post_event(whs__writer_t *w, whs_err_t err, int retriable, const char *msg)
{
    pthread_mutex_lock(&w->lock);
    if (w->nevents < EVENTS_MAX) {
        whs__wevent_t *e = &w->events[w->nevents++];
        e->err = err;
        e->retriable = retriable;
        size_t n = strlen(msg);
        n = n < sizeof(e->msg) ? n : sizeof(e->msg) - 1;
        memcpy(e->msg, msg, n);
        e->msg[n] = '\0';
    }
    pthread_mutex_unlock(&w->lock);
}

static void stat_add(whs__writer_t *w, whs_stat_t s, int64_t n)
{
    atomic_fetch_add_explicit(&w->c.stats[s], n, memory_order_relaxed);
}

/* Sends one refused row to the dead-letter topic and takes it out of its partition's rows. */
static void dead_letter_row(whs__writer_t *w, whs__batch_t *b, whs__row_t *row, const char *why)
{
    char reason[600];
    snprintf(reason, sizeof(reason), "warehouse refused the row: %s", why);
    whs__buf_reset(&w->json);
    whs__row_json(&w->json, w->c.schema, row, &whs__json_style_plain);
    whs__dl_send(w->c.dl, w->json.data, w->json.len, NULL, 0, reason, w->c.topic, row->partition,
                 row->offset, "row-json");
    row->flags |= WHS__ROW_DEAD;
    whs__bpart_t *p = whs__batch_find_part(b, row->partition);
    if (p) {
        p->rows--;
        p->dead_letters++;
    }
    stat_add(w, WHS_STAT_DEAD_LETTERS, 1);
    uc__log(w->c.log, UC_LOG_WARNING, "partition %d offset %lld: %s", row->partition,
            (long long)row->offset, reason);
    post_event(w, WHS_ERR_WAREHOUSE_REJECTED, 0, reason);
}

static void mark_done(whs__group_t *g, size_t from, size_t n)
{
    for (size_t i = from; i < from + n; i++)
        g->rows[i]->flags |= WHS__ROW_DONE;
}

/* Writes rows [from, from + n) of @p g, isolating refused rows by bisection. */
static whs__be_rc_t write_range(whs__writer_t *w, whs__batch_t *b, whs__group_t *g, size_t from,
                                size_t n, int retry, char *err, size_t err_size)
{
    const whs__backend_ops_t *ops = w->c.be->ops;
    whs__backend_t *be = w->c.be;
    whs__be_rc_t rc;
    if (ops->transactional && (rc = ops->savepoint(be, 0, err, err_size)) != WHS__BE_OK)
        return rc;
    rc = ops->write(be, b, g, from, n, retry, err, err_size);
    if (rc == WHS__BE_DATA) {
        if (ops->transactional && ops->savepoint(be, 1, err, err_size) != WHS__BE_OK)
            return WHS__BE_RETRY;
        if (n == 1) {
            dead_letter_row(w, b, g->rows[from], err);
            rc = WHS__BE_OK;
        } else {
            rc = write_range(w, b, g, from, n / 2, retry, err, err_size);
            if (rc == WHS__BE_OK)
                rc = write_range(w, b, g, from + n / 2, n - n / 2, retry, err, err_size);
        }
    } else if (rc == WHS__BE_OK && !ops->transactional && !ops->rewrite_ok) {
        mark_done(g, from, n);
    }
    if (rc == WHS__BE_OK && ops->transactional)
        rc = ops->savepoint(be, 2, err, err_size);
    return rc;
}

/* One attempt at the whole batch. */
static whs__be_rc_t attempt(whs__writer_t *w, whs__batch_t *b, int retry, char *err,
                            size_t err_size)
{
    const whs__backend_ops_t *ops = w->c.be->ops;
    whs__be_rc_t rc = ops->begin(w->c.be, b, err, err_size);
    for (size_t g = 0; rc == WHS__BE_OK && g < b->ngroups; g++) {
        if (b->groups[g].n > 0)
            rc = write_range(w, b, &b->groups[g], 0, b->groups[g].n, retry, err, err_size);
    }
    if (rc == WHS__BE_OK && w->c.dl && whs__dl_flush(w->c.dl, 30000)) {
        uc__errstr(err, err_size, "dead letters not yet delivered");
        rc = WHS__BE_RETRY;
    }
    if (rc == WHS__BE_OK)
        rc = ops->commit(w->c.be, b, err, err_size);
    if (rc != WHS__BE_OK)
        ops->rollback(w->c.be);
    return rc;
}

/* Full jitter: a random wait in [0, min(cap, base * 2^n)); woken early by cancel or stop. */
static void backoff(whs__writer_t *w, int n)
{
    int64_t ceiling = w->c.backoff_ms;
    for (int i = 0; i < n && ceiling < w->c.backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > w->c.backoff_max_ms)
        ceiling = w->c.backoff_max_ms;
    uint32_t r;
    uc__random_bytes(&r, sizeof(r));
    int64_t wait_ms = ceiling > 1 ? (int64_t)(r % (uint32_t)ceiling) : 1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->stop && !atomic_load(&w->cancel) &&
           pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&w->lock);
}

/* A retried commit can be fenced by its own earlier attempt whose COMMIT reached the server
 * though its answer did not: then the warehouse holds exactly this batch's offsets. */
static int committed_before(whs__writer_t *w, const whs__batch_t *b)
{
    char err[512];
    for (size_t i = 0; i < b->nparts; i++) {
        whs__resume_t r = {0};
        whs__be_rc_t rc =
            w->c.be->ops->committed(w->c.be, b->parts[i].partition, &r, err, sizeof(err));
        whs__resume_free(&r);
        if (rc != WHS__BE_OK || r.next_offset != b->parts[i].next)
            return 0;
    }
    return 1;
}

/* Attempts @p b until it commits, is fenced, or is cancelled. */
static whs__wstatus_t run_batch(whs__writer_t *w, whs__batch_t *b)
{
    char err[1024];
    for (int n = 0;; n++) {
        if (atomic_load(&w->cancel) || w->stop)
            return WHS__W_CANCELLED;
        err[0] = '\0';
        int64_t t0 = uc__mono_ms();
        whs__be_rc_t rc = attempt(w, b, n > 0, err, sizeof(err));
        uc__log(w->c.log, UC_LOG_DEBUG, "batch %llx: %zu rows, %zu groups: %s in %lld ms",
                (unsigned long long)b->id, b->rows, b->ngroups, whs__be_rc_name(rc),
                (long long)(uc__mono_ms() - t0));
        whs__batch_compact(b, WHS__ROW_DEAD | WHS__ROW_DONE);
        if (rc == WHS__BE_OK)
            return WHS__W_COMMITTED;
        if (rc == WHS__BE_FENCED && n > 0 && committed_before(w, b)) {
            uc__log(w->c.log, UC_LOG_NOTICE, "batch %llx: an earlier attempt had committed",
                    (unsigned long long)b->id);
            return WHS__W_COMMITTED;
        }
        if (rc == WHS__BE_FENCED) {
            uc__log(w->c.log, UC_LOG_WARNING, "batch %llx fenced: %s", (unsigned long long)b->id,
                    err);
            post_event(w, WHS_ERR_FENCED, 0, err);
            return WHS__W_FENCED;
        }
        stat_add(w, WHS_STAT_RETRIES, 1);
        uc__log(w->c.log, rc == WHS__BE_RETRY ? UC_LOG_WARNING : UC_LOG_ERR,
                "batch %llx attempt %d %s, retrying: %s", (unsigned long long)b->id, n + 1,
                whs__be_rc_name(rc), err);
        post_event(w, WHS_ERR_WAREHOUSE, 1, err);
        backoff(w, n);
    }
}

static void serve(whs__writer_t *w, int req)
{
    if (req == REQ_BATCH) {
        whs__wstatus_t st = run_batch(w, w->batch);
        pthread_mutex_lock(&w->lock);
        w->status = st;
        w->finished = 1;
    } else {
        char err[512] = "";
        whs__be_rc_t rc =
            w->c.be->ops->committed(w->c.be, w->partition, w->resume, err, sizeof(err));
        pthread_mutex_lock(&w->lock);
        w->resolve_rc = rc;
        snprintf(w->resolve_err, sizeof(w->resolve_err), "%s", err);
    }
    w->req = REQ_NONE;
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->lock);
    if (w->c.on_done)
        w->c.on_done(w->c.on_done_opaque);
}

static void *writer_main(void *arg)
{
    whs__writer_t *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && (w->req == REQ_NONE || (w->req == REQ_BATCH && w->finished)))
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->stop)
            break;
        int req = w->req;
        pthread_mutex_unlock(&w->lock);
        serve(w, req);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

whs__writer_t *whs__writer_new(const whs__writer_conf_t *conf)
{
    whs__writer_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->c = *conf;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w)) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->done);
        free(w);
        return NULL;
    }
    return w;
}

void whs__writer_destroy(whs__writer_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    atomic_store(&w->cancel, 1);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    whs__buf_free(&w->json);
    free(w);
}

int whs__writer_idle(whs__writer_t *w)
{
    pthread_mutex_lock(&w->lock);
    int idle = w->batch == NULL && w->req == REQ_NONE;
    pthread_mutex_unlock(&w->lock);
    return idle;
}

void whs__writer_submit(whs__writer_t *w, whs__batch_t *b)
{
    pthread_mutex_lock(&w->lock);
    w->batch = b;
    w->finished = 0;
    w->req = REQ_BATCH;
    atomic_store(&w->cancel, 0);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* Waits on w->done until @p cond holds or the deadline passes (lock held). */
static int wait_locked(whs__writer_t *w, int64_t deadline, int (*cond)(whs__writer_t *))
{
    while (!cond(w)) {
        if (deadline == INT64_MAX) {
            pthread_cond_wait(&w->done, &w->lock);
            continue;
        }
        int left = uc__remaining_ms(deadline);
        if (left <= 0)
            return 0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += left / 1000;
        until.tv_nsec += (long)(left % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->done, &w->lock, &until);
    }
    return 1;
}

static int batch_finished(whs__writer_t *w)
{
    return w->batch == NULL || w->finished;
}

static int no_request(whs__writer_t *w)
{
    return w->req == REQ_NONE;
}

int whs__writer_wait(whs__writer_t *w, int timeout_ms)
{
    pthread_mutex_lock(&w->lock);
    int done = wait_locked(w, uc__deadline_ms(timeout_ms), batch_finished);
    pthread_mutex_unlock(&w->lock);
    return done;
}

whs__batch_t *whs__writer_take(whs__writer_t *w, whs__wstatus_t *status)
{
    whs__batch_t *b = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->batch && w->finished) {
        b = w->batch;
        *status = w->status;
        w->batch = NULL;
        w->finished = 0;
    }
    pthread_mutex_unlock(&w->lock);
    return b;
}

void whs__writer_cancel(whs__writer_t *w)
{
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->cancel, 1);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

whs__be_rc_t whs__writer_resolve(whs__writer_t *w, int32_t partition, whs__resume_t *out, char *err,
                                 size_t err_size)
{
    pthread_mutex_lock(&w->lock);
    wait_locked(w, INT64_MAX, no_request); /* a batch in flight finishes first */
    w->req = REQ_RESOLVE;
    w->partition = partition;
    w->resume = out;
    pthread_cond_broadcast(&w->wake);
    wait_locked(w, INT64_MAX, no_request);
    whs__be_rc_t rc = w->resolve_rc;
    uc__errstr(err, err_size, "%s", w->resolve_err);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

size_t whs__writer_events(whs__writer_t *w, whs__wevent_t *out, size_t max)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->nevents < max ? w->nevents : max;
    memcpy(out, w->events, n * sizeof(*out));
    memmove(w->events, w->events + n, (w->nevents - n) * sizeof(*out));
    w->nevents -= n;
    pthread_mutex_unlock(&w->lock);
    return n;
}
