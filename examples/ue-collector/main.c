/*
 * ue-collector - the HTTP ingest gateway: devices and web pages POST batches of events, the
 * collector checks them and publishes them to Kafka through libuserevents.
 *
 *   ue-collector -b 127.0.0.1:9092 -s /var/lib/ue-collector --api-keys /etc/ue/keys -p 8080
 *
 *   POST /v1/batch   Content-Type application/x-protobuf (userevents.EventBatch, what the SDK's
 *                    transport=http sends) or application/json (an array, or {"batch": [...]},
 *                    of {type, event_id, user_id, anonymous_id, session_id, timestamp,
 *                    properties{}, context{}}); Content-Encoding identity, gzip or zstd;
 *                    key in "Authorization: Bearer KEY" or "X-API-Key: KEY".
 *   GET  /healthz    200 "ok" while serving
 *   GET  /metrics    Prometheus text: userevents_collector_* (answers by status, events,
 *                    batch sizes and latencies) and userevents_sdk_* (its client's statistics
 *                    and broker health); see pkg/monitoring/. --metrics-port serves it on a
 *                    port of its own too (one not exposed to devices).
 *
 * Answers: 200 {"accepted":N} only once every event of the batch is safe (written to the
 * collector's spool, fsync'd by default; or acknowledged by Kafka without a spool); 400 with a
 * JSON reason for a malformed body or an invalid event (nothing of that batch is published);
 * 401 unknown key; 413 body or decompressed body over its cap (zip bombs included), or an
 * event over --max-event-bytes; 415 unknown type or encoding; 429 with Retry-After past a key's
 * rate; 503 with Retry-After while shutting down or when the spool cannot take the events.
 * Event ids are kept (JSON events without one get a UUIDv7); received_at is stamped.
 *
 * Built only from the public APIs: userevents.h, the schema (proto/), libmicrohttpd, cJSON,
 * zlib and zstd, and the programs' shared helpers (examples/common/). SIGTERM/SIGINT: stop
 * accepting, finish the requests in progress, flush to Kafka for shutdown.timeout.ms; what is
 * left waits in the spool for the next start.
 */
#include "collector.pb-c.h"
#include "metrics.h"
#include "sdk_metrics.h"
#include "userevents.h"
#include "userevents.pb-c.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MAX_KEYS 1024
#define ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB: what zstd levels up to 19 use; bounds a bomb's memory */

/* ---- configuration and state ------------------------------------------------------------ */

typedef struct api_key {
    char *key;
    double rate, burst; /* requests per second and bucket size; rate 0: unlimited */
    double tokens;
    int64_t last_ns;
    pthread_mutex_t lock;
} api_key_t;

enum { ST_200, ST_400, ST_401, ST_404, ST_405, ST_413, ST_415, ST_429, ST_503, ST_CNT };
static const int STATUS[ST_CNT] = {200, 400, 401, 404, 405, 413, 415, 429, 503};

typedef struct collector {
    ue_client_t *ue;
    api_key_t keys[MAX_KEYS];
    int nkeys, no_auth, verbose;
    double rate, burst;
    size_t max_body, max_decoded, max_event, max_events;
    int ack_timeout_ms;
    _Atomic int draining, active;
    _Atomic int64_t answers[ST_CNT], events, bytes;
    /* /metrics: the counters above are copied in at each scrape; batches are observed */
    metrics_t *metrics;
    sdk_metrics_t *sdk;
    metric_t *m_answers, *m_events, *m_bytes, *m_active, *m_batch_events, *m_batch_seconds;
} collector_t;

/* One POST in progress: its body, and what the first call decided. */
typedef struct request {
    uint8_t *body;
    size_t len, cap, seen;
    int is_batch, json, encoding; /* encoding: 0 identity, 1 gzip, 2 zstd */
    int64_t received_at;
    int64_t started_ns; /* monotonic: the request's duration */
} request_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- answers ------------------------------------------------------------------------------- */

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
    if (atomic_load(&col->draining))
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    for (int i = 0; i < ST_CNT; i++)
        if (STATUS[i] == status)
            atomic_fetch_add(&col->answers[i], 1);
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

/* ---- API keys and rate limits --------------------------------------------------------------- */

static int ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < la; i++) /* constant time in the key's length */
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    return diff == 0;
}

static api_key_t *find_key(collector_t *col, struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!v && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        v = auth + 7;
    api_key_t *found = NULL;
    for (int i = 0; v && *v && i < col->nkeys; i++)
        if (ct_equal(v, col->keys[i].key))
            found = &col->keys[i];
    return found;
}

/* Takes one request from @p k's token bucket; 0, or the seconds to wait. */
static int take_token(api_key_t *k)
{
    if (k->rate <= 0)
        return 0;
    pthread_mutex_lock(&k->lock);
    int64_t now = mono_ns();
    k->tokens += (double)(now - k->last_ns) / 1e9 * k->rate;
    if (k->tokens > k->burst)
        k->tokens = k->burst;
    k->last_ns = now;
    int wait = 0;
    if (k->tokens >= 1)
        k->tokens -= 1;
    else
        wait = (int)ceil((1 - k->tokens) / k->rate);
    pthread_mutex_unlock(&k->lock);
    return wait > 0 ? wait : 0;
}

static int add_key(collector_t *col, const char *key, double rate, double burst)
{
    if (col->nkeys == MAX_KEYS || !*key || rate < 0 || burst < 1) {
        fprintf(stderr, "ue-collector: bad API key entry (or more than %d keys)\n", MAX_KEYS);
        return -1;
    }
    api_key_t *k = &col->keys[col->nkeys++];
    k->key = strdup(key);
    k->rate = rate;
    k->burst = k->tokens = burst;
    k->last_ns = mono_ns();
    pthread_mutex_init(&k->lock, NULL);
    return 0;
}

/* Lines "KEY [RATE [BURST]]"; '#' starts a comment. */
static int load_keys(collector_t *col, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024], key[512];
    int lineno = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        double rate = col->rate, burst = col->burst;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        int n = sscanf(line, "%511s %lf %lf", key, &rate, &burst);
        if (n <= 0)
            continue;
        if (n == 2 && burst < rate)
            burst = rate > 1 ? rate : 1;
        if (add_key(col, key, rate, burst)) {
            fprintf(stderr, "ue-collector: %s:%d: bad entry\n", path, lineno);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* ---- bodies: decompression with caps ---------------------------------------------------- */

enum { DEC_OK = 0, DEC_TOO_LARGE = 1, DEC_BAD = -1 };

/* Grows @p buf (capacity *@p cap) towards @p max; DEC_TOO_LARGE once it is there. */
static int grow(uint8_t **buf, size_t *cap, size_t max)
{
    if (*cap >= max)
        return DEC_TOO_LARGE;
    size_t size = *cap * 2 < max ? *cap * 2 : max;
    uint8_t *p = realloc(*buf, size);
    if (!p)
        return DEC_TOO_LARGE;
    *buf = p;
    *cap = size;
    return DEC_OK;
}

static int gunzip(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    z_stream zs = {0};
    size_t cap = 64 * 1024 < max ? 64 * 1024 : max;
    int rc = DEC_BAD;
    *out = malloc(cap);
    if (!*out || inflateInit2(&zs, 15 + 32) != Z_OK) /* gzip or zlib, by header */
        return DEC_BAD;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    for (;;) {
        if (zs.total_out == cap && (rc = grow(out, &cap, max)) != DEC_OK)
            break;
        zs.next_out = *out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        int z = inflate(&zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END) {
            rc = DEC_OK;
            break;
        }
        if ((z != Z_OK && z != Z_BUF_ERROR) || (z == Z_BUF_ERROR && zs.avail_in == 0)) {
            rc = DEC_BAD; /* corrupt or truncated */
            break;
        }
    }
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return rc;
}

static int unzstd(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    size_t cap = 64 * 1024 < max ? 64 * 1024 : max, last = 1;
    ZSTD_inBuffer src = {in, len, 0};
    ZSTD_outBuffer dst = {NULL, cap, 0};
    int rc = DEC_BAD;
    *out = malloc(cap);
    if (!d || !*out ||
        ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
        ZSTD_freeDCtx(d);
        return DEC_BAD;
    }
    for (;;) {
        if (dst.pos == cap && (rc = grow(out, &cap, max)) != DEC_OK)
            break;
        dst.dst = *out;
        dst.size = cap;
        last = ZSTD_decompressStream(d, &dst, &src);
        if (ZSTD_isError(last)) {
            rc = DEC_BAD;
            break;
        }
        if (src.pos == src.size && (last == 0 || dst.pos < dst.size)) {
            rc = last == 0 ? DEC_OK : DEC_BAD; /* truncated when a frame is unfinished */
            break;
        }
    }
    *out_len = dst.pos;
    ZSTD_freeDCtx(d);
    return rc;
}

/* ---- building events -------------------------------------------------------------------- */

/* Context fields of the schema that ue_event_set_context() takes, by name. */
static const struct {
    const char *name;
    size_t offset;
} CTX_FIELDS[] = {
    {"app.name", offsetof(Userevents__Context, app_name)},
    {"app.version", offsetof(Userevents__Context, app_version)},
    {"app.build", offsetof(Userevents__Context, app_build)},
    {"device.model", offsetof(Userevents__Context, device_model)},
    {"device.manufacturer", offsetof(Userevents__Context, device_manufacturer)},
    {"os.name", offsetof(Userevents__Context, os_name)},
    {"os.version", offsetof(Userevents__Context, os_version)},
    {"locale", offsetof(Userevents__Context, locale)},
    {"timezone", offsetof(Userevents__Context, timezone)},
    {"network", offsetof(Userevents__Context, network)},
    {"ip", offsetof(Userevents__Context, ip)},
    {"user_agent", offsetof(Userevents__Context, user_agent)},
};
#define NCTX (sizeof(CTX_FIELDS) / sizeof(CTX_FIELDS[0]))

/* What the request adds to each of its events. */
typedef struct stamp {
    int64_t received_at;
    char ip[INET6_ADDRSTRLEN];
    const char *user_agent; /* JSON (web) only */
} stamp_t;

static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
            return 0;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if ((n == 2 && *p == 0xe0 && p[1] < 0xa0) || (n == 2 && *p == 0xed && p[1] > 0x9f) ||
            (n == 3 && *p == 0xf0 && p[1] < 0x90) || (n == 3 && *p == 0xf4 && p[1] > 0x8f))
            return 0; /* overlong, surrogate or past U+10FFFF */
        p += n + 1;
    }
    return 1;
}

/* A string field: checked, then set when non-empty. Returns 0 or -1 with @p err. */
static int set_str(ue_event_t *ev, ue_err_t (*setter)(ue_event_t *, const char *), const char *v,
                   const char *what, char *err, size_t errsz)
{
    if (!v || !*v)
        return 0;
    if (!utf8_ok(v) || setter(ev, v) != UE_OK) {
        snprintf(err, errsz, "%s: not valid UTF-8", what);
        return -1;
    }
    return 0;
}

static int set_ctx(ue_event_t *ev, const char *field, const char *v, char *err, size_t errsz)
{
    if (!utf8_ok(v) || ue_event_set_context(ev, field, v) != UE_OK) {
        snprintf(err, errsz, "context.%s: invalid value", field);
        return -1;
    }
    return 0;
}

/* The request's stamp: received_at, and ip / user agent where the event has none. */
static int apply_stamp(ue_event_t *ev, const stamp_t *st, int has_ip, int has_ua)
{
    ue_event_set_received_at_ms(ev, st->received_at);
    if (!has_ip && st->ip[0])
        ue_event_set_context(ev, "ip", st->ip);
    if (!has_ua && st->user_agent && utf8_ok(st->user_agent))
        ue_event_set_context(ev, "user_agent", st->user_agent);
    return 0;
}

static int pb_props(ue_event_t *ev, const Userevents__Event *e, char *err, size_t errsz)
{
    for (size_t i = 0; i < e->n_properties; i++) {
        const char *k = e->properties[i]->key;
        const Userevents__Value *v = e->properties[i]->value;
        ue_err_t rc = UE_ERR_INVALID_ARG;
        if (!k || !*k || !utf8_ok(k) || !v)
            rc = UE_ERR_INVALID_ARG;
        else if (v->kind_case == USEREVENTS__VALUE__KIND_STRING_VALUE)
            rc = utf8_ok(v->string_value) ? ue_event_prop_string(ev, k, v->string_value) : rc;
        else if (v->kind_case == USEREVENTS__VALUE__KIND_INT_VALUE)
            rc = ue_event_prop_int(ev, k, v->int_value);
        else if (v->kind_case == USEREVENTS__VALUE__KIND_DOUBLE_VALUE)
            rc = ue_event_prop_double(ev, k, v->double_value);
        else if (v->kind_case == USEREVENTS__VALUE__KIND_BOOL_VALUE)
            rc = ue_event_prop_bool(ev, k, v->bool_value);
        if (rc != UE_OK) {
            snprintf(err, errsz,
                     "properties[%zu]: invalid key or value (strings, integers, "
                     "finite numbers and booleans are accepted)",
                     i);
            return -1;
        }
    }
    return 0;
}

static int pb_context(ue_event_t *ev, const Userevents__Context *c, int *has_ip, char *err,
                      size_t errsz)
{
    char num[16];
    for (size_t i = 0; c && i < NCTX; i++) {
        const char *v = *(char *const *)((const char *)c + CTX_FIELDS[i].offset);
        if (v && *v && set_ctx(ev, CTX_FIELDS[i].name, v, err, errsz))
            return -1;
    }
    if (c && c->screen_width) {
        snprintf(num, sizeof(num), "%u", c->screen_width);
        ue_event_set_context(ev, "screen.width", num);
    }
    if (c && c->screen_height) {
        snprintf(num, sizeof(num), "%u", c->screen_height);
        ue_event_set_context(ev, "screen.height", num);
    }
    *has_ip = c && c->ip && *c->ip;
    return 0;
}

/* Builds @p ev from one decoded Event of a protobuf batch. 0, or -1 with the reason. */
static int build_pb(ue_event_t *ev, const Userevents__Event *e, const stamp_t *st, char *err,
                    size_t errsz)
{
    int has_ip = 0;
    if (!e->type || ue_event_reset(ev, e->type) != UE_OK) {
        snprintf(err, errsz, "type: missing or invalid ([A-Za-z0-9._-], 1..200 characters)");
        return -1;
    }
    if (e->schema_version > UE_SCHEMA_VERSION) {
        snprintf(err, errsz, "schema_version %u is newer than this collector (%d)",
                 e->schema_version, UE_SCHEMA_VERSION);
        return -1;
    }
    if (e->event_id.len != 0 && e->event_id.len != 16) {
        snprintf(err, errsz, "event_id: 16 bytes expected, got %zu", e->event_id.len);
        return -1;
    }
    if (e->event_id.len == 16)
        ue_event_set_event_id(ev, e->event_id.data);
    if ((!e->user_id || !*e->user_id) && (!e->anonymous_id || !*e->anonymous_id)) {
        snprintf(err, errsz, "user_id or anonymous_id is required");
        return -1;
    }
    if (set_str(ev, ue_event_set_user_id, e->user_id, "user_id", err, errsz) ||
        set_str(ev, ue_event_set_anonymous_id, e->anonymous_id, "anonymous_id", err, errsz) ||
        set_str(ev, ue_event_set_session_id, e->session_id, "session_id", err, errsz) ||
        pb_props(ev, e, err, errsz) || pb_context(ev, e->context, &has_ip, err, errsz))
        return -1;
    ue_event_set_timestamp_ms(ev, e->timestamp_ms > 0 ? e->timestamp_ms : st->received_at);
    return apply_stamp(ev, st, has_ip, 1);
}

/* "2024-05-01T12:34:56.789Z" or "...+02:00" to Unix ms; -1 when malformed. */
static int64_t parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    int ms = 0, n = 0, oh = 0, om = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*s - '0');
        for (; digits > 0 && digits < 3; digits++)
            ms *= 10;
    }
    int sign = *s == '+' ? 1 : *s == '-' ? -1 : 0;
    if (sign && sscanf(s + 1, "%2d:%2d", &oh, &om) != 2)
        return -1;
    if (!sign && strcmp(s, "Z") && strcmp(s, "z"))
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || oh > 23 || om > 59)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 + ms;
}

static int json_time(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15)
        *out = (int64_t)v->valuedouble;
    else if (cJSON_IsString(v))
        *out = parse_rfc3339(v->valuestring);
    else
        return -1;
    return *out >= 0 ? 0 : -1;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
    if (strlen(s) != 36)
        return -1;
    for (int i = 0, j = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        int c = s[i], v = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (v < 0)
            return -1;
        out[j / 2] = (uint8_t)(j % 2 ? out[j / 2] | v : v << 4);
        j++;
    }
    return 0;
}

/* Properties: strings, numbers and booleans; nested objects and arrays as JSON text. */
static int json_props(ue_event_t *ev, const cJSON *props, size_t *size, char *err, size_t errsz)
{
    const cJSON *p;
    if (props && !cJSON_IsObject(props) && !cJSON_IsNull(props)) {
        snprintf(err, errsz, "properties: an object expected");
        return -1;
    }
    for (p = props ? props->child : NULL; p; p = p->next) {
        ue_err_t rc = UE_OK;
        const char *k = p->string;
        *size += strlen(k) + 16;
        if (!*k || !utf8_ok(k)) {
            rc = UE_ERR_INVALID_ARG;
        } else if (cJSON_IsString(p)) {
            *size += strlen(p->valuestring);
            rc = utf8_ok(p->valuestring) ? ue_event_prop_string(ev, k, p->valuestring)
                                         : UE_ERR_INVALID_ARG;
        } else if (cJSON_IsBool(p)) {
            rc = ue_event_prop_bool(ev, k, cJSON_IsTrue(p));
        } else if (cJSON_IsNumber(p)) {
            double d = p->valuedouble;
            rc = d == floor(d) && fabs(d) < 9e15 ? ue_event_prop_int(ev, k, (int64_t)d)
                                                 : ue_event_prop_double(ev, k, d);
        } else if (cJSON_IsObject(p) || cJSON_IsArray(p)) {
            char *text = cJSON_PrintUnformatted(p);
            *size += text ? strlen(text) : 0;
            rc = text && utf8_ok(text) ? ue_event_prop_string(ev, k, text) : UE_ERR_INVALID_ARG;
            free(text);
        }
        if (rc != UE_OK) {
            snprintf(err, errsz, "properties.%.64s: invalid key or value", k);
            return -1;
        }
    }
    return 0;
}

/* Context: "app.name": "x" or {"app": {"name": "x"}}; unknown fields are ignored. */
static int json_context(ue_event_t *ev, const cJSON *ctx, int *has_ip, int *has_ua, size_t *size,
                        char *err, size_t errsz)
{
    const cJSON *c, *sub;
    char name[128], num[32];
    if (ctx && !cJSON_IsObject(ctx) && !cJSON_IsNull(ctx)) {
        snprintf(err, errsz, "context: an object expected");
        return -1;
    }
    for (c = ctx ? ctx->child : NULL; c; c = c->next) {
        const cJSON *items = cJSON_IsObject(c) ? c->child : c;
        for (sub = items; sub; sub = cJSON_IsObject(c) ? sub->next : NULL) {
            if (cJSON_IsObject(c))
                snprintf(name, sizeof(name), "%s.%s", c->string, sub->string);
            else
                snprintf(name, sizeof(name), "%s", c->string);
            const char *v = cJSON_IsString(sub) ? sub->valuestring : NULL;
            if (cJSON_IsNumber(sub)) {
                snprintf(num, sizeof(num), "%.0f", sub->valuedouble);
                v = num;
            }
            if (!v)
                continue;
            *size += strlen(v) + 4;
            if (!utf8_ok(v)) {
                snprintf(err, errsz, "context.%.64s: not valid UTF-8", name);
                return -1;
            }
            if (ue_event_set_context(ev, name, v) == UE_OK) {
                *has_ip |= strcmp(name, "ip") == 0;
                *has_ua |= strcmp(name, "user_agent") == 0;
            } else if (!strncmp(name, "screen.", 7)) {
                snprintf(err, errsz, "context.%s: a whole number of pixels expected", name);
                return -1;
            }
        }
    }
    return 0;
}

static const char *json_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Builds @p ev from one JSON event; *@p size estimates its encoded size. 0 or -1. */
static int build_json(ue_event_t *ev, const cJSON *o, const stamp_t *st, size_t *size, char *err,
                      size_t errsz)
{
    const char *type = json_string(o, "type"), *id = json_string(o, "event_id");
    const char *uid = json_string(o, "user_id"), *anon = json_string(o, "anonymous_id");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "timestamp");
    int64_t t = st->received_at;
    int has_ip = 0, has_ua = 0;
    uint8_t bin[16];
    *size = 64;
    if (!cJSON_IsObject(o) || !type || ue_event_reset(ev, type) != UE_OK) {
        snprintf(err, errsz, "type: missing or invalid ([A-Za-z0-9._-], 1..200 characters)");
        return -1;
    }
    if (id && parse_uuid(id, bin)) {
        snprintf(err, errsz, "event_id: a UUID (8-4-4-4-12 hex) expected");
        return -1;
    }
    if (id)
        ue_event_set_event_id(ev, bin);
    if ((!uid || !*uid) && (!anon || !*anon)) {
        snprintf(err, errsz, "user_id or anonymous_id is required");
        return -1;
    }
    const cJSON *sent = cJSON_GetObjectItemCaseSensitive(o, "sent_at");
    int64_t sent_at; /* checked only: the SDK stamps its own sent_at when it publishes */
    if ((ts && !cJSON_IsNull(ts) && json_time(ts, &t)) ||
        (sent && !cJSON_IsNull(sent) && json_time(sent, &sent_at))) {
        snprintf(err, errsz, "timestamp/sent_at: Unix ms or RFC 3339 expected");
        return -1;
    }
    *size += (uid ? strlen(uid) : 0) + (anon ? strlen(anon) : 0);
    if (set_str(ev, ue_event_set_user_id, uid, "user_id", err, errsz) ||
        set_str(ev, ue_event_set_anonymous_id, anon, "anonymous_id", err, errsz) ||
        set_str(ev, ue_event_set_session_id, json_string(o, "session_id"), "session_id", err,
                errsz) ||
        json_props(ev, cJSON_GetObjectItemCaseSensitive(o, "properties"), size, err, errsz) ||
        json_context(ev, cJSON_GetObjectItemCaseSensitive(o, "context"), &has_ip, &has_ua, size,
                     err, errsz))
        return -1;
    ue_event_set_timestamp_ms(ev, t);
    return apply_stamp(ev, st, has_ip, has_ua);
}

/* ---- batches ------------------------------------------------------------------------------ */

typedef struct batch {
    Userevents__EventBatch *pb;
    Userevents__Event **events; /* each element of pb, decoded */
    cJSON *json;
    const cJSON *items; /* the JSON array of events */
    size_t n;
} batch_t;

static void batch_free(batch_t *b)
{
    for (size_t i = 0; b->events && i < b->n; i++)
        if (b->events[i])
            userevents__event__free_unpacked(b->events[i], NULL);
    free(b->events);
    if (b->pb)
        userevents__event_batch__free_unpacked(b->pb, NULL);
    cJSON_Delete(b->json);
}

static int too_many(collector_t *col, size_t n, char *err, size_t errsz)
{
    if (n <= col->max_events)
        return 200;
    snprintf(err, errsz, "%zu events in one batch, over the limit of %zu", n, col->max_events);
    return 413;
}

/* Decodes the body into @p b: 200, or 400 / 413 with the reason in @p err. */
static int decode_batch(collector_t *col, const uint8_t *data, size_t len, int json, batch_t *b,
                        char *err, size_t errsz)
{
    if (json) {
        b->json = cJSON_ParseWithLength((const char *)data, len);
        b->items =
            cJSON_IsObject(b->json) ? cJSON_GetObjectItemCaseSensitive(b->json, "batch") : b->json;
        if (!cJSON_IsArray(b->items)) {
            snprintf(err, errsz, "not JSON, or neither an array nor {\"batch\": [...]}");
            return 400;
        }
        b->n = (size_t)cJSON_GetArraySize(b->items);
        return too_many(col, b->n, err, errsz);
    }
    b->pb = userevents__event_batch__unpack(NULL, len, data);
    if (!b->pb) {
        snprintf(err, errsz, "not a userevents.EventBatch (proto/collector.proto)");
        return 400;
    }
    b->n = b->pb->n_events;
    if (too_many(col, b->n, err, errsz) != 200)
        return 413;
    b->events = calloc(b->n + 1, sizeof(*b->events));
    for (size_t i = 0; b->events && i < b->n; i++) {
        const ProtobufCBinaryData *e = &b->pb->events[i];
        if (e->len > col->max_event) {
            snprintf(err, errsz, "events[%zu]: %zu bytes, over the limit of %zu", i, e->len,
                     col->max_event);
            return 413;
        }
        b->events[i] = userevents__event__unpack(NULL, e->len, e->data);
        if (!b->events[i]) {
            snprintf(err, errsz, "events[%zu]: not a userevents.Event", i);
            return 400;
        }
    }
    return b->events ? 200 : 503;
}

/*
 * Builds every event of the batch: pass 1 (@p track 0) only checks, so that a batch with one
 * bad event publishes nothing; pass 2 tracks. Returns 200, or 400 / 413 / 503 with @p err.
 */
static int each_event(collector_t *col, batch_t *b, const stamp_t *st, int track, size_t *tracked,
                      char *err, size_t errsz)
{
    ue_event_t *ev = ue_event_new("event");
    const cJSON *item = b->json ? b->items->child : NULL;
    char why[256];
    int status = ev ? 200 : 503;
    for (size_t i = 0; i < b->n && status == 200; i++) {
        size_t size = 0;
        int rc = b->json ? build_json(ev, item, st, &size, why, sizeof(why))
                         : build_pb(ev, b->events[i], st, why, sizeof(why));
        if (b->json)
            item = item->next;
        if (rc) {
            snprintf(err, errsz, "events[%zu]: %s", i, why);
            status = 400;
        } else if (size > col->max_event) {
            snprintf(err, errsz, "events[%zu]: about %zu bytes, over the limit of %zu", i, size,
                     col->max_event);
            status = 413;
        } else if (track) {
            ue_err_t e = ue_track(col->ue, ev);
            if (e == UE_OK)
                (*tracked)++;
            snprintf(err, errsz, "events[%zu]: %s", i, ue_err2str(e));
            status = e == UE_OK ? 200 : e == UE_ERR_TOO_LARGE ? 413 : 503;
        }
    }
    ue_event_destroy(ev);
    return status;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

static const char *status_code(int status)
{
    switch (status) {
    case 400: return "invalid";
    case 413: return "too_large";
    default: return "unavailable";
    }
}

/* Checks, publishes and answers for the whole body of one POST. */
static enum MHD_Result handle_batch(collector_t *col, struct MHD_Connection *conn, request_t *rq)
{
    char err[512];
    uint8_t *data = rq->body, *decoded = NULL;
    size_t len = rq->len, tracked = 0;
    batch_t b = {0};
    stamp_t st = {.received_at = rq->received_at};

    atomic_fetch_add(&col->bytes, (int64_t)rq->seen);
    if (rq->seen > col->max_body) {
        snprintf(err, sizeof(err), "body over %zu bytes", col->max_body);
        return fail(col, conn, 413, "too_large", err, 0);
    }
    if (rq->encoding) {
        int rc = (rq->encoding == 1 ? gunzip : unzstd)(rq->body, rq->len, col->max_decoded,
                                                       &decoded, &len);
        data = decoded;
        if (rc != DEC_OK) {
            free(decoded);
            if (rc == DEC_TOO_LARGE)
                snprintf(err, sizeof(err), "decompressed body over %zu bytes", col->max_decoded);
            else
                snprintf(err, sizeof(err), "body is not valid %s",
                         rq->encoding == 1 ? "gzip/zlib" : "zstd");
            return fail(col, conn, rc == DEC_TOO_LARGE ? 413 : 400,
                        rc == DEC_TOO_LARGE ? "too_large" : "invalid", err, 0);
        }
    }
    client_ip(conn, st.ip, sizeof(st.ip));
    if (rq->json)
        st.user_agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    int status =
        decode_batch(col, data ? data : (const uint8_t *)"", len, rq->json, &b, err, sizeof(err));
    if (status == 200)
        status = each_event(col, &b, &st, 0, &tracked, err, sizeof(err));
    if (status == 200)
        status = each_event(col, &b, &st, 1, &tracked, err, sizeof(err));
    /* Tracked events go on either way; the answer waits until they are safe. */
    ue_err_t safe = tracked ? ue_flush_spooled(col->ue, col->ack_timeout_ms) : UE_OK;
    if (status == 200 && safe != UE_OK) {
        snprintf(err, sizeof(err), "events not safe yet: %s", ue_err2str(safe));
        status = 503;
    }
    batch_free(&b);
    free(decoded);
    atomic_fetch_add(&col->events, (int64_t)tracked);
    metric_observe(col->m_batch_seconds, NULL, (double)(mono_ns() - rq->started_ns) / 1e9);
    if (status == 200)
        metric_observe(col->m_batch_events, NULL, (double)tracked);
    if (status != 200)
        return fail(col, conn, status, status_code(status), err, status == 503 ? 1 : 0);
    snprintf(err, sizeof(err), "{\"accepted\":%zu}", tracked);
    if (col->verbose)
        fprintf(stderr, "ue-collector: status=200 events=%zu bytes=%zu\n", tracked, rq->seen);
    return answer(col, conn, 200, err, "application/json", 0);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

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
    if (!strcmp(url, "/metrics"))
        return metrics(col, conn);
    if (strcmp(url, "/v1/batch"))
        return fail(col, conn, 404, "not_found", "POST /v1/batch, GET /healthz, GET /metrics", 0);
    if (strcmp(method, "POST"))
        return fail(col, conn, 405, "method_not_allowed", "POST a batch", 0);
    if (atomic_load(&col->draining))
        return fail(col, conn, 503, "unavailable", "shutting down: send again", 1);
    api_key_t *key = col->no_auth ? NULL : find_key(col, conn);
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

/* Keeps the body up to --max-body; past it, counts and discards (413 at the end). */
static enum MHD_Result take_body(collector_t *col, request_t *rq, const char *data, size_t len)
{
    rq->seen += len;
    if (rq->seen > col->max_body) {
        free(rq->body);
        rq->body = NULL;
        rq->len = rq->cap = 0;
        return rq->seen > 8 * col->max_body ? MHD_NO : MHD_YES; /* far past: hang up */
    }
    if (rq->len + len > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 16384;
        while (cap < rq->len + len)
            cap *= 2;
        uint8_t *p = realloc(rq->body, cap);
        if (!p)
            return MHD_NO;
        rq->body = p;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, len);
    rq->len += len;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
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
        return begin(col, conn, url, method, rq);
    }
    if (*upload_size) {
        size_t len = *upload_size;
        *upload_size = 0;
        return rq->is_batch ? take_body(col, rq, upload_data, len) : MHD_YES;
    }
    return rq->is_batch ? handle_batch(col, conn, rq) : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    collector_t *col = cls;
    request_t *rq = *ctx;
    (void)conn;
    (void)toe;
    if (!rq)
        return;
    if (rq->is_batch)
        atomic_fetch_sub(&col->active, 1);
    free(rq->body);
    free(rq);
    *ctx = NULL;
}

/* ---- the program --------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ue-collector [options]\n"
        "  -b, --bootstrap HOSTS      Kafka bootstrap servers (or env KAFKA_BOOTSTRAP)\n"
        "  -l, --listen ADDR          address to listen on (default 127.0.0.1; :: or 0.0.0.0 "
        "for all)\n"
        "  -p, --port N               port (default 8080; 0 = pick a free one; the first line "
        "printed names it)\n"
        "  -s, --spool DIR            spool of accepted events (default ./ue-collector-spool); "
        "'' = none:\n"
        "                             then 200 waits for Kafka's acknowledgement\n"
        "      --no-fsync             do not fdatasync the spool (safe from crashes, not power "
        "loss)\n"
        "  -k, --api-key KEY          accept this key (repeatable)\n"
        "  -K, --api-keys FILE        keys, one per line: KEY [RATE [BURST]]\n"
        "      --no-auth              accept requests without a key (trusted networks only)\n"
        "      --rate N, --burst N    requests per second and burst per key (default 100, 200; "
        "0 = no limit)\n"
        "      --max-body BYTES       largest request body as sent (default 1048576)\n"
        "      --max-decoded BYTES    largest body after decompression (default 8388608)\n"
        "      --max-event-bytes N    largest event (default 1000000)\n"
        "      --max-events N         most events in one batch (default 10000)\n"
        "      --ack-timeout-ms MS    longest wait for events to be safe before 503 (default "
        "10000)\n"
        "      --drain-timeout-ms MS  on SIGTERM, longest wait for requests in progress "
        "(default 10000)\n"
        "      --max-connections N    concurrent connections, one thread each (default 256)\n"
        "      --metrics-port N       also serve GET /metrics on port N (0: a free one, logged)\n"
        "      --metrics-listen ADDR  address of that port (default 127.0.0.1)\n"
        "  -X, --set KEY=VALUE        libuserevents property, e.g. topic.template=events.{type}\n"
        "  -v, --verbose              one log line per request\n"
        "  -h, --help                 this help\n"
        "POST /v1/batch (protobuf userevents.EventBatch or JSON; identity, gzip or zstd), "
        "GET /healthz, GET /metrics.\n");
}

static int set_conf(ue_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];
    if (ue_conf_set(conf, key, value, errstr, sizeof(errstr)) != UE_CONF_OK) {
        fprintf(stderr, "ue-collector: %s\n", errstr);
        return -1;
    }
    return 0;
}

static int set_kv(ue_conf_t *conf, const char *kv)
{
    char key[256];
    const char *eq = strchr(kv, '=');
    if (!eq || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "ue-collector: expected KEY=VALUE, got \"%s\"\n", kv);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    return set_conf(conf, key, eq + 1);
}

/* Everything the command line sets, before it is copied into the collector. */
typedef struct options {
    const char *bootstrap, *listen, *spool, *metrics_listen;
    long long port, drain_ms, max_conn, rate, burst, max_body, max_decoded, max_event, max_events,
        ack_ms, metrics_port;
} options_t;

enum {
    NO_FSYNC = 256,
    NO_AUTH,
    RATE,
    BURST,
    MAX_BODY,
    MAX_DEC,
    MAX_EV,
    MAX_EVS,
    ACK,
    DRAIN,
    CONN,
    METRICS_PORT,
    METRICS_LISTEN
};

/* clang-format off */
static const struct option OPTIONS[] = {
    {"bootstrap", 1, 0, 'b'}, {"listen", 1, 0, 'l'}, {"port", 1, 0, 'p'}, {"spool", 1, 0, 's'},
    {"no-fsync", 0, 0, NO_FSYNC}, {"api-key", 1, 0, 'k'}, {"api-keys", 1, 0, 'K'},
    {"no-auth", 0, 0, NO_AUTH}, {"rate", 1, 0, RATE}, {"burst", 1, 0, BURST},
    {"max-body", 1, 0, MAX_BODY}, {"max-decoded", 1, 0, MAX_DEC},
    {"max-event-bytes", 1, 0, MAX_EV}, {"max-events", 1, 0, MAX_EVS},
    {"ack-timeout-ms", 1, 0, ACK}, {"drain-timeout-ms", 1, 0, DRAIN},
    {"max-connections", 1, 0, CONN}, {"set", 1, 0, 'X'}, {"verbose", 0, 0, 'v'},
    {"metrics-port", 1, 0, METRICS_PORT}, {"metrics-listen", 1, 0, METRICS_LISTEN},
    {"help", 0, 0, 'h'}, {0, 0, 0, 0}};

/* The numeric options: where each goes and its range. */
static const struct {
    int code;
    long long min, max;
    size_t offset;
} NUMBERS[] = {
    {'p', 0, 65535, offsetof(options_t, port)},
    {RATE, 0, 1000000, offsetof(options_t, rate)},
    {BURST, 1, 1000000, offsetof(options_t, burst)},
    {MAX_BODY, 1, 1LL << 32, offsetof(options_t, max_body)},
    {MAX_DEC, 1, 1LL << 32, offsetof(options_t, max_decoded)},
    {MAX_EV, 64, 16 << 20, offsetof(options_t, max_event)},
    {MAX_EVS, 1, 10000000, offsetof(options_t, max_events)},
    {ACK, 1, 3600000, offsetof(options_t, ack_ms)},
    {DRAIN, 0, 3600000, offsetof(options_t, drain_ms)},
    {CONN, 1, 100000, offsetof(options_t, max_conn)},
    {METRICS_PORT, 0, 65535, offsetof(options_t, metrics_port)},
};
/* clang-format on */

/* Parses the value of numeric option @p code; 0, 1 (not a numeric option) or -1. */
static int number(options_t *o, int code, const char *text)
{
    for (size_t i = 0; i < sizeof(NUMBERS) / sizeof(NUMBERS[0]); i++) {
        if (NUMBERS[i].code != code)
            continue;
        char *end;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end || v < NUMBERS[i].min || v > NUMBERS[i].max) {
            fprintf(stderr, "ue-collector: expected a number in %lld..%lld, got \"%s\"\n",
                    NUMBERS[i].min, NUMBERS[i].max, text);
            return -1;
        }
        *(long long *)((char *)o + NUMBERS[i].offset) = v;
        return 0;
    }
    return 1;
}

/* Parses the command line into @p o, @p col (keys) and @p conf (-X). 0, 1 (--help) or -1. */
static int parse_args(int argc, char **argv, options_t *o, collector_t *col, ue_conf_t *conf)
{
    const char *keys[64], *key_files[16];
    int nkeys = 0, nfiles = 0, c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "b:l:p:s:k:K:X:vh", OPTIONS, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 'l': o->listen = optarg; break;
        case METRICS_LISTEN: o->metrics_listen = optarg; break;
        case 's': o->spool = optarg; break;
        case NO_FSYNC: bad = set_conf(conf, "spool.fsync", "false"); break;
        case 'k':
            bad = nkeys == 64;
            keys[bad ? 0 : nkeys++] = optarg;
            break;
        case 'K':
            bad = nfiles == 16;
            key_files[bad ? 0 : nfiles++] = optarg;
            break;
        case NO_AUTH: col->no_auth = 1; break;
        case 'X': bad = set_kv(conf, optarg); break;
        case 'v': col->verbose = 1; break;
        case 'h': usage(stdout); return 1;
        default:
            if (c == '?' || number(o, c, optarg) != 0) {
                usage(stderr);
                return -1;
            }
        }
    }
    col->rate = (double)o->rate; /* keys given by flag take the global rate, files their own */
    col->burst = (double)o->burst;
    for (int i = 0; !bad && i < nkeys; i++)
        bad = add_key(col, keys[i], col->rate, col->burst);
    for (int i = 0; !bad && i < nfiles; i++)
        bad = load_keys(col, key_files[i]);
    if (!bad && !col->nkeys && !col->no_auth)
        fprintf(stderr, "ue-collector: no API key: pass --api-key, --api-keys FILE, or "
                        "--no-auth on a trusted network\n");
    if (!bad && !o->bootstrap)
        fprintf(stderr, "ue-collector: no broker: pass -b HOST:PORT or set KAFKA_BOOTSTRAP\n");
    return bad || (!col->nkeys && !col->no_auth) || !o->bootstrap ? -1 : 0;
}

/* The collector's own client: a spool, fsync'd, and ue_track() waits for room rather than
 * dropping. -X may change any of that, except the three settings that have their own flags. */
static ue_client_t *open_client(const options_t *o, ue_conf_t *conf)
{
    char errstr[512], bytes[32];
    long long max = o->max_event + 65536; /* room for received_at, ip and user agent */
    snprintf(bytes, sizeof(bytes), "%lld", max < (16 << 20) ? max : (16 << 20));
    if (set_conf(conf, "kafka.bootstrap.servers", o->bootstrap) ||
        set_conf(conf, "spool.dir", o->spool) || set_conf(conf, "event.max.bytes", bytes))
        return NULL;
    ue_client_t *ue = ue_client_new(conf, errstr, sizeof(errstr));
    if (!ue)
        fprintf(stderr, "ue-collector: %s\n", errstr);
    return ue;
}

static struct MHD_Daemon *start_http(const options_t *o, collector_t *col)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, o->listen, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->listen, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "ue-collector: --listen: not an IP address: %s\n", o->listen);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, col, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, col, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_conn, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!d)
        fprintf(stderr, "ue-collector: cannot listen on %s port %lld\n", o->listen, o->port);
    return d;
}

/* ---- /metrics ------------------------------------------------------------------------------ */

/* Copies the lock-free counters of the request threads into the registry, at each scrape. */
static void collect(metrics_t *m, void *opaque)
{
    collector_t *col = opaque;
    char code[8];
    (void)m;
    for (int i = 0; i < ST_CNT; i++) {
        snprintf(code, sizeof(code), "%d", STATUS[i]);
        metric_set(col->m_answers, (const char *[]){code}, (double)atomic_load(&col->answers[i]));
    }
    metric_set(col->m_events, NULL, (double)atomic_load(&col->events));
    metric_set(col->m_bytes, NULL, (double)atomic_load(&col->bytes));
    metric_set(col->m_active, NULL, atomic_load(&col->active));
}

/* The registry behind GET /metrics (on the collector's port, and on --metrics-port when
 * given); @p spool_max: the client's spool.max.bytes. 0, or -1 with a message. */
static int start_metrics(const options_t *o, collector_t *col, int64_t spool_max)
{
    metrics_t *m = col->metrics = metrics_new();
    col->m_answers = metrics_counter(m, "userevents_collector_http_responses_total",
                                     "Answers sent, by HTTP status code.", "code");
    col->m_events = metrics_counter(m, "userevents_collector_events_in_total",
                                    "Events accepted (safe in the spool, or acknowledged).", NULL);
    col->m_bytes = metrics_counter(m, "userevents_collector_received_bytes_total",
                                   "Bytes of batch bodies received, as sent.", NULL);
    col->m_active = metrics_gauge(m, "userevents_collector_requests_in_progress",
                                  "Batches being received or processed.", NULL);
    col->m_batch_events = metrics_histogram(m, "userevents_collector_batch_events",
                                            "Events per accepted batch.", NULL,
                                            METRICS_SIZE_BUCKETS, METRICS_SIZE_BUCKETS_N);
    col->m_batch_seconds = metrics_histogram(
        m, "userevents_collector_request_duration_seconds",
        "POST /v1/batch from its headers to the answer (the events safe, for a 200).", NULL,
        METRICS_SECONDS_BUCKETS, METRICS_SECONDS_BUCKETS_N);
    col->sdk = m ? sdk_metrics_new(m, spool_max) : NULL;
    if (!col->m_answers || !col->m_events || !col->m_bytes || !col->m_active ||
        !col->m_batch_events || !col->m_batch_seconds || !col->sdk ||
        metrics_on_collect(m, collect, col)) {
        fprintf(stderr, "ue-collector: metrics: out of memory\n");
        return -1;
    }
    if (o->metrics_port < 0)
        return 0;
    char errstr[256];
    int port = metrics_serve(m, o->metrics_listen, (int)o->metrics_port, errstr, sizeof(errstr));
    if (port < 0)
        fprintf(stderr, "ue-collector: %s\n", errstr);
    else
        fprintf(stderr, "ue-collector: metrics on http://%s:%d/metrics\n", o->metrics_listen,
                port);
    return port < 0 ? -1 : 0;
}

/* The client's spool cap, shown beside the spool's size. */
static int64_t spool_max_bytes(const ue_conf_t *conf)
{
    char value[32];
    size_t size = sizeof(value);
    if (ue_conf_get(conf, "spool.max.bytes", value, &size) != UE_CONF_OK)
        return 0;
    return strtoll(value, NULL, 10);
}

/* SIGTERM: refuse new batches, let those in progress finish, then stop. */
static void drain(struct MHD_Daemon *d, collector_t *col, long long drain_ms)
{
    atomic_store(&col->draining, 1);
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    int64_t until = mono_ns() + drain_ms * 1000000;
    while (atomic_load(&col->active) > 0 && mono_ns() < until)
        usleep(10000);
    MHD_stop_daemon(d);
}

/* The collector's defaults of its client's settings, before -X may change them. */
static ue_conf_t *default_conf(void)
{
    ue_conf_t *conf = ue_conf_new();
    if (conf &&
        (set_conf(conf, "spool.fsync", "true") || set_conf(conf, "queue.full.policy", "block") ||
         set_conf(conf, "queue.block.timeout.ms", "1000") ||
         set_conf(conf, "kafka.statistics.interval.ms", "5000"))) { /* broker health */
        ue_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int main(int argc, char **argv)
{
    static collector_t col;
    options_t o = {.bootstrap = getenv("KAFKA_BOOTSTRAP"),
                   .listen = "127.0.0.1",
                   .metrics_listen = "127.0.0.1",
                   .metrics_port = -1,
                   .spool = "ue-collector-spool",
                   .port = 8080,
                   .drain_ms = 10000,
                   .max_conn = 256,
                   .rate = 100,
                   .burst = 200,
                   .max_body = 1 << 20,
                   .max_decoded = 8 << 20,
                   .max_event = 1000000,
                   .max_events = 10000,
                   .ack_ms = 10000};
    ue_conf_t *conf = default_conf();
    sigset_t stop;
    int sig, rc = conf ? parse_args(argc, argv, &o, &col, conf) : -1;
    if (rc) {
        ue_conf_destroy(conf);
        return rc > 0 ? 0 : 2;
    }
    col.max_body = (size_t)o.max_body;
    col.max_decoded = (size_t)o.max_decoded;
    col.max_event = (size_t)o.max_event;
    col.max_events = (size_t)o.max_events;
    col.ack_timeout_ms = (int)o.ack_ms;
    /* Signals are taken by sigwait() in main only: every thread created later blocks them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (start_metrics(&o, &col, spool_max_bytes(conf))) {
        ue_conf_destroy(conf);
        return 1;
    }
    col.ue = open_client(&o, conf);
    if (!col.ue) {
        ue_conf_destroy(conf);
        return 1;
    }
    sdk_metrics_attach(col.sdk, col.ue);
    struct MHD_Daemon *d = start_http(&o, &col);
    if (!d) {
        metrics_stop(col.metrics);
        ue_client_destroy(col.ue);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("ue-collector: listening on %s port %u\n", o.listen, info ? info->port : 0);
    fflush(stdout);
    sigwait(&stop, &sig);
    fprintf(stderr, "ue-collector: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    drain(d, &col, o.drain_ms);
    metrics_stop(col.metrics); /* no scrape reads the client from here on */
    ue_client_destroy(col.ue); /* flushes; what is left stays in the spool */
    metrics_destroy(col.metrics);
    sdk_metrics_destroy(col.sdk);
    fprintf(stderr, "ue-collector: stopped; %lld event(s) accepted\n",
            (long long)atomic_load(&col.events));
    return 0;
}
