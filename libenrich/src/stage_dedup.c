/*
 * stage_dedup.c - the "dedup" stage: drops an event whose 16-byte id was seen recently, which
 * turns the SDK's at-least-once delivery (a retry resends the same id) into exactly-once.
 *
 * The window: the ids seen, oldest first, in a ring of at most dedup.max.ids entries (id and
 * event time, 24 bytes) indexed by an open-addressing hash table (linear probing, load <= 1/2,
 * backward-shift deletion, no tombstones) of 4-byte slots: the ring index in the low bits, as
 * many high bits of the id's hash as are left above it (12 at a million ids), so a probe
 * rarely reads the ring. About 32-40 bytes per id in all.
 * An id is forgotten when it is the oldest and either the ring is full or its event time is
 * older than newest - dedup.window.ms (newest: the latest event time seen). Forgetting goes
 * in arrival order only, so an out-of-order id may be kept longer than the window, never less
 * long. Per event: one hash, one probe sequence, O(1) expected. Hash keys are random per
 * process (ids come from clients; decisions never depend on the hash).
 *
 * Event time here is the clock stage's corrected time (stage_clock.h), capped at the receive
 * time: a device with a wrong clock cannot move "newest" ahead and empty the window, and the
 * stage needs the clock stage neither before nor after it.
 *
 * Changelog (keys under this stage), ~24 bytes per new id:
 *   "d/<seq, 16 hex>"  a chunk: the ids added between two flushes (at most CHUNK_MAX per
 *                      record), numbered 0, 1, 2, ... in arrival order; deleted (NULL) once
 *                      every id in it was forgotten.
 *   "h"                where the window starts: newest, the first live chunk's seq and how
 *                      many of its ids were forgotten, and the next seq; written at each
 *                      flush that changed anything.
 * Restore needs only the latest value per key, in any order: it keeps the chunks at or after
 * the head's seq, sorts them by seq and replays them, which rebuilds the same ids in the same
 * order. Since there is no end-of-restore call, it does so at the first process or flush.
 */
#include "event.h"
#include "htab.h"
#include "le.h"
#include "stage.h"
#include "stage_clock.h"
#include "uc_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RING_MIN 1024
#define CHUNK_MAX 16384 /* ids per changelog record: 393 KiB, below Kafka's 1 MB default */
#define ENTRY_SIZE 24
#define VALUE_VERSION 1
#define CHUNK_HEADER 17 /* version, seq, count */
#define HEAD_SIZE 33    /* version, newest, head seq, head offset, next seq */

typedef struct entry {
    uint8_t id[16];
    int64_t t; /* event time when first seen */
} entry_t;

/* A table slot: 0 empty, else (tag << index_bits) | (ring index + 1). */
typedef uint32_t slot_t;

typedef struct chunk {
    uint64_t seq;
    uint64_t start, end; /* absolute positions of its first and past-last id */
} chunk_t;

typedef struct pchunk {
    uint64_t seq;
    size_t order; /* arrival, to keep the later of two records with one seq */
    size_t n;
    entry_t *v;
} pchunk_t;

/* What restore collected, turned into the window at the first process or flush. */
typedef struct pending {
    pchunk_t *v;
    size_t n, cap, purge_at, arrivals;
    int64_t newest;
    uint64_t head_seq, head_off, next_seq;
} pending_t;

typedef struct dedup {
    size_t max_ids;
    int64_t window_ms;
    uint64_t k0, k1; /* hash keys */
    entry_t *ring;
    size_t cap, head, count;
    uint64_t base; /* absolute position of ring[head] */
    slot_t *table;
    size_t mask;         /* slots - 1; an id's home slot is hash & mask */
    unsigned index_bits; /* of a slot: enough for cap + 1 values; the rest is tag */
    int64_t newest;
    /* changelog */
    uint64_t flushed; /* absolute position up to which ids went to the changelog */
    uint64_t next_seq;
    chunk_t *chunks; /* written and not yet wholly forgotten, oldest at chead */
    size_t chead, ccount, ccap;
    int head_dirty;
    uint8_t *buf;
    size_t buf_cap;
    pending_t *pending;
} dedup_t;

/* ---- the window ---------------------------------------------------------------------------- */

static uint64_t id_hash(const dedup_t *d, const uint8_t id[16])
{
    return enr__mix64(enr__le_load64(id) ^ d->k0) ^ enr__mix64(enr__le_load64(id + 8) ^ d->k1);
}

/* The slot bits above the index: the hash's top bits (the home slot uses its low bits). */
static uint32_t hash_tag(const dedup_t *d, uint64_t h)
{
    return (uint32_t)(h >> (32 + d->index_bits));
}

static size_t slot_index(const dedup_t *d, slot_t s) /* ring index + 1 */
{
    return s & ((UINT32_C(1) << d->index_bits) - 1);
}

/* Ring index of the @p k-th oldest id. */
static size_t ring_at(const dedup_t *d, size_t k)
{
    size_t i = d->head + k;
    return i >= d->cap ? i - d->cap : i;
}

static int table_has(const dedup_t *d, const uint8_t id[16], uint64_t h)
{
    if (!d->table)
        return 0;
    uint32_t tag = hash_tag(d, h);
    for (size_t i = h & d->mask; d->table[i]; i = (i + 1) & d->mask)
        if (d->table[i] >> d->index_bits == tag &&
            !memcmp(d->ring[slot_index(d, d->table[i]) - 1].id, id, 16))
            return 1;
    return 0;
}

static void table_add(dedup_t *d, size_t ring_idx, uint64_t h)
{
    size_t i = h & d->mask;
    while (d->table[i])
        i = (i + 1) & d->mask;
    d->table[i] = hash_tag(d, h) << d->index_bits | (slot_t)(ring_idx + 1);
}

/* Empties slot @p i, moving back later slots of its cluster that may use it (no tombstones).
 * A slot keeps too few hash bits for its home: the id in the ring gives it again. */
static void table_del(dedup_t *d, size_t i)
{
    for (size_t j = (i + 1) & d->mask; d->table[j]; j = (j + 1) & d->mask) {
        size_t home = id_hash(d, d->ring[slot_index(d, d->table[j]) - 1].id) & d->mask;
        if (((j - home) & d->mask) >= ((j - i) & d->mask)) { /* the hole is on its path */
            d->table[i] = d->table[j];
            i = j;
        }
    }
    d->table[i] = 0;
}

static void forget_oldest(dedup_t *d)
{
    size_t i = id_hash(d, d->ring[d->head].id) & d->mask;
    while (d->table[i] && slot_index(d, d->table[i]) != d->head + 1)
        i = (i + 1) & d->mask;
    if (d->table[i])
        table_del(d, i);
    d->head = d->head + 1 == d->cap ? 0 : d->head + 1;
    d->count--;
    d->base++;
}

/* Moves the window to a ring of @p cap entries and a table sized for it. 0, or -1 (no change). */
static int resize(dedup_t *d, size_t cap)
{
    size_t slots = 16;
    unsigned index_bits = 1;
    while (slots < 2 * cap)
        slots *= 2;
    while ((UINT64_C(1) << index_bits) <= cap) /* index + 1 goes up to cap */
        index_bits++;
    if (index_bits > 31)
        return -1; /* dedup.max.ids keeps far below */
    entry_t *ring = malloc(cap * sizeof(*ring));
    slot_t *table = calloc(slots, sizeof(*table));
    if (!ring || !table) {
        free(ring);
        free(table);
        return -1;
    }
    for (size_t k = 0; k < d->count; k++)
        ring[k] = d->ring[ring_at(d, k)];
    free(d->ring);
    free(d->table);
    d->ring = ring;
    d->table = table;
    d->cap = cap;
    d->mask = slots - 1;
    d->index_bits = index_bits;
    d->head = 0;
    for (size_t k = 0; k < d->count; k++)
        table_add(d, k, id_hash(d, ring[k].id));
    return 0;
}

/* Appends an id, forgetting the oldest when full (or when out of memory to grow). */
static void remember(dedup_t *d, const uint8_t id[16], int64_t t, uint64_t h)
{
    if (d->count == d->cap) {
        size_t cap = d->cap * 2 < RING_MIN ? RING_MIN : d->cap * 2;
        if (cap > d->max_ids)
            cap = d->max_ids;
        if (cap <= d->cap || resize(d, cap)) {
            if (!d->count)
                return; /* no memory at all: the event goes on unremembered */
            forget_oldest(d);
        }
    }
    entry_t *e = &d->ring[ring_at(d, d->count)];
    memcpy(e->id, id, 16);
    e->t = t;
    table_add(d, ring_at(d, d->count), h);
    d->count++;
}

static void expire(dedup_t *d)
{
    int64_t cutoff = d->newest < INT64_MIN + d->window_ms ? INT64_MIN : d->newest - d->window_ms;
    while (d->count && d->ring[d->head].t < cutoff)
        forget_oldest(d);
}

/* ---- restore ------------------------------------------------------------------------------- */

static int by_seq(const void *a, const void *b)
{
    const pchunk_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void pending_free(pending_t *p)
{
    for (size_t i = 0; p && i < p->n; i++)
        free(p->v[i].v);
    if (p)
        free(p->v);
    free(p);
}

/* Drops the collected chunks the latest head says were wholly forgotten (bounds memory). */
static void pending_purge(pending_t *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].seq >= p->head_seq)
            p->v[k++] = p->v[i];
        else
            free(p->v[i].v);
    }
    p->n = k;
    p->purge_at = 2 * (k < 64 ? 64 : k);
}

/* The first chunk to replay, after skipping rewritten ones; p->n when none. */
static size_t next_chunk(const pending_t *p, size_t i)
{
    while (i + 1 < p->n && p->v[i + 1].seq == p->v[i].seq)
        i++; /* one seq written twice (an aborted attempt): the later record wins */
    return i;
}

/*
 * Replays the collected chunks, from the head, into the empty window. Absolute positions
 * start so that the head chunk's id 0 is at 0: its forgotten ids are [0, head_off).
 */
static void finish_restore(dedup_t *d)
{
    pending_t *p = d->pending;
    d->pending = NULL;
    pending_purge(p);
    qsort(p->v, p->n, sizeof(*p->v), by_seq);
    size_t i = next_chunk(p, 0);
    if (i < p->n && p->v[i].seq == p->head_seq)
        d->base = p->head_off < p->v[i].n ? p->head_off : p->v[i].n;
    uint64_t first_base = d->base;
    for (; i < p->n; i = next_chunk(p, i + 1)) {
        const pchunk_t *c = &p->v[i];
        size_t skip = c->seq == p->head_seq ? (size_t)first_base : 0;
        uint64_t start = d->base + d->count - skip;
        for (size_t k = skip; k < c->n; k++)
            remember(d, c->v[k].id, c->v[k].t, id_hash(d, c->v[k].id));
        d->chunks[d->ccount++] = (chunk_t){c->seq, start, d->base + d->count};
        if (c->seq >= d->next_seq)
            d->next_seq = c->seq + 1;
    }
    if (p->next_seq > d->next_seq)
        d->next_seq = p->next_seq;
    d->newest = p->newest;
    d->flushed = d->base + d->count;
    d->head_dirty = d->base != first_base; /* max.ids shrank: say so at the next flush */
    pending_free(p);
}

static int restore_head(pending_t *p, const void *value, size_t len)
{
    enr__le_reader_t r = enr__le_reader(value, len);
    uint8_t version = enr__le_get8(&r);
    int64_t newest = (int64_t)enr__le_get64(&r);
    uint64_t head_seq = enr__le_get64(&r), head_off = enr__le_get64(&r);
    uint64_t next_seq = enr__le_get64(&r);
    if (!r.ok || r.p != r.end || version != VALUE_VERSION)
        return -1;
    p->newest = newest; /* the log's order: the last one read is the latest */
    p->head_seq = head_seq;
    p->head_off = head_off;
    p->next_seq = next_seq;
    if (p->n >= p->purge_at)
        pending_purge(p);
    return 0;
}

static int restore_chunk(pending_t *p, uint64_t seq, const void *value, size_t len)
{
    enr__le_reader_t r = enr__le_reader(value, len);
    uint8_t version = enr__le_get8(&r);
    uint64_t vseq = enr__le_get64(&r), n = enr__le_get64(&r);
    if (!r.ok || version != VALUE_VERSION || vseq != seq || n > (len - CHUNK_HEADER) / ENTRY_SIZE ||
        len != CHUNK_HEADER + n * ENTRY_SIZE)
        return -1;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pchunk_t *v = realloc(p->v, cap * sizeof(*v));
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    entry_t *v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return -1;
    for (uint64_t k = 0; k < n; k++) {
        memcpy(v[k].id, r.p, 16);
        v[k].t = (int64_t)enr__le_load64(r.p + 16);
        r.p += ENTRY_SIZE;
    }
    p->v[p->n++] = (pchunk_t){seq, p->arrivals++, (size_t)n, v};
    return 0;
}

/* "d/" and 16 hex digits: 1 and the seq, or 0. */
static int parse_chunk_key(const char *key, size_t len, uint64_t *seq)
{
    if (len != 18 || key[0] != 'd' || key[1] != '/')
        return 0;
    uint64_t v = 0;
    for (size_t i = 2; i < len; i++) {
        char c = key[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return 0;
        v = v << 4 | (uint64_t)digit;
    }
    *seq = v;
    return 1;
}

static int dedup_restore(void *state, const void *key, size_t key_len, const void *value,
                         size_t value_len, void *opaque)
{
    (void)opaque;
    dedup_t *d = state;
    uint64_t seq;
    if (!d->pending) {
        if (!(d->pending = calloc(1, sizeof(*d->pending))))
            return -1;
        d->pending->newest = INT64_MIN; /* until a head record says otherwise */
    }
    if (key_len == 1 && *(const char *)key == 'h')
        return value ? restore_head(d->pending, value, value_len) : 0;
    if (!parse_chunk_key(key, key_len, &seq))
        return -1;
    return value ? restore_chunk(d->pending, seq, value, value_len) : 0; /* deletes: see h */
}

/* Sizes the chunk deque for restore: one per collected record at most. */
static int prepare_restore(dedup_t *d)
{
    size_t need = d->pending->n + 1;
    if (need <= d->ccap)
        return 0;
    chunk_t *c = realloc(d->chunks, need * sizeof(*c));
    if (!c)
        return -1;
    d->chunks = c;
    d->ccap = need;
    return 0;
}

static void settle(dedup_t *d)
{
    if (!d->pending)
        return;
    if (prepare_restore(d)) {
        pending_free(d->pending); /* out of memory: start empty rather than half-built */
        d->pending = NULL;
        return;
    }
    if (d->table) /* restore comes before any event; if not, the changelog wins */
        memset(d->table, 0, (d->mask + 1) * sizeof(*d->table));
    d->head = d->count = 0;
    d->base = 0;
    d->chead = d->ccount = 0;
    finish_restore(d);
}

/* ---- per event ----------------------------------------------------------------------------- */

/* Event time as the clock stage computes it, never after the receive time. */
static int64_t event_time(const enr_event_t *e)
{
    return enr__clock_capped_ms(e, enr__clock_corrected_ms(e));
}

static enr_verdict_t dedup_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    dedup_t *d = state;
    const uint8_t *id = e->ev->event_id.data;
    if (e->ev->event_id.len != 16 || !id)
        return ENR_KEEP; /* the pipeline refuses these; nothing to compare anyway */
    settle(d);
    int64_t t = event_time(e);
    if (t > d->newest) {
        d->newest = t;
        d->head_dirty = 1;
    }
    expire(d);
    uint64_t h = id_hash(d, id);
    if (table_has(d, id, h))
        return ENR_DROP;
    remember(d, id, t, h);
    return ENR_KEEP;
}

/* ---- flush --------------------------------------------------------------------------------- */

static void chunk_key(char key[19], uint64_t seq)
{
    snprintf(key, 19, "d/%016" PRIx64, seq);
}

static int chunks_push(dedup_t *d, chunk_t c)
{
    if (d->chead + d->ccount == d->ccap) {
        if (d->chead) { /* slide down rather than grow */
            memmove(d->chunks, d->chunks + d->chead, d->ccount * sizeof(*d->chunks));
            d->chead = 0;
        } else {
            size_t cap = d->ccap ? d->ccap * 2 : 64;
            chunk_t *grown = realloc(d->chunks, cap * sizeof(*grown));
            if (!grown)
                return -1;
            d->chunks = grown;
            d->ccap = cap;
        }
    }
    d->chunks[d->chead + d->ccount++] = c;
    return 0;
}

/* Deletes the chunks whose ids were all forgotten. */
static void drop_forgotten(dedup_t *d, enr_ctx_t *ctx)
{
    char key[19];
    while (d->ccount && d->chunks[d->chead].end <= d->base) {
        chunk_key(key, d->chunks[d->chead].seq);
        enr_ctx_changelog_put(ctx, key, 18, NULL, 0);
        d->chead++;
        d->ccount--;
        d->head_dirty = 1;
    }
    if (!d->ccount)
        d->chead = 0;
}

/* Writes the ids at absolute positions [start, start + n) as chunk d->next_seq. 0 or -1. */
static int write_chunk(dedup_t *d, enr_ctx_t *ctx, uint64_t start, size_t n)
{
    size_t len = CHUNK_HEADER + n * ENTRY_SIZE;
    if (len > d->buf_cap) {
        uint8_t *grown = realloc(d->buf, len);
        if (!grown)
            return -1;
        d->buf = grown;
        d->buf_cap = len;
    }
    if (chunks_push(d, (chunk_t){d->next_seq, start, start + n}))
        return -1;
    uint8_t *p = d->buf;
    *p++ = VALUE_VERSION;
    p = enr__le_put64(p, d->next_seq);
    p = enr__le_put64(p, n);
    for (size_t k = 0; k < n; k++) {
        const entry_t *e = &d->ring[ring_at(d, (size_t)(start - d->base) + k)];
        memcpy(p, e->id, 16);
        p = enr__le_put64(p + 16, (uint64_t)e->t);
    }
    char key[19];
    chunk_key(key, d->next_seq++);
    enr_ctx_changelog_put(ctx, key, 18, d->buf, len);
    return 0;
}

/* Writes the ids added since the last flush that are still remembered. */
static void write_new(dedup_t *d, enr_ctx_t *ctx)
{
    uint64_t start = d->flushed > d->base ? d->flushed : d->base;
    uint64_t end = d->base + d->count;
    while (start < end) {
        size_t n = end - start > CHUNK_MAX ? CHUNK_MAX : (size_t)(end - start);
        if (write_chunk(d, ctx, start, n))
            break; /* out of memory: the rest goes at the next flush */
        start += n;
        d->head_dirty = 1;
    }
    d->flushed = start;
}

static void write_head(dedup_t *d, enr_ctx_t *ctx)
{
    uint8_t v[HEAD_SIZE], *p = v;
    const chunk_t *front = d->ccount ? &d->chunks[d->chead] : NULL;
    *p++ = VALUE_VERSION;
    p = enr__le_put64(p, (uint64_t)d->newest);
    p = enr__le_put64(p, front ? front->seq : d->next_seq);
    p = enr__le_put64(p, front && d->base > front->start ? d->base - front->start : 0);
    enr__le_put64(p, d->next_seq);
    enr_ctx_changelog_put(ctx, "h", 1, v, sizeof(v));
    d->head_dirty = 0;
}

static void dedup_flush(void *state, enr_ctx_t *ctx, void *opaque)
{
    (void)opaque;
    dedup_t *d = state;
    settle(d);
    drop_forgotten(d, ctx);
    write_new(d, ctx);
    if (d->head_dirty)
        write_head(d, ctx);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void random_keys(dedup_t *d)
{
    uint64_t k[2];
    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        k[0] = (uint64_t)uc__mono_ns() ^ (uint64_t)(uintptr_t)d;
        k[1] = enr__mix64((uint64_t)uc__wall_ms() ^ k[0]);
    }
    d->k0 = k[0];
    d->k1 = k[1];
}

static int dedup_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    const enr__settings_t *s = opaque;
    dedup_t *d = calloc(1, sizeof(*d));
    if (!d || !s) {
        free(d);
        uc__errstr(errstr, errstr_size, s ? "out of memory" : "no settings");
        return -1;
    }
    d->max_ids = s->dedup_max_ids > 0 ? (size_t)s->dedup_max_ids : 1;
    d->window_ms = s->dedup_window_ms > 0 ? s->dedup_window_ms : 0;
    d->newest = INT64_MIN;
    random_keys(d);
    *state = d;
    return 0;
}

static void dedup_destroy(void *state, void *opaque)
{
    (void)opaque;
    dedup_t *d = state;
    if (!d)
        return;
    pending_free(d->pending);
    free(d->ring);
    free(d->table);
    free(d->chunks);
    free(d->buf);
    free(d);
}

enr_stage_t *enr__stage_dedup_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("dedup", dedup_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, dedup_init);
    enr_stage_set_flush(st, dedup_flush);
    enr_stage_set_restore(st, dedup_restore);
    enr_stage_set_destroy(st, dedup_destroy);
    return st;
}
