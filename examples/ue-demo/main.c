/*
 * ue-demo - the whole pipeline in one process, on embedded defaults:
 *
 *   simulated users --ue_track()--> Kafka --libenrich--> Kafka --libwhsink--> SQLite
 *
 * Kafka is librdkafka's mock cluster of three brokers unless --bootstrap (or KAFKA_BOOTSTRAP)
 * names a real one; the warehouse is SQLite unless --warehouse names another. It shows
 * progress while it runs and ends with a report: tracked vs landed (must be equal),
 * duplicates (must be 0), rows per type, latency from track to warehouse, and how to query.
 */
#include "demo.h"
#include "enrich.h"
#include "whsink.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: ue-demo [options]\n"
                 "  -u, --users N        simulated users (200)\n"
                 "  -r, --rate N         events per second, all users (2000)\n"
                 "  -d, --duration S     seconds of tracking (10)\n"
                 "  -b, --bootstrap H    a real Kafka cluster (env KAFKA_BOOTSTRAP); default: "
                 "librdkafka's mock cluster of 3 brokers\n"
                 "  -w, --warehouse URL  sqlite:PATH (default sqlite:ue-demo.db), postgres://..., "
                 "clickhouse://..., file:DIR\n"
                 "      --metrics-port N serve Prometheus /metrics on N (0: a free one, printed)\n"
                 "  -h, --help           this help\n");
}

static int parse(int argc, char **argv, demo_opts_t *o)
{
    static const struct option opts[] = {{"users", 1, 0, 'u'},     {"rate", 1, 0, 'r'},
                                         {"duration", 1, 0, 'd'},  {"bootstrap", 1, 0, 'b'},
                                         {"warehouse", 1, 0, 'w'}, {"help", 0, 0, 'h'},
                                         {"metrics-port", 1, 0, 'M'}, {0, 0, 0, 0}};
    int c;
    *o = (demo_opts_t){.users = 200, .rate = 2000, .duration_s = 10,
                       .bootstrap = getenv("KAFKA_BOOTSTRAP"), .warehouse = "sqlite:ue-demo.db",
                       .metrics_port = -1};
    while ((c = getopt_long(argc, argv, "u:r:d:b:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': o->users = atoi(optarg); break;
        case 'r': o->rate = atoi(optarg); break;
        case 'd': o->duration_s = atoi(optarg); break;
        case 'b': o->bootstrap = optarg; break;
        case 'w': o->warehouse = optarg; break;
        case 'M': o->metrics_port = atoi(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (o->users < 1 || o->rate < 1 || o->duration_s < 1) {
        fprintf(stderr, "ue-demo: users, rate and duration must be positive\n");
        return -1;
    }
    snprintf(o->prefix, sizeof(o->prefix), "ue-demo-%lld", (long long)(now_ms() / 1000));
    snprintf(o->spool, sizeof(o->spool), "%s/%s-spool",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", o->prefix);
    return 0;
}

/* The mock cluster: three brokers, the run's topics created with three partitions each. */
static int start_mock(demo_t *d)
{
    static char bootstraps[512];
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "3", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    if (!(d->mock_host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "ue-demo: mock cluster: %s\n", errstr);
        return -1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(d->mock_host);
    static const char *const topics[] = {"events", "enriched", "dead_letter", "aggregates",
                                         "alerts", "changelog", "repartition",
                                         "profiles"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        char name[128];
        snprintf(name, sizeof(name), "%s.%s", d->o.prefix, topics[i]);
        rd_kafka_mock_topic_create(mc, name, 3, 3);
    }
    snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    d->o.bootstrap = bootstraps;
    return 0;
}


/* @p url as libwhsink's dump shows it: a password or credential parameter masked. */
static void mask_url(const char *url, char *out, size_t size)
{
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    size_t n = 0;
    snprintf(out, size, "(unprintable)");
    if (!conf || whs_conf_set(conf, "warehouse.url", url, errstr, sizeof(errstr)) != WHS_CONF_OK) {
        whs_conf_destroy(conf);
        return;
    }
    const char **dump = whs_conf_dump(conf, &n);
    for (size_t i = 0; dump && i + 1 < n; i += 2)
        if (!strcmp(dump[i], "warehouse.url"))
            snprintf(out, size, "%s", dump[i + 1]);
    whs_conf_dump_free(dump, n);
    whs_conf_destroy(conf);
}

int main(int argc, char **argv)
{
    demo_t d = {0};
    if (parse(argc, argv, &d.o))
        return 2;
    mask_url(d.o.warehouse, d.o.warehouse_shown, sizeof(d.o.warehouse_shown));
    if (!d.o.bootstrap && start_mock(&d))
        return 1;
    if (!strncmp(d.o.warehouse, "sqlite:", 7))
        unlink(d.o.warehouse + 7); /* a fresh warehouse per run: the report counts it all */
    printf("ue-demo: %d users, %d events/s for %d s; Kafka %s; warehouse %s\n", d.o.users,
           d.o.rate, d.o.duration_s, d.mock_host ? "mock cluster (3 brokers)" : d.o.bootstrap,
           d.o.warehouse_shown);
    d.started_ms = now_ms();
    if (start_stages(&d)) {
        stop_stages(&d);
        return 1;
    }
    long tracked = simulate(&d.o, show_progress, &d);
    int landed = tracked >= 0 && wait_landed(&d, tracked, 60000);
    stop_stages(&d);
    int rc = tracked < 0 ? 1 : report(&d.o, &d.commits, tracked);
    if (!landed)
        fprintf(stderr, "ue-demo: not everything landed within 60 s\n");
    if (d.mock_host)
        rd_kafka_destroy(d.mock_host);
    free(d.commits.c);
    return rc || !landed;
}
