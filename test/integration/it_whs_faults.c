/*
 * it_whs_faults.c - libwhsink under faults, against a real broker and real warehouses: the
 * sink process (build/whsinkd) SIGKILLed at random moments mid-stream several times and
 * restarted still ends with every event exactly once; a warehouse stopped mid-run (by
 * test/postgres.sh or test/clickhouse.sh stop-server) and started again makes the sink wait
 * and retry, and it ends with every event exactly once.
 *
 * WHS_IT_EVENTS (default 20000), WHS_IT_KILLS (default 5), WHS_IT_FILTER (cmocka glob).
 */
#include "whs_itwh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint64_t env_or(const char *name, uint64_t dflt)
{
    const char *e = getenv(name);
    return e && atoll(e) > 0 ? (uint64_t)atoll(e) : dflt;
}

static wt_opts_t stream(uint64_t n, uint32_t nonce)
{
    wt_opts_t o = {.nonce = nonce, .users = 300, .step_ms = (int64_t)(2.5 * 86400000 / n)};
    return o;
}

/* The whsinkd child of a SIGKILL test, so that its teardown kills it even after a failure. */
static pid_t running_child;

static pid_t spawn(wh_t *w, const char *topic, const char *log)
{
    running_child = wh_spawn(w, topic, "300", log);
    return running_child;
}

static int stop(pid_t pid, int sig)
{
    int status = wh_kill(pid, sig);
    running_child = 0;
    return status;
}

static int kill_running_child(void **state)
{
    (void)state;
    if (running_child > 0)
        stop(running_child, SIGKILL);
    return 0;
}

static uint32_t rnd(uint32_t below)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    return (uint32_t)rand_r(&seed) % below;
}

/* Proves: SIGKILL of the sink at random moments mid-stream (each kill aimed at a random row
 * count spread over the stream, then 0-30 ms more: small batches are being written all the
 * time, so it lands mid-batch), then a restart, several times: count(*) = N =
 * count(distinct event_id). */
static void sigkill_restarts_exactly_once(const char *kind)
{
    wh_t w;
    char topic[256], log[512];
    uint64_t n = env_or("WHS_IT_EVENTS", 20000), kills = env_or("WHS_IT_KILLS", 5);
    wt_opts_t o = stream(n, 21);
    wh_init(&w, kind, "kill");
    wh_topic(topic, sizeof(topic), kind, 3);
    wh_produce(topic, 0, n, &o);
    snprintf(log, sizeof(log), "%s/whsinkd-%s-%d.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             kind, getpid());
    int64_t before = 0;
    for (uint64_t k = 0; k < kills; k++) {
        pid_t pid = spawn(&w, topic, log);
        /* a target in this run's share of what is left, then a random moment more */
        int64_t share = ((int64_t)n - before) / (int64_t)(kills - k + 1);
        int64_t target = before + 1 + share / 3 + (int64_t)rnd((uint32_t)(share / 2 + 1));
        int64_t deadline = wh_now_ms() + 60000, have = before;
        while (have < target && wh_now_ms() < deadline) {
            wh_sleep_ms(5);
            have = wh_rows(&w);
        }
        wh_sleep_ms((int)rnd(30));
        int status = stop(pid, SIGKILL);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        before = wh_rows(&w);
        fprintf(stderr, "  %s: kill %llu at %lld rows\n", kind, (unsigned long long)k + 1,
                (long long)before);
        assert_true(before <= (int64_t)n);
    }
    pid_t pid = spawn(&w, topic, log);
    int64_t got = wh_wait_rows(&w, NULL, (int64_t)n, 180000, 2000);
    int status = stop(pid, SIGTERM);
    fprintf(stderr, "  %s: final run ended with %lld rows, exit status %d\n", kind, (long long)got,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* SIGTERM: a clean stop */
    wh_assert_exactly(&w, n, &o);
    unlink(log);
    wh_free(&w);
}

static void test_whs_sqlite_sigkill_restarts_exactly_once(void **state)
{
    (void)state;
    sigkill_restarts_exactly_once("sqlite");
}

static void test_whs_file_sigkill_restarts_exactly_once(void **state)
{
    (void)state;
    sigkill_restarts_exactly_once("file");
}

static void test_whs_postgres_sigkill_restarts_exactly_once(void **state)
{
    (void)state;
    sigkill_restarts_exactly_once("postgres");
}

static void test_whs_clickhouse_sigkill_restarts_exactly_once(void **state)
{
    (void)state;
    sigkill_restarts_exactly_once("clickhouse");
}

/* The server an outage test stopped, so that its teardown starts it even after a failure. */
static const char *stopped_script, *stopped_dir_env;

/* Runs "test/<script> ACTION --dir DIR"; fails the test when it fails. */
static void service(const char *script, const char *dir_env, const char *action)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "test/%s %s --dir '%s' >&2", script, action, getenv(dir_env));
    int stopping = strcmp(action, "stop-server") == 0;
    stopped_script = stopping ? script : NULL;
    stopped_dir_env = stopping ? dir_env : NULL;
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

/* Teardown of the outage tests: the warehouse is up again whatever happened. */
static int restart_stopped(void **state)
{
    (void)state;
    if (stopped_script)
        service(stopped_script, stopped_dir_env, "start-server");
    return 0;
}

/* Proves: the warehouse stopped mid-run makes the sink wait and retry (no crash, no loss,
 * consumption paused instead of buffering), and after it is started again every event is
 * there exactly once. */
static void outage_waits_and_retries(const char *kind, const char *script, const char *dir_env)
{
    wh_t w;
    char topic[256];
    uint64_t n = env_or("WHS_IT_EVENTS", 20000);
    wt_opts_t o = stream(n, 22);
    wh_init(&w, kind, "outage");
    if (!getenv(dir_env) || !*getenv(dir_env)) {
        fprintf(stderr, "SKIP: %s not set: the %s server is not ours to stop\n", dir_env, kind);
        wh_free(&w);
        return;
    }
    wh_topic(topic, sizeof(topic), kind, 3);
    wh_produce(topic, 0, n / 4, &o);
    const char *small[] = {"batch.max.rows=500", "batch.max.ms=50", NULL};
    whs_sink_t *s = wh_sink(&w, topic, small);
    int64_t at_stop = wh_wait_rows(&w, s, (int64_t)n / 4, 60000, 0);
    service(script, dir_env, "stop-server");
    fprintf(stderr, "  %s: stopped at %lld rows\n", kind, (long long)at_stop);
    wh_produce(topic, n / 4, n, &o); /* the rest arrives while the warehouse is down */
    for (int64_t until = wh_now_ms() + 5000; wh_now_ms() < until;)
        assert_true(whs_poll(s, 100) >= 0); /* the sink keeps running while it waits */
    int64_t retries = whs_stat(s, WHS_STAT_RETRIES);
    int64_t buffered = whs_stat(s, WHS_STAT_BUFFERED_BYTES);
    fprintf(stderr, "  %s: during the outage: %lld retries, %lld bytes buffered, paused %lld\n",
            kind, (long long)retries, (long long)buffered, (long long)whs_stat(s, WHS_STAT_PAUSED));
    assert_true(retries > 0);
    assert_true(buffered <= 2 * 33554432); /* two batches at most: consumption paused */
    service(script, dir_env, "start-server");
    int64_t got = wh_wait_rows(&w, s, (int64_t)n, 120000, 1500);
    fprintf(stderr, "  %s: %lld rows after the restart\n", kind, (long long)got);
    assert_int_equal(whs_close(s, 30000), WHS_OK);
    whs_sink_destroy(s);
    wh_assert_exactly(&w, n, &o);
    wh_free(&w);
}

static void test_whs_postgres_outage_waits_and_retries(void **state)
{
    (void)state;
    outage_waits_and_retries("postgres", "postgres.sh", "UE_PG_DIR");
}

static void test_whs_clickhouse_outage_waits_and_retries(void **state)
{
    (void)state;
    outage_waits_and_retries("clickhouse", "clickhouse.sh", "UE_CH_DIR");
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_whs_faults: KAFKA_BOOTSTRAP is not set (run "
                        "test/integration/run.sh, which starts Kafka, PostgreSQL and "
                        "ClickHouse)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_whs_sqlite_sigkill_restarts_exactly_once,
                                  kill_running_child),
        cmocka_unit_test_teardown(test_whs_file_sigkill_restarts_exactly_once, kill_running_child),
        cmocka_unit_test_teardown(test_whs_postgres_sigkill_restarts_exactly_once,
                                  kill_running_child),
        cmocka_unit_test_teardown(test_whs_clickhouse_sigkill_restarts_exactly_once,
                                  kill_running_child),
        cmocka_unit_test_teardown(test_whs_postgres_outage_waits_and_retries, restart_stopped),
        cmocka_unit_test_teardown(test_whs_clickhouse_outage_waits_and_retries, restart_stopped),
    };
    const char *filter = getenv("WHS_IT_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
