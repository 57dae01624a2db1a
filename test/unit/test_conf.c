/*
 * test_conf.c - the configuration API: every key validated at set time with a message naming
 * it, "kafka.*" validated by librdkafka, get/dump from the same table (secrets masked), deep
 * copies, NULL arguments, and the checks ue_client_new() adds on top (topic.template).
 */
#include "conf.h"
#include "testutil.h"
#include "userevents.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Sets @p name to @p value and returns the result; the message lands in @p errstr. */
static ue_conf_res_t set(ue_conf_t *conf, const char *name, const char *value, char *errstr)
{
    errstr[0] = '\0';
    return ue_conf_set(conf, name, value, errstr, 512);
}

/* Asserts that ue_conf_get(@p name) returns exactly @p expected. */
static void assert_get(const ue_conf_t *conf, const char *name, const char *expected)
{
    char buf[512];
    size_t size = sizeof(buf);
    assert_int_equal(ue_conf_get(conf, name, buf, &size), UE_CONF_OK);
    assert_string_equal(buf, expected);
    assert_int_equal(size, strlen(expected) + 1);
}

/* Asserts that setting @p name=@p value is refused as INVALID, naming the key. */
static void assert_invalid(ue_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    assert_int_equal(set(conf, name, value, errstr), UE_CONF_INVALID);
    if (!strstr(errstr, name))
        fail_msg("%s=%s: message \"%s\" does not name the key", name, value, errstr);
}

static void test_conf_unknown_key_is_unknown_with_message(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "no.such.key", "1", errstr), UE_CONF_UNKNOWN);
    assert_non_null(strstr(errstr, "no.such.key"));
    assert_int_equal(set(conf, "queue.max.event", "1", errstr), UE_CONF_UNKNOWN);
    assert_int_equal(set(conf, "", "1", errstr), UE_CONF_UNKNOWN);
    assert_int_equal(set(conf, "context.no_such_field", "x", errstr), UE_CONF_UNKNOWN);
    ue_conf_destroy(conf);
}

static void test_conf_rejects_non_integer(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    assert_invalid(conf, "queue.max.events", "abc");
    assert_invalid(conf, "queue.max.events", "12x");
    assert_invalid(conf, "queue.max.events", "");
    assert_invalid(conf, "queue.max.events", "1.5");
    assert_invalid(conf, "linger.ms", " ");
    assert_invalid(conf, "shutdown.timeout.ms", "99999999999999999999999"); /* overflows */
    ue_conf_destroy(conf);
}

static void test_conf_rejects_out_of_range(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    assert_invalid(conf, "queue.max.events", "0");
    assert_invalid(conf, "queue.max.events", "100000001");
    assert_invalid(conf, "queue.max.bytes", "1023");
    assert_invalid(conf, "linger.ms", "-1");
    assert_invalid(conf, "linger.ms", "60001");
    assert_invalid(conf, "event.max.bytes", "63");
    assert_invalid(conf, "spool.max.bytes", "1000");
    assert_invalid(conf, "spool.compression.level", "20");
    assert_invalid(conf, "spool.segment.bytes", "4095");
    /* the bounds themselves are accepted */
    char errstr[512];
    assert_int_equal(set(conf, "queue.max.events", "1", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.max.events", "100000000", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "linger.ms", "0", errstr), UE_CONF_OK);
    ue_conf_destroy(conf);
}

static void test_conf_rejects_bad_enum(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_invalid(conf, "queue.full.policy", "sometimes");
    assert_invalid(conf, "queue.full.policy", "drop_newest,block"); /* one choice, not a list */
    assert_invalid(conf, "queue.full.policy", "drop");
    assert_invalid(conf, "log.level", "verbose");
    assert_int_equal(set(conf, "queue.full.policy", "oops", errstr), UE_CONF_INVALID);
    assert_non_null(strstr(errstr, "drop_oldest")); /* the message lists the choices */
    ue_conf_destroy(conf);
}

static void test_conf_rejects_bad_bool(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    assert_invalid(conf, "spool.fsync", "maybe");
    assert_invalid(conf, "spool.fsync", "");
    assert_invalid(conf, "spool.fsync", "TRUE ");
    ue_conf_destroy(conf);
}

static void test_conf_rejects_non_numeric_screen_size(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_invalid(conf, "context.screen.width", "abc");
    assert_invalid(conf, "context.screen.width", "12px");
    assert_invalid(conf, "context.screen.height", "-1");
    assert_invalid(conf, "context.screen.height", "100001");
    assert_int_equal(set(conf, "context.screen.width", "1920", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "context.screen.width", "", errstr), UE_CONF_OK); /* unset */
    ue_conf_destroy(conf);
}

static void test_conf_rejects_overlong_string(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char value[300];
    memset(value, 'a', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    assert_invalid(conf, "topic.template", value);
    assert_invalid(conf, "anonymous.id", value);
    ue_conf_destroy(conf);
}

static void test_conf_failed_set_keeps_previous_value(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "queue.max.events", "42", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.max.events", "nope", errstr), UE_CONF_INVALID);
    assert_get(conf, "queue.max.events", "42");
    assert_int_equal(set(conf, "queue.full.policy", "block", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.full.policy", "nope", errstr), UE_CONF_INVALID);
    assert_get(conf, "queue.full.policy", "block");
    assert_int_equal(set(conf, "context.screen.width", "800", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "context.screen.width", "wide", errstr), UE_CONF_INVALID);
    assert_get(conf, "context.screen.width", "800");
    ue_conf_destroy(conf);
}

static void test_conf_defaults_are_readable(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    assert_get(conf, "topic.template", "events.{type}");
    assert_get(conf, "queue.max.events", "100000");
    assert_get(conf, "queue.full.policy", "drop_newest");
    assert_get(conf, "spool.fsync", "false");
    assert_get(conf, "spool.dir", "");
    assert_get(conf, "log.level", "warning");
    assert_get(conf, "context.app.name", "");
    /* the librdkafka settings the guarantees rely on */
    assert_get(conf, "kafka.enable.idempotence", "true");
    assert_get(conf, "kafka.message.timeout.ms", "0");
    ue_conf_destroy(conf);
}

static void test_conf_set_values_read_back(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "queue.max.events", "7", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.full.policy", "drop_oldest", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "spool.fsync", "yes", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "spool.dir", "/var/lib/x", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "context.app.name", "shop", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "log.level", "debug", errstr), UE_CONF_OK);
    assert_get(conf, "queue.max.events", "7");
    assert_get(conf, "queue.full.policy", "drop_oldest");
    assert_get(conf, "spool.fsync", "true"); /* canonical form */
    assert_get(conf, "spool.dir", "/var/lib/x");
    assert_get(conf, "context.app.name", "shop");
    assert_get(conf, "log.level", "debug");
    assert_int_equal(set(conf, "spool.dir", "", errstr), UE_CONF_OK); /* back to none */
    assert_get(conf, "spool.dir", "");
    ue_conf_destroy(conf);
}

static void test_conf_get_reports_needed_size(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512], small[5];
    size_t size = 0;
    assert_int_equal(set(conf, "topic.template", "app.{type}.raw", errstr), UE_CONF_OK);
    assert_int_equal(ue_conf_get(conf, "topic.template", NULL, &size), UE_CONF_OK);
    assert_int_equal(size, strlen("app.{type}.raw") + 1);
    size = sizeof(small);
    assert_int_equal(ue_conf_get(conf, "topic.template", small, &size), UE_CONF_OK);
    assert_string_equal(small, "app."); /* truncated, still terminated */
    assert_int_equal(size, strlen("app.{type}.raw") + 1);
    size = sizeof(small);
    assert_int_equal(ue_conf_get(conf, "no.such.key", small, &size), UE_CONF_UNKNOWN);
    size = sizeof(small);
    assert_int_equal(ue_conf_get(conf, "kafka.no.such.key", small, &size), UE_CONF_UNKNOWN);
    ue_conf_destroy(conf);
}

static void test_conf_kafka_unknown_key_is_unknown(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "kafka.no.such.key", "1", errstr), UE_CONF_UNKNOWN);
    assert_true(strlen(errstr) > 0);
    assert_int_equal(set(conf, "kafka.", "1", errstr), UE_CONF_UNKNOWN);
    ue_conf_destroy(conf);
}

static void test_conf_kafka_bad_value_is_invalid(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "kafka.acks", "banana", errstr), UE_CONF_INVALID);
    assert_true(strlen(errstr) > 0);
    assert_int_equal(set(conf, "kafka.linger.ms", "soon", errstr), UE_CONF_INVALID);
    assert_true(strlen(errstr) > 0);
    ue_conf_destroy(conf);
}

static void test_conf_kafka_value_passes_through_and_reads_back(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "kafka.linger.ms", "5", errstr), UE_CONF_OK);
    assert_get(conf, "kafka.linger.ms", "5");
    assert_int_equal(set(conf, "kafka.linger.ms", "17", errstr), UE_CONF_OK);
    assert_get(conf, "kafka.linger.ms", "17");
    assert_int_equal(set(conf, "kafka.bootstrap.servers", "h1:9092,h2:9092", errstr), UE_CONF_OK);
    assert_get(conf, "kafka.bootstrap.servers", "h1:9092,h2:9092");
    /* the SDK's own linger.ms is a different key */
    assert_get(conf, "linger.ms", "5");
    ue_conf_destroy(conf);
}

/* The value of @p name in a dump, or NULL. */
static const char *dump_value(const char **arr, size_t cnt, const char *name)
{
    for (size_t i = 0; i + 1 < cnt; i += 2)
        if (arr[i] && strcmp(arr[i], name) == 0)
            return arr[i + 1];
    return NULL;
}

static void test_conf_dump_lists_every_property(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    size_t cnt = 0;
    assert_int_equal(set(conf, "queue.max.events", "123", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "kafka.linger.ms", "9", errstr), UE_CONF_OK);
    const char **arr = ue_conf_dump(conf, &cnt);
    assert_non_null(arr);
    assert_int_equal(cnt % 2, 0);
    assert_true(cnt / 2 > uc__props_count(ue__conf_props));
    for (const uc__prop_t *p = ue__conf_props; p->name; p++) {
        char buf[512];
        size_t size = sizeof(buf);
        const char *v = dump_value(arr, cnt, p->name);
        if (!v)
            fail_msg("%s missing from the dump", p->name);
        assert_int_equal(ue_conf_get(conf, p->name, buf, &size), UE_CONF_OK);
        assert_string_equal(v, buf);
    }
    assert_string_equal(dump_value(arr, cnt, "queue.max.events"), "123");
    /* librdkafka lists an alias under its canonical name (linger.ms = queue.buffering.max.ms) */
    assert_non_null(dump_value(arr, cnt, "kafka.queue.buffering.max.ms"));
    assert_string_equal(dump_value(arr, cnt, "kafka.queue.buffering.max.ms"), "9");
    assert_non_null(dump_value(arr, cnt, "kafka.enable.idempotence"));
    assert_string_equal(dump_value(arr, cnt, "kafka.enable.idempotence"), "true");
    /* topic-level librdkafka properties are listed too: they carry acks=all */
    assert_non_null(dump_value(arr, cnt, "kafka.request.required.acks"));
    assert_string_equal(dump_value(arr, cnt, "kafka.request.required.acks"), "-1");
    assert_non_null(dump_value(arr, cnt, "kafka.partitioner"));
    assert_string_equal(dump_value(arr, cnt, "kafka.partitioner"), "murmur2_random");
    for (size_t i = 0; i < cnt; i += 2) /* each name once */
        for (size_t j = i + 2; j < cnt; j += 2)
            if (strcmp(arr[i], arr[j]) == 0)
                fail_msg("%s listed twice", arr[i]);
    ue_conf_dump_free(arr, cnt);
    ue_conf_destroy(conf);
}

static void test_conf_dump_masks_secrets(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    size_t cnt = 0;
    assert_int_equal(set(conf, "kafka.sasl.username", "alice", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "kafka.sasl.password", "hunter2-secret", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "kafka.ssl.key.password", "keypass-secret", errstr), UE_CONF_OK);
    const char **arr = ue_conf_dump(conf, &cnt);
    assert_non_null(arr);
    assert_string_equal(dump_value(arr, cnt, "kafka.sasl.password"), "[redacted]");
    assert_string_equal(dump_value(arr, cnt, "kafka.ssl.key.password"), "[redacted]");
    assert_string_equal(dump_value(arr, cnt, "kafka.sasl.username"), "alice");
    for (size_t i = 0; i < cnt; i++) {
        if (arr[i] && (strstr(arr[i], "hunter2") || strstr(arr[i], "keypass")))
            fail_msg("secret leaked in dump entry %zu: %s", i, arr[i]);
    }
    ue_conf_dump_free(arr, cnt);
    ue_conf_destroy(conf);
}

static void test_conf_dup_is_independent(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    assert_int_equal(set(conf, "topic.template", "a.{type}", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "context.os.name", "linux", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.max.events", "10", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "kafka.linger.ms", "11", errstr), UE_CONF_OK);

    ue_conf_t *dup = ue_conf_dup(conf);
    assert_non_null(dup);
    assert_get(dup, "topic.template", "a.{type}");
    assert_get(dup, "context.os.name", "linux");
    assert_get(dup, "queue.max.events", "10");
    assert_get(dup, "kafka.linger.ms", "11");

    assert_int_equal(set(conf, "topic.template", "b.{type}", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "queue.max.events", "20", errstr), UE_CONF_OK);
    assert_int_equal(set(conf, "kafka.linger.ms", "21", errstr), UE_CONF_OK);
    assert_int_equal(set(dup, "context.os.name", "bsd", errstr), UE_CONF_OK);
    assert_get(dup, "topic.template", "a.{type}");
    assert_get(dup, "queue.max.events", "10");
    assert_get(dup, "kafka.linger.ms", "11");
    assert_get(conf, "context.os.name", "linux");

    ue_conf_destroy(conf); /* the copy owns its own strings (ASan checks) */
    assert_get(dup, "topic.template", "a.{type}");
    assert_get(dup, "context.os.name", "bsd");
    ue_conf_destroy(dup);
}

static void test_conf_null_args_are_errors(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[512], buf[64];
    size_t size = sizeof(buf), cnt = 99;

    assert_int_equal(set(NULL, "linger.ms", "5", errstr), UE_CONF_INVALID);
    assert_true(strlen(errstr) > 0);
    assert_int_equal(set(conf, NULL, "5", errstr), UE_CONF_INVALID);
    assert_true(strlen(errstr) > 0);
    assert_int_equal(set(conf, "linger.ms", NULL, errstr), UE_CONF_INVALID);
    assert_int_equal(set(conf, "kafka.linger.ms", NULL, errstr), UE_CONF_INVALID);
    assert_int_equal(ue_conf_set(conf, "linger.ms", "x", NULL, 0), UE_CONF_INVALID);
    assert_int_equal(ue_conf_set(conf, "no.such", "x", NULL, 0), UE_CONF_UNKNOWN);
    assert_int_equal(ue_conf_set(conf, "kafka.acks", "banana", NULL, 0), UE_CONF_INVALID);
    errstr[0] = 'Z';
    assert_int_equal(ue_conf_set(conf, "linger.ms", "x", errstr, 0), UE_CONF_INVALID);
    assert_int_equal(errstr[0], 'Z'); /* a zero-sized buffer is not written */

    assert_int_equal(ue_conf_get(NULL, "linger.ms", buf, &size), UE_CONF_UNKNOWN);
    assert_int_equal(ue_conf_get(conf, NULL, buf, &size), UE_CONF_UNKNOWN);
    assert_int_equal(ue_conf_get(conf, "linger.ms", buf, NULL), UE_CONF_UNKNOWN);
    assert_null(ue_conf_dump(NULL, &cnt));
    assert_int_equal(cnt, 0);
    assert_null(ue_conf_dump(conf, NULL));
    assert_null(ue_conf_dup(NULL));
    ue_conf_dump_free(NULL, 0);
    ue_conf_set_delivery_cb(NULL, tu_dr_cb, NULL);
    ue_conf_set_log_cb(NULL, tu_log_quiet, NULL);
    ue_conf_destroy(NULL);
    assert_null(ue_client_new(NULL, errstr, sizeof(errstr)));
    assert_true(strlen(errstr) > 0);
    assert_null(ue_client_new(NULL, NULL, 0));
    ue_conf_destroy(conf);
}

static void test_conf_errstr_is_truncated_safely(void **state)
{
    (void)state;
    ue_conf_t *conf = ue_conf_new();
    char errstr[8];
    memset(errstr, 'X', sizeof(errstr));
    assert_int_equal(ue_conf_set(conf, "queue.max.events", "not-a-number", errstr, 4),
                     UE_CONF_INVALID);
    assert_int_equal(errstr[3], '\0');
    assert_int_equal(errstr[4], 'X');
    ue_conf_destroy(conf);
}

/* ue_client_new() refuses @p template with a message naming topic.template; conf stays ours. */
static void assert_template_refused(const char *template)
{
    ue_conf_t *conf = ue_conf_new();
    char errstr[512] = "";
    assert_int_equal(ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr)),
                     UE_CONF_OK);
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    if (!strstr(errstr, "topic.template"))
        fail_msg("template \"%s\": unclear message \"%s\"", template, errstr);
    assert_get(conf, "topic.template", template); /* still valid: the caller owns it */
    ue_conf_destroy(conf);
}

static void test_client_new_rejects_bad_topic_template(void **state)
{
    (void)state;
    char long_template[260];
    assert_template_refused("ev/{type}");
    assert_template_refused("{type}{type}");
    assert_template_refused("ev {type}");
    assert_template_refused("events.{TYPE");
    memset(long_template, 'a', sizeof(long_template) - 1);
    long_template[sizeof(long_template) - 1] = '\0';
    memcpy(long_template, "{type}", 6);
    long_template[200] = '\0'; /* 194 fixed + 200 for the type > 249 */
    assert_template_refused(long_template);
}

static void test_client_new_rejects_segment_larger_than_spool_cap(void **state)
{
    (void)state;
    char *dir = tu_tempdir("ue-conf-spool");
    char spool_kv[4200], errstr[512] = "";
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    ue_conf_t *conf = tu_conf((const char *const[]){
        TU_NO_BROKER, spool_kv, "spool.max.bytes=1048576", "spool.segment.bytes=2097152", NULL});
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "spool.segment.bytes"));
    ue_conf_destroy(conf);

    /* a spool directory that cannot be created: refused, conf still the caller's */
    char *file;
    assert_true(asprintf(&file, "spool.dir=%s/file/below", dir) > 0);
    char *plain;
    assert_true(asprintf(&plain, "%s/file", dir) > 0);
    FILE *f = fopen(plain, "w");
    assert_non_null(f);
    fclose(f);
    conf = tu_conf((const char *const[]){TU_NO_BROKER, file, NULL});
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    errstr[0] = '\0';
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "spool"));
    ue_conf_destroy(conf);
    free(file);
    free(plain);
    tu_rmrf(dir);
    free(dir);
}

static void test_client_new_accepts_template_without_placeholder(void **state)
{
    (void)state;
    const char *kv[] = {TU_NO_BROKER, "topic.template=all-events", "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_unknown_key_is_unknown_with_message),
        cmocka_unit_test(test_conf_rejects_non_integer),
        cmocka_unit_test(test_conf_rejects_out_of_range),
        cmocka_unit_test(test_conf_rejects_bad_enum),
        cmocka_unit_test(test_conf_rejects_bad_bool),
        cmocka_unit_test(test_conf_rejects_non_numeric_screen_size),
        cmocka_unit_test(test_conf_rejects_overlong_string),
        cmocka_unit_test(test_conf_failed_set_keeps_previous_value),
        cmocka_unit_test(test_conf_defaults_are_readable),
        cmocka_unit_test(test_conf_set_values_read_back),
        cmocka_unit_test(test_conf_get_reports_needed_size),
        cmocka_unit_test(test_conf_kafka_unknown_key_is_unknown),
        cmocka_unit_test(test_conf_kafka_bad_value_is_invalid),
        cmocka_unit_test(test_conf_kafka_value_passes_through_and_reads_back),
        cmocka_unit_test(test_conf_dump_lists_every_property),
        cmocka_unit_test(test_conf_dump_masks_secrets),
        cmocka_unit_test(test_conf_dup_is_independent),
        cmocka_unit_test(test_conf_null_args_are_errors),
        cmocka_unit_test(test_conf_errstr_is_truncated_safely),
        cmocka_unit_test(test_client_new_rejects_bad_topic_template),
        cmocka_unit_test(test_client_new_rejects_segment_larger_than_spool_cap),
        cmocka_unit_test(test_client_new_accepts_template_without_placeholder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
