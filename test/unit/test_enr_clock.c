/*
 * test_enr_clock.c - the "clock" stage: Segment's skew correction (timestamp + received_at -
 * sent_at), the receive time from the collector or else the Kafka record, the fallbacks when
 * a time is missing, and no overflow on absurd values. Then event times from the future
 * (issue 11): dead-lettered past time.max.future.ms, and never moving the partition clock (the
 * watermark) past the receive time, so windows and sessions of other events stay right.
 */
#include "enr_stagetest.h"
#include "enriched.pb-c.h"
#include "pipeline.h"
#include "stage_clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct times {
    int64_t timestamp, sent_at, received_at, kafka;
    int64_t want_received, want_corrected;
} times_t;

static void check(const times_t *c)
{
    st_sink_t sink;
    st_stage_t st;
    st_event_t t;
    st_sink_init(&sink);
    assert_int_equal(st_stage_start(&st, enr__stage_clock_new(NULL), &sink, NULL, NULL, 0), 0);
    assert_string_equal(st.def->name, "clock");
    st_event_init(&t);
    t.ev.timestamp_ms = c->timestamp;
    t.ev.sent_at_ms = c->sent_at;
    t.ev.received_at_ms = c->received_at;
    enr_event_t *e = st_event_ready(&t, c->kafka);
    assert_int_equal(st_process(&st, e), ENR_KEEP);
    if (e->out.received_at_ms != c->want_received ||
        e->out.corrected_timestamp_ms != c->want_corrected)
        fail_msg("ts %lld sent %lld recv %lld kafka %lld: got %lld/%lld, want %lld/%lld",
                 (long long)c->timestamp, (long long)c->sent_at, (long long)c->received_at,
                 (long long)c->kafka, (long long)e->out.received_at_ms,
                 (long long)e->out.corrected_timestamp_ms, (long long)c->want_received,
                 (long long)c->want_corrected);
    assert_int_equal(enr_event_time_ms(e), c->want_corrected);
    assert_int_equal(t.ev.timestamp_ms, c->timestamp); /* the client's fields stay as sent */
    st_event_free(&t);
    st_stage_stop(&st);
    st_sink_free(&sink);
}

static void test_clock_corrects_a_skewed_device_clock(void **state)
{
    (void)state;
    /* device 1 h behind: tracked at 10:00 device time, sent 10:00:05, received 11:00:06 */
    check(&(times_t){36000000, 36005000, 39606000, 0, 39606000, 39601000});
    /* device ahead: the event is moved back */
    check(&(times_t){50000, 51000, 0, 20000, 20000, 19000});
    /* right clock, queued offline for a minute: stays at the tracking time */
    check(&(times_t){100000, 160000, 160100, 0, 160100, 100100});
}

static void test_clock_prefers_the_collectors_receive_time(void **state)
{
    (void)state;
    check(&(times_t){1000, 1500, 2000, 9000, 2000, 1500});
    check(&(times_t){1000, 1500, 0, 9000, 9000, 8500}); /* no collector: Kafka time */
}

static void test_clock_falls_back_when_a_time_is_missing(void **state)
{
    (void)state;
    check(&(times_t){1000, 0, 5000, 0, 5000, 1000}); /* no sent-at: the timestamp */
    check(&(times_t){1000, 900, 0, 0, 0, 1000});     /* no receive time: the timestamp */
    check(&(times_t){0, 900, 5000, 0, 5000, 5000});  /* no timestamp: received */
    check(&(times_t){0, 0, 0, 7000, 7000, 7000});
    check(&(times_t){0, 0, 0, 0, 0, 0});
    check(&(times_t){-5, -1, -1, 3000, 3000, 3000}); /* negative means unset */
}

static void test_clock_never_overflows(void **state)
{
    (void)state;
    check(&(times_t){INT64_MAX, 1, INT64_MAX, 0, INT64_MAX, INT64_MAX});
    check(&(times_t){INT64_MAX - 10, 1, 100, 0, 100, INT64_MAX - 10});
    check(&(times_t){1, INT64_MAX, 1, 0, 1, 1 - (INT64_MAX - 1)});
    check(&(times_t){INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, 0, 0});
}

/* ---- event times from the future, through the pipeline ---------------------------------- */

#define T0 INT64_C(1790000040000)     /* a window boundary */
#define FUTURE INT64_C(4000000000000) /* 2096: what a broken device sent (issue 11) */

/* An encoded event of user "u1" with id byte @p id; the caller frees it. */
static uint8_t *encode(uint8_t id, int64_t ts, int64_t sent_at, size_t *len)
{
    uint8_t eid[16] = {[6] = 0x70, [14] = 0xcc, [15] = id};
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    e.event_id = (ProtobufCBinaryData){16, eid};
    e.type = "page_view";
    e.user_id = "u1";
    e.timestamp_ms = ts;
    e.sent_at_ms = sent_at;
    e.schema_version = 1;
    *len = userevents__event__get_packed_size(&e);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    userevents__event__pack(&e, buf);
    return buf;
}

static enr_pipeline_t *pipeline_of(const char *stages)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    assert_int_equal(enr_conf_set(conf, "stages", stages, errstr, sizeof(errstr)), ENR_CONF_OK);
    enr_pipeline_t *pipe = enr_pipeline_new(conf, errstr, sizeof(errstr));
    if (!pipe)
        fail_msg("enr_pipeline_new: %s", errstr);
    enr_conf_destroy(conf);
    return pipe;
}

/*
 * Runs one event received at @p received; expects @p want. On ENR_KEEP, copies the session id
 * the pipeline gave it into @p session (when not NULL); on ENR_FAIL, the reason.
 */
static void run(enr_pipeline_t *pipe, uint8_t id, int64_t ts, int64_t sent_at, int64_t received,
                enr_verdict_t want, char *out, size_t out_size)
{
    size_t len, out_len = 0;
    void *enriched = NULL;
    char reason[256] = "";
    uint8_t *buf = encode(id, ts, sent_at, &len);
    enr_verdict_t v =
        enr_pipeline_process(pipe, buf, len, received, &enriched, &out_len, reason, sizeof(reason));
    free(buf);
    if (v != want)
        fail_msg("event %u at %lld: verdict %d, expected %d (%s)", id, (long long)ts, v, want,
                 reason);
    if (out && v == ENR_FAIL)
        snprintf(out, out_size, "%s", reason);
    if (v != ENR_KEEP)
        return;
    Userevents__EnrichedEvent *e = userevents__enriched_event__unpack(NULL, out_len, enriched);
    enr_free(enriched);
    assert_non_null(e);
    if (out)
        snprintf(out, out_size, "%s", e->session ? e->session->session_id : "");
    userevents__enriched_event__free_unpacked(e, NULL);
}

/* Adds each aggregate's count to opaque[1], and 1 to opaque[0]. */
static void count_aggregates(const char *topic, const void *key, size_t key_len, const void *value,
                             size_t value_len, void *opaque)
{
    (void)key, (void)key_len;
    if (strcmp(topic, "events.aggregates"))
        return;
    Userevents__WindowAggregate *w = userevents__window_aggregate__unpack(NULL, value_len, value);
    assert_non_null(w);
    ((uint64_t *)opaque)[0]++;
    ((uint64_t *)opaque)[1] += w->count;
    userevents__window_aggregate__free_unpacked(w, NULL);
}

/* As the processor does before each commit: flush with the pipeline's own watermark. */
static void flush_at_watermark(enr_pipeline_t *pipe, uint64_t counts[2])
{
    enr_pipeline_flush(pipe, enr__pipeline_event_clock(pipe), count_aggregates, counts);
}

/*
 * Issue 11: after 30 events stamped 4e12, every later event was late and left the aggregates,
 * and the user's later events all got session "s-4000000000000-...". Now the 30 go to the
 * dead-letter path with the reason and are counted; the normal events after them aggregate,
 * none is late, and the user's session starts at the first normal event.
 */
static void test_clock_future_events_do_not_poison_windows_or_sessions(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline_of("dedup,clock,session,window");
    char text[256], want[64];
    uint64_t counts[2] = {0, 0};
    for (int i = 0; i < 30; i++) {
        run(pipe, (uint8_t)i, FUTURE, 0, T0 + i, ENR_FAIL, text, sizeof(text));
        assert_non_null(strstr(text, "time.max.future.ms"));
        if (i % 10 == 9)
            flush_at_watermark(pipe, counts);
    }
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_FUTURE_EVENTS), 30);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_DEAD_LETTERS), 30);
    snprintf(want, sizeof(want), "s-%lld-", (long long)T0);
    for (int i = 0; i < 20; i++) { /* 20 s apart: three per one-minute window */
        int64_t t = T0 + i * 20000;
        run(pipe, (uint8_t)(100 + i), t, 0, t + 50, ENR_KEEP, text, sizeof(text));
        if (strncmp(text, want, strlen(want)))
            fail_msg("event %d: session \"%s\", expected one starting at T0 (%s...)", i, text,
                     want);
        flush_at_watermark(pipe, counts);
    }
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_LATE_EVENTS), 0);
    enr_pipeline_flush(pipe, INT64_MAX, count_aggregates, counts);
    assert_int_equal(counts[1], 20); /* every normal event in an aggregate */
    assert_int_equal(counts[0], 7);  /* 20 events, 3 a minute: 7 windows */
    enr_pipeline_destroy(pipe);
}

/* What counts is the time the stages read: a device clock years ahead that sent_at shows is
 * corrected by the clock stage and kept; without the clock stage the raw timestamp is checked. */
static void test_clock_checks_the_time_the_stages_read(void **state)
{
    (void)state;
    char text[256];
    enr_pipeline_t *pipe = pipeline_of("clock,session");
    run(pipe, 1, FUTURE, FUTURE + 500, T0 + 1000, ENR_KEEP, text, sizeof(text));
    assert_string_equal(strtok(text, "-"), "s");
    assert_int_equal(strtoll(strtok(NULL, "-"), NULL, 10), T0 + 500);
    run(pipe, 2, FUTURE, 0, T0, ENR_FAIL, NULL, 0);
    enr_pipeline_destroy(pipe);

    pipe = pipeline_of("session,window");
    run(pipe, 1, FUTURE, FUTURE + 500, T0 + 1000, ENR_FAIL, text, sizeof(text));
    assert_non_null(strstr(text, "ms after its receive time"));
    run(pipe, 2, T0 + 86400000, 0, T0, ENR_KEEP, NULL, 0);     /* at the tolerance: kept */
    run(pipe, 3, T0 + 86400001, 0, T0, ENR_FAIL, NULL, 0);     /* one past it */
    run(pipe, 4, INT64_MAX, INT64_MAX, T0, ENR_FAIL, NULL, 0); /* no overflow */
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_FUTURE_EVENTS), 3);
    enr_pipeline_destroy(pipe);
}

/*
 * An event ahead of its receive time but within the tolerance is kept, in its own window, but
 * the partition clock stops at the receive time: the windows of the events received with it
 * do not close early, and nobody's events become late.
 */
static void test_clock_an_event_ahead_within_the_tolerance_closes_no_window(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline_of("clock,window");
    uint64_t counts[2] = {0, 0};
    run(pipe, 1, T0 + 3600000, 0, T0, ENR_KEEP, NULL, 0); /* a device clock 1 h ahead */
    assert_true(enr__pipeline_event_clock(pipe) == T0);
    flush_at_watermark(pipe, counts);
    for (int i = 0; i < 6; i++) {
        int64_t t = T0 + i * 20000;
        run(pipe, (uint8_t)(10 + i), t, 0, t + 50, ENR_KEEP, NULL, 0);
        flush_at_watermark(pipe, counts);
    }
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_LATE_EVENTS), 0);
    enr_pipeline_flush(pipe, INT64_MAX, count_aggregates, counts);
    assert_int_equal(counts[1], 7);
    enr_pipeline_destroy(pipe);
}

/* The setting is in the property table, with its default and its bounds. */
static void test_clock_future_tolerance_is_a_setting(void **state)
{
    (void)state;
    char errstr[256], value[32];
    size_t size = sizeof(value);
    enr_conf_t *conf = enr_conf_new();
    assert_int_equal(enr_conf_get(conf, "time.max.future.ms", value, &size), ENR_CONF_OK);
    assert_string_equal(value, "86400000");
    assert_int_equal(enr_conf_set(conf, "time.max.future.ms", "-1", errstr, sizeof(errstr)),
                     ENR_CONF_INVALID);
    assert_int_equal(enr_conf_set(conf, "time.max.future.ms", "0", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    assert_int_equal(enr_conf_set(conf, "stages", "clock", errstr, sizeof(errstr)), ENR_CONF_OK);
    enr_pipeline_t *pipe = enr_pipeline_new(conf, errstr, sizeof(errstr));
    assert_non_null(pipe);
    run(pipe, 1, T0, 0, T0, ENR_KEEP, NULL, 0);
    run(pipe, 2, T0 + 1, 0, T0, ENR_FAIL, NULL, 0);
    enr_pipeline_destroy(pipe);
    enr_conf_destroy(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_corrects_a_skewed_device_clock),
        cmocka_unit_test(test_clock_prefers_the_collectors_receive_time),
        cmocka_unit_test(test_clock_falls_back_when_a_time_is_missing),
        cmocka_unit_test(test_clock_never_overflows),
        cmocka_unit_test(test_clock_future_events_do_not_poison_windows_or_sessions),
        cmocka_unit_test(test_clock_checks_the_time_the_stages_read),
        cmocka_unit_test(test_clock_an_event_ahead_within_the_tolerance_closes_no_window),
        cmocka_unit_test(test_clock_future_tolerance_is_a_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
