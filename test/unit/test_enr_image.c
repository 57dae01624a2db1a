/*
 * test_enr_image.c - a task's committed-state image (libenrich/src/image.c): what a commit
 * adds, what an abort forgets, deletes, and the replay order a compacted changelog would give.
 */
#include "image.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The replay as text: "key=value;" for each entry, in replay order. */
typedef struct seen {
    char text[4096];
} seen_t;

static void collect(void *opaque, const void *key, size_t key_len, const void *value,
                    size_t value_len)
{
    seen_t *s = opaque;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof(s->text) - used, "%.*s=%.*s;", (int)key_len, (const char *)key,
             (int)value_len, (const char *)value);
}

static const char *replay(const enr__image_t *im, seen_t *s)
{
    s->text[0] = '\0';
    enr__image_replay(im, collect, s);
    return s->text;
}

static void put(enr__image_t *im, const char *k, const char *v)
{
    assert_int_equal(enr__image_put(im, k, strlen(k), v, v ? strlen(v) : 0), 0);
}

static void stage(enr__image_t *im, const char *k, const char *v)
{
    assert_int_equal(enr__image_stage(im, k, strlen(k), v, v ? strlen(v) : 0), 0);
}

/* Guarantee: the replay gives the last value of each key, in the order of those last writes
 * (a compacted changelog's order); a delete removes the key. */
static void test_replay_is_the_compacted_changelog(void **state)
{
    (void)state;
    enr__image_t *im = enr__image_new(NULL);
    seen_t s;
    put(im, "a", "1");
    put(im, "b", "2");
    put(im, "c", "3");
    put(im, "a", "4"); /* rewritten: now the newest */
    put(im, "b", NULL);
    put(im, "e", ""); /* an empty value is a value, not a delete */
    assert_string_equal(replay(im, &s), "c=3;a=4;e=;");
    assert_int_equal(enr__image_count(im), 3);
    assert_int_equal(enr__image_bytes(im), 2 + 2 + 1);
    put(im, "zz", NULL); /* deleting what is not there changes nothing */
    assert_int_equal(enr__image_count(im), 3);
    enr__image_free(im);
}

/* Guarantee: staged writes change nothing until the commit, then enter in their order; an
 * abort forgets them and leaves the committed state as it was. */
static void test_commit_adds_and_discard_forgets_the_staged_writes(void **state)
{
    (void)state;
    enr__image_t *im = enr__image_new(NULL);
    seen_t s;
    put(im, "user/1", "x");
    put(im, "user/2", "y");
    stage(im, "user/1", "x2");
    stage(im, "user/2", NULL);
    stage(im, "user/3", "z");
    assert_string_equal(replay(im, &s), "user/1=x;user/2=y;");
    enr__image_discard(im);
    enr__image_commit(im); /* nothing staged any more */
    assert_string_equal(replay(im, &s), "user/1=x;user/2=y;");

    stage(im, "user/1", "x2");
    stage(im, "user/2", NULL);
    stage(im, "user/3", "z");
    stage(im, "user/1", "x3"); /* twice in one transaction: the last wins */
    enr__image_commit(im);
    assert_string_equal(replay(im, &s), "user/3=z;user/1=x3;");
    assert_true(enr__image_ok(im));
    enr__image_free(im);
}

/* Guarantee: many keys and large staged transactions (the staging buffer grows and is
 * returned after a big one) keep every entry. */
static void test_many_keys(void **state)
{
    (void)state;
    enr__image_t *im = enr__image_new(NULL);
    char k[32], v[600];
    memset(v, 'v', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "k/%d", i);
        stage(im, k, i % 7 ? v : NULL);
    }
    enr__image_commit(im);
    int expected = 0;
    for (int i = 0; i < 20000; i++)
        expected += i % 7 != 0;
    assert_int_equal(enr__image_count(im), (size_t)expected);
    for (int i = 0; i < 20000; i += 2) {
        snprintf(k, sizeof(k), "k/%d", i);
        stage(im, k, NULL);
    }
    enr__image_commit(im);
    expected = 0;
    for (int i = 1; i < 20000; i += 2)
        expected += i % 7 != 0;
    assert_int_equal(enr__image_count(im), (size_t)expected);
    enr__image_free(im);
}

/* Guarantee: images of one processor hold at most their shared budget: the one that would go
 * past it gives up (says it is no longer the committed state, so its task rolls back from
 * Kafka) and returns what it held; the others keep their state; freeing returns the rest. */
static void test_the_budget_bounds_the_images_together(void **state)
{
    (void)state;
    enr__image_budget_t budget = {.max = 64 << 10, .used = 0};
    enr__image_t *small = enr__image_new(&budget), *big = enr__image_new(&budget);
    seen_t s;
    char k[32], v[1000];
    memset(v, 'v', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    put(small, "a", "1");
    size_t small_held = budget.used;
    assert_true(small_held > 0);
    int i = 0;
    for (; i < 1000; i++) {
        snprintf(k, sizeof(k), "big/%d", i);
        if (enr__image_put(big, k, strlen(k), v, strlen(v)))
            break;
        assert_true(budget.used <= budget.max);
    }
    assert_true(i > 10 && i < 1000); /* it held what fitted, then gave up */
    assert_false(enr__image_ok(big));
    assert_int_equal(enr__image_count(big), 0);
    assert_int_equal(budget.used, small_held); /* the big one returned everything */
    assert_int_equal(enr__image_stage(big, "x", 1, "y", 1), -1); /* and stays given up */
    assert_true(enr__image_ok(small));
    assert_string_equal(replay(small, &s), "a=1;");

    /* Staging counts too: a transaction too large for the budget gives up at commit time
     * at the latest, never holding more than the budget. */
    for (i = 0; i < 1000 && enr__image_ok(small); i++) {
        snprintf(k, sizeof(k), "s/%d", i);
        enr__image_stage(small, k, strlen(k), v, strlen(v));
        assert_true(budget.used <= budget.max);
    }
    assert_false(enr__image_ok(small));
    assert_int_equal(budget.used, 0);
    enr__image_free(big);
    enr__image_free(small);
    assert_int_equal(budget.used, 0);

    /* A budget of 0: no image holds anything (every rollback reads the changelog). */
    budget.max = 0;
    enr__image_t *none = enr__image_new(&budget);
    assert_int_equal(enr__image_put(none, "a", 1, "1", 1), -1);
    assert_false(enr__image_ok(none));
    enr__image_free(none);
    assert_int_equal(budget.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_is_the_compacted_changelog),
        cmocka_unit_test(test_commit_adds_and_discard_forgets_the_staged_writes),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_the_budget_bounds_the_images_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
