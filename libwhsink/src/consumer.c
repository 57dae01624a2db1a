/*
 * consumer.c - the Kafka side of a sink: one consumer in a group, read_committed, with
 * offsets the sink manages itself.
 *
 * On assignment the sink asks the warehouse where each partition stands (through the writer
 * thread, retrying while the warehouse is down) and assigns the partitions at exactly those
 * offsets; the group's committed offsets are only used where the warehouse holds nothing and
 * "offset.fallback" says so. On revocation the batch is committed within
 * "rebalance.timeout.ms" or dropped (never half-written): the next owner resumes from the
 * warehouse either way. Both eager and cooperative rebalancing are handled.
 */
#include "sink.h"
#include "uc_kclose.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Waits with full jitter before the next try, in small steps so whs_stop() is seen. */
static void sleep_backoff(whs_sink_t *s, int attempt)
{
    int64_t ceiling = s->s->retry_backoff_ms;
    for (int i = 0; i < attempt && ceiling < s->s->retry_backoff_max_ms; i++)
        ceiling *= 2;
    if (ceiling > s->s->retry_backoff_max_ms)
        ceiling = s->s->retry_backoff_max_ms;
    uint32_t r;
    uc__random_bytes(&r, sizeof(r));
    int64_t until = uc__mono_ms() + (ceiling > 1 ? (int64_t)(r % (uint32_t)ceiling) : 1);
    while (!atomic_load(&s->stop) && uc__mono_ms() < until) {
        struct timespec step = {0, 20 * 1000000};
        nanosleep(&step, NULL);
    }
}

int whs__consumer_resolve(whs_sink_t *s, int32_t partition, int64_t *start)
{
    whs__pstate_t *ps = whs__sink_part(s, partition);
    char err[512];
    if (!ps)
        return -1;
    for (int attempt = 0;; attempt++) {
        whs__resume_t r = {0};
        whs__be_rc_t rc = whs__writer_resolve(s->writer, partition, &r, err, sizeof(err));
        if (rc == WHS__BE_OK) {
            whs__resume_free(&ps->resume);
            ps->resume = r;
            ps->handed = ps->committed = r.next_offset;
            ps->expect = r.next_offset < 0 ? 0 : r.next_offset;
            *start = r.next_offset;
            if (r.nskips)
                uc__log(&s->log, UC_LOG_NOTICE,
                        "partition %d: resuming at %lld with %zu "
                        "ranges already loaded past it",
                        partition, (long long)r.next_offset, r.nskips);
            return 0;
        }
        whs__resume_free(&r);
        whs__stat_add(s, WHS_STAT_RETRIES, 1);
        whs__sink_error(s, WHS_ERR_WAREHOUSE, 1, err);
        if (atomic_load(&s->stop) || s->closing)
            return -1;
        sleep_backoff(s, attempt);
    }
}

/* The offset to start @p partition at when the warehouse holds @p start (-1: nothing). */
static int64_t start_offset(const whs_sink_t *s, int64_t start)
{
    if (start >= 0)
        return start;
    switch (s->s->offset_fallback) {
    case WHS__FALLBACK_LATEST: return RD_KAFKA_OFFSET_END;
    case WHS__FALLBACK_GROUP: return RD_KAFKA_OFFSET_STORED;
    default: return RD_KAFKA_OFFSET_BEGINNING;
    }
}

static void on_assign(whs_sink_t *s, rd_kafka_topic_partition_list_t *parts, int cooperative)
{
    /* The writer's batch (if any) must finish first: it may change where a partition is. */
    while (!whs__writer_wait(s->writer, 100) && !atomic_load(&s->stop))
        ;
    whs__flush_service(s);
    for (int i = 0; i < parts->cnt; i++) {
        int64_t start = -1;
        whs__pstate_t *ps = whs__sink_part(s, parts->elems[i].partition);
        if (whs__consumer_resolve(s, parts->elems[i].partition, &start) == 0 && ps)
            ps->assigned = 1;
        parts->elems[i].offset = start_offset(s, start);
    }
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative)
        error = rd_kafka_incremental_assign(s->rk, parts);
    else
        err = rd_kafka_assign(s->rk, parts);
    if (error || err) {
        whs__sink_error(s, WHS_ERR_KAFKA, 1,
                        error ? rd_kafka_error_string(error) : rd_kafka_err2str(err));
        if (error)
            rd_kafka_error_destroy(error);
    }
    if (s->paused) /* newly assigned partitions wait like the others */
        rd_kafka_pause_partitions(s->rk, parts);
}

static void on_revoke(whs_sink_t *s, rd_kafka_topic_partition_list_t *parts, int cooperative)
{
    int64_t deadline = uc__mono_ms() + s->s->rebalance_timeout_ms;
    if (s->closing || atomic_load(&s->stop) || whs__flush_all(s, deadline)) {
        for (int i = 0; i < parts->cnt; i++) {
            whs__pstate_t *ps = whs__sink_part(s, parts->elems[i].partition);
            if (ps)
                ps->assigned = 0;
        }
        whs__flush_abandon(s); /* what was not committed is re-read by the next owner */
        whs__flush_all(s, deadline);
    }
    for (int i = 0; i < parts->cnt; i++) {
        whs__pstate_t *ps = whs__sink_part(s, parts->elems[i].partition);
        if (ps) {
            ps->assigned = 0;
            whs__resume_free(&ps->resume);
        }
    }
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(s->rk, parts);
        if (error)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(s->rk, NULL);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    whs_sink_t *s = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    whs__stat_add(s, WHS_STAT_REBALANCES, 1);
    uc__log(&s->log, UC_LOG_INFO, "%s %d partitions",
            err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoked", parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(s, parts, cooperative);
    else
        on_revoke(s, parts, cooperative);
}

int whs__consumer_close(whs_sink_t *s, int64_t deadline)
{
    return uc__consumer_close(s->rk, rebalance_cb, s, deadline);
}

void whs__consumer_reseek(whs_sink_t *s, int32_t partition)
{
    int64_t start = -1;
    if (whs__consumer_resolve(s, partition, &start))
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->s->topic, partition)->offset = start_offset(s, start);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(s->rk, l, 10000);
    if (error) {
        whs__sink_error(s, WHS_ERR_KAFKA, 1, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void whs__consumer_pause(whs_sink_t *s, int pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (pause == s->paused || rd_kafka_assignment(s->rk, &l) || !l) {
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    if (pause)
        rd_kafka_pause_partitions(s->rk, l);
    else
        rd_kafka_resume_partitions(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    s->paused = pause;
    whs__stat_set(s, WHS_STAT_PAUSED, pause);
    if (pause)
        whs__stat_add(s, WHS_STAT_PAUSES, 1);
}

void whs__consumer_commit_hint(whs_sink_t *s, const whs__batch_t *b)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)b->nparts);
    for (size_t i = 0; i < b->nparts; i++) {
        whs__pstate_t *ps = whs__sink_part(s, b->parts[i].partition);
        if (ps && ps->assigned)
            rd_kafka_topic_partition_list_add(l, s->s->topic, b->parts[i].partition)->offset =
                b->parts[i].next;
    }
    if (l->cnt > 0)
        rd_kafka_commit(s->rk, l, 1); /* async: only a hint, its failures do not matter */
    rd_kafka_topic_partition_list_destroy(l);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    whs_sink_t *s = rd_kafka_opaque(rk);
    uc__log(&s->log, level, "rdkafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    whs_sink_t *s = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        s->fatal = 1;
        whs__sink_error(s, WHS_ERR_KAFKA_FATAL, 0, fatal);
        return;
    }
    whs__sink_error(s, WHS_ERR_KAFKA, 1, reason);
}

/* librdkafka's statistics (served with the consumer queue): kept for whs_kafka_stats_json(). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    uc__kstats_store(&((whs_sink_t *)opaque)->kstats, json, json_len);
    return 0; /* librdkafka frees its own buffer */
}

int whs__consumer_start(whs_sink_t *s, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *kconf = rd_kafka_conf_dup(s->conf->kconf);
    rd_kafka_conf_set_opaque(kconf, s);
    rd_kafka_conf_set_rebalance_cb(kconf, rebalance_cb);
    rd_kafka_conf_set_log_cb(kconf, log_cb);
    rd_kafka_conf_set_error_cb(kconf, error_cb);
    rd_kafka_conf_set_stats_cb(kconf, stats_cb);
    uc__fetch_kick_init(&s->fetch_kick, kconf);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
    if (!s->rk) {
        rd_kafka_conf_destroy(kconf);
        return -1;
    }
    rd_kafka_poll_set_consumer(s->rk);
    s->queue = rd_kafka_queue_get_consumer(s->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, s->s->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(s->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        uc__errstr(errstr, errstr_size, "subscribe to %s: %s", s->s->topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}
