/*
 * sink.c - the sink handle and its poll loop: consume a record, map it to a row (or
 * dead-letter it), add it to the filling batch, hand full or old batches to the writer, and
 * pause consumption while the writer is behind (see sink.h for who owns what).
 */
#include "sink.h"
#include "uc_time.h"
#include "uc_uuid7.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST 1024          /* records consumed between two looks at the writer and the clock */
#define PAUSE_AFTER_MS 2000 /* backpressure longer than this pauses the partitions */

void whs__sink_error(whs_sink_t *s, whs_err_t err, int retriable, const char *msg)
{
    uc__log(&s->log, retriable ? UC_LOG_WARNING : UC_LOG_ERR, "%s: %s", whs_err2name(err), msg);
    if (!s->conf->error_cb)
        return;
    s->in_callback++;
    s->conf->error_cb(err, retriable, msg, s->conf->error_opaque);
    s->in_callback--;
}

whs__pstate_t *whs__sink_part(whs_sink_t *s, int32_t partition)
{
    if (partition < 0)
        return NULL;
    if (partition >= s->nparts) {
        int32_t n = partition + 16;
        whs__pstate_t *np = realloc(s->parts, (size_t)n * sizeof(*np));
        if (!np)
            return NULL;
        for (int32_t i = s->nparts; i < n; i++)
            np[i] = (whs__pstate_t){.handed = -1, .committed = -1};
        s->parts = np;
        s->nparts = n;
    }
    return &s->parts[partition];
}

/* ---- one record ------------------------------------------------------------------------- */

static void dead_letter_record(whs_sink_t *s, const rd_kafka_message_t *m, whs__bpart_t *part)
{
    whs__dl_send(s->dl, m->payload, m->len, m->key, m->key_len, s->reason, s->s->topic,
                 m->partition, m->offset, "protobuf");
    part->dead_letters++;
    whs__stat_add(s, WHS_STAT_DEAD_LETTERS, 1);
    char msg[700];
    snprintf(msg, sizeof(msg), "partition %d offset %lld dead-lettered: %s", m->partition,
             (long long)m->offset, s->reason);
    whs__sink_error(s, WHS_ERR_MAPPING, 0, msg);
}

static void handle_record(whs_sink_t *s, const rd_kafka_message_t *m)
{
    whs__pstate_t *ps = whs__sink_part(s, m->partition);
    if (!ps || !ps->assigned || m->offset < ps->expect)
        return; /* stale: before a seek, or of a partition no longer ours */
    ps->expect = m->offset + 1;
    whs__stat_add(s, WHS_STAT_CONSUMED, 1);
    whs__bpart_t *part = whs__batch_part(s->cur, m->partition, ps->handed);
    if (!part) {
        whs__sink_error(s, WHS_ERR_NOMEM, 1, "out of memory: record dropped, partition re-read");
        whs__consumer_reseek(s, m->partition);
        return;
    }
    whs__row_t *row = NULL;
    if (whs__map(&s->mapper, m->payload, m->len, s->s->topic, m->partition, m->offset,
                 &s->cur->arena, &row, s->reason, sizeof(s->reason))) {
        dead_letter_record(s, m, part);
    } else if (ps->resume.nskips &&
               whs__resume_skips(&ps->resume, m->offset, row->dt, row->bucket)) {
        whs__stat_add(s, WHS_STAT_SKIPPED, 1);
    } else if (whs__batch_add(s->cur, row)) {
        snprintf(s->reason, sizeof(s->reason), "out of memory adding the row to its batch");
        dead_letter_record(s, m, part);
    } else {
        part->rows++;
    }
    whs__batch_note(s->cur, part, s->cur->opened_ms ? 0 : uc__mono_ms(), m->offset);
    if (ps->resume.nskips && m->offset > ps->resume.skips[ps->resume.nskips - 1].hi)
        whs__resume_free(&ps->resume); /* skips are ordered by offset: all passed */
}

/* Returns 1 for a record, 0 for nothing or a non-fatal error, -1 on a fatal error. */
static int handle_message(whs_sink_t *s, rd_kafka_message_t *m)
{
    int rc = 1;
    if (!m->err) {
        handle_record(s, m);
    } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        s->fatal = 1;
        rc = -1;
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        whs__sink_error(s, WHS_ERR_KAFKA, 1, rd_kafka_message_errstr(m));
        rc = 0;
    } else {
        rc = 0;
    }
    rd_kafka_message_destroy(m);
    return rc;
}

/* ---- the loop --------------------------------------------------------------------------- */

/*
 * Hands over what is due. While the filling batch is full and the writer busy, records are
 * not consumed (librdkafka's bounded prefetch waits for us); only when that lasts longer than
 * PAUSE_AFTER_MS are the partitions paused, so that polling (group liveness, rebalances)
 * can go on without taking records. Pausing is not the first resort: librdkafka drops its
 * prefetch on pause and takes most of a second to fetch again after resume.
 */
static int advance(whs_sink_t *s)
{
    whs__flush_service(s);
    int64_t now = uc__mono_ms();
    if (whs__flush_due(s, now))
        whs__flush_handoff(s, 0);
    int blocked = whs__flush_full(s) && (s->inflight || whs__dl_pending(s->dl));
    if (!blocked) {
        s->blocked_since = 0;
        if (s->paused)
            whs__consumer_pause(s, 0);
        return 0;
    }
    if (!s->blocked_since)
        s->blocked_since = now;
    if (!s->paused && now - s->blocked_since >= PAUSE_AFTER_MS)
        whs__consumer_pause(s, 1);
    return 1;
}

/* How long one consumer poll may block: until the deadline or the filling batch's due time.
 * While the writer is busy a due batch cannot be handed over anyway: the poll then waits for
 * records (not 0 ms, which would spin a core against the writer and the warehouse) and the
 * writer's end cuts it short (writer_done()). */
static int poll_wait(whs_sink_t *s, int64_t deadline)
{
    int wait = uc__remaining_ms(deadline);
    if (!whs__batch_empty(s->cur) && !s->inflight) {
        int64_t due = s->cur->opened_ms + s->s->batch_max_ms - uc__mono_ms();
        if (due < wait)
            wait = due < 0 ? 0 : (int)due;
    }
    if (s->inflight && wait > 50)
        wait = 50; /* see the writer's result soon */
    return wait;
}

/* Consumes up to a burst of records (no more than the batch has room for), waiting up to
 * @p wait_ms for the first. One record per call, never librdkafka 2.0's batch API: that one
 * could advance the consumer past records it then dropped at a pause, seek or rebalance
 * (fixed upstream in 2.1), and the sink pauses on backpressure. Returns the records consumed,
 * -1 when none was waiting, or -2 on a fatal error. */
static int consume_burst(whs_sink_t *s, int wait_ms)
{
    int64_t room = s->s->batch_max_rows - (int64_t)s->cur->rows;
    int max = room >= BURST ? BURST : room > 0 ? (int)room : 1;
    int n = 0, got = 0, fatal = 0;
    for (; got < max; got++) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(s->queue, got == 0 ? wait_ms : 0);
        if (!m)
            break;
        int r = handle_message(s, m); /* destroys the message */
        fatal |= r < 0;
        n += r > 0 ? r : 0;
    }
    uc__fetch_kick(&s->fetch_kick, s->rk, s->queue, BURST);
    if (got == 0)
        return -1;
    return fatal ? -2 : n;
}

int whs_poll(whs_sink_t *s, int timeout_ms)
{
    if (!s)
        return WHS_ERR_INVALID_ARG;
    if (s->in_callback)
        return WHS_ERR_RECURSIVE_CALL;
    if (s->closed || s->closing)
        return WHS_ERR_CLOSED;
    int64_t deadline = uc__deadline_ms(timeout_ms);
    int n = 0;
    for (;;) {
        int blocked = advance(s); /* once per burst: locks, the dead-letter producer */
        if (s->fatal)
            return WHS_ERR_KAFKA_FATAL;
        if (atomic_load(&s->stop))
            break;
        if (blocked && !s->paused) { /* wait for the writer, not for records */
            int left = uc__remaining_ms(deadline);
            whs__writer_wait(s->writer, left < 20 ? left : 20);
            if (uc__remaining_ms(deadline) == 0)
                break;
            continue;
        }
        int got = consume_burst(s, s->paused ? 20 : poll_wait(s, deadline));
        if (got == -2 || s->fatal)
            return WHS_ERR_KAFKA_FATAL;
        n += got > 0 ? got : 0;
        if ((got < 0 && n > 0) || uc__remaining_ms(deadline) == 0 || n >= 100000)
            break;
    }
    advance(s);
    return n;
}

whs_err_t whs_run(whs_sink_t *s)
{
    if (!s)
        return WHS_ERR_INVALID_ARG;
    while (!atomic_load(&s->stop)) {
        int rc = whs_poll(s, 500);
        if (rc < 0)
            return (whs_err_t)rc;
    }
    return WHS_OK;
}

void whs_stop(whs_sink_t *s)
{
    if (s)
        atomic_store(&s->stop, 1);
}

whs_err_t whs_flush(whs_sink_t *s, int timeout_ms)
{
    if (!s)
        return WHS_ERR_INVALID_ARG;
    if (s->in_callback)
        return WHS_ERR_RECURSIVE_CALL;
    if (s->closed)
        return WHS_ERR_CLOSED;
    return whs__flush_all(s, uc__deadline_ms(timeout_ms)) ? WHS_ERR_TIMED_OUT : WHS_OK;
}

whs_err_t whs_close(whs_sink_t *s, int timeout_ms)
{
    if (!s)
        return WHS_ERR_INVALID_ARG;
    if (s->in_callback)
        return WHS_ERR_RECURSIVE_CALL;
    if (s->closed || s->closing)
        return WHS_ERR_CLOSED;
    int64_t deadline =
        uc__deadline_ms(timeout_ms < 0 ? (int)s->s->shutdown_timeout_ms : timeout_ms);
    whs_err_t rc = whs__flush_all(s, deadline) ? WHS_ERR_TIMED_OUT : WHS_OK;
    s->closing = 1;
    if (rc != WHS_OK) {
        uc__log(&s->log, UC_LOG_WARNING,
                "close: deadline passed; %zu rows left for the next "
                "run (re-read from the warehouse offsets)",
                s->cur->rows + s->spare->rows);
        whs__flush_abandon(s);
    }
    /* Revokes (nothing is left to flush) and leaves the group; a coordinator that does not
     * answer costs the deadline (at least a second to try), never a hang. */
    if (whs__consumer_close(s, deadline > uc__mono_ms() + 1000 ? deadline : uc__mono_ms() + 1000))
        uc__log(&s->log, UC_LOG_WARNING,
                "close: the group was not left in time; it moves the partitions after "
                "session.timeout.ms");
    whs__flush_service(s);
    s->closed = 1;
    return rc;
}

/* ---- life ------------------------------------------------------------------------------- */

/* Writer thread: a request finished; a consumer poll waiting for records returns now. */
static void writer_done(void *opaque)
{
    whs_sink_t *s = opaque;
    if (s->queue)
        rd_kafka_queue_yield(s->queue);
}

/* Opens the warehouse, brings its schema up to date and starts the writer on it. */
/* WHS_OK, WHS_ERR_WAREHOUSE (may heal: not reachable yet), WHS_ERR_WAREHOUSE_FATAL (will not:
 * a path that cannot be made, a schema refused) or WHS_ERR_NOMEM. */
static whs_err_t open_warehouse(whs_sink_t *s, char *errstr, size_t errstr_size)
{
    whs__be_conf_t bc = {
        .url = s->s->warehouse_url,
        .table = s->s->table,
        .topic = s->s->topic,
        .schema = &s->schema,
        .timeout_ms = s->s->warehouse_timeout_ms,
        .gzip = s->s->clickhouse_compression == WHS__CH_AUTO   ? -1
                : s->s->clickhouse_compression == WHS__CH_GZIP ? 1
                                                               : 0,
        .zstd_level = (int)s->s->file_compression_level,
        .fsync = s->s->file_fsync,
        .log = &s->log,
    };
    char masked[512];
    int added = 0;
    whs__url_mask(s->s->warehouse_url, masked, sizeof(masked));
    whs__be_rc_t rc = whs__backend_open(&bc, &s->be, errstr, errstr_size);
    if (rc == WHS__BE_OK)
        rc = s->be->ops->ensure_schema(s->be, &added, errstr, errstr_size);
    if (rc != WHS__BE_OK)
        return rc == WHS__BE_RETRY ? WHS_ERR_WAREHOUSE : WHS_ERR_WAREHOUSE_FATAL;
    whs__stat_add(s, WHS_STAT_COLUMNS_ADDED, added);
    uc__log(&s->log, UC_LOG_INFO, "warehouse %s, table %s ready (%d columns added)", masked,
            s->s->table, added);
    whs__writer_conf_t wc = {
        .be = s->be,
        .dl = s->dl,
        .topic = s->s->topic,
        .schema = &s->schema,
        .backoff_ms = s->s->retry_backoff_ms,
        .backoff_max_ms = s->s->retry_backoff_max_ms,
        .log = &s->log,
        .stats = s->stats,
        .on_done = writer_done,
        .on_done_opaque = s,
    };
    if (!(s->writer = whs__writer_new(&wc))) {
        uc__errstr(errstr, errstr_size, "cannot start the writer thread");
        return WHS_ERR_NOMEM;
    }
    int group_by = s->be->ops->group_by;
    whs__batch_init(&s->batches[0], group_by);
    whs__batch_init(&s->batches[1], group_by);
    s->cur = &s->batches[0];
    s->spare = &s->batches[1];
    return 0;
}

static whs_err_t start(whs_sink_t *s, char *errstr, size_t errstr_size)
{
    if (!s->s->warehouse_url) {
        uc__errstr(errstr, errstr_size, "warehouse.url is not set");
        return WHS_ERR_CONF_INVALID;
    }
    whs__schema_init(&s->schema, s->conf->promote, s->conf->npromote);
    whs__mapper_init(&s->mapper, &s->schema, s->s);
    char bootstrap[512];
    size_t size = sizeof(bootstrap);
    if (rd_kafka_conf_get(s->conf->kconf, "bootstrap.servers", bootstrap, &size) || !*bootstrap) {
        uc__errstr(errstr, errstr_size, "kafka.bootstrap.servers is not set");
        return WHS_ERR_CONF_INVALID;
    }
    uc__random_bytes(&s->batch_seq, sizeof(s->batch_seq));
    s->batch_seq &= ~(uint64_t)0xffffffff; /* the low half counts batches */
    if (s->s->dead_letter_topic && !(s->dl = whs__dl_new(s->conf->kconf, s->s->dead_letter_topic,
                                                         &s->log, errstr, errstr_size)))
        return WHS_ERR_KAFKA_INIT;
    whs_err_t rc = open_warehouse(s, errstr, errstr_size);
    if (rc != WHS_OK)
        return rc;
    whs__batch_reset(s->cur, ++s->batch_seq);
    return whs__consumer_start(s, errstr, errstr_size) ? WHS_ERR_KAFKA_INIT : WHS_OK;
}

/* Frees what start() made; @p s->conf stays. */
static void teardown(whs_sink_t *s)
{
    whs__writer_destroy(s->writer); /* first: it uses the backend and the dead letters */
    if (s->queue)
        rd_kafka_queue_destroy(s->queue);
    if (s->rk) /* closed by whs_close() already; no rebalance callback after this point */
        rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (s->be)
        s->be->ops->close(s->be);
    whs__dl_destroy(s->dl, (int)s->s->shutdown_timeout_ms);
    for (int32_t i = 0; i < s->nparts; i++)
        whs__resume_free(&s->parts[i].resume);
    free(s->parts);
    whs__batch_free(&s->batches[0]);
    whs__batch_free(&s->batches[1]);
    whs__mapper_free(&s->mapper);
}

whs_err_t whs_sink_open(whs_conf_t *conf, whs_sink_t **out, char *errstr, size_t errstr_size)
{
    if (out)
        *out = NULL;
    if (!conf || !out) {
        uc__errstr(errstr, errstr_size, "conf and out must not be NULL");
        return WHS_ERR_INVALID_ARG;
    }
    whs_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return WHS_ERR_NOMEM;
    }
    s->conf = conf;
    s->s = &conf->s;
    s->log = (uc__logger_t){whs__conf_log_level(conf), "whsink", conf->log_cb, conf->log_opaque};
    uc__kstats_init(&s->kstats);
    whs_err_t rc = start(s, errstr, errstr_size);
    if (rc != WHS_OK) {
        teardown(s);
        uc__kstats_free(&s->kstats);
        free(s);
        return rc; /* the caller still owns conf */
    }
    *out = s;
    return WHS_OK;
}

whs_sink_t *whs_sink_new(whs_conf_t *conf, char *errstr, size_t errstr_size)
{
    whs_sink_t *s = NULL;
    whs_sink_open(conf, &s, errstr, errstr_size);
    return s;
}

whs_err_t whs_sink_destroy(whs_sink_t *s)
{
    if (!s)
        return WHS_OK;
    if (s->in_callback)
        return WHS_ERR_RECURSIVE_CALL;
    if (!s->closed)
        whs_close(s, -1);
    teardown(s);
    uc__kstats_free(&s->kstats);
    whs_conf_destroy(s->conf);
    free(s);
    return WHS_OK;
}

size_t whs_kafka_stats_json(whs_sink_t *s, char *buf, size_t size)
{
    return s ? uc__kstats_copy(&s->kstats, buf, size) : 0;
}
