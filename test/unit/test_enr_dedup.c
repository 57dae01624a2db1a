/*
 * test_enr_dedup.c - the "dedup" stage: duplicates dropped within the count and event-time
 * window, the same decisions as a naive reference model on random streams, a wrong device
 * clock cannot empty the window, the changelog carries only what changed (~24 bytes per id),
 * and a restart restored from the compacted changelog decides exactly like a process that
 * never stopped.
 */
#include "enr_stagetest.h"
#include "le.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct fixture {
    enr_conf_t *conf;
    st_sink_t sink;
    st_event_t ev;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->conf = enr_conf_new();
    st_sink_init(&f->sink);
    st_event_init(&f->ev);
    *state = f;
    return f->conf ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    st_event_free(&f->ev);
    st_sink_free(&f->sink);
    enr_conf_destroy(f->conf);
    free(f);
    return 0;
}

static void start(fixture_t *f, st_stage_t *st)
{
    char errstr[256] = "";
    assert_int_equal(st_stage_start(st, enr__stage_dedup_new(&f->conf->s), &f->sink, &f->conf->s,
                                    errstr, sizeof(errstr)),
                     0);
    assert_string_equal(st->def->name, "dedup");
}

/* One event with id @p id at event time @p t (no sent-at, no receive time: time is t). */
static enr_verdict_t feed(fixture_t *f, st_stage_t *st, uint64_t id, int64_t t)
{
    st_event_set_id(&f->ev, id);
    f->ev.ev.timestamp_ms = t;
    f->ev.ev.sent_at_ms = 0;
    f->ev.ev.received_at_ms = 0;
    return st_process(st, st_event_ready(&f->ev, 0));
}

static void test_dedup_drops_a_repeated_id(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    assert_int_equal(feed(f, &st, 1, 1000), ENR_KEEP);
    assert_int_equal(feed(f, &st, 2, 1001), ENR_KEEP);
    assert_int_equal(feed(f, &st, 1, 1002), ENR_DROP);
    assert_int_equal(feed(f, &st, 2, 999), ENR_DROP);
    assert_int_equal(feed(f, &st, 3, 1003), ENR_KEEP);
    assert_int_equal(st.stats[ENR_STAT_DROPPED], 0); /* the pipeline counts DROP verdicts */
    st_stage_stop(&st);
}

static void test_dedup_forgets_the_oldest_beyond_max_ids(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_max_ids = 3;
    start(f, &st);
    for (uint64_t id = 1; id <= 4; id++)
        assert_int_equal(feed(f, &st, id, 1000), ENR_KEEP);
    assert_int_equal(feed(f, &st, 1, 1000), ENR_KEEP); /* forgotten: 2, 3, 4 remain */
    assert_int_equal(feed(f, &st, 3, 1000), ENR_DROP);
    assert_int_equal(feed(f, &st, 2, 1000), ENR_KEEP); /* forgotten when 1 came back */
    st_stage_stop(&st);
}

static void test_dedup_forgets_ids_older_than_the_window(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_window_ms = 1000;
    start(f, &st);
    assert_int_equal(feed(f, &st, 1, 10000), ENR_KEEP);
    assert_int_equal(feed(f, &st, 2, 10500), ENR_KEEP);
    assert_int_equal(feed(f, &st, 3, 11000), ENR_KEEP); /* 10000 is exactly newest - window */
    assert_int_equal(feed(f, &st, 1, 11000), ENR_DROP);
    assert_int_equal(feed(f, &st, 4, 11001), ENR_KEEP); /* now 1 is older than the window */
    assert_int_equal(feed(f, &st, 1, 11001), ENR_KEEP);
    assert_int_equal(feed(f, &st, 2, 11001), ENR_DROP);
    st_stage_stop(&st);
}

/* An id that arrived late (older time behind newer ones) is kept until it is the oldest. */
static void test_dedup_keeps_out_of_order_ids_at_least_the_window(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_window_ms = 1000;
    start(f, &st);
    assert_int_equal(feed(f, &st, 1, 10000), ENR_KEEP);
    assert_int_equal(feed(f, &st, 2, 5000), ENR_KEEP);  /* late, already older than the window */
    assert_int_equal(feed(f, &st, 2, 10000), ENR_DROP); /* still remembered */
    assert_int_equal(feed(f, &st, 3, 11001), ENR_KEEP); /* 1, then 2, leave */
    assert_int_equal(feed(f, &st, 2, 11001), ENR_KEEP);
    st_stage_stop(&st);
}

static void test_dedup_keeps_events_without_a_16_byte_id(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    f->ev.ev.event_id.len = 0;
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, 0)), ENR_KEEP);
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, 0)), ENR_KEEP);
    f->ev.ev.event_id.len = 15;
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, 0)), ENR_KEEP);
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, 0)), ENR_KEEP);
    f->ev.ev.event_id.len = 16;
    st_stage_stop(&st);
}

/* A device clock years ahead (no sent-at to correct it) must not push the window forward. */
static void test_dedup_future_device_clock_cannot_empty_the_window(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_window_ms = 60000;
    start(f, &st);
    int64_t now = INT64_C(1700000000000);
    st_event_set_id(&f->ev, 1);
    f->ev.ev.timestamp_ms = now;
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, now)), ENR_KEEP);
    st_event_set_id(&f->ev, 2);
    f->ev.ev.timestamp_ms = now + INT64_C(10) * 365 * 86400000; /* ten years ahead */
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, now + 5)), ENR_KEEP);
    st_event_set_id(&f->ev, 1);
    f->ev.ev.timestamp_ms = now;
    assert_int_equal(st_process(&st, st_event_ready(&f->ev, now + 10)), ENR_DROP);
    st_stage_stop(&st);
}

static void test_dedup_survives_absurd_times(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    int64_t times[] = {INT64_MIN, -1, 0, INT64_MAX, INT64_MAX - 1, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        st_event_set_id(&f->ev, i);
        f->ev.ev.timestamp_ms = times[i];
        f->ev.ev.sent_at_ms = times[(i + 1) % 6];
        f->ev.ev.received_at_ms = times[(i + 2) % 6];
        st_process(&st, st_event_ready(&f->ev, times[(i + 3) % 6]));
    }
    st_flush(&st, INT64_MAX);
    st_stage_stop(&st);
}

/* ---- against a reference model ------------------------------------------------------------ */

typedef struct model {
    uint64_t id[4096];
    int64_t t[4096];
    size_t head, n, max;
    int64_t newest, window;
} model_t;

static enr_verdict_t model_feed(model_t *m, uint64_t id, int64_t t)
{
    if (t > m->newest)
        m->newest = t;
    while (m->n && m->t[m->head % 4096] < m->newest - m->window) {
        m->head++;
        m->n--;
    }
    for (size_t k = 0; k < m->n; k++)
        if (m->id[(m->head + k) % 4096] == id)
            return ENR_DROP;
    if (m->n == m->max) {
        m->head++;
        m->n--;
    }
    m->id[(m->head + m->n) % 4096] = id;
    m->t[(m->head + m->n) % 4096] = t;
    m->n++;
    return ENR_KEEP;
}

typedef struct stream {
    uint64_t *id;
    int64_t *t;
    int *flush_after; /* 1: the pipeline flushes after this event */
    size_t n;
} stream_t;

/*
 * Ids from a small space (many duplicates), times mostly rising with some going back, a
 * flush after one event in @p flush_every on average.
 */
static stream_t make_stream(size_t n, uint64_t id_space, unsigned flush_every, unsigned seed)
{
    stream_t s = {calloc(n, sizeof(uint64_t)), calloc(n, sizeof(int64_t)), calloc(n, sizeof(int)),
                  n};
    int64_t clock = 1000000;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        s.id[i] = (seed >> 8) % id_space;
        clock += (seed >> 20) % 7;
        s.t[i] = (seed >> 4) % 10 == 0 ? clock - (int64_t)((seed >> 12) % 400) : clock;
        s.flush_after[i] = (seed >> 16) % flush_every == 0;
    }
    return s;
}

static void stream_free(stream_t *s)
{
    free(s->id);
    free(s->t);
    free(s->flush_after);
}

static void test_dedup_decides_like_the_reference_model(void **state)
{
    fixture_t *f = *state;
    size_t max_ids[] = {1, 7, 100, 1000};
    int64_t windows[] = {50, 300, 100000};
    for (size_t a = 0; a < 4; a++) {
        for (size_t b = 0; b < 3; b++) {
            st_stage_t st;
            model_t m = {.max = max_ids[a], .newest = INT64_MIN / 2, .window = windows[b]};
            f->conf->s.dedup_max_ids = (int64_t)max_ids[a];
            f->conf->s.dedup_window_ms = windows[b];
            start(f, &st);
            stream_t s = make_stream(20000, 600, 13, (unsigned)(a * 10 + b + 1));
            for (size_t i = 0; i < s.n; i++) {
                enr_verdict_t want = model_feed(&m, s.id[i], s.t[i]);
                if (feed(f, &st, s.id[i], s.t[i]) != want)
                    fail_msg("max %zu window %lld: event %zu (id %llu) differs", max_ids[a],
                             (long long)windows[b], i, (unsigned long long)s.id[i]);
                if (s.flush_after[i])
                    st_flush(&st, 0);
            }
            stream_free(&s);
            st_stage_stop(&st);
        }
    }
}

/* ---- changelog and restore ---------------------------------------------------------------- */

static size_t changelog_bytes(const st_log_t *log, size_t from)
{
    size_t bytes = 0;
    for (size_t i = from; i < log->n; i++)
        bytes += log->v[i].key_len + log->v[i].value_len;
    return bytes;
}

static void test_dedup_changelog_carries_only_new_ids(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    st_flush(&st, 0);
    assert_int_equal(f->sink.changelog.n, 0); /* nothing changed: nothing written */
    uint64_t id = 0;
    for (int round = 0; round < 100; round++) {
        size_t before = f->sink.changelog.n;
        for (int i = 0; i < 1000; i++, id++)
            feed(f, &st, id, 1000000 + (int64_t)id);
        st_flush(&st, 0);
        size_t bytes = changelog_bytes(&f->sink.changelog, before);
        assert_true(bytes >= 24000 && bytes <= 24000 + 100); /* one chunk and the head */
        assert_int_equal(f->sink.changelog.n - before, 2);
    }
    st_stage_stop(&st);
}

static void test_dedup_deletes_chunks_whose_ids_were_all_forgotten(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_max_ids = 10;
    start(f, &st);
    for (uint64_t id = 0; id < 10; id++)
        feed(f, &st, id, 1000);
    st_flush(&st, 0); /* chunk 0: ids 0..9 */
    for (uint64_t id = 10; id < 20; id++)
        feed(f, &st, id, 1000);
    st_flush(&st, 0); /* chunk 1: ids 10..19; chunk 0 is deleted */
    int deleted = 0;
    for (size_t i = 0; i < f->sink.changelog.n; i++) {
        const st_record_t *r = &f->sink.changelog.v[i];
        assert_string_equal(r->topic, "dedup");
        if (!r->value) {
            assert_memory_equal(r->key, "d/0000000000000000", 18);
            deleted++;
        }
    }
    assert_int_equal(deleted, 1);
    st_stage_stop(&st);
}

static void test_dedup_splits_large_flushes_into_bounded_records(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_max_ids = 100000;
    start(f, &st);
    for (uint64_t id = 0; id < 40000; id++)
        feed(f, &st, id, 1000);
    st_flush(&st, 0);
    size_t chunks = 0;
    for (size_t i = 0; i < f->sink.changelog.n; i++) {
        assert_true(f->sink.changelog.v[i].value_len < 1000000);
        chunks += f->sink.changelog.v[i].key_len == 18;
    }
    assert_int_equal(chunks, 3);
    st_stage_stop(&st);
}

/*
 * Runs @p s from event @p from on @p st, flushing where the stream says; writes the verdicts
 * into @p out. Stops after the flush following event @p crash_after (if any): returns where.
 */
static size_t run(fixture_t *f, st_stage_t *st, const stream_t *s, size_t from, size_t crash_after,
                  enr_verdict_t *out)
{
    for (size_t i = from; i < s->n; i++) {
        out[i] = feed(f, st, s->id[i], s->t[i]);
        if (s->flush_after[i]) {
            st_flush(st, 0);
            if (i >= crash_after)
                return i + 1;
        }
    }
    return s->n;
}

static void restore_from(fixture_t *f, st_stage_t *st, unsigned shuffle)
{
    size_t n;
    const st_record_t **recs = st_compact(&f->sink.changelog, shuffle, &n);
    assert_int_equal(st_restore(st, recs, n), 0);
    free(recs);
}

/*
 * Runs @p s uninterrupted, then again with a crash every @p crash_every events or so (each
 * restart restores from everything written so far, compacted and shuffled), and compares
 * every verdict.
 */
static void check_restarts(fixture_t *f, const stream_t *s, size_t crash_every)
{
    enr_verdict_t *want = calloc(s->n, sizeof(*want)), *got = calloc(s->n, sizeof(*got));
    st_stage_t st;
    st_log_clear(&f->sink.changelog);
    start(f, &st);
    run(f, &st, s, 0, SIZE_MAX, want);
    st_stage_stop(&st);
    st_log_clear(&f->sink.changelog);

    size_t at = 0;
    unsigned shuffle = 1;
    start(f, &st);
    while (at < s->n) {
        at = run(f, &st, s, at, at + crash_every + shuffle * 97 % crash_every, got);
        st_stage_stop(&st);
        start(f, &st);
        restore_from(f, &st, shuffle++);
    }
    st_stage_stop(&st);
    size_t drops = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (got[i] != want[i])
            fail_msg("event %zu: restored run says %d, uninterrupted %d", i, got[i], want[i]);
        drops += want[i] == ENR_DROP;
    }
    assert_true(shuffle > 5);
    assert_true(drops > s->n / 20 && drops < s->n - s->n / 20); /* both verdicts exercised */
    free(want);
    free(got);
}

/* The guarantee: crash after any commit, restore, go on: the same verdicts, event for event. */
static void test_dedup_restore_decides_like_an_uninterrupted_run(void **state)
{
    fixture_t *f = *state;
    f->conf->s.dedup_max_ids = 500;
    f->conf->s.dedup_window_ms = 2000;
    stream_t s = make_stream(30000, 2000, 13, 7);
    check_restarts(f, &s, 1500);
    stream_free(&s);
    /* more new ids between two flushes than the window holds */
    f->conf->s.dedup_max_ids = 50;
    s = make_stream(30000, 120, 400, 8);
    check_restarts(f, &s, 2000);
    stream_free(&s);
}

/* After a restart, a late first event must not pull "newest" back (and keep expired ids). */
static void test_dedup_restore_keeps_the_newest_event_time(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_max_ids = 2;
    f->conf->s.dedup_window_ms = 1000;
    start(f, &st);
    assert_int_equal(feed(f, &st, 1, 10000), ENR_KEEP);
    assert_int_equal(feed(f, &st, 2, 8500), ENR_KEEP);  /* late: behind 1 */
    assert_int_equal(feed(f, &st, 3, 10000), ENR_KEEP); /* full: 1 goes, 2 is the oldest */
    st_flush(&st, 0);
    st_stage_stop(&st);
    start(f, &st);
    restore_from(f, &st, 0);
    /* newest is still 10000: 2 (8500) is older than the window and forgotten now */
    assert_int_equal(feed(f, &st, 2, 8600), ENR_KEEP);
    st_stage_stop(&st);
}

/* The changelog read without compaction (every record, deletes included, in log order). */
static void test_dedup_restores_from_an_uncompacted_log(void **state)
{
    fixture_t *f = *state;
    f->conf->s.dedup_max_ids = 50;
    stream_t s = make_stream(5000, 300, 13, 3);
    enr_verdict_t *want = calloc(s.n, sizeof(*want)), *got = calloc(s.n, sizeof(*got));
    st_stage_t st;
    start(f, &st);
    run(f, &st, &s, 0, SIZE_MAX, want);
    st_stage_stop(&st);
    st_log_clear(&f->sink.changelog);
    start(f, &st);
    size_t at = run(f, &st, &s, 0, 2500, got);
    st_stage_stop(&st);
    start(f, &st);
    for (size_t i = 0; i < f->sink.changelog.n; i++) {
        const st_record_t *r = &f->sink.changelog.v[i];
        assert_int_equal(
            st.def->restore(st.state, r->key, r->key_len, r->value, r->value_len, st.def->opaque),
            0);
    }
    run(f, &st, &s, at, SIZE_MAX, got);
    assert_memory_equal(got + at, want + at, (s.n - at) * sizeof(*got));
    st_stage_stop(&st);
    free(want);
    free(got);
    stream_free(&s);
}

static void test_dedup_restore_with_fewer_max_ids_keeps_the_newest(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    f->conf->s.dedup_max_ids = 100;
    start(f, &st);
    for (uint64_t id = 0; id < 100; id++)
        feed(f, &st, id, 1000);
    st_flush(&st, 0);
    st_stage_stop(&st);
    f->conf->s.dedup_max_ids = 10;
    start(f, &st);
    restore_from(f, &st, 0);
    assert_int_equal(feed(f, &st, 95, 1000), ENR_DROP);
    assert_int_equal(feed(f, &st, 85, 1000), ENR_KEEP);
    st_flush(&st, 0); /* writes a head past the forgotten ids */
    st_stage_stop(&st);
    start(f, &st);
    restore_from(f, &st, 3);
    assert_int_equal(feed(f, &st, 85, 1000), ENR_DROP);
    assert_int_equal(feed(f, &st, 92, 1000), ENR_DROP); /* 91..99 and 85 remained */
    assert_int_equal(feed(f, &st, 90, 1000), ENR_KEEP); /* forgotten when 85 came */
    st_stage_stop(&st);
}

static void test_dedup_restore_refuses_malformed_records(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    uint8_t junk[64];
    memset(junk, 0xff, sizeof(junk));
    enr_restore_fn *r = st.def->restore;
    assert_int_not_equal(r(st.state, "h", 1, junk, 5, NULL), 0);
    assert_int_not_equal(r(st.state, "h", 1, junk, 40, NULL), 0);
    assert_int_not_equal(r(st.state, "d/0000000000000001", 18, junk, 17, NULL), 0);
    assert_int_not_equal(r(st.state, "d/00000000000000zz", 18, junk, 41, NULL), 0);
    assert_int_not_equal(r(st.state, "x", 1, junk, 8, NULL), 0);
    assert_int_equal(r(st.state, "d/0000000000000001", 18, NULL, 0, NULL), 0);
    /* a chunk whose count says more than it holds */
    uint8_t v[17 + 24] = {1};
    enr__le_put64(v + 1, 1);
    enr__le_put64(v + 9, UINT64_MAX / 2);
    assert_int_not_equal(r(st.state, "d/0000000000000001", 18, v, sizeof(v), NULL), 0);
    enr__le_put64(v + 9, 1);
    assert_int_equal(r(st.state, "d/0000000000000001", 18, v, sizeof(v), NULL), 0);
    assert_int_equal(feed(f, &st, 5, 1000), ENR_KEEP); /* the window works after it */
    assert_int_equal(feed(f, &st, 5, 1000), ENR_DROP);
    st_stage_stop(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedup_drops_a_repeated_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_forgets_the_oldest_beyond_max_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_forgets_ids_older_than_the_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_keeps_out_of_order_ids_at_least_the_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_keeps_events_without_a_16_byte_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_future_device_clock_cannot_empty_the_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_survives_absurd_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_decides_like_the_reference_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_changelog_carries_only_new_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_deletes_chunks_whose_ids_were_all_forgotten,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_splits_large_flushes_into_bounded_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_restore_decides_like_an_uninterrupted_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_restore_keeps_the_newest_event_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_restores_from_an_uncompacted_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_restore_with_fewer_max_ids_keeps_the_newest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_restore_refuses_malformed_records, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
