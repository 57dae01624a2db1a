/*
 * stage_session.c - the "session" stage: groups each user's events into sessions by
 * inactivity, in event time (enr_event_time_ms(): the clock-corrected timestamp).
 *
 * A user is the event's user id, else its anonymous id ("u:<id>" and "a:<id>" are different
 * users); an event with neither gets no session. Per user: session start, last event time,
 * sequence. An event starts a new session when the user has none or when it is more than
 * session.gap.ms after the user's last event; else it continues the session (sequence + 1),
 * including an out-of-order event earlier than the last one, which does not move "last"
 * back. The session id is "s-<start ms>-<16 hex of FNV-1a 64 of the user key>": the same
 * user and start give the same id in any process (part of the output format: never change
 * the hash). The event's own session_id (the client's) is left as sent; the stage's session
 * is out.session.
 *
 * Bound: at each flush, users whose last event is more than 2 x session.gap.ms before the
 * watermark (capped by the newest event time this stage has seen) are forgotten (their next event
 * would start a new session anyway), so memory follows the active users. The users due are found
 * with a min-heap on last-event time that is updated lazily: an entry is refreshed only when it
 * comes due, so the per-event cost stays O(1) and the set forgotten at a flush is exactly
 * "last < newest - 2 x gap", whatever the order users were created or restored in.
 *
 * Changelog (keys under this stage): "u:<id>" / "a:<id>" -> start, last, sequence, written
 * at the flush after a user's event; deleted when the user is forgotten. "n" -> the newest
 * event time. Restore applies records in any order (latest value per key).
 */
#include "event.h"
#include "htab.h"
#include "le.h"
#include "stage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_VERSION 1
#define USER_VALUE_SIZE 25 /* version, start, last, sequence */
#define NEWEST_KEY "n"

typedef struct user {
    enr__hnode_t node; /* first member: hash of the key */
    int64_t start, last;
    uint32_t seq;
    uint8_t dirty;     /* changed since the last flush (on the dirty list) */
    uint8_t persisted; /* the changelog holds a value under its key */
    uint8_t forgotten; /* out of the table, freed when the dirty list is written */
    struct user *next_dirty;
    size_t key_len;
    char key[]; /* "u:<user id>" or "a:<anonymous id>" */
} user_t;

typedef struct heap_entry {
    int64_t t; /* <= the user's last: refreshed when it comes due */
    user_t *u;
} heap_entry_t;

typedef struct sessions {
    int64_t gap;
    enr__htab_t users;
    heap_entry_t *heap;
    size_t heap_n, heap_cap;
    int heap_stale; /* restore changed the users: rebuild the heap before using it */
    user_t *dirty;
    int64_t newest;
    int newest_dirty;
    char *key; /* the current event's user key, reused */
    size_t key_cap;
} sessions_t;

/* ---- users --------------------------------------------------------------------------------- */

static user_t *user_find(const sessions_t *ss, const char *key, size_t len, uint64_t h)
{
    for (enr__hnode_t *n = enr__htab_chain(&ss->users, h); n; n = n->next) {
        user_t *u = (user_t *)n;
        if (n->hash == h && u->key_len == len && !memcmp(u->key, key, len))
            return u;
    }
    return NULL;
}

static user_t *user_new(sessions_t *ss, const char *key, size_t len, uint64_t h)
{
    user_t *u = calloc(1, sizeof(*u) + len + 1);
    if (!u)
        return NULL;
    memcpy(u->key, key, len);
    u->key_len = len;
    u->node.hash = h;
    enr__htab_insert(&ss->users, &u->node);
    return u;
}

static void mark_dirty(sessions_t *ss, user_t *u)
{
    if (u->dirty)
        return;
    u->dirty = 1;
    u->next_dirty = ss->dirty;
    ss->dirty = u;
}

/* Takes @p u out of the table; freed now, or by the flush if it is on the dirty list. */
static void user_forget(sessions_t *ss, user_t *u)
{
    enr__htab_remove(&ss->users, &u->node);
    if (u->dirty)
        u->forgotten = 1;
    else
        free(u);
}

/* ---- the heap of last-event times ---------------------------------------------------------- */

static void sift_down(heap_entry_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t least = i, l = 2 * i + 1, r = l + 1;
        if (l < n && h[l].t < h[least].t)
            least = l;
        if (r < n && h[r].t < h[least].t)
            least = r;
        if (least == i)
            return;
        heap_entry_t tmp = h[i];
        h[i] = h[least];
        h[least] = tmp;
        i = least;
    }
}

static int heap_push(sessions_t *ss, user_t *u)
{
    if (ss->heap_n == ss->heap_cap) {
        size_t cap = ss->heap_cap ? ss->heap_cap * 2 : 256;
        heap_entry_t *grown = realloc(ss->heap, cap * sizeof(*grown));
        if (!grown)
            return -1;
        ss->heap = grown;
        ss->heap_cap = cap;
    }
    size_t i = ss->heap_n++;
    heap_entry_t e = {u->last, u};
    while (i > 0 && ss->heap[(i - 1) / 2].t > e.t) {
        ss->heap[i] = ss->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    ss->heap[i] = e;
    return 0;
}

static heap_entry_t heap_pop(sessions_t *ss)
{
    heap_entry_t top = ss->heap[0];
    ss->heap[0] = ss->heap[--ss->heap_n];
    sift_down(ss->heap, ss->heap_n, 0);
    return top;
}

/* One entry per user, from the table (after restore). 0, or -1 when out of memory. */
static int heap_rebuild(sessions_t *ss)
{
    size_t slot = 0;
    if (ss->users.count > ss->heap_cap) {
        heap_entry_t *grown = realloc(ss->heap, ss->users.count * sizeof(*grown));
        if (!grown)
            return -1;
        ss->heap = grown;
        ss->heap_cap = ss->users.count;
    }
    ss->heap_n = 0;
    for (enr__hnode_t *n = enr__htab_next(&ss->users, &slot, NULL); n;
         n = enr__htab_next(&ss->users, &slot, n))
        ss->heap[ss->heap_n++] = (heap_entry_t){((user_t *)n)->last, (user_t *)n};
    for (size_t i = ss->heap_n / 2; i-- > 0;)
        sift_down(ss->heap, ss->heap_n, i);
    ss->heap_stale = 0;
    return 0;
}

/* ---- per event ----------------------------------------------------------------------------- */

/* The user key of @p e in ss->key ("u:<user id>" or "a:<anonymous id>"), or NULL if none. */
static const char *user_key(sessions_t *ss, const enr_event_t *e, size_t *len)
{
    const char *id = e->ev->user_id;
    char kind = 'u';
    if (!id || !*id) {
        id = e->ev->anonymous_id;
        kind = 'a';
    }
    if (!id || !*id)
        return NULL;
    size_t n = strlen(id);
    if (n + 3 > ss->key_cap) {
        char *grown = realloc(ss->key, n + 3);
        if (!grown)
            return NULL;
        ss->key = grown;
        ss->key_cap = n + 3;
    }
    ss->key[0] = kind;
    ss->key[1] = ':';
    memcpy(ss->key + 2, id, n + 1);
    *len = n + 2;
    return ss->key;
}

/* FNV-1a 64: fixed forever, since session ids are made from it. */
static uint64_t fnv1a64(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* 1 when @p t is more than @p gap after @p last (no overflow for any values). */
static int gap_exceeded(int64_t t, int64_t last, int64_t gap)
{
    int64_t d;
    if (t <= last)
        return 0;
    return __builtin_sub_overflow(t, last, &d) || d > gap;
}

static void advance(sessions_t *ss, user_t *u, int64_t t, int is_new)
{
    if (is_new || gap_exceeded(t, u->last, ss->gap)) {
        u->start = u->last = t;
        u->seq = 1;
    } else {
        if (u->seq < UINT32_MAX)
            u->seq++;
        if (t > u->last)
            u->last = t;
    }
    mark_dirty(ss, u);
    if (t > ss->newest) {
        ss->newest = t;
        ss->newest_dirty = 1;
    }
}

static enr_verdict_t session_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    sessions_t *ss = state;
    size_t len;
    const char *key = user_key(ss, e, &len);
    if (!key)
        return ENR_KEEP;
    int64_t t = enr_event_time_ms(e);
    uint64_t h = enr__hash64(key, len);
    user_t *u = user_find(ss, key, len, h);
    int is_new = !u;
    if (is_new) {
        if (!(u = user_new(ss, key, len, h)))
            return ENR_KEEP; /* out of memory: the event goes on without a session */
        u->last = t;
        if (!ss->heap_stale && heap_push(ss, u))
            ss->heap_stale = 1; /* rebuilt at the next flush */
    }
    advance(ss, u, t, is_new);
    char id[64];
    snprintf(id, sizeof(id), "s-%" PRId64 "-%016" PRIx64, u->start, fnv1a64(key, len));
    e->session.session_id = enr__event_strdup(e, id);
    e->session.sequence = u->seq;
    e->session.started_ms = u->start;
    e->out.session = &e->session;
    return ENR_KEEP;
}

/* ---- flush --------------------------------------------------------------------------------- */

/* Forgets every user whose last event is before newest - 2 x gap (deleting its record). */
static void forget_idle(sessions_t *ss, enr_ctx_t *ctx)
{
    int64_t horizon = 2 * ss->gap;
    /* The watermark (the slowest input partition), not the newest event of all: a partition
     * read ahead of the others must not make users of a slower one forgotten too early. */
    int64_t ref = ctx->watermark_ms < ss->newest ? ctx->watermark_ms : ss->newest;
    int64_t cutoff = ref < INT64_MIN + horizon ? INT64_MIN : ref - horizon;
    while (ss->heap_n && ss->heap[0].t < cutoff) {
        heap_entry_t top = heap_pop(ss);
        user_t *u = top.u;
        if (u->last >= cutoff) {
            if (heap_push(ss, u)) { /* cannot fail: the pop made room */
                ss->heap_stale = 1;
                return;
            }
            continue;
        }
        if (u->persisted)
            enr_ctx_changelog_put(ctx, u->key, u->key_len, NULL, 0);
        user_forget(ss, u);
    }
}

static void write_user(enr_ctx_t *ctx, user_t *u)
{
    uint8_t v[USER_VALUE_SIZE], *p = v;
    *p++ = VALUE_VERSION;
    p = enr__le_put64(p, (uint64_t)u->start);
    p = enr__le_put64(p, (uint64_t)u->last);
    enr__le_put64(p, u->seq);
    enr_ctx_changelog_put(ctx, u->key, u->key_len, v, sizeof(v));
    u->persisted = 1;
}

static void session_flush(void *state, enr_ctx_t *ctx, void *opaque)
{
    (void)opaque;
    sessions_t *ss = state;
    if (!ss->heap_stale || !heap_rebuild(ss))
        forget_idle(ss, ctx);
    for (user_t *u = ss->dirty, *next; u; u = next) {
        next = u->next_dirty;
        u->dirty = 0;
        u->next_dirty = NULL;
        if (u->forgotten)
            free(u);
        else
            write_user(ctx, u);
    }
    ss->dirty = NULL;
    if (ss->newest_dirty) {
        uint8_t v[9] = {VALUE_VERSION};
        enr__le_put64(v + 1, (uint64_t)ss->newest);
        enr_ctx_changelog_put(ctx, NEWEST_KEY, 1, v, sizeof(v));
        ss->newest_dirty = 0;
    }
}

/* ---- restore ------------------------------------------------------------------------------- */

static int restore_user(sessions_t *ss, const char *key, size_t len, const void *value,
                        size_t value_len)
{
    uint64_t h = enr__hash64(key, len);
    user_t *u = user_find(ss, key, len, h);
    ss->heap_stale = 1;
    if (!value) {
        if (u)
            user_forget(ss, u);
        return 0;
    }
    enr__le_reader_t r = enr__le_reader(value, value_len);
    uint8_t version = enr__le_get8(&r);
    int64_t start = (int64_t)enr__le_get64(&r), last = (int64_t)enr__le_get64(&r);
    uint64_t seq = enr__le_get64(&r);
    if (!r.ok || r.p != r.end || version != VALUE_VERSION || seq > UINT32_MAX)
        return -1;
    if (!u && !(u = user_new(ss, key, len, h)))
        return -1;
    u->start = start;
    u->last = last;
    u->seq = (uint32_t)seq;
    u->persisted = 1;
    return 0;
}

static int session_restore(void *state, const void *key, size_t key_len, const void *value,
                           size_t value_len, void *opaque)
{
    (void)opaque;
    sessions_t *ss = state;
    const char *k = key;
    if (key_len == 1 && k[0] == NEWEST_KEY[0]) {
        enr__le_reader_t r = enr__le_reader(value, value_len);
        uint8_t version = enr__le_get8(&r);
        int64_t newest = (int64_t)enr__le_get64(&r);
        if (!value)
            return 0;
        if (!r.ok || r.p != r.end || version != VALUE_VERSION)
            return -1;
        ss->newest = newest;
        return 0;
    }
    if (key_len < 3 || (k[0] != 'u' && k[0] != 'a') || k[1] != ':')
        return -1;
    return restore_user(ss, k, key_len, value, value_len);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static int session_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    const enr__settings_t *s = opaque;
    sessions_t *ss = calloc(1, sizeof(*ss));
    if (!ss || !s || enr__htab_init(&ss->users)) {
        free(ss);
        uc__errstr(errstr, errstr_size, s ? "out of memory" : "no settings");
        return -1;
    }
    ss->gap = s->session_gap_ms > 0 ? s->session_gap_ms : 0;
    ss->newest = INT64_MIN;
    *state = ss;
    return 0;
}

static void session_destroy(void *state, void *opaque)
{
    (void)opaque;
    sessions_t *ss = state;
    if (!ss)
        return;
    for (user_t *u = ss->dirty, *next; u; u = next) {
        next = u->next_dirty;
        if (u->forgotten)
            free(u); /* no longer in the table */
    }
    size_t slot = 0;
    enr__hnode_t *n = enr__htab_next(&ss->users, &slot, NULL), *next;
    for (; n; n = next) {
        next = enr__htab_next(&ss->users, &slot, n);
        free(n);
    }
    enr__htab_free(&ss->users);
    free(ss->heap);
    free(ss->key);
    free(ss);
}

enr_stage_t *enr__stage_session_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("session", session_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, session_init);
    enr_stage_set_flush(st, session_flush);
    enr_stage_set_restore(st, session_restore);
    enr_stage_set_destroy(st, session_destroy);
    return st;
}
