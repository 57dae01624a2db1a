/*
 * bench_group.h - processors of one consumer group run as separate processes ("members") and
 * watched from outside: what bench_enrich_scale and bench_enrich_rebalance share.
 *
 * A member is a libenrich processor (this binary re-executed as "--child member") or a Kafka
 * Streams instance (StreamsPeer --member). No member can know when the group as a whole is
 * done, so each runs until its stdin closes, and the parent decides by watching the group's
 * committed offsets on every input partition (watch_t). Each member prints on stdout:
 *
 *   TASKS <ns> <p,p,...|->   whenever the tasks (input partition numbers) it owns change;
 *   MEMBER <processed> <written> <first record ns> <cpu s> <peak RSS kB>   at the end;
 *
 * with <ns> from CLOCK_MONOTONIC, which is system-wide (the JVM's System.nanoTime() reads the
 * same clock), so the parent can lay every member's times and its own on one time line.
 */
#ifndef UE_BENCH_GROUP_H
#define UE_BENCH_GROUP_H

#include "bench_enrich.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define MEMBER_HIST 64 /* task changes kept per member */
#define MAX_TASKS 64   /* partitions per input topic that tasks can stand for (a bit mask) */

/* ---- the libenrich member (the child side) --------------------------------------------------- */

typedef struct member_child {
    uint64_t tasks;         /* owned now, from the processor's "tasks ..." log lines */
    double commit_ms[4096]; /* the latest commits' durations, a ring */
    long commits;
} member_child_t;

/* Owned tasks follow the processor's own notice ("tasks assigned: 0,3; 2 of 6 owned"), logged
 * at the end of the rebalance callback, once taken tasks are restored: there is no API for the
 * list, and the count (ENR_STAT_TASKS) does not say which. */
static inline void member_on_log(int level, const char *msg, void *opaque)
{
    member_child_t *c = opaque;
    const char *kinds[] = {"tasks assigned: ", "tasks revoked: ", "tasks lost: "};
    for (int k = 0; k < 3; k++) {
        const char *at = strstr(msg, kinds[k]);
        if (!at)
            continue;
        for (const char *p = at + strlen(kinds[k]); *p >= '0' && *p <= '9';) {
            char *end;
            long t = strtol(p, &end, 10);
            if (t >= 0 && t < MAX_TASKS)
                c->tasks = k == 0 ? c->tasks | (UINT64_C(1) << t) : c->tasks & ~(UINT64_C(1) << t);
            p = *end == ',' ? end + 1 : end;
        }
        char list[MAX_TASKS * 4] = "-";
        size_t len = 0;
        for (int t = 0; t < MAX_TASKS; t++)
            if (c->tasks >> t & 1)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", len ? "," : "", t);
        printf("TASKS %lld %s\n", (long long)bench_now_ns(), list);
        fflush(stdout);
        return;
    }
    if (level <= 4 || getenv("UE_BENCH_DEBUG"))
        fprintf(stderr, "    member %.3f: %s\n", (double)bench_now_ns() / 1e9, msg);
}

static inline void member_on_txn(enr_err_t result, int64_t events, int64_t txn_ms,
                                 int64_t commit_ms, void *opaque)
{
    member_child_t *c = opaque;
    (void)txn_ms;
    if (result == ENR_OK && events > 0)
        c->commit_ms[c->commits++ % 4096] = (double)commit_ms;
}

/* 1 once the parent closed our stdin: the group is done, or the run is over. */
static inline int member_told_to_stop(void)
{
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    char buf[64];
    return poll(&pfd, 1, 0) > 0 && read(0, buf, sizeof(buf)) <= 0;
}

/* argv: --child member PREFIX RUN INSTANCE_ID TXN_EVENTS TXN_MS BATCH. Prints TASKS lines,
 * then "MEMBER <consumed> <enriched> <first ns> <cpu s> <kB> <aborts> <commits> <median
 * commit ms>". */
static inline int member_enrich(char **argv)
{
    static member_child_t c;
    char errstr[512];
    setting_t s = {atol(argv[6]), atol(argv[7]), atol(argv[8])};
    enr_conf_t *conf = enrich_conf(argv[3], argv[4], &s);
    enr_set(conf, "instance.id", "%s", argv[5]);
    /* UE_BENCH_DEBUG=info also shows each restore's size and time */
    const char *debug = getenv("UE_BENCH_DEBUG");
    enr_set(conf, "log.level", "%s", debug && !strcmp(debug, "info") ? "info" : "notice");
    enr_conf_set_log_cb(conf, member_on_log, &c);
    enr_conf_set_txn_cb(conf, member_on_txn, &c);
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!p)
        bench_die("enr_processor_new", errstr);
    int64_t t0 = 0, c0 = 0;
    while (!member_told_to_stop()) {
        int64_t t = bench_now_ns(), cpu = rusage_cpu_ns();
        int rc = enr_poll(p, 100);
        if (rc < 0) {
            fprintf(stderr, "    member %s: %s: %s\n", argv[5], enr_err2str(rc),
                    enr_processor_last_error(p));
            return 1;
        }
        if (!t0 && rc > 0)
            t0 = t, c0 = cpu;
    }
    int64_t c1 = rusage_cpu_ns();
    long n = c.commits < 4096 ? c.commits : 4096;
    double p50 = n ? bench_median(c.commit_ms, (int)n) : 0;
    long long consumed = enr_stat(p, ENR_STAT_CONSUMED), enriched = enr_stat(p, ENR_STAT_ENRICHED);
    long long aborts = enr_stat(p, ENR_STAT_TXN_ABORTS);
    fprintf(stderr,
            "    member %s: %lld rebalance callbacks took %lld ms in all; %lld changelog "
            "records restored\n",
            argv[5], (long long)enr_stat(p, ENR_STAT_REBALANCES),
            (long long)enr_stat(p, ENR_STAT_REBALANCE_MS),
            (long long)enr_stat(p, ENR_STAT_RESTORE_RECORDS));
    enr_err_t err = enr_processor_destroy(p, 30000);
    printf("MEMBER %lld %lld %lld %.6f %ld %lld %ld %.1f\n", consumed, enriched, (long long)t0,
           t0 ? (double)(c1 - c0) / 1e9 : 0.0, proc_status_kb("VmHWM"), aborts, c.commits, p50);
    fflush(stdout);
    return err != ENR_OK;
}

/* ---- a member (the parent side) -------------------------------------------------------------- */

typedef struct member {
    char name[16];
    pid_t pid;
    int out, in; /* its stdout (we read), its stdin (we close to stop it) */
    char buf[4096];
    size_t len;
    int64_t started_ns, gone_ns; /* spawned; killed or stopped */
    uint64_t tasks;
    struct {
        int64_t ns;
        uint64_t tasks;
    } hist[MEMBER_HIST];
    int nhist;
    int done, ok; /* MEMBER line read; and the process exited 0 */
    long processed, written, aborts, commits;
    int64_t first_ns;
    double cpu_s, commit_p50_ms;
    long hwm_kb;
} member_t;

static inline void member_line(member_t *m, char *line)
{
    long long ns, first = 0;
    char list[512];
    if (sscanf(line, "TASKS %lld %511s", &ns, list) == 2) {
        uint64_t t = 0;
        for (char *p = list; *p >= '0' && *p <= '9';) {
            long v = strtol(p, &p, 10);
            if (v >= 0 && v < MAX_TASKS)
                t |= UINT64_C(1) << v;
            if (*p == ',')
                p++;
        }
        m->tasks = t;
        if (m->nhist < MEMBER_HIST)
            m->hist[m->nhist].ns = ns, m->hist[m->nhist++].tasks = t;
    } else if (sscanf(line, "MEMBER %ld %ld %lld %lf %ld %ld %ld %lf", &m->processed, &m->written,
                      &first, &m->cpu_s, &m->hwm_kb, &m->aborts, &m->commits,
                      &m->commit_p50_ms) >= 5) {
        m->first_ns = first;
        m->done = 1;
    } else {
        fprintf(stderr, "    %s| %s\n", m->name, line);
    }
}

/* Reads what member @p m printed so far, without blocking; 0 at end of file. */
static inline int member_pump(member_t *m)
{
    for (;;) {
        ssize_t k = read(m->out, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
        if (k <= 0)
            return k == 0 ? 0 : errno == EAGAIN ? 1 : 0;
        m->len += (size_t)k;
        m->buf[m->len] = '\0';
        char *nl, *line = m->buf;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            member_line(m, line);
            line = nl + 1;
        }
        m->len -= (size_t)(line - m->buf);
        memmove(m->buf, line, m->len);
        if (m->len == sizeof(m->buf) - 1)
            m->len = 0; /* a line this long is not ours */
    }
}

/* Starts @p argv as member @p name, its stdin and stdout on pipes (close-on-exec, so no other
 * member holds them and a closed stdin reaches it). */
static inline void member_start(member_t *m, const char *name, char *const argv[])
{
    int in[2], out[2];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        bench_die("pipe", strerror(errno));
    m->started_ns = bench_now_ns();
    m->pid = fork();
    if (m->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execvp(argv[0], argv);
        fprintf(stderr, "bench: cannot run %s\n", argv[0]);
        _exit(127);
    }
    if (m->pid < 0)
        bench_die("fork", strerror(errno));
    close(in[0]);
    close(out[1]);
    m->in = in[1];
    m->out = out[0];
    fcntl(m->out, F_SETFL, O_NONBLOCK);
}

static inline void member_reap(member_t *m, int status)
{
    m->ok = m->done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    close(m->out);
    m->out = -1;
    m->pid = 0;
}

/* Closes its stdin and waits up to 60 s for its MEMBER line and its exit. */
static inline void member_stop(member_t *m)
{
    int status = 0, open = 1;
    pid_t gone = 0;
    if (!m->pid)
        return;
    close(m->in);
    m->gone_ns = bench_now_ns();
    for (int64_t end = m->gone_ns + INT64_C(60000000000); !gone && bench_now_ns() < end;) {
        struct pollfd pfd = {.fd = m->out, .events = POLLIN};
        if (open) {
            poll(&pfd, 1, 100);
            open = member_pump(m);
        } else {
            usleep(10000);
        }
        gone = waitpid(m->pid, &status, WNOHANG);
    }
    if (open)
        member_pump(m);
    if (!gone) {
        fprintf(stderr, "bench: member %s did not stop within 60 s: killed\n", m->name);
        kill(m->pid, SIGKILL);
        waitpid(m->pid, &status, 0);
        status = -1;
    }
    member_reap(m, status);
}

/* SIGKILL: a crash. */
static inline void member_kill(member_t *m)
{
    int status;
    if (!m->pid)
        return;
    kill(m->pid, SIGKILL);
    m->gone_ns = bench_now_ns();
    waitpid(m->pid, &status, 0);
    member_pump(m);
    close(m->in);
    member_reap(m, 0);
}

/* The tasks member @p m owned at time @p ns (0 before it said). */
static inline uint64_t member_tasks_at(const member_t *m, int64_t ns)
{
    uint64_t t = 0;
    for (int i = 0; i < m->nhist && m->hist[i].ns <= ns; i++)
        t = m->hist[i].tasks;
    return m->gone_ns && ns >= m->gone_ns ? 0 : t;
}

/* When member @p m, owning task @p task at @p ns, gave it up or died; -1 if it did not. */
static inline int64_t member_released_at(const member_t *m, int task, int64_t ns)
{
    for (int i = 0; i < m->nhist; i++)
        if (m->hist[i].ns >= ns && !(m->hist[i].tasks >> task & 1))
            return m->gone_ns && m->gone_ns < m->hist[i].ns ? m->gone_ns : m->hist[i].ns;
    return m->gone_ns >= ns ? m->gone_ns : -1;
}

/* When member @p m first owned task @p task after @p ns; -1 if it did not. */
static inline int64_t member_took_at(const member_t *m, int task, int64_t ns)
{
    for (int i = 0; i < m->nhist; i++)
        if (m->hist[i].ns >= ns && (m->hist[i].tasks >> task & 1))
            return m->hist[i].ns;
    return -1;
}

/* ---- members' command lines ------------------------------------------------------------------ */

typedef struct member_argv {
    char *v[24];
    char cp[PATH_MAX * 2 + 64];
    char buf[8][320];
    char in[BENCH_TYPES][256];
} member_argv_t;

/* A libenrich member: this binary as "--child member". */
static inline char *const *member_argv_enrich(member_argv_t *a, const char *exe, const char *prefix,
                                              const char *run, const char *instance,
                                              const setting_t *s)
{
    snprintf(a->buf[0], sizeof(a->buf[0]), "%ld", s->txn_events);
    snprintf(a->buf[1], sizeof(a->buf[1]), "%ld", s->txn_ms);
    snprintf(a->buf[2], sizeof(a->buf[2]), "%ld", s->batch);
    char *v[] = {(char *)exe,      "--child", "member",  (char *)prefix, (char *)run,
                 (char *)instance, a->buf[0], a->buf[1], a->buf[2],      NULL};
    memcpy(a->v, v, sizeof(v));
    return a->v;
}

/* A Kafka Streams member (its own JVM) with state in @p state_dir; @p recovery_lag < 0:
 * Streams' default acceptable.recovery.lag. */
static inline char *const *member_argv_streams(member_argv_t *a, const char *jars,
                                               const char *prefix, const char *run,
                                               const char *instance, const setting_t *s,
                                               int standbys, long recovery_lag,
                                               const char *state_dir)
{
    snprintf(a->cp, sizeof(a->cp), "%s/classes:%s/lib/*", jars, jars);
    snprintf(a->buf[0], sizeof(a->buf[0]), "-Xmx%s", streams_heap());
    snprintf(a->buf[1], sizeof(a->buf[1]), "%d", standbys);
    snprintf(a->buf[2], sizeof(a->buf[2]), "%ld", recovery_lag);
    snprintf(a->buf[3], sizeof(a->buf[3]), "%s.%s", prefix, run);
    snprintf(a->buf[4], sizeof(a->buf[4]), "%s.%s.out", prefix, run);
    snprintf(a->buf[5], sizeof(a->buf[5]), "%ld", s->txn_ms);
    snprintf(a->buf[6], sizeof(a->buf[6]), "%ld", s->batch);
    for (int t = 0; t < BENCH_TYPES; t++)
        input_topic(a->in[t], sizeof(a->in[t]), prefix, t);
    char *v[] = {"java",     a->buf[0],        "-cp",     a->cp,     "StreamsPeer",
                 "--member", (char *)instance, a->buf[1], a->buf[2], (char *)bench_bootstrap(),
                 a->buf[3],  a->buf[4],        a->buf[5], a->buf[6], (char *)state_dir,
                 a->in[0],   a->in[1],         a->in[2],  NULL};
    memcpy(a->v, v, sizeof(v));
    return a->v;
}

/* ---- the group's committed offsets, watched from outside ------------------------------------- */

/* When one partition's committed offset moved. */
typedef struct watch_moves {
    int64_t *ns;
    int n, cap;
} watch_moves_t;

typedef struct watch {
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts; /* type t, partition p at t * partitions + p */
    int partitions;
    int64_t *off, *end; /* committed now; the input's end offsets */
    watch_moves_t *moves;
    int64_t last_ns, longest_ns; /* the watch's own resolution: longest time between polls */
} watch_t;

/* A consumer of group "<prefix>.<run>" that never joins it: it only asks for the committed
 * offsets. read_uncommitted on purpose: read_committed would make each OffsetFetch wait (and
 * back off) while a transaction's offsets are pending; either way the broker only returns
 * offsets whose transaction has committed. */
static inline void watch_init(watch_t *w, const char *prefix, const char *run, int partitions)
{
    char errstr[512], group[300], topic[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    memset(w, 0, sizeof(*w));
    snprintf(group, sizeof(group), "%s.%s", prefix, run);
    bench_raw_set(conf, "bootstrap.servers", bench_bootstrap());
    bench_raw_set(conf, "group.id", group);
    bench_raw_set(conf, "isolation.level", "read_uncommitted");
    bench_raw_set(conf, "enable.auto.commit", "false");
    if (!(w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))))
        bench_die("watch", errstr);
    int n = BENCH_TYPES * partitions;
    w->partitions = partitions;
    w->parts = rd_kafka_topic_partition_list_new(n);
    for (int t = 0; t < BENCH_TYPES; t++)
        for (int p = 0; p < partitions; p++) {
            input_topic(topic, sizeof(topic), prefix, t);
            rd_kafka_topic_partition_list_add(w->parts, topic, p);
        }
    w->off = calloc((size_t)n, sizeof(*w->off));
    w->end = calloc((size_t)n, sizeof(*w->end));
    w->moves = calloc((size_t)n, sizeof(*w->moves));
    if (!w->off || !w->end || !w->moves)
        bench_die("watch", "out of memory");
}

static inline void watch_destroy(watch_t *w)
{
    for (int i = 0; i < w->parts->cnt; i++)
        free(w->moves[i].ns);
    free(w->moves);
    free(w->off);
    free(w->end);
    rd_kafka_topic_partition_list_destroy(w->parts);
    rd_kafka_destroy(w->rk);
}

/* The input's end offsets: what the group must have committed to be done. */
static inline void watch_ends(watch_t *w)
{
    for (int i = 0; i < w->parts->cnt; i++) {
        int64_t lo, hi;
        rd_kafka_topic_partition_t *tp = &w->parts->elems[i];
        if (rd_kafka_query_watermark_offsets(w->rk, tp->topic, tp->partition, &lo, &hi, 10000))
            bench_die("watch", "no end offsets");
        w->end[i] = hi;
    }
}

/* Asks once; records each partition whose committed offset moved. Returns the partitions
 * whose committed offset reached the end offset. */
static inline int watch_poll(watch_t *w)
{
    int done = 0;
    rd_kafka_resp_err_t err = rd_kafka_committed(w->rk, w->parts, 5000);
    int64_t now = bench_now_ns();
    if (w->last_ns && now - w->last_ns > w->longest_ns)
        w->longest_ns = now - w->last_ns;
    w->last_ns = now;
    for (int i = 0; !err && i < w->parts->cnt; i++) {
        int64_t o = w->parts->elems[i].err ? -1 : w->parts->elems[i].offset;
        if (o > w->off[i]) {
            if (w->moves[i].n == w->moves[i].cap) {
                w->moves[i].cap = w->moves[i].cap ? w->moves[i].cap * 2 : 1024;
                w->moves[i].ns = realloc(w->moves[i].ns, sizeof(int64_t) * w->moves[i].cap);
                if (!w->moves[i].ns)
                    bench_die("watch", "out of memory");
            }
            w->moves[i].ns[w->moves[i].n++] = now;
            w->off[i] = o;
        }
        done += w->off[i] >= w->end[i];
    }
    return done;
}

/* Reads every running member's output, then polls the offsets; sleeps to @p period_ms. */
static inline int watch_step(watch_t *w, member_t *m, int nm, int period_ms)
{
    int64_t t = bench_now_ns();
    for (int i = 0; i < nm; i++)
        if (m[i].pid && !member_pump(&m[i]) && !m[i].done) {
            int status = 0;
            waitpid(m[i].pid, &status, 0);
            fprintf(stderr, "bench: member %s exited early\n", m[i].name);
            member_reap(&m[i], status);
            m[i].gone_ns = bench_now_ns();
        }
    int done = watch_poll(w);
    int64_t left = period_ms * INT64_C(1000000) - (bench_now_ns() - t);
    if (left > 0)
        usleep((useconds_t)(left / 1000));
    return done;
}

#endif
