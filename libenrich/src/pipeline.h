/*
 * pipeline.h - the stages of one processor (or of the pure enr_pipeline_* API): decoding and
 * validating an input record, running the stages, encoding the EnrichedEvent, and the hooks
 * the processor uses around transactions (flush before commit, restore at start).
 */
#ifndef ENR_PIPELINE_H
#define ENR_PIPELINE_H

#include "conf.h"
#include "stage.h"
#include "uc_arena.h"

typedef struct stage_slot {
    enr_stage_t def; /* a copy: the pipeline does not depend on the conf's lifetime */
    void *state;
    int borrowed;    /* state belongs to another pipeline (the shared profile table) */
} stage_slot_t;

struct enr_pipeline_s {
    enr__settings_t s; /* own copy of the settings the built-in stages point at */
    stage_slot_t stages[ENR__MAX_STAGES];
    size_t nstages;
    int has_clock; /* the built-in clock stage is in the chain: it sets event time */
    void *profiles;
    enr__sink_t sink;
    uc__arena_t arena;
    struct enr__part_clock *clocks; /* event time per input partition: the watermark */
    size_t nclocks, clocks_cap;
    int64_t stats[ENR_STAT__CNT];
    uint8_t *out;
    size_t out_cap;
};

/* Where an input record came from (headers of dead letters, fields of the output). */
typedef struct enr__source {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the Kafka record timestamp: received-at when the event has none */
} enr__source_t;

/* Builds the stages "stages" names; @p sink receives emits and changelog writes. With
 * @p profiles (a profile stage's state from another pipeline, which must outlive this one)
 * the profile stage uses that table instead of a table of its own. */
enr_pipeline_t *enr__pipeline_new(const enr_conf_t *conf, const enr__sink_t *sink,
                                  void *profiles, char *errstr, size_t errstr_size);

/*
 * Runs one record through the stages. On ENR_KEEP, *@p out (valid until the next call) holds
 * the encoded EnrichedEvent; on ENR_FAIL, @p reason says why.
 */
enr_verdict_t enr__pipeline_run(enr_pipeline_t *pipe, const void *value, size_t len,
                                const enr__source_t *src, const uint8_t **out, size_t *out_len,
                                char *reason, size_t reason_size);

/* Calls every stage's flush (state to the changelog, due records out). */
void enr__pipeline_flush(enr_pipeline_t *pipe, int64_t watermark_ms);

/*
 * The watermark the processor passes to flush: the smallest of the newest event times of the
 * input partitions (each partition's clock is kept in the changelog; an assigned partition not
 * read yet counts as the oldest), leaving out partitions idle for window.idle.timeout.ms. So an
 * event is late only when its own partition ran ahead of it, whatever order partitions are read in
 * and however often the processor restarts.
 */
int64_t enr__pipeline_event_clock(const enr_pipeline_t *pipe);

/*
 * Hands a changelog record (Kafka key "<stage>/<key>") to its stage's restore. Returns 0, or -1
 * for a key naming no configured stage (ignored by the caller: a stage removed from config).
 */
int enr__pipeline_restore(enr_pipeline_t *pipe, const void *key, size_t key_len,
                          const void *value, size_t value_len);

/* The profile stage's state, or NULL when "profile" is not configured. */
void *enr__pipeline_profiles(enr_pipeline_t *pipe);

int64_t *enr__pipeline_stats(enr_pipeline_t *pipe);

#endif
