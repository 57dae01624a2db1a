/*
 * image.h - a task's committed state as its changelog partition holds it once compacted: the
 * last value of every key, in the order of those last writes. An aborted transaction rolls
 * the task back to it in memory (fresh stages, the image replayed) instead of reading the
 * whole changelog partition again from Kafka: after a rebalance's abort that read cost every
 * task of the processor seconds of standstill.
 *
 * Writes of the open transaction wait apart (staged) until it commits, when they enter the
 * image, or aborts, when they are forgotten. A NULL value is a delete (Kafka's tombstone).
 */
#ifndef ENR_IMAGE_H
#define ENR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct enr__image enr__image_t;

/*
 * The memory the images of one processor may hold together. An image that would take it past
 * max gives up (frees what it holds; enr__image_ok() says 0): that task rolls back from Kafka,
 * which restores a partition at fetch speed. Small state rolls back in memory, large state
 * does not hold a second copy of itself.
 */
typedef struct enr__image_budget {
    size_t max;  /* bytes; SIZE_MAX: no limit */
    size_t used; /* what the images hold now */
} enr__image_budget_t;

/* An empty image that draws on @p budget (shared, not owned; NULL: unlimited), or NULL when
 * out of memory. */
enr__image_t *enr__image_new(enr__image_budget_t *budget);
void enr__image_free(enr__image_t *im);

/* A committed record (a restore reading the changelog): it enters the image now. 0, or -1
 * when out of memory or over budget (the image is then unusable: enr__image_ok() says so). */
int enr__image_put(enr__image_t *im, const void *key, size_t key_len, const void *value,
                   size_t value_len);

/* A write of the open transaction, kept apart until enr__image_commit(). 0 or -1 (as above). */
int enr__image_stage(enr__image_t *im, const void *key, size_t key_len, const void *value,
                     size_t value_len);

/* The open transaction committed: its staged writes enter the image, in their order. */
void enr__image_commit(enr__image_t *im);

/* The open transaction aborted: its staged writes are forgotten. */
void enr__image_discard(enr__image_t *im);

/* 1 while the image holds the committed state; 0 after running out of memory or budget (roll
 * back from the changelog instead). */
int enr__image_ok(const enr__image_t *im);

/* Hands every entry to @p apply, oldest last write first: what a restore of the compacted
 * changelog partition would read. */
void enr__image_replay(const enr__image_t *im,
                       void (*apply)(void *opaque, const void *key, size_t key_len,
                                     const void *value, size_t value_len),
                       void *opaque);

/* Entries, and the bytes of their keys and values. */
size_t enr__image_count(const enr__image_t *im);
size_t enr__image_bytes(const enr__image_t *im);

#endif
