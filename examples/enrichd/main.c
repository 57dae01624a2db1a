/*
 * enrichd - the enrichment daemon: libenrich's processor with a config file and flags.
 *
 *   enrichd -b 127.0.0.1:9092 -c enrichd.conf -X geoip.database=/var/lib/GeoLite2-City.mmdb
 *
 * Consumes the raw topics, enriches, and produces the enriched topic, aggregates, alerts and
 * dead letters exactly once. SIGTERM or SIGINT: commit what is done and leave cleanly.
 * --metrics-port serves Prometheus /metrics (userevents_enrich_*, see pkg/monitoring/).
 * Built only from the public API (enrich.h) and the programs' shared helpers.
 */
#include "enrich.h"
#include "enrich_metrics.h"
#include "malloc_arenas.h"
#include "metrics.h"
#include "secret.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enr_processor_t *processor;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    enr_stop(processor); /* async-signal-safe: one atomic store */
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: enrichd [options]\n"
            "  -b, --bootstrap HOSTS  Kafka bootstrap servers (or env KAFKA_BOOTSTRAP)\n"
            "  -i, --instance-id ID   this processor in its group (default: the host name);\n"
            "                         unique per group, the same across restarts\n"
            "  -c, --config FILE      key=value lines (# comments); flags given later win\n"
            "  -X, --set KEY=VALUE    any configuration property (see CONFIGURATION.md); VALUE\n"
            "                         may be env:NAME or @FILE, as secrets should be (a\n"
            "                         password on the command line is visible to all: warned)\n"
            "  -s, --stats-ms MS      log counters every MS (default 5000, 0 = never)\n"
            "      --metrics-port N   serve Prometheus /metrics on port N (0: a free one, logged)\n"
            "      --metrics-listen A address of /metrics (default 127.0.0.1)\n"
            "  -h, --help             this help\n"
            "Stops cleanly on SIGTERM/SIGINT: the open transaction is committed first.\n");
}

/* Sets "key=value" from @p where (a file line, or "-X": there the value may be env:NAME or
 * @FILE, and a secret given as it is warns, since the command line is visible to all). */
static int set(enr_conf_t *conf, const char *kv, const char *where)
{
    char key[256], errstr[512], flag[280];
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "enrichd: %s: expected key=value, got \"%s\"\n", where, kv);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    snprintf(flag, sizeof(flag), "-X %s", key);
    int from_flag = strcmp(where, "-X") == 0;
    char *value = from_flag ? flag_value("enrichd", flag, eq + 1, secret_key(key)) : NULL;
    if (from_flag && !value)
        return -1;
    enr_conf_res_t rc = enr_conf_set(conf, key, value ? value : eq + 1, errstr, sizeof(errstr));
    free(value);
    if (rc != ENR_CONF_OK) {
        fprintf(stderr, "enrichd: %s: %s\n", where, errstr);
        return -1;
    }
    return 0;
}

static int load_file(enr_conf_t *conf, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096], where[512];
    int n = 0, rc = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (!rc && fgets(line, sizeof(line), f)) {
        n++;
        line[strcspn(line, "\r\n")] = '\0';
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\0')
            continue;
        snprintf(where, sizeof(where), "%s:%d", path, n);
        rc = set(conf, s, where);
    }
    fclose(f);
    return rc;
}

static void log_stats(enr_processor_t *p)
{
    fprintf(stderr, "enrichd:");
    for (int i = 0; i < ENR_STAT__CNT; i++)
        fprintf(stderr, " %s=%" PRId64, enr_stat_name((enr_stat_t)i), enr_stat(p, (enr_stat_t)i));
    fprintf(stderr, "\n");
}

/* Serves /metrics when --metrics-port was given (@p port >= 0), before the processor exists,
 * so that a long restore is already visible. 0, or -1 when it cannot listen. */
static int start_metrics(const char *addr, long port, enr_conf_t *conf, metrics_t **m,
                         enrich_metrics_t **em)
{
    char errstr[256];
    if (port < 0)
        return 0;
    *m = metrics_new();
    *em = *m ? enrich_metrics_new(*m) : NULL;
    int bound = *em ? metrics_serve(*m, addr, (int)port, errstr, sizeof(errstr)) : -1;
    if (bound < 0) {
        fprintf(stderr, "enrichd: %s\n", *em ? errstr : "metrics: out of memory");
        return -1;
    }
    enr_conf_set_txn_cb(conf, enrich_metrics_on_txn, *em);
    fprintf(stderr, "enrichd: metrics on http://%s%s%s:%d/metrics\n", strchr(addr, ':') ? "[" : "",
            addr, strchr(addr, ':') ? "]" : "", bound);
    return 0;
}

enum { METRICS_PORT = 256, METRICS_LISTEN };

int main(int argc, char **argv)
{
    malloc_arenas_limit(); /* before librdkafka starts its threads */
    static const struct option opts[] = {{"bootstrap", 1, 0, 'b'},
                                         {"instance-id", 1, 0, 'i'},
                                         {"config", 1, 0, 'c'},
                                         {"set", 1, 0, 'X'},
                                         {"stats-ms", 1, 0, 's'},
                                         {"metrics-port", 1, 0, METRICS_PORT},
                                         {"metrics-listen", 1, 0, METRICS_LISTEN},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    enr_conf_t *conf = enr_conf_new();
    const char *bootstrap = getenv("KAFKA_BOOTSTRAP"), *metrics_addr = "127.0.0.1";
    long stats_ms = 5000, metrics_port = -1;
    metrics_t *metrics = NULL;
    enrich_metrics_t *em = NULL;
    char errstr[512], *end;
    int c;

    while ((c = getopt_long(argc, argv, "b:i:c:X:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 'i':
            if (enr_conf_set(conf, "instance.id", optarg, errstr, sizeof(errstr)) != ENR_CONF_OK) {
                fprintf(stderr, "enrichd: --instance-id: %s\n", errstr);
                return 2;
            }
            break;
        case 'c': if (load_file(conf, optarg)) return 2; break;
        case 'X': if (set(conf, optarg, "-X")) return 2; break;
        case 's': stats_ms = strtol(optarg, NULL, 10); break;
        case METRICS_PORT:
            metrics_port = strtol(optarg, &end, 10);
            if (end == optarg || *end || metrics_port < 0 || metrics_port > 65535) {
                fprintf(stderr, "enrichd: --metrics-port: expected 0..65535, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case METRICS_LISTEN: metrics_addr = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (bootstrap && enr_conf_set(conf, "kafka.bootstrap.servers", bootstrap, errstr,
                                  sizeof(errstr)) != ENR_CONF_OK) {
        fprintf(stderr, "enrichd: %s\n", errstr);
        return 2;
    }
    char v[8];
    size_t vn = sizeof(v);
    if (enr_conf_get(conf, "kafka.bootstrap.servers", v, &vn) != ENR_CONF_OK || vn <= 1) {
        /* librdkafka would try "localhost" forever, silently */
        fprintf(stderr, "enrichd: kafka.bootstrap.servers is not set (-b HOSTS, env "
                        "KAFKA_BOOTSTRAP or -c FILE)\n");
        enr_conf_destroy(conf);
        return 2;
    }
    if (start_metrics(metrics_addr, metrics_port, conf, &metrics, &em)) {
        enr_conf_destroy(conf);
        metrics_destroy(metrics);
        enrich_metrics_destroy(em);
        return 1;
    }
    enr_conf_t *again = enr_conf_dup(conf); /* for a new processor after ENR_ERR_SELF_FENCED */
    if (!again || !(processor = enr_processor_new(conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "enrichd: %s\n", again ? errstr : "out of memory");
        enr_conf_destroy(again);
        metrics_destroy(metrics);
        enrich_metrics_destroy(em);
        return 1;
    }
    enrich_metrics_attach(em, processor);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "enrichd: running (enrich %s)\n", enr_version_str());

    int rc = 0;
    long long last = now_ms(), renewed[3] = {0};
    for (;;) {
        rc = enr_poll(processor, 100);
        /* A fatal Kafka error (the transactional producer's, e.g. a broker lost mid-abort) or a
         * fence by its own rejoin (librdkafka #3437) ends the processor, not the work: a new
         * one fences what is left of it, restores its tasks and goes on from the last commit,
         * as a restarted process would. Three within a minute: something is wrong for good. */
        if ((rc == ENR_ERR_SELF_FENCED || rc == ENR_ERR_KAFKA_FATAL) && !stopping &&
            now_ms() - renewed[2] > 60000) {
            memmove(renewed + 1, renewed, 2 * sizeof(renewed[0]));
            renewed[0] = now_ms();
            fprintf(stderr, "enrichd: %s (%s): starting a new processor\n",
                    enr_processor_last_error(processor), enr_err2name((enr_err_t)rc));
            enrich_metrics_attach(em, NULL);
            enr_processor_t *old = processor;
            processor = NULL; /* a signal from here on stops the next one (stopping) */
            enr_processor_destroy(old, 1000);
            enr_conf_t *copy = enr_conf_dup(again);
            processor = copy ? enr_processor_new(copy, errstr, sizeof(errstr)) : NULL;
            if (!processor) {
                fprintf(stderr, "enrichd: %s\n", copy ? errstr : "out of memory");
                enr_conf_destroy(copy);
                enr_conf_destroy(again);
                metrics_stop(metrics);
                metrics_destroy(metrics);
                enrich_metrics_destroy(em);
                return 1;
            }
            enrich_metrics_attach(em, processor);
            if (stopping) /* a signal while it was being made */
                enr_stop(processor);
            continue;
        }
        if (rc < 0)
            break;
        if (stats_ms > 0 && now_ms() - last >= stats_ms) {
            log_stats(processor);
            last = now_ms();
        }
    }
    enr_conf_destroy(again);
    log_stats(processor);
    enr_err_t err = rc == ENR_ERR_STOPPED ? ENR_OK : (enr_err_t)rc;
    if (err) /* the reason is librdkafka's own words: which step failed, and how */
        fprintf(stderr, "enrichd: stopped: %s (%s): %s\n", enr_err2str(err), enr_err2name(err),
                *enr_processor_last_error(processor) ? enr_processor_last_error(processor)
                                                     : "no further detail");
    metrics_stop(metrics); /* no scrape reads the processor from here on */
    enrich_metrics_attach(em, NULL);
    enr_err_t done = enr_processor_destroy(processor, 10000); /* may still report a commit */
    metrics_destroy(metrics);
    enrich_metrics_destroy(em);
    fprintf(stderr, "enrichd: %s\n", done ? enr_err2str(done) : "stopped cleanly");
    return err || done ? 1 : 0;
}
