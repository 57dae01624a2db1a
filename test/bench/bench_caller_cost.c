/*
 * bench_caller_cost.c - what ue_track() costs the caller's thread, beside what
 * rd_kafka_producev() costs it for the same bytes (same payload, key and headers).
 *
 * Both sides buffer and nothing drops: the SDK's queue and librdkafka's queue hold every event
 * of a run, both use linger.ms=5, and the raw producer copies the caller's bytes
 * (RD_KAFKA_MSG_F_COPY) as the SDK does when it encodes. Each run is a fresh producer on fresh
 * topics, warmed up (connected, producer id, metadata) before the clock starts; the clock
 * stops when the last call returns, and the run then flushes to check every event arrived.
 *
 *   track only   a pool of events built once (ue_event_reset + user id + 3 properties) and
 *                tracked over and over: the loop is ue_track() alone.
 *   build+track  reset + user id + 3 properties + ue_track() per event.
 *
 * The figure is the calling thread's CPU time per event (CLOCK_THREAD_CPUTIME_ID): on a
 * 2-core machine that also runs the broker, the SDK's and librdkafka's own threads, wall time
 * mostly measures how often the caller was preempted. Wall time is printed beside it.
 *
 * Environment: UE_BENCH_ONLY (kinds to run, e.g. "track": profiling; no table then),
 * UE_BENCH_TRACK_EVENTS (200000), UE_BENCH_REPS (5), KAFKA_BOOTSTRAP (else librdkafka's mock
 * cluster, for development only).
 */
#include "bench_util.h"

#define POOL 64       /* events of the "track only" pool */
#define GOAL_NS 500.0 /* issue goal: at most 0.5 us per event on the caller's thread */

enum { RAW, TRACK, BUILD, KINDS };
static const char *const kind_tag[KINDS] = {"raw", "track", "build"};

typedef struct result {
    double cpu_ns; /* calling thread's CPU per event */
    double wall_ns;
    long drops;
} result_t;

typedef struct clocks {
    int64_t cpu, wall;
} clocks_t;

static clocks_t clocks_now(void)
{
    return (clocks_t){bench_thread_cpu_ns(), bench_now_ns()};
}

static void per_event(result_t *res, clocks_t t0, clocks_t t1, long n)
{
    res->cpu_ns = (double)(t1.cpu - t0.cpu) / (double)n;
    res->wall_ns = (double)(t1.wall - t0.wall) / (double)n;
}

static result_t run_raw(const bench_msgs_t *msgs, const char *tag)
{
    bench_dr_t dr = {0};
    char qmax[32], topic[256];
    rd_kafka_topic_t *rkts[BENCH_TYPES];
    result_t res = {0};

    snprintf(qmax, sizeof(qmax), "%ld", msgs->n + 16);
    const char *extra[] = {"queue.buffering.max.messages", qmax, NULL};
    rd_kafka_t *rk = bench_raw_new(&dr, extra);
    for (int t = 0; t < BENCH_TYPES; t++) {
        bench_topic(topic, sizeof(topic), tag, t);
        rkts[t] = rd_kafka_topic_new(rk, topic, NULL);
    }
    bench_raw_warmup(rk, rkts, &dr, msgs);

    clocks_t t0 = clocks_now();
    for (long i = 0; i < msgs->n; i++) {
        const bench_msg_t *m = &msgs->m[i];
        if (bench_produce(rk, rkts[m->type], m, RD_KAFKA_MSG_F_COPY))
            res.drops++;
    }
    per_event(&res, t0, clocks_now(), msgs->n);

    rd_kafka_flush(rk, 120000);
    if (dr.ok != msgs->n - res.drops)
        bench_die("raw", "not every message was acknowledged within 120 s");
    for (int t = 0; t < BENCH_TYPES; t++)
        rd_kafka_topic_destroy(rkts[t]);
    rd_kafka_destroy(rk);
    return res;
}

/* The timed loop of one SDK run; counts refused events in res->drops. */
static void sdk_loop(ue_client_t *c, const bench_strings_t *s, long n, int build, result_t *res)
{
    ue_event_t *pool[POOL];
    int npool = build ? 1 : POOL;
    for (int k = 0; k < npool; k++) {
        pool[k] = ue_event_new("x");
        bench_build(pool[k], s, (long)k * 47);
    }
    clocks_t t0 = clocks_now();
    if (build) {
        for (long i = 0; i < n; i++) {
            bench_build(pool[0], s, i);
            if (ue_track(c, pool[0]) != UE_OK)
                res->drops++;
        }
    } else {
        for (long i = 0; i < n; i++)
            if (ue_track(c, pool[i % POOL]) != UE_OK)
                res->drops++;
    }
    per_event(res, t0, clocks_now(), n);
    for (int k = 0; k < npool; k++)
        ue_event_destroy(pool[k]);
}

static result_t run_sdk(const bench_strings_t *s, long n, const char *tag, int build)
{
    char qmax[32];
    result_t res = {0};

    snprintf(qmax, sizeof(qmax), "%ld", n + 16);
    const char *extra[] = {"queue.max.events",
                           qmax,
                           "queue.max.bytes",
                           "1073741824",
                           "kafka.queue.buffering.max.messages",
                           qmax,
                           NULL};
    ue_client_t *c = bench_sdk_new(tag, extra);
    bench_sdk_warmup(c, s);
    sdk_loop(c, s, n, build, &res);
    if (ue_flush(c, 120000) != UE_OK)
        bench_die("sdk", "not every event was acknowledged within 120 s");
    if (ue_stat(c, UE_STAT_DELIVERED) != BENCH_TYPES + n - res.drops ||
        ue_stat(c, UE_STAT_FAILED) != 0)
        bench_die("sdk", "delivered count does not match");
    res.drops = ue_stat(c, UE_STAT_DROPPED_QUEUE_FULL);
    ue_client_destroy(c);
    return res;
}

int main(void)
{
    long n = bench_env_long("UE_BENCH_TRACK_EVENTS", 200000);
    int reps = (int)bench_env_long("UE_BENCH_REPS", 5);
    static bench_strings_t s;
    bench_msgs_t msgs;
    double cpu[KINDS][16], wall[KINDS][16];
    long drops[KINDS] = {0};
    char tag[64];

    if (n < BENCH_TYPES || reps < 1 || reps > 16)
        bench_die("usage", "UE_BENCH_TRACK_EVENTS >= 3, UE_BENCH_REPS 1..16");
    bench_strings_init(&s);
    ue_client_t *enc = bench_sdk_new("encoder", NULL);
    bench_msgs_make(&msgs, enc, &s, n);
    ue_client_destroy(enc);
    fprintf(stderr, "caller cost: %ld events of %.0f bytes (avg payload), %d runs each, on %s\n", n,
            (double)msgs.bytes / (double)n, reps,
            bench_bootstrap() ? bench_bootstrap() : "the MOCK cluster (no KAFKA_BOOTSTRAP)");
    bench_create_run_topics("", kind_tag, KINDS, reps);

    for (int r = 0; r < reps; r++) {
        for (int j = 0; j < KINDS; j++) { /* rotate the order: no side always goes first */
            int k = (j + r) % KINDS;
            if (!bench_selected(kind_tag[k]))
                continue;
            snprintf(tag, sizeof(tag), "%s%d", kind_tag[k], r);
            result_t res = k == RAW ? run_raw(&msgs, tag) : run_sdk(&s, n, tag, k == BUILD);
            cpu[k][r] = res.cpu_ns;
            wall[k][r] = res.wall_ns;
            drops[k] += res.drops;
            fprintf(stderr, "  run %d %-5s %7.1f ns/event CPU  %7.1f ns/event wall  drops %ld\n",
                    r + 1, kind_tag[k], res.cpu_ns, res.wall_ns, res.drops);
        }
    }
    if (!bench_selected("raw") || !bench_selected("track") || !bench_selected("build")) {
        bench_msgs_free(&msgs);
        return 0; /* profiling one side: no ratios */
    }

    double raw = bench_median(cpu[RAW], reps);
    double track = bench_median(cpu[TRACK], reps);
    double build = bench_median(cpu[BUILD], reps);
    bench_row("caller cost, track only (reused events)", "ns/ev", track, raw, "<= 500 ns/ev",
              track <= GOAL_NS);
    bench_row("caller cost, build+track", "ns/ev", build, raw, "<= 500 ns/ev", build <= GOAL_NS);
    printf("NOTE\tcaller cost: caller-thread CPU, median of %d runs of %ld events (%.0f-byte "
           "payloads); peer = rd_kafka_producev(F_COPY) + the same 2 headers, no event "
           "building; wall-clock medians: raw %.0f, track %.0f, build+track %.0f ns/ev; drops: "
           "raw %ld, track %ld, build+track %ld\n",
           reps, n, (double)msgs.bytes / (double)n, bench_median(wall[RAW], reps),
           bench_median(wall[TRACK], reps), bench_median(wall[BUILD], reps), drops[RAW],
           drops[TRACK], drops[BUILD]);
    bench_msgs_free(&msgs);
    return drops[RAW] || drops[TRACK] || drops[BUILD] ? 1 : 0;
}
