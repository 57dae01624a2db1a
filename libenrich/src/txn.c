/*
 * txn.c - the transaction of a processor: every output record, every changelog write and the
 * consumed offsets of one step go into one Kafka transaction, so a crash anywhere leaves
 * either all of a step or none of it. An error the transaction cannot survive aborts it and
 * rewinds the stages and the consumer to the last commit, as if the aborted work never ran.
 */
#include "processor.h"
#include "ue_time.h"

#include <stdlib.h>
#include <string.h>

int enr__txn_begin(enr_processor_t *p)
{
    if (p->in_txn)
        return 0;
    rd_kafka_error_t *err = rd_kafka_begin_transaction(p->producer);
    if (err) {
        ue__log(&p->log, UE_LOG_ERR, "begin transaction: %s", rd_kafka_error_string(err));
        p->fatal = rd_kafka_error_is_fatal(err) ? ENR_ERR_FENCED : ENR_ERR_KAFKA;
        rd_kafka_error_destroy(err);
        return -1;
    }
    p->in_txn = 1;
    p->txn_started_ms = ue__mono_ms();
    p->commit_started_ms = 0;
    p->txn_events = 0;
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
    int64_t now = ue__mono_ms();
    int64_t started = p->commit_started_ms ? p->commit_started_ms : now;
    int was_inside = p->in_callback;
    p->in_callback = 1;
    cb(result, p->txn_events, now - p->txn_started_ms, now - started, p->conf->txn_opaque);
    p->in_callback = was_inside;
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
    if (err) {
        /* The transaction cannot commit without this record: make the commit abort. */
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        ue__log(&p->log, UE_LOG_ERR, "produce to %s: %s", topic, rd_kafka_err2str(err));
        p->produce_failed = 1;
    }
}

/* Sends the offsets and commits; returns the error (NULL on success) for the caller. */
static rd_kafka_error_t *send_and_commit(enr_processor_t *p, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *offsets = enr__owned_offsets(p);
    rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(p->consumer);
    rd_kafka_error_t *err = NULL;
    if (offsets && offsets->cnt > 0)
        err = rd_kafka_send_offsets_to_transaction(p->producer, offsets, cgmd, timeout_ms);
    if (!err)
        err = rd_kafka_commit_transaction(p->producer, timeout_ms);
    /* Stored (never committed: auto commit is off), so that the consumer's statistics measure
     * "consumer_lag_stored" from what the transaction committed. */
    if (!err && offsets && offsets->cnt > 0)
        rd_kafka_offsets_store(p->consumer, offsets);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (offsets)
        rd_kafka_topic_partition_list_destroy(offsets);
    return err;
}

enr_err_t enr__txn_commit(enr_processor_t *p, int timeout_ms)
{
    if (!p->in_txn)
        return ENR_OK;
    p->commit_started_ms = ue__mono_ms();
    enr__tasks_flush(p);
    if (p->produce_failed)
        return enr__txn_abort(p, "a record could not be produced");

    rd_kafka_error_t *err;
    int tries = 0;
    while ((err = send_and_commit(p, timeout_ms)) && rd_kafka_error_is_retriable(err) &&
           ++tries < 5) {
        ue__log(&p->log, UE_LOG_WARNING, "commit: %s; retrying", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
    }
    if (!err) {
        p->in_txn = 0;
        atomic_fetch_add(&p->stats[ENR_STAT_TXN_COMMITS], 1);
        report(p, ENR_OK);
        return ENR_OK;
    }
    char why[512];
    snprintf(why, sizeof(why), "commit: %s", rd_kafka_error_string(err));
    int abortable = rd_kafka_error_txn_requires_abort(err) || rd_kafka_error_is_retriable(err);
    int fatal = rd_kafka_error_is_fatal(err);
    rd_kafka_error_destroy(err);
    if (abortable)
        return enr__txn_abort(p, why);
    ue__log(&p->log, UE_LOG_ERR, "%s: fatal, the processor stops", why);
    p->fatal = fatal ? ENR_ERR_FENCED : ENR_ERR_KAFKA;
    report(p, p->fatal);
    return p->fatal;
}

/* Moves every assigned partition back to its committed offset, and expects it there. */
static void rewind_positions(enr_processor_t *p)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(p->consumer, &assigned))
        return;
    rd_kafka_committed(p->consumer, assigned, 10000);
    enr__owned_set(p, assigned); /* a record before these is a stale prefetch */
    for (int i = 0; i < assigned->cnt; i++)
        if (assigned->elems[i].offset < 0)
            assigned->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_error_t *err = rd_kafka_seek_partitions(p->consumer, assigned, 10000);
    if (err) {
        ue__log(&p->log, UE_LOG_ERR, "rewind: %s", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
    }
    rd_kafka_topic_partition_list_destroy(assigned);
}

enr_err_t enr__txn_abort(enr_processor_t *p, const char *why)
{
    ue__log(&p->log, UE_LOG_WARNING, "aborting the transaction (%s); redoing it", why);
    if (!p->commit_started_ms)
        p->commit_started_ms = ue__mono_ms();
    rd_kafka_error_t *err = rd_kafka_abort_transaction(p->producer, 30000);
    p->in_txn = 0;
    if (err) {
        ue__log(&p->log, UE_LOG_ERR, "abort: %s", rd_kafka_error_string(err));
        p->fatal = rd_kafka_error_is_fatal(err) ? ENR_ERR_FENCED : ENR_ERR_KAFKA;
        rd_kafka_error_destroy(err);
        report(p, p->fatal);
        return p->fatal;
    }
    atomic_fetch_add(&p->stats[ENR_STAT_TXN_ABORTS], 1);
    p->produce_failed = 0;
    char errstr[512];
    if (enr__tasks_reload(p, errstr, sizeof(errstr))) {
        ue__log(&p->log, UE_LOG_ERR, "restore after abort: %s", errstr);
        p->fatal = ENR_ERR_KAFKA;
        report(p, p->fatal);
        return p->fatal;
    }
    rewind_positions(p);
    report(p, ENR_ERR_KAFKA);
    return ENR_OK;
}
