/*
 * body.c - ue-collector's decompression of a request body (gzip/zlib, zstd), capped so that a
 * small body cannot expand into more memory than --max-decoded (zip bombs).
 */
#include "collector.h"

#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#define ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB: what zstd levels up to 19 use; bounds a bomb's memory */

/* Grows @p buf (capacity *@p cap) towards @p max; DEC_TOO_LARGE once it is there. */
static int grow(uint8_t **buf, size_t *cap, size_t max)
{
    if (*cap >= max)
        return DEC_TOO_LARGE;
    size_t size = *cap * 2 < max ? *cap * 2 : max;
    uint8_t *p = realloc(*buf, size);
    if (!p)
        return DEC_TOO_LARGE;
    *buf = p;
    *cap = size;
    return DEC_OK;
}

int gunzip(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    size_t cap = 64 * 1024 < max ? 64 * 1024 : max;
    int rc = DEC_BAD;
    *out = malloc(cap);
    if (!*out || inflateInit2(&zs, 15 + 32) != Z_OK) /* gzip or zlib, by header */
        return DEC_BAD;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (zs.total_out == cap && (rc = grow(out, &cap, max)) != DEC_OK)
            break;
        zs.next_out = *out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        int z = inflate(&zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END) {
            rc = DEC_OK;
            break;
        }
        if ((z != Z_OK && z != Z_BUF_ERROR) || (z == Z_BUF_ERROR && zs.avail_in == 0)) {
            rc = DEC_BAD; /* corrupt or truncated */
            break;
        }
    }
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return rc;
}

int unzstd(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t cap = 64 * 1024 < max ? 64 * 1024 : max, last = 1;
    ZSTD_inBuffer src = {in, len, 0};
    ZSTD_outBuffer dst = {NULL, cap, 0};
    int rc = DEC_BAD;
    *out = malloc(cap);
    if (!d || !*out ||
        ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
        ZSTD_freeDCtx(d);
        return DEC_BAD;
    }
    for (;;) {
        if (dst.pos == cap && (rc = grow(out, &cap, max)) != DEC_OK)
            break;
        dst.dst = *out;
        dst.size = cap;
        last = ZSTD_decompressStream(d, &dst, &src);
        if (ZSTD_isError(last)) {
            rc = DEC_BAD;
            break;
        }
        if (src.pos == src.size && (last == 0 || dst.pos < dst.size)) {
            rc = last == 0 ? DEC_OK : DEC_BAD; /* truncated when a frame is unfinished */
            break;
        }
    }
    *out_len = dst.pos;
    ZSTD_freeDCtx(d);
    return rc;
}
