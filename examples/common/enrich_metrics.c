/*
 * enrich_metrics.c - a libenrich processor as metric families (see enrich_metrics.h).
 *
 * Counters are read from enr_stat() at each scrape; transactions are observed by the
 * transaction callback on the processor's thread; the under-replicated count costs a
 * metadata round trip, so it is refreshed at most every UNDER_REPLICATED_EVERY_MS.
 */
#include "enrich_metrics.h"

#include "kafka_metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define UNDER_REPLICATED_EVERY_MS 15000
#define METADATA_TIMEOUT_MS 2000

enum { COUNTER, GAUGE };

/* clang-format off */
static const struct {
    enr_stat_t stat;
    int type;
    const char *name, *label, *value, *help; /* label=value: one series of a shared family */
} STATS[] = {
    {ENR_STAT_CONSUMED, COUNTER, "userevents_enrich_events_in_total", NULL, NULL,
     "Records read from the raw topics."},
    {ENR_STAT_ENRICHED, COUNTER, "userevents_enrich_events_out_total", NULL, NULL,
     "Events written to the enriched topic."},
    {ENR_STAT_DROPPED, COUNTER, "userevents_enrich_dropped_total", "reason", "stage",
     "Events dropped, by reason: stage (a stage dropped it: the dedup stage drops duplicate "
     "event ids)."},
    {ENR_STAT_DEAD_LETTERS, COUNTER, "userevents_enrich_dead_letters_total", NULL, NULL,
     "Records sent to the dead-letter topic."},
    {ENR_STAT_LATE_EVENTS, COUNTER, "userevents_enrich_late_events_total", NULL, NULL,
     "Events too late for their aggregate window (still enriched)."},
    {ENR_STAT_FUTURE_EVENTS, COUNTER, "userevents_enrich_future_events_total", NULL, NULL,
     "Events dead-lettered because their time was more than time.max.future.ms after their "
     "receive time (also counted in dead_letters)."},
    {ENR_STAT_AGGREGATES, COUNTER, "userevents_enrich_aggregates_total", NULL, NULL,
     "Window aggregates emitted."},
    {ENR_STAT_ALERTS, COUNTER, "userevents_enrich_alerts_total", NULL, NULL,
     "Rate anomaly alerts emitted."},
    {ENR_STAT_TXN_COMMITS, COUNTER, "userevents_enrich_txn_total", "result", "commit",
     "Transactions ended, by result: commit, abort (the work is redone)."},
    {ENR_STAT_TXN_ABORTS, COUNTER, "userevents_enrich_txn_total", "result", "abort", NULL},
    {ENR_STAT_PROFILES, GAUGE, "userevents_enrich_profiles", NULL, NULL,
     "User profiles in the local table."},
    {ENR_STAT_PROFILE_UPDATES, COUNTER, "userevents_enrich_profile_updates_total", NULL, NULL,
     "Profile records applied."},
    {ENR_STAT_RESTORED, COUNTER, "userevents_enrich_restored_total", NULL, NULL,
     "Changelog records restored (tasks taken over, and after an abort)."},
    {ENR_STAT_REBALANCES, COUNTER, "userevents_enrich_rebalances_total", NULL, NULL,
     "Rebalance callbacks: tasks assigned or revoked."},
    {ENR_STAT_REBALANCE_MS, COUNTER, "userevents_enrich_rebalance_seconds_total", NULL, NULL,
     "Time spent in rebalances, restoring the tasks taken included (milliseconds / 1000)."},
    {ENR_STAT_TASKS, GAUGE, "userevents_enrich_tasks", NULL, NULL,
     "Tasks (input partition numbers) this processor owns."},
    {ENR_STAT_RESTORE_RECORDS, COUNTER, "userevents_enrich_restore_records_total", NULL, NULL,
     "Changelog records read to restore the tasks taken over."},
    {ENR_STAT_RESTORE_BYTES, COUNTER, "userevents_enrich_restore_bytes_total", NULL, NULL,
     "Their bytes (keys and values)."},
};
/* clang-format on */
#define NSTATS (sizeof(STATS) / sizeof(STATS[0]))

struct enrich_metrics {
    metric_t *family[NSTATS];
    metric_t *txn_events, *txn_seconds, *commit_seconds;
    metric_t *under_replicated, *metadata_errors;
    kafka_metrics_t *kafka;
    _Atomic(enr_processor_t *) processor;
    long long next_metadata_ms; /* scrape thread only */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t kafka_stats(void *p, char *buf, size_t size)
{
    return enr_kafka_stats_json(p, buf, size);
}

static void collect(metrics_t *m, void *opaque)
{
    enrich_metrics_t *e = opaque;
    enr_processor_t *p = atomic_load(&e->processor);
    (void)m;
    if (!p)
        return;
    for (size_t i = 0; i < NSTATS; i++) {
        int64_t v = enr_stat(p, STATS[i].stat);
        double scale = STATS[i].stat == ENR_STAT_REBALANCE_MS ? 1000.0 : 1.0;
        if (v >= 0)
            metric_set(e->family[i], STATS[i].value ? (const char *[]){STATS[i].value} : NULL,
                       (double)v / scale);
    }
    kafka_metrics_refresh(e->kafka, kafka_stats, p);
    if (mono_ms() >= e->next_metadata_ms) {
        int n = enr_under_replicated_partitions(p, METADATA_TIMEOUT_MS);
        if (n >= 0)
            metric_set(e->under_replicated, NULL, n);
        else
            metric_add(e->metadata_errors, NULL, 1);
        e->next_metadata_ms = mono_ms() + UNDER_REPLICATED_EVERY_MS;
    }
}

void enrich_metrics_on_txn(enr_err_t result, int64_t events, int64_t txn_ms, int64_t commit_ms,
                           void *opaque)
{
    enrich_metrics_t *e = opaque;
    (void)result; /* counted by enr_stat(): commits and aborts */
    metric_observe(e->txn_events, NULL, (double)events);
    metric_observe(e->txn_seconds, NULL, (double)txn_ms / 1000);
    metric_observe(e->commit_seconds, NULL, (double)commit_ms / 1000);
}

static int register_stats(enrich_metrics_t *e, metrics_t *m)
{
    for (size_t i = 0; i < NSTATS; i++) {
        if (!STATS[i].help) { /* another series of the family above */
            e->family[i] = e->family[i - 1];
            continue;
        }
        e->family[i] = STATS[i].type == COUNTER
                           ? metrics_counter(m, STATS[i].name, STATS[i].help, STATS[i].label)
                           : metrics_gauge(m, STATS[i].name, STATS[i].help, STATS[i].label);
        if (!e->family[i])
            return -1;
    }
    for (size_t i = 0; i < NSTATS; i++) /* every label value shown from the start, at 0 */
        if (STATS[i].value)
            metric_set(e->family[i], (const char *[]){STATS[i].value}, 0);
    return 0;
}

enrich_metrics_t *enrich_metrics_new(metrics_t *m)
{
    enrich_metrics_t *e = calloc(1, sizeof(*e));
    if (!e || register_stats(e, m)) {
        free(e);
        return NULL;
    }
    e->txn_events =
        metrics_histogram(m, "userevents_enrich_txn_events", "Input records per transaction.", NULL,
                          METRICS_SIZE_BUCKETS, METRICS_SIZE_BUCKETS_N);
    e->txn_seconds = metrics_histogram(
        m, "userevents_enrich_txn_duration_seconds",
        "Transactions from their first record to the end of the commit: the latency they add.",
        NULL, METRICS_SECONDS_BUCKETS, METRICS_SECONDS_BUCKETS_N);
    e->commit_seconds = metrics_histogram(
        m, "userevents_enrich_txn_commit_seconds",
        "The commit of a transaction alone (stage flush, offsets, commit round trips).", NULL,
        METRICS_SECONDS_BUCKETS, METRICS_SECONDS_BUCKETS_N);
    e->under_replicated = metrics_gauge(
        m, "userevents_enrich_under_replicated_partitions",
        "Partitions of the topics the processor reads or writes (Kafka's offsets and "
        "transaction topics included) with fewer in-sync replicas than replicas, or no leader.",
        NULL);
    e->metadata_errors =
        metrics_counter(m, "userevents_enrich_kafka_metadata_errors_total",
                        "Metadata requests (for the replica count) that failed.", NULL);
    e->kafka = kafka_metrics_new(m, "userevents_enrich", 1);
    if (!e->txn_events || !e->txn_seconds || !e->commit_seconds || !e->under_replicated ||
        !e->metadata_errors || !e->kafka || metrics_on_collect(m, collect, e)) {
        enrich_metrics_destroy(e);
        return NULL;
    }
    return e;
}

void enrich_metrics_attach(enrich_metrics_t *e, enr_processor_t *p)
{
    if (e)
        atomic_store(&e->processor, p);
}

void enrich_metrics_destroy(enrich_metrics_t *e)
{
    if (!e)
        return;
    kafka_metrics_destroy(e->kafka);
    free(e);
}
