/*
 * flush.c - the two batches of a sink: one filling on the caller's thread, one in flight with
 * the writer. A full or old filling batch is handed over as soon as the writer is free and
 * the dead letters of its records are acknowledged; a finished one is taken back, reported
 * (commit callback, Kafka offset hint, statistics) and reused for filling.
 */
#include "sink.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <stdio.h>
#include <string.h>

int whs__flush_full(whs_sink_t *s)
{
    const whs__batch_t *b = s->cur;
    return (int64_t)b->rows >= s->s->batch_max_rows || (int64_t)b->bytes >= s->s->batch_max_bytes;
}

/* Full, old, or a quarter full while the writer is idle: a writer with nothing to do takes a
 * smaller batch now rather than a bigger one later (batches grow again under load). */
int whs__flush_due(whs_sink_t *s, int64_t now_ms)
{
    const whs__batch_t *b = s->cur;
    if (whs__batch_empty(b))
        return 0;
    if (!s->inflight && ((int64_t)b->rows * 4 >= s->s->batch_max_rows ||
                         (int64_t)b->bytes * 4 >= s->s->batch_max_bytes))
        return 1;
    return whs__flush_full(s) || now_ms - b->opened_ms >= s->s->batch_max_ms;
}

void whs__flush_gauges(whs_sink_t *s)
{
    if (!s->cur) /* before the first assignment there is no batch yet */
        return;
    int64_t rows = (int64_t)s->cur->rows, bytes = (int64_t)s->cur->bytes;
    if (s->inflight) {
        rows += (int64_t)s->spare->rows;
        bytes += (int64_t)s->spare->bytes;
    }
    whs__stat_set(s, WHS_STAT_BUFFERED_ROWS, rows);
    whs__stat_set(s, WHS_STAT_BUFFERED_BYTES, bytes);
}

static void report_committed(whs_sink_t *s, whs__batch_t *b)
{
    int64_t rows = 0;
    for (size_t i = 0; i < b->nparts; i++) {
        const whs__bpart_t *p = &b->parts[i];
        whs__pstate_t *ps = whs__sink_part(s, p->partition);
        if (ps)
            ps->committed = p->next;
        rows += p->rows;
        if (s->conf->commit_cb) {
            s->in_callback++;
            s->conf->commit_cb(s->conf->s.topic, p->partition, p->next, p->rows, p->dead_letters,
                               s->conf->commit_opaque);
            s->in_callback--;
        }
    }
    whs__stat_add(s, WHS_STAT_ROWS_LOADED, rows);
    whs__stat_add(s, WHS_STAT_BYTES_LOADED, (int64_t)b->handed_bytes);
    whs__stat_add(s, WHS_STAT_BATCHES, 1);
    whs__stat_set(s, WHS_STAT_LAST_COMMIT_MS, uc__wall_ms());
    whs__consumer_commit_hint(s, b);
    uc__log(&s->log, UC_LOG_DEBUG, "batch %llx committed: %lld rows, %zu partitions",
            (unsigned long long)b->id, (long long)rows, b->nparts);
}

/* A batch that did not commit: its partitions (and their records in the filling batch,
 * whose fencing base is now wrong) restart from what the warehouse holds. */
static void report_dropped(whs_sink_t *s, whs__batch_t *b, whs__wstatus_t st)
{
    if (st == WHS__W_FENCED)
        whs__stat_add(s, WHS_STAT_FENCED, 1);
    for (size_t i = 0; i < b->nparts; i++) {
        int32_t partition = b->parts[i].partition;
        whs__batch_drop_partition(s->cur, partition);
        whs__pstate_t *ps = whs__sink_part(s, partition);
        if (ps && ps->assigned && !s->closing)
            whs__consumer_reseek(s, partition);
    }
}

static void drain_events(whs_sink_t *s)
{
    whs__wevent_t ev[8];
    size_t n;
    while ((n = whs__writer_events(s->writer, ev, 8)) > 0)
        for (size_t i = 0; i < n; i++)
            whs__sink_error(s, ev[i].err, ev[i].retriable, ev[i].msg);
    int64_t failed = whs__dl_take_failed(s->dl);
    if (failed > 0) {
        char msg[128];
        whs__stat_add(s, WHS_STAT_DEAD_LETTER_FAILED, failed);
        snprintf(msg, sizeof(msg), "%lld dead letters could not be delivered", (long long)failed);
        whs__sink_error(s, WHS_ERR_DEAD_LETTER, 0, msg);
    }
}

void whs__flush_service(whs_sink_t *s)
{
    whs__wstatus_t st;
    whs__batch_t *b = s->inflight ? whs__writer_take(s->writer, &st) : NULL;
    if (b) {
        s->inflight = 0;
        if (st == WHS__W_COMMITTED)
            report_committed(s, b);
        else
            report_dropped(s, b, st);
    }
    drain_events(s);
    whs__flush_gauges(s);
}

int whs__flush_handoff(whs_sink_t *s, int dl_wait_ms)
{
    if (whs__batch_empty(s->cur) || s->inflight)
        return 0;
    if (whs__dl_pending(s->dl) && whs__dl_flush(s->dl, dl_wait_ms))
        return 0; /* a batch commits only once its dead letters are safe */
    whs__batch_t *b = s->cur;
    for (size_t i = 0; i < b->nparts; i++) {
        whs__pstate_t *ps = whs__sink_part(s, b->parts[i].partition);
        if (ps)
            ps->handed = b->parts[i].next;
    }
    whs__batch_sort(b);
    b->handed_bytes = b->bytes;
    s->cur = s->spare;
    s->spare = b;
    whs__batch_reset(s->cur, ++s->batch_seq);
    s->inflight = 1;
    whs__writer_submit(s->writer, b);
    whs__flush_gauges(s);
    return 1;
}

int whs__flush_all(whs_sink_t *s, int64_t deadline)
{
    for (;;) {
        whs__flush_service(s);
        if (!s->inflight && whs__batch_empty(s->cur))
            return 0;
        int left = uc__remaining_ms(deadline);
        if (left == 0)
            return -1;
        if (!s->inflight && whs__flush_handoff(s, left))
            continue;
        whs__writer_wait(s->writer, left < 100 ? left : 100);
    }
}

void whs__flush_abandon(whs_sink_t *s)
{
    if (s->inflight) {
        whs__writer_cancel(s->writer);
        whs__writer_wait(s->writer, -1); /* bounded by one warehouse request */
        whs__flush_service(s);
    }
    for (size_t i = 0; i < s->cur->nparts; i++) {
        whs__pstate_t *ps = whs__sink_part(s, s->cur->parts[i].partition);
        if (ps && ps->assigned && !s->closing)
            whs__consumer_reseek(s, s->cur->parts[i].partition);
    }
    whs__batch_reset(s->cur, ++s->batch_seq);
    whs__flush_gauges(s);
}
