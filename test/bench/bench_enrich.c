/*
 * bench_enrich.c - libenrich's processor end to end on the real broker: consume the raw
 * topics, run the stages, produce the enriched events, the stage changelog and the offsets in
 * Kafka transactions. Figures: events/s (wall), events per CPU-second of the process (user +
 * sys of every thread: "per core") and peak RSS, for a few txn.max.events / txn.max.ms /
 * batch.max.events settings, beside two peers run on the same input in the same run:
 *
 *   - Kafka Streams (test/bench/streams/, exactly_once_v2, commit.interval.ms = txn.max.ms,
 *     max.poll.records = batch.max.events): dedup in a window store, sessions in a key-value
 *     store, an EnrichedEvent-shaped output. The goal: enrich >= 5x its events/s and
 *     events per CPU-second at <= 1/10 of its memory.
 *   - plain librdkafka, the floor: a read_committed consumer copying each record to an
 *     idempotent, non-transactional producer (same compression and linger), offsets committed
 *     once at the end.
 *
 * Not timed: N raw events tracked with libuserevents beforehand (1000 users, 3 types, ip and
 * user agent context, an amount property) and 1000 user profiles. Every measured side runs
 * in a process of its own (this binary re-executed, or the JVM), so peak RSS (VmHWM) is that
 * side's alone and not the producer's. The clock and the CPU count start just before the
 * call that returns the first input records (client creation, state restore and the group
 * join are not timed) and stop when the last record's transaction has committed (C: when
 * enr_processor_destroy(), which commits, returns; Streams: when the group's committed
 * offsets cover the whole input). Stages: the defaults without geoip (no database here).
 *
 * Environment: UE_BENCH_ENRICH_EVENTS (200000), UE_BENCH_ENRICH_SETTINGS (txn events/txn
 * ms/batch events, comma-separated; "1000/100/1000,10000/100/1000,10000/1000/1000"),
 * UE_BENCH_ENRICH_CONF (extra enrich settings, "key=value,..."), UE_BENCH_STREAMS_XMX (256m),
 * UE_BENCH_ONLY ("enrich", "plain", "streams": profiling),
 * KAFKA_BOOTSTRAP (required: the processor needs transactions and a group coordinator).
 */
#include "bench_enrich.h"

#include <sys/wait.h>

#define MAX_SETTINGS 8
#define GOAL_SPEED 5.0 /* issue goal: >= 5x Kafka Streams' events/s and events per CPU-s */
#define GOAL_RSS 0.10  /* ... at <= 1/10 of its memory */
#define DEADLINE_NS INT64_C(300000000000)

/* What one measured process reports. */
typedef struct result {
    int ok;
    long events;
    double wall_s, cpu_s;
    long hwm_kb, base_kb; /* peak RSS; RSS before the client existed (C sides only) */
    long extra;           /* enrich: transactions committed; Streams: dropped */
    double commit_ms;     /* enrich: wall time of the steps that committed */
} result_t;

/* The child's one line on stdout; the parent parses it. */
static void print_result(long n, int64_t t0, int64_t t1, int64_t c0, int64_t c1, long base_kb,
                         long extra, int64_t commit_ns)
{
    printf("RESULT %ld %.6f %.6f %ld %ld %ld %.1f\n", n, (double)(t1 - t0) / 1e9,
           (double)(c1 - c0) / 1e9, proc_status_kb("VmHWM"), base_kb, extra,
           (double)commit_ns / 1e6);
    fflush(stdout);
}

/* ---- the enrich child ------------------------------------------------------------------------ */

static enr_processor_t *enrich_new(const char *prefix, const char *run, const setting_t *s)
{
    char errstr[512];
    enr_processor_t *p = enr_processor_new(enrich_conf(prefix, run, s), errstr, sizeof(errstr));
    if (!p)
        bench_die("enr_processor_new", errstr);
    return p;
}

/* argv: --child enrich PREFIX RUN EVENTS TXN_EVENTS TXN_MS BATCH */
static int child_enrich(char **argv)
{
    const char *prefix = argv[3], *run = argv[4];
    long n = atol(argv[5]);
    setting_t s = {atol(argv[6]), atol(argv[7]), atol(argv[8])};
    long base_kb = proc_status_kb("VmRSS");
    enr_processor_t *p = enrich_new(prefix, run, &s);
    int64_t t0 = 0, c0 = 0, deadline = bench_now_ns() + DEADLINE_NS;
    int64_t commit_ns = 0, empty_ns = 0, commits = 0;
    long polls = 0, empty = 0;

    while (enr_stat(p, ENR_STAT_CONSUMED) < n) {
        int64_t t = bench_now_ns(), c = rusage_cpu_ns();
        int rc = enr_poll(p, t0 ? 100 : 10);
        if (rc < 0)
            bench_die("enr_poll", enr_err2str(rc));
        if (!t0 && rc > 0)
            t0 = t, c0 = c;
        if (t0) { /* where the wall time goes: steps that committed, steps that found nothing */
            int64_t dt = bench_now_ns() - t;
            polls++;
            if (enr_stat(p, ENR_STAT_TXN_COMMITS) != commits)
                commit_ns += dt, commits = enr_stat(p, ENR_STAT_TXN_COMMITS);
            else if (rc == 0)
                empty++, empty_ns += dt;
        }
        if (t > deadline)
            bench_die("enrich", "the input was not consumed within 300 s");
    }
    int64_t t_end = bench_now_ns();
    int64_t st[ENR_STAT__CNT];
    for (int i = 0; i < ENR_STAT__CNT; i++)
        st[i] = enr_stat(p, (enr_stat_t)i);
    enr_err_t err = enr_processor_destroy(p, 60000);
    int64_t t1 = bench_now_ns(), c1 = rusage_cpu_ns();
    if (err)
        bench_die("enr_processor_destroy", enr_err2str(err));
    fprintf(stderr,
            "    enrich %s: consumed %lld, enriched %lld, dropped %lld, dead letters %lld, "
            "aggregates %lld, alerts %lld, profiles %lld, commits %lld (+1 at destroy), "
            "aborts %lld\n",
            run, (long long)st[ENR_STAT_CONSUMED], (long long)st[ENR_STAT_ENRICHED],
            (long long)st[ENR_STAT_DROPPED], (long long)st[ENR_STAT_DEAD_LETTERS],
            (long long)st[ENR_STAT_AGGREGATES], (long long)st[ENR_STAT_ALERTS],
            (long long)st[ENR_STAT_PROFILES], (long long)st[ENR_STAT_TXN_COMMITS],
            (long long)st[ENR_STAT_TXN_ABORTS]);
    fprintf(stderr,
            "    enrich %s: %ld steps; %lld that committed took %.0f ms; %ld found no input "
            "(%.0f ms); the final commit and destroy took %.0f ms; of %.0f ms\n",
            run, polls, (long long)commits, (double)commit_ns / 1e6, empty, (double)empty_ns / 1e6,
            (double)(t1 - t_end) / 1e6, (double)(t1 - t0) / 1e6);
    if (st[ENR_STAT_ENRICHED] != n || st[ENR_STAT_TXN_ABORTS])
        bench_die("enrich", "not every event was enriched exactly once");
    print_result(n, t0, t1, c0, c1, base_kb, (long)st[ENR_STAT_TXN_COMMITS] + 1,
                 commit_ns + (t1 - t_end));
    return 0;
}

/* ---- the plain librdkafka child -------------------------------------------------------------- */

static rd_kafka_t *plain_consumer(const char *prefix, const char *run)
{
    char errstr[512], group[300], topic[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(group, sizeof(group), "%s.%s", prefix, run);
    bench_raw_set(conf, "bootstrap.servers", bench_bootstrap());
    bench_raw_set(conf, "group.id", group);
    bench_raw_set(conf, "isolation.level", "read_committed");
    bench_raw_set(conf, "enable.auto.commit", "false");
    bench_raw_set(conf, "auto.offset.reset", "earliest");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        bench_die("consumer", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(BENCH_TYPES);
    for (int t = 0; t < BENCH_TYPES; t++) {
        input_topic(topic, sizeof(topic), prefix, t);
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    }
    if (rd_kafka_subscribe(rk, topics))
        bench_die("consumer", "subscribe failed");
    rd_kafka_topic_partition_list_destroy(topics);
    return rk;
}

/* Copies one consumed record to @p out (key and value), waiting while the queue is full. */
static void plain_copy(rd_kafka_t *prod, rd_kafka_topic_t *out, const rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(prod, RD_KAFKA_V_RKT(out), RD_KAFKA_V_KEY(m->key, m->key_len),
                                    RD_KAFKA_V_VALUE(m->payload, m->len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(prod, 10);
    if (err)
        bench_die("plain produce", rd_kafka_err2str(err));
}

/* argv: --child plain PREFIX RUN EVENTS BATCH */
static int child_plain(char **argv)
{
    const char *prefix = argv[3], *run = argv[4];
    long n = atol(argv[5]), got = 0, max = atol(argv[6]);
    long base_kb = proc_status_kb("VmRSS");
    char topic[300];
    bench_dr_t dr = {0};
    rd_kafka_t *prod = bench_raw_new(&dr, NULL); /* the SDK's settings: idempotent, zstd */
    rd_kafka_t *cons = plain_consumer(prefix, run);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(cons);
    snprintf(topic, sizeof(topic), "%s.%s.out", prefix, run);
    rd_kafka_topic_t *out = rd_kafka_topic_new(prod, topic, NULL);
    rd_kafka_message_t *batch[1024];
    int64_t t0 = 0, c0 = 0, deadline = bench_now_ns() + DEADLINE_NS;

    if (max < 1 || max > 1024)
        max = 1024;
    while (got < n) {
        int64_t t = bench_now_ns(), c = rusage_cpu_ns();
        ssize_t k = rd_kafka_consume_batch_queue(q, t0 ? 100 : 10, batch, (size_t)max);
        for (ssize_t i = 0; i < k; i++) {
            if (!batch[i]->err) {
                plain_copy(prod, out, batch[i]);
                got++;
            }
            rd_kafka_message_destroy(batch[i]);
        }
        rd_kafka_poll(prod, 0);
        if (!t0 && got > 0)
            t0 = t, c0 = c;
        if (t > deadline)
            bench_die("plain", "the input was not consumed within 300 s");
    }
    rd_kafka_flush(prod, 60000);
    rd_kafka_resp_err_t err = rd_kafka_commit(cons, NULL, 0);
    int64_t t1 = bench_now_ns(), c1 = rusage_cpu_ns();
    if (err || dr.ok != n)
        bench_die("plain", err ? rd_kafka_err2str(err) : "not every record was acknowledged");
    print_result(n, t0, t1, c0, c1, base_kb, 0, 0);
    rd_kafka_topic_destroy(out);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return 0;
}

/* ---- the input, not timed -------------------------------------------------------------------- */

/* Input, profile and every run's output topics, so no run waits for a topic to appear. */
static void create_topics(const char *prefix, int nset)
{
    static char names[4 + MAX_SETTINGS * 5 + 1][256];
    char run[32];
    int k = 0;
    for (int t = 0; t < BENCH_TYPES; t++)
        input_topic(names[k++], sizeof(names[0]), prefix, t);
    snprintf(names[k++], sizeof(names[0]), "%s.profiles", prefix);
    snprintf(names[k++], sizeof(names[0]), "%s.plain.out", prefix);
    for (int i = 0; i < nset; i++) {
        snprintf(run, sizeof(run), "enrich%d", i);
        k = enrich_topics(names, k, prefix, run);
        snprintf(names[k++], sizeof(names[0]), "%s.streams%d.out", prefix, i);
    }
    bench_create_topics(names, k);
}

/* ---- the measured processes ------------------------------------------------------------------ */

/* Runs @p argv (execvp) with stdout on a pipe; its RESULT line is the result, the rest is
 * passed on to stderr. */
static result_t spawn(const char *label, char *const argv[])
{
    result_t r = {.commit_ms = -1};
    char line[1024];
    int fd[2], status = 0;
    if (pipe(fd))
        bench_die("pipe", "failed");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "bench: cannot run %s\n", argv[0]);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "RESULT ", 7))
            r.ok = sscanf(line + 7, "%ld %lf %lf %ld %ld %ld %lf", &r.events, &r.wall_s, &r.cpu_s,
                          &r.hwm_kb, &r.base_kb, &r.extra, &r.commit_ms) >= 6;
        else
            fputs(line, stderr);
    }
    if (f)
        fclose(f);
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        r.ok = 0;
    if (r.ok)
        fprintf(stderr, "    %s%s: %.0f events/s, %.0f events per CPU-s, peak RSS %.1f MB\n", label,
                "", (double)r.events / r.wall_s, (double)r.events / r.cpu_s,
                (double)r.hwm_kb / 1024);
    return r;
}

static result_t run_child(const char *exe, const char *kind, const char *prefix, const char *run,
                          long n, const setting_t *s)
{
    char ns[32], a[32], b[32], c[32];
    snprintf(ns, sizeof(ns), "%ld", n);
    snprintf(a, sizeof(a), "%ld", s->txn_events);
    snprintf(b, sizeof(b), "%ld", s->txn_ms);
    snprintf(c, sizeof(c), "%ld", s->batch);
    fprintf(stderr, "  %s %s (txn %ld/%ld ms, batch %ld)\n", kind, run, s->txn_events, s->txn_ms,
            s->batch);
    if (!strcmp(kind, "plain"))
        return spawn(run, (char *const[]){(char *)exe, "--child", "plain", (char *)prefix,
                                          (char *)run, ns, c, NULL});
    return spawn(run, (char *const[]){(char *)exe, "--child", "enrich", (char *)prefix, (char *)run,
                                      ns, a, b, c, NULL});
}

/* The Kafka Streams peer in its own JVM; commit.interval.ms = txn.max.ms. */
static result_t run_streams(const char *jar_dir, const char *prefix, const char *run, long n,
                            const setting_t *s)
{
    char cp[PATH_MAX * 2 + 64], xmx[64], app[300], out[300], ns[32], ms[32], batch[32];
    char in[BENCH_TYPES][256], dir[] = "/tmp/ue-bench-streams.XXXXXX";
    if (!mkdtemp(dir))
        bench_die("mkdtemp", "cannot create the Streams state directory");
    snprintf(cp, sizeof(cp), "%s/classes:%s/lib/*", jar_dir, jar_dir);
    snprintf(xmx, sizeof(xmx), "-Xmx%s", streams_heap());
    snprintf(app, sizeof(app), "%s.%s", prefix, run);
    snprintf(out, sizeof(out), "%s.%s.out", prefix, run);
    snprintf(ns, sizeof(ns), "%ld", n);
    snprintf(ms, sizeof(ms), "%ld", s->txn_ms);
    snprintf(batch, sizeof(batch), "%ld", s->batch);
    for (int t = 0; t < BENCH_TYPES; t++)
        input_topic(in[t], sizeof(in[t]), prefix, t);
    fprintf(stderr, "  streams %s (commit.interval.ms %ld, max.poll.records %ld, %s)\n", run,
            s->txn_ms, s->batch, xmx);
    result_t r =
        spawn(run, (char *const[]){"java", xmx, "-cp", cp, "StreamsPeer", (char *)bench_bootstrap(),
                                   app, out, ns, ms, batch, dir, in[0], in[1], in[2], NULL});
    rm_tree(dir);
    if (r.ok && r.extra) { /* every input event is unique and valid: it must write them all */
        fprintf(stderr, "bench: Streams peer dropped %ld events\n", r.extra);
        r.ok = 0;
    }
    return r;
}

/* ---- rows ------------------------------------------------------------------------------------ */

static double eps(const result_t *r)
{
    return (double)r->events / r->wall_s;
}

static double per_cpu(const result_t *r)
{
    return (double)r->events / r->cpu_s;
}

static double rss_mb(const result_t *r)
{
    return (double)r->hwm_kb / 1024;
}

/* "EROW name enrich streams enrich/streams goal meets plain enrich/plain": run.sh's table. */
static void erow(const char *name, const char *unit, double (*fig)(const result_t *),
                 const result_t *e, const result_t *st, const result_t *pl, int lower_is_better)
{
    char sfig[64] = "-", sratio[32] = "-", pfig[64] = "-", pratio[32] = "-";
    const char *meets = "-";
    double goal = lower_is_better ? GOAL_RSS : GOAL_SPEED;
    if (st->ok) {
        double ratio = fig(e) / fig(st);
        snprintf(sfig, sizeof(sfig), "%.0f %s", fig(st), unit);
        snprintf(sratio, sizeof(sratio), "%.2f", ratio);
        meets = (lower_is_better ? ratio <= goal : ratio >= goal) ? "yes" : "no";
    }
    if (pl->ok) {
        snprintf(pfig, sizeof(pfig), "%.0f %s", fig(pl), unit);
        snprintf(pratio, sizeof(pratio), "%.2f", fig(e) / fig(pl));
    }
    printf("EROW\t%s\t%.0f %s\t%s\t%s\t%s %.2f\t%s\t%s\t%s\n", name, fig(e), unit, sfig, sratio,
           lower_is_better ? "<=" : ">=", goal, meets, pfig, pratio);
    fflush(stdout);
}

static void rows(const setting_t *s, const result_t *e, const result_t *st, const result_t *pl)
{
    char name[3][96];
    snprintf(name[0], sizeof(name[0]), "txn %ld/%ldms batch %ld: events/s", s->txn_events,
             s->txn_ms, s->batch);
    snprintf(name[1], sizeof(name[1]), "txn %ld/%ldms batch %ld: events/CPU-s", s->txn_events,
             s->txn_ms, s->batch);
    snprintf(name[2], sizeof(name[2]), "txn %ld/%ldms batch %ld: peak RSS", s->txn_events,
             s->txn_ms, s->batch);
    erow(name[0], "ev/s", eps, e, st, pl, 0);
    erow(name[1], "ev/cpu-s", per_cpu, e, st, pl, 0);
    erow(name[2], "MB", rss_mb, e, st, pl, 1);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int parse_settings(setting_t *out)
{
    const char *v = getenv("UE_BENCH_ENRICH_SETTINGS");
    char buf[512], *save = NULL;
    int n = 0;
    snprintf(buf, sizeof(buf), "%s", v && *v ? v : "1000/100/1000,10000/100/1000,10000/1000/1000");
    for (char *t = strtok_r(buf, ",", &save); t && n < MAX_SETTINGS; t = strtok_r(NULL, ",", &save))
        if (sscanf(t, "%ld/%ld/%ld", &out[n].txn_events, &out[n].txn_ms, &out[n].batch) == 3)
            n++;
    return n;
}

int main(int argc, char **argv)
{
    if (argc >= 9 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "enrich"))
        return child_enrich(argv);
    if (argc >= 7 && !strcmp(argv[1], "--child") && !strcmp(argv[2], "plain"))
        return child_plain(argv);
    if (!bench_bootstrap()) {
        printf("NOTE\tbench_enrich skipped: it needs a real broker (KAFKA_BOOTSTRAP)\n");
        return 0;
    }
    long n = bench_env_long("UE_BENCH_ENRICH_EVENTS", 200000);
    setting_t set[MAX_SETTINGS];
    int nset = parse_settings(set);
    char exe[PATH_MAX], prefix[128], jars[PATH_MAX + 16], run[32];
    if (n < BENCH_TYPES || nset < 1)
        bench_die("bench_enrich", "bad UE_BENCH_ENRICH_EVENTS or UE_BENCH_ENRICH_SETTINGS");
    self_exe(exe, sizeof(exe));
    int have_streams = streams_dir(jars, sizeof(jars), exe);
    static bench_strings_t s;
    bench_strings_init(&s);
    enr_bench_prefix(prefix, sizeof(prefix), "enr");

    fprintf(stderr, "  input: %ld events on %s.ev.{type} (not timed)\n", n, prefix);
    create_topics(prefix, nset);
    produce_profiles(prefix, &s);
    produce_input("enr", n, &s);

    result_t plain = {0}, enrich[MAX_SETTINGS] = {{0}}, streams[MAX_SETTINGS] = {{0}};
    if (bench_selected("plain"))
        plain = run_child(exe, "plain", prefix, "plain", n, &set[0]);
    for (int i = 0; i < nset; i++) {
        snprintf(run, sizeof(run), "enrich%d", i);
        if (bench_selected("enrich"))
            enrich[i] = run_child(exe, "enrich", prefix, run, n, &set[i]);
        int same = -1; /* Streams has no per-transaction event cap: one run per (ms, batch) */
        for (int j = 0; j < i && same < 0; j++)
            if (set[j].txn_ms == set[i].txn_ms && set[j].batch == set[i].batch)
                same = j;
        snprintf(run, sizeof(run), "streams%d", i);
        if (same >= 0)
            streams[i] = streams[same];
        else if (have_streams && bench_selected("streams"))
            streams[i] = run_streams(jars, prefix, run, n, &set[i]);
    }
    if (!bench_selected("enrich"))
        return 0;
    int rc = 0;
    for (int i = 0; i < nset; i++) {
        if (!enrich[i].ok) {
            rc = 1;
            continue;
        }
        rows(&set[i], &enrich[i], &streams[i], &plain);
        printf("NOTE\tenrich txn %ld/%ldms batch %ld: %ld transactions; the steps that committed "
               "took %.0f%% of the wall time; RSS %.1f MB before the processor existed\n",
               set[i].txn_events, set[i].txn_ms, set[i].batch, enrich[i].extra,
               100 * enrich[i].commit_ms / 1000 / enrich[i].wall_s,
               (double)enrich[i].base_kb / 1024);
        if (have_streams && bench_selected("streams") && !streams[i].ok)
            printf("NOTE\tenrich: the Kafka Streams peer failed for txn %ld/%ldms (see stderr)\n",
                   set[i].txn_events, set[i].txn_ms);
    }
    if (bench_selected("plain") && !plain.ok)
        printf("NOTE\tenrich: the plain librdkafka peer failed (see stderr)\n");
    if (!have_streams)
        printf("NOTE\tenrich: no Kafka Streams peer (test/bench/streams/build.sh did not build "
               "it): its columns are empty\n");
    else
        printf("NOTE\tenrich: Kafka Streams 4.3.1 peer, 1 stream thread, exactly_once_v2, RocksDB "
               "stores, JVM -Xmx%s started cold (JIT warm-up inside its clock); it parses, "
               "dedups, sessionizes and writes %ld events but does not parse user agents, join "
               "profiles, aggregate windows or score anomalies\n",
               streams_heap(), n);
    printf("NOTE\tenrich: plain = librdkafka consume (read_committed) -> idempotent produce, "
           "bytes copied, no transactions: the floor\n");
    return rc;
}
