/*
 * txn.c - the transaction of a processor: every output record, every changelog write and the
 * consumed offsets of one step go into one Kafka transaction, so a crash anywhere leaves
 * either all of a step or none of it. An error the transaction cannot survive aborts it and
 * rewinds the stages and the consumer to the last commit, as if the aborted work never ran.
 */
#include "processor.h"
#include "uc_time.h"

#include <stdlib.h>
#include <string.h>

/* A fence: ENR_ERR_SELF_FENCED when it follows the processor's own session timeout or a
 * transaction open past its timeout (enr__fence_is_own()), else ENR_ERR_FENCED (another instance
 * took over the transactional id); every other error the processor cannot go on after is
 * ENR_ERR_KAFKA_FATAL, its text kept. */
static enr_err_t fatal_code(const enr_processor_t *p, const rd_kafka_error_t *err)
{
    switch (rd_kafka_error_code(err)) {
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        return enr__fence_is_own(p) ? ENR_ERR_SELF_FENCED : ENR_ERR_FENCED;
    default:
        return ENR_ERR_KAFKA_FATAL;
    }
}

const char *enr_processor_last_error(enr_processor_t *p)
{
    return p ? p->last_error : "";
}

int enr__txn_begin(enr_processor_t *p)
{
    if (p->in_txn)
        return 0;
    rd_kafka_error_t *err = rd_kafka_begin_transaction(p->producer);
    if (err) {
        char why[512];
        snprintf(why, sizeof(why), "begin transaction: %s", rd_kafka_error_string(err));
        enr__processor_fail(p, fatal_code(p, err), why);
        rd_kafka_error_destroy(err);
        return -1;
    }
    p->in_txn = 1;
    p->txn_started_ms = uc__mono_ms();
    p->commit_started_ms = 0;
    p->txn_events = 0;
    p->txn_bytes = 0;
    return 0;
}

/* Tells the transaction callback how the open transaction ended. Recursive calls into the
 * processor from inside it are refused (in_callback), also when it runs inside the rebalance
 * callback. */
static void report(enr_processor_t *p, enr_err_t result)
{
    enr_txn_cb_t *cb = p->conf->txn_cb;
    if (!cb)
        return;
    int64_t now = uc__mono_ms();
    int64_t started = p->commit_started_ms ? p->commit_started_ms : now;
    int was_inside = p->in_callback;
    p->in_callback = 1;
    cb(result, p->txn_events, now - p->txn_started_ms, now - started, p->conf->txn_opaque);
    p->in_callback = was_inside;
}

/* The open transaction can neither commit nor be aborted here: stop, and say so. */
static enr_err_t stop(enr_processor_t *p, enr_err_t code, const char *why)
{
    enr__processor_fail(p, code, why);
    report(p, p->fatal);
    return p->fatal;
}

void enr__txn_produce(enr_processor_t *p, const char *topic, int32_t partition, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      rd_kafka_headers_t *hdrs)
{
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(
            p->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(p->producer, 10); /* the producer queue drains as batches are acked */
    }
    p->txn_bytes += (int64_t)(key_len + value_len);
    if (err) {
        /* The transaction cannot commit without this record: make the commit abort. */
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        uc__log(&p->log, UC_LOG_ERR, "produce to %s: %s", topic, rd_kafka_err2str(err));
        p->produce_failed = 1;
    }
}

#define TRIES 5 /* of a transactional call that fails retriably */

/* 1 when the call that returned *@p err is to be made again: the error is retriable and tries
 * remain (it is then logged and freed). */
static int again(enr_processor_t *p, rd_kafka_error_t **err, int tries, const char *what)
{
    if (!*err || !rd_kafka_error_is_retriable(*err) || tries >= TRIES)
        return 0;
    uc__log(&p->log, UC_LOG_WARNING, "%s: %s; retrying", what, rd_kafka_error_string(*err));
    rd_kafka_error_destroy(*err);
    *err = NULL;
    return 1;
}

/* Sends the offsets and commits; returns the error (NULL on success), with *@p committing set
 * when it is the commit's. Each call is retried on its own: a commit that failed retriably (a
 * timeout) goes on inside librdkafka and may have reached the broker, so only calling commit
 * again resumes it; librdkafka refuses any other transactional call, the offsets or an abort,
 * until the commit has its answer. */
static rd_kafka_error_t *send_and_commit(enr_processor_t *p, int timeout_ms, int *committing)
{
    rd_kafka_topic_partition_list_t *offsets = enr__owned_offsets(p);
    rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(p->consumer);
    rd_kafka_error_t *err = NULL;
    int tries = 0;
    if (offsets->cnt > 0)
        do
            err = rd_kafka_send_offsets_to_transaction(p->producer, offsets, cgmd, timeout_ms);
        while (again(p, &err, ++tries, "send offsets"));
    *committing = !err;
    tries = 0;
    if (!err)
        do
            err = rd_kafka_commit_transaction(p->producer, timeout_ms);
        while (again(p, &err, ++tries, "commit"));
    /* Stored (never committed: auto commit is off), so that the consumer's statistics measure
     * "consumer_lag_stored" from what the transaction committed. */
    if (!err && offsets->cnt > 0)
        rd_kafka_offsets_store(p->consumer, offsets);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offsets);
    return err;
}

enr_err_t enr__txn_commit(enr_processor_t *p, int timeout_ms)
{
    if (!p->in_txn)
        return ENR_OK;
    p->commit_started_ms = uc__mono_ms();
    enr__tasks_flush(p);
    if (p->produce_failed)
        return enr__txn_abort(p, "a record could not be produced");

    int committing;
    rd_kafka_error_t *err = send_and_commit(p, timeout_ms, &committing);
    if (!err) {
        p->in_txn = 0;
        enr__tasks_committed(p);
        atomic_fetch_add(&p->stats[ENR_STAT_TXN_COMMITS], 1);
        report(p, ENR_OK);
        return ENR_OK;
    }
    char why[512];
    snprintf(why, sizeof(why), "commit: %s", rd_kafka_error_string(err));
    /* A commit still retriable after every try has an outcome nobody knows yet, and cannot be
     * aborted: stop, and let the next instance's start settle it. */
    int abortable = rd_kafka_error_txn_requires_abort(err) ||
                    (rd_kafka_error_is_retriable(err) && !committing);
    enr_err_t code = fatal_code(p, err);
    rd_kafka_error_destroy(err);
    if (abortable)
        return enr__txn_abort(p, why);
    return stop(p, code, why);
}

/* The error of rd_kafka_committed() on @p parts, or of one of its partitions. */
static rd_kafka_resp_err_t read_committed(enr_processor_t *p,
                                          rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err = rd_kafka_committed(p->consumer, parts, 10000);
    for (int i = 0; !err && i < parts->cnt; i++)
        err = parts->elems[i].err;
    return err;
}

/* Moves every assigned partition back to its committed offset, and expects it there. 0, or -1
 * with the reason in @p errstr: without the committed offsets the consumer would go on from
 * where it was (the aborted work lost) or from the beginning (the committed work twice). */
static int rewind_positions(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(p->consumer, &assigned))
        return 0; /* nothing assigned: nothing to rewind */
    if (assigned->cnt == 0) { /* every task was lost: nothing to rewind */
        rd_kafka_topic_partition_list_destroy(assigned);
        return 0;
    }
    rd_kafka_resp_err_t err;
    for (int tries = 1; (err = read_committed(p, assigned)) && tries < TRIES; tries++)
        uc__log(&p->log, UC_LOG_WARNING, "rewind: committed offsets: %s; retrying",
                rd_kafka_err2str(err));
    rd_kafka_error_t *error = NULL;
    if (!err) {
        enr__owned_set(p, assigned); /* a record before these is a stale prefetch */
        for (int i = 0; i < assigned->cnt; i++)
            if (assigned->elems[i].offset < 0)
                assigned->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        error = rd_kafka_seek_partitions(p->consumer, assigned, 10000);
        for (int i = 0; !error && !err && i < assigned->cnt; i++)
            err = assigned->elems[i].err;
    }
    if (err || error)
        uc__errstr(errstr, errstr_size, "rewind after abort: %s",
                   error ? rd_kafka_error_string(error) : rd_kafka_err2str(err));
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(assigned);
    return err || error ? -1 : 0;
}

enr_err_t enr__txn_abort(enr_processor_t *p, const char *why)
{
    uc__log(&p->log, UC_LOG_WARNING, "aborting the transaction (%s); redoing it", why);
    if (!p->commit_started_ms)
        p->commit_started_ms = uc__mono_ms();
    rd_kafka_error_t *err;
    int tries = 0;
    do /* an abort that timed out goes on inside librdkafka: calling it again resumes it */
        err = rd_kafka_abort_transaction(p->producer, 30000);
    while (again(p, &err, ++tries, "abort"));
    p->in_txn = 0;
    if (err) {
        char fail[512];
        snprintf(fail, sizeof(fail), "abort: %s", rd_kafka_error_string(err));
        enr_err_t code = fatal_code(p, err);
        rd_kafka_error_destroy(err);
        return stop(p, code, fail);
    }
    atomic_fetch_add(&p->stats[ENR_STAT_TXN_ABORTS], 1);
    p->produce_failed = 0;
    char errstr[512];
    if (enr__tasks_roll_back(p, errstr, sizeof(errstr))) {
        char fail[600];
        snprintf(fail, sizeof(fail), "roll back after abort: %s", errstr);
        return stop(p, ENR_ERR_KAFKA_FATAL, fail);
    }
    if (rewind_positions(p, errstr, sizeof(errstr)))
        return stop(p, ENR_ERR_KAFKA_FATAL, errstr);
    report(p, ENR_ERR_KAFKA);
    return ENR_OK;
}
