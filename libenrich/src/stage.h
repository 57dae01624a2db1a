/*
 * stage.h - stages inside the library: the definition behind the public enr_stage_t, the
 * context handed to callbacks, and the constructors of the built-in stages.
 *
 * A built-in stage is written against the same callbacks a user's stage uses; it only gets
 * the settings as its opaque pointer and may read the event's internals (event.h).
 */
#ifndef ENR_STAGE_H
#define ENR_STAGE_H

#include "conf.h"
#include "enrich.h"

#include <stdint.h>

struct enr_stage_s {
    char name[33];
    enr_process_fn *process;
    enr_init_fn *init;
    enr_flush_fn *flush;
    enr_restore_fn *restore;
    enr_destroy_fn *destroy;
    void *opaque;
    struct enr_stage_s *next; /* in a conf's list of custom stages */
};

/* Where a context's emits and changelog writes go (the transaction, or a test callback). */
typedef struct enr__sink {
    void (*emit)(void *opaque, const char *topic, const void *key, size_t key_len,
                 const void *value, size_t value_len);
    void (*changelog)(void *opaque, const char *stage, const void *key, size_t key_len,
                      const void *value, size_t value_len);
    /* Set in a processor's tasks: the window stage sends partial aggregates here (to the
     * task that merges key @p key), and with @p broadcast its closed horizon (to every
     * task), instead of emitting final aggregates. NULL: a single pipeline, finals. */
    void (*partial)(void *opaque, const void *key, size_t key_len, const void *value,
                    size_t value_len, int broadcast);
    void *opaque;
} enr__sink_t;

struct enr_ctx_s {
    const enr__sink_t *sink;
    const char *stage;        /* name of the stage being called */
    const enr__settings_t *settings;
    int64_t watermark_ms;     /* event time up to which windows may close (flush only) */
    int64_t *stats;           /* the pipeline's counters (ENR_STAT_*), for built-ins */
    char reason[256];
};

/*
 * The built-in stages. Each returns a definition whose opaque pointer is @p s; the settings
 * must outlive the stage.
 */
enr_stage_t *enr__stage_clock_new(const enr__settings_t *s);
enr_stage_t *enr__stage_dedup_new(const enr__settings_t *s);
enr_stage_t *enr__stage_useragent_new(const enr__settings_t *s);
enr_stage_t *enr__stage_geoip_new(const enr__settings_t *s);
enr_stage_t *enr__stage_profile_new(const enr__settings_t *s);
enr_stage_t *enr__stage_session_new(const enr__settings_t *s);
enr_stage_t *enr__stage_window_new(const enr__settings_t *s);
enr_stage_t *enr__stage_anomaly_new(const enr__settings_t *s);

/* Merging in a task (merge.c), on a window stage's state: adds the partial aggregate of
 * window key @p key (counted as late in @p stats when that window is closed here already);
 * 0, or -1 for a record that is not one. */
int enr__window_merge(void *state, const void *key, size_t key_len, const void *value,
                      size_t value_len, int64_t *stats);
/* The same for an anomaly stage's state (anomaly.key=type): adds the event count of a bucket
 * of type @p key to the merged bucket. */
int enr__anomaly_merge(void *state, const void *key, size_t key_len, const void *value,
                       size_t value_len, int64_t *stats);

/* The profile stage's table, fed by the processor's profile consumer or by tests. */
/*
 * Upserts the profile of @p user_id (NULL: the profile's own user_id field) from its encoded
 * value, bytes from the profile topic decoded with uc__pb_unpack(); @p len 0 deletes it.
 * 0, or -1 with why in @p reason (may be NULL).
 */
int enr__profile_put(void *profile_state, const char *user_id, const void *value, size_t len,
                     char *reason, size_t reason_size);
int64_t enr__profile_count(void *profile_state);

#endif
