/*
 * test_enr_pipeline.c - libenrich's pure entry point (enr_pipeline_*): the configured stages on
 * one encoded event, no Kafka. Configuration errors, bad input to the dead-letter path with a
 * reason, a custom stage written against the public API, and the flush of window aggregates.
 */
#include "enriched.pb-c.h"
#include "enrich.h"
#include "userevents.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0 INT64_C(1790000040000)

static const char *UA_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                               "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/* Encodes an event; @p id_byte makes the id; the caller frees the buffer. */
static uint8_t *encode(uint8_t id_byte, const char *type, const char *user, int64_t ts,
                       int64_t sent_at, size_t *len)
{
    uint8_t id[16] = {0};
    id[15] = id_byte;
    id[6] = 0x70;
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    Userevents__Context ctx = USEREVENTS__CONTEXT__INIT;
    Userevents__Value amount = USEREVENTS__VALUE__INIT;
    Userevents__Event__PropertiesEntry entry = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT;
    Userevents__Event__PropertiesEntry *props[] = {&entry};
    amount.kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    amount.double_value = 2.5;
    entry.key = "amount";
    entry.value = &amount;
    ctx.user_agent = (char *)UA_CHROME;
    e.event_id.data = id;
    e.event_id.len = 16;
    e.type = (char *)type;
    e.user_id = (char *)user;
    e.timestamp_ms = ts;
    e.sent_at_ms = sent_at;
    e.schema_version = 1;
    e.context = &ctx;
    e.properties = props;
    e.n_properties = 1;
    *len = userevents__event__get_packed_size(&e);
    uint8_t *buf = malloc(*len);
    userevents__event__pack(&e, buf);
    return buf;
}

static enr_conf_t *conf_with(const char *stages)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    assert_non_null(conf);
    assert_int_equal(enr_conf_set(conf, "stages", stages, errstr, sizeof(errstr)), ENR_CONF_OK);
    return conf;
}

static enr_pipeline_t *pipeline(enr_conf_t *conf)
{
    char errstr[256];
    enr_pipeline_t *pipe = enr_pipeline_new(conf, errstr, sizeof(errstr));
    if (!pipe)
        fail_msg("enr_pipeline_new: %s", errstr);
    return pipe;
}

static Userevents__EnrichedEvent *run(enr_pipeline_t *pipe, const uint8_t *buf, size_t len,
                                      int64_t received_at, enr_verdict_t want)
{
    void *out = NULL;
    size_t out_len = 0;
    char reason[256] = "";
    enr_verdict_t v = enr_pipeline_process(pipe, buf, len, received_at, &out, &out_len, reason,
                                           sizeof(reason));
    if (v != want)
        fail_msg("verdict %d, expected %d (%s)", v, want, reason);
    if (v != ENR_KEEP)
        return NULL;
    Userevents__EnrichedEvent *e = userevents__enriched_event__unpack(NULL, out_len, out);
    enr_free(out);
    assert_non_null(e);
    return e;
}

static void test_pipeline_enriches_profile_session_ua_and_clock(void **state)
{
    (void)state;
    enr_conf_t *conf = conf_with("dedup,clock,useragent,profile,session");
    enr_pipeline_t *pipe = pipeline(conf);
    Userevents__UserProfile prof = USEREVENTS__USER_PROFILE__INIT;
    uint8_t pbuf[128];
    prof.user_id = "u1";
    prof.plan = "pro";
    size_t plen = userevents__user_profile__pack(&prof, pbuf);
    assert_int_equal(enr_pipeline_put_profile(pipe, pbuf, plen), ENR_OK);

    size_t len;
    uint8_t *buf = encode(1, "purchase", "u1", T0, T0 + 1000, &len);
    /* received 5 s after it was sent: the client clock is 4 s behind */
    Userevents__EnrichedEvent *e = run(pipe, buf, len, T0 + 5000, ENR_KEEP);
    assert_int_equal(e->received_at_ms, T0 + 5000);
    assert_int_equal(e->corrected_timestamp_ms, T0 + 4000);
    assert_non_null(e->profile);
    assert_string_equal(e->profile->plan, "pro");
    assert_non_null(e->session);
    assert_int_equal(e->session->sequence, 1);
    assert_non_null(e->user_agent);
    assert_string_equal(e->user_agent->browser, "Chrome");
    assert_string_equal(e->event->type, "purchase");
    assert_int_equal(e->enrich_version, ENR_OUTPUT_VERSION);
    userevents__enriched_event__free_unpacked(e, NULL);
    free(buf);

    buf = encode(2, "click", "u2", T0 + 10, 0, &len); /* no profile, no sent_at */
    e = run(pipe, buf, len, T0 + 99, ENR_KEEP);
    assert_null(e->profile);
    assert_int_equal(e->corrected_timestamp_ms, T0 + 10);
    userevents__enriched_event__free_unpacked(e, NULL);
    free(buf);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_PROFILES), 1);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

static void test_pipeline_drops_a_repeated_event_id(void **state)
{
    (void)state;
    enr_conf_t *conf = conf_with("dedup,clock");
    enr_pipeline_t *pipe = pipeline(conf);
    size_t len;
    uint8_t *buf = encode(7, "page_view", "u1", T0, 0, &len);
    Userevents__EnrichedEvent *e = run(pipe, buf, len, T0, ENR_KEEP);
    userevents__enriched_event__free_unpacked(e, NULL);
    run(pipe, buf, len, T0 + 1, ENR_DROP);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_DROPPED), 1);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_ENRICHED), 1);
    free(buf);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

static void expect_fail(enr_pipeline_t *pipe, const void *buf, size_t len, const char *why)
{
    void *out = (void *)1;
    size_t out_len = 1;
    char reason[256] = "";
    assert_int_equal(enr_pipeline_process(pipe, buf, len, T0, &out, &out_len, reason,
                                          sizeof(reason)),
                     ENR_FAIL);
    assert_null(out);
    if (!strstr(reason, why))
        fail_msg("reason \"%s\" does not say \"%s\"", reason, why);
}

static void test_pipeline_fails_bad_records_with_a_reason(void **state)
{
    (void)state;
    char errstr[256];
    enr_conf_t *conf = conf_with("clock");
    assert_int_equal(enr_conf_set(conf, "input.max.bytes", "512", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    enr_pipeline_t *pipe = pipeline(conf);
    expect_fail(pipe, "\xff\x01garbage", 9, "undecodable");

    uint8_t id[16] = {1}, buf[2048];
    char big[1024], bad_utf8[] = "bad\xc3\x28";
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    e.event_id.data = id;
    e.event_id.len = 16;
    e.type = "page_view";
    e.schema_version = 99;
    expect_fail(pipe, buf, userevents__event__pack(&e, buf), "schema version");
    e.schema_version = 1;
    e.user_id = bad_utf8;
    expect_fail(pipe, buf, userevents__event__pack(&e, buf), "UTF-8");
    e.user_id = "u";
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    e.session_id = big;
    expect_fail(pipe, buf, userevents__event__pack(&e, buf), "oversized");
    e.session_id = "";
    e.type = "no spaces allowed";
    expect_fail(pipe, buf, userevents__event__pack(&e, buf), "event type");
    e.type = "page_view";
    e.event_id.len = 3;
    expect_fail(pipe, buf, userevents__event__pack(&e, buf), "event id");
    expect_fail(pipe, NULL, 0, "");
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_DEAD_LETTERS), 7);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

/* A user's stage, written only against the public API. */
static enr_verdict_t tagger(void *state, enr_event_t *ev, enr_ctx_t *ctx, void *opaque)
{
    (void)state;
    int *calls = opaque;
    (*calls)++;
    if (!strcmp(enr_event_type(ev), "refund")) {
        enr_ctx_fail(ctx, "refunds are not allowed here");
        return ENR_FAIL;
    }
    double amount = 0;
    enr_event_get_double(ev, "amount", &amount);
    enr_event_set_double(ev, "amount_x2", amount * 2);
    enr_event_set_string(ev, "tagged", enr_event_user_id(ev));
    return ENR_KEEP;
}

static void test_custom_stage_runs_in_configured_order(void **state)
{
    (void)state;
    int calls = 0;
    enr_conf_t *conf = conf_with("clock,tagger");
    assert_null(enr_stage_new("Bad Name", tagger, NULL));
    assert_int_equal(enr_conf_add_stage(conf, enr_stage_new("tagger", tagger, &calls)), ENR_OK);
    assert_int_equal(enr_conf_add_stage(conf, enr_stage_new("tagger", tagger, &calls)),
                     ENR_ERR_INVALID_ARG);
    enr_pipeline_t *pipe = pipeline(conf);
    size_t len;
    uint8_t *buf = encode(3, "purchase", "u9", T0, 0, &len);
    Userevents__EnrichedEvent *e = run(pipe, buf, len, T0, ENR_KEEP);
    int found = 0;
    for (size_t i = 0; i < e->event->n_properties; i++) {
        const Userevents__Event__PropertiesEntry *p = e->event->properties[i];
        if (!strcmp(p->key, "amount_x2"))
            found += p->value->double_value == 5.0;
        if (!strcmp(p->key, "tagged"))
            found += !strcmp(p->value->string_value, "u9");
    }
    assert_int_equal(found, 2);
    userevents__enriched_event__free_unpacked(e, NULL);
    free(buf);
    buf = encode(4, "refund", "u9", T0, 0, &len);
    expect_fail(pipe, buf, len, "stage tagger: refunds are not allowed here");
    assert_int_equal(calls, 2);
    free(buf);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

/* enr_conf_dup(): the copy has the settings and custom stages, and lives on its own. */
static void test_conf_dup_carries_settings_and_custom_stages(void **state)
{
    (void)state;
    char errstr[256], value[64];
    size_t size = sizeof(value);
    int calls = 0;
    enr_conf_t *conf = conf_with("clock,tagger");
    assert_int_equal(enr_conf_add_stage(conf, enr_stage_new("tagger", tagger, &calls)), ENR_OK);
    assert_int_equal(enr_conf_set(conf, "group.id", "one", errstr, sizeof(errstr)), ENR_CONF_OK);
    enr_conf_t *dup = enr_conf_dup(conf);
    assert_non_null(dup);
    assert_int_equal(enr_conf_set(dup, "group.id", "two", errstr, sizeof(errstr)), ENR_CONF_OK);
    assert_int_equal(enr_conf_get(conf, "group.id", value, &size), ENR_CONF_OK);
    assert_string_equal(value, "one");
    enr_conf_destroy(conf); /* the copy owns its own stages and strings */
    size = sizeof(value);
    assert_int_equal(enr_conf_get(dup, "group.id", value, &size), ENR_CONF_OK);
    assert_string_equal(value, "two");
    enr_pipeline_t *pipe = pipeline(dup); /* "tagger" resolves: the stage was copied */
    size_t len;
    uint8_t *buf = encode(3, "purchase", "u9", T0, 0, &len);
    userevents__enriched_event__free_unpacked(run(pipe, buf, len, T0, ENR_KEEP), NULL);
    assert_int_equal(calls, 1);
    free(buf);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(dup);
    assert_null(enr_conf_dup(NULL));
}

/* enr_conf_dump(): every setting by name, librdkafka's per client, secrets never shown. */
static void test_conf_dump_lists_everything_but_secrets(void **state)
{
    (void)state;
    char errstr[256];
    enr_conf_t *conf = conf_with("clock");
    assert_int_equal(enr_conf_set(conf, "group.id", "g7", errstr, sizeof(errstr)), ENR_CONF_OK);
    assert_int_equal(enr_conf_set(conf, "kafka.sasl.password", "hunter2", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    size_t cnt = 0;
    const char **arr = enr_conf_dump(conf, &cnt);
    assert_non_null(arr);
    assert_true(cnt > 20 && cnt % 2 == 0);
    int group = 0, passwords = 0, producer = 0;
    for (size_t i = 0; i < cnt; i += 2) {
        assert_non_null(arr[i]);
        assert_non_null(arr[i + 1]);
        assert_null(strstr(arr[i + 1], "hunter2"));
        group += !strcmp(arr[i], "group.id") && !strcmp(arr[i + 1], "g7");
        passwords += strstr(arr[i], "sasl.password") && !strcmp(arr[i + 1], "[redacted]");
        producer += !strcmp(arr[i], "kafka.producer.transaction.timeout.ms");
    }
    assert_int_equal(group, 1);
    assert_int_equal(passwords, 2); /* the consumer's and the producer's */
    assert_int_equal(producer, 1);
    enr_conf_dump_free(arr, cnt);
    assert_null(enr_conf_dump(NULL, &cnt));
    assert_int_equal(cnt, 0);
    enr_conf_destroy(conf);
}

static void test_configuration_errors_are_clear(void **state)
{
    (void)state;
    char errstr[256] = "";
    enr_conf_t *conf = conf_with("clock,nope");
    assert_null(enr_pipeline_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "unknown stage \"nope\""));
    assert_int_equal(enr_conf_set(conf, "no.such.key", "1", errstr, sizeof(errstr)),
                     ENR_CONF_UNKNOWN);
    assert_int_equal(enr_conf_set(conf, "txn.max.ms", "-5", errstr, sizeof(errstr)),
                     ENR_CONF_INVALID);
    assert_non_null(strstr(errstr, "txn.max.ms"));
    assert_int_equal(enr_conf_set(conf, "anomaly.zscore", "abc", errstr, sizeof(errstr)),
                     ENR_CONF_INVALID);
    assert_int_equal(enr_conf_set(conf, "anomaly.key", "planet", errstr, sizeof(errstr)),
                     ENR_CONF_INVALID);
    assert_int_equal(enr_conf_set(conf, "kafka.no.such.thing", "1", errstr, sizeof(errstr)),
                     ENR_CONF_UNKNOWN);
    assert_int_equal(enr_conf_set(conf, "kafka.linger.ms", "7", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    char value[64];
    size_t size = sizeof(value);
    assert_int_equal(enr_conf_get(conf, "kafka.producer.linger.ms", value, &size), ENR_CONF_OK);
    assert_string_equal(value, "7");
    assert_int_equal(enr_conf_set(conf, NULL, "1", errstr, sizeof(errstr)), ENR_CONF_INVALID);
    assert_null(enr_pipeline_new(NULL, errstr, sizeof(errstr)));
    enr_conf_destroy(conf);
    enr_conf_destroy(NULL);
    enr_pipeline_destroy(NULL);
}

static void count_records(const char *topic, const void *key, size_t key_len, const void *value,
                          size_t value_len, void *opaque)
{
    (void)key, (void)key_len;
    if (!strcmp(topic, "events.aggregates")) {
        Userevents__WindowAggregate *w =
            userevents__window_aggregate__unpack(NULL, value_len, value);
        assert_non_null(w);
        ((uint64_t *)opaque)[0]++;
        ((uint64_t *)opaque)[1] += w->count;
        userevents__window_aggregate__free_unpacked(w, NULL);
    }
}

static void test_flush_emits_the_closed_windows(void **state)
{
    (void)state;
    enr_conf_t *conf = conf_with("clock,window");
    enr_pipeline_t *pipe = pipeline(conf);
    for (int i = 0; i < 6; i++) { /* 3 events in each of two one-minute windows */
        size_t len;
        uint8_t *buf = encode((uint8_t)(10 + i), "page_view", "u1", T0 + i * 20000, 0, &len);
        Userevents__EnrichedEvent *e = run(pipe, buf, len, T0 + i * 20000, ENR_KEEP);
        userevents__enriched_event__free_unpacked(e, NULL);
        free(buf);
    }
    uint64_t seen[2] = {0, 0};
    enr_pipeline_flush(pipe, INT64_MAX, count_records, seen);
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 6);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_enriches_profile_session_ua_and_clock),
        cmocka_unit_test(test_pipeline_drops_a_repeated_event_id),
        cmocka_unit_test(test_pipeline_fails_bad_records_with_a_reason),
        cmocka_unit_test(test_custom_stage_runs_in_configured_order),
        cmocka_unit_test(test_conf_dup_carries_settings_and_custom_stages),
        cmocka_unit_test(test_conf_dump_lists_everything_but_secrets),
        cmocka_unit_test(test_configuration_errors_are_clear),
        cmocka_unit_test(test_flush_emits_the_closed_windows),
    };
    return cmocka_run_group_tests_name("libenrich pipeline", tests, NULL, NULL);
}
