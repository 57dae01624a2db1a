/*
 * test_uuid7.c - event ids (UUIDv7, RFC 9562): layout, time, strict order within a process
 * (across threads too), uniqueness, the canonical text form, and distinct ids after fork().
 */
#include "testutil.h"
#include "uc_time.h"
#include "uc_uuid7.h"
#include "userevents.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

typedef uint8_t id_t16[16];

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int cmp_tail(const void *a, const void *b)
{
    return memcmp((const uint8_t *)a + 8, (const uint8_t *)b + 8, 8);
}

static void test_uuid7_sets_version_and_variant(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        uint8_t id[16];
        uc__uuid7_new(id);
        assert_int_equal(id[6] >> 4, 7); /* version 7 */
        assert_int_equal(id[8] >> 6, 2); /* variant 10 */
    }
}

static void test_uuid7_embeds_current_time(void **state)
{
    (void)state;
    uint8_t id[16];
    int64_t before = uc__wall_ms();
    uc__uuid7_new(id);
    int64_t after = uc__wall_ms();
    int64_t t = uc__uuid7_time_ms(id);
    assert_true(t >= before);
    /* the counter may carry into the timestamp after a burst of ids: allow a little lead */
    assert_true(t <= after + 1000);
}

static void test_uuid7_strictly_increasing_in_one_thread(void **state)
{
    (void)state;
    enum { N = 100000 };
    id_t16 *ids = malloc(N * sizeof(*ids));
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        uc__uuid7_new(ids[i]);
    for (int i = 1; i < N; i++)
        if (memcmp(ids[i - 1], ids[i], 16) >= 0)
            fail_msg("id %d is not greater than id %d", i, i - 1);
    free(ids);
}

enum { THREADS = 4, PER_THREAD = 50000 };

typedef struct gen_job {
    id_t16 *ids;
    int increasing;
} gen_job_t;

static void *gen_main(void *arg)
{
    gen_job_t *job = arg;
    job->increasing = 1;
    for (int i = 0; i < PER_THREAD; i++) {
        uc__uuid7_new(job->ids[i]);
        if (i > 0 && memcmp(job->ids[i - 1], job->ids[i], 16) >= 0)
            job->increasing = 0;
    }
    return NULL;
}

static void test_uuid7_unique_and_increasing_across_threads(void **state)
{
    (void)state;
    id_t16 *ids = malloc((size_t)THREADS * PER_THREAD * sizeof(*ids));
    pthread_t th[THREADS];
    gen_job_t jobs[THREADS];
    assert_non_null(ids);
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (gen_job_t){.ids = ids + (size_t)t * PER_THREAD};
        assert_int_equal(pthread_create(&th[t], NULL, gen_main, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_true(jobs[t].increasing);
    }
    qsort(ids, (size_t)THREADS * PER_THREAD, 16, cmp_id);
    for (size_t i = 1; i < (size_t)THREADS * PER_THREAD; i++)
        if (memcmp(ids[i - 1], ids[i], 16) == 0)
            fail_msg("duplicate id at sorted position %zu", i);
    free(ids);
}

static void test_uuid_format_is_canonical_lowercase(void **state)
{
    (void)state;
    const uint8_t id[16] = {0x01, 0x8f, 0x3a, 0xbc, 0xde, 0xf0, 0x7a, 0xbc,
                            0x8d, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    char out[37], pub[37];
    memset(out, 'X', sizeof(out));
    uc__uuid_format(id, out);
    assert_string_equal(out, "018f3abc-def0-7abc-8def-0123456789ab");
    ue_event_id_format(id, pub);
    assert_string_equal(pub, out);

    uint8_t fresh[16];
    uc__uuid7_new(fresh);
    uc__uuid_format(fresh, out);
    assert_int_equal(strlen(out), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(out[i], '-');
        else if (!strchr("0123456789abcdef", out[i]))
            fail_msg("'%c' at %d of %s", out[i], i, out);
    }
    assert_int_equal(out[14], '7');
    assert_non_null(strchr("89ab", out[19]));
}

static void test_random_bytes_are_not_constant(void **state)
{
    (void)state;
    uint8_t a[32], b[32], zero[32] = {0};
    uc__random_bytes(a, sizeof(a));
    uc__random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
}

enum { FORK_IDS = 1000 };

/* Reads exactly @p len bytes from @p fd; 0 or -1. */
static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void test_uuid7_child_after_fork_differs_from_parent(void **state)
{
    (void)state;
    static id_t16 parent[FORK_IDS], child[FORK_IDS];
    int fds[2];
    uint8_t warm[16];
    uc__uuid7_new(warm); /* this thread's random state exists before the fork */
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        for (int i = 0; i < FORK_IDS; i++)
            uc__uuid7_new(child[i]);
        ssize_t n = write(fds[1], child, sizeof(child));
        _exit(n == (ssize_t)sizeof(child) ? 0 : 1);
    }
    close(fds[1]);
    for (int i = 0; i < FORK_IDS; i++)
        uc__uuid7_new(parent[i]);
    assert_int_equal(read_all(fds[0], child, sizeof(child)), 0);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    for (int i = 1; i < FORK_IDS; i++)
        assert_true(memcmp(child[i - 1], child[i], 16) < 0);
    /* The two processes continue from the same counter, so only the random tail keeps them
     * apart: it must have been reseeded in the child. Compare tails, not whole ids. */
    qsort(parent, FORK_IDS, 16, cmp_tail);
    qsort(child, FORK_IDS, 16, cmp_tail);
    for (int i = 0, j = 0; i < FORK_IDS && j < FORK_IDS;) {
        int c = cmp_tail(parent[i], child[j]);
        if (c == 0)
            fail_msg("the child repeats the parent's random tail");
        if (c < 0)
            i++;
        else
            j++;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid7_sets_version_and_variant),
        cmocka_unit_test(test_uuid7_embeds_current_time),
        cmocka_unit_test(test_uuid7_strictly_increasing_in_one_thread),
        cmocka_unit_test(test_uuid7_unique_and_increasing_across_threads),
        cmocka_unit_test(test_uuid_format_is_canonical_lowercase),
        cmocka_unit_test(test_random_bytes_are_not_constant),
        cmocka_unit_test(test_uuid7_child_after_fork_differs_from_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
