/*
 * test_whs_conf.c - libwhsink's configuration: every key validated at set time with a message
 * naming it, "kafka.*" validated by librdkafka, warehouse URLs checked and their passwords
 * never shown, the promote list parsed, get/dump/dup, and whs_sink_new() refusing what it
 * must (no URL, no bootstrap) with the caller keeping the conf.
 */
#include "conf.h"
#include "url.h"
#include "whsink.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static whs_conf_res_t set(whs_conf_t *conf, const char *name, const char *value, char *errstr)
{
    errstr[0] = '\0';
    return whs_conf_set(conf, name, value, errstr, 512);
}

static void assert_get(const whs_conf_t *conf, const char *name, const char *expected)
{
    char buf[512];
    size_t size = sizeof(buf);
    assert_int_equal(whs_conf_get(conf, name, buf, &size), WHS_CONF_OK);
    assert_string_equal(buf, expected);
}

static void assert_invalid(whs_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    assert_int_equal(set(conf, name, value, errstr), WHS_CONF_INVALID);
    if (!strstr(errstr, name))
        fail_msg("%s=%s: message \"%s\" does not name the key", name, value, errstr);
}

static void test_whs_conf_defaults(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    assert_get(conf, "topic", "events.enriched");
    assert_get(conf, "table", "events");
    assert_get(conf, "bucket.count", "16");
    assert_get(conf, "dead_letter.topic", "events.dead_letter");
    assert_get(conf, "offset.fallback", "earliest");
    assert_get(conf, "kafka.group.id", "whsink");
    assert_get(conf, "kafka.isolation.level", "read_committed");
    assert_get(conf, "kafka.enable.auto.commit", "false");
    assert_get(conf, "warehouse.url", "");
    whs_conf_destroy(conf);
}

static void test_whs_conf_unknown_key_is_unknown(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "no.such.key", "1", errstr), WHS_CONF_UNKNOWN);
    assert_non_null(strstr(errstr, "no.such.key"));
    assert_int_equal(set(conf, "kafka.no.such.key", "1", errstr), WHS_CONF_UNKNOWN);
    assert_int_equal(set(conf, "", "1", errstr), WHS_CONF_UNKNOWN);
    whs_conf_destroy(conf);
}

static void test_whs_conf_rejects_bad_values(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    assert_invalid(conf, "bucket.count", "0");
    assert_invalid(conf, "bucket.count", "1025");
    assert_invalid(conf, "bucket.count", "ten");
    assert_invalid(conf, "batch.max.rows", "0");
    assert_invalid(conf, "batch.max.bytes", "100");
    assert_invalid(conf, "batch.max.ms", "-1");
    assert_invalid(conf, "offset.fallback", "newest");
    assert_invalid(conf, "utf8.invalid", "drop");
    assert_invalid(conf, "file.fsync", "maybe");
    assert_invalid(conf, "table", "events; DROP TABLE x");
    assert_invalid(conf, "table", "1events");
    assert_invalid(conf, "table", "");
    assert_invalid(conf, "topic", "bad topic");
    assert_invalid(conf, "dead_letter.topic", "bad/topic");
    char errstr[512];
    assert_int_equal(set(conf, "kafka.session.timeout.ms", "abc", errstr), WHS_CONF_INVALID);
    assert_int_equal(set(conf, "dead_letter.topic", "", errstr), WHS_CONF_OK); /* off */
    whs_conf_destroy(conf);
}

static void test_whs_conf_warehouse_url_checked_at_set(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    assert_invalid(conf, "warehouse.url", "mysql://db/x");
    assert_invalid(conf, "warehouse.url", "no-scheme");
    assert_invalid(conf, "warehouse.url", "sqlite:");
    assert_invalid(conf, "warehouse.url", "postgres://");
    assert_invalid(conf, "warehouse.url", "clickhouse://host:99999/db");
    assert_int_equal(set(conf, "warehouse.url", "sqlite:/tmp/x.db", errstr), WHS_CONF_OK);
    assert_int_equal(set(conf, "warehouse.url", "file:/tmp/lake", errstr), WHS_CONF_OK);
    assert_int_equal(
        set(conf, "warehouse.url", "postgresql://u:p@h:5432/db?sslmode=disable", errstr),
        WHS_CONF_OK);
    assert_int_equal(set(conf, "warehouse.url", "clickhouse://127.0.0.1:8123/default", errstr),
                     WHS_CONF_OK);
    /* the message about a bad URL never shows its password */
    assert_int_equal(set(conf, "warehouse.url", "mysql://me:hunter2@db/x", errstr),
                     WHS_CONF_INVALID);
    assert_null(strstr(errstr, "hunter2"));
    whs_conf_destroy(conf);
}

static void test_whs_url_parts_and_mask(void **state)
{
    (void)state;
    whs__url_t u;
    char masked[256];
    assert_int_equal(whs__url_parse("postgres://lo%40der:p%3Aw@db.local:6432/an?x=1", &u, NULL, 0),
                     0);
    assert_string_equal(u.scheme, "postgres");
    assert_string_equal(u.user, "lo@der");
    assert_string_equal(u.password, "p:w");
    assert_string_equal(u.host, "db.local");
    assert_int_equal(u.port, 6432);
    assert_string_equal(u.path, "/an");
    assert_string_equal(u.query, "x=1");
    assert_int_equal(whs__url_parse("clickhouse://h/db", &u, NULL, 0), 0);
    assert_int_equal(u.port, 0);
    assert_string_equal(u.user, "");
    assert_int_equal(u.tls, 0);
    assert_int_equal(whs__url_parse("clickhouse+https://u:pw@h:8443/db?ca=/etc/ca.pem", &u,
                                    NULL, 0),
                     0);
    assert_string_equal(u.scheme, "clickhouse"); /* the same backend ... */
    assert_int_equal(u.tls, 1);                  /* ... over HTTPS */
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.query, "ca=/etc/ca.pem");
    whs__url_mask("clickhouse+https://u:pw@h/db", masked, sizeof(masked));
    assert_string_equal(masked, "clickhouse+https://u:****@h/db");
    whs__url_mask("postgres://u:secret@h:1/db", masked, sizeof(masked));
    assert_string_equal(masked, "postgres://u:****@h:1/db");
    whs__url_mask("clickhouse://u@h/db", masked, sizeof(masked));
    assert_string_equal(masked, "clickhouse://u@h/db");
    whs__url_mask("sqlite:/a/b", masked, sizeof(masked));
    assert_string_equal(masked, "sqlite:/a/b");
}

/* Every way a credential can ride in a URL is masked, in URLs that parse and in those that do
 * not (they are shown in the error that refuses them). */
static void test_whs_url_mask_hides_every_credential(void **state)
{
    (void)state;
    static const struct {
        const char *url, *masked;
    } cases[] = {
        {"postgres://u:s3cr@t/x@h/db", "postgres://u:****@h/db"},
        {"postgres://h/db?sslmode=require&password=s3cr&sslpassword=s3cr",
         "postgres://h/db?sslmode=require&password=****&sslpassword=****"},
        {"postgres://u:s3cr@h/db?PassWord=s3cr&application_name=w",
         "postgres://u:****@h/db?PassWord=****&application_name=w"},
        {"clickhouse://h/db?token=s3cr;secret=s3cr&key=s3cr&api_key=s3cr&x=1",
         "clickhouse://h/db?token=****;secret=****&key=****&api_key=****&x=1"},
        {"postgres:/u:s3cr@h/db", "postgres:****@h/db"},       /* one slash: malformed */
        {"u:s3cr@h/db", "u:****@h/db"},                         /* no scheme */
        {"s3cr@h", "****@h"},                                   /* userinfo of unknown shape */
        {"postgres://u:s3cr@h:notaport/db", "postgres://u:****@h:notaport/db"},
        {"postgres://u@h/db", "postgres://u@h/db"},             /* a user name is not secret */
        {"postgres://u:p?password=s3cr@h/db", "postgres://u:****@h/db"},
    };
    char masked[256], errstr[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        whs__url_mask(cases[i].url, masked, sizeof(masked));
        assert_string_equal(masked, cases[i].masked);
    }
    whs__url_mask("postgres://u:s3cr@h/db?password=s3cr", masked, 12); /* cut, never overrun */
    assert_string_equal(masked, "postgres://");
    /* The messages refusing malformed URLs show them masked. */
    const char *bad[] = {"postgres://u:s3cr@h:notaport/db", "postgres:/u:s3cr@h/db",
                         "nosuch://u:s3cr@h/db?password=s3cr", "clickhouse://u:s3cr@h/d-b"};
    whs_conf_t *conf = whs_conf_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(conf, "warehouse.url", bad[i], errstr), WHS_CONF_INVALID);
        if (strstr(errstr, "s3cr"))
            fail_msg("%s: the error shows the secret: %s", bad[i], errstr);
    }
    whs_conf_destroy(conf);
}

/* A ClickHouse database name goes into the request URL and into SQL text: only an identifier
 * is taken ("db'x&readonly=0" reached the server before). */
static void test_whs_url_clickhouse_database_is_an_identifier(void **state)
{
    (void)state;
    whs__url_t u;
    char errstr[512];
    const char *good[] = {"clickhouse://h/analytics", "clickhouse://h/_a1", "clickhouse://h/",
                          "clickhouse://h", "clickhouse://h:8123/Events_2024?x=1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(whs__url_parse(good[i], &u, errstr, sizeof(errstr)), 0);
    const char *bad[] = {"clickhouse://h/db'x&readonly=0", "clickhouse://h/db%27x",
                         "clickhouse://h/1db", "clickhouse://h/db.t", "clickhouse://h/db/x",
                         "clickhouse://h/db x", "clickhouse://h/d-b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(whs__url_parse(bad[i], &u, errstr, sizeof(errstr)), -1);
        assert_non_null(strstr(errstr, "not an identifier"));
    }
    whs_conf_t *conf = whs_conf_new();
    assert_int_equal(set(conf, "warehouse.url", "clickhouse://h/db'x&readonly=0", errstr),
                     WHS_CONF_INVALID);
    whs_conf_destroy(conf);
}

static void test_whs_conf_promote_list(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "columns.promote", "amount:double,sku:string,n:int,ok:bool", errstr),
                     WHS_CONF_OK);
    assert_int_equal(conf->npromote, 4);
    assert_string_equal(conf->promote[0].name, "amount");
    assert_int_equal(conf->promote[0].type, WHS__PT_DOUBLE);
    assert_int_equal(conf->promote[3].type, WHS__PT_BOOL);
    assert_invalid(conf, "columns.promote", "amount");
    assert_invalid(conf, "columns.promote", "amount:decimal");
    assert_invalid(conf, "columns.promote", "Amount:int");
    assert_invalid(conf, "columns.promote", "a-b:int");
    assert_invalid(conf, "columns.promote", "x:int,x:string");
    assert_int_equal(conf->npromote, 4); /* a refused value leaves the last good one */
    assert_get(conf, "columns.promote", "amount:double,sku:string,n:int,ok:bool");
    assert_int_equal(set(conf, "columns.promote", "", errstr), WHS_CONF_OK);
    assert_int_equal(conf->npromote, 0);
    whs_conf_destroy(conf);
}

static void test_whs_conf_dump_masks_secrets(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "warehouse.url", "postgres://u:topsecret@h/db", errstr),
                     WHS_CONF_OK);
    assert_int_equal(set(conf, "kafka.sasl.password", "alsosecret", errstr), WHS_CONF_OK);
    whs_conf_t *q = whs_conf_new();
    assert_int_equal(
        set(q, "warehouse.url", "postgres://u@h/db?sslpassword=topsecret&password=topsecret",
            errstr),
        WHS_CONF_OK);
    size_t qcnt = 0;
    const char **qd = whs_conf_dump(q, &qcnt);
    for (size_t i = 0; i + 1 < qcnt; i += 2)
        if (strcmp(qd[i], "warehouse.url") == 0)
            assert_string_equal(qd[i + 1], "postgres://u@h/db?sslpassword=****&password=****");
    whs_conf_dump_free(qd, qcnt);
    whs_conf_destroy(q);
    size_t cnt = 0;
    const char **d = whs_conf_dump(conf, &cnt);
    assert_non_null(d);
    int seen_url = 0;
    for (size_t i = 0; i + 1 < cnt; i += 2) {
        assert_non_null(d[i]);
        if (d[i + 1] && (strstr(d[i + 1], "topsecret") || strstr(d[i + 1], "alsosecret")))
            fail_msg("%s shows a secret: %s", d[i], d[i + 1]);
        if (strcmp(d[i], "warehouse.url") == 0) {
            assert_string_equal(d[i + 1], "postgres://u:****@h/db");
            seen_url = 1;
        }
    }
    assert_true(seen_url);
    whs_conf_dump_free(d, cnt);
    whs_conf_destroy(conf);
}

static void test_whs_conf_dup_is_deep(void **state)
{
    (void)state;
    whs_conf_t *conf = whs_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "table", "t1", errstr), WHS_CONF_OK);
    assert_int_equal(set(conf, "columns.promote", "a:int", errstr), WHS_CONF_OK);
    whs_conf_t *dup = whs_conf_dup(conf);
    assert_int_equal(set(conf, "table", "t2", errstr), WHS_CONF_OK);
    whs_conf_destroy(conf);
    assert_get(dup, "table", "t1");
    assert_int_equal(dup->npromote, 1);
    whs_conf_destroy(dup);
    assert_null(whs_conf_dup(NULL));
    whs_conf_destroy(NULL);
}

static void test_whs_sink_new_refuses_incomplete_conf(void **state)
{
    (void)state;
    char errstr[512];
    whs_conf_t *conf = whs_conf_new();
    assert_null(whs_sink_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "warehouse.url"));
    assert_int_equal(set(conf, "warehouse.url", "sqlite::memory:", errstr), WHS_CONF_OK);
    assert_null(whs_sink_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "bootstrap"));
    whs_conf_destroy(conf); /* still ours after a failed whs_sink_new() */
    assert_null(whs_sink_new(NULL, errstr, sizeof(errstr)));
    assert_int_equal(whs_sink_destroy(NULL), WHS_OK);
}

static void quiet(int level, const char *message, void *opaque)
{
    (void)level, (void)message, (void)opaque; /* nothing listens at 127.0.0.1:1 */
}

/* whs_sink_open() says whether waiting can help: a daemon retries only that. */
static void test_whs_sink_open_says_what_may_heal(void **state)
{
    (void)state;
    char errstr[512];
    whs_sink_t *sink = (whs_sink_t *)&errstr; /* set to NULL on failure */
    whs_conf_t *conf = whs_conf_new();
    whs_conf_set_log_cb(conf, quiet, NULL);
    assert_int_equal(whs_sink_open(conf, &sink, errstr, sizeof(errstr)), WHS_ERR_CONF_INVALID);
    assert_null(sink);
    assert_int_equal(set(conf, "kafka.bootstrap.servers", "127.0.0.1:1", errstr), WHS_CONF_OK);
    static const struct {
        const char *url, *says;
        whs_err_t rc;
    } cases[] = {
        {"sqlite:/nonexistent-dir/x.db", "/nonexistent-dir/x.db", WHS_ERR_WAREHOUSE_FATAL},
        {"file:/proc/nope", "/proc/nope", WHS_ERR_WAREHOUSE_FATAL},
        {"postgresql://127.0.0.1:1/db", "127.0.0.1:1", WHS_ERR_WAREHOUSE}, /* nobody listens */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(set(conf, "warehouse.url", cases[i].url, errstr), WHS_CONF_OK);
        assert_int_equal(whs_sink_open(conf, &sink, errstr, sizeof(errstr)), cases[i].rc);
        assert_null(sink);
        if (!strstr(errstr, cases[i].says))
            fail_msg("%s: \"%s\" does not say where", cases[i].url, errstr);
    }
    whs_conf_destroy(conf); /* still ours after every failed whs_sink_open() */
    assert_int_equal(whs_sink_open(NULL, &sink, errstr, sizeof(errstr)), WHS_ERR_INVALID_ARG);
    conf = whs_conf_new();
    assert_int_equal(whs_sink_open(conf, NULL, errstr, sizeof(errstr)), WHS_ERR_INVALID_ARG);
    whs_conf_destroy(conf);
}

static void test_whs_err_names(void **state)
{
    (void)state;
    assert_string_equal(whs_err2name(WHS_ERR_FENCED), "WHS_ERR_FENCED");
    assert_string_equal(whs_err2name(WHS_OK), "WHS_OK");
    assert_string_equal(whs_err2name((whs_err_t)12345), "WHS_ERR_UNKNOWN");
    assert_string_equal(whs_err2str((whs_err_t)12345), "unknown error");
    for (int e = -9; e <= 7; e++)
        assert_string_not_equal(whs_err2str((whs_err_t)e), "unknown error");
    assert_int_equal(whs_version(), WHS_VERSION);
    assert_string_equal(whs_stat_name(WHS_STAT_ROWS_LOADED), "rows_loaded");
    assert_null(whs_stat_name(WHS_STAT__CNT));
    char json[1024];
    size_t n = whs_stats_json(NULL, json, sizeof(json));
    assert_int_equal(n, strlen(json));
    assert_non_null(strstr(json, "\"rows_loaded\":0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whs_conf_defaults),
        cmocka_unit_test(test_whs_conf_unknown_key_is_unknown),
        cmocka_unit_test(test_whs_conf_rejects_bad_values),
        cmocka_unit_test(test_whs_conf_warehouse_url_checked_at_set),
        cmocka_unit_test(test_whs_url_parts_and_mask),
        cmocka_unit_test(test_whs_url_mask_hides_every_credential),
        cmocka_unit_test(test_whs_url_clickhouse_database_is_an_identifier),
        cmocka_unit_test(test_whs_conf_promote_list),
        cmocka_unit_test(test_whs_conf_dump_masks_secrets),
        cmocka_unit_test(test_whs_conf_dup_is_deep),
        cmocka_unit_test(test_whs_sink_new_refuses_incomplete_conf),
        cmocka_unit_test(test_whs_sink_open_says_what_may_heal),
        cmocka_unit_test(test_whs_err_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
