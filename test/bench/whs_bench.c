/*
 * whs_bench.c - rows per second libwhsink loads into PostgreSQL and ClickHouse, each beside
 * the database's own bulk path loading the same rows in the same run:
 *
 *   sink:  N EnrichedEvents on a Kafka topic -> whs_sink (consume, decode, map, batch, COPY or
 *          gzip JSONEachRow INSERT, offsets) until all N are committed; timed from the first
 *          record consumed to the last commit (the group join before it is not throughput).
 *   peer:  the same rows exported from the sink's table into the database's bulk format
 *          (PostgreSQL: COPY text from `\copy ... TO`; ClickHouse: JSONEachRow, gzipped like
 *          the sink's bodies), then loaded into an identical empty table by `psql \copy FROM`
 *          or one `curl` HTTP INSERT; timed around that command.
 *
 * Each repetition uses fresh tables and a fresh consumer group; the best of each is kept.
 * Output: "ROW\tname\tfigure\tpeer\tratio\tgoal\tmeets" and "NOTE\t..." lines on stdout (the
 * format test/bench/run.sh prints), details on stderr.
 * Environment: KAFKA_BOOTSTRAP, POSTGRES_URL, CLICKHOUSE_URL (all required; see whs_bench.sh),
 * WHS_BENCH_ROWS (200000), WHS_BENCH_REPS (3), WHS_BENCH_ONLY (postgres|clickhouse),
 * WHS_BENCH_TOPIC (reuse a topic holding exactly WHS_BENCH_ROWS records), WHS_BENCH_SET
 * ("key=value,..." sink settings to try).
 */
#include "whs_testevents.h"
#include "whsink.h"

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define GOAL 0.8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system, every thread) this process has used. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && atol(v) > 0 ? atol(v) : dflt;
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "whs_bench: failed (%d): %s\n", rc, cmd);
    return rc;
}

/* ---- the input ---------------------------------------------------------------------------- */

static int create_topic(rd_kafka_t *rk, const char *topic)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 3, 1, errstr, sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = ev && !rd_kafka_event_error(ev) ? 0 : -1;
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    sleep(2); /* let the leader elections settle before producing */
    return rc;
}

static int produce(const char *bootstrap, const char *topic, long n)
{
    char errstr[256], key[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "20", NULL, 0);
    rd_kafka_conf_set(conf, "compression.type", "zstd", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk || create_topic(rk, topic))
        return -1;
    wt_opts_t o = {.nonce = (uint32_t)getpid(), .users = 5000, .step_ms = 2000};
    for (long i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = wt_event((uint64_t)i, &o, &len);
        int klen = snprintf(key, sizeof(key), "user-%d", wt_user((uint64_t)i, &o));
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(buf, len),
                                 RD_KAFKA_V_KEY(key, (size_t)klen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
    }
    int rc = rd_kafka_flush(rk, 120000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the sink ----------------------------------------------------------------------------- */

typedef struct counter {
    long rows;
    double last_commit;
} counter_t;

static void on_commit(const char *topic, int32_t partition, int64_t next, int64_t rows,
                      int64_t dead, void *opaque)
{
    counter_t *c = opaque;
    (void)topic, (void)partition, (void)next, (void)dead;
    c->rows += rows;
    c->last_commit = now_s();
}

static void quiet(int level, const char *msg, void *opaque)
{
    (void)opaque;
    if (level <= (getenv("WHS_BENCH_DEBUG") ? 7 : 3))
        fprintf(stderr, "  sink %.3f: %s\n", now_s(), msg);
}

/* Loads the topic into @p table of @p url; returns rows per second, or -1. */
static double sink_rate(const char *bootstrap, const char *topic, const char *url,
                        const char *table, long n, const char *compression)
{
    char errstr[512], group[256];
    counter_t c = {0};
    whs_conf_t *conf = whs_conf_new();
    snprintf(group, sizeof(group), "bench-%s", table);
    const char *kv[][2] = {{"kafka.bootstrap.servers", bootstrap},
                           {"kafka.group.id", group},
                           {"topic", topic},
                           {"warehouse.url", url},
                           {"table", table},
                           {"dead_letter.topic", ""},
                           {"columns.promote", "amount:double,sku:string"},
                           {"batch.max.ms", "100"}, /* the tail of the backlog: see NOTE */
                           {"clickhouse.compression", compression},
                           {"log.level", getenv("WHS_BENCH_DEBUG") ? "debug" : "error"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (whs_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "whs_bench: %s\n", errstr);
            return -1;
        }
    char extra[1024]; /* WHS_BENCH_SET="key=value,key=value": settings to try */
    snprintf(extra, sizeof(extra), "%s", getenv("WHS_BENCH_SET") ? getenv("WHS_BENCH_SET") : "");
    for (char *kvp = strtok(extra, ","); kvp; kvp = strtok(NULL, ",")) {
        char *eq = strchr(kvp, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (whs_conf_set(conf, kvp, eq + 1, errstr, sizeof(errstr)))
            fprintf(stderr, "whs_bench: %s\n", errstr);
    }
    whs_conf_set_commit_cb(conf, on_commit, &c);
    whs_conf_set_log_cb(conf, quiet, NULL);
    whs_sink_t *s = whs_sink_new(conf, errstr, sizeof(errstr));
    if (!s) {
        fprintf(stderr, "whs_bench: %s\n", errstr);
        whs_conf_destroy(conf);
        return -1;
    }
    double t0 = 0, deadline = now_s() + 600;
    while (c.rows < n && now_s() < deadline) {
        double before = now_s(); /* t0: the start of the poll that consumed first */
        if (whs_poll(s, 10) < 0)
            break;
        if (t0 == 0 && whs_stat(s, WHS_STAT_CONSUMED) > 0)
            t0 = before;
        static double next_trace;
        if (getenv("WHS_BENCH_TRACE") && now_s() >= next_trace) {
            fprintf(stderr, "  %.3f consumed %lld loaded %lld paused %lld buffered %lld\n", now_s(),
                    (long long)whs_stat(s, WHS_STAT_CONSUMED),
                    (long long)whs_stat(s, WHS_STAT_ROWS_LOADED),
                    (long long)whs_stat(s, WHS_STAT_PAUSED),
                    (long long)whs_stat(s, WHS_STAT_BUFFERED_ROWS));
            next_trace = now_s() + 0.05;
        }
    }
    char stats[1024];
    whs_stats_json(s, stats, sizeof(stats));
    fprintf(stderr, "  sink stats: %s\n", stats);
    whs_close(s, 30000);
    whs_sink_destroy(s);
    if (c.rows < n || t0 == 0)
        return -1;
    return (double)n / (c.last_commit - t0);
}

/* ---- the peers ---------------------------------------------------------------------------- */

/* Runs @p sql on @p c; 0 or -1. */
static int pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "whs_bench: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Writes the sink's table as COPY text to @p file and creates an identical empty table
 * TABLE_peer with the same day partitions (untimed set-up of the peer). */
static int pg_prepare_peer(const char *url, const char *table, const char *file)
{
    char sql[1024];
    PGconn *c = PQconnectdb(url);
    FILE *out = fopen(file, "w");
    int rc = PQstatus(c) == CONNECTION_OK && out ? 0 : -1;
    snprintf(sql, sizeof(sql), "COPY (SELECT * FROM %s) TO STDOUT", table);
    PGresult *r = rc ? NULL : PQexec(c, sql);
    if (r && PQresultStatus(r) == PGRES_COPY_OUT) {
        char *buf;
        int len;
        while ((len = PQgetCopyData(c, &buf, 0)) > 0) {
            fwrite(buf, 1, (size_t)len, out);
            PQfreemem(buf);
        }
    } else {
        rc = -1;
    }
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
    if (out)
        fclose(out);
    snprintf(sql, sizeof(sql), "CREATE TABLE %s_peer (LIKE %s) PARTITION BY RANGE (dt)", table,
             table);
    if (rc == 0 && pg_exec(c, sql) == 0) {
        snprintf(sql, sizeof(sql),
                 "SELECT format('CREATE TABLE %s_peer_%%s PARTITION OF %s_peer"
                 " FOR VALUES FROM (%%L) TO (%%L)', to_char(d, 'YYYYMMDD'), d, d + 1) FROM "
                 "(SELECT DISTINCT dt AS d FROM %s) x",
                 table, table, table);
        r = PQexec(c, sql);
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && !rc; i++)
            rc = pg_exec(c, PQgetvalue(r, i, 0));
        PQclear(r);
    } else {
        rc = -1;
    }
    PQfinish(c);
    return rc;
}

/* PostgreSQL: the same rows loaded by psql's \copy FROM a file into an identical table. */
static double pg_copy_rate(const char *url, const char *table, long n, const char *dir)
{
    char cmd[4096], file[600];
    snprintf(file, sizeof(file), "%s/%s.copy", dir, table);
    if (pg_prepare_peer(url, table, file))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "psql -X -q -v ON_ERROR_STOP=1 '%s' -c \"\\copy %s_peer FROM "
             "'%s'\"",
             url, table, file);
    double t0 = now_s();
    if (run(cmd))
        return -1;
    double rate = (double)n / (now_s() - t0);
    unlink(file);
    return rate;
}

/* ClickHouse: the sink's rows as JSONEachRow (gzipped when @p gzip, like the sink's bodies),
 * then one HTTP INSERT of that file with curl. */
static double ch_insert_rate(const char *http, const char *table, long n, const char *dir, int gzip)
{
    char cmd[4096], file[600];
    snprintf(file, sizeof(file), "%s/%s.json%s", dir, table, gzip ? ".gz" : "");
    snprintf(cmd, sizeof(cmd),
             "curl -sSf '%s' --data-binary 'SELECT * FROM %s FORMAT "
             "JSONEachRow' | %s > '%s' && curl -sSf '%s' --data-binary 'CREATE TABLE "
             "%s_peer AS %s'",
             http, table, gzip ? "gzip -1" : "cat", file, http, table, table);
    if (run(cmd))
        return -1;
    snprintf(cmd, sizeof(cmd),
             "curl -sSf '%s&query=INSERT%%20INTO%%20%s_peer%%20FORMAT%%20"
             "JSONEachRow' %s --data-binary '@%s'",
             http, table, gzip ? "-H 'Content-Encoding: gzip'" : "", file);
    double t0 = now_s();
    if (run(cmd))
        return -1;
    double rate = (double)n / (now_s() - t0);
    unlink(file);
    return rate;
}

static void report(const char *name, double sink, double peer)
{
    double ratio = sink > 0 && peer > 0 ? sink / peer : 0;
    printf("ROW\t%s\t%.0f rows/s\t%.0f rows/s\t%.2f\t>= %.1f\t%s\n", name, sink, peer, ratio, GOAL,
           ratio >= GOAL ? "yes" : "no");
    fflush(stdout);
}

/* Best-of-@p reps of the sink and of the peer, alternating, each on fresh tables. @p kind:
 * "postgres", "clickhouse-gzip" or "clickhouse-plain". */
static int bench(const char *kind, const char *bootstrap, const char *topic, const char *url,
                 long n, long reps, const char *dir)
{
    int gzip = strcmp(kind, "clickhouse-gzip") == 0;
    char http[600] = "";
    double best_sink = 0, best_peer = 0;
    if (kind[0] == 'c') {
        const char *hp = strstr(url, "://") + 3, *slash = strchr(hp, '/');
        snprintf(http, sizeof(http), "http://%.*s/?database=%s", (int)(slash - hp), hp, slash + 1);
    }
    for (long r = 0; r < reps; r++) {
        char table[64];
        snprintf(table, sizeof(table), "bench_%d_%c%ld", (int)getpid(), gzip ? 'g' : kind[0], r);
        double cpu0 = cpu_s();
        double sink = sink_rate(bootstrap, topic, url, table, n, gzip ? "gzip" : "none");
        double cpu = cpu_s() - cpu0; /* the sink's own CPU: less noisy than its rate */
        double peer = kind[0] == 'p' ? pg_copy_rate(url, table, n, dir)
                                     : ch_insert_rate(http, table, n, dir, gzip);
        fprintf(stderr, "  %s rep %ld: sink %.0f rows/s (%.2f us CPU/row), peer %.0f rows/s\n",
                kind, r + 1, sink, cpu * 1e6 / (double)n, peer);
        if (sink < 0 || peer < 0)
            return -1;
        best_sink = sink > best_sink ? sink : best_sink;
        best_peer = peer > best_peer ? peer : best_peer;
    }
    report(kind[0] == 'p' ? "whsink -> PostgreSQL (vs psql \\copy FROM file)"
           : gzip         ? "whsink -> ClickHouse, gzip (vs curl INSERT, .gz)"
                          : "whsink -> ClickHouse, plain (vs curl INSERT)",
           best_sink, best_peer);
    return 0;
}

int main(void)
{
    const char *bootstrap = getenv("KAFKA_BOOTSTRAP"), *pg = getenv("POSTGRES_URL"),
               *ch = getenv("CLICKHOUSE_URL"), *only = getenv("WHS_BENCH_ONLY");
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    long n = env_long("WHS_BENCH_ROWS", 200000), reps = env_long("WHS_BENCH_REPS", 3);
    char topic[128];
    if (!bootstrap || !pg || !ch) {
        fprintf(stderr, "whs_bench: KAFKA_BOOTSTRAP, POSTGRES_URL and CLICKHOUSE_URL must be "
                        "set (test/bench/whs_bench.sh sets them)\n");
        return 1;
    }
    snprintf(topic, sizeof(topic), "whs-bench-%d-%ld", (int)getpid(), (long)time(NULL));
    if (getenv("WHS_BENCH_TOPIC")) { /* reuse a topic of exactly WHS_BENCH_ROWS records */
        snprintf(topic, sizeof(topic), "%s", getenv("WHS_BENCH_TOPIC"));
    } else {
        fprintf(stderr, "whs_bench: producing %ld EnrichedEvents to %s\n", n, topic);
        if (produce(bootstrap, topic, n))
            return 1;
    }
    int rc = 0;
    if (!only || !strcmp(only, "postgres"))
        rc |= bench("postgres", bootstrap, topic, pg, n, reps, dir);
    if (!only || !strcmp(only, "clickhouse")) {
        rc |= bench("clickhouse-plain", bootstrap, topic, ch, n, reps, dir);
        rc |= bench("clickhouse-gzip", bootstrap, topic, ch, n, reps, dir);
    }
    printf("NOTE\twhsink: %ld rows (27 columns, JSON properties), 3 partitions, best of %ld; sink "
           "timed from its first record to its last commit (batch.max.ms=100 so the backlog's "
           "tail does not wait a full linger); peers: the same rows exported from the sink's "
           "table, loaded into an identical table\n",
           n, reps);
    printf("NOTE\twhsink: clickhouse.compression=auto (the default) sends plain bodies to a "
           "loopback server and gzip to any other: both rows are shown\n");
    return rc ? 1 : 0;
}
