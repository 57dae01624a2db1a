/*
 * transport_http.c - records to an HTTP collector through libcurl (see transport_http.h).
 *
 * Records handed over by send() wait in one FIFO, in spool order. One request at a time takes
 * records from its head: their payloads (each with a fresh sent_at, the same event id) framed
 * as a userevents.EventBatch, zstd-compressed, POSTed with the API key. One request at a time
 * is what keeps a user's events in order when a request fails and goes again. The answer
 * decides the fate of every record of the request:
 *
 *   2xx                          delivered
 *   413                          split: the byte budget of a request halves and the same
 *                                records go again, in smaller requests; one record alone
 *                                over the collector's limit fails for good
 *   4xx (400, 401, 403, ...)     failed for good: the collector will never take them
 *   408, 425, 429, 5xx, network  kept, sent again after a full-jitter exponential backoff, and
 *                                not before Retry-After (capped by http.retry.after.max.ms)
 *
 * Records stay in the spool until their result, so "the same spool" covers the collector
 * being down or the process dying. Everything runs from poll() on the client's background
 * thread through the curl multi interface: no thread of its own, no blocking call. The API
 * key is only ever written into the request header, never logged.
 */
#include "transport_http.h"
#include "uc_props.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zstd.h>

#define ZSTD_LEVEL 1
#define RECORD_OVERHEAD 20 /* sent_at (11) and EventBatch framing (5), per record, at most */
#define REASON_BODY 300    /* bytes of the collector's answer kept in a failure reason */
/* Larger bodies ask "Expect: 100-continue" first, so that a 413 comes before the body is sent
 * (a server that answers early and closes would otherwise reset the upload). */
#define EXPECT_ABOVE (64 * 1024)

typedef struct http_transport {
    ue__transport_t base;
    const uc__logger_t *log;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers, *headers_expect; /* the API key lives only in these */
    ZSTD_CCtx *zc;

    /* Records held, oldest first; the first req_n are in the request in flight. */
    ue__record_t *head, *tail;
    size_t held, held_bytes;
    size_t req_n, req_bytes;
    int busy;         /* a request is in flight */
    int stopping;     /* purge(): start no new request */
    int64_t retry_at; /* monotonic ms: no request before this */
    int attempt;      /* consecutive retriable failures */
    size_t budget;    /* bytes of one request: http.max.batch.bytes, halved by each 413 */
    size_t max_batch;
    int64_t backoff_base, backoff_max, retry_after_max;
    uint64_t rng;

    uint8_t *raw, *body; /* the request's EventBatch and its zstd form, reused */
    size_t raw_cap, body_cap;
    char answer[REASON_BODY + 1]; /* head of the answer's body */
    size_t answer_len;
    char curl_err[CURL_ERROR_SIZE];
} http_transport_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ue__http_url_valid(const char *url, char *errstr, size_t errstr_size)
{
    if (!url || (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8))) {
        uc__errstr(errstr, errstr_size,
                   "transport=http needs http.url, an http:// or https:// URL");
        return -1;
    }
    CURLU *u = curl_url();
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    curl_url_cleanup(u);
    if (rc != CURLUE_OK) {
        uc__errstr(errstr, errstr_size, "http.url: not a valid URL");
        return -1;
    }
    return 0;
}

/* ---- the FIFO of held records --------------------------------------------------------- */

static int http_send(ue__transport_t *t, ue__record_t *rec, char *errstr, size_t errstr_size)
{
    http_transport_t *ht = (http_transport_t *)t;
    (void)errstr;
    (void)errstr_size;
    /* Room for the request in flight and one more: memory bounded, the rest waits in the
     * spool (or the sender's pending list). */
    if (ht->held > 0 && ht->held_bytes >= 2 * ht->max_batch)
        return UE__SEND_FULL;
    rec->next = NULL;
    if (ht->tail)
        ht->tail->next = rec;
    else
        ht->head = rec;
    ht->tail = rec;
    ht->held++;
    ht->held_bytes += rec->payload_len + RECORD_OVERHEAD;
    return UE__SEND_OK;
}

/* Takes the @p n oldest records out and reports each with the same result. */
static void report_head(http_transport_t *ht, size_t n, ue_err_t err, const char *reason,
                        int retriable)
{
    for (size_t i = 0; i < n && ht->head; i++) {
        ue__record_t *rec = ht->head;
        ht->head = rec->next;
        if (!ht->head)
            ht->tail = NULL;
        ht->held--;
        ht->held_bytes -= rec->payload_len + RECORD_OVERHEAD;
        rec->next = NULL;
        ht->base.on_result(ht->base.owner, rec, err, reason, retriable);
    }
}

/* ---- building and starting a request --------------------------------------------------- */

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t size = *cap ? *cap : 64 * 1024;
    while (size < need)
        size *= 2;
    uint8_t *p = realloc(*buf, size);
    if (!p)
        return -1;
    *buf = p;
    *cap = size;
    return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        p[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* Frames the first records within the budget (at least one) as an EventBatch in raw. */
static size_t frame_batch(http_transport_t *ht, size_t *raw_len)
{
    size_t n = 0, bytes = 0;
    for (ue__record_t *r = ht->head; r; r = r->next) {
        size_t len = r->payload_len + RECORD_OVERHEAD;
        if (n > 0 && bytes + len > ht->budget)
            break;
        bytes += len;
        n++;
    }
    if (reserve(&ht->raw, &ht->raw_cap, bytes))
        return 0;
    int64_t now = uc__wall_ms();
    uint8_t *p = ht->raw;
    ue__record_t *r = ht->head;
    for (size_t i = 0; i < n; i++, r = r->next) {
        size_t len = ue__record_stamp_sent_at(r, now);
        *p++ = (1 << 3) | 2; /* EventBatch.events, length-delimited */
        p += put_varint(p, len);
        memcpy(p, ue__record_payload(r), len);
        p += len;
    }
    *raw_len = (size_t)(p - ht->raw);
    return n;
}

static void start_request(http_transport_t *ht)
{
    size_t raw_len = 0, n;
    if (ht->busy || ht->stopping || !ht->head || uc__mono_ms() < ht->retry_at)
        return;
    n = frame_batch(ht, &raw_len);
    if (!n || reserve(&ht->body, &ht->body_cap, ZSTD_compressBound(raw_len))) {
        ht->retry_at = uc__mono_ms() + 100; /* out of memory: try again shortly */
        return;
    }
    size_t z = ZSTD_compressCCtx(ht->zc, ht->body, ht->body_cap, ht->raw, raw_len, ZSTD_LEVEL);
    if (ZSTD_isError(z)) {
        uc__log(ht->log, UC_LOG_ERR, "http: zstd: %s", ZSTD_getErrorName(z));
        ht->retry_at = uc__mono_ms() + 100;
        return;
    }
    curl_easy_setopt(ht->easy, CURLOPT_HTTPHEADER,
                     z > EXPECT_ABOVE ? ht->headers_expect : ht->headers);
    curl_easy_setopt(ht->easy, CURLOPT_POSTFIELDS, (char *)ht->body);
    curl_easy_setopt(ht->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)z);
    ht->answer_len = 0;
    ht->curl_err[0] = '\0';
    if (curl_multi_add_handle(ht->multi, ht->easy) != CURLM_OK) {
        ht->retry_at = uc__mono_ms() + 100;
        return;
    }
    ht->busy = 1;
    ht->req_n = n;
    ht->req_bytes = raw_len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    http_transport_t *ht = opaque;
    size_t len = size * nmemb, room = REASON_BODY - ht->answer_len;
    size_t keep = len < room ? len : room;
    memcpy(ht->answer + ht->answer_len, data, keep);
    ht->answer_len += keep;
    return len;
}

/* ---- answers ----------------------------------------------------------------------------- */

/* "HTTP 401: <the start of the answer's body, printable characters only>" */
static void format_reason(http_transport_t *ht, long status, char *out, size_t size)
{
    size_t n = 0;
    char body[REASON_BODY + 1];
    for (size_t i = 0; i < ht->answer_len; i++) {
        unsigned char c = (unsigned char)ht->answer[i];
        body[n++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    body[n] = '\0';
    snprintf(out, size, "HTTP %ld from the collector%s%s", status, n ? ": " : "", body);
}

/* The answer's Retry-After (seconds or an HTTP date) in ms, or 0. */
static int64_t retry_after_ms(http_transport_t *ht)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(ht->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return 0;
    char *end;
    long secs = strtol(h->value, &end, 10);
    if (end != h->value && *end == '\0')
        return secs > 0 ? (int64_t)secs * 1000 : 0;
    time_t when = curl_getdate(h->value, NULL);
    time_t now = time(NULL);
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static uint64_t next_random(http_transport_t *ht)
{
    uint64_t x = ht->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return ht->rng = x;
}

/* The request failed in a way that may pass later: keep its records, back off. */
static void retry_later(http_transport_t *ht, const char *reason, int64_t retry_after)
{
    int shift = ht->attempt < 30 ? ht->attempt : 30;
    int64_t cap = ht->backoff_base << shift;
    if (cap > ht->backoff_max || cap <= 0)
        cap = ht->backoff_max;
    int64_t delay = (int64_t)(next_random(ht) % (uint64_t)(cap + 1)); /* full jitter */
    if (retry_after > ht->retry_after_max)
        retry_after = ht->retry_after_max;
    if (delay < retry_after)
        delay = retry_after;
    ht->attempt++;
    ht->retry_at = uc__mono_ms() + delay;
    uc__log(ht->log, UC_LOG_INFO, "http: %s; %zu event(s) sent again in %lld ms (attempt %d)",
            reason, ht->req_n, (long long)delay, ht->attempt);
    if (!ht->base.on_retry)
        return;
    ue__record_t *r = ht->head;
    for (size_t i = 0; i < ht->req_n && r; i++, r = r->next)
        ht->base.on_retry(ht->base.owner, r, UE_ERR_COLLECTOR, reason);
}

static int is_permanent(long status)
{
    return status >= 400 && status < 500 && status != 408 && status != 425 && status != 429;
}

static void on_answer(http_transport_t *ht, CURLcode rc, long status)
{
    char reason[REASON_BODY + 64];
    if (rc != CURLE_OK) {
        snprintf(reason, sizeof(reason), "collector not reached: %s",
                 ht->curl_err[0] ? ht->curl_err : curl_easy_strerror(rc));
        retry_later(ht, reason, 0);
    } else if (status >= 200 && status < 300) {
        ht->attempt = 0;
        report_head(ht, ht->req_n, UE_OK, "", 0);
    } else if (status == 413 && ht->req_n > 1) {
        ht->budget = ht->req_bytes / 2 > 0 ? ht->req_bytes / 2 : 1;
        uc__log(ht->log, UC_LOG_NOTICE,
                "http: 413 for %zu events in %zu bytes: split, requests now up to %zu bytes",
                ht->req_n, ht->req_bytes, ht->budget);
    } else if (is_permanent(status)) {
        format_reason(ht, status, reason, sizeof(reason));
        uc__log(ht->log, UC_LOG_WARNING, "http: %zu event(s) failed: %s", ht->req_n, reason);
        report_head(ht, ht->req_n, UE_ERR_COLLECTOR, reason, 0);
    } else {
        format_reason(ht, status, reason, sizeof(reason));
        retry_later(ht, reason, retry_after_ms(ht));
    }
}

/* Reports the request that finished, if one did; returns 1 then. */
static int finish_request(http_transport_t *ht)
{
    int left, done = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(ht->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(ht->easy, CURLINFO_RESPONSE_CODE, &status);
        on_answer(ht, rc, status); /* before remove: Retry-After is read from the handle */
        curl_multi_remove_handle(ht->multi, ht->easy);
        ht->busy = 0;
        done = 1;
    }
    return done;
}

/* ---- the transport interface ------------------------------------------------------------ */

static void http_poll(ue__transport_t *t, int timeout_ms)
{
    http_transport_t *ht = (http_transport_t *)t;
    int64_t deadline = uc__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int running;
    for (;;) {
        start_request(ht);
        curl_multi_perform(ht->multi, &running);
        if (finish_request(ht)) { /* the next request leaves at once */
            start_request(ht);
            curl_multi_perform(ht->multi, &running);
        }
        int64_t now = uc__mono_ms();
        if (now >= deadline)
            return;
        int64_t wait = deadline - now;
        if (!ht->busy && ht->head && !ht->stopping && ht->retry_at - now < wait)
            wait = ht->retry_at > now ? ht->retry_at - now : 0;
        curl_multi_poll(ht->multi, NULL, 0, (int)wait, NULL);
    }
}

static size_t http_in_flight(ue__transport_t *t)
{
    return ((http_transport_t *)t)->held;
}

static void http_purge(ue__transport_t *t, int timeout_ms)
{
    http_transport_t *ht = (http_transport_t *)t;
    int64_t deadline = uc__mono_ms() + timeout_ms;
    int running;
    ht->stopping = 1;
    /* The request in flight may already be taken: wait for its answer, so it is not sent
     * again by the next process for nothing. */
    while (ht->busy && uc__mono_ms() < deadline) {
        curl_multi_poll(ht->multi, NULL, 0, 10, NULL);
        curl_multi_perform(ht->multi, &running);
        finish_request(ht);
    }
    if (ht->busy) {
        curl_multi_remove_handle(ht->multi, ht->easy);
        ht->busy = 0;
    }
    report_head(ht, ht->held, UE_ERR_SHUTDOWN, "client destroyed", 1);
}

static void http_destroy(ue__transport_t *t)
{
    http_transport_t *ht = (http_transport_t *)t;
    if (ht->busy)
        curl_multi_remove_handle(ht->multi, ht->easy);
    if (ht->easy)
        curl_easy_cleanup(ht->easy);
    if (ht->multi)
        curl_multi_cleanup(ht->multi);
    curl_slist_free_all(ht->headers);
    curl_slist_free_all(ht->headers_expect);
    ZSTD_freeCCtx(ht->zc);
    ue__record_free_list(ht->head);
    free(ht->raw);
    free(ht->body);
    free(ht);
}

static const ue__transport_ops_t http_ops = {
    .send = http_send,
    .poll = http_poll,
    .in_flight = http_in_flight,
    .purge = http_purge,
    .destroy = http_destroy,
};

/* The headers of a request, with or without "Expect: 100-continue". */
static struct curl_slist *make_headers(const char *api_key, const char *expect)
{
    const char *const fixed[] = {"Content-Type: application/x-protobuf", "Content-Encoding: zstd",
                                 "Accept: application/json", expect, NULL};
    struct curl_slist *list = NULL, *next;
    for (int i = 0; fixed[i]; i++) {
        next = curl_slist_append(list, fixed[i]);
        if (!next)
            goto fail;
        list = next;
    }
    if (api_key && *api_key) {
        size_t len = strlen(api_key) + 32;
        char *auth = malloc(len);
        if (!auth)
            goto fail;
        snprintf(auth, len, "Authorization: Bearer %s", api_key);
        next = curl_slist_append(list, auth);
        memset(auth, 0, len);
        free(auth);
        if (!next)
            goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

static int setup_easy(http_transport_t *ht, const ue__settings_t *s)
{
    long timeout = (long)s->http_timeout_ms;
    CURL *e = ht->easy;
    if (s->http_ca_location && *s->http_ca_location &&
        curl_easy_setopt(e, CURLOPT_CAINFO, s->http_ca_location))
        return -1;
    return curl_easy_setopt(e, CURLOPT_URL, s->http_url) ||
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") ||
           curl_easy_setopt(e, CURLOPT_USERAGENT, "libuserevents/" UE__VERSION_STR) ||
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
           curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) ||
           curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L) ||
           curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) ||
           curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L) ||
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) ||
           curl_easy_setopt(e, CURLOPT_WRITEDATA, ht) ||
           curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ht->curl_err);
}

ue__transport_t *ue__transport_http_new(const ue__settings_t *s, const uc__logger_t *log,
                                        ue__result_fn *on_result, ue__retry_fn *on_retry,
                                        void *owner, char *errstr, size_t errstr_size)
{
    if (ue__http_url_valid(s->http_url, errstr, errstr_size))
        return NULL;
    pthread_once(&curl_once, curl_init_once);
    http_transport_t *ht = calloc(1, sizeof(*ht));
    if (!ht) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ht->base = (ue__transport_t){
        .ops = &http_ops, .on_result = on_result, .on_retry = on_retry, .owner = owner};
    ht->log = log;
    ht->max_batch = ht->budget = (size_t)s->http_max_batch_bytes;
    ht->backoff_base = s->http_backoff_base_ms;
    ht->backoff_max = s->http_backoff_max_ms;
    ht->retry_after_max = s->http_retry_after_max_ms;
    uc__random_bytes(&ht->rng, sizeof(ht->rng));
    ht->rng |= 1; /* xorshift must not start at 0 */
    ht->multi = curl_multi_init();
    ht->easy = curl_easy_init();
    ht->zc = ZSTD_createCCtx();
    ht->headers = make_headers(s->http_api_key, "Expect:");
    ht->headers_expect = make_headers(s->http_api_key, "Expect: 100-continue");
    if (!ht->multi || !ht->easy || !ht->zc || !ht->headers || !ht->headers_expect ||
        setup_easy(ht, s)) {
        uc__errstr(errstr, errstr_size, "http transport: libcurl or zstd could not be set up");
        http_destroy(&ht->base);
        return NULL;
    }
    return &ht->base;
}
