/*
 * tally.h - the verifier's books: which event ids were tracked with which seq, and per stage
 * how many copies of each seq arrived and where the first one was.
 */
#ifndef CHAOS_TALLY_H
#define CHAOS_TALLY_H

#include <stdint.h>
#include <stdio.h>

/* The tracked events: event id -> seq, from the producers' id files. */
typedef struct idmap idmap_t;

idmap_t *idmap_new(uint64_t expected);
/* Adds the ids of FILE (one 8-4-4-4-12 id a line), line i having seq first + i. Returns the
 * count added, -1 when the file cannot be read (reason printed). */
int64_t idmap_load(idmap_t *m, const char *file, int64_t first);
/* The seq an id was tracked with, or -1. */
int64_t idmap_seq(const idmap_t *m, const uint8_t id[16]);
uint64_t idmap_count(const idmap_t *m);
/* Seqs that were tracked under two ids (a producer tracked a line twice). */
uint64_t idmap_seq_reused(const idmap_t *m);
void idmap_destroy(idmap_t *m);

/* Parses "8-4-4-4-12" hex into 16 bytes; 0, or -1 when it is not an id. */
int parse_uuid(const char *s, uint8_t out[16]);

/* A record's position, packed: names[] index (8 bits), partition (12), offset (44). */
uint64_t pos_pack(int name, int partition, int64_t offset);
void pos_format(uint64_t pos, char *out, size_t size);
/* Registers a name for positions ("events.click", "src" ...); returns its index. */
int pos_name(const char *name);

typedef struct tally {
    char name[64];
    uint64_t n; /* seqs expected: 0 .. n-1 */
    uint64_t records, unknown, mismatch;
    uint8_t *copies;   /* per seq, saturating */
    uint64_t *first;   /* per seq: position of the first copy */
    char dups[8][256]; /* the first duplicates found, described */
    int ndups;
} tally_t;

void tally_init(tally_t *t, const char *name, uint64_t n);
/* One record: its event id (NULL when unreadable), the seq property it carries (has_seq 0:
 * none) and where it was found. */
void tally_add(tally_t *t, const idmap_t *m, const uint8_t *id, int64_t seq, int has_seq,
               uint64_t pos);
void tally_free(tally_t *t);

/* Prints the header, one stage's line, and its details; the line returns 0 when the stage
 * holds every seq exactly once and nothing else, or, with @p resends_ok (the raw topics),
 * every seq at least once and its copies under the one id it was tracked with: the SDK sends
 * again what a failed producer may have delivered, and libenrich's dedup drops the copies.
 * @p raw locates missing seqs. */
void tally_header(FILE *out);
int tally_line(FILE *out, const tally_t *t, uint64_t tracked, int resends_ok);
void tally_details(FILE *out, const tally_t *t, const tally_t *raw);

#endif
