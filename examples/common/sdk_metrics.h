/*
 * sdk_metrics.h - the statistics of a libuserevents client (ue_stat) and the broker health of
 * its Kafka producer (ue_kafka_stats_json) as metric families "userevents_sdk_*", read at
 * each scrape. For any program that embeds the SDK: the collector, the demo.
 */
#ifndef UE_EXAMPLES_SDK_METRICS_H
#define UE_EXAMPLES_SDK_METRICS_H

#include "metrics.h"
#include "userevents.h"

typedef struct sdk_metrics sdk_metrics_t;

/* Registers the families in @p m and reads a client at each scrape once one is attached.
 * @p spool_max_bytes: the client's "spool.max.bytes", shown beside the spool's size (0:
 * not shown). NULL when out of memory. */
sdk_metrics_t *sdk_metrics_new(metrics_t *m, int64_t spool_max_bytes);

/* The client to read (NULL: none). Any thread. Before ue_client_destroy(), stop whatever
 * renders the registry (metrics_stop()): a scrape in progress may be reading the client. */
void sdk_metrics_attach(sdk_metrics_t *s, ue_client_t *client);

/* Frees @p s; call after metrics_stop() or metrics_destroy() of its registry. */
void sdk_metrics_destroy(sdk_metrics_t *s);

#endif
