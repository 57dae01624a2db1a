/*
 * tally.c - the verifier's books (tally.h): an open-addressing table of the tracked event ids,
 * and per stage a copy count and first position per seq. For 1,000,000 events: about 40 MB.
 */
#include "tally.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint8_t id[16];
    int64_t seq; /* -1: empty */
} slot_t;

struct idmap {
    slot_t *slots;
    uint64_t mask, count, reused;
    uint8_t *seq_seen; /* per seq below expected: tracked already */
    uint64_t expected;
};

static uint64_t id_hash(const uint8_t id[16])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
}

idmap_t *idmap_new(uint64_t expected)
{
    idmap_t *m = calloc(1, sizeof(*m));
    uint64_t cap = 1024;
    while (cap < expected * 2 + 16)
        cap *= 2;
    m->slots = malloc(cap * sizeof(slot_t));
    for (uint64_t i = 0; i < cap; i++)
        m->slots[i].seq = -1;
    m->mask = cap - 1;
    m->expected = expected;
    m->seq_seen = calloc(expected + 1, 1);
    return m;
}

static slot_t *find(const idmap_t *m, const uint8_t id[16])
{
    for (uint64_t i = id_hash(id) & m->mask;; i = (i + 1) & m->mask)
        if (m->slots[i].seq < 0 || !memcmp(m->slots[i].id, id, 16))
            return &m->slots[i];
}

int parse_uuid(const char *s, uint8_t out[16])
{
    int n = 0;
    for (; *s && n < 32; s++) {
        if (*s == '-')
            continue;
        if (!isxdigit((unsigned char)*s))
            return -1;
        int v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32 && (*s == '\0' || isspace((unsigned char)*s)) ? 0 : -1;
}

int64_t idmap_load(idmap_t *m, const char *file, int64_t first)
{
    FILE *f = fopen(file, "r");
    char line[128];
    uint8_t id[16];
    int64_t i = 0;
    if (!f) {
        perror(file);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (parse_uuid(line, id)) {
            fprintf(stderr, "ue-chaos verify: %s:%" PRId64 ": not an event id\n", file, i + 1);
            continue;
        }
        int64_t seq = first + i++;
        slot_t *s = find(m, id);
        if (s->seq >= 0)
            fprintf(stderr, "ue-chaos verify: id on line %" PRId64 " of %s tracked twice\n", i,
                    file);
        memcpy(s->id, id, 16);
        s->seq = seq;
        m->count++;
        if (seq >= 0 && (uint64_t)seq < m->expected && m->seq_seen[seq]++)
            m->reused++;
        if (m->count * 2 > m->mask) {
            fprintf(stderr, "ue-chaos verify: more ids than expected\n");
            break;
        }
    }
    fclose(f);
    return i;
}

int64_t idmap_seq(const idmap_t *m, const uint8_t id[16])
{
    return find(m, id)->seq;
}

uint64_t idmap_count(const idmap_t *m)
{
    return m->count;
}

uint64_t idmap_seq_reused(const idmap_t *m)
{
    return m->reused;
}

void idmap_destroy(idmap_t *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->seq_seen);
    free(m);
}

static char names[256][64];
static int nnames;

int pos_name(const char *name)
{
    for (int i = 0; i < nnames; i++)
        if (!strcmp(names[i], name))
            return i;
    if (nnames == 255)
        return 255;
    snprintf(names[nnames], sizeof(names[0]), "%s", name);
    return nnames++;
}

uint64_t pos_pack(int name, int partition, int64_t offset)
{
    return ((uint64_t)(name & 0xff) << 56) | ((uint64_t)(partition & 0xfff) << 44) |
           ((uint64_t)offset & ((1ull << 44) - 1));
}

void pos_format(uint64_t pos, char *out, size_t size)
{
    int name = (int)(pos >> 56), part = (int)((pos >> 44) & 0xfff);
    snprintf(out, size, "%s[%d]@%" PRIu64, name < nnames ? names[name] : "?", part,
             (uint64_t)(pos & ((1ull << 44) - 1)));
}

void tally_init(tally_t *t, const char *name, uint64_t n)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n = n;
    t->copies = calloc(n + 1, 1);
    t->first = calloc(n + 1, sizeof(uint64_t));
}

void tally_free(tally_t *t)
{
    free(t->copies);
    free(t->first);
    t->copies = NULL;
    t->first = NULL;
}

void tally_add(tally_t *t, const idmap_t *m, const uint8_t *id, int64_t seq, int has_seq,
               uint64_t pos)
{
    int64_t tracked = id ? idmap_seq(m, id) : -1;
    t->records++;
    if (tracked < 0)
        t->unknown++;
    else if (has_seq && seq != tracked)
        t->mismatch++;
    int64_t key = has_seq ? seq : tracked;
    if (key < 0 || (uint64_t)key >= t->n)
        return;
    if (t->copies[key] < 255)
        t->copies[key]++;
    if (t->copies[key] == 1) {
        t->first[key] = pos;
    } else if (t->ndups < 8) {
        char a[64], b[64];
        pos_format(pos, a, sizeof(a));
        pos_format(t->first[key], b, sizeof(b));
        snprintf(t->dups[t->ndups++], sizeof(t->dups[0]),
                 "seq %" PRId64 " again at %s (first copy at %s)%s", key, a, b,
                 tracked < 0 ? ", under an untracked id" : "");
    }
}

void tally_header(FILE *out)
{
    fprintf(out, "%-28s %9s %9s %9s %8s %10s %8s %8s\n", "stage", "tracked", "count", "distinct",
            "missing", "duplicated", "unknown", "id!=seq");
}

int tally_line(FILE *out, const tally_t *t, uint64_t tracked, int resends_ok)
{
    uint64_t distinct = 0, dup = 0;
    for (uint64_t s = 0; s < t->n; s++) {
        distinct += t->copies[s] > 0;
        dup += t->copies[s] > 1;
    }
    uint64_t missing = t->n - distinct;
    int whole = distinct == tracked && !missing && !t->unknown && !t->mismatch;
    int once = whole && t->records == tracked && !dup;
    int ok = once || (whole && resends_ok);
    fprintf(out,
            "%-28s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %8" PRIu64 " %10" PRIu64 " %8" PRIu64
            " %8" PRIu64 "  %s\n",
            t->name, tracked, t->records, distinct, missing, dup, t->unknown, t->mismatch,
            once ? "ok" : ok ? "ok (resent under the same ids: dedup drops them)" : "MISMATCH");
    return ok ? 0 : -1;
}

/* Missing seqs in runs ("a-b"), the first few, each with where the raw topic had it. */
static void print_missing(FILE *out, const tally_t *t, const tally_t *raw)
{
    int shown = 0;
    for (uint64_t s = 0; s < t->n && shown < 12; s++) {
        if (t->copies[s])
            continue;
        uint64_t e = s;
        while (e + 1 < t->n && !t->copies[e + 1])
            e++;
        char where[64] = "not in the raw topics";
        if (raw && raw != t && raw->copies[s])
            pos_format(raw->first[s], where, sizeof(where));
        if (e > s)
            fprintf(out,
                    "    missing seqs %" PRIu64 "-%" PRIu64 " (%" PRIu64 "), the first one at %s\n",
                    s, e, e - s + 1, where);
        else
            fprintf(out, "    missing seq %" PRIu64 ", at %s\n", s, where);
        shown++;
        s = e;
    }
}

void tally_details(FILE *out, const tally_t *t, const tally_t *raw)
{
    print_missing(out, t, raw);
    for (int i = 0; i < t->ndups; i++)
        fprintf(out, "    %s\n", t->dups[i]);
}
