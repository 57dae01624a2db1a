/*
 * le.h - the little-endian encoding of integers and doubles in changelog values, so stage
 * state written on one machine restores on any other. A reader walks a value with a cursor
 * that fails (and stays failed) instead of reading past the end of a short or corrupt record.
 */
#ifndef ENR_LE_H
#define ENR_LE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint8_t *enr__le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static inline uint8_t *enr__le_put_double(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof(v));
    return enr__le_put64(p, v);
}

static inline uint64_t enr__le_load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A read position in a value; ok drops to 0 at the first read past the end. */
typedef struct enr__le_reader {
    const uint8_t *p, *end;
    int ok;
} enr__le_reader_t;

static inline enr__le_reader_t enr__le_reader(const void *data, size_t len)
{
    enr__le_reader_t r = {data, (const uint8_t *)data + len, data != NULL};
    return r;
}

/* The next @p n bytes, or NULL (and the reader failed) when fewer remain. */
static inline const uint8_t *enr__le_take(enr__le_reader_t *r, size_t n)
{
    if (!r->ok || (size_t)(r->end - r->p) < n) {
        r->ok = 0;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static inline uint64_t enr__le_get64(enr__le_reader_t *r)
{
    const uint8_t *p = enr__le_take(r, 8);
    return p ? enr__le_load64(p) : 0;
}

static inline uint8_t enr__le_get8(enr__le_reader_t *r)
{
    const uint8_t *p = enr__le_take(r, 1);
    return p ? p[0] : 0;
}

static inline double enr__le_get_double(enr__le_reader_t *r)
{
    uint64_t v = enr__le_get64(r);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

#endif
