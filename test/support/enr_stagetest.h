/*
 * enr_stagetest.h - what the libenrich stage tests (test_enr_*.c, which see libenrich/src)
 * share: one built-in stage driven through its callbacks the way the pipeline drives it,
 * without a pipeline or Kafka; a sink that records every emit and changelog write; Kafka
 * compaction of that changelog (latest value per key, deletes dropped) and restoring a fresh
 * stage from it; and events, built field by field or in one call.
 *
 * Two ways to run a stage: st_stage_start() takes a stage, settings and a sink the test owns
 * (a sink can outlive restarts); st_open() builds all three from "key=value" settings and
 * keeps the newest event time processed as the pipeline's watermark (st_process_keep()).
 *
 * Header-only (static inline) so each test binary takes what it uses.
 */
#ifndef ENR_STAGETEST_H
#define ENR_STAGETEST_H

#include "conf.h"
#include "event.h"
#include "stage.h"
#include "uc_arena.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- a recording sink ---------------------------------------------------------------------- */

typedef struct st_record {
    char *topic;  /* emits: the topic; changelog: the stage */
    uint8_t *key; /* NUL-terminated copy, so a text key compares as a string */
    size_t key_len;
    uint8_t *value; /* NULL: a delete */
    size_t value_len;
} st_record_t;

typedef struct st_log {
    st_record_t *v;
    size_t n, cap;
} st_log_t;

typedef struct st_sink {
    enr__sink_t sink;
    st_log_t changelog;
    st_log_t emits;
} st_sink_t;

/* A NUL-terminated copy of @p n bytes; aborts when out of memory. */
static inline uint8_t *st_dup(const void *p, size_t n)
{
    uint8_t *copy = malloc(n + 1);
    if (!copy)
        abort();
    if (n)
        memcpy(copy, p, n);
    copy[n] = 0;
    return copy;
}

static inline void st_log_add(st_log_t *log, const char *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len)
{
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 64;
        log->v = realloc(log->v, log->cap * sizeof(*log->v));
        if (!log->v)
            abort();
    }
    st_record_t *r = &log->v[log->n++];
    topic = topic ? topic : "";
    r->topic = (char *)st_dup(topic, strlen(topic));
    r->key = st_dup(key, key_len);
    r->key_len = key_len;
    r->value = value ? st_dup(value, value_len) : NULL;
    r->value_len = value ? value_len : 0;
}

static inline void st_log_clear(st_log_t *log)
{
    for (size_t i = 0; i < log->n; i++) {
        free(log->v[i].topic);
        free(log->v[i].key);
        free(log->v[i].value);
    }
    free(log->v);
    memset(log, 0, sizeof(*log));
}

/* Appends copies of @p from's records to @p to. */
static inline void st_log_append(st_log_t *to, const st_log_t *from)
{
    for (size_t i = 0; i < from->n; i++)
        st_log_add(to, from->v[i].topic, from->v[i].key, from->v[i].key_len, from->v[i].value,
                   from->v[i].value_len);
}

/* Asserts two logs hold the same records, byte for byte, in the same order. */
static inline void st_assert_logs_equal(const st_log_t *a, const st_log_t *b)
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

static inline void st_on_emit(void *opaque, const char *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len)
{
    st_log_add(&((st_sink_t *)opaque)->emits, topic, key, key_len, value, value_len);
}

static inline void st_on_changelog(void *opaque, const char *stage, const void *key, size_t key_len,
                                   const void *value, size_t value_len)
{
    st_log_add(&((st_sink_t *)opaque)->changelog, stage, key, key_len, value, value_len);
}

static inline void st_sink_init(st_sink_t *s)
{
    memset(s, 0, sizeof(*s));
    s->sink.emit = st_on_emit;
    s->sink.changelog = st_on_changelog;
    s->sink.opaque = s;
}

static inline void st_sink_free(st_sink_t *s)
{
    st_log_clear(&s->changelog);
    st_log_clear(&s->emits);
}

/* ---- compaction ---------------------------------------------------------------------------- */

static inline int st_key_eq(const st_record_t *a, const st_record_t *b)
{
    return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* Orders record pointers by key, then by write order (their place in the log). */
static inline int st_key_cmp(const void *a, const void *b)
{
    const st_record_t *x = *(const st_record_t *const *)a;
    const st_record_t *y = *(const st_record_t *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (!c)
        c = (x->key_len > y->key_len) - (x->key_len < y->key_len);
    if (!c)
        c = (x > y) - (x < y);
    return c;
}

/* Orders record pointers by write order. */
static inline int st_log_order_cmp(const void *a, const void *b)
{
    const st_record_t *x = *(const st_record_t *const *)a;
    const st_record_t *y = *(const st_record_t *const *)b;
    return (x > y) - (x < y);
}

/*
 * What a compacted topic keeps of @p log: the latest record of each key, unless it is a
 * delete. Fills @p out (room for log->n pointers into @p log) in key order; returns how many.
 */
static inline size_t st_compact_keys(const st_log_t *log, const st_record_t **out)
{
    for (size_t i = 0; i < log->n; i++)
        out[i] = &log->v[i];
    qsort(out, log->n, sizeof(*out), st_key_cmp);
    size_t k = 0;
    for (size_t i = 0; i < log->n; i++) {
        if (i + 1 < log->n && st_key_eq(out[i], out[i + 1]))
            continue; /* compacted away: a newer record of the same key exists */
        if (out[i]->value)
            out[k++] = out[i];
    }
    return k;
}

/*
 * What a compacted topic keeps of @p log (st_compact_keys()), in an order shuffled by @p seed
 * (0: log order). Returns borrowed pointers into @p log, in an array the caller frees;
 * *@p n is set.
 */
static inline const st_record_t **st_compact(const st_log_t *log, unsigned seed, size_t *n)
{
    const st_record_t **out = malloc((log->n + 1) * sizeof(*out));
    if (!out)
        abort();
    size_t k = st_compact_keys(log, out);
    qsort(out, k, sizeof(*out), st_log_order_cmp);
    for (size_t i = k; seed && i > 1; i--) {
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 8) % i;
        const st_record_t *tmp = out[i - 1];
        out[i - 1] = out[j];
        out[j] = tmp;
    }
    *n = k;
    return out;
}

/* Copies what a compacted topic keeps of @p log into the empty @p out, in key order. */
static inline void st_compact_into(const st_log_t *log, st_log_t *out)
{
    const st_record_t **recs = malloc((log->n + 1) * sizeof(*recs));
    if (!recs)
        abort();
    size_t k = st_compact_keys(log, recs);
    for (size_t i = 0; i < k; i++)
        st_log_add(out, recs[i]->topic, recs[i]->key, recs[i]->key_len, recs[i]->value,
                   recs[i]->value_len);
    free(recs);
}

/* ---- a stage, driven like the pipeline drives it ------------------------------------------- */

typedef struct st_stage {
    enr_stage_t *def;
    void *state;
    enr_ctx_t ctx;
    int64_t stats[ENR_STAT__CNT];
    int64_t clock;    /* newest event time st_process_keep() saw: the pipeline's watermark */
    enr_conf_t *conf; /* st_open(): the settings it built */
    st_sink_t sink;   /* st_open(): the sink it records to */
} st_stage_t;

/* Builds and initialises the stage; returns its init's result (0 when it has none). */
static inline int st_stage_start(st_stage_t *st, enr_stage_t *def, st_sink_t *sink,
                                 const enr__settings_t *s, char *errstr, size_t errstr_size)
{
    memset(st, 0, sizeof(*st));
    st->def = def;
    st->ctx.sink = &sink->sink;
    st->ctx.stage = def->name;
    st->ctx.settings = s;
    st->ctx.stats = st->stats;
    if (def->init)
        return def->init(&st->state, def->opaque, errstr, errstr_size);
    return 0;
}

/* Settings from "key=value" strings (@p kv NULL-ended, or NULL: the defaults). */
static inline enr_conf_t *st_conf_new(const char *const *kv)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    assert_non_null(conf);
    for (size_t i = 0; kv && kv[i]; i++) {
        char name[128];
        const char *eq = strchr(kv[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - kv[i]), kv[i]);
        if (enr_conf_set(conf, name, eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    return conf;
}

/*
 * Starts the stage @p make returns with the settings of @p kv (see st_conf_new()), recording
 * to the stage's own sink; fails the test when init fails.
 */
static inline void st_open(st_stage_t *st, enr_stage_t *(*make)(const enr__settings_t *),
                           const char *const *kv)
{
    char errstr[256] = "";
    enr_conf_t *conf = st_conf_new(kv);
    enr_stage_t *def = make(&conf->s);
    assert_non_null(def);
    int rc = st_stage_start(st, def, &st->sink, &conf->s, errstr, sizeof(errstr));
    st->conf = conf;
    st_sink_init(&st->sink); /* after the start, which clears *st; init has no sink to call */
    if (rc)
        fail_msg("%s: init failed: %s", def->name, errstr);
}

/* Destroys the stage, and what st_open() built with it. */
static inline void st_stage_stop(st_stage_t *st)
{
    if (st->def && st->def->destroy)
        st->def->destroy(st->state, st->def->opaque);
    enr_stage_destroy(st->def);
    enr_conf_destroy(st->conf);
    st_sink_free(&st->sink);
    memset(st, 0, sizeof(*st));
}

static inline enr_verdict_t st_process(st_stage_t *st, enr_event_t *e)
{
    st->ctx.reason[0] = '\0';
    return st->def->process(st->state, e, &st->ctx, st->def->opaque);
}

/*
 * Processes @p e as the pipeline does between flushes, with the newest event time seen so far
 * as the watermark (a fresh stage starts at 0), and asserts the stage keeps it.
 */
static inline void st_process_keep(st_stage_t *st, enr_event_t *e)
{
    st->ctx.watermark_ms = st->clock;
    assert_int_equal(st_process(st, e), ENR_KEEP);
    if (enr_event_time_ms(e) > st->clock)
        st->clock = enr_event_time_ms(e);
}

static inline void st_flush(st_stage_t *st, int64_t watermark_ms)
{
    st->ctx.watermark_ms = watermark_ms;
    if (st->def->flush)
        st->def->flush(st->state, &st->ctx, st->def->opaque);
}

/* Hands one changelog record to the stage's restore; returns its result. */
static inline int st_restore_one(st_stage_t *st, const void *key, size_t key_len, const void *value,
                                 size_t value_len)
{
    return st->def->restore(st->state, key, key_len, value, value_len, st->def->opaque);
}

/* Hands @p n changelog records to the stage's restore; returns how many it refused. */
static inline int st_restore(st_stage_t *st, const st_record_t *const *recs, size_t n)
{
    int refused = 0;
    for (size_t i = 0; i < n; i++)
        refused += st_restore_one(st, recs[i]->key, recs[i]->key_len, recs[i]->value,
                                  recs[i]->value_len) != 0;
    return refused;
}

/* Restores @p st from the compaction of @p log, read back in descending key order. */
static inline void st_restore_compacted(st_stage_t *st, const st_log_t *log)
{
    const st_record_t **recs = malloc((log->n + 1) * sizeof(*recs));
    if (!recs)
        abort();
    for (size_t i = st_compact_keys(log, recs); i-- > 0;)
        assert_int_equal(
            st_restore_one(st, recs[i]->key, recs[i]->key_len, recs[i]->value, recs[i]->value_len),
            0);
    free(recs);
}

/*
 * Asserts that a run cut in two, @p before then @p after (restored from before's changelog),
 * left the state an uninterrupted run @p whole left: the same compacted changelog, byte for
 * byte. Returns how many keys that state holds.
 */
static inline size_t st_assert_restart_state(const st_stage_t *before, const st_stage_t *after,
                                             const st_stage_t *whole)
{
    st_log_t joined = {0}, restarted = {0}, uninterrupted = {0};
    st_log_append(&joined, &before->sink.changelog);
    st_log_append(&joined, &after->sink.changelog);
    st_compact_into(&joined, &restarted);
    st_compact_into(&whole->sink.changelog, &uninterrupted);
    st_assert_logs_equal(&restarted, &uninterrupted);
    size_t n = uninterrupted.n;
    st_log_clear(&joined);
    st_log_clear(&restarted);
    st_log_clear(&uninterrupted);
    return n;
}

/* Asserts that @p before then @p after emitted what @p whole did, byte for byte, in order. */
static inline void st_assert_restart_emits(const st_stage_t *before, const st_stage_t *after,
                                           const st_stage_t *whole)
{
    st_log_t joined = {0};
    st_log_append(&joined, &before->sink.emits);
    st_log_append(&joined, &after->sink.emits);
    st_assert_logs_equal(&joined, &whole->sink.emits);
    st_log_clear(&joined);
}

/* ---- an event ------------------------------------------------------------------------------ */

typedef struct st_event {
    Userevents__Event ev;
    Userevents__Context context;
    uint8_t id[16];
    uc__arena_t arena;
    Userevents__Event__PropertiesEntry entry, *entries[1]; /* st_event_build()'s property */
    Userevents__Value value;
    enr_event_t e;
} st_event_t;

/* An empty event with a context and a 16-byte id; set fields, then call st_event_ready(). */
static inline void st_event_init(st_event_t *t)
{
    Userevents__Event ev = USEREVENTS__EVENT__INIT;
    Userevents__Context context = USEREVENTS__CONTEXT__INIT;
    t->ev = ev;
    t->context = context;
    memset(t->id, 0, sizeof(t->id));
    t->ev.event_id.data = t->id;
    t->ev.event_id.len = sizeof(t->id);
    t->ev.context = &t->context;
    t->ev.type = (char *)"page_view";
    uc__arena_init(&t->arena, NULL, 0);
}

/* (Re)prepares the enrichment around the fields set so far; @p received_ms: Kafka time. */
static inline enr_event_t *st_event_ready(st_event_t *t, int64_t received_ms)
{
    uc__arena_reset(&t->arena);
    enr__event_init(&t->e, &t->ev, &t->arena);
    t->e.out.received_at_ms = received_ms;
    return &t->e;
}

static inline void st_event_free(st_event_t *t)
{
    uc__arena_free(&t->arena);
}

/* Writes @p n as the id's last 8 bytes (big-endian) after a fixed prefix. */
static inline void st_event_set_id(st_event_t *t, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        t->id[i] = (uint8_t)(0xA0 + i);
    for (int i = 0; i < 8; i++)
        t->id[15 - i] = (uint8_t)(n >> (8 * i));
}

/* What property "amount" of st_event_build() holds. */
enum { ST_NONE, ST_INT, ST_DOUBLE, ST_STRING };

/*
 * An event in one call, for stages that only read it (no context, no id, no arena: nothing to
 * free). @p user / @p anon may be NULL; property "amount" of @p kind holds @p num.
 */
static inline enr_event_t *st_event_build(st_event_t *t, const char *type, const char *user,
                                          const char *anon, int64_t ts, int kind, double num)
{
    userevents__event__init(&t->ev);
    t->ev.type = (char *)type;
    t->ev.user_id = (char *)(user ? user : "");
    t->ev.anonymous_id = (char *)(anon ? anon : "");
    t->ev.timestamp_ms = ts;
    if (kind != ST_NONE) {
        userevents__event__properties_entry__init(&t->entry);
        userevents__value__init(&t->value);
        t->entry.key = (char *)"amount";
        t->entry.value = &t->value;
        if (kind == ST_INT) {
            t->value.kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
            t->value.int_value = (int64_t)num;
        } else if (kind == ST_DOUBLE) {
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

/* ---- random input -------------------------------------------------------------------------- */

/* A small deterministic PRNG (xorshift64*), so every run sees the same input. */
static inline uint64_t st_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static inline int64_t st_range(uint64_t *s, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(st_rand(s) % (uint64_t)(hi - lo + 1));
}

#endif
