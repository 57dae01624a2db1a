/*
 * fuzz_spool_frames.c - libFuzzer target for the spool's frame and record decoders:
 * ue__frames_scan (which drives ue__frame_parse_hdr, ue__frame_check_crc and
 * ue__frame_decompress) over an arbitrary segment image, then ue__record_spool_read on every
 * record of every frame the scan keeps.
 *
 * The first input byte selects how the rest becomes a segment image (low two bits):
 *   0  the bytes as they are (a torn or corrupted file)
 *   1  the bytes with every plausible frame's CRC recomputed, so mutations reach zstd
 *   2  a description built into real frames by fuzz_build_image() (fuzz_util.h), so mutations
 *      reach the record parser and the sequence checks
 *   3  serialized records parsed directly, then wrapped in one frame and scanned
 * Bit 2 starts the sequence numbers of modes 2 and 3 near UINT64_MAX.
 *
 * Beyond memory safety it checks what spool_frame.h promises: frames are visited in file
 * order, inside the image, in increasing sequence order, each holding exactly its count of
 * well-formed records; an image made only of valid frames is kept whole.
 */
#include "fuzz_util.h"

#include <string.h>

static ZSTD_CCtx *cctx;
static ZSTD_DCtx *dctx;

typedef struct visit {
    uint8_t **raw; /* the scan's decompression buffer: holds the frame being visited */
    size_t len;    /* of the image */
    size_t frames;
    size_t next_off;   /* end of the previous visited frame */
    uint64_t next_seq; /* one past the previous visited frame's records */
    uint64_t records;
} visit_t;

static void on_frame(const ue__frame_hdr_t *h, size_t offset, void *opaque)
{
    visit_t *v = opaque;
    FUZZ_CHECK(offset >= v->next_off, "frame at %zu overlaps the previous one", offset);
    FUZZ_CHECK(offset + UE__FRAME_HDR + (size_t)h->comp_len <= v->len, "frame past the image");
    FUZZ_CHECK(h->count >= 1 && h->first_seq >= 1 && h->first_seq >= v->next_seq,
               "seq %llu after %llu", (unsigned long long)h->first_seq,
               (unsigned long long)v->next_seq);

    const uint8_t *raw = *v->raw;
    size_t off = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        ue__record_t *r;
        size_t used = ue__record_spool_read(raw + off, h->raw_len - off, &r);
        FUZZ_CHECK(used > 0 && r, "record %u of a kept frame does not parse", i);
        fuzz_check_record(r, raw + off, used);
        free(r);
        off += used;
    }
    FUZZ_CHECK(off == h->raw_len, "kept frame has %zu trailing bytes", (size_t)h->raw_len - off);
    v->frames++;
    v->next_off = offset + UE__FRAME_HDR + h->comp_len;
    v->next_seq = h->first_seq + h->count;
    v->records += h->count;
}

/*
 * Scans a copy of @p image in a buffer of its exact size (so ASan flags any read past it) and
 * checks the scan's own promises; returns what it saw.
 */
static visit_t scan(const uint8_t *image, size_t len, int *corrupt)
{
    uint8_t *raw = NULL, *img = malloc(len ? len : 1);
    size_t raw_cap = 0, valid_end = 0;
    visit_t v = {.raw = &raw, .len = len};

    FUZZ_CHECK(img != NULL, "out of memory");
    if (len)
        memcpy(img, image, len);
    *corrupt = ue__frames_scan(img, len, dctx, &raw, &raw_cap, on_frame, &v, &valid_end);
    free(raw); /* a fresh buffer per input: ASan then sees each frame's exact bounds */
    free(img);
    FUZZ_CHECK(valid_end == v.next_off, "valid_end %zu, last frame ends at %zu", valid_end,
               v.next_off);
    FUZZ_CHECK(*corrupt >= 0 && (size_t)*corrupt <= len, "corrupt count %d", *corrupt);
    FUZZ_CHECK(v.frames > 0 || *corrupt > 0 || len == 0,
               "non-empty image neither kept nor skipped");
    return v;
}

/* Mode 3: the bytes are serialized records; parse them, then scan them as one frame. */
static void records_then_frame(const uint8_t *in, size_t len, uint64_t start)
{
    size_t off = 0;
    uint32_t count = 0;
    while (off < len) {
        ue__record_t *r;
        size_t used = ue__record_spool_read(in + off, len - off, &r);
        if (!used)
            break;
        FUZZ_CHECK(used <= len - off, "record consumed past its input");
        fuzz_check_record(r, in + off, used);
        free(r);
        off += used;
        count++;
    }
    if (!count || off != len)
        return;
    fuzz_buf_t img = {0};
    FUZZ_CHECK(fuzz_buf_reserve(&img, ue__frame_bound(len)) == 0, "out of memory");
    img.len = ue__frame_encode(cctx, 1, in, len, count, start, img.p, img.cap);
    if (img.len) {
        int corrupt;
        visit_t v = scan(img.p, img.len, &corrupt);
        int ok = start <= UINT64_MAX - count && len <= UE__FRAME_MAX_RAW;
        FUZZ_CHECK(!ok || (v.frames == 1 && corrupt == 0 && v.records == count),
                   "valid frame of %u records not kept (frames %zu, corrupt %d)", count, v.frames,
                   corrupt);
    }
    fuzz_buf_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cctx) {
        cctx = ZSTD_createCCtx();
        dctx = ZSTD_createDCtx();
    }
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    uint64_t start = (data[0] & 4) ? UINT64_MAX - 300 : 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    int corrupt;

    if (mode == 3) {
        records_then_frame(in, len, start);
        return 0;
    }
    if (mode == 2) {
        fuzz_buf_t img = {0};
        fuzz_image_info_t info;
        FUZZ_CHECK(fuzz_build_image(cctx, in, len, start, &img, &info) == 0, "out of memory");
        visit_t v = scan(img.p, img.len, &corrupt);
        FUZZ_CHECK(!info.all_valid || (v.frames == info.frames && corrupt == 0 &&
                                       v.records == info.records && v.next_off == img.len),
                   "image of %zu valid frames: kept %zu, %d corrupt region(s)", info.frames,
                   v.frames, corrupt);
        fuzz_buf_free(&img);
        return 0;
    }
    if (mode == 0) {
        scan(in, len, &corrupt);
        return 0;
    }
    uint8_t *img = malloc(len ? len : 1);
    FUZZ_CHECK(img != NULL, "out of memory");
    if (len)
        memcpy(img, in, len);
    fuzz_fix_crcs(img, len);
    scan(img, len, &corrupt);
    free(img);
    return 0;
}
