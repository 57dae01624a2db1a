/*
 * sink_metrics.h - a libwhsink sink as metric families "userevents_sink_*": its statistics
 * (whs_stat), the errors its error callback reports (warehouse errors among them) and the
 * rows of each commit (its commit callback). For whsinkd and the demo.
 */
#ifndef UE_EXAMPLES_SINK_METRICS_H
#define UE_EXAMPLES_SINK_METRICS_H

#include "metrics.h"
#include "whsink.h"

typedef struct sink_metrics sink_metrics_t;

/* Registers the families in @p m; a sink is read at each scrape once attached. */
sink_metrics_t *sink_metrics_new(metrics_t *m);

/* The sink to read (NULL: none). Any thread. Before whs_sink_destroy(), stop the registry's
 * server (metrics_stop()): a scrape in progress may be reading the sink. */
void sink_metrics_attach(sink_metrics_t *s, whs_sink_t *sink);

/* Counts one error the sink reported to its error callback (call it from yours). */
void sink_metrics_on_error(sink_metrics_t *s, whs_err_t err, int retriable);

/* A commit callback for whs_conf_set_commit_cb() with @p s as its opaque. */
whs_commit_cb_t sink_metrics_on_commit;

/* Frees @p s; after metrics_stop() or metrics_destroy() of its registry. */
void sink_metrics_destroy(sink_metrics_t *s);

#endif
