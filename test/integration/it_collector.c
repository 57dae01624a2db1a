/*
 * it_collector.c - devices over HTTP: libuserevents (transport=http, spool) -> the real
 * collector process (build/ue-collector, restarted mid-run) -> a real Kafka broker, checked by
 * the independent consumer of itutil.c (plain librdkafka + the generated decoder).
 *
 * Each test proves one guarantee; the collector is spawned from $UE_BUILD_DIR (default build)
 * on a free loopback port, with small body caps so that the SDK's batches meet 413 and split.
 * UE_IT_FILTER (a cmocka glob, e.g. "*bomb*") runs some tests only.
 */
#include "collector.pb-c.h"
#include "deep_pb.h"
#include "itutil.h"
#include "testutil.h"
#include "uc_validate.h"
#include "userevents.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cmocka.h>

#define USERS 50
static const char *const TYPES[] = {"page_view", "click", "purchase"};
#define NTYPES 3
#define MAX_EVENT_BYTES 4096 /* --max-event-bytes of the bad-requests collector */
#define KEY "it-key-0123456789abcdef" /* API keys are 16 characters at least */
#define SLOW_KEY "slow-key-0123456789ab"

/* ---- the collector process ------------------------------------------------------------------ */

typedef struct collector {
    pid_t pid;
    int port;
    int private_metrics; /* leave out --public-metrics: /metrics only on --metrics-port */
    char keys[512], spool[512], prefix[128];
    char errlog[600]; /* when set, the collector's stderr goes to this file */
} collector_t;

static pid_t live_pids[8]; /* killed by the group teardown if a test fails half-way */

static void remember(pid_t pid, int add)
{
    for (int i = 0; i < 8; i++) {
        if (add && !live_pids[i]) {
            live_pids[i] = pid;
            return;
        }
        if (!add && live_pids[i] == pid)
            live_pids[i] = 0;
    }
}

/* Reads the "listening on ... port N" line the collector prints first. */
static int read_port(int fd)
{
    char line[256];
    size_t n = 0;
    struct pollfd p = {fd, POLLIN, 0};
    while (n < sizeof(line) - 1 && poll(&p, 1, 20000) == 1) {
        if (read(fd, line + n, 1) != 1)
            break;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    const char *at = strstr(line, "port ");
    return at ? atoi(at + 5) : -1;
}

/* Starts the collector on @p port (0: a free one) with the common flags plus @p extra. */
static void collector_start(collector_t *col, int port, const char *const *extra)
{
    const char *build = getenv("UE_BUILD_DIR");
    char bin[512], portstr[16], template[200];
    int fds[2];
    snprintf(bin, sizeof(bin), "%s/ue-collector", build && *build ? build : "build");
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(template, sizeof(template), "topic.template=%s.{type}", col->prefix);
    const char *argv[32] = {bin,
                            "-b",
                            it_bootstrap(),
                            "-p",
                            portstr,
                            "-s",
                            col->spool,
                            "-K",
                            col->keys,
                            "--max-body",
                            "65536",
                            "--max-decoded",
                            "262144",
                            "-X",
                            template,
                            "-X",
                            "log.level=error",
                            "-X",
                            "shutdown.timeout.ms=20000"};
    int argc = 19;
    if (!col->private_metrics)
        argv[argc++] = "--public-metrics"; /* metric() reads the public port */
    for (; extra && *extra && argc < 30; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int err = col->errlog[0] ? open(col->errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
        if (err >= 0)
            dup2(err, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    col->pid = pid;
    remember(pid, 1);
    col->port = read_port(fds[0]);
    close(fds[0]);
    if (col->port <= 0)
        fail_msg("%s did not start (built? make %s)", bin, bin);
}

/* Stops the collector with @p sig and waits for it; returns its exit status. */
static int collector_stop(collector_t *col, int sig)
{
    int status = -1;
    kill(col->pid, sig);
    waitpid(col->pid, &status, 0);
    remember(col->pid, 0);
    col->pid = 0;
    return status;
}

static void collector_init(collector_t *col, const char *keys_text)
{
    memset(col, 0, sizeof(*col));
    snprintf(col->prefix, sizeof(col->prefix), "%s", it_unique_prefix());
    char *dir = tu_tempdir("it-collector");
    snprintf(col->spool, sizeof(col->spool), "%s/spool", dir);
    snprintf(col->keys, sizeof(col->keys), "%s/keys", dir);
    free(dir);
    FILE *f = fopen(col->keys, "w");
    assert_non_null(f);
    fputs(keys_text, f);
    fclose(f);
    chmod(col->keys, 0600); /* the collector refuses a keys file others can read */
}

static void collector_cleanup(collector_t *col)
{
    char *dir = strdup(col->keys);
    *strrchr(dir, '/') = '\0';
    tu_rmrf(dir);
    free(dir);
}

/* ---- the SDK side ------------------------------------------------------------------------------
 */

/* Ids expected in Kafka, in tracking order; each user's next "seq". */
typedef struct tracked {
    size_t n, cap;
    int64_t next_seq[USERS + 16];
    uint8_t (*ids)[16];
} tracked_t;

static tracked_t *tracked_new(size_t cap)
{
    tracked_t *t = calloc(1, sizeof(*t));
    t->cap = cap;
    t->ids = calloc(cap, 16);
    return t;
}

static void tracked_free(tracked_t *t)
{
    free(t->ids);
    free(t);
}

static ue_client_t *sdk_client(const collector_t *col, const char *spool, const char *key)
{
    char url[128], errstr[512];
    const char *kv[] = {"transport=http", "http.backoff.base.ms=20", "http.backoff.max.ms=500",
                        "log.level=error", NULL};
    ue_conf_t *conf = tu_conf(kv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/batch", col->port);
    assert_int_equal(ue_conf_set(conf, "http.url", url, errstr, sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "http.api.key", key, errstr, sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "spool.dir", spool, errstr, sizeof(errstr)), UE_CONF_OK);
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("ue_client_new: %s", errstr);
    return c;
}

static void track_events(ue_client_t *c, tracked_t *t, size_t n)
{
    ue_event_t *ev = ue_event_new("page_view");
    for (size_t i = 0; i < n; i++) {
        size_t user = (t->n) % USERS;
        char uid[32];
        snprintf(uid, sizeof(uid), "user-%02zu", user);
        ue_event_reset(ev, TYPES[t->n / USERS % NTYPES]);
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "seq", t->next_seq[user]++);
        ue_event_prop_string(ev, "path", "/pricing");
        ue_event_set_context(ev, "os.name", "Linux");
        assert_int_equal(ue_track(c, ev), UE_OK);
        assert_int_equal(ue_event_get_event_id(ev, t->ids[t->n]), UE_OK);
        t->n++;
    }
    ue_event_destroy(ev);
}

typedef struct check_opts {
    int allow_duplicates; /* a SIGKILLed collector may publish an event twice (same id) */
    const char *const *extra; /* run_with_restart(): more flags of the collector */
} check_opts_t;

/* Consumes the collector's topics; asserts every tracked id arrived, stamped received_at. */
static void assert_arrived(const collector_t *col, const tracked_t *t, check_opts_t o)
{
    char topics[NTYPES][200];
    const char *names[NTYPES];
    for (int i = 0; i < NTYPES; i++) {
        snprintf(topics[i], sizeof(topics[i]), "%s.%s", col->prefix, TYPES[i]);
        names[i] = topics[i];
    }
    it_msg_t *msgs;
    size_t n = it_consume(names, NTYPES, t->n, 120000, &msgs), unstamped = 0;
    it_report_t r = it_check(msgs, n, (const uint8_t(*)[16])t->ids, t->n, col->prefix);
    for (size_t i = 0; i < n; i++)
        unstamped += msgs[i].ev && msgs[i].ev->received_at_ms < msgs[i].ev->timestamp_ms - 60000;
    print_message("tracked %zu, consumed %zu: missing %zu, duplicates %zu, unexpected %zu, "
                  "undecodable %zu, bad topic/key/headers %zu, out of order %zu, no received_at "
                  "%zu\n",
                  t->n, n, r.missing, r.duplicates, r.unexpected, r.undecodable, r.bad_meta,
                  r.out_of_order, unstamped);
    it_msgs_free(msgs, n);
    assert_int_equal(r.missing, 0);
    assert_int_equal(r.unexpected, 0);
    assert_int_equal(r.undecodable, 0);
    assert_int_equal(r.bad_meta, 0);
    assert_int_equal(unstamped, 0);
    if (!o.allow_duplicates) {
        assert_int_equal(n, t->n);
        assert_int_equal(r.duplicates, 0);
        assert_int_equal(r.out_of_order, 0);
    }
}

typedef struct reply {
    long status;
    char body[16384];
    size_t len;
    long retry_after;
} reply_t;

static size_t keep_body(char *data, size_t size, size_t nmemb, void *opaque);

/* The value of one line of the collector's /metrics, e.g.
 * userevents_collector_http_responses_total{...}. */
static long long metric(const collector_t *col, const char *name)
{
    char url[128];
    static reply_t r;
    memset(&r, 0, sizeof(r));
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", col->port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_cleanup(e);
    const char *at = strstr(r.body, name);
    return at ? atoll(at + strlen(name)) : -1;
}

/* GETs @p path of the collector; returns the HTTP status. */
static long get_status(const collector_t *col, const char *path)
{
    char url[128];
    long status = 0;
    reply_t *r = calloc(1, sizeof(*r));
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", col->port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    free(r);
    return status;
}

/* Tracks @p n events, restarting the collector with @p sig half-way, right after a burst so
 * that batches are on their way; the SDK must retry across the restart. */
static void run_with_restart(collector_t *col, int sig, size_t n, check_opts_t o)
{
    char *spool = tu_tempdir("it-sdk-spool");
    tracked_t *t = tracked_new(n);
    collector_start(col, 0, o.extra);
    ue_client_t *c = sdk_client(col, spool, KEY);
    track_events(c, t, n / 4);
    usleep(300 * 1000);
    track_events(c, t, n / 4); /* a burst: requests in flight when the collector stops */
    long long split = metric(col, "userevents_collector_http_responses_total{code=\"413\"} ");
    int status = collector_stop(col, sig);
    if (sig == SIGTERM)
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    track_events(c, t, n / 4);             /* the collector is down: spooled by the SDK */
    collector_start(col, col->port, o.extra); /* same port, same spool */
    track_events(c, t, n - t->n);
    assert_int_equal(ue_flush(c, 120000), UE_OK);
    assert_true(split > 0); /* the SDK's batches met the 64 KiB cap and split */
    assert_true(ue_stat(c, UE_STAT_RETRIES) > 0); /* the restart hit traffic */
    assert_int_equal(ue_stat(c, UE_STAT_DELIVERED), (int64_t)n);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 0);
    print_message("SDK: %lld sent (retries included), %lld retries\n",
                  (long long)ue_stat(c, UE_STAT_SENT), (long long)ue_stat(c, UE_STAT_RETRIES));
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_int_equal(collector_stop(col, SIGTERM), 0); /* flushes to Kafka */
    assert_arrived(col, t, o);
    tracked_free(t);
    tu_rmrf(spool);
    free(spool);
}

/* Guarantee: SDK -> collector -> Kafka, with the collector stopped (SIGTERM) and restarted
 * mid-run: every event arrives exactly once by id, in per-user order, stamped received_at. */
static void test_collector_restart_every_event_once(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    run_with_restart(&col, SIGTERM, 20000, (check_opts_t){0});
    collector_cleanup(&col);
}

/* Guarantee: a SIGTERM whose drain deadline passes at once (--drain-timeout-ms 0) still answers
 * every batch it has started to publish before it stops (one answered nothing, and its client
 * sent the events again), and starts no other: every event arrives exactly once. */
static void test_collector_sigterm_at_once_publishes_each_event_once(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *const extra[] = {"--drain-timeout-ms", "0", NULL};
    run_with_restart(&col, SIGTERM, 20000, (check_opts_t){.extra = extra});
    collector_cleanup(&col);
}

/* Guarantee: a collector killed (SIGKILL) mid-run loses nothing it answered 200 for, nor
 * anything the SDK still held: every event id arrives (a re-sent one may arrive twice). */
static void test_collector_sigkill_loses_nothing(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    run_with_restart(&col, SIGKILL, 10000, (check_opts_t){.allow_duplicates = 1});
    collector_cleanup(&col);
}

/* ---- raw requests --------------------------------------------------------------------------- */

static size_t keep_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    reply_t *r = opaque;
    size_t len = size * nmemb, room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, data, len < room ? len : room);
    r->len += len < room ? len : room;
    return len;
}

/* POSTs @p body to the collector's /v1/batch with the given headers (NULL: left out). */
static reply_t post(const collector_t *col, const char *key, const char *type, const char *encoding,
                    const void *body, size_t len)
{
    reply_t r = {0};
    char url[128], h[3][128];
    struct curl_slist *hdrs = NULL;
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/batch", col->port);
    snprintf(h[0], sizeof(h[0]), "X-API-Key: %s", key ? key : "");
    snprintf(h[1], sizeof(h[1]), "Content-Type: %s", type);
    snprintf(h[2], sizeof(h[2]), "Content-Encoding: %s", encoding ? encoding : "");
    if (key)
        hdrs = curl_slist_append(hdrs, h[0]);
    hdrs = curl_slist_append(hdrs, h[1]);
    if (encoding)
        hdrs = curl_slist_append(hdrs, h[2]);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
        fail_msg("POST: %s", curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    struct curl_header *ra;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
        r.retry_after = atol(ra->value);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    return r;
}

/* A JSON batch of @p n valid events of user "web-<user>" (ids kept in @p t when @p t is not
 * NULL), optionally with one invalid event at the end. Returns malloc'd text. */
static char *json_batch(tracked_t *t, int user, size_t n, int add_invalid, uint8_t (*ids)[16])
{
    size_t cap = 512 * (n + 2), len = 0;
    char *out = malloc(cap), text[37];
    len += (size_t)snprintf(out + len, cap - len, "[");
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        for (int b = 0; b < 16; b++)
            id[b] = (uint8_t)rand();
        id[6] = (id[6] & 0x0f) | 0x40, id[8] = (id[8] & 0x3f) | 0x80;
        ue_event_id_format(id, text);
        if (t)
            memcpy(t->ids[t->n++], id, 16);
        if (ids)
            memcpy(ids[i], id, 16);
        int64_t seq = t ? t->next_seq[USERS + user]++ : 0;
        len += (size_t)snprintf(out + len, cap - len,
                                "%s{\"type\":\"click\",\"event_id\":\"%s\",\"user_id\":\"web-%d\","
                                "\"timestamp\":%lld,\"properties\":{\"seq\":%lld,\"button\":"
                                "\"buy\"},\"context\":{\"app\":{\"name\":\"web\"}}}",
                                i ? "," : "", text, user, (long long)time(NULL) * 1000,
                                (long long)seq);
    }
    if (add_invalid)
        len +=
            (size_t)snprintf(out + len, cap - len, ",{\"type\":\"no spaces\",\"user_id\":\"x\"}");
    snprintf(out + len, cap - len, "]");
    return out;
}

/* @p n zero bytes compressed with gzip (@p zstd 0) or zstd: a small body, a huge output. */
static uint8_t *bomb(size_t n, int zstd, size_t *len)
{
    uint8_t *zeros = calloc(1, n), *out = malloc(n / 100 + 65536);
    if (zstd) {
        *len = ZSTD_compress(out, n / 100 + 65536, zeros, n, 19);
    } else {
        z_stream zs = {0};
        deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
        zs.next_in = zeros, zs.avail_in = (uInt)n;
        zs.next_out = out, zs.avail_out = (uInt)(n / 100 + 65536);
        deflate(&zs, Z_FINISH);
        *len = zs.total_out;
        deflateEnd(&zs);
    }
    free(zeros);
    return out;
}

static int has_reason(const reply_t *r)
{
    return strstr(r->body, "\"reason\":\"") != NULL;
}

/* Sends one of each bad request; asserts each answer. Valid JSON events go into @p t. */
static void bad_requests(const collector_t *col, tracked_t *t)
{
    char *ok = json_batch(t, 1, 3, 0, NULL);
    uint8_t rejected[4][16];
    char *invalid = json_batch(NULL, 2, 3, 1, rejected);
    reply_t r = post(col, NULL, "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 401);
    r = post(col, "wrong-key-0123456789ab", "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 401);
    assert_true(has_reason(&r));
    r = post(col, SLOW_KEY, "application/json", NULL, ok, strlen(ok)); /* burst of 1 */
    assert_int_equal(r.status, 200);
    r = post(col, SLOW_KEY, "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 429);
    assert_true(r.retry_after >= 1);
    char *big = calloc(1, 100000);
    memset(big, ' ', 99999);
    r = post(col, KEY, "application/json", NULL, big, 99999);
    assert_int_equal(r.status, 413);
    free(big);
    size_t blen;
    uint8_t *gz = bomb(20 << 20, 0, &blen);
    r = post(col, KEY, "application/json", "gzip", gz, blen);
    assert_int_equal(r.status, 413);
    free(gz);
    gz = bomb(20 << 20, 1, &blen);
    r = post(col, KEY, "application/x-protobuf", "zstd", gz, blen);
    assert_int_equal(r.status, 413);
    free(gz);
    r = post(col, KEY, "application/x-protobuf", NULL, "\xff\xff\xff garbage", 12);
    assert_int_equal(r.status, 400);
    assert_true(has_reason(&r));
    r = post(col, KEY, "application/json", NULL, "[{\"type\":", 9);
    assert_int_equal(r.status, 400);
    r = post(col, KEY, "application/json", NULL, invalid, strlen(invalid));
    assert_int_equal(r.status, 400); /* one bad event: none of the batch is published */
    assert_non_null(strstr(r.body, "events[3]"));
    r = post(col, KEY, "application/json", "gzip", "not gzip", 8);
    assert_int_equal(r.status, 400);
    /* A valid event, then one over --max-event-bytes by its session id alone: 413, and the
     * valid one is not published either (assert_arrived finds no unexpected id). */
    char *oversized = json_batch(NULL, 4, 1, 0, NULL);
    size_t olen = strlen(oversized), cap = olen + MAX_EVENT_BYTES + 128;
    oversized = realloc(oversized, cap);
    olen += (size_t)snprintf(oversized + olen - 1, cap - olen, ",{\"type\":\"click\","
                             "\"user_id\":\"web-4\",\"session_id\":\"") - 1;
    memset(oversized + olen, 's', MAX_EVENT_BYTES);
    snprintf(oversized + olen + MAX_EVENT_BYTES, cap - olen - MAX_EVENT_BYTES, "\"}]");
    r = post(col, KEY, "application/json", NULL, oversized, strlen(oversized));
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "events[1]"));
    free(oversized);
    free(ok);
    free(invalid);
}

/* A valid JSON batch compressed with zstd, ids into @p t: accepted. */
static void good_zstd_json(const collector_t *col, tracked_t *t)
{
    char *json = json_batch(t, 3, 5, 0, NULL);
    size_t cap = ZSTD_compressBound(strlen(json));
    uint8_t *z = malloc(cap);
    size_t zlen = ZSTD_compress(z, cap, json, strlen(json), 3);
    reply_t r = post(col, KEY, "application/json", "zstd", z, zlen);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"accepted\":5"));
    free(z);
    free(json);
}

/* Guarantee: unauthenticated, rate-limited, oversized, zip-bomb and malformed requests get
 * 401, 429 + Retry-After, 413, 413 and 400 with a reason, while an SDK streams through the
 * same collector: every valid event arrives exactly once, nothing from a refused batch does. */
static void test_collector_answers_bad_requests_and_keeps_the_good(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n" SLOW_KEY " 0.1 1\n");
    char max_event[16];
    snprintf(max_event, sizeof(max_event), "%d", MAX_EVENT_BYTES);
    const char *const extra[] = {"--max-event-bytes", max_event, NULL};
    collector_start(&col, 0, extra);
    char *spool = tu_tempdir("it-sdk-spool");
    tracked_t *t = tracked_new(10000);
    ue_client_t *c = sdk_client(&col, spool, KEY);
    track_events(c, t, 2000);
    bad_requests(&col, t);
    track_events(c, t, 2000);
    good_zstd_json(&col, t);
    track_events(c, t, 1000);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    ue_client_t *bad = sdk_client(&col, spool, "wrong-key-0123456789ab"); /* the SDK and a 401 */
    tracked_t *lost = tracked_new(10);
    track_events(bad, lost, 5);
    assert_int_equal(ue_flush(bad, 10000), UE_OK);
    assert_int_equal(ue_stat(bad, UE_STAT_FAILED), 5); /* failed for good, not retried */
    assert_int_equal(ue_stat(bad, UE_STAT_RETRIES), 0);
    assert_int_equal(ue_client_destroy(bad), UE_OK);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(lost);
    tracked_free(t);
    tu_rmrf(spool);
    free(spool);
    collector_cleanup(&col);
}

/* Guarantee: a protobuf batch whose one event nests a property 6,000 lists deep (42 KB, which
 * protobuf-c's recursive unpack would take past the connection thread's stack) gets 400 with
 * the reason, and the collector lives on: /healthz answers, a good batch after it arrives. */
static void test_collector_refuses_deep_nesting_and_lives_on(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL);
    size_t len;
    uint8_t *deep = dp_batch(6000, &len);
    reply_t r = post(&col, KEY, "application/x-protobuf", NULL, deep, len);
    free(deep);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "nested deeper than 32 levels"));
    assert_int_equal(waitpid(col.pid, NULL, WNOHANG), 0); /* still running */
    assert_int_equal(get_status(&col, "/healthz"), 200);
    tracked_t *t = tracked_new(16);
    char *ok = json_batch(t, 5, 3, 0, NULL);
    r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* A protobuf batch of one valid-looking event of @p type stamped @p ts; malloc'd, *@p len its
 * size. */
static uint8_t *pb_batch_of(const char *type, int64_t ts, size_t *len)
{
    uint8_t id[16] = {0x01, 0x8f, 1, 2, 3, 4, 0x70, 5, 0x80, 6, 7, 8, 9, 10, 11, 12};
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    e.event_id.data = id;
    e.event_id.len = 16;
    e.type = (char *)type;
    e.user_id = "web-6";
    e.timestamp_ms = ts;
    e.schema_version = 1;
    Userevents__Value seq = USEREVENTS__VALUE__INIT; /* seq 0: what the order check reads */
    Userevents__Event__PropertiesEntry prop = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT;
    Userevents__Event__PropertiesEntry *props[] = {&prop};
    seq.kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    prop.key = "seq";
    prop.value = &seq;
    e.properties = props;
    e.n_properties = 1;
    size_t elen = userevents__event__get_packed_size(&e);
    uint8_t *ebuf = malloc(elen);
    userevents__event__pack(&e, ebuf);
    Userevents__EventBatch b = USEREVENTS__EVENT_BATCH__INIT;
    ProtobufCBinaryData one = {elen, ebuf};
    b.n_events = 1;
    b.events = &one;
    *len = userevents__event_batch__get_packed_size(&b);
    uint8_t *out = malloc(*len);
    userevents__event_batch__pack(&b, out);
    free(ebuf);
    return out;
}

/* Guarantee: clients cannot write into the pipeline's own topics: an event typed enriched,
 * dead_letter, alerts, ... (any case) gets 400 with the reason, JSON or protobuf, and nothing
 * of its batch is published; the valid events around it still arrive once. */
static void test_collector_refuses_reserved_types(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL);
    const char *reserved[] = {"enriched", "dead_letter", "aggregates", "alerts", "Changelog",
                              "profiles"};
    tracked_t *t = tracked_new(16);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "[{\"type\":\"click\",\"user_id\":\"web-6\"},"
                 "{\"type\":\"%s\",\"user_id\":\"web-6\"}]", reserved[i]);
        reply_t r = post(&col, KEY, "application/json", NULL, body, strlen(body));
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "events[1]"));
        assert_non_null(strstr(r.body, "reserved"));
        size_t len;
        uint8_t *pb = pb_batch_of(reserved[i], (int64_t)time(NULL) * 1000, &len);
        r = post(&col, KEY, "application/x-protobuf", NULL, pb, len);
        free(pb);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "reserved"));
    }
    char *ok = json_batch(t, 7, 2, 0, NULL);
    reply_t r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0}); /* the clicks of the refused batches: absent */
    tracked_free(t);
    collector_cleanup(&col);
}

/* ---- hostile input: memory --------------------------------------------------------------- */

/* The collector's resident memory now, in kB (VmRSS of /proc/PID/status); -1 when gone. */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* Samples a process's VmRSS every 2 ms on a thread of its own, keeping the peak. */
typedef struct rss_sampler {
    pid_t pid;
    atomic_int stop, samples;
    long peak_kb;
    pthread_t thread;
} rss_sampler_t;

static void sample_once(rss_sampler_t *s)
{
    long kb = rss_kb(s->pid);
    if (kb > s->peak_kb)
        s->peak_kb = kb;
}

static void *sample_rss(void *arg)
{
    rss_sampler_t *s = arg;
    while (!atomic_load(&s->stop)) {
        sample_once(s);
        atomic_fetch_add(&s->samples, 1);
        usleep(2000);
    }
    return NULL;
}

/* Starts sampling; returns once the thread has taken its first sample. */
static void sampler_start(rss_sampler_t *s, pid_t pid)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    assert_int_equal(pthread_create(&s->thread, NULL, sample_rss, s), 0);
    while (!atomic_load(&s->samples))
        usleep(1000);
}

static long sampler_stop(rss_sampler_t *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    sample_once(s);
    return s->peak_kb;
}

/* POSTs @p bodies[i] (@p lens[i] bytes) for i < @p n at once (curl's multi interface, one
 * connection each); the statuses go to @p status, the slowest answer's seconds are returned. */
static double post_each_concurrently(const collector_t *col, const char *type,
                                     const char *encoding, const void *const *bodies,
                                     const size_t *lens, int n, long *status)
{
    char url[128], h[2][128];
    CURLM *m = curl_multi_init();
    CURL *e[16];
    reply_t *replies = calloc(16, sizeof(reply_t));
    struct curl_slist *hdrs = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/batch", col->port);
    snprintf(h[0], sizeof(h[0]), "Content-Type: %s", type);
    snprintf(h[1], sizeof(h[1]), "Content-Encoding: %s", encoding ? encoding : "identity");
    hdrs = curl_slist_append(hdrs, "X-API-Key: " KEY);
    hdrs = curl_slist_append(hdrs, h[0]);
    hdrs = curl_slist_append(hdrs, h[1]);
    hdrs = curl_slist_append(hdrs, "Expect:");
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE, (long)lens[i]);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &replies[i]);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 120000L);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double slowest = 0;
    for (int i = 0; i < n; i++) {
        double secs = 0;
        status[i] = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status[i]);
        curl_easy_getinfo(e[i], CURLINFO_TOTAL_TIME, &secs);
        slowest = secs > slowest ? secs : slowest;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(m);
    free(replies);
    return slowest;
}

/* POSTs the same @p body @p n times at once; see post_each_concurrently(). */
static double post_concurrently(const collector_t *col, const char *type, const char *encoding,
                                const void *body, size_t len, int n, long *status)
{
    const void *bodies[16];
    size_t lens[16];
    for (int i = 0; i < n && i < 16; i++)
        bodies[i] = body, lens[i] = len;
    return post_each_concurrently(col, type, encoding, bodies, lens, n, status);
}

/* @p text repeated to @p size bytes between @p open and @p close, gzip'ed (@p zstd 0) or
 * zstd'ed: a small body that decodes to a huge JSON document. */
static uint8_t *json_bomb(const char *open, const char *text, const char *close, size_t size,
                          int zstd, size_t *len)
{
    size_t tl = strlen(text), n = 0;
    char *plain = malloc(size + 64);
    n += (size_t)sprintf(plain, "%s", open);
    while (n + tl + strlen(close) < size)
        n += (size_t)sprintf(plain + n, "%s", text);
    n += (size_t)sprintf(plain + n - 1, "%s", close) - 1; /* over the last separator */
    uint8_t *out = malloc(n / 50 + 65536);
    if (zstd) {
        *len = ZSTD_compress(out, n / 50 + 65536, plain, n, 19);
    } else {
        z_stream zs = {0};
        deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
        zs.next_in = (Bytef *)plain, zs.avail_in = (uInt)n;
        zs.next_out = out, zs.avail_out = (uInt)(n / 50 + 65536);
        deflate(&zs, Z_FINISH);
        *len = zs.total_out;
        deflateEnd(&zs);
    }
    free(plain);
    return out;
}

/* An EventBatch of @p n empty events (2 bytes each): protobuf-c's own bomb. */
static uint8_t *pb_empty_events(size_t n, size_t *len)
{
    uint8_t *out = malloc(2 * n);
    for (size_t i = 0; i < n; i++)
        out[2 * i] = 0x0a, out[2 * i + 1] = 0; /* field 1, length 0 */
    *len = 2 * n;
    return out;
}

#define RSS_BOUND_KB (100 * 1024)

/* Guarantee: a small body that would decode into a huge parse tree is refused before it is
 * built, the collector's memory stays bounded (VmRSS under 100 MB, sampled every 2 ms: ~20 MB
 * at rest, plus at most --max-inflight-bytes, 64 MiB, held by requests), and it serves on.
 * 8 KB of gzip decoding to 8 MiB of [0,0,...] took ~340 MB per request and 2.6 GB for 8 at
 * once, which stayed after them. */
static void test_collector_refuses_json_bombs_in_bounded_memory(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *const production[] = {"--max-body", "1048576", "--max-decoded", "8388608", NULL};
    collector_start(&col, 0, production); /* the default caps, not the small ones of the rest */
    size_t glen, zlen, dlen, plen, pblen;
    uint8_t *gz = json_bomb("[", "0,", "]", 8 << 20, 0, &glen);
    uint8_t *zs = json_bomb("[", "0,", "]", 8 << 20, 1, &zlen);
    uint8_t *one = json_bomb("[{\"type\":\"click\",\"user_id\":\"u\",\"properties\":{\"a\":[", "0,",
                             "]}}]", 8 << 20, 0, &plen); /* one event, 4 million values */
    uint8_t *deep = json_bomb("", "[", "", 4096, 0, &dlen);
    uint8_t *pb = pb_empty_events(4 << 20, &pblen);
    print_message("gzip bomb: %zu bytes -> 8 MiB of [0,0,...]\n", glen);
    rss_sampler_t s;
    sampler_start(&s, col.pid);
    long st[16];
    int64_t t0 = (int64_t)time(NULL);
    reply_t first = post(&col, KEY, "application/json", "gzip", gz, glen);
    assert_int_equal(first.status, 413);
    double slowest = post_concurrently(&col, "application/json", "gzip", gz, glen, 8, st);
    for (int i = 0; i < 8; i++)
        assert_int_equal(st[i], 413);
    post_concurrently(&col, "application/json", "zstd", zs, zlen, 8, st);
    for (int i = 0; i < 8; i++)
        assert_int_equal(st[i], 413);
    post_concurrently(&col, "application/json", "gzip", one, plen, 4, st);
    for (int i = 0; i < 4; i++)
        assert_int_equal(st[i], 413); /* the parse tree would pass --max-parse-bytes */
    reply_t r = post(&col, KEY, "application/json", "gzip", deep, dlen);
    assert_int_equal(r.status, 400);
    r = post(&col, KEY, "application/x-protobuf", NULL, pb, pblen);
    assert_int_equal(r.status, 413); /* 4 million empty events: counted before unpacking */
    long peak = sampler_stop(&s), after = rss_kb(col.pid);
    print_message("VmRSS peak %ld kB (%d samples), after %ld kB (bound %d kB); 8 bombs at once "
                  "answered within %.3f s; %lld s in all\n",
                  peak, atomic_load(&s.samples), after, RSS_BOUND_KB, slowest,
                  (long long)(time(NULL) - t0));
    assert_true(peak > 0 && peak < RSS_BOUND_KB);
    assert_true(after < RSS_BOUND_KB);
    assert_non_null(strstr(first.body, "more than 10000 events")); /* counted, not parsed */
    /* good clients are still served, and nothing of the bombs was published */
    tracked_t *t = tracked_new(16);
    char *ok = json_batch(t, 8, 3, 0, NULL);
    r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 200);
    free(ok);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    free(gz), free(zs), free(one), free(deep), free(pb);
    collector_cleanup(&col);
}

/* Guarantee: a JSON string holding \u0000 (or a raw control byte) gets 400: cJSON would cut
 * it short, and "a\u0000b" would be published as user "a". */
static void test_collector_refuses_nul_in_json_strings(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL);
    const char *bad[] = {"[{\"type\":\"click\",\"user_id\":\"victim\\u0000attacker\"}]",
                         "[{\"type\":\"click\",\"user_id\":\"u\",\"properties\":{\"k\\u0000\":1}}]",
                         "[{\"type\":\"click\",\"user_id\":\"a\x01b\"}]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reply_t r = post(&col, KEY, "application/json", NULL, bad[i],
                         strlen(bad[i]));
        assert_int_equal(r.status, 400);
        assert_true(has_reason(&r));
    }
    tracked_t *t = tracked_new(16);
    char *ok = json_batch(t, 9, 2, 0, NULL);
    reply_t r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 200);
    free(ok);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0}); /* none of the refused users */
    tracked_free(t);
    collector_cleanup(&col);
}

/* ---- raw connections --------------------------------------------------------------------- */

/* A TCP connection to the collector from local address @p from (any of 127/8 is loopback);
 * -1 when it cannot be made. */
static int raw_connect(const collector_t *col, const char *from)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)col->port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
        connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 1 when the collector has closed @p fd (end of stream or reset), waiting up to @p ms; what
 * it sent before (an error answer) is read and dropped. */
static int raw_closed(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char buf[4096];
    while (poll(&p, 1, ms) == 1) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            return 1;
    }
    return 0;
}

/* Opens a POST of a @p declared byte body and sends @p sent bytes of it: a request that holds
 * its body buffer until it is closed. */
static int hold_body(const collector_t *col, size_t declared, size_t sent)
{
    char head[512];
    int fd = raw_connect(col, "127.0.0.1");
    assert_true(fd >= 0);
    int n = snprintf(head, sizeof(head),
                     "POST /v1/batch HTTP/1.1\r\nHost: collector\r\n"
                     "X-API-Key: " KEY "\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     declared);
    char *body = malloc(sent);
    memset(body, ' ', sent);
    assert_int_equal(raw_send(fd, head, (size_t)n), 0);
    assert_int_equal(raw_send(fd, body, sent), 0);
    free(body);
    return fd;
}

/* Guarantee: the memory all requests hold at once is bounded (--max-inflight-bytes): past it a
 * request gets 503 with Retry-After, and is served once memory is free again. */
static void test_collector_memory_budget_answers_503_when_full(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *const budget[] = {"--max-body", "262144", "--max-decoded", "262144",
                                  "--max-parse-bytes", "262144", "--max-inflight-bytes",
                                  "900000", NULL};
    collector_start(&col, 0, budget);
    int held[3];
    for (int i = 0; i < 3; i++) /* each holds a 256 KiB body buffer: 768 KiB of the 879 */
        held[i] = hold_body(&col, 262144, 200000);
    usleep(500 * 1000);
    tracked_t *t = tracked_new(16);
    char *ok = json_batch(t, 10, 2, 0, NULL);
    size_t len = strlen(ok);
    ok = realloc(ok, 200000);
    memset(ok + len, ' ', 200000 - len); /* padded: its buffer needs 256 KiB too */
    reply_t r = post(&col, KEY, "application/json", NULL, ok, 200000);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after >= 1);
    assert_non_null(strstr(r.body, "max-inflight-bytes"));
    for (int i = 0; i < 3; i++)
        close(held[i]);
    usleep(300 * 1000);
    r = post(&col, KEY, "application/json", NULL, ok, 200000);
    assert_int_equal(r.status, 200); /* the same request, now that memory is free */
    free(ok);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* A JSON batch: one valid click of user "web-<user>" stamped @p ts (JSON text: a number or a
 * quoted RFC 3339 time), after @p n of json_batch()'s. Its ids go into @p t when @p keep. */
static char *json_batch_at(tracked_t *t, int user, size_t n, const char *ts, int keep)
{
    uint8_t id[16];
    char text[37];
    char *head = json_batch(keep ? t : NULL, user, n, 0, NULL);
    size_t cap = strlen(head) + 512;
    char *out = malloc(cap);
    for (int b = 0; b < 16; b++)
        id[b] = (uint8_t)rand();
    id[6] = (id[6] & 0x0f) | 0x40, id[8] = (id[8] & 0x3f) | 0x80;
    ue_event_id_format(id, text);
    if (keep)
        memcpy(t->ids[t->n++], id, 16);
    head[strlen(head) - 1] = '\0'; /* the closing bracket */
    snprintf(out, cap,
             "%s%s{\"type\":\"click\",\"event_id\":\"%s\",\"user_id\":\"web-%d\","
             "\"timestamp\":%s,\"properties\":{\"seq\":%lld}}]",
             head, n ? "," : "", text, user, ts,
             (long long)(keep ? t->next_seq[USERS + user]++ : 0));
    free(head);
    return out;
}

/* POSTs a JSON batch whose last event is stamped @p ts; asserts 400 naming @p flag. */
static void refused_json(const collector_t *col, const char *ts, const char *flag)
{
    char *body = json_batch_at(NULL, 8, 2, ts, 0);
    reply_t r = post(col, KEY, "application/json", NULL, body, strlen(body));
    free(body);
    if (r.status != 400 || !strstr(r.body, "events[2]: timestamp") || !strstr(r.body, flag))
        fail_msg("timestamp %s: %ld %s, expected 400 naming %s", ts, r.status, r.body, flag);
}

/* POSTs a protobuf batch of one event stamped @p ts; asserts 400 naming @p flag. */
static void refused_pb(const collector_t *col, int64_t ts, const char *flag)
{
    size_t len;
    uint8_t *pb = pb_batch_of("click", ts, &len);
    reply_t r = post(col, KEY, "application/x-protobuf", NULL, pb, len);
    free(pb);
    if (r.status != 400 || !strstr(r.body, "events[0]: timestamp") || !strstr(r.body, flag))
        fail_msg("timestamp %lld: %ld %s, expected 400 naming %s", (long long)ts, r.status, r.body,
                 flag);
}

/* Guarantee: an event time far from the collector's clock never reaches Kafka (issue 11: 30
 * events stamped 4e12 made every later event late in enrichment): 400 with the reason, JSON or
 * protobuf, nothing of that batch published; the bounds are flags; good events still arrive. */
static void test_collector_refuses_event_times_out_of_bounds(void **state)
{
    (void)state;
    collector_t col;
    char ts[64];
    tracked_t *t = tracked_new(64);
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL); /* the defaults: 24 h ahead, 30 days behind */
    refused_json(&col, "4000000000000", "--max-clock-skew-ms");
    refused_json(&col, "\"2096-10-02T07:06:40Z\"", "--max-clock-skew-ms");
    refused_json(&col, "1000", "--max-event-age-ms");
    refused_pb(&col, INT64_C(4000000000000), "--max-clock-skew-ms");
    refused_pb(&col, INT64_MAX, "--max-clock-skew-ms");
    refused_pb(&col, 1000, "--max-event-age-ms");
    char *ok = json_batch(t, 9, 3, 0, NULL);
    reply_t r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    size_t len;
    uint8_t *pb = pb_batch_of("click", (int64_t)time(NULL) * 1000, &len); /* its id: not kept */
    r = post(&col, KEY, "application/x-protobuf", NULL, pb, len);
    free(pb);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    memcpy(t->ids[t->n++],
           (uint8_t[16]){0x01, 0x8f, 1, 2, 3, 4, 0x70, 5, 0x80, 6, 7, 8, 9, 10, 11, 12},
           16); /* pb_batch_of()'s id */
    assert_arrived(&col, t, (check_opts_t){0});
    collector_cleanup(&col);

    /* Narrower bounds by flag: 20 s ahead (2 min ahead passes the default), 1 h behind. The
     * order check of itutil.c wants sent_at >= timestamp: no accepted event ahead here. */
    tracked_free(t);
    t = tracked_new(64);
    collector_init(&col, KEY " 0\n");
    const char *const flags[] = {"--max-clock-skew-ms", "20000", "--max-event-age-ms", "3600000",
                                 NULL};
    collector_start(&col, 0, flags);
    int64_t now = (int64_t)time(NULL) * 1000;
    snprintf(ts, sizeof(ts), "%lld", (long long)(now + 120000));
    refused_json(&col, ts, "more than 20000 ms after");
    snprintf(ts, sizeof(ts), "%lld", (long long)(now - 7200000));
    refused_json(&col, ts, "more than 3600000 ms before");
    refused_pb(&col, now + 120000, "--max-clock-skew-ms");
    ok = json_batch_at(t, 9, 1, "\"2000-01-01T00:00:00Z\"", 0);
    r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 400);
    snprintf(ts, sizeof(ts), "%lld", (long long)(now - 1800000)); /* inside: kept */
    ok = json_batch_at(t, 9, 1, ts, 1);
    r = post(&col, KEY, "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* ---- hostile input: slow clients --------------------------------------------------------- */

#define SLOW_ADDRS 12    /* 127.0.0.2 .. 127.0.0.13 */
#define SLOW_PER_ADDR 34 /* two past the default --max-per-ip of 32 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET /healthz or POST a small batch from 127.0.0.1, timed; the status (0: no answer in 1 s). */
static long timed_request(const collector_t *col, int batch, tracked_t *t, double *secs)
{
    double t0 = now_s();
    long status;
    if (batch) {
        char *ok = json_batch(t, 11, 2, 0, NULL);
        char url[128];
        struct curl_slist *hdrs = curl_slist_append(NULL, "X-API-Key: " KEY);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        reply_t *r = calloc(1, sizeof(*r));
        CURL *e = curl_easy_init();
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/batch", col->port);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, ok);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
        status = 0;
        if (curl_easy_perform(e) == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(e);
        curl_slist_free_all(hdrs);
        free(r);
        free(ok);
    } else {
        status = get_status(col, "/healthz");
    }
    *secs = now_s() - t0;
    return *secs <= 1.0 ? status : 0;
}

/* Sends one more byte of an unfinished header to every slow socket still open. */
static void trickle(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0 && raw_send(fds[i], "a", 1))
            fds[i] = -2; /* refused: the collector closed it */
}

/* How many of @p fds the collector has closed (without waiting); they are closed here too. */
static int reap_closed(int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] == -2 || (fds[i] >= 0 && raw_closed(fds[i], 0))) {
            if (fds[i] >= 0)
                close(fds[i]);
            fds[i] = -1;
            closed++;
        }
    }
    return closed;
}

/*
 * Guarantee: slow clients cannot take the collector away from the others (slowloris). 408
 * connections from 127.0.0.2..13 send their headers one byte a second: past 32 per address
 * they are refused at once, the rest are cut when their headers are 10 s late, and meanwhile a
 * client from 127.0.0.1 gets /healthz and a batch answered within 1 s. (260 such sockets kept
 * /healthz from answering for over 100 s.)
 */
static void test_collector_survives_slowloris(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL); /* the default limits */
    int n = SLOW_ADDRS * SLOW_PER_ADDR, *fds = malloc(sizeof(int) * (size_t)n), refused = 0;
    const char *start = "POST /v1/batch HTTP/1.1\r\nHost: collector\r\nX-Slow: ";
    double t0 = now_s();
    for (int a = 0; a < SLOW_ADDRS; a++) {
        char from[32];
        snprintf(from, sizeof(from), "127.0.0.%d", a + 2);
        for (int k = 0; k < SLOW_PER_ADDR; k++) {
            int i = a * SLOW_PER_ADDR + k;
            fds[i] = raw_connect(&col, from);
            if (fds[i] < 0 || raw_send(fds[i], start, strlen(start)))
                fds[i] = -2;
        }
    }
    usleep(500 * 1000);
    refused = reap_closed(fds, n);
    int held = n - refused;
    print_message("%d slow connections from %d addresses: %d refused at once, %d held\n", n,
                  SLOW_ADDRS, refused, held);
    double secs[4];
    tracked_t *t = tracked_new(16);
    long health = timed_request(&col, 0, NULL, &secs[0]);
    trickle(fds, n);
    long batch = timed_request(&col, 1, t, &secs[1]);
    sleep(1);
    trickle(fds, n);
    long health2 = timed_request(&col, 0, NULL, &secs[2]);
    print_message("meanwhile from 127.0.0.1: /healthz %ld in %.3f s, batch %ld in %.3f s, "
                  "/healthz %ld in %.3f s\n",
                  health, secs[0], batch, secs[1], health2, secs[2]);
    /* the rest trickle on until the collector cuts them */
    int left = held;
    while (left > 0 && now_s() - t0 < 30) {
        sleep(1);
        trickle(fds, n);
        left -= reap_closed(fds, n);
    }
    double cut_after = now_s() - t0;
    print_message("the held connections were cut %.1f s after they opened (%d left)\n", cut_after,
                  left);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    assert_int_equal(health, 200);
    assert_int_equal(batch, 200);
    assert_int_equal(health2, 200);
    assert_true(refused >= 2 * SLOW_ADDRS); /* at most 32 per address */
    assert_true(held >= 300 && held <= SLOW_ADDRS * 32);
    assert_int_equal(left, 0);
    assert_true(cut_after < 10 + 5); /* the header deadline, and the 1 s steps of this loop */
    assert_true(metric(&col, "\nuserevents_collector_connections_timed_out_total ") >= held);
    assert_int_equal(timed_request(&col, 0, NULL, &secs[3]), 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* ---- secrets and keys ---------------------------------------------------------------------- */

/* A TCP port free on 127.0.0.1 now (bound, then let go). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Guarantee: /metrics (it names the brokers) is served on the metrics port only, unless
 * --public-metrics asks for the public port too. */
static void test_collector_metrics_only_on_the_metrics_port(void **state)
{
    (void)state;
    collector_t col;
    char port[16], url[128];
    collector_init(&col, KEY " 0\n");
    col.private_metrics = 1;
    snprintf(port, sizeof(port), "%d", free_port());
    const char *const extra[] = {"--metrics-port", port, NULL};
    collector_start(&col, 0, extra);
    assert_int_equal(get_status(&col, "/metrics"), 404);
    assert_int_equal(get_status(&col, "/healthz"), 200);
    reply_t *r = calloc(1, sizeof(*r));
    CURL *e = curl_easy_init();
    long status = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%s/metrics", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    assert_int_equal(status, 200);
    assert_non_null(strstr(r->body, "userevents_collector_http_responses_total"));
    free(r);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    collector_cleanup(&col);
}

/* Runs the collector with @p keys_text in a keys file of mode @p mode and @p extra flags;
 * returns its exit status if it stops within 10 s (the reason in @p err), else -1 (it is
 * serving: stopped here). */
static int collector_refuses(const char *keys_text, mode_t mode, const char *const *extra,
                             char *err, size_t errsz)
{
    collector_t col;
    collector_init(&col, keys_text);
    chmod(col.keys, mode);
    snprintf(col.errlog, sizeof(col.errlog), "%s.err", col.keys);
    const char *build = getenv("UE_BUILD_DIR");
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/ue-collector", build && *build ? build : "build");
    const char *argv[16] = {bin, "-b", it_bootstrap(), "-p", "0", "-s", col.spool, "-K",
                            col.keys};
    int argc = 9, status = -1;
    for (; extra && *extra && argc < 15; extra++)
        argv[argc++] = *extra;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY), fd = open(col.errlog, O_WRONLY | O_CREAT, 0600);
        dup2(null, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(pid, NULL, WNOHANG) == 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        status = -1;
    }
    FILE *f = fopen(col.errlog, "r");
    size_t n = f ? fread(err, 1, errsz - 1, f) : 0;
    err[n] = '\0';
    if (f)
        fclose(f);
    collector_cleanup(&col);
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Guarantee: a keys file is read strictly, never as a shorter key: a mistake stops the
 * collector with the file and line named, a file others can read is refused, and a '#' inside
 * a key is part of it ("abc#defSECRET..." was read as "abc"). */
static void test_collector_keys_file_is_strict(void **state)
{
    (void)state;
    char err[4096];
    static const struct {
        const char *text, *reason;
    } bad[] = {
        {KEY " 0\nshort 0\n", ":2: a key of 5 characters (16 to 256 wanted)"},
        {KEY " 0 # a comment after a key\n", ":1: more than KEY RATE BURST"},
        {KEY " fast\n", ":1: RATE and BURST must be numbers"},
        {"# the keys\n\n" KEY "\x01x 0\n", ":3: a key with a blank, control or non-ASCII"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(collector_refuses(bad[i].text, 0600, NULL, err, sizeof(err)), 2);
        if (!strstr(err, bad[i].reason))
            fail_msg("case %zu: expected \"%s\" in: %s", i, bad[i].reason, err);
    }
    char longkey[300];
    memset(longkey, 'k', 257);
    snprintf(longkey + 257, sizeof(longkey) - 257, " 0\n");
    assert_int_equal(collector_refuses(longkey, 0600, NULL, err, sizeof(err)), 2);
    assert_non_null(strstr(err, ":1: a key of 257 characters"));
    assert_int_equal(collector_refuses(KEY " 0\n", 0640, NULL, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "open to group or others (mode 640): chmod 600"));
    assert_int_equal(collector_refuses(KEY " 0\n", 0604, NULL, err, sizeof(err)), 2);

    collector_t col;
    collector_init(&col, "  # whole-line comments only\nabc#defSECRET0123456789 0\n");
    collector_start(&col, 0, NULL);
    const char *ok = "[{\"type\":\"click\",\"user_id\":\"u\"}]";
    assert_int_equal(post(&col, "abc", "application/json", NULL, ok, strlen(ok)).status, 401);
    assert_int_equal(post(&col, "abc#defSECRET0123456789", "application/json", NULL, ok,
                          strlen(ok)).status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    collector_cleanup(&col);
}

/* Guarantee: secrets need not be on the command line (visible in /proc/PID/cmdline): -k and
 * -X take env:NAME and @FILE; a key or password given as it is still works, with a warning. */
static void test_collector_takes_secrets_from_env_and_files(void **state)
{
    (void)state;
    collector_t col;
    char keyfile[600], log[8192];
    collector_init(&col, KEY " 0\n");
    snprintf(keyfile, sizeof(keyfile), "%s.one", col.keys);
    FILE *f = fopen(keyfile, "w");
    fputs("from-a-file-0123456789\n", f);
    fclose(f);
    chmod(keyfile, 0600);
    char at_file[610];
    snprintf(at_file, sizeof(at_file), "@%s", keyfile);
    setenv("UE_IT_COLLECTOR_KEY", "from-the-env-0123456789", 1);
    snprintf(col.errlog, sizeof(col.errlog), "%s.err", col.keys);
    const char *const extra[] = {"-k", "env:UE_IT_COLLECTOR_KEY", "-k", at_file, "-X",
                                 "kafka.client.id=env:UE_IT_COLLECTOR_KEY", NULL};
    collector_start(&col, 0, extra);
    const char *ok = "[{\"type\":\"click\",\"user_id\":\"u\"}]";
    assert_int_equal(post(&col, "from-the-env-0123456789", "application/json", NULL, ok,
                          strlen(ok)).status, 200);
    assert_int_equal(post(&col, "from-a-file-0123456789", "application/json", NULL, ok,
                          strlen(ok)).status, 200);
    assert_int_equal(post(&col, "env:UE_IT_COLLECTOR_KEY", "application/json", NULL, ok,
                          strlen(ok)).status, 401);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    FILE *e = fopen(col.errlog, "r");
    log[fread(log, 1, sizeof(log) - 1, e)] = '\0';
    fclose(e);
    assert_null(strstr(log, "warning")); /* nothing secret was on the command line */

    const char *const literal[] = {"-k", "literal-key-0123456789", "-X",
                                   "kafka.sasl.password=hunter2", NULL};
    collector_start(&col, 0, literal);
    assert_int_equal(post(&col, "literal-key-0123456789", "application/json", NULL, ok,
                          strlen(ok)).status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    e = fopen(col.errlog, "r");
    log[fread(log, 1, sizeof(log) - 1, e)] = '\0';
    fclose(e);
    assert_non_null(strstr(log, "--api-key: a secret on the command line is visible"));
    assert_non_null(strstr(log, "-X kafka.sasl.password: a secret on the command line"));
    assert_null(strstr(log, "hunter2"));
    unsetenv("UE_IT_COLLECTOR_KEY");
    collector_cleanup(&col);
}

/* ---- what is published --------------------------------------------------------------------- */

#define ROUNDS 25
#define AT_ONCE 8
#define PER_BATCH 100

/*
 * Guarantee: a batch not answered 200 publishes nothing. With a client queue of 150 events
 * and no wait for room, 8 clients at once send batches of 100: a batch that finds no room for
 * all of itself gets 503 before any of it is tracked. Every id of a 200 arrives once; no id
 * of another answer arrives, nor is counted in events_in_total. (ue_track() failing half-way
 * published the first half under 503.)
 */
static void test_collector_refused_batches_publish_nothing(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *const small_queue[] = {"-X", "queue.max.events=150", "-X",
                                       "queue.block.timeout.ms=1", "--max-events", "100", NULL};
    collector_start(&col, 0, small_queue);
    tracked_t *t = tracked_new(ROUNDS * AT_ONCE * PER_BATCH);
    static uint8_t ids[AT_ONCE][PER_BATCH][16];
    size_t refused = 0, accepted = 0, other = 0;
    for (int round = 0; round < ROUNDS; round++) {
        const void *bodies[AT_ONCE];
        size_t lens[AT_ONCE];
        long st[AT_ONCE];
        char *json[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++) {
            json[i] = json_batch(NULL, 12 + i, PER_BATCH, 0, ids[i]);
            bodies[i] = json[i], lens[i] = strlen(json[i]);
        }
        post_each_concurrently(&col, "application/json", NULL, bodies, lens, AT_ONCE, st);
        for (int i = 0; i < AT_ONCE; i++) {
            if (st[i] == 200) {
                memcpy(t->ids[t->n], ids[i], sizeof(ids[i]));
                t->n += PER_BATCH;
                accepted++;
            } else {
                refused += st[i] == 503;
                other += st[i] != 503;
            }
            free(json[i]);
        }
    }
    print_message("%d batches of %d events: %zu answered 200, %zu 503, %zu other\n",
                  ROUNDS * AT_ONCE, PER_BATCH, accepted, refused, other);
    assert_int_equal(other, 0);
    assert_true(accepted > 0);
    /* accepted events only (it counted those of refused batches too) */
    assert_int_equal(metric(&col, "\nuserevents_collector_events_in_total "), (long long)t->n);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    char topic[200];
    const char *names[] = {topic};
    snprintf(topic, sizeof(topic), "%s.click", col.prefix);
    it_msg_t *msgs;
    /* ask for every event sent, so that whatever arrived is read, published under 503 or not */
    size_t n = it_consume(names, 1, (size_t)ROUNDS * AT_ONCE * PER_BATCH, 20000, &msgs);
    it_report_t r = it_check(msgs, n, (const uint8_t(*)[16])t->ids, t->n, col.prefix);
    print_message("accepted %zu events, consumed %zu: missing %zu, unexpected %zu, duplicates "
                  "%zu\n",
                  t->n, n, r.missing, r.unexpected, r.duplicates);
    it_msgs_free(msgs, n);
    assert_int_equal(r.missing, 0);
    assert_int_equal(r.unexpected, 0); /* nothing of a refused batch */
    assert_int_equal(r.duplicates, 0);
    tracked_free(t);
    collector_cleanup(&col);
}

/* The ids of the events in @p msgs, in order, into @p out (at most @p max). */
static size_t ids_of(const it_msg_t *msgs, size_t n, uint8_t (*out)[16], size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (msgs[i].ev && msgs[i].ev->event_id.len == 16)
            memcpy(out[k++], msgs[i].ev->event_id.data, 16);
    return k;
}

static size_t times_seen(uint8_t (*ids)[16], size_t n, const uint8_t *id)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += memcmp(ids[i], id, 16) == 0;
    return c;
}

/*
 * Guarantee: a JSON request retried maps to the same event ids, so that dedup can drop the
 * copies: events sent without an event_id get ids derived from the key, the body (once
 * decompressed) and their index. Another body or another key gives other ids. (Each retry
 * got fresh UUIDv7s, which dedup cannot recognise.)
 */
static void test_collector_json_retry_keeps_event_ids(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\nother-key-0123456789 0\n");
    collector_start(&col, 0, NULL);
    const char *a = "[{\"type\":\"click\",\"user_id\":\"web-13\",\"properties\":{\"seq\":1}},"
                    "{\"type\":\"click\",\"user_id\":\"web-13\",\"properties\":{\"seq\":2}}]";
    const char *b = "[{\"type\":\"click\",\"user_id\":\"web-13\",\"properties\":{\"seq\":3}},"
                    "{\"type\":\"click\",\"user_id\":\"web-13\",\"properties\":{\"seq\":4}}]";
    size_t zlen = ZSTD_compressBound(strlen(a));
    uint8_t *z = malloc(zlen);
    zlen = ZSTD_compress(z, zlen, a, strlen(a), 3);
    assert_int_equal(post(&col, KEY, "application/json", NULL, a, strlen(a)).status, 200);
    assert_int_equal(post(&col, KEY, "application/json", NULL, a, strlen(a)).status, 200);
    assert_int_equal(post(&col, KEY, "application/json", "zstd", z, zlen).status, 200);
    assert_int_equal(post(&col, KEY, "application/json", NULL, b, strlen(b)).status, 200);
    assert_int_equal(post(&col, "other-key-0123456789", "application/json", NULL, a, strlen(a))
                         .status,
                     200);
    free(z);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    char topic[200];
    const char *names[] = {topic};
    snprintf(topic, sizeof(topic), "%s.click", col.prefix);
    it_msg_t *msgs;
    uint8_t ids[16][16];
    size_t n = it_consume(names, 1, 10, 60000, &msgs);
    assert_int_equal(ids_of(msgs, n, ids, 16), 10); /* in order: one partition, one user */
    it_msgs_free(msgs, n);
    for (int e = 0; e < 2; e++) {
        assert_int_equal(times_seen(ids, 10, ids[e]), 3);     /* a, a again, a as zstd */
        assert_int_equal(times_seen(ids, 10, ids[6 + e]), 1); /* b */
        assert_int_equal(times_seen(ids, 10, ids[8 + e]), 1); /* a with another key */
        assert_int_equal(ids[e][6] >> 4, 8);                  /* UUID version 8 */
    }
    assert_memory_not_equal(ids[0], ids[1], 16);
    collector_cleanup(&col);
}

/* GET https://127.0.0.1:PORT/healthz trusting @p ca (NULL: the system's CAs only); the
 * curl result, and the status in *@p status. */
static CURLcode get_https(const collector_t *col, const char *scheme, const char *ca,
                          long *status)
{
    char url[128];
    reply_t *r = calloc(1, sizeof(*r));
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/healthz", scheme, col->port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    free(r);
    return rc;
}

/* Guarantee: with --tls-cert and --tls-key the collector serves HTTPS only; the SDK's HTTP
 * transport verifies it against http.ca.location and every event arrives once; a client that
 * does not trust the certificate, or speaks plain HTTP, gets no answer. The certificate is
 * made here, for 127.0.0.1. */
static void test_collector_serves_https_the_sdk_verifies(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    char dir[512], cert[600], key[600], cmd[2048], url[128], errstr[512];
    snprintf(dir, sizeof(dir), "%s", col.keys);
    *strrchr(dir, '/') = '\0';
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' 2>/dev/null",
             key, cert);
    assert_int_equal(system(cmd), 0); /* openssl: setup.sh installs it */
    assert_int_equal(chmod(key, 0600), 0);
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    collector_start(&col, 0, extra);

    long status;
    assert_int_equal(get_https(&col, "https", cert, &status), CURLE_OK);
    assert_int_equal(status, 200);
    assert_int_equal(get_https(&col, "https", NULL, &status), CURLE_PEER_FAILED_VERIFICATION);
    assert_true(get_https(&col, "http", NULL, &status) != CURLE_OK || status != 200);

    const char *kv[] = {"transport=http", "http.backoff.base.ms=20", "http.backoff.max.ms=500",
                        "log.level=error", "spool.dir=", NULL};
    ue_conf_t *conf = tu_conf(kv);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/batch", col.port);
    assert_int_equal(ue_conf_set(conf, "http.url", url, errstr, sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "http.api.key", KEY, errstr, sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "http.ca.location", cert, errstr, sizeof(errstr)),
                     UE_CONF_OK);
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c)
        fail_msg("ue_client_new: %s", errstr);
    tracked_t *t = tracked_new(300);
    track_events(c, t, 300);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    ue_client_destroy(c);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* POSTs one JSON click of user @p user from local address @p from with X-Forwarded-For
 * @p xff; the status. */
static long post_forwarded(const collector_t *col, const char *from, const char *user,
                           const char *xff)
{
    char url[128], body[256], h_xff[256], iface[64];
    struct curl_slist *hdrs = NULL;
    reply_t *r = calloc(1, sizeof(*r));
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/batch", col->port);
    snprintf(body, sizeof(body), "[{\"type\":\"click\",\"user_id\":\"%s\"}]", user);
    snprintf(h_xff, sizeof(h_xff), "X-Forwarded-For: %s", xff);
    snprintf(iface, sizeof(iface), "host!%s", from);
    hdrs = curl_slist_append(hdrs, "X-API-Key: " KEY);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, h_xff);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    free(r);
    return status;
}

/* Guarantee: behind a load balancer the events carry the client's address, taken from
 * X-Forwarded-For only when the peer is a --trusted-proxy, and then the last address no
 * trusted proxy wrote; anyone else's header is ignored (it would let a client pick its own). */
static void test_collector_takes_the_client_address_from_trusted_proxies(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *extra[] = {"--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1", NULL};
    collector_start(&col, 0, extra);
    static const struct {
        const char *from, *user, *xff, *want;
    } cases[] = {
        {"127.0.0.1", "xff-a", "6.6.6.6, 203.0.113.7", "203.0.113.7"}, /* the proxy's peer */
        {"127.0.0.1", "xff-b", "198.51.100.9, 127.0.0.1", "198.51.100.9"}, /* two proxies */
        {"127.0.0.3", "xff-c", "198.51.100.1", "127.0.0.3"}, /* not a proxy: ignored */
        {"127.0.0.1", "xff-d", "not-an-address", "127.0.0.1"},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    for (size_t i = 0; i < N; i++)
        assert_int_equal(post_forwarded(&col, cases[i].from, cases[i].user, cases[i].xff), 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    char topic[200];
    const char *names[] = {topic};
    snprintf(topic, sizeof(topic), "%s.click", col.prefix);
    it_msg_t *msgs;
    size_t n = it_consume(names, 1, N, 60000, &msgs), found = 0;
    for (size_t m = 0; m < n; m++)
        for (size_t i = 0; i < N && msgs[m].ev; i++) {
            if (strcmp(msgs[m].ev->user_id, cases[i].user))
                continue;
            const char *ip = msgs[m].ev->context ? msgs[m].ev->context->ip : "";
            print_message("%s from %s, X-Forwarded-For \"%s\": ip %s\n", cases[i].user,
                          cases[i].from, cases[i].xff, ip);
            assert_string_equal(ip, cases[i].want);
            found++;
        }
    it_msgs_free(msgs, n);
    assert_int_equal(found, N);
    collector_cleanup(&col);
}

/* Guarantee: a 400's reason is valid UTF-8 (it goes out in JSON), even when it quotes a key
 * that is not, or cuts a valid one inside a character (found by fuzz_collector_body). */
static void test_collector_reasons_are_valid_utf8(void **state)
{
    (void)state;
    collector_t col;
    char body[512], key[80];
    collector_init(&col, KEY " 0\n");
    collector_start(&col, 0, NULL);
    memset(key, 'k', 63);
    strcpy(key + 63, "\xc3\xa9\xff"); /* the reason keeps 64 bytes: "é" is cut in two */
    const char *const keys[] = {"bad\xff\xfekey", key};
    for (size_t i = 0; i < 2; i++) {
        snprintf(body, sizeof(body),
                 "[{\"type\":\"click\",\"user_id\":\"web-6\",\"properties\":{\"%s\":1}}]", keys[i]);
        reply_t r = post(&col, KEY, "application/json", NULL, body, strlen(body));
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "events[0]: properties."));
        if (!uc__utf8_valid(r.body, r.len))
            fail_msg("case %zu: the answer is not UTF-8: %s", i, r.body);
    }
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    collector_cleanup(&col);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        if (live_pids[i] > 0)
            kill(live_pids[i], SIGKILL);
    return 0;
}

/* ---- browsers: CORS and beacons ------------------------------------------------------------ */

typedef struct web_reply {
    long status;
    char allow_origin[256], allow_headers[256], allow_methods[64];
} web_reply_t;

/* @p method to @p path (with its query) with the request headers @p hdrs (NULL-terminated)
 * and @p body (NULL: none); keeps the status and the CORS answer headers. */
static web_reply_t web_request(const collector_t *col, const char *method, const char *path,
                               const char *const *hdrs, const char *body)
{
    web_reply_t w = {0};
    reply_t r = {0};
    char url[512];
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    for (; hdrs && *hdrs; hdrs++)
        list = curl_slist_append(list, *hdrs);
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", col->port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &w.status);
    struct {
        const char *name;
        char *into;
        size_t size;
    } keep[] = {{"Access-Control-Allow-Origin", w.allow_origin, sizeof(w.allow_origin)},
                {"Access-Control-Allow-Headers", w.allow_headers, sizeof(w.allow_headers)},
                {"Access-Control-Allow-Methods", w.allow_methods, sizeof(w.allow_methods)}};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        struct curl_header *h;
        if (curl_easy_header(e, keep[i].name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
            snprintf(keep[i].into, keep[i].size, "%s", h->value);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(e);
    return w;
}

/* Guarantee: with --cors-origin a page of that origin may send batches from a browser: its
 * preflight is answered with what it may send, its POST's answer carries the header that lets
 * the page read it; another origin's preflight gets 405 and no CORS header. A beacon (no header
 * can be set: text/plain, key in the URL) is accepted with ?key=; a wrong one gets 401. Every
 * accepted event arrives once. A malformed --cors-origin stops the collector at start. */
static void test_collector_serves_browsers_cors_and_beacons(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, KEY " 0\n");
    const char *const extra[] = {"--cors-origin", "https://shop.example", NULL};
    collector_start(&col, 0, extra);
    tracked_t *t = tracked_new(100);

    const char *const pre_ok[] = {"Origin: https://shop.example",
                                  "Access-Control-Request-Method: POST",
                                  "Access-Control-Request-Headers: x-api-key, content-type", NULL};
    web_reply_t w = web_request(&col, "OPTIONS", "/v1/batch", pre_ok, NULL);
    assert_int_equal(w.status, 200);
    assert_string_equal(w.allow_origin, "https://shop.example");
    assert_non_null(strstr(w.allow_headers, "X-API-Key"));
    assert_non_null(strstr(w.allow_headers, "Content-Type"));
    assert_string_equal(w.allow_methods, "POST");

    const char *const pre_other[] = {"Origin: https://evil.example",
                                     "Access-Control-Request-Method: POST", NULL};
    w = web_request(&col, "OPTIONS", "/v1/batch", pre_other, NULL);
    assert_int_equal(w.status, 405);
    assert_string_equal(w.allow_origin, "");

    char *json = json_batch(t, 1, 3, 0, NULL);
    const char *const post_ok[] = {"Origin: https://shop.example", "X-API-Key: " KEY,
                                   "Content-Type: application/json", NULL};
    w = web_request(&col, "POST", "/v1/batch", post_ok, json);
    assert_int_equal(w.status, 200);
    assert_string_equal(w.allow_origin, "https://shop.example");
    free(json);

    json = json_batch(NULL, 2, 2, 0, NULL); /* refused: the answer shows the page the reason */
    const char *const post_nokey[] = {"Origin: https://shop.example",
                                      "Content-Type: application/json", NULL};
    w = web_request(&col, "POST", "/v1/batch", post_nokey, json);
    assert_int_equal(w.status, 401);
    assert_string_equal(w.allow_origin, "https://shop.example");
    free(json);

    json = json_batch(t, 3, 2, 0, NULL);
    const char *const beacon[] = {"Origin: https://shop.example", "Content-Type: text/plain", NULL};
    w = web_request(&col, "POST", "/v1/batch?key=" KEY, beacon, json);
    assert_int_equal(w.status, 200);
    free(json);

    json = json_batch(NULL, 4, 2, 0, NULL);
    w = web_request(&col, "POST", "/v1/batch?key=wrong-key-0123456789ab", beacon, json);
    assert_int_equal(w.status, 401);
    free(json);

    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);

    char err[4096];
    const char *const bad_origin[] = {"--cors-origin", "https://shop.example/path", NULL};
    assert_int_equal(collector_refuses(KEY " 0\n", 0600, bad_origin, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "--cors-origin"));
}

int main(void)
{
    if (!it_bootstrap()) {
        fprintf(stderr,
                "it_collector: KAFKA_BOOTSTRAP is not set; run through test/kafka.sh run\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collector_restart_every_event_once),
        cmocka_unit_test(test_collector_sigkill_loses_nothing),
        cmocka_unit_test(test_collector_sigterm_at_once_publishes_each_event_once),
        cmocka_unit_test(test_collector_answers_bad_requests_and_keeps_the_good),
        cmocka_unit_test(test_collector_refuses_deep_nesting_and_lives_on),
        cmocka_unit_test(test_collector_refuses_reserved_types),
        cmocka_unit_test(test_collector_refuses_json_bombs_in_bounded_memory),
        cmocka_unit_test(test_collector_refuses_nul_in_json_strings),
        cmocka_unit_test(test_collector_memory_budget_answers_503_when_full),
        cmocka_unit_test(test_collector_survives_slowloris),
        cmocka_unit_test(test_collector_metrics_only_on_the_metrics_port),
        cmocka_unit_test(test_collector_keys_file_is_strict),
        cmocka_unit_test(test_collector_takes_secrets_from_env_and_files),
        cmocka_unit_test(test_collector_refused_batches_publish_nothing),
        cmocka_unit_test(test_collector_serves_browsers_cors_and_beacons),
        cmocka_unit_test(test_collector_json_retry_keeps_event_ids),
        cmocka_unit_test(test_collector_refuses_event_times_out_of_bounds),
        cmocka_unit_test(test_collector_reasons_are_valid_utf8),
        cmocka_unit_test(test_collector_serves_https_the_sdk_verifies),
        cmocka_unit_test(test_collector_takes_the_client_address_from_trusted_proxies),
    };
    const char *filter = getenv("UE_IT_FILTER"); /* a cmocka glob: "*slowloris*" */
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("integration: SDK -> collector -> Kafka", tests, NULL,
                                       teardown);
}
