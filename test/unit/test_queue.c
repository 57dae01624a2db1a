/*
 * test_queue.c - the bounded in-memory queue between ue_track() and the background thread:
 * each full-queue policy, both bounds, batch popping, the dropped records kept for the delivery
 * callback; then the same through the public API, where the drops show in ue_stat().
 */
#include "client.h"
#include "queue.h"
#include "record.h"
#include "testutil.h"
#include "uc_time.h"
#include "userevents.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A record whose key is "k<n>" and whose payload is @p payload_len bytes of @p n. */
static ue__record_t *rec_new(int n, size_t payload_len)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%d", n);
    ue__record_t *r = ue__record_new("t", 1, key, (size_t)klen, payload_len);
    assert_non_null(r);
    memset(ue__record_payload(r), n & 0xff, payload_len);
    return r;
}

/* The number in the key of @p r ("k<n>"). */
static int rec_n(const ue__record_t *r)
{
    return atoi(ue__record_key(r) + 1);
}

/* Asserts that @p list holds the records numbered @p want[0..n) in that order, and frees it. */
static void assert_list(ue__record_t *list, const int *want, size_t n)
{
    size_t i = 0;
    for (ue__record_t *r = list; r; r = r->next, i++) {
        if (i >= n)
            fail_msg("more than %zu records", n);
        assert_int_equal(rec_n(r), want[i]);
    }
    assert_int_equal(i, n);
    ue__record_free_list(list);
}

/* Takes everything queued (no waiting). */
static ue__record_t *pop_all(ue__queue_t *q, size_t *n)
{
    return ue__queue_pop_batch(q, SIZE_MAX, SIZE_MAX, 0, 0, n);
}

static void test_queue_drop_newest_refuses_and_keeps_count_bounded(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 3, 1 << 20, UE__FULL_DROP_NEWEST, 0, 16), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), 0);
    for (int i = 4; i <= 6; i++) {
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), -1);
        assert_int_equal(ue__queue_count(&q), 3);
    }
    assert_list(pop_all(&q, &n), (int[]){1, 2, 3}, 3);
    assert_list(ue__queue_take_dropped(&q), (int[]){4, 5, 6}, 3);
    assert_int_equal(ue__queue_push(&q, rec_new(7, 10)), 0); /* room again after the pop */
    ue__queue_destroy(&q);
}

static void test_queue_drop_oldest_evicts_oldest(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 3, 1 << 20, UE__FULL_DROP_OLDEST, 0, 16), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(4, 10)), 1);
    assert_int_equal(ue__queue_push(&q, rec_new(5, 10)), 1);
    assert_int_equal(ue__queue_count(&q), 3);
    assert_list(pop_all(&q, &n), (int[]){3, 4, 5}, 3);
    assert_int_equal(n, 3);
    assert_list(ue__queue_take_dropped(&q), (int[]){1, 2}, 2);
    ue__queue_destroy(&q);
}

static void test_queue_drop_oldest_reports_every_eviction(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    ue__record_t *probe = rec_new(0, 100);
    size_t small = ue__record_size(probe);
    free(probe);
    /* room for four small records; a big one needs the room of three */
    assert_int_equal(ue__queue_init(&q, 100, 4 * small, UE__FULL_DROP_OLDEST, 0, 16), 0);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 100)), 0);
    ue__record_t *big = rec_new(5, 100 + 2 * small);
    assert_true(ue__record_size(big) > 2 * small && ue__record_size(big) <= 3 * small);
    /* the caller learns how many accepted events it lost: three, not one */
    assert_int_equal(ue__queue_push(&q, big), 3);
    assert_list(pop_all(&q, &n), (int[]){4, 5}, 2);
    assert_list(ue__queue_take_dropped(&q), (int[]){1, 2, 3}, 3);
    ue__queue_destroy(&q);
}

static void test_queue_byte_bound_refuses_when_full(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    ue__record_t *probe = rec_new(0, 200);
    size_t size = ue__record_size(probe);
    free(probe);
    assert_int_equal(ue__queue_init(&q, 1000, 3 * size, UE__FULL_DROP_NEWEST, 0, 16), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 200)), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(4, 200)), -1);
    assert_int_equal(ue__queue_push(&q, rec_new(5, 1)), -1); /* not even a small one */
    assert_int_equal(q.bytes, 3 * size);
    assert_list(pop_all(&q, &n), (int[]){1, 2, 3}, 3);
    assert_int_equal(q.bytes, 0);
    /* a record larger than the whole budget still passes into an empty queue */
    assert_int_equal(ue__queue_push(&q, rec_new(6, 10 * size)), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(7, 1)), -1);
    assert_list(pop_all(&q, &n), (int[]){6}, 1);
    ue__record_free_list(ue__queue_take_dropped(&q));
    ue__queue_destroy(&q);
}

static void test_queue_block_times_out_then_refuses(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 1, 1 << 20, UE__FULL_BLOCK, 50, 16), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(1, 10)), 0);
    int64_t start = uc__mono_ms();
    assert_int_equal(ue__queue_push(&q, rec_new(2, 10)), -1);
    int64_t waited = uc__mono_ms() - start;
    assert_true(waited >= 49);
    assert_true(waited < 5000);
    assert_int_equal(ue__queue_count(&q), 1);
    assert_list(pop_all(&q, &n), (int[]){1}, 1);
    assert_list(ue__queue_take_dropped(&q), (int[]){2}, 1);
    ue__queue_destroy(&q);
}

/* ---- block: a consumer makes room while a producer waits -------------------------------- */

typedef struct blocked_push {
    ue__queue_t *q;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started;
    pid_t tid;
    int rc;
} blocked_push_t;

static void *producer_main(void *arg)
{
    blocked_push_t *bp = arg;
    ue__record_t *r = rec_new(2, 10);
    pthread_mutex_lock(&bp->lock);
    bp->tid = gettid();
    bp->started = 1;
    pthread_cond_signal(&bp->cond);
    pthread_mutex_unlock(&bp->lock);
    bp->rc = ue__queue_push(bp->q, r);
    return NULL;
}

/* 1 once thread @p arg (a blocked_push_t) sleeps in the kernel: waiting for room. */
static int producer_sleeps(void *arg)
{
    blocked_push_t *bp = arg;
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)bp->tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1; /* no /proc: the test still holds, just without the ordering guarantee */
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')'); /* "tid (comm) S ..." */
    return p && p[1] == ' ' && p[2] == 'S';
}

static void test_queue_block_succeeds_when_consumer_pops(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    pthread_t th;
    blocked_push_t bp = {
        .q = &q, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    assert_int_equal(ue__queue_init(&q, 1, 1 << 20, UE__FULL_BLOCK, 30000, 16), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(1, 10)), 0);

    int64_t start = uc__mono_ms();
    assert_int_equal(pthread_create(&th, NULL, producer_main, &bp), 0);
    pthread_mutex_lock(&bp.lock);
    while (!bp.started)
        pthread_cond_wait(&bp.cond, &bp.lock);
    pthread_mutex_unlock(&bp.lock);
    tu_wait_until(producer_sleeps, &bp, 5000); /* the producer waits for room now */

    assert_list(ue__queue_pop_batch(&q, 1, SIZE_MAX, 0, 0, &n), (int[]){1}, 1);
    pthread_join(th, NULL);
    assert_int_equal(bp.rc, 0);
    assert_true(uc__mono_ms() - start < 10000); /* woken by the pop, not by its timeout */
    assert_list(pop_all(&q, &n), (int[]){2}, 1);
    assert_null(ue__queue_take_dropped(&q));
    ue__queue_destroy(&q);
}

/* ---- popping ------------------------------------------------------------------------------ */

static void test_queue_pop_batch_respects_max_count_and_order(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 100, 1 << 20, UE__FULL_DROP_NEWEST, 0, 0), 0);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), 0);
    assert_list(ue__queue_pop_batch(&q, 4, SIZE_MAX, 0, 0, &n), (int[]){1, 2, 3, 4}, 4);
    assert_int_equal(n, 4);
    assert_int_equal(ue__queue_count(&q), 6);
    assert_list(ue__queue_pop_batch(&q, 4, SIZE_MAX, 0, 0, &n), (int[]){5, 6, 7, 8}, 4);
    assert_list(ue__queue_pop_batch(&q, 4, SIZE_MAX, 0, 0, &n), (int[]){9, 10}, 2);
    assert_int_equal(n, 2);
    assert_null(ue__queue_pop_batch(&q, 4, SIZE_MAX, 0, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(q.bytes, 0);
    ue__queue_destroy(&q);
}

static void test_queue_pop_batch_respects_max_bytes(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    ue__record_t *probe = rec_new(0, 100);
    size_t size = ue__record_size(probe);
    free(probe);
    assert_int_equal(ue__queue_init(&q, 100, 1 << 20, UE__FULL_DROP_NEWEST, 0, 0), 0);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 100)), 0);
    assert_list(ue__queue_pop_batch(&q, 100, 2 * size + size / 2, 0, 0, &n), (int[]){1, 2}, 2);
    assert_list(ue__queue_pop_batch(&q, 100, 2 * size, 0, 0, &n), (int[]){3, 4}, 2);
    /* the first record is taken even when it alone exceeds the byte limit */
    assert_list(ue__queue_pop_batch(&q, 100, 1, 0, 0, &n), (int[]){5}, 1);
    ue__queue_destroy(&q);
}

static void test_queue_pop_batch_idle_wait_ends_empty_or_on_wakeup(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n = 99;
    assert_int_equal(ue__queue_init(&q, 100, 1 << 20, UE__FULL_DROP_NEWEST, 0, 0), 0);
    int64_t start = uc__mono_ms();
    assert_null(ue__queue_pop_batch(&q, 10, SIZE_MAX, 20, 0, &n));
    assert_int_equal(n, 0);
    assert_true(uc__mono_ms() - start >= 19);

    ue__queue_wakeup(&q); /* a flush asked: neither wait happens */
    start = uc__mono_ms();
    assert_null(ue__queue_pop_batch(&q, 10, SIZE_MAX, 30000, 30000, &n));
    assert_true(uc__mono_ms() - start < 10000);

    assert_int_equal(ue__queue_push(&q, rec_new(1, 10)), 0);
    ue__queue_wakeup(&q);
    start = uc__mono_ms();
    assert_list(ue__queue_pop_batch(&q, 10, SIZE_MAX, 30000, 30000, &n), (int[]){1}, 1);
    assert_true(uc__mono_ms() - start < 10000);
    ue__queue_destroy(&q);
}

static void test_queue_pop_batch_lingers_until_batch_is_full(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 100, 1 << 20, UE__FULL_DROP_NEWEST, 0, 0), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), 0);
    int64_t start = uc__mono_ms();
    /* the batch is already full: no lingering despite a long linger time */
    assert_list(ue__queue_pop_batch(&q, 3, SIZE_MAX, 0, 30000, &n), (int[]){1, 2, 3}, 3);
    assert_true(uc__mono_ms() - start < 10000);
    assert_int_equal(ue__queue_push(&q, rec_new(4, 10)), 0);
    start = uc__mono_ms();
    assert_list(ue__queue_pop_batch(&q, 3, SIZE_MAX, 0, 20, &n), (int[]){4}, 1);
    assert_true(uc__mono_ms() - start >= 19); /* lingered for more */
    ue__queue_destroy(&q);
}

static void test_queue_keeps_dropped_up_to_dropped_max(void **state)
{
    (void)state;
    ue__queue_t q;
    size_t n;
    assert_int_equal(ue__queue_init(&q, 1, 1 << 20, UE__FULL_DROP_NEWEST, 0, 2), 0);
    assert_int_equal(ue__queue_push(&q, rec_new(1, 10)), 0);
    for (int i = 2; i <= 6; i++) /* the ones past the bound are freed (ASan: no leak) */
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), -1);
    assert_list(ue__queue_take_dropped(&q), (int[]){2, 3}, 2);
    assert_null(ue__queue_take_dropped(&q));
    assert_int_equal(ue__queue_push(&q, rec_new(7, 10)), -1); /* room kept again after take */
    assert_list(ue__queue_take_dropped(&q), (int[]){7}, 1);
    assert_list(pop_all(&q, &n), (int[]){1}, 1);
    ue__queue_destroy(&q);
}

static void test_queue_dropped_max_zero_keeps_none(void **state)
{
    (void)state;
    ue__queue_t q;
    assert_int_equal(ue__queue_init(&q, 1, 1 << 20, UE__FULL_DROP_OLDEST, 0, 0), 0);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(ue__queue_push(&q, rec_new(i, 10)), i == 1 ? 0 : 1);
    assert_null(ue__queue_take_dropped(&q));
    ue__queue_destroy(&q); /* frees the queued record: ASan checks */
}

static void test_queue_destroy_frees_queued_and_dropped(void **state)
{
    (void)state;
    ue__queue_t q;
    assert_int_equal(ue__queue_init(&q, 2, 1 << 20, UE__FULL_DROP_NEWEST, 0, 8), 0);
    for (int i = 1; i <= 5; i++)
        ue__queue_push(&q, rec_new(i, 10));
    ue__queue_destroy(&q);
}

/* ---- through the public API -------------------------------------------------------------- */

/*
 * A client that can never send: no broker, librdkafka takes one message, and the background
 * thread takes one event per batch. So at most two events leave the queue of @p max events.
 */
#define STUCK_CLIENT(policy, max)                                                                  \
    TU_NO_BROKER, "kafka.queue.buffering.max.messages=1", "batch.max.events=1", "linger.ms=0",     \
        "queue.max.events=" max, "queue.full.policy=" policy, "shutdown.timeout.ms=20"

static ue_event_t *small_event(void)
{
    ue_event_t *ev = ue_event_new("page_view");
    assert_non_null(ev);
    assert_int_equal(ue_event_set_user_id(ev, "u1"), UE_OK);
    return ev;
}

typedef struct dropped_wait {
    tu_dr_t *dr;
    int64_t want;
} dropped_wait_t;

static int queue_full_reported(void *arg)
{
    dropped_wait_t *w = arg;
    return atomic_load(&w->dr->queue_full) >= w->want;
}

static void test_client_counts_queue_full_drops(void **state)
{
    (void)state;
    tu_dr_t dr = {0};
    const char *kv[] = {STUCK_CLIENT("drop_newest", "5"), NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    ue_event_t *ev = small_event();
    int64_t ok = 0, full = 0;
    for (int i = 0; i < 20; i++) {
        ue_err_t err = ue_track(c, ev);
        assert_true(err == UE_OK || err == UE_ERR_QUEUE_FULL);
        *(err == UE_OK ? &ok : &full) += 1;
    }
    assert_true(ok >= 5 && ok <= 7);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), ok);
    assert_int_equal(ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL), full);
    assert_true(ue_stat(c, UE_STAT_QUEUED) <= 5);
    assert_true(ue_stat(c, UE_STAT_QUEUED_BYTES) > 0);
    /* every refused event is reported to the delivery callback too */
    dropped_wait_t w = {&dr, full};
    assert_true(tu_wait_until(queue_full_reported, &w, 5000));
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DROPPED), full);

    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    /* without a spool the accepted ones are dropped at shutdown, each reported */
    assert_int_equal(atomic_load(&dr.shutdown), ok);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 0);
}

static void test_client_drop_oldest_counts_evictions(void **state)
{
    (void)state;
    tu_dr_t dr = {0};
    const char *kv[] = {STUCK_CLIENT("drop_oldest", "5"), NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    ue_event_t *ev = small_event();
    for (int i = 0; i < 20; i++)
        assert_int_equal(ue_track(c, ev), UE_OK); /* the new one always gets in */
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 20);
    int64_t dropped = ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL);
    assert_true(dropped >= 20 - 7 && dropped <= 20 - 5);
    dropped_wait_t w = {&dr, dropped};
    assert_true(tu_wait_until(queue_full_reported, &w, 5000));
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(atomic_load(&dr.queue_full), dropped);
    assert_int_equal(atomic_load(&dr.shutdown), 20 - dropped);
}

static void test_client_drop_oldest_counts_multi_eviction(void **state)
{
    (void)state;
    tu_dr_t dr = {0};
    const char *kv[] = {TU_NO_BROKER,
                        "kafka.queue.buffering.max.messages=1",
                        "batch.max.events=1",
                        "linger.ms=0",
                        "queue.max.bytes=2048",
                        "queue.full.policy=drop_oldest",
                        "shutdown.timeout.ms=20",
                        NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    ue_event_t *ev = small_event();
    char big[1500];
    for (int i = 0; i < 30; i++)
        assert_int_equal(ue_track(c, ev), UE_OK);
    /* one big event evicts several small ones; each is a drop */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ue_event_prop_string(ev, "blob", big), UE_OK);
    assert_int_equal(ue_track(c, ev), UE_OK);
    int64_t dropped = ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL);
    dropped_wait_t w = {&dr, dropped};
    assert_true(tu_wait_until(queue_full_reported, &w, 5000));
    /* what the callback was told equals what the statistics say */
    assert_int_equal(atomic_load(&dr.queue_full), dropped);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(atomic_load(&dr.shutdown) + atomic_load(&dr.queue_full), 31);
}

static void test_client_block_policy_times_out(void **state)
{
    (void)state;
    const char *kv[] = {STUCK_CLIENT("block", "3"), "queue.block.timeout.ms=30", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    ue_event_t *ev = small_event();
    ue_err_t err = UE_OK;
    int i;
    for (i = 0; i < 20 && err == UE_OK; i++) {
        int64_t start = uc__mono_ms();
        err = ue_track(c, ev);
        if (err == UE_ERR_QUEUE_FULL)
            assert_true(uc__mono_ms() - start >= 29); /* waited for room first */
    }
    assert_int_equal(err, UE_ERR_QUEUE_FULL);
    assert_int_equal(ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL), 1);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), i - 1);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_drop_newest_refuses_and_keeps_count_bounded),
        cmocka_unit_test(test_queue_drop_oldest_evicts_oldest),
        cmocka_unit_test(test_queue_drop_oldest_reports_every_eviction),
        cmocka_unit_test(test_queue_byte_bound_refuses_when_full),
        cmocka_unit_test(test_queue_block_times_out_then_refuses),
        cmocka_unit_test(test_queue_block_succeeds_when_consumer_pops),
        cmocka_unit_test(test_queue_pop_batch_respects_max_count_and_order),
        cmocka_unit_test(test_queue_pop_batch_respects_max_bytes),
        cmocka_unit_test(test_queue_pop_batch_idle_wait_ends_empty_or_on_wakeup),
        cmocka_unit_test(test_queue_pop_batch_lingers_until_batch_is_full),
        cmocka_unit_test(test_queue_keeps_dropped_up_to_dropped_max),
        cmocka_unit_test(test_queue_dropped_max_zero_keeps_none),
        cmocka_unit_test(test_queue_destroy_frees_queued_and_dropped),
        cmocka_unit_test(test_client_counts_queue_full_drops),
        cmocka_unit_test(test_client_drop_oldest_counts_evictions),
        cmocka_unit_test(test_client_drop_oldest_counts_multi_eviction),
        cmocka_unit_test(test_client_block_policy_times_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
