/*
 * bench_enrich_scale.c - libenrich scales out (issue 10): the same input consumed by 1 and by
 * 2 processors of one group (instance.id e1, e2), beside Kafka Streams with 1 and 2 instances
 * of one application (test/bench/streams/, exactly_once_v2, comparable work), on the real
 * broker. The goal: events per CPU-second >= 5x Streams' at both sizes.
 *
 * Not timed: per run, N raw events on 3 fresh topics of UE_BENCH_SCALE_PARTITIONS (6)
 * partitions, so that 2 processors have tasks each, and 1000 profiles. The events are
 * produced in one transaction left open while the members (bench_group.h, each a process of
 * its own) start and the group forms: read_committed, they see none of it until every member
 * owns tasks; then the parent commits it. So the clock measures 1 or 2 members at work, not
 * the group forming (a member joining mid-run is a rebalance: bench_enrich_rebalance). The
 * clock starts at the first record any member processed and stops when the group's committed
 * offsets cover the whole input, as the parent sees them (it asks every 20 ms); then it closes
 * the members' stdin and each reports its CPU (first record to that moment), peak RSS and
 * counts. events/s = N / that time; events per CPU-second = N / the members' CPU summed.
 *
 * Both sides run with static membership and a 10 s session (libenrich's defaults), Streams
 * with acceptable.recovery.lag at its maximum as in bench_enrich_rebalance (here the state is
 * empty when the group forms, so every instance is caught up either way).
 *
 * Environment: UE_BENCH_ENRICH_EVENTS (200000), UE_BENCH_SCALE_PARTITIONS (6),
 * UE_BENCH_SCALE_SETTING (txn events/txn ms/batch events, "10000/100/1000"),
 * UE_BENCH_STREAMS_RECOVERY_LAG, UE_BENCH_STREAMS_XMX (256m), UE_BENCH_ENRICH_CONF,
 * UE_BENCH_ONLY ("enrich", "streams"), UE_BENCH_DEBUG (when each partition's offset moved),
 * KAFKA_BOOTSTRAP (required).
 */
#include "bench_group.h"

#define GOAL_PER_CPU 5.0 /* issue goal: >= 5x Kafka Streams' events per CPU-second */
#define DEADLINE_NS INT64_C(300000000000)
#define WATCH_MS 20

/* One run of k members, as a whole. */
typedef struct group_result {
    int ok, k;
    double wall_s, cpu_s;
    long hwm_kb[2];
    long processed, written, aborts;
} group_result_t;

typedef struct bench {
    char exe[PATH_MAX], jars[PATH_MAX + 16];
    long n;
    int partitions;
    setting_t set;
    long recovery_lag;
} bench_t;

/* ---- the input of one run ------------------------------------------------------------------- */

/* Produces the N events of run @p prefix (the bytes libuserevents would send, keyed by user)
 * in one transaction, and returns the producer with the transaction still open. */
static rd_kafka_t *input_open(const bench_t *b, const char *prefix, const bench_strings_t *s)
{
    char txn_id[300], topic[300];
    bench_dr_t dr = {0};
    snprintf(txn_id, sizeof(txn_id), "%s.input", prefix);
    const char *extra[] = {"transactional.id",
                           txn_id,
                           "transaction.timeout.ms",
                           "600000",
                           "queue.buffering.max.messages",
                           "2000000",
                           NULL};
    rd_kafka_t *rk = bench_raw_new(&dr, extra);
    rd_kafka_topic_t *rkt[BENCH_TYPES];
    ue_client_t *c = bench_sdk_new("scale.encoder", NULL); /* its context and anonymous id */
    ue_event_t *ev = ue_event_new("x");
    rd_kafka_error_t *error = rd_kafka_init_transactions(rk, 60000);
    if (!error)
        error = rd_kafka_begin_transaction(rk);
    if (error)
        bench_die("input transaction", rd_kafka_error_string(error));
    for (int t = 0; t < BENCH_TYPES; t++) {
        input_topic(topic, sizeof(topic), prefix, t);
        rkt[t] = rd_kafka_topic_new(rk, topic, NULL);
    }
    for (long i = 0; i < b->n; i++) {
        ue_err_t err;
        build_input(ev, s, i);
        ue__record_t *r = ue__event_encode(ev, &c->context, NULL, c->anonymous_id, 1 << 20, &err);
        if (!r)
            bench_die("encode", ue_err2str(err));
        bench_msg_t m = {
            .key = ue__record_key(r), .key_len = r->key_len, .payload = ue__record_payload(r)};
        m.len = ue__record_stamp_sent_at(r, (int64_t)time(NULL) * 1000);
        memcpy(m.id, r->event_id, 16);
        while (bench_produce(rk, rkt[i % BENCH_TYPES], &m, RD_KAFKA_MSG_F_COPY) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        free(r);
    }
    if (rd_kafka_flush(rk, 300000) || dr.ok != b->n)
        bench_die("input", "not every event was delivered");
    for (int t = 0; t < BENCH_TYPES; t++)
        rd_kafka_topic_destroy(rkt[t]);
    ue_event_destroy(ev);
    ue_client_destroy(c);
    return rk;
}

static void input_commit(rd_kafka_t *rk)
{
    rd_kafka_error_t *error = rd_kafka_commit_transaction(rk, 60000);
    if (error)
        bench_die("input commit", rd_kafka_error_string(error));
    rd_kafka_destroy(rk);
}

/* Topics of run @p prefix: the input with the bench's partitions, the rest with the
 * broker's default. */
static void create_topics(const bench_t *b, const char *prefix, const char *run, int streams)
{
    char names[BENCH_TYPES + 5][256];
    int k = 0;
    for (int t = 0; t < BENCH_TYPES; t++)
        input_topic(names[k++], sizeof(names[0]), prefix, t);
    bench_create_topics_p(names, k, b->partitions);
    k = 0;
    snprintf(names[k++], sizeof(names[0]), "%s.profiles", prefix);
    if (streams)
        snprintf(names[k++], sizeof(names[0]), "%s.%s.out", prefix, run);
    else
        k = enrich_topics(names, k, prefix, run);
    bench_create_topics(names, k);
}

/* ---- one run --------------------------------------------------------------------------------- */

/* 1 once every member owns tasks and together all of them, unchanged for a second. */
static int formed(const bench_t *b, const member_t *m, int k, int64_t *since)
{
    uint64_t all = 0, want = (UINT64_C(1) << b->partitions) - 1;
    int each = 1;
    for (int i = 0; i < k; i++)
        all |= m[i].tasks, each &= m[i].tasks != 0;
    int64_t last = 0;
    for (int i = 0; i < k; i++)
        if (m[i].nhist && m[i].hist[m[i].nhist - 1].ns > last)
            last = m[i].hist[m[i].nhist - 1].ns;
    *since = last;
    return each && all == want && bench_now_ns() - last > INT64_C(1000000000);
}

static void start_members(const bench_t *b, member_t *m, int k, int streams, const char *prefix,
                          const char *run, char (*dirs)[64])
{
    member_argv_t a;
    char id[8];
    for (int i = 0; i < k; i++) {
        snprintf(id, sizeof(id), "%c%d", streams ? 's' : 'e', i + 1);
        snprintf(dirs[i], sizeof(dirs[i]), "/tmp/ue-bench-streams.XXXXXX");
        if (streams && !mkdtemp(dirs[i]))
            bench_die("mkdtemp", "cannot create a Streams state directory");
        member_start(&m[i], id,
                     streams ? member_argv_streams(&a, b->jars, prefix, run, id, &b->set, 0,
                                                   b->recovery_lag, dirs[i])
                             : member_argv_enrich(&a, b->exe, prefix, run, id, &b->set));
    }
}

/* Waits until the group formed (at most 60 s: then the input is let go anyway), lets the
 * input go, and waits until the committed offsets cover it. Returns when they did, or 0. */
static int64_t watch_run(const bench_t *b, watch_t *w, member_t *m, int k, rd_kafka_t *input,
                         const char *run, int64_t *let_go)
{
    int64_t since, deadline = bench_now_ns() + INT64_C(60000000000);
    while (!formed(b, m, k, &since) && bench_now_ns() < deadline)
        watch_step(w, m, k, WATCH_MS);
    if (!formed(b, m, k, &since))
        fprintf(stderr, "bench: %s: the group did not form within 60 s (tasks %llx, %llx)\n", run,
                (unsigned long long)m[0].tasks, (unsigned long long)m[k - 1].tasks);
    watch_ends(w); /* before the commit: the end offsets of the records, not of its markers */
    *let_go = bench_now_ns();
    input_commit(input);
    for (deadline = bench_now_ns() + DEADLINE_NS; bench_now_ns() < deadline;) {
        if (watch_step(w, m, k, WATCH_MS) == w->parts->cnt)
            return w->last_ns;
        int alive = 0;
        for (int i = 0; i < k; i++)
            alive += m[i].pid != 0;
        if (!alive)
            break;
    }
    fprintf(stderr, "bench: %s: the group did not commit the whole input\n", run);
    return 0;
}

/* Run @p run: k members on an input of their own; they stop once it is all committed. */
static group_result_t run_group(const bench_t *b, int streams, int k, const char *run,
                                const bench_strings_t *s)
{
    group_result_t r = {.k = k};
    member_t m[2];
    char dirs[2][64], prefix[128], name[64];
    watch_t w;
    snprintf(name, sizeof(name), "scale-%s", run);
    enr_bench_prefix(prefix, sizeof(prefix), name);
    fprintf(stderr, "  %s: %d %s; %ld events on %s.ev.{type}, %d partitions each\n", run, k,
            streams ? "Kafka Streams instance(s)" : "processor(s)", b->n, prefix, b->partitions);
    create_topics(b, prefix, run, streams);
    produce_profiles(prefix, s);
    rd_kafka_t *input = input_open(b, prefix, s);
    watch_init(&w, prefix, run, b->partitions);
    start_members(b, m, k, streams, prefix, run, dirs);
    int64_t let_go = 0, covered = watch_run(b, &w, m, k, input, run, &let_go), first = 0;
    r.ok = covered != 0;
    for (int i = 0; i < k; i++) {
        member_stop(&m[i]);
        if (streams)
            rm_tree(dirs[i]);
        r.ok &= m[i].ok;
        if (m[i].first_ns && (!first || m[i].first_ns < first))
            first = m[i].first_ns;
        r.cpu_s += m[i].cpu_s;
        r.hwm_kb[i] = m[i].hwm_kb;
        r.processed += m[i].processed;
        r.written += m[i].written;
        r.aborts += m[i].aborts;
        fprintf(stderr,
                "    %s: %ld processed, %ld written, the first %.0f ms after the input "
                "was let go; %.2f CPU-s, peak RSS %.1f MB\n",
                m[i].name, m[i].processed, m[i].written, (double)(m[i].first_ns - let_go) / 1e6,
                m[i].cpu_s, (double)m[i].hwm_kb / 1024);
    }
    if (getenv("UE_BENCH_DEBUG")) /* when each partition's committed offset moved */
        for (int i = 0; i < w.parts->cnt; i++)
            fprintf(stderr, "    %s[%d]: end %lld, committed %lld, %d moves, %.0f .. %.0f ms\n",
                    w.parts->elems[i].topic, w.parts->elems[i].partition, (long long)w.end[i],
                    (long long)w.off[i], w.moves[i].n,
                    w.moves[i].n ? (double)(w.moves[i].ns[0] - let_go) / 1e6 : 0,
                    w.moves[i].n ? (double)(w.moves[i].ns[w.moves[i].n - 1] - let_go) / 1e6 : 0);
    watch_destroy(&w);
    r.wall_s = (double)(covered - first) / 1e9;
    /* Every input event is unique and valid: a member that drops one is broken. */
    if (r.ok && (r.written < b->n || r.processed != r.written)) {
        fprintf(stderr, "bench: %s: %ld processed, %ld written of %ld\n", run, r.processed,
                r.written, b->n);
        r.ok = 0;
    }
    if (r.ok)
        fprintf(stderr,
                "    %s: all committed %.0f ms after: %.0f events/s, %.0f events per "
                "CPU-s\n",
                run, (double)(covered - let_go) / 1e6, (double)b->n / r.wall_s,
                (double)b->n / r.cpu_s);
    return r;
}

/* ---- rows ------------------------------------------------------------------------------------ */

static void fig_rss(char *out, size_t n, const group_result_t *r)
{
    if (r->k == 1)
        snprintf(out, n, "%.0f MB", (double)r->hwm_kb[0] / 1024);
    else
        snprintf(out, n, "%.0f, %.0f MB", (double)r->hwm_kb[0] / 1024, (double)r->hwm_kb[1] / 1024);
}

/* "SROW name enrich streams enrich/streams goal meets": run.sh's table. */
static void srow(const char *name, double e, double s, const char *unit, int has_goal)
{
    char sfig[64] = "-", ratio[32] = "-";
    const char *meets = "-";
    if (s > 0) {
        snprintf(sfig, sizeof(sfig), "%.0f %s", s, unit);
        snprintf(ratio, sizeof(ratio), "%.2f", e / s);
        if (has_goal)
            meets = e / s >= GOAL_PER_CPU ? "yes" : "no";
    }
    printf("SROW\t%s\t%.0f %s\t%s\t%s\t%s\t%s\n", name, e, unit, sfig, ratio,
           has_goal ? ">= 5.00" : "-", meets);
}

static void rows(const bench_t *b, const group_result_t *e, const group_result_t *s)
{
    char name[96], efig[64], sfig[64] = "-";
    const char *what = e->k == 1 ? "1 processor" : "2 processors";
    double n = (double)b->n;
    snprintf(name, sizeof(name), "%s: events/s", what);
    srow(name, n / e->wall_s, s->ok ? n / s->wall_s : 0, "ev/s", 0);
    snprintf(name, sizeof(name), "%s: events/CPU-s", what);
    srow(name, n / e->cpu_s, s->ok ? n / s->cpu_s : 0, "ev/cpu-s", 1);
    fig_rss(efig, sizeof(efig), e);
    if (s->ok)
        fig_rss(sfig, sizeof(sfig), s);
    printf("SROW\t%s: peak RSS per process\t%s\t%s\t-\t-\t-\n", what, efig, sfig);
    fflush(stdout);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc >= 9 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "member"))
        return member_enrich(argv);
    if (!bench_bootstrap()) {
        printf("NOTE\tbench_enrich_scale skipped: it needs a real broker (KAFKA_BOOTSTRAP)\n");
        return 0;
    }
    static bench_t b;
    static bench_strings_t s;
    const char *set = getenv("UE_BENCH_SCALE_SETTING");
    b.n = bench_env_long("UE_BENCH_ENRICH_EVENTS", 200000);
    b.partitions = (int)bench_env_long("UE_BENCH_SCALE_PARTITIONS", 6);
    b.recovery_lag = bench_env_long("UE_BENCH_STREAMS_RECOVERY_LAG", INT64_MAX);
    if (sscanf(set && *set ? set : "10000/100/1000", "%ld/%ld/%ld", &b.set.txn_events,
               &b.set.txn_ms, &b.set.batch) != 3 ||
        b.n < BENCH_TYPES || b.partitions < 2 || b.partitions > MAX_TASKS)
        bench_die("bench_enrich_scale", "bad UE_BENCH_SCALE_SETTING, _PARTITIONS or _EVENTS");
    self_exe(b.exe, sizeof(b.exe));
    int have_streams = streams_dir(b.jars, sizeof(b.jars), b.exe) && bench_selected("streams");
    bench_strings_init(&s);

    group_result_t e[2] = {{0}}, st[2] = {{0}};
    const char *eruns[] = {"enrich1", "enrich2"}, *sruns[] = {"streams1", "streams2"};
    for (int k = 0; k < 2; k++) {
        if (bench_selected("enrich"))
            e[k] = run_group(&b, 0, k + 1, eruns[k], &s);
        if (have_streams)
            st[k] = run_group(&b, 1, k + 1, sruns[k], &s);
    }
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        if (!e[k].ok) {
            rc |= bench_selected("enrich");
            continue;
        }
        rows(&b, &e[k], &st[k]);
        if (e[k].aborts)
            printf("NOTE\tscale: enrich with %d processor%s aborted %ld transaction(s) and redid "
                   "them (%ld events processed for %ld)\n",
                   k + 1, k ? "s" : "", e[k].aborts, e[k].processed, b.n);
        if (have_streams && !st[k].ok)
            printf("NOTE\tscale: the Kafka Streams run with %d instance%s failed (see stderr)\n",
                   k + 1, k ? "s" : "");
    }
    if (e[0].ok && e[1].ok) {
        char sratio[32] = "-";
        if (st[0].ok && st[1].ok)
            snprintf(sratio, sizeof(sratio), "%.2fx", st[0].wall_s / st[1].wall_s);
        printf("NOTE\tscale: 2 processors give %.2fx the events/s of 1 (Kafka Streams: %s); "
               "both share the machine's cores with the broker and every other process\n",
               e[0].wall_s / e[1].wall_s, sratio);
    }
    printf("NOTE\tscale: %ld events on 3 topics x %d partitions (= tasks), txn %ld/%ldms batch "
           "%ld (Streams: commit.interval.ms %ld, max.poll.records %ld); time from the first "
           "record to the group's committed offsets covering the input (seen every %d ms); CPU "
           "of every member process summed\n",
           b.n, b.partitions, b.set.txn_events, b.set.txn_ms, b.set.batch, b.set.txn_ms,
           b.set.batch, WATCH_MS);
    if (have_streams)
        printf("NOTE\tscale: Kafka Streams 4.3.1, one JVM (-Xmx%s, 1 stream thread) per instance, "
               "static membership, acceptable.recovery.lag %s\n",
               streams_heap(),
               b.recovery_lag == INT64_MAX ? "max (tasks move at once, as in "
                                             "libenrich)"
               : b.recovery_lag < 0        ? "default (10000)"
                                           : "as set");
    return rc;
}
