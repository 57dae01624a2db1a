/*
 * it_sdk.c - libuserevents against a real Kafka broker (test/kafka.sh), checked by an
 * independent consumer (test/support/itutil.c: plain librdkafka + the generated decoder).
 *
 * Each test proves one guarantee of the SDK; the fault tests stop and start the broker that
 * test/kafka.sh started (they are skipped against a cluster given by KAFKA_BOOTSTRAP).
 */
#include "itutil.h"
#include "testutil.h"
#include "userevents.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define USERS 50
static const char *const TYPES[] = {"page_view", "click", "purchase"};
#define NTYPES 3

/* Everything a test tracked: ids in order, and each user's next "seq". Shared with a child. */
typedef struct tracked {
    size_t n, cap;
    int64_t next_seq[USERS];
    uint8_t ids[][16];
} tracked_t;

static tracked_t *tracked_new(size_t cap)
{
    tracked_t *t = mmap(NULL, sizeof(*t) + cap * 16, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(t != MAP_FAILED);
    t->cap = cap;
    return t;
}

static void tracked_free(tracked_t *t)
{
    munmap(t, sizeof(*t) + t->cap * 16);
}

static ue_client_t *client_for(const char *prefix, const char *spool_dir)
{
    char template[128];
    snprintf(template, sizeof(template), "%s.{type}", prefix);
    const char *kv[] = {"log.level=error", "spool.fsync=false", NULL};
    ue_conf_t *conf = tu_conf(kv);
    char errstr[512];
    assert_int_equal(ue_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr,
                                 sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr)),
                     UE_CONF_OK);
    if (spool_dir)
        assert_int_equal(ue_conf_set(conf, "spool.dir", spool_dir, errstr, sizeof(errstr)),
                         UE_CONF_OK);
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("ue_client_new: %s", errstr);
    return c;
}

/* Tracks @p n events round-robin over users and types, recording ids and per-user seq. */
static void track_events(ue_client_t *c, tracked_t *t, size_t n)
{
    ue_event_t *ev = ue_event_new("page_view");
    for (size_t i = 0; i < n; i++) {
        size_t user = (t->n + i) % USERS;
        char uid[32];
        snprintf(uid, sizeof(uid), "user-%02zu", user);
        assert_int_equal(ue_event_reset(ev, TYPES[(t->n + i) / USERS % NTYPES]), UE_OK);
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "seq", t->next_seq[user]++);
        ue_event_prop_string(ev, "path", "/pricing");
        ue_event_prop_double(ev, "amount", 9.99);
        ue_event_set_context(ev, "os.name", "Linux");
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, t->ids[t->n + i]), UE_OK);
    }
    t->n += n;
    ue_event_destroy(ev);
}

/* Consumes the test's topics and asserts each tracked id arrived exactly once, in order. */
static void assert_exactly_once(const char *prefix, const tracked_t *t)
{
    char topics[NTYPES][128];
    const char *names[NTYPES];
    for (int i = 0; i < NTYPES; i++) {
        snprintf(topics[i], sizeof(topics[i]), "%s.%s", prefix, TYPES[i]);
        names[i] = topics[i];
    }
    it_msg_t *msgs;
    size_t n = it_consume(names, NTYPES, t->n, 120000, &msgs);
    it_report_t r = it_check(msgs, n, (const uint8_t(*)[16])t->ids, t->n, prefix);
    print_message("tracked %zu, consumed %zu: missing %zu, duplicates %zu, unexpected %zu, "
                  "undecodable %zu, bad topic/key/headers %zu, out of order %zu\n",
                  t->n, n, r.missing, r.duplicates, r.unexpected, r.undecodable, r.bad_meta,
                  r.out_of_order);
    it_msgs_free(msgs, n);
    assert_int_equal(n, t->n);
    assert_int_equal(r.missing, 0);
    assert_int_equal(r.duplicates, 0);
    assert_int_equal(r.unexpected, 0);
    assert_int_equal(r.undecodable, 0);
    assert_int_equal(r.bad_meta, 0);
    assert_int_equal(r.out_of_order, 0);
}

/* Guarantee: N events from K users and several types arrive exactly once each, in per-user
 * order, on the right topic with the right key, and decode with the .proto. */
static void test_events_arrive_once_in_user_order(void **state)
{
    (void)state;
    const char *prefix = strdup(it_unique_prefix());
    char *spool = tu_tempdir("it-spool");
    tracked_t *t = tracked_new(20000);
    ue_client_t *c = client_for(prefix, spool);

    track_events(c, t, 20000);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 20000);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_exactly_once(prefix, t);

    tracked_free(t);
    tu_rmrf(spool);
    free(spool);
    free((void *)prefix);
}

static int node(const char *action)
{
    return it_kafka_node(action, 1);
}

/* Guarantee: the broker stopped mid-run and restarted loses nothing and duplicates nothing. */
static void test_broker_restart_loses_nothing(void **state)
{
    (void)state;
    if (!getenv("UE_KAFKA_DIR"))
        skip();
    const char *prefix = strdup(it_unique_prefix());
    char *spool = tu_tempdir("it-spool");
    tracked_t *t = tracked_new(10000);
    ue_client_t *c = client_for(prefix, spool);

    track_events(c, t, 5000);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    assert_int_equal(node("stop-node"), 0);
    track_events(c, t, 5000); /* the broker is down: spooled and retried */
    assert_int_equal(ue_flush(c, 1000), UE_ERR_TIMED_OUT);
    assert_int_equal(node("start-node"), 0);
    assert_int_equal(ue_flush(c, 120000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 10000);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_exactly_once(prefix, t);

    tracked_free(t);
    tu_rmrf(spool);
    free(spool);
    free((void *)prefix);
}

static int queue_spooled(void *arg)
{
    ue_client_t *c = arg;
    return ue_stat(c, UE_STAT_QUEUED) == 0 && ue_stat(c, UE_STAT_SPOOLED) >= 3000;
}

/* The tracking process of the SIGKILL test: its part of the story, told through a pipe. */
static void tracker_child(const char *prefix, const char *spool, tracked_t *t, int to_parent,
                          int from_parent)
{
    char byte;
    ue_client_t *c = client_for(prefix, spool);
    track_events(c, t, 3000);
    if (ue_flush(c, 60000) != UE_OK)
        _exit(3);
    if (write(to_parent, "1", 1) != 1 || read(from_parent, &byte, 1) != 1) /* broker down */
        _exit(4);
    track_events(c, t, 3000);
    if (!tu_wait_until(queue_spooled, c, 30000))
        _exit(5);
    if (write(to_parent, "2", 1) != 1)
        _exit(6);
    for (;;)
        pause(); /* until SIGKILL */
}

/* Guarantee: a tracking process killed with SIGKILL while the broker is down loses nothing:
 * a new process on the same spool delivers the rest, with no event id twice. */
static void test_sigkill_while_broker_down_then_new_process_delivers_rest(void **state)
{
    (void)state;
    if (!getenv("UE_KAFKA_DIR"))
        skip();
    const char *prefix = strdup(it_unique_prefix());
    char *spool = tu_tempdir("it-spool");
    tracked_t *t = tracked_new(6000);
    int up[2], down[2];
    char byte;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        tracker_child(prefix, spool, t, up[1], down[0]);
    assert_int_equal(read(up[0], &byte, 1), 1);
    assert_int_equal(node("stop-node"), 0);
    assert_int_equal(write(down[1], "x", 1), 1);
    assert_int_equal(read(up[0], &byte, 1), 1);
    assert_int_equal(byte, '2');
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(t->n, 6000);

    assert_int_equal(node("start-node"), 0);
    ue_client_t *c = client_for(prefix, spool);
    assert_int_equal(ue_flush(c, 120000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_REPLAYED), 3000);
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), 3000);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_exactly_once(prefix, t);

    tracked_free(t);
    tu_rmrf(spool);
    free(spool);
    free((void *)prefix);
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_sdk: KAFKA_BOOTSTRAP is not set; run through test/kafka.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_arrive_once_in_user_order),
        cmocka_unit_test(test_broker_restart_loses_nothing),
        cmocka_unit_test(test_sigkill_while_broker_down_then_new_process_delivers_rest),
    };
    return cmocka_run_group_tests_name("integration: libuserevents", tests, NULL, NULL);
}
