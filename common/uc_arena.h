/*
 * uc_arena.h - a bump allocator for per-record scratch memory (strings, small structs) that
 * is reset, not freed, between records: building or enriching an event of a few fields then
 * costs no malloc at all once the arena has warmed up.
 */
#ifndef UC_ARENA_H
#define UC_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct uc__arena_chunk {
    struct uc__arena_chunk *next;
    size_t size, used;
    _Alignas(16) uint8_t data[];
} uc__arena_chunk_t;

typedef struct uc__arena {
    uc__arena_chunk_t *first; /* may live inside the owner (see init) */
    uc__arena_chunk_t *cur;
    int first_is_owned;       /* 1 when the arena malloc'd `first` */
} uc__arena_t;

/*
 * Prepares @p a. @p inline_chunk (may be NULL) is a chunk of @p inline_size data bytes that the
 * owner embeds, so the first allocations need no malloc; it is never freed by the arena.
 */
void uc__arena_init(uc__arena_t *a, uc__arena_chunk_t *inline_chunk, size_t inline_size);

/* 16-byte aligned memory valid until reset/free; NULL when out of memory. */
void *uc__arena_alloc(uc__arena_t *a, size_t size);
char *uc__arena_strdup(uc__arena_t *a, const char *s);

/* Forgets every allocation and keeps the chunks for reuse. */
void uc__arena_reset(uc__arena_t *a);

/* Frees the chunks the arena allocated. */
void uc__arena_free(uc__arena_t *a);

#endif
