/*
 * owned.c - the input partitions a processor owns and how far each is processed. The offsets
 * a transaction commits come from here, never from librdkafka's consumer position: the
 * position counts records librdkafka handed out, and librdkafka 2.0's batch consume API
 * advanced it past records it then discarded at a rebalance (fixed upstream in 2.1), which
 * committed input the stages never saw. Here an offset moves only when its record has gone
 * through the stages inside the open transaction.
 *
 * A record of a partition the processor does not own, or before the offset it expects (a
 * stale prefetch after a rewind), is not processed.
 */
#include "processor.h"

#include <string.h>

/* The entry of @p topic / @p partition, or NULL; one lookup cached (records come in runs). */
static rd_kafka_topic_partition_t *find(enr_processor_t *p, const char *topic,
                                        int32_t partition)
{
    rd_kafka_topic_partition_t *last = p->owned_last;
    if (last && last->partition == partition && !strcmp(last->topic, topic))
        return last;
    last = rd_kafka_topic_partition_list_find(p->owned, topic, partition);
    if (last)
        p->owned_last = last;
    return last;
}

void enr__owned_set(enr_processor_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (p->owned)
        rd_kafka_topic_partition_list_destroy(p->owned);
    p->owned = parts ? rd_kafka_topic_partition_list_copy(parts)
                     : rd_kafka_topic_partition_list_new(0);
    p->owned_last = NULL;
}

int enr__owned_take(enr_processor_t *p, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_t *tp = find(p, topic, partition);
    if (!tp || (tp->offset >= 0 && offset < tp->offset))
        return 0;
    tp->offset = offset + 1;
    return 1;
}

rd_kafka_topic_partition_list_t *enr__owned_offsets(const enr_processor_t *p)
{
    rd_kafka_topic_partition_list_t *out = rd_kafka_topic_partition_list_new(p->owned->cnt);
    for (int i = 0; i < p->owned->cnt; i++)
        if (p->owned->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(out, p->owned->elems[i].topic,
                                              p->owned->elems[i].partition)
                ->offset = p->owned->elems[i].offset;
    return out;
}

void enr__owned_change(enr_processor_t *p, const rd_kafka_topic_partition_list_t *parts, int add)
{
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int have = rd_kafka_topic_partition_list_find(p->owned, tp->topic, tp->partition) != NULL;
        if (add && !have)
            rd_kafka_topic_partition_list_add(p->owned, tp->topic, tp->partition)->offset =
                RD_KAFKA_OFFSET_INVALID;
        else if (!add && have)
            rd_kafka_topic_partition_list_del(p->owned, tp->topic, tp->partition);
    }
    p->owned_last = NULL; /* the list may have moved */
}
