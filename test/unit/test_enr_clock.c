/*
 * test_enr_clock.c - the "clock" stage: Segment's skew correction (timestamp + received_at -
 * sent_at), the receive time from the collector or else the Kafka record, the fallbacks when
 * a time is missing, and no overflow on absurd values.
 */
#include "enr_stagetest.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_corrects_a_skewed_device_clock),
        cmocka_unit_test(test_clock_prefers_the_collectors_receive_time),
        cmocka_unit_test(test_clock_falls_back_when_a_time_is_missing),
        cmocka_unit_test(test_clock_never_overflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
