/*
 * warehouse.c - the rows the sinks loaded, read with each warehouse's own client: libpq for
 * PostgreSQL, ClickHouse's HTTP interface through libcurl. Used by `watch` (row counts while
 * the servers come and go) and `verify` (every row's event id and seq at the end).
 */
#include "chaos.h"

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chaos_wh {
    int is_pg;
    char table[128];
    char http[512]; /* ClickHouse: http://host:port/?database=db */
    char url[512];  /* PostgreSQL: the libpq URI with a connect timeout */
    PGconn *pg;
    CURL *curl;
};

/* One TSV line "id\tseq\tpartition\toffset" to the row callback. */
static void tsv_row(char *line, chaos_row_fn *fn, void *opaque)
{
    char *f[4] = {line, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *tab = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
        if (tab) {
            *tab = '\0';
            f[i] = tab + 1;
        }
    }
    int has_seq = f[1] && strcmp(f[1], "\\N") != 0;
    fn(f[0], has_seq ? strtoll(f[1], NULL, 10) : 0, has_seq, f[2] ? atoi(f[2]) : -1,
       f[3] ? strtoll(f[3], NULL, 10) : -1, opaque);
}

chaos_wh_t *chaos_wh_open(const char *url, const char *table)
{
    chaos_wh_t *w = calloc(1, sizeof(*w));
    snprintf(w->table, sizeof(w->table), "%s", table);
    if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13)) {
        w->is_pg = 1;
        snprintf(w->url, sizeof(w->url), "%s%sconnect_timeout=2", url,
                 strchr(url, '?') ? "&" : "?");
        return w;
    }
    const char *hp = strncmp(url, "clickhouse://", 13) ? url : url + 13;
    const char *slash = strchr(hp, '/');
    if (slash)
        snprintf(w->http, sizeof(w->http), "http://%.*s/?database=%s", (int)(slash - hp), hp,
                 slash + 1);
    else
        snprintf(w->http, sizeof(w->http), "http://%s/", hp);
    w->curl = curl_easy_init();
    return w;
}

void chaos_wh_close(chaos_wh_t *w)
{
    if (!w)
        return;
    if (w->pg)
        PQfinish(w->pg);
    if (w->curl)
        curl_easy_cleanup(w->curl);
    free(w);
}

static PGconn *pg_conn(chaos_wh_t *w)
{
    if (w->pg && PQstatus(w->pg) == CONNECTION_OK)
        return w->pg;
    if (w->pg)
        PQfinish(w->pg);
    w->pg = PQconnectdb(w->url);
    if (PQstatus(w->pg) != CONNECTION_OK) {
        PQfinish(w->pg);
        w->pg = NULL;
    }
    return w->pg;
}

/* ClickHouse: a line-splitting sink for the response body. */
typedef struct ch_body {
    char *buf;
    size_t len, cap;
    chaos_row_fn *fn; /* NULL: keep the whole body */
    void *opaque;
} ch_body_t;

static size_t ch_write(char *p, size_t size, size_t n, void *opaque)
{
    ch_body_t *b = opaque;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        b->cap = (b->len + add + 1) * 2;
        b->buf = realloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, p, add);
    b->len += add;
    b->buf[b->len] = '\0';
    if (!b->fn)
        return add;
    char *start = b->buf, *nl;
    while ((nl = memchr(start, '\n', b->len - (size_t)(start - b->buf)))) {
        *nl = '\0';
        tsv_row(start, b->fn, b->opaque);
        start = nl + 1;
    }
    b->len -= (size_t)(start - b->buf);
    memmove(b->buf, start, b->len);
    return add;
}

/* POSTs @p sql; 0 on HTTP 200. Without a row callback the body is left in @p b. */
static int ch_query(chaos_wh_t *w, const char *sql, ch_body_t *b, long timeout_ms)
{
    long code = 0;
    curl_easy_reset(w->curl);
    curl_easy_setopt(w->curl, CURLOPT_URL, w->http);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, ch_write);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(w->curl);
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
    return rc == CURLE_OK && code == 200 ? 0 : -1;
}

int64_t chaos_wh_count(chaos_wh_t *w)
{
    char sql[256];
    int64_t n = -1;
    if (w->is_pg) {
        PGconn *c = pg_conn(w);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", w->table);
        PGresult *r = c ? PQexec(c, sql) : NULL;
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return n;
    }
    ch_body_t b = {0};
    snprintf(sql, sizeof(sql), "SELECT count() FROM %s FORMAT TabSeparated", w->table);
    if (ch_query(w, sql, &b, 3000) == 0 && b.buf)
        n = strtoll(b.buf, NULL, 10);
    free(b.buf);
    return n;
}

/* "partition\tnext" lines into next[]. */
typedef struct offsets_out {
    int64_t *next;
    int n;
} offsets_out_t;

static void put_offset(const char *partition, const char *next, offsets_out_t *o)
{
    int p = atoi(partition);
    if (p >= 0 && p < o->n)
        o->next[p] = strtoll(next, NULL, 10);
}

static int ch_offsets_body(chaos_wh_t *w, const char *sql, offsets_out_t *o)
{
    ch_body_t b = {0};
    int rc = ch_query(w, sql, &b, 3000);
    for (char *line = b.buf, *nl; rc == 0 && line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        char *tab = strchr(line, '\t');
        if (tab)
            put_offset(line, tab + 1, o);
    }
    free(b.buf);
    return rc;
}

int chaos_wh_offsets(chaos_wh_t *w, const char *topic, int64_t *next, int n)
{
    char sql[512];
    offsets_out_t o = {next, n};
    if (!w->is_pg) {
        snprintf(sql, sizeof(sql),
                 "SELECT partition, max(next_offset) FROM whs_offsets WHERE table_name = '%s' "
                 "AND topic = '%s' AND kind = 'commit' GROUP BY partition FORMAT TabSeparated",
                 w->table, topic);
        return ch_offsets_body(w, sql, &o) ? -1 : 0;
    }
    PGconn *c = pg_conn(w);
    snprintf(sql, sizeof(sql),
             "SELECT partition, next_offset FROM whs_offsets WHERE table_name = '%s' AND "
             "topic = '%s'",
             w->table, topic);
    PGresult *r = c ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    for (int i = 0; ok && i < PQntuples(r); i++)
        put_offset(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &o);
    PQclear(r);
    return ok ? 0 : -1;
}

static int pg_rows(chaos_wh_t *w, chaos_row_fn *fn, void *opaque, char *err, size_t err_size)
{
    char sql[256], *line = NULL;
    PGconn *c = pg_conn(w);
    if (!c) {
        snprintf(err, err_size, "cannot connect to PostgreSQL");
        return -1;
    }
    snprintf(sql, sizeof(sql),
             "COPY (SELECT event_id::text, prop_seq, source_partition, source_offset FROM \"%s\") "
             "TO STDOUT",
             w->table);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_OUT;
    if (!ok)
        snprintf(err, err_size, "%s", PQerrorMessage(c));
    PQclear(r);
    int n;
    while (ok && (n = PQgetCopyData(c, &line, 0)) > 0) {
        line[n - 1] = '\0'; /* the newline */
        tsv_row(line, fn, opaque);
        PQfreemem(line);
    }
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && ok) {
            snprintf(err, err_size, "%s", PQerrorMessage(c));
            ok = 0;
        }
        PQclear(r);
    }
    return ok ? 0 : -1;
}

int chaos_wh_rows(chaos_wh_t *w, chaos_row_fn *fn, void *opaque, char *err, size_t err_size)
{
    char sql[256];
    if (w->is_pg)
        return pg_rows(w, fn, opaque, err, err_size);
    ch_body_t b = {.fn = fn, .opaque = opaque};
    snprintf(sql, sizeof(sql),
             "SELECT toString(event_id), prop_seq, source_partition, source_offset FROM %s "
             "FORMAT TabSeparated",
             w->table);
    int rc = ch_query(w, sql, &b, 600000);
    if (rc)
        snprintf(err, err_size, "ClickHouse query failed: %.200s", b.buf ? b.buf : "no answer");
    free(b.buf);
    return rc;
}
