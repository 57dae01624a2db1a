/*
 * htab.h - hashing and an intrusive hash table for stage state (windows, anomaly keys).
 *
 * The table stores nodes embedded in the caller's structs (first member, so a node pointer
 * casts back to its struct) and never allocates per entry: the caller owns the entries and
 * compares keys while walking a chain. The hash is fixed (unseeded) because the window
 * stage persists user hashes in its changelog; it must give the same value after a restart.
 */
#ifndef ENR_HTAB_H
#define ENR_HTAB_H

#include <stddef.h>
#include <stdint.h>

/* A 64-bit hash of @p len bytes (MurmurHash3-style mixing, fmix64 finaliser). */
uint64_t enr__hash64(const void *data, size_t len);

/* Scrambles a 64-bit integer (fmix64): combine with a string hash by XOR. */
uint64_t enr__mix64(uint64_t v);

typedef struct enr__hnode {
    struct enr__hnode *next; /* in the chain of its slot */
    uint64_t hash;
} enr__hnode_t;

typedef struct enr__htab {
    enr__hnode_t **slots;
    size_t mask;  /* slots - 1, a power of two minus one */
    size_t count; /* entries */
} enr__htab_t;

/* Prepares an empty table. Returns 0, or -1 when out of memory. */
int enr__htab_init(enr__htab_t *t);

/* Frees the slot array (not the entries). */
void enr__htab_free(enr__htab_t *t);

/* The chain that holds @p hash: walk ->next and compare both hash and key. */
enr__hnode_t *enr__htab_chain(const enr__htab_t *t, uint64_t hash);

/* Adds @p n (its hash set). Grows at load 1; if growing fails the chains just get longer. */
void enr__htab_insert(enr__htab_t *t, enr__hnode_t *n);

/* Unlinks @p n, which must be in @p t. */
void enr__htab_remove(enr__htab_t *t, enr__hnode_t *n);

/*
 * Iteration: the entry after @p prev (NULL: the first), with *@p slot as the cursor (start
 * at 0). The entry returned may be removed before the next call if its successor was taken
 * first: `for (n = next(t, &i, NULL); n; n = nx) { nx = next(t, &i, n); ... }`.
 */
enr__hnode_t *enr__htab_next(const enr__htab_t *t, size_t *slot, const enr__hnode_t *prev);

#endif
