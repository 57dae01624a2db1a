/*
 * collector.h - the parts of ue-collector, the HTTP ingest gateway, and what each offers the
 * others: keys.c (API keys, rate limits), body.c (capped decompression), event.c, event_pb.c and
 * event_json.c (building events), batch.c (a batch: decoded, checked, tracked), http.c (the
 * request handlers and their answers), main.c (options, start-up, drain, /metrics).
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

#define MAX_KEYS 1024

/* ---- configuration and state ------------------------------------------------------------ */

typedef struct api_key {
    char *key;
    double rate, burst; /* requests per second and bucket size; rate 0: unlimited */
    double tokens;
    int64_t last_ns;
    pthread_mutex_t lock;
} api_key_t;

enum { ST_200, ST_400, ST_401, ST_404, ST_405, ST_413, ST_415, ST_429, ST_503, ST_CNT };
extern const int STATUS[ST_CNT]; /* the HTTP status of each ST_ */

typedef struct collector {
    ue_client_t *ue;
    api_key_t keys[MAX_KEYS];
    int nkeys, no_auth, verbose;
    double rate, burst;
    size_t max_body, max_decoded, max_event, max_events;
    int64_t max_future_ms, max_past_ms; /* event times accepted around received_at */
    int ack_timeout_ms;
    _Atomic int draining, active;
    _Atomic int64_t answers[ST_CNT], events, bytes;
    /* /metrics: the counters above are copied in at each scrape; batches are observed */
    metrics_t *metrics;
    sdk_metrics_t *sdk;
    metric_t *m_answers, *m_events, *m_bytes, *m_active, *m_batch_events, *m_batch_seconds;
} collector_t;

/* What the request adds to each of its events. */
typedef struct stamp {
    int64_t received_at;
    int64_t earliest, latest; /* event times accepted: received_at - max_past .. + max_future */
    char ip[INET6_ADDRSTRLEN];
    const char *user_agent; /* JSON (web) only */
} stamp_t;

/* main.c: the wall clock (Unix ms, for received_at) and the monotonic one (durations). */
int64_t wall_ms(void);
int64_t mono_ns(void);

/* keys.c: the request's API key (NULL when unknown), its rate limit, and loading the keys. */
api_key_t *find_key(collector_t *col, struct MHD_Connection *conn);
int take_token(api_key_t *k);
int add_key(collector_t *col, const char *key, double rate, double burst);
int load_keys(collector_t *col, const char *path);

/* body.c: decompresses @p in into a new *@p out of at most @p max bytes (freed by the caller,
 * whatever the result). DEC_OK, DEC_TOO_LARGE (a bomb), or DEC_BAD (corrupt or truncated). */
enum { DEC_OK = 0, DEC_TOO_LARGE = 1, DEC_BAD = -1 };
int gunzip(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len);
int unzstd(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len);

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
int build_json(ue_event_t *ev, const cJSON *o, const stamp_t *st, size_t *size, char *err,
               size_t errsz);

/* batch.c */
int publish_batch(collector_t *col, const uint8_t *data, size_t len, int json, const stamp_t *st,
                  size_t *tracked, char *err, size_t errsz);

/* http.c: libmicrohttpd's handlers, @p cls the collector. */
enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_size, void **ctx);
void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                  enum MHD_RequestTerminationCode toe);

#endif
