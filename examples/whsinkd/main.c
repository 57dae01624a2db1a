/*
 * whsinkd - load the enriched event topic into a warehouse, exactly once.
 *
 *   whsinkd -b 127.0.0.1:9092 -w sqlite:/var/lib/whsink/events.db
 *   whsinkd -c /etc/whsinkd.conf -X columns.promote=amount:double,sku:string
 *
 * The library in a nutshell: configure (a file of key = value lines, then flags), create a
 * sink, run it until SIGTERM or SIGINT, close it with a deadline (what is batched is
 * committed; what is not is re-read next time from the warehouse's own offsets), destroy.
 * While the warehouse is unreachable at start, creating the sink is retried with a backoff.
 * --metrics-port serves Prometheus /metrics (userevents_sink_*, see pkg/monitoring/).
 */
#include "malloc_arenas.h"
#include "metrics.h"
#include "secret.h"
#include "sink_metrics.h"
#include "whsink.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static whs_sink_t *volatile the_sink;
static volatile sig_atomic_t stopping;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: whsinkd [options]\n"
            "  -c, --config FILE       configuration file: key = value lines, # comments\n"
            "  -b, --bootstrap HOSTS   kafka.bootstrap.servers (or env KAFKA_BOOTSTRAP)\n"
            "  -w, --warehouse URL     warehouse.url: sqlite:PATH, file:DIR,\n"
            "                          postgres://user@host:port/db, clickhouse://host:port/db,\n"
            "                          clickhouse+https://host:port/db[?ca=FILE]\n"
            "                          (a URL with a password: env:NAME or @FILE, see -X)\n"
            "  -t, --topic TOPIC       topic to load (default events.enriched)\n"
            "  -g, --group ID          kafka.group.id (default whsink)\n"
            "  -i, --instance-id ID    kafka.group.instance.id: this sink in its group, the\n"
            "                          same across restarts (a restart then takes its\n"
            "                          partitions back at once); unique per group\n"
            "  -X, --set KEY=VALUE     any configuration property (repeatable; see\n"
            "                          CONFIGURATION.md); flags apply after the file. The value\n"
            "                          of any flag may be env:NAME or @FILE, as secrets should\n"
            "                          be (one on the command line is visible to all: warned)\n"
            "  -s, --stats SECONDS     log statistics every SECONDS (default 30, 0 = never)\n"
            "  -v, --verbose           log at info level (-vv: debug)\n"
            "      --metrics-port N    serve Prometheus /metrics on port N (0: any free port)\n"
            "      --metrics-listen A  address of /metrics (default 127.0.0.1)\n"
            "  -h, --help              this help\n"
            "SIGTERM or SIGINT: stop, commit what is batched (deadline shutdown.timeout.ms),\n"
            "exit 0. Exit 1 on a fatal error, 2 on a configuration error.\n");
}

/* Structured log lines on stderr: ts=... level=... msg="...". */
static void log_line(int level, const char *message, void *opaque)
{
    static const char *const names[8] = {"emerg", "alert", "crit", "error",
                                         "warn",  "notice", "info", "debug"};
    struct timespec ts;
    struct tm tm;
    char when[32];
    (void)opaque;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"", when, ts.tv_nsec / 1000000,
            names[level & 7]);
    for (const char *p = message; *p; p++)
        fputs(*p == '"' ? "\\\"" : *p == '\n' ? "\\n" : (char[2]){*p, 0}, stderr);
    fputs("\"\n", stderr);
}

static void on_error(whs_err_t err, int retriable, const char *reason, void *opaque)
{
    (void)reason; /* already logged by the library */
    sink_metrics_on_error(opaque, err, retriable); /* opaque: NULL without --metrics-port */
}

/* Serves /metrics when --metrics-port was given (@p port >= 0): 0, or -1. */
static int start_metrics(whs_conf_t *conf, const char *addr, int port, metrics_t **m,
                         sink_metrics_t **sm)
{
    char errstr[256];
    if (port < 0)
        return 0;
    *m = metrics_new();
    *sm = *m ? sink_metrics_new(*m) : NULL;
    int bound = *sm ? metrics_serve(*m, addr, port, errstr, sizeof(errstr)) : -1;
    if (bound < 0) {
        fprintf(stderr, "whsinkd: %s\n", *sm ? errstr : "metrics: out of memory");
        return -1;
    }
    whs_conf_set_commit_cb(conf, sink_metrics_on_commit, *sm);
    fprintf(stderr, "whsinkd: metrics on http://%s:%d/metrics\n", addr, bound);
    return 0;
}

static int set(whs_conf_t *conf, const char *key, const char *value, const char *where)
{
    char errstr[512];
    if (whs_conf_set(conf, key, value, errstr, sizeof(errstr)) != WHS_CONF_OK) {
        fprintf(stderr, "whsinkd: %s%s%s\n", where ? where : "", where ? ": " : "", errstr);
        return -1;
    }
    return 0;
}

/* A property from a flag: its value may be env:NAME or @FILE, and a secret given as it is (a
 * password, or a warehouse URL holding one) warns: the command line is visible to all. */
static int set_flag(whs_conf_t *conf, const char *key, const char *value)
{
    int secret = secret_key(key) || (strcmp(key, "warehouse.url") == 0 && secret_in_url(value));
    char *v = flag_value("whsinkd", key, value, secret);
    int rc = v ? set(conf, key, v, NULL) : -1;
    free(v);
    return rc;
}

/* Splits "KEY=VALUE" (the -X argument, modified in place). */
static int split_kv(char *kv, const char **key, const char **value)
{
    char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "whsinkd: expected KEY=VALUE, got \"%s\"\n", kv);
        return -1;
    }
    *eq = '\0';
    *key = kv;
    *value = eq + 1;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Reads "key = value" lines; blank lines and lines starting with # are skipped. */
static int load_file(whs_conf_t *conf, const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[4096], where[600];
    int lineno = 0, rc = 0;
    if (!fp) {
        fprintf(stderr, "whsinkd: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof(line), fp)) {
        lineno++;
        char *p = trim(line), *eq = strchr(p, '=');
        if (!*p || *p == '#')
            continue;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (!eq) {
            fprintf(stderr, "whsinkd: %s: expected key = value\n", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        rc = set(conf, trim(p), trim(eq + 1), where);
    }
    fclose(fp);
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    if (stopping) /* a second signal: no more waiting */
        _exit(130);
    stopping = 1;
    whs_stop(the_sink); /* async-signal-safe; NULL while the sink is being created */
}

static int sleep_unless_stopping(int ms)
{
    for (int i = 0; i < ms / 50 && !stopping; i++)
        usleep(50 * 1000);
    return stopping;
}

/* Creates the sink, retrying while the warehouse is not reachable yet; what waiting cannot
 * heal (a path that cannot be made, a schema refused, a Kafka client that cannot be created)
 * ends at once: NULL with *@p exit_code 2 (1 when out of memory, 0 when stopped). */
static whs_sink_t *create(whs_conf_t *conf, int *exit_code)
{
    char errstr[512];
    *exit_code = 0;
    for (int wait_ms = 500; !stopping; wait_ms = wait_ms < 30000 ? wait_ms * 2 : 30000) {
        whs_conf_t *copy = whs_conf_dup(conf); /* whs_sink_open() takes it on success */
        whs_sink_t *sink = NULL;
        whs_err_t rc = copy ? whs_sink_open(copy, &sink, errstr, sizeof(errstr)) : WHS_ERR_NOMEM;
        if (rc == WHS_OK)
            return sink;
        whs_conf_destroy(copy);
        if (rc != WHS_ERR_WAREHOUSE) {
            fprintf(stderr, "whsinkd: cannot start (%s): %s\n", whs_err2name(rc),
                    copy ? errstr : "out of memory");
            *exit_code = rc == WHS_ERR_NOMEM ? 1 : 2;
            return NULL;
        }
        fprintf(stderr, "whsinkd: cannot start yet (retrying in %d ms): %s\n", wait_ms, errstr);
        sleep_unless_stopping(wait_ms);
    }
    return NULL;
}

/* Runs until a signal, logging statistics every @p stats_s seconds. */
static whs_err_t run(whs_sink_t *sink, int stats_s)
{
    char json[2048];
    time_t next = time(NULL) + stats_s;
    while (!stopping) {
        int rc = whs_poll(sink, 500);
        if (rc < 0)
            return (whs_err_t)rc;
        if (stats_s > 0 && time(NULL) >= next) {
            whs_stats_json(sink, json, sizeof(json));
            fprintf(stderr, "whsinkd: stats %s\n", json);
            next = time(NULL) + stats_s;
        }
    }
    return WHS_OK;
}

typedef struct options {
    const char *keys[256], *values[256]; /* flags that set properties, in order */
    int n;
    const char *file, *metrics_addr;
    int verbose, stats_s, metrics_port;
} options_t;

/* Reads the command line. Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, options_t *o)
{
    static const struct option opts[] = {
        {"config", 1, 0, 'c'}, {"bootstrap", 1, 0, 'b'}, {"warehouse", 1, 0, 'w'},
        {"topic", 1, 0, 't'},  {"group", 1, 0, 'g'},     {"set", 1, 0, 'X'},
        {"instance-id", 1, 0, 'i'},
        {"stats", 1, 0, 's'},  {"verbose", 0, 0, 'v'},   {"help", 0, 0, 'h'},
        {"metrics-port", 1, 0, 256}, {"metrics-listen", 1, 0, 257}, {0, 0, 0, 0}};
    int c;
    *o = (options_t){.metrics_addr = "127.0.0.1", .stats_s = 30, .metrics_port = -1};
    while ((c = getopt_long(argc, argv, "c:b:w:t:g:i:X:s:vh", opts, NULL)) != -1) {
        const char *key = c == 'b' ? "kafka.bootstrap.servers" : c == 'w' ? "warehouse.url"
                          : c == 't' ? "topic" : c == 'g' ? "kafka.group.id"
                          : c == 'i' ? "kafka.group.instance.id" : NULL;
        if (o->n == 256) {
            fprintf(stderr, "whsinkd: too many options\n");
            return 2;
        }
        if (key) {
            o->keys[o->n] = key;
            o->values[o->n++] = optarg;
            continue;
        }
        switch (c) {
        case 'c': o->file = optarg; break;
        case 'X': if (split_kv(optarg, &o->keys[o->n], &o->values[o->n])) return 2; o->n++; break;
        case 's': o->stats_s = atoi(optarg); break;
        case 'v': o->verbose++; break;
        case 256: o->metrics_port = atoi(optarg); break;
        case 257: o->metrics_addr = optarg; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    return 0;
}

/* The configuration, by precedence: defaults < env KAFKA_BOOTSTRAP < the file < flags.
 * NULL (the reason printed) on an error. */
static whs_conf_t *configure(const options_t *o)
{
    whs_conf_t *conf = whs_conf_new();
    const char *env = getenv("KAFKA_BOOTSTRAP");
    int bad = (env && *env && set(conf, "kafka.bootstrap.servers", env, NULL)) ||
              (o->file && load_file(conf, o->file));
    for (int i = 0; !bad && i < o->n; i++)
        bad = set_flag(conf, o->keys[i], o->values[i]);
    if (!bad && o->verbose)
        bad = set(conf, "log.level", o->verbose > 1 ? "debug" : "info", NULL);
    /* What no retry can supply: said at once, exit 2 (not a retry loop). */
    static const char *const required[][2] = {
        {"kafka.bootstrap.servers", "-b HOSTS, env KAFKA_BOOTSTRAP or the config file"},
        {"warehouse.url", "-w URL or the config file"}};
    for (size_t i = 0; !bad && i < sizeof(required) / sizeof(required[0]); i++) {
        char v[8];
        size_t n = sizeof(v);
        if (whs_conf_get(conf, required[i][0], v, &n) != WHS_CONF_OK || n <= 1) {
            fprintf(stderr, "whsinkd: %s is not set (%s)\n", required[i][0], required[i][1]);
            bad = 1;
        }
    }
    if (bad) {
        whs_conf_destroy(conf);
        return NULL;
    }
    whs_conf_set_log_cb(conf, log_line, NULL);
    return conf;
}

/* Stops cleanly (deadline shutdown.timeout.ms), reports, frees. */
static void finish(whs_sink_t *sink, metrics_t *metrics, sink_metrics_t *sm)
{
    char json[2048];
    whs_err_t crc = whs_close(sink, -1);
    whs_stats_json(sink, json, sizeof(json));
    fprintf(stderr, "whsinkd: %s; stats %s\n",
            crc == WHS_OK ? "stopped cleanly" : "stopped, some rows left for the next run",
            json);
    the_sink = NULL;
    metrics_stop(metrics); /* no scrape reads the sink from here on */
    whs_sink_destroy(sink);
    metrics_destroy(metrics);
    sink_metrics_destroy(sm);
}

int main(int argc, char **argv)
{
    malloc_arenas_limit(); /* before librdkafka starts its threads */
    options_t o;
    metrics_t *metrics = NULL;
    sink_metrics_t *sm = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    whs_conf_t *conf = configure(&o);
    if (!conf || o.metrics_port > 65535 ||
        start_metrics(conf, o.metrics_addr, o.metrics_port, &metrics, &sm))
        return 2;
    whs_conf_set_error_cb(conf, on_error, sm);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int exit_code = 0;
    whs_sink_t *sink = create(conf, &exit_code);
    whs_conf_destroy(conf);
    if (!sink) {
        metrics_stop(metrics);
        metrics_destroy(metrics);
        sink_metrics_destroy(sm);
        return exit_code;
    }
    the_sink = sink;
    sink_metrics_attach(sm, sink);
    if (stopping)
        whs_stop(sink);
    whs_err_t err = run(sink, o.stats_s);
    if (err != WHS_OK)
        fprintf(stderr, "whsinkd: fatal: %s\n", whs_err2str(err));
    finish(sink, metrics, sm);
    return err == WHS_OK ? 0 : 1;
}
