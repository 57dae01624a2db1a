/*
 * backend_clickhouse.c - "clickhouse://[user[:password]@]host[:port]/db": ClickHouse over its
 * HTTP interface (libcurl, one kept-alive connection), JSONEachRow request bodies streamed
 * while they are produced, gzipped (clickhouse.compression; "auto" skips it on loopback).
 * "clickhouse+https://...[?ca=FILE]" is the same over HTTPS (port 8443 by default), the
 * server's certificate verified against FILE or the system's CAs: never not at all.
 *
 * The table is a MergeTree partitioned by day and ordered by (user_bucket, user_id,
 * event_time). ClickHouse has no transactions and a plain MergeTree never deduplicates, so
 * exactly-once rests on the rows themselves, which carry source_topic, source_partition and
 * source_offset:
 *   - begin() records an "intent" row in whs_offsets: the batch's target offsets and the days
 *     it touches; commit() records "commit" rows after every day's INSERT succeeded.
 *   - One INSERT per day: one partition, so it lands as one part (atomically).
 *   - A retried INSERT first asks which of its rows are already there (a timeout may hide a
 *     success) and sends only the others.
 *   - committed() resumes at the last committed offset and, if a later intent exists (a crash
 *     between INSERTs), reads the offsets already present in that intent's days: skips.
 * Times are DateTime('UTC') (seconds) on servers older than 20.1 (Debian's 18.16), else
 * DateTime64(3, 'UTC'); the SQL is valid on both.
 */
#include "backend.h"
#include "json.h"
#include "uc_time.h"
#include "url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct ch_be {
    whs__backend_t base;
    whs__be_conf_t conf;
    CURL *curl;
    char base_url[600]; /* http(s)://host:port/?database=db */
    char ca[4096];      /* clickhouse+https://...?ca=FILE: the CAs the server is checked with */
    char db[128];
    char user[128], password[256];
    char where[300]; /* host:port/db, for messages */
    int ms_times;    /* DateTime64(3): the server is 20.1 or newer */
    /* JSONEachRow for this server: NULLs left out (ClickHouse fills the type's default, NULL
     * for Nullable), properties as a String, booleans as UInt8, times in UTC. */
    whs__json_style_t json_style;
    whs__buf_t body, gz, resp, sql;
} ch_be_t;

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
    whs__buf_append(opaque, p, size * n);
    return size * n;
}

/* ClickHouse error codes that mean "these rows cannot be parsed or stored". */
static int data_error(int code)
{
    static const int codes[] = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 376, 0};
    for (int i = 0; codes[i]; i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

/* Gzips @p in into c->gz. 0 or -1. */
static int gzip_body(ch_be_t *c, const whs__buf_t *in)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    whs__buf_reset(&c->gz);
    size_t bound = deflateBound(&z, in->len);
    if (whs__buf_reserve(&c->gz, bound)) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)c->gz.data;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    c->gz.len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

static whs__be_rc_t perform(ch_be_t *c, char *err, size_t err_size);

/* POSTs @p query (in the URL) with @p body (may be NULL: the query is the body). The answer
 * is in c->resp. */
static whs__be_rc_t request(ch_be_t *c, const char *query, const whs__buf_t *body, char *err,
                            size_t err_size)
{
    char *url = NULL, *esc = body ? curl_easy_escape(c->curl, query, 0) : NULL;
    struct curl_slist *headers = NULL;
    const void *data = body ? body->data : query;
    long size = body ? (long)body->len : (long)strlen(query);
    if (body && c->conf.gzip && body->len > 0) {
        if (gzip_body(c, body)) {
            curl_free(esc);
            uc__errstr(err, err_size, "clickhouse: gzip failed");
            return WHS__BE_RETRY;
        }
        data = c->gz.data;
        size = (long)c->gz.len;
        headers = curl_slist_append(headers, "Content-Encoding: gzip");
    }
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    if (esc && (url = malloc(strlen(c->base_url) + strlen(esc) + 64)))
        sprintf(url, "%s&max_insert_block_size=100000000&query=%s", c->base_url, esc);
    curl_easy_setopt(c->curl, CURLOPT_URL, url ? url : c->base_url);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, size);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    whs__be_rc_t rc = perform(c, err, err_size);
    curl_slist_free_all(headers);
    curl_free(esc);
    free(url);
    return rc;
}

/* Runs the prepared request; classifies curl and ClickHouse errors. */
static whs__be_rc_t perform(ch_be_t *c, char *err, size_t err_size)
{
    whs__buf_reset(&c->resp);
    CURLcode cc = curl_easy_perform(c->curl);
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        uc__errstr(err, err_size, "clickhouse %s: %s", c->where, curl_easy_strerror(cc));
        /* A certificate that does not verify stays so: retrying would only hide it. */
        return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE
                   ? WHS__BE_FATAL
                   : WHS__BE_RETRY;
    }
    if (status == 200)
        return WHS__BE_OK;
    int code = 0;
    const char *resp = c->resp.data ? c->resp.data : "";
    sscanf(resp, "Code: %d", &code);
    uc__errstr(err, err_size, "clickhouse %s: HTTP %ld: %.*s", c->where, status,
               (int)strcspn(resp, "\n"), resp);
    if (data_error(code))
        return WHS__BE_DATA;
    return status >= 500 && code != 60 && code != 81 && code != 16 ? WHS__BE_RETRY : WHS__BE_FATAL;
}

static whs__be_rc_t query(ch_be_t *c, const char *sql, char *err, size_t err_size)
{
    return request(c, sql, NULL, err, err_size);
}

/* The value of @p name in a URL query ("a=1&ca=/x.pem"), copied to @p out; "" when absent. */
static void query_param(const char *query, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == '=') {
            snprintf(out, size, "%.*s", (int)strcspn(p + n + 1, "&"), p + n + 1);
            return;
        }
}

static whs__be_rc_t ch_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                            size_t err_size)
{
    whs__url_t u;
    if (whs__url_parse(conf->url, &u, err, err_size))
        return WHS__BE_FATAL;
    ch_be_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->curl = curl_easy_init())) {
        free(c);
        uc__errstr(err, err_size, "clickhouse: out of memory");
        return WHS__BE_FATAL;
    }
    c->conf = *conf;
    if (c->conf.gzip < 0) /* auto: compressing for the loopback interface only costs CPU */
        c->conf.gzip = !(strcmp(u.host, "localhost") == 0 || strncmp(u.host, "127.", 4) == 0 ||
                         strcmp(u.host, "::1") == 0 || strcmp(u.host, "[::1]") == 0);
    snprintf(c->db, sizeof(c->db), "%.127s",
             u.path[0] == '/' && u.path[1] ? u.path + 1 : "default");
    int port = u.port ? u.port : u.tls ? 8443 : 8123;
    snprintf(c->base_url, sizeof(c->base_url), "%s://%s:%d/?database=%s", u.tls ? "https" : "http",
             u.host, port, c->db);
    snprintf(c->where, sizeof(c->where), "%.200s:%d/%.80s", u.host, port, c->db);
    query_param(u.query, "ca", c->ca, sizeof(c->ca)); /* verification itself is never off */
    if (c->ca[0])
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)conf->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(conf->timeout_ms < 10000 ? conf->timeout_ms : 10000));
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    if (u.user[0]) { /* basic auth: never in the URL, so never in a log */
        snprintf(c->user, sizeof(c->user), "%s", u.user);
        snprintf(c->password, sizeof(c->password), "%s", u.password);
        curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->password);
    }
    whs__be_rc_t rc = query(c, "SELECT version()", err, err_size);
    if (rc != WHS__BE_OK) {
        curl_easy_cleanup(c->curl);
        free(c);
        return rc;
    }
    const char *version = c->resp.data ? c->resp.data : "0.0";
    const char *dot = strchr(version, '.');
    int major = atoi(version), minor = dot ? atoi(dot + 1) : 0;
    c->ms_times = major > 20 || (major == 20 && minor >= 1);
    c->json_style = (whs__json_style_t){.json_as_string = 1, .bool_as_int = 1,
                                        .ts_chars = c->ms_times ? 23 : 19};
    whs__buf_free(&c->resp);
    *out = &c->base;
    return WHS__BE_OK;
}

/* ---- schema ----------------------------------------------------------------------------- */

static const char *ch_type(const ch_be_t *c, const whs__column_t *col)
{
    if (col->prop) { /* promoted: NULL when the property is absent */
        switch (col->type) {
        case WHS__T_INT64: return "Nullable(Int64)";
        case WHS__T_DOUBLE: return "Nullable(Float64)";
        case WHS__T_BOOL: return "Nullable(UInt8)";
        default: return "Nullable(String)";
        }
    }
    switch (col->type) {
    case WHS__T_UUID: return "UUID";
    case WHS__T_INT32: return "Int32";
    case WHS__T_INT64: return "Int64";
    case WHS__T_DOUBLE: return "Nullable(Float64)";
    case WHS__T_BOOL: return "UInt8";
    case WHS__T_TIMESTAMP: return c->ms_times ? "DateTime64(3, 'UTC')" : "DateTime('UTC')";
    case WHS__T_DATE: return "Date";
    default: return "String";
    }
}

static whs__be_rc_t add_columns(ch_be_t *c, int *added, char *err, size_t err_size)
{
    const whs__schema_t *sc = c->conf.schema;
    char sql[512];
    for (size_t i = WHS__COL__FIXED; i < sc->ncols; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count() FROM system.columns WHERE database = '%s' "
                 "AND table = '%s' AND name = '%s'",
                 c->db, c->conf.table, sc->cols[i].name);
        whs__be_rc_t rc = query(c, sql, err, err_size);
        if (rc != WHS__BE_OK)
            return rc;
        if (c->resp.data && atoi(c->resp.data) > 0)
            continue;
        snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", c->conf.table,
                 sc->cols[i].name, ch_type(c, &sc->cols[i]));
        if ((rc = query(c, sql, err, err_size)) != WHS__BE_OK)
            return rc;
        uc__log(c->conf.log, UC_LOG_NOTICE, "clickhouse: added column %s.%s", c->conf.table,
                sc->cols[i].name);
        (*added)++;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t ch_ensure_schema(whs__backend_t *be, int *added, char *err, size_t err_size)
{
    ch_be_t *c = (ch_be_t *)be;
    const whs__schema_t *sc = c->conf.schema;
    whs__buf_t *b = &c->sql;
    whs__buf_reset(b);
    whs__buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (", c->conf.table);
    for (size_t i = 0; i < WHS__COL__FIXED; i++)
        whs__buf_printf(b, "%s%s %s", i ? ", " : "", sc->cols[i].name,
                        i == WHS__COL_USER_BUCKET ? "UInt16"
                        : i == WHS__COL_SESSION_SEQ || i == WHS__COL_SCHEMA_VERSION
                            ? "UInt32"
                            : ch_type(c, &sc->cols[i]));
    whs__buf_puts(b, ") ENGINE = MergeTree() PARTITION BY dt "
                     "ORDER BY (user_bucket, user_id, event_time)");
    whs__be_rc_t rc = b->oom ? WHS__BE_FATAL : query(c, b->data, err, err_size);
    if (rc == WHS__BE_OK)
        rc = query(c,
                   "CREATE TABLE IF NOT EXISTS whs_offsets (table_name String, topic String, "
                   "partition Int32, next_offset Int64, kind String, dates String, "
                   "at DateTime('UTC')) ENGINE = MergeTree() "
                   "ORDER BY (table_name, topic, partition, next_offset)",
                   err, err_size);
    return rc == WHS__BE_OK ? add_columns(c, added, err, err_size) : rc;
}

/* ---- rows ------------------------------------------------------------------------------- */


/* Marks in @p present the rows of [from, from + n) already stored (an earlier attempt's
 * INSERT may have succeeded unseen). Returns how many are. */
static int64_t already_stored(ch_be_t *c, const whs__group_t *g, size_t from, size_t n,
                              char *present, whs__be_rc_t *rc, char *err, size_t err_size)
{
    char day[11];
    int64_t lo = INT64_MAX, hi = INT64_MIN, found = 0;
    for (size_t i = from; i < from + n; i++) {
        lo = g->rows[i]->offset < lo ? g->rows[i]->offset : lo;
        hi = g->rows[i]->offset > hi ? g->rows[i]->offset : hi;
    }
    whs__fmt_date(g->dt, day);
    whs__buf_reset(&c->sql);
    whs__buf_printf(&c->sql,
                    "SELECT source_partition, source_offset FROM %s WHERE dt = '%s' "
                    "AND source_topic = '%s' AND source_offset BETWEEN %lld AND %lld "
                    "FORMAT TabSeparated",
                    c->conf.table, day, c->conf.topic, (long long)lo, (long long)hi);
    if ((*rc = query(c, c->sql.data, err, err_size)) != WHS__BE_OK)
        return 0;
    for (char *line = c->resp.data; line && *line;) {
        int part;
        long long off;
        if (sscanf(line, "%d\t%lld", &part, &off) == 2)
            for (size_t i = from; i < from + n; i++)
                if (!present[i - from] && g->rows[i]->partition == part &&
                    g->rows[i]->offset == off)
                    present[i - from] = 1, found++;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return found;
}

/* An INSERT body produced while it is sent: rows are serialized and gzipped in slices from
 * curl's read callback, so ClickHouse parses the first rows while later ones are written. */
typedef struct stream {
    ch_be_t *c;
    const whs__group_t *g;
    size_t next, end;    /* rows still to serialize */
    const char *present; /* rows [from, end) to leave out (stored by an earlier attempt) */
    size_t from;
    z_stream z;
    int gzip, done;
    size_t pos; /* without gzip: read position in c->body */
} stream_t;

/* Serializes the next slice of rows (about 256 KiB) into c->body. */
static void next_slice(stream_t *st)
{
    whs__buf_reset(&st->c->body);
    st->pos = 0;
    while (st->next < st->end && st->c->body.len < (256 << 10)) {
        if (!st->present[st->next - st->from]) {
            whs__row_json(&st->c->body, st->c->conf.schema, st->g->rows[st->next],
                          &st->c->json_style);
            whs__buf_putc(&st->c->body, '\n');
        }
        st->next++;
    }
}

static size_t read_body(char *dest, size_t size, size_t nitems, void *opaque)
{
    stream_t *st = opaque;
    size_t cap = size * nitems;
    whs__buf_t *body = &st->c->body;
    if (st->done || body->oom)
        return st->done ? 0 : CURL_READFUNC_ABORT;
    if (!st->gzip) {
        if (st->pos == body->len)
            next_slice(st);
        size_t n = body->len - st->pos < cap ? body->len - st->pos : cap;
        memcpy(dest, body->data + st->pos, n);
        st->pos += n;
        st->done = n == 0;
        return n;
    }
    st->z.next_out = (Bytef *)dest;
    st->z.avail_out = (uInt)cap;
    while (st->z.avail_out == cap) { /* until deflate hands out something */
        if (st->z.avail_in == 0 && st->next < st->end) {
            next_slice(st);
            st->z.next_in = (Bytef *)body->data;
            st->z.avail_in = (uInt)body->len;
        }
        int last = st->z.avail_in == 0 && st->next == st->end;
        int rc = deflate(&st->z, last ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            st->done = 1;
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return CURL_READFUNC_ABORT;
    }
    return cap - st->z.avail_out;
}

/* INSERTs rows [from, end) of @p g not marked in @p present, streaming the body. */
static whs__be_rc_t insert_rows(ch_be_t *c, const whs__group_t *g, size_t from, size_t end,
                                const char *present, char *err, size_t err_size)
{
    char sql[200], url[900];
    stream_t st = {.c = c,
                   .g = g,
                   .next = from,
                   .end = end,
                   .present = present,
                   .from = from,
                   .gzip = c->conf.gzip};
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    if (st.gzip && deflateInit2(&st.z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return WHS__BE_RETRY;
    if (st.gzip)
        headers = curl_slist_append(headers, "Content-Encoding: gzip");
    snprintf(sql, sizeof(sql), "INSERT INTO %s FORMAT JSONEachRow", c->conf.table);
    char *esc = curl_easy_escape(c->curl, sql, 0);
    snprintf(url, sizeof(url), "%s&max_insert_block_size=100000000&query=%s", c->base_url,
             esc ? esc : "");
    curl_free(esc);
    whs__buf_reset(&c->body);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, -1L); /* chunked */
    curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(c->curl, CURLOPT_READDATA, &st);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    int64_t t0 = uc__mono_ms();
    whs__be_rc_t rc = perform(c, err, err_size);
    uc__log(c->conf.log, UC_LOG_DEBUG, "clickhouse: INSERT of %zu rows: %s in %lld ms", end - from,
            whs__be_rc_name(rc), (long long)(uc__mono_ms() - t0));
    curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, NULL);
    curl_slist_free_all(headers);
    if (st.gzip)
        deflateEnd(&st.z);
    return rc;
}

static whs__be_rc_t ch_write(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                             size_t from, size_t n, int retry, char *err, size_t err_size)
{
    ch_be_t *c = (ch_be_t *)be;
    char *present = calloc(n ? n : 1, 1);
    whs__be_rc_t rc = WHS__BE_OK;
    (void)b;
    if (!present)
        return WHS__BE_RETRY;
    int64_t stored = retry ? already_stored(c, g, from, n, present, &rc, err, err_size) : 0;
    if (rc == WHS__BE_OK && stored > 0)
        uc__log(c->conf.log, UC_LOG_NOTICE,
                "clickhouse: %lld of %zu rows were stored by an "
                "earlier attempt",
                (long long)stored, n);
    if (rc == WHS__BE_OK && (int64_t)n > stored)
        rc = insert_rows(c, g, from, from + n, present, err, err_size);
    free(present);
    return rc;
}

/* ---- offsets ---------------------------------------------------------------------------- */

/* Inserts one whs_offsets row per partition of @p b: kind "intent" (with the days the batch
 * touches) or "commit". */
static whs__be_rc_t offsets_rows(ch_be_t *c, const whs__batch_t *b, const char *kind, char *err,
                                 size_t err_size)
{
    char days[4096] = "", day[11];
    size_t used = 0;
    for (size_t g = 0; *kind == 'i' && g < b->ngroups && used + 12 < sizeof(days); g++) {
        whs__fmt_date(b->groups[g].dt, day);
        used += (size_t)snprintf(days + used, sizeof(days) - used, "%s%s", used ? "," : "", day);
    }
    whs__buf_reset(&c->body);
    for (size_t i = 0; i < b->nparts; i++) {
        whs__buf_printf(&c->body,
                        "{\"table_name\":\"%s\",\"topic\":\"%s\",\"partition\":%d,"
                        "\"next_offset\":%lld,\"kind\":\"%s\",\"dates\":\"%s\",\"at\":%lld}\n",
                        c->conf.table, c->conf.topic, b->parts[i].partition,
                        (long long)b->parts[i].next, kind, days, (long long)time(NULL));
    }
    if (b->nparts == 0)
        return WHS__BE_OK;
    return c->body.oom
               ? WHS__BE_RETRY
               : request(c, "INSERT INTO whs_offsets FORMAT JSONEachRow", &c->body, err, err_size);
}

static whs__be_rc_t ch_begin(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size)
{
    return offsets_rows((ch_be_t *)be, b, "intent", err, err_size);
}

static whs__be_rc_t ch_commit(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size)
{
    return offsets_rows((ch_be_t *)be, b, "commit", err, err_size);
}

static void ch_rollback(whs__backend_t *be)
{
    (void)be; /* nothing to undo: each INSERT stands on its own, retries skip stored rows */
}

/* The first value of the answer as an integer, or @p dflt when empty. */
static int64_t answer_int(const ch_be_t *c, int64_t dflt)
{
    return c->resp.data && *c->resp.data ? strtoll(c->resp.data, NULL, 10) : dflt;
}

/* Offsets at or after @p from already in the table, in the days of unfinished intents. */
static whs__be_rc_t find_skips(ch_be_t *c, int32_t partition, int64_t from, whs__resume_t *out,
                               char *err, size_t err_size)
{
    char sql[1024], days[8192];
    snprintf(sql, sizeof(sql),
             "SELECT arrayStringConcat(groupUniqArray(dates), ',') FROM "
             "whs_offsets WHERE table_name = '%s' AND topic = '%s' AND partition = %d AND "
             "kind = 'intent' AND next_offset > %lld",
             c->conf.table, c->conf.topic, partition, (long long)from);
    whs__be_rc_t rc = query(c, sql, err, err_size);
    if (rc != WHS__BE_OK || !c->resp.data || c->resp.data[0] == '\n' || !c->resp.data[0])
        return rc;
    snprintf(days, sizeof(days), "'%.*s'", (int)strcspn(c->resp.data, "\n"), c->resp.data);
    whs__buf_reset(&c->sql);
    whs__buf_printf(&c->sql, "SELECT source_offset, toUInt32(dt) FROM %s WHERE dt IN (",
                    c->conf.table);
    for (const char *p = days; *p; p++) /* 'a,b' -> 'a','b' */
        *p == ',' ? whs__buf_puts(&c->sql, "','") : whs__buf_putc(&c->sql, *p);
    whs__buf_printf(&c->sql,
                    ") AND source_topic = '%s' AND source_partition = %d AND "
                    "source_offset >= %lld ORDER BY source_offset FORMAT TabSeparated",
                    c->conf.topic, partition, (long long)from);
    if ((rc = query(c, c->sql.data, err, err_size)) != WHS__BE_OK)
        return rc;
    for (char *line = c->resp.data; line && *line;) {
        long long off;
        unsigned day;
        if (sscanf(line, "%lld\t%u", &off, &day) == 2 &&
            whs__resume_add_skip(out, off, off, (int32_t)day, -1))
            return WHS__BE_RETRY;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t ch_committed(whs__backend_t *be, int32_t partition, whs__resume_t *out,
                                 char *err, size_t err_size)
{
    ch_be_t *c = (ch_be_t *)be;
    char sql[512];
    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql),
             "SELECT max(next_offset) FROM whs_offsets WHERE table_name = '%s'"
             " AND topic = '%s' AND partition = %d AND kind = 'commit' HAVING count() > 0",
             c->conf.table, c->conf.topic, partition);
    whs__be_rc_t rc = query(c, sql, err, err_size);
    if (rc != WHS__BE_OK)
        return rc;
    out->next_offset = answer_int(c, -1);
    rc = find_skips(c, partition, out->next_offset < 0 ? 0 : out->next_offset, out, err, err_size);
    if (rc != WHS__BE_OK)
        whs__resume_free(out);
    return rc;
}

static void ch_close(whs__backend_t *be)
{
    ch_be_t *c = (ch_be_t *)be;
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    whs__buf_free(&c->body);
    whs__buf_free(&c->gz);
    whs__buf_free(&c->resp);
    whs__buf_free(&c->sql);
    free(c);
}

const whs__backend_ops_t whs__backend_clickhouse = {
    .scheme = "clickhouse",
    .group_by = 0,
    .transactional = 0,
    .rewrite_ok = 0,
    .open = ch_open,
    .ensure_schema = ch_ensure_schema,
    .begin = ch_begin,
    .write = ch_write,
    .savepoint = NULL,
    .commit = ch_commit,
    .rollback = ch_rollback,
    .committed = ch_committed,
    .close = ch_close,
};
