/*
 * uc_kclose.c - a consumer's close with a deadline (see uc_kclose.h).
 */
#include "uc_kclose.h"

#include "uc_time.h"

int uc__consumer_close(rd_kafka_t *rk, uc__rebalance_fn *on_rebalance, void *opaque,
                       int64_t deadline)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rk, q);
    if (error) {
        rd_kafka_error_destroy(error);
        rd_kafka_queue_destroy(q);
        return -1;
    }
    /* Served here, the queue gives events, not callbacks: a revocation is a REBALANCE event
     * the client's callback answers with its unassign; records and errors of a closing
     * consumer are dropped, as rd_kafka_consumer_close() drops them. */
    while (!rd_kafka_consumer_closed(rk) && uc__mono_ms() < deadline) {
        int wait = uc__remaining_ms(deadline);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, wait < 100 ? wait : 100);
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            on_rebalance(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         opaque);
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    int closed = rd_kafka_consumer_closed(rk);
    rd_kafka_queue_destroy(q);
    return closed ? 0 : -1;
}
