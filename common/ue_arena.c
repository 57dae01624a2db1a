/*
 * ue_arena.c - see ue_arena.h.
 */
#include "ue_arena.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 4096

void ue__arena_init(ue__arena_t *a, ue__arena_chunk_t *inline_chunk, size_t inline_size)
{
    a->first = inline_chunk;
    a->first_is_owned = 0;
    if (inline_chunk) {
        inline_chunk->next = NULL;
        inline_chunk->size = inline_size;
        inline_chunk->used = 0;
    }
    a->cur = inline_chunk;
}

static ue__arena_chunk_t *new_chunk(size_t size)
{
    size_t csize = size > CHUNK_MIN ? size : CHUNK_MIN;
    ue__arena_chunk_t *c = malloc(sizeof(*c) + csize);
    if (c) {
        c->next = NULL;
        c->size = csize;
        c->used = 0;
    }
    return c;
}

void *ue__arena_alloc(ue__arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    ue__arena_chunk_t *c = a->cur;
    if (!c) {
        if (!(c = a->first = a->cur = new_chunk(size)))
            return NULL;
        a->first_is_owned = 1;
    }
    if (c->used + size > c->size) {
        if (c->next && c->next->size >= size) { /* a chunk kept by reset */
            c = c->next;
        } else {
            ue__arena_chunk_t *n = new_chunk(size);
            if (!n)
                return NULL;
            n->next = c->next;
            c->next = n;
            c = n;
        }
        c->used = 0;
        a->cur = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

char *ue__arena_strdup(ue__arena_t *a, const char *s)
{
    size_t len = strlen(s);
    char *p = ue__arena_alloc(a, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

void ue__arena_reset(ue__arena_t *a)
{
    for (ue__arena_chunk_t *c = a->first; c; c = c->next)
        c->used = 0;
    a->cur = a->first;
}

void ue__arena_free(ue__arena_t *a)
{
    ue__arena_chunk_t *c = a->first;
    if (c && !a->first_is_owned)
        c = c->next; /* the owner's inline chunk */
    while (c) {
        ue__arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->first = a->cur = NULL;
}
