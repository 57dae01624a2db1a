/*
 * queue.c - bounded MPSC queue of records (see queue.h).
 */
#include "queue.h"
#include "uc_time.h"

#include <errno.h>
#include <stdlib.h>

int ue__queue_init(ue__queue_t *q, size_t max_count, size_t max_bytes, ue__full_policy_t policy,
                   int block_timeout_ms, size_t dropped_max)
{
    pthread_condattr_t attr;

    *q = (ue__queue_t){.wake_count = SIZE_MAX,
                       .wake_bytes = SIZE_MAX,
                       .max_count = max_count,
                       .max_bytes = max_bytes,
                       .policy = policy,
                       .block_timeout_ms = block_timeout_ms,
                       .dropped_max = dropped_max};
    if (pthread_mutex_init(&q->lock, NULL))
        return -1;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &attr);
    pthread_cond_init(&q->not_full, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

void ue__queue_destroy(ue__queue_t *q)
{
    ue__record_free_list(q->head);
    ue__record_free_list(q->dropped_head);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->lock);
}

static struct timespec abs_time_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static int has_room(const ue__queue_t *q, size_t size)
{
    /* An event larger than the whole byte budget still passes into an empty queue. */
    return q->count < q->max_count && (q->bytes + size <= q->max_bytes || q->count == 0);
}

/* Keeps a dropped record for the delivery callback, or frees it past the bound. */
static void keep_dropped(ue__queue_t *q, ue__record_t *rec)
{
    if (q->dropped_count >= q->dropped_max) {
        free(rec);
        return;
    }
    rec->next = NULL;
    if (q->dropped_tail)
        q->dropped_tail->next = rec;
    else
        q->dropped_head = rec;
    q->dropped_tail = rec;
    q->dropped_count++;
}

static void append(ue__queue_t *q, ue__record_t *rec, size_t size)
{
    rec->next = NULL;
    if (q->tail)
        q->tail->next = rec;
    else
        q->head = rec;
    q->tail = rec;
    q->count++;
    q->bytes += size;
    q->pushed++;
}

int ue__queue_push(ue__queue_t *q, ue__record_t *rec)
{
    size_t size = ue__record_size(rec);
    int rc = 0;

    pthread_mutex_lock(&q->lock);
    if (!has_room(q, size)) {
        if (q->policy == UE__FULL_BLOCK) {
            struct timespec until = abs_time_in(q->block_timeout_ms);
            while (!has_room(q, size))
                if (pthread_cond_timedwait(&q->not_full, &q->lock, &until) == ETIMEDOUT)
                    break;
        } else if (q->policy == UE__FULL_DROP_OLDEST) {
            while (!has_room(q, size) && q->head) {
                ue__record_t *old = q->head;
                q->head = old->next;
                if (!q->head)
                    q->tail = NULL;
                q->count--;
                q->bytes -= ue__record_size(old);
                q->taken++;
                keep_dropped(q, old);
                rc++;
            }
        }
        if (!has_room(q, size)) {
            keep_dropped(q, rec);
            pthread_mutex_unlock(&q->lock);
            return -1;
        }
    }
    append(q, rec, size);
    if (q->count >= q->wake_count || q->bytes >= q->wake_bytes)
        pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

ue__record_t *ue__queue_pop_batch(ue__queue_t *q, size_t max_count, size_t max_bytes,
                                  int idle_ms, int linger_ms, size_t *n)
{
    ue__record_t *head, *last = NULL;
    size_t count = 0, bytes = 0;

    pthread_mutex_lock(&q->lock);
    if (idle_ms > 0 && q->count == 0 && !q->wakeup) {
        struct timespec until = abs_time_in(idle_ms);
        q->wake_count = 1;
        while (q->count == 0 && !q->wakeup)
            if (pthread_cond_timedwait(&q->not_empty, &q->lock, &until) == ETIMEDOUT)
                break;
    }
    if (q->count > 0 && linger_ms > 0 && q->count < max_count && q->bytes < max_bytes &&
        !q->wakeup) {
        struct timespec until = abs_time_in(linger_ms);
        q->wake_count = max_count;
        q->wake_bytes = max_bytes;
        while (q->count < max_count && q->bytes < max_bytes && !q->wakeup)
            if (pthread_cond_timedwait(&q->not_empty, &q->lock, &until) == ETIMEDOUT)
                break;
    }
    q->wake_count = q->wake_bytes = SIZE_MAX;
    q->wakeup = 0;
    head = q->head;
    for (ue__record_t *r = head; r && count < max_count; r = r->next) {
        size_t size = ue__record_size(r);
        if (count > 0 && bytes + size > max_bytes)
            break;
        bytes += size;
        count++;
        last = r;
    }
    if (last) {
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
        q->count -= count;
        q->bytes -= bytes;
        q->taken += count;
        pthread_cond_broadcast(&q->not_full);
    } else {
        head = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    *n = count;
    return head;
}

ue__record_t *ue__queue_take_dropped(ue__queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    ue__record_t *head = q->dropped_head;
    q->dropped_head = q->dropped_tail = NULL;
    q->dropped_count = 0;
    pthread_mutex_unlock(&q->lock);
    return head;
}

void ue__queue_wakeup(ue__queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->wakeup = 1;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

size_t ue__queue_count(ue__queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

uint64_t ue__queue_pushed(ue__queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->pushed;
    pthread_mutex_unlock(&q->lock);
    return n;
}

uint64_t ue__queue_taken(ue__queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->taken;
    pthread_mutex_unlock(&q->lock);
    return n;
}
