/*
 * it_enr_scale.c - libenrich scales out: processors of one group share the tasks (one per
 * input partition) and their state, on a real broker.
 *
 * test_processors_join_and_leave_each_event_once proves: while a stream flows, the group
 * goes from 1 to 3 processors and back to 2; each input event is enriched exactly once, every
 * event has the session a single uninterrupted processor gives it, and the window aggregates
 * (merged across tasks) equal a recomputation from the input.
 *
 * test_restart_restores_only_its_own_tasks proves: a processor restarted with its instance.id
 * gets its own tasks back and reads exactly their changelog partitions, not the whole topic.
 *
 * test_same_instance_id_fences_the_older_with_the_reason proves: two processors started with
 * one instance.id: the newer runs, the older stops with ENR_ERR_FENCED and says why.
 *
 * test_zombie_is_fenced_and_nothing_appears_twice proves: an enrichd stopped (SIGSTOP) until
 * its tasks move to another processor, then resumed, commits nothing of what it held: each id
 * still appears once, and it says it lost its tasks.
 *
 * test_misconfiguration_is_refused_with_the_reason proves: raw topics with different
 * partition counts, or a changelog with the wrong count, stop enr_processor_new() with a
 * message naming the topics, and nothing is written.
 */
#include "enriched.pb-c.h"
#include "enrich.h"
#include "itutil.h"
#include "testutil.h"
#include "userevents.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define PARTITIONS 6
#define EVENTS 48000
#define RATE 4000            /* events per second: a stream of 12 s */
#define USERS 300
#define TYPES 3
#define STEP_MS 7            /* event time between two events */
#define WINDOW_MS 10000
#define BASE_MS INT64_C(1790000000000) /* a window boundary */
#define SENTINEL_MS (BASE_MS + INT64_C(36000000))

static const char *const TYPE_NAMES[TYPES] = {"page_view", "click", "purchase"};

static struct {
    char prefix[64];
    uint8_t (*ids)[16];
    size_t n;
} in;

/* ---- processors --------------------------------------------------------------------------- */

typedef struct runner {
    enr_processor_t *p;
    pthread_t thread;
    enr_err_t rc;
    int running;
    char assigned[256]; /* the last "tasks assigned: ..." log line */
    char instance[16];
    int64_t restored;   /* from the last "restored N changelog record(s)" line */
    struct {
        char tasks[64];  /* "2,1,0" */
        int64_t records; /* what restoring them read */
    } restores[16];
    int nrestores;
} runner_t;

/* Keeps the processor's last "tasks assigned" line and what each assignment restored (the
 * processor's thread writes them; the test reads them once it stopped). */
static void keep_assigned(int level, const char *message, void *opaque)
{
    runner_t *r = opaque;
    const char *at = strstr(message, "tasks assigned: ");
    const char *restored = strstr(message, ": restored ");
    if (getenv("IT_VERBOSE"))
        fprintf(stderr, "  %s [%d] %s\n", r->instance, level, message);
    if (restored)
        r->restored = atoll(restored + 11);
    if (!at)
        return;
    snprintf(r->assigned, sizeof(r->assigned), "%s", at + 16);
    size_t len = strcspn(at + 16, ";");
    if (strncmp(at + 16, "none", 4) && r->nrestores < 16) {
        snprintf(r->restores[r->nrestores].tasks, sizeof(r->restores[0].tasks), "%.*s", (int)len,
                 at + 16);
        r->restores[r->nrestores++].records = r->restored;
    }
    r->restored = 0;
}

static void *run_thread(void *arg)
{
    runner_t *r = arg;
    r->rc = enr_run(r->p);
    return NULL;
}

/* A processor of group @p group writing "<prefix>.<group>.*", instance @p instance. */
static enr_conf_t *conf_for(const char *group, const char *instance, const char *input)
{
    char kv[20][300], errstr[512];
    size_t n = 0;
    snprintf(kv[n++], 300, "kafka.bootstrap.servers=%s", it_bootstrap());
    snprintf(kv[n++], 300, "group.id=%s.%s", in.prefix, group);
    snprintf(kv[n++], 300, "instance.id=%s", instance);
    snprintf(kv[n++], 300, "input.topics=%s", input);
    snprintf(kv[n++], 300, "output.topic=%s.%s.enriched", in.prefix, group);
    snprintf(kv[n++], 300, "dead_letter.topic=%s.%s.dlq", in.prefix, group);
    snprintf(kv[n++], 300, "aggregates.topic=%s.%s.agg", in.prefix, group);
    snprintf(kv[n++], 300, "alerts.topic=%s.%s.alerts", in.prefix, group);
    snprintf(kv[n++], 300, "profile.topic=%s.profiles", in.prefix);
    snprintf(kv[n++], 300, "stages=dedup,session,window");
    snprintf(kv[n++], 300, "session.gap.ms=60000");
    snprintf(kv[n++], 300, "window.size.ms=%d", WINDOW_MS);
    snprintf(kv[n++], 300, "window.idle.timeout.ms=0");
    snprintf(kv[n++], 300, "log.level=info"); /* the restore lines; keep_assigned() */
    enr_conf_t *conf = enr_conf_new();
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (enr_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s: %s", kv[i], errstr);
    }
    return conf;
}

static void start_on(runner_t *r, const char *group, const char *instance, const char *input)
{
    char errstr[512];
    enr_conf_t *conf = conf_for(group, instance, input);
    snprintf(r->instance, sizeof(r->instance), "%s", instance);
    r->nrestores = 0;
    r->restored = 0;
    enr_conf_set_log_cb(conf, keep_assigned, r);
    r->p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!r->p)
        fail_msg("enr_processor_new: %s", errstr);
    assert_int_equal(pthread_create(&r->thread, NULL, run_thread, r), 0);
    r->running = 1;
}

static void start(runner_t *r, const char *group, const char *instance)
{
    char input[128];
    snprintf(input, sizeof(input), "%s.all", in.prefix);
    start_on(r, group, instance, input);
}

static void stop(runner_t *r)
{
    if (!r->running)
        return;
    enr_stop(r->p);
    pthread_join(r->thread, NULL);
    assert_int_equal(r->rc, ENR_OK);
    assert_int_equal(enr_processor_destroy(r->p, 10000), ENR_OK);
    r->running = 0;
}

typedef struct wait_tasks {
    enr_processor_t *p;
    int64_t want;
} wait_tasks_t;

static int tasks_are(void *arg)
{
    wait_tasks_t *w = arg;
    return enr_stat(w->p, ENR_STAT_TASKS) == w->want;
}

/* ---- input ------------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ue_client_t *tracker_for(const char *topic)
{
    char errstr[512];
    const char *kv[] = {"log.level=error", NULL};
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    ue_conf_set(conf, "topic.template", topic, errstr, sizeof(errstr));
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("%s", errstr);
    return c;
}

/* Tracks event @p i: user i % USERS, type i % TYPES, event time BASE_MS + i * STEP_MS. */
static void track_one(ue_client_t *c, ue_event_t *ev, size_t i)
{
    char uid[16];
    snprintf(uid, sizeof(uid), "u%03zu", i % USERS);
    ue_event_reset(ev, TYPE_NAMES[i % TYPES]);
    ue_event_set_user_id(ev, uid);
    ue_event_set_timestamp_ms(ev, BASE_MS + (int64_t)i * STEP_MS);
    ue_event_prop_double(ev, "amount", (double)(i % 7));
    assert_int_equal(ue_track(c, ev), UE_OK);
    ue_event_get_event_id(ev, in.ids[in.n++]);
}

/* One event far ahead in every partition of @p topic: every window of the input closes. */
static void track_sentinels_to(const char *topic)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int p = 0; p < PARTITIONS; p++) {
        uint8_t id[16], buf[128];
        memset(id, 0xee, 16);
        id[15] = (uint8_t)p;
        Userevents__Event e = USEREVENTS__EVENT__INIT;
        e.event_id = (ProtobufCBinaryData){16, id};
        e.type = "tick";
        e.user_id = "clock";
        e.timestamp_ms = SENTINEL_MS;
        e.schema_version = 1;
        size_t len = userevents__event__pack(&e, buf);
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                           RD_KAFKA_V_KEY("clock", 5), RD_KAFKA_V_VALUE(buf, len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
}

static void track_sentinels(void)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "%s.all", in.prefix);
    track_sentinels_to(topic);
}

/* ---- reading the outputs ---------------------------------------------------------------- */

typedef struct out_event {
    uint8_t id[16];
    char session[64];
    uint32_t seq;
} out_event_t;

typedef struct outputs {
    out_event_t *ev;
    size_t n, cap;
} outputs_t;

static void keep_enriched(const it_record_t *r, void *opaque)
{
    outputs_t *o = opaque;
    Userevents__EnrichedEvent *e = userevents__enriched_event__unpack(NULL, r->value_len, r->value);
    assert_non_null(e);
    assert_non_null(e->event);
    if (o->n == o->cap)
        o->ev = realloc(o->ev, (o->cap = o->cap ? o->cap * 2 : 4096) * sizeof(*o->ev));
    out_event_t *x = memset(&o->ev[o->n++], 0, sizeof(*x));
    memcpy(x->id, e->event->event_id.data, 16);
    if (e->session) {
        snprintf(x->session, sizeof(x->session), "%s", e->session->session_id);
        x->seq = e->session->sequence;
    }
    userevents__enriched_event__free_unpacked(e, NULL);
}

static int cmp_out(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static outputs_t read_enriched(const char *group, size_t expected)
{
    char topic[128];
    const char *topics[] = {topic};
    snprintf(topic, sizeof(topic), "%s.%s.enriched", in.prefix, group);
    outputs_t o = {0};
    it_read(topics, 1, expected, 90000, keep_enriched, &o);
    qsort(o.ev, o.n, sizeof(*o.ev), cmp_out);
    return o;
}

typedef struct agg {
    char type[16];
    int64_t start;
    uint64_t count, users;
    double sum;
} agg_t;

typedef struct aggs {
    agg_t a[4096];
    size_t n;
} aggs_t;

static int cmp_agg(const void *x, const void *y)
{
    const agg_t *a = x, *b = y;
    int c = strcmp(a->type, b->type);
    return c ? c : (a->start > b->start) - (a->start < b->start);
}

static void keep_agg(const it_record_t *r, void *opaque)
{
    aggs_t *g = opaque;
    Userevents__WindowAggregate *w =
        userevents__window_aggregate__unpack(NULL, r->value_len, r->value);
    assert_non_null(w);
    if (g->n < 4096) {
        agg_t *a = &g->a[g->n++];
        snprintf(a->type, sizeof(a->type), "%s", w->event_type);
        a->start = w->window_start_ms;
        a->count = w->count;
        a->users = w->distinct_users;
        a->sum = w->sum;
    }
    userevents__window_aggregate__free_unpacked(w, NULL);
}

/* The windows of the input, recomputed from how it was made. */
static void recompute(aggs_t *g)
{
    static uint8_t seen[EVENTS / (WINDOW_MS / STEP_MS) + 2][TYPES][USERS];
    memset(seen, 0, sizeof(seen));
    g->n = 0;
    for (size_t i = 0; i < EVENTS; i++) {
        int64_t t = BASE_MS + (int64_t)i * STEP_MS, start = t / WINDOW_MS * WINDOW_MS;
        size_t w = (size_t)((start - BASE_MS) / WINDOW_MS), type = i % TYPES, j = 0;
        while (j < g->n && (strcmp(g->a[j].type, TYPE_NAMES[type]) || g->a[j].start != start))
            j++;
        if (j == g->n) {
            memset(&g->a[j], 0, sizeof(g->a[j]));
            snprintf(g->a[j].type, sizeof(g->a[j].type), "%s", TYPE_NAMES[type]);
            g->a[j].start = start;
            g->n++;
        }
        g->a[j].count++;
        g->a[j].sum += (double)(i % 7);
        g->a[j].users += !seen[w][type][i % USERS];
        seen[w][type][i % USERS] = 1;
    }
    qsort(g->a, g->n, sizeof(agg_t), cmp_agg);
}

static void assert_aggs(const char *group, const aggs_t *want)
{
    char topic[128];
    const char *topics[] = {topic};
    snprintf(topic, sizeof(topic), "%s.%s.agg", in.prefix, group);
    aggs_t *got = calloc(1, sizeof(*got));
    it_read(topics, 1, want->n, 60000, keep_agg, got);
    qsort(got->a, got->n, sizeof(agg_t), cmp_agg);
    print_message("%s: %zu aggregates, %zu recomputed\n", group, got->n, want->n);
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        assert_string_equal(got->a[i].type, want->a[i].type);
        assert_int_equal(got->a[i].start, want->a[i].start);
        assert_int_equal(got->a[i].count, want->a[i].count);
        assert_int_equal(got->a[i].users, want->a[i].users);
        assert_true(got->a[i].sum > want->a[i].sum - 1e-6 &&
                    got->a[i].sum < want->a[i].sum + 1e-6);
    }
    free(got);
}

/* Each tracked id once in @p o (the sentinels aside). */
static void assert_each_id_once(const outputs_t *o)
{
    size_t found = 0, twice = 0;
    for (size_t i = 0; i + 1 < o->n; i++)
        twice += !memcmp(o->ev[i].id, o->ev[i + 1].id, 16);
    for (size_t i = 0; i < in.n; i++)
        found += bsearch(in.ids[i], o->ev, o->n, sizeof(*o->ev), cmp_out) != NULL;
    print_message("enriched %zu records: %zu of %zu tracked ids found, %zu twice\n", o->n, found,
                  in.n, twice);
    assert_int_equal(twice, 0);
    assert_int_equal(found, in.n);
    assert_int_equal(o->n, in.n + PARTITIONS);
}

/* ---- the tests ------------------------------------------------------------------------- */

typedef struct wait_stat {
    enr_processor_t *p;
    int64_t at_least;
} wait_stat_t;

static int enriched_reached(void *arg)
{
    wait_stat_t *w = arg;
    return enr_stat(w->p, ENR_STAT_ENRICHED) >= w->at_least;
}

static void wait_enriched(enr_processor_t *p, size_t n)
{
    wait_stat_t w = {p, (int64_t)n};
    if (!tu_wait_until(enriched_reached, &w, 90000))
        fail_msg("enriched stayed at %lld of %zu", (long long)enr_stat(p, ENR_STAT_ENRICHED), n);
}

static void test_processors_join_and_leave_each_event_once(void **state)
{
    tu_trace_crashes();
    (void)state;
    char topic[128];
    snprintf(topic, sizeof(topic), "%s.all", in.prefix);
    assert_int_equal(it_create_topic(topic, PARTITIONS), 0);

    runner_t r[3] = {{0}};
    static const char *const names[] = {"A", "B", "C"};
    start(&r[0], "multi", names[0]);
    ue_client_t *c = tracker_for(topic);
    ue_event_t *ev = ue_event_new("a");
    int64_t began = now_ms();
    for (size_t i = 0; i < EVENTS; i++) {
        track_one(c, ev, i);
        if (i == EVENTS / 4)
            start(&r[1], "multi", names[1]); /* 1 -> 2 -> 3 processors ... */
        if (i == EVENTS / 2)
            start(&r[2], "multi", names[2]);
        if (i == 3 * EVENTS / 4)
            stop(&r[1]); /* ... -> 2: its tasks move once its session times out */
        if ((i + 1) % 500 == 0) { /* pace the stream: rate control, not synchronisation */
            int64_t left = began + (int64_t)(i + 1) * 1000 / RATE - now_ms();
            if (left > 0)
                nanosleep(&(struct timespec){left / 1000, (left % 1000) * 1000000}, NULL);
        }
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    ue_client_destroy(c);
    track_sentinels();

    outputs_t multi = read_enriched("multi", in.n + PARTITIONS);
    int64_t rebalances = enr_stat(r[0].p, ENR_STAT_REBALANCES);
    aggs_t *want = calloc(1, sizeof(*want));
    recompute(want);
    assert_aggs("multi", want); /* the finals come after the sentinels close every window */
    stop(&r[0]);
    stop(&r[2]);
    print_message("processor A saw %lld rebalances\n", (long long)rebalances);
    assert_true(rebalances >= 3);
    assert_each_id_once(&multi);

    /* The same input through one processor that never stops: the same sessions. */
    runner_t single = {0};
    start(&single, "single", "S");
    wait_enriched(single.p, in.n + PARTITIONS); /* its output topic exists before it is read */
    outputs_t one = read_enriched("single", in.n + PARTITIONS);
    assert_aggs("single", want);
    stop(&single);
    assert_each_id_once(&one);
    size_t differ = 0;
    for (size_t i = 0; i < one.n; i++)
        differ +=
            strcmp(one.ev[i].session, multi.ev[i].session) || one.ev[i].seq != multi.ev[i].seq;
    print_message("sessions differing from the single processor's: %zu\n", differ);
    assert_int_equal(differ, 0);
    free(want);
    free(multi.ev);
    free(one.ev);
}

/* Starts enrichd as instance @p instance of group @p group on @p input; its stderr goes to
 * @p log. */
static pid_t spawn_enrichd(const char *group, const char *instance, const char *input,
                           const char *log)
{
    const char *build = getenv("UE_BUILD_DIR") ? getenv("UE_BUILD_DIR") : "build";
    char path[512], kv[6][300];
    snprintf(path, sizeof(path), "%s/enrichd", build);
    snprintf(kv[0], 300, "group.id=%s.%s", in.prefix, group);
    snprintf(kv[1], 300, "input.topics=%s", input);
    snprintf(kv[2], 300, "output.topic=%s.%s.enriched", in.prefix, group);
    snprintf(kv[3], 300, "profile.topic=%s.profiles", in.prefix);
    snprintf(kv[4], 300, "stages=dedup,session");
    snprintf(kv[5], 300, "log.level=notice");
    char *argv[] = {path, "-b", (char *)it_bootstrap(), "-i", (char *)instance, "-s", "0",
                    "-X", kv[0], "-X", kv[1], "-X", kv[2], "-X", kv[3], "-X", kv[4], "-X",
                    kv[5], NULL};
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execv(path, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

/* How many tasks enrichd says it owns in its last "tasks ...; N of M owned" line of @p log. */
static int tasks_owned_said(const char *log)
{
    FILE *f = fopen(log, "r");
    char line[1024];
    int owned = 0;
    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "tasks ") ? strrchr(line, ';') : NULL;
        if (at && strstr(at, " owned"))
            owned = atoi(at + 1);
    }
    if (f)
        fclose(f);
    return owned;
}

static void test_zombie_is_fenced_and_nothing_appears_twice(void **state)
{
    tu_trace_crashes();
    (void)state;
    char input[128], log[256];
    snprintf(input, sizeof(input), "%s.z", in.prefix);
    assert_int_equal(it_create_topic(input, 3), 0);
    char *dir = tu_tempdir("it-enr-zombie");
    snprintf(log, sizeof(log), "%s/enrichd-A.log", dir);
    in.n = 0;

    /* A (a process) and B (here) share the 3 tasks. */
    ue_client_t *c = tracker_for(input);
    ue_event_t *ev = ue_event_new("a");
    pid_t a = spawn_enrichd("zombie", "A", input, log);
    runner_t b = {0};
    char errstr[512];
    enr_conf_t *conf = conf_for("zombie", "B", input);
    enr_conf_set(conf, "stages", "dedup,session", errstr, sizeof(errstr));
    b.p = enr_processor_new(conf, errstr, sizeof(errstr));
    assert_non_null(b.p);
    assert_int_equal(pthread_create(&b.thread, NULL, run_thread, &b), 0);
    b.running = 1;
    int64_t want[] = {1, 2}; /* B holds some tasks, A the others */
    for (int phase = 0; phase < 3; phase++) {
        int settled = 0;
        for (int round = 0; round < 600 && !settled; round++) { /* a stream while waiting */
            for (int i = 0; i < 20; i++)
                track_one(c, ev, in.n);
            assert_int_equal(ue_flush(c, 10000), UE_OK);
            wait_tasks_t w = {b.p, 0};
            for (size_t k = 0; k < 2 && phase == 0; k++)
                settled |= (w.want = want[k], tasks_are(&w));
            /* A cooperative rebalance hands over in two steps: A owns its share only after
             * the second, and a zombie needs tasks to lose. */
            settled &= phase != 0 || tasks_owned_said(log) > 0;
            if (phase == 1) /* A stopped: its tasks move to B once its session times out */
                settled = (w.want = 3, tasks_are(&w));
            if (phase == 2) /* A resumed: it learns it lost them, and maybe gets some back */
                settled = round >= 100;
            nanosleep(&(struct timespec){0, 50 * 1000000}, NULL); /* pace the stream */
        }
        assert_true(settled);
        if (phase == 0)
            assert_int_equal(kill(a, SIGSTOP), 0);
        if (phase == 1)
            assert_int_equal(kill(a, SIGCONT), 0);
    }
    ue_event_destroy(ev);
    ue_client_destroy(c);

    outputs_t out = read_enriched("zombie", in.n);
    assert_int_equal(kill(a, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(a, &status, 0), a);
    stop(&b);
    size_t found = 0, twice = 0;
    for (size_t i = 0; i + 1 < out.n; i++)
        twice += !memcmp(out.ev[i].id, out.ev[i + 1].id, 16);
    for (size_t i = 0; i < in.n; i++)
        found += bsearch(in.ids[i], out.ev, out.n, sizeof(*out.ev), cmp_out) != NULL;
    print_message("zombie: %zu tracked, %zu enriched, %zu found, %zu twice\n", in.n, out.n,
                  found, twice);
    assert_int_equal(twice, 0);
    assert_int_equal(found, in.n);
    FILE *f = fopen(log, "r");
    char line[1024];
    int said = 0;
    while (f && fgets(line, sizeof(line), f) && !said)
        if (strstr(line, "tasks lost") || strstr(line, "fenced"))
            said = 1, print_message("enrichd A: %s", line);
    if (f && !said) { /* what it said instead */
        rewind(f);
        while (fgets(line, sizeof(line), f))
            if (strstr(line, "tasks") || strstr(line, "abort") || strstr(line, "SESSTMOUT"))
                print_message("enrichd A: %s", line);
    }
    if (f)
        fclose(f);
    assert_true(said);
    free(out.ev);
    tu_rmrf(dir);
    free(dir);
}


static void count_partition(const it_record_t *r, void *opaque)
{
    int64_t *per = opaque;
    if (r->partition >= 0 && r->partition < PARTITIONS)
        per[r->partition]++;
}

typedef struct wait_total {
    runner_t *r;
    int n;
    int64_t at_least;
} wait_total_t;

static int total_enriched(void *arg)
{
    wait_total_t *w = arg;
    int64_t sum = 0;
    for (int i = 0; i < w->n; i++)
        sum += enr_stat(w->r[i].p, ENR_STAT_ENRICHED);
    return sum >= w->at_least;
}

/* Guarantees: a processor that restarts within the session timeout gets its own tasks back
 * and nothing moves (static membership), and it reads only their changelog partitions. */
static void test_restart_restores_only_its_own_tasks(void **state)
{
    tu_trace_crashes();
    (void)state;
    if (!in.n)
        skip(); /* needs the input of the join-and-leave test */
    runner_t r[2] = {{0}};
    start(&r[0], "share", "A");
    start(&r[1], "share", "C");
    wait_total_t w = {r, 2, (int64_t)EVENTS + PARTITIONS};
    assert_true(tu_wait_until(total_enriched, &w, 120000));
    wait_tasks_t half = {r[1].p, PARTITIONS / 2}; /* A may have done it all before C joined */
    assert_true(tu_wait_until(tasks_are, &half, 60000));
    stop(&r[1]); /* its last commit flushes its tasks' state: counted after it */

    char changelog[128];
    const char *topics[] = {changelog};
    snprintf(changelog, sizeof(changelog), "%s.share.changelog", in.prefix);
    int64_t per[PARTITIONS] = {0}, total = 0, share = 0;
    it_read(topics, 1, 1, 30000, count_partition, per);
    for (int i = 0; i < PARTITIONS; i++)
        total += per[i];
    int a_assignments = r[0].nrestores;

    start(&r[1], "share", "C"); /* the same instance.id: its own tasks come back */
    wait_tasks_t wt = {r[1].p, PARTITIONS / 2};
    assert_true(tu_wait_until(tasks_are, &wt, 60000));
    int64_t read = enr_stat(r[1].p, ENR_STAT_RESTORE_RECORDS);
    stop(&r[1]);
    stop(&r[0]);

    char list[64];
    snprintf(list, sizeof(list), "%s", r[1].nrestores ? r[1].restores[0].tasks : "");
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
        share += per[atoi(t)];
    print_message("restarted processor: %d assignment(s), tasks %s, read %lld changelog records: "
                  "their partitions hold %lld of %lld; the other took %d task assignment(s) "
                  "meanwhile\n",
                  r[1].nrestores, r[1].nrestores ? r[1].restores[0].tasks : "none",
                  (long long)read, (long long)share, (long long)total,
                  r[0].nrestores - a_assignments);
    assert_int_equal(r[0].nrestores, a_assignments); /* nothing moved */
    assert_int_equal(r[1].nrestores, 1);
    assert_int_equal(r[1].restores[0].records, share);
    assert_int_equal(read, share);
    assert_true(share < total);
}

/* ---- rates of an event type judged on every task's events ------------------------------- */

#define RATE_BUCKETS 20
#define RATE_USERS 60
#define RATE_BURST 15 /* the bucket with ten times the events */

typedef struct alerts {
    char key[16][32];
    int64_t end[16];
    double rate[16], baseline[16], z[16];
    size_t n;
} alerts_t;

static void keep_alert(alerts_t *a, const void *value, size_t len)
{
    Userevents__AnomalyAlert *m = userevents__anomaly_alert__unpack(NULL, len, value);
    assert_non_null(m);
    if (a->n < 16) {
        snprintf(a->key[a->n], sizeof(a->key[0]), "%s", m->key);
        a->end[a->n] = m->window_end_ms;
        a->rate[a->n] = m->rate;
        a->baseline[a->n] = m->baseline;
        a->z[a->n++] = m->zscore;
    }
    userevents__anomaly_alert__free_unpacked(m, NULL);
}

static void alert_from_topic(const it_record_t *r, void *opaque)
{
    keep_alert(opaque, r->value, r->value_len);
}

static void alert_from_pipeline(const char *topic, const void *key, size_t key_len,
                                const void *value, size_t value_len, void *opaque)
{
    (void)key, (void)key_len;
    if (strstr(topic, ".alerts"))
        keep_alert(opaque, value, value_len);
}

/* Event @p j of bucket @p b: user j % RATE_USERS, type "click". */
static size_t rate_event(int b, int j, uint8_t *buf, char *user)
{
    uint8_t id[16] = {0x01, [6] = 0x70, [8] = 0x80};
    id[10] = (uint8_t)b;
    id[11] = (uint8_t)(j >> 8);
    id[12] = (uint8_t)j;
    snprintf(user, 16, "u%02d", j % RATE_USERS);
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    e.event_id = (ProtobufCBinaryData){16, id};
    e.type = "click";
    e.user_id = user;
    e.timestamp_ms = BASE_MS + (int64_t)b * WINDOW_MS + j * 10;
    e.schema_version = 1;
    return userevents__event__pack(&e, buf);
}

typedef struct alerts_reached {
    runner_t *r;
    int64_t want;
} alerts_reached_t;

static int alerts_reached(void *arg)
{
    alerts_reached_t *w = arg;
    return enr_stat(w->r[0].p, ENR_STAT_ALERTS) + enr_stat(w->r[1].p, ENR_STAT_ALERTS) >= w->want;
}

static void set_rates(enr_conf_t *conf)
{
    char errstr[256];
    const char *kv[][2] = {{"stages", "anomaly"}, {"anomaly.window.ms", "10000"},
                           {"anomaly.min.windows", "5"}, {"anomaly.zscore", "3"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(enr_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)),
                         ENR_CONF_OK);
}

/* Guarantee: with the events of one type spread over the tasks of two processors, its rate is
 * judged on all of them: the alerts are those one pipeline gives over the whole input. */
static void test_type_rates_are_judged_on_every_task(void **state)
{
    tu_trace_crashes();
    (void)state;
    char topic[128], errstr[512];
    snprintf(topic, sizeof(topic), "%s.rates", in.prefix);
    assert_int_equal(it_create_topic(topic, PARTITIONS), 0);
    enr_conf_t *ref_conf = conf_for("rates", "R", topic);
    set_rates(ref_conf);
    enr_pipeline_t *ref = enr_pipeline_new(ref_conf, errstr, sizeof(errstr));
    assert_non_null(ref);

    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int b = 0; b < RATE_BUCKETS; b++) {
        int n = RATE_USERS * (b == RATE_BURST ? 10 : 1);
        for (int j = 0; j < n; j++) {
            uint8_t buf[128];
            char user[16];
            size_t len = rate_event(b, j, buf, user);
            void *out;
            size_t out_len;
            char reason[256];
            assert_int_equal(enr_pipeline_process(ref, buf, len, BASE_MS, &out, &out_len,
                                                  reason, sizeof(reason)),
                             ENR_KEEP);
            enr_free(out);
            assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                               RD_KAFKA_V_KEY(user, strlen(user)),
                                               RD_KAFKA_V_VALUE(buf, len),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
        }
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    alerts_t want = {0}, got = {0};
    enr_pipeline_flush(ref, SENTINEL_MS, alert_from_pipeline, &want);
    enr_pipeline_destroy(ref);
    enr_conf_destroy(ref_conf);
    assert_true(want.n >= 1); /* the burst */

    runner_t r[2] = {{0}};
    for (int i = 0; i < 2; i++) {
        enr_conf_t *conf = conf_for("rates", i ? "B" : "A", topic);
        set_rates(conf);
        r[i].p = enr_processor_new(conf, errstr, sizeof(errstr));
        assert_non_null(r[i].p);
        assert_int_equal(pthread_create(&r[i].thread, NULL, run_thread, &r[i]), 0);
        r[i].running = 1;
    }
    track_sentinels_to(topic);
    alerts_reached_t w = {r, (int64_t)want.n};
    assert_true(tu_wait_until(alerts_reached, &w, 90000)); /* the topic exists: read it */
    char alerts_topic[128];
    const char *topics[] = {alerts_topic};
    snprintf(alerts_topic, sizeof(alerts_topic), "%s.rates.alerts", in.prefix);
    it_read(topics, 1, want.n, 60000, alert_from_topic, &got);
    for (size_t i = 0; i < got.n && i < want.n; i++)
        print_message("alert %s end %lld: rate %g / %g, baseline %.9g / %.9g, z %g / %g\n",
                      got.key[i], (long long)got.end[i], got.rate[i], want.rate[i],
                      got.baseline[i], want.baseline[i], got.z[i], want.z[i]);
    stop(&r[0]);
    stop(&r[1]);
    print_message("alerts: %zu from two processors, %zu from one pipeline\n", got.n, want.n);
    assert_int_equal(got.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_string_equal(got.key[i], want.key[i]);
        assert_int_equal(got.end[i], want.end[i]);
        assert_true(got.rate[i] == want.rate[i]);
        assert_true(got.baseline[i] > want.baseline[i] - 1e-9 &&
                    got.baseline[i] < want.baseline[i] + 1e-9);
    }
}

/* Guarantee: a second processor started with the same instance.id takes over (a restart
 * must win), and the first stops with ENR_ERR_FENCED and a reason that says why. */
static void test_same_instance_id_fences_the_older_with_the_reason(void **state)
{
    tu_trace_crashes();
    (void)state;
    char input[128];
    snprintf(input, sizeof(input), "%s.dup.in", in.prefix);
    assert_int_equal(it_create_topic(input, PARTITIONS), 0);
    runner_t old = {0}, young = {0};
    start_on(&old, "dup", "twin", input);
    wait_tasks_t w = {old.p, PARTITIONS};
    assert_true(tu_wait_until(tasks_are, &w, 60000));
    start_on(&young, "dup", "twin", input);
    pthread_join(old.thread, NULL); /* ends by itself: fenced */
    old.running = 0;
    const char *why = enr_processor_last_error(old.p);
    print_message("the older processor stopped: %s (%s)\n", enr_err2name(old.rc), why);
    assert_int_equal(old.rc, ENR_ERR_FENCED);
    assert_true(strstr(why, "fenced") || strstr(why, "instance.id") || strstr(why, "epoch"));
    enr_processor_destroy(old.p, 1000);
    wait_tasks_t y = {young.p, PARTITIONS};
    assert_true(tu_wait_until(tasks_are, &y, 60000));
    stop(&young);
}

/* enr_processor_new() fails and its reason holds every word of @p words. */
static void assert_refused(enr_conf_t *conf, const char *const *words)
{
    char errstr[512] = "";
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (p) {
        enr_processor_destroy(p, 1000);
        fail_msg("enr_processor_new accepted it");
    }
    enr_conf_destroy(conf);
    print_message("refused: %s\n", errstr);
    for (size_t i = 0; words[i]; i++)
        if (!strstr(errstr, words[i]))
            fail_msg("\"%s\" does not name \"%s\"", errstr, words[i]);
}

static void test_misconfiguration_is_refused_with_the_reason(void **state)
{
    tu_trace_crashes();
    (void)state;
    char a[128], b[128], input[256], changelog[128];
    snprintf(a, sizeof(a), "%s.bad.a", in.prefix);
    snprintf(b, sizeof(b), "%s.bad.b", in.prefix);
    assert_int_equal(it_create_topic(a, 3), 0);
    assert_int_equal(it_create_topic(b, 4), 0);
    snprintf(input, sizeof(input), "%s,%s", a, b);
    assert_refused(conf_for("bad1", "X", input),
                   (const char *const[]){"not co-partitioned", a, b, NULL});

    /* A changelog made by hand with the wrong count. */
    snprintf(changelog, sizeof(changelog), "%s.bad2.changelog", in.prefix);
    assert_int_equal(it_create_topic(changelog, 2), 0);
    assert_refused(conf_for("bad2", "X", a),
                   (const char *const[]){changelog, "2 partitions", NULL});

    /* Nothing was written: no output topic exists. */
    const char *outs[] = {"bad1.enriched", "bad2.enriched", "bad1.repartition"};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    const rd_kafka_metadata_t *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 10000), 0);
    for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++) {
        char name[160];
        snprintf(name, sizeof(name), "%s.%s", in.prefix, outs[k]);
        for (int i = 0; i < md->topic_cnt; i++)
            if (!strcmp(md->topics[i].topic, name))
                fail_msg("%s exists", name);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
}

static int setup(void **state)
{
    (void)state;
    snprintf(in.prefix, sizeof(in.prefix), "%s", it_unique_prefix());
    in.ids = calloc(EVENTS, 16);
    return in.ids ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(in.ids);
    return 0;
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr,
                "it_enr_scale: KAFKA_BOOTSTRAP is not set; run through test/kafka.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misconfiguration_is_refused_with_the_reason),
        cmocka_unit_test(test_processors_join_and_leave_each_event_once),
        cmocka_unit_test(test_restart_restores_only_its_own_tasks),
        cmocka_unit_test(test_type_rates_are_judged_on_every_task),
        cmocka_unit_test(test_same_instance_id_fences_the_older_with_the_reason),
        cmocka_unit_test(test_zombie_is_fenced_and_nothing_appears_twice),
    };
    if (getenv("IT_ONLY")) /* one test, e.g. IT_ONLY='*rates*' */
        cmocka_set_test_filter(getenv("IT_ONLY"));
    return cmocka_run_group_tests_name("integration: libenrich scale-out", tests, setup,
                                       teardown);
}
