/*
 * enrich_metrics.h - a libenrich processor as metric families "userevents_enrich_*": its
 * counters (enr_stat), transaction sizes and latencies (enr_conf_set_txn_cb), consumer lag
 * and broker health (enr_kafka_stats_json), under-replicated partitions
 * (enr_under_replicated_partitions). For enrichd and the demo.
 */
#ifndef UE_EXAMPLES_ENRICH_METRICS_H
#define UE_EXAMPLES_ENRICH_METRICS_H

#include "enrich.h"
#include "metrics.h"

typedef struct enrich_metrics enrich_metrics_t;

/* Registers the families in @p m; a processor is read at each scrape once attached. */
enrich_metrics_t *enrich_metrics_new(metrics_t *m);

/* The processor to read (NULL: none). Any thread. Before enr_processor_destroy(), stop the
 * registry's server (metrics_stop()): a scrape in progress may be reading the processor. */
void enrich_metrics_attach(enrich_metrics_t *e, enr_processor_t *p);

/* The transaction callback to give enr_conf_set_txn_cb() with @p e as its opaque. */
enr_txn_cb_t enrich_metrics_on_txn;

/* Frees @p e; after metrics_stop() or metrics_destroy() of its registry. */
void enrich_metrics_destroy(enrich_metrics_t *e);

#endif
