/*
 * uc_fetch_kick.c - see uc_fetch_kick.h.
 */
#include "uc_fetch_kick.h"
#include "uc_props.h"

void uc__fetch_kick_init(uc__fetch_kick_t *k, const rd_kafka_conf_t *conf)
{
    k->full = uc__kafka_conf_int(conf, "queued.min.messages", 0);
    k->parked = 0;
    k->next = 0;
}

void uc__fetch_kick(uc__fetch_kick_t *k, rd_kafka_t *rk, rd_kafka_queue_t *queue, int64_t low)
{
    if (k->full <= 0)
        return;
    int64_t queued = (int64_t)rd_kafka_queue_length(queue);
    if (queued >= k->full)
        k->parked = 1;
    if (!k->parked || queued > low)
        return;
    k->parked = 0;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) || !parts)
        return;
    if (parts->cnt > 0) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[k->next++ % (unsigned)parts->cnt];
        int64_t lo, hi;
        rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, 1000);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}
