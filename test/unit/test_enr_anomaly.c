/*
 * test_enr_anomaly.c - the "anomaly" stage: a 10x burst after a steady rate is one alert for
 * the burst bucket, none during warm-up or on steady input, quiet buckets pull the baseline
 * down, a few events from a quiet key are not an anomaly, late events are ignored, the key
 * bound evicts the least recently seen, and a restart from the changelog emits exactly what
 * an uninterrupted run emits.
 */
#include "enr_stagetest.h"
#include "htab.h"

#include <inttypes.h>
#include <math.h>

#define W 10000 /* anomaly.window.ms of these tests: rates are count / 10 */
#define T0 INT64_C(1700000040000)

static const char *const kv_type[] = {"anomaly.window.ms=10000", "anomaly.zscore=3",
                                      "anomaly.alpha=0.2", "anomaly.min.windows=5", NULL};

/* @p n events of type @p type spread evenly over bucket @p b; then a flush as a commit does. */
static void bucket(st_stage_t *t, const char *type, int64_t b, int n)
{
    st_event_t ev;
    for (int i = 0; i < n; i++)
        st_process_keep(
            t, st_event_build(&ev, type, "u", NULL, T0 + b * W + (int64_t)i * W / n, ST_NONE, 0));
    st_flush(t, t->clock);
}

static Userevents__AnomalyAlert *decode(const st_record_t *r)
{
    Userevents__AnomalyAlert *a = userevents__anomaly_alert__unpack(NULL, r->value_len, r->value);
    assert_non_null(a);
    assert_string_equal(r->topic, "events.alerts");
    assert_int_equal(r->key_len, strlen(a->key));
    assert_memory_equal(r->key, a->key, r->key_len);
    return a;
}

static void test_anomaly_burst_after_steady_rate_alerts_once(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, kv_type);
    for (int b = 0; b < 20; b++)
        bucket(&t, "click", b, 100);
    bucket(&t, "click", 20, 1000); /* 10x */
    for (int b = 21; b < 30; b++)
        bucket(&t, "click", b, 100);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    assert_int_equal(t.stats[ENR_STAT_ALERTS], 1);
    Userevents__AnomalyAlert *a = decode(&t.sink.emits.v[0]);
    assert_string_equal(a->key_kind, "type");
    assert_string_equal(a->key, "click");
    assert_int_equal(a->window_end_ms, T0 + 21 * W);
    assert_true(a->rate == 100.0);
    assert_true(fabs(a->baseline - 10.0) < 1e-9);
    assert_true(a->zscore > 3.0);
    userevents__anomaly_alert__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

static void test_anomaly_no_alert_during_warm_up(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, kv_type);
    for (int b = 0; b < 4; b++) /* 4 earlier buckets < anomaly.min.windows = 5 */
        bucket(&t, "click", b, 100);
    bucket(&t, "click", 4, 1000);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 0);

    st_stage_t u; /* with exactly 5 earlier buckets the same burst alerts */
    st_open(&u, enr__stage_anomaly_new, kv_type);
    for (int b = 0; b < 5; b++)
        bucket(&u, "click", b, 100);
    bucket(&u, "click", 5, 1000);
    st_flush(&u, INT64_MAX);
    assert_int_equal(u.sink.emits.n, 1);
    st_stage_stop(&t);
    st_stage_stop(&u);
}

static void test_anomaly_no_alert_on_steady_input(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, kv_type);
    uint64_t rng = 3;
    for (int b = 0; b < 300; b++) { /* +-10% jitter around 100 per bucket, several keys */
        bucket(&t, "click", b, (int)st_range(&rng, 90, 110));
        bucket(&t, "view", b, (int)st_range(&rng, 1, 3));
        if (b % 2)
            bucket(&t, "rare", b, 1); /* alternating 1 and 0 */
    }
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 0);
    assert_int_equal(t.stats[ENR_STAT_ALERTS], 0);
    st_stage_stop(&t);
}

static void test_anomaly_quiet_buckets_count_as_zero_rate(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, kv_type);
    for (int b = 0; b < 10; b++)
        bucket(&t, "click", b, 100);
    bucket(&t, "click", 30, 100); /* 20 empty buckets, then the old rate again */
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__AnomalyAlert *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->window_end_ms, T0 + 31 * W);
    assert_true(fabs(a->baseline - 10.0 * pow(0.8, 20)) < 1e-9);
    userevents__anomaly_alert__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

static void test_anomaly_few_events_of_a_quiet_key_are_not_an_anomaly(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, kv_type);
    for (int b = 0; b < 10; b++)
        bucket(&t, "click", b, 1);
    bucket(&t, "click", 200, 2); /* baseline ~0: Poisson floor of 1 event -> z = 1 */
    bucket(&t, "click", 400, 4); /* z = 4 */
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__AnomalyAlert *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->window_end_ms, T0 + 401 * W);
    assert_true(a->zscore > 3.0 && a->zscore < 5.0);
    userevents__anomaly_alert__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

static void test_anomaly_ignores_events_of_closed_buckets(void **state)
{
    (void)state;
    static const char *const kv[] = {"anomaly.window.ms=10000", "anomaly.min.windows=1", NULL};
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_anomaly_new, kv);
    bucket(&t, "click", 0, 10);
    st_process_keep(&t, st_event_build(&ev, "other", "u", NULL, T0 + 2 * W, ST_NONE, 0));
    st_flush(&t, t.clock); /* closes bucket 1 for every key: the horizon is global */
    for (int i = 0; i < 1000; i++) {
        st_process_keep(&t, st_event_build(&ev, "click", "u", NULL, T0 + 5, ST_NONE, 0));
        st_process_keep(&t, st_event_build(&ev, "click", "u", NULL, T0 + W + 5, ST_NONE, 0));
    }
    bucket(&t, "click", 2, 10);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 0);
    st_stage_stop(&t);
}

/* The live keys in what a compacted changelog would hold after @p log (deletes applied). */
static int live_key(const st_log_t *log, const char *key)
{
    int live = 0;
    for (size_t i = 0; i < log->n; i++)
        if (log->v[i].key_len == strlen(key) && !memcmp(log->v[i].key, key, log->v[i].key_len))
            live = log->v[i].value != NULL;
    return live;
}

static void test_anomaly_key_bound_evicts_least_recently_seen(void **state)
{
    (void)state;
    static const char *const kv[] = {"anomaly.key=user", "anomaly.max.keys=100", NULL};
    st_stage_t t;
    st_event_t ev;
    char user[32];
    st_open(&t, enr__stage_anomaly_new, kv);
    for (int i = 0; i < 100; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        st_process_keep(&t, st_event_build(&ev, "click", user, NULL, T0 + i, ST_NONE, 0));
    }
    st_flush(&t, t.clock);
    st_process_keep(
        &t, st_event_build(&ev, "click", "u0", NULL, T0 + 100, ST_NONE, 0)); /* u0 is recent */
    for (int i = 100; i < 150; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        st_process_keep(&t, st_event_build(&ev, "click", user, NULL, T0 + i, ST_NONE, 0));
    }
    st_process_keep(&t, st_event_build(&ev, "click", NULL, "anon-1", T0 + 150, ST_NONE, 0));
    st_flush(&t, t.clock);
    int live = 0;
    for (int i = 0; i < 150; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        live += live_key(&t.sink.changelog, user);
        assert_int_equal(live_key(&t.sink.changelog, user), i == 0 || i > 51);
    }
    live += live_key(&t.sink.changelog, "anon-1");
    assert_int_equal(live, 100);
    st_stage_stop(&t);
}

/* ---- restart ---------------------------------------------------------------------------- */

/* Events of user @p u in bucket @p b: the same whichever run asks (own random stream). */
static int user_bucket(int b, int u, uint64_t *rng)
{
    *rng = enr__mix64((uint64_t)b * 1000 + (uint64_t)u + 1) | 1; /* xorshift: non-zero */
    int count = 1 + (u % 20) + (int)st_range(rng, 0, 2);
    if (st_range(rng, 0, 99) < 3)
        count *= 10;
    if (st_range(rng, 0, 99) < 5)
        count = 0;
    return count;
}

/*
 * 40 users over buckets [@p from, @p to) of one input: steady rates of 1..20 events per
 * bucket, 10x bursts now and then, some empty buckets, events up to 300 ms early and one in
 * twenty up to two buckets early (so some are late), a flush every 50 events of the whole
 * input and at each bucket's end.
 */
static void run_range(st_stage_t *t, int from, int to)
{
    st_event_t ev;
    char user[32];
    int64_t n = 0;
    for (int b = 0; b < to; b++) {
        for (int u = 0; u < 40; u++) {
            uint64_t rng;
            int count = user_bucket(b, u, &rng);
            if (b < from) {
                n += count;
                continue;
            }
            snprintf(user, sizeof(user), "user-%d", u);
            for (int i = 0; i < count; i++) {
                int64_t early = st_range(&rng, 0, 99) < 5 ? st_range(&rng, 0, 2 * W) : 300;
                int64_t ts = T0 + (int64_t)b * W + st_range(&rng, 0, W - 1) - early;
                st_process_keep(t, st_event_build(&ev, "click", user, NULL, ts, ST_NONE, 0));
                if (++n % 50 == 0)
                    st_flush(t, t->clock);
            }
        }
        if (b >= from)
            st_flush(t, t->clock); /* a commit at each bucket's end: the restart point */
    }
}

static void test_anomaly_restore_then_continue_equals_uninterrupted(void **state)
{
    (void)state;
    static const char *const kv[] = {"anomaly.key=user", "anomaly.window.ms=10000",
                                     "anomaly.min.windows=3", NULL};
    st_stage_t whole, before, after;
    st_open(&whole, enr__stage_anomaly_new, kv);
    run_range(&whole, 0, 60);
    st_flush(&whole, INT64_MAX);

    st_open(&before, enr__stage_anomaly_new, kv);
    run_range(&before, 0, 30);
    st_open(&after, enr__stage_anomaly_new, kv);
    st_restore_compacted(&after, &before.sink.changelog);
    run_range(&after, 30, 60);
    st_flush(&after, INT64_MAX);

    assert_true(before.sink.emits.n > 0 && after.sink.emits.n > 0);
    st_assert_restart_emits(&before, &after, &whole); /* the same output, byte for byte */
    st_assert_restart_state(&before, &after, &whole); /* and the same state */
    st_stage_stop(&whole);
    st_stage_stop(&before);
    st_stage_stop(&after);
}

/* Key "a" closes bucket 0 only; "b" moves the horizon to bucket 5; then "a" in bucket 2. */
static void horizon_run(st_stage_t *t, int part)
{
    st_event_t ev;
    if (part == 0) {
        st_process_keep(t, st_event_build(&ev, "a", "u", NULL, T0 + 5, ST_NONE, 0));
        st_process_keep(t, st_event_build(&ev, "b", "u", NULL, T0 + 5 * W + 5, ST_NONE, 0));
        st_flush(t, t->clock);
        return;
    }
    for (int i = 0; i < 100; i++) /* late for every key: bucket 2 closed with the horizon */
        st_process_keep(t, st_event_build(&ev, "a", "u", NULL, T0 + 2 * W + 5, ST_NONE, 0));
    st_flush(t, t->clock);
    st_flush(t, INT64_MAX);
}

static void test_anomaly_restart_keeps_the_closed_horizon(void **state)
{
    (void)state;
    static const char *const kv[] = {"anomaly.window.ms=10000", "anomaly.min.windows=1", NULL};
    st_stage_t whole, before, after;
    st_open(&whole, enr__stage_anomaly_new, kv);
    horizon_run(&whole, 0);
    horizon_run(&whole, 1);
    st_open(&before, enr__stage_anomaly_new, kv);
    horizon_run(&before, 0);
    st_open(&after, enr__stage_anomaly_new, kv);
    st_restore_compacted(&after, &before.sink.changelog);
    horizon_run(&after, 1);
    assert_int_equal(whole.sink.emits.n, 0);
    assert_int_equal(after.sink.emits.n, 0);
    st_assert_restart_state(&before, &after, &whole);
    st_stage_stop(&whole);
    st_stage_stop(&before);
    st_stage_stop(&after);
}

/* A processor's task sends each closed bucket of a type to the task that merges it (merge.c):
 * the partials it sends, in order. */
static st_log_t *partials_to;

static void on_partial(void *opaque, const void *key, size_t key_len, const void *value,
                       size_t value_len, int broadcast)
{
    (void)opaque;
    if (!broadcast)
        st_log_add(partials_to, "partial", key, key_len, value, value_len);
}

static void task_open(st_stage_t *t)
{
    static const char *const kv[] = {"anomaly.window.ms=10000", NULL};
    st_open(t, enr__stage_anomaly_new, kv);
    t->sink.sink.partial = on_partial;
}

/* Buckets [from, to) of "click", then one late event of bucket 0, whose partial was sent. */
static void task_run(st_stage_t *t, st_log_t *partials, int64_t from, int64_t to)
{
    partials_to = partials;
    for (int64_t b = from; b < to; b++)
        bucket(t, "click", b, 3);
    st_event_t ev;
    t->ctx.watermark_ms = t->clock;
    st_process(t, st_event_build(&ev, "click", "u", NULL, T0 + 5, ST_NONE, 0));
    st_flush(t, t->clock);
}

static void test_anomaly_task_state_restores_and_sends_each_bucket_once(void **state)
{
    (void)state;
    st_stage_t whole, before, after;
    st_log_t sent_whole = {0}, sent = {0};
    task_open(&whole);
    task_run(&whole, &sent_whole, 0, 6);
    task_open(&before);
    task_run(&before, &sent, 0, 3);
    task_open(&after);
    /* The task's state has sent buckets but no baseline (the merging task keeps it): each of
     * its records restores, where the check for a baseline refused them all. */
    st_restore_compacted(&after, &before.sink.changelog);
    task_run(&after, &sent, 3, 6);
    assert_true(sent_whole.n > 0);
    st_assert_logs_equal(&sent, &sent_whole); /* no bucket sent twice, none lost */
    st_assert_restart_state(&before, &after, &whole);
    st_log_clear(&sent_whole);
    st_log_clear(&sent);
    st_stage_stop(&whole);
    st_stage_stop(&before);
    st_stage_stop(&after);
}

static void test_anomaly_restore_rejects_malformed_records(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_anomaly_new, NULL);
    uint8_t junk[64] = {1};
    assert_int_equal(st_restore_one(&t, "click", 5, junk, 10), -1);
    assert_int_equal(st_restore_one(&t, "click", 5, junk, sizeof(junk)), -1);
    assert_int_equal(st_restore_one(&t, "\0closed", 7, junk, 3), -1);
    assert_int_equal(st_restore_one(&t, "click", 5, NULL, 0), 0);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 0);
    st_stage_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anomaly_burst_after_steady_rate_alerts_once),
        cmocka_unit_test(test_anomaly_no_alert_during_warm_up),
        cmocka_unit_test(test_anomaly_no_alert_on_steady_input),
        cmocka_unit_test(test_anomaly_quiet_buckets_count_as_zero_rate),
        cmocka_unit_test(test_anomaly_few_events_of_a_quiet_key_are_not_an_anomaly),
        cmocka_unit_test(test_anomaly_ignores_events_of_closed_buckets),
        cmocka_unit_test(test_anomaly_key_bound_evicts_least_recently_seen),
        cmocka_unit_test(test_anomaly_restore_then_continue_equals_uninterrupted),
        cmocka_unit_test(test_anomaly_restart_keeps_the_closed_horizon),
        cmocka_unit_test(test_anomaly_restore_rejects_malformed_records),
        cmocka_unit_test(test_anomaly_task_state_restores_and_sends_each_bucket_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
