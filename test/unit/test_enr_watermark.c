/*
 * test_enr_watermark.c - the pipeline's event clock (clock.c): the smallest partition clock,
 * an assigned partition not read yet holding it back (a backlog read one partition first must
 * not close the others' windows), idle partitions let go, and clocks restored from the
 * changelog counting like read ones.
 */
#include "clock.h"
#include "enrich.h"
#include "le.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T0 INT64_C(1790000040000)

static enr_pipeline_t *pipeline(const char *idle_ms)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    assert_int_equal(enr_conf_set(conf, "stages", "clock,window", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    assert_int_equal(enr_conf_set(conf, "window.idle.timeout.ms", idle_ms, errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    enr_pipeline_t *pipe = enr_pipeline_new(conf, errstr, sizeof(errstr));
    if (!pipe)
        fail_msg("enr_pipeline_new: %s", errstr);
    enr_conf_destroy(conf);
    return pipe;
}

static void test_watermark_is_the_slowest_partition(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline("0");
    assert_true(enr__pipeline_event_clock(pipe) == INT64_MIN); /* nothing read: nothing closes */
    enr__clock_advance(pipe, "ev", 0, T0 + 5000);
    enr__clock_advance(pipe, "ev", 1, T0);
    enr__clock_advance(pipe, "ev", 0, T0 + 1000); /* older than its newest: no step back */
    assert_true(enr__pipeline_event_clock(pipe) == T0);
    enr__clock_advance(pipe, "ev", 1, T0 + 9000);
    assert_true(enr__pipeline_event_clock(pipe) == T0 + 5000);
    enr_pipeline_destroy(pipe);
}

/* The bug this guards: a restarted processor read all of partition 0 (up to a far-ahead
 * event) before partition 1's first record, and closed windows partition 1 still fed. */
static void test_an_assigned_unread_partition_holds_the_watermark(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline("0");
    enr__clock_assign(pipe, "ev", 0);
    enr__clock_assign(pipe, "ev", 1);
    enr__clock_advance(pipe, "ev", 0, T0 + 3600000);
    assert_true(enr__pipeline_event_clock(pipe) == INT64_MIN);
    enr__clock_advance(pipe, "ev", 1, T0);
    assert_true(enr__pipeline_event_clock(pipe) == T0);
    enr__clock_assign(pipe, "ev", 1); /* assigned again (a rebalance): its clock stays */
    assert_true(enr__pipeline_event_clock(pipe) == T0);
    enr_pipeline_destroy(pipe);
}

static int watermark_is(void *arg)
{
    void **a = arg;
    return enr__pipeline_event_clock(a[0]) == *(int64_t *)a[1];
}

static void test_an_idle_partition_stops_holding_the_watermark(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline("200");
    int64_t want = T0 + 7000;
    void *arg[] = {pipe, &want};
    enr__clock_assign(pipe, "ev", 0);
    enr__clock_assign(pipe, "ev", 1); /* an empty partition: never read */
    enr__clock_advance(pipe, "ev", 0, want);
    assert_true(enr__pipeline_event_clock(pipe) == INT64_MIN);
    assert_true(tu_wait_until(watermark_is, arg, 10000));
    enr_pipeline_destroy(pipe);
}

static void test_restored_clocks_count_like_read_ones(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = pipeline("0");
    uint8_t value[8];
    enr__le_put64(value, (uint64_t)(T0 + 2000));
    assert_int_equal(enr__clock_restore(pipe, "1/ev.all", 8, value, 8), 0);
    enr__clock_assign(pipe, "ev.all", 0);
    enr__clock_assign(pipe, "ev.all", 1);
    enr__clock_advance(pipe, "ev.all", 0, T0 + 60000);
    assert_true(enr__pipeline_event_clock(pipe) == T0 + 2000);
    /* Bad records are refused, never half-applied. */
    assert_int_equal(enr__clock_restore(pipe, "no-slash", 8, value, 8), -1);
    assert_int_equal(enr__clock_restore(pipe, "1/ev.all", 8, value, 7), -1);
    assert_int_equal(enr__clock_restore(pipe, "1/ev.all", 8, NULL, 0), 0); /* a tombstone */
    assert_true(enr__pipeline_event_clock(pipe) == T0 + 2000);
    enr_pipeline_destroy(pipe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermark_is_the_slowest_partition),
        cmocka_unit_test(test_an_assigned_unread_partition_holds_the_watermark),
        cmocka_unit_test(test_an_idle_partition_stops_holding_the_watermark),
        cmocka_unit_test(test_restored_clocks_count_like_read_ones),
    };
    return cmocka_run_group_tests_name("libenrich watermark", tests, NULL, NULL);
}
