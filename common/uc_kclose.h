/*
 * uc_kclose.h - a consumer's close with a deadline. rd_kafka_consumer_close() waits without
 * one: librdkafka 2.0.2 blocks in it for as long as the group coordinator does not answer
 * (librdkafka #4519, still open), so a stopping sink or processor would hang with its broker.
 * This closes through rd_kafka_consumer_close_queue() and serves that queue itself, handing
 * revocations to the client's own rebalance callback, until the consumer is closed or the
 * deadline passes.
 */
#ifndef UC_KCLOSE_H
#define UC_KCLOSE_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef void uc__rebalance_fn(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque);

/* Leaves the group by monotonic @p deadline (uc__deadline_ms()). 0: closed; -1: it was not
 * by then, or the close could not start: destroy the handle with
 * RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, which does not wait again. */
int uc__consumer_close(rd_kafka_t *rk, uc__rebalance_fn *on_rebalance, void *opaque,
                       int64_t deadline);

#endif
