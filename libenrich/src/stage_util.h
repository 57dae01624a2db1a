/*
 * stage_util.h - small pieces the windowed built-in stages (window, anomaly) share, so the
 * rules they must agree on live in one place: event-time arithmetic that cannot overflow,
 * a reusable encoding buffer, and the closed horizon, the event time up to which windows are
 * closed, which only grows and is kept in the stage's changelog so that a restart never
 * reopens a closed window.
 */
#ifndef ENR_STAGE_UTIL_H
#define ENR_STAGE_UTIL_H

#include "stage.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Event times are clamped to +-2^60 ms (36 million years) and restored times must lie within
 * +-2^61, so window arithmetic never overflows.
 */
#define ENR__TIME_LIMIT (INT64_C(1) << 60)

/* Start of the window of @p size ms holding @p t: floor(t / size) * size, t clamped first. */
static inline int64_t enr__window_start(int64_t t, int64_t size)
{
    t = t < -ENR__TIME_LIMIT ? -ENR__TIME_LIMIT : t > ENR__TIME_LIMIT ? ENR__TIME_LIMIT : t;
    int64_t q = t / size;
    if (t % size < 0)
        q--;
    return q * size;
}

/* A restored time the window arithmetic can take without overflow. */
static inline int enr__time_ok(int64_t t)
{
    return t >= -2 * ENR__TIME_LIMIT && t <= 2 * ENR__TIME_LIMIT;
}

/* *@p buf grown to at least @p size bytes (*@p cap: its size); NULL, buffer kept, when out of
 * memory. */
uint8_t *enr__buf_reserve(uint8_t **buf, size_t *cap, size_t size);

/* The closed horizon: a window whose end is <= end is closed. */
typedef struct enr__horizon {
    int64_t end; /* INT64_MIN: nothing closed yet */
    int dirty;   /* moved since enr__horizon_persist() last wrote it */
} enr__horizon_t;

static inline void enr__horizon_init(enr__horizon_t *h)
{
    h->end = INT64_MIN;
    h->dirty = 0;
}

/* Moves the horizon to @p t when that is later; it never moves back. */
static inline void enr__horizon_raise(enr__horizon_t *h, int64_t t)
{
    if (t > h->end) {
        h->end = t;
        h->dirty = 1;
    }
}

/* At a flush: writes the horizon under @p key (8 bytes, little-endian) if it moved. */
void enr__horizon_persist(enr__horizon_t *h, enr_ctx_t *ctx, const void *key, size_t key_len);

/*
 * At restore: takes the horizon a changelog value holds (the later of it and the current one).
 * 0, or -1 when @p value is not a horizon; a delete (NULL) is ignored.
 */
int enr__horizon_restore(enr__horizon_t *h, const void *value, size_t value_len);

/*
 * What a processor's tasks send each other through the repartition topic (merge.c): the first
 * byte of a record says what it is. A window's partial is its changelog value (version 1); an
 * anomaly bucket's partial its count; a horizon says up to where the sending task has closed
 * its windows or buckets, so the merging task knows when a merged one is complete.
 */
enum {
    ENR__PARTIAL_WINDOW = 1,  /* stage_window.c's value: count, sum, users */
    ENR__HORIZON_WINDOW = 2,  /* 8 bytes: the closed horizon of a task's window stage */
    ENR__PARTIAL_ANOMALY = 3, /* 16 bytes: an anomaly bucket's start and event count (key:
                                 the type, so one task keeps each type's baseline) */
    ENR__HORIZON_ANOMALY = 4, /* 8 bytes: the closed horizon of a task's anomaly stage */
};

/* In a processor's task (ctx->sink->partial set): sends horizon @p h of kind @p kind to every
 * task. */
void enr__horizon_send(enr_ctx_t *ctx, uint8_t kind, int64_t h);

/* Reads a horizon record: 0 with its kind and value, or -1 when it is not one. */
int enr__horizon_decode(const void *value, size_t value_len, uint8_t *kind, int64_t *h);

#endif
