/*
 * test_http.c - the HTTP transport (transport=http) against an in-process fake collector
 * (libmicrohttpd) that answers from a script: the fault paths the real collector rarely takes
 * on its own (503, 429 with Retry-After, 413, 400/401/403, collector down), and each time the
 * same event ids arriving once. Also ue_flush_spooled() and the http.* configuration.
 */
#include "collector.pb-c.h"
#include "testutil.h"
#include "uc_time.h"
#include "userevents.h"
#include "userevents.pb-c.h"

#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include <cmocka.h>

/* ---- the fake collector ------------------------------------------------------------------ */

#define MAX_IDS 4096

typedef struct fake {
    struct MHD_Daemon *d;
    uint16_t port;
    pthread_mutex_t lock;
    int script[16]; /* statuses answered first, in order; then 200 */
    int nscript, pos;
    int retry_after; /* Retry-After seconds sent with 429 and 503 (0: none) */
    size_t max_raw;  /* 413 when the decompressed batch is larger (0: no limit) */
    int requests, answered[600];
    char auth[128], encoding[32];
    int sent_at_ok;           /* every event had sent_at >= timestamp */
    uint8_t ids[MAX_IDS][16]; /* accepted, in arrival order */
    size_t nids;
} fake_t;

typedef struct body {
    uint8_t *data;
    size_t len;
} body_t;

/* Decides the status of one request and records what a 200 accepted. */
static int judge(fake_t *f, const uint8_t *raw, size_t len)
{
    Userevents__EventBatch *b = userevents__event_batch__unpack(NULL, len, raw);
    int status = f->pos < f->nscript ? f->script[f->pos++] : 200;
    if (!b)
        status = 400;
    else if (status == 200 && f->max_raw && len > f->max_raw)
        status = 413;
    for (size_t i = 0; status == 200 && i < b->n_events; i++) {
        Userevents__Event *e = userevents__event__unpack(NULL, b->events[i].len, b->events[i].data);
        if (e && e->event_id.len == 16 && f->nids < MAX_IDS)
            memcpy(f->ids[f->nids++], e->event_id.data, 16);
        if (!e || e->sent_at_ms < e->timestamp_ms)
            f->sent_at_ok = 0;
        if (e)
            userevents__event__free_unpacked(e, NULL);
    }
    if (b)
        userevents__event_batch__free_unpacked(b, NULL);
    return status;
}

static enum MHD_Result fake_answer(fake_t *f, struct MHD_Connection *conn, body_t *body)
{
    unsigned long long size = ZSTD_getFrameContentSize(body->data, body->len);
    uint8_t *raw = size < (64u << 20) ? malloc(size + 1) : NULL;
    size_t len = raw ? ZSTD_decompress(raw, size, body->data, body->len) : 0;
    pthread_mutex_lock(&f->lock);
    f->requests++;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    snprintf(f->auth, sizeof(f->auth), "%s", h ? h : "");
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    snprintf(f->encoding, sizeof(f->encoding), "%s", h ? h : "");
    int status = raw && !ZSTD_isError(len) ? judge(f, raw, len) : 400;
    f->answered[status]++;
    pthread_mutex_unlock(&f->lock);
    free(raw);

    const char *text = status == 200 ? "{\"accepted\":1}" : "{\"error\":\"scripted\"}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", f->retry_after);
    if (f->retry_after && (status == 429 || status == 503))
        MHD_add_response_header(r, "Retry-After", secs);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result fake_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version, const char *data,
                                    size_t *size, void **ctx)
{
    body_t *body = *ctx;
    (void)url;
    (void)method;
    (void)version;
    if (!body) {
        *ctx = calloc(1, sizeof(body_t));
        return *ctx ? MHD_YES : MHD_NO;
    }
    if (*size) {
        body->data = realloc(body->data, body->len + *size);
        memcpy(body->data + body->len, data, *size);
        body->len += *size;
        *size = 0;
        return MHD_YES;
    }
    return fake_answer(cls, conn, body);
}

static void fake_done(void *cls, struct MHD_Connection *conn, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    body_t *body = *ctx;
    (void)cls;
    (void)conn;
    (void)toe;
    if (body)
        free(body->data);
    free(body);
    *ctx = NULL;
}

/* Starts the fake on @p port (0: any free one). */
static void fake_start(fake_t *f, uint16_t port)
{
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, port, NULL, NULL,
                            fake_request, f, MHD_OPTION_NOTIFY_COMPLETED, fake_done, f,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    assert_non_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static fake_t *fake_new(void)
{
    fake_t *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    f->sent_at_ok = 1;
    fake_start(f, 0);
    return f;
}

static void fake_stop(fake_t *f)
{
    if (f->d)
        MHD_stop_daemon(f->d);
    f->d = NULL;
}

static void fake_free(fake_t *f)
{
    fake_stop(f);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- clients and events ------------------------------------------------------------------- */

typedef struct tracked {
    size_t n;
    uint8_t ids[MAX_IDS][16];
} tracked_t;

/* A transport=http client of @p f with fast backoff, plus extra "key=value" settings. */
static ue_client_t *http_client(fake_t *f, const char *spool, const char *extra1,
                                const char *extra2, tu_dr_t *dr)
{
    char url[128], dir[512];
    snprintf(url, sizeof(url), "http.url=http://127.0.0.1:%u/v1/batch", f->port);
    snprintf(dir, sizeof(dir), "spool.dir=%s", spool ? spool : "");
    const char *kv[] = {"transport=http",
                        url,
                        "http.api.key=k1",
                        "http.backoff.base.ms=5",
                        "http.backoff.max.ms=50",
                        "shutdown.timeout.ms=200",
                        dir,
                        extra1 ? extra1 : "linger.ms=5",
                        extra2 ? extra2 : "linger.ms=5",
                        NULL};
    return tu_client(kv, tu_dr_cb, dr);
}

static void track_n(ue_client_t *c, tracked_t *t, size_t n, size_t prop_bytes)
{
    ue_event_t *ev = ue_event_new("page_view");
    char *big = calloc(1, prop_bytes + 1);
    memset(big, 'x', prop_bytes);
    for (size_t i = 0; i < n; i++) {
        char uid[32];
        snprintf(uid, sizeof(uid), "user-%zu", i % 7);
        ue_event_reset(ev, "page_view");
        ue_event_set_user_id(ev, uid);
        ue_event_prop_int(ev, "seq", (int64_t)(t->n + i));
        if (prop_bytes)
            ue_event_prop_string(ev, "blob", big);
        assert_int_equal(ue_track(c, ev), UE_OK);
        ue_event_get_event_id(ev, t->ids[t->n + i]);
    }
    t->n += n;
    free(big);
    ue_event_destroy(ev);
}

/* The fake accepted exactly the tracked ids, each once, in tracking order. */
static void assert_accepted_in_order(fake_t *f, const tracked_t *t)
{
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->nids, t->n);
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(f->ids[i], t->ids[i], 16))
            fail_msg("event %zu: another id arrived in its place", i);
    assert_true(f->sent_at_ok);
    pthread_mutex_unlock(&f->lock);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_http_delivers_zstd_batches_with_key_in_order(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0};
    char *spool = tu_tempdir("ue-http");
    ue_client_t *c = http_client(f, spool, NULL, NULL, &dr);
    track_n(c, t, 1000, 0);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 1000);
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, t);
    assert_string_equal(f->auth, "Bearer k1");
    assert_string_equal(f->encoding, "zstd");
    fake_free(f);
    tu_rmrf(spool);
    free(spool);
    free(t);
}

static void test_http_retries_5xx_and_429_with_the_same_ids(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0};
    f->script[0] = 503, f->script[1] = 500, f->script[2] = 429, f->nscript = 3;
    f->retry_after = 1;
    ue_client_t *c = http_client(f, NULL, NULL, NULL, &dr);
    int64_t start = uc__mono_ms();
    track_n(c, t, 100, 0);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    /* Retry-After: 1 on the 503 and the 429 is honoured over the 5..50 ms backoff */
    assert_true(uc__mono_ms() - start >= 1900);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 100);
    assert_true(tu_dr_get(&dr, UE_OUTCOME_FAILED_RETRY) >= 3);
    assert_int_equal(ue_stat(c, UE_STAT_RETRIES), tu_dr_get(&dr, UE_OUTCOME_FAILED_RETRY));
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, t);
    assert_int_equal(f->answered[503] + f->answered[500] + f->answered[429], 3);
    fake_free(f);
    free(t);
}

static void test_http_caps_retry_after(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0};
    f->script[0] = 429, f->nscript = 1;
    f->retry_after = 3600;
    ue_client_t *c = http_client(f, NULL, "http.retry.after.max.ms=100", NULL, &dr);
    int64_t start = uc__mono_ms();
    track_n(c, t, 10, 0);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    assert_true(uc__mono_ms() - start < 3000);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, t);
    fake_free(f);
    free(t);
}

static void test_http_splits_a_batch_on_413(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0};
    f->max_raw = 8000; /* about 80 events of ~100 bytes */
    ue_client_t *c = http_client(f, NULL, "linger.ms=50", NULL, &dr);
    track_n(c, t, 2000, 0);
    assert_int_equal(ue_flush(c, 20000), UE_OK);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 2000);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_FAILED), 0);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_true(f->answered[413] > 0);
    assert_accepted_in_order(f, t);
    fake_free(f);
    free(t);
}

static void test_http_event_alone_over_413_fails_the_rest_arrive(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t)), *small = calloc(1, sizeof(*small));
    tu_dr_t dr = {0};
    f->max_raw = 20000;
    ue_client_t *c = http_client(f, NULL, NULL, NULL, &dr);
    track_n(c, small, 50, 0);
    track_n(c, t, 1, 30000); /* alone over the fake's limit */
    track_n(c, small, 50, 0);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 100);
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_FAILED), 1);
    assert_int_equal(ue_stat(c, UE_STAT_FAILED), 1);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, small);
    fake_free(f);
    free(t);
    free(small);
}

/* Delivery callback that keeps the reason of the last permanent failure. */
static char last_reason[256];
static ue_err_t last_err;

static void reason_cb(const uint8_t *id, const char *type, ue_outcome_t outcome, ue_err_t err,
                      const char *reason, void *opaque)
{
    tu_dr_cb(id, type, outcome, err, reason, opaque);
    if (outcome == UE_OUTCOME_FAILED) {
        snprintf(last_reason, sizeof(last_reason), "%s", reason);
        last_err = err;
    }
}

static void test_http_never_retries_400_401_403(void **state)
{
    (void)state;
    static const int statuses[] = {400, 401, 403};
    for (int i = 0; i < 3; i++) {
        fake_t *f = fake_new();
        tracked_t *t = calloc(1, sizeof(*t));
        tu_dr_t dr = {0};
        char url[128], expect[32], *spool = tu_tempdir("ue-http");
        f->script[0] = statuses[i], f->nscript = 1;
        snprintf(url, sizeof(url), "http.url=http://127.0.0.1:%u/v1/batch", f->port);
        const char *kv[] = {"transport=http", url, "linger.ms=100", NULL};
        ue_conf_t *conf = tu_conf(kv);
        char dir[512], errstr[256];
        snprintf(dir, sizeof(dir), "%s", spool);
        ue_conf_set(conf, "spool.dir", dir, errstr, sizeof(errstr));
        ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
        ue_conf_set_delivery_cb(conf, reason_cb, &dr);
        ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
        assert_non_null(c);
        track_n(c, t, 20, 0);
        assert_int_equal(ue_flush(c, 5000), UE_OK);
        assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_FAILED), 20);
        assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_FAILED_RETRY), 0);
        assert_int_equal(f->requests, 1);
        assert_int_equal(last_err, UE_ERR_COLLECTOR);
        snprintf(expect, sizeof(expect), "HTTP %d", statuses[i]);
        assert_non_null(strstr(last_reason, expect));
        assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 0); /* out of the spool: not resent */
        assert_int_equal(ue_client_destroy(c), UE_OK);
        fake_free(f);
        tu_rmrf(spool);
        free(spool);
        free(t);
    }
}

static int fake_has_requests(void *arg)
{
    return ((fake_t *)arg)->requests > 0;
}

static void test_http_collector_down_then_up_loses_nothing(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0};
    char *spool = tu_tempdir("ue-http");
    uint16_t port = f->port;
    fake_stop(f); /* keep the port: nothing listens there for a while */
    ue_client_t *c = http_client(f, spool, NULL, NULL, &dr);
    track_n(c, t, 300, 0);
    assert_int_equal(ue_flush(c, 300), UE_ERR_TIMED_OUT);
    assert_true(ue_stat(c, UE_STAT_RETRIES) > 0);
    assert_int_equal(ue_flush_spooled(c, 5000), UE_OK); /* safe on disk meanwhile */
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 300);
    fake_start(f, port);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    assert_true(tu_wait_until(fake_has_requests, f, 1000));
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 300);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, t);
    fake_free(f);
    tu_rmrf(spool);
    free(spool);
    free(t);
}

static void test_http_unsent_events_wait_in_spool_for_next_client(void **state)
{
    (void)state;
    fake_t *f = fake_new();
    tracked_t *t = calloc(1, sizeof(*t));
    tu_dr_t dr = {0}, dr2 = {0};
    char *spool = tu_tempdir("ue-http");
    uint16_t port = f->port;
    fake_stop(f);
    ue_client_t *c = http_client(f, spool, NULL, NULL, &dr);
    track_n(c, t, 200, 0);
    assert_int_equal(ue_client_destroy(c), UE_OK); /* collector down: all stay spooled */
    assert_int_equal(tu_dr_get(&dr, UE_OUTCOME_DELIVERED), 0);
    fake_start(f, port);
    c = http_client(f, spool, NULL, NULL, &dr2);
    assert_int_equal(ue_flush(c, 10000), UE_OK);
    assert_int_equal(ue_stat(c, UE_STAT_REPLAYED), 200);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    assert_accepted_in_order(f, t); /* the same ids, each once */
    fake_free(f);
    tu_rmrf(spool);
    free(spool);
    free(t);
}

static void test_flush_spooled_returns_before_delivery(void **state)
{
    (void)state;
    char *spool = tu_tempdir("ue-http"), dir[512];
    snprintf(dir, sizeof(dir), "spool.dir=%s", spool);
    const char *kv[] = {TU_NO_BROKER, dir, "shutdown.timeout.ms=0", "linger.ms=1000", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    tracked_t *t = calloc(1, sizeof(*t));
    track_n(c, t, 100, 0);
    int64_t start = uc__mono_ms();
    assert_int_equal(ue_flush_spooled(c, 5000), UE_OK); /* does not linger for 1 s */
    assert_true(uc__mono_ms() - start < 900);
    assert_int_equal(ue_stat(c, UE_STAT_SPOOLED), 100);
    assert_int_equal(ue_flush(c, 100), UE_ERR_TIMED_OUT); /* no broker: not delivered */
    assert_int_equal(ue_client_destroy(c), UE_OK);

    const char *nospool[] = {TU_NO_BROKER, "shutdown.timeout.ms=0", NULL};
    c = tu_client(nospool, NULL, NULL);
    track_n(c, t, 1, 0);
    assert_int_equal(ue_flush_spooled(c, 100), UE_ERR_TIMED_OUT); /* = ue_flush() */
    assert_int_equal(ue_flush_spooled(NULL, 0), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    tu_rmrf(spool);
    free(spool);
    free(t);
}

static void test_http_conf_url_required_and_key_masked(void **state)
{
    (void)state;
    char errstr[256], value[64];
    size_t cnt, size = sizeof(value);
    ue_conf_t *conf = ue_conf_new();
    assert_int_equal(ue_conf_set(conf, "transport", "http", errstr, sizeof(errstr)), UE_CONF_OK);
    assert_int_equal(ue_conf_set(conf, "transport", "smtp", errstr, sizeof(errstr)),
                     UE_CONF_INVALID);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "http.url"));
    assert_int_equal(ue_conf_set(conf, "http.url", "ftp://x/", errstr, sizeof(errstr)), UE_CONF_OK);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_int_equal(ue_conf_set(conf, "http.api.key", "s3cret", errstr, sizeof(errstr)),
                     UE_CONF_OK);
    assert_int_equal(ue_conf_get(conf, "http.api.key", value, &size), UE_CONF_OK);
    assert_string_equal(value, "s3cret");
    const char **dump = ue_conf_dump(conf, &cnt);
    for (size_t i = 0; i + 1 < cnt; i += 2)
        if (!strcmp(dump[i], "http.api.key"))
            assert_string_equal(dump[i + 1], "[redacted]");
    ue_conf_dump_free(dump, cnt);
    assert_int_equal(ue_conf_set(conf, "http.max.batch.bytes", "10", errstr, sizeof(errstr)),
                     UE_CONF_INVALID);
    ue_conf_destroy(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_delivers_zstd_batches_with_key_in_order),
        cmocka_unit_test(test_http_retries_5xx_and_429_with_the_same_ids),
        cmocka_unit_test(test_http_caps_retry_after),
        cmocka_unit_test(test_http_splits_a_batch_on_413),
        cmocka_unit_test(test_http_event_alone_over_413_fails_the_rest_arrive),
        cmocka_unit_test(test_http_never_retries_400_401_403),
        cmocka_unit_test(test_http_collector_down_then_up_loses_nothing),
        cmocka_unit_test(test_http_unsent_events_wait_in_spool_for_next_client),
        cmocka_unit_test(test_flush_spooled_returns_before_delivery),
        cmocka_unit_test(test_http_conf_url_required_and_key_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
