/*
 * it_enr_rebalance.c - proves: a processor whose group rebalances again and again while it
 * reads a busy stream enriches every input event exactly once (no stage that could hide a
 * duplicate runs: no dedup).
 *
 * test_processor_past_max_poll_interval_loses_nothing proves: a processor whose stage stalls
 * longer than max.poll.interval.ms loses its tasks, drops its open transaction, takes the
 * tasks back and writes each event once. test_abort_restored_from_the_changelog_loses_nothing:
 * the same with dedup and no in-memory rollback: the real broker keeps the aborted attempt's
 * state out of the restore (librdkafka's mock cluster cannot show this: it does not filter
 * aborted transactions).
 *
 * The reproduction of a loss seen on real parts with no fault at all: the processor keeps up
 * with a steady stream, its input regex also matches its own outputs, which appear while it
 * works, and new raw topics are created every few seconds, so the group rebalances while the
 * processor waits inside a consume call for the records of its next step. librdkafka 2.0's
 * batch consume API had handed some records out already, served the revocation in the middle
 * (whose commit counted them as done), then dropped them as outdated: runs of contiguous
 * offsets of every partition were never enriched.
 */
#include "enriched.pb-c.h"
#include "enrich.h"
#include "itutil.h"
#include "testutil.h"
#include "userevents.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define EVENTS 90000
#define RATE 5000         /* events per second: a stream of 18 s */
#define CHUNK 250         /* events tracked between two looks at the clock */
#define NEW_TOPICS 6      /* raw topics created while events flow: a rebalance each */

static struct {
    char prefix[64];
    uint8_t (*ids)[16];
    size_t n;
} in;

typedef struct runner {
    enr_processor_t *p;
    pthread_t thread;
    enr_err_t rc;
} runner_t;

static void *run_thread(void *arg)
{
    runner_t *r = arg;
    r->rc = enr_run(r->p);
    return NULL;
}

static enr_processor_t *processor(void)
{
    char kv[16][300], errstr[512];
    size_t n = 0;
    snprintf(kv[n++], 300, "kafka.bootstrap.servers=%s", it_bootstrap());
    snprintf(kv[n++], 300, "group.id=%s.g", in.prefix);
    /* Matches the raw topics and the outputs alike, as the default ^events\..* does. */
    snprintf(kv[n++], 300, "input.topics=^%s\\..*", in.prefix);
    snprintf(kv[n++], 300, "output.topic=%s.enriched", in.prefix);
    snprintf(kv[n++], 300, "dead_letter.topic=%s.dead_letter", in.prefix);
    snprintf(kv[n++], 300, "aggregates.topic=%s.aggregates", in.prefix);
    snprintf(kv[n++], 300, "alerts.topic=%s.alerts", in.prefix);
    snprintf(kv[n++], 300, "profile.topic=%s.profiles", in.prefix);
    snprintf(kv[n++], 300, "changelog.topic=%s.changelog", in.prefix);
    snprintf(kv[n++], 300, "stages=");
    snprintf(kv[n++], 300, "log.level=warning");
    enr_conf_t *conf = enr_conf_new();
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (enr_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!p)
        fail_msg("enr_processor_new: %s", errstr);
    return p;
}

static ue_client_t *tracker_to(const char *template)
{
    char errstr[512];
    const char *kv[] = {"log.level=error", NULL};
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr));
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("%s", errstr);
    return c;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tracks EVENTS events at RATE per second over two raw topics, creating a new raw topic every
 * EVENTS / (NEW_TOPICS + 1) events: the group rebalances while the stream flows. */
static void track_stream(void)
{
    char template[128];
    snprintf(template, sizeof(template), "%s.raw.{type}", in.prefix);
    ue_client_t *c = tracker_to(template);
    ue_event_t *ev = ue_event_new("a");
    int64_t start = now_ms();
    for (size_t i = 0; i < EVENTS; i++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%03zu", i % 500);
        ue_event_reset(ev, i % 3 ? "a" : "b");
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "seq", (int64_t)i);
        assert_int_equal(ue_track(c, ev), UE_OK);
        ue_event_get_event_id(ev, in.ids[in.n++]);
        if ((i + 1) % (EVENTS / (NEW_TOPICS + 1)) == 0 && i + 1 < EVENTS) {
            char topic[128];
            snprintf(topic, sizeof(topic), "%s.raw.new%zu", in.prefix, i);
            assert_int_equal(it_create_topic(topic, 3), 0); /* co-partitioned */
        }
        if ((i + 1) % CHUNK == 0) { /* pace the stream: rate control, not synchronisation */
            int64_t left = start + (int64_t)(i + 1) * 1000 / RATE - now_ms();
            if (left > 0)
                nanosleep(&(struct timespec){left / 1000, (left % 1000) * 1000000}, NULL);
        }
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    ue_client_destroy(c);
}

/* ---- reading the output back ------------------------------------------------------------ */

typedef struct seen {
    uint8_t (*ids)[16];
    size_t n, undecodable;
} seen_t;

static void keep_id(const it_record_t *r, void *opaque)
{
    seen_t *s = opaque;
    Userevents__EnrichedEvent *e = userevents__enriched_event__unpack(NULL, r->value_len, r->value);
    if (e && e->event && e->event->event_id.len == 16 && s->n < 2 * EVENTS)
        memcpy(s->ids[s->n++], e->event->event_id.data, 16);
    else
        s->undecodable++;
    if (e)
        userevents__enriched_event__free_unpacked(e, NULL);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Of the ids tracked, how many @p s misses and how many it holds more than once. */
static void count_ids(seen_t *s, size_t *missing, size_t *twice)
{
    qsort(s->ids, s->n, 16, cmp_id);
    qsort(in.ids, in.n, 16, cmp_id);
    size_t j = 0;
    for (size_t i = 0; i < in.n; i++) {
        size_t k = 0;
        while (j < s->n && cmp_id(s->ids[j], in.ids[i]) < 0)
            j++;
        while (j < s->n && cmp_id(s->ids[j], in.ids[i]) == 0)
            j++, k++;
        *missing += k == 0;
        *twice += k > 1;
    }
}

typedef struct wait_enriched {
    enr_processor_t *p;
    int64_t at_least;
} wait_enriched_t;

static int enriched_at_least(void *arg)
{
    wait_enriched_t *w = arg;
    return enr_stat(w->p, ENR_STAT_ENRICHED) >= w->at_least;
}

typedef struct wait_consumed {
    enr_processor_t *p;
    int64_t at_least;
} wait_consumed_t;

static int consumed_reached(void *arg)
{
    wait_consumed_t *w = arg;
    return enr_stat(w->p, ENR_STAT_CONSUMED) >= w->at_least;
}

static void test_rebalances_mid_stream_lose_nothing(void **state)
{
    tu_trace_crashes();
    (void)state;
    char topic[128];
    for (int t = 0; t < 2; t++) { /* the stream starts at once, on 3 partitions each */
        snprintf(topic, sizeof(topic), "%s.raw.%s", in.prefix, t ? "b" : "a");
        assert_int_equal(it_create_topic(topic, 3), 0);
    }
    runner_t r = {.p = processor()};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    track_stream();

    /* Awaited, but not asserted: a processor that lost records never gets there, and the
     * output below says what is missing. */
    wait_consumed_t w = {r.p, EVENTS};
    tu_wait_until(consumed_reached, &w, 60000);
    enr_stop(r.p);
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, ENR_OK);
    int64_t consumed = enr_stat(r.p, ENR_STAT_CONSUMED);
    assert_int_equal(enr_processor_destroy(r.p, 10000), ENR_OK);

    seen_t s = {.ids = calloc(2 * EVENTS, 16)};
    snprintf(topic, sizeof(topic), "%s.enriched", in.prefix);
    const char *topics[] = {topic};
    it_read(topics, 1, EVENTS, 30000, keep_id, &s);
    size_t missing = 0, twice = 0;
    count_ids(&s, &missing, &twice);
    fprintf(stderr, "it_enr_rebalance: %zu tracked, %lld consumed, %zu enriched, %zu missing, "
            "%zu more than once\n", in.n, (long long)consumed, s.n, missing, twice);
    assert_int_equal(s.undecodable, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(s.n, EVENTS);
    free(s.ids);
}

/* A stage that stalls the processor once, at the event with "seq" STALL_AT: a stage stuck on a
 * slow lookup, longer than max.poll.interval.ms. */
#define STALL_AT 2000
#define STALL_EVENTS 6000

static enr_verdict_t stall_stage(void *state, enr_event_t *ev, enr_ctx_t *ctx, void *opaque)
{
    int *stalled = opaque;
    int64_t seq;
    (void)state, (void)ctx;
    if (!*stalled && enr_event_get_int(ev, "seq", &seq) == ENR_OK && seq == STALL_AT) {
        *stalled = 1;
        sleep(9); /* the fault: 9 s without a poll, against max.poll.interval.ms = 6000 */
    }
    return ENR_KEEP;
}

/* Tracks STALL_EVENTS into a topic of its own (@p name), runs a processor with @p stages whose
 * stall stage holds it past max.poll.interval.ms once, and checks each event is enriched once
 * after the abort. With @p rollback (rollback.max.bytes) "0" no task rolls back in memory: each
 * restores from its changelog partition. */
static void run_stalled(const char *name, const char *stages, const char *rollback)
{
    tu_trace_crashes();
    char topic[128], group[128], errstr[512];
    snprintf(topic, sizeof(topic), "%s.%s.raw", in.prefix, name);
    snprintf(group, sizeof(group), "%s.%s", in.prefix, name);
    assert_int_equal(it_create_topic(topic, 3), 0);
    in.n = 0;
    ue_client_t *c = tracker_to(topic);
    ue_event_t *ev = ue_event_new("a");
    for (size_t i = 0; i < STALL_EVENTS; i++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%03zu", i % 100);
        ue_event_reset(ev, "a");
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "seq", (int64_t)i);
        assert_int_equal(ue_track(c, ev), UE_OK);
        ue_event_get_event_id(ev, in.ids[in.n++]);
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 30000), UE_OK);
    ue_client_destroy(c);

    static int stalled;
    stalled = 0;
    const char *kv[][2] = {
        {"kafka.bootstrap.servers", it_bootstrap()}, {"group.id", group},
        {"input.topics", topic}, {"stages", stages}, {"log.level", "warning"},
        {"kafka.consumer.max.poll.interval.ms", "6000"},
        {"kafka.consumer.session.timeout.ms", "6000"}, {"txn.max.events", "100"},
        {"rollback.max.bytes", rollback},
    };
    char out[128];
    snprintf(out, sizeof(out), "%s.%s.enriched", in.prefix, name);
    enr_conf_t *conf = enr_conf_new();
    assert_int_equal(enr_conf_add_stage(conf, enr_stage_new("stall", stall_stage, &stalled)),
                     ENR_OK);
    assert_int_equal(enr_conf_set(conf, "output.topic", out, errstr, sizeof(errstr)), ENR_CONF_OK);
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (enr_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i][0], errstr);
    runner_t r = {.p = enr_processor_new(conf, errstr, sizeof(errstr))};
    if (!r.p)
        fail_msg("enr_processor_new: %s", errstr);
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    wait_enriched_t w = {r.p, STALL_EVENTS};
    assert_true(tu_wait_until(enriched_at_least, &w, 120000));
    enr_stop(r.p);
    pthread_join(r.thread, NULL);
    int64_t aborts = enr_stat(r.p, ENR_STAT_TXN_ABORTS);
    int64_t restored = enr_stat(r.p, ENR_STAT_RESTORE_RECORDS);
    assert_int_equal(enr_processor_destroy(r.p, 10000), ENR_OK);
    assert_true(stalled);

    seen_t seen = {.ids = calloc(2 * STALL_EVENTS, 16)};
    const char *topics[] = {out};
    it_read(topics, 1, STALL_EVENTS, 30000, keep_id, &seen);
    size_t missing = 0, twice = 0;
    count_ids(&seen, &missing, &twice);
    fprintf(stderr, "it_enr_rebalance: [%s] stalled past max.poll.interval.ms: %zu tracked, %zu "
            "enriched, %zu missing, %zu more than once, %lld transaction(s) aborted, %lld "
            "changelog record(s) restored\n",
            stages, in.n, seen.n, missing, twice, (long long)aborts, (long long)restored);
    assert_true(aborts >= 1);
    assert_int_equal(missing, 0);
    assert_int_equal(twice, 0);
    if (strstr(stages, "dedup"))
        assert_true(restored >= 1); /* the dedup ids came back from Kafka, not from memory */
    free(seen.ids);
}

/* No stage that could hide a duplicate. */
static void test_processor_past_max_poll_interval_loses_nothing(void **state)
{
    (void)state;
    run_stalled("slow", "stall", "8388608");
}

/* With dedup, rolled back from the changelog (not the in-memory image): a read of the changelog
 * that saw the aborted attempt's ids would drop the redo of those events as duplicates. */
static void test_abort_restored_from_the_changelog_loses_nothing(void **state)
{
    (void)state;
    run_stalled("slowdedup", "dedup,stall", "0");
}

static int setup(void **state)
{
    (void)state;
    snprintf(in.prefix, sizeof(in.prefix), "%s", it_unique_prefix());
    in.ids = calloc(EVENTS, 16);
    return in.ids ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(in.ids);
    return 0;
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_enr_rebalance: KAFKA_BOOTSTRAP is not set; run through "
                        "test/kafka.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebalances_mid_stream_lose_nothing),
        cmocka_unit_test(test_processor_past_max_poll_interval_loses_nothing),
        cmocka_unit_test(test_abort_restored_from_the_changelog_loses_nothing),
    };
    if (getenv("IT_ONLY")) /* one test, e.g. IT_ONLY='*max_poll*' */
        cmocka_set_test_filter(getenv("IT_ONLY"));
    return cmocka_run_group_tests_name("integration: libenrich rebalances", tests, setup,
                                       teardown);
}
