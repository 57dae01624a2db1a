/*
 * enr_stagetest.h - what the libenrich stage tests share: a stage driven through its
 * callbacks the way the pipeline drives it, a sink that records emits and changelog writes,
 * Kafka compaction of that changelog (latest value per key, deletes dropped, any order), and
 * an event built field by field. Header-only (static inline), for test_enr_* files, which
 * see libenrich/src.
 */
#ifndef ENR_STAGETEST_H
#define ENR_STAGETEST_H

#include "conf.h"
#include "event.h"
#include "stage.h"
#include "ue_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- a recording sink ---------------------------------------------------------------------- */

typedef struct st_record {
    char *topic; /* emits: the topic; changelog: the stage */
    uint8_t *key;
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

static inline void *st_dup(const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    if (copy && n)
        memcpy(copy, p, n);
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
    r->topic = strdup(topic ? topic : "");
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

static inline int st_key_eq(const st_record_t *a, const st_record_t *b)
{
    return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/*
 * What a compacted topic keeps of @p log: the latest value of each key, deleted keys gone,
 * in an order shuffled by @p seed (0: log order). Returns borrowed pointers into @p log, in
 * an array the caller frees; *@p n is set.
 */
static inline const st_record_t **st_compact(const st_log_t *log, unsigned seed, size_t *n)
{
    const st_record_t **out = malloc((log->n + 1) * sizeof(*out));
    size_t k = 0;
    if (!out)
        abort();
    for (size_t i = 0; i < log->n; i++) {
        int superseded = 0;
        for (size_t j = i + 1; j < log->n && !superseded; j++)
            superseded = st_key_eq(&log->v[i], &log->v[j]);
        if (!superseded && log->v[i].value)
            out[k++] = &log->v[i];
    }
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

/* ---- a stage, driven like the pipeline drives it ------------------------------------------- */

typedef struct st_stage {
    enr_stage_t *def;
    void *state;
    enr_ctx_t ctx;
    int64_t stats[ENR_STAT__CNT];
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

static inline void st_stage_stop(st_stage_t *st)
{
    if (st->def && st->def->destroy)
        st->def->destroy(st->state, st->def->opaque);
    enr_stage_destroy(st->def);
    memset(st, 0, sizeof(*st));
}

static inline enr_verdict_t st_process(st_stage_t *st, enr_event_t *e)
{
    st->ctx.reason[0] = '\0';
    return st->def->process(st->state, e, &st->ctx, st->def->opaque);
}

static inline void st_flush(st_stage_t *st, int64_t watermark_ms)
{
    st->ctx.watermark_ms = watermark_ms;
    if (st->def->flush)
        st->def->flush(st->state, &st->ctx, st->def->opaque);
}

/* Hands @p n changelog records to the stage's restore; returns how many it refused. */
static inline int st_restore(st_stage_t *st, const st_record_t *const *recs, size_t n)
{
    int refused = 0;
    for (size_t i = 0; i < n; i++)
        refused += st->def->restore(st->state, recs[i]->key, recs[i]->key_len, recs[i]->value,
                                    recs[i]->value_len, st->def->opaque) != 0;
    return refused;
}

/* ---- an event ------------------------------------------------------------------------------ */

typedef struct st_event {
    Userevents__Event ev;
    Userevents__Context context;
    uint8_t id[16];
    ue__arena_t arena;
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
    ue__arena_init(&t->arena, NULL, 0);
}

/* (Re)prepares the enrichment around the fields set so far; @p received_ms: Kafka time. */
static inline enr_event_t *st_event_ready(st_event_t *t, int64_t received_ms)
{
    ue__arena_reset(&t->arena);
    enr__event_init(&t->e, &t->ev, &t->arena);
    t->e.out.received_at_ms = received_ms;
    return &t->e;
}

static inline void st_event_free(st_event_t *t)
{
    ue__arena_free(&t->arena);
}

/* Writes @p n as the id's last 8 bytes (big-endian) after a fixed prefix. */
static inline void st_event_set_id(st_event_t *t, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        t->id[i] = (uint8_t)(0xA0 + i);
    for (int i = 0; i < 8; i++)
        t->id[15 - i] = (uint8_t)(n >> (8 * i));
}

#endif
