/*
 * it_sasl.c - the pipeline through the real broker's SASL_SSL listener (PLAIN over TLS, the
 * way managed clusters are reached; test/kafka.sh gives every node one): the SDK, a libenrich
 * processor and a libwhsink sink each authenticate and verify the broker's certificate, and
 * every event lands in the warehouse once. A wrong password and a CA that does not trust the
 * broker are refused with a reason that says so, and no password is ever logged, with
 * librdkafka's security and configuration debugging on.
 *
 * The listener comes from UE_KAFKA_DIR (sasl_bootstrap, tls/ca.pem, sasl_password, user "ue"),
 * or from KAFKA_SASL_BOOTSTRAP, KAFKA_SASL_CA, KAFKA_SASL_PASSWORD (user KAFKA_SASL_USER).
 */
#include "enrich.h"
#include "itutil.h"
#include "testutil.h"
#include "userevents.h"
#include "whsink.h"

#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define EVENTS 500

static struct {
    char bootstrap[512], ca[512], user[64], password[128];
} sasl;

/* Every line the libraries logged, to look for secrets in. */
static struct {
    pthread_mutex_t lock;
    char *text;
    size_t len;
} logged = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

static void keep_log(int level, const char *message, void *opaque)
{
    (void)opaque;
    size_t n = strlen(message);
    pthread_mutex_lock(&logged.lock);
    char *grown = realloc(logged.text, logged.len + n + 5);
    if (grown) { /* "<level>message\n": the level as syslog writes it */
        logged.text = grown;
        logged.len += (size_t)snprintf(logged.text + logged.len, 4, "<%d>", level % 10);
        memcpy(logged.text + logged.len, message, n);
        logged.len += n;
        logged.text[logged.len++] = '\n';
        logged.text[logged.len] = '\0';
    }
    pthread_mutex_unlock(&logged.lock);
    if (getenv("IT_VERBOSE"))
        fprintf(stderr, "  [%d] %s\n", level, message);
}

/* 1 when the logs hold @p s. */
static int logs_hold(const char *s)
{
    pthread_mutex_lock(&logged.lock);
    int found = logged.text && strstr(logged.text, s);
    pthread_mutex_unlock(&logged.lock);
    return found;
}

/* 1 when a line logged at error level (3) holds @p s: the default level ("warning") shows it. */
static int error_logged(const char *s)
{
    int found = 0;
    pthread_mutex_lock(&logged.lock);
    for (const char *line = logged.text; line && *line && !found;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        found = !strncmp(line, "<3>", 3) && memmem(line, len, s, strlen(s));
        line += len + (end != NULL);
    }
    pthread_mutex_unlock(&logged.lock);
    return found;
}

static void logs_forget(void)
{
    pthread_mutex_lock(&logged.lock);
    logged.len = 0;
    if (logged.text)
        logged.text[0] = '\0';
    pthread_mutex_unlock(&logged.lock);
}

static void read_line(const char *dir, const char *name, char *out, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(out, (int)size, f))
        fail_msg("cannot read %s", path);
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static int find_listener(void **state)
{
    (void)state;
    const char *dir = getenv("UE_KAFKA_DIR"), *b = getenv("KAFKA_SASL_BOOTSTRAP");
    if (b && *b) {
        snprintf(sasl.bootstrap, sizeof(sasl.bootstrap), "%s", b);
        snprintf(sasl.ca, sizeof(sasl.ca), "%s", getenv("KAFKA_SASL_CA") ?: "");
        snprintf(sasl.user, sizeof(sasl.user), "%s", getenv("KAFKA_SASL_USER") ?: "ue");
        snprintf(sasl.password, sizeof(sasl.password), "%s", getenv("KAFKA_SASL_PASSWORD") ?: "");
    } else if (dir && *dir) {
        read_line(dir, "sasl_bootstrap", sasl.bootstrap, sizeof(sasl.bootstrap));
        read_line(dir, "sasl_password", sasl.password, sizeof(sasl.password));
        snprintf(sasl.ca, sizeof(sasl.ca), "%s/tls/ca.pem", dir);
        snprintf(sasl.user, sizeof(sasl.user), "ue");
    } else {
        fail_msg("no SASL_SSL listener: run test/integration/run.sh, or set "
                 "KAFKA_SASL_BOOTSTRAP, KAFKA_SASL_CA and KAFKA_SASL_PASSWORD");
    }
    return 0;
}

/* The client settings of the listener, as "key=value" with the library's @p prefix
 * ("kafka."), for @p password and @p ca (NULL: none given). */
static int security_settings(char kv[][640], const char *password, const char *ca)
{
    int n = 0;
    snprintf(kv[n++], 640, "kafka.bootstrap.servers=%s", sasl.bootstrap);
    snprintf(kv[n++], 640, "kafka.security.protocol=SASL_SSL");
    snprintf(kv[n++], 640, "kafka.sasl.mechanisms=PLAIN");
    snprintf(kv[n++], 640, "kafka.sasl.username=%s", sasl.user);
    snprintf(kv[n++], 640, "kafka.sasl.password=%s", password);
    if (ca)
        snprintf(kv[n++], 640, "kafka.ssl.ca.location=%s", ca);
    snprintf(kv[n++], 640, "kafka.debug=security,conf,broker");
    return n;
}

/* ---- the three clients ------------------------------------------------------------------ */

static ue_client_t *sdk(const char *topic, const char *password, const char *ca)
{
    char kv[16][640], errstr[512];
    int n = security_settings(kv, password, ca);
    ue_conf_t *conf = ue_conf_new();
    ue_conf_set_log_cb(conf, keep_log, NULL);
    snprintf(kv[n++], 640, "topic.template=%s", topic);
    snprintf(kv[n++], 640, "log.level=debug");
    for (int i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (ue_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != UE_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("ue_client_new: %s", errstr);
    return c;
}

static enr_processor_t *processor(const char *prefix)
{
    char kv[24][640], errstr[512];
    int n = security_settings(kv, sasl.password, sasl.ca);
    snprintf(kv[n++], 640, "group.id=%s-enrich", prefix);
    snprintf(kv[n++], 640, "input.topics=%s.ev.all", prefix);
    snprintf(kv[n++], 640, "output.topic=%s.enriched", prefix);
    snprintf(kv[n++], 640, "dead_letter.topic=%s.dlq", prefix);
    snprintf(kv[n++], 640, "stages=dedup,session");
    snprintf(kv[n++], 640, "log.level=debug");
    enr_conf_t *conf = enr_conf_new();
    enr_conf_set_log_cb(conf, keep_log, NULL);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (enr_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!p)
        fail_msg("enr_processor_new: %s", errstr);
    return p;
}

static whs_sink_t *sink(const char *prefix, const char *db)
{
    char kv[24][640], errstr[512];
    int n = security_settings(kv, sasl.password, sasl.ca);
    snprintf(kv[n++], 640, "topic=%s.enriched", prefix);
    snprintf(kv[n++], 640, "kafka.group.id=%s-sink", prefix);
    snprintf(kv[n++], 640, "warehouse.url=sqlite:%s", db);
    snprintf(kv[n++], 640, "batch.max.ms=100");
    snprintf(kv[n++], 640, "log.level=debug");
    whs_conf_t *conf = whs_conf_new();
    whs_conf_set_log_cb(conf, keep_log, NULL);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (whs_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != WHS_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    whs_sink_t *s = NULL;
    if (whs_sink_open(conf, &s, errstr, sizeof(errstr)) != WHS_OK)
        fail_msg("whs_sink_open: %s", errstr);
    return s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* Guarantee: SDK -> Kafka -> libenrich -> Kafka -> libwhsink over SASL_SSL, the broker's
 * certificate verified at every hop: every event in the warehouse once, no password logged. */
static void test_pipeline_over_sasl_ssl_loads_each_event_once(void **state)
{
    (void)state;
    char prefix[128], topic[160], dir_db[1024];
    snprintf(prefix, sizeof(prefix), "%s.sasl", it_unique_prefix());
    snprintf(topic, sizeof(topic), "%s.ev.all", prefix);
    assert_int_equal(it_create_topic(topic, 3), 0);
    logs_forget();

    ue_client_t *c = sdk(topic, sasl.password, sasl.ca);
    ue_event_t *ev = ue_event_new("page_view");
    for (int i = 0; i < EVENTS; i++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%03d", i % 50);
        ue_event_reset(ev, "page_view");
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "i", i);
        assert_int_equal(ue_track(c, ev), UE_OK);
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), EVENTS);
    ue_client_destroy(c);

    enr_processor_t *p = processor(prefix);
    for (int64_t end = now_ms() + 90000; enr_stat(p, ENR_STAT_CONSUMED) < EVENTS && now_ms() < end;)
        assert_true(enr_poll(p, 100) >= 0);
    assert_int_equal(enr_stat(p, ENR_STAT_CONSUMED), EVENTS);
    assert_int_equal(enr_processor_destroy(p, 30000), ENR_OK); /* commits the rest */

    char *dir = tu_tempdir("it-sasl");
    snprintf(dir_db, sizeof(dir_db), "%s/wh.db", dir);
    whs_sink_t *s = sink(prefix, dir_db);
    for (int64_t end = now_ms() + 90000;
         whs_stat(s, WHS_STAT_ROWS_LOADED) < EVENTS && now_ms() < end;)
        assert_true(whs_poll(s, 100) >= 0);
    assert_int_equal(whs_close(s, 30000), WHS_OK);
    whs_sink_destroy(s);

    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(dir_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), count(DISTINCT event_id) FROM events",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    print_message("over SASL_SSL: %d rows, %d distinct event ids of %d tracked\n",
                  sqlite3_column_int(q, 0), sqlite3_column_int(q, 1), EVENTS);
    assert_int_equal(sqlite3_column_int(q, 0), EVENTS);
    assert_int_equal(sqlite3_column_int(q, 1), EVENTS);
    sqlite3_finalize(q);
    sqlite3_close(db);
    tu_rmrf(dir);
    free(dir);

    assert_true(logs_hold("SASL")); /* the debugging was on, and said something */
    assert_false(logs_hold(sasl.password));
}

/* Tracks one event with @p password and @p ca; returns ue_flush()'s answer after 10 s. The
 * event is never lost: it stays queued (the client is destroyed with it undelivered). */
static ue_err_t refused(const char *password, const char *ca)
{
    char topic[160];
    snprintf(topic, sizeof(topic), "%s.sasl.refused", it_unique_prefix());
    logs_forget();
    ue_client_t *c = sdk(topic, password, ca);
    ue_event_t *ev = ue_event_new("page_view");
    ue_event_set_user_id(ev, "u1");
    assert_int_equal(ue_track(c, ev), UE_OK);
    ue_event_destroy(ev);
    ue_err_t rc = ue_flush(c, 10000);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 0);
    ue_client_destroy(c);
    return rc;
}

/* Guarantee: a wrong password is refused by the broker, the SDK says so as an error (seen at
 * the default log level) and logs neither password. */
static void test_wrong_password_is_refused_with_the_reason_and_never_logged(void **state)
{
    (void)state;
    const char *wrong = "not-the-password-8c2f71";
    assert_int_not_equal(refused(wrong, sasl.ca), UE_OK);
    if (!error_logged("Authentication failed"))
        fail_msg("no authentication failure logged as an error:\n%s",
                 logged.text ? logged.text : "");
    assert_false(logs_hold(wrong));
    assert_false(logs_hold(sasl.password));
}

/* Guarantee: a CA that did not sign the broker's certificate stops the connection (the
 * certificate is verified, not just encrypted to), and the SDK says why as an error. */
static void test_untrusted_broker_certificate_is_refused(void **state)
{
    (void)state;
    char *dir = tu_tempdir("it-sasl-ca"), cmd[2048], other[1100];
    snprintf(other, sizeof(other), "%s/other-ca.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 1 -subj /CN=not-the-broker-ca -keyout %s/k.pem -out %s >/dev/null 2>&1",
             dir, other);
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(refused(sasl.password, other), UE_OK);
    if (!error_logged("certificate verify failed"))
        fail_msg("no certificate failure logged as an error:\n%s", logged.text ? logged.text : "");
    assert_false(logs_hold(sasl.password));
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_sasl: KAFKA_BOOTSTRAP is not set (run test/integration/run.sh)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_over_sasl_ssl_loads_each_event_once),
        cmocka_unit_test(test_wrong_password_is_refused_with_the_reason_and_never_logged),
        cmocka_unit_test(test_untrusted_broker_certificate_is_refused),
    };
    return cmocka_run_group_tests(tests, find_listener, NULL);
}
