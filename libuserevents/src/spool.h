/*
 * spool.h - the durable disk spool: events not yet acknowledged, in append-only segment files.
 *
 * The background thread appends every batch as one frame before sending it, so an event that
 * was accepted survives a crash of the process, a dead network or a broker outage. An event
 * leaves the spool only when the transport reports it done (acknowledged, or failed for good):
 * its sequence number is appended to the segment's ".ack" file, and a segment whose records are
 * all done is deleted. On open, the spool replays what an earlier process left: the sender
 * reads unsent records back in sequence order, with their original event ids.
 *
 * Files in the directory: LOCK (flock: one process at a time), <first-seq>.seg, <first-seq>.ack.
 * Caps: total bytes (oldest segment dropped first) and age of a segment's newest write.
 *
 * Used by the background thread only; not thread-safe.
 */
#ifndef UE_SPOOL_H
#define UE_SPOOL_H

#include "record.h"
#include "uc_log.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ue__spool ue__spool_t;

typedef struct ue__spool_opts {
    const char *dir;
    uint64_t max_bytes;
    int64_t max_age_ms;
    uint64_t segment_bytes;
    int fsync;             /* fdatasync after each frame and ack write */
    int compression_level;
} ue__spool_opts_t;

/* What a call dropped because of the caps (for the statistics). */
typedef struct ue__spool_drops {
    uint64_t full;
    uint64_t expired;
} ue__spool_drops_t;

/*
 * Opens (creating it if needed) and locks the spool directory and scans what an earlier process
 * left. Returns 0, or a negative ue_err_t (UE_ERR_SPOOL, UE_ERR_SPOOL_LOCKED) with @p errstr.
 * A directory owned by another user, or writable by group or others, is UE_ERR_SPOOL; a
 * symbolic link in it is never followed.
 */
int ue__spool_open(ue__spool_t **out, const ue__spool_opts_t *opts, const uc__logger_t *log,
                   char *errstr, size_t errstr_size);

/* The anonymous id kept in the spool directory (spool_identity.c) into @p id: the one an
 * earlier process left, else a new random UUID written there. 0, or -1 (a new id that could
 * not be kept; @p id untouched) with a warning. */
int ue__spool_anonymous_id(ue__spool_t *sp, char id[37]);

/* Closes the spool; unacknowledged records stay on disk for the next process. NULL no-op. */
void ue__spool_close(ue__spool_t *sp);

/* Appends @p n records as one frame, assigning their sequence numbers. 0 or -1. */
int ue__spool_append(ue__spool_t *sp, ue__record_t *list, size_t n);

/*
 * The sender's cursor. Records are handed to the transport in sequence order, either straight
 * from memory after append (mark_sent) or read back from disk (next_unsent) when the sender fell
 * behind or after a restart.
 */
void ue__spool_mark_sent(ue__spool_t *sp, uint64_t seq);
int ue__spool_caught_up(const ue__spool_t *sp);

/* Reads the next unsent, unacknowledged record: 1 (*out set), 0 (caught up) or -1 (error). */
int ue__spool_next_unsent(ue__spool_t *sp, ue__record_t **out);

/* The record with @p seq is done (delivered or failed for good). Buffered until sync. */
void ue__spool_ack(ue__spool_t *sp, uint64_t seq);

/*
 * Writes buffered acks, deletes finished segments, rotates the active one, and enforces the
 * caps (what they drop is added to @p drops). Call once per loop of the background thread.
 */
int ue__spool_sync(ue__spool_t *sp, ue__spool_drops_t *drops);

uint64_t ue__spool_pending(const ue__spool_t *sp); /* records not yet done */
uint64_t ue__spool_bytes(const ue__spool_t *sp);   /* bytes of segment files */
uint64_t ue__spool_corrupt(const ue__spool_t *sp); /* corrupt regions skipped at open */
uint64_t ue__spool_replay_total(const ue__spool_t *sp); /* records to replay found at open */

#endif
