/*
 * fuzz_util.c - helpers shared by the fuzz targets (see fuzz_util.h).
 */
#include "fuzz_util.h"
#include "uc_crc32c.h"

#include <string.h>

int fuzz_buf_reserve(fuzz_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void fuzz_buf_free(fuzz_buf_t *b)
{
    free(b->p);
    *b = (fuzz_buf_t){0};
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void fuzz_fix_crcs(uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off + UE__FRAME_HDR <= len) {
        ue__frame_hdr_t h;
        if (ue__frame_parse_hdr(buf + off, len - off, &h) != 0 ||
            h.comp_len > len - off - UE__FRAME_HDR) {
            off++;
            continue;
        }
        uint32_t crc = uc__crc32c(0, buf + off + 4, 20);
        put32(buf + off + 24, uc__crc32c(crc, buf + off + UE__FRAME_HDR, h.comp_len));
        off += UE__FRAME_HDR + h.comp_len;
    }
}

int fuzz_records_exact(const uint8_t *in, size_t len, uint32_t count)
{
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        ue__record_t *r;
        size_t used = ue__record_spool_read(in + off, len - off, &r);
        if (!used)
            return 0;
        free(r);
        off += used;
    }
    return off == len;
}

/* One chunk of the description: the frame's first sequence number and its raw records. */
typedef struct chunk {
    uint8_t ctl, count;
    const uint8_t *raw;
    size_t raw_len;
} chunk_t;

static size_t next_chunk(const uint8_t *in, size_t len, chunk_t *c)
{
    uint8_t hdr[4] = {0};
    size_t h = len < 4 ? len : 4;
    memcpy(hdr, in, h);
    c->ctl = hdr[0];
    c->count = hdr[1];
    c->raw_len = (size_t)hdr[2] | (size_t)hdr[3] << 8;
    if (c->raw_len > len - h)
        c->raw_len = len - h;
    c->raw = in + h;
    return h + c->raw_len;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int fuzz_build_image(ZSTD_CCtx *cctx, const uint8_t *in, size_t len, uint64_t start_seq,
                     fuzz_buf_t *out, fuzz_image_info_t *info)
{
    uint64_t base = start_seq, floor = 0;
    size_t off = 0;

    *info = (fuzz_image_info_t){.all_valid = 1};
    while (off < len) {
        chunk_t c;
        off += next_chunk(in + off, len - off, &c);
        uint64_t gap = c.ctl & 63;
        if (gap == 63) /* far past the spool's MAX_SEGMENT_SPAN (64 Mi seqs in one segment) */
            gap = (uint64_t)1 << 27;
        uint64_t first = (c.ctl & 0x40) ? (base > gap ? base - gap : 0) : sat_add(base, gap);
        if (fuzz_buf_reserve(out, ue__frame_bound(c.raw_len)))
            return -1;
        size_t n = ue__frame_encode(cctx, 1, c.raw, c.raw_len, c.count, first, out->p + out->len,
                                    out->cap - out->len);
        if (!n) {
            info->all_valid = 0;
            continue;
        }
        int valid = c.count >= 1 && c.count <= c.raw_len && first >= 1 &&
                    first <= UINT64_MAX - c.count && first >= floor && !(c.ctl & 0x80) &&
                    fuzz_records_exact(c.raw, c.raw_len, c.count);
        if (c.ctl & 0x80)
            n /= 2; /* torn: a crash in the middle of the write */
        if (valid) {
            floor = first + c.count;
            info->records += c.count;
        }
        info->all_valid &= valid;
        if (!info->frames)
            info->first_seq = first;
        info->frames++;
        out->len += n;
        base = sat_add(first, c.count);
    }
    return 0;
}

void fuzz_check_record(ue__record_t *r, const uint8_t *in, size_t used)
{
    FUZZ_CHECK(r->next == NULL && r->seq == 0, "fresh record has links or a seq");
    FUZZ_CHECK(r->type_len > 0, "record with an empty type");
    FUZZ_CHECK(ue__record_type(r)[r->type_len] == '\0', "type not NUL-terminated");
    FUZZ_CHECK(ue__record_key(r)[r->key_len] == '\0', "key not NUL-terminated");
    FUZZ_CHECK(ue__record_spool_size(r) == used, "spool size %zu, parsed %zu",
               ue__record_spool_size(r), used);

    uint8_t *copy = malloc(used);
    FUZZ_CHECK(copy != NULL, "out of memory");
    ue__record_spool_write(r, copy);
    FUZZ_CHECK(memcmp(copy, in, used) == 0, "spool write does not reproduce what was read");
    free(copy);

    /* The longest sent_at varint (a negative value: 10 bytes) must fit the slack. */
    size_t stamped = ue__record_stamp_sent_at(r, -1);
    FUZZ_CHECK(stamped > r->payload_len && stamped <= r->payload_len + UE__SENT_AT_SLACK,
               "sent_at stamp of %zu bytes", stamped - r->payload_len);
}

int fuzz_url_shows_password(const char *url, const char *text)
{
    const char *sep = strstr(url, "://");
    /* sqlite:PATH and file:DIR are paths, shown as they are: "sqlite:x://u:p@h" is a file
     * name, not a server's credentials (found by fuzz_whs_url). */
    if (!sep || !strncmp(url, "sqlite:", 7) || !strncmp(url, "file:", 5))
        return 0;
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?");
    const char *at = memrchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon || at - colon < 2)
        return 0;
    char *pw = strndup(colon + 1, (size_t)(at - colon - 1));
    char *before = strndup(url, (size_t)(colon + 1 - url));
    FUZZ_CHECK(pw != NULL && before != NULL, "out of memory");
    int shown = strstr(text, pw) && !strchr(pw, '*') && !strstr(before, pw) && !strstr(at, pw);
    free(before);
    free(pw);
    return shown;
}
