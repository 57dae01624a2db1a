/*
 * spool_open.c - opening the spool: check the directory is the user's alone and hold it open
 * (every file is then opened relative to it, never through a symbolic link), lock it, then
 * scan the segments an earlier process left (validating every frame, skipping torn or corrupt
 * bytes with a warning) and load their acknowledgements, so only unfinished records are
 * replayed.
 */
#include "spool_internal.h"
#include "uc_props.h"
#include "userevents.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGMENT_SPAN (64u << 20) /* seqs in one segment: bounds the bitmaps */

typedef struct scan_state {
    segment_t *seg;
    uint64_t floor;   /* one past the last seq of the segments before: seqs are unique */
    uint64_t ignored;
} scan_state_t;

static void on_frame(const ue__frame_hdr_t *h, size_t offset, void *opaque)
{
    scan_state_t *st = opaque;
    segment_t *s = st->seg;
    if (h->first_seq < s->first_seq || h->first_seq < st->floor ||
        h->first_seq + h->count - s->first_seq > MAX_SEGMENT_SPAN) {
        st->ignored++;
        return;
    }
    if (ue__spool_grow((void **)&s->frames, &s->frames_cap, s->nframes + 1, sizeof(uint64_t))) {
        st->ignored++;
        return;
    }
    size_t need = (size_t)((h->first_seq + h->count - s->first_seq + 7) / 8);
    size_t have = (size_t)((s->next_seq - s->first_seq + 7) / 8);
    if (need > have) {
        uint8_t *bits = realloc(s->present, need);
        if (!bits) {
            st->ignored++;
            return;
        }
        memset(bits + have, 0, need - have);
        s->present = bits;
    }
    for (uint64_t seq = h->first_seq; seq < h->first_seq + h->count; seq++)
        ue__spool_bit_set(s->present, seq - s->first_seq);
    s->frames[s->nframes++] = offset;
    s->records += h->count;
    s->next_seq = h->first_seq + h->count;
}

/* Reads file @p name of the spool whole: a regular file only (O_NONBLOCK: a FIFO does not
 * block the open). NULL with errno when it cannot. */
static uint8_t *read_file(const ue__spool_t *sp, const char *name, size_t *len, struct stat *st)
{
    int fd = ue__spool_openat(sp, name, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    uint8_t *buf = NULL;
    int ok = fstat(fd, st) == 0;
    if (ok && !S_ISREG(st->st_mode)) {
        errno = EINVAL; /* a FIFO, a device, a directory: not a spool file */
        ok = 0;
    }
    if (ok && (buf = malloc(st->st_size ? (size_t)st->st_size : 1))) {
        size_t off = 0;
        while (off < (size_t)st->st_size) {
            ssize_t n = read(fd, buf + off, (size_t)st->st_size - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        *len = off;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

static void load_acks(ue__spool_t *sp, segment_t *s)
{
    char name[32];
    struct stat st;
    size_t len = 0;
    uint64_t span = s->next_seq - s->first_seq;

    ue__spool_seg_name(s->first_seq, "ack", name, sizeof(name));
    uint8_t *buf = read_file(sp, name, &len, &st);
    if (!buf) { /* none yet is usual; else every record of the segment is sent again */
        if (errno != ENOENT)
            uc__log(sp->log, UC_LOG_WARNING, "spool: cannot read %s/%s: %s", sp->dir, name,
                    strerror(errno));
        return;
    }
    s->acked = calloc(1, (size_t)(span + 7) / 8 + 1);
    for (size_t off = 0; s->acked && off + 8 <= len; off += 8) { /* a torn last entry is ignored */
        uint64_t seq;
        memcpy(&seq, buf + off, 8);
        if (seq < s->first_seq || seq >= s->next_seq)
            continue;
        uint64_t bit = seq - s->first_seq;
        if (ue__spool_bit_get(s->present, bit) && !ue__spool_bit_get(s->acked, bit)) {
            ue__spool_bit_set(s->acked, bit);
            s->done++;
        }
    }
    free(buf);
}

static void load_segment(ue__spool_t *sp, uint64_t first, uint64_t *floor)
{
    char name[32];
    struct stat st;
    size_t len = 0, valid_end = 0;

    ue__spool_seg_name(first, "seg", name, sizeof(name));
    uint8_t *buf = read_file(sp, name, &len, &st);
    segment_t *s = buf ? ue__spool_add_segment(sp, first) : NULL;
    if (!s) {
        uc__log(sp->log, UC_LOG_WARNING, "spool: cannot read %s/%s: %s", sp->dir, name,
                strerror(errno));
        free(buf);
        return;
    }
    s->loaded = 1;
    scan_state_t st_scan = {.seg = s, .floor = *floor};
    int corrupt = ue__frames_scan(buf, len, sp->dctx, &sp->raw, &sp->raw_cap, on_frame,
                                  &st_scan, &valid_end);
    free(buf);
    if (corrupt || st_scan.ignored) {
        sp->corrupt += (uint64_t)corrupt + st_scan.ignored;
        uc__log(sp->log, UC_LOG_WARNING,
                "spool: %s/%s: skipped %d corrupt or torn region(s); %" PRIu64
                " valid record(s) kept",
                sp->dir, name, corrupt + (int)st_scan.ignored, s->records);
    }
    if (s->next_seq > *floor)
        *floor = s->next_seq;
    s->bytes = (uint64_t)st.st_size;
    s->valid_bytes = valid_end;
    s->last_write_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    load_acks(sp, s);
    sp->total_bytes += s->bytes;
    sp->pending += s->records - s->done;
    sp->replay_total += s->records - s->done;
    if (s->done >= s->records) /* nothing left to send: empty, fully acked or all corrupt */
        ue__spool_remove_segment(sp, sp->nsegs - 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Loads every "<20 digits>.seg" of the directory in sequence order. */
static int scan_dir(ue__spool_t *sp)
{
    int fd = openat(sp->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL; /* owns fd from here */
    uint64_t *firsts = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;

    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((e = readdir(d))) {
        char digits[21];
        uint64_t first;
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".seg") ||
            sscanf(e->d_name, "%20[0-9]", digits) != 1 || strlen(digits) != 20)
            continue;
        first = strtoull(digits, NULL, 10);
        if (first == 0 || ue__spool_grow((void **)&firsts, &cap, n + 1, sizeof(*firsts)))
            continue;
        firsts[n++] = first;
    }
    closedir(d);
    if (n) /* firsts is NULL when there are none: qsort(NULL, 0) is undefined */
        qsort(firsts, n, sizeof(*firsts), cmp_u64);
    uint64_t floor = 0;
    for (size_t i = 0; i < n; i++)
        load_segment(sp, firsts[i], &floor);
    free(firsts);
    return 0;
}

/*
 * Opens the directory (creating it, 0700) and keeps it open as sp->dir_fd. Refused unless it
 * is the user's alone: owned by the process's effective user, writable by no group or other.
 * Whoever else may write there could plant a symbolic link or a file the spool would read.
 */
static int open_dir(ue__spool_t *sp, char *errstr, size_t errstr_size)
{
    struct stat st;
    if (mkdir(sp->dir, 0700) != 0 && errno != EEXIST) {
        uc__errstr(errstr, errstr_size, "spool: cannot create %s: %s", sp->dir, strerror(errno));
        return UE_ERR_SPOOL;
    }
    sp->dir_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dir_fd < 0 || fstat(sp->dir_fd, &st) != 0) {
        uc__errstr(errstr, errstr_size, "spool: cannot open %s: %s", sp->dir, strerror(errno));
        return UE_ERR_SPOOL;
    }
    if (st.st_uid != geteuid()) {
        uc__errstr(errstr, errstr_size,
                   "spool: %s is owned by uid %u, not by this process's user (uid %u)", sp->dir,
                   (unsigned)st.st_uid, (unsigned)geteuid());
        return UE_ERR_SPOOL;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        uc__errstr(errstr, errstr_size,
                   "spool: %s is writable by group or others (mode %04o): make it the user's "
                   "alone (chmod go-w)",
                   sp->dir, (unsigned)(st.st_mode & 07777));
        return UE_ERR_SPOOL;
    }
    return 0;
}

static int lock_dir(ue__spool_t *sp, char *errstr, size_t errstr_size)
{
    sp->lock_fd = ue__spool_openat(sp, "LOCK", O_RDWR | O_CREAT);
    if (sp->lock_fd < 0) {
        uc__errstr(errstr, errstr_size, "spool: cannot open %s/LOCK: %s", sp->dir,
                   strerror(errno));
        return UE_ERR_SPOOL;
    }
    if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        uc__errstr(errstr, errstr_size, "spool: %s is in use by another process", sp->dir);
        return UE_ERR_SPOOL_LOCKED;
    }
    return 0;
}

int ue__spool_open(ue__spool_t **out, const ue__spool_opts_t *opts, const uc__logger_t *log,
                   char *errstr, size_t errstr_size)
{
    ue__spool_t *sp = calloc(1, sizeof(*sp));
    int rc;

    *out = NULL;
    if (!sp || !(sp->dir = strdup(opts->dir))) {
        free(sp);
        uc__errstr(errstr, errstr_size, "out of memory");
        return UE_ERR_NOMEM;
    }
    sp->opts = *opts;
    sp->opts.dir = sp->dir;
    sp->log = log;
    sp->dir_fd = sp->lock_fd = sp->active_fd = sp->rd.fd = -1;
    rc = open_dir(sp, errstr, errstr_size);
    if (rc == 0)
        rc = lock_dir(sp, errstr, errstr_size);
    if (rc) {
        ue__spool_close(sp);
        return rc;
    }
    sp->cctx = ZSTD_createCCtx();
    sp->dctx = ZSTD_createDCtx();
    if (!sp->cctx || !sp->dctx || scan_dir(sp)) {
        uc__errstr(errstr, errstr_size, "spool: cannot read %s: %s", sp->dir, strerror(errno));
        ue__spool_close(sp);
        return UE_ERR_SPOOL;
    }
    sp->next_seq = sp->nsegs ? sp->segs[sp->nsegs - 1].next_seq : 1;
    sp->unsent_seq = sp->nsegs ? sp->segs[0].first_seq : sp->next_seq;
    if (sp->replay_total)
        uc__log(log, UC_LOG_NOTICE, "spool: %" PRIu64 " event(s) from %zu segment(s) to replay",
                sp->replay_total, sp->nsegs);
    *out = sp;
    return 0;
}
