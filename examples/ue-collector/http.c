/*
 * http.c - ue-collector's request handlers (libmicrohttpd, a few threads each serving many
 * connections with epoll: a handler that blocks holds up its thread's connections): routing,
 * API key and rate limit, content type and encoding, the body within --max-body, then the batch
 * and its answer; /healthz and /metrics. Every answer is counted by status for /metrics.
 */
#include "collector.h"

#include <arpa/inet.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const int STATUS[ST_CNT] = {200, 400, 401, 404, 405, 413, 415, 429, 503};

/* One POST in progress: its body, and what the first call decided. */
typedef struct request {
    uint8_t *body;
    size_t len, cap, seen;
    size_t held; /* bytes of --max-inflight-bytes this request holds */
    int busy;    /* the budget was full: the body is discarded, the answer is 503 */
    int committed; /* its events are tracked: the drain waits for its answer */
    int is_batch, json, encoding; /* encoding: 0 identity, 1 gzip, 2 zstd */
    const api_key_t *key;         /* NULL with --no-auth */
    int64_t received_at;
    int64_t started_ns; /* monotonic: the request's duration */
} request_t;

static enum MHD_Result answer(collector_t *col, struct MHD_Connection *conn, int status,
                              const char *body, const char *type, int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", secs);
    }
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 405)
        MHD_add_response_header(r, "Allow", "POST");
    cors_headers(col, conn, r);
    if (atomic_load(&col->draining))
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    for (int i = 0; i < ST_CNT; i++)
        if (STATUS[i] == status)
            atomic_fetch_add(&col->answers[i], 1);
    return rc;
}

/* A browser's CORS preflight from an allowed origin: 200, empty, with what it may send. */
static enum MHD_Result preflight(collector_t *col, struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    cors_headers(col, conn, r);
    cors_preflight_headers(r);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    atomic_fetch_add(&col->answers[0], 1); /* STATUS[0]: 200 */
    return rc;
}

/* An error answer: {"error": code, "reason": reason}. */
static enum MHD_Result fail(collector_t *col, struct MHD_Connection *conn, int status,
                            const char *code, const char *reason, int retry_after)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "reason", reason);
    char *text = cJSON_PrintUnformatted(o);
    enum MHD_Result rc =
        answer(col, conn, status, text ? text : "{}", "application/json", retry_after);
    if (col->verbose)
        fprintf(stderr, "ue-collector: status=%d error=%s reason=\"%s\"\n", status, code, reason);
    free(text);
    cJSON_Delete(o);
    return rc;
}

int canonical_ip(const char *text, char out[INET6_ADDRSTRLEN])
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, text, addr) == 1)
        return inet_ntop(AF_INET, addr, out, INET6_ADDRSTRLEN) ? 0 : -1;
    if (inet_pton(AF_INET6, text, addr) == 1)
        return inet_ntop(AF_INET6, addr, out, INET6_ADDRSTRLEN) ? 0 : -1;
    return -1;
}

static int trusted(const collector_t *col, const char *ip)
{
    for (int i = 0; i < col->ntrusted; i++)
        if (!strcmp(col->trusted[i], ip))
            return 1;
    return 0;
}

/* The client's address: the peer's, or, when the peer is a trusted proxy, the last address of
 * X-Forwarded-For that is not one (each proxy appends the address it heard from; what comes
 * before a trusted one was written by the client and proves nothing). */
static void client_ip(const collector_t *col, struct MHD_Connection *conn, char *out,
                      size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
    const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
    if (!xff || !trusted(col, out) || strlen(xff) > 4096)
        return;
    char list[4097], ip[INET6_ADDRSTRLEN];
    snprintf(list, sizeof(list), "%s", xff);
    for (char *comma; *list;) {
        comma = strrchr(list, ',');
        char *item = comma ? comma + 1 : list;
        item += strspn(item, " \t");
        item[strcspn(item, " \t")] = '\0';
        if (canonical_ip(item, ip)) /* not an address: stop at the peer's */
            return;
        snprintf(out, size, "%s", ip);
        if (!trusted(col, ip) || !comma)
            return;
        *comma = '\0';
    }
}

static const char *status_code(int status)
{
    switch (status) {
    case 400: return "invalid";
    case 413: return "too_large";
    default: return "unavailable";
    }
}

/* Decompresses the body into @p dec, scanning JSON as it goes: 0, or the answer with @p err. */
static int decode_body(collector_t *col, request_t *rq, decoded_t *dec, char *err, size_t errsz)
{
    int rc = (rq->encoding == 1 ? gunzip : unzstd)(rq->body, rq->len, dec);
    switch (rc) {
    case DEC_OK: return 0;
    case DEC_TOO_LARGE:
        snprintf(err, errsz, "decompressed body over %zu bytes", col->max_decoded);
        return 413;
    case DEC_BUSY: return 503;
    case DEC_REFUSED: snprintf(err, errsz, "%s", dec->scan->reason); return dec->scan->status;
    default:
        snprintf(err, errsz, "body is not valid %s", rq->encoding == 1 ? "gzip/zlib" : "zstd");
        return 400;
    }
}

/*
 * The body as the batch reads it, within every bound checked before anything is parsed: the
 * decompressed size, and for JSON the events, the nesting and the parse tree's memory (the
 * tree's share of the budget is taken here). 0, or the answer with @p err.
 */
static int bounded_body(collector_t *col, request_t *rq, decoded_t *dec, jscan_t *scan, char *err,
                        size_t errsz)
{
    int status = 0;
    jscan_init(scan, col->max_events, col->max_parse);
    *dec = (decoded_t){.max = col->max_decoded, .col = col, .held = &rq->held,
                       .scan = rq->json ? scan : NULL};
    if (rq->encoding)
        status = decode_body(col, rq, dec, err, errsz);
    else if (rq->json && jscan_feed(scan, rq->body ? rq->body : (const uint8_t *)"", rq->len))
        status = scan->status;
    if (status && status != 503 && scan->status)
        snprintf(err, errsz, "%s", scan->reason);
    if (!status && rq->json && budget_take(col, &rq->held, scan->cost))
        status = 503;
    if (status == 503)
        snprintf(err, errsz, "over --max-inflight-bytes (%zu) with the requests in progress: "
                             "send again", col->max_inflight);
    return status;
}

/* After a big request: glibc keeps freed small blocks (cJSON's nodes) in its arenas; give
 * their pages back, or the peak of one bomb would stay in the RSS for good. */
static void give_back_memory(size_t tree_bytes)
{
#ifdef __GLIBC__
    if (tree_bytes > (1u << 20))
        malloc_trim(0);
#else
    (void)tree_bytes;
#endif
}

/* Checks, publishes and answers for the whole body of one POST. */
static enum MHD_Result handle_batch(collector_t *col, struct MHD_Connection *conn, request_t *rq)
{
    char err[512];
    size_t tracked = 0;
    stamp_t st = {.received_at = rq->received_at};
    decoded_t dec;
    jscan_t scan;

    atomic_fetch_add(&col->bytes, (int64_t)rq->seen);
    if (rq->seen > col->max_body) {
        snprintf(err, sizeof(err), "body over %zu bytes", col->max_body);
        return fail(col, conn, 413, "too_large", err, 0);
    }
    int status = rq->busy ? 503 : bounded_body(col, rq, &dec, &scan, err, sizeof(err));
    if (rq->busy)
        snprintf(err, sizeof(err), "over --max-inflight-bytes (%zu) with the requests in "
                                   "progress: send again", col->max_inflight);
    if (status) {
        if (!rq->busy)
            free(dec.data);
        budget_release(col, &rq->held);
        return fail(col, conn, status, status_code(status), err, status == 503 ? 1 : 0);
    }
    client_ip(col, conn, st.ip, sizeof(st.ip));
    if (rq->json)
        st.user_agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    const uint8_t *data = rq->encoding ? dec.data : rq->body;
    size_t len = rq->encoding ? dec.len : rq->len;
    if (rq->json)
        json_id_seed(rq->key ? rq->key->key : "", data ? data : (const uint8_t *)"", len,
                     st.id_seed);
    status = publish_batch(col, data ? data : (const uint8_t *)"", len, rq->json, &st, &tracked,
                           &rq->committed, err, sizeof(err));
    free(dec.data);
    budget_release(col, &rq->held);
    give_back_memory(rq->json ? scan.cost : 0);
    metric_observe(col->m_batch_seconds, NULL, (double)(mono_ns() - rq->started_ns) / 1e9);
    if (status != 200)
        return fail(col, conn, status, status_code(status), err, status == 503 ? 1 : 0);
    atomic_fetch_add(&col->events, (int64_t)tracked); /* accepted events only */
    metric_observe(col->m_batch_events, NULL, (double)tracked);
    snprintf(err, sizeof(err), "{\"accepted\":%zu}", tracked);
    if (col->verbose)
        fprintf(stderr, "ue-collector: status=200 events=%zu bytes=%zu\n", tracked, rq->seen);
    return answer(col, conn, 200, err, "application/json", 0);
}

static enum MHD_Result metrics(collector_t *col, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = metrics_render(col->metrics, &len);
    if (!text)
        return answer(col, conn, 503, "out of memory\n", "text/plain", 1);
    enum MHD_Result rc = answer(col, conn, 200, text, METRICS_CONTENT_TYPE, 0);
    free(text);
    return rc;
}

/* The media type of a Content-Type value, without parameters, compared case-insensitively. */
static int media_is(const char *value, const char *type)
{
    size_t len = strlen(type);
    return value && strncasecmp(value, type, len) == 0 &&
           (value[len] == '\0' || value[len] == ';' || value[len] == ' ');
}

/* Content type and encoding of a batch: 0, or -1 when unsupported. */
static int body_format(struct MHD_Connection *conn, request_t *rq)
{
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    if (media_is(type, "application/x-protobuf") || media_is(type, "application/protobuf"))
        rq->json = 0;
    else if (media_is(type, "application/json") || media_is(type, "text/plain")) /* beacons */
        rq->json = 1;
    else
        return -1;
    if (!enc || !*enc || !strcasecmp(enc, "identity"))
        rq->encoding = 0;
    else if (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip") || !strcasecmp(enc, "deflate"))
        rq->encoding = 1;
    else if (!strcasecmp(enc, "zstd"))
        rq->encoding = 2;
    else
        return -1;
    return 0;
}

/* The first call of a request: route, and for a batch everything decided by its headers. */
static enum MHD_Result begin(collector_t *col, struct MHD_Connection *conn, const char *url,
                             const char *method, request_t *rq)
{
    if (!strcmp(url, "/healthz"))
        return atomic_load(&col->draining) ? answer(col, conn, 503, "draining\n", "text/plain", 1)
                                           : answer(col, conn, 200, "ok\n", "text/plain", 0);
    if (!strcmp(url, "/metrics") && col->public_metrics)
        return metrics(col, conn);
    if (strcmp(url, "/v1/batch"))
        return fail(col, conn, 404, "not_found", "POST /v1/batch, GET /healthz", 0);
    if (cors_preflight(col, conn, method))
        return preflight(col, conn);
    if (strcmp(method, "POST"))
        return fail(col, conn, 405, "method_not_allowed", "POST a batch", 0);
    if (atomic_load(&col->draining))
        return fail(col, conn, 503, "unavailable", "shutting down: send again", 1);
    api_key_t *key = col->no_auth ? NULL : find_key(col, conn);
    rq->key = key;
    if (!col->no_auth && !key)
        return fail(col, conn, 401, "unauthorized",
                    "unknown or missing API key (Authorization: Bearer KEY, or X-API-Key)", 0);
    int wait = key ? take_token(key) : 0;
    if (wait)
        return fail(col, conn, 429, "rate_limited", "over the API key's request rate", wait);
    if (body_format(conn, rq))
        return fail(col, conn, 415, "unsupported_media_type",
                    "Content-Type application/x-protobuf or application/json; Content-Encoding "
                    "identity, gzip or zstd",
                    0);
    /* Too large by its Content-Length: answer now when the client waits for "100 Continue"
     * (or the body is far too large); otherwise read it first, since a client still sending
     * would see the connection reset rather than the 413. */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > col->max_body && (expect || declared > 8 * col->max_body)) {
        char err[128];
        snprintf(err, sizeof(err), "body over %zu bytes", col->max_body);
        return fail(col, conn, 413, "too_large", err, 0);
    }
    rq->is_batch = 1;
    rq->received_at = wall_ms();
    rq->started_ns = mono_ns();
    atomic_fetch_add(&col->active, 1);
    return MHD_YES;
}

/* Drops what was kept of the body, and its share of the budget. */
static void discard_body(collector_t *col, request_t *rq)
{
    free(rq->body);
    rq->body = NULL;
    rq->len = rq->cap = 0;
    budget_release(col, &rq->held);
}

/* Keeps the body up to --max-body, its buffer charged to the budget; past the cap, or when the
 * budget is full, counts and discards it (413 or 503 at the end). */
static enum MHD_Result take_body(collector_t *col, request_t *rq, const char *data, size_t len)
{
    rq->seen += len;
    if (rq->seen > col->max_body) {
        discard_body(col, rq);
        return rq->seen > 8 * col->max_body ? MHD_NO : MHD_YES; /* far past: hang up */
    }
    if (rq->busy)
        return MHD_YES;
    if (rq->len + len > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 16384;
        while (cap < rq->len + len)
            cap *= 2;
        cap = cap < col->max_body ? cap : col->max_body;
        uint8_t *p = budget_take(col, &rq->held, cap - rq->cap) ? NULL : realloc(rq->body, cap);
        if (!p) {
            rq->busy = 1;
            discard_body(col, rq);
            return MHD_YES;
        }
        rq->body = p;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, len);
    rq->len += len;
    return MHD_YES;
}

enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_size, void **ctx)
{
    collector_t *col = cls;
    request_t *rq = *ctx;
    (void)version;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *ctx = rq;
        conn_phase(col, conn, CONN_WAIT_BODY);
        return begin(col, conn, url, method, rq);
    }
    if (*upload_size) {
        size_t len = *upload_size;
        *upload_size = 0;
        return rq->is_batch ? take_body(col, rq, upload_data, len) : MHD_YES;
    }
    if (!rq->is_batch)
        return MHD_YES;
    conn_phase(col, conn, CONN_HANDLING);
    return handle_batch(col, conn, rq);
}

void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                  enum MHD_RequestTerminationCode toe)
{
    collector_t *col = cls;
    request_t *rq = *ctx;
    (void)toe;
    conn_phase(col, conn, CONN_WAIT_HEADERS); /* the next request's headers */
    if (!rq)
        return;
    if (rq->is_batch)
        atomic_fetch_sub(&col->active, 1);
    if (rq->committed)
        atomic_fetch_sub(&col->publishing, 1);
    budget_release(col, &rq->held); /* a request cut short */
    free(rq->body);
    free(rq);
    *ctx = NULL;
}
