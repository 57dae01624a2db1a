/*
 * bench_util.h - what the benchmarks share: the cluster to use, librdkafka settings equal on
 * both sides, fresh topics, the benchmark's events, their exact encoded bytes for the raw
 * librdkafka peer, and the result rows run.sh turns into the table.
 *
 * Each benchmark measures the SDK beside raw librdkafka in the same process and run, so the
 * ratio is meaningful on a noisy machine even when the absolute figures are not. The peer gets
 * the very bytes the SDK would send (same Protobuf payload, key and headers), produced by the
 * SDK's own encoder outside the timed region: that is why this file reaches two internals,
 * ue__event_encode() and the client's context (the static library exports them to tests).
 *
 * Header-only (static inline): the Makefile makes each test/bench .c file a binary.
 */
#ifndef UE_BENCH_UTIL_H
#define UE_BENCH_UTIL_H

#include "client.h"
#include "event.h"
#include "record.h"
#include "userevents.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_TYPES 3
#define BENCH_USERS 1000
#define BENCH_PATHS 64
#define BENCH_XSTR(x) BENCH_STR(x)
#define BENCH_STR(x) #x
#define BENCH_ANON_ID "0190c2a4-7e1f-7b3c-9d2e-5f6a7b8c9d0e" /* fixed: payloads comparable */

static const char *const bench_types[BENCH_TYPES] = {"page_view", "add_to_cart", "checkout"};

/* ---- small things ---------------------------------------------------------------------------- */

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of every thread of this process (the SDK's or librdkafka's threads included). */
static inline int64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time of the calling thread only: immune to being preempted on a busy machine. */
static inline int64_t bench_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void bench_die(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why);
    exit(2);
}

static inline long bench_env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of @p n samples (sorts them in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 0 when UE_BENCH_ONLY names other kinds (e.g. "sdk" or "raw,spool"): to profile one side. */
static inline int bench_selected(const char *kind)
{
    const char *only = getenv("UE_BENCH_ONLY");
    if (!only || !*only)
        return 1;
    size_t len = strlen(kind);
    for (const char *p = strstr(only, kind); p; p = strstr(p + 1, kind))
        if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return 1;
    return 0;
}

/* The broker under test, or NULL: librdkafka's mock cluster (development only). */
static inline const char *bench_bootstrap(void)
{
    const char *b = getenv("KAFKA_BOOTSTRAP");
    return b && *b ? b : NULL;
}

/* A prefix no other run uses; topics are "<prefix>-<tag>.<type>". */
static inline const char *bench_run_prefix(void)
{
    static char buf[64];
    if (!buf[0])
        snprintf(buf, sizeof(buf), "ue-bench-%ld-%d", (long)time(NULL), (int)getpid());
    return buf;
}

static inline void bench_topic(char *out, size_t n, const char *tag, int type)
{
    snprintf(out, n, "%s-%s.%s", bench_run_prefix(), tag, bench_types[type]);
}

/* ---- librdkafka settings, equal for the SDK and the raw peer --------------------------------- */

/* The SDK's own librdkafka defaults (conf.c), set explicitly on both sides. */
static const char *const bench_kafka_settings[][2] = {
    {"enable.idempotence", "true"},    {"acks", "all"},
    {"compression.type", "zstd"},      {"linger.ms", "5"},
    {"partitioner", "murmur2_random"}, {"message.timeout.ms", "0"},
};

static inline void bench_raw_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        bench_die(name, errstr);
}

static inline void bench_sdk_set(ue_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (ue_conf_set(conf, name, value, errstr, sizeof(errstr)) != UE_CONF_OK)
        bench_die(name, errstr);
}

/* Sets librdkafka property @p name on both kinds of configuration (either may be NULL). */
static inline void bench_kafka_set(ue_conf_t *sdk, rd_kafka_conf_t *raw, const char *name,
                                   const char *value)
{
    char key[256];
    snprintf(key, sizeof(key), "kafka.%s", name);
    if (sdk)
        bench_sdk_set(sdk, key, value);
    if (raw)
        bench_raw_set(raw, name, value);
}

static inline void bench_kafka_common(ue_conf_t *sdk, rd_kafka_conf_t *raw)
{
    const char *b = bench_bootstrap();
    if (b)
        bench_kafka_set(sdk, raw, "bootstrap.servers", b);
    else
        bench_kafka_set(sdk, raw, "test.mock.num.brokers", "1");
    for (size_t i = 0; i < sizeof(bench_kafka_settings) / sizeof(bench_kafka_settings[0]); i++)
        bench_kafka_set(sdk, raw, bench_kafka_settings[i][0], bench_kafka_settings[i][1]);
}

/* ---- fresh topics ---------------------------------------------------------------------------- */

/* Waits until every topic has a leader for each partition, as seen by @p rk. */
static inline void bench_wait_leaders(rd_kafka_t *rk, char (*names)[256], int n)
{
    for (int i = 0; i < n; i++) {
        int64_t deadline = bench_now_ns() + INT64_C(30000000000);
        for (;;) {
            const struct rd_kafka_metadata *md = NULL;
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, names[i], NULL);
            int ok = rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                     md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
            for (int p = 0; ok && p < md->topics[0].partition_cnt; p++)
                ok = md->topics[0].partitions[p].leader >= 0;
            if (md)
                rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(rkt);
            if (ok)
                break;
            if (bench_now_ns() > deadline)
                bench_die(names[i], "no leader after 30 s");
            usleep(100 * 1000);
        }
    }
}

/* Creates @p n topics with @p partitions each (-1: the broker's default) and the default
 * replication, and waits for their leaders. With the mock cluster topics appear on first use:
 * nothing to do. */
static inline void bench_create_topics_p(char (*names)[256], int n, int partitions)
{
    char errstr[512];
    if (!bench_bootstrap())
        return;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_raw_set(conf, "bootstrap.servers", bench_bootstrap());
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        bench_die("admin client", errstr);
    rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof(*nt));
    for (int i = 0; i < n; i++)
        if (!(nt[i] = rd_kafka_NewTopic_new(names[i], partitions, -1, errstr, sizeof(errstr))))
            bench_die(names[i], errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (!res)
        bench_die("CreateTopics", ev ? rd_kafka_event_error_string(ev) : "timed out");
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++)
        if (rd_kafka_topic_result_error(tr[i]))
            bench_die(rd_kafka_topic_result_name(tr[i]), rd_kafka_topic_result_error_string(tr[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    free(nt);
    bench_wait_leaders(rk, names, n);
    rd_kafka_destroy(rk);
}

static inline void bench_create_topics(char (*names)[256], int n)
{
    bench_create_topics_p(names, n, -1);
}

/*
 * Creates, before any timing, the topics of every side (@p kind_tag) and repetition: tag
 * "<prefix><kind><rep>", each with BENCH_TYPES topics. At most 16 reps and 4 kinds.
 */
static inline void bench_create_run_topics(const char *prefix, const char *const *kind_tag,
                                           int kinds, int reps)
{
    static char names[4 * 16 * BENCH_TYPES][256];
    char tag[64];
    int n = 0;
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < kinds; k++) {
            snprintf(tag, sizeof(tag), "%s%s%d", prefix, kind_tag[k], r);
            for (int t = 0; t < BENCH_TYPES; t++)
                bench_topic(names[n++], sizeof(names[0]), tag, t);
        }
    bench_create_topics(names, n);
}

/* ---- the benchmark's events ------------------------------------------------------------------ */

/* Strings made once, so the timed loops measure the SDK and not snprintf. */
typedef struct bench_strings {
    char users[BENCH_USERS][16];
    char paths[BENCH_PATHS][16];
} bench_strings_t;

static inline void bench_strings_init(bench_strings_t *s)
{
    for (int i = 0; i < BENCH_USERS; i++)
        snprintf(s->users[i], sizeof(s->users[i]), "user%04d", i);
    for (int i = 0; i < BENCH_PATHS; i++)
        snprintf(s->paths[i], sizeof(s->paths[i]), "/p/%d", 1000 + i * 37);
}

/* Builds event @p i into @p ev the cheap way: reset, user id, three properties. About 165
 * bytes of Protobuf once the SDK adds event id, timestamps, anonymous id and context. */
static inline void bench_build(ue_event_t *ev, const bench_strings_t *s, long i)
{
    ue_event_reset(ev, bench_types[i % BENCH_TYPES]);
    ue_event_set_user_id(ev, s->users[(i / BENCH_TYPES) % BENCH_USERS]);
    ue_event_prop_string(ev, "path", s->paths[i % BENCH_PATHS]);
    ue_event_prop_int(ev, "qty", 1 + i % 5);
    ue_event_prop_double(ev, "price", 9.99 + (double)(i % 100));
}

/* One message for the raw peer: exactly what the SDK's transport hands librdkafka. */
typedef struct bench_msg {
    int type;
    uint8_t id[16];
    const char *key; /* into bench_strings_t */
    size_t key_len;
    uint8_t *payload; /* into bench_msgs_t.buf */
    size_t len;
} bench_msg_t;

typedef struct bench_msgs {
    bench_msg_t *m;
    long n;
    uint8_t *buf;
    size_t bytes; /* total payload bytes */
} bench_msgs_t;

/* Encodes @p n events with the SDK's encoder, as client @p c would (its context and
 * anonymous id), and appends the sent_at field like the transport does at send time. */
static inline void bench_msgs_make(bench_msgs_t *out, ue_client_t *c, const bench_strings_t *s,
                                   long n)
{
    ue_event_t *ev = ue_event_new("x");
    size_t cap = (size_t)n * 256, off = 0;
    out->m = calloc((size_t)n, sizeof(*out->m));
    out->buf = malloc(cap);
    out->n = n;
    if (!ev || !out->m || !out->buf)
        bench_die("payloads", "out of memory");
    for (long i = 0; i < n; i++) {
        ue_err_t err;
        bench_build(ev, s, i);
        ue__record_t *r = ue__event_encode(ev, &c->context, NULL, c->anonymous_id, 1 << 20, &err);
        if (!r)
            bench_die("encode", ue_err2str(err));
        size_t len = ue__record_stamp_sent_at(r, (int64_t)time(NULL) * 1000);
        if (off + len > cap)
            bench_die("payloads", "larger than 256 bytes each");
        bench_msg_t *m = &out->m[i];
        m->type = (int)(i % BENCH_TYPES);
        memcpy(m->id, r->event_id, 16);
        m->key = s->users[(i / BENCH_TYPES) % BENCH_USERS];
        m->key_len = strlen(m->key);
        m->payload = out->buf + off;
        m->len = len;
        memcpy(m->payload, ue__record_payload(r), len);
        off += len;
        free(r);
    }
    out->bytes = off;
    ue_event_destroy(ev);
}

static inline void bench_msgs_free(bench_msgs_t *m)
{
    free(m->m);
    free(m->buf);
}

/* Produces one message the way the SDK's transport does: same key and headers. */
static inline rd_kafka_resp_err_t bench_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                                                const bench_msg_t *m, int msgflags)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    rd_kafka_header_add(hdrs, "ue-event-id", -1, m->id, 16);
    rd_kafka_header_add(hdrs, "ue-schema-version", -1, BENCH_XSTR(UE_SCHEMA_VERSION), -1);
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE(m->payload, m->len),
                          RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_END);
    if (err)
        rd_kafka_headers_destroy(hdrs);
    return err;
}

/* ---- raw producer with delivery counting ----------------------------------------------------- */

typedef struct bench_dr {
    long ok, failed;
    rd_kafka_resp_err_t first_err;
} bench_dr_t;

static void bench_on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    bench_dr_t *dr = opaque;
    (void)rk;
    if (!m->err) {
        dr->ok++;
        return;
    }
    if (!dr->failed++)
        dr->first_err = m->err;
}

/* A raw producer with the SDK's librdkafka settings plus @p extra (name, value, ..., NULL). */
static inline rd_kafka_t *bench_raw_new(bench_dr_t *dr, const char *const *extra)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_kafka_common(NULL, conf);
    for (; extra && extra[0]; extra += 2)
        bench_raw_set(conf, extra[0], extra[1]);
    rd_kafka_conf_set_opaque(conf, dr);
    rd_kafka_conf_set_dr_msg_cb(conf, bench_on_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        bench_die("rd_kafka_new", errstr);
    return rk;
}

/* Warms a raw producer up (connection, producer id, metadata): one message per topic. */
static inline void bench_raw_warmup(rd_kafka_t *rk, rd_kafka_topic_t **rkts, bench_dr_t *dr,
                                    const bench_msgs_t *msgs)
{
    for (int t = 0; t < BENCH_TYPES; t++)
        if (bench_produce(rk, rkts[t], &msgs->m[t], RD_KAFKA_MSG_F_COPY))
            bench_die("warm-up", "produce failed");
    rd_kafka_flush(rk, 60000);
    if (dr->ok != BENCH_TYPES)
        bench_die("warm-up", dr->failed ? rd_kafka_err2str(dr->first_err) : "not delivered");
    dr->ok = 0;
}

/* ---- SDK client ------------------------------------------------------------------------------ */

/* A client on topics "<prefix>-<tag>.{type}" with the shared settings plus @p extra. */
static inline ue_client_t *bench_sdk_new(const char *tag, const char *const *extra)
{
    char errstr[512], tmpl[256];
    ue_conf_t *conf = ue_conf_new();
    bench_kafka_common(conf, NULL);
    snprintf(tmpl, sizeof(tmpl), "%s-%s.{type}", bench_run_prefix(), tag);
    bench_sdk_set(conf, "topic.template", tmpl);
    bench_sdk_set(conf, "anonymous.id", BENCH_ANON_ID);
    for (; extra && extra[0]; extra += 2)
        bench_sdk_set(conf, extra[0], extra[1]);
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        bench_die("ue_client_new", errstr);
    return c;
}

/* Warms a client up like bench_raw_warmup(): one event per topic, flushed. */
static inline void bench_sdk_warmup(ue_client_t *c, const bench_strings_t *s)
{
    ue_event_t *ev = ue_event_new("x");
    for (int t = 0; t < BENCH_TYPES; t++) {
        bench_build(ev, s, t);
        if (ue_track(c, ev) != UE_OK)
            bench_die("warm-up", "ue_track failed");
    }
    ue_event_destroy(ev);
    if (ue_flush(c, 60000) != UE_OK || ue_stat(c, UE_STAT_DELIVERED) != BENCH_TYPES)
        bench_die("warm-up", "events not delivered within 60 s");
}

/* ---- result rows ----------------------------------------------------------------------------- */

/* One table row for run.sh: tab-separated after "ROW". */
static inline void bench_row(const char *name, const char *unit, double fig, double peer,
                             const char *goal, int meets)
{
    printf("ROW\t%s\t%.0f %s\t%.0f %s\t%.2f\t%s\t%s\n", name, fig, unit, peer, unit, fig / peer,
           goal, meets ? "yes" : "no");
    fflush(stdout);
}

#endif
