/*
 * test_whs_faults.c - a real sink (whs_sink_t) on librdkafka's mock cluster, against faults
 * around its commit: the Kafka offset hint failing after the warehouse committed (the
 * warehouse is the source of truth: a restart resumes from it, nothing lost or loaded twice),
 * whs_close() with the broker hung (its deadline kept, nothing lost), and the file backend
 * meeting a full disk (a clear error, retries, every row once after space
 * is freed; on a 64 KiB tmpfs, skipped when mounting is not permitted).
 */
#include "testutil.h"
#include "whs_testevents.h"
#include "whsink.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <cmocka.h>

#define TOPIC "events.enriched"
#define PARTS 2
#define API_OFFSET_COMMIT 8 /* Kafka's request number; librdkafka's name for it is private */

typedef struct fx {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    char *dir;
    int64_t produced;
    char errors[4096]; /* the reasons the error callback gave, one a line */
    int retriable_errors;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    fx->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(fx->owner);
    fx->mc = rd_kafka_mock_cluster_new(fx->owner, 1);
    fx->bootstrap = rd_kafka_mock_cluster_bootstraps(fx->mc);
    assert_int_equal(rd_kafka_mock_topic_create(fx->mc, TOPIC, PARTS, 1), 0);
    fx->dir = tu_tempdir("whs-faults");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    rd_kafka_mock_cluster_destroy(fx->mc);
    rd_kafka_destroy(fx->owner);
    tu_rmrf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Records produced .. produced + n - 1 of the deterministic stream (whs_testevents.h). */
static void produce(fx_t *fx, int n, int pad_bytes)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    wt_opts_t o = {.nonce = 7, .pad_bytes = pad_bytes};
    for (int64_t i = fx->produced; i < fx->produced + n; i++) {
        size_t len;
        uint8_t *v = wt_event((uint64_t)i, &o, &len);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC),
                              RD_KAFKA_V_PARTITION((int32_t)(i % PARTS)), RD_KAFKA_V_VALUE(v, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
    fx->produced += n;
}

static void on_error(whs_err_t err, int retriable, const char *reason, void *opaque)
{
    fx_t *fx = opaque;
    size_t used = strlen(fx->errors);
    snprintf(fx->errors + used, sizeof(fx->errors) - used, "%s: %s\n", whs_err2name(err),
             reason);
    fx->retriable_errors += retriable;
}

static void quiet(int level, const char *message, void *opaque)
{
    (void)opaque;
    if (getenv("WF_VERBOSE"))
        fprintf(stderr, "  [%d] %s\n", level, message);
}

static whs_sink_t *sink(fx_t *fx, const char *url)
{
    char errstr[512];
    whs_conf_t *conf = whs_conf_new();
    const char *const kv[][2] = {
        {"kafka.bootstrap.servers", fx->bootstrap},
        /* the mock lets a new member into a group its last member left after
         * session.timeout.ms - 1 s: the restarted sink would wait 44 s by default */
        {"kafka.session.timeout.ms", "4000"},
        {"kafka.heartbeat.interval.ms", "500"},
        {"warehouse.url", url},
        {"topic", TOPIC},
        {"batch.max.rows", "50"},
        {"batch.max.ms", "100"},
        {"retry.backoff.ms", "50"},
        {"retry.backoff.max.ms", "200"},
        {"log.level", getenv("WF_VERBOSE") ? "info" : "error"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (whs_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) != WHS_CONF_OK)
            fail_msg("%s: %s", kv[i][0], errstr);
    whs_conf_set_error_cb(conf, on_error, fx);
    whs_conf_set_log_cb(conf, quiet, NULL);
    whs_sink_t *s = whs_sink_new(conf, errstr, sizeof(errstr));
    if (!s)
        fail_msg("whs_sink_new: %s", errstr);
    return s;
}

/* Polls until @p rows rows are loaded or @p seconds pass. */
static void load(whs_sink_t *s, int64_t rows, int seconds)
{
    for (time_t end = time(NULL) + seconds; time(NULL) < end;) {
        whs_poll(s, 50);
        if (whs_stat(s, WHS_STAT_ROWS_LOADED) >= rows)
            return;
    }
    fail_msg("%lld of %lld rows loaded in %d s", (long long)whs_stat(s, WHS_STAT_ROWS_LOADED),
             (long long)rows, seconds);
}

/* The group's committed offsets summed: what the Kafka hint says was loaded. */
static int64_t hint(fx_t *fx)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "whsink", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
    for (int32_t i = 0; i < PARTS; i++)
        rd_kafka_topic_partition_list_add(l, TOPIC, i);
    assert_int_equal(rd_kafka_committed(rk, l, 5000), 0);
    int64_t sum = 0;
    for (int i = 0; i < l->cnt; i++)
        sum += l->elems[i].offset > 0 ? l->elems[i].offset : 0;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return sum;
}

/* ---- the Kafka hint fails after the warehouse committed ------------------------------- */

static void sqlite_counts(const char *path, int64_t *rows, int64_t *distinct)
{
    char cmd[1200], out[128] = "";
    snprintf(cmd, sizeof(cmd),
             "sqlite3 '%s' 'SELECT count(*), count(DISTINCT event_id) FROM events' 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    long long r = -1, d = -1;
    if (sscanf(out, "%lld|%lld", &r, &d) != 2)
        fail_msg("sqlite3: %s", out);
    *rows = r, *distinct = d;
}

static void test_whs_offset_hint_failing_after_the_warehouse_commit_loses_and_repeats_nothing(
    void **state)
{
    fx_t *fx = *state;
    char url[700], db[600];
    snprintf(db, sizeof(db), "%s/wh.db", fx->dir);
    snprintf(url, sizeof(url), "sqlite:%s", db);
    produce(fx, 200, 0);
    /* Every OffsetCommit the sink sends fails, for good (not retriable). */
    rd_kafka_resp_err_t errs[64];
    for (size_t i = 0; i < 64; i++)
        errs[i] = RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED;
    rd_kafka_mock_push_request_errors_array(fx->mc, API_OFFSET_COMMIT, 64, errs);
    whs_sink_t *s = sink(fx, url);
    load(s, 200, 20);
    assert_int_equal(whs_close(s, 5000), WHS_OK);
    assert_int_equal(whs_sink_destroy(s), WHS_OK);
    assert_int_equal(hint(fx), 0); /* the hint never landed */
    rd_kafka_mock_clear_request_errors(fx->mc, API_OFFSET_COMMIT);

    produce(fx, 100, 0); /* a restarted sink resumes from the warehouse, not from the hint */
    s = sink(fx, url);
    load(s, 100, 20);
    for (int i = 0; i < 10; i++) /* anything re-read from offset 0 would show up here */
        whs_poll(s, 50);
    assert_int_equal(whs_stat(s, WHS_STAT_ROWS_LOADED), 100);
    assert_int_equal(whs_close(s, 5000), WHS_OK);
    assert_int_equal(whs_sink_destroy(s), WHS_OK);
    int64_t rows, distinct;
    sqlite_counts(db, &rows, &distinct);
    assert_int_equal(rows, 300);
    assert_int_equal(distinct, 300);
    assert_int_equal(hint(fx), 300); /* and the hint caught up once it could */
}

/* ---- the broker hung when the sink closes - ----------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Guarantee: whs_close() keeps its deadline with no broker to answer the group's leave
 * (librdkafka 2.0.2's own close waits for the coordinator without one, #4519), and what
 * was loaded stays loaded once: a sink started after the broker is back loads the rest,
 * every row once. */
static void test_whs_close_keeps_its_deadline_when_the_broker_hangs(void **state)
{
    fx_t *fx = *state;
    char url[700], db[600];
    snprintf(db, sizeof(db), "%s/wh.db", fx->dir);
    snprintf(url, sizeof(url), "sqlite:%s", db);
    produce(fx, 200, 0);
    whs_sink_t *s = sink(fx, url);
    load(s, 200, 20);
    /* The broker still takes connections but answers nothing for 8 s: a hung broker (one
     * that is down is noticed at once, and the close ends without it). */
    assert_int_equal(rd_kafka_mock_broker_set_rtt(fx->mc, 1, 8000), 0);
    int64_t start = now_ms();
    whs_err_t rc = whs_close(s, 2000);
    int64_t closed = now_ms() - start;
    assert_int_equal(whs_sink_destroy(s), WHS_OK);
    int64_t destroyed = now_ms() - start;
    print_message("broker hung: whs_close() %lld ms (%s), whs_sink_destroy() %lld ms more\n",
                  (long long)closed, whs_err2name(rc), (long long)(destroyed - closed));
    assert_true(closed < 2000 + 1500);
    assert_true(destroyed < 8000 + 3000); /* librdkafka waits for the leave's answer */

    assert_int_equal(rd_kafka_mock_broker_set_rtt(fx->mc, 1, 0), 0);
    produce(fx, 100, 0);
    s = sink(fx, url);
    load(s, 100, 30);
    assert_int_equal(whs_close(s, 5000), WHS_OK);
    assert_int_equal(whs_sink_destroy(s), WHS_OK);
    int64_t rows, distinct;
    sqlite_counts(db, &rows, &distinct);
    assert_int_equal(rows, 300);
    assert_int_equal(distinct, 300);
}

/* ---- the file backend on a full disk ---------------------------------------------------- */

static char *read_zst(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *in = malloc((size_t)n + 1);
    assert_int_equal(fread(in, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, (size_t)n, 0};
    while (ib.pos < ib.size) {
        if (cap - len < 65536)
            out = realloc(out, cap *= 2);
        ZSTD_outBuffer ob = {out + len, cap - len - 1, 0};
        assert_false(ZSTD_isError(ZSTD_decompressStream(ds, &ob, &ib)));
        len += ob.pos;
    }
    out[len] = '\0';
    ZSTD_freeDStream(ds);
    free(in);
    return out;
}

/* Rows in the committed files, each (partition, offset) counted in @p seen. */
static int64_t file_rows(const char *dir, int *seen, int64_t max)
{
    char cmd[1200], path[1024];
    snprintf(cmd, sizeof(cmd), "find '%s/events' -name 'part-*.ndjson.zst' -print", dir);
    FILE *p = popen(cmd, "r");
    int64_t rows = 0;
    while (fgets(path, sizeof(path), p)) {
        path[strcspn(path, "\n")] = '\0';
        char *text = read_zst(path);
        for (char *line = text; *line; rows++) {
            char *nl = strchr(line, '\n');
            const char *o = strstr(line, "\"source_offset\":");
            const char *q = strstr(line, "\"source_partition\":");
            long off = o ? strtol(o + 16, NULL, 10) : -1, part = q ? strtol(q + 19, NULL, 10) : -1;
            if (off >= 0 && part >= 0 && off * PARTS + part < max)
                seen[off * PARTS + part]++;
            line = nl ? nl + 1 : line + strlen(line);
        }
        free(text);
    }
    pclose(p);
    return rows;
}

static void test_whs_file_backend_on_a_full_disk_retries_and_loses_nothing(void **state)
{
    fx_t *fx = *state;
    char wh[700], url[800];
    snprintf(wh, sizeof(wh), "%s/tmpfs", fx->dir);
    assert_int_equal(mkdir(wh, 0700), 0);
    if (mount("tmpfs", wh, "tmpfs", 0, "size=64k") != 0) {
        print_message("[  SKIPPED ] mount -t tmpfs not permitted here (%s)\n", strerror(errno));
        skip();
    }
    snprintf(url, sizeof(url), "file:%s", wh);
    enum { N = 400 };
    produce(fx, N, 2000); /* 2 KB of padding a row: the rows outgrow 64 KiB even compressed */
    whs_sink_t *s = sink(fx, url);
    for (time_t end = time(NULL) + 10; time(NULL) < end && fx->retriable_errors < 3;)
        whs_poll(s, 50);
    int full = fx->retriable_errors >= 3 && strstr(fx->errors, "No space left on device");
    int64_t stuck = whs_stat(s, WHS_STAT_ROWS_LOADED);
    /* Room again: the writer's retries go through. */
    assert_int_equal(mount("tmpfs", wh, "tmpfs", MS_REMOUNT, "size=16m"), 0);
    load(s, N, 30);
    assert_int_equal(whs_close(s, 5000), WHS_OK);
    assert_int_equal(whs_sink_destroy(s), WHS_OK);
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    int64_t rows = file_rows(wh, seen, N);
    umount(wh);
    if (!full)
        fail_msg("the full disk was not reported as a retriable error: \"%s\"", fx->errors);
    assert_true(stuck < N);
    assert_int_equal(rows, N);
    for (int i = 0; i < N; i++)
        if (seen[i] != 1)
            fail_msg("row %d (partition %d, offset %d) is in the files %d times", i, i % PARTS,
                     i / PARTS, seen[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_whs_offset_hint_failing_after_the_warehouse_commit_loses_and_repeats_nothing,
            setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_close_keeps_its_deadline_when_the_broker_hangs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_whs_file_backend_on_a_full_disk_retries_and_loses_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
