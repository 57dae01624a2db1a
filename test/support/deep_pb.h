/*
 * deep_pb.h - hostile Protobuf payloads for the tests of uc__pb_unpack() and its callers: an
 * Event, EnrichedEvent, UserProfile or EventBatch whose one property (or trait) is a Value
 * holding ListValues nested @p lists deep around an integer. 6,000 lists take 42 KB and would
 * overflow an 8 MB stack inside protobuf-c's recursive unpack.
 *
 * The bytes are written directly, from the end of the buffer backwards, so that every length
 * is known when its tag is written: protobuf-c's pack recurses too, and no struct tree of that
 * depth is ever built. Header-only (static functions): unit and integration tests link
 * different support objects.
 *
 * Depth as uc__pb_check() counts it: the Event is level 1, the property's map entry 2, its
 * Value 3, and each list adds two (ListValue, Value): 14 lists reach level 31, 15 level 33.
 */
#ifndef UE_DEEP_PB_H
#define UE_DEEP_PB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct dp_buf {
    uint8_t *p;
    size_t cap, off; /* the bytes are p[off .. cap) */
} dp_buf_t;

static inline size_t dp_len(const dp_buf_t *d)
{
    return d->cap - d->off;
}

static inline void dp_put(dp_buf_t *d, const void *bytes, size_t n)
{
    if (n > d->off)
        abort(); /* the capacity below is computed for the largest payload */
    d->off -= n;
    memcpy(d->p + d->off, bytes, n);
}

static inline void dp_varint(dp_buf_t *d, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    dp_put(d, tmp, n);
}

/* Prepends field @p field, wire type 0 (varint). */
static inline void dp_uint(dp_buf_t *d, unsigned field, uint64_t v)
{
    dp_varint(d, v);
    dp_varint(d, (uint64_t)field << 3);
}

/* Prepends field @p field, wire type 2, holding @p n bytes. */
static inline void dp_bytes(dp_buf_t *d, unsigned field, const void *bytes, size_t n)
{
    dp_put(d, bytes, n);
    dp_varint(d, n);
    dp_varint(d, (uint64_t)field << 3 | 2);
}

/* Makes everything written since @p mark (a dp_len()) the content of field @p field. */
static inline void dp_wrap(dp_buf_t *d, size_t mark, unsigned field)
{
    dp_varint(d, dp_len(d) - mark);
    dp_varint(d, (uint64_t)field << 3 | 2);
}

/* Prepends a map entry {1: @p key, 2: Value of @p lists nested lists} as field @p field. */
static inline void dp_deep_entry(dp_buf_t *d, unsigned field, const char *key, int lists)
{
    size_t mark = dp_len(d);
    dp_uint(d, 2, 1); /* Value.int_value = 1 */
    for (int i = 0; i < lists; i++) {
        dp_wrap(d, mark, 1); /* ListValue.values = [that Value] */
        dp_wrap(d, mark, 5); /* Value.list_value = that ListValue */
    }
    dp_wrap(d, mark, 2);
    dp_bytes(d, 1, key, strlen(key));
    dp_wrap(d, mark, field);
}

static inline dp_buf_t dp_new(int lists)
{
    dp_buf_t d;
    d.cap = (size_t)(lists > 0 ? lists : 0) * 12 + 512;
    d.off = d.cap;
    d.p = malloc(d.cap);
    if (!d.p)
        abort();
    return d;
}

/* Moves the bytes to the start of a malloc'd block the caller frees; *@p len their length. */
static inline uint8_t *dp_finish(dp_buf_t *d, size_t *len)
{
    *len = dp_len(d);
    memmove(d->p, d->p + d->off, *len);
    return d->p;
}

/* Prepends a valid Event (id @p id_byte, type "click", user "u1") with the deep property. */
static inline void dp_event_into(dp_buf_t *d, int lists, uint8_t id_byte)
{
    uint8_t id[16] = {0x01, 0x8f, 0, 0, 0, 0, 0x70, 0, 0x80};
    id[15] = id_byte;
    dp_uint(d, 11, 1);                      /* schema_version */
    dp_deep_entry(d, 9, "deep", lists);     /* properties */
    dp_uint(d, 6, UINT64_C(1790000040000)); /* timestamp_ms */
    dp_bytes(d, 3, "u1", 2);                /* user_id */
    dp_bytes(d, 2, "click", 5);             /* type */
    dp_bytes(d, 1, id, sizeof(id));         /* event_id */
}

/* A userevents.Event (proto/userevents.proto). */
static inline uint8_t *dp_event(int lists, size_t *len)
{
    dp_buf_t d = dp_new(lists);
    dp_event_into(&d, lists, 1);
    return dp_finish(&d, len);
}

/* A userevents.EnrichedEvent (proto/enriched.proto) wrapping that Event. */
static inline uint8_t *dp_enriched(int lists, size_t *len)
{
    dp_buf_t d = dp_new(lists);
    dp_uint(&d, 2, UINT64_C(1790000041000)); /* received_at_ms */
    size_t mark = dp_len(&d);
    dp_event_into(&d, lists, 1);
    dp_wrap(&d, mark, 1);
    return dp_finish(&d, len);
}

/* A userevents.UserProfile of "u1" whose trait "deep" is nested @p lists deep. */
static inline uint8_t *dp_profile(int lists, size_t *len)
{
    dp_buf_t d = dp_new(lists);
    dp_bytes(&d, 4, "pro", 3);           /* plan */
    dp_deep_entry(&d, 7, "deep", lists); /* traits */
    dp_bytes(&d, 1, "u1", 2);            /* user_id */
    return dp_finish(&d, len);
}

/* A userevents.EventBatch (proto/collector.proto) of one such Event. */
static inline uint8_t *dp_batch(int lists, size_t *len)
{
    dp_buf_t d = dp_new(lists);
    dp_event_into(&d, lists, 1);
    dp_wrap(&d, 0, 1);
    return dp_finish(&d, len);
}

#endif
