/*
 * watch.c - `ue-chaos watch`: samples the pipeline's progress until SIGTERM, so that run.sh can
 * tell when each stage stopped and resumed around a fault. One line per sample on stdout:
 *
 *   t_ms KIND v,v,...
 *
 * KIND raw: the raw topics' high watermarks, per partition (what the producers delivered);
 * enrich: the offsets the enrichment group committed on them (they move only when a
 * transaction commits); enriched: the enriched topic's high watermarks (aborted records and
 * markers count too); pg, ch: where each sink stands per partition of the enriched topic, from
 * the warehouse's whs_offsets; pg_rows, ch_rows: count(*) of the tables. t_ms: when the values
 * were read (Unix ms). -1: not known then (a partition's leader, the group coordinator or the
 * warehouse did not answer); that is a sample too, so a stall while a server is down shows.
 *
 * Each kind is sampled by its own thread, so a query that blocks while a broker or a server is
 * down delays only its own kind: its lines then come late, a gap in what is known, which
 * report.py does not take for a stall of the pipeline.
 */
#include "chaos.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_TOPICS = 16 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static long interval_ms = 1000;

/* One line "t KIND v,v,..": one write, so lines of different threads never mix. */
static void emit(const char *kind, const int64_t *v, int n)
{
    char line[4096];
    int len = snprintf(line, sizeof(line), "%" PRId64 " %s", chaos_now_ms(), kind);
    for (int i = 0; i < n && len < (int)sizeof(line) - 32; i++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%c%" PRId64, i ? ',' : ' ', v[i]);
    line[len++] = '\n';
    pthread_mutex_lock(&out_lock);
    fwrite(line, 1, (size_t)len, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static void nap(int64_t since)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int64_t left = interval_ms - (chaos_now_ms() - since); left > 0 && !stop; left -= 50)
        nanosleep(&ts, NULL);
}

typedef struct sampler {
    const char *kind;
    rd_kafka_t *rk; /* Kafka kinds */
    rd_kafka_topic_partition_list_t *parts;
    chaos_wh_t *wh;    /* warehouse kinds */
    const char *topic; /* the enriched topic, for whs_offsets */
    int nparts;
} sampler_t;

/* High watermarks (kinds raw, enriched): one ListOffsets request per leader, all at once,
 * so that a dead leader costs one timeout, not one per partition; -1 for a partition whose
 * leader did not answer. */
static void *ends_loop(void *opaque)
{
    sampler_t *s = opaque;
    int64_t *v = calloc((size_t)s->parts->cnt + 1, sizeof(int64_t));
    while (!stop) {
        int64_t t = chaos_now_ms();
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(s->parts);
        for (int i = 0; i < q->cnt; i++)
            q->elems[i].offset = -1; /* the timestamp "latest": the high watermark */
        rd_kafka_offsets_for_times(s->rk, q, 2000);
        for (int i = 0; i < q->cnt; i++)
            v[i] = q->elems[i].err || q->elems[i].offset < 0 ? -1 : q->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(q);
        emit(s->kind, v, s->parts->cnt);
        nap(t);
    }
    free(v);
    return NULL;
}

/* The enrichment group's committed offsets on the raw partitions (kind enrich). */
static void *committed_loop(void *opaque)
{
    sampler_t *s = opaque;
    int64_t *v = calloc((size_t)s->parts->cnt + 1, sizeof(int64_t));
    while (!stop) {
        int64_t t = chaos_now_ms();
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(s->parts);
        int ok = rd_kafka_committed(s->rk, q, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; i < q->cnt; i++)
            v[i] = !ok ? -1 : q->elems[i].offset >= 0 ? q->elems[i].offset : 0;
        emit(s->kind, v, q->cnt); /* -1: the coordinator did not answer */
        rd_kafka_topic_partition_list_destroy(q);
        nap(t);
    }
    free(v);
    return NULL;
}

/* A warehouse: its offsets per partition (kind pg or ch) and its row count (pg_rows, ch_rows). */
static void *warehouse_loop(void *opaque)
{
    sampler_t *s = opaque;
    int64_t *v = calloc((size_t)s->nparts + 1, sizeof(int64_t));
    int64_t *unknown = malloc(((size_t)s->nparts + 1) * sizeof(int64_t));
    for (int i = 0; i <= s->nparts; i++)
        unknown[i] = -1;
    char rows_kind[32];
    snprintf(rows_kind, sizeof(rows_kind), "%s_rows", s->kind);
    while (!stop) {
        int64_t t = chaos_now_ms();
        if (chaos_wh_offsets(s->wh, s->topic, v, s->nparts) == 0)
            emit(s->kind, v, s->nparts);
        else
            emit(s->kind, unknown, s->nparts); /* the server is down: that is a sample too */
        int64_t rows = chaos_wh_count(s->wh);
        emit(rows_kind, &rows, 1);
        nap(t);
    }
    free(v);
    free(unknown);
    return NULL;
}

static void add_topic(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, const char *topic)
{
    int n = -1;
    for (int tries = 0; n < 1 && tries < 30 && !stop; tries++)
        n = chaos_partitions(rk, topic, 2000);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    if (n < 1)
        fprintf(stderr, "ue-chaos watch: no partitions for %s\n", topic);
}

int chaos_watch(int argc, char **argv)
{
    static const struct option opts[] = {{"bootstrap", 1, 0, 'b'},   {"raw", 1, 0, 'r'},
                                         {"enriched", 1, 0, 'e'},    {"group", 1, 0, 'g'},
                                         {"pg", 1, 0, 'p'},          {"ch", 1, 0, 'c'},
                                         {"interval-ms", 1, 0, 'i'}, {0, 0, 0, 0}};
    const char *bootstrap = NULL, *enriched = "events.enriched", *group = "enrich";
    const char *pg = NULL, *ch = NULL;
    char *raw = NULL, *topics[MAX_TOPICS], err[512];
    int c;
    while ((c = getopt_long(argc, argv, "b:r:e:g:p:c:i:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 'r': raw = optarg; break;
        case 'e': enriched = optarg; break;
        case 'g': group = optarg; break;
        case 'p': pg = optarg; break;
        case 'c': ch = optarg; break;
        case 'i': interval_ms = atol(optarg); break;
        default: return 2;
        }
    }
    if (!bootstrap || !raw) {
        fprintf(stderr, "usage: ue-chaos watch -b HOSTS --raw T,T.. [--enriched T] [--group G] "
                        "[--pg URL] [--ch URL] [--interval-ms MS]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    rd_kafka_t *rk = chaos_consumer_new(bootstrap, NULL, 0, err, sizeof(err));
    rd_kafka_t *grk = rk ? chaos_consumer_new(bootstrap, group, 1, err, sizeof(err)) : NULL;
    if (!grk) {
        fprintf(stderr, "ue-chaos watch: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *rawl = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_list_t *enrl = rd_kafka_topic_partition_list_new(16);
    int n = chaos_split(raw, topics, MAX_TOPICS);
    for (int i = 0; i < n; i++)
        add_topic(rk, rawl, topics[i]);
    add_topic(rk, enrl, enriched);
    sampler_t s[5] = {
        {"raw", rk, rawl, NULL, NULL, 0},
        {"enrich", grk, rawl, NULL, NULL, 0},
        {"enriched", rk, enrl, NULL, NULL, 0},
        {"pg", NULL, NULL, pg ? chaos_wh_open(pg, "events") : NULL, enriched, enrl->cnt},
        {"ch", NULL, NULL, ch ? chaos_wh_open(ch, "events") : NULL, enriched, enrl->cnt}};
    void *(*loops[5])(void *) = {ends_loop, committed_loop, ends_loop, warehouse_loop,
                                 warehouse_loop};
    pthread_t th[5];
    int started[5] = {0};
    for (int i = 0; i < 5; i++)
        if (i < 3 || s[i].wh)
            started[i] = pthread_create(&th[i], NULL, loops[i], &s[i]) == 0;
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop) /* the signal may land on any thread: poll the flag */
        nanosleep(&tick, NULL);
    for (int i = 0; i < 5; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    chaos_wh_close(s[3].wh);
    chaos_wh_close(s[4].wh);
    rd_kafka_topic_partition_list_destroy(rawl);
    rd_kafka_topic_partition_list_destroy(enrl);
    rd_kafka_destroy_flags(grk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return 0;
}
