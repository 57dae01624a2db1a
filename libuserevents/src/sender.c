/*
 * sender.c - the client's background thread: takes batches from the queue, appends each to
 * the spool as one frame, hands records to the transport in spool order, and turns results
 * into spool acknowledgements, statistics and delivery callbacks.
 *
 * With a spool there are two modes. "Direct": the sender is caught up, so a batch goes to the
 * transport straight from memory right after it is spooled. "Behind": the transport pushed
 * back (broker down, queue full) or an earlier process left records; new batches only go to
 * disk and the sender reads records back from the spool in order until it catches up.
 * Memory stays bounded either way, and one user's events keep their order.
 */
#include "client.h"
#include "uc_time.h"

#include <stdlib.h>

#define IDLE_WAIT_MS 50 /* longest wait for new events while nothing else is due */
#define STOP_PURGE_MS 2000

static void pending_push(ue_client_t *c, ue__record_t *rec)
{
    rec->next = NULL;
    if (c->pending_tail)
        c->pending_tail->next = rec;
    else
        c->pending_head = rec;
    c->pending_tail = rec;
}

static ue__record_t *pending_pop(ue_client_t *c)
{
    ue__record_t *rec = c->pending_head;
    if (rec) {
        c->pending_head = rec->next;
        if (!c->pending_head)
            c->pending_tail = NULL;
        rec->next = NULL;
    }
    return rec;
}

/* @p rec is resolved (delivered, failed or dropped): one fewer to wait for. A record sent
 * without the spool after a failed write (seq 0 with a spool) leaves ue_flush_spooled()'s
 * count of those. */
static void resolved(ue_client_t *c, const ue__record_t *rec)
{
    if (c->spool && rec->seq == 0)
        atomic_fetch_sub(&c->unspooled, 1);
    ue__snd_resolved(c, 1);
}

/* A record that will never be delivered: counted, reported, and out of the spool. */
static void fail_record(ue_client_t *c, ue__record_t *rec, ue_err_t err, const char *reason)
{
    ue__snd_add(c, UE_STAT_FAILED, 1);
    if (c->spool)
        ue__spool_ack(c->spool, rec->seq);
    ue__client_report(c, rec->event_id, ue__record_type(rec), UE_OUTCOME_FAILED, err, reason);
    resolved(c, rec);
    free(rec);
}

/* Hands @p rec to the transport. Returns 0 when it took or failed it, 1 when it is full. */
static int send_one(ue_client_t *c, ue__record_t *rec)
{
    char errstr[256];
    size_t bytes = rec->payload_len;
    int rc = c->transport->ops->send(c->transport, rec, errstr, sizeof(errstr));
    if (rc == UE__SEND_FULL)
        return 1;
    if (rc == UE__SEND_FAILED) {
        fail_record(c, rec, UE_ERR_BROKER, errstr);
        return 0;
    }
    ue__snd_add(c, UE_STAT_SENT, 1);
    ue__snd_add(c, UE_STAT_BYTES_SENT, (int64_t)bytes);
    return 0;
}

/* Sends what waits in the pending list; 1 when the transport is still full. */
static int send_pending(ue_client_t *c)
{
    ue__record_t *rec;
    while ((rec = pending_pop(c))) {
        if (send_one(c, rec)) {
            rec->next = c->pending_head; /* back to the front: order matters */
            c->pending_head = rec;
            if (!c->pending_tail)
                c->pending_tail = rec;
            return 1;
        }
    }
    return 0;
}

/* Sends a batch from memory; what does not fit goes to the pending list. */
static void send_batch(ue_client_t *c, ue__record_t *batch)
{
    while (batch) {
        ue__record_t *next = batch->next;
        if (c->pending_head || send_one(c, batch))
            pending_push(c, batch);
        batch = next;
    }
}

/* Behind mode: reads records back from the spool until caught up or the transport is full. */
static void send_from_spool(ue_client_t *c)
{
    ue__record_t *rec;
    int rc;
    while ((rc = ue__spool_next_unsent(c->spool, &rec)) == 1) {
        if (rec->from_replay)
            ue__snd_add(c, UE_STAT_REPLAYED, 1);
        if (send_one(c, rec)) {
            pending_push(c, rec); /* the cursor moved past it: keep it in memory */
            return;
        }
    }
    if (rc == 0)
        c->direct = 1;
    else
        uc__log(&c->log, UC_LOG_ERR, "spool: a segment could not be read back; skipped");
}

static void pump_spooled(ue_client_t *c, ue__record_t *batch, size_t n)
{
    if (batch) {
        int was_caught_up = ue__spool_caught_up(c->spool);
        if (ue__spool_append(c->spool, batch, n) != 0) {
            /* Disk full or gone: still send, without the crash guarantee for this batch;
             * ue_flush_spooled() waits for their acknowledgement instead. */
            atomic_fetch_add(&c->unspooled, n);
            ue__snd_add(c, UE_STAT_SPOOL_WRITE_FAILED, (int64_t)n);
            for (ue__record_t *r = batch; r; r = r->next)
                r->seq = 0;
            send_batch(c, batch);
        } else if (c->direct && was_caught_up && !c->pending_head) {
            for (ue__record_t *r = batch; r; r = r->next)
                ue__spool_mark_sent(c->spool, r->seq);
            send_batch(c, batch); /* what does not fit waits in pending, already marked */
        } else {
            c->direct = 0;
            ue__record_free_list(batch); /* on disk; read back when the transport has room */
        }
    }
    if (!c->direct && !c->pending_head)
        send_from_spool(c);
}

/* For ue_flush_spooled(): everything taken from the queue so far is spooled (or was dropped
 * from the queue). Called after pump_spooled(), the only place that takes from the queue. */
static void mark_safe(ue_client_t *c)
{
    uint64_t taken = ue__queue_taken(&c->queue);
    if (taken != atomic_load(&c->safe_through)) {
        atomic_store(&c->safe_through, taken);
        c->safe_moved = 1;
    }
}

static void report_queue_drops(ue_client_t *c)
{
    ue__record_t *rec = ue__queue_take_dropped(&c->queue);
    while (rec) {
        ue__record_t *next = rec->next;
        ue__client_report(c, rec->event_id, ue__record_type(rec), UE_OUTCOME_DROPPED,
                          UE_ERR_QUEUE_FULL, "in-memory queue full");
        free(rec);
        rec = next;
    }
}

static void sync_spool(ue_client_t *c)
{
    ue__spool_drops_t drops = {0};
    ue__spool_sync(c->spool, &drops);
    if (drops.full || drops.expired) {
        uc__log(&c->log, UC_LOG_WARNING,
                "spool: dropped %llu event(s) over spool.max.bytes, %llu over spool.max.age.ms",
                (unsigned long long)drops.full, (unsigned long long)drops.expired);
        ue__snd_add(c, UE_STAT_DROPPED_SPOOL_FULL, (int64_t)drops.full);
        ue__snd_add(c, UE_STAT_DROPPED_SPOOL_AGE, (int64_t)drops.expired);
        ue__snd_resolved(c, (int64_t)(drops.full + drops.expired));
    }
    atomic_store(&c->stats[UE_STAT_SPOOLED].v, (int64_t)ue__spool_pending(c->spool));
    atomic_store(&c->stats[UE_STAT_SPOOL_BYTES].v, (int64_t)ue__spool_bytes(c->spool));
}

/* One turn of the loop: results, drops, then new work. */
static void turn(ue_client_t *c)
{
    const ue__settings_t *s = &c->conf->s;
    int hurry = atomic_load(&c->flush_requests) > 0 || atomic_load(&c->stopping);
    int full = c->pending_head && send_pending(c);
    size_t n = 0;

    c->transport->ops->poll(c->transport, 0);
    report_queue_drops(c);
    ue__record_t *batch = NULL;
    if (!full || c->spool) { /* with a spool, new events go to disk even while full */
        int idle = c->spool && !c->direct ? 0 : IDLE_WAIT_MS;
        batch = ue__queue_pop_batch(&c->queue, (size_t)s->batch_max_events,
                                    (size_t)s->batch_max_bytes, hurry ? 0 : idle,
                                    hurry ? 0 : (int)s->linger_ms, &n);
    }
    if (c->spool) {
        pump_spooled(c, batch, n);
        if (atomic_load(&c->flush_requests) > 0)
            mark_safe(c);
    } else if (batch)
        send_batch(c, batch);
    if (full || (c->spool && !c->direct) || (!batch && c->transport->ops->in_flight(c->transport)))
        c->transport->ops->poll(c->transport, full ? 10 : 1); /* wait for room or results */
    if (c->spool)
        sync_spool(c);
    ue__sender_publish(c);
    ue__client_wake_flushers(c);
}

void ue__sender_publish(ue_client_t *c)
{
    for (int i = 0; i < UE_STAT__CNT; i++) {
        if (c->snd_stats[i]) {
            atomic_fetch_add_explicit(&c->stats[i].v, c->snd_stats[i], memory_order_relaxed);
            c->snd_stats[i] = 0;
        }
    }
    if (c->snd_resolved) {
        atomic_fetch_add_explicit(&c->resolved.v, c->snd_resolved, memory_order_relaxed);
        c->snd_resolved = 0;
    }
}

/* Stop: whatever is not acknowledged stays in the spool, or is dropped without one. */
static void shut_down(ue_client_t *c)
{
    size_t n;
    ue__record_t *rest;
    while ((rest = ue__queue_pop_batch(&c->queue, SIZE_MAX, SIZE_MAX, 0, 0, &n))) {
        if (c->spool && ue__spool_append(c->spool, rest, n) == 0) {
            ue__record_free_list(rest);
            continue;
        }
        if (c->spool) {
            atomic_fetch_add(&c->unspooled, n);
            ue__snd_add(c, UE_STAT_SPOOL_WRITE_FAILED, (int64_t)n);
        }
        for (ue__record_t *r = rest, *next; r; r = next) {
            next = r->next; /* pending_push() clears r->next */
            pending_push(c, r);
        }
    }
    c->transport->ops->purge(c->transport, STOP_PURGE_MS);
    report_queue_drops(c);
    for (ue__record_t *rec; (rec = pending_pop(c));)
        ue__sender_on_result(c, rec, UE_ERR_SHUTDOWN, "client destroyed", 1);
    if (c->spool)
        sync_spool(c);
    ue__sender_publish(c);
}

void *ue__sender_main(void *arg)
{
    ue_client_t *c = arg;
    while (!atomic_load(&c->stopping))
        turn(c);
    shut_down(c);
    return NULL;
}

void ue__sender_on_retry(void *owner, const ue__record_t *rec, ue_err_t err, const char *reason)
{
    ue_client_t *c = owner;
    ue__snd_add(c, UE_STAT_RETRIES, 1);
    ue__client_report(c, rec->event_id, ue__record_type(rec), UE_OUTCOME_FAILED_RETRY, err,
                      reason);
}

void ue__sender_on_result(void *owner, ue__record_t *rec, ue_err_t err, const char *reason,
                          int retriable)
{
    ue_client_t *c = owner;
    const char *type = ue__record_type(rec);

    if (err == UE_OK) {
        ue__snd_add(c, UE_STAT_DELIVERED, 1);
        if (c->spool)
            ue__spool_ack(c->spool, rec->seq);
        ue__client_report(c, rec->event_id, type, UE_OUTCOME_DELIVERED, UE_OK, "");
        resolved(c, rec);
        free(rec);
    } else if (err == UE_ERR_SHUTDOWN && atomic_load(&c->stopping)) {
        if (!c->spool || rec->seq == 0) { /* nowhere to keep it */
            ue__snd_add(c, UE_STAT_DROPPED_SHUTDOWN, 1);
            ue__client_report(c, rec->event_id, type, UE_OUTCOME_DROPPED, err, reason);
            resolved(c, rec);
        }
        free(rec); /* with a spool: still there, the next process sends it */
    } else if (retriable) {
        ue__snd_add(c, UE_STAT_RETRIES, 1);
        ue__client_report(c, rec->event_id, type, UE_OUTCOME_FAILED_RETRY, err, reason);
        pending_push(c, rec);
    } else {
        fail_record(c, rec, err, reason);
    }
}
