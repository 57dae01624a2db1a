/*
 * metrics.c - the registry and the /metrics server of the programs (see metrics.h).
 *
 * Families hold their series in small arrays searched linearly: a program has tens of
 * families of a few series each (consumer lag: one per assigned partition), and scrapes come
 * every few seconds, so simplicity wins over hashing. Rendering builds the whole text in one
 * buffer that the HTTP response takes over.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLLECT 16

const double METRICS_SECONDS_BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,   30,  60};
const size_t METRICS_SECONDS_BUCKETS_N =
    sizeof(METRICS_SECONDS_BUCKETS) / sizeof(METRICS_SECONDS_BUCKETS[0]);
const double METRICS_SIZE_BUCKETS[] = {1, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000};
const size_t METRICS_SIZE_BUCKETS_N =
    sizeof(METRICS_SIZE_BUCKETS) / sizeof(METRICS_SIZE_BUCKETS[0]);

enum { COUNTER, GAUGE, HISTOGRAM };
static const char *const TYPE_NAMES[] = {"counter", "gauge", "histogram"};

typedef struct series {
    char **values;     /* one per label name; one allocation with the strings */
    double value;      /* counter, gauge; histogram: the sum */
    uint64_t count;    /* histogram: observations */
    uint64_t *buckets; /* histogram: observations per bucket (not cumulative) */
} series_t;

struct metric {
    metrics_t *owner;
    int type;
    char *name, *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    series_t *series;
    size_t nseries, cap;
};

struct metrics {
    pthread_mutex_t lock;        /* the families and their series */
    pthread_mutex_t scrape_lock; /* one rendering (with its collect callbacks) at a time */
    metric_t **families;
    size_t nfamilies, cap;
    struct {
        metrics_collect_fn *fn;
        void *opaque;
    } collect[MAX_COLLECT];
    size_t ncollect;
    struct MHD_Daemon *daemon;
};

/* ---- names ---------------------------------------------------------------------------------- */

static int name_ok(const char *s, int colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colon && *s == ':')))
            return 0;
    return 1;
}

/* Splits "a,b" into label names; 0, or -1 when one is invalid (or reserved). */
static int split_labels(metric_t *f, const char *labels)
{
    char *copy = labels ? strdup(labels) : NULL, *save = NULL;
    if (labels && !copy)
        return -1;
    int rc = 0;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !rc;
         t = strtok_r(NULL, ",", &save)) {
        char **grown = realloc(f->labels, (f->nlabels + 1) * sizeof(*grown));
        rc = !grown || !name_ok(t, 0) || !strncmp(t, "__", 2) ||
             (f->type == HISTOGRAM && !strcmp(t, "le"));
        if (grown)
            f->labels = grown;
        if (!rc && !(f->labels[f->nlabels++] = strdup(t)))
            rc = 1;
    }
    free(copy);
    return rc ? -1 : 0;
}

/* ---- families ------------------------------------------------------------------------------- */

static void family_free(metric_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nseries; i++) {
        free(f->series[i].values);
        free(f->series[i].buckets);
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->series);
    free(f->labels);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

/* The series of @p values, created when missing (lock held). NULL when out of memory. */
static series_t *series_get(metric_t *f, const char *const *values)
{
    for (size_t i = 0; i < f->nseries; i++) {
        size_t j = 0;
        while (j < f->nlabels && !strcmp(f->series[i].values[j], values[j] ? values[j] : ""))
            j++;
        if (j == f->nlabels)
            return &f->series[i];
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        series_t *grown = realloc(f->series, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        f->series = grown;
        f->cap = cap;
    }
    size_t size = f->nlabels * sizeof(char *);
    for (size_t j = 0; j < f->nlabels; j++)
        size += strlen(values[j] ? values[j] : "") + 1;
    series_t s = {.values = malloc(size ? size : 1)};
    if (f->type == HISTOGRAM)
        s.buckets = calloc(f->nbounds ? f->nbounds : 1, sizeof(uint64_t));
    if (!s.values || (f->type == HISTOGRAM && !s.buckets)) {
        free(s.values);
        free(s.buckets);
        return NULL;
    }
    char *text = (char *)(s.values + f->nlabels);
    for (size_t j = 0; j < f->nlabels; j++) {
        const char *v = values[j] ? values[j] : "";
        s.values[j] = strcpy(text, v);
        text += strlen(v) + 1;
    }
    f->series[f->nseries] = s;
    return &f->series[f->nseries++];
}

static metric_t *family_new(metrics_t *m, int type, const char *name, const char *help,
                            const char *labels, const double *bounds, size_t nbounds)
{
    size_t len = name ? strlen(name) : 0;
    if (!m || !name_ok(name, 1) ||
        (type == COUNTER && (len < 7 || strcmp(name + len - 6, "_total"))))
        return NULL;
    metric_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->owner = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (nbounds) {
        f->bounds = malloc(nbounds * sizeof(double));
        if (f->bounds)
            memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    int bad = !f->name || !f->help || (nbounds && !f->bounds) || split_labels(f, labels);
    for (size_t i = 1; !bad && i < nbounds; i++)
        bad = !(bounds[i] > bounds[i - 1]);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; !bad && i < m->nfamilies; i++)
        bad = !strcmp(m->families[i]->name, name);
    if (!bad && m->nfamilies == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        metric_t **grown = realloc(m->families, cap * sizeof(*grown));
        bad = !grown;
        if (grown) {
            m->families = grown;
            m->cap = cap;
        }
    }
    if (!bad && f->nlabels == 0)
        bad = !series_get(f, NULL); /* shown at 0 from the start */
    if (!bad)
        m->families[m->nfamilies++] = f;
    pthread_mutex_unlock(&m->lock);
    if (bad) {
        family_free(f);
        return NULL;
    }
    return f;
}

metric_t *metrics_counter(metrics_t *m, const char *name, const char *help, const char *labels)
{
    return family_new(m, COUNTER, name, help, labels, NULL, 0);
}

metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help, const char *labels)
{
    return family_new(m, GAUGE, name, help, labels, NULL, 0);
}

metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help, const char *labels,
                            const double *bounds, size_t nbounds)
{
    return family_new(m, HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* ---- values --------------------------------------------------------------------------------- */

static void update(metric_t *f, const char *const *values, double v, int add)
{
    if (!f || (f->nlabels && !values))
        return;
    pthread_mutex_lock(&f->owner->lock);
    series_t *s = series_get(f, values);
    if (s && f->type == HISTOGRAM) {
        size_t i = 0;
        while (i < f->nbounds && v > f->bounds[i])
            i++;
        if (i < f->nbounds)
            s->buckets[i]++;
        s->count++;
        s->value += v;
    } else if (s) {
        s->value = add ? s->value + v : v;
    }
    pthread_mutex_unlock(&f->owner->lock);
}

void metric_set(metric_t *f, const char *const *values, double v)
{
    if (f && f->type != HISTOGRAM)
        update(f, values, v, 0);
}

void metric_add(metric_t *f, const char *const *values, double v)
{
    if (f && f->type != HISTOGRAM)
        update(f, values, v, 1);
}

void metric_observe(metric_t *f, const char *const *values, double v)
{
    if (f && f->type == HISTOGRAM)
        update(f, values, v, 0);
}

void metric_clear(metric_t *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->owner->lock);
    for (size_t i = 0; i < f->nseries; i++) {
        free(f->series[i].values);
        free(f->series[i].buckets);
    }
    f->nseries = 0;
    pthread_mutex_unlock(&f->owner->lock);
}

/* ---- the exposition format ------------------------------------------------------------------ */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
        } else if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        } else {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *grown = realloc(b->p, cap);
            b->oom = !grown;
            if (grown) {
                b->p = grown;
                b->cap = cap;
            }
        }
    }
}

/* Writes @p s escaped: '\' and newline always, '"' too inside label values. */
static void put_escaped(buf_t *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(b, "\\\\");
        else if (*s == '\n')
            put(b, "\\n");
        else if (quote && *s == '"')
            put(b, "\\\"");
        else
            put(b, "%c", *s);
    }
}

/* The shortest text that reads back as @p v ("+Inf", "NaN", "42", "0.005"). */
static void format_value(double v, char out[40])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 40, "%.0f", v);
    } else {
        for (int precision = 1; precision <= 17; precision++) {
            snprintf(out, 40, "%.*g", precision, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* name{l1="v1",...,extra="x"} value */
static void put_sample(buf_t *b, const metric_t *f, const series_t *s, const char *suffix,
                       const char *le, double v)
{
    char num[40];
    put(b, "%s%s", f->name, suffix);
    if (f->nlabels || le) {
        put(b, "{");
        for (size_t j = 0; j < f->nlabels; j++) {
            put(b, "%s%s=\"", j ? "," : "", f->labels[j]);
            put_escaped(b, s->values[j], 1);
            put(b, "\"");
        }
        if (le)
            put(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        put(b, "}");
    }
    format_value(v, num);
    put(b, " %s\n", num);
}

static void put_family(buf_t *b, const metric_t *f)
{
    char le[40];
    put(b, "# HELP %s ", f->name);
    put_escaped(b, f->help, 0);
    put(b, "\n# TYPE %s %s\n", f->name, TYPE_NAMES[f->type]);
    for (size_t i = 0; i < f->nseries; i++) {
        const series_t *s = &f->series[i];
        if (f->type != HISTOGRAM) {
            put_sample(b, f, s, "", NULL, s->value);
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t k = 0; k < f->nbounds; k++) {
            cumulative += s->buckets[k];
            format_value(f->bounds[k], le);
            put_sample(b, f, s, "_bucket", le, (double)cumulative);
        }
        put_sample(b, f, s, "_bucket", "+Inf", (double)s->count);
        put_sample(b, f, s, "_sum", NULL, s->value);
        put_sample(b, f, s, "_count", NULL, (double)s->count);
    }
}

char *metrics_render(metrics_t *m, size_t *len)
{
    buf_t b = {.cap = 16384};
    if (!m || !(b.p = malloc(b.cap)))
        return NULL;
    pthread_mutex_lock(&m->scrape_lock);
    for (size_t i = 0; i < m->ncollect; i++)
        m->collect[i].fn(m, m->collect[i].opaque);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfamilies; i++)
        put_family(&b, m->families[i]);
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_unlock(&m->scrape_lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

int metrics_on_collect(metrics_t *m, metrics_collect_fn *fn, void *opaque)
{
    if (!m || !fn)
        return -1;
    pthread_mutex_lock(&m->scrape_lock);
    int rc = m->ncollect < MAX_COLLECT ? 0 : -1;
    if (!rc) {
        m->collect[m->ncollect].fn = fn;
        m->collect[m->ncollect++].opaque = opaque;
    }
    pthread_mutex_unlock(&m->scrape_lock);
    return rc;
}

/* ---- registry ------------------------------------------------------------------------------- */

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->scrape_lock, NULL);
    return m;
}

void metrics_destroy(metrics_t *m)
{
    if (!m)
        return;
    metrics_stop(m);
    for (size_t i = 0; i < m->nfamilies; i++)
        family_free(m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->scrape_lock);
    free(m);
}

/* ---- the server ----------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **ctx)
{
    metrics_t *m = cls;
    static const char *const text = "text/plain; charset=utf-8";
    (void)version, (void)upload, (void)ctx;
    if (*upload_size) { /* a body: not ours to read */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(conn, 405, text, "GET /metrics\n", 13, MHD_RESPMEM_PERSISTENT);
    if (!strcmp(url, "/healthz"))
        return reply(conn, 200, text, "ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics"))
        return reply(conn, 404, text, "GET /metrics\n", 13, MHD_RESPMEM_PERSISTENT);
    size_t len = 0;
    char *body = metrics_render(m, &len);
    if (!body)
        return reply(conn, 500, text, "out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
    return reply(conn, 200, METRICS_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE);
}

int metrics_serve(metrics_t *m, const char *addr, int port, char *errstr, size_t errstr_size)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (!m || m->daemon || port < 0 || port > 65535) {
        snprintf(errstr, errstr_size, "metrics: already serving, or port out of range");
        return -1;
    }
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(errstr, errstr_size, "metrics: not an IP address: %s", addr);
        return -1;
    }
    m->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, m,
                                 MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                 MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        m->daemon ? MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        snprintf(errstr, errstr_size, "metrics: cannot listen on %s port %d", addr, port);
        metrics_stop(m);
        return -1;
    }
    return info->port;
}

void metrics_stop(metrics_t *m)
{
    if (m && m->daemon) {
        MHD_stop_daemon(m->daemon);
        m->daemon = NULL;
    }
}
