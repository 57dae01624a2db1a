/*
 * batch.c - see batch.h.
 */
#include "batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void whs__batch_init(whs__batch_t *b, int group_by)
{
    memset(b, 0, sizeof(*b));
    uc__arena_init(&b->arena, NULL, 0);
    b->group_by = group_by;
}

void whs__batch_free(whs__batch_t *b)
{
    for (size_t i = 0; i < b->gcap; i++)
        free(b->groups[i].rows);
    free(b->groups);
    free(b->index);
    free(b->parts);
    uc__arena_free(&b->arena);
    memset(b, 0, sizeof(*b));
}

void whs__batch_reset(whs__batch_t *b, uint64_t id)
{
    for (size_t i = 0; i < b->ngroups; i++) {
        b->groups[i].n = 0;
        b->groups[i].bytes = 0;
    }
    b->ngroups = 0;
    if (b->index)
        memset(b->index, 0, b->index_cap * sizeof(*b->index));
    b->nparts = 0;
    b->rows = b->bytes = b->records = 0;
    b->opened_ms = 0;
    b->id = id;
    uc__arena_reset(&b->arena);
}

whs__bpart_t *whs__batch_find_part(whs__batch_t *b, int32_t partition)
{
    for (size_t i = 0; i < b->nparts; i++)
        if (b->parts[i].partition == partition)
            return &b->parts[i];
    return NULL;
}

whs__bpart_t *whs__batch_part(whs__batch_t *b, int32_t partition, int64_t base)
{
    whs__bpart_t *p = whs__batch_find_part(b, partition);
    if (p)
        return p;
    if (b->nparts == b->pcap) {
        size_t cap = b->pcap ? b->pcap * 2 : 8;
        whs__bpart_t *np = realloc(b->parts, cap * sizeof(*np));
        if (!np)
            return NULL;
        b->parts = np;
        b->pcap = cap;
    }
    p = &b->parts[b->nparts++];
    memset(p, 0, sizeof(*p));
    p->partition = partition;
    p->base = base;
    p->first = -1;
    p->next = base;
    return p;
}

void whs__batch_note(whs__batch_t *b, whs__bpart_t *part, int64_t now_ms, int64_t offset)
{
    if (!b->opened_ms) /* callers pass the time only for a batch's first record */
        b->opened_ms = now_ms ? now_ms : 1;
    if (part->first < 0)
        part->first = offset;
    part->next = offset + 1;
    b->records++;
}

static uint32_t group_hash(int32_t dt, int32_t bucket, int32_t partition)
{
    uint32_t h = (uint32_t)dt * 2654435761u;
    h ^= (uint32_t)bucket * 40503u + (uint32_t)partition * 97u;
    return h ^ (h >> 15);
}

static int index_grow(whs__batch_t *b)
{
    size_t cap = b->index_cap ? b->index_cap * 2 : 64;
    int32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    for (size_t g = 0; g < b->ngroups; g++) {
        const whs__group_t *gr = &b->groups[g];
        size_t i = group_hash(gr->dt, gr->bucket, gr->partition) & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = (int32_t)g + 1;
    }
    free(b->index);
    b->index = idx;
    b->index_cap = cap;
    return 0;
}

/* Appends a new empty group at the end of b->groups. */
static whs__group_t *group_new(whs__batch_t *b, int32_t dt, int32_t bucket, int32_t partition)
{
    if (b->ngroups == b->gcap) {
        size_t cap = b->gcap ? b->gcap * 2 : 16;
        whs__group_t *ng = realloc(b->groups, cap * sizeof(*ng));
        if (!ng)
            return NULL;
        memset(ng + b->gcap, 0, (cap - b->gcap) * sizeof(*ng));
        b->groups = ng;
        b->gcap = cap;
    }
    whs__group_t *g = &b->groups[b->ngroups++];
    g->dt = dt;
    g->bucket = bucket;
    g->partition = partition;
    g->n = 0;
    g->bytes = 0;
    return g;
}

static whs__group_t *group_for(whs__batch_t *b, int32_t dt, int32_t bucket, int32_t partition)
{
    if ((b->ngroups + 1) * 2 > b->index_cap && index_grow(b))
        return NULL;
    size_t mask = b->index_cap - 1;
    size_t i = group_hash(dt, bucket, partition) & mask;
    for (; b->index[i]; i = (i + 1) & mask) {
        whs__group_t *g = &b->groups[b->index[i] - 1];
        if (g->dt == dt && g->bucket == bucket && g->partition == partition)
            return g;
    }
    whs__group_t *g = group_new(b, dt, bucket, partition);
    if (g)
        b->index[i] = (int32_t)b->ngroups;
    return g;
}

int whs__batch_add(whs__batch_t *b, whs__row_t *row)
{
    int32_t bucket = b->group_by & WHS__BY_BUCKET ? row->bucket : -1;
    int32_t partition = b->group_by & WHS__BY_PARTITION ? row->partition : -1;
    whs__group_t *g = group_for(b, row->dt, bucket, partition);
    if (!g)
        return -1;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        whs__row_t **nr = realloc(g->rows, cap * sizeof(*nr));
        if (!nr)
            return -1;
        g->rows = nr;
        g->cap = cap;
    }
    g->rows[g->n++] = row;
    g->bytes += row->bytes;
    b->rows++;
    b->bytes += row->bytes;
    return 0;
}

/* Removes the rows @p drop says to; the caller re-sorts (empty groups go at sort time). */
static void filter_rows(whs__batch_t *b, int (*drop)(const whs__row_t *r, int64_t arg), int64_t arg)
{
    for (size_t g = 0; g < b->ngroups; g++) {
        whs__group_t *gr = &b->groups[g];
        size_t keep = 0;
        for (size_t i = 0; i < gr->n; i++) {
            whs__row_t *r = gr->rows[i];
            if (!drop(r, arg)) {
                gr->rows[keep++] = r;
            } else {
                gr->bytes -= r->bytes;
                b->rows--;
                b->bytes -= r->bytes;
            }
        }
        gr->n = keep;
    }
}

static int in_partition(const whs__row_t *r, int64_t partition)
{
    return r->partition == partition;
}

static int has_flags(const whs__row_t *r, int64_t flags)
{
    return (r->flags & (uint32_t)flags) != 0;
}

void whs__batch_compact(whs__batch_t *b, uint32_t flags)
{
    filter_rows(b, has_flags, flags);
}

void whs__batch_drop_partition(whs__batch_t *b, int32_t partition)
{
    filter_rows(b, in_partition, partition);
    for (size_t i = 0; i < b->nparts; i++) {
        if (b->parts[i].partition == partition) {
            b->parts[i] = b->parts[--b->nparts];
            break;
        }
    }
}

static int cmp_group(const void *a, const void *b)
{
    const whs__group_t *x = a, *y = b;
    if (x->dt != y->dt)
        return x->dt < y->dt ? -1 : 1;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

void whs__batch_sort(whs__batch_t *b)
{
    size_t keep = 0; /* drop groups emptied by whs__batch_drop_partition() */
    for (size_t g = 0; g < b->ngroups; g++) {
        if (b->groups[g].n == 0)
            continue;
        if (keep != g) { /* swap, so both row arrays stay owned */
            whs__group_t tmp = b->groups[keep];
            b->groups[keep] = b->groups[g];
            b->groups[g] = tmp;
        }
        keep++;
    }
    b->ngroups = keep;
    if (b->ngroups > 1)
        qsort(b->groups, b->ngroups, sizeof(*b->groups), cmp_group);
    if (b->index) /* the index no longer matches: the batch is sealed */
        memset(b->index, 0, b->index_cap * sizeof(*b->index));
}
