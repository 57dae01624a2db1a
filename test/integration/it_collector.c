/*
 * it_collector.c - devices over HTTP: libuserevents (transport=http, spool) -> the real
 * collector process (build/ue-collector, restarted mid-run) -> a real Kafka broker, checked by
 * the independent consumer of itutil.c (plain librdkafka + the generated decoder).
 *
 * Each test proves one guarantee; the collector is spawned from $UE_BUILD_DIR (default build)
 * on a free loopback port, with small body caps so that the SDK's batches meet 413 and split.
 */
#include "collector.pb-c.h"
#include "deep_pb.h"
#include "itutil.h"
#include "testutil.h"
#include "ue_validate.h"
#include "userevents.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cmocka.h>

#define USERS 50
static const char *const TYPES[] = {"page_view", "click", "purchase"};
#define NTYPES 3
#define MAX_EVENT_BYTES 4096 /* --max-event-bytes of the bad-requests collector */

/* ---- the collector process ------------------------------------------------------------------ */

typedef struct collector {
    pid_t pid;
    int port;
    char keys[512], spool[512], prefix[128];
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
    collector_start(col, 0, NULL);
    ue_client_t *c = sdk_client(col, spool, "it-key");
    track_events(c, t, n / 4);
    usleep(300 * 1000);
    track_events(c, t, n / 4); /* a burst: requests in flight when the collector stops */
    long long split = metric(col, "userevents_collector_http_responses_total{code=\"413\"} ");
    int status = collector_stop(col, sig);
    if (sig == SIGTERM)
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    track_events(c, t, n / 4);             /* the collector is down: spooled by the SDK */
    collector_start(col, col->port, NULL); /* same port, same spool */
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
    collector_init(&col, "it-key 0\n");
    run_with_restart(&col, SIGTERM, 20000, (check_opts_t){0});
    collector_cleanup(&col);
}

/* Guarantee: a collector killed (SIGKILL) mid-run loses nothing it answered 200 for, nor
 * anything the SDK still held: every event id arrives (a re-sent one may arrive twice). */
static void test_collector_sigkill_loses_nothing(void **state)
{
    (void)state;
    collector_t col;
    collector_init(&col, "it-key 0\n");
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
    r = post(col, "wrong-key", "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 401);
    assert_true(has_reason(&r));
    r = post(col, "slow-key", "application/json", NULL, ok, strlen(ok)); /* burst of 1 */
    assert_int_equal(r.status, 200);
    r = post(col, "slow-key", "application/json", NULL, ok, strlen(ok));
    assert_int_equal(r.status, 429);
    assert_true(r.retry_after >= 1);
    char *big = calloc(1, 100000);
    memset(big, ' ', 99999);
    r = post(col, "it-key", "application/json", NULL, big, 99999);
    assert_int_equal(r.status, 413);
    free(big);
    size_t blen;
    uint8_t *gz = bomb(20 << 20, 0, &blen);
    r = post(col, "it-key", "application/json", "gzip", gz, blen);
    assert_int_equal(r.status, 413);
    free(gz);
    gz = bomb(20 << 20, 1, &blen);
    r = post(col, "it-key", "application/x-protobuf", "zstd", gz, blen);
    assert_int_equal(r.status, 413);
    free(gz);
    r = post(col, "it-key", "application/x-protobuf", NULL, "\xff\xff\xff garbage", 12);
    assert_int_equal(r.status, 400);
    assert_true(has_reason(&r));
    r = post(col, "it-key", "application/json", NULL, "[{\"type\":", 9);
    assert_int_equal(r.status, 400);
    r = post(col, "it-key", "application/json", NULL, invalid, strlen(invalid));
    assert_int_equal(r.status, 400); /* one bad event: none of the batch is published */
    assert_non_null(strstr(r.body, "events[3]"));
    r = post(col, "it-key", "application/json", "gzip", "not gzip", 8);
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
    r = post(col, "it-key", "application/json", NULL, oversized, strlen(oversized));
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
    reply_t r = post(col, "it-key", "application/json", "zstd", z, zlen);
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
    collector_init(&col, "it-key 0\nslow-key 0.1 1\n");
    char max_event[16];
    snprintf(max_event, sizeof(max_event), "%d", MAX_EVENT_BYTES);
    const char *const extra[] = {"--max-event-bytes", max_event, NULL};
    collector_start(&col, 0, extra);
    char *spool = tu_tempdir("it-sdk-spool");
    tracked_t *t = tracked_new(10000);
    ue_client_t *c = sdk_client(&col, spool, "it-key");
    track_events(c, t, 2000);
    bad_requests(&col, t);
    track_events(c, t, 2000);
    good_zstd_json(&col, t);
    track_events(c, t, 1000);
    assert_int_equal(ue_flush(c, 60000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    ue_client_t *bad = sdk_client(&col, spool, "wrong-key"); /* the SDK's view of a 401 */
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
    collector_init(&col, "it-key 0\n");
    collector_start(&col, 0, NULL);
    size_t len;
    uint8_t *deep = dp_batch(6000, &len);
    reply_t r = post(&col, "it-key", "application/x-protobuf", NULL, deep, len);
    free(deep);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "nested deeper than 32 levels"));
    assert_int_equal(waitpid(col.pid, NULL, WNOHANG), 0); /* still running */
    assert_int_equal(get_status(&col, "/healthz"), 200);
    tracked_t *t = tracked_new(16);
    char *ok = json_batch(t, 5, 3, 0, NULL);
    r = post(&col, "it-key", "application/json", NULL, ok, strlen(ok));
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
    collector_init(&col, "it-key 0\n");
    collector_start(&col, 0, NULL);
    const char *reserved[] = {"enriched", "dead_letter", "aggregates", "alerts", "Changelog",
                              "profiles"};
    tracked_t *t = tracked_new(16);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "[{\"type\":\"click\",\"user_id\":\"web-6\"},"
                 "{\"type\":\"%s\",\"user_id\":\"web-6\"}]", reserved[i]);
        reply_t r = post(&col, "it-key", "application/json", NULL, body, strlen(body));
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "events[1]"));
        assert_non_null(strstr(r.body, "reserved"));
        size_t len;
        uint8_t *pb = pb_batch_of(reserved[i], (int64_t)time(NULL) * 1000, &len);
        r = post(&col, "it-key", "application/x-protobuf", NULL, pb, len);
        free(pb);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "reserved"));
    }
    char *ok = json_batch(t, 7, 2, 0, NULL);
    reply_t r = post(&col, "it-key", "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0}); /* the clicks of the refused batches: absent */
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
    reply_t r = post(col, "it-key", "application/json", NULL, body, strlen(body));
    free(body);
    if (r.status != 400 || !strstr(r.body, "events[2]: timestamp") || !strstr(r.body, flag))
        fail_msg("timestamp %s: %ld %s, expected 400 naming %s", ts, r.status, r.body, flag);
}

/* POSTs a protobuf batch of one event stamped @p ts; asserts 400 naming @p flag. */
static void refused_pb(const collector_t *col, int64_t ts, const char *flag)
{
    size_t len;
    uint8_t *pb = pb_batch_of("click", ts, &len);
    reply_t r = post(col, "it-key", "application/x-protobuf", NULL, pb, len);
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
    collector_init(&col, "it-key 0\n");
    collector_start(&col, 0, NULL); /* the defaults: 24 h ahead, 30 days behind */
    refused_json(&col, "4000000000000", "--max-clock-skew-ms");
    refused_json(&col, "\"2096-10-02T07:06:40Z\"", "--max-clock-skew-ms");
    refused_json(&col, "1000", "--max-event-age-ms");
    refused_pb(&col, INT64_C(4000000000000), "--max-clock-skew-ms");
    refused_pb(&col, INT64_MAX, "--max-clock-skew-ms");
    refused_pb(&col, 1000, "--max-event-age-ms");
    char *ok = json_batch(t, 9, 3, 0, NULL);
    reply_t r = post(&col, "it-key", "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    size_t len;
    uint8_t *pb = pb_batch_of("click", (int64_t)time(NULL) * 1000, &len); /* its id: not kept */
    r = post(&col, "it-key", "application/x-protobuf", NULL, pb, len);
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
    collector_init(&col, "it-key 0\n");
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
    r = post(&col, "it-key", "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 400);
    snprintf(ts, sizeof(ts), "%lld", (long long)(now - 1800000)); /* inside: kept */
    ok = json_batch_at(t, 9, 1, ts, 1);
    r = post(&col, "it-key", "application/json", NULL, ok, strlen(ok));
    free(ok);
    assert_int_equal(r.status, 200);
    assert_int_equal(collector_stop(&col, SIGTERM), 0);
    assert_arrived(&col, t, (check_opts_t){0});
    tracked_free(t);
    collector_cleanup(&col);
}

/* Guarantee: a 400's reason is valid UTF-8 (it goes out in JSON), even when it quotes a key
 * that is not, or cuts a valid one inside a character (found by fuzz_collector_body). */
static void test_collector_reasons_are_valid_utf8(void **state)
{
    (void)state;
    collector_t col;
    char body[512], key[80];
    collector_init(&col, "it-key 0\n");
    collector_start(&col, 0, NULL);
    memset(key, 'k', 63);
    strcpy(key + 63, "\xc3\xa9\xff"); /* the reason keeps 64 bytes: "é" is cut in two */
    const char *const keys[] = {"bad\xff\xfekey", key};
    for (size_t i = 0; i < 2; i++) {
        snprintf(body, sizeof(body),
                 "[{\"type\":\"click\",\"user_id\":\"web-6\",\"properties\":{\"%s\":1}}]", keys[i]);
        reply_t r = post(&col, "it-key", "application/json", NULL, body, strlen(body));
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "events[0]: properties."));
        if (!ue__utf8_valid(r.body, r.len))
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
        cmocka_unit_test(test_collector_answers_bad_requests_and_keeps_the_good),
        cmocka_unit_test(test_collector_refuses_deep_nesting_and_lives_on),
        cmocka_unit_test(test_collector_refuses_reserved_types),
        cmocka_unit_test(test_collector_refuses_event_times_out_of_bounds),
        cmocka_unit_test(test_collector_reasons_are_valid_utf8),
    };
    return cmocka_run_group_tests_name("integration: SDK -> collector -> Kafka", tests, NULL,
                                       teardown);
}
