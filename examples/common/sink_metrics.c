/*
 * sink_metrics.c - a libwhsink sink as metric families (see sink_metrics.h). One table says
 * where each whs_stat_t goes; the callbacks add what the statistics do not hold.
 */
#include "sink_metrics.h"
#include "kafka_metrics.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COUNTER, GAUGE };

/* clang-format off */
static const struct {
    whs_stat_t stat;
    int type;
    const char *name, *label, *value, *help; /* label=value: one series of a shared family */
    double scale;                            /* 0: as is */
} STATS[] = {
    {WHS_STAT_CONSUMED, COUNTER, "userevents_sink_events_in_total", NULL, NULL,
     "Records consumed from the enriched topic.", 0},
    {WHS_STAT_ROWS_LOADED, COUNTER, "userevents_sink_events_out_total", NULL, NULL,
     "Rows (one per event) committed to the warehouse.", 0},
    {WHS_STAT_BYTES_LOADED, COUNTER, "userevents_sink_loaded_bytes_total", NULL, NULL,
     "Bytes of the rows committed (their in-memory size).", 0},
    {WHS_STAT_BATCHES, COUNTER, "userevents_sink_batches_total", NULL, NULL,
     "Batches committed to the warehouse.", 0},
    {WHS_STAT_DEAD_LETTERS, COUNTER, "userevents_sink_dead_letters_total", NULL, NULL,
     "Records or rows sent to the dead-letter topic.", 0},
    {WHS_STAT_DEAD_LETTER_FAILED, COUNTER, "userevents_sink_dead_letter_failures_total", NULL,
     NULL, "Dead letters that could not be delivered.", 0},
    {WHS_STAT_SKIPPED, COUNTER, "userevents_sink_dropped_total", "reason", "already_loaded",
     "Records dropped, by reason: already_loaded (the warehouse holds them).", 0},
    {WHS_STAT_RETRIES, COUNTER, "userevents_sink_warehouse_retries_total", NULL, NULL,
     "Warehouse operations that failed and were retried.", 0},
    {WHS_STAT_FENCED, COUNTER, "userevents_sink_fenced_batches_total", NULL, NULL,
     "Batches dropped because another sink moved the partition on (re-read).", 0},
    {WHS_STAT_PAUSES, COUNTER, "userevents_sink_pauses_total", NULL, NULL,
     "Times consumption paused because the warehouse was slower than Kafka.", 0},
    {WHS_STAT_PAUSED, GAUGE, "userevents_sink_paused", NULL, NULL,
     "1 while consumption is paused for backpressure.", 0},
    {WHS_STAT_BUFFERED_ROWS, GAUGE, "userevents_sink_buffered_rows", NULL, NULL,
     "Rows in memory, batched or being written.", 0},
    {WHS_STAT_BUFFERED_BYTES, GAUGE, "userevents_sink_buffered_bytes", NULL, NULL,
     "Bytes of the rows in memory.", 0},
    {WHS_STAT_REBALANCES, COUNTER, "userevents_sink_rebalances_total", NULL, NULL,
     "Partition assignments and revocations.", 0},
    {WHS_STAT_COLUMNS_ADDED, COUNTER, "userevents_sink_columns_added_total", NULL, NULL,
     "Columns added to the table at start.", 0},
    {WHS_STAT_LAST_COMMIT_MS, GAUGE, "userevents_sink_last_commit_timestamp_seconds", NULL,
     NULL, "Wall-clock time of the last warehouse commit (0: none yet).", 1e-3},
};
/* clang-format on */
#define NSTATS (sizeof(STATS) / sizeof(STATS[0]))

struct sink_metrics {
    metric_t *family[NSTATS];
    metric_t *errors, *warehouse_errors, *commit_rows;
    kafka_metrics_t *kafka; /* consumer lag and broker health from librdkafka's statistics */
    _Atomic(whs_sink_t *) sink;
};

static size_t kafka_stats(void *sink, char *buf, size_t size)
{
    return whs_kafka_stats_json(sink, buf, size);
}

static void collect(metrics_t *m, void *opaque)
{
    sink_metrics_t *s = opaque;
    whs_sink_t *sink = atomic_load(&s->sink);
    (void)m;
    if (!sink)
        return;
    for (size_t i = 0; i < NSTATS; i++) {
        int64_t v = whs_stat(sink, STATS[i].stat);
        if (v >= 0)
            metric_set(s->family[i], STATS[i].value ? (const char *[]){STATS[i].value} : NULL,
                       STATS[i].scale ? (double)v * STATS[i].scale : (double)v);
    }
    kafka_metrics_refresh(s->kafka, kafka_stats, sink);
}

void sink_metrics_on_error(sink_metrics_t *s, whs_err_t err, int retriable)
{
    char name[64];
    const char *full = whs_err2name(err); /* "WHS_ERR_WAREHOUSE": "warehouse" */
    size_t n = 0;
    if (!s)
        return;
    if (!strncmp(full, "WHS_ERR_", 8))
        full += 8;
    for (const char *c = full; *c && n < sizeof(name) - 1; c++)
        name[n++] = (char)tolower((unsigned char)*c);
    name[n] = '\0';
    const char *r = retriable ? "true" : "false";
    metric_add(s->errors, (const char *[]){name, r}, 1);
    if (err == WHS_ERR_WAREHOUSE || err == WHS_ERR_WAREHOUSE_REJECTED)
        metric_add(s->warehouse_errors, (const char *[]){r}, 1);
}

void sink_metrics_on_commit(const char *topic, int32_t partition, int64_t next_offset, int64_t rows,
                            int64_t dead_letters, void *opaque)
{
    sink_metrics_t *s = opaque;
    (void)topic, (void)partition, (void)next_offset, (void)dead_letters;
    metric_observe(s->commit_rows, NULL, (double)rows);
}

static int register_stats(sink_metrics_t *s, metrics_t *m)
{
    for (size_t i = 0; i < NSTATS; i++) {
        s->family[i] = STATS[i].type == COUNTER
                           ? metrics_counter(m, STATS[i].name, STATS[i].help, STATS[i].label)
                           : metrics_gauge(m, STATS[i].name, STATS[i].help, STATS[i].label);
        if (!s->family[i])
            return -1;
        if (STATS[i].value)
            metric_set(s->family[i], (const char *[]){STATS[i].value}, 0);
    }
    return 0;
}

sink_metrics_t *sink_metrics_new(metrics_t *m)
{
    sink_metrics_t *s = calloc(1, sizeof(*s));
    if (!s || register_stats(s, m)) {
        free(s);
        return NULL;
    }
    s->errors = metrics_counter(m, "userevents_sink_errors_total",
                                "Failures the sink handled, by error (warehouse, "
                                "warehouse_rejected, mapping, fenced, kafka, dead_letter, ...) "
                                "and whether it retries by itself.",
                                "error,retriable");
    s->warehouse_errors = metrics_counter(
        m, "userevents_sink_warehouse_errors_total",
        "Warehouse writes that failed: retriable=true retried with backoff, false refused for "
        "good (the rows were dead-lettered).",
        "retriable");
    s->commit_rows = metrics_histogram(m, "userevents_sink_commit_rows",
                                       "Rows of one partition in one warehouse commit.", NULL,
                                       METRICS_SIZE_BUCKETS, METRICS_SIZE_BUCKETS_N);
    s->kafka = kafka_metrics_new(m, "userevents_sink", 1);
    if (!s->errors || !s->warehouse_errors || !s->commit_rows || !s->kafka ||
        metrics_on_collect(m, collect, s)) {
        kafka_metrics_destroy(s->kafka);
        free(s);
        return NULL;
    }
    metric_set(s->warehouse_errors, (const char *[]){"true"}, 0);
    metric_set(s->warehouse_errors, (const char *[]){"false"}, 0);
    return s;
}

void sink_metrics_attach(sink_metrics_t *s, whs_sink_t *sink)
{
    if (s)
        atomic_store(&s->sink, sink);
}

void sink_metrics_destroy(sink_metrics_t *s)
{
    if (s)
        kafka_metrics_destroy(s->kafka);
    free(s);
}
