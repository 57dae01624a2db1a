/*
 * spool_frame.c - encoding, checking and scanning spool frames (see spool_frame.h).
 */
#include "spool_frame.h"
#include "uc_crc32c.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[4] = {'U', 'E', 'S', '1'};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int ue__frame_parse_hdr(const uint8_t *buf, size_t len, ue__frame_hdr_t *h)
{
    if (len < UE__FRAME_HDR || memcmp(buf, MAGIC, 4) != 0)
        return -1;
    h->comp_len = get32(buf + 4);
    h->raw_len = get32(buf + 8);
    h->count = get32(buf + 12);
    h->first_seq = get64(buf + 16);
    h->crc = get32(buf + 24);
    if (h->comp_len == 0 || h->comp_len > UE__FRAME_MAX_COMP || h->raw_len > UE__FRAME_MAX_RAW ||
        h->count == 0 || h->count > h->raw_len || h->first_seq == 0 ||
        h->first_seq > UINT64_MAX - h->count)
        return -1;
    return 0;
}

int ue__frame_check_crc(const uint8_t *hdr_buf, const uint8_t *payload, const ue__frame_hdr_t *h)
{
    uint32_t crc = uc__crc32c(0, hdr_buf + 4, 20);
    crc = uc__crc32c(crc, payload, h->comp_len);
    return crc == h->crc ? 0 : -1;
}

size_t ue__frame_bound(size_t raw_len)
{
    return UE__FRAME_HDR + ZSTD_compressBound(raw_len);
}

size_t ue__frame_encode(ZSTD_CCtx *cctx, int level, const uint8_t *raw, size_t raw_len,
                        uint32_t count, uint64_t first_seq, uint8_t *out, size_t out_cap)
{
    if (out_cap < UE__FRAME_HDR)
        return 0;
    size_t comp = ZSTD_compressCCtx(cctx, out + UE__FRAME_HDR, out_cap - UE__FRAME_HDR, raw,
                                    raw_len, level);
    if (ZSTD_isError(comp) || comp > UE__FRAME_MAX_COMP)
        return 0;
    memcpy(out, MAGIC, 4);
    put32(out + 4, (uint32_t)comp);
    put32(out + 8, (uint32_t)raw_len);
    put32(out + 12, count);
    put64(out + 16, first_seq);
    uint32_t crc = uc__crc32c(0, out + 4, 20);
    put32(out + 24, uc__crc32c(crc, out + UE__FRAME_HDR, comp));
    return UE__FRAME_HDR + comp;
}

/* 0 when @p raw holds exactly @p count well-formed serialized records. */
static int check_records(const uint8_t *raw, size_t len, uint32_t count)
{
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        ue__record_t *r;
        size_t used = ue__record_spool_read(raw + off, len - off, &r);
        if (!used)
            return -1;
        free(r);
        off += used;
    }
    return off == len ? 0 : -1;
}

int ue__frame_decompress(ZSTD_DCtx *dctx, const uint8_t *payload, const ue__frame_hdr_t *h,
                         uint8_t **raw, size_t *raw_cap)
{
    if (*raw_cap < h->raw_len || !*raw) {
        size_t cap = h->raw_len ? h->raw_len : 1;
        uint8_t *grown = realloc(*raw, cap);
        if (!grown)
            return -1;
        *raw = grown;
        *raw_cap = cap;
    }
    size_t n = ZSTD_decompressDCtx(dctx, *raw, h->raw_len, payload, h->comp_len);
    if (ZSTD_isError(n) || n != h->raw_len)
        return -1;
    return check_records(*raw, n, h->count);
}

/* Offset of the next magic after @p from, or @p len. */
static size_t find_magic(const uint8_t *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 4 <= len; i++)
        if (buf[i] == MAGIC[0] && memcmp(buf + i, MAGIC, 4) == 0)
            return i;
    return len;
}

int ue__frames_scan(const uint8_t *buf, size_t len, ZSTD_DCtx *dctx, uint8_t **raw,
                    size_t *raw_cap, ue__frame_visit_fn *on_frame, void *opaque,
                    size_t *valid_end)
{
    size_t off = 0;
    int corrupt = 0, in_corrupt = 0;
    uint64_t next_seq = 0;
    /*
     * Every plausible header costs a CRC over the length it claims: a crafted image with one
     * every few bytes would make the scan quadratic (1 MB: 20 s, 64 MB: hours). The CRC work is
     * bounded to four passes over the image; past that, the rest counts as corrupt.
     */
    size_t crc_budget = 4 * len;

    *valid_end = 0;
    while (off < len) {
        ue__frame_hdr_t h;
        int ok = ue__frame_parse_hdr(buf + off, len - off, &h) == 0 &&
                 h.comp_len <= len - off - UE__FRAME_HDR && h.comp_len <= crc_budget;
        if (ok)
            crc_budget -= h.comp_len;
        ok = ok && ue__frame_check_crc(buf + off, buf + off + UE__FRAME_HDR, &h) == 0 &&
                 h.first_seq >= next_seq &&
                 ue__frame_decompress(dctx, buf + off + UE__FRAME_HDR, &h, raw, raw_cap) == 0;
        if (!ok) {
            if (!in_corrupt)
                corrupt++;
            in_corrupt = 1;
            off = find_magic(buf, len, off + 1);
            continue;
        }
        in_corrupt = 0;
        on_frame(&h, off, opaque);
        next_seq = h.first_seq + h.count;
        off += UE__FRAME_HDR + h.comp_len;
        *valid_end = off;
    }
    return corrupt;
}
