/*
 * it_whs.c - libwhsink against a real Kafka broker and real warehouses (SQLite, files,
 * PostgreSQL and ClickHouse started by test/integration/run.sh): every event loaded
 * exactly once, on its day and bucket, with the right column values; undecodable records
 * dead-lettered with their reason while the stream goes on; a new property and a newly
 * promoted column mid-stream loaded without a stop.
 *
 * WHS_IT_EVENTS (default 20000) sets the stream size; WHS_IT_FILTER (a cmocka glob, e.g.
 * "*sqlite*") runs some tests only.
 */
#include "whs_itwh.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t events(void)
{
    const char *e = getenv("WHS_IT_EVENTS");
    return e && atoll(e) > 0 ? (uint64_t)atoll(e) : 20000;
}

/* A stream of @p n records over about three days. */
static wt_opts_t stream(uint64_t n, uint32_t nonce)
{
    wt_opts_t o = {.nonce = nonce, .users = 200, .step_ms = (int64_t)(2.5 * 86400000 / n)};
    return o;
}

typedef struct dlq_seen {
    int records;
    int with_reason;
} dlq_seen_t;

static void on_dead_letter(const it_record_t *r, void *opaque)
{
    dlq_seen_t *d = opaque;
    size_t len;
    const char *reason = it_header(r, "reason", &len);
    const char *off = it_header(r, "source.offset", &len);
    d->records++;
    d->with_reason += reason && off && strstr(reason, "not a valid EnrichedEvent") != NULL;
}

/* Proves: N events produced -> in the warehouse count(*) = N = count(distinct event_id), each
 * on its day (and, for files, in its day and bucket directory), with the right values; bad
 * records go to the dead-letter topic with a reason and do not stop the stream. */
static void loads_every_event_once_at(const char *kind, const char *url)
{
    wh_t w;
    char topic[256], dlq[300];
    uint64_t n = events();
    wt_opts_t o = stream(n, 11);
    wh_init(&w, kind, "load");
    if (url) /* the same server another way (HTTPS); checked through the plain one */
        snprintf(w.url, sizeof(w.url), "%s", url);
    wh_topic(topic, sizeof(topic), kind, 3);
    wh_produce(topic, 0, n / 2, &o);
    wh_produce_garbage(topic, 3);
    wh_produce(topic, n / 2, n, &o);

    int64_t t0 = wh_now_ms();
    whs_sink_t *s = wh_sink(&w, topic, NULL);
    int64_t got = wh_wait_rows(&w, s, (int64_t)n, 120000, 1500);
    fprintf(stderr, "  %s: %lld rows in %lld ms\n", kind, (long long)got,
            (long long)(wh_now_ms() - t0));
    assert_int_equal(whs_stat(s, WHS_STAT_DEAD_LETTERS), 3);
    assert_int_equal(whs_stat(s, WHS_STAT_CONSUMED), (int64_t)n + 3);
    assert_int_equal(whs_close(s, 30000), WHS_OK);
    assert_int_equal(whs_sink_destroy(s), WHS_OK);

    wh_assert_exactly(&w, n, &o);
    if (strcmp(kind, "file") != 0) {
        wh_assert_row(&w, 0, &o);
        wh_assert_row(&w, n / 2, &o);
        wh_assert_row(&w, n - 1, &o);
    }
    dlq_seen_t d = {0};
    snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
    const char *topics[] = {dlq};
    it_read(topics, 1, 3, 30000, on_dead_letter, &d);
    assert_int_equal(d.records, 3);
    assert_int_equal(d.with_reason, 3);
    wh_free(&w);
}

static void loads_every_event_once(const char *kind)
{
    loads_every_event_once_at(kind, NULL);
}

static void test_whs_sqlite_loads_every_event_once(void **state)
{
    (void)state;
    loads_every_event_once("sqlite");
}

static void test_whs_file_loads_every_event_once(void **state)
{
    (void)state;
    loads_every_event_once("file");
}

static void test_whs_postgres_loads_every_event_once(void **state)
{
    (void)state;
    loads_every_event_once("postgres");
}

static void test_whs_clickhouse_loads_every_event_once(void **state)
{
    (void)state;
    loads_every_event_once("clickhouse");
}

/* Proves: a property never seen before, then a restart that promotes it to a column (ALTER
 * TABLE), load every event once; rows before the promotion keep NULL in the new column, rows
 * after it carry the value; the sink never stops. */
static void new_property_and_promoted_column(const char *kind)
{
    wh_t w;
    char topic[256], sql[512];
    uint64_t n = events() / 4;
    wt_opts_t o = stream(n, 12), coupon = o;
    coupon.extra_key = "coupon";
    /* COPY text and JSON escapes at several offsets of an 8-byte word: */
    coupon.extra_val = "SPRING24 a\tb\\c\nd\re \"q\" 0123456789\t\t\\\\ end";
    wh_init(&w, kind, "evolve");
    wh_topic(topic, sizeof(topic), kind, 2);

    const char *promote1[] = {"columns.promote=amount:double", NULL};
    whs_sink_t *s = wh_sink(&w, topic, promote1);
    wh_produce(topic, 0, n / 2, &o);
    wh_wait_rows(&w, s, (int64_t)(n / 2), 60000, 0);
    wh_produce(topic, n / 2, 3 * n / 4, &coupon); /* a new property mid-stream */
    wh_wait_rows(&w, s, (int64_t)(3 * n / 4), 60000, 0);
    assert_int_equal(whs_close(s, 30000), WHS_OK);
    whs_sink_destroy(s);

    const char *promote2[] = {"columns.promote=amount:double,coupon:string", NULL};
    s = wh_sink(&w, topic, promote2);
    assert_int_equal(whs_stat(s, WHS_STAT_COLUMNS_ADDED), strcmp(kind, "file") ? 1 : 0);
    wh_produce(topic, 3 * n / 4, n, &coupon);
    wh_wait_rows(&w, s, (int64_t)n, 60000, 1000);
    assert_int_equal(whs_close(s, 30000), WHS_OK);
    whs_sink_destroy(s);

    wh_assert_exactly(&w, n, &o);
    if (strcmp(kind, "file") == 0) {
        wh_free(&w);
        return;
    }
    const char *is_set =
        !strcmp(kind, "clickhouse") ? "isNotNull(prop_coupon)" : "prop_coupon IS NOT NULL";
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM {T} WHERE %s", is_set);
    assert_int_equal(wh_int(&w, sql), (int64_t)(n - 3 * n / 4));
    const char *has_json = !strcmp(kind, "postgres")     ? "properties->>'coupon' LIKE 'SPRING24%'"
                           : !strcmp(kind, "clickhouse") ? "properties LIKE '%SPRING24%'"
                                                         : "json_extract(properties, "
                                                           "'$.coupon') LIKE 'SPRING24%'";
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM {T} WHERE %s", has_json);
    assert_int_equal(wh_int(&w, sql), (int64_t)(n - n / 2));
    if (!strcmp(kind, "postgres")) { /* the value exactly, in both columns */
        const char *exact = "E'SPRING24 a\\tb\\\\c\\nd\\re \"q\" 0123456789\\t\\t\\\\\\\\ end'";
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM {T} WHERE prop_coupon = %s AND properties->>'coupon' = %s",
                 exact, exact);
        assert_int_equal(wh_int(&w, sql), (int64_t)(n - 3 * n / 4));
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM {T} WHERE prop_amount = %g",
             (double)(7 % 1000) * 0.25);
    assert_true(wh_int(&w, sql) > 0);
    wh_free(&w);
}

static void test_whs_sqlite_new_property_and_promoted_column(void **state)
{
    (void)state;
    new_property_and_promoted_column("sqlite");
}

static void test_whs_postgres_new_property_and_promoted_column(void **state)
{
    (void)state;
    new_property_and_promoted_column("postgres");
}

/* The HTTPS URL of test/clickhouse.sh's server (CLICKHOUSE_HTTPS_URL, or UE_CH_DIR/https_url). */
static const char *clickhouse_https_url(void)
{
    static char url[1024];
    const char *env = getenv("CLICKHOUSE_HTTPS_URL"), *dir = getenv("UE_CH_DIR");
    if (env && *env)
        return env;
    snprintf(url, sizeof(url), "%s/https_url", dir ? dir : "");
    FILE *f = dir ? fopen(url, "r") : NULL;
    if (!f || !fgets(url, sizeof(url), f))
        fail_msg("no ClickHouse HTTPS URL: set CLICKHOUSE_HTTPS_URL or use "
                 "test/integration/run.sh");
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    return url;
}

/* Guarantee: clickhouse+https:// loads every event once over HTTPS, the server's certificate
 * verified against ?ca=FILE; without a CA that trusts it the sink does not start, and says
 * it is for good (WHS_ERR_WAREHOUSE_FATAL), not "retrying". */
static void test_whs_clickhouse_over_https_verifies_the_server(void **state)
{
    (void)state;
    const char *url = clickhouse_https_url();
    loads_every_event_once_at("clickhouse", url);

    char bare[1024], errstr[512];
    snprintf(bare, sizeof(bare), "%.*s", (int)strcspn(url, "?"), url);
    whs_conf_t *conf = whs_conf_new();
    assert_int_equal(whs_conf_set(conf, "warehouse.url", bare, errstr, sizeof(errstr)), 0);
    assert_int_equal(whs_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr,
                                  sizeof(errstr)),
                     0);
    whs_sink_t *s = NULL;
    assert_int_equal(whs_sink_open(conf, &s, errstr, sizeof(errstr)), WHS_ERR_WAREHOUSE_FATAL);
    print_message("without the CA: %s\n", errstr);
    assert_non_null(strstr(errstr, "certificate"));
    whs_conf_destroy(conf);
}

static void test_whs_clickhouse_new_property_and_promoted_column(void **state)
{
    (void)state;
    new_property_and_promoted_column("clickhouse");
}

static void test_whs_file_new_property(void **state)
{
    (void)state;
    new_property_and_promoted_column("file");
}

typedef struct closer {
    pthread_t thread;
    whs_sink_t *sink;
    whs_err_t rc;
    atomic_int done;
} closer_t;

static void *close_sink(void *arg)
{
    closer_t *c = arg;
    c->rc = whs_close(c->sink, 30000);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Proves: two sinks in one group share the partitions; a second sink joining and the first
 * leaving mid-stream (rebalances: batches of revoked partitions committed or dropped, new
 * owners resuming from the warehouse's offsets) still load every event exactly once. */
static void test_whs_postgres_rebalance_two_sinks_exactly_once(void **state)
{
    (void)state;
    wh_t w;
    char topic[256];
    uint64_t n = events();
    wt_opts_t o = stream(n, 13);
    const char *small[] = {"batch.max.rows=1000", "batch.max.ms=100", NULL};
    wh_init(&w, "postgres", "rebal");
    wh_topic(topic, sizeof(topic), "rebal", 4);
    wh_produce(topic, 0, n / 4, &o);
    whs_sink_t *a = wh_sink(&w, topic, small);
    wh_wait_rows(&w, a, (int64_t)n / 8, 60000, 0);
    whs_sink_t *b = wh_sink(&w, topic, small); /* joins: both rebalance */
    int64_t deadline = wh_now_ms() + 60000;
    while (whs_stat(b, WHS_STAT_REBALANCES) == 0 && wh_now_ms() < deadline) {
        assert_true(whs_poll(a, 50) >= 0);
        assert_true(whs_poll(b, 50) >= 0);
    }
    assert_true(whs_stat(b, WHS_STAT_REBALANCES) > 0);
    wh_produce(topic, n / 4, n, &o); /* now with both sinks in the group */
    deadline = wh_now_ms() + 60000;
    while (wh_rows(&w) < (int64_t)(3 * n / 4) && wh_now_ms() < deadline) {
        assert_true(whs_poll(a, 50) >= 0);
        assert_true(whs_poll(b, 50) >= 0);
    }
    fprintf(stderr, "  shared: a loaded %lld, b loaded %lld rows\n",
            (long long)whs_stat(a, WHS_STAT_ROWS_LOADED),
            (long long)whs_stat(b, WHS_STAT_ROWS_LOADED));
    assert_true(whs_stat(b, WHS_STAT_ROWS_LOADED) > 0); /* b really got partitions */
    /* a leaves, b takes everything. a closes on its own thread while b is polled, as two
     * processes would: a sink nobody polls answers no rebalance, and the group waits for
     * it up to max.poll.interval.ms. */
    closer_t c = {.sink = a};
    assert_int_equal(pthread_create(&c.thread, NULL, close_sink, &c), 0);
    while (!atomic_load(&c.done))
        assert_true(whs_poll(b, 50) >= 0);
    pthread_join(c.thread, NULL);
    assert_int_equal(c.rc, WHS_OK);
    whs_sink_destroy(a);
    wh_wait_rows(&w, b, (int64_t)n, 120000, 1500);
    assert_int_equal(whs_close(b, 30000), WHS_OK);
    whs_sink_destroy(b);
    wh_assert_exactly(&w, n, &o);
    wh_free(&w);
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_whs: KAFKA_BOOTSTRAP is not set (run test/integration/run.sh, "
                        "which starts Kafka, PostgreSQL and ClickHouse)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whs_sqlite_loads_every_event_once),
        cmocka_unit_test(test_whs_file_loads_every_event_once),
        cmocka_unit_test(test_whs_postgres_loads_every_event_once),
        cmocka_unit_test(test_whs_clickhouse_loads_every_event_once),
        cmocka_unit_test(test_whs_sqlite_new_property_and_promoted_column),
        cmocka_unit_test(test_whs_postgres_new_property_and_promoted_column),
        cmocka_unit_test(test_whs_clickhouse_new_property_and_promoted_column),
        cmocka_unit_test(test_whs_clickhouse_over_https_verifies_the_server),
        cmocka_unit_test(test_whs_file_new_property),
        cmocka_unit_test(test_whs_postgres_rebalance_two_sinks_exactly_once),
    };
    const char *filter = getenv("WHS_IT_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
