/*
 * fuzz_spool_dir.c - libFuzzer target for the spool's whole start-up path: a directory left
 * by an earlier process, holding a crafted segment file (or two) and a crafted .ack file, is
 * opened with ue__spool_open, every unsent record is read back with ue__spool_next_unsent,
 * then acknowledged; new records are appended and read back from our own segment (the sender
 * fell behind), and the spool is closed and opened once more.
 *
 * Input layout:
 *   byte 0  flags: FIX_CRC, ACK_COMPACT, SPLIT, NAME_SHIFT, BUILD, CAPS (below)
 *   byte 1  number of .ack entries, taken from the end of the input
 *   byte 2  bits 0-2: torn bytes after the last full .ack entry; bits 3-7: name shift
 *   byte 3  where SPLIT cuts the image in two segment files (x/256 of it)
 *   rest    segment image (as is, or a description built into frames with BUILD), then .ack
 *
 * The segment is named after the first sequence number its first plausible frame claims, as
 * the spool names its own files (NAME_SHIFT moves the name off it). ACK_COMPACT reads each ack
 * entry as a 16-bit offset from the segment's name, so acks hit real records. CAPS sets
 * spool.max.bytes to 1 and syncs before the replay, so all segments but the last are dropped.
 *
 * Beyond memory safety, with FUZZ_ORACLES unset or 1 it checks the replay guarantees that
 * spool.h and spool_read.c state: every record found valid at open and not acknowledged is
 * handed back exactly once (or counted as dropped by a cap), in sequence order, without a read
 * error (the directory does not change meanwhile), with a type ue_track would accept (a spool
 * file must not choose the Kafka topic); new records get sequence numbers above
 * every replayed one and read back as they were written; once all are
 * acknowledged nothing is pending and a reopen finds nothing to replay.
 * FUZZ_ORACLES=0 leaves memory safety only. FUZZ_DEBUG=1 prints the files written, the
 * segments found at open and every record replayed (to triage a crash input).
 */
#include "fuzz_util.h"
#include "spool_internal.h"
#include "uc_validate.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FIX_CRC = 1, ACK_COMPACT = 2, SPLIT = 4, NAME_SHIFT = 8, BUILD = 16, CAPS = 32 };

static char base[4096], dir[4200];
static int oracles = 1, debug;
static ZSTD_CCtx *cctx;

static void drop_log(int level, const char *message, void *opaque)
{
    (void)level, (void)message, (void)opaque; /* formatted (so checked), then dropped */
}

static const uc__logger_t logger = {.level = UC_LOG_DEBUG, .prefix = "fuzz", .fn = drop_log};

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[8400];
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void)
{
    clear_dir();
    rmdir(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("FUZZ_TMPDIR");
    if (!tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(base, sizeof(base), "%s/ue-fuzz-spool-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dir, sizeof(dir), "%s/spool", base);
    atexit(cleanup);
    const char *o = getenv("FUZZ_ORACLES");
    oracles = o ? atoi(o) : 1;
    debug = getenv("FUZZ_DEBUG") != NULL;
    cctx = ZSTD_createCCtx();
    return 0;
}

static void write_file(uint64_t first, const char *ext, const uint8_t *buf, size_t len)
{
    char path[8400];
    snprintf(path, sizeof(path), "%s/%020llu.%s", dir, (unsigned long long)first, ext);
    if (debug)
        fprintf(stderr, "write %s: %zu bytes\n", path, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot create %s", path);
    FUZZ_CHECK(len == 0 || write(fd, buf, len) == (ssize_t)len, "short write to %s", path);
    close(fd);
}

/* The first sequence number the first plausible frame of @p img claims, or 0. */
static uint64_t first_claimed(const uint8_t *img, size_t len)
{
    for (size_t off = 0; off + UE__FRAME_HDR <= len; off++) {
        ue__frame_hdr_t h;
        if (ue__frame_parse_hdr(img + off, len - off, &h) == 0)
            return h.first_seq;
    }
    return 0;
}

/* Writes the .ack file of segment @p first from the tail of the input. */
static void write_acks(uint64_t first, int compact, const uint8_t *in, size_t len)
{
    if (!compact) {
        write_file(first, "ack", in, len);
        return;
    }
    size_t n = len / 2;
    uint64_t *seqs = malloc((n ? n : 1) * sizeof(*seqs));
    FUZZ_CHECK(seqs != NULL, "out of memory");
    for (size_t i = 0; i < n; i++)
        seqs[i] = first + (uint64_t)(in[2 * i] | in[2 * i + 1] << 8);
    write_file(first, "ack", (const uint8_t *)seqs, n * sizeof(*seqs));
    free(seqs);
}

/* What the spool found at open: a copy of each segment's bitmaps. */
typedef struct snap_seg {
    uint64_t first, next;
    uint8_t *present, *acked;
} snap_seg_t;

typedef struct snap {
    snap_seg_t *segs;
    size_t n;
    uint64_t to_replay; /* present and not acknowledged */
    uint64_t max_next;
} snap_t;

static uint8_t *copy_bits(const uint8_t *bits, size_t n)
{
    uint8_t *c = calloc(1, n ? n : 1);
    FUZZ_CHECK(c != NULL, "out of memory");
    if (bits)
        memcpy(c, bits, n);
    return c;
}

static snap_t take_snapshot(const ue__spool_t *sp)
{
    snap_t s = {.segs = calloc(sp->nsegs + 1, sizeof(snap_seg_t)), .n = sp->nsegs};
    FUZZ_CHECK(s.segs != NULL, "out of memory");
    for (size_t i = 0; i < sp->nsegs; i++) {
        const segment_t *g = &sp->segs[i];
        size_t bytes = (size_t)((g->next_seq - g->first_seq + 7) / 8);
        snap_seg_t *c = &s.segs[i];
        FUZZ_CHECK(g->loaded && g->first_seq <= g->next_seq, "segment %zu after open", i);
        c->first = g->first_seq;
        c->next = g->next_seq;
        c->present = copy_bits(g->present, bytes);
        c->acked = copy_bits(g->acked, bytes);
        for (size_t b = 0; b < bytes; b++)
            s.to_replay += (uint64_t)__builtin_popcount(c->present[b] & ~c->acked[b]);
        if (c->next > s.max_next)
            s.max_next = c->next;
        if (debug)
            fprintf(stderr,
                    "segment %llu: next %llu, %llu record(s), %llu done, %llu valid bytes\n",
                    (unsigned long long)g->first_seq, (unsigned long long)g->next_seq,
                    (unsigned long long)g->records, (unsigned long long)g->done,
                    (unsigned long long)g->valid_bytes);
    }
    return s;
}

static void free_snapshot(snap_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->segs[i].present);
        free(s->segs[i].acked);
    }
    free(s->segs);
}

/* 1 when the snapshot says @p seq is a valid record that was not acknowledged. */
static int replayable(const snap_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n; i++) {
        const snap_seg_t *c = &s->segs[i];
        if (seq >= c->first && seq < c->next) {
            uint64_t bit = seq - c->first;
            int p = (c->present[bit / 8] >> (bit % 8)) & 1,
                a = (c->acked[bit / 8] >> (bit % 8)) & 1;
            return p && !a;
        }
    }
    return 0;
}

static ue__spool_t *open_spool(int caps)
{
    ue__spool_opts_t opts = {.dir = dir,
                             .max_bytes = caps ? 1 : (uint64_t)1 << 40,
                             .max_age_ms = 0,
                             .segment_bytes = 1 << 20,
                             .fsync = 0,
                             .compression_level = 1};
    ue__spool_t *sp;
    char err[512];
    int rc = ue__spool_open(&sp, &opts, &logger, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "open: %s", err);
    return sp;
}

/* Reads every unsent record back, acknowledging each; returns how many. */
static uint64_t replay(ue__spool_t *sp, const snap_t *snap, uint64_t dropped)
{
    uint64_t got = 0, last = 0;
    for (int guard = 0; guard < 1 << 22; guard++) {
        ue__record_t *r;
        int rc = ue__spool_next_unsent(sp, &r);
        if (debug)
            fprintf(stderr, "next_unsent: %d seq %llu\n", rc,
                    rc == 1 ? (unsigned long long)r->seq : 0ULL);
        if (rc == 0)
            break;
        FUZZ_CHECK(rc == 1 || !oracles, "read error replaying an unchanged spool");
        if (rc < 0)
            continue;
        FUZZ_CHECK(r->type_len > 0 && ue__record_type(r)[r->type_len] == '\0' &&
                       ue__record_key(r)[r->key_len] == '\0',
                   "replayed record strings");
        ue__record_stamp_sent_at(r, -1);
        FUZZ_CHECK(!oracles || uc__event_type_valid(ue__record_type(r), r->type_len),
                   "replayed record of type \"%s\": not one ue_track accepts", ue__record_type(r));
        FUZZ_CHECK(!oracles || (r->seq > last && replayable(snap, r->seq) && r->from_replay),
                   "replayed seq %llu (after %llu) was not a valid unacknowledged record",
                   (unsigned long long)r->seq, (unsigned long long)last);
        last = r->seq;
        got++;
        ue__spool_ack(sp, r->seq);
        free(r);
    }
    FUZZ_CHECK(!oracles || got + dropped == snap->to_replay,
               "replayed %llu and dropped %llu of %llu records", (unsigned long long)got,
               (unsigned long long)dropped, (unsigned long long)snap->to_replay);
    return got;
}

/*
 * Appends two frames of new records after the replay, as the sender does when it falls
 * behind, and reads them back from our own segment: their seqs must be above everything
 * replayed, and they must read back as written.
 */
static void append_and_read_back(ue__spool_t *sp, const snap_t *snap)
{
    ue__record_t *rs[3];
    for (int i = 0; i < 3; i++) {
        rs[i] = ue__record_new("fuzz", 4, "k", 1, 2);
        FUZZ_CHECK(rs[i] != NULL, "out of memory");
        memset(rs[i]->event_id, 0xa0 + i, sizeof(rs[i]->event_id));
        uint8_t *payload = ue__record_payload(rs[i]);
        payload[0] = 0x08; /* an int field, then its value */
        payload[1] = (uint8_t)i;
    }
    rs[1]->next = rs[2];
    FUZZ_CHECK(ue__spool_append(sp, rs[0], 1) == 0 && ue__spool_append(sp, rs[1], 2) == 0,
               "append after replay failed");
    FUZZ_CHECK(!oracles || rs[0]->seq >= snap->max_next, "new record got seq %llu, spool had %llu",
               (unsigned long long)rs[0]->seq, (unsigned long long)snap->max_next);
    for (int i = 0; i < 3; i++) {
        ue__record_t *r;
        int rc = ue__spool_next_unsent(sp, &r);
        FUZZ_CHECK(rc == 1 || !oracles, "appended record %d not read back: %d", i, rc);
        if (rc != 1)
            break;
        FUZZ_CHECK(!oracles || (r->seq == rs[i]->seq && !r->from_replay &&
                                memcmp(r->event_id, rs[i]->event_id, 16) == 0 &&
                                r->payload_len == 2 && ue__record_payload(r)[1] == i),
                   "appended record %d read back as seq %llu", i, (unsigned long long)r->seq);
        ue__spool_ack(sp, r->seq);
        free(r);
    }
    ue__record_t *r;
    FUZZ_CHECK(ue__spool_next_unsent(sp, &r) == 0 || !oracles, "a record past the appended ones");
    free(r);
    for (int i = 0; i < 3; i++) {
        ue__spool_mark_sent(sp, rs[i]->seq);
        free(rs[i]);
    }
}

static void run(int caps)
{
    ue__spool_t *sp = open_spool(caps);
    snap_t snap = take_snapshot(sp);
    FUZZ_CHECK(!oracles || ue__spool_replay_total(sp) == snap.to_replay,
               "replay_total %llu, bitmaps say %llu",
               (unsigned long long)ue__spool_replay_total(sp), (unsigned long long)snap.to_replay);
    ue__spool_drops_t drops = {0};
    if (caps)
        ue__spool_sync(sp, &drops);
    replay(sp, &snap, drops.full + drops.expired);
    append_and_read_back(sp, &snap);
    ue__spool_sync(sp, &drops);
    FUZZ_CHECK(!oracles || (ue__spool_pending(sp) == 0 && sp->nsegs == 0),
               "all acknowledged, yet %llu pending in %zu segment(s)",
               (unsigned long long)ue__spool_pending(sp), sp->nsegs);
    ue__spool_close(sp);
    free_snapshot(&snap);

    sp = open_spool(0); /* the acks are durable: nothing is replayed twice */
    FUZZ_CHECK(!oracles || ue__spool_replay_total(sp) == 0, "%llu replayed again after ack",
               (unsigned long long)ue__spool_replay_total(sp));
    ue__spool_close(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t flags = data[0];
    size_t rest = size - 4;
    size_t ack_len =
        (flags & ACK_COMPACT) ? (size_t)data[1] * 2 : (size_t)data[1] * 8 + (data[2] & 7);
    if (ack_len > rest)
        ack_len = rest;
    const uint8_t *body = data + 4, *ack = data + size - ack_len;
    size_t body_len = rest - ack_len;

    fuzz_buf_t img = {0};
    FUZZ_CHECK(fuzz_buf_reserve(&img, 1) == 0, "out of memory");
    if (flags & BUILD) {
        fuzz_image_info_t info;
        FUZZ_CHECK(fuzz_build_image(cctx, body, body_len, 1, &img, &info) == 0, "out of memory");
    } else {
        FUZZ_CHECK(fuzz_buf_reserve(&img, body_len) == 0, "out of memory");
        if (body_len)
            memcpy(img.p, body, body_len);
        img.len = body_len;
    }
    if (flags & FIX_CRC)
        fuzz_fix_crcs(img.p, img.len);

    uint64_t name = first_claimed(img.p, img.len);
    if (!name)
        name = 1;
    if (flags & NAME_SHIFT) {
        uint64_t shift = data[2] >> 3;
        name = name + shift > 16 ? name + shift - 16 : 1;
    }
    size_t cut = (flags & SPLIT) ? img.len * data[3] / 256 : img.len;

    FUZZ_CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    write_file(name, "seg", img.p, cut);
    if (flags & SPLIT) {
        uint64_t name2 = first_claimed(img.p + cut, img.len - cut);
        write_file(name2 && name2 != name ? name2 : name + 1, "seg", img.p + cut, img.len - cut);
    }
    write_acks(name, flags & ACK_COMPACT, ack, ack_len);
    fuzz_buf_free(&img);

    run(flags & CAPS);
    clear_dir();
    return 0;
}
