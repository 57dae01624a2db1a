/*
 * clock.h - the event-time clock of a pipeline: the newest event time per input partition,
 * the watermark derived from them, and their changelog records (stage name "_clock").
 */
#ifndef ENR_CLOCK_H
#define ENR_CLOCK_H

#include "pipeline.h"

typedef struct enr__part_clock {
    char *topic;
    int32_t partition;
    int64_t newest_ms;  /* newest event time read from this partition */
    int64_t active_ms;  /* monotonic time of its last event, for idleness */
    int dirty;          /* changed since the last flush */
} enr__part_clock_t;

/* Records that an event of @p topic/@p partition has event time @p t. */
void enr__clock_advance(enr_pipeline_t *pipe, const char *topic, int32_t partition, int64_t t);

/*
 * Registers an assigned input partition. Until its first event (or window.idle.timeout.ms)
 * it holds the watermark back: a backlog read partition by partition must not close windows
 * that the unread partitions still add to.
 */
void enr__clock_assign(enr_pipeline_t *pipe, const char *topic, int32_t partition);

/* Writes the changed partition clocks to the changelog. */
void enr__clock_flush(enr_pipeline_t *pipe);

/* Applies a "_clock/<partition>/<topic>" changelog record. 0 or -1. */
int enr__clock_restore(enr_pipeline_t *pipe, const void *key, size_t key_len, const void *value,
                       size_t value_len);

void enr__clock_free(enr_pipeline_t *pipe);

#endif
