/*
 * stage_anomaly.c - the "anomaly" stage: per key (the event type, or with anomaly.key=user
 * the user id, else the anonymous id; events with neither are skipped), an event rate that
 * is judged against an EWMA baseline of the key's earlier rates.
 *
 * Rates are measured over tumbling buckets of anomaly.window.ms in event time (an
 * approximation of "the rate over a sliding window": a burst that straddles two buckets is
 * split between them). Closing is one event-time horizon for all keys, closed_end, which only
 * grows: at each flush it becomes max(closed_end, watermark), and every bucket whose end is
 * <= closed_end is closed. An event whose bucket is closed is late and ignored (not counted
 * in any statistic; the window stage's ENR_STAT_LATE_EVENTS is its own). For each closed
 * bucket of a key, in order:
 *   - rate = count / (anomaly.window.ms / 1000), in events per second;
 *   - the empty buckets since the key's previous bucket count as rate 0 (applied in closed
 *     form, any gap in O(1)): a key that goes quiet and comes back is judged against a
 *     baseline that decayed towards 0 while it was quiet;
 *   - if the key has at least anomaly.min.windows earlier buckets (empty ones included),
 *     z = (rate - mean) / sqrt(v) with v = max(var, (0.1 mean)^2, max(mean, 1/T) / T), T the
 *     bucket in seconds. The floors: a perfectly steady key (var 0) needs a 10% rise per
 *     standard deviation; and a rate is never more certain than Poisson noise around the
 *     baseline, counted as at least one event per bucket, so a handful of events from a
 *     quiet key is not an anomaly. If z > anomaly.zscore an AnomalyAlert goes to
 *     alerts.topic (key = the key; baseline = the mean before this bucket);
 *   - then the EWMA takes the rate: d = rate - mean, mean += alpha d,
 *     var = (1 - alpha)(var + alpha d^2). The first bucket of a key sets mean = rate, var 0.
 * Alerts of one flush are emitted in (window end, key) order.
 *
 * Bounds: anomaly.max.keys keys, the least recently seen evicted first (its open buckets are
 * dropped, its changelog entry deleted); MAX_OPEN_BUCKETS open buckets per key.
 * Changelog: "<key>" -> the key's EWMA and open buckets, written at each flush for keys
 * changed since the last one; CLOSED_KEY -> closed_end, so a restart neither reopens a closed
 * bucket nor closes one later than the uninterrupted run would. Restore rebuilds the same
 * state; the recency order after a restore is the order the changelog was read in.
 */
#include "event.h"
#include "htab.h"
#include "le.h"
#include "stage.h"
#include "stage_util.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPEN_BUCKETS 4096
#define VALUE_VERSION 1
/* The horizon's changelog key: a NUL first, which no key (a C string) can have. */
static const char CLOSED_KEY[] = "\0closed";
#define CLOSED_KEY_LEN (sizeof(CLOSED_KEY) - 1)

typedef struct bucket {
    int64_t start;
    int64_t count;
} bucket_t;

typedef struct dlink {
    struct dlink *prev, *next;
} dlink_t;

typedef struct akey {
    enr__hnode_t node;  /* first member: in astate.keys */
    dlink_t lru;        /* in astate.lru, most recently seen first */
    dlink_t active;     /* in astate.active while it has open buckets */
    int64_t next_start; /* start of the bucket after the last closed one */
    int64_t n_hist;     /* buckets closed so far, empty ones included */
    double mean, var;   /* EWMA of the closed buckets' rates and its variance */
    bucket_t *open;     /* open buckets by start */
    uint32_t n_open, cap_open;
    uint8_t dirty;     /* changed since the last flush */
    uint8_t persisted; /* the changelog holds a value under its key */
    uint8_t in_active;
    size_t key_len;
    char key[];
} akey_t;

typedef struct alert {
    const akey_t *k;
    int64_t end;
    double rate, baseline, z;
} alert_t;

typedef struct astate {
    const enr__settings_t *s;
    enr__htab_t keys;
    dlink_t lru, active;   /* list heads */
    enr__horizon_t closed; /* a bucket whose end is <= closed.end is closed */
    akey_t **evicted;      /* persisted keys evicted: deleted from the changelog at the flush */
    size_t n_evicted, cap_evicted;
    alert_t *alerts; /* one flush's alerts, sorted before they go out */
    size_t n_alerts, cap_alerts;
    uint8_t *buf; /* encoding buffer, reused */
    size_t buf_cap;
} astate_t;

/* ---- lists, keys ------------------------------------------------------------------------ */

static void dl_init(dlink_t *head)
{
    head->prev = head->next = head;
}

static void dl_unlink(dlink_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

static void dl_push_front(dlink_t *head, dlink_t *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}

static akey_t *of_lru(dlink_t *l)
{
    return (akey_t *)(void *)((char *)l - offsetof(akey_t, lru));
}

static akey_t *of_active(dlink_t *l)
{
    return (akey_t *)(void *)((char *)l - offsetof(akey_t, active));
}

static akey_t *key_find(const astate_t *st, const char *key, size_t len, uint64_t h)
{
    for (enr__hnode_t *n = enr__htab_chain(&st->keys, h); n; n = n->next) {
        akey_t *k = (akey_t *)n;
        if (n->hash == h && k->key_len == len && !memcmp(k->key, key, len))
            return k;
    }
    return NULL;
}

/* Takes @p k out of every index; persisted keys wait in st->evicted for their deletion. */
static void key_evict(astate_t *st, akey_t *k)
{
    enr__htab_remove(&st->keys, &k->node);
    dl_unlink(&k->lru);
    dl_unlink(&k->active);
    free(k->open);
    k->open = NULL;
    if (k->persisted && st->n_evicted == st->cap_evicted) {
        size_t cap = st->cap_evicted ? st->cap_evicted * 2 : 64;
        akey_t **grown = realloc(st->evicted, cap * sizeof(*grown));
        if (grown) {
            st->evicted = grown;
            st->cap_evicted = cap;
        }
    }
    if (k->persisted && st->n_evicted < st->cap_evicted)
        st->evicted[st->n_evicted++] = k;
    else
        free(k); /* never persisted (or no memory to remember it): nothing to delete */
}

/* A new key, most recently seen; evicts the least recently seen at the bound. */
static akey_t *key_new(astate_t *st, const char *key, size_t len, uint64_t h)
{
    if ((int64_t)st->keys.count >= st->s->anomaly_max_keys && st->lru.prev != &st->lru)
        key_evict(st, of_lru(st->lru.prev));
    akey_t *k = calloc(1, sizeof(*k) + len + 1);
    if (!k)
        return NULL;
    memcpy(k->key, key, len);
    k->key_len = len;
    k->node.hash = h;
    k->next_start = INT64_MIN;
    dl_init(&k->active);
    dl_push_front(&st->lru, &k->lru);
    enr__htab_insert(&st->keys, &k->node);
    return k;
}

static void key_activate(astate_t *st, akey_t *k)
{
    if (!k->in_active) {
        dl_push_front(&st->active, &k->active);
        k->in_active = 1;
    }
}

/* ---- per event ---------------------------------------------------------------------------- */

/* Counts @p n events in the open bucket @p start. 0, or -1 (no memory, or too many
 * buckets). */
static int bucket_add(akey_t *k, int64_t start, int64_t n)
{
    uint32_t i = k->n_open;
    while (i > 0 && k->open[i - 1].start > start)
        i--;
    if (i > 0 && k->open[i - 1].start == start) {
        k->open[i - 1].count += n;
        return 0;
    }
    if (k->n_open == MAX_OPEN_BUCKETS)
        return -1;
    if (k->n_open == k->cap_open) {
        uint32_t cap = k->cap_open ? k->cap_open * 2 : 2;
        bucket_t *grown = realloc(k->open, cap * sizeof(*grown));
        if (!grown)
            return -1;
        k->open = grown;
        k->cap_open = cap;
    }
    memmove(&k->open[i + 1], &k->open[i], (k->n_open - i) * sizeof(*k->open));
    k->open[i] = (bucket_t){start, n};
    k->n_open++;
    return 0;
}

/* The key an event is counted under ("" for none). */
static const char *event_key(const astate_t *st, const enr_event_t *ev)
{
    if (st->s->anomaly_key == 0)
        return enr_event_type(ev);
    const char *user = enr_event_user_id(ev);
    return *user ? user : enr_event_anonymous_id(ev);
}

static enr_verdict_t anomaly_process(void *state, enr_event_t *ev, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    astate_t *st = state;
    const char *key = event_key(st, ev);
    size_t len = strlen(key);
    if (!len)
        return ENR_KEEP;
    uint64_t h = enr__hash64(key, len);
    akey_t *k = key_find(st, key, len, h);
    if (!k && !(k = key_new(st, key, len, h)))
        return ENR_KEEP; /* out of memory: the event goes on, uncounted */
    dl_unlink(&k->lru);
    dl_push_front(&st->lru, &k->lru);
    int64_t start = enr__window_start(enr_event_time_ms(ev), st->s->anomaly_window_ms);
    if (start + st->s->anomaly_window_ms <= st->closed.end || start < k->next_start)
        return ENR_KEEP; /* late: its bucket is closed */
    if (bucket_add(k, start, 1))
        return ENR_KEEP; /* out of memory or too many open buckets */
    k->dirty = 1;
    key_activate(st, k);
    return ENR_KEEP;
}

/* ---- closing buckets -------------------------------------------------------------------- */

/* @p gap empty buckets (rate 0) through the EWMA, in closed form. */
static void ewma_skip(akey_t *k, double alpha, int64_t gap)
{
    double f = pow(1.0 - alpha, (double)gap);
    k->var = f * (k->var + k->mean * k->mean * (1.0 - f));
    k->mean *= f;
    k->n_hist = k->n_hist > INT64_MAX - gap ? INT64_MAX : k->n_hist + gap;
}

static void ewma_add(akey_t *k, double alpha, double rate)
{
    double d = rate - k->mean;
    k->mean += alpha * d;
    k->var = (1.0 - alpha) * (k->var + alpha * d * d);
    if (k->n_hist < INT64_MAX)
        k->n_hist++;
}

/* z-score of @p rate against the key's baseline, with the variance floors (file comment). */
static double zscore(const akey_t *k, double rate, double secs)
{
    double v = k->var;
    double rel = 0.1 * k->mean;
    double poisson = fmax(k->mean, 1.0 / secs) / secs;
    v = fmax(v, fmax(rel * rel, poisson));
    return (rate - k->mean) / sqrt(v);
}

static void alert_add(astate_t *st, const akey_t *k, int64_t end, double rate, double z)
{
    if (st->n_alerts == st->cap_alerts) {
        size_t cap = st->cap_alerts ? st->cap_alerts * 2 : 16;
        alert_t *grown = realloc(st->alerts, cap * sizeof(*grown));
        if (!grown)
            return;
        st->alerts = grown;
        st->cap_alerts = cap;
    }
    st->alerts[st->n_alerts++] = (alert_t){k, end, rate, k->mean, z};
}

/* Judges the closed bucket @p b of @p k, then adds it to the baseline. */
static void bucket_close(astate_t *st, akey_t *k, const bucket_t *b)
{
    const enr__settings_t *s = st->s;
    double secs = (double)s->anomaly_window_ms / 1000.0;
    double rate = (double)b->count / secs;
    if (k->n_hist == 0) {
        k->mean = rate;
        k->var = 0.0;
        k->n_hist = 1;
    } else {
        if (b->start > k->next_start)
            ewma_skip(k, s->anomaly_alpha, (b->start - k->next_start) / s->anomaly_window_ms);
        if (k->n_hist >= s->anomaly_min_windows) {
            double z = zscore(k, rate, secs);
            if (z > s->anomaly_zscore)
                alert_add(st, k, b->start + s->anomaly_window_ms, rate, z);
        }
        ewma_add(k, s->anomaly_alpha, rate);
    }
    k->next_start = b->start + s->anomaly_window_ms;
    k->dirty = 1;
}

/* In a processor's task, a rate per event type is judged from every task's count: the
 * closed bucket goes to the task that merges "<type>/<start>" (merge.c), which judges it. */
static int merged_elsewhere(const astate_t *st, const enr_ctx_t *ctx)
{
    return ctx->sink->partial && st->s->anomaly_key == 0;
}

/* The key routes it: every bucket of a type goes to the one task that keeps its baseline. */
static void bucket_send(astate_t *st, enr_ctx_t *ctx, akey_t *k, const bucket_t *b)
{
    uint8_t v[17] = {ENR__PARTIAL_ANOMALY};
    enr__le_put64(enr__le_put64(v + 1, (uint64_t)b->start), (uint64_t)b->count);
    ctx->sink->partial(ctx->sink->opaque, k->key, k->key_len, v, sizeof(v), 0);
    k->next_start = b->start + st->s->anomaly_window_ms;
    k->dirty = 1;
}

/* Closes the buckets of @p k that end at or before @p watermark. */
static void key_close_due(astate_t *st, enr_ctx_t *ctx, akey_t *k, int64_t watermark)
{
    uint32_t i = 0;
    int send = merged_elsewhere(st, ctx);
    for (; i < k->n_open && k->open[i].start + st->s->anomaly_window_ms <= watermark; i++) {
        if (send)
            bucket_send(st, ctx, k, &k->open[i]);
        else
            bucket_close(st, k, &k->open[i]);
    }
    if (i) {
        memmove(k->open, k->open + i, (k->n_open - i) * sizeof(*k->open));
        k->n_open -= i;
    }
}

/* ---- flush -------------------------------------------------------------------------------- */

/* Writes @p k's state to the changelog (see restore_value() for the layout). */
static void persist(astate_t *st, enr_ctx_t *ctx, akey_t *k)
{
    uint8_t *p = enr__buf_reserve(&st->buf, &st->buf_cap, 1 + 5 * 8 + 16 * (size_t)k->n_open);
    if (!p)
        return; /* stays dirty: written by a later flush */
    *p++ = VALUE_VERSION;
    p = enr__le_put64(p, (uint64_t)k->next_start);
    p = enr__le_put64(p, (uint64_t)k->n_hist);
    p = enr__le_put_double(p, k->mean);
    p = enr__le_put_double(p, k->var);
    p = enr__le_put64(p, k->n_open);
    for (uint32_t i = 0; i < k->n_open; i++) {
        p = enr__le_put64(p, (uint64_t)k->open[i].start);
        p = enr__le_put64(p, (uint64_t)k->open[i].count);
    }
    enr_ctx_changelog_put(ctx, k->key, k->key_len, st->buf, (size_t)(p - st->buf));
    k->dirty = 0;
    k->persisted = 1;
}

static int alert_cmp(const void *a, const void *b)
{
    const alert_t *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    size_t n = x->k->key_len < y->k->key_len ? x->k->key_len : y->k->key_len;
    int c = memcmp(x->k->key, y->k->key, n);
    return c ? c : (x->k->key_len > y->k->key_len) - (x->k->key_len < y->k->key_len);
}

static void emit_alerts(astate_t *st, enr_ctx_t *ctx)
{
    if (st->n_alerts)
        qsort(st->alerts, st->n_alerts, sizeof(*st->alerts), alert_cmp);
    for (size_t i = 0; i < st->n_alerts; i++) {
        const alert_t *a = &st->alerts[i];
        Userevents__AnomalyAlert msg = USEREVENTS__ANOMALY_ALERT__INIT;
        msg.key_kind = (char *)(st->s->anomaly_key ? "user" : "type");
        msg.key = (char *)a->k->key;
        msg.window_end_ms = a->end;
        msg.rate = a->rate;
        msg.baseline = a->baseline;
        msg.zscore = a->z;
        size_t size = userevents__anomaly_alert__get_packed_size(&msg);
        if (!enr__buf_reserve(&st->buf, &st->buf_cap, size))
            continue;
        size_t len = userevents__anomaly_alert__pack(&msg, st->buf);
        if (enr_ctx_emit(ctx, st->s->alerts_topic, a->k->key, a->k->key_len, st->buf, len) ==
                ENR_OK &&
            ctx->stats)
            ctx->stats[ENR_STAT_ALERTS]++;
    }
    st->n_alerts = 0;
}

static void anomaly_flush(void *state, enr_ctx_t *ctx, void *opaque)
{
    (void)opaque;
    astate_t *st = state;
    enr__horizon_raise(&st->closed, ctx->watermark_ms);
    for (size_t i = 0; i < st->n_evicted; i++) {
        enr_ctx_changelog_put(ctx, st->evicted[i]->key, st->evicted[i]->key_len, NULL, 0);
        free(st->evicted[i]);
    }
    st->n_evicted = 0;
    dlink_t *l = st->active.next, *next;
    for (; l != &st->active; l = next) {
        next = l->next;
        akey_t *k = of_active(l);
        key_close_due(st, ctx, k, st->closed.end);
        if (k->dirty)
            persist(st, ctx, k);
        if (!k->n_open) {
            dl_unlink(&k->active);
            k->in_active = 0;
        }
    }
    emit_alerts(st, ctx);
    enr__horizon_persist(&st->closed, ctx, CLOSED_KEY, CLOSED_KEY_LEN);
    if (merged_elsewhere(st, ctx))
        enr__horizon_send(ctx, ENR__HORIZON_ANOMALY, st->closed.end);
}

/* ---- merging the counts of a processor's tasks (merge.c) ------------------------------- */

int enr__anomaly_merge(void *state, const void *key, size_t key_len, const void *value,
                       size_t value_len, int64_t *stats)
{
    astate_t *st = state;
    const uint8_t *v = value;
    if (!key || !key_len || !v || value_len != 17 || v[0] != ENR__PARTIAL_ANOMALY)
        return -1;
    int64_t start = (int64_t)enr__le_load64(v + 1), count = (int64_t)enr__le_load64(v + 9);
    if (!enr__time_ok(start) || count < 0)
        return -1;
    uint64_t h = enr__hash64(key, key_len);
    akey_t *k = key_find(st, key, key_len, h);
    if (!k && !(k = key_new(st, key, key_len, h)))
        return -1;
    dl_unlink(&k->lru);
    dl_push_front(&st->lru, &k->lru);
    if (start + st->s->anomaly_window_ms <= st->closed.end || start < k->next_start) {
        stats[ENR_STAT_LATE_EVENTS] += count; /* judged already without them */
        return 0;
    }
    if (bucket_add(k, start, count))
        return -1;
    k->dirty = 1;
    key_activate(st, k);
    return 0;
}

/* ---- restore ------------------------------------------------------------------------------ */

/*
 * Reads a value: version, next_start, n_hist, mean, var, n_open, then n_open (start, count)
 * pairs in increasing start. 0, or -1 when invalid.
 */
static int restore_value(akey_t *k, const void *value, size_t len)
{
    enr__le_reader_t r = enr__le_reader(value, len);
    uint8_t version = enr__le_get8(&r);
    k->next_start = (int64_t)enr__le_get64(&r);
    k->n_hist = (int64_t)enr__le_get64(&r);
    k->mean = enr__le_get_double(&r);
    k->var = enr__le_get_double(&r);
    uint64_t n = enr__le_get64(&r);
    /* No baseline yet may still have a next_start: a processor's task sends its buckets to
     * the task that merges them (bucket_send()) and keeps no baseline of its own. */
    int next_ok = k->next_start == INT64_MIN ? k->n_hist == 0 : enr__time_ok(k->next_start);
    if (!r.ok || version != VALUE_VERSION || n > MAX_OPEN_BUCKETS || k->n_hist < 0 || !next_ok ||
        !isfinite(k->mean) || !isfinite(k->var) || (uint64_t)(r.end - r.p) != 16 * n)
        return -1;
    if (n && !(k->open = malloc(n * sizeof(*k->open))))
        return -1;
    k->cap_open = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        bucket_t b;
        b.start = (int64_t)enr__le_get64(&r);
        b.count = (int64_t)enr__le_get64(&r);
        if (b.count <= 0 || !enr__time_ok(b.start) || (i && b.start <= k->open[i - 1].start))
            return -1;
        k->open[k->n_open++] = b;
    }
    return 0;
}

static int anomaly_restore(void *state, const void *key, size_t key_len, const void *value,
                           size_t value_len, void *opaque)
{
    (void)opaque;
    astate_t *st = state;
    if (key_len == CLOSED_KEY_LEN && !memcmp(key, CLOSED_KEY, key_len))
        return enr__horizon_restore(&st->closed, value, value_len);
    uint64_t h = enr__hash64(key, key_len);
    akey_t *k = key_find(st, key, key_len, h);
    if (k) {
        k->persisted = 0; /* replaced or deleted by this record: nothing to delete later */
        key_evict(st, k);
    }
    if (!value)
        return 0;
    if (!(k = key_new(st, key, key_len, h)))
        return -1;
    k->persisted = 1;
    if (restore_value(k, value, value_len)) {
        k->persisted = 0;
        key_evict(st, k);
        return -1;
    }
    if (k->n_open)
        key_activate(st, k);
    return 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static int anomaly_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    astate_t *st = calloc(1, sizeof(*st));
    if (!st || enr__htab_init(&st->keys)) {
        free(st);
        uc__errstr(errstr, errstr_size, "out of memory");
        return -1;
    }
    st->s = opaque;
    enr__horizon_init(&st->closed);
    dl_init(&st->lru);
    dl_init(&st->active);
    *state = st;
    return 0;
}

static void anomaly_destroy(void *state, void *opaque)
{
    (void)opaque;
    astate_t *st = state;
    if (!st)
        return;
    while (st->lru.next != &st->lru) {
        akey_t *k = of_lru(st->lru.next);
        dl_unlink(&k->lru);
        free(k->open);
        free(k);
    }
    for (size_t i = 0; i < st->n_evicted; i++)
        free(st->evicted[i]);
    enr__htab_free(&st->keys);
    free(st->evicted);
    free(st->alerts);
    free(st->buf);
    free(st);
}

enr_stage_t *enr__stage_anomaly_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("anomaly", anomaly_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, anomaly_init);
    enr_stage_set_flush(st, anomaly_flush);
    enr_stage_set_restore(st, anomaly_restore);
    enr_stage_set_destroy(st, anomaly_destroy);
    return st;
}
