/*
 * sdk_metrics.c - a libuserevents client's statistics as metric families (see sdk_metrics.h).
 * One table says where each ue_stat_t goes; statistics a later SDK appends are skipped until
 * the table names them.
 */
#include "sdk_metrics.h"

#include "kafka_metrics.h"

#include <stdatomic.h>
#include <stdlib.h>

enum { COUNTER, GAUGE };

/* clang-format off */
static const struct {
    ue_stat_t stat;
    int type;
    const char *name, *reason, *help; /* reason: the label of dropped_total */
} STATS[] = {
    {UE_STAT_TRACKED, COUNTER, "userevents_sdk_events_in_total", NULL,
     "Events accepted by ue_track()."},
    {UE_STAT_DELIVERED, COUNTER, "userevents_sdk_events_out_total", NULL,
     "Events acknowledged by Kafka (or by the collector, over HTTP)."},
    {UE_STAT_SENT, COUNTER, "userevents_sdk_sent_total", NULL,
     "Events handed to the transport, retries included."},
    {UE_STAT_BYTES_SENT, COUNTER, "userevents_sdk_sent_bytes_total", NULL,
     "Payload bytes handed to the transport."},
    {UE_STAT_RETRIES, COUNTER, "userevents_sdk_retries_total", NULL,
     "Sends that failed and are retried."},
    {UE_STAT_FAILED, COUNTER, "userevents_sdk_failed_total", NULL,
     "Events that failed for good (refused by the collector)."},
    {UE_STAT_DROPPED_QUEUE_FULL, COUNTER, "userevents_sdk_dropped_total", "queue_full",
     "Events dropped, by reason: queue_full, spool_full, spool_age, shutdown."},
    {UE_STAT_DROPPED_SPOOL_FULL, COUNTER, "userevents_sdk_dropped_total", "spool_full", NULL},
    {UE_STAT_DROPPED_SPOOL_AGE, COUNTER, "userevents_sdk_dropped_total", "spool_age", NULL},
    {UE_STAT_DROPPED_SHUTDOWN, COUNTER, "userevents_sdk_dropped_total", "shutdown", NULL},
    {UE_STAT_QUEUED, GAUGE, "userevents_sdk_queue_events", NULL,
     "Events in the in-memory queue."},
    {UE_STAT_QUEUED_BYTES, GAUGE, "userevents_sdk_queue_bytes", NULL,
     "Bytes of the events in the in-memory queue."},
    {UE_STAT_SPOOLED, GAUGE, "userevents_sdk_spool_events", NULL,
     "Events in the spool not yet acknowledged."},
    {UE_STAT_SPOOL_BYTES, GAUGE, "userevents_sdk_spool_bytes", NULL,
     "Bytes of spool segment files on disk."},
    {UE_STAT_REPLAYED, COUNTER, "userevents_sdk_replayed_total", NULL,
     "Events read back from the spool of an earlier process."},
    {UE_STAT_SPOOL_CORRUPT, COUNTER, "userevents_sdk_spool_corrupt_total", NULL,
     "Corrupt or torn spool frames skipped."},
    {UE_STAT_SPOOL_WRITE_FAILED, COUNTER, "userevents_sdk_spool_write_failed_total", NULL,
     "Events whose spool write failed (sent on without the crash guarantee)."},
};
/* clang-format on */
#define NSTATS (sizeof(STATS) / sizeof(STATS[0]))

struct sdk_metrics {
    metric_t *family[NSTATS];
    kafka_metrics_t *kafka;
    _Atomic(ue_client_t *) client;
};

static size_t kafka_stats(void *client, char *buf, size_t size)
{
    return ue_kafka_stats_json(client, buf, size);
}

static void collect(metrics_t *m, void *opaque)
{
    sdk_metrics_t *s = opaque;
    ue_client_t *c = atomic_load(&s->client);
    (void)m;
    if (!c)
        return;
    for (size_t i = 0; i < NSTATS; i++) {
        int64_t v = ue_stat(c, STATS[i].stat);
        if (v >= 0)
            metric_set(s->family[i], STATS[i].reason ? (const char *[]){STATS[i].reason} : NULL,
                       (double)v);
    }
    kafka_metrics_refresh(s->kafka, kafka_stats, c);
}

sdk_metrics_t *sdk_metrics_new(metrics_t *m, int64_t spool_max_bytes)
{
    sdk_metrics_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    int bad = 0;
    for (size_t i = 0; i < NSTATS && !bad; i++) {
        if (!STATS[i].help) { /* another series of the family above */
            s->family[i] = s->family[i - 1];
            continue;
        }
        s->family[i] = STATS[i].type == COUNTER
                           ? metrics_counter(m, STATS[i].name, STATS[i].help,
                                             STATS[i].reason ? "reason" : NULL)
                           : metrics_gauge(m, STATS[i].name, STATS[i].help, NULL);
        bad = !s->family[i];
    }
    if (!bad && spool_max_bytes > 0) {
        metric_t *max = metrics_gauge(m, "userevents_sdk_spool_max_bytes",
                                      "The spool's cap (spool.max.bytes): past it the oldest "
                                      "events are dropped.",
                                      NULL);
        metric_set(max, NULL, (double)spool_max_bytes);
        bad = !max;
    }
    if (!bad)
        bad = !(s->kafka = kafka_metrics_new(m, "userevents_sdk", 0)) ||
              metrics_on_collect(m, collect, s);
    if (bad) {
        sdk_metrics_destroy(s);
        return NULL;
    }
    for (size_t i = 0; i < NSTATS; i++) /* every reason shown from the start, at 0 */
        if (STATS[i].reason)
            metric_set(s->family[i], (const char *[]){STATS[i].reason}, 0);
    return s;
}

void sdk_metrics_attach(sdk_metrics_t *s, ue_client_t *client)
{
    if (s)
        atomic_store(&s->client, client);
}

void sdk_metrics_destroy(sdk_metrics_t *s)
{
    if (!s)
        return;
    kafka_metrics_destroy(s->kafka);
    free(s);
}
