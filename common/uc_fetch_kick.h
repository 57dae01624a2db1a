/*
 * uc_fetch_kick.h - keeps librdkafka 2.0's fetcher busy with a small prefetch.
 *
 * Before 2.1 a consumer whose queue reached queued.min.messages decides to fetch again only
 * on its broker thread's own I/O or once a second: once the application has emptied that
 * queue it waits up to a second for new records. A prefetch big enough to cover that second
 * costs tens of MB at 100k records/s. Instead, once the queue that was full is nearly empty,
 * ask a partition leader for its watermarks: the answer wakes that broker thread, which
 * fetches at once. Round-robin over the assignment reaches every leader.
 */
#ifndef UC_FETCH_KICK_H
#define UC_FETCH_KICK_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct uc__fetch_kick {
    int64_t full;    /* the consumer's queued.min.messages; 0: never kick */
    int parked;      /* the queue reached it: fetching has stopped */
    unsigned next;   /* assigned partition the next kick asks about */
} uc__fetch_kick_t;

/* Reads queued.min.messages from the consumer configuration @p conf (before rd_kafka_new()). */
void uc__fetch_kick_init(uc__fetch_kick_t *k, const rd_kafka_conf_t *conf);

/* Call after consuming from @p queue: kicks when the queue was full and holds no more than
 * @p low records now. Blocks for one round trip (at most a second) when it kicks. */
void uc__fetch_kick(uc__fetch_kick_t *k, rd_kafka_t *rk, rd_kafka_queue_t *queue, int64_t low);

#endif
