/*
 * uc_arena.c - see uc_arena.h.
 */
#include "uc_arena.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 4096

void uc__arena_init(uc__arena_t *a, uc__arena_chunk_t *inline_chunk, size_t inline_size)
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

static uc__arena_chunk_t *new_chunk(size_t size)
{
    size_t csize = size > CHUNK_MIN ? size : CHUNK_MIN;
    uc__arena_chunk_t *c = malloc(sizeof(*c) + csize);
    if (c) {
        c->next = NULL;
        c->size = csize;
        c->used = 0;
    }
    return c;
}

void *uc__arena_alloc(uc__arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    uc__arena_chunk_t *c = a->cur;
    if (!c) {
        if (!(c = a->first = a->cur = new_chunk(size)))
            return NULL;
        a->first_is_owned = 1;
    }
    if (c->used + size > c->size) {
        if (c->next && c->next->size >= size) { /* a chunk kept by reset */
            c = c->next;
        } else {
            uc__arena_chunk_t *n = new_chunk(size);
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

char *uc__arena_strdup(uc__arena_t *a, const char *s)
{
    size_t len = strlen(s);
    char *p = uc__arena_alloc(a, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

void uc__arena_reset(uc__arena_t *a)
{
    for (uc__arena_chunk_t *c = a->first; c; c = c->next)
        c->used = 0;
    a->cur = a->first;
}

void uc__arena_free(uc__arena_t *a)
{
    uc__arena_chunk_t *c = a->first;
    if (c && !a->first_is_owned)
        c = c->next; /* the owner's inline chunk */
    while (c) {
        uc__arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->first = a->cur = NULL;
}
