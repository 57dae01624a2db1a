/*
 * merge.c - window aggregates across tasks. A task sees only its own users, so a window of an
 * event type (all users) is the union of every task's partial: count and sum add up, the
 * user sets (or HyperLogLog sketches) unite. Each task's window stage sends the partial of a
 * window it closed to the repartition partition its key hashes to, and its closed horizon to
 * every partition (task.c); the task owning that partition merges them here and emits the
 * final WindowAggregate once every task's horizon has passed the window's end.
 *
 * A task whose horizon has not moved for window.idle.timeout.ms (no events, or its owner
 * gone) no longer holds the others back, as an idle partition does in clock.c; its partials
 * that come after their window was emitted count as late events.
 *
 * The merged windows are a window stage's state (stage_window.c does the arithmetic and the
 * changelog values), kept in the task's changelog partition under "_merge"; the horizons
 * under "_mergeh/<task>". Everything happens inside the transactions, so a partial is merged
 * exactly once.
 */
#include "merge.h"
#include "le.h"
#include "ue_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct enr__merger {
    const enr__settings_t *s;
    enr_stage_t *def;     /* the window stage's callbacks */
    void *win;            /* the merged windows: a window stage's state */
    int32_t ntasks;
    int64_t *horizon;     /* [ntasks] each task's closed horizon, INT64_MIN: none yet */
    int64_t *advanced_ms; /* [ntasks] when it last moved (monotonic), or the merger's start */
    uint8_t *dirty;       /* [ntasks] moved since the last flush */
    int64_t stats[ENR_STAT__CNT];
};

enr__merger_t *enr__merger_new(const enr__settings_t *s, int32_t ntasks)
{
    enr__merger_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->s = s;
    m->ntasks = ntasks;
    m->horizon = malloc((size_t)ntasks * sizeof(*m->horizon));
    m->advanced_ms = malloc((size_t)ntasks * sizeof(*m->advanced_ms));
    m->dirty = calloc((size_t)ntasks, 1);
    m->def = enr__stage_window_new(s);
    char why[128];
    if (!m->horizon || !m->advanced_ms || !m->dirty || !m->def ||
        m->def->init(&m->win, m->def->opaque, why, sizeof(why))) {
        m->win = NULL;
        enr__merger_free(m);
        return NULL;
    }
    int64_t now = ue__mono_ms();
    for (int32_t i = 0; i < ntasks; i++) {
        m->horizon[i] = INT64_MIN;
        m->advanced_ms[i] = now;
    }
    return m;
}

void enr__merger_free(enr__merger_t *m)
{
    if (!m)
        return;
    if (m->win)
        m->def->destroy(m->win, m->def->opaque);
    enr_stage_destroy(m->def);
    free(m->horizon);
    free(m->advanced_ms);
    free(m->dirty);
    free(m);
}

/* Task @p task's horizon is @p h (it only moves forward). */
static void horizon_set(enr__merger_t *m, int32_t task, int64_t h, int64_t now)
{
    if (task < 0 || task >= m->ntasks || h <= m->horizon[task])
        return;
    m->horizon[task] = h;
    m->advanced_ms[task] = now;
    m->dirty[task] = 1;
}

int enr__merger_apply(enr__merger_t *m, const void *key, size_t key_len, const void *value,
                      size_t value_len)
{
    int64_t h;
    if (value && enr__window_horizon_decode(value, value_len, &h) == 0) {
        char task[16];
        if (!key || key_len == 0 || key_len >= sizeof(task))
            return -1;
        memcpy(task, key, key_len);
        task[key_len] = '\0';
        horizon_set(m, (int32_t)atoi(task), h, ue__mono_ms());
        return 0;
    }
    if (!key || !value)
        return -1;
    return enr__window_merge(m->win, key, key_len, value, value_len, m->stats);
}

int64_t enr__merger_watermark(const enr__merger_t *m)
{
    int64_t now = ue__mono_ms(), idle = m->s->window_idle_ms;
    int64_t low = INT64_MAX, high = INT64_MIN;
    for (int32_t i = 0; i < m->ntasks; i++) {
        if (m->horizon[i] > high)
            high = m->horizon[i];
        if ((idle == 0 || now - m->advanced_ms[i] < idle) && m->horizon[i] < low)
            low = m->horizon[i];
    }
    return low == INT64_MAX ? high : low; /* every task idle: the furthest of them */
}

void enr__merger_flush(enr__merger_t *m, const enr__sink_t *task_sink)
{
    /* Finals, not partials: the merged window is complete. */
    enr__sink_t sink = *task_sink;
    sink.partial = NULL;
    int64_t wm = enr__merger_watermark(m), lateness = m->s->window_lateness_ms;
    /* The tasks' horizons have the lateness taken off already: window_flush takes it off. */
    enr_ctx_t ctx = {.sink = &sink, .stage = "_merge", .settings = m->s, .stats = m->stats,
                     .watermark_ms = wm > INT64_MAX - lateness ? INT64_MAX
                                     : wm == INT64_MIN        ? INT64_MIN
                                                              : wm + lateness};
    m->def->flush(m->win, &ctx, m->def->opaque);
    for (int32_t i = 0; i < m->ntasks; i++) {
        if (!m->dirty[i])
            continue;
        char key[16];
        uint8_t value[8];
        int n = snprintf(key, sizeof(key), "%d", (int)i);
        enr__le_put64(value, (uint64_t)m->horizon[i]);
        sink.changelog(sink.opaque, "_mergeh", key, (size_t)n, value, sizeof(value));
        m->dirty[i] = 0;
    }
}

int enr__merger_restore(enr__merger_t *m, const char *stage, const void *key, size_t key_len,
                        const void *value, size_t value_len)
{
    if (!strcmp(stage, "_merge"))
        return m->def->restore(m->win, key, key_len, value, value_len, m->def->opaque);
    char task[16];
    if (!value || value_len != 8 || key_len == 0 || key_len >= sizeof(task))
        return value ? -1 : 0;
    memcpy(task, key, key_len);
    task[key_len] = '\0';
    horizon_set(m, (int32_t)atoi(task), (int64_t)enr__le_load64(value), ue__mono_ms());
    return 0;
}

const int64_t *enr__merger_stats(const enr__merger_t *m)
{
    return m->stats;
}
