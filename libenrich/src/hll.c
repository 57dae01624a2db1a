/*
 * hll.c - exact-then-HyperLogLog distinct counting (see hll.h for the error bounds).
 */
#include "hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HLL_Q (64 - ENR__HLL_P) /* hash bits left for the rank */

enum { KIND_EXACT = 0, KIND_SKETCH = 1 };

void enr__hll_add(enr__hll_t *h, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> HLL_Q);
    uint64_t w = hash << ENR__HLL_P; /* the low q bits, shifted to the top */
    uint8_t rank = w ? (uint8_t)(__builtin_clzll(w) + 1) : HLL_Q + 1;
    if (rank > h->reg[idx])
        h->reg[idx] = rank;
}

/* Ertl's sigma(x) = x + sum_k x^(2^k) 2^(k-1): the correction for empty registers. */
static double sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

/* Ertl's tau(x): the correction for saturated registers (rank q + 1). */
static double tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1.0 - x, prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != prev);
    return z / 3.0;
}

double enr__hll_estimate(const enr__hll_t *h)
{
    const double m = ENR__HLL_M;
    uint32_t c[HLL_Q + 2] = {0}; /* registers per rank */
    for (uint32_t i = 0; i < ENR__HLL_M; i++)
        c[h->reg[i]]++;
    double z = m * tau(1.0 - c[HLL_Q + 1] / m);
    for (int k = HLL_Q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * sigma(c[0] / m);
    return m * m / (2.0 * log(2.0)) / z;
}

/* Adds @p h to the table; 1 when it was new. The table has a free slot. */
static int set_put(uint64_t *set, uint32_t cap, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (set[i] == h)
            return 0;
        if (!set[i]) {
            set[i] = h;
            return 1;
        }
    }
}

static int set_has(const enr__distinct_t *d, uint64_t h)
{
    if (!d->cap)
        return 0;
    for (uint32_t i = (uint32_t)h & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        if (d->set[i] == h)
            return 1;
        if (!d->set[i])
            return 0;
    }
}

/* Doubles the set (load stays <= 1/2). 0, or -1 when out of memory. */
static int set_grow(enr__distinct_t *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 8;
    uint64_t *set = calloc(cap, sizeof(*set));
    if (!set)
        return -1;
    for (uint32_t i = 0; i < d->cap; i++)
        if (d->set[i])
            set_put(set, cap, d->set[i]);
    free(d->set);
    d->set = set;
    d->cap = cap;
    return 0;
}

/* Moves the exact set into a new sketch. 0, or -1 when out of memory. */
static int to_sketch(enr__distinct_t *d)
{
    enr__hll_t *hll = calloc(1, sizeof(*hll));
    if (!hll)
        return -1;
    for (uint32_t i = 0; i < d->cap; i++)
        if (d->set[i])
            enr__hll_add(hll, d->set[i]);
    free(d->set);
    d->set = NULL;
    d->n = d->cap = 0;
    d->hll = hll;
    return 0;
}

int enr__distinct_add(enr__distinct_t *d, uint64_t hash)
{
    uint64_t h = hash ? hash : 1;
    if (!d->hll) {
        if (set_has(d, h))
            return 0;
        if (d->n == ENR__DISTINCT_EXACT_MAX) {
            if (to_sketch(d))
                return -1;
        } else {
            if ((d->n + 1) * 2 > d->cap && set_grow(d))
                return -1;
            d->n += (uint32_t)set_put(d->set, d->cap, h);
            return 0;
        }
    }
    enr__hll_add(d->hll, h);
    return 0;
}

uint64_t enr__distinct_count(const enr__distinct_t *d)
{
    return d->hll ? (uint64_t)llround(enr__hll_estimate(d->hll)) : d->n;
}

void enr__distinct_free(enr__distinct_t *d)
{
    free(d->set);
    free(d->hll);
    memset(d, 0, sizeof(*d));
}

size_t enr__distinct_encoded_size(const enr__distinct_t *d)
{
    return d->hll ? 1 + ENR__HLL_M : 1 + 8 + 8 * (size_t)d->n;
}

static int le64_cmp(const void *a, const void *b)
{
    uint64_t x = enr__le_load64(a), y = enr__le_load64(b);
    return (x > y) - (x < y);
}

/*
 * Exact: kind, n, the n hashes in increasing order (one encoding per set, whatever the
 * table's history); sketch: kind, the registers.
 */
uint8_t *enr__distinct_encode(const enr__distinct_t *d, uint8_t *out)
{
    if (d->hll) {
        *out++ = KIND_SKETCH;
        memcpy(out, d->hll->reg, ENR__HLL_M);
        return out + ENR__HLL_M;
    }
    *out++ = KIND_EXACT;
    out = enr__le_put64(out, d->n);
    uint8_t *hashes = out;
    for (uint32_t i = 0; i < d->cap; i++)
        if (d->set[i])
            out = enr__le_put64(out, d->set[i]);
    qsort(hashes, d->n, 8, le64_cmp);
    return out;
}

static int decode_sketch(enr__distinct_t *d, enr__le_reader_t *r)
{
    const uint8_t *reg = enr__le_take(r, ENR__HLL_M);
    if (!reg)
        return -1;
    for (uint32_t i = 0; i < ENR__HLL_M; i++)
        if (reg[i] > HLL_Q + 1)
            return -1;
    if (!(d->hll = malloc(sizeof(*d->hll))))
        return -1;
    memcpy(d->hll->reg, reg, ENR__HLL_M);
    return 0;
}

int enr__distinct_decode(enr__distinct_t *d, enr__le_reader_t *r)
{
    uint8_t kind = enr__le_get8(r);
    if (!r->ok)
        return -1;
    if (kind == KIND_SKETCH)
        return decode_sketch(d, r);
    uint64_t n = enr__le_get64(r);
    if (kind != KIND_EXACT || !r->ok || n > ENR__DISTINCT_EXACT_MAX)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h = enr__le_get64(r);
        if (!r->ok || !h || enr__distinct_add(d, h)) {
            enr__distinct_free(d);
            return -1;
        }
    }
    return 0;
}

int enr__distinct_merge(enr__distinct_t *d, const enr__distinct_t *other)
{
    if (other->hll) {
        if (!d->hll && to_sketch(d))
            return -1;
        for (uint32_t i = 0; i < ENR__HLL_M; i++) /* a union of sketches: the larger rank */
            if (other->hll->reg[i] > d->hll->reg[i])
                d->hll->reg[i] = other->hll->reg[i];
        return 0;
    }
    for (uint32_t i = 0; i < other->cap; i++)
        if (other->set[i] && enr__distinct_add(d, other->set[i]))
            return -1;
    return 0;
}
