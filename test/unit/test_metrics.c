/*
 * test_metrics.c - the programs' /metrics (examples/common/metrics.c, kafka_metrics.c): the
 * Prometheus text format 0.0.4 (HELP/TYPE, escaping, number formats, cumulative histogram
 * buckets), names refused, updates from many threads, the HTTP server on a free port, and
 * librdkafka's statistics turned into broker health and consumer lag. Linked with
 * build/libuemetrics.a, the programs' own copy of that code.
 */
#include "kafka_metrics.h"
#include "metrics.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The rendered text of @p m (freed by the next call). */
static const char *render(metrics_t *m)
{
    static char *text;
    size_t len = 0;
    free(text);
    text = metrics_render(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing \"%s\" in:\n%s", line, text);
}

static void test_metrics_renders_help_type_and_samples(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *c = metrics_counter(m, "app_events_total", "Events seen.", NULL);
    metric_t *g = metrics_gauge(m, "app_lag", "Lag.", "topic,partition");
    metric_add(c, NULL, 3);
    metric_add(c, NULL, 2);
    metric_set(g, (const char *[]){"events.a", "0"}, 12);
    metric_set(g, (const char *[]){"events.a", "1"}, 7);
    metric_set(g, (const char *[]){"events.a", "0"}, 10); /* the same series again */
    const char *t = render(m);
    assert_has(t, "# HELP app_events_total Events seen.\n# TYPE app_events_total counter\n"
                  "app_events_total 5\n");
    assert_has(t, "# TYPE app_lag gauge\napp_lag{topic=\"events.a\",partition=\"0\"} 10\n"
                  "app_lag{topic=\"events.a\",partition=\"1\"} 7\n");
    metrics_destroy(m);
}

static void test_metrics_escapes_label_values_and_help(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *g = metrics_gauge(m, "app_x", "a \\ back\nslash", "v");
    metric_set(g, (const char *[]){"q\"uote\\ and\nline"}, 1);
    const char *t = render(m);
    assert_has(t, "# HELP app_x a \\\\ back\\nslash\n");
    assert_has(t, "app_x{v=\"q\\\"uote\\\\ and\\nline\"} 1\n");
    metrics_destroy(m);
}

static void test_metrics_formats_numbers_so_they_read_back(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *g = metrics_gauge(m, "app_v", "", "k");
    metric_set(g, (const char *[]){"int"}, 1795500518710.0);
    metric_set(g, (const char *[]){"frac"}, 0.005);
    metric_set(g, (const char *[]){"third"}, 1.0 / 3);
    metric_set(g, (const char *[]){"inf"}, INFINITY);
    metric_set(g, (const char *[]){"ninf"}, -INFINITY);
    metric_set(g, (const char *[]){"nan"}, NAN);
    const char *t = render(m);
    assert_has(t, "app_v{k=\"int\"} 1795500518710\n");
    assert_has(t, "app_v{k=\"frac\"} 0.005\n");
    assert_has(t, "app_v{k=\"third\"} 0.3333333333333333\n");
    assert_has(t, "app_v{k=\"inf\"} +Inf\n");
    assert_has(t, "app_v{k=\"ninf\"} -Inf\n");
    assert_has(t, "app_v{k=\"nan\"} NaN\n");
    metrics_destroy(m);
}

static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1, 10};
    metrics_t *m = metrics_new();
    metric_t *h = metrics_histogram(m, "app_seconds", "Time.", "op", bounds, 3);
    const double seen[] = {0.05, 0.1, 0.5, 5, 50};
    for (size_t i = 0; i < 5; i++)
        metric_observe(h, (const char *[]){"read"}, seen[i]);
    const char *t = render(m);
    assert_has(t, "# TYPE app_seconds histogram\n"
                  "app_seconds_bucket{op=\"read\",le=\"0.1\"} 2\n" /* le is inclusive */
                  "app_seconds_bucket{op=\"read\",le=\"1\"} 3\n"
                  "app_seconds_bucket{op=\"read\",le=\"10\"} 4\n"
                  "app_seconds_bucket{op=\"read\",le=\"+Inf\"} 5\n"
                  "app_seconds_sum{op=\"read\"} 55.65\n"
                  "app_seconds_count{op=\"read\"} 5\n");
    metric_set(h, (const char *[]){"read"}, 1); /* not for histograms: ignored */
    assert_has(render(m), "app_seconds_count{op=\"read\"} 5\n");
    metrics_destroy(m);
}

static void test_metrics_refuses_invalid_or_taken_names(void **state)
{
    (void)state;
    static const double up[] = {1, 2}, down[] = {2, 1};
    metrics_t *m = metrics_new();
    assert_non_null(metrics_counter(m, "app_ok_total", "", "a,b"));
    assert_null(metrics_counter(m, "app_ok_total", "", NULL));     /* taken */
    assert_null(metrics_counter(m, "app_requests", "", NULL));     /* counters end in _total */
    assert_null(metrics_gauge(m, "9lives", "", NULL));             /* starts with a digit */
    assert_null(metrics_gauge(m, "app-dash", "", NULL));           /* '-' */
    assert_null(metrics_gauge(m, "app_l", "", "ok,bad-label"));    /* label name */
    assert_null(metrics_gauge(m, "app_r", "", "__reserved"));      /* reserved prefix */
    assert_null(metrics_histogram(m, "app_h", "", "le", up, 2));   /* le is the bucket's */
    assert_null(metrics_histogram(m, "app_h", "", NULL, down, 2)); /* bounds must increase */
    assert_non_null(metrics_histogram(m, "app_h", "", NULL, up, 2));
    assert_non_null(metrics_gauge(m, "app:recorded", "", NULL)); /* ':' is allowed */
    metrics_destroy(m);
}

static void test_metrics_clear_forgets_series(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *g = metrics_gauge(m, "app_lag", "", "partition");
    metric_set(g, (const char *[]){"0"}, 1);
    metric_set(g, (const char *[]){"1"}, 2);
    metric_clear(g);
    metric_set(g, (const char *[]){"1"}, 3);
    const char *t = render(m);
    assert_null(strstr(t, "partition=\"0\""));
    assert_has(t, "app_lag{partition=\"1\"} 3\n");
    metrics_destroy(m);
}

/* ---- collect callbacks, threads ------------------------------------------------------------ */

static void fill(metrics_t *m, void *opaque)
{
    (void)m;
    metric_add(opaque, NULL, 1); /* counts the renderings */
}

static void test_metrics_collect_runs_before_each_rendering(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    metric_t *c = metrics_counter(m, "app_scrapes_total", "", NULL);
    assert_int_equal(metrics_on_collect(m, fill, c), 0);
    render(m);
    assert_has(render(m), "app_scrapes_total 2\n");
    metrics_destroy(m);
}

typedef struct adder {
    metric_t *counter, *hist;
} adder_t;

static void *add_many(void *arg)
{
    adder_t *a = arg;
    for (int i = 0; i < 10000; i++) {
        metric_add(a->counter, (const char *[]){i % 2 ? "odd" : "even"}, 1);
        metric_observe(a->hist, NULL, i % 10);
    }
    return NULL;
}

static void test_metrics_updates_from_threads_add_up(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    adder_t a = {
        metrics_counter(m, "app_n_total", "", "kind"),
        metrics_histogram(m, "app_sz", "", NULL, METRICS_SIZE_BUCKETS, METRICS_SIZE_BUCKETS_N)};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, add_many, &a), 0);
    for (int i = 0; i < 4; i++) {
        render(m); /* scrapes while the threads write */
        pthread_join(th[i], NULL);
    }
    const char *t = render(m);
    assert_has(t, "app_n_total{kind=\"even\"} 20000\n");
    assert_has(t, "app_n_total{kind=\"odd\"} 20000\n");
    assert_has(t, "app_sz_count 40000\n");
    assert_has(t, "app_sz_bucket{le=\"1\"} 8000\n"); /* 0 and 1 of every ten */
    metrics_destroy(m);
}

/* ---- the HTTP server ------------------------------------------------------------------------ */

typedef struct reply {
    long status;
    char type[128];
    char body[8192];
    size_t len;
} reply_t;

static size_t keep(char *data, size_t size, size_t n, void *opaque)
{
    reply_t *r = opaque;
    size_t room = sizeof(r->body) - 1 - r->len, take = size * n < room ? size * n : room;
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return size * n;
}

static reply_t get(int port, const char *path, const char *method)
{
    reply_t r = {0};
    char url[128];
    char *type = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type);
    snprintf(r.type, sizeof(r.type), "%s", type ? type : "");
    curl_easy_cleanup(e);
    return r;
}

static void test_metrics_serves_on_a_free_port(void **state)
{
    (void)state;
    char errstr[256];
    metrics_t *m = metrics_new();
    metric_add(metrics_counter(m, "app_up_total", "Up.", NULL), NULL, 1);
    int port = metrics_serve(m, "127.0.0.1", 0, errstr, sizeof(errstr));
    assert_true(port > 0);
    reply_t r = get(port, "/metrics", "GET");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, METRICS_CONTENT_TYPE);
    assert_has(r.body, "app_up_total 1\n");
    assert_int_equal(get(port, "/healthz", "GET").status, 200);
    assert_int_equal(get(port, "/other", "GET").status, 404);
    assert_int_equal(get(port, "/metrics", "DELETE").status, 405);
    /* the port is taken now: a second server on it fails with a reason */
    metrics_t *other = metrics_new();
    assert_int_equal(metrics_serve(other, "127.0.0.1", port, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "cannot listen"));
    assert_int_equal(metrics_serve(other, "not-an-address", 0, errstr, sizeof(errstr)), -1);
    metrics_destroy(other);
    metrics_stop(m);
    metrics_stop(m); /* idempotent */
    metrics_destroy(m);
}

/* ---- librdkafka's statistics ------------------------------------------------------------- */

static const char *CONSUMER_STATS =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"brokers\":{"
    "\"127.0.0.1:9092/bootstrap\":{\"nodeid\":-1,\"source\":\"configured\",\"state\":\"UP\"},"
    "\"127.0.0.1:9092/1\":{\"nodeid\":1,\"source\":\"learned\",\"state\":\"UP\","
    "\"txerrs\":2,\"rxerrs\":1,\"req_timeouts\":3,\"disconnects\":4,"
    "\"rtt\":{\"avg\":1500,\"cnt\":3}},"
    "\"127.0.0.1:9093/2\":{\"nodeid\":2,\"source\":\"learned\",\"state\":\"DOWN\","
    "\"rtt\":{\"avg\":0,\"cnt\":0}},"
    "\"127.0.0.1:9094/3\":{\"nodeid\":3,\"source\":\"learned\",\"state\":\"INIT\"},"
    "\"GroupCoordinator\":{\"nodeid\":1,\"source\":\"logical\",\"state\":\"UP\"}},"
    "\"topics\":{\"events.a\":{\"partitions\":{"
    "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":-1,\"consumer_lag_stored\":42},"
    "\"1\":{\"partition\":1,\"desired\":true,\"consumer_lag\":7,\"consumer_lag_stored\":-1},"
    "\"2\":{\"partition\":2,\"desired\":false,\"consumer_lag\":5,\"consumer_lag_stored\":5},"
    "\"-1\":{\"partition\":-1,\"desired\":false,\"consumer_lag\":-1,"
    "\"consumer_lag_stored\":-1}}}}}";

static void test_kafka_metrics_reads_broker_health_and_lag(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    kafka_metrics_t *k = kafka_metrics_new(m, "app", 1);
    assert_non_null(k);
    assert_int_equal(kafka_metrics_update(k, CONSUMER_STATS), 0);
    const char *t = render(m);
    assert_has(t, "app_kafka_brokers_up 2\n"); /* the bootstrap connection and broker 1 */
    assert_has(t, "app_kafka_broker_up{broker=\"127.0.0.1:9092/1\"} 1\n");
    assert_has(t, "app_kafka_broker_up{broker=\"127.0.0.1:9093/2\"} 0\n");
    assert_null(strstr(t, "9094/3"));           /* never needed: not a broker down */
    assert_null(strstr(t, "GroupCoordinator")); /* logical */
    assert_null(strstr(t, "/bootstrap\""));     /* not a broker of its own */
    assert_has(t, "app_kafka_broker_rtt_seconds{broker=\"127.0.0.1:9092/1\"} 0.0015\n");
    assert_null(strstr(t, "app_kafka_broker_rtt_seconds{broker=\"127.0.0.1:9093/2\"}"));
    assert_has(t,
               "app_kafka_broker_errors_total{broker=\"127.0.0.1:9092/1\",kind=\"timeout\"} 3\n");
    assert_has(t, "app_kafka_broker_disconnects_total{broker=\"127.0.0.1:9092/1\"} 4\n");
    assert_has(t, "app_consumer_lag{topic=\"events.a\",partition=\"0\"} 42\n"); /* stored */
    assert_has(t, "app_consumer_lag{topic=\"events.a\",partition=\"1\"} 7\n");  /* committed */
    assert_null(strstr(t, "partition=\"2\""));                                  /* not assigned */
    assert_null(strstr(t, "partition=\"-1\""));
    assert_null(strstr(t, "app_kafka_queue_messages")); /* a producer's */
    /* Not statistics: refused, the series kept. */
    assert_int_equal(kafka_metrics_update(k, "{\"type\":\"consumer\"}"), -1);
    assert_int_equal(kafka_metrics_update(k, "not json"), -1);
    assert_has(render(m), "app_consumer_lag{topic=\"events.a\",partition=\"0\"} 42\n");
    kafka_metrics_destroy(k);
    metrics_destroy(m);
}

/* A statistics source that grows between calls, like a real one may. */
static size_t growing(void *opaque, char *buf, size_t size)
{
    static char json[20000];
    int *calls = opaque;
    int pad = 4000 * ++*calls;
    int n =
        snprintf(json, sizeof(json),
                 "{\"type\":\"producer\",\"msg_cnt\":9,\"pad\":\"%*s\",\"brokers\":{}}", pad, "");
    if (buf && size) {
        size_t copy = (size_t)n < size ? (size_t)n : size - 1;
        memcpy(buf, json, copy);
        buf[copy] = '\0';
    }
    return (size_t)n;
}

static size_t nothing(void *opaque, char *buf, size_t size)
{
    (void)opaque;
    if (buf && size)
        buf[0] = '\0';
    return 0;
}

static void test_kafka_metrics_refresh_grows_its_buffer(void **state)
{
    (void)state;
    int calls = 0;
    metrics_t *m = metrics_new();
    kafka_metrics_t *k = kafka_metrics_new(m, "app", 0);
    assert_int_equal(kafka_metrics_refresh(k, nothing, NULL), 1);
    assert_int_equal(kafka_metrics_refresh(k, growing, &calls), 0);
    assert_has(render(m), "app_kafka_queue_messages 9\n");
    assert_null(strstr(render(m), "app_consumer_lag"));
    kafka_metrics_destroy(k);
    metrics_destroy(m);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_renders_help_type_and_samples),
        cmocka_unit_test(test_metrics_escapes_label_values_and_help),
        cmocka_unit_test(test_metrics_formats_numbers_so_they_read_back),
        cmocka_unit_test(test_metrics_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_metrics_refuses_invalid_or_taken_names),
        cmocka_unit_test(test_metrics_clear_forgets_series),
        cmocka_unit_test(test_metrics_collect_runs_before_each_rendering),
        cmocka_unit_test(test_metrics_updates_from_threads_add_up),
        cmocka_unit_test(test_metrics_serves_on_a_free_port),
        cmocka_unit_test(test_kafka_metrics_reads_broker_health_and_lag),
        cmocka_unit_test(test_kafka_metrics_refresh_grows_its_buffer),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
