/*
 * body.c - ue-collector's decompression of a request body (gzip/zlib, zstd), capped so that a
 * small body cannot expand into more memory than --max-decoded (zip bombs), and the memory
 * budget all requests share (--max-inflight-bytes): received bodies, decompressed bodies and
 * JSON parse trees are charged to it as they grow, so that many requests at once cannot add
 * up to more. A JSON body is scanned as it is decompressed (json_scan.c), so that a bomb of
 * "[0,0,...]" stops after its first max-events elements, not after 8 MiB.
 */
#include "collector.h"

#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#define ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB: what zstd levels up to 19 use; bounds a bomb's memory */

int budget_take(collector_t *col, size_t *held, size_t n)
{
    size_t cur = atomic_load(&col->inflight);
    do {
        if (cur + n > col->max_inflight)
            return -1;
    } while (!atomic_compare_exchange_weak(&col->inflight, &cur, cur + n));
    *held += n;
    return 0;
}

void budget_release(collector_t *col, size_t *held)
{
    atomic_fetch_sub(&col->inflight, *held);
    *held = 0;
}

/* Grows the output towards its max, charging the budget: DEC_OK, DEC_TOO_LARGE or DEC_BUSY. */
static int grow(decoded_t *o)
{
    if (o->cap >= o->max)
        return DEC_TOO_LARGE;
    size_t size = !o->cap ? 64 * 1024 : o->cap * 2;
    size = size < o->max ? size : o->max;
    if (budget_take(o->col, o->held, size - o->cap))
        return DEC_BUSY;
    uint8_t *p = realloc(o->data, size);
    if (!p)
        return DEC_BUSY; /* out of memory is also "not now" */
    o->data = p;
    o->cap = size;
    return DEC_OK;
}

/* Scans what the last step decoded (bytes from @p from); DEC_REFUSED when the scan says so. */
static int scan_new(decoded_t *o, size_t from)
{
    return o->scan && jscan_feed(o->scan, o->data + from, o->len - from) ? DEC_REFUSED : DEC_OK;
}

int gunzip(const uint8_t *in, size_t len, decoded_t *o)
{
    z_stream zs = {0};
    int rc = grow(o);
    if (rc != DEC_OK)
        return rc;
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* gzip or zlib, by header */
        return DEC_BAD;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (o->len == o->cap && (rc = grow(o)) != DEC_OK)
            break;
        zs.next_out = o->data + o->len;
        zs.avail_out = (uInt)(o->cap - o->len);
        int z = inflate(&zs, Z_NO_FLUSH);
        size_t from = o->len;
        o->len = zs.total_out;
        if ((rc = scan_new(o, from)) != DEC_OK)
            break;
        if (z == Z_STREAM_END) {
            rc = DEC_OK;
            break;
        }
        if ((z != Z_OK && z != Z_BUF_ERROR) || (z == Z_BUF_ERROR && zs.avail_in == 0)) {
            rc = DEC_BAD; /* corrupt or truncated */
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

int unzstd(const uint8_t *in, size_t len, decoded_t *o)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer src = {in, len, 0};
    size_t last = 1;
    int rc = d ? grow(o) : DEC_BAD;
    if (rc != DEC_OK ||
        ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
        ZSTD_freeDCtx(d);
        return rc != DEC_OK ? rc : DEC_BAD;
    }
    for (;;) {
        if (o->len == o->cap && (rc = grow(o)) != DEC_OK)
            break;
        ZSTD_outBuffer dst = {o->data, o->cap, o->len};
        last = ZSTD_decompressStream(d, &dst, &src);
        if (ZSTD_isError(last)) {
            rc = DEC_BAD;
            break;
        }
        size_t from = o->len;
        o->len = dst.pos;
        if ((rc = scan_new(o, from)) != DEC_OK)
            break;
        if (src.pos == src.size && (last == 0 || dst.pos < dst.size)) {
            rc = last == 0 ? DEC_OK : DEC_BAD; /* truncated when a frame is unfinished */
            break;
        }
    }
    ZSTD_freeDCtx(d);
    return rc;
}
