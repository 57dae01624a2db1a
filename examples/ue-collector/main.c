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
 *   GET  /metrics    on --metrics-port (a port not exposed to devices; on the public port
 *                    too only with --public-metrics: it names the brokers): Prometheus text,
 *                    userevents_collector_* (answers by status, events, batch sizes and
 *                    latencies) and userevents_sdk_* (its client's statistics and broker
 *                    health); see pkg/monitoring/.
 *
 * Answers: 200 {"accepted":N} only once every event of the batch is safe (written to the
 * collector's spool, fsync'd by default; or acknowledged by Kafka without a spool); 400 with a
 * JSON reason for a malformed body or an invalid event (nothing of that batch is published);
 * 401 unknown key; 413 body or decompressed body over its cap (zip bombs included), too many
 * events or a JSON body too costly to parse (both found before parsing), or an event over
 * --max-event-bytes; 415 unknown type or encoding; 429 with Retry-After past a key's rate; 503
 * with Retry-After while shutting down, when the requests in progress hold
 * --max-inflight-bytes of memory, or when the spool cannot take the events.
 * Event ids are kept (JSON events without one get one derived from the key, the body and the
 * event's index, so that a retry has the same ids: event_json.c); received_at is stamped; an
 * event timestamp further from it than --max-clock-skew-ms ahead or --max-event-age-ms behind
 * is 400.
 *
 * Built only from the public APIs: userevents.h, the schema (proto/), libmicrohttpd, cJSON,
 * zlib and zstd, and the programs' shared helpers (examples/common/). SIGTERM/SIGINT: stop
 * accepting, finish the requests in progress, flush to Kafka for shutdown.timeout.ms; what is
 * left waits in the spool for the next start.
 *
 * This file: the options, start-up, drain and /metrics; collector.h names the other parts.
 */
#include "collector.h"
#include "malloc_arenas.h"
#include "secret.h"

#include <arpa/inet.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
        "  -k, --api-key KEY          accept this key (repeatable; 16 to 256 characters). Give\n"
        "                             env:NAME or @FILE: a key on the command line is visible\n"
        "                             to every local user (a warning says so)\n"
        "  -K, --api-keys FILE        keys, one per line: KEY [RATE [BURST]]; whole-line #\n"
        "                             comments; the file must be mode 600 (or 400)\n"
        "      --no-auth              accept requests without a key (trusted networks only)\n"
        "      --rate N, --burst N    requests per second and burst per key (default 100, 200; "
        "0 = no limit)\n"
        "      --max-body BYTES       largest request body as sent (default 1048576)\n"
        "      --max-decoded BYTES    largest body after decompression (default 8388608)\n"
        "      --max-event-bytes N    largest event (default 1000000)\n"
        "      --max-events N         most events in one batch (default 10000)\n"
        "      --max-parse-bytes N    most memory a JSON body's parse may take, estimated before "
        "it\n"
        "                             is parsed (default 33554432; ~100 bytes per value)\n"
        "      --max-inflight-bytes N memory all requests together may hold: bodies, decompressed\n"
        "                             bodies, parse trees (default 67108864; past it: 503)\n"
        "      --max-clock-skew-ms MS an event's timestamp may be at most this far ahead of "
        "the\n"
        "                             collector's clock (default 86400000: 24 h); later: 400\n"
        "      --max-event-age-ms MS  and at most this far behind it (default 2592000000: 30 "
        "days)\n"
        "      --ack-timeout-ms MS    longest wait for events to be safe before 503 (default "
        "10000)\n"
        "      --drain-timeout-ms MS  on SIGTERM, longest wait for requests in progress "
        "(default 10000)\n"
        "      --max-connections N    open connections at most (default 1024)\n"
        "      --max-per-ip N         open connections from one address at most (default 32)\n"
        "      --threads N            threads serving the connections, with epoll (default 8; a\n"
        "                             batch being made safe holds its thread)\n"
        "      --header-timeout-ms MS a request's headers must arrive within MS of the\n"
        "                             connection or of the previous answer (default 10000)\n"
        "      --request-timeout-ms MS the whole request within MS (default 60000)\n"
        "      --idle-timeout-ms MS   close a connection silent for MS (default 30000)\n"
        "      --metrics-port N       serve GET /metrics on port N (0: a free one, logged)\n"
        "      --metrics-listen ADDR  address of that port (default 127.0.0.1)\n"
        "      --public-metrics       serve GET /metrics on the public port too (it names the\n"
        "                             brokers: off by default)\n"
        "      --tls-cert FILE        serve HTTPS with this PEM certificate chain ...\n"
        "      --tls-key FILE         ... and this PEM private key (mode 600 or 400)\n"
        "      --trusted-proxy ADDR   a proxy (repeatable, up to 16) whose X-Forwarded-For\n"
        "                             names the client address events are stamped with\n"
        "      --cors-origin ORIGIN   pages of ORIGIN (scheme://host[:port]; repeatable, up to\n"
        "                             16; * for any) may POST from a browser: CORS preflight\n"
        "                             and headers. A key may also come as ?key=KEY in the URL\n"
        "                             (navigator.sendBeacon cannot set headers)\n"
        "  -X, --set KEY=VALUE        libuserevents property, e.g. topic.template=events.{type};\n"
        "                             VALUE may be env:NAME or @FILE (for secrets:\n"
        "                             -X kafka.sasl.password=env:KAFKA_PASSWORD)\n"
        "  -v, --verbose              one log line per request\n"
        "  -h, --help                 this help\n"
        "POST /v1/batch (protobuf userevents.EventBatch or JSON; identity, gzip or zstd), "
        "GET /healthz.\n");
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

/* -X KEY=VALUE; VALUE may be env:NAME or @FILE (secret.h), and a secret given as it is warns. */
static int set_kv(ue_conf_t *conf, const char *kv)
{
    char key[256], flag[280];
    const char *eq = strchr(kv, '=');
    if (!eq || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "ue-collector: expected KEY=VALUE, got \"%s\"\n", kv);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    snprintf(flag, sizeof(flag), "-X %s", key);
    char *value = flag_value("ue-collector", flag, eq + 1, secret_key(key));
    int rc = value ? set_conf(conf, key, value) : -1;
    free(value);
    return rc;
}

/* The keys of --api-key flags (env:NAME, @FILE, or literal with a warning), at the global rate;
 * then the keys files. 0, or -1 after a message. */
static int add_keys(collector_t *col, const char *const *keys, int nkeys, const char *const *files,
                    int nfiles)
{
    int bad = 0;
    for (int i = 0; !bad && i < nkeys; i++) {
        char why[128], *key = flag_value("ue-collector", "--api-key", keys[i], 1);
        bad = !key || add_key(col, key, col->rate, col->burst, why, sizeof(why));
        if (key && bad)
            fprintf(stderr, "ue-collector: --api-key: %s\n", why);
        free(key);
    }
    for (int i = 0; !bad && i < nfiles; i++)
        bad = load_keys(col, files[i]);
    return bad ? -1 : 0;
}

/* Everything the command line sets, before it is copied into the collector. */
typedef struct options {
    const char *bootstrap, *listen, *spool, *metrics_listen, *tls_cert, *tls_key;
    long long port, drain_ms, max_conn, rate, burst, max_body, max_decoded, max_event, max_events,
        ack_ms, metrics_port, max_parse, max_inflight, per_ip, threads, header_ms, request_ms,
        idle_ms, max_skew_ms, max_age_ms;
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
    METRICS_LISTEN,
    MAX_PARSE,
    MAX_INFLIGHT,
    PER_IP,
    THREADS,
    HEADER_TIMEOUT,
    REQUEST_TIMEOUT,
    IDLE_TIMEOUT,
    PUBLIC_METRICS,
    MAX_SKEW,
    MAX_AGE,
    TLS_CERT,
    TLS_KEY,
    TRUSTED_PROXY,
    CORS_ORIGIN
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
    {"max-parse-bytes", 1, 0, MAX_PARSE}, {"max-inflight-bytes", 1, 0, MAX_INFLIGHT},
    {"max-per-ip", 1, 0, PER_IP}, {"threads", 1, 0, THREADS},
    {"header-timeout-ms", 1, 0, HEADER_TIMEOUT}, {"request-timeout-ms", 1, 0, REQUEST_TIMEOUT},
    {"idle-timeout-ms", 1, 0, IDLE_TIMEOUT}, {"public-metrics", 0, 0, PUBLIC_METRICS},
    {"max-clock-skew-ms", 1, 0, MAX_SKEW}, {"max-event-age-ms", 1, 0, MAX_AGE},
    {"tls-cert", 1, 0, TLS_CERT}, {"tls-key", 1, 0, TLS_KEY},
    {"trusted-proxy", 1, 0, TRUSTED_PROXY}, {"cors-origin", 1, 0, CORS_ORIGIN},
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
    {MAX_PARSE, 4096, 1LL << 34, offsetof(options_t, max_parse)},
    {MAX_INFLIGHT, 65536, 1LL << 36, offsetof(options_t, max_inflight)},
    {PER_IP, 1, 100000, offsetof(options_t, per_ip)},
    {THREADS, 1, 256, offsetof(options_t, threads)},
    {HEADER_TIMEOUT, 100, 3600000, offsetof(options_t, header_ms)},
    {REQUEST_TIMEOUT, 100, 3600000, offsetof(options_t, request_ms)},
    {IDLE_TIMEOUT, 1000, 3600000, offsetof(options_t, idle_ms)},
    {MAX_SKEW, 0, 1LL << 42, offsetof(options_t, max_skew_ms)},
    {MAX_AGE, 0, 1LL << 42, offsetof(options_t, max_age_ms)},
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
        case TLS_CERT: o->tls_cert = optarg; break;
        case TLS_KEY: o->tls_key = optarg; break;
        case TRUSTED_PROXY:
            if ((bad = col->ntrusted == 16 || canonical_ip(optarg, col->trusted[col->ntrusted])))
                fprintf(stderr, "ue-collector: --trusted-proxy: %s\n",
                        col->ntrusted == 16 ? "at most 16" : "not an IP address");
            else
                col->ntrusted++;
            break;
        case CORS_ORIGIN:
            if ((bad = col->ncors == 16 || !cors_origin_valid(optarg)))
                fprintf(stderr, "ue-collector: --cors-origin: %s\n",
                        col->ncors == 16 ? "at most 16"
                                         : "not * nor an origin (scheme://host[:port], no path)");
            else
                col->cors[col->ncors++] = optarg;
            break;
        case 's': o->spool = optarg; break;
        case NO_FSYNC: bad = set_conf(conf, "spool.fsync", "false"); break;
        case 'k':
            if ((bad = nkeys == 64))
                fprintf(stderr, "ue-collector: at most 64 --api-key flags (use --api-keys FILE)\n");
            else
                keys[nkeys++] = optarg;
            break;
        case 'K':
            if ((bad = nfiles == 16))
                fprintf(stderr, "ue-collector: at most 16 --api-keys files\n");
            else
                key_files[nfiles++] = optarg;
            break;
        case NO_AUTH: col->no_auth = 1; break;
        case PUBLIC_METRICS: col->public_metrics = 1; break;
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
    bad = bad || add_keys(col, keys, nkeys, key_files, nfiles);
    if (!bad && !col->nkeys && !col->no_auth)
        fprintf(stderr, "ue-collector: no API key: pass --api-key, --api-keys FILE, or "
                        "--no-auth on a trusted network\n");
    if (!bad && !o->bootstrap)
        fprintf(stderr, "ue-collector: no broker: pass -b HOST:PORT or set KAFKA_BOOTSTRAP\n");
    /* One request at its caps must fit, or it would get 503 for ever. */
    if (!bad && o->max_body + o->max_decoded + o->max_parse > o->max_inflight) {
        fprintf(stderr,
                "ue-collector: --max-inflight-bytes %lld cannot hold one request at its "
                "caps (--max-body + --max-decoded + --max-parse-bytes = %lld)\n",
                o->max_inflight, o->max_body + o->max_decoded + o->max_parse);
        bad = 1;
    }
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

/* libmicrohttpd's messages, at most one a second: a flood of refused connections (over the
 * limits) must not become a flood of log lines. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static _Atomic int64_t last_ns, skipped;
    int64_t now = mono_ns(), last = atomic_load(&last_ns);
    (void)cls;
    if (now - last < 1000000000 || !atomic_compare_exchange_strong(&last_ns, &last, now)) {
        atomic_fetch_add(&skipped, 1);
        return;
    }
    int64_t n = atomic_exchange(&skipped, 0);
    if (n)
        fprintf(stderr, "ue-collector: (%lld similar messages skipped)\n", (long long)n);
    fputs("ue-collector: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* Enough descriptors for --max-connections (the soft limit is often 1024): raised towards the
 * hard limit, with a warning when that is not enough. */
static void raise_fd_limit(long long max_conn)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_conn + 256; /* the spool, librdkafka's sockets, /metrics */
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr,
                "ue-collector: warning: %llu file descriptors for --max-connections "
                "%lld (raise ulimit -n)\n",
                (unsigned long long)rl.rlim_cur, max_conn);
}

/* Once draining, a new connection is closed as soon as it is accepted. Not
 * MHD_quiesce_daemon(): with a thread pool on epoll, libmicrohttpd 0.9.75 races its workers
 * to take the listening socket out of their epoll sets and aborts the process when it loses
 * ("Failed to remove listen FD from epoll set", seen in it_collector). */
static enum MHD_Result accept_unless_draining(void *cls, const struct sockaddr *addr,
                                              socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    return atomic_load(&((collector_t *)cls)->draining) ? MHD_NO : MHD_YES;
}

/* epoll in a pool of threads rather than a thread per connection: idle connections cost a
 * descriptor and a little memory, not a thread. */
static struct MHD_Daemon *start_http(const options_t *o, collector_t *col, const tls_files_t *tls)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
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
    raise_fd_limit(o->max_conn);
    /* HTTPS: the same daemon, with GnuTLS doing the handshake on the pool's threads. */
    struct MHD_OptionItem https[] = {
        {tls->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, tls->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (tls->cert)
        flags |= MHD_USE_TLS;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)o->port, accept_unless_draining, col, on_request, col,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, col, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        col, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((o->idle_ms + 999) / 1000),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_ARRAY, https, MHD_OPTION_END);
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
    metric_set(col->m_cut, NULL, (double)atomic_load(&col->cut));
}

/* The registry behind GET /metrics (on --metrics-port when given, and on the collector's port
 * with --public-metrics); @p spool_max: the client's spool.max.bytes. 0, or -1 with a message. */
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
    col->m_cut = metrics_counter(m, "userevents_collector_connections_timed_out_total",
                                 "Connections closed for sending their request's headers or "
                                 "body too slowly.",
                                 NULL);
    col->m_batch_events =
        metrics_histogram(m, "userevents_collector_batch_events", "Events per accepted batch.",
                          NULL, METRICS_SIZE_BUCKETS, METRICS_SIZE_BUCKETS_N);
    col->m_batch_seconds = metrics_histogram(
        m, "userevents_collector_request_duration_seconds",
        "POST /v1/batch from its headers to the answer (the events safe, for a 200).", NULL,
        METRICS_SECONDS_BUCKETS, METRICS_SECONDS_BUCKETS_N);
    col->sdk = m ? sdk_metrics_new(m, spool_max) : NULL;
    if (!col->m_answers || !col->m_events || !col->m_bytes || !col->m_active || !col->m_cut ||
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
        fprintf(stderr, "ue-collector: metrics on http://%s:%d/metrics\n", o->metrics_listen, port);
    return port < 0 ? -1 : 0;
}

/* The client's spool cap, shown beside the spool's size. */
static int64_t conf_int(const ue_conf_t *conf, const char *key)
{
    char value[32];
    size_t size = sizeof(value);
    if (ue_conf_get(conf, key, value, &size) != UE_CONF_OK)
        return 0;
    return strtoll(value, NULL, 10);
}

/* The client's queue as batch.c sees it: its bounds, and how long a batch waits for room. */
static void read_queue_conf(collector_t *col, const ue_conf_t *conf)
{
    col->queue_max_events = conf_int(conf, "queue.max.events");
    col->queue_max_bytes = conf_int(conf, "queue.max.bytes");
    col->room_wait_ms = conf_int(conf, "queue.block.timeout.ms");
    pthread_mutex_init(&col->track_lock, NULL);
}

/*
 * SIGTERM: refuse new batches, let those in progress finish for --drain-timeout-ms, then stop.
 * At that deadline no batch may start being tracked (its request gets 503, or loses its
 * connection, with nothing published); one already tracked is waited for until its answer is
 * sent, which --ack-timeout-ms bounds: stopping then would publish its events under no answer,
 * and its client would send them again.
 */
static void drain(struct MHD_Daemon *d, collector_t *col, long long drain_ms)
{
    atomic_store(&col->draining, 1); /* new connections closed, new batches 503 */
    int64_t until = mono_ns() + drain_ms * 1000000;
    while (atomic_load(&col->active) > 0 && mono_ns() < until)
        usleep(10000);
    pthread_mutex_lock(&col->track_lock);
    col->stop_tracking = 1;
    pthread_mutex_unlock(&col->track_lock);
    until = mono_ns() + ((int64_t)col->ack_timeout_ms + 5000) * 1000000;
    while (atomic_load(&col->publishing) > 0 && mono_ns() < until)
        usleep(10000);
    MHD_stop_daemon(d);
}

/* Large buffers (bodies, decompressed bodies) are mmap'ed, so that freeing one gives it back
 * to the system: glibc's threshold otherwise rises to the largest block freed (up to 32 MiB),
 * and blocks under it stay in the heap after the request. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
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
    malloc_arenas_limit(); /* before librdkafka starts its threads */
    static collector_t col;
    options_t o = {.bootstrap = getenv("KAFKA_BOOTSTRAP"),
                   .listen = "127.0.0.1",
                   .metrics_listen = "127.0.0.1",
                   .metrics_port = -1,
                   .spool = "ue-collector-spool",
                   .port = 8080,
                   .drain_ms = 10000,
                   .max_conn = 1024,
                   .per_ip = 32,
                   .threads = 8,
                   .header_ms = 10000,
                   .request_ms = 60000,
                   .idle_ms = 30000,
                   .rate = 100,
                   .burst = 200,
                   .max_body = 1 << 20,
                   .max_decoded = 8 << 20,
                   .max_event = 1000000,
                   .max_events = 10000,
                   .max_parse = 32 << 20,
                   .max_inflight = 64 << 20,
                   .ack_ms = 10000,
                   .max_skew_ms = 86400000,
                   .max_age_ms = 30LL * 86400000};
    ue_conf_t *conf = default_conf();
    sigset_t stop;
    tls_files_t tls;
    int sig, rc = conf ? parse_args(argc, argv, &o, &col, conf) : -1;
    if (!rc && tls_load(&tls, o.tls_cert, o.tls_key))
        rc = -1;
    if (rc) {
        ue_conf_destroy(conf);
        return rc > 0 ? 0 : 2;
    }
    col.max_body = (size_t)o.max_body;
    col.max_decoded = (size_t)o.max_decoded;
    col.max_event = (size_t)o.max_event;
    col.max_events = (size_t)o.max_events;
    col.max_parse = (size_t)o.max_parse;
    col.header_timeout_ms = o.header_ms;
    col.request_timeout_ms = o.request_ms;
    col.max_inflight = (size_t)o.max_inflight;
    col.ack_timeout_ms = (int)o.ack_ms;
    col.max_future_ms = o.max_skew_ms;
    col.max_past_ms = o.max_age_ms;
    tune_malloc();
    /* Signals are taken by sigwait() in main only: every thread created later blocks them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    read_queue_conf(&col, conf);
    if (start_metrics(&o, &col, conf_int(conf, "spool.max.bytes"))) {
        ue_conf_destroy(conf);
        return 1;
    }
    col.ue = open_client(&o, conf);
    if (!col.ue) {
        ue_conf_destroy(conf);
        return 1;
    }
    sdk_metrics_attach(col.sdk, col.ue);
    struct MHD_Daemon *d = conns_start(&col) ? NULL : start_http(&o, &col, &tls);
    if (!d) {
        metrics_stop(col.metrics);
        ue_client_destroy(col.ue);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("ue-collector: listening on %s port %u%s\n", o.listen, info ? info->port : 0,
           tls.cert ? " (HTTPS)" : "");
    fflush(stdout);
    sigwait(&stop, &sig);
    fprintf(stderr, "ue-collector: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    drain(d, &col, o.drain_ms);
    conns_stop(&col);
    metrics_stop(col.metrics); /* no scrape reads the client from here on */
    ue_client_destroy(col.ue); /* flushes; what is left stays in the spool */
    metrics_destroy(col.metrics);
    sdk_metrics_destroy(col.sdk);
    fprintf(stderr, "ue-collector: stopped; %lld event(s) accepted\n",
            (long long)atomic_load(&col.events));
    tls_free(&tls); /* after the daemon stopped: it reads them while it runs */
    return 0;
}
