/*
 * kafka_metrics.h - broker health and consumer lag from librdkafka's statistics JSON (what
 * enr_kafka_stats_json() and ue_kafka_stats_json() return), as metric families of a program:
 *
 *   <prefix>_kafka_brokers_up                        brokers connected (0: unreachable)
 *   <prefix>_kafka_broker_up{broker}                 1 connected, 0 down (brokers in use)
 *   <prefix>_kafka_broker_rtt_seconds{broker}        average request round trip
 *   <prefix>_kafka_broker_errors_total{broker,kind}  kind: tx, rx, timeout
 *   <prefix>_kafka_broker_disconnects_total{broker}
 *   <prefix>_kafka_queue_messages                    a producer's: messages not yet acked
 *   <prefix>_consumer_lag{topic,partition}           a consumer's: records after the
 *                                                    committed offset, per assigned partition
 *
 * Each update replaces the previous snapshot: a broker or partition gone from the statistics
 * is gone from /metrics.
 */
#ifndef UE_EXAMPLES_KAFKA_METRICS_H
#define UE_EXAMPLES_KAFKA_METRICS_H

#include "metrics.h"

#include <stddef.h>

typedef struct kafka_metrics kafka_metrics_t;

/* Registers the families named after @p prefix ("userevents_enrich") in @p m: those of a
 * consumer (lag) or of a producer (queue). NULL when out of memory or a name is taken. */
kafka_metrics_t *kafka_metrics_new(metrics_t *m, const char *prefix, int consumer);
void kafka_metrics_destroy(kafka_metrics_t *k);

/* Replaces the families' series with what @p json says. Returns 0, or -1 when it is not a
 * librdkafka statistics document (the series are then left as they were). */
int kafka_metrics_update(kafka_metrics_t *k, const char *json);

/*
 * Calls @p get (enr_kafka_stats_json or ue_kafka_stats_json, through a small adapter) into a
 * buffer that grows to fit, then updates. Returns what kafka_metrics_update() returns, or 1
 * when there are no statistics yet.
 */
typedef size_t(kafka_stats_fn)(void *handle, char *buf, size_t size);
int kafka_metrics_refresh(kafka_metrics_t *k, kafka_stats_fn *get, void *handle);

#endif
