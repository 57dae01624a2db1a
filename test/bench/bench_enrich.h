/*
 * bench_enrich.h - what the libenrich benchmarks share (bench_enrich, bench_enrich_scale,
 * bench_enrich_rebalance): the raw input and the profiles, the processor's settings, and the
 * figures of a measured process (CPU, peak RSS) and where the Kafka Streams peer was built.
 *
 * The input: events tracked with libuserevents on "<prefix>.ev.<type>" (1000 users, 3 types,
 * ip and user agent context, an amount property), keyed by user id, so the three raw topics
 * are co-partitioned as libenrich's tasks need; and 1000 profiles on "<prefix>.profiles".
 *
 * Header-only (static inline), like bench_util.h: the Makefile makes each .c file a binary.
 */
#ifndef UE_BENCH_ENRICH_H
#define UE_BENCH_ENRICH_H

#include "bench_util.h"
#include "enrich.h"
#include "enriched.pb-c.h"

#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char *const enr_bench_ips[] = {"81.2.69.142", "2001:db8:1::7", "203.0.113.9",
                                            "89.160.20.112"};
static const char *const enr_bench_uas[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};

/* A processor's transaction and batch settings; Streams gets commit.interval.ms = txn_ms and
 * max.poll.records = batch. */
typedef struct setting {
    long txn_events, txn_ms, batch;
} setting_t;

/* ---- the measured process -------------------------------------------------------------------- */

static inline long proc_status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* User + sys of every thread of this process, like the JVM's getProcessCpuTime(). */
static inline int64_t rusage_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* ---- names ----------------------------------------------------------------------------------- */

/* "<run prefix>-<name>": the topics of one input are "<prefix>.ev.<type>". */
static inline void enr_bench_prefix(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s-%s", bench_run_prefix(), name);
}

static inline void input_regex(char *out, size_t n, const char *prefix)
{
    snprintf(out, n, "^%s\\.ev\\..*", prefix); /* the prefix has no regex metacharacters */
}

static inline void input_topic(char *out, size_t n, const char *prefix, int type)
{
    snprintf(out, n, "%s.ev.%s", prefix, bench_types[type]);
}

/* ---- the processor's settings ---------------------------------------------------------------- */

static void enr_set(enr_conf_t *conf, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void enr_set(enr_conf_t *conf, const char *name, const char *fmt, ...)
{
    char value[512], errstr[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (enr_conf_set(conf, name, value, errstr, sizeof(errstr)) != ENR_CONF_OK)
        bench_die(name, errstr);
}

/* UE_BENCH_ENRICH_CONF: "key=value,..." added to every enrich run (experiments). */
static inline void extra_conf(enr_conf_t *conf)
{
    const char *v = getenv("UE_BENCH_ENRICH_CONF");
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", v ? v : "");
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            bench_die("UE_BENCH_ENRICH_CONF", kv);
        *eq = '\0';
        enr_set(conf, kv, "%s", eq + 1);
    }
}

/* The configuration of run @p run on input @p prefix: group "<prefix>.<run>", its own output
 * topics, the default stages without geoip (no database here). */
static inline enr_conf_t *enrich_conf(const char *prefix, const char *run, const setting_t *s)
{
    char regex[300];
    enr_conf_t *conf = enr_conf_new();
    input_regex(regex, sizeof(regex), prefix);
    enr_set(conf, "kafka.bootstrap.servers", "%s", bench_bootstrap());
    enr_set(conf, "group.id", "%s.%s", prefix, run);
    enr_set(conf, "input.topics", "%s", regex);
    enr_set(conf, "output.topic", "%s.%s.enriched", prefix, run);
    enr_set(conf, "dead_letter.topic", "%s.%s.dlq", prefix, run);
    enr_set(conf, "aggregates.topic", "%s.%s.agg", prefix, run);
    enr_set(conf, "alerts.topic", "%s.%s.alerts", prefix, run);
    enr_set(conf, "profile.topic", "%s.profiles", prefix);
    enr_set(conf, "stages", "dedup,clock,useragent,profile,session,window,anomaly");
    enr_set(conf, "txn.max.events", "%ld", s->txn_events);
    enr_set(conf, "txn.max.ms", "%ld", s->txn_ms);
    enr_set(conf, "batch.max.events", "%ld", s->batch);
    extra_conf(conf);
    return conf;
}

/* The output topics of enrich run @p run, appended to @p names at @p k; returns the new k. */
static inline int enrich_topics(char (*names)[256], int k, const char *prefix, const char *run)
{
    static const char *const outs[] = {"enriched", "dlq", "agg", "alerts"};
    for (int o = 0; o < 4; o++)
        snprintf(names[k++], sizeof(names[0]), "%s.%s.%s", prefix, run, outs[o]);
    return k;
}

/* ---- the input, not timed -------------------------------------------------------------------- */

static inline void produce_profiles(const char *prefix, const bench_strings_t *s)
{
    static const char *const plans[] = {"free", "pro", "team"};
    char topic[300];
    uint8_t buf[256];
    bench_dr_t dr = {0};
    rd_kafka_t *rk = bench_raw_new(&dr, NULL);
    snprintf(topic, sizeof(topic), "%s.profiles", prefix);
    for (int u = 0; u < BENCH_USERS; u++) {
        Userevents__UserProfile p = USEREVENTS__USER_PROFILE__INIT;
        p.user_id = (char *)s->users[u];
        p.plan = (char *)plans[u % 3];
        p.country = u % 2 ? "GB" : "SE";
        size_t len = userevents__user_profile__pack(&p, buf);
        if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(p.user_id, strlen(p.user_id)),
                              RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_END))
            bench_die("profiles", "produce failed");
    }
    rd_kafka_flush(rk, 60000);
    if (dr.ok != BENCH_USERS)
        bench_die("profiles", "not delivered");
    rd_kafka_destroy(rk);
}

/* A client tracking onto "<run prefix>-<name>.ev.<type>", room for @p queue events. */
static inline ue_client_t *input_client(const char *name, long queue)
{
    char tag[128], qmax[32];
    snprintf(tag, sizeof(tag), "%s.ev", name);
    snprintf(qmax, sizeof(qmax), "%ld", queue + 16);
    const char *extra[] = {"queue.max.events", qmax, "queue.max.bytes", "1073741824", NULL};
    return bench_sdk_new(tag, extra);
}

/* Builds event @p i of the input into @p ev: user (the key) i / 3 % 1000, type i % 3. */
static inline void build_input(ue_event_t *ev, const bench_strings_t *s, long i)
{
    long user = (i / BENCH_TYPES) % BENCH_USERS;
    ue_event_reset(ev, bench_types[i % BENCH_TYPES]);
    ue_event_set_user_id(ev, s->users[user]);
    ue_event_set_context(ev, "ip", enr_bench_ips[(user + i) % 4]);
    ue_event_set_context(ev, "user_agent", enr_bench_uas[user % 4]);
    ue_event_prop_string(ev, "path", s->paths[i % BENCH_PATHS]);
    ue_event_prop_double(ev, "amount", 9.99 + (double)(i % 100));
}

static inline void track_input(ue_client_t *c, ue_event_t *ev, const bench_strings_t *s, long i)
{
    build_input(ev, s, i);
    if (ue_track(c, ev) != UE_OK)
        bench_die("input", "ue_track failed");
}

/* N events through libuserevents onto "<run prefix>-<name>.ev.<type>". */
static inline void produce_input(const char *name, long n, const bench_strings_t *s)
{
    ue_client_t *c = input_client(name, n);
    ue_event_t *ev = ue_event_new("x");
    for (long i = 0; i < n; i++)
        track_input(c, ev, s, i);
    ue_event_destroy(ev);
    if (ue_flush(c, 300000) != UE_OK || ue_stat(c, UE_STAT_DELIVERED) != n)
        bench_die("input", "events not delivered within 300 s");
    ue_client_destroy(c);
}

/* ---- the Kafka Streams peer ------------------------------------------------------------------ */

/* BUILD/bench/streams beside this binary, when test/bench/streams/build.sh built it. */
static inline int streams_dir(char *out, size_t n, const char *exe)
{
    char cls[PATH_MAX * 2 + 64];
    const char *slash = strrchr(exe, '/');
    snprintf(out, n, "%.*s/streams", slash ? (int)(slash - exe) : 1, slash ? exe : ".");
    snprintf(cls, sizeof(cls), "%s/classes/StreamsPeer.class", out);
    return access(cls, R_OK) == 0;
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a Streams state directory and everything in it. */
static inline void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *streams_heap(void)
{
    const char *heap = getenv("UE_BENCH_STREAMS_XMX");
    return heap && *heap ? heap : "256m";
}

/* This binary's path (children are this binary re-executed). */
static inline void self_exe(char *out, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    if (len <= 0)
        bench_die("readlink", "no /proc/self/exe");
    out[len] = '\0';
}

#endif
