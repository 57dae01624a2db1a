/*
 * image.c - a task's committed state, kept to roll an abort back in memory (see image.h).
 *
 * Entries sit in a hash table by key and on a list in the order of their last write, which is
 * the order a compacted changelog keeps. Staged writes are one append-only buffer of
 * [key length][value length or NULL_VALUE][key][value] records. What an image holds (entries
 * with their headers, the staging buffer) is charged to its processor's budget.
 */
#include "image.h"
#include "htab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NULL_VALUE UINT32_MAX  /* a staged delete */
#define STAGED_KEEP (1u << 20) /* a staging buffer grown past this is freed after use */

typedef struct entry {
    enr__hnode_t node; /* first: a node pointer is the entry */
    struct entry *prev, *next;
    uint32_t key_len, value_len;
    unsigned char data[]; /* key, then value */
} entry_t;

struct enr__image {
    enr__htab_t keys;
    entry_t *oldest, *newest;
    size_t bytes; /* of keys and values */
    unsigned char *staged;
    size_t staged_len, staged_cap;
    enr__image_budget_t *budget; /* NULL: unlimited */
    size_t held;                 /* charged to the budget */
    int failed;                  /* out of memory or budget once: no longer the committed state */
};

enr__image_t *enr__image_new(enr__image_budget_t *budget)
{
    enr__image_t *im = calloc(1, sizeof(*im));
    if (im && enr__htab_init(&im->keys)) {
        free(im);
        return NULL;
    }
    if (im)
        im->budget = budget;
    return im;
}

/* Frees the entries and the staging buffer, and returns their charge. */
static void release(enr__image_t *im)
{
    for (entry_t *e = im->oldest, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    im->oldest = im->newest = NULL;
    enr__htab_free(&im->keys);
    free(im->staged);
    im->staged = NULL;
    im->staged_len = im->staged_cap = 0;
    im->bytes = 0;
    if (im->budget)
        im->budget->used -= im->held;
    im->held = 0;
}

void enr__image_free(enr__image_t *im)
{
    if (!im)
        return;
    release(im);
    free(im);
}

/* The image can no longer be the committed state: it lets go of its memory. Returns -1. */
static int give_up(enr__image_t *im)
{
    release(im);
    im->failed = 1;
    return -1;
}

/* Charges @p n more bytes; 0, or -1 (and the image gives up) past the budget. */
static int charge(enr__image_t *im, size_t n)
{
    im->held += n;
    if (!im->budget)
        return 0;
    im->budget->used += n;
    return im->budget->used > im->budget->max ? give_up(im) : 0;
}

static void uncharge(enr__image_t *im, size_t n)
{
    im->held -= n;
    if (im->budget)
        im->budget->used -= n;
}

static entry_t *find(const enr__image_t *im, uint64_t hash, const void *key, size_t key_len)
{
    for (enr__hnode_t *n = enr__htab_chain(&im->keys, hash); n; n = n->next) {
        entry_t *e = (entry_t *)n;
        if (n->hash == hash && e->key_len == key_len && !memcmp(e->data, key, key_len))
            return e;
    }
    return NULL;
}

static void unlink_entry(enr__image_t *im, entry_t *e)
{
    enr__htab_remove(&im->keys, &e->node);
    *(e->prev ? &e->prev->next : &im->oldest) = e->next;
    *(e->next ? &e->next->prev : &im->newest) = e->prev;
    im->bytes -= e->key_len + e->value_len;
    uncharge(im, sizeof(*e) + e->key_len + e->value_len);
    free(e);
}

int enr__image_put(enr__image_t *im, const void *key, size_t key_len, const void *value,
                   size_t value_len)
{
    if (im->failed)
        return -1;
    uint64_t hash = enr__hash64(key, key_len);
    entry_t *old = find(im, hash, key, key_len);
    if (old)
        unlink_entry(im, old);
    if (!value)
        return 0;
    if (key_len >= NULL_VALUE || value_len >= NULL_VALUE ||
        charge(im, sizeof(entry_t) + key_len + value_len))
        return give_up(im);
    entry_t *e = malloc(sizeof(*e) + key_len + value_len);
    if (!e)
        return give_up(im);
    e->node.hash = hash;
    e->key_len = (uint32_t)key_len;
    e->value_len = (uint32_t)value_len;
    memcpy(e->data, key, key_len);
    if (value_len)
        memcpy(e->data + key_len, value, value_len);
    e->prev = im->newest;
    e->next = NULL;
    *(im->newest ? &im->newest->next : &im->oldest) = e;
    im->newest = e;
    enr__htab_insert(&im->keys, &e->node);
    im->bytes += key_len + value_len;
    return 0;
}

int enr__image_stage(enr__image_t *im, const void *key, size_t key_len, const void *value,
                     size_t value_len)
{
    if (im->failed)
        return -1;
    size_t need = 2 * sizeof(uint32_t) + key_len + (value ? value_len : 0);
    if (key_len >= NULL_VALUE || value_len >= NULL_VALUE)
        return give_up(im);
    if (im->staged_len + need > im->staged_cap) {
        size_t cap = im->staged_cap ? im->staged_cap : 4096;
        while (cap < im->staged_len + need)
            cap *= 2;
        if (charge(im, cap - im->staged_cap))
            return -1;
        unsigned char *grown = realloc(im->staged, cap);
        if (!grown)
            return give_up(im);
        im->staged = grown;
        im->staged_cap = cap;
    }
    uint32_t lens[2] = {(uint32_t)key_len, value ? (uint32_t)value_len : NULL_VALUE};
    unsigned char *at = im->staged + im->staged_len;
    memcpy(at, lens, sizeof(lens));
    memcpy(at + sizeof(lens), key, key_len);
    if (value && value_len)
        memcpy(at + sizeof(lens) + key_len, value, value_len);
    im->staged_len += need;
    return 0;
}

void enr__image_commit(enr__image_t *im)
{
    for (size_t at = 0; at < im->staged_len && !im->failed;) {
        uint32_t lens[2];
        memcpy(lens, im->staged + at, sizeof(lens));
        const unsigned char *key = im->staged + at + sizeof(lens);
        int deleted = lens[1] == NULL_VALUE;
        enr__image_put(im, key, lens[0], deleted ? NULL : key + lens[0], deleted ? 0 : lens[1]);
        at += sizeof(lens) + lens[0] + (deleted ? 0 : lens[1]);
    }
    enr__image_discard(im);
}

void enr__image_discard(enr__image_t *im)
{
    im->staged_len = 0;
    if (im->staged_cap > STAGED_KEEP) { /* one big transaction does not keep its peak */
        uncharge(im, im->staged_cap);
        free(im->staged);
        im->staged = NULL;
        im->staged_cap = 0;
    }
}

int enr__image_ok(const enr__image_t *im)
{
    return im && !im->failed;
}

void enr__image_replay(const enr__image_t *im,
                       void (*apply)(void *opaque, const void *key, size_t key_len,
                                     const void *value, size_t value_len),
                       void *opaque)
{
    for (const entry_t *e = im->oldest; e; e = e->next)
        apply(opaque, e->data, e->key_len, e->data + e->key_len, e->value_len);
}

size_t enr__image_count(const enr__image_t *im)
{
    return im->keys.count;
}

size_t enr__image_bytes(const enr__image_t *im)
{
    return im->bytes;
}
