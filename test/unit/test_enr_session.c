/*
 * test_enr_session.c - the "session" stage: sessions split at gaps in event time, ids made
 * from user and start, sequence numbers, out-of-order events, user vs anonymous ids, idle
 * users forgotten (memory follows active users), and a restart restored from the compacted
 * changelog assigns exactly what an uninterrupted run assigns.
 */
#include "enr_stagetest.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GAP 1000

typedef struct fixture {
    enr_conf_t *conf;
    st_sink_t sink;
    st_event_t ev;
} fixture_t;

typedef struct got {
    char id[64];
    uint32_t seq;
    int64_t started;
} got_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->conf = enr_conf_new();
    f->conf->s.session_gap_ms = GAP;
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
    char errstr[128];
    assert_int_equal(st_stage_start(st, enr__stage_session_new(&f->conf->s), &f->sink, &f->conf->s,
                                    errstr, sizeof(errstr)),
                     0);
    assert_string_equal(st->def->name, "session");
}

/* One event of @p user (anonymous id @p anon) at event time @p t; what the stage assigned. */
static got_t feed2(fixture_t *f, st_stage_t *st, const char *user, const char *anon, int64_t t)
{
    got_t g = {"", 0, 0};
    f->ev.ev.user_id = (char *)user;
    f->ev.ev.anonymous_id = (char *)anon;
    f->ev.ev.session_id = (char *)"client-session";
    f->ev.ev.timestamp_ms = t;
    enr_event_t *e = st_event_ready(&f->ev, 0);
    assert_int_equal(st_process(st, e), ENR_KEEP);
    assert_string_equal(f->ev.ev.session_id, "client-session"); /* the client's, untouched */
    if (e->out.session) {
        assert_ptr_equal(e->out.session, &e->session);
        assert_string_equal(enr_event_session_id(e), e->session.session_id);
        snprintf(g.id, sizeof(g.id), "%s", e->session.session_id);
        g.seq = e->session.sequence;
        g.started = e->session.started_ms;
    }
    return g;
}

static got_t feed(fixture_t *f, st_stage_t *st, const char *user, int64_t t)
{
    return feed2(f, st, user, "", t);
}

static void test_session_splits_after_a_gap(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    got_t a = feed(f, &st, "u1", 10000);
    got_t b = feed(f, &st, "u1", 10500);
    got_t c = feed(f, &st, "u1", 11500); /* exactly the gap: same session */
    got_t d = feed(f, &st, "u1", 12501); /* more than the gap: a new one */
    got_t e = feed(f, &st, "u1", 12600);
    assert_string_equal(a.id, b.id);
    assert_string_equal(a.id, c.id);
    assert_string_not_equal(c.id, d.id);
    assert_string_equal(d.id, e.id);
    assert_int_equal(a.seq, 1);
    assert_int_equal(b.seq, 2);
    assert_int_equal(c.seq, 3);
    assert_int_equal(d.seq, 1);
    assert_int_equal(e.seq, 2);
    assert_int_equal(a.started, 10000);
    assert_int_equal(c.started, 10000);
    assert_int_equal(e.started, 12501);
    assert_int_equal(strncmp(a.id, "s-10000-", 8), 0);
    assert_int_equal(strncmp(d.id, "s-12501-", 8), 0);
    assert_int_equal(strlen(a.id), 8 + 16);
    st_stage_stop(&st);
}

static void test_session_id_depends_only_on_user_and_start(void **state)
{
    fixture_t *f = *state;
    st_stage_t st1, st2;
    start(f, &st1);
    start(f, &st2);
    got_t a = feed(f, &st1, "u1", 5000);
    feed(f, &st2, "u9", 4000);
    got_t b = feed(f, &st2, "u1", 5000);
    got_t c = feed(f, &st2, "u2", 5000);
    assert_string_equal(a.id, b.id);     /* another process, the same id */
    assert_string_not_equal(a.id, c.id); /* another user */
    st_stage_stop(&st1);
    st_stage_stop(&st2);
}

static void test_session_keeps_out_of_order_events_in_the_current_session(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    got_t a = feed(f, &st, "u1", 20000);
    got_t b = feed(f, &st, "u1", 15000); /* far earlier: stays, seq goes on */
    got_t c = feed(f, &st, "u1", 20900); /* within the gap of 20000 (last not moved back) */
    got_t d = feed(f, &st, "u1", 21950); /* > gap after 20900 */
    assert_string_equal(a.id, b.id);
    assert_string_equal(a.id, c.id);
    assert_int_equal(b.seq, 2);
    assert_int_equal(c.seq, 3);
    assert_int_equal(b.started, 20000);
    assert_string_not_equal(c.id, d.id);
    st_stage_stop(&st);
}

static void test_session_prefers_user_id_then_anonymous_id(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    got_t a = feed2(f, &st, "", "x", 1000);
    got_t b = feed2(f, &st, "x", "", 1000); /* user "x" is not anonymous "x" */
    got_t c = feed2(f, &st, "x", "anything", 1100);
    got_t d = feed2(f, &st, NULL, "x", 1200);
    assert_string_not_equal(a.id, b.id);
    assert_string_equal(b.id, c.id);
    assert_int_equal(c.seq, 2);
    assert_string_equal(a.id, d.id);
    assert_int_equal(d.seq, 2);
    got_t none = feed2(f, &st, "", "", 1300);
    assert_string_equal(none.id, ""); /* nobody: no session */
    none = feed2(f, &st, NULL, NULL, 1300);
    assert_string_equal(none.id, "");
    st_stage_stop(&st);
}

static void test_session_survives_absurd_times(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    int64_t times[] = {INT64_MAX, INT64_MIN, 0, -5, INT64_MAX, INT64_MIN + 1, 42};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        feed(f, &st, "u1", times[i]);
        st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    }
    got_t a = feed(f, &st, "u2", INT64_MIN);
    got_t b = feed(f, &st, "u2", INT64_MAX); /* a gap that overflows int64 */
    assert_string_not_equal(a.id, b.id);
    st_stage_stop(&st);
}

/* ---- flush, forgetting, changelog ---------------------------------------------------------- */

static int count_records(const st_sink_t *s, int deletes)
{
    int n = 0;
    for (size_t i = 0; i < s->changelog.n; i++)
        n += (s->changelog.v[i].value == NULL) == deletes;
    return n;
}

static void test_session_writes_only_users_changed_since_the_last_flush(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    feed(f, &st, "u1", 1000);
    feed(f, &st, "u2", 1000);
    feed(f, &st, "u1", 1100);
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(f->sink.changelog.n, 3); /* u:u1, u:u2, n */
    feed(f, &st, "u2", 1050);
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(f->sink.changelog.n, 4); /* u:u2 only: newest did not move */
    assert_memory_equal(f->sink.changelog.v[3].key, "u:u2", 4);
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(f->sink.changelog.n, 4);
    st_stage_stop(&st);
}

static void test_session_forgets_users_idle_for_two_gaps(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    char user[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        feed(f, &st, user, 10000 + i); /* user-i last seen at 10000 + i */
    }
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(count_records(&f->sink, 1), 0);
    feed(f, &st, "late", 12500); /* newest 12500: idle if last < 10500 */
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(count_records(&f->sink, 1), 500);
    feed(f, &st, "user-600", 12501); /* 600 is active again: not forgotten below */
    feed(f, &st, "later", 13000);    /* idle if last < 11000: the other 499 */
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    assert_int_equal(count_records(&f->sink, 1), 999);
    got_t g = feed(f, &st, "user-1", 12700); /* forgotten: a new session, as it would be */
    assert_int_equal(g.seq, 1);
    assert_int_equal(g.started, 12700);
    st_stage_stop(&st);
}

/* ---- restore ------------------------------------------------------------------------------- */

typedef struct stream {
    char (*user)[16];
    int64_t *t;
    int *flush_after;
    size_t n;
} stream_t;

/* Users from a pool, bursts and pauses longer than the gap, some events out of order. */
static stream_t make_stream(size_t n, unsigned seed)
{
    stream_t s = {calloc(n, 16), calloc(n, sizeof(int64_t)), calloc(n, sizeof(int)), n};
    int64_t clock = 1000000;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(s.user[i], 16, "%c%u", (seed >> 9) % 3 ? 'u' : 'v', (seed >> 12) % 40);
        clock += (seed >> 20) % 23;
        s.t[i] = (seed >> 4) % 9 == 0 ? clock - (int64_t)((seed >> 14) % (3 * GAP)) : clock;
        s.flush_after[i] = (seed >> 16) % 17 == 0;
    }
    return s;
}

static void stream_free(stream_t *s)
{
    free(s->user);
    free(s->t);
    free(s->flush_after);
}

static size_t run(fixture_t *f, st_stage_t *st, const stream_t *s, size_t from, size_t crash_after,
                  got_t *out)
{
    for (size_t i = from; i < s->n; i++) {
        out[i] = s->user[i][0] == 'v' ? feed2(f, st, "", s->user[i], s->t[i])
                                      : feed(f, st, s->user[i], s->t[i]);
        if (s->flush_after[i]) {
            st_flush(st, INT64_MAX);
            if (i >= crash_after)
                return i + 1;
        }
    }
    return s->n;
}

/* The guarantee: crash after any commit, restore, go on: the same session for every event. */
static void test_session_restore_assigns_like_an_uninterrupted_run(void **state)
{
    fixture_t *f = *state;
    stream_t s = make_stream(40000, 11);
    got_t *want = calloc(s.n, sizeof(*want)), *got = calloc(s.n, sizeof(*got));
    st_stage_t st;
    start(f, &st);
    run(f, &st, &s, 0, SIZE_MAX, want);
    st_stage_stop(&st);
    int forgotten = count_records(&f->sink, 1);
    st_log_clear(&f->sink.changelog);

    size_t at = 0;
    unsigned shuffle = 1;
    start(f, &st);
    while (at < s.n) {
        at = run(f, &st, &s, at, at + 2000 + shuffle * 331 % 2000, got);
        st_stage_stop(&st);
        start(f, &st);
        size_t n;
        const st_record_t **recs = st_compact(&f->sink.changelog, shuffle++, &n);
        assert_int_equal(st_restore(&st, recs, n), 0);
        free(recs);
    }
    st_stage_stop(&st);
    size_t firsts = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (strcmp(got[i].id, want[i].id) || got[i].seq != want[i].seq ||
            got[i].started != want[i].started)
            fail_msg("event %zu (%s at %" PRId64 "): restored %s #%u, uninterrupted %s #%u", i,
                     s.user[i], s.t[i], got[i].id, got[i].seq, want[i].id, want[i].seq);
        firsts += want[i].seq == 1;
    }
    assert_true(shuffle > 5);
    assert_true(forgotten > 100);                   /* users were forgotten and came back */
    assert_true(firsts > 1000 && firsts < s.n / 2); /* sessions both split and continued */
    free(want);
    free(got);
    stream_free(&s);
}

/* A late user after a restart is judged against the newest time from before the crash. */
static void test_session_restore_keeps_the_newest_event_time(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    for (int restart = 0; restart < 2; restart++) {
        st_log_clear(&f->sink.changelog);
        start(f, &st);
        feed(f, &st, "u1", 20000);
        st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
        if (restart) {
            st_stage_stop(&st);
            start(f, &st);
            size_t n;
            const st_record_t **recs = st_compact(&f->sink.changelog, 0, &n);
            assert_int_equal(st_restore(&st, recs, n), 0);
            free(recs);
        }
        feed(f, &st, "x", 15000); /* late: idle for more than two gaps at once */
        st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
        got_t g = feed(f, &st, "x", 15500);
        assert_int_equal(g.seq, 1); /* x was forgotten: a new session */
        st_stage_stop(&st);
    }
}

static void test_session_restore_refuses_malformed_records(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    enr_restore_fn *r = st.def->restore;
    uint8_t v[25] = {1};
    assert_int_not_equal(r(st.state, "u:x", 3, v, 24, NULL), 0);
    assert_int_not_equal(r(st.state, "u:x", 3, v, 26, NULL), 0);
    v[0] = 9;
    assert_int_not_equal(r(st.state, "u:x", 3, v, 25, NULL), 0);
    v[0] = 1;
    assert_int_not_equal(r(st.state, "x:x", 3, v, 25, NULL), 0);
    assert_int_not_equal(r(st.state, "u:", 2, v, 25, NULL), 0);
    assert_int_not_equal(r(st.state, "n", 1, v, 3, NULL), 0);
    v[17] = 0xff; /* sequence beyond 32 bits */
    v[24] = 0x01;
    assert_int_not_equal(r(st.state, "u:x", 3, v, 25, NULL), 0);
    assert_int_equal(r(st.state, "u:x", 3, NULL, 0, NULL), 0); /* delete of nobody */
    assert_int_equal(r(st.state, "n", 1, NULL, 0, NULL), 0);
    got_t g = feed(f, &st, "x", 1000); /* works after it */
    assert_int_equal(g.seq, 1);
    st_flush(&st, INT64_MAX); /* the watermark does not hold eviction back */
    st_stage_stop(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_splits_after_a_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_id_depends_only_on_user_and_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_session_keeps_out_of_order_events_in_the_current_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_prefers_user_id_then_anonymous_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_survives_absurd_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_writes_only_users_changed_since_the_last_flush,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_forgets_users_idle_for_two_gaps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_restore_assigns_like_an_uninterrupted_run,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_restore_keeps_the_newest_event_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_restore_refuses_malformed_records, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
