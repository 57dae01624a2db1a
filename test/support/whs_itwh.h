/*
 * whs_itwh.h - what libwhsink's integration tests share: a view of each warehouse (the rows
 * a test table holds, read with the warehouse's own client library, none of the sink's code),
 * a producer of the deterministic EnrichedEvent stream (whs_testevents.h) to a real broker,
 * and ways to run a sink: in this process, or as a build/whsinkd child to kill.
 *
 * Header-only: it is used by it_whs.c and it_whs_faults.c, which the Makefile links with
 * testutil.o and itutil.o only. A backend whose service is not there fails the test: the
 * runner (test/integration/run.sh) starts every service, so a missing URL is a bug.
 */
#ifndef WHS_ITWH_H
#define WHS_ITWH_H

#include "itutil.h"
#include "testutil.h"
#include "whs_testevents.h"
#include "whsink.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

typedef struct wh {
    char kind[16]; /* sqlite, file, postgres, clickhouse */
    char url[1024];
    char table[64];
    char *dir;      /* temp dir of sqlite and file */
    char http[512]; /* clickhouse: http://host:port/?database=db */
} wh_t;

static inline int64_t wh_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void wh_sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* A warehouse of @p kind with a table named after @p tag; aborts the test when the
 * service of a network backend is not there. */
static inline void wh_init(wh_t *w, const char *kind, const char *tag)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->kind, sizeof(w->kind), "%s", kind);
    snprintf(w->table, sizeof(w->table), "t_%s_%d_%ld", tag, (int)getpid(),
             (long)(time(NULL) % 100000));
    if (!strcmp(kind, "sqlite") || !strcmp(kind, "file")) {
        w->dir = tu_tempdir("whs-it");
        snprintf(w->url, sizeof(w->url), "%s:%s%s", kind, w->dir,
                 kind[0] == 's' ? "/warehouse.db" : "");
        return;
    }
    const char *env = !strcmp(kind, "postgres") ? "POSTGRES_URL" : "CLICKHOUSE_URL";
    const char *url = getenv(env);
    if (!url || !*url) {
        fprintf(stderr,
                "FAIL: %s is not set: the %s tests need the server that "
                "test/integration/run.sh starts\n",
                env, kind);
        fail();
    }
    snprintf(w->url, sizeof(w->url), "%s", url);
    if (kind[0] == 'c') { /* clickhouse://host:port/db -> http://host:port/?database=db */
        const char *hp = strstr(url, "://") + 3, *slash = strchr(hp, '/');
        snprintf(w->http, sizeof(w->http), "http://%.*s/?database=%s",
                 (int)(slash ? slash - hp : (long)strlen(hp)), hp, slash ? slash + 1 : "default");
    }
}

static inline void wh_free(wh_t *w)
{
    if (w->dir) {
        tu_rmrf(w->dir);
        free(w->dir);
    }
}

/* ---- SQL ---------------------------------------------------------------------------------- */

typedef struct wh_body {
    char *data;
    size_t len;
} wh_body_t;

static inline size_t wh_curl_write(char *p, size_t size, size_t n, void *opaque)
{
    wh_body_t *b = opaque;
    char *nd = realloc(b->data, b->len + size * n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, size * n);
    b->data = nd;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* Expands "{T}" in @p sql to the table name. */
static inline void wh_expand(const wh_t *w, const char *sql, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = sql; *p && o + 70 < size; p++) {
        if (p[0] == '{' && p[1] == 'T' && p[2] == '}') {
            o += (size_t)snprintf(out + o, size - o, "%s", w->table);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* The first column of the first row of @p sql ({T} = the table), as text; "" for NULL or
 * no row; NULL on an error (its message in @p error). Static storage. */
static inline const char *wh_sql_try(wh_t *w, const char *sql, char *error, size_t size)
{
    static char result[4096];
    char q[8192];
    wh_expand(w, sql, q, sizeof(q));
    result[0] = '\0';
    if (!strcmp(w->kind, "sqlite")) {
        sqlite3 *db;
        sqlite3_stmt *st = NULL;
        int bad = sqlite3_open(w->url + 7, &db) || sqlite3_prepare_v2(db, q, -1, &st, NULL);
        if (bad)
            snprintf(error, size, "sqlite: %.4000s: %.2000s", q, sqlite3_errmsg(db));
        if (!bad && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(result, sizeof(result), "%s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return bad ? NULL : result;
    } else if (!strcmp(w->kind, "postgres")) {
        PGconn *c = PQconnectdb(w->url);
        PGresult *r = PQexec(c, q);
        int bad = PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK;
        if (bad)
            snprintf(error, size, "postgres: %.4000s: %.2000s", q, PQerrorMessage(c));
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(result, sizeof(result), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return bad ? NULL : result;
    } else {
        CURL *h = curl_easy_init();
        wh_body_t body = {0};
        long status = 0;
        curl_easy_setopt(h, CURLOPT_URL, w->http);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wh_curl_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        CURLcode cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        int bad = cc != CURLE_OK || status != 200;
        if (bad)
            snprintf(error, size, "clickhouse: %.4000s: %s %.2000s", q, curl_easy_strerror(cc),
                     body.data ? body.data : "");
        if (!bad && body.data) {
            body.data[strcspn(body.data, "\t\n")] = '\0';
            snprintf(result, sizeof(result), "%s", strcmp(body.data, "\\N") ? body.data : "");
        }
        free(body.data);
        return bad ? NULL : result;
    }
}

/* wh_sql_try() that fails the test on an error. */
static inline const char *wh_sql(wh_t *w, const char *sql)
{
    char error[8192];
    const char *r = wh_sql_try(w, sql, error, sizeof(error));
    if (!r)
        fail_msg("%s", error);
    return r;
}

static inline int64_t wh_int(wh_t *w, const char *sql)
{
    return strtoll(wh_sql(w, sql), NULL, 10);
}

/* ---- files -------------------------------------------------------------------------------- */

/* Every row of a file: warehouse, parsed, with the dt and bucket of its directory. */
typedef struct wh_frow {
    cJSON *row;
    char path_dt[11];
    int path_bucket;
} wh_frow_t;

static inline char *wh_unzstd(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *in = malloc((size_t)n + 1);
    size_t got = fread(in, 1, (size_t)n, fp);
    fclose(fp);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, got, 0};
    while (ib.pos < ib.size) {
        if (cap - len < (1 << 16))
            out = realloc(out, cap *= 2);
        ZSTD_outBuffer ob = {out + len, cap - len - 1, 0};
        if (ZSTD_isError(ZSTD_decompressStream(ds, &ob, &ib)))
            break;
        len += ob.pos;
    }
    out[len] = '\0';
    ZSTD_freeDStream(ds);
    free(in);
    return out;
}

/* Reads every committed file of the table; *@p n rows. Free with wh_frows_free(). */
static inline wh_frow_t *wh_frows(wh_t *w, size_t *n)
{
    char cmd[2048], path[2048];
    size_t cap = 1024;
    wh_frow_t *rows = malloc(cap * sizeof(*rows));
    *n = 0;
    snprintf(cmd, sizeof(cmd), "find '%s/%s' -name 'part-*.ndjson.zst' 2>/dev/null", w->dir,
             w->table);
    FILE *p = popen(cmd, "r");
    while (p && fgets(path, sizeof(path), p)) {
        path[strcspn(path, "\n")] = '\0';
        char *text = wh_unzstd(path), *dt = strstr(path, "/dt="), *b = strstr(path, "/bucket=");
        for (char *line = text; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (*n == cap)
                rows = realloc(rows, (cap *= 2) * sizeof(*rows));
            rows[*n].row = cJSON_Parse(line);
            snprintf(rows[*n].path_dt, 11, "%s", dt ? dt + 4 : "");
            rows[*n].path_bucket = b ? atoi(b + 8) : -1;
            (*n)++;
            line = nl ? nl + 1 : line + strlen(line);
        }
        free(text);
    }
    if (p)
        pclose(p);
    return rows;
}

static inline void wh_frows_free(wh_frow_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(rows[i].row);
    free(rows);
}

static inline const char *wh_fstr(const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static inline double wh_fnum(const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static inline int wh_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- counts and checks ---------------------------------------------------------------- */

typedef struct wh_counts {
    int64_t rows;
    int64_t distinct_ids;
    int64_t misplaced; /* file: rows whose dt or bucket differs from their directory's */
} wh_counts_t;

static inline wh_counts_t wh_counts(wh_t *w)
{
    wh_counts_t c = {0};
    if (strcmp(w->kind, "file")) {
        c.rows = wh_int(w, "SELECT count(*) FROM {T}");
        c.distinct_ids = wh_int(w, "SELECT count(DISTINCT event_id) FROM {T}");
        return c;
    }
    size_t n;
    wh_frow_t *rows = wh_frows(w, &n);
    const char **ids = malloc((n + 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ids[i] = wh_fstr(rows[i].row, "event_id");
        c.misplaced += strcmp(wh_fstr(rows[i].row, "dt"), rows[i].path_dt) != 0 ||
                       (int)wh_fnum(rows[i].row, "user_bucket") != rows[i].path_bucket;
    }
    qsort(ids, n, sizeof(*ids), wh_cmp_str);
    for (size_t i = 0; i < n; i++)
        c.distinct_ids += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
    c.rows = (int64_t)n;
    free(ids);
    wh_frows_free(rows, n);
    return c;
}

/* Rows in the table; 0 while the sink has not created it yet. For file: only a quick measure
 * of progress (the sum of the checkpointed offsets: records of a topic without gaps), exact
 * counts come from wh_counts(). */
static inline int64_t wh_rows(wh_t *w)
{
    char error[8192];
    if (!strcmp(w->kind, "file")) {
        char cmd[2048];
        long long sum = 0, v;
        snprintf(cmd, sizeof(cmd), "cat '%s/%s'/_whs_offsets/* 2>/dev/null", w->dir, w->table);
        FILE *p = popen(cmd, "r");
        while (p && fscanf(p, "%lld", &v) == 1)
            sum += v;
        if (p)
            pclose(p);
        return sum;
    }
    const char *r = wh_sql_try(w, "SELECT count(*) FROM {T}", error, sizeof(error));
    return r ? strtoll(r, NULL, 10) : 0;
}

/* Asserts the table holds records [0, n) of the stream @p o: each once, on its day. */
static inline void wh_assert_exactly(wh_t *w, uint64_t n, const wt_opts_t *o)
{
    wh_counts_t c = wh_counts(w);
    fprintf(stderr, "  %s %s: count(*) = %lld, count(distinct event_id) = %lld, expected %llu\n",
            w->kind, w->table, (long long)c.rows, (long long)c.distinct_ids, (unsigned long long)n);
    assert_int_equal(c.rows, (int64_t)n);
    assert_int_equal(c.distinct_ids, (int64_t)n);
    assert_int_equal(c.misplaced, 0);
    if (!strcmp(w->kind, "file"))
        return;
    char sql[512], day[11];
    int64_t first = wt_event_time(0, o) / 86400000, last = wt_event_time(n - 1, o) / 86400000;
    if (!strcmp(w->kind, "postgres")) /* one partition (child table) per day */
        assert_int_equal(wh_int(w, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                   "'{T}'::regclass"),
                         last - first + 1);
    if (!strcmp(w->kind, "clickhouse"))
        assert_int_equal(wh_int(w, "SELECT count(DISTINCT partition) FROM system.parts WHERE "
                                   "database = currentDatabase() AND table = '{T}' AND active"),
                         last - first + 1);
    for (int64_t d = first; d <= last; d++) { /* rows of each day */
        int64_t expected = 0;
        for (uint64_t i = 0; i < n; i++)
            expected += wt_event_time(i, o) / 86400000 == d;
        time_t secs = (time_t)(d * 86400);
        strftime(day, sizeof(day), "%Y-%m-%d", gmtime(&secs));
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM {T} WHERE dt = '%s'", day);
        assert_int_equal(wh_int(w, sql), expected);
        if (!strcmp(w->kind, "postgres")) { /* and they sit in that day's partition */
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM {T}_p%.4s%.2s%.2s", day, day + 5,
                     day + 8);
            assert_int_equal(wh_int(w, sql), expected);
        }
    }
}

/* The SQL text of event_time, per dialect, as 'YYYY-MM-DD HH:MM:SS' (seconds). */
static inline const char *wh_time_expr(const wh_t *w)
{
    if (!strcmp(w->kind, "postgres"))
        return "to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')";
    if (!strcmp(w->kind, "clickhouse"))
        return "toString(event_time)";
    return "substr(event_time, 1, 19)";
}

static inline const char *wh_seq_expr(const wh_t *w)
{
    if (!strcmp(w->kind, "postgres"))
        return "properties->>'seq'";
    if (!strcmp(w->kind, "clickhouse"))
        return "visitParamExtractInt(properties, 'seq')";
    return "json_extract(properties, '$.seq')";
}

/* Asserts the columns of the row of record @p i (SQL backends). */
static inline void wh_assert_row(wh_t *w, uint64_t i, const wt_opts_t *o)
{
    char id[37], sql[512], expect[64];
    wt_event_id_text(i, o->nonce, id);
#define WH_COL(expr, want)                                                                         \
    do {                                                                                           \
        snprintf(sql, sizeof(sql), "SELECT %s FROM {T} WHERE event_id = '%s'", expr, id);          \
        const char *got = wh_sql(w, sql);                                                          \
        if (strcmp(got, want))                                                                     \
            fail_msg("%s row %llu: %s = \"%s\", expected \"%s\"", w->kind, (unsigned long long)i,  \
                     expr, got, want);                                                             \
    } while (0)
    snprintf(expect, sizeof(expect), "user-%d", wt_user(i, o));
    WH_COL("user_id", expect);
    WH_COL("type", wt_types[i % 3]);
    WH_COL("geo_city", "Berlin");
    WH_COL("ua_browser", "Firefox");
    time_t secs = (time_t)(wt_event_time(i, o) / 1000);
    strftime(expect, sizeof(expect), "%Y-%m-%d %H:%M:%S", gmtime(&secs));
    WH_COL(wh_time_expr(w), expect);
    snprintf(expect, sizeof(expect), "%llu", (unsigned long long)i);
    WH_COL(wh_seq_expr(w), expect);
    snprintf(expect, sizeof(expect), "%d", (int)(i % 1000) + 1);
    WH_COL("session_seq", expect);
#undef WH_COL
}

/* ---- Kafka ---------------------------------------------------------------------------- */

static inline rd_kafka_t *wh_producer(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), NULL, 0);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "10", NULL, 0);
    rd_kafka_conf_set(conf, "partitioner", "murmur2_random", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        fail_msg("producer: %s", errstr);
    return rk;
}

static inline void wh_flush(rd_kafka_t *rk)
{
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("producer: %d records not delivered", rd_kafka_outq_len(rk));
}

/* Produces records [from, to) of the stream @p o to @p topic, keyed by user id. */
static inline void wh_produce(const char *topic, uint64_t from, uint64_t to, const wt_opts_t *o)
{
    rd_kafka_t *rk = wh_producer();
    char key[32];
    for (uint64_t i = from; i < to; i++) {
        size_t len;
        uint8_t *buf = wt_event(i, o, &len);
        int klen = snprintf(key, sizeof(key), "user-%d", wt_user(i, o));
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(buf, len),
                                 RD_KAFKA_V_KEY(key, (size_t)klen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 50);
        rd_kafka_poll(rk, 0);
    }
    wh_flush(rk);
    rd_kafka_destroy(rk);
}

/* Produces @p n values that are not EnrichedEvents (dead-letter material). */
static inline void wh_produce_garbage(const char *topic, int n)
{
    rd_kafka_t *rk = wh_producer();
    for (int i = 0; i < n; i++)
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("\xff\xff\xff\xff", 4),
                          RD_KAFKA_V_KEY("garbage", 7), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    wh_flush(rk);
    rd_kafka_destroy(rk);
}

/* ---- running a sink ------------------------------------------------------------------- */

static inline void wh_quiet_log(int level, const char *message, void *opaque)
{
    (void)opaque;
    if (level <= 4)
        fprintf(stderr, "  [sink %d] %s\n", level, message);
}

/* An in-process sink on @p w reading @p topic, with extra "key=value" settings (NULL end). */
static inline whs_sink_t *wh_sink(wh_t *w, const char *topic, const char *const *extra)
{
    char errstr[512], group[300], dlq[300];
    whs_conf_t *conf = whs_conf_new();
    snprintf(group, sizeof(group), "g-%s", topic);
    snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
    const char *kv[][2] = {{"kafka.bootstrap.servers", it_bootstrap()},
                           {"kafka.group.id", group},
                           {"topic", topic},
                           {"dead_letter.topic", dlq},
                           {"warehouse.url", w->url},
                           {"table", w->table},
                           {"batch.max.ms", "200"},
                           {"retry.backoff.max.ms", "1000"},
                           {"file.fsync", "false"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (whs_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)))
            fail_msg("%s: %s", kv[i][0], errstr);
    for (size_t i = 0; extra && extra[i]; i++) {
        char key[128];
        const char *eq = strchr(extra[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - extra[i]), extra[i]);
        if (whs_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)))
            fail_msg("%s: %s", extra[i], errstr);
    }
    whs_conf_set_log_cb(conf, wh_quiet_log, NULL);
    whs_sink_t *s = whs_sink_new(conf, errstr, sizeof(errstr));
    if (!s)
        fail_msg("whs_sink_new: %s", errstr);
    return s;
}

/*
 * Polls @p s (may be NULL: a child runs the sink) until the table holds @p rows or
 * @p timeout_ms passes, then @p settle_ms more (so extra rows would show). Returns the rows.
 */
static inline int64_t wh_wait_rows(wh_t *w, whs_sink_t *s, int64_t rows, int timeout_ms,
                                   int settle_ms)
{
    int64_t deadline = wh_now_ms() + timeout_ms, next_check = 0, have = 0;
    while (wh_now_ms() < deadline) {
        if (s)
            assert_true(whs_poll(s, 100) >= 0);
        else
            wh_sleep_ms(100);
        if (wh_now_ms() >= next_check) {
            have = wh_rows(w);
            next_check = wh_now_ms() + 500;
            if (have >= rows)
                break;
        }
    }
    for (int64_t until = wh_now_ms() + settle_ms; wh_now_ms() < until;)
        s ? (void)whs_poll(s, 100) : wh_sleep_ms(100);
    return settle_ms ? wh_rows(w) : have;
}

/* Starts build/whsinkd on @p w and @p topic; its stderr goes to @p log. */
static inline pid_t wh_spawn(wh_t *w, const char *topic, const char *batch_rows, const char *log)
{
    char exe[512], table[128], rows[64], group[300], dlq[300];
    const char *build = getenv("UE_BUILD_DIR");
    snprintf(exe, sizeof(exe), "%s/whsinkd", build && *build ? build : "build");
    snprintf(table, sizeof(table), "table=%s", w->table);
    snprintf(rows, sizeof(rows), "batch.max.rows=%s", batch_rows);
    snprintf(group, sizeof(group), "g-%s", topic);
    snprintf(dlq, sizeof(dlq), "dead_letter.topic=%s.dlq", topic);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execl(exe, exe, "-b", it_bootstrap(), "-w", w->url, "-t", topic, "-g", group, "-X", table,
              "-X", rows, "-X", dlq, "-X", "batch.max.ms=100", "-X", "retry.backoff.max.ms=1000",
              "-X", "file.fsync=false", "-X", "kafka.session.timeout.ms=6000", "-X",
              "kafka.heartbeat.interval.ms=500", "-s", "0", (char *)NULL);
        fprintf(stderr, "exec %s failed\n", exe);
        _exit(127);
    }
    return pid;
}

/* Sends @p sig to @p pid and reaps it; returns its wait status. */
static inline int wh_kill(pid_t pid, int sig)
{
    int status = 0;
    kill(pid, sig);
    waitpid(pid, &status, 0);
    return status;
}

/* A topic for one test: "<prefix>.<tag>" with @p partitions partitions. */
static inline void wh_topic(char *out, size_t size, const char *tag, int partitions)
{
    snprintf(out, size, "%s.%s", it_unique_prefix(), tag);
    if (it_create_topic(out, partitions))
        fail_msg("cannot create topic %s", out);
}

#endif
