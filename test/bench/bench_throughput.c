/*
 * bench_throughput.c - end-to-end throughput to Kafka: events per second from the first
 * ue_track() until ue_flush() returns (every event acknowledged), with and without the disk
 * spool, beside raw librdkafka producing the same bytes (payload, key, headers) with the same
 * settings (idempotent, acks=all, zstd, linger.ms=5, murmur2_random) until its last delivery
 * report, in the same run.
 *
 * The SDK side pays for building and encoding every event inside the clock; the raw side
 * produces bytes encoded beforehand (copying them, RD_KAFKA_MSG_F_COPY), serves delivery
 * reports every 1024 messages and waits on rd_kafka_poll() when its queue is full, as a
 * careful librdkafka application does. The SDK's queue holds a whole run (queue.max.events =
 * N) so that nothing drops; both sides keep librdkafka's own queue limits at their defaults.
 * Every run is a fresh producer on fresh topics, warmed up before the clock starts.
 *
 * Beside events/s it prints this process's CPU per event (all threads): the broker runs on the
 * same 2 cores, so CPU spent by the client is throughput the broker does not get.
 *
 * Environment: UE_BENCH_ONLY (kinds to run, e.g. "sdk": profiling; no table then),
 * UE_BENCH_EVENTS (500000), UE_BENCH_REPS (5), KAFKA_BOOTSTRAP (else librdkafka's
 * mock cluster, for development only).
 */
#include "bench_util.h"

#include <ftw.h>

#define GOAL_RATIO 0.9 /* issue goal: at least 0.9 x raw librdkafka */

enum { RAW, SDK, SPOOL, KINDS };
static const char *const kind_tag[KINDS] = {"raw", "sdk", "spool"};

typedef struct result {
    double eps;    /* events per second */
    double cpu_us; /* CPU of this process per event, microseconds */
} result_t;

static result_t measured(long n, int64_t t0, int64_t t1, int64_t c0)
{
    return (result_t){(double)n * 1e9 / (double)(t1 - t0),
                      (double)(bench_cpu_ns() - c0) / 1e3 / (double)n};
}

static result_t run_raw(const bench_msgs_t *msgs, const char *tag)
{
    bench_dr_t dr = {0};
    char topic[256];
    rd_kafka_topic_t *rkts[BENCH_TYPES];

    rd_kafka_t *rk = bench_raw_new(&dr, NULL);
    for (int t = 0; t < BENCH_TYPES; t++) {
        bench_topic(topic, sizeof(topic), tag, t);
        rkts[t] = rd_kafka_topic_new(rk, topic, NULL);
    }
    bench_raw_warmup(rk, rkts, &dr, msgs);

    int64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
    for (long i = 0; i < msgs->n; i++) {
        const bench_msg_t *m = &msgs->m[i];
        rd_kafka_resp_err_t err;
        while ((err = bench_produce(rk, rkts[m->type], m, RD_KAFKA_MSG_F_COPY)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (err)
            bench_die("raw produce", rd_kafka_err2str(err));
        if (i % 1024 == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 300000);
    int64_t t1 = bench_now_ns();
    result_t res = measured(msgs->n, t0, t1, c0);

    if (dr.ok != msgs->n)
        bench_die("raw", dr.failed ? rd_kafka_err2str(dr.first_err) : "not all acknowledged");
    for (int t = 0; t < BENCH_TYPES; t++)
        rd_kafka_topic_destroy(rkts[t]);
    rd_kafka_destroy(rk);
    return res;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static result_t run_sdk(const bench_strings_t *s, long n, const char *tag, int spool)
{
    char qmax[32], dir[] = "/tmp/ue-bench-spool.XXXXXX";
    long drops = 0;

    snprintf(qmax, sizeof(qmax), "%ld", n + 16);
    if (spool && !mkdtemp(dir))
        bench_die("mkdtemp", "cannot create the spool directory");
    const char *extra[] = {"queue.max.events",
                           qmax,
                           "queue.max.bytes",
                           "1073741824",
                           spool ? "spool.dir" : NULL,
                           dir,
                           NULL};
    ue_client_t *c = bench_sdk_new(tag, extra);
    bench_sdk_warmup(c, s);
    ue_event_t *ev = ue_event_new("x");

    int64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        bench_build(ev, s, i);
        if (ue_track(c, ev) != UE_OK)
            drops++;
    }
    if (ue_flush(c, 300000) != UE_OK)
        bench_die("sdk", "not every event was acknowledged within 300 s");
    int64_t t1 = bench_now_ns();
    result_t res = measured(n, t0, t1, c0);

    if (drops || ue_stat(c, UE_STAT_DELIVERED) != BENCH_TYPES + n)
        bench_die("sdk", "events dropped or not delivered");
    fprintf(stderr, "    sdk stats: retries %lld, failed %lld, sent %lld\n",
            (long long)ue_stat(c, UE_STAT_RETRIES), (long long)ue_stat(c, UE_STAT_FAILED),
            (long long)ue_stat(c, UE_STAT_SENT));
    ue_event_destroy(ev);
    ue_client_destroy(c);
    if (spool)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return res;
}

int main(void)
{
    long n = bench_env_long("UE_BENCH_EVENTS", 500000);
    int reps = (int)bench_env_long("UE_BENCH_REPS", 5);
    static bench_strings_t s;
    bench_msgs_t msgs;
    double eps[KINDS][16], cpu[KINDS][16];
    char tag[64];

    if (n < BENCH_TYPES || reps < 1 || reps > 16)
        bench_die("usage", "UE_BENCH_EVENTS >= 3, UE_BENCH_REPS 1..16");
    bench_strings_init(&s);
    ue_client_t *enc = bench_sdk_new("encoder", NULL);
    bench_msgs_make(&msgs, enc, &s, n);
    ue_client_destroy(enc);
    fprintf(stderr,
            "throughput: %ld events of %.0f bytes (avg payload), %d users, %d types, "
            "%d runs each, on %s\n",
            n, (double)msgs.bytes / (double)n, BENCH_USERS, BENCH_TYPES, reps,
            bench_bootstrap() ? bench_bootstrap() : "the MOCK cluster (no KAFKA_BOOTSTRAP)");

    bench_create_run_topics("e2e-", kind_tag, KINDS, reps);

    for (int r = 0; r < reps; r++) {
        for (int j = 0; j < KINDS; j++) { /* rotate the order: no side always goes first */
            int k = (j + r) % KINDS;
            if (!bench_selected(kind_tag[k]))
                continue;
            snprintf(tag, sizeof(tag), "e2e-%s%d", kind_tag[k], r);
            result_t res = k == RAW ? run_raw(&msgs, tag) : run_sdk(&s, n, tag, k == SPOOL);
            eps[k][r] = res.eps;
            cpu[k][r] = res.cpu_us;
            fprintf(stderr, "  run %d %-5s %10.0f events/s  %5.2f us CPU/event (this process)\n",
                    r + 1, kind_tag[k], res.eps, res.cpu_us);
        }
    }

    if (!bench_selected("raw") || !bench_selected("sdk") || !bench_selected("spool")) {
        bench_msgs_free(&msgs);
        return 0; /* profiling one side: no ratios */
    }
    double raw = bench_median(eps[RAW], reps);
    double sdk = bench_median(eps[SDK], reps);
    double spool = bench_median(eps[SPOOL], reps);
    bench_row("throughput to Kafka, no spool", "ev/s", sdk, raw, ">= 0.90 x raw",
              sdk >= GOAL_RATIO * raw);
    bench_row("throughput to Kafka, spool", "ev/s", spool, raw, ">= 0.90 x raw",
              spool >= GOAL_RATIO * raw);
    printf("NOTE\tthroughput: median of %d runs of %ld events (%.0f-byte payloads, %d users, "
           "%d topics), first track to all acknowledged; drops: none (checked)\n",
           reps, n, (double)msgs.bytes / (double)n, BENCH_USERS, BENCH_TYPES);
    printf("NOTE\tthroughput: client CPU per event (all threads, median): raw %.2f us, sdk %.2f "
           "us, sdk+spool %.2f us; the broker shares the same cores\n",
           bench_median(cpu[RAW], reps), bench_median(cpu[SDK], reps),
           bench_median(cpu[SPOOL], reps));
    bench_msgs_free(&msgs);
    return 0;
}
