/*
 * test_enr_profile.c - the "profile" stage: profiles upserted and deleted by key, joined to
 * events by user id, refused with a reason when they do not decode (nested too deep included)
 * or are not valid UTF-8, and the table freed whole (ASan) with many users.
 */
#include "deep_pb.h"
#include "enr_stagetest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct fixture {
    st_sink_t sink;
    st_stage_t st;
    st_event_t ev;
    uint8_t buf[4096];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char errstr[128];
    st_sink_init(&f->sink);
    st_event_init(&f->ev);
    *state = f;
    return st_stage_start(&f->st, enr__stage_profile_new(NULL), &f->sink, NULL, errstr,
                          sizeof(errstr));
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    st_stage_stop(&f->st);
    st_event_free(&f->ev);
    st_sink_free(&f->sink);
    free(f);
    return 0;
}

/* An encoded profile (in f->buf); returns its length. */
static size_t encode(fixture_t *f, const char *user_id, const char *plan)
{
    Userevents__UserProfile p = USEREVENTS__USER_PROFILE__INIT;
    p.user_id = (char *)user_id;
    p.plan = (char *)plan;
    p.name = (char *)"Ada";
    assert_true(userevents__user_profile__get_packed_size(&p) <= sizeof(f->buf));
    return userevents__user_profile__pack(&p, f->buf);
}

static int put(fixture_t *f, const char *key, const char *user_id, const char *plan)
{
    size_t len = encode(f, user_id, plan);
    return enr__profile_put(f->st.state, key, f->buf, len, NULL, 0);
}

/* The profile the stage joins to an event of @p user (NULL: none). */
static const Userevents__UserProfile *joined(fixture_t *f, const char *user)
{
    f->ev.ev.user_id = (char *)user;
    enr_event_t *e = st_event_ready(&f->ev, 0);
    assert_int_equal(st_process(&f->st, e), ENR_KEEP);
    return e->out.profile;
}

static void test_profile_joins_the_events_user(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(f->st.def->name, "profile");
    assert_int_equal(put(f, "u1", "u1", "pro"), 0);
    assert_int_equal(put(f, "u2", "u2", "free"), 0);
    assert_int_equal(enr__profile_count(f->st.state), 2);
    const Userevents__UserProfile *p = joined(f, "u1");
    assert_non_null(p);
    assert_string_equal(p->plan, "pro");
    assert_string_equal(p->name, "Ada");
    assert_string_equal(joined(f, "u2")->plan, "free");
    assert_null(joined(f, "u3")); /* no profile: not an error */
    assert_null(joined(f, ""));
    assert_null(joined(f, NULL));
}

static void test_profile_upsert_replaces_and_empty_value_deletes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(put(f, "u1", "u1", "free"), 0);
    assert_int_equal(put(f, "u1", "u1", "pro"), 0);
    assert_int_equal(enr__profile_count(f->st.state), 1);
    assert_string_equal(joined(f, "u1")->plan, "pro");
    assert_int_equal(enr__profile_put(f->st.state, "u1", NULL, 0, NULL, 0), 0); /* tombstone */
    assert_int_equal(enr__profile_count(f->st.state), 0);
    assert_null(joined(f, "u1"));
    assert_int_equal(enr__profile_put(f->st.state, "u1", NULL, 0, NULL, 0), 0); /* gone */
    assert_int_equal(enr__profile_put(f->st.state, "u1", f->buf, 0, NULL, 0), 0);
    assert_int_not_equal(enr__profile_put(f->st.state, NULL, NULL, 0, NULL, 0), 0); /* whose? */
    assert_int_not_equal(enr__profile_put(f->st.state, "", NULL, 0, NULL, 0), 0);
}

static void test_profile_key_or_field_names_the_user(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(put(f, NULL, "u1", "pro"), 0); /* enr_pipeline_put_profile(): no key */
    assert_string_equal(joined(f, "u1")->plan, "pro");
    assert_int_equal(put(f, "u2", "", "free"), 0); /* the key only: the output still names it */
    assert_string_equal(joined(f, "u2")->user_id, "u2");
    assert_int_not_equal(put(f, NULL, "", "free"), 0); /* neither */
    assert_int_not_equal(put(f, "", "", "free"), 0);
    assert_int_equal(enr__profile_count(f->st.state), 2);
}

static void test_profile_refuses_what_does_not_decode(void **state)
{
    fixture_t *f = *state;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_not_equal(enr__profile_put(f->st.state, "u1", junk, sizeof(junk), NULL, 0), 0);
    const uint8_t truncated[] = {0x0a, 0x10, 'u'}; /* user_id says 16 bytes, has 1 */
    assert_int_not_equal(
        enr__profile_put(f->st.state, "u1", truncated, sizeof(truncated), NULL, 0), 0);
    assert_int_equal(enr__profile_count(f->st.state), 0);
    assert_int_not_equal(enr__profile_put(NULL, "u1", junk, sizeof(junk), NULL, 0), 0);
    assert_int_equal(enr__profile_count(NULL), 0);
}

/* The profile topic is written by another process: a trait nested 6,000 lists deep. */
static void test_profile_refuses_deep_traits_with_reason(void **state)
{
    fixture_t *f = *state;
    char reason[256] = "";
    size_t len;
    uint8_t *deep = dp_profile(6000, &len);
    assert_int_equal(enr__profile_put(f->st.state, "u1", deep, len, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "nested deeper than 32 levels"));
    assert_int_equal(enr__profile_count(f->st.state), 0);
    free(deep);
    assert_int_not_equal(put(f, NULL, "", "free"), 0);
    assert_int_equal(enr__profile_put(f->st.state, NULL, f->buf, encode(f, "", "free"), reason,
                                      sizeof(reason)),
                     -1);
    assert_non_null(strstr(reason, "no user id"));
}

static void test_profile_refuses_invalid_utf8(void **state)
{
    fixture_t *f = *state;
    assert_int_not_equal(put(f, "u1", "u1", "pr\xc3"), 0);
    assert_int_not_equal(put(f, "u\xff", "", "pro"), 0);

    Userevents__UserProfile p = USEREVENTS__USER_PROFILE__INIT;
    Userevents__UserProfile__TraitsEntry entry = USEREVENTS__USER_PROFILE__TRAITS_ENTRY__INIT;
    Userevents__UserProfile__TraitsEntry *entries[] = {&entry};
    Userevents__Value inner = USEREVENTS__VALUE__INIT, outer = USEREVENTS__VALUE__INIT;
    Userevents__ListValue list = USEREVENTS__LIST_VALUE__INIT;
    Userevents__Value *items[] = {&inner};
    inner.kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    inner.string_value = (char *)"\xed\xa0\x80"; /* a surrogate */
    list.n_values = 1;
    list.values = items;
    outer.kind_case = USEREVENTS__VALUE__KIND_LIST_VALUE;
    outer.list_value = &list;
    entry.key = (char *)"tags";
    entry.value = &outer;
    p.user_id = (char *)"u1";
    p.n_traits = 1;
    p.traits = entries;
    size_t len = userevents__user_profile__pack(&p, f->buf);
    assert_int_not_equal(enr__profile_put(f->st.state, "u1", f->buf, len, NULL, 0), 0);
    inner.string_value = (char *)"vip";
    len = userevents__user_profile__pack(&p, f->buf);
    assert_int_equal(enr__profile_put(f->st.state, "u1", f->buf, len, NULL, 0), 0);
    assert_int_equal(enr__profile_count(f->st.state), 1);
}

static void test_profile_holds_many_users_and_frees_them(void **state)
{
    fixture_t *f = *state;
    char user[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        assert_int_equal(put(f, user, user, i % 2 ? "pro" : "free"), 0);
    }
    for (int i = 0; i < 20000; i += 3) {
        snprintf(user, sizeof(user), "user-%d", i);
        assert_int_equal(enr__profile_put(f->st.state, user, NULL, 0, NULL, 0), 0);
    }
    assert_int_equal(enr__profile_count(f->st.state), 20000 - 6667);
    snprintf(user, sizeof(user), "user-%d", 19999);
    assert_string_equal(joined(f, user)->plan, "pro");
    assert_null(joined(f, "user-3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profile_joins_the_events_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_upsert_replaces_and_empty_value_deletes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_profile_key_or_field_names_the_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_refuses_what_does_not_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_refuses_deep_traits_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_profile_refuses_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_holds_many_users_and_frees_them, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
