/*
 * metrics.h - the /metrics endpoint the programs share: a small registry of metric families
 * (counters, gauges, histograms, with labels) rendered in the Prometheus text exposition
 * format 0.0.4, and an optional HTTP server (libmicrohttpd) that serves it.
 *
 *   metrics_t *m = metrics_new();
 *   metric_t *in = metrics_counter(m, "userevents_enrich_events_in_total", "Records read.", NULL);
 *   metric_t *txn = metrics_counter(m, "userevents_enrich_txn_total", "Transactions.", "result");
 *   metrics_on_collect(m, refresh, p);           // fills values from the library at scrape
 *   int port = metrics_serve(m, "127.0.0.1", 0, errstr, sizeof(errstr));  // 0: a free port
 *   metric_add(txn, (const char *[]){"commit"}, 1);
 *   ...
 *   metrics_stop(m);                             // before what the collectors read is freed
 *   metrics_destroy(m);
 *
 * Label values are given as an array of as many strings as the family has label names.
 *
 * Threads: every call may be made from any thread (one lock per registry). Collect callbacks
 * run on the thread that renders (the server's), one scrape at a time, without the lock.
 */
#ifndef UE_EXAMPLES_METRICS_H
#define UE_EXAMPLES_METRICS_H

#include <stddef.h>

typedef struct metrics metrics_t; /* a registry, and its server once started */
typedef struct metric metric_t;   /* one metric family, owned by its registry */

/* Histogram buckets for durations in seconds (5 ms .. 60 s) and for sizes (1 .. 100000). */
extern const double METRICS_SECONDS_BUCKETS[];
extern const size_t METRICS_SECONDS_BUCKETS_N;
extern const double METRICS_SIZE_BUCKETS[];
extern const size_t METRICS_SIZE_BUCKETS_N;

metrics_t *metrics_new(void);

/* Stops the server (if any) and frees the registry and its families. NULL is a no-op. */
void metrics_destroy(metrics_t *m);

/*
 * Registers a family. @p name and the comma-separated @p labels (NULL: none) must be valid
 * Prometheus names; a counter's name ends in "_total". Returns NULL when a name is invalid or
 * taken, or when out of memory. A family without labels starts with one series at 0.
 */
metric_t *metrics_counter(metrics_t *m, const char *name, const char *help, const char *labels);
metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help, const char *labels);
/* @p bounds: the upper bounds of the buckets, increasing (+Inf is implied). */
metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help, const char *labels,
                            const double *bounds, size_t nbounds);

/* Sets / adds to the series of @p values (NULL for a family without labels). Counters take
 * metric_set() too, to mirror a counter a library keeps. */
void metric_set(metric_t *f, const char *const *values, double v);
void metric_add(metric_t *f, const char *const *values, double v);
/* Counts @p v into a histogram's series. */
void metric_observe(metric_t *f, const char *const *values, double v);
/* Removes every series of @p f (to refill it from a fresh snapshot: lag per partition). */
void metric_clear(metric_t *f);

/* Runs @p fn before each rendering (at most 16 per registry). */
typedef void(metrics_collect_fn)(metrics_t *m, void *opaque);
int metrics_on_collect(metrics_t *m, metrics_collect_fn *fn, void *opaque);

/* The exposition text: runs the collect callbacks, then renders every family. Returns a
 * buffer to free(), its length in *@p len, or NULL when out of memory. */
char *metrics_render(metrics_t *m, size_t *len);

/* The media type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Serves GET /metrics (and /healthz) on @p addr (an IPv4 or IPv6 address) and @p port
 * (0: a free port) on its own thread. Returns the port, or -1 with the reason in @p errstr.
 */
int metrics_serve(metrics_t *m, const char *addr, int port, char *errstr, size_t errstr_size);

/* Stops serving, waiting for a scrape in progress. Idempotent. */
void metrics_stop(metrics_t *m);

#endif
