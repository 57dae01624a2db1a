/*
 * stages.c - ue-demo's enrichment processor and warehouse sink, each on its own thread,
 * configured for the run's topics; progress and the wait until everything landed.
 */
#include "demo.h"
#include "enrich_metrics.h"
#include "metrics.h"
#include "sink_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SET(fn, conf, key, value)                                                            \
    do {                                                                                     \
        if (fn(conf, key, value, errstr, sizeof(errstr))) {                                  \
            fprintf(stderr, "ue-demo: %s\n", errstr);                                        \
            return -1;                                                                       \
        }                                                                                    \
    } while (0)

static void *enrich_main(void *arg)
{
    demo_t *d = arg;
    enr_err_t rc = enr_run(d->enrich);
    if (rc)
        fprintf(stderr, "ue-demo: enrichment stopped: %s: %s\n", enr_err2str(rc),
                enr_processor_last_error(d->enrich));
    return NULL;
}

static void *sink_main(void *arg)
{
    demo_t *d = arg;
    whs_err_t rc = whs_run(d->sink);
    if (rc)
        fprintf(stderr, "ue-demo: sink stopped: %s\n", whs_err2str(rc));
    return NULL;
}

static void on_commit(const char *topic, int32_t partition, int64_t next_offset, int64_t rows,
                      int64_t dead_letters, void *opaque)
{
    commit_log_t *log = opaque;
    (void)topic, (void)rows, (void)dead_letters;
    pthread_mutex_lock(&log->lock);
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 256;
        void *grown = realloc(log->c, cap * sizeof(*log->c));
        if (!grown) {
            pthread_mutex_unlock(&log->lock);
            return;
        }
        log->c = grown;
        log->cap = cap;
    }
    log->c[log->n++] = (struct commit){partition, next_offset, now_ms()};
    pthread_mutex_unlock(&log->lock);
}

static void on_commit_demo(const char *topic, int32_t partition, int64_t next_offset,
                           int64_t rows, int64_t dead_letters, void *opaque)
{
    demo_t *d = opaque;
    on_commit(topic, partition, next_offset, rows, dead_letters, &d->commits);
    if (d->sm)
        sink_metrics_on_commit(topic, partition, next_offset, rows, dead_letters, d->sm);
}

static void on_sink_error(whs_err_t err, int retriable, const char *reason, void *opaque)
{
    demo_t *d = opaque;
    (void)reason;
    if (d->sm)
        sink_metrics_on_error(d->sm, err, retriable);
}

static int start_enrich(demo_t *d)
{
    static const char *const topics[][2] = {
        {"group.id", "enrich"},          {"input.topics", "events"},
        {"output.topic", "enriched"},    {"dead_letter.topic", "dead_letter"},
        {"aggregates.topic", "aggregates"}, {"alerts.topic", "alerts"},
        {"changelog.topic", "changelog"}, {"profile.topic", "profiles"},
        {"repartition.topic", "repartition"},
    };
    char errstr[512], v[256];
    enr_conf_t *conf = enr_conf_new();
    SET(enr_conf_set, conf, "kafka.bootstrap.servers", d->o.bootstrap);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        snprintf(v, sizeof(v), "%s.%s", d->o.prefix, topics[i][1]);
        SET(enr_conf_set, conf, topics[i][0], v);
    }
    SET(enr_conf_set, conf, "stages", "dedup,clock,useragent,profile,session,window,anomaly");
    SET(enr_conf_set, conf, "log.level", "error");
    if (d->em)
        enr_conf_set_txn_cb(conf, enrich_metrics_on_txn, d->em);
    if (!(d->enrich = enr_processor_new(conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "ue-demo: enrichment: %s\n", errstr);
        enr_conf_destroy(conf);
        return -1;
    }
    return pthread_create(&d->enrich_thread, NULL, enrich_main, d);
}

static int start_sink(demo_t *d)
{
    char errstr[512], v[256];
    whs_conf_t *conf = whs_conf_new();
    const demo_opts_t *o = &d->o;
    SET(whs_conf_set, conf, "kafka.bootstrap.servers", o->bootstrap);
    SET(whs_conf_set, conf, "warehouse.url", o->warehouse);
    snprintf(v, sizeof(v), "%s.enriched", o->prefix);
    SET(whs_conf_set, conf, "topic", v);
    snprintf(v, sizeof(v), "%s.dead_letter", o->prefix);
    SET(whs_conf_set, conf, "dead_letter.topic", v);
    snprintf(v, sizeof(v), "%s-sink", o->prefix);
    SET(whs_conf_set, conf, "kafka.group.id", v);
    SET(whs_conf_set, conf, "batch.max.ms", "200");
    SET(whs_conf_set, conf, "log.level", "error");
    whs_conf_set_commit_cb(conf, on_commit_demo, d);
    whs_conf_set_error_cb(conf, on_sink_error, d);
    if (!(d->sink = whs_sink_new(conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "ue-demo: sink: %s\n", errstr);
        whs_conf_destroy(conf);
        return -1;
    }
    return pthread_create(&d->sink_thread, NULL, sink_main, d);
}

/* /metrics of the enrichment and the sink (the SDK's run inside simulate()). */
static int start_metrics(demo_t *d)
{
    if (!(d->metrics = metrics_new()) || !(d->em = enrich_metrics_new(d->metrics)) ||
        !(d->sm = sink_metrics_new(d->metrics)))
        return -1;
    return 0;
}

static int serve_metrics(demo_t *d)
{
    char errstr[256];
    enrich_metrics_attach(d->em, d->enrich);
    sink_metrics_attach(d->sm, d->sink);
    int port = metrics_serve(d->metrics, "127.0.0.1", d->o.metrics_port, errstr, sizeof(errstr));
    if (port < 0) {
        fprintf(stderr, "ue-demo: metrics: %s\n", errstr);
        return -1;
    }
    printf("ue-demo: metrics on http://127.0.0.1:%d/metrics\n", port);
    return 0;
}

int start_stages(demo_t *d)
{
    pthread_mutex_init(&d->commits.lock, NULL);
    if (d->o.metrics_port >= 0 && start_metrics(d))
        return -1;
    if (start_enrich(d) || start_sink(d))
        return -1;
    return d->metrics ? serve_metrics(d) : 0;
}

void stop_stages(demo_t *d)
{
    if (d->sink) {
        whs_stop(d->sink);
        pthread_join(d->sink_thread, NULL);
        whs_sink_destroy(d->sink);
    }
    if (d->enrich) {
        enr_stop(d->enrich);
        pthread_join(d->enrich_thread, NULL);
        enr_processor_destroy(d->enrich, 10000);
    }
    if (d->metrics) {
        metrics_stop(d->metrics);
        enrich_metrics_destroy(d->em);
        sink_metrics_destroy(d->sm);
        metrics_destroy(d->metrics);
    }
}

void show_progress(void *demo)
{
    demo_t *d = demo;
    long long tracked = d->o.tracked;
    long long enriched = enr_stat(d->enrich, ENR_STAT_ENRICHED);
    long long loaded = whs_stat(d->sink, WHS_STAT_ROWS_LOADED);
    printf("  %3llds  tracked %8lld  enriched %8lld  loaded %8lld  lag %6lld\n",
           (long long)(now_ms() - d->started_ms) / 1000, tracked, enriched, loaded,
           tracked - loaded);
    fflush(stdout);
}

int wait_landed(demo_t *d, long tracked, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms, next = now_ms() + 1000;
    while (whs_stat(d->sink, WHS_STAT_ROWS_LOADED) < tracked && now_ms() < deadline) {
        struct timespec step = {0, 20000000}; /* polling a counter, not a synchronisation */
        nanosleep(&step, NULL);
        if (now_ms() >= next) {
            show_progress(d);
            next += 1000;
        }
    }
    show_progress(d);
    return whs_stat(d->sink, WHS_STAT_ROWS_LOADED) >= tracked;
}
