/*
 * spool_internal.h - the spool's state, shared by its three files: spool.c (append, acks,
 * caps), spool_open.c (lock and scan at start) and spool_read.c (reading unsent records back).
 */
#ifndef UE_SPOOL_INTERNAL_H
#define UE_SPOOL_INTERNAL_H

#include "spool.h"
#include "spool_frame.h"

typedef struct segment {
    uint64_t first_seq;   /* also its file name */
    uint64_t next_seq;    /* one past the last record */
    uint64_t records;     /* valid records in the file */
    uint64_t done;        /* of those, acknowledged or failed for good */
    uint64_t bytes;       /* file size */
    uint64_t valid_bytes; /* end of the last valid frame: the reader stops there */
    int64_t last_write_ms;
    int loaded;           /* left by an earlier process */
    uint8_t *present;     /* loaded only: bit per seq that holds a valid record */
    uint8_t *acked;       /* loaded only: bit per seq acknowledged by an earlier process */
    uint64_t *frames;     /* loaded only: offsets of the frames the scan kept, in file order */
    size_t nframes, frames_cap;
    int ack_fd;           /* -1 until the first ack */
} segment_t;

struct ue__spool {
    ue__spool_opts_t opts;
    char *dir;            /* for messages: files are opened relative to dir_fd */
    int dir_fd;
    const uc__logger_t *log;
    int lock_fd;
    segment_t *segs;      /* sorted by first_seq; the last one is active when active_fd >= 0 */
    size_t nsegs, segs_cap;
    int active_fd;
    uint64_t next_seq;
    uint64_t unsent_seq;  /* every record below it was handed to the transport */
    uint64_t pending;
    uint64_t total_bytes;
    uint64_t corrupt;
    uint64_t replay_total;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *raw, *frame;         /* reusable encode buffers */
    size_t raw_cap, frame_cap;
    uint64_t *acks;               /* buffered acks */
    size_t nacks, acks_cap;
    struct {                      /* reader of unsent records */
        uint64_t seg;             /* first_seq of the segment open for reading; 0: none */
        int fd;
        uint64_t off;             /* next frame offset */
        size_t frame;             /* loaded segment: index of its next kept frame */
        uint8_t *raw;
        size_t raw_cap, raw_len, pos;
        uint64_t seq;             /* seq of the record at pos */
        uint32_t left;            /* records left in the decoded frame */
        uint8_t *buf;
        size_t buf_cap;
    } rd;
};


int ue__spool_bit_get(const uint8_t *bits, uint64_t i);
void ue__spool_bit_set(uint8_t *bits, uint64_t i);
/* "<first, 20 digits>.<ext>": a file name in the directory. */
void ue__spool_seg_name(uint64_t first, const char *ext, char *out, size_t n);
/*
 * Opens a file of the spool relative to its directory, never through a symbolic link
 * (O_NOFOLLOW): the directory is the user's own, and so must be what it holds. -1 with errno.
 */
int ue__spool_openat(const ue__spool_t *sp, const char *name, int flags);
/* Deletes file @p first.@p ext of the directory (a symbolic link itself, not its target). */
void ue__spool_unlink(const ue__spool_t *sp, uint64_t first, const char *ext);
/* The segment holding @p seq, or NULL. */
segment_t *ue__spool_find_segment(ue__spool_t *sp, uint64_t seq);
/* Grows an array to hold @p need elements of @p elem bytes; 0 or -1. */
int ue__spool_grow(void **buf, size_t *cap, size_t need, size_t elem);
segment_t *ue__spool_add_segment(ue__spool_t *sp, uint64_t first_seq);
void ue__spool_reader_close(ue__spool_t *sp);
/* Deletes segment @p i and its files; returns how many of its records were never sent. */
uint64_t ue__spool_remove_segment(ue__spool_t *sp, size_t i);

#endif
