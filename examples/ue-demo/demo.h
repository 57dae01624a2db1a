/*
 * demo.h - the parts of ue-demo, the whole pipeline in one process: simulated users track
 * through libuserevents, libenrich enriches, libwhsink loads the warehouse; then a report.
 */
#ifndef UE_DEMO_H
#define UE_DEMO_H

#include <pthread.h>
#include <stdint.h>

typedef struct demo_opts {
    int users;
    int rate;                 /* events per second, all users together */
    int duration_s;
    const char *bootstrap;    /* NULL: librdkafka's mock cluster of three brokers */
    const char *warehouse;    /* a libwhsink URL; default sqlite:ue-demo.db */
    char warehouse_shown[512]; /* as it may be printed: credentials masked by libwhsink */
    char prefix[64];          /* of every topic and group of this run */
    char spool[512];
    long tracked;             /* so far (written by simulate(), read by its progress calls) */
    int metrics_port;         /* -1: no /metrics */
} demo_opts_t;

/* Commit times of the sink, to measure track -> warehouse latency. */
typedef struct commit_log {
    pthread_mutex_t lock;
    struct commit { int32_t partition; int64_t next_offset; int64_t at_ms; } *c;
    size_t n, cap;
} commit_log_t;

#include "enrich.h"
#include "whsink.h"

#include <librdkafka/rdkafka.h>

typedef struct demo {
    demo_opts_t o;
    rd_kafka_t *mock_host;     /* owns the mock cluster */
    enr_processor_t *enrich;
    whs_sink_t *sink;
    pthread_t enrich_thread, sink_thread;
    commit_log_t commits;
    struct metrics *metrics;  /* /metrics of the enrichment and the sink, when asked for */
    struct enrich_metrics *em;
    struct sink_metrics *sm;
    int64_t started_ms;
} demo_t;

/* stages.c: the enrichment processor and the sink, each on its own thread. */
int start_stages(demo_t *d);
void stop_stages(demo_t *d);
void show_progress(void *demo);
/* Waits until the warehouse holds @p tracked rows (bounded); returns 1 when it does. */
int wait_landed(demo_t *d, long tracked, int timeout_ms);

/* simulate.c: tracks events of @p o->users users at @p o->rate for o->duration_s seconds,
 * calling @p progress once a second. Returns how many were tracked, or -1. */
long simulate(demo_opts_t *o, void (*progress)(void *), void *opaque);

/* report.c: prints the report from a SQLite warehouse (other warehouses: counts only). */
int report(const demo_opts_t *o, commit_log_t *log, long tracked);

int64_t now_ms(void);

#endif
