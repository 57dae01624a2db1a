/*
 * stats.c - statistics of a client: single counters and the JSON document of all of them.
 */
#include "client.h"
#include "uc_props.h"
#include "uc_fork.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const names[UE_STAT__CNT] = {
    [UE_STAT_TRACKED] = "tracked",
    [UE_STAT_QUEUED] = "queued",
    [UE_STAT_QUEUED_BYTES] = "queued_bytes",
    [UE_STAT_SPOOLED] = "spooled",
    [UE_STAT_SPOOL_BYTES] = "spool_bytes",
    [UE_STAT_SENT] = "sent",
    [UE_STAT_DELIVERED] = "delivered",
    [UE_STAT_RETRIES] = "retries",
    [UE_STAT_FAILED] = "failed",
    [UE_STAT_DROPPED_QUEUE_FULL] = "dropped_queue_full",
    [UE_STAT_DROPPED_SPOOL_FULL] = "dropped_spool_full",
    [UE_STAT_DROPPED_SPOOL_AGE] = "dropped_spool_age",
    [UE_STAT_DROPPED_SHUTDOWN] = "dropped_shutdown",
    [UE_STAT_BYTES_SENT] = "bytes_sent",
    [UE_STAT_REPLAYED] = "replayed",
    [UE_STAT_SPOOL_CORRUPT] = "spool_corrupt",
    [UE_STAT_SPOOL_WRITE_FAILED] = "spool_write_failed",
};

const char *ue_stat_name(ue_stat_t which)
{
    return (unsigned)which < UE_STAT__CNT ? names[which] : NULL;
}

int64_t ue_stat(ue_client_t *c, ue_stat_t which)
{
    if (!c || (unsigned)which >= UE_STAT__CNT)
        return -1;
    if (which == UE_STAT_QUEUED || which == UE_STAT_QUEUED_BYTES) {
        /* In a child after fork() the parent's threads are gone and may have held the lock
         * forever; nothing changes the queue there, so it is read without it. */
        int lock = c->fork_generation == uc__fork_generation();
        if (lock)
            pthread_mutex_lock(&c->queue.lock);
        size_t v = which == UE_STAT_QUEUED ? c->queue.count : c->queue.bytes;
        if (lock)
            pthread_mutex_unlock(&c->queue.lock);
        return (int64_t)v;
    }
    return atomic_load_explicit(&c->stats[which].v, memory_order_relaxed);
}

static int64_t stat_of(void *client, int i)
{
    return ue_stat(client, (ue_stat_t)i);
}

size_t ue_stats_json(ue_client_t *c, char *buf, size_t size)
{
    return uc__stats_json(names, UE_STAT__CNT, stat_of, c, buf, size);
}

size_t ue_kafka_stats_json(ue_client_t *c, char *buf, size_t size)
{
    if (buf && size)
        buf[0] = '\0';
    /* After fork() the transport belongs to the parent's threads (and maybe their lock). */
    if (!c || !c->transport || !c->transport->ops->stats_json ||
        c->fork_generation != uc__fork_generation())
        return 0;
    return c->transport->ops->stats_json(c->transport, buf, size);
}
