/*
 * verify.c - `ue-chaos verify`: after a chaos run, counts every tracked event at every stage
 * and prints one line per stage: tracked, count, distinct, missing, duplicated. Exit 0 only
 * when each stage holds each tracked event exactly once and nothing else; the raw topics may
 * hold an event more than once under its one id (the SDK's resend after a failed producer,
 * which libenrich's dedup drops).
 *
 *   ue-chaos verify -b HOSTS --events N --ids FILE:FIRST_SEQ ... --raw T,T.. \
 *       [--enriched T] [--dead-letter T] [--pg URL] [--ch URL] [--table events]
 *
 * What was tracked: the producers' id files (ue-track prints the id of each event it
 * tracked), line i of a file having seq FIRST_SEQ + i. Events carry the seq as a property,
 * so a line tracked twice (two ids, one seq) shows as a duplicate, and an id nobody tracked
 * as "unknown". The raw topics are read whole, the enriched and dead-letter topics
 * read_committed, the tables with their own clients.
 */
#include "chaos.h"
#include "enriched.pb-c.h"
#include "tally.h"
#include "userevents.pb-c.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOPICS = 16, MAX_IDS = 64 };

/* The seq property of an event; 0 when it has none. */
static int event_seq(const Userevents__Event *ev, int64_t *seq)
{
    for (size_t i = 0; ev && i < ev->n_properties; i++) {
        const Userevents__Event__PropertiesEntry *p = ev->properties[i];
        if (p->key && !strcmp(p->key, "seq") && p->value &&
            p->value->kind_case == USEREVENTS__VALUE__KIND_INT_VALUE) {
            *seq = p->value->int_value;
            return 1;
        }
    }
    return 0;
}

typedef enum { DECODE_EVENT, DECODE_ENRICHED, DECODE_ANY } decode_t;

typedef struct reading {
    tally_t *t;
    const idmap_t *ids;
    decode_t as;
    uint64_t undecodable;
} reading_t;

static void on_message(reading_t *r, const rd_kafka_message_t *m)
{
    int64_t seq = 0;
    int has_seq = 0;
    const uint8_t *id = NULL;
    Userevents__Event *ev = NULL;
    Userevents__EnrichedEvent *ee = NULL;
    if (r->as == DECODE_ENRICHED) {
        ee = userevents__enriched_event__unpack(NULL, m->len, m->payload);
        ev = ee ? ee->event : NULL;
    } else {
        ev = userevents__event__unpack(NULL, m->len, m->payload);
    }
    if (ev && ev->event_id.len == 16)
        id = ev->event_id.data;
    if (ev)
        has_seq = event_seq(ev, &seq);
    else
        r->undecodable++;
    uint64_t pos = pos_pack(pos_name(rd_kafka_topic_name(m->rkt)), m->partition, m->offset);
    tally_add(r->t, r->ids, id, seq, has_seq, pos);
    if (ee)
        userevents__enriched_event__free_unpacked(ee, NULL);
    else if (ev)
        userevents__event__free_unpacked(ev, NULL);
}

/* Index of (topic, partition) in @p l, or -1. */
static int index_of(const rd_kafka_topic_partition_list_t *l, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition == m->partition && !strcmp(l->elems[i].topic, topic))
            return i;
    return -1;
}

/* Reads @p topics from their beginning to their end (read_committed: the last stable
 * offset), every record to the tally. 0, or -1 when stuck for 60 s (reason printed). */
static int read_topics(const char *bootstrap, char **topics, int n, int committed, reading_t *r)
{
    char err[512];
    rd_kafka_t *rk = chaos_consumer_new(bootstrap, NULL, committed, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "ue-chaos verify: %s\n", err);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(32);
    for (int i = 0; i < n; i++) {
        int parts = chaos_partitions(rk, topics[i], 10000);
        for (int p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(l, topics[i], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (parts < 1)
            fprintf(stderr, "ue-chaos verify: topic %s: no partitions (not there?)\n", topics[i]);
    }
    rd_kafka_assign(rk, l);
    char *at_end = calloc((size_t)l->cnt + 1, 1);
    int ends = 0, rc = 0;
    int64_t quiet_since = chaos_now_ms();
    while (ends < l->cnt) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            if (chaos_now_ms() - quiet_since > 60000) {
                fprintf(stderr, "ue-chaos verify: %d of %d partitions never reached their end\n",
                        l->cnt - ends, l->cnt);
                rc = -1;
                break;
            }
            continue;
        }
        quiet_since = chaos_now_ms();
        int i = index_of(l, m);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (i >= 0 && !at_end[i]) {
                at_end[i] = 1;
                ends++;
            }
        } else if (m->err) {
            fprintf(stderr, "ue-chaos verify: %s\n", rd_kafka_message_errstr(m));
        } else {
            on_message(r, m);
        }
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return rc;
}

static void on_row(const char *event_id, int64_t seq, int has_seq, int partition, int64_t offset,
                   void *opaque)
{
    reading_t *r = opaque;
    uint8_t id[16];
    int ok = parse_uuid(event_id, id) == 0;
    tally_add(r->t, r->ids, ok ? id : NULL, seq, has_seq,
              pos_pack(pos_name("source"), partition, offset));
}

static int read_table(const char *url, const char *table, reading_t *r)
{
    char err[512];
    chaos_wh_t *w = chaos_wh_open(url, table);
    int rc = chaos_wh_rows(w, on_row, r, err, sizeof(err));
    if (rc)
        fprintf(stderr, "ue-chaos verify: %s: %s\n", r->t->name, err);
    chaos_wh_close(w);
    return rc;
}

typedef struct verify_opts {
    const char *bootstrap, *enriched, *dead_letter, *pg, *ch, *table;
    char *raw;
    const char *ids[MAX_IDS];
    int64_t first[MAX_IDS], count[MAX_IDS]; /* each id file's seqs: [first, first + count) */
    int nids;
    uint64_t events;
} verify_opts_t;

static int parse(int argc, char **argv, verify_opts_t *o)
{
    static const struct option opts[] = {{"bootstrap", 1, 0, 'b'}, {"events", 1, 0, 'n'},
                                         {"ids", 1, 0, 'i'},       {"raw", 1, 0, 'r'},
                                         {"enriched", 1, 0, 'e'},  {"dead-letter", 1, 0, 'd'},
                                         {"pg", 1, 0, 'p'},        {"ch", 1, 0, 'c'},
                                         {"table", 1, 0, 't'},     {0, 0, 0, 0}};
    int c;
    *o = (verify_opts_t){
        .enriched = "events.enriched", .dead_letter = "events.dead_letter", .table = "events"};
    while ((c = getopt_long(argc, argv, "b:n:i:r:e:d:p:c:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 'n': o->events = strtoull(optarg, NULL, 10); break;
        case 'i':
            if (o->nids < MAX_IDS)
                o->ids[o->nids++] = optarg;
            break;
        case 'r': o->raw = optarg; break;
        case 'e': o->enriched = optarg; break;
        case 'd': o->dead_letter = optarg; break;
        case 'p': o->pg = optarg; break;
        case 'c': o->ch = optarg; break;
        case 't': o->table = optarg; break;
        default: return -1;
        }
    }
    if (!o->bootstrap || !o->raw || !o->events || !o->nids) {
        fprintf(stderr, "usage: ue-chaos verify -b HOSTS --events N --ids FILE:FIRST_SEQ... "
                        "--raw T,T.. [--enriched T] [--dead-letter T] [--pg URL] [--ch URL]\n");
        return -1;
    }
    return 0;
}

/* Loads the id files; the number of ids, or -1. */
static int64_t load_ids(idmap_t *m, verify_opts_t *o)
{
    int64_t total = 0;
    for (int i = 0; i < o->nids; i++) {
        char file[1024];
        snprintf(file, sizeof(file), "%s", o->ids[i]);
        char *colon = strrchr(file, ':');
        if (!colon) {
            fprintf(stderr, "ue-chaos verify: --ids wants FILE:FIRST_SEQ, got %s\n", o->ids[i]);
            return -1;
        }
        *colon = '\0';
        o->first[i] = strtoll(colon + 1, NULL, 10);
        int64_t n = idmap_load(m, file, o->first[i]);
        if (n < 0)
            return -1;
        o->count[i] = n;
        total += n;
    }
    return total;
}

/* Where a stage's missing seqs were tracked: one line per producer run that lost any. */
static void missing_by_run(const tally_t *t, const verify_opts_t *o)
{
    for (int i = 0; i < o->nids; i++) {
        int64_t missing = 0, first = -1, last = -1;
        for (int64_t s = o->first[i]; s < o->first[i] + o->count[i] && (uint64_t)s < t->n; s++)
            if (!t->copies[s]) {
                missing++;
                first = first < 0 ? s : first;
                last = s;
            }
        if (missing)
            printf("    %" PRId64 " of the %" PRId64 " events of %s missing: seqs %" PRId64
                   " to %" PRId64 " had some\n",
                   missing, o->count[i], o->ids[i], first, last);
    }
}

int chaos_verify(int argc, char **argv)
{
    verify_opts_t o;
    char *raw[MAX_TOPICS], *one[1];
    if (parse(argc, argv, &o))
        return 2;
    idmap_t *ids = idmap_new(o.events);
    int64_t tracked = load_ids(ids, &o);
    if (tracked < 0)
        return 2;
    int nraw = chaos_split(o.raw, raw, MAX_TOPICS), bad = 0;
    enum { RAW, ENRICHED, PG, CH, DLQ, NSTAGES };
    tally_t t[NSTAGES];
    tally_init(&t[RAW], "raw topics", o.events);
    tally_init(&t[ENRICHED], o.enriched, o.events);
    tally_init(&t[PG], "postgres table", o.events);
    tally_init(&t[CH], "clickhouse table", o.events);
    tally_init(&t[DLQ], o.dead_letter, o.events);
    reading_t r[NSTAGES] = {{&t[RAW], ids, DECODE_EVENT, 0},
                            {&t[ENRICHED], ids, DECODE_ENRICHED, 0},
                            {&t[PG], ids, DECODE_ANY, 0},
                            {&t[CH], ids, DECODE_ANY, 0},
                            {&t[DLQ], ids, DECODE_EVENT, 0}};
    bad |= read_topics(o.bootstrap, raw, nraw, 0, &r[RAW]) != 0;
    one[0] = (char *)o.enriched;
    bad |= read_topics(o.bootstrap, one, 1, 1, &r[ENRICHED]) != 0;
    one[0] = (char *)o.dead_letter;
    bad |= read_topics(o.bootstrap, one, 1, 1, &r[DLQ]) != 0;
    if (o.pg)
        bad |= read_table(o.pg, o.table, &r[PG]) != 0;
    if (o.ch)
        bad |= read_table(o.ch, o.table, &r[CH]) != 0;

    printf("\ntracked: %" PRId64 " event ids from %d producer runs (%" PRIu64
           " events generated)\n",
           tracked, o.nids, o.events);
    if ((uint64_t)tracked != o.events || idmap_seq_reused(ids)) {
        printf("  PRODUCERS: %" PRIu64 " seqs tracked twice, %" PRId64
               " generated lines untracked\n",
               idmap_seq_reused(ids), (int64_t)o.events - tracked);
        bad = 1;
    }
    tally_header(stdout);
    for (int s = RAW; s <= CH; s++) {
        if ((s == PG && !o.pg) || (s == CH && !o.ch))
            continue;
        bad |= tally_line(stdout, &t[s], (uint64_t)tracked, s == RAW) != 0;
        missing_by_run(&t[s], &o);
        tally_details(stdout, &t[s], &t[RAW]);
        if (r[s].undecodable)
            printf("    %" PRIu64 " records could not be decoded\n", r[s].undecodable);
    }
    printf("%-28s %9s %9" PRIu64 "  %s\n", o.dead_letter, "-", t[DLQ].records,
           t[DLQ].records ? "MISMATCH (dead letters)" : "ok");
    bad |= t[DLQ].records != 0;
    for (int s = 0; s < NSTAGES; s++)
        tally_free(&t[s]);
    idmap_destroy(ids);
    printf("verdict: %s\n", bad ? "FAIL: events lost, duplicated or unaccounted for"
                                : "every tracked event exactly once at every stage");
    return bad ? 1 : 0;
}
