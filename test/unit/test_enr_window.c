/*
 * test_enr_window.c - the "window" stage and its distinct counter: aggregates equal a
 * brute-force recomputation, each window is emitted once at the flush where it becomes due,
 * late events are counted and left out, the HyperLogLog sketch stays within three standard
 * errors, the open-window bound closes the oldest start, and a restart from the changelog
 * emits exactly what an uninterrupted run emits.
 */
#include "enr_stagetest.h"
#include "hll.h"
#include "htab.h"

#include <inttypes.h>
#include <math.h>

#define SIZE 10000                /* window.size.ms of the random tests */
#define LATENESS 2000             /* window.allowed.lateness.ms */
#define T0 INT64_C(1700000040000) /* a multiple of every window size used */
#define HLL_SE (1.04 / 128.0)     /* 1.04 / sqrt(2^14) */

static const char *const kv_random[] = {"window.size.ms=10000", "window.allowed.lateness.ms=2000",
                                        NULL};
static const char *const types[] = {"add_to_cart", "click", "page_view", "purchase"};

static Userevents__WindowAggregate *decode(const st_record_t *r)
{
    Userevents__WindowAggregate *a =
        userevents__window_aggregate__unpack(NULL, r->value_len, r->value);
    assert_non_null(a);
    char key[300];
    snprintf(key, sizeof(key), "%s/%" PRId64, a->event_type, a->window_start_ms);
    assert_string_equal((const char *)r->key, key);
    assert_string_equal(r->topic, "events.aggregates");
    return a;
}

/* ---- brute force --------------------------------------------------------------------------- */

#define NWIN 20     /* windows the random input spans */
#define NUSERS 1200 /* user ids 0..599, anonymous ids 600..1199 */

typedef struct model {
    int64_t base;       /* start of window 0 */
    int64_t closed_end; /* the rule, recomputed independently */
    int64_t late;
    uint64_t count[4][NWIN];
    double sum[4][NWIN];
    uint8_t seen[4][NWIN][NUSERS];
    int due_flush[4][NWIN]; /* flush at which the window must be emitted */
} model_t;

typedef struct gen_event {
    int type;
    int user; /* -1: none */
    int64_t ts;
    int kind;
    double amount;
} gen_event_t;

/*
 * Random input, event i near time T0 + 20 s + i * @p step ms: mostly in order, some up to
 * 15 s behind (late once their window closed).
 */
static gen_event_t gen(uint64_t *rng, int i, int step)
{
    gen_event_t g;
    g.type = (int)st_range(rng, 0, 3);
    int64_t r = st_range(rng, 0, 99);
    g.user = r < 80 ? (int)st_range(rng, 0, 599) : r < 90 ? (int)st_range(rng, 600, 1199) : -1;
    int64_t back = st_range(rng, 0, 99) < 90 ? st_range(rng, 0, 1000) : st_range(rng, 0, 15000);
    g.ts = T0 + 20000 + (int64_t)i * step - back;
    r = st_range(rng, 0, 99);
    g.kind = r < 40 ? ST_INT : r < 70 ? ST_DOUBLE : r < 90 ? ST_NONE : ST_STRING;
    g.amount = g.kind == ST_INT ? (double)st_range(rng, 0, 100)
                                : (double)st_range(rng, 0, 400) * 0.25 - 50;
    return g;
}

static void run_event(st_stage_t *t, const gen_event_t *g)
{
    char user[32] = "", anon[32] = "";
    if (g->user >= 600)
        snprintf(anon, sizeof(anon), "anon-%d", g->user);
    else if (g->user >= 0)
        snprintf(user, sizeof(user), "user-%d", g->user);
    st_event_t ev;
    st_process_keep(t, st_event_build(&ev, types[g->type], user, anon, g->ts, g->kind, g->amount));
}

static void model_event(model_t *m, const gen_event_t *g)
{
    int64_t start = g->ts - ((g->ts % SIZE) + SIZE) % SIZE;
    if (start + SIZE <= m->closed_end) {
        m->late++;
        return;
    }
    int w = (int)((start - m->base) / SIZE);
    assert_true(w >= 0 && w < NWIN);
    m->count[g->type][w]++;
    if (g->kind == ST_INT || g->kind == ST_DOUBLE)
        m->sum[g->type][w] += g->amount;
    if (g->user >= 0)
        m->seen[g->type][w][g->user] = 1;
}

static void model_flush(model_t *m, int64_t watermark, int flush_no)
{
    if (watermark - LATENESS > m->closed_end)
        m->closed_end = watermark - LATENESS;
    for (int ty = 0; ty < 4; ty++)
        for (int w = 0; w < NWIN; w++)
            if (!m->due_flush[ty][w] && m->base + (w + 1) * (int64_t)SIZE <= m->closed_end)
                m->due_flush[ty][w] = flush_no;
}

static void check_aggregate(const model_t *m, const Userevents__WindowAggregate *a)
{
    int ty = 0;
    while (ty < 4 && strcmp(types[ty], a->event_type))
        ty++;
    assert_true(ty < 4);
    int w = (int)((a->window_start_ms - m->base) / SIZE);
    assert_int_equal(a->window_end_ms, a->window_start_ms + SIZE);
    assert_int_equal(a->count, m->count[ty][w]);
    uint64_t distinct = 0;
    for (int u = 0; u < NUSERS; u++)
        distinct += m->seen[ty][w][u];
    assert_int_equal(a->distinct_users, distinct);
    assert_string_equal(a->sum_property, "amount");
    assert_true(a->sum == m->sum[ty][w]); /* same values, same order: bit-identical */
}

static void test_window_aggregates_equal_brute_force(void **state)
{
    (void)state;
    static model_t m;
    memset(&m, 0, sizeof(m));
    m.base = T0;
    m.closed_end = INT64_MIN;
    st_stage_t t;
    st_open(&t, enr__stage_window_new, kv_random);
    uint64_t rng = 42;
    int flushes = 0;
    size_t emitted_before = 0;
    for (int i = 0; i < 30000; i++) {
        gen_event_t g = gen(&rng, i, 5);
        model_event(&m, &g);
        run_event(&t, &g);
        if (i % 97 == 96 || i == 29999) {
            int64_t wm = i == 29999 ? INT64_MAX : t.clock;
            st_flush(&t, wm);
            model_flush(&m, wm, ++flushes);
            for (size_t k = emitted_before; k < t.sink.emits.n; k++) { /* emitted when due */
                Userevents__WindowAggregate *a = decode(&t.sink.emits.v[k]);
                int ty = 0;
                while (strcmp(types[ty], a->event_type))
                    ty++;
                assert_int_equal(m.due_flush[ty][(a->window_start_ms - m.base) / SIZE], flushes);
                userevents__window_aggregate__free_unpacked(a, NULL);
            }
            emitted_before = t.sink.emits.n;
        }
    }
    size_t windows = 0;
    for (int ty = 0; ty < 4; ty++)
        for (int w = 0; w < NWIN; w++)
            windows += m.count[ty][w] > 0;
    assert_int_equal(t.sink.emits.n, windows); /* each non-empty window once, no empty ones */
    int64_t prev_start = INT64_MIN;
    char prev_type[64] = "";
    for (size_t k = 0; k < t.sink.emits.n; k++) {
        Userevents__WindowAggregate *a = decode(&t.sink.emits.v[k]);
        check_aggregate(&m, a);
        /* within a flush, (start, type) order; across flushes, starts never go back */
        assert_true(a->window_start_ms > prev_start ||
                    (a->window_start_ms == prev_start && strcmp(a->event_type, prev_type) > 0));
        prev_start = a->window_start_ms;
        snprintf(prev_type, sizeof(prev_type), "%s", a->event_type);
        userevents__window_aggregate__free_unpacked(a, NULL);
    }
    assert_true(m.late > 100); /* the input did exercise lateness */
    assert_int_equal(t.stats[ENR_STAT_LATE_EVENTS], m.late);
    assert_int_equal(t.stats[ENR_STAT_AGGREGATES], (int64_t)windows);
    st_stage_stop(&t);
}

/* ---- closing and lateness -------------------------------------------------------------- */

static void test_window_closes_when_end_plus_lateness_reaches_watermark(void **state)
{
    (void)state;
    static const char *const kv[] = {"window.size.ms=60000", "window.allowed.lateness.ms=5000",
                                     NULL};
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_window_new, kv);
    st_process_keep(&t, st_event_build(&ev, "click", "u1", NULL, 10000, ST_INT, 3));
    st_process_keep(&t, st_event_build(&ev, "click", "u2", NULL, 59999, ST_DOUBLE, 0.5));
    st_flush(&t, 64999); /* 60000 + 5000 > 64999: still open */
    assert_int_equal(t.sink.emits.n, 0);
    st_process_keep(&t, st_event_build(&ev, "click", "u1", NULL, 30000, ST_NONE, 0)); /* in time */
    st_flush(&t, 65000);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__WindowAggregate *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->window_start_ms, 0);
    assert_int_equal(a->window_end_ms, 60000);
    assert_int_equal(a->count, 3);
    assert_int_equal(a->distinct_users, 2);
    assert_true(a->sum == 3.5);
    userevents__window_aggregate__free_unpacked(a, NULL);

    st_process_keep(&t,
                    st_event_build(&ev, "click", "u9", NULL, 1, ST_INT, 100)); /* late: excluded */
    st_process_keep(&t, st_event_build(&ev, "click", "u9", NULL, 60000, ST_INT, 7));
    assert_int_equal(t.stats[ENR_STAT_LATE_EVENTS], 1);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 2);
    a = decode(&t.sink.emits.v[1]);
    assert_int_equal(a->window_start_ms, 60000);
    assert_int_equal(a->count, 1);
    assert_true(a->sum == 7);
    userevents__window_aggregate__free_unpacked(a, NULL);
    assert_int_equal(t.stats[ENR_STAT_AGGREGATES], 2);
    st_stage_stop(&t);
}

static void test_window_empty_sum_property_sums_nothing(void **state)
{
    (void)state;
    static const char *const kv[] = {"window.sum.property=", NULL};
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_window_new, kv);
    st_process_keep(&t,
                    st_event_build(&ev, "click", NULL, "anon-1", -1, ST_INT, 5)); /* before 1970 */
    st_process_keep(&t,
                    st_event_build(&ev, "click", NULL, NULL, -1, ST_INT, 5)); /* no user at all */
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__WindowAggregate *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->window_start_ms, -60000); /* floor, not truncation */
    assert_int_equal(a->count, 2);
    assert_int_equal(a->distinct_users, 1);
    assert_string_equal(a->sum_property, "");
    assert_true(a->sum == 0);
    userevents__window_aggregate__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

static void test_window_anonymous_id_is_not_the_same_user_id(void **state)
{
    (void)state;
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_window_new, NULL);
    st_process_keep(&t, st_event_build(&ev, "click", "42", NULL, 1, ST_INT, 1));
    st_process_keep(&t,
                    st_event_build(&ev, "click", NULL, "42", 2, ST_DOUBLE, NAN)); /* not summed */
    st_process_keep(&t, st_event_build(&ev, "click", "42", "other", 3, ST_DOUBLE, INFINITY));
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__WindowAggregate *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->count, 3);
    assert_int_equal(a->distinct_users, 2);
    assert_true(a->sum == 1);
    userevents__window_aggregate__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

static void test_window_bound_force_closes_oldest_start(void **state)
{
    (void)state;
    static const char *const kv[] = {"window.size.ms=1000", "window.allowed.lateness.ms=0", NULL};
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_window_new, kv);
    for (int i = 0; i < 10000; i++) /* 10000 open windows: the bound */
        st_process_keep(&t, st_event_build(&ev, "a", "u", NULL, (int64_t)i * 1000 + 5, ST_NONE, 0));
    st_process_keep(
        &t, st_event_build(&ev, "b", "u", NULL, 9999 * 1000 + 6, ST_NONE, 0)); /* closes a/0 */
    st_process_keep(&t, st_event_build(&ev, "a", "u", NULL, 10, ST_NONE, 0));  /* now late */
    assert_int_equal(t.stats[ENR_STAT_LATE_EVENTS], 1);
    st_flush(&t, 0); /* nothing due by the watermark: only the forced window goes out */
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__WindowAggregate *a = decode(&t.sink.emits.v[0]);
    assert_string_equal(a->event_type, "a");
    assert_int_equal(a->window_start_ms, 0);
    assert_int_equal(a->count, 1);
    userevents__window_aggregate__free_unpacked(a, NULL);
    const st_record_t *last =
        &t.sink.changelog.v[t.sink.changelog.n - 1]; /* the horizon moved to 1000 */
    assert_memory_equal(last->key, "_closed", 7);
    assert_int_equal(enr__le_load64(last->value), 1000);
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 10001);
    st_stage_stop(&t);
}

/* ---- distinct counting ------------------------------------------------------------------- */

static double hll_rel_error(uint64_t n, const char *prefix)
{
    static enr__hll_t h;
    memset(&h, 0, sizeof(h));
    char id[64];
    for (uint64_t i = 0; i < n; i++) {
        int len = snprintf(id, sizeof(id), "%s-%" PRIu64, prefix, i);
        enr__hll_add(&h, enr__hash64(id, (size_t)len));
        enr__hll_add(&h, enr__hash64(id, (size_t)len)); /* duplicates change nothing */
    }
    return fabs(enr__hll_estimate(&h) - (double)n) / (double)n;
}

static void test_hll_error_within_three_standard_errors(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"user", "u", "customer-id", "x", "anon"};
    for (size_t i = 0; i < 5; i++) { /* 100k distinct users, five different id sets */
        double err = hll_rel_error(100000, prefixes[i]);
        if (err > 3 * HLL_SE)
            fail_msg("%s: 100000 users estimated %.3f%% off", prefixes[i], 100 * err);
    }
    static const uint64_t sizes[] = {1, 10, 1000, 4097, 30000, 80000, 1000000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double err = hll_rel_error(sizes[i], "user");
        if (err > 3 * HLL_SE)
            fail_msg("%" PRIu64 " users estimated %.3f%% off", sizes[i], 100 * err);
    }
}

static void test_distinct_exact_to_threshold_then_sketch_and_roundtrip(void **state)
{
    (void)state;
    enr__distinct_t d = {0}, back = {0};
    for (int round = 0; round < 2; round++)
        for (uint64_t i = 0; i < ENR__DISTINCT_EXACT_MAX; i++)
            assert_int_equal(enr__distinct_add(&d, enr__mix64(i)), 0);
    assert_null(d.hll);
    assert_int_equal(enr__distinct_count(&d), ENR__DISTINCT_EXACT_MAX);
    uint8_t *buf = malloc(enr__distinct_encoded_size(&d));
    size_t len = (size_t)(enr__distinct_encode(&d, buf) - buf);
    assert_int_equal(len, enr__distinct_encoded_size(&d));
    enr__le_reader_t r = enr__le_reader(buf, len);
    assert_int_equal(enr__distinct_decode(&back, &r), 0);
    assert_int_equal(enr__distinct_count(&back), ENR__DISTINCT_EXACT_MAX);
    enr__distinct_free(&back);
    free(buf);

    for (uint64_t i = ENR__DISTINCT_EXACT_MAX; i < 20000; i++)
        assert_int_equal(enr__distinct_add(&d, enr__mix64(i)), 0);
    assert_non_null(d.hll);
    assert_true(fabs((double)enr__distinct_count(&d) - 20000) < 3 * HLL_SE * 20000);
    buf = malloc(enr__distinct_encoded_size(&d));
    len = (size_t)(enr__distinct_encode(&d, buf) - buf);
    r = enr__le_reader(buf, len);
    assert_int_equal(enr__distinct_decode(&back, &r), 0);
    assert_int_equal(enr__distinct_count(&back), enr__distinct_count(&d));
    assert_memory_equal(back.hll->reg, d.hll->reg, ENR__HLL_M);
    enr__distinct_free(&back);
    buf[100] = 200; /* an impossible register value */
    r = enr__le_reader(buf, len);
    assert_int_equal(enr__distinct_decode(&back, &r), -1);
    r = enr__le_reader(buf, len - 1); /* truncated */
    assert_int_equal(enr__distinct_decode(&back, &r), -1);
    enr__distinct_free(&back);
    enr__distinct_free(&d);
    free(buf);
}

static void test_window_many_users_counted_by_sketch(void **state)
{
    (void)state;
    st_stage_t t;
    st_event_t ev;
    st_open(&t, enr__stage_window_new, NULL);
    char user[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(user, sizeof(user), "user-%d", i % 25000);
        st_process_keep(&t, st_event_build(&ev, "page_view", user, NULL, T0 + i, ST_NONE, 0));
    }
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 1);
    Userevents__WindowAggregate *a = decode(&t.sink.emits.v[0]);
    assert_int_equal(a->count, 50000);
    assert_true(fabs((double)a->distinct_users - 25000) < 3 * HLL_SE * 25000);
    userevents__window_aggregate__free_unpacked(a, NULL);
    st_stage_stop(&t);
}

/* ---- restart ---------------------------------------------------------------------------- */

/*
 * Denser random input (10000 events a window), three in four of them clicks of distinct
 * users: the click windows run in sketch mode, and the one open at the restart switched
 * before it.
 */
static gen_event_t restart_input(uint64_t *rng, int i)
{
    gen_event_t g = gen(rng, i, 1);
    if (i % 4) {
        g.type = 1;
        g.user = 600 + i % 20000;
    }
    return g;
}

/* Runs events [from, to) with a flush every 97 (the watermark: newest event time seen). */
static void run_range(st_stage_t *t, int from, int to)
{
    uint64_t rng = 7;
    for (int i = 0; i < to; i++) {
        gen_event_t g = restart_input(&rng, i); /* same stream whatever the range */
        if (i < from)
            continue;
        run_event(t, &g);
        if (i % 97 == 96)
            st_flush(t, t->clock);
    }
}

static void test_window_restore_then_continue_equals_uninterrupted(void **state)
{
    (void)state;
    const int total = 40000, cut = 97 * 180; /* the crash: right after a commit */
    st_stage_t whole, before, after;
    st_open(&whole, enr__stage_window_new, kv_random);
    run_range(&whole, 0, total);

    st_open(&before, enr__stage_window_new, kv_random);
    run_range(&before, 0, cut);
    int sketched = 0; /* a window crossed the restart as a sketch */
    for (size_t i = 0; i < before.sink.changelog.n; i++)
        sketched |= before.sink.changelog.v[i].value_len == 1 + 8 + 8 + 1 + ENR__HLL_M;
    assert_true(sketched);
    st_open(&after, enr__stage_window_new, kv_random);
    st_restore_compacted(&after, &before.sink.changelog);
    run_range(&after, cut, total);

    /* the same state, open windows included */
    assert_true(st_assert_restart_state(&before, &after, &whole) > 2);
    st_flush(&whole, INT64_MAX);
    st_flush(&after, INT64_MAX);
    st_assert_restart_emits(&before, &after, &whole); /* the same output, byte for byte */
    st_stage_stop(&whole);
    st_stage_stop(&before);
    st_stage_stop(&after);
}

static void test_window_restore_rejects_malformed_records(void **state)
{
    (void)state;
    st_stage_t t;
    st_open(&t, enr__stage_window_new, NULL);
    uint8_t junk[40] = {1, 2, 3};
    assert_int_equal(st_restore_one(&t, "click/0", 7, junk, sizeof(junk)), -1);
    assert_int_equal(st_restore_one(&t, "click/0", 7, junk, 3), -1);
    assert_int_equal(st_restore_one(&t, "click/x", 7, junk, sizeof(junk)), -1);
    assert_int_equal(st_restore_one(&t, "click", 5, junk, sizeof(junk)), -1);
    assert_int_equal(st_restore_one(&t, "/5", 2, junk, sizeof(junk)), -1);
    assert_int_equal(st_restore_one(&t, "_closed", 7, junk, 3), -1);
    assert_int_equal(st_restore_one(&t, "click/0", 7, NULL, 0), 0); /* deleting nothing */
    st_flush(&t, INT64_MAX);
    assert_int_equal(t.sink.emits.n, 0);
    st_stage_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_aggregates_equal_brute_force),
        cmocka_unit_test(test_window_closes_when_end_plus_lateness_reaches_watermark),
        cmocka_unit_test(test_window_empty_sum_property_sums_nothing),
        cmocka_unit_test(test_window_anonymous_id_is_not_the_same_user_id),
        cmocka_unit_test(test_window_bound_force_closes_oldest_start),
        cmocka_unit_test(test_hll_error_within_three_standard_errors),
        cmocka_unit_test(test_distinct_exact_to_threshold_then_sketch_and_roundtrip),
        cmocka_unit_test(test_window_many_users_counted_by_sketch),
        cmocka_unit_test(test_window_restore_then_continue_equals_uninterrupted),
        cmocka_unit_test(test_window_restore_rejects_malformed_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
