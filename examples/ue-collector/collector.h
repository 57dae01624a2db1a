/*
 * collector.h - the parts of ue-collector, the HTTP ingest gateway, and what each offers the
 * others: keys.c (API keys, rate limits), body.c (capped decompression and the memory budget of
 * requests), json_scan.c (the bounds of a JSON body, checked before it is parsed), event.c,
 * event_pb.c and event_json.c (building events), batch.c (a batch: decoded, checked, tracked),
 * http.c (the request handlers and their answers), main.c (options, start-up, drain, /metrics).
 */
#ifndef UE_COLLECTOR_H
#define UE_COLLECTOR_H

#include "metrics.h"
#include "sdk_metrics.h"
#include "userevents.h"
#include "userevents.pb-c.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_KEYS 1024
#define KEY_MIN 16  /* shorter keys can be guessed */
#define KEY_MAX 256

/* ---- configuration and state ------------------------------------------------------------ */

typedef struct api_key {
    char *key;
    double rate, burst; /* requests per second and bucket size; rate 0: unlimited */
    double tokens;
    int64_t last_ns;
    pthread_mutex_t lock;
} api_key_t;

typedef struct conn conn_t; /* conns.c */

enum { ST_200, ST_400, ST_401, ST_404, ST_405, ST_413, ST_415, ST_429, ST_503, ST_CNT };
extern const int STATUS[ST_CNT]; /* the HTTP status of each ST_ */

typedef struct collector {
    ue_client_t *ue;
    api_key_t keys[MAX_KEYS];
    int nkeys, no_auth, verbose;
    double rate, burst;
    size_t max_body, max_decoded, max_event, max_events;
    size_t max_parse;    /* bytes a JSON body's parse tree may take (estimated before parsing) */
    size_t max_inflight; /* bytes all requests together may hold: bodies, decoded, trees */
    _Atomic size_t inflight;
    int64_t max_future_ms, max_past_ms; /* event times accepted around received_at */
    int ack_timeout_ms;
    int public_metrics; /* GET /metrics on the public port too (--public-metrics) */
    /* --trusted-proxy: peers whose X-Forwarded-For names the client (canonical text) */
    char trusted[16][INET6_ADDRSTRLEN];
    int ntrusted;
    /* --cors-origin: origins whose pages may POST from a browser; "*" any */
    const char *cors[16];
    int ncors;
    /* batch.c: batches are tracked one at a time, whole, while tracking is allowed; the
     * client's queue bounds (read at start) and the longest wait for room in it */
    pthread_mutex_t track_lock;
    int stop_tracking;       /* under track_lock: the drain deadline passed */
    _Atomic int publishing;  /* requests tracked whose answer is not sent yet */
    int64_t queue_max_events, queue_max_bytes, room_wait_ms;
    /* conns.c: the open connections and their deadlines */
    int64_t header_timeout_ms, request_timeout_ms;
    pthread_mutex_t conns_lock;
    conn_t *conns;
    pthread_t reaper;
    _Atomic int stopping;
    _Atomic int64_t cut; /* connections closed for missing a deadline */
    _Atomic int draining, active;
    _Atomic int64_t answers[ST_CNT], events, bytes;
    /* /metrics: the counters above are copied in at each scrape; batches are observed */
    metrics_t *metrics;
    sdk_metrics_t *sdk;
    metric_t *m_answers, *m_events, *m_bytes, *m_active, *m_batch_events, *m_batch_seconds,
        *m_cut;
} collector_t;

/* What the request adds to each of its events. */
typedef struct stamp {
    int64_t received_at;
    int64_t earliest, latest; /* event times accepted: received_at - max_past .. + max_future */
    char ip[INET6_ADDRSTRLEN];
    const char *user_agent; /* JSON (web) only */
    uint8_t id_seed[32];    /* JSON: the request's hash, for events sent without an id */
} stamp_t;

/* main.c: the wall clock (Unix ms, for received_at) and the monotonic one (durations). */
int64_t wall_ms(void);
int64_t mono_ns(void);

/* keys.c: the request's API key (NULL when unknown), its rate limit, and loading the keys. */
api_key_t *find_key(collector_t *col, struct MHD_Connection *conn);
int take_token(api_key_t *k);
int add_key(collector_t *col, const char *key, double rate, double burst, char *why,
            size_t why_size);
int load_keys(collector_t *col, const char *path);
/* -1 (said on stderr) when the file @p f at @p path is open to group or others. */
int file_private(FILE *f, const char *path);

/* cors.c: browsers' cross-origin requests (--cors-origin). */
/* 1 when @p origin is "*" or scheme://host[:port] with nothing after it. */
int cors_origin_valid(const char *origin);
/* Adds Access-Control-Allow-Origin (and Vary: Origin) to @p r when the request's Origin is
 * allowed; nothing otherwise (the browser then hides the answer from the page). */
void cors_headers(const collector_t *col, struct MHD_Connection *conn, struct MHD_Response *r);
/* 1 when the request is a CORS preflight (OPTIONS with an Origin and an
 * Access-Control-Request-Method) from an allowed origin: answer it with cors_preflight_answer. */
int cors_preflight(const collector_t *col, struct MHD_Connection *conn, const char *method);
/* Adds the preflight's headers: what a page may send to /v1/batch, cached 10 minutes. */
void cors_preflight_headers(struct MHD_Response *r);

/* http.c: @p text as a canonical IPv4 or IPv6 address into @p out; 0, or -1 if it is none. */
int canonical_ip(const char *text, char out[INET6_ADDRSTRLEN]);

/* tls.c: the certificate chain and private key HTTPS serves, PEM, read whole. */
typedef struct tls_files {
    char *cert, *key; /* NUL-terminated; NULL when HTTPS is off */
} tls_files_t;
int tls_load(tls_files_t *t, const char *cert_path, const char *key_path);
void tls_free(tls_files_t *t);

/* json_scan.c: bounds of a JSON body, counted byte by byte as it arrives (see the file). */
#define JSCAN_MAX_DEPTH 32
typedef struct jscan {
    size_t max_events, max_cost;
    size_t events, values, cost; /* cost: estimated bytes of cJSON's tree */
    uint64_t arrays;             /* bit d-1: level d is an array */
    int depth, key_next, in_string, in_scalar, escape;
    size_t str_len;
    unsigned uvalue; /* the \uXXXX being read */
    int status;      /* 0, or the answer (400, 413) once a bound is passed */
    char reason[128];
} jscan_t;
void jscan_init(jscan_t *js, size_t max_events, size_t max_cost);
int jscan_feed(jscan_t *js, const uint8_t *data, size_t len); /* 0, or js->status */

/* body.c: the memory budget (--max-inflight-bytes): takes @p n bytes for a request that holds
 * *@p held; 0, or -1 (nothing taken) when all requests together would hold more. */
int budget_take(collector_t *col, size_t *held, size_t n);
void budget_release(collector_t *col, size_t *held);

/* body.c: a decompressed body of at most @p max bytes, its buffer charged to the budget and
 * fed to @p scan (JSON; NULL for protobuf) as it grows. The caller frees @p data. */
typedef struct decoded {
    uint8_t *data;
    size_t len, cap, max;
    collector_t *col;
    size_t *held;
    jscan_t *scan;
} decoded_t;
/* DEC_OK; DEC_TOO_LARGE (over max: a bomb); DEC_BUSY (over the budget); DEC_REFUSED (the scan
 * refused it: scan->status and scan->reason); DEC_BAD (corrupt or truncated). */
enum { DEC_OK = 0, DEC_TOO_LARGE = 1, DEC_BUSY = 2, DEC_REFUSED = 3, DEC_BAD = -1 };
int gunzip(const uint8_t *in, size_t len, decoded_t *out);
int unzstd(const uint8_t *in, size_t len, decoded_t *out);

/* event.c: what both event builders share. */
int utf8_ok(const char *s);
int set_type(ue_event_t *ev, const char *type, char *err, size_t errsz);
int set_str(ue_event_t *ev, ue_err_t (*setter)(ue_event_t *, const char *), const char *v,
            const char *what, char *err, size_t errsz);
int apply_stamp(ue_event_t *ev, const stamp_t *st, int has_ip, int has_ua);
int check_time(int64_t t, const stamp_t *st, char *err, size_t errsz);

/* event_pb.c and event_json.c: build @p ev from one event of a batch; 0, or -1 with @p err. */
int build_pb(ue_event_t *ev, const Userevents__Event *e, const stamp_t *st, char *err,
             size_t errsz);
int build_json(ue_event_t *ev, const cJSON *o, size_t index, const stamp_t *st, size_t *size,
               char *err, size_t errsz);

/* event_json.c: the seed of the ids of a JSON request's events sent without one:
 * SHA-256 of the API key (its length first) and the decoded body. */
void json_id_seed(const char *key, const uint8_t *body, size_t len, uint8_t seed[32]);

/* batch.c */
int publish_batch(collector_t *col, const uint8_t *data, size_t len, int json, const stamp_t *st,
                  size_t *tracked, int *committed, char *err, size_t errsz);

/* conns.c: libmicrohttpd's connection notifications (@p cls the collector), the phase of a
 * request on its connection (its deadline: CONN_WAIT_HEADERS until the headers are in, then
 * CONN_WAIT_BODY until the body is, then CONN_HANDLING: none), and the thread that keeps the
 * deadlines. */
enum { CONN_WAIT_HEADERS, CONN_WAIT_BODY, CONN_HANDLING };
void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                   enum MHD_ConnectionNotificationCode toe);
void conn_phase(collector_t *col, struct MHD_Connection *conn, int phase);
int conns_start(collector_t *col);
void conns_stop(collector_t *col);

/* http.c: libmicrohttpd's handlers, @p cls the collector. */
enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_size, void **ctx);
void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                  enum MHD_RequestTerminationCode toe);

#endif
