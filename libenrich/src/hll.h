/*
 * hll.h - distinct counting for the window stage: an exact set of 64-bit hashes while a
 * window has few users, a HyperLogLog sketch once it has many, and the changelog encoding of
 * both (restore rebuilds exactly the same counter).
 *
 * Exact up to ENR__DISTINCT_EXACT_MAX distinct hashes (64-bit hashes: a collision among 4096
 * ids has probability ~5e-13). Above, HyperLogLog with p = 14 (16384 one-byte registers,
 * 16 KiB): relative standard error 1.04 / sqrt(16384) = 0.81%, so 99.7% of estimates are
 * within 2.4% of the truth. The estimate is Ertl's improved raw estimator ("New cardinality
 * estimation algorithms for HyperLogLog sketches", 2017), which needs no bias tables and no
 * switch to linear counting: it is unbiased from a handful of users to billions.
 */
#ifndef ENR_HLL_H
#define ENR_HLL_H

#include "le.h"

#include <stddef.h>
#include <stdint.h>

#define ENR__HLL_P 14
#define ENR__HLL_M (1u << ENR__HLL_P)
#define ENR__DISTINCT_EXACT_MAX 4096

typedef struct enr__hll {
    uint8_t reg[ENR__HLL_M]; /* max rank seen per bucket, 0..65 - p */
} enr__hll_t;

/* Adds a (well-mixed) 64-bit hash. */
void enr__hll_add(enr__hll_t *h, uint64_t hash);

/* The estimated number of distinct hashes added. */
double enr__hll_estimate(const enr__hll_t *h);

typedef struct enr__distinct {
    uint64_t *set;   /* open addressing, 0 = empty slot; NULL once sketched */
    uint32_t n, cap; /* hashes in the set; slots (a power of two) */
    enr__hll_t *hll; /* non-NULL once more than ENR__DISTINCT_EXACT_MAX were seen */
} enr__distinct_t;

/* Adds a hash (0 is folded onto 1). Returns 0, or -1 when out of memory (not added). */
int enr__distinct_add(enr__distinct_t *d, uint64_t hash);

/* Exact below the threshold, else the rounded sketch estimate. */
uint64_t enr__distinct_count(const enr__distinct_t *d);

/* Frees the set or sketch; @p d is then empty and reusable. */
void enr__distinct_free(enr__distinct_t *d);

/* Adds every hash counted by @p other (a union: the windows of several tasks). 0, or -1 when
 * out of memory. */
int enr__distinct_merge(enr__distinct_t *d, const enr__distinct_t *other);

/* Bytes enr__distinct_encode() writes. */
size_t enr__distinct_encoded_size(const enr__distinct_t *d);

/* Writes the counter at @p out; returns the end of what it wrote. */
uint8_t *enr__distinct_encode(const enr__distinct_t *d, uint8_t *out);

/* Reads a counter written by enr__distinct_encode() into an empty @p d. 0, or -1 if invalid. */
int enr__distinct_decode(enr__distinct_t *d, enr__le_reader_t *r);

#endif
