/*
 * it_enrich.c - libenrich against a real Kafka broker. Input is tracked through libuserevents
 * (with injected duplicates), outputs are read back read_committed by an independent consumer.
 *
 * The tests share one input and each runs its own processor (group and outputs
 * "<prefix>.<run>.*"), so an interrupted run can be compared with an uninterrupted one over
 * exactly the same input. The input is one topic ("<prefix>.ev.all", the SDK's topic.template
 * without {type}): a user's events then share a partition, and sessions, which follow the
 * order a user's events are read in, are the same in every run. (With a topic per type the
 * processor reads a user's types in whatever order the partitions interleave.)
 */
#include "enriched.pb-c.h"
#include "enrich.h"
#include "itutil.h"
#include "testutil.h"
#include "userevents.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define USERS 20
#define PER_USER 30
#define DUPLICATES 50
#define WINDOW_MS 60000
#define GAP_USERS 5                      /* users whose events have a 40-minute gap */
#define BASE_MS INT64_C(1790000040000)   /* a window boundary, far from "now" */
#define SENTINEL_MS (BASE_MS + 36000000) /* 10 h later: closes every window before it */

static const char *const TYPES[] = {"page_view", "click", "purchase"};
static const char *const IPS[] = {"81.2.69.142", "2001:db8:1::7", "203.0.113.9", "not-an-ip"};
static const char *const UAS[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};

/* What the tests tracked: unique ids and the input every check recomputes from. */
typedef struct input_event {
    uint8_t id[16];
    int user;
    int type;
    int64_t ts;
    double amount;
} input_event_t;

static struct {
    char prefix[64];
    char mmdb[512];
    char *dir;
    input_event_t events[USERS * PER_USER + 64];
    size_t n;        /* unique events, the sentinels last */
    size_t n_real;   /* unique events before the sentinels */
    size_t raw;      /* records written, duplicates included */
} in;

static int64_t event_ts(int user, int k)
{
    int64_t ts = BASE_MS + (int64_t)k * 20000 + user * 700;
    if (user < GAP_USERS && k >= PER_USER / 2)
        ts += 40 * 60000; /* inactivity longer than session.gap.ms: a new session */
    return ts;
}

static ue_client_t *tracker(void)
{
    char template[128], errstr[512];
    snprintf(template, sizeof(template), "%s.ev.all", in.prefix);
    const char *kv[] = {"log.level=error", NULL};
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set(conf, "kafka.bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr));
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("%s", errstr);
    return c;
}

/* Tracks user events k in [from, to) of every user; some twice with the same id. */
static void track_range(ue_client_t *c, int from, int to)
{
    ue_event_t *ev = ue_event_new("page_view");
    for (int k = from; k < to; k++) {
        for (int u = 0; u < USERS; u++) {
            input_event_t *ie = &in.events[in.n];
            char uid[16];
            snprintf(uid, sizeof(uid), "u%02d", u);
            ie->user = u;
            ie->type = (u + k) % 3;
            ie->ts = event_ts(u, k);
            ie->amount = ie->type == 2 ? 10.0 + u : 0;
            ue_event_reset(ev, TYPES[ie->type]);
            ue_event_set_user_id(ev, uid);
            ue_event_set_timestamp_ms(ev, ie->ts);
            ue_event_set_context(ev, "ip", IPS[(u + k) % 4]);
            ue_event_set_context(ev, "user_agent", UAS[u % 3]);
            ue_event_prop_int(ev, "k", k);
            if (ie->type == 2)
                ue_event_prop_double(ev, "amount", ie->amount);
            assert_int_equal(ue_track(c, ev), UE_OK);
            ue_event_get_event_id(ev, ie->id);
            in.raw++;
            if ((k * USERS + u) % ((PER_USER * USERS) / DUPLICATES) == 0) {
                ue_event_set_event_id(ev, ie->id); /* a device retry: same id again */
                assert_int_equal(ue_track(c, ev), UE_OK);
                in.raw++;
            }
            in.n++;
        }
    }
    ue_event_destroy(ev);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
}

static rd_kafka_t *plain_producer(void);

/* One "tick" far ahead in every input partition: the watermark (the smallest partition clock)
 * then passes every window of the input, and each one closes. */
static void track_sentinels(void)
{
    char topic[128];
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_t *rk = plain_producer();
    snprintf(topic, sizeof(topic), "%s.ev.all", in.prefix);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    in.n_real = in.n;
    for (int p = 0; p < parts; p++) {
        input_event_t *ie = &in.events[in.n++];
        uint8_t buf[128];
        Userevents__Event e = USEREVENTS__EVENT__INIT;
        memset(ie->id, 0xee, 16);
        ie->id[15] = (uint8_t)p;
        ie->ts = SENTINEL_MS;
        ie->type = -1;
        e.event_id.data = ie->id;
        e.event_id.len = 16;
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
        in.raw++;
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
}

static void put_profile(rd_kafka_t *rk, const char *user, const char *plan)
{
    char topic[128];
    Userevents__UserProfile p = USEREVENTS__USER_PROFILE__INIT;
    uint8_t buf[256];
    snprintf(topic, sizeof(topic), "%s.profiles", in.prefix);
    p.user_id = (char *)user;
    p.plan = (char *)plan;
    p.country = "GB";
    size_t len = userevents__user_profile__pack(&p, buf);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                       RD_KAFKA_V_KEY(user, strlen(user)),
                                       RD_KAFKA_V_VALUE(buf, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
}

static rd_kafka_t *plain_producer(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

/* The processor settings every run shares; @p run names its group and outputs. */
static void run_settings(char kv[][640], size_t *n, const char *run)
{
    size_t i = 0;
    snprintf(kv[i++], 640, "kafka.bootstrap.servers=%s", it_bootstrap());
    snprintf(kv[i++], 640, "group.id=%s-%s", in.prefix, run);
    snprintf(kv[i++], 640, "input.topics=^%s\\.ev\\..*", in.prefix);
    snprintf(kv[i++], 640, "output.topic=%s.%s.enriched", in.prefix, run);
    snprintf(kv[i++], 640, "dead_letter.topic=%s.%s.dlq", in.prefix, run);
    snprintf(kv[i++], 640, "aggregates.topic=%s.%s.agg", in.prefix, run);
    snprintf(kv[i++], 640, "alerts.topic=%s.%s.alerts", in.prefix, run);
    snprintf(kv[i++], 640, "profile.topic=%s.profiles", in.prefix);
    snprintf(kv[i++], 640, "geoip.database=%s", in.mmdb);
    snprintf(kv[i++], 640, "window.size.ms=%d", WINDOW_MS);
    snprintf(kv[i++], 640, "window.allowed.lateness.ms=%d", 3600000);
    snprintf(kv[i++], 640, "input.max.bytes=4096");
    snprintf(kv[i++], 640, "window.idle.timeout.ms=0");
    snprintf(kv[i++], 640, "log.level=warning");
    *n = i;
}

static enr_processor_t *processor(const char *run)
{
    char kv[32][640], errstr[512];
    size_t n;
    enr_conf_t *conf = enr_conf_new();
    run_settings(kv, &n, run);
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(kv[i], '=');
        *eq = '\0';
        if (enr_conf_set(conf, kv[i], eq + 1, errstr, sizeof(errstr)) != ENR_CONF_OK)
            fail_msg("%s", errstr);
    }
    enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));
    if (!p)
        fail_msg("enr_processor_new: %s", errstr);
    return p;
}

/* ---- reading the outputs back ---------------------------------------------------------- */

typedef struct out_event {
    uint8_t id[16];
    char type[32], user[16], session[64], plan[32], country[8], browser[32], device[16];
    uint32_t seq;
    int geo_found;
    int64_t time;
    double amount;
} out_event_t;

typedef struct outputs {
    out_event_t *ev;
    size_t n, cap, undecodable;
} outputs_t;

static double amount_of(const Userevents__Event *e)
{
    for (size_t i = 0; i < e->n_properties; i++)
        if (!strcmp(e->properties[i]->key, "amount") &&
            e->properties[i]->value->kind_case == USEREVENTS__VALUE__KIND_DOUBLE_VALUE)
            return e->properties[i]->value->double_value;
    return 0;
}

static void keep_enriched(const it_record_t *r, void *opaque)
{
    outputs_t *o = opaque;
    Userevents__EnrichedEvent *e = userevents__enriched_event__unpack(NULL, r->value_len, r->value);
    if (!e || !e->event || e->event->event_id.len != 16) {
        o->undecodable++;
        if (e)
            userevents__enriched_event__free_unpacked(e, NULL);
        return;
    }
    if (o->n == o->cap)
        o->ev = realloc(o->ev, (o->cap = o->cap ? o->cap * 2 : 1024) * sizeof(*o->ev));
    out_event_t *x = memset(&o->ev[o->n++], 0, sizeof(out_event_t));
    memcpy(x->id, e->event->event_id.data, 16);
    snprintf(x->type, sizeof(x->type), "%s", e->event->type);
    snprintf(x->user, sizeof(x->user), "%s", e->event->user_id);
    if (e->session) {
        snprintf(x->session, sizeof(x->session), "%s", e->session->session_id);
        x->seq = e->session->sequence;
    }
    if (e->profile)
        snprintf(x->plan, sizeof(x->plan), "%s", e->profile->plan);
    if (e->geo && e->geo->found) {
        x->geo_found = 1;
        snprintf(x->country, sizeof(x->country), "%s", e->geo->country_code);
    }
    if (e->user_agent) {
        snprintf(x->browser, sizeof(x->browser), "%s", e->user_agent->browser);
        snprintf(x->device, sizeof(x->device), "%s", e->user_agent->device_class);
    }
    x->time = e->corrected_timestamp_ms;
    x->amount = amount_of(e->event);
    userevents__enriched_event__free_unpacked(e, NULL);
}

static outputs_t read_enriched(const char *run, size_t expected)
{
    char topic[128];
    const char *topics[] = {topic};
    outputs_t o = {0};
    snprintf(topic, sizeof(topic), "%s.%s.enriched", in.prefix, run);
    it_read(topics, 1, expected, 120000, keep_enriched, &o);
    return o;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static const out_event_t *find_out(const outputs_t *o, const uint8_t id[16])
{
    return bsearch(id, o->ev, o->n, sizeof(*o->ev), cmp_id);
}

/* Every tracked id exactly once; nothing else. Sorts @p o by id. */
static void assert_each_id_once(outputs_t *o)
{
    qsort(o->ev, o->n, sizeof(*o->ev), cmp_id);
    size_t dups = 0, missing = 0;
    for (size_t i = 1; i < o->n; i++)
        dups += memcmp(o->ev[i - 1].id, o->ev[i].id, 16) == 0;
    for (size_t i = 0; i < in.n; i++)
        missing += find_out(o, in.events[i].id) == NULL;
    print_message("enriched %zu records for %zu unique ids: %zu duplicates, %zu missing, "
                  "%zu undecodable\n", o->n, in.n, dups, missing, o->undecodable);
    assert_int_equal(dups, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(o->undecodable, 0);
    assert_int_equal(o->n, in.n);
}

/* Sessions recomputed from the input: a user's session starts at a gap > 30 min. */
static void assert_sessions_split_at_gaps(const outputs_t *o)
{
    for (int u = 0; u < USERS; u++) {
        char current[64] = "";
        uint32_t seq = 0;
        int sessions = 0;
        for (int k = 0; k < PER_USER; k++) {
            const out_event_t *x = find_out(o, in.events[k * USERS + u].id);
            assert_non_null(x);
            if (k == 0 || event_ts(u, k) - event_ts(u, k - 1) > 1800000) {
                assert_string_not_equal(x->session, current);
                snprintf(current, sizeof(current), "%s", x->session);
                seq = 1;
                sessions++;
            } else {
                assert_string_equal(x->session, current);
                seq++;
            }
            assert_int_equal(x->seq, seq);
        }
        assert_int_equal(sessions, u < GAP_USERS ? 2 : 1);
    }
}

/* Profiles, geo and user agent, as the fixtures say. */
static void assert_enrichment(const outputs_t *o, int profile_updated_at_k)
{
    for (size_t i = 0; i < in.n_real; i++) {
        const input_event_t *ie = &in.events[i];
        const out_event_t *x = find_out(o, ie->id);
        int k = (int)(i / USERS);
        const char *plan = ie->user >= 10 ? "" : ie->user % 2 ? "free" : "pro";
        if (ie->user == 3 && k >= profile_updated_at_k)
            plan = "enterprise";
        assert_string_equal(x->plan, plan);
        int ip = (ie->user + k) % 4; /* IPS[0] and IPS[1] are in the fixture */
        assert_int_equal(x->geo_found, ip < 2);
        if (ip < 2)
            assert_string_equal(x->country, ip == 0 ? "GB" : "DE");
        static const char *const browser[] = {"Chrome", "Safari", ""};
        static const char *const device[] = {"desktop", "mobile", "bot"};
        assert_string_equal(x->device, device[ie->user % 3]);
        if (ie->user % 3 < 2)
            assert_string_equal(x->browser, browser[ie->user % 3]);
    }
}

/* ---- aggregates -------------------------------------------------------------------------- */

typedef struct agg {
    char type[32];
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
    if (w && g->n < 4096) {
        agg_t *a = &g->a[g->n++];
        snprintf(a->type, sizeof(a->type), "%s", w->event_type);
        a->start = w->window_start_ms;
        a->count = w->count;
        a->users = w->distinct_users;
        a->sum = w->sum;
    }
    if (w)
        userevents__window_aggregate__free_unpacked(w, NULL);
}

/* The windows the input makes, recomputed from the enriched events' event times. */
static void recompute(const outputs_t *o, aggs_t *g)
{
    g->n = 0;
    for (size_t i = 0; i < in.n_real; i++) { /* the sentinels' window stays open */
        const out_event_t *x = find_out(o, in.events[i].id);
        int64_t start = x->time / WINDOW_MS * WINDOW_MS;
        size_t j = 0;
        while (j < g->n && (strcmp(g->a[j].type, x->type) || g->a[j].start != start))
            j++;
        if (j == g->n) {
            memset(&g->a[j], 0, sizeof(g->a[j]));
            snprintf(g->a[j].type, sizeof(g->a[j].type), "%s", x->type);
            g->a[j].start = start;
            g->n++;
        }
        g->a[j].count++;
        g->a[j].sum += x->amount;
        int seen = 0; /* distinct users: was this user counted in this window already? */
        for (size_t m = 0; m < i && !seen; m++) {
            const out_event_t *y = find_out(o, in.events[m].id);
            seen = !strcmp(y->user, x->user) && !strcmp(y->type, x->type) &&
                   y->time / WINDOW_MS * WINDOW_MS == start;
        }
        g->a[j].users += !seen;
    }
    qsort(g->a, g->n, sizeof(agg_t), cmp_agg);
}

static void read_aggs(const char *run, size_t expected, aggs_t *g)
{
    char topic[128];
    const char *topics[] = {topic};
    snprintf(topic, sizeof(topic), "%s.%s.agg", in.prefix, run);
    g->n = 0;
    it_read(topics, 1, expected, 60000, keep_agg, g);
    qsort(g->a, g->n, sizeof(agg_t), cmp_agg);
}

static void assert_aggs_equal(const aggs_t *got, const aggs_t *want)
{
    print_message("aggregates: %zu emitted, %zu recomputed\n", got->n, want->n);
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        assert_string_equal(got->a[i].type, want->a[i].type);
        assert_int_equal(got->a[i].start, want->a[i].start);
        assert_int_equal(got->a[i].count, want->a[i].count);
        assert_int_equal(got->a[i].users, want->a[i].users);
        assert_true(got->a[i].sum > want->a[i].sum - 1e-6 && got->a[i].sum < want->a[i].sum + 1e-6);
    }
}

/* ---- dead letters ------------------------------------------------------------------------ */

typedef struct dlq {
    char reasons[8][256];
    size_t n;
} dlq_t;

static void keep_dlq(const it_record_t *r, void *opaque)
{
    dlq_t *d = opaque;
    size_t len = 0;
    const char *reason = it_header(r, "ue-dlq-reason", &len);
    if (d->n < 8 && reason && it_header(r, "ue-source-offset", NULL))
        snprintf(d->reasons[d->n], 256, "%.*s", (int)len, reason);
    d->n++;
}

/* Garbage bytes, an unknown schema version and an oversized event, into the raw topic. */
static void write_poison(void)
{
    char topic[128];
    uint8_t id[16] = {1}, big[8192], buf[9000];
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    rd_kafka_t *rk = plain_producer();
    snprintf(topic, sizeof(topic), "%s.ev.all", in.prefix);
    e.event_id.data = id;
    e.event_id.len = 16;
    e.type = "page_view";
    e.user_id = "poison";
    e.schema_version = 99;
    size_t len = userevents__event__pack(&e, buf);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const void *values[] = {"\xff\x01garbage", buf, NULL};
    size_t lens[] = {9, len, 0};
    e.schema_version = 1;
    e.session_id = (char *)big;
    lens[2] = userevents__event__pack(&e, buf + len);
    values[2] = buf + len;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("poison", 6),
                                           RD_KAFKA_V_VALUE((void *)values[i], lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
    rd_kafka_destroy(rk);
    in.raw += 3;
}

/* ---- the tests --------------------------------------------------------------------------- */

typedef struct runner {
    enr_processor_t *p;
    pthread_t thread;
    enr_err_t rc;
} runner_t;

static void *run_thread(void *arg)
{
    runner_t *r = arg;
    r->rc = enr_run(r->p);
    return NULL;
}

typedef struct wait_stat {
    enr_processor_t *p;
    enr_stat_t stat;
    int64_t at_least;
} wait_stat_t;

static int stat_reached(void *arg)
{
    wait_stat_t *w = arg;
    return enr_stat(w->p, w->stat) >= w->at_least;
}

static void wait_stat(enr_processor_t *p, enr_stat_t stat, int64_t at_least)
{
    wait_stat_t w = {p, stat, at_least};
    if (!tu_wait_until(stat_reached, &w, 120000))
        fail_msg("%s stayed at %lld, expected %lld", enr_stat_name(stat),
                 (long long)enr_stat(p, stat), (long long)at_least);
}

/* Windows the input makes (type, window of the client timestamp). */
static size_t expected_windows(void)
{
    aggs_t *g = calloc(1, sizeof(*g));
    for (size_t i = 0; i < in.n_real; i++) {
        int64_t start = in.events[i].ts / WINDOW_MS * WINDOW_MS;
        size_t j = 0;
        while (j < g->n &&
               (strcmp(g->a[j].type, TYPES[in.events[i].type]) || g->a[j].start != start))
            j++;
        if (j == g->n) {
            snprintf(g->a[j].type, sizeof(g->a[j].type), "%s", TYPES[in.events[i].type]);
            g->a[j].start = start;
            g->n++;
        }
    }
    size_t n = g->n;
    free(g);
    return n;
}

static outputs_t run_a;
static aggs_t aggs_a;

/* Guarantee: each input id lands once in the enriched topic (duplicates dropped), enriched
 * with profile (an update mid-stream shows in later events), geo, session and user agent;
 * aggregates equal a recomputation; poison records go to the dead-letter topic. */
static void test_enriches_each_event_once(void **state)
{
    (void)state;
    runner_t r = {.p = processor("a")};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    ue_client_t *c = tracker();
    track_range(c, 0, PER_USER / 2);
    wait_stat(r.p, ENR_STAT_CONSUMED, (int64_t)in.raw);

    rd_kafka_t *rk = plain_producer();
    put_profile(rk, "u03", "enterprise");
    rd_kafka_destroy(rk);
    wait_stat(r.p, ENR_STAT_PROFILE_UPDATES, 11);
    track_range(c, PER_USER / 2, PER_USER);
    ue_client_destroy(c);
    track_sentinels();
    wait_stat(r.p, ENR_STAT_CONSUMED, (int64_t)in.raw);
    wait_stat(r.p, ENR_STAT_AGGREGATES, (int64_t)expected_windows());

    enr_stop(r.p);
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, ENR_OK);
    assert_int_equal(enr_stat(r.p, ENR_STAT_DEAD_LETTERS), 3);
    assert_true(enr_stat(r.p, ENR_STAT_DROPPED) >= DUPLICATES);
    assert_int_equal(enr_processor_destroy(r.p, 10000), ENR_OK);

    run_a = read_enriched("a", in.n);
    assert_each_id_once(&run_a);
    assert_sessions_split_at_gaps(&run_a);
    assert_enrichment(&run_a, PER_USER / 2);
    aggs_t *want = calloc(1, sizeof(*want));
    recompute(&run_a, want);
    read_aggs("a", want->n, &aggs_a);
    assert_aggs_equal(&aggs_a, want);
    free(want);

    dlq_t d = {0};
    char topic[128];
    const char *topics[] = {topic};
    snprintf(topic, sizeof(topic), "%s.a.dlq", in.prefix);
    it_read(topics, 1, 3, 30000, keep_dlq, &d);
    print_message("dead letters: %s | %s | %s\n", d.reasons[0], d.reasons[1], d.reasons[2]);
    assert_int_equal(d.n, 3);
    assert_non_null(strstr(d.reasons[0], "undecodable"));
    assert_non_null(strstr(d.reasons[1], "schema version"));
    assert_non_null(strstr(d.reasons[2], "oversized"));
}

/* Starts enrichd for run "b"; its counters come every 100 ms on *@p err_fd. */
static pid_t spawn_enrichd(int *err_fd)
{
    const char *build = getenv("UE_BUILD_DIR") ? getenv("UE_BUILD_DIR") : "build";
    static char kv[40][640], path[512];
    char *argv[90];
    size_t n, a = 0;
    int fds[2];
    run_settings(kv, &n, "b");
    snprintf(kv[n++], 640, "txn.max.events=20");
    snprintf(kv[n++], 640, "batch.max.events=20");
    snprintf(kv[n++], 640, "kafka.consumer.group.instance.id=%s-b-0", in.prefix);
    snprintf(kv[n++], 640, "kafka.consumer.session.timeout.ms=10000");
    snprintf(path, sizeof(path), "%s/enrichd", build);
    argv[a++] = path;
    argv[a++] = "-s";
    argv[a++] = "100";
    for (size_t i = 0; i < n; i++) {
        argv[a++] = "-X";
        argv[a++] = kv[i];
    }
    argv[a] = NULL;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    *err_fd = fds[0];
    return pid;
}

/* Reads enrichd's counters until it has enriched at least @p at_least events of this life. */
static int wait_enriched(int fd, long at_least)
{
    FILE *f = fdopen(dup(fd), "r");
    char line[2048];
    long enriched = -1;
    while (enriched < at_least && fgets(line, sizeof(line), f)) {
        const char *e = strstr(line, " enriched=");
        if (e)
            enriched = strtol(e + 10, NULL, 10);
    }
    fclose(f);
    return enriched >= at_least;
}

/* The last value of counter @p name in what enrichd wrote until it exited. */
static long last_counter(int fd, const char *name)
{
    FILE *f = fdopen(dup(fd), "r");
    char line[2048];
    long value = -1;
    while (fgets(line, sizeof(line), f)) {
        const char *c = strstr(line, name);
        if (c)
            value = strtol(c + strlen(name), NULL, 10);
    }
    fclose(f);
    return value;
}

/* Guarantee: enrichd killed with SIGKILL mid-stream, several times, and restarted still writes
 * each input id exactly once, with the sessions and aggregates of an uninterrupted run. */
static void test_sigkill_restarts_equal_uninterrupted_run(void **state)
{
    (void)state;
    if (!run_a.n)
        skip(); /* needs the uninterrupted run of the test before */
    srand((unsigned)time(NULL));
    for (int kill_no = 0; kill_no < 3; kill_no++) {
        int fd;
        pid_t pid = spawn_enrichd(&fd);
        /* Mid-stream: after 40..120 more events of this life, i.e. between commits or in one. */
        assert_true(wait_enriched(fd, 40 + rand() % 80));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fd);
    }
    int fd;
    pid_t pid = spawn_enrichd(&fd);
    outputs_t b = read_enriched("b", in.n);
    aggs_t *aggs_b = calloc(1, sizeof(*aggs_b));
    read_aggs("b", aggs_a.n, aggs_b);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    long restored = last_counter(fd, " restored=");
    close(fd);
    print_message("the last enrichd restored %ld changelog records from the killed ones\n",
                  restored);
    assert_true(restored > 0); /* the kills landed after commits: state was carried over */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    assert_each_id_once(&b);
    assert_sessions_split_at_gaps(&b);
    for (size_t i = 0; i < in.n_real; i++) { /* the sentinels share a user across partitions */
        const out_event_t *x = find_out(&run_a, in.events[i].id),
                          *y = find_out(&b, in.events[i].id);
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(y->session, x->session);
        assert_int_equal(y->seq, x->seq);
    }
    assert_aggs_equal(aggs_b, &aggs_a);
    free(aggs_b);
    free(b.ev);
}

static int setup(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(in.prefix, sizeof(in.prefix), "%s", it_unique_prefix());
    in.dir = tu_tempdir("it-enrich");
    snprintf(in.mmdb, sizeof(in.mmdb), "%s/geo.mmdb", in.dir);
    snprintf(cmd, sizeof(cmd), "perl test/fixtures/make_mmdb.pl '%s'", in.mmdb);
    if (system(cmd) != 0) {
        fprintf(stderr, "it_enrich: cannot build the MMDB fixture\n");
        return -1;
    }
    rd_kafka_t *rk = plain_producer();
    for (int u = 0; u < 10; u++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "u%02d", u);
        put_profile(rk, uid, u % 2 ? "free" : "pro");
    }
    rd_kafka_destroy(rk);
    write_poison();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(in.dir);
    free(in.dir);
    free(run_a.ev);
    return 0;
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr, "it_enrich: KAFKA_BOOTSTRAP is not set; run through test/kafka.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enriches_each_event_once),
        cmocka_unit_test(test_sigkill_restarts_equal_uninterrupted_run),
    };
    return cmocka_run_group_tests_name("integration: libenrich", tests, setup, teardown);
}
