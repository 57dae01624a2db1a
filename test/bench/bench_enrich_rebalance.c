/*
 * bench_enrich_rebalance.c - what a rebalance costs a libenrich group (issue 10), beside Kafka
 * Streams 4.3.1 doing comparable work (test/bench/streams/) on the same kind of input.
 *
 * A steady stream (UE_BENCH_REBALANCE_RATE events/s, tracked with libuserevents by a thread of
 * this process) flows into 3 raw topics of 6 partitions (tasks) while the group goes through
 * the events below. The rate is one that a single member of either side carries (one Streams
 * instance does ~15k events/s on the 2-core development machine, bench_enrich_scale): above
 * it, the figures would be of a growing backlog, not of the rebalances.
 *
 *   t = 0          processor A starts alone and takes every task;
 *   t = 15 s       processor B starts: a join, B takes some tasks from A;
 *   t = 15 + P     B is killed (SIGKILL) and restarted at once with its instance.id;
 *   t = 15 + 2P    the restarted B is killed for good: its tasks move to A once its session
 *                  times out (10 s);
 *   t = 15 + 3P    the stream stops; A stops once the group has committed all of it.
 *
 * Every member is a process of its own (bench_group.h) and says when its tasks change. The
 * parent asks the group's committed offsets of every input partition every 20 ms and records
 * when each one moved. Figures, per event, up to the next one:
 *
 *   - the longest time without a commit on the partitions of tasks that did not move (the
 *     same member owned them before and after), counted from the event. The goal: none longer
 *     than the commit interval, i.e. txn.max.ms + one commit (the median commit time of A) +
 *     the 20 ms the watch needs to see it;
 *   - for the tasks that moved (to B at the join, from the killed B to its successor): the
 *     time from the event to the first commit on their partitions after the new owner said
 *     it has them (restore included), the longest over the moved tasks (after the last kill:
 *     up to when the group has committed the whole stream, its backlog included).
 *
 * The same before the join (A alone) gives the steady state. Streams runs twice: without and
 * with one standby replica; both sides with static membership (group.instance.id) and a 10 s
 * session, libenrich's defaults; Streams with acceptable.recovery.lag at its maximum, so that
 * tasks move at once as in libenrich (with its default, 10000 records, B would only warm up
 * replicas and take nothing within the run: UE_BENCH_STREAMS_RECOVERY_LAG=-1 shows it).
 * libenrich has no standby replicas.
 *
 * Environment: UE_BENCH_REBALANCE_RATE (5000), UE_BENCH_REBALANCE_PHASE_S (15),
 * UE_BENCH_SCALE_SETTING (txn events/txn ms/batch, "10000/100/1000"),
 * UE_BENCH_STREAMS_RECOVERY_LAG, UE_BENCH_STREAMS_XMX (256m), UE_BENCH_ENRICH_CONF,
 * UE_BENCH_ONLY ("enrich", "streams", "standby"), KAFKA_BOOTSTRAP (required).
 */
#include "bench_group.h"

#include <pthread.h>
#include <stdatomic.h>

#define PARTITIONS 6
#define WATCH_MS 20
#define WARMUP_S 15
#define MS(ns) ((double)(ns) / 1e6)

typedef struct bench {
    char exe[PATH_MAX], jars[PATH_MAX + 16];
    long rate, recovery_lag;
    int phase_s;
    setting_t set;
} bench_t;

/* ---- the steady stream ----------------------------------------------------------------------- */

typedef struct feed {
    char name[64];
    long rate, sent;
    const bench_strings_t *s;
    atomic_int stop;
    pthread_t thread;
} feed_t;

/* Tracks f->rate events a second, in 5 ms steps, until told to stop; then flushes. */
static void *feed_run(void *arg)
{
    feed_t *f = arg;
    ue_client_t *c = input_client(f->name, f->rate * 10);
    ue_event_t *ev = ue_event_new("x");
    int64_t t0 = bench_now_ns();
    while (!atomic_load(&f->stop)) {
        long due = (long)((double)(bench_now_ns() - t0) / 1e9 * (double)f->rate);
        while (f->sent < due)
            track_input(c, ev, f->s, f->sent++);
        usleep(5000);
    }
    ue_event_destroy(ev);
    if (ue_flush(c, 120000) != UE_OK || ue_stat(c, UE_STAT_DELIVERED) != f->sent)
        bench_die("feed", "events not delivered within 120 s");
    ue_client_destroy(c);
    return NULL;
}

/* ---- one scenario ---------------------------------------------------------------------------- */

typedef struct scenario {
    const char *run; /* "enrich", "streams", "standby" */
    int streams, standbys;
    char prefix[128];
    member_t m[3]; /* A, B, B restarted */
    int nm;
    char dirs[2][64]; /* Streams state of A and of B (B restarted finds its own) */
    int64_t join, restart, kill, stop, covered;
    int64_t watch_longest; /* the watch's longest interval between two looks, up to stop */
    watch_t w;
    int ok;
} scenario_t;

static void start(const bench_t *b, scenario_t *sc, int i, const char *id, const char *dir)
{
    member_argv_t a;
    char name[16];
    snprintf(name, sizeof(name), "%s%s", id, i == 2 ? "'" : "");
    fprintf(stderr, "    %.1f s: %s starts\n", MS(bench_now_ns() - sc->join) / 1000 + WARMUP_S,
            name);
    member_start(&sc->m[i], name,
                 sc->streams ? member_argv_streams(&a, b->jars, sc->prefix, sc->run, id, &b->set,
                                                   sc->standbys, b->recovery_lag, dir)
                             : member_argv_enrich(&a, b->exe, sc->prefix, sc->run, id, &b->set));
    sc->nm = i + 1;
}

static void watch_until(scenario_t *sc, int64_t until)
{
    while (bench_now_ns() < until)
        watch_step(&sc->w, sc->m, sc->nm, WATCH_MS);
}

static void create_topics(scenario_t *sc)
{
    char names[BENCH_TYPES + 5][256];
    int k = 0;
    for (int t = 0; t < BENCH_TYPES; t++)
        input_topic(names[k++], sizeof(names[0]), sc->prefix, t);
    bench_create_topics_p(names, k, PARTITIONS);
    k = 0;
    snprintf(names[k++], sizeof(names[0]), "%s.profiles", sc->prefix);
    if (sc->streams)
        snprintf(names[k++], sizeof(names[0]), "%s.%s.out", sc->prefix, sc->run);
    else
        k = enrich_topics(names, k, sc->prefix, sc->run);
    bench_create_topics(names, k);
}

static void run_scenario(const bench_t *b, scenario_t *sc, const bench_strings_t *s)
{
    static feed_t feed;
    int64_t phase = b->phase_s * INT64_C(1000000000);
    memset(&feed, 0, sizeof(feed));
    snprintf(feed.name, sizeof(feed.name), "rb-%s", sc->run);
    enr_bench_prefix(sc->prefix, sizeof(sc->prefix), feed.name);
    fprintf(stderr, "  %s: %ld events/s on %s.ev.{type}\n", sc->run, b->rate, sc->prefix);
    create_topics(sc);
    produce_profiles(sc->prefix, s);
    for (int i = 0; sc->streams && i < 2; i++) {
        snprintf(sc->dirs[i], sizeof(sc->dirs[i]), "/tmp/ue-bench-streams.XXXXXX");
        if (!mkdtemp(sc->dirs[i]))
            bench_die("mkdtemp", "cannot create a Streams state directory");
    }
    watch_init(&sc->w, sc->prefix, sc->run, PARTITIONS);
    feed.rate = b->rate;
    feed.s = s;
    if (pthread_create(&feed.thread, NULL, feed_run, &feed))
        bench_die("feed", "no thread");

    sc->join = bench_now_ns() + WARMUP_S * INT64_C(1000000000);
    start(b, sc, 0, "a", sc->dirs[0]);
    watch_until(sc, sc->join);
    start(b, sc, 1, "b", sc->dirs[1]);
    watch_until(sc, sc->restart = sc->join + phase);
    fprintf(stderr, "    %.1f s: b killed\n", MS(bench_now_ns() - sc->join) / 1000 + WARMUP_S);
    member_kill(&sc->m[1]);
    start(b, sc, 2, "b", sc->dirs[1]);
    watch_until(sc, sc->kill = sc->restart + phase);
    fprintf(stderr, "    %.1f s: b' killed\n", MS(bench_now_ns() - sc->join) / 1000 + WARMUP_S);
    member_kill(&sc->m[2]);
    watch_until(sc, sc->stop = sc->kill + phase);
    sc->watch_longest = sc->w.longest_ns;

    atomic_store(&feed.stop, 1);
    pthread_join(feed.thread, NULL);
    watch_ends(&sc->w);
    int64_t deadline = bench_now_ns() + INT64_C(120000000000);
    while (!sc->covered && sc->m[0].pid && bench_now_ns() < deadline)
        if (watch_step(&sc->w, sc->m, 1, WATCH_MS) == sc->w.parts->cnt)
            sc->covered = sc->w.last_ns;
    member_stop(&sc->m[0]);
    sc->ok = sc->covered && sc->m[0].ok;
    fprintf(stderr, "    %ld events tracked; %s\n", feed.sent,
            !sc->covered   ? "the group did not commit them all within 120 s"
            : !sc->m[0].ok ? "a failed"
                           : "all committed");
    for (int i = 0; i < 2 && sc->streams; i++)
        rm_tree(sc->dirs[i]);
    for (int i = 0; i < sc->nm; i++) { /* who owned what when: the figures' explanation */
        const member_t *m = &sc->m[i];
        fprintf(stderr, "    %s's tasks:", m->name);
        for (int h = 0; h < m->nhist; h++)
            fprintf(stderr, " %.1f s %llx;", MS(m->hist[h].ns - sc->join) / 1000 + WARMUP_S,
                    (unsigned long long)m->hist[h].tasks);
        fprintf(stderr, " gone %.1f s\n", MS(m->gone_ns - sc->join) / 1000 + WARMUP_S);
    }
}

/* ---- what the watch saw ---------------------------------------------------------------------- */

/* The member that owned task @p task at @p ns, or -1. */
static int owner_at(const scenario_t *sc, int task, int64_t ns)
{
    for (int i = 0; i < sc->nm; i++)
        if (member_tasks_at(&sc->m[i], ns) >> task & 1)
            return i;
    return -1;
}

/* The longest time input partition @p i went without a commit between @p from and @p to,
 * counted from @p from at the earliest (a stall that began before belongs to the event before);
 * a partition still waiting at @p to counts until its next commit. @p end: when it ended. */
static int64_t longest_gap(const watch_t *w, int i, int64_t from, int64_t to, int64_t *end)
{
    int64_t prev = from, longest = 0;
    for (int k = 0; k < w->moves[i].n && prev < to; k++) {
        int64_t t = w->moves[i].ns[k];
        if (t > from && t - prev > longest)
            longest = t - prev, *end = t;
        prev = t > from ? t : from;
    }
    if (prev < to && to - prev > longest)
        longest = to - prev, *end = to;
    return longest;
}

typedef struct stall {
    int stayed, moved, unowned;
    int missing; /* moved tasks that did not commit again before the next event */
    int64_t gap; /* longest gap on the partitions of tasks that stayed */
    int64_t gap_end;
    int64_t flow; /* the event -> moved tasks committing again, the longest */
} stall_t;

/* What happened between @p from (an event) and @p to (the next); moved tasks may commit
 * again up to @p flow_to (the last event's tasks: after the stream stopped, from the backlog). */
static stall_t analyse(const scenario_t *sc, int64_t from, int64_t to, int64_t flow_to)
{
    stall_t st = {0};
    const watch_t *w = &sc->w;
    for (int p = 0; p < PARTITIONS; p++) {
        int before = owner_at(sc, p, from), after = owner_at(sc, p, to);
        if (before < 0) { /* nobody had it yet (still moving from the event before) */
            st.unowned++;
            continue;
        }
        if (before == after) {
            st.stayed++;
            for (int t = 0; t < BENCH_TYPES; t++) {
                int64_t end, g = longest_gap(w, t * PARTITIONS + p, from, to, &end);
                if (g > st.gap)
                    st.gap = g, st.gap_end = end;
            }
            continue;
        }
        st.moved++;
        /* The first commit after the new owner says it has the task (libenrich: once restored;
         * Streams: once its thread lists it active) is the new owner's: the old owner's last
         * came before it gave the task up (a revoked task commits first) or died. */
        int64_t released = member_released_at(&sc->m[before], p, from), flow = -1;
        after = owner_at(sc, p, flow_to);
        int64_t took = after < 0 ? -1 : member_took_at(&sc->m[after], p, from);
        for (int t = 0; took >= 0 && t < BENCH_TYPES; t++) {
            const int64_t *ns = w->moves[t * PARTITIONS + p].ns;
            int n = w->moves[t * PARTITIONS + p].n, k = 0;
            while (k < n && ns[k] <= took)
                k++;
            if (k == n || ns[k] > flow_to) {
                flow = -1;
                break;
            }
            flow = ns[k] - from > flow ? ns[k] - from : flow;
        }
        fprintf(stderr,
                "    task %d: %s -> %s, released %.0f ms and taken %.0f ms after the "
                "event; commits again after %.0f ms\n",
                p, sc->m[before].name, after < 0 ? "nobody" : sc->m[after].name,
                released < 0 ? -1.0 : MS(released - from), took < 0 ? -1.0 : MS(took - from),
                flow < 0 ? -1.0 : MS(flow));
        if (flow < 0)
            st.missing++;
        st.flow = flow > st.flow ? flow : st.flow;
    }
    return st;
}

/* The steady state: from a second after A owned every task, at most 5 s before the join (a
 * JVM still warming up its JIT may be in it). */
static int64_t steady_from(const scenario_t *sc)
{
    const member_t *a = &sc->m[0];
    int64_t from = sc->join - INT64_C(5000000000);
    for (int h = 0; h < a->nhist; h++)
        if (a->hist[h].tasks == (UINT64_C(1) << PARTITIONS) - 1) {
            int64_t ready = a->hist[h].ns + INT64_C(1000000000);
            return ready > from && ready < sc->join ? ready : from;
        }
    return from;
}

/* ---- rows ------------------------------------------------------------------------------------ */

static void cell_gap(char *out, size_t n, const scenario_t *sc, const stall_t *st)
{
    if (!sc || !sc->ok)
        snprintf(out, n, "-");
    else if (!st->stayed && st->unowned)
        snprintf(out, n, "%d tasks unowned", st->unowned);
    else if (!st->stayed)
        snprintf(out, n, "none stayed");
    else
        snprintf(out, n, "%.0f ms", MS(st->gap));
}

static void cell_flow(char *out, size_t n, const scenario_t *sc, const stall_t *st)
{
    if (!sc || !sc->ok)
        snprintf(out, n, "-");
    else if (!st->moved && st->unowned)
        snprintf(out, n, "none (%d unowned)", st->unowned);
    else if (!st->moved)
        snprintf(out, n, "none moved");
    else if (st->missing)
        snprintf(out, n, "%d of %d: never", st->missing, st->moved);
    else
        snprintf(out, n, "%d moved: %.0f ms", st->moved, MS(st->flow));
}

/* "RROW name enrich streams streams-with-standby goal meets": run.sh's table. */
static void rrow(const char *name, scenario_t *sc[3], const stall_t st[3], int flow, double goal_ms)
{
    char c[3][64], goal[32] = "-";
    const char *meets = "-";
    for (int i = 0; i < 3; i++)
        (flow ? cell_flow : cell_gap)(c[i], sizeof(c[i]), sc[i], &st[i]);
    if (goal_ms > 0) {
        snprintf(goal, sizeof(goal), "<= %.0f ms", goal_ms);
        if (sc[0] && sc[0]->ok && st[0].stayed)
            meets = MS(st[0].gap) <= goal_ms ? "yes" : "no";
    }
    printf("RROW\t%s\t%s\t%s\t%s\t%s\t%s\n", name, c[0], c[1], c[2], goal, meets);
    fflush(stdout);
}

static void rows(const bench_t *b, scenario_t *sc[3])
{
    static const char *const events[] = {"join", "kill+restart", "kill for good"};
    stall_t steady[3] = {{0}}, st[3][3] = {{{0}}};
    char name[96];
    for (int i = 0; i < 3; i++) {
        if (!sc[i] || !sc[i]->ok)
            continue;
        int64_t at[4] = {sc[i]->join, sc[i]->restart, sc[i]->kill, sc[i]->stop};
        fprintf(stderr, "  %s, A alone:\n", sc[i]->run);
        steady[i] = analyse(sc[i], steady_from(sc[i]), sc[i]->join, sc[i]->join);
        for (int e = 0; e < 3; e++) {
            fprintf(stderr, "  %s, %s:\n", sc[i]->run, events[e]);
            st[e][i] = analyse(sc[i], at[e], at[e + 1], e == 2 ? sc[i]->covered - 1 : at[e + 1]);
            fprintf(stderr,
                    "    %d tasks stayed, longest gap %.0f ms, from %.0f to %.0f ms after "
                    "the event\n",
                    st[e][i].stayed, MS(st[e][i].gap), MS(st[e][i].gap_end - st[e][i].gap - at[e]),
                    MS(st[e][i].gap_end - at[e]));
        }
    }
    /* One commit interval: a transaction lasts txn.max.ms, then commits; the watch sees it up
     * to WATCH_MS later. */
    double goal = (double)b->set.txn_ms + WATCH_MS;
    if (sc[0] && sc[0]->ok)
        goal += sc[0]->m[0].commit_p50_ms;
    rrow("steady, A alone: longest gap between commits", sc, steady, 0, 0);
    for (int e = 0; e < 3; e++) {
        snprintf(name, sizeof(name), "%s: longest gap, tasks that stayed", events[e]);
        rrow(name, sc, st[e], 0, goal);
        snprintf(name, sizeof(name), "%s: moved tasks commit again after", events[e]);
        rrow(name, sc, st[e], 1, 0);
    }
    int64_t longest = 0;
    for (int i = 0; i < 3; i++)
        if (sc[i] && sc[i]->watch_longest > longest)
            longest = sc[i]->watch_longest;
    printf("NOTE\trebalance: goal = txn.max.ms %ld + A's median commit %.0f ms + the watch's "
           "%d ms; the watch (one OffsetFetch every %d ms) once waited %.0f ms between two looks: "
           "gaps are seen that much late at worst\n",
           b->set.txn_ms, sc[0] && sc[0]->ok ? sc[0]->m[0].commit_p50_ms : 0.0, WATCH_MS, WATCH_MS,
           MS(longest));
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc >= 9 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "member"))
        return member_enrich(argv);
    if (!bench_bootstrap()) {
        printf("NOTE\tbench_enrich_rebalance skipped: it needs a real broker (KAFKA_BOOTSTRAP)\n");
        return 0;
    }
    static bench_t b;
    static bench_strings_t s;
    static scenario_t sc[3] = {{.run = "enrich"},
                               {.run = "streams", .streams = 1},
                               {.run = "standby", .streams = 1, .standbys = 1}};
    const char *set = getenv("UE_BENCH_SCALE_SETTING");
    b.rate = bench_env_long("UE_BENCH_REBALANCE_RATE", 5000);
    b.phase_s = (int)bench_env_long("UE_BENCH_REBALANCE_PHASE_S", 15);
    b.recovery_lag = bench_env_long("UE_BENCH_STREAMS_RECOVERY_LAG", INT64_MAX);
    if (sscanf(set && *set ? set : "10000/100/1000", "%ld/%ld/%ld", &b.set.txn_events,
               &b.set.txn_ms, &b.set.batch) != 3 ||
        b.rate < 100 || b.phase_s < 12)
        bench_die("bench_enrich_rebalance", "bad UE_BENCH_SCALE_SETTING, _RATE or _PHASE_S");
    self_exe(b.exe, sizeof(b.exe));
    int have_streams = streams_dir(b.jars, sizeof(b.jars), b.exe);
    bench_strings_init(&s);

    scenario_t *ran[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if ((sc[i].streams && !have_streams) || !bench_selected(sc[i].run))
            continue;
        run_scenario(&b, &sc[i], &s);
        ran[i] = &sc[i];
        rc |= !sc[i].ok;
    }
    if (!ran[0] && !ran[1] && !ran[2])
        return 0;
    rows(&b, ran);
    for (int i = 0; i < 3; i++)
        if (ran[i])
            watch_destroy(&ran[i]->w);
    printf("NOTE\trebalance: %ld events/s for %d s on 3 topics x %d partitions (= tasks); B joins "
           "at %d s, is killed and restarted with its id at %d s, killed for good at %d s; txn "
           "%ld/%ldms (Streams: commit.interval.ms %ld); both with static membership, session "
           "10 s\n",
           b.rate, WARMUP_S + 3 * b.phase_s, PARTITIONS, WARMUP_S, WARMUP_S + b.phase_s,
           WARMUP_S + 2 * b.phase_s, b.set.txn_events, b.set.txn_ms, b.set.txn_ms);
    printf("NOTE\trebalance: libenrich has no standby replicas (standby.replicas is not built, "
           "docs/DESIGN.md): a moved task always restores from its changelog; the \"KS, 1 "
           "standby\" column is Kafka Streams with num.standby.replicas=1\n");
    if (have_streams)
        printf("NOTE\trebalance: Kafka Streams 4.3.1 with its default rebalancing (classic "
               "group protocol, StreamsPartitionAssignor, cooperative), acceptable.recovery.lag "
               "%s\n",
               b.recovery_lag == INT64_MAX ? "max (tasks move at once, as in libenrich)"
               : b.recovery_lag < 0        ? "default (10000)"
                                           : "as set");
    return rc;
}
