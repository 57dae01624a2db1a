/*
 * test_enr_monitor.c - what a processor tells a metrics endpoint, against librdkafka's mock
 * cluster: the transaction callback (one call per transaction, sizes and times that add up,
 * recursive calls refused), the group consumer's statistics (lag measured from what the
 * transactions committed; truncation like snprintf; nothing when statistics are off), and the
 * count of leaderless or under-replicated partitions of the processor's own topics only.
 */
#include "enrich.h"
#include "userevents.pb-c.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define N_EVENTS 40
#define TOPIC "events.page_view"

/* A mock cluster of 3 brokers, reached through the bootstrap string of its owner handle. */
typedef struct mock {
    rd_kafka_t *owner;
    rd_kafka_mock_cluster_t *cluster;
    const char *bootstrap;
} mock_t;

static void mock_start(mock_t *m)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0); /* "no bootstrap.servers" is expected */
    m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(m->owner);
    m->cluster = rd_kafka_mock_cluster_new(m->owner, 3);
    assert_non_null(m->cluster);
    m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->cluster);
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, TOPIC, 3, 3), 0);
    /* The processor's internal topics, one partition per task (the mock cluster cannot
     * create topics through the admin API). */
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "enrich.changelog", 3, 3), 0);
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "enrich.repartition", 3, 3), 0);
}

static void mock_stop(mock_t *m)
{
    rd_kafka_mock_cluster_destroy(m->cluster);
    rd_kafka_destroy(m->owner);
}

/* Produces @p n valid events of @p n / 5 users to TOPIC. */
static void produce_events(const mock_t *m, int n)
{
    char errstr[256], user[16];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int i = 0; i < n; i++) {
        uint8_t id[16] = {[0] = 0x01, [6] = 0x70, [15] = (uint8_t)i};
        Userevents__Event e = USEREVENTS__EVENT__INIT;
        snprintf(user, sizeof(user), "user-%d", i % 5);
        e.event_id = (ProtobufCBinaryData){16, id};
        e.type = "page_view";
        e.user_id = user;
        e.timestamp_ms = (int64_t)time(NULL) * 1000 + i;
        e.schema_version = 1;
        uint8_t buf[256];
        size_t len = userevents__event__pack(&e, buf);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(user, strlen(user)),
                              RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

static enr_conf_t *conf_for(const mock_t *m, const char *stats_ms)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    const char *kv[][2] = {{"kafka.bootstrap.servers", m->bootstrap},
                           {"kafka.consumer.statistics.interval.ms", stats_ms},
                           {"kafka.topic.metadata.refresh.interval.ms", "200"},
                           {"stages", "dedup,clock,session"},
                           {"input.topics", TOPIC},
                           {"txn.max.ms", "50"},
                           {"log.level", "error"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (enr_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i][0], errstr);
    return conf;
}

static enr_processor_t *processor(enr_conf_t *conf)
{
    char errstr[512];
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!p)
        fail_msg("enr_processor_new: %s", errstr);
    return p;
}

/* ---- one run shared by the tests: N_EVENTS through a processor, its callback recording ---- */

typedef struct txn_log {
    enr_processor_t *p;
    int calls, committed;
    int64_t events, txn_ms, commit_ms;
    int times_consistent;    /* every call: 0 <= commit_ms <= txn_ms */
    int poll_rc, destroy_rc; /* enr_poll() and enr_processor_destroy() from inside */
} txn_log_t;

static void on_txn(enr_err_t result, int64_t events, int64_t txn_ms, int64_t commit_ms,
                   void *opaque)
{
    txn_log_t *log = opaque;
    log->calls++;
    log->committed += result == ENR_OK;
    log->events += events;
    log->txn_ms += txn_ms;
    log->commit_ms += commit_ms;
    if (!(commit_ms >= 0 && commit_ms <= txn_ms))
        log->times_consistent = 0;
    log->poll_rc = enr_poll(log->p, 0);
    log->destroy_rc = enr_processor_destroy(log->p, 0);
}

typedef struct run {
    mock_t mock;
    txn_log_t log;
    char *stats; /* the statistics once everything is committed */
    size_t stats_len;
    enr_processor_t *p;
} run_t;

/* 1 when every assigned partition of TOPIC in @p json has consumer_lag_stored 0. */
static int lag_is_zero(const char *json)
{
    cJSON *root = cJSON_Parse(json), *p;
    const cJSON *topic = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "topics"), TOPIC);
    int assigned = 0, zero = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(topic, "partitions"))
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItem(p, "desired")))
            continue;
        assigned++;
        zero += cJSON_GetObjectItem(p, "consumer_lag_stored")->valuedouble == 0;
    }
    cJSON_Delete(root);
    return assigned == 3 && zero == 3;
}

static int run_setup(void **state)
{
    static char stats[1 << 20];
    run_t *r = calloc(1, sizeof(*r));
    mock_start(&r->mock);
    produce_events(&r->mock, N_EVENTS);
    enr_conf_t *conf = conf_for(&r->mock, "100");
    r->log.times_consistent = 1;
    enr_conf_set_txn_cb(conf, on_txn, &r->log);
    r->p = r->log.p = processor(conf);
    time_t deadline = time(NULL) + 60;
    int done = 0;
    while (!done && time(NULL) < deadline) {
        assert_true(enr_poll(r->p, 100) >= 0);
        done = enr_stat(r->p, ENR_STAT_CONSUMED) == N_EVENTS && r->log.committed > 0 &&
               enr_kafka_stats_json(r->p, stats, sizeof(stats)) > 0 && lag_is_zero(stats);
    }
    r->stats = stats;
    r->stats_len = strlen(stats);
    *state = r;
    if (!done)
        fprintf(stderr, "setup: %d of %d events consumed, %d commit(s) in 60 s\n",
                (int)enr_stat(r->p, ENR_STAT_CONSUMED), N_EVENTS, r->log.committed);
    return done ? 0 : -1;
}

static int run_teardown(void **state)
{
    run_t *r = *state;
    assert_int_equal(enr_processor_destroy(r->p, 10000), ENR_OK);
    mock_stop(&r->mock);
    free(r);
    return 0;
}

static void test_enr_monitor_txn_cb_reports_every_transaction(void **state)
{
    run_t *r = *state;
    assert_int_equal(enr_stat(r->p, ENR_STAT_CONSUMED), N_EVENTS);
    assert_true(r->log.calls > 0);
    assert_int_equal(r->log.calls,
                     enr_stat(r->p, ENR_STAT_TXN_COMMITS) + enr_stat(r->p, ENR_STAT_TXN_ABORTS));
    assert_int_equal(r->log.committed, enr_stat(r->p, ENR_STAT_TXN_COMMITS));
    assert_int_equal(r->log.events, N_EVENTS); /* each record in exactly one transaction */
    assert_true(r->log.times_consistent);
    assert_true(r->log.commit_ms <= r->log.txn_ms);
}

static void test_enr_monitor_txn_cb_refuses_recursive_calls(void **state)
{
    run_t *r = *state;
    assert_int_equal(r->log.poll_rc, ENR_ERR_RECURSIVE_CALL);
    assert_int_equal(r->log.destroy_rc, ENR_ERR_RECURSIVE_CALL);
    assert_true(enr_poll(r->p, 0) >= 0); /* and the processor goes on */
}

static void test_enr_monitor_stats_json_measures_lag_from_the_commit(void **state)
{
    run_t *r = *state;
    cJSON *root = cJSON_Parse(r->stats);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "type")->valuestring, "consumer");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(root, "brokers")));
    cJSON_Delete(root);
    assert_true(lag_is_zero(r->stats)); /* all consumed and committed: no lag */
}

static void test_enr_monitor_stats_json_truncates_like_snprintf(void **state)
{
    run_t *r = *state;
    char small[32];
    memset(small, 'x', sizeof(small));
    size_t len = enr_kafka_stats_json(r->p, small, sizeof(small));
    assert_true(len > sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(small[0], '{');
    assert_true(enr_kafka_stats_json(r->p, NULL, 0) > 0); /* only measures */
    assert_int_equal(enr_kafka_stats_json(NULL, small, sizeof(small)), 0);
}

/* enr_stats_json(): every counter, each equal to enr_stat(), truncated like snprintf. */
static void test_enr_monitor_counters_as_json_equal_enr_stat(void **state)
{
    run_t *r = *state;
    char json[2048], small[16];
    size_t len = enr_stats_json(r->p, json, sizeof(json));
    assert_int_equal(len, strlen(json));
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_int_equal(cJSON_GetArraySize(root), ENR_STAT__CNT);
    for (int i = 0; i < ENR_STAT__CNT; i++) {
        const cJSON *v = cJSON_GetObjectItem(root, enr_stat_name((enr_stat_t)i));
        assert_non_null(v);
        assert_int_equal((int64_t)v->valuedouble, enr_stat(r->p, (enr_stat_t)i));
    }
    assert_int_equal((int64_t)cJSON_GetObjectItem(root, "consumed")->valuedouble, N_EVENTS);
    cJSON_Delete(root);
    assert_int_equal(enr_stats_json(r->p, small, sizeof(small)), len);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(enr_stats_json(r->p, NULL, 0), len); /* only measures */
}

static void test_enr_monitor_counts_leaderless_partitions_of_its_topics_only(void **state)
{
    run_t *r = *state;
    assert_int_equal(enr_under_replicated_partitions(r->p, 5000), 0);
    assert_int_equal(rd_kafka_mock_topic_create(r->mock.cluster, "unrelated", 2, 3), 0);
    rd_kafka_mock_partition_set_leader(r->mock.cluster, "unrelated", 1, -1);
    assert_int_equal(enr_under_replicated_partitions(r->p, 5000), 0);
    rd_kafka_mock_partition_set_leader(r->mock.cluster, TOPIC, 2, -1);
    assert_int_equal(enr_under_replicated_partitions(r->p, 5000), 1);
    rd_kafka_mock_partition_set_leader(r->mock.cluster, TOPIC, 2, 1);
    assert_int_equal(enr_under_replicated_partitions(r->p, 5000), 0);
    assert_int_equal(enr_under_replicated_partitions(NULL, 5000), ENR_ERR_INVALID_ARG);
    assert_int_equal(enr_under_replicated_partitions(r->p, -1), ENR_ERR_INVALID_ARG);
}

/* ---- statistics off ------------------------------------------------------------------------ */

static void test_enr_monitor_stats_json_is_empty_when_statistics_are_off(void **state)
{
    (void)state;
    mock_t m;
    char buf[64] = "x";
    mock_start(&m);
    enr_processor_t *p = processor(conf_for(&m, "0"));
    for (int i = 0; i < 10; i++)
        assert_true(enr_poll(p, 50) >= 0);
    assert_int_equal(enr_kafka_stats_json(p, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(enr_processor_destroy(p, 5000), ENR_OK);
    mock_stop(&m);
}

int main(void)
{
    const struct CMUnitTest run_tests[] = {
        cmocka_unit_test(test_enr_monitor_txn_cb_reports_every_transaction),
        cmocka_unit_test(test_enr_monitor_txn_cb_refuses_recursive_calls),
        cmocka_unit_test(test_enr_monitor_stats_json_measures_lag_from_the_commit),
        cmocka_unit_test(test_enr_monitor_stats_json_truncates_like_snprintf),
        cmocka_unit_test(test_enr_monitor_counters_as_json_equal_enr_stat),
        cmocka_unit_test(test_enr_monitor_counts_leaderless_partitions_of_its_topics_only),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enr_monitor_stats_json_is_empty_when_statistics_are_off),
    };
    int failed = cmocka_run_group_tests(run_tests, run_setup, run_teardown);
    return failed + cmocka_run_group_tests(tests, NULL, NULL);
}
