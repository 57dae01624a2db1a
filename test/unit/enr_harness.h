/*
 * enr_harness.h - drives one built-in stage directly, without a pipeline or Kafka, for the
 * stage unit tests (test_enr_window.c, test_enr_anomaly.c): hand-built events, a sink that
 * records every emit and changelog write, flushes at a chosen watermark, and restoring a
 * fresh stage from a compacted copy of the changelog another run wrote.
 *
 * Header-only (static inline) so each test binary takes what it uses.
 */
#ifndef ENR_HARNESS_H
#define ENR_HARNESS_H

#include "conf.h"
#include "event.h"
#include "stage.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* One recorded emit or changelog write (value NULL: a deletion). */
typedef struct th_rec {
    char *topic;
    uint8_t *key, *value;
    size_t key_len, value_len;
} th_rec_t;

typedef struct th_log {
    th_rec_t *v;
    size_t n, cap;
} th_log_t;

typedef struct th_stage {
    enr_conf_t *conf; /* owns the settings the stage reads */
    enr_stage_t def;
    void *state;
    th_log_t emits, changelog;
    enr__sink_t sink;
    int64_t stats[ENR_STAT__CNT];
    int64_t clock; /* newest event time processed: the watermark a pipeline would pass */
} th_stage_t;

static inline uint8_t *th_dup(const void *p, size_t len)
{
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, p, len);
    copy[len] = 0;
    return copy;
}

static inline void th_log_add(th_log_t *log, const char *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len)
{
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 64;
        log->v = realloc(log->v, log->cap * sizeof(*log->v));
        assert_non_null(log->v);
    }
    th_rec_t *r = &log->v[log->n++];
    r->topic = (char *)th_dup(topic, strlen(topic));
    r->key = th_dup(key, key_len);
    r->key_len = key_len;
    r->value = value ? th_dup(value, value_len) : NULL;
    r->value_len = value_len;
}

static inline void th_log_free(th_log_t *log)
{
    for (size_t i = 0; i < log->n; i++) {
        free(log->v[i].topic);
        free(log->v[i].key);
        free(log->v[i].value);
    }
    free(log->v);
    memset(log, 0, sizeof(*log));
}

static inline void th_on_emit(void *opaque, const char *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len)
{
    th_log_add(&((th_stage_t *)opaque)->emits, topic, key, key_len, value, value_len);
}

static inline void th_on_changelog(void *opaque, const char *stage, const void *key, size_t key_len,
                                   const void *value, size_t value_len)
{
    th_log_add(&((th_stage_t *)opaque)->changelog, stage, key, key_len, value, value_len);
}

/* Builds the stage @p make returns with the settings "key=value" of @p kv (NULL-ended). */
static inline void th_open(th_stage_t *t, enr_stage_t *(*make)(const enr__settings_t *),
                           const char *const *kv)
{
    char errstr[256];
    memset(t, 0, sizeof(*t));
    t->conf = enr_conf_new();
    assert_non_null(t->conf);
    for (size_t i = 0; kv && kv[i]; i++) {
        char name[128];
        const char *eq = strchr(kv[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - kv[i]), kv[i]);
        if (enr_conf_set(t->conf, name, eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    enr_stage_t *st = make(&t->conf->s);
    assert_non_null(st);
    t->def = *st;
    enr_stage_destroy(st);
    assert_int_equal(t->def.init(&t->state, t->def.opaque, errstr, sizeof(errstr)), 0);
    t->sink = (enr__sink_t){th_on_emit, th_on_changelog, t};
    t->clock = 0; /* like a fresh pipeline */
}

static inline void th_close(th_stage_t *t)
{
    t->def.destroy(t->state, t->def.opaque);
    enr_conf_destroy(t->conf);
    th_log_free(&t->emits);
    th_log_free(&t->changelog);
}

static inline enr_ctx_t th_ctx(th_stage_t *t, int64_t watermark)
{
    enr_ctx_t ctx = {.sink = &t->sink,
                     .stage = t->def.name,
                     .settings = &t->conf->s,
                     .watermark_ms = watermark,
                     .stats = t->stats};
    return ctx;
}

/* An event as a stage sees it, built on the stack. */
typedef struct th_event {
    Userevents__Event ev;
    Userevents__Event__PropertiesEntry entry, *entries[1];
    Userevents__Value value;
    enr_event_t e;
} th_event_t;

enum { TH_NONE, TH_INT, TH_DOUBLE, TH_STRING };

/* @p user / @p anon may be NULL; property "amount" of @p kind holds @p num. */
static inline enr_event_t *th_event(th_event_t *t, const char *type, const char *user,
                                    const char *anon, int64_t ts, int kind, double num)
{
    userevents__event__init(&t->ev);
    t->ev.type = (char *)type;
    t->ev.user_id = (char *)(user ? user : "");
    t->ev.anonymous_id = (char *)(anon ? anon : "");
    t->ev.timestamp_ms = ts;
    if (kind != TH_NONE) {
        userevents__event__properties_entry__init(&t->entry);
        userevents__value__init(&t->value);
        t->entry.key = (char *)"amount";
        t->entry.value = &t->value;
        if (kind == TH_INT) {
            t->value.kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
            t->value.int_value = (int64_t)num;
        } else if (kind == TH_DOUBLE) {
            t->value.kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
            t->value.double_value = num;
        } else {
            t->value.kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
            t->value.string_value = (char *)"not a number";
        }
        t->entries[0] = &t->entry;
        t->ev.properties = t->entries;
        t->ev.n_properties = 1;
    }
    enr__event_init(&t->e, &t->ev, NULL);
    return &t->e;
}

/* Runs the stage on one event, as the pipeline does; the stages always keep. */
static inline void th_process(th_stage_t *t, enr_event_t *ev)
{
    enr_ctx_t ctx = th_ctx(t, t->clock);
    assert_int_equal(t->def.process(t->state, ev, &ctx, t->def.opaque), ENR_KEEP);
    if (enr_event_time_ms(ev) > t->clock)
        t->clock = enr_event_time_ms(ev);
}

static inline void th_flush(th_stage_t *t, int64_t watermark)
{
    enr_ctx_t ctx = th_ctx(t, watermark);
    t->def.flush(t->state, &ctx, t->def.opaque);
}

static inline int th_restore_one(th_stage_t *t, const void *key, size_t key_len, const void *value,
                                 size_t value_len)
{
    return t->def.restore(t->state, key, key_len, value, value_len, t->def.opaque);
}

static const th_log_t *th_sort_log; /* qsort has no context argument */

/* Orders record indexes by key, then by write order. */
static inline int th_key_cmp(const void *a, const void *b)
{
    const th_rec_t *x = &th_sort_log->v[*(const size_t *)a];
    const th_rec_t *y = &th_sort_log->v[*(const size_t *)b];
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (!c)
        c = (x->key_len > y->key_len) - (x->key_len < y->key_len);
    if (!c)
        c = (x > y) - (x < y);
    return c;
}

/*
 * What a compacted changelog topic holds after @p log, into the empty @p out: the last value
 * of each key, tombstones gone, ordered by key (not by write).
 */
static inline void th_compact(const th_log_t *log, th_log_t *out)
{
    size_t *idx = malloc((log->n + 1) * sizeof(*idx));
    assert_non_null(idx);
    for (size_t i = 0; i < log->n; i++)
        idx[i] = i;
    th_sort_log = log;
    qsort(idx, log->n, sizeof(*idx), th_key_cmp);
    for (size_t i = 0; i < log->n; i++) {
        const th_rec_t *r = &log->v[idx[i]];
        const th_rec_t *later = i + 1 < log->n ? &log->v[idx[i + 1]] : NULL;
        if (later && later->key_len == r->key_len && !memcmp(later->key, r->key, r->key_len))
            continue; /* compacted away: a newer record of the same key exists */
        if (r->value)
            th_log_add(out, r->topic, r->key, r->key_len, r->value, r->value_len);
    }
    free(idx);
}

/* Restores @p t from the compacted @p log, read back in descending key order. */
static inline void th_restore_compacted(th_stage_t *t, const th_log_t *log)
{
    th_log_t c = {0};
    th_compact(log, &c);
    for (size_t i = c.n; i-- > 0;)
        assert_int_equal(
            th_restore_one(t, c.v[i].key, c.v[i].key_len, c.v[i].value, c.v[i].value_len), 0);
    th_log_free(&c);
}

/* Appends copies of @p from's records to @p to. */
static inline void th_log_append(th_log_t *to, const th_log_t *from)
{
    for (size_t i = 0; i < from->n; i++)
        th_log_add(to, from->v[i].topic, from->v[i].key, from->v[i].key_len, from->v[i].value,
                   from->v[i].value_len);
}

/* Asserts two logs hold the same records, byte for byte, in the same order. */
static inline void th_assert_logs_equal(const th_log_t *a, const th_log_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->v[i].topic, b->v[i].topic);
        assert_int_equal(a->v[i].key_len, b->v[i].key_len);
        assert_memory_equal(a->v[i].key, b->v[i].key, a->v[i].key_len);
        assert_int_equal(a->v[i].value_len, b->v[i].value_len);
        if (a->v[i].value_len)
            assert_memory_equal(a->v[i].value, b->v[i].value, a->v[i].value_len);
    }
}

/* A small deterministic PRNG (xorshift64*), so every run sees the same input. */
static inline uint64_t th_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static inline int64_t th_range(uint64_t *s, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(th_rand(s) % (uint64_t)(hi - lo + 1));
}

#endif
