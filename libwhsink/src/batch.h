/*
 * batch.h - a batch: the rows consumed since the last hand-off, grouped by table partition,
 * and for each Kafka partition the offsets the batch covers. A batch is the unit of one
 * warehouse commit: all its groups and all its offsets become visible together (or, for
 * backends without transactions, each group atomically, then the offsets).
 *
 * Grouping follows the backend: always by day; by user bucket and by Kafka partition only
 * when the backend asks (file: writes one file per day, bucket and partition).
 */
#ifndef WHS_BATCH_H
#define WHS_BATCH_H

#include "row.h"
#include "uc_arena.h"

#include <stddef.h>
#include <stdint.h>

enum { WHS__BY_BUCKET = 1, WHS__BY_PARTITION = 2 };

typedef struct whs__group {
    int32_t dt;        /* day of every row */
    int32_t bucket;    /* -1 unless grouped by bucket */
    int32_t partition; /* -1 unless grouped by Kafka partition */
    whs__row_t **rows;
    size_t n, cap;
    size_t bytes;
} whs__group_t;

typedef struct whs__bpart {
    int32_t partition;
    int64_t base;  /* the warehouse's offset when the batch started (for fencing) */
    int64_t next;  /* one past the last record of the batch: the offset to commit */
    int64_t first; /* first record's offset */
    int64_t rows;
    int64_t dead_letters;
} whs__bpart_t;

typedef struct whs__batch {
    uc__arena_t arena; /* rows and their strings */
    whs__group_t *groups;
    size_t ngroups, gcap;
    int32_t *index; /* open addressing over groups: group index + 1, 0 = empty */
    size_t index_cap;
    whs__bpart_t *parts;
    size_t nparts, pcap;
    size_t rows, bytes, records;
    size_t handed_bytes; /* bytes when handed to the writer (retries shrink `bytes`) */
    int64_t opened_ms;   /* monotonic ms of the first record; 0 when empty */
    uint64_t id;         /* unique per batch of a process: file names, logs */
    int group_by;        /* WHS__BY_* */
} whs__batch_t;

void whs__batch_init(whs__batch_t *b, int group_by);
void whs__batch_free(whs__batch_t *b);

/* Empties @p b for reuse and gives it the id @p id. */
void whs__batch_reset(whs__batch_t *b, uint64_t id);

/* The offsets entry of @p partition, added with @p base when new. NULL when out of memory. */
whs__bpart_t *whs__batch_part(whs__batch_t *b, int32_t partition, int64_t base);

/* Finds an existing entry, or NULL. */
whs__bpart_t *whs__batch_find_part(whs__batch_t *b, int32_t partition);

/* Notes that the record at @p offset of @p part is in the batch (as a row or not). */
void whs__batch_note(whs__batch_t *b, whs__bpart_t *part, int64_t now_ms, int64_t offset);

/* Adds @p row (allocated from b->arena) to its group. 0 or -1 when out of memory. */
int whs__batch_add(whs__batch_t *b, whs__row_t *row);

/* Removes every row and the offsets of @p partition. */
void whs__batch_drop_partition(whs__batch_t *b, int32_t partition);

/* Removes rows flagged with any of @p flags (the writer's, between attempts). */
void whs__batch_compact(whs__batch_t *b, uint32_t flags);

/* Orders groups by (day, bucket, partition). Rows stay in consumption order: by offset
 * within each Kafka partition. */
void whs__batch_sort(whs__batch_t *b);

static inline int whs__batch_empty(const whs__batch_t *b)
{
    return b->nparts == 0;
}

#endif
