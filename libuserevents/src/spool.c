/*
 * spool.c - segments, sender cursor, acknowledgements and caps of the disk spool (spool.h).
 */
#include "spool_internal.h"
#include "uc_time.h"
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

int ue__spool_bit_get(const uint8_t *bits, uint64_t i)
{
    return bits ? (bits[i / 8] >> (i % 8)) & 1 : 0;
}

void ue__spool_bit_set(uint8_t *bits, uint64_t i)
{
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

void ue__spool_seg_name(uint64_t first, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%020" PRIu64 ".%s", first, ext);
}

int ue__spool_openat(const ue__spool_t *sp, const char *name, int flags)
{
    return openat(sp->dir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
}

void ue__spool_unlink(const ue__spool_t *sp, uint64_t first, const char *ext)
{
    char name[32];
    ue__spool_seg_name(first, ext, name, sizeof(name));
    unlinkat(sp->dir_fd, name, 0);
}

segment_t *ue__spool_find_segment(ue__spool_t *sp, uint64_t seq)
{
    size_t lo = 0, hi = sp->nsegs;
    while (lo < hi) { /* first segment with next_seq > seq */
        size_t mid = (lo + hi) / 2;
        if (sp->segs[mid].next_seq > seq)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < sp->nsegs && sp->segs[lo].first_seq <= seq)
        return &sp->segs[lo];
    return NULL;
}

int ue__spool_grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

segment_t *ue__spool_add_segment(ue__spool_t *sp, uint64_t first_seq)
{
    if (ue__spool_grow((void **)&sp->segs, &sp->segs_cap, sp->nsegs + 1, sizeof(segment_t)))
        return NULL;
    segment_t *s = &sp->segs[sp->nsegs++];
    *s = (segment_t){.first_seq = first_seq, .next_seq = first_seq, .ack_fd = -1};
    return s;
}

void ue__spool_reader_close(ue__spool_t *sp)
{
    if (sp->rd.fd >= 0)
        close(sp->rd.fd);
    sp->rd.fd = -1;
    sp->rd.seg = 0;
    sp->rd.left = 0;
}

/* Deletes segment @p i and its files; returns its records that were never sent. */
uint64_t ue__spool_remove_segment(ue__spool_t *sp, size_t i)
{
    segment_t *s = &sp->segs[i];
    uint64_t unsent = 0;

    for (uint64_t seq = s->first_seq > sp->unsent_seq ? s->first_seq : sp->unsent_seq;
         seq < s->next_seq; seq++) {
        uint64_t bit = seq - s->first_seq;
        if (!s->loaded || (ue__spool_bit_get(s->present, bit) && !ue__spool_bit_get(s->acked, bit)))
            unsent++;
    }
    if (sp->unsent_seq < s->next_seq)
        sp->unsent_seq = s->next_seq;
    if (sp->rd.seg == s->first_seq)
        ue__spool_reader_close(sp);
    if (i == sp->nsegs - 1 && sp->active_fd >= 0) {
        close(sp->active_fd);
        sp->active_fd = -1;
    }
    if (s->ack_fd >= 0)
        close(s->ack_fd);
    ue__spool_unlink(sp, s->first_seq, "seg");
    ue__spool_unlink(sp, s->first_seq, "ack");
    sp->pending -= s->records - s->done;
    sp->total_bytes -= s->bytes;
    free(s->present);
    free(s->acked);
    free(s->frames);
    memmove(s, s + 1, (sp->nsegs - i - 1) * sizeof(*s));
    sp->nsegs--;
    return unsent;
}

void ue__spool_close(ue__spool_t *sp)
{
    if (!sp)
        return;
    ue__spool_sync(sp, &(ue__spool_drops_t){0});
    ue__spool_reader_close(sp);
    if (sp->active_fd >= 0)
        close(sp->active_fd);
    for (size_t i = 0; i < sp->nsegs; i++) {
        if (sp->segs[i].ack_fd >= 0)
            close(sp->segs[i].ack_fd);
        free(sp->segs[i].present);
        free(sp->segs[i].acked);
        free(sp->segs[i].frames);
    }
    if (sp->lock_fd >= 0)
        close(sp->lock_fd); /* releases the flock */
    if (sp->dir_fd >= 0)
        close(sp->dir_fd);
    ZSTD_freeCCtx(sp->cctx);
    ZSTD_freeDCtx(sp->dctx);
    free(sp->segs);
    free(sp->raw);
    free(sp->frame);
    free(sp->acks);
    free(sp->rd.raw);
    free(sp->rd.buf);
    free(sp->dir);
    free(sp);
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int open_active(ue__spool_t *sp)
{
    char name[32];
    /* Sequence numbers restart at 1 in an empty spool: a stale .ack of the same name (a crash
     * between the two unlinks of ue__spool_remove_segment) must not mark new records done. */
    ue__spool_unlink(sp, sp->next_seq, "ack");
    ue__spool_seg_name(sp->next_seq, "seg", name, sizeof(name));
    int fd = ue__spool_openat(sp, name, O_WRONLY | O_CREAT | O_APPEND);
    if (fd < 0) {
        uc__log(sp->log, UC_LOG_ERR, "spool: cannot create %s/%s: %s", sp->dir, name,
                strerror(errno));
        return -1;
    }
    if (!ue__spool_add_segment(sp, sp->next_seq)) {
        close(fd);
        ue__spool_unlink(sp, sp->next_seq, "seg");
        return -1;
    }
    sp->active_fd = fd;
    return 0;
}

/* Serializes @p list into sp->raw; returns its length or 0 when out of memory. */
static size_t serialize(ue__spool_t *sp, ue__record_t *list)
{
    size_t total = 0, off = 0;
    for (ue__record_t *r = list; r; r = r->next)
        total += ue__record_spool_size(r);
    if (ue__spool_grow((void **)&sp->raw, &sp->raw_cap, total, 1))
        return 0;
    for (ue__record_t *r = list; r; r = r->next) {
        ue__record_spool_write(r, sp->raw + off);
        off += ue__record_spool_size(r);
    }
    return total;
}

/*
 * After a failed write or fdatasync, cuts the frame off the active segment: the next frame
 * must start where the reader (and the frame count) expects it, and a frame whose records are
 * then sent without the spool must not be replayed by the next process. A segment opened for
 * this frame goes whole; when the cut itself fails, the next frame starts a new segment (the
 * torn tail is past valid_bytes, so the reader stops before it and the scan at open skips it).
 */
static void cut_failed_frame(ue__spool_t *sp, segment_t *act)
{
    if (act->records == 0) {
        ue__spool_remove_segment(sp, sp->nsegs - 1);
        return;
    }
    if (ftruncate(sp->active_fd, (off_t)act->bytes) != 0) {
        close(sp->active_fd);
        sp->active_fd = -1;
    }
}

int ue__spool_append(ue__spool_t *sp, ue__record_t *list, size_t n)
{
    size_t raw_len = serialize(sp, list);
    if (!raw_len ||
        ue__spool_grow((void **)&sp->frame, &sp->frame_cap, ue__frame_bound(raw_len), 1))
        return -1;
    size_t len = ue__frame_encode(sp->cctx, sp->opts.compression_level, sp->raw, raw_len,
                                  (uint32_t)n, sp->next_seq, sp->frame, sp->frame_cap);
    if (!len)
        return -1;

    segment_t *act = sp->active_fd >= 0 ? &sp->segs[sp->nsegs - 1] : NULL;
    if (act && act->bytes + len > sp->opts.segment_bytes) {
        close(sp->active_fd); /* rotate: the segment stays until all of it is done */
        sp->active_fd = -1;
        act = NULL;
    }
    if (!act) {
        if (open_active(sp))
            return -1;
        act = &sp->segs[sp->nsegs - 1];
    }
    if (write_all(sp->active_fd, sp->frame, len) ||
        (sp->opts.fsync && fdatasync(sp->active_fd))) {
        int e = errno;
        cut_failed_frame(sp, act);
        uc__log(sp->log, UC_LOG_ERR, "spool: write to %s failed: %s", sp->dir, strerror(e));
        return -1;
    }
    uint64_t seq = sp->next_seq;
    for (ue__record_t *r = list; r; r = r->next)
        r->seq = seq++;
    act->records += n;
    act->next_seq = seq;
    act->bytes += len;
    act->valid_bytes = act->bytes;
    act->last_write_ms = uc__wall_ms();
    sp->next_seq = seq;
    sp->pending += n;
    sp->total_bytes += len;
    return 0;
}

void ue__spool_mark_sent(ue__spool_t *sp, uint64_t seq)
{
    if (seq + 1 > sp->unsent_seq)
        sp->unsent_seq = seq + 1;
}

int ue__spool_caught_up(const ue__spool_t *sp)
{
    return sp->unsent_seq >= sp->next_seq;
}

void ue__spool_ack(ue__spool_t *sp, uint64_t seq)
{
    if (seq == 0 ||
        ue__spool_grow((void **)&sp->acks, &sp->acks_cap, sp->nacks + 1, sizeof(uint64_t)))
        return; /* out of memory: the record is sent once more after a restart, never lost */
    sp->acks[sp->nacks++] = seq;
}

/* Writes the buffered acks, one write per run of acks in the same segment. */
static void write_acks(ue__spool_t *sp)
{
    size_t i = 0;
    while (i < sp->nacks) {
        segment_t *s = ue__spool_find_segment(sp, sp->acks[i]);
        size_t j = i + 1;
        while (j < sp->nacks && s && sp->acks[j] >= s->first_seq && sp->acks[j] < s->next_seq)
            j++;
        if (s) { /* NULL: its segment was dropped by a cap meanwhile */
            if (s->ack_fd < 0) {
                char name[32];
                ue__spool_seg_name(s->first_seq, "ack", name, sizeof(name));
                s->ack_fd = ue__spool_openat(sp, name, O_WRONLY | O_CREAT | O_APPEND);
            }
            if (s->ack_fd < 0 || write_all(s->ack_fd, (uint8_t *)&sp->acks[i],
                                           (j - i) * sizeof(uint64_t)))
                uc__log(sp->log, UC_LOG_WARNING, "spool: cannot record acks: %s",
                        strerror(errno));
            else if (sp->opts.fsync)
                fdatasync(s->ack_fd);
            s->done += j - i;
            sp->pending -= j - i;
        }
        i = j;
    }
    sp->nacks = 0;
}

int ue__spool_sync(ue__spool_t *sp, ue__spool_drops_t *drops)
{
    int64_t now = uc__wall_ms();

    write_acks(sp);
    for (size_t i = 0; i < sp->nsegs;) {
        segment_t *s = &sp->segs[i];
        int finished = s->done >= s->records && sp->unsent_seq >= s->next_seq;
        if (finished) {
            /* an active one too: the next append starts a new file */
            ue__spool_remove_segment(sp, i);
            continue;
        }
        if (sp->opts.max_age_ms > 0 && now - s->last_write_ms > sp->opts.max_age_ms) {
            drops->expired += ue__spool_remove_segment(sp, i);
            continue;
        }
        i++;
    }
    while (sp->total_bytes > sp->opts.max_bytes && sp->nsegs > 1)
        drops->full += ue__spool_remove_segment(sp, 0);
    return 0;
}

uint64_t ue__spool_pending(const ue__spool_t *sp)
{
    return sp->pending;
}

uint64_t ue__spool_bytes(const ue__spool_t *sp)
{
    return sp->total_bytes;
}

uint64_t ue__spool_corrupt(const ue__spool_t *sp)
{
    return sp->corrupt;
}

uint64_t ue__spool_replay_total(const ue__spool_t *sp)
{
    return sp->replay_total;
}
