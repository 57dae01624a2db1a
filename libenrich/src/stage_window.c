/*
 * stage_window.c - the "window" stage: tumbling-window aggregates per event type, in event
 * time (enr_event_time_ms(), the clock-corrected timestamp).
 *
 * A window is [start, start + window.size.ms) with start = floor(t / size) * size. Each one
 * counts its events, its distinct users (user id, else anonymous id, the two never taken for
 * each other; an event with neither adds to the count only) and the sum of the numeric property
 * window.sum.property (int or double; absent, non-numeric or non-finite values are not summed;
 * empty name: no sum).
 *
 * Closing: every window whose end is <= closed_end is closed, and closed_end (the closed
 * horizon of stage_util.h) only grows. At each flush closed_end becomes max(closed_end,
 * watermark - window.allowed.lateness.ms), i.e. a window closes at the first flush where
 * end + lateness <= watermark. Closed windows are emitted in (start, type) order as one
 * WindowAggregate each on aggregates.topic, key "<type>/<start>". An event whose window is
 * already closed is late: counted in ENR_STAT_LATE_EVENTS and not aggregated. process()
 * always keeps the event.
 *
 * Bound: at most WINDOW_MAX_OPEN windows are open. A new window beyond it first closes the
 * oldest start for every type at once (closed_end moves to that window's end, since closing
 * is a single event-time horizon); those windows are emitted at the next flush like any
 * other, and their later events are late.
 *
 * Changelog (keys under this stage): "<type>/<start>" -> count, sum and the user set or
 * sketch, written at each flush for windows changed since the last one and deleted when the
 * window closes; "_closed" -> closed_end, so a restart never reopens a closed window.
 */
#include "event.h"
#include "hll.h"
#include "htab.h"
#include "le.h"
#include "stage.h"
#include "stage_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most open windows, all types together (10000 x at most 64 KiB of user set). */
#define WINDOW_MAX_OPEN 10000
#define VALUE_VERSION ENR__PARTIAL_WINDOW /* a window's value: changelog and partial */
#define CLOSED_KEY "_closed"

typedef struct window {
    enr__hnode_t node; /* first member: in wstate.open, hash of (type, start) */
    int64_t start;
    uint64_t count;
    double sum;
    enr__distinct_t users;
    uint8_t dirty;     /* changed since the last flush */
    uint8_t persisted; /* the changelog holds a value under its key */
    size_t type_len;
    char type[];
} window_t;

typedef struct wstate {
    const enr__settings_t *s;
    enr__htab_t open;
    window_t **closing; /* closed, emitted and freed at the next flush */
    size_t n_closing, cap_closing;
    enr__horizon_t closed; /* a window whose end is <= closed.end is closed */
    uint8_t *buf;          /* encoding buffer, reused */
    size_t buf_cap;
    char *key; /* key buffer, reused */
    size_t key_cap;
} wstate_t;

/* ---- windows ------------------------------------------------------------------------------ */

static int is_closed(const wstate_t *st, int64_t start)
{
    return start + st->s->window_size_ms <= st->closed.end;
}

static uint64_t window_hash(const char *type, size_t len, int64_t start)
{
    return enr__hash64(type, len) ^ enr__mix64((uint64_t)start);
}

static window_t *window_find(const wstate_t *st, const char *type, size_t len, int64_t start,
                             uint64_t h)
{
    for (enr__hnode_t *n = enr__htab_chain(&st->open, h); n; n = n->next) {
        window_t *w = (window_t *)n;
        if (n->hash == h && w->start == start && w->type_len == len && !memcmp(w->type, type, len))
            return w;
    }
    return NULL;
}

/* A new empty window in the open table, or NULL when out of memory. */
static window_t *window_new(wstate_t *st, const char *type, size_t len, int64_t start, uint64_t h)
{
    window_t *w = calloc(1, sizeof(*w) + len + 1);
    if (!w)
        return NULL;
    memcpy(w->type, type, len);
    w->type_len = len;
    w->start = start;
    w->node.hash = h;
    enr__htab_insert(&st->open, &w->node);
    return w;
}

static void window_free(window_t *w)
{
    enr__distinct_free(&w->users);
    free(w);
}

/* Moves every open window that the closed horizon covers to the closing list. */
static void close_due(wstate_t *st)
{
    size_t slot = 0;
    enr__hnode_t *n = enr__htab_next(&st->open, &slot, NULL), *next;
    for (; n; n = next) {
        next = enr__htab_next(&st->open, &slot, n);
        window_t *w = (window_t *)n;
        if (!is_closed(st, w->start))
            continue;
        if (st->n_closing == st->cap_closing) {
            size_t cap = st->cap_closing ? st->cap_closing * 2 : 64;
            window_t **grown = realloc(st->closing, cap * sizeof(*grown));
            if (!grown)
                return; /* the rest stay open until a flush has memory */
            st->closing = grown;
            st->cap_closing = cap;
        }
        enr__htab_remove(&st->open, n);
        st->closing[st->n_closing++] = w;
    }
}

/* The bound: closes the oldest window start (every type) to make room for a new window. */
static void force_close_oldest(wstate_t *st)
{
    size_t slot = 0;
    int64_t oldest = INT64_MAX;
    for (enr__hnode_t *n = enr__htab_next(&st->open, &slot, NULL); n;
         n = enr__htab_next(&st->open, &slot, n))
        if (((window_t *)n)->start < oldest)
            oldest = ((window_t *)n)->start;
    if (oldest == INT64_MAX)
        return;
    enr__horizon_raise(&st->closed, oldest + st->s->window_size_ms);
    close_due(st);
}

/* ---- per event ---------------------------------------------------------------------------- */

static void stat_add(enr_ctx_t *ctx, enr_stat_t which)
{
    if (ctx && ctx->stats)
        ctx->stats[which]++;
}

/*
 * The open window of @p ev, created if needed. NULL when the window is closed (*@p late set)
 * or when out of memory.
 */
static window_t *window_of(wstate_t *st, const enr_event_t *ev, int *late)
{
    int64_t start = enr__window_start(enr_event_time_ms(ev), st->s->window_size_ms);
    *late = is_closed(st, start);
    if (*late)
        return NULL;
    const char *type = enr_event_type(ev);
    size_t len = strlen(type);
    uint64_t h = window_hash(type, len, start);
    window_t *w = window_find(st, type, len, start, h);
    if (w)
        return w;
    if (st->open.count >= WINDOW_MAX_OPEN) {
        force_close_oldest(st);
        *late = is_closed(st, start);
        if (*late)
            return NULL;
    }
    return window_new(st, type, len, start, h);
}

static enr_verdict_t window_process(void *state, enr_event_t *ev, enr_ctx_t *ctx, void *opaque)
{
    (void)opaque;
    wstate_t *st = state;
    int late;
    window_t *w = window_of(st, ev, &late);
    if (!w) {
        if (late)
            stat_add(ctx, ENR_STAT_LATE_EVENTS);
        return ENR_KEEP; /* late, or out of memory: the event goes on, unaggregated */
    }
    w->count++;
    w->dirty = 1;
    const char *user = enr_event_user_id(ev), *anon = enr_event_anonymous_id(ev);
    if (*user)
        enr__distinct_add(&w->users, enr__hash64(user, strlen(user)));
    else if (*anon) /* its own hash space: anonymous "42" is not user "42" */
        enr__distinct_add(&w->users, enr__mix64(enr__hash64(anon, strlen(anon)) + 1));
    const char *prop = st->s->window_sum_property;
    double v;
    if (prop && *prop && enr_event_get_double(ev, prop, &v) == ENR_OK && isfinite(v))
        w->sum += v;
    return ENR_KEEP;
}

/* ---- flush -------------------------------------------------------------------------------- */

/* "<type>/<start>" in the reused key buffer; NULL when out of memory. */
static const char *window_key(wstate_t *st, const window_t *w, size_t *len)
{
    size_t need = w->type_len + 24;
    if (need > st->key_cap) {
        char *grown = realloc(st->key, need);
        if (!grown)
            return NULL;
        st->key = grown;
        st->key_cap = need;
    }
    *len = (size_t)snprintf(st->key, need, "%s/%" PRId64, w->type, w->start);
    return st->key;
}

static void emit_aggregate(wstate_t *st, enr_ctx_t *ctx, const window_t *w)
{
    Userevents__WindowAggregate agg = USEREVENTS__WINDOW_AGGREGATE__INIT;
    const char *prop = st->s->window_sum_property;
    agg.event_type = (char *)w->type;
    agg.window_start_ms = w->start;
    agg.window_end_ms = w->start + st->s->window_size_ms;
    agg.count = w->count;
    agg.distinct_users = enr__distinct_count(&w->users);
    agg.sum_property = (char *)(prop ? prop : "");
    agg.sum = w->sum;
    size_t klen, size = userevents__window_aggregate__get_packed_size(&agg);
    const char *key = window_key(st, w, &klen);
    if (!key || !enr__buf_reserve(&st->buf, &st->buf_cap, size))
        return;
    size_t len = userevents__window_aggregate__pack(&agg, st->buf);
    if (enr_ctx_emit(ctx, st->s->aggregates_topic, key, klen, st->buf, len) == ENR_OK)
        stat_add(ctx, ENR_STAT_AGGREGATES);
}

/* The window's count, sum and users at the start of the reused buffer (the changelog value,
 * and a partial aggregate); NULL when out of memory. */
static const uint8_t *encode_window(wstate_t *st, const window_t *w, size_t *len)
{
    size_t size = 1 + 8 + 8 + enr__distinct_encoded_size(&w->users);
    uint8_t *p = enr__buf_reserve(&st->buf, &st->buf_cap, size);
    if (!p)
        return NULL;
    *p++ = VALUE_VERSION;
    p = enr__le_put64(p, w->count);
    p = enr__le_put_double(p, w->sum);
    p = enr__distinct_encode(&w->users, p);
    *len = (size_t)(p - st->buf);
    return st->buf;
}

/* Writes the window's state (value NULL: its deletion) to the changelog. */
static void persist(wstate_t *st, enr_ctx_t *ctx, window_t *w, int deleted)
{
    size_t klen, vlen;
    const char *key = window_key(st, w, &klen);
    if (!key)
        return;
    if (deleted) {
        if (w->persisted)
            enr_ctx_changelog_put(ctx, key, klen, NULL, 0);
        return;
    }
    const uint8_t *value = encode_window(st, w, &vlen);
    if (!value)
        return; /* stays dirty: written by a later flush */
    enr_ctx_changelog_put(ctx, key, klen, value, vlen);
    w->dirty = 0;
    w->persisted = 1;
}

/* A closed window out: its final aggregate, or in a processor's task its partial for the
 * task that merges the window's key. */
static void close_window(wstate_t *st, enr_ctx_t *ctx, const window_t *w)
{
    if (!ctx->sink->partial) {
        emit_aggregate(st, ctx, w);
        return;
    }
    size_t klen, vlen;
    char key[600];
    const char *k = window_key(st, w, &klen);
    if (!k || klen > sizeof(key))
        return;
    memcpy(key, k, klen);
    const uint8_t *value = encode_window(st, w, &vlen);
    if (value)
        ctx->sink->partial(ctx->sink->opaque, key, klen, value, vlen, 0);
}

static int closing_cmp(const void *a, const void *b)
{
    const window_t *x = *(window_t *const *)a, *y = *(window_t *const *)b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(x->type, y->type);
}

static void window_flush(void *state, enr_ctx_t *ctx, void *opaque)
{
    (void)opaque;
    wstate_t *st = state;
    int64_t lateness = st->s->window_lateness_ms;
    int64_t wm = ctx->watermark_ms;
    int64_t horizon = wm < INT64_MIN + lateness ? INT64_MIN : wm - lateness;
    enr__horizon_raise(&st->closed, horizon);
    close_due(st);
    if (st->n_closing)
        qsort(st->closing, st->n_closing, sizeof(*st->closing), closing_cmp);
    for (size_t i = 0; i < st->n_closing; i++) {
        close_window(st, ctx, st->closing[i]);
        persist(st, ctx, st->closing[i], 1);
        window_free(st->closing[i]);
    }
    st->n_closing = 0;
    size_t slot = 0;
    for (enr__hnode_t *n = enr__htab_next(&st->open, &slot, NULL); n;
         n = enr__htab_next(&st->open, &slot, n))
        if (((window_t *)n)->dirty)
            persist(st, ctx, (window_t *)n, 0);
    enr__horizon_persist(&st->closed, ctx, CLOSED_KEY, strlen(CLOSED_KEY));
    enr__horizon_send(ctx, ENR__HORIZON_WINDOW, st->closed.end); /* the mergers wait for it */
}

/* ---- restore ------------------------------------------------------------------------------ */

/* Splits "<type>/<start>"; returns the type's length, or 0 when the key is not a window's. */
static size_t parse_key(const char *key, size_t len, int64_t *start)
{
    size_t slash = len;
    while (slash > 0 && key[slash - 1] != '/')
        slash--;
    if (slash < 2 || slash == len || len - slash > 20)
        return 0;
    char num[21];
    memcpy(num, key + slash, len - slash);
    num[len - slash] = '\0';
    char *end;
    *start = strtoll(num, &end, 10);
    if (*end || !enr__time_ok(*start))
        return 0;
    return slash - 1;
}

/* Reads a window's value (changelog or partial); 0, or -1 when invalid (@p users freed). */
static int decode_value(const void *value, size_t value_len, uint64_t *count, double *sum,
                        enr__distinct_t *users)
{
    enr__le_reader_t r = enr__le_reader(value, value_len);
    uint8_t version = enr__le_get8(&r);
    *count = enr__le_get64(&r);
    *sum = enr__le_get_double(&r);
    if (!r.ok || version != VALUE_VERSION || enr__distinct_decode(users, &r) || r.p != r.end) {
        enr__distinct_free(users);
        return -1;
    }
    return 0;
}

/* Rebuilds a window from its changelog value; 0, or -1 when the value is invalid. */
static int restore_window(wstate_t *st, const char *type, size_t len, int64_t start,
                          const void *value, size_t value_len)
{
    enr__distinct_t users = {0};
    uint64_t count;
    double sum;
    if (decode_value(value, value_len, &count, &sum, &users))
        return -1;
    window_t *w = window_new(st, type, len, start, window_hash(type, len, start));
    if (!w) {
        enr__distinct_free(&users);
        return -1;
    }
    w->count = count;
    w->sum = sum;
    w->users = users;
    w->persisted = 1;
    return 0;
}

static int window_restore(void *state, const void *key, size_t key_len, const void *value,
                          size_t value_len, void *opaque)
{
    (void)opaque;
    wstate_t *st = state;
    if (key_len == strlen(CLOSED_KEY) && !memcmp(key, CLOSED_KEY, key_len))
        return enr__horizon_restore(&st->closed, value, value_len);
    int64_t start;
    size_t len = parse_key(key, key_len, &start);
    if (!len)
        return -1;
    window_t *w = window_find(st, key, len, start, window_hash(key, len, start));
    if (w) {
        enr__htab_remove(&st->open, &w->node);
        window_free(w);
    }
    return value ? restore_window(st, key, len, start, value, value_len) : 0;
}

/* ---- merging the partials of a processor's tasks (merge.c) -------------------------------- */

int enr__window_merge(void *state, const void *key, size_t key_len, const void *value,
                      size_t value_len, int64_t *stats)
{
    wstate_t *st = state;
    int64_t start;
    size_t len = parse_key(key, key_len, &start);
    enr__distinct_t users = {0};
    uint64_t count;
    double sum;
    if (!len || decode_value(value, value_len, &count, &sum, &users))
        return -1;
    if (is_closed(st, start)) { /* merged and emitted already: its events came late */
        stats[ENR_STAT_LATE_EVENTS] += (int64_t)count;
        enr__distinct_free(&users);
        return 0;
    }
    uint64_t h = window_hash(key, len, start);
    window_t *w = window_find(st, key, len, start, h);
    if (!w && st->open.count >= WINDOW_MAX_OPEN)
        force_close_oldest(st);
    if (!w && !is_closed(st, start))
        w = window_new(st, key, len, start, h);
    int rc = w && !enr__distinct_merge(&w->users, &users) ? 0 : -1;
    if (w) {
        w->count += count;
        w->sum += sum;
        w->dirty = 1;
    }
    enr__distinct_free(&users);
    return rc;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int window_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    wstate_t *st = calloc(1, sizeof(*st));
    if (!st || enr__htab_init(&st->open)) {
        free(st);
        uc__errstr(errstr, errstr_size, "out of memory");
        return -1;
    }
    st->s = opaque;
    enr__horizon_init(&st->closed);
    *state = st;
    return 0;
}

static void window_destroy(void *state, void *opaque)
{
    (void)opaque;
    wstate_t *st = state;
    if (!st)
        return;
    size_t slot = 0;
    enr__hnode_t *n = enr__htab_next(&st->open, &slot, NULL), *next;
    for (; n; n = next) {
        next = enr__htab_next(&st->open, &slot, n);
        window_free((window_t *)n);
    }
    for (size_t i = 0; i < st->n_closing; i++)
        window_free(st->closing[i]);
    enr__htab_free(&st->open);
    free(st->closing);
    free(st->buf);
    free(st->key);
    free(st);
}

enr_stage_t *enr__stage_window_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("window", window_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, window_init);
    enr_stage_set_flush(st, window_flush);
    enr_stage_set_restore(st, window_restore);
    enr_stage_set_destroy(st, window_destroy);
    return st;
}
