/*
 * stage_util.c - the shared pieces of the windowed stages that are not one-liners (see
 * stage_util.h): the encoding buffer and the closed horizon's changelog record.
 */
#include "stage_util.h"

#include "le.h"

#include <stdlib.h>

uint8_t *enr__buf_reserve(uint8_t **buf, size_t *cap, size_t size)
{
    if (size > *cap) {
        uint8_t *grown = realloc(*buf, size);
        if (!grown)
            return NULL;
        *buf = grown;
        *cap = size;
    }
    return *buf;
}

void enr__horizon_persist(enr__horizon_t *h, enr_ctx_t *ctx, const void *key, size_t key_len)
{
    if (!h->dirty)
        return;
    uint8_t v[8];
    enr__le_put64(v, (uint64_t)h->end);
    enr_ctx_changelog_put(ctx, key, key_len, v, sizeof(v));
    h->dirty = 0;
}

int enr__horizon_restore(enr__horizon_t *h, const void *value, size_t value_len)
{
    enr__le_reader_t r = enr__le_reader(value, value_len);
    int64_t end = (int64_t)enr__le_get64(&r);
    if (!r.ok || r.p != r.end)
        return value ? -1 : 0;
    if (end > h->end)
        h->end = end; /* restored as written: not dirty */
    return 0;
}

void enr__horizon_send(enr_ctx_t *ctx, uint8_t kind, int64_t h)
{
    uint8_t v[9] = {kind};
    if (!ctx->sink->partial || h == INT64_MIN)
        return;
    enr__le_put64(v + 1, (uint64_t)h);
    ctx->sink->partial(ctx->sink->opaque, NULL, 0, v, sizeof(v), 1);
}

int enr__horizon_decode(const void *value, size_t value_len, uint8_t *kind, int64_t *h)
{
    const uint8_t *v = value;
    if (!v || value_len != 9 || (v[0] != ENR__HORIZON_WINDOW && v[0] != ENR__HORIZON_ANOMALY))
        return -1;
    *kind = v[0];
    *h = (int64_t)enr__le_load64(v + 1);
    return enr__time_ok(*h) ? 0 : -1;
}
