/*
 * it_tail.c - proves ue-tail reads back every topic the pipeline writes, on a real broker:
 * raw events and enriched ones (the event with what enrichment added, none "undecodable"),
 * counted once each, and numbers as they were tracked (19.9, not 19.899999999999999).
 *
 * Events go in through the SDK, a processor (libenrich, in this process) enriches them, and
 * build/ue-tail (UE_BUILD_DIR) reads both topics back; its NDJSON and --count are checked.
 */
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

#include <cmocka.h>

#define EVENTS 50

typedef struct runner {
    enr_processor_t *p;
    pthread_t thread;
} runner_t;

static void *run_thread(void *arg)
{
    enr_run(((runner_t *)arg)->p);
    return NULL;
}

static int enriched_all(void *arg)
{
    return enr_stat(arg, ENR_STAT_ENRICHED) >= EVENTS;
}

/* Runs ue-tail with @p args; its whole stdout (malloc'd). */
static char *ue_tail(const char *args)
{
    const char *build = getenv("UE_BUILD_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/ue-tail -b '%s' -w 30000 %s", build && *build ? build : "build",
             it_bootstrap(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, len = 0, n;
    char *out = malloc(cap);
    while ((n = fread(out + len, 1, cap - 1 - len, p)) > 0)
        len += n;
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return out;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *at = text; (at = strstr(at, needle)); at += strlen(needle))
        n++;
    return n;
}

/* The number printed after @p label in ue-tail's --count output. */
static long counted(const char *text, const char *label)
{
    const char *at = strstr(text, label);
    assert_non_null(at);
    return strtol(at + strlen(label), NULL, 10);
}

static void test_tail_reads_raw_and_enriched_topics(void **state)
{
    (void)state;
    char raw[200], out[200], group[200], template[200], errstr[512];
    const char *prefix = it_unique_prefix();
    snprintf(raw, sizeof(raw), "%s.purchase", prefix);
    snprintf(out, sizeof(out), "%s.enriched", prefix);
    snprintf(group, sizeof(group), "%s.g", prefix);
    snprintf(template, sizeof(template), "%s.{type}", prefix);
    assert_int_equal(it_create_topic(raw, 2), 0);

    const char *kv[] = {"log.level=error", NULL};
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr));
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    assert_non_null(c);
    ue_event_t *ev = ue_event_new("purchase");
    for (int i = 0; i < EVENTS; i++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%d", i % 5);
        ue_event_reset(ev, "purchase");
        ue_event_set_user_id(ev, uid);
        ue_event_prop_double(ev, "amount", 19.9);
        ue_event_prop_int(ev, "seq", i);
        assert_int_equal(ue_track(c, ev), UE_OK);
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 30000), UE_OK);
    assert_int_equal(ue_client_destroy(c), UE_OK);

    enr_conf_t *ec = enr_conf_new();
    const char *ekv[][2] = {{"kafka.bootstrap.servers", it_bootstrap()},
                            {"group.id", group},
                            {"input.topics", raw},
                            {"output.topic", out},
                            {"stages", "dedup,session"},
                            {"log.level", "error"}};
    for (size_t i = 0; i < sizeof(ekv) / sizeof(ekv[0]); i++)
        if (enr_conf_set(ec, ekv[i][0], ekv[i][1], errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", ekv[i][0], errstr);
    runner_t r = {.p = enr_processor_new(ec, errstr, sizeof(errstr))};
    if (!r.p)
        fail_msg("enr_processor_new: %s", errstr);
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    assert_true(tu_wait_until(enriched_all, r.p, 120000));
    enr_stop(r.p);
    pthread_join(r.thread, NULL);
    assert_int_equal(enr_processor_destroy(r.p, 10000), ENR_OK);

    char args[512];
    snprintf(args, sizeof(args), "-t '%s'", out);
    char *enriched = ue_tail(args);
    assert_int_equal(count_of(enriched, "\n"), EVENTS);
    assert_int_equal(count_of(enriched, "\"amount\":19.9,"), EVENTS);
    assert_int_equal(count_of(enriched, "\"session_id\":\"s-"), EVENTS);
    assert_int_equal(count_of(enriched, "\"received_at_ms\":"), EVENTS);
    free(enriched);

    snprintf(args, sizeof(args), "-t '%s' -t '%s' --count", raw, out);
    char *counts = ue_tail(args);
    assert_int_equal(counted(counts, "records"), 2 * EVENTS);
    assert_int_equal(counted(counts, "distinct event ids"), EVENTS);
    assert_int_equal(counted(counts, "duplicates"), EVENTS); /* each id once per topic */
    assert_int_equal(counted(counts, "undecodable"), 0);
    free(counts);
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_tail: KAFKA_BOOTSTRAP is not set; run through test/kafka.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_reads_raw_and_enriched_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
