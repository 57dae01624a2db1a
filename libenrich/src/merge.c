/*
 * merge.c - results across tasks. A task sees only its own users, so a window of an event
 * type (all users), and the event rate of a type that the anomaly stage judges, are made of
 * every task's share: counts and sums add up, user sets (or HyperLogLog sketches) unite. When
 * a task's window or anomaly stage closes a window or bucket, it sends its partial to the
 * repartition partition the key hashes to, and its closed horizon to every partition
 * (task.c, stage_util.h); the task owning that partition merges them here and emits the final
 * WindowAggregate, or judges the merged rate (and emits its AnomalyAlert), once every task's
 * horizon has passed the window's end.
 *
 * A task whose horizon has not moved for window.idle.timeout.ms (no events, or its owner
 * gone) no longer holds the others back, as an idle partition does in clock.c; its partials
 * that come after their window was emitted count as late events.
 *
 * The merged windows and buckets are a window stage's and an anomaly stage's own state
 * (stage_window.c, stage_anomaly.c do the arithmetic, the changelog values and the output),
 * kept in the task's changelog partition under "_merge" and "_mergea"; the horizons under
 * "_mergeh" and "_mergeah". Everything happens inside the transactions, so a partial is merged
 * exactly once.
 */
#include "merge.h"
#include "le.h"
#include "stage_util.h"
#include "uc_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One kind of merged result: the stage that holds it and every task's horizon for it. */
typedef struct merged {
    const char *state_name;   /* its changelog stage names */
    const char *horizon_name;
    int64_t lateness;         /* what the stage's flush takes off the watermark */
    enr_stage_t *def;
    void *state;
    int64_t *horizon;         /* [ntasks] each task's closed horizon, INT64_MIN: none yet */
    int64_t *advanced_ms;     /* [ntasks] when it last moved (monotonic), or the start */
    uint8_t *dirty;           /* [ntasks] moved since the last flush */
} merged_t;

enum { WINDOWS, RATES };

struct enr__merger {
    const enr__settings_t *s;
    int32_t ntasks;
    merged_t m[2];
    int64_t stats[ENR_STAT__CNT];
};

static int merged_init(merged_t *m, enr_stage_t *def, int32_t ntasks, int64_t now)
{
    char why[128];
    m->def = def;
    m->horizon = malloc((size_t)ntasks * sizeof(*m->horizon));
    m->advanced_ms = malloc((size_t)ntasks * sizeof(*m->advanced_ms));
    m->dirty = calloc((size_t)ntasks, 1);
    if (!def || !m->horizon || !m->advanced_ms || !m->dirty ||
        def->init(&m->state, def->opaque, why, sizeof(why))) {
        m->state = NULL;
        return -1;
    }
    for (int32_t i = 0; i < ntasks; i++) {
        m->horizon[i] = INT64_MIN;
        m->advanced_ms[i] = now;
    }
    return 0;
}

static void merged_free(merged_t *m)
{
    if (m->state)
        m->def->destroy(m->state, m->def->opaque);
    enr_stage_destroy(m->def);
    free(m->horizon);
    free(m->advanced_ms);
    free(m->dirty);
}

enr__merger_t *enr__merger_new(const enr__settings_t *s, int32_t ntasks)
{
    enr__merger_t *mg = calloc(1, sizeof(*mg));
    if (!mg)
        return NULL;
    mg->s = s;
    mg->ntasks = ntasks;
    mg->m[WINDOWS] = (merged_t){.state_name = "_merge", .horizon_name = "_mergeh",
                                .lateness = s->window_lateness_ms};
    mg->m[RATES] = (merged_t){.state_name = "_mergea", .horizon_name = "_mergeah"};
    int64_t now = uc__mono_ms();
    if (merged_init(&mg->m[WINDOWS], enr__stage_window_new(s), ntasks, now) ||
        merged_init(&mg->m[RATES], enr__stage_anomaly_new(s), ntasks, now)) {
        enr__merger_free(mg);
        return NULL;
    }
    return mg;
}

void enr__merger_free(enr__merger_t *mg)
{
    if (!mg)
        return;
    merged_free(&mg->m[WINDOWS]);
    merged_free(&mg->m[RATES]);
    free(mg);
}

/* Task @p task's horizon of @p m is @p h (it only moves forward). */
static void horizon_set(merged_t *m, int32_t ntasks, int32_t task, int64_t h, int64_t now)
{
    if (task < 0 || task >= ntasks || h <= m->horizon[task])
        return;
    m->horizon[task] = h;
    m->advanced_ms[task] = now;
    m->dirty[task] = 1;
}

static int32_t task_of(const void *key, size_t key_len)
{
    char task[16];
    if (!key || key_len == 0 || key_len >= sizeof(task))
        return -1;
    memcpy(task, key, key_len);
    task[key_len] = '\0';
    return (int32_t)atoi(task);
}

int enr__merger_apply(enr__merger_t *mg, const void *key, size_t key_len, const void *value,
                      size_t value_len)
{
    int64_t h;
    uint8_t kind;
    if (enr__horizon_decode(value, value_len, &kind, &h) == 0) {
        merged_t *m = &mg->m[kind == ENR__HORIZON_WINDOW ? WINDOWS : RATES];
        horizon_set(m, mg->ntasks, task_of(key, key_len), h, uc__mono_ms());
        return 0;
    }
    if (!key || !value || !value_len)
        return -1;
    if (((const uint8_t *)value)[0] == ENR__PARTIAL_ANOMALY)
        return enr__anomaly_merge(mg->m[RATES].state, key, key_len, value, value_len,
                                  mg->stats);
    return enr__window_merge(mg->m[WINDOWS].state, key, key_len, value, value_len, mg->stats);
}

/* The event time up to which every task not idle has closed its windows (or buckets). */
static int64_t watermark(const merged_t *m, int32_t ntasks, int64_t idle)
{
    int64_t now = uc__mono_ms(), low = INT64_MAX, high = INT64_MIN;
    for (int32_t i = 0; i < ntasks; i++) {
        if (m->horizon[i] > high)
            high = m->horizon[i];
        if ((idle == 0 || now - m->advanced_ms[i] < idle) && m->horizon[i] < low)
            low = m->horizon[i];
    }
    return low == INT64_MAX ? high : low; /* every task idle: the furthest of them */
}

int64_t enr__merger_watermark(const enr__merger_t *mg)
{
    return watermark(&mg->m[WINDOWS], mg->ntasks, mg->s->window_idle_ms);
}

static void merged_flush(enr__merger_t *mg, merged_t *m, enr__sink_t *sink)
{
    int64_t wm = watermark(m, mg->ntasks, mg->s->window_idle_ms), late = m->lateness;
    /* The tasks' horizons have the lateness taken off already: the stage takes it off. */
    enr_ctx_t ctx = {.sink = sink, .stage = m->state_name, .settings = mg->s,
                     .stats = mg->stats,
                     .watermark_ms = wm == INT64_MIN         ? INT64_MIN
                                     : wm > INT64_MAX - late ? INT64_MAX
                                                             : wm + late};
    m->def->flush(m->state, &ctx, m->def->opaque);
    for (int32_t i = 0; i < mg->ntasks; i++) {
        if (!m->dirty[i])
            continue;
        char key[16];
        uint8_t value[8];
        int n = snprintf(key, sizeof(key), "%d", (int)i);
        enr__le_put64(value, (uint64_t)m->horizon[i]);
        sink->changelog(sink->opaque, m->horizon_name, key, (size_t)n, value, sizeof(value));
        m->dirty[i] = 0;
    }
}

void enr__merger_flush(enr__merger_t *mg, const enr__sink_t *task_sink)
{
    enr__sink_t sink = *task_sink;
    sink.partial = NULL; /* finals, not partials: the merged results are complete */
    merged_flush(mg, &mg->m[WINDOWS], &sink);
    merged_flush(mg, &mg->m[RATES], &sink);
}

int enr__merger_restore(enr__merger_t *mg, const char *stage, const void *key, size_t key_len,
                        const void *value, size_t value_len)
{
    for (int i = 0; i < 2; i++) {
        merged_t *m = &mg->m[i];
        if (!strcmp(stage, m->state_name))
            return m->def->restore(m->state, key, key_len, value, value_len, m->def->opaque);
        if (strcmp(stage, m->horizon_name))
            continue;
        if (!value)
            return 0;
        if (value_len != 8)
            return -1;
        horizon_set(m, mg->ntasks, task_of(key, key_len), (int64_t)enr__le_load64(value),
                    uc__mono_ms());
        return 0;
    }
    return -1;
}

const int64_t *enr__merger_stats(const enr__merger_t *mg)
{
    return mg->stats;
}
