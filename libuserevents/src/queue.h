/*
 * queue.h - the bounded in-memory hand-off between ue_track() callers and the background
 * thread.
 *
 * Many producers, one consumer. Bounded by events and by bytes; when full, the configured
 * policy decides: drop the newest (refuse), drop the oldest (evict), or block for a while.
 * The consumer takes everything queued at once, so the lock is held for O(1) per batch.
 */
#ifndef UE_QUEUE_H
#define UE_QUEUE_H

#include "record.h"

#include <pthread.h>
#include <stdint.h>

typedef enum ue__full_policy {
    UE__FULL_DROP_NEWEST = 0,
    UE__FULL_DROP_OLDEST = 1,
    UE__FULL_BLOCK = 2,
} ue__full_policy_t;

typedef struct ue__queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty; /* the consumer waits here */
    pthread_cond_t not_full;  /* blocked producers wait here */
    ue__record_t *head, *tail;
    size_t count, bytes;
    size_t max_count, max_bytes;
    uint64_t pushed, taken;   /* records ever queued, and ever popped or evicted: positions in
                               * queue order, for ue_flush_spooled() */
    ue__full_policy_t policy;
    int block_timeout_ms;
    int wakeup;               /* a flush or stop asked the consumer to stop lingering */
    /* What the waiting consumer waits for: producers signal only when it is reached, so a
     * busy stream of ue_track() calls does not wake the consumer for every event. */
    size_t wake_count, wake_bytes; /* SIZE_MAX: the consumer is not waiting */
    /* Records evicted or refused, kept for the delivery callback (bounded, see push). */
    ue__record_t *dropped_head, *dropped_tail;
    size_t dropped_count;
    size_t dropped_max;       /* 0: keep none, only count */
} ue__queue_t;

int ue__queue_init(ue__queue_t *q, size_t max_count, size_t max_bytes, ue__full_policy_t policy,
                   int block_timeout_ms, size_t dropped_max);
void ue__queue_destroy(ue__queue_t *q);

/*
 * Queues @p rec. Returns 0 when queued; n > 0 when it queued @p rec but evicted the n oldest
 * records (drop_oldest); -1 when it refused @p rec (drop_newest, or block timed out). On -1 the
 * record was either freed or kept for the delivery callback: never the caller's any more.
 */
int ue__queue_push(ue__queue_t *q, ue__record_t *rec);

/*
 * Takes up to @p max_count records / @p max_bytes from the head. Waits up to @p idle_ms for a
 * first record, then up to @p linger_ms for the batch to fill; a wakeup ends both waits.
 * Returns the list (may be NULL) and its length in *@p n.
 */
ue__record_t *ue__queue_pop_batch(ue__queue_t *q, size_t max_count, size_t max_bytes,
                                  int idle_ms, int linger_ms, size_t *n);

/* Takes the records dropped since the last call (for the delivery callback). */
ue__record_t *ue__queue_take_dropped(ue__queue_t *q);

/* Makes a lingering pop_batch return now. */
void ue__queue_wakeup(ue__queue_t *q);

size_t ue__queue_count(ue__queue_t *q);

/* Records ever queued / ever taken out (popped or evicted), in queue order. */
uint64_t ue__queue_pushed(ue__queue_t *q);
uint64_t ue__queue_taken(ue__queue_t *q);

#endif
