/*
 * spool_read.c - the sender's reader: records that were spooled but never handed to the
 * transport (the sender fell behind, or an earlier process left them), read back from disk in
 * sequence order. The cursor only moves forward, so whole frames before it are skipped by
 * their header, without decompressing.
 */
#include "spool_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int reader_open(ue__spool_t *sp, const segment_t *s)
{
    char name[32];
    ue__spool_reader_close(sp);
    ue__spool_seg_name(s->first_seq, "seg", name, sizeof(name));
    sp->rd.fd = ue__spool_openat(sp, name, O_RDONLY);
    if (sp->rd.fd < 0)
        return -1;
    sp->rd.seg = s->first_seq;
    sp->rd.off = 0;
    sp->rd.frame = 0;
    return 0;
}

/*
 * Offset of the next frame magic after @p from within the segment's valid bytes, else
 * valid_bytes. A damaged frame of a loaded segment is skipped this way, as the scan at open
 * skipped it (ue__frames_scan), so the valid frames after it are still read back.
 */
static uint64_t next_magic(ue__spool_t *sp, const segment_t *s, uint64_t from)
{
    uint8_t buf[4096];
    while (from + 4 <= s->valid_bytes) {
        uint64_t left = s->valid_bytes - from;
        size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        if (pread_all(sp->rd.fd, buf, n, from))
            break;
        for (size_t i = 0; i + 4 <= n; i++)
            if (memcmp(buf + i, "UES1", 4) == 0) /* the frame magic, spool_frame.h */
                return from + i;
        from += n - 3;
    }
    return s->valid_bytes;
}

/*
 * Loads the next frame of segment @p s that holds records at or after the cursor, skipping
 * damaged frames. Returns 1 when loaded, 0 at the end of the segment's valid bytes, -1 on a
 * read error or out of memory.
 */
/*
 * The offset of the next frame to look at in @p s; 0 at its end. In a loaded segment, only the
 * frames the scan at open kept: a damaged header could claim a length that swallows the valid
 * frame after it, and the skip by header below does not check the CRC. In ours, the next one.
 */
static int next_frame(ue__spool_t *sp, const segment_t *s, uint64_t *off)
{
    if (s->loaded) {
        if (sp->rd.frame >= s->nframes)
            return 0;
        *off = s->frames[sp->rd.frame++];
        return 1;
    }
    *off = sp->rd.off;
    return sp->rd.off + UE__FRAME_HDR <= s->valid_bytes;
}

static int load_frame(ue__spool_t *sp, const segment_t *s)
{
    uint8_t hdr[UE__FRAME_HDR];
    ue__frame_hdr_t h;
    uint64_t frame_off;

    while (next_frame(sp, s, &frame_off)) {
        if (pread_all(sp->rd.fd, hdr, sizeof(hdr), frame_off))
            return -1;
        if (ue__frame_parse_hdr(hdr, sizeof(hdr), &h) ||
            h.comp_len > s->valid_bytes - frame_off - UE__FRAME_HDR) {
            sp->rd.off = next_magic(sp, s, frame_off + 1);
            continue;
        }
        sp->rd.off = frame_off + UE__FRAME_HDR + h.comp_len;
        if (h.first_seq + h.count <= sp->unsent_seq || h.first_seq < s->first_seq)
            continue;
        if (ue__spool_grow((void **)&sp->rd.buf, &sp->rd.buf_cap, h.comp_len, 1))
            return -1;
        if (pread_all(sp->rd.fd, sp->rd.buf, h.comp_len, frame_off + UE__FRAME_HDR) ||
            ue__frame_check_crc(hdr, sp->rd.buf, &h) ||
            ue__frame_decompress(sp->dctx, sp->rd.buf, &h, &sp->rd.raw, &sp->rd.raw_cap)) {
            sp->rd.off = next_magic(sp, s, frame_off + 1);
            continue;
        }
        sp->rd.raw_len = h.raw_len;
        sp->rd.pos = 0;
        sp->rd.seq = h.first_seq;
        sp->rd.left = h.count;
        return 1;
    }
    return 0;
}

/* Takes the next record of the decoded frame at or after the cursor; 1, or 0 when none. */
static int take_record(ue__spool_t *sp, const segment_t *s, ue__record_t **out)
{
    while (sp->rd.left > 0) {
        ue__record_t *r;
        size_t used = ue__record_spool_read(sp->rd.raw + sp->rd.pos,
                                            sp->rd.raw_len - sp->rd.pos, &r);
        uint64_t seq = sp->rd.seq++;
        sp->rd.left--;
        sp->rd.pos += used;
        if (!used) { /* checked at decompress time, so only out of memory */
            sp->rd.left = 0;
            return 0;
        }
        uint64_t bit = seq - s->first_seq;
        if (seq < sp->unsent_seq || seq >= s->next_seq ||
            (s->loaded &&
             (!ue__spool_bit_get(s->present, bit) || ue__spool_bit_get(s->acked, bit)))) {
            free(r);
            continue;
        }
        r->seq = seq;
        r->from_replay = (uint8_t)s->loaded;
        sp->unsent_seq = seq + 1;
        *out = r;
        return 1;
    }
    return 0;
}

int ue__spool_next_unsent(ue__spool_t *sp, ue__record_t **out)
{
    *out = NULL;
    for (;;) {
        segment_t *s = ue__spool_find_segment(sp, sp->unsent_seq);
        if (!s) { /* in a gap, or past the end: move to the next segment that has records */
            size_t i = 0;
            while (i < sp->nsegs && sp->segs[i].next_seq <= sp->unsent_seq)
                i++;
            if (i == sp->nsegs) {
                sp->unsent_seq = sp->next_seq;
                return 0;
            }
            sp->unsent_seq = sp->segs[i].first_seq;
            continue;
        }
        if (sp->rd.seg == s->first_seq && take_record(sp, s, out))
            return 1;
        if (sp->rd.seg != s->first_seq && reader_open(sp, s))
            return -1;
        int rc = load_frame(sp, s);
        if (rc < 0) {
            ue__spool_reader_close(sp);
            sp->unsent_seq = s->next_seq; /* give up on this segment, keep the others */
            return -1;
        }
        if (rc == 0)
            sp->unsent_seq = s->next_seq; /* the rest of it was torn away */
    }
}
