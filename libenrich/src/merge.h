/*
 * merge.h - window aggregates merged across a processor's tasks (see merge.c).
 */
#ifndef ENR_MERGE_H
#define ENR_MERGE_H

#include "stage.h"

typedef struct enr__merger enr__merger_t;

/* A merger waiting for @p ntasks tasks; NULL when out of memory. */
enr__merger_t *enr__merger_new(const enr__settings_t *s, int32_t ntasks);
void enr__merger_free(enr__merger_t *m);

/* A record of the repartition topic: a partial aggregate or a task's horizon. 0, or -1 when
 * it is neither (the caller drops it). */
int enr__merger_apply(enr__merger_t *m, const void *key, size_t key_len, const void *value,
                      size_t value_len);

/* The event time up to which every task not idle has closed its windows. */
int64_t enr__merger_watermark(const enr__merger_t *m);

/* Before a commit: emits the final aggregates that every task has passed, writes the changed
 * merged windows and horizons to the changelog, through @p task_sink. */
void enr__merger_flush(enr__merger_t *m, const enr__sink_t *task_sink);

/* A changelog record of stage "_merge" (a merged window) or "_mergeh" (a horizon). 0 or -1. */
int enr__merger_restore(enr__merger_t *m, const char *stage, const void *key, size_t key_len,
                        const void *value, size_t value_len);

/* Counters of what was merged (aggregates emitted, late events). */
const int64_t *enr__merger_stats(const enr__merger_t *m);

#endif
