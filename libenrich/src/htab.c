/*
 * htab.c - hashing and the intrusive hash table of stage state (see htab.h).
 */
#include "htab.h"

#include "le.h"

#include <stdlib.h>

#define C1 UINT64_C(0x87c37b91114253d5)
#define C2 UINT64_C(0x4cf5ad432745937f)

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t enr__mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

static uint64_t block(uint64_t h, uint64_t k)
{
    k *= C1;
    k = rotl64(k, 31);
    k *= C2;
    h ^= k;
    h = rotl64(h, 27);
    return h * 5 + 0x52dce729;
}

uint64_t enr__hash64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15);
    size_t n = len;
    for (; n >= 8; n -= 8, p += 8)
        h = block(h, enr__le_load64(p));
    if (n) {
        uint64_t tail = 0;
        for (size_t i = 0; i < n; i++)
            tail |= (uint64_t)p[i] << (8 * i);
        h = block(h, tail);
    }
    return enr__mix64(h ^ (uint64_t)len);
}

int enr__htab_init(enr__htab_t *t)
{
    t->mask = 15;
    t->count = 0;
    t->slots = calloc(t->mask + 1, sizeof(*t->slots));
    return t->slots ? 0 : -1;
}

void enr__htab_free(enr__htab_t *t)
{
    free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

enr__hnode_t *enr__htab_chain(const enr__htab_t *t, uint64_t hash)
{
    return t->slots[hash & t->mask];
}

/* Doubles the slot array and rehashes; on failure keeps the old one. */
static void grow(enr__htab_t *t)
{
    size_t mask = t->mask * 2 + 1;
    enr__hnode_t **slots = calloc(mask + 1, sizeof(*slots));
    if (!slots)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        enr__hnode_t *n = t->slots[i];
        while (n) {
            enr__hnode_t *next = n->next;
            n->next = slots[n->hash & mask];
            slots[n->hash & mask] = n;
            n = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
}

void enr__htab_insert(enr__htab_t *t, enr__hnode_t *n)
{
    if (t->count > t->mask)
        grow(t);
    enr__hnode_t **head = &t->slots[n->hash & t->mask];
    n->next = *head;
    *head = n;
    t->count++;
}

void enr__htab_remove(enr__htab_t *t, enr__hnode_t *n)
{
    enr__hnode_t **at = &t->slots[n->hash & t->mask];
    while (*at && *at != n)
        at = &(*at)->next;
    if (*at) {
        *at = n->next;
        t->count--;
    }
}

enr__hnode_t *enr__htab_next(const enr__htab_t *t, size_t *slot, const enr__hnode_t *prev)
{
    if (prev && prev->next)
        return prev->next;
    size_t i = prev ? *slot + 1 : *slot;
    for (; i <= t->mask; i++) {
        if (t->slots[i]) {
            *slot = i;
            return t->slots[i];
        }
    }
    *slot = i;
    return NULL;
}
