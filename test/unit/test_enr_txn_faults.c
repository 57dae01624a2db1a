/*
 * test_enr_txn_faults.c - a real processor (enr_processor_t) against librdkafka's mock cluster,
 * with a fault injected into each step of its transactions: Produce, AddPartitionsToTxn,
 * AddOffsetsToTxn, TxnOffsetCommit, EndTxn; retriable errors (librdkafka retries them: no
 * abort), abortable ones (the transaction is aborted, state and positions go back, the work is
 * redone), fatal ones (the processor stops with librdkafka's reason, and a new instance with the
 * same transactional id continues); the coordinators moving to another broker, and the
 * coordinator going down in the middle of a commit. Each time, the committed output holds every
 * input event exactly once, as an uninterrupted run does.
 *
 * What librdkafka 2.0.2's mock cluster does not do, and how the test stands in for it:
 * - Fetch answers LastStableOffset = high watermark and no aborted transactions, and writes no
 *   commit or abort markers: a read_committed consumer of the mock sees aborted records too.
 *   So the test learns each transaction's records from the transaction callback: when it runs,
 *   the transaction's records are all written (librdkafka flushes before EndTxn, and an abort
 *   waits for what was in flight), so the output's high watermarks then close the range of
 *   that transaction, committed or not. The read back keeps only committed ranges: what a real
 *   broker's read_committed consumer would return.
 * - TxnOffsetCommit answers without storing the offsets. So when (and only when) a transaction
 *   commits, the callback commits the offsets that transaction sent (enr__owned_offsets(), the
 *   list txn.c hands to send_offsets_to_transaction) to the group, as a real broker does at
 *   EndTxn(commit). An abort's rewind and a restarted processor then read them as they would.
 * - For the same reason a stage's changelog records of an aborted transaction stay visible to
 *   a restore. An abort rolls the stages back in memory, without reading the changelog (see
 *   libenrich/src/image.h), so the abortable faults run with the dedup stage too: state not
 *   rolled back to the commit would drop the redone events as duplicates. A restarted
 *   processor does restore from the changelog, so the other runs use the stateless "clock"
 *   stage alone.
 */
#include "enrich.h"
#include "enriched.pb-c.h"
#include "processor.h"
#include "uc_time.h"
#include "userevents.pb-c.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define N_EVENTS 120
#define IN_TOPIC "events.page_view"
#define OUT_TOPIC "events.enriched"
#define PARTS 2 /* of the input and of the output topic */
#define GROUP "ft"
#define TXN_ID "enrich-ft"
#define COORD 1 /* the broker that starts as both coordinators */
#define MAX_RANGES 256

/* Kafka's request numbers (ApiKey); librdkafka keeps its names for them in a private header. */
enum api_key {
    API_PRODUCE = 0,
    API_OFFSET_FETCH = 9,
    API_ADD_PARTITIONS_TO_TXN = 24,
    API_ADD_OFFSETS_TO_TXN = 25,
    API_SYNC_GROUP = 14,
    API_END_TXN = 26,
    API_TXN_OFFSET_COMMIT = 28,
};

typedef enum expect {
    ABORTED, /* at least one abort, then the work redone */
    FENCED,  /* the processor stops with ENR_ERR_FENCED */
    FATAL,   /* the processor stops with ENR_ERR_KAFKA_FATAL */
} expect_t;

typedef struct range {
    int32_t partition;
    int64_t lo, hi; /* [lo, hi) of the output partition */
} range_t;

typedef struct fx {
    rd_kafka_t *owner; /* the handle the mock cluster belongs to */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    rd_kafka_t *reader; /* a plain consumer: watermarks, and the output read back */
    enr_processor_t *p;
    int64_t end[PARTS]; /* where the last ended transaction left each output partition */
    range_t committed[MAX_RANGES];
    int ncommitted;
    int64_t input_offsets[PARTS]; /* per input partition: the offset the last commit sent */
    int64_t input_committed;      /* their sum: input records covered by commits */
    int commits, aborts, stops;
    int offsets_refused;        /* emulated group commits the mock refused: see on_txn() */
    const char *session_timeout; /* the processor's session.timeout.ms; "4000" unless set */
    const char *stages;          /* the processor's stages; "clock" unless set */
    const char *rollback_max_bytes; /* the processor's rollback.max.bytes; its default unless set */
    const char *txn_max_bytes;      /* set: txn.max.bytes this, txn.max.events and .ms large */
    int64_t most_txn_events;        /* of a committed transaction */
    int rolled_in_memory, restores; /* abort rollbacks from the image; changelog restores */
    enr_err_t last_result;
} fx_t;

/* ---- the cluster and its input -------------------------------------------------------- */

/* Counts how each rollback went (the processor logs both at info), and prints the log with
 * FT_VERBOSE. */
static void quiet(int level, const char *message, void *opaque)
{
    fx_t *fx = opaque;
    fx->rolled_in_memory += strstr(message, "rolled back in memory") != NULL;
    fx->restores += strstr(message, "changelog record(s) in") != NULL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (getenv("FT_VERBOSE"))
        fprintf(stderr, "  %ld.%03ld [%d] %s\n", (long)ts.tv_sec % 1000, ts.tv_nsec / 1000000,
                level, message);
}

static rd_kafka_t *client(const fx_t *fx, rd_kafka_type_t type, const char *const kv[][2], size_t n)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "log_level", getenv("FT_VERBOSE") ? "6" : "0", NULL, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)), 0);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

/* N_EVENTS events with ids 0..N_EVENTS-1 (in the last two bytes), encoded as the SDK does. */
static void produce_input(const fx_t *fx)
{
    rd_kafka_t *rk = client(fx, RD_KAFKA_PRODUCER, NULL, 0);
    int64_t t0 = (int64_t)time(NULL) * 1000;
    for (int i = 0; i < N_EVENTS; i++) {
        char user[16];
        uint8_t id[16] = {
            [0] = 0x01, [6] = 0x70, [8] = 0x80, [14] = (uint8_t)(i >> 8), [15] = (uint8_t)i};
        Userevents__Event e = USEREVENTS__EVENT__INIT;
        snprintf(user, sizeof(user), "user-%d", i % 7);
        e.event_id = (ProtobufCBinaryData){16, id};
        e.type = "page_view";
        e.user_id = user;
        e.timestamp_ms = t0 + i;
        e.sent_at_ms = t0 + i;
        e.schema_version = 1;
        uint8_t buf[256];
        size_t len = userevents__event__pack(&e, buf);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(IN_TOPIC), RD_KAFKA_V_PARTITION(i % PARTS),
                              RD_KAFKA_V_KEY(user, strlen(user)), RD_KAFKA_V_VALUE(buf, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* librdkafka 2.0.2's mock thread can miss the wakeup of a control call made right after
 * another one and take it up only at its next 1 s tick; a moment between calls avoids that. */
static void mock_settle(void)
{
    usleep(5 * 1000);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0); /* "no bootstrap.servers": expected */
    fx->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(fx->owner);
    fx->mc = rd_kafka_mock_cluster_new(fx->owner, 3);
    assert_non_null(fx->mc);
    fx->bootstrap = rd_kafka_mock_cluster_bootstraps(fx->mc);
    /* The mock cannot create topics through the admin API: the internal topics exist
     * beforehand, one partition per task (the outputs the "clock" stage never writes need not
     * exist). */
    static const char *const topics[] = {IN_TOPIC, OUT_TOPIC, GROUP ".changelog",
                                         GROUP ".repartition"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        assert_int_equal(rd_kafka_mock_topic_create(fx->mc, topics[i], PARTS, 1), 0);
        mock_settle();
    }
    rd_kafka_mock_coordinator_set(fx->mc, "transaction", TXN_ID, COORD);
    mock_settle();
    rd_kafka_mock_coordinator_set(fx->mc, "group", GROUP, COORD);
    /* read_committed as asked, though the mock ignores it (see the top of the file) */
    static const char *const reader_kv[][2] = {{"group.id", "ft-reader"},
                                               {"isolation.level", "read_committed"},
                                               {"enable.partition.eof", "true"}};
    fx->reader = client(fx, RD_KAFKA_CONSUMER, reader_kv, 3);
    produce_input(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    enr_processor_destroy(fx->p, 1000);
    rd_kafka_destroy(fx->reader);
    rd_kafka_mock_cluster_destroy(fx->mc);
    rd_kafka_destroy(fx->owner);
    free(fx);
    return 0;
}

/* ---- what ended transactions left: the stand-in for read_committed -------------------- */

static int64_t high_watermark(fx_t *fx, int32_t partition)
{
    int64_t lo, hi;
    for (int tries = 0; tries < 100; tries++) { /* a broker may be down for a moment */
        if (!rd_kafka_query_watermark_offsets(fx->reader, OUT_TOPIC, partition, &lo, &hi, 1000))
            return hi;
        usleep(100 * 1000);
    }
    fail_msg("no high watermark of %s [%d]", OUT_TOPIC, partition);
    return -1;
}

/* Every output record up to now belongs to a transaction that has ended (or to an instance
 * that has stopped): closes their ranges, committed only when @p committed. */
static void close_ranges(fx_t *fx, int committed)
{
    for (int32_t i = 0; i < PARTS; i++) {
        int64_t hi = high_watermark(fx, i);
        if (committed && hi > fx->end[i]) {
            assert_true(fx->ncommitted < MAX_RANGES);
            fx->committed[fx->ncommitted++] = (range_t){i, fx->end[i], hi};
        }
        fx->end[i] = hi;
    }
}

/* The transaction callback: the range of the transaction, and the broker's side of a commit
 * that the mock leaves out (the group's offsets). */
static void on_txn(enr_err_t result, int64_t events, int64_t txn_ms, int64_t commit_ms,
                   void *opaque)
{
    fx_t *fx = opaque;
    (void)txn_ms, (void)commit_ms;
    fx->last_result = result;
    close_ranges(fx, result == ENR_OK);
    if (result == ENR_ERR_KAFKA)
        fx->aborts++;
    else if (result != ENR_OK)
        fx->stops++;
    if (result != ENR_OK)
        return;
    fx->commits++;
    if (events > fx->most_txn_events)
        fx->most_txn_events = events;
    rd_kafka_topic_partition_list_t *offsets = enr__owned_offsets(fx->p);
    /* A coordinator that just moved may not know the (static) member yet: the next commit's
     * offsets cover these, as a broker's would. */
    rd_kafka_resp_err_t err = offsets->cnt ? rd_kafka_commit(fx->p->consumer, offsets, 0) : 0;
    /* A member the group dropped meanwhile cannot commit here, though a broker would, from
     * the transaction: these offsets are then lost to the emulation, and the work after them
     * may be redone. Counted, so that a duplicate says so. */
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
        fx->offsets_refused++;
    else if (err)
        fail_msg("committing the group offsets: %s", rd_kafka_err2str(err));
    fx->input_committed = 0;
    /* A partition with nothing processed since it was assigned is not in the list. */
    for (int i = 0; i < offsets->cnt; i++)
        fx->input_offsets[offsets->elems[i].partition] = offsets->elems[i].offset;
    for (int i = 0; i < PARTS; i++)
        fx->input_committed += fx->input_offsets[i];
    rd_kafka_topic_partition_list_destroy(offsets);
}

/* ---- the processor ---------------------------------------------------------------------- */

static void start_processor(fx_t *fx)
{
    char errstr[512];
    enr_conf_t *conf = enr_conf_new();
    const char *const kv[][2] = {
        {"kafka.bootstrap.servers", fx->bootstrap},
        {"kafka.topic.metadata.refresh.interval.ms", "200"},
        /* The mock holds a group whose last member left for session.timeout.ms - 1 s before
         * it lets a new member in: a restarted processor would wait 44 s by default. (Not
         * under 3.5 s: a first join waits 3 s, and a member must outlive that wait.) */
        {"kafka.consumer.session.timeout.ms", fx->session_timeout ? fx->session_timeout : "4000"},
        {"kafka.consumer.heartbeat.interval.ms", "500"},
        {"kafka.producer.retries", "2"}, /* a Produce error past these aborts */
        {"kafka.producer.retry.backoff.ms", "20"},
        {"group.id", GROUP},
        {"transactional.id", TXN_ID},
        {"input.topics", IN_TOPIC},
        {"stages", fx->stages ? fx->stages : "clock"},
        {"txn.max.events", fx->txn_max_bytes ? "1000" : "20"},
        {"txn.max.ms", fx->txn_max_bytes ? "3000" : "200"},
        {"txn.max.bytes", fx->txn_max_bytes ? fx->txn_max_bytes : "4194304"},
        {"batch.max.events", "10"},
        {"rollback.max.bytes", fx->rollback_max_bytes ? fx->rollback_max_bytes : "8388608"},
        {"log.level", getenv("FT_DEBUG") ? "debug" : "info"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (enr_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i][0], errstr);
    if (getenv("FT_DEBUG")) /* librdkafka's debug contexts, e.g. FT_DEBUG=cgrp,eos */
        enr_conf_set(conf, "kafka.debug", getenv("FT_DEBUG"), errstr, sizeof(errstr));
    enr_conf_set_log_cb(conf, quiet, fx);
    enr_conf_set_txn_cb(conf, on_txn, fx);
    fx->p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!fx->p)
        fail_msg("enr_processor_new: %s", errstr);
}

/* Stops the processor; what it left uncommitted belongs to no committed range. */
static enr_err_t stop_processor(fx_t *fx, int timeout_ms)
{
    enr_err_t rc = enr_processor_destroy(fx->p, timeout_ms);
    fx->p = NULL;
    close_ranges(fx, 0);
    return rc;
}

/* Polls until @p done says so (returns 0), the processor stops (returns its error) or 30 s
 * pass (returns 0: the caller's checks then fail). */
static int run_until(fx_t *fx, int (*done)(const fx_t *fx, int64_t arg), int64_t arg)
{
    int64_t deadline = (int64_t)time(NULL) + 30;
    while (!done(fx, arg) && time(NULL) < deadline) {
        int rc = enr_poll(fx->p, 50);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int all_committed(const fx_t *fx, int64_t unused)
{
    (void)unused;
    return fx->input_committed >= N_EVENTS;
}

static int commits_reached(const fx_t *fx, int64_t n)
{
    return fx->commits >= n || all_committed(fx, 0);
}

static int aborts_reached(const fx_t *fx, int64_t n)
{
    return fx->aborts >= n;
}

/* Runs to the end; the committed output then holds every event exactly once. */
static void finish(fx_t *fx)
{
    assert_int_equal(run_until(fx, all_committed, 0), 0);
    assert_int_equal(fx->input_committed, N_EVENTS);
    assert_int_equal(stop_processor(fx, 5000), ENR_OK);
}

/* Reads the output back and keeps the committed ranges: each input event id exactly once. */
static void assert_exactly_once(fx_t *fx)
{
    int counts[N_EVENTS] = {0};
    for (int32_t part = 0; part < PARTS; part++) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, OUT_TOPIC, part)->offset = RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(fx->reader, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        int64_t next = 0;
        for (int64_t deadline = time(NULL) + 20; next < fx->end[part] && time(NULL) < deadline;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(fx->reader, 200);
            if (!m)
                continue;
            if (!m->err) {
                next = m->offset + 1;
                int in_committed = 0;
                for (int r = 0; r < fx->ncommitted; r++)
                    in_committed |= fx->committed[r].partition == part &&
                                    m->offset >= fx->committed[r].lo &&
                                    m->offset < fx->committed[r].hi;
                Userevents__EnrichedEvent *ee =
                    in_committed ? userevents__enriched_event__unpack(NULL, m->len, m->payload)
                                 : NULL;
                if (in_committed) {
                    assert_non_null(ee);
                    assert_int_equal(ee->event->event_id.len, 16);
                    int id = ee->event->event_id.data[14] << 8 | ee->event->event_id.data[15];
                    assert_true(id < N_EVENTS);
                    counts[id]++;
                }
                userevents__enriched_event__free_unpacked(ee, NULL);
            }
            rd_kafka_message_destroy(m);
        }
        assert_int_equal(next, fx->end[part]);
    }
    for (int i = 0; i < N_EVENTS; i++)
        if (counts[i] != 1)
            fail_msg("event %d is in the committed output %d times (the mock refused %d "
                     "emulated offset commits)",
                     i, counts[i], fx->offsets_refused);
}

/* ---- the faults ------------------------------------------------------------------------- */

typedef struct scenario {
    const char *request; /* for the messages */
    int16_t api;
    size_t n;
    rd_kafka_resp_err_t errors[8];
    expect_t expect;
    const char *reason; /* in enr_processor_last_error() when the processor stops */
} scenario_t;

/* Injects each fault of @p list in turn, each into a transaction in the middle of a run (after
 * one more commit: the group is joined, the producer has its id), and checks what it caused:
 * an abort and the work redone, or a stop with librdkafka's reason and a new instance with the
 * same transactional id that continues. Then runs to the end: every event exactly once. */
static void run_faults(fx_t *fx, const scenario_t *const *list, size_t n)
{
    start_processor(fx);
    for (size_t i = 0; i < n; i++) {
        const scenario_t *s = list[i];
        assert_int_equal(run_until(fx, commits_reached, fx->commits + 1), 0);
        assert_true(fx->input_committed < N_EVENTS); /* the fault must meet some work */
        int aborts = fx->aborts;
        rd_kafka_mock_push_request_errors_array(fx->mc, s->api, s->n, s->errors);
        int rc = run_until(fx, aborts_reached, aborts + 1);
        if (s->expect == ABORTED) {
            if (rc != 0 || fx->aborts == aborts)
                fail_msg("%s: no abort (enr_poll: %d)", s->request, rc);
            assert_int_equal(fx->stops, 0);
            assert_int_equal(enr_stat(fx->p, ENR_STAT_TXN_ABORTS), fx->aborts);
            assert_string_equal(enr_processor_last_error(fx->p), "");
            continue;
        }
        enr_err_t want = s->expect == FENCED ? ENR_ERR_FENCED : ENR_ERR_KAFKA_FATAL;
        if (rc != (int)want)
            fail_msg("%s: enr_poll returned %d, not %s", s->request, rc, enr_err2name(want));
        assert_int_equal(fx->last_result, want);    /* the callback said so too */
        assert_int_equal(enr_poll(fx->p, 0), want); /* and it stays stopped */
        assert_int_equal(fx->aborts, aborts);       /* nothing was aborted: it could not be */
        const char *why = enr_processor_last_error(fx->p);
        if (!strstr(why, s->reason))
            fail_msg("%s: last error \"%s\" does not say \"%s\"", s->request, why, s->reason);
        assert_int_equal(stop_processor(fx, 1000), want);
        start_processor(fx); /* fences what is left of the stopped one, and continues */
    }
    finish(fx);
    assert_exactly_once(fx);
}

#define E(x) RD_KAFKA_RESP_ERR_##x

/* abortable: the transaction is aborted, then redone */
static const scenario_t produce_abortable = {
    "produce",
    API_PRODUCE,
    8, /* kafka.producer.retries=2: a third one fails a partition's
        * records; the requests of each leader take from this stack */
    {E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS),
     E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS),
     E(NOT_ENOUGH_REPLICAS)},
    ABORTED,
    ""};
static const scenario_t add_partitions_abortable = {
    "add_partitions", API_ADD_PARTITIONS_TO_TXN, 1, {E(TOPIC_AUTHORIZATION_FAILED)}, ABORTED, ""};
static const scenario_t add_offsets_abortable = {
    "add_offsets", API_ADD_OFFSETS_TO_TXN, 1, {E(GROUP_AUTHORIZATION_FAILED)}, ABORTED, ""};
static const scenario_t txn_offset_commit_abortable = {
    "txn_offset_commit", API_TXN_OFFSET_COMMIT, 1, {E(GROUP_AUTHORIZATION_FAILED)}, ABORTED, ""};
static const scenario_t end_txn_abortable = {
    "end_txn", API_END_TXN, 1, {E(GROUP_AUTHORIZATION_FAILED)}, ABORTED, ""};

/* fatal: the processor stops with librdkafka's reason; a new instance continues */
static const scenario_t end_txn_invalid_epoch = {
    "end_txn", API_END_TXN, 1, {E(INVALID_PRODUCER_EPOCH)}, FENCED, "fenced"};
static const scenario_t end_txn_producer_fenced = {"end_txn", API_END_TXN, 1, {E(PRODUCER_FENCED)},
                                                   FENCED,    "fenced"};
static const scenario_t add_partitions_txn_id_denied = {"add_partitions",
                                                        API_ADD_PARTITIONS_TO_TXN,
                                                        1,
                                                        {E(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)},
                                                        FATAL,
                                                        "Transactional Id authorization failed"};
static const scenario_t end_txn_txn_id_denied = {
    "end_txn", API_END_TXN,
    1,         {E(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)},
    FATAL,     "Transactional Id authorization failed"};

/* Each step of a transaction failing for good, in turn: five aborts, five redos, each from
 * the stages' state as the last commit left it. */
static void test_abortable_errors_abort_and_the_redo_is_exactly_once(void **state)
{
    static const scenario_t *const list[] = {&produce_abortable, &add_partitions_abortable,
                                             &add_offsets_abortable, &txn_offset_commit_abortable,
                                             &end_txn_abortable};
    fx_t *fx = *state;
    fx->stages = "dedup,clock"; /* each redo passes the dedup state of the last commit */
    run_faults(fx, list, sizeof(list) / sizeof(list[0]));
    assert_true(fx->rolled_in_memory >= 5); /* the state fits rollback.max.bytes */
    assert_int_equal(fx->restores, 1);      /* the first take of the tasks only */
}

/* The same when no state fits rollback.max.bytes: every abort restores the tasks from their
 * changelog partitions instead of the in-memory image. Without dedup: the mock cluster does not
 * filter aborted transactions for read_committed readers (its Fetch lists none), so the
 * restore would read the aborted attempt's ids back and drop the redo as duplicates; a real
 * broker does filter them (make chaos meets this path whenever state outgrows the budget). */
static void test_abortable_errors_redone_from_the_changelog_are_exactly_once(void **state)
{
    static const scenario_t *const list[] = {&produce_abortable, &add_offsets_abortable,
                                             &end_txn_abortable};
    fx_t *fx = *state;
    fx->rollback_max_bytes = "0";
    run_faults(fx, list, sizeof(list) / sizeof(list[0]));
    assert_true(fx->restores >= 1 + 3); /* (a task with no state at all still rolls back in
                                         * memory: an empty image costs nothing) */
}

/* txn.max.bytes ends a transaction by what it produced, not by its events or age: with 1 KiB
 * (an enriched event here is ~100 bytes) the 120 events go in transactions of ~10 events each,
 * committed at once rather than after txn.max.ms; each exactly once. */
static void test_transactions_end_at_txn_max_bytes(void **state)
{
    fx_t *fx = *state;
    fx->txn_max_bytes = "1024";
    start_processor(fx);
    int64_t started = uc__mono_ms();
    finish(fx);
    assert_true(fx->commits >= 6);
    assert_true(fx->most_txn_events < 20);           /* 1 KiB, and at most one event past it */
    assert_true(uc__mono_ms() - started < 3000 * 6); /* not one transaction per txn.max.ms */
    assert_exactly_once(fx);
}

/* Fenced twice, then refused the transactional id: each instance stops with its reason. */
static void test_fatal_errors_stop_with_the_reason_and_a_restart_continues(void **state)
{
    static const scenario_t *const list[] = {&end_txn_invalid_epoch, &end_txn_producer_fenced,
                                             &add_partitions_txn_id_denied, &end_txn_txn_id_denied};
    run_faults(*state, list, sizeof(list) / sizeof(list[0]));
}

/* Retriable errors on each request of a transaction at once: librdkafka retries each inside
 * its call (kafka.producer.retries=2 allows two per Produce), so every transaction commits. */
static void test_retriable_errors_on_every_request_cost_no_abort(void **state)
{
    fx_t *fx = *state;
    start_processor(fx);
    assert_int_equal(run_until(fx, commits_reached, 1), 0);
    rd_kafka_mock_push_request_errors(fx->mc, API_PRODUCE, 2, E(NOT_ENOUGH_REPLICAS),
                                      E(REQUEST_TIMED_OUT));
    rd_kafka_mock_push_request_errors(fx->mc, API_ADD_PARTITIONS_TO_TXN, 3, E(NOT_COORDINATOR),
                                      E(COORDINATOR_NOT_AVAILABLE), E(CONCURRENT_TRANSACTIONS));
    rd_kafka_mock_push_request_errors(fx->mc, API_ADD_OFFSETS_TO_TXN, 3,
                                      E(COORDINATOR_NOT_AVAILABLE), E(NOT_COORDINATOR),
                                      E(CONCURRENT_TRANSACTIONS));
    rd_kafka_mock_push_request_errors(fx->mc, API_TXN_OFFSET_COMMIT, 3, E(NOT_COORDINATOR),
                                      E(COORDINATOR_NOT_AVAILABLE), E(REQUEST_TIMED_OUT));
    rd_kafka_mock_push_request_errors(fx->mc, API_END_TXN, 3, E(NOT_COORDINATOR),
                                      E(COORDINATOR_NOT_AVAILABLE), E(CONCURRENT_TRANSACTIONS));
    finish(fx);
    assert_int_equal(fx->aborts, 0);
    assert_int_equal(fx->stops, 0);
    assert_exactly_once(fx);
}

/* ---- the cluster moving under the processor -------------------------------------------- */

static void test_coordinators_moving_mid_run_cost_no_abort(void **state)
{
    fx_t *fx = *state;
    start_processor(fx);
    assert_int_equal(run_until(fx, commits_reached, 1), 0);
    rd_kafka_mock_coordinator_set(fx->mc, "transaction", TXN_ID, COORD + 1);
    mock_settle();
    rd_kafka_mock_coordinator_set(fx->mc, "group", GROUP, COORD + 2);
    finish(fx);
    assert_int_equal(fx->aborts, 0);
    assert_int_equal(fx->stops, 0);
    assert_exactly_once(fx);
}

/* The coordinator goes down while it holds an EndTxn (answered only after 2 s), and comes back
 * a second later: librdkafka resends the EndTxn once it reconnects. */
static void *coordinator_outage(void *arg)
{
    fx_t *fx = arg;
    size_t pending = 1;
    for (int i = 0; i < 1000 && pending > 0; i++) { /* until the EndTxn arrived */
        rd_kafka_mock_broker_error_stack_cnt(fx->mc, COORD, API_END_TXN, &pending);
        usleep(5 * 1000);
    }
    rd_kafka_mock_broker_set_down(fx->mc, COORD);
    usleep(1000 * 1000);
    rd_kafka_mock_broker_set_up(fx->mc, COORD);
    return NULL;
}

static void test_coordinator_down_mid_commit_loses_and_repeats_nothing(void **state)
{
    fx_t *fx = *state;
    pthread_t outage;
    /* The outage must not outlast the session: the mock would drop the member, and the
     * emulated offsets with it (on_txn()), where a broker keeps the transaction's. */
    fx->session_timeout = "10000";
    start_processor(fx);
    assert_int_equal(run_until(fx, commits_reached, 1), 0);
    rd_kafka_mock_broker_push_request_error_rtts(fx->mc, COORD, API_END_TXN, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR, 2000);
    assert_int_equal(pthread_create(&outage, NULL, coordinator_outage, fx), 0);
    int rc = run_until(fx, commits_reached, fx->commits + 1);
    pthread_join(outage, NULL);
    assert_int_equal(rc, 0);
    finish(fx);
    assert_int_equal(fx->stops, 0);
    assert_exactly_once(fx);
}

/* ---- bugs found here ------------------------------------------------------------------- */

static int txn_has_work(const fx_t *fx, int64_t unused)
{
    (void)unused;
    return fx->p->in_txn && fx->p->txn_events > 0;
}

/* A commit that times out goes on inside librdkafka, and the broker may commit it: calling
 * commit again resumes it. txn.c used to send the offsets again first, which librdkafka
 * refuses while a commit is under way (__CONFLICT), then abort, refused the same way, and
 * stop: the transaction committed on the broker while the processor reported it failed. */
static void test_commit_timing_out_is_resumed_not_restarted(void **state)
{
    fx_t *fx = *state;
    start_processor(fx);
    assert_int_equal(run_until(fx, commits_reached, 1), 0);
    assert_int_equal(run_until(fx, txn_has_work, 0), 0);
    /* The coordinator answers the next EndTxn after 1.5 s; the final commit may take 1 s. */
    rd_kafka_mock_broker_push_request_error_rtts(fx->mc, COORD, API_END_TXN, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR, 1500);
    int commits = fx->commits;
    assert_int_equal(stop_processor(fx, 1000), ENR_OK);
    assert_int_equal(fx->commits, commits + 1);
    assert_int_equal(fx->last_result, ENR_OK);
    start_processor(fx);
    finish(fx);
    assert_int_equal(fx->aborts, 0);
    assert_exactly_once(fx);
}

static int in_join_window(const fx_t *fx, int64_t unused)
{
    (void)unused;
    char *member = rd_kafka_memberid(fx->p->consumer);
    int joined = member && *member;
    rd_kafka_mem_free(fx->p->consumer, member);
    return joined || enr_stat(fx->p, ENR_STAT_REBALANCES) > 0;
}

/* librdkafka 2.0.2 aborts on an assert when a cooperative-sticky consumer is destroyed after
 * its JoinGroup was answered and before its first assignment (librdkafka #4312): a processor
 * stopped while it joined, as a daemon stopped right after its start is, took the process
 * down. Here the coordinator holds the SyncGroup answer for 3 s: the window is wide open. */
static void test_stopped_while_joining_it_closes_cleanly(void **state)
{
    fx_t *fx = *state;
    rd_kafka_mock_broker_push_request_error_rtts(fx->mc, COORD, API_SYNC_GROUP, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR, 3000);
    start_processor(fx);
    assert_int_equal(run_until(fx, in_join_window, 0), 0);
    assert_int_equal(enr_stat(fx->p, ENR_STAT_REBALANCES), 0); /* inside the window */
    assert_int_equal(stop_processor(fx, 1000), ENR_OK);
    start_processor(fx); /* and the group takes the next one as usual */
    finish(fx);
    assert_exactly_once(fx);
}

/* After an abort the consumer goes back to the group's committed offsets. When they cannot be
 * read (here: OffsetFetch refused once), txn.c used to go on with the offsets it had, none,
 * and read every partition again from its beginning: the committed work twice. */
static void test_rewind_that_cannot_read_the_committed_offsets_repeats_nothing(void **state)
{
    fx_t *fx = *state;
    start_processor(fx);
    assert_int_equal(run_until(fx, commits_reached, 1), 0);
    rd_kafka_mock_push_request_errors(fx->mc, API_OFFSET_FETCH, 1,
                                      E(GROUP_AUTHORIZATION_FAILED));
    mock_settle();
    rd_kafka_mock_push_request_errors(fx->mc, API_END_TXN, 1, E(GROUP_AUTHORIZATION_FAILED));
    int rc = run_until(fx, aborts_reached, 1);
    if (rc == 0) {
        finish(fx);
    } else { /* a processor that cannot rewind stops, and a restart continues */
        assert_int_equal(rc, ENR_ERR_KAFKA_FATAL);
        assert_int_equal(stop_processor(fx, 1000), ENR_ERR_KAFKA_FATAL);
        start_processor(fx);
        finish(fx);
    }
    assert_exactly_once(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retriable_errors_on_every_request_cost_no_abort, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_abortable_errors_abort_and_the_redo_is_exactly_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_abortable_errors_redone_from_the_changelog_are_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions_end_at_txn_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fatal_errors_stop_with_the_reason_and_a_restart_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinators_moving_mid_run_cost_no_abort, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_down_mid_commit_loses_and_repeats_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_timing_out_is_resumed_not_restarted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_rewind_that_cannot_read_the_committed_offsets_repeats_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_while_joining_it_closes_cleanly, setup,
                                        teardown),
    };
    if (getenv("FT_ONLY")) /* one test by name, e.g. FT_ONLY='*fatal*' */
        cmocka_set_test_filter(getenv("FT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
