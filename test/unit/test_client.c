/*
 * test_client.c - the public client API end to end, without a real broker: concurrent
 * ue_track(), flush deadlines, what destroy does with unsent events (spool: kept for the next
 * process; no spool: reported dropped), fork safety, re-entrant calls from the delivery
 * callback, deliveries through librdkafka's in-process mock cluster, statistics, errors.
 */
#include "client.h"
#include "transport_kafka.h"
#include "testutil.h"
#include "uc_time.h"
#include "userevents.h"

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* librdkafka's in-process mock cluster: deliveries without any network service. */
#define MOCK_BROKER "kafka.test.mock.num.brokers=1"

static ue_event_t *event_for(const char *type, int user)
{
    char uid[32];
    ue_event_t *ev = ue_event_new(type);
    assert_non_null(ev);
    snprintf(uid, sizeof(uid), "user-%d", user);
    assert_int_equal(ue_event_set_user_id(ev, uid), UE_OK);
    assert_int_equal(ue_event_prop_int(ev, "n", user), UE_OK);
    return ev;
}

/* ---- a set of event ids, filled by the delivery callback --------------------------------- */

#define MAX_IDS 512

typedef struct id_log {
    pthread_mutex_t lock;
    size_t n;
    uint8_t ids[MAX_IDS][16];
    ue_outcome_t outcomes[MAX_IDS];
    _Atomic(ue_client_t *) client; /* for the re-entrancy test */
    _Atomic int destroy_rc, flush_rc, track_rc, reentered;
} id_log_t;

static void id_log_init(id_log_t *log)
{
    memset(log, 0, sizeof(*log));
    pthread_mutex_init(&log->lock, NULL);
}

static void log_cb(const uint8_t *event_id, const char *type, ue_outcome_t outcome, ue_err_t reason,
                   const char *reason_str, void *opaque)
{
    id_log_t *log = opaque;
    (void)type;
    (void)reason;
    (void)reason_str;
    pthread_mutex_lock(&log->lock);
    if (log->n < MAX_IDS) {
        memcpy(log->ids[log->n], event_id, 16);
        log->outcomes[log->n] = outcome;
        log->n++;
    }
    pthread_mutex_unlock(&log->lock);
}

/* Asserts that @p log holds exactly the ids @p want[0..n), each once, all DELIVERED. */
static void assert_delivered_exactly(id_log_t *log, uint8_t (*want)[16], size_t n)
{
    pthread_mutex_lock(&log->lock);
    assert_int_equal(log->n, n);
    for (size_t i = 0; i < n; i++) {
        size_t seen = 0;
        for (size_t j = 0; j < log->n; j++) {
            if (memcmp(log->ids[j], want[i], 16) == 0) {
                seen++;
                assert_int_equal(log->outcomes[j], UE_OUTCOME_DELIVERED);
            }
        }
        if (seen != 1)
            fail_msg("event %zu reported %zu times", i, seen);
    }
    pthread_mutex_unlock(&log->lock);
}

/* ---- threads ------------------------------------------------------------------------------ */

enum { TRACK_THREADS = 8, PER_THREAD = 2000 };

typedef struct track_job {
    ue_client_t *c;
    int index, ok, other;
} track_job_t;

static void *track_main(void *arg)
{
    track_job_t *job = arg;
    ue_event_t *ev = ue_event_new("page_view");
    char uid[32];
    for (int i = 0; i < PER_THREAD; i++) {
        ue_event_reset(ev, i % 2 ? "page_view" : "click");
        ue_event_prop_int(ev, "i", i);
        if (i % 100 == 0) { /* identify concurrently with other threads' track */
            snprintf(uid, sizeof(uid), "user-%d-%d", job->index, i);
            ue_identify(job->c, uid);
        }
        if (ue_track(job->c, ev) == UE_OK)
            job->ok++;
        else
            job->other++;
    }
    ue_event_destroy(ev);
    return NULL;
}

static void test_client_track_from_threads_counts_add_up(void **state)
{
    (void)state;
    tu_dr_t dr = {0};
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=50", NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    pthread_t th[TRACK_THREADS];
    track_job_t jobs[TRACK_THREADS];
    for (int t = 0; t < TRACK_THREADS; t++) {
        jobs[t] = (track_job_t){.c = c, .index = t};
        assert_int_equal(pthread_create(&th[t], NULL, track_main, &jobs[t]), 0);
    }
    int ok = 0;
    for (int t = 0; t < TRACK_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].other, 0);
        ok += jobs[t].ok;
    }
    assert_int_equal(ok, TRACK_THREADS * PER_THREAD);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), ok);
    assert_int_equal(ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    /* without a spool every one of them is reported dropped at shutdown: none vanishes */
    assert_int_equal(atomic_load(&dr.shutdown), ok);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DROPPED), ok);
}

/* ---- flush and destroy -------------------------------------------------------------------- */

static void test_client_flush_times_out_when_nothing_can_be_delivered(void **state)
{
    (void)state;
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    int64_t start = uc__mono_ms();
    assert_int_equal(ue_flush(c, 5000), UE_OK); /* nothing tracked: nothing to wait for */
    assert_true(uc__mono_ms() - start < 4000);

    ue_event_t *ev = event_for("page_view", 1);
    assert_int_equal(ue_track(c, ev), UE_OK);
    start = uc__mono_ms();
    assert_int_equal(ue_flush(c, 200), UE_ERR_TIMED_OUT);
    int64_t waited = uc__mono_ms() - start;
    assert_true(waited >= 199);
    assert_true(waited < 5000);
    assert_int_equal(ue_flush(c, 0), UE_ERR_TIMED_OUT);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

static void test_client_destroy_without_spool_reports_dropped(void **state)
{
    (void)state;
    tu_dr_t dr = {0};
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=30", NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    ue_event_t *ev = event_for("click", 3);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ue_track(c, ev), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DROPPED_SHUTDOWN), 0);
    int64_t start = uc__mono_ms();
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_true(uc__mono_ms() - start < 5000); /* the deadline bounds destroy */
    assert_int_equal(atomic_load(&dr.shutdown), 10);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 0);
    ue_event_destroy(ev);
}

typedef struct stat_wait {
    ue_client_t *c;
    ue_stat_t which;
    int64_t want;
} stat_wait_t;

static int stat_reached(void *arg)
{
    stat_wait_t *w = arg;
    return ue_stat(w->c, w->which) >= w->want;
}

static void test_client_destroy_keeps_unsent_events_in_spool(void **state)
{
    (void)state;
    enum { N = 25 };
    char *dir = tu_tempdir("ue-client-spool");
    char spool_kv[4200];
    uint8_t ids[N][16];
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);

    /* 1: no broker. Everything tracked ends up on disk, nothing is reported lost. */
    tu_dr_t dr = {0};
    const char *kv1[] = {TU_NO_BROKER, spool_kv, "shutdown.timeout.ms=30", NULL};
    ue_client_t *c = tu_client(kv1, tu_dr_cb, &dr);
    for (int i = 0; i < N; i++) {
        ue_event_t *ev = event_for(i % 2 ? "page_view" : "click", i % 5);
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, ids[i]), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_client_destroy(c), UE_OK);
    for (int o = 0; o < 4; o++)
        assert_int_equal(tu_dr_get(&dr, (ue_outcome_t)o), 0);

    /* 2: still no broker. The new process finds them all and replays them. */
    const char *kv2[] = {TU_NO_BROKER, spool_kv, "shutdown.timeout.ms=30", NULL};
    c = tu_client(kv2, NULL, NULL);
    stat_wait_t spooled = {c, UE_STAT_SPOOLED, N}, replayed = {c, UE_STAT_REPLAYED, N};
    assert_true(tu_wait_until(stat_reached, &spooled, 5000));
    assert_true(tu_wait_until(stat_reached, &replayed, 5000));
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), N);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 0);
    assert_int_equal(ue_flush(c, 50), UE_ERR_TIMED_OUT); /* replayed events count for flush */
    assert_int_equal(ue_client_destroy(c), UE_OK);

    /* 3: a broker at last. Exactly the ids of process 1 are delivered, each once. */
    id_log_t log;
    id_log_init(&log);
    ue_conf_t *conf = tu_conf((const char *const[]){MOCK_BROKER, spool_kv, NULL});
    char errstr[512];
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    ue_conf_set_delivery_cb(conf, log_cb, &log);
    c = ue_client_new(conf, errstr, sizeof(errstr));
    assert_non_null(c);
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), N);
    assert_delivered_exactly(&log, ids, N);
    assert_int_equal(ue_client_destroy(c), UE_OK);

    /* 4: and then the spool is empty */
    c = tu_client(kv2, NULL, NULL);
    assert_int_equal(ue_flush(c, 0), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    pthread_mutex_destroy(&log.lock);
    tu_rmrf(dir);
    free(dir);
}

/* A client's anonymous id with @p extra settings on spool directory @p dir (NULL: none), into
 * @p out. */
static void anonymous_id_of(const char *dir, const char *extra, char out[64])
{
    char spool_kv[4200];
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir ? dir : "");
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", dir ? spool_kv : extra,
                        dir ? extra : NULL, NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    snprintf(out, 64, "%s", ue_anonymous_id(c));
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

/* Guarantee: with a spool, a device stays one anonymous user: a restarted client on the same
 * directory has the same anonymous id, another directory another one; anonymous.id wins; a
 * file that holds no id, or a symbolic link in its place (followed by nothing), gets a new id
 * written in its place; without a spool each client has a new id. */
static void test_client_anonymous_id_persists_in_the_spool(void **state)
{
    (void)state;
    char *dir = tu_tempdir("ue-client-anon"), *other = tu_tempdir("ue-client-anon2");
    char a[64], b[64], path[4200], target[4200];
    anonymous_id_of(dir, NULL, a);
    assert_int_equal(strlen(a), 36);
    anonymous_id_of(dir, NULL, b);
    assert_string_equal(a, b); /* the restart kept it */
    anonymous_id_of(other, NULL, b);
    assert_string_not_equal(a, b);
    anonymous_id_of(dir, "anonymous.id=device-7", b);
    assert_string_equal(b, "device-7");
    anonymous_id_of(dir, NULL, b);
    assert_string_equal(a, b); /* and the configured one changed nothing on disk */

    snprintf(path, sizeof(path), "%s/anonymous_id", dir);
    FILE *f = fopen(path, "w");
    fputs("not an id\n", f);
    fclose(f);
    anonymous_id_of(dir, NULL, b);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(b), 36);
    anonymous_id_of(dir, NULL, a);
    assert_string_equal(a, b); /* the new one is kept */

    snprintf(target, sizeof(target), "%s/elsewhere", other);
    f = fopen(target, "w");
    fputs("01234567-89ab-4cde-8f01-23456789abcd\n", f);
    fclose(f);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(target, path), 0);
    anonymous_id_of(dir, NULL, b);
    assert_string_not_equal(b, "01234567-89ab-4cde-8f01-23456789abcd"); /* not read through it */
    f = fopen(target, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "01234567-89ab-4cde-8f01-23456789abcd\n"); /* nor written */

    anonymous_id_of(NULL, NULL, a);
    anonymous_id_of(NULL, NULL, b);
    assert_string_not_equal(a, b);
    tu_rmrf(dir);
    tu_rmrf(other);
    free(dir);
    free(other);
}

static void test_client_second_client_on_same_spool_is_refused(void **state)
{
    (void)state;
    char *dir = tu_tempdir("ue-client-lock");
    char spool_kv[4200], errstr[512] = "";
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    const char *kv[] = {TU_NO_BROKER, spool_kv, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "in use"));
    ue_conf_destroy(conf); /* still ours after the failure */
    assert_int_equal(ue_client_destroy(c), UE_OK);
    tu_rmrf(dir);
    free(dir);
}

/* Tracks @p n events while no file may grow (a full disk: every spool append fails), then
 * calls ue_flush_spooled(@p timeout_ms) with the disk still full; returns what it said. */
static ue_err_t track_on_full_disk(ue_client_t *c, int n, int timeout_ms)
{
    struct rlimit old, none;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    none = old;
    none.rlim_cur = 0;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
    ue_event_t *ev = ue_event_new("spool_fail");
    for (int i = 0; i < n; i++)
        assert_int_equal(ue_track(c, ev), UE_OK);
    ue_err_t rc = ue_flush_spooled(c, timeout_ms);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    ue_event_destroy(ev);
    return rc;
}

/* A failed spool write is counted per event (UE_STAT_SPOOL_WRITE_FAILED). Its events are sent
 * on, and ue_flush_spooled() waits for their acknowledgement instead of the disk: UE_ERR_SPOOL
 * while no broker takes them (it said UE_OK when the write failed before the call), UE_OK
 * once one has. */
static void test_client_counts_failed_spool_writes(void **state)
{
    (void)state;
    char *dir = tu_tempdir("ue-client-spoolfail");
    char spool_kv[4200];
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    const char *down[] = {TU_NO_BROKER, spool_kv, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(down, NULL, NULL);
    assert_int_equal(track_on_full_disk(c, 10, 300), UE_ERR_SPOOL);
    assert_int_equal(ue_stat(c, UE_STAT_SPOOL_WRITE_FAILED), 10);
    assert_int_equal(ue_flush_spooled(c, 100), UE_ERR_SPOOL); /* still not safe */
    assert_int_equal(ue_client_destroy(c), UE_OK);

    const char *up[] = {MOCK_BROKER, spool_kv, NULL};
    c = tu_client(up, NULL, NULL);
    assert_int_equal(track_on_full_disk(c, 10, 20000), UE_OK); /* acknowledged: safe */
    assert_int_equal(ue_stat(c, UE_STAT_SPOOL_WRITE_FAILED), 10);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 10);
    assert_string_equal(ue_stat_name(UE_STAT_SPOOL_WRITE_FAILED), "spool_write_failed");
    assert_int_equal(ue_client_destroy(c), UE_OK);
    tu_rmrf(dir);
    free(dir);
}

static void test_client_counts_corrupt_spool_regions(void **state)
{
    (void)state;
    char *dir = tu_tempdir("ue-client-corrupt");
    char spool_kv[4200], path[4200];
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    snprintf(path, sizeof(path), "%s/00000000000000000001.seg", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a spool frame at all", f);
    fclose(f);
    const char *kv[] = {TU_NO_BROKER, spool_kv, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    assert_true(ue_stat(c, UE_STAT_SPOOL_CORRUPT) >= 1);
    assert_int_equal(ue_flush(c, 0), UE_OK); /* nothing of it is waited for */
    assert_int_equal(ue_client_destroy(c), UE_OK);
    tu_rmrf(dir);
    free(dir);
}

/* ---- fork --------------------------------------------------------------------------------- */

static void test_client_is_refused_in_forked_child(void **state)
{
    (void)state;
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=30", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    ue_event_t *ev = event_for("page_view", 1);
    assert_int_equal(ue_track(c, ev), UE_OK);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10); /* a hang in the child kills it: the parent sees a signal */
        int bad = 0;
        bad |= (ue_track(c, ev) != UE_ERR_FORKED) << 0;
        bad |= (ue_flush(c, 1000) != UE_ERR_FORKED) << 1;
        bad |= (ue_identify(c, "someone") != UE_ERR_FORKED) << 2;
        bad |= (ue_anonymous_id(c) == NULL) << 3;
        bad |= (ue_client_destroy(c) != UE_OK) << 4;
        _exit(bad); /* no exit handlers: the parent's objects are not ours to free */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (hang guard or crash)", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the parent's client is unaffected */
    assert_int_equal(ue_track(c, ev), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 2);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

/* ---- the delivery callback, with the mock cluster ---------------------------------------- */

static void reentrant_cb(const uint8_t *event_id, const char *type, ue_outcome_t outcome,
                         ue_err_t reason, const char *reason_str, void *opaque)
{
    id_log_t *log = opaque;
    log_cb(event_id, type, outcome, reason, reason_str, opaque);
    ue_client_t *c = atomic_load(&log->client);
    if (!c || atomic_exchange(&log->reentered, 1))
        return;
    atomic_store(&log->destroy_rc, ue_client_destroy(c));
    atomic_store(&log->flush_rc, ue_flush(c, 0));
    ue_event_t *ev = ue_event_new("from_callback");
    atomic_store(&log->track_rc, ev ? ue_track(c, ev) : UE_ERR_NOMEM); /* allowed */
    ue_event_destroy(ev);
}

static void test_client_destroy_and_flush_from_callback_are_refused(void **state)
{
    (void)state;
    id_log_t log;
    id_log_init(&log);
    const char *kv[] = {MOCK_BROKER, "shutdown.timeout.ms=2000", NULL};
    ue_client_t *c = tu_client(kv, reentrant_cb, &log);
    atomic_store(&log.client, c);
    ue_event_t *ev = event_for("page_view", 1);
    assert_int_equal(ue_track(c, ev), UE_OK);
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_int_equal(atomic_load(&log.reentered), 1);
    assert_int_equal(atomic_load(&log.destroy_rc), UE_ERR_RECURSIVE_CALL);
    assert_int_equal(atomic_load(&log.flush_rc), UE_ERR_RECURSIVE_CALL);
    assert_int_equal(atomic_load(&log.track_rc), UE_OK);
    /* the client survived the refused destroy, and the event tracked inside is delivered */
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 2);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 2);
    atomic_store(&log.client, NULL);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    pthread_mutex_destroy(&log.lock);
}

static void test_client_mock_cluster_delivers_every_event(void **state)
{
    (void)state;
    enum { N = 60 };
    uint8_t ids[N][16];
    id_log_t log;
    id_log_init(&log);
    const char *kv[] = {MOCK_BROKER, "topic.template=ut.{type}", NULL};
    ue_client_t *c = tu_client(kv, log_cb, &log);
    for (int i = 0; i < N; i++) {
        ue_event_t *ev = event_for(i % 3 ? "page_view" : "purchase", i % 7);
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, ids[i]), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_delivered_exactly(&log, ids, N);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), N);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), N);
    assert_true(ue_stat(c, UE_STAT_SENT) >= N);
    assert_true(ue_stat(c, UE_STAT_BYTES_SENT) > 0);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 0);
    assert_int_equal(ue_stat(c, UE_STAT_QUEUED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    pthread_mutex_destroy(&log.lock);
}

/* Guarantee: a fatal error of librdkafka's idempotent producer (seen after a broker was killed
 * with requests in flight) fails no event: a new producer sends what comes next, and the
 * spool keeps everything until it is delivered. (It used to fail every later event and take
 * it out of the spool: 267,859 of 1,000,000 lost in a chaos run.) */
static void test_client_replaces_a_producer_with_a_fatal_error(void **state)
{
    (void)state;
    enum { N = 80 };
    uint8_t ids[N][16];
    id_log_t log;
    id_log_init(&log);
    char *dir = tu_tempdir("ue-client-fatal");
    char spool_kv[4200];
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    const char *kv[] = {MOCK_BROKER, "topic.template=ut.{type}", spool_kv, NULL};
    ue_client_t *c = tu_client(kv, log_cb, &log);
    for (int i = 0; i < N; i++) {
        if (i == N / 2) { /* half delivered, then the producer fails for good */
            assert_int_equal(ue_flush(c, 20000), UE_OK);
            rd_kafka_t *rk = ue__transport_kafka_handle(c->transport);
            assert_int_equal(rd_kafka_test_fatal_error(
                                 rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "broker gone"),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        ue_event_t *ev = event_for("page_view", i % 7);
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, ids[i]), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_delivered_exactly(&log, ids, N);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 0);
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    pthread_mutex_destroy(&log.lock);
    tu_rmrf(dir);
    free(dir);
}

static void test_client_delivers_many_event_types(void **state)
{
    (void)state;
    enum { TYPES = 300 }; /* more than the transport caches topic handles for */
    tu_dr_t dr = {0};
    char type[32];
    const char *kv[] = {MOCK_BROKER, NULL};
    ue_client_t *c = tu_client(kv, tu_dr_cb, &dr);
    for (int i = 0; i < TYPES; i++) {
        snprintf(type, sizeof(type), "type_%d", i);
        ue_event_t *ev = ue_event_new(type);
        assert_int_equal(ue_track(c, ev), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_flush(c, 30000), UE_OK);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_FAILED), 0);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), TYPES);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), TYPES);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

/* Number of spool segment files in @p dir. */
static int segment_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static void test_client_spool_drains_after_delivery(void **state)
{
    (void)state;
    enum { N = 40 };
    char *dir = tu_tempdir("ue-client-drain");
    char spool_kv[4200];
    uint8_t ids[N][16];
    id_log_t log;
    id_log_init(&log);
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    const char *kv[] = {MOCK_BROKER, spool_kv, NULL};
    ue_client_t *c = tu_client(kv, log_cb, &log);
    for (int i = 0; i < N; i++) {
        ue_event_t *ev = event_for("page_view", i % 4);
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, ids[i]), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_delivered_exactly(&log, ids, N);
    /* acknowledged events leave the spool: no segment file is left */
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(segment_files(dir), 0);
    pthread_mutex_destroy(&log.lock);
    tu_rmrf(dir);
    free(dir);
}

static void test_client_spool_behind_mode_delivers_each_event_once(void **state)
{
    (void)state;
    enum { N = 400 };
    static uint8_t ids[N][16];
    char *dir = tu_tempdir("ue-client-behind");
    char spool_kv[4200];
    id_log_t log;
    id_log_init(&log);
    snprintf(spool_kv, sizeof(spool_kv), "spool.dir=%s", dir);
    /* librdkafka takes 5 messages at a time: the sender falls behind and reads back from disk */
    const char *kv[] = {MOCK_BROKER, spool_kv, "kafka.queue.buffering.max.messages=5",
                        "batch.max.events=16", NULL};
    ue_client_t *c = tu_client(kv, log_cb, &log);
    for (int i = 0; i < N; i++) {
        ue_event_t *ev = event_for(i % 2 ? "page_view" : "click", i % 9);
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, ids[i]), UE_OK);
        ue_event_destroy(ev);
    }
    assert_int_equal(ue_flush(c, 30000), UE_OK);
    assert_delivered_exactly(&log, ids, N);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), N);
    assert_int_equal(ue_stat(c, UE_STAT_REPLAYED), 0); /* read back, but not from a replay */
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(segment_files(dir), 0);
    pthread_mutex_destroy(&log.lock);
    tu_rmrf(dir);
    free(dir);
}

/* Holds a client's queue lock from another thread, as the background thread may at fork(). */
typedef struct lock_holder {
    pthread_mutex_t *target;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int held, release;
} lock_holder_t;

static void *holder_main(void *arg)
{
    lock_holder_t *h = arg;
    pthread_mutex_lock(h->target);
    pthread_mutex_lock(&h->lock);
    h->held = 1;
    pthread_cond_broadcast(&h->cond);
    while (!h->release)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(h->target);
    return NULL;
}

static void test_client_stats_in_forked_child_do_not_hang(void **state)
{
    (void)state;
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    lock_holder_t h = {.target = &c->queue.lock,
                       .lock = PTHREAD_MUTEX_INITIALIZER,
                       .cond = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.held)
        pthread_cond_wait(&h.cond, &h.lock);
    pthread_mutex_unlock(&h.lock);

    pid_t pid = fork(); /* the child inherits the lock held by a thread it does not have */
    assert_true(pid >= 0);
    if (pid == 0) {
        char buf[2048];
        alarm(5);
        int bad = ue_stat(c, UE_STAT_QUEUED) < 0;
        bad |= ue_stats_json(c, buf, sizeof(buf)) == 0;
        bad |= ue_client_destroy(c) != UE_OK;
        _exit(bad);
    }
    pthread_mutex_lock(&h.lock);
    h.release = 1;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    pthread_join(th, NULL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d: ue_stat() hung on the parent's lock",
                 WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

/* ---- statistics, errors, version ---------------------------------------------------------- */

/* 1 when @p s is one flat JSON object of "name":integer members. */
static int flat_json_object(const char *s)
{
    if (*s++ != '{')
        return 0;
    for (;;) {
        if (*s++ != '"')
            return 0;
        while (*s && *s != '"')
            if (!(islower((unsigned char)*s) || *s == '_'))
                return 0;
            else
                s++;
        if (*s++ != '"' || *s++ != ':')
            return 0;
        if (*s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
        if (*s == ',') {
            s++;
            continue;
        }
        return s[0] == '}' && s[1] == '\0';
    }
}

static void test_client_stats_json_lists_every_stat(void **state)
{
    (void)state;
    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    ue_event_t *ev = event_for("page_view", 1);
    assert_int_equal(ue_track(c, ev), UE_OK);
    char buf[4096], small[16];
    size_t len = ue_stats_json(c, buf, sizeof(buf));
    assert_int_equal(len, strlen(buf));
    if (!flat_json_object(buf))
        fail_msg("not a flat JSON object: %s", buf);
    for (int i = 0; i < UE_STAT__CNT; i++) {
        const char *name = ue_stat_name((ue_stat_t)i);
        char key[64];
        assert_non_null(name);
        snprintf(key, sizeof(key), "\"%s\":", name);
        if (!strstr(buf, key))
            fail_msg("%s missing from %s", key, buf);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(name, ue_stat_name((ue_stat_t)j));
    }
    assert_non_null(strstr(buf, "\"tracked\":1"));
    /* like snprintf: the full length, a truncated but terminated copy */
    assert_int_equal(ue_stats_json(c, small, sizeof(small)), len);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(ue_stats_json(c, NULL, 0), len);
    assert_null(ue_stat_name(UE_STAT__CNT));
    assert_null(ue_stat_name((ue_stat_t)-1));
    assert_int_equal(ue_stat(c, UE_STAT__CNT), -1);
    assert_int_equal(ue_stat(c, (ue_stat_t)-1), -1);
    assert_int_equal(ue_stat(NULL, UE_STAT_TRACKED), -1);
    ue_event_destroy(ev);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

static void test_client_err2str_and_err2name_cover_every_code(void **state)
{
    (void)state;
    const ue_err_t codes[] = {UE_OK,
                              UE_ERR_INVALID_ARG,
                              UE_ERR_CONF_UNKNOWN,
                              UE_ERR_CONF_INVALID,
                              UE_ERR_NOMEM,
                              UE_ERR_QUEUE_FULL,
                              UE_ERR_TIMED_OUT,
                              UE_ERR_SPOOL,
                              UE_ERR_SPOOL_LOCKED,
                              UE_ERR_TRANSPORT,
                              UE_ERR_FORKED,
                              UE_ERR_RECURSIVE_CALL,
                              UE_ERR_ENCODE,
                              UE_ERR_TOO_LARGE,
                              UE_ERR_SHUTDOWN,
                              UE_ERR_SPOOL_FULL,
                              UE_ERR_SPOOL_EXPIRED,
                              UE_ERR_TYPE_RESERVED,
                              UE_ERR_BROKER,
                              UE_ERR_COLLECTOR};
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *name = ue_err2name(codes[i]), *str = ue_err2str(codes[i]);
        assert_non_null(name);
        assert_non_null(str);
        assert_int_equal(strncmp(name, "UE_", 3), 0);
        assert_string_not_equal(name, "UE_ERR_UNKNOWN");
        assert_string_not_equal(str, "unknown error");
        assert_true(strlen(str) > 0);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(name, ue_err2name(codes[j]));
            assert_string_not_equal(str, ue_err2str(codes[j]));
        }
    }
    assert_string_equal(ue_err2name(UE_ERR_QUEUE_FULL), "UE_ERR_QUEUE_FULL");
    assert_string_equal(ue_err2name(UE_OK), "UE_OK");
    /* every negative code from the first to the last is named: none was skipped */
    for (int code = UE_ERR_TYPE_RESERVED; code < 0; code++)
        assert_string_not_equal(ue_err2name((ue_err_t)code), "UE_ERR_UNKNOWN");
    const int unknown[] = {-18, -999, 3, 1000};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_string_equal(ue_err2name((ue_err_t)unknown[i]), "UE_ERR_UNKNOWN");
        assert_string_equal(ue_err2str((ue_err_t)unknown[i]), "unknown error");
    }
}

static void test_client_version_matches_header(void **state)
{
    (void)state;
    char expect[32];
    assert_int_equal(ue_version(), UE_VERSION);
    snprintf(expect, sizeof(expect), "%d.%d.%d", (UE_VERSION >> 24) & 0xff,
             (UE_VERSION >> 16) & 0xff, (UE_VERSION >> 8) & 0xff);
    assert_string_equal(ue_version_str(), expect);
}

static void test_client_null_args(void **state)
{
    (void)state;
    char buf[1024];
    assert_int_equal(ue_client_destroy(NULL), UE_OK);
    assert_int_equal(ue_flush(NULL, 0), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_identify(NULL, "x"), UE_ERR_INVALID_ARG);
    assert_null(ue_anonymous_id(NULL));
    assert_true(ue_stats_json(NULL, buf, sizeof(buf)) > 0); /* all zero, still well-formed */
    assert_true(flat_json_object(buf));

    const char *kv[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    assert_int_equal(ue_track(c, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_identify(c, NULL), UE_OK); /* clears */
    assert_int_equal(ue_identify(c, ""), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

static void test_client_anonymous_id(void **state)
{
    (void)state;
    const char *kv1[] = {TU_NO_BROKER, "anonymous.id=device-123", "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv1, NULL, NULL);
    assert_string_equal(ue_anonymous_id(c), "device-123");
    assert_int_equal(ue_client_destroy(c), UE_OK);

    const char *kv2[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    c = tu_client(kv2, NULL, NULL);
    ue_client_t *d = tu_client(kv2, NULL, NULL);
    const char *a = ue_anonymous_id(c);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4'); /* a random (v4) UUID */
    assert_string_not_equal(a, ue_anonymous_id(d));
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(ue_client_destroy(d), UE_OK);
}

/* ---- librdkafka's statistics, for a metrics endpoint ------------------------------------- */

/* Polls ue_kafka_stats_json() until it returns a document (or 10 s pass). */
static size_t wait_kafka_stats(ue_client_t *c, char *buf, size_t size)
{
    size_t len = 0;
    for (int i = 0; i < 200 && len == 0; i++) {
        len = ue_kafka_stats_json(c, buf, size);
        if (len == 0)
            usleep(50 * 1000);
    }
    return len;
}

static void test_client_kafka_stats_json_has_the_producers_brokers(void **state)
{
    (void)state;
    static char buf[1 << 20];
    char small[16];
    const char *kv[] = {MOCK_BROKER, "kafka.statistics.interval.ms=100", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    ue_event_t *ev = event_for("page_view", 1);
    assert_int_equal(ue_track(c, ev), UE_OK);
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    size_t len = wait_kafka_stats(c, buf, sizeof(buf));
    assert_true(len > 0 && len < sizeof(buf));
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "\"type\": \"producer\""));
    assert_non_null(strstr(buf, "\"brokers\":"));
    /* Too small a buffer: truncated and terminated, the full length returned, like snprintf. */
    size_t again = ue_kafka_stats_json(c, small, sizeof(small));
    assert_true(again >= sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, "{", 1);
    assert_true(ue_kafka_stats_json(c, NULL, 0) > 0); /* only measures */
    assert_int_equal(ue_client_destroy(c), UE_OK);
}

static void test_client_kafka_stats_json_is_empty_unless_statistics_are_on(void **state)
{
    (void)state;
    char buf[256] = "x";
    const char *kv[] = {MOCK_BROKER, NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    usleep(300 * 1000);
    assert_int_equal(ue_kafka_stats_json(c, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(ue_client_destroy(c), UE_OK);

    const char *http[] = {"transport=http", "http.url=http://127.0.0.1:1/v1/batch",
                          "kafka.statistics.interval.ms=100", "shutdown.timeout.ms=0", NULL};
    c = tu_client(http, NULL, NULL);
    usleep(300 * 1000);
    assert_int_equal(ue_kafka_stats_json(c, buf, sizeof(buf)), 0); /* not a Kafka transport */
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(ue_kafka_stats_json(NULL, buf, sizeof(buf)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_track_from_threads_counts_add_up),
        cmocka_unit_test(test_client_flush_times_out_when_nothing_can_be_delivered),
        cmocka_unit_test(test_client_destroy_without_spool_reports_dropped),
        cmocka_unit_test(test_client_destroy_keeps_unsent_events_in_spool),
        cmocka_unit_test(test_client_second_client_on_same_spool_is_refused),
        cmocka_unit_test(test_client_anonymous_id_persists_in_the_spool),
        cmocka_unit_test(test_client_counts_corrupt_spool_regions),
        cmocka_unit_test(test_client_counts_failed_spool_writes),
        cmocka_unit_test(test_client_is_refused_in_forked_child),
        cmocka_unit_test(test_client_destroy_and_flush_from_callback_are_refused),
        cmocka_unit_test(test_client_mock_cluster_delivers_every_event),
        cmocka_unit_test(test_client_replaces_a_producer_with_a_fatal_error),
        cmocka_unit_test(test_client_delivers_many_event_types),
        cmocka_unit_test(test_client_spool_drains_after_delivery),
        cmocka_unit_test(test_client_spool_behind_mode_delivers_each_event_once),
        cmocka_unit_test(test_client_stats_in_forked_child_do_not_hang),
        cmocka_unit_test(test_client_stats_json_lists_every_stat),
        cmocka_unit_test(test_client_kafka_stats_json_has_the_producers_brokers),
        cmocka_unit_test(test_client_kafka_stats_json_is_empty_unless_statistics_are_on),
        cmocka_unit_test(test_client_err2str_and_err2name_cover_every_code),
        cmocka_unit_test(test_client_version_matches_header),
        cmocka_unit_test(test_client_null_args),
        cmocka_unit_test(test_client_anonymous_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
