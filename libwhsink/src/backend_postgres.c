/*
 * backend_postgres.c - "postgres://...": PostgreSQL through libpq.
 *
 * The table is declaratively partitioned by day (PARTITION BY RANGE (dt)); a day's partition
 * TABLE_pYYYYMMDD is created on demand, before the batch's transaction (so no lock on the
 * parent is held while rows are copied). A batch is one transaction: one COPY (text format)
 * per day straight into its partition, then the offsets rows of whs_offsets, updated only
 * where they still hold the batch's base (a fence against a second sink), then COMMIT.
 *
 * Types: uuid, text, integer/smallint/bigint, double precision, boolean, timestamptz, date,
 * and jsonb for the properties. Errors are classified by SQLSTATE: connection, resource,
 * operator and serialization classes are transient; data and integrity classes mean the rows
 * were refused (the writer isolates them); a missing partition drops the partition cache.
 */
#include "backend.h"
#include "json.h"
#include "url.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK (1 << 20)
#define DAYS_CACHED 512

typedef struct pg_be {
    whs__backend_t base;
    whs__be_conf_t conf;
    PGconn *conn;
    char where[300];           /* host:port/db, for messages */
    int32_t days[DAYS_CACHED]; /* partitions known to exist */
    int ndays;
    whs__buf_t buf, sql;
} pg_be_t;

static whs__be_rc_t classify(const char *state)
{
    if (!state || !*state)
        return WHS__BE_RETRY; /* no server answer: the connection */
    if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "57", 2) ||
        !strncmp(state, "40", 2) || !strncmp(state, "58", 2) || !strcmp(state, "55P03") ||
        !strcmp(state, "25P02") || !strcmp(state, "42P01") || !strcmp(state, "42P07") ||
        !strcmp(state, "23505"))
        return WHS__BE_RETRY; /* also: tables or partitions created or dropped concurrently */
    if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
        return WHS__BE_DATA;
    return WHS__BE_FATAL;
}

/* Reports a failed result (which it clears) as a classified error. */
static whs__be_rc_t fail(pg_be_t *p, PGresult *r, const char *what, char *err, size_t err_size)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg =
        r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(p->conn);
    whs__be_rc_t rc = PQstatus(p->conn) != CONNECTION_OK ? WHS__BE_RETRY : classify(state);
    uc__errstr(err, err_size, "postgres %s: %s: %s%s%.*s", p->where, what, state ? state : "",
               state ? " " : "", (int)strcspn(msg, "\n"), msg);
    if (state && !strcmp(state, "42P01"))
        p->ndays = 0; /* a partition we knew is gone: create again */
    PQclear(r);
    return rc;
}

static whs__be_rc_t exec(pg_be_t *p, const char *sql, char *err, size_t err_size)
{
    PGresult *r = PQexec(p->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return WHS__BE_OK;
    }
    return fail(p, r, sql, err, err_size);
}

/* Server notices ("relation already exists, skipping") go to the debug log, not stderr. */
static void on_notice(void *opaque, const char *message)
{
    pg_be_t *p = opaque;
    uc__log(p->conf.log, UC_LOG_DEBUG, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/* Connects (or reconnects) and sets the session up. */
static whs__be_rc_t connect_pg(pg_be_t *p, char *err, size_t err_size)
{
    char timeout[32], stmt[64];
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
        return WHS__BE_OK;
    PQfinish(p->conn);
    snprintf(timeout, sizeof(timeout), "%lld", (long long)(p->conf.timeout_ms + 999) / 1000);
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {p->conf.url, timeout, "whsink", NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(p->conn);
        uc__errstr(err, err_size, "postgres %s: connect: %.*s", p->where, (int)strcspn(msg, "\n"),
                   msg);
        return WHS__BE_RETRY;
    }
    PQsetNoticeProcessor(p->conn, on_notice, p);
    snprintf(stmt, sizeof(stmt), "SET statement_timeout = %lld", (long long)p->conf.timeout_ms);
    return exec(p, stmt, err, err_size);
}

static whs__be_rc_t pg_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                            size_t err_size)
{
    whs__url_t u;
    if (whs__url_parse(conf->url, &u, err, err_size))
        return WHS__BE_FATAL;
    pg_be_t *p = calloc(1, sizeof(*p));
    if (!p)
        return WHS__BE_FATAL;
    p->conf = *conf;
    snprintf(p->where, sizeof(p->where), "%.200s:%d%.80s", u.host, u.port ? u.port : 5432, u.path);
    whs__be_rc_t rc = connect_pg(p, err, err_size);
    if (rc != WHS__BE_OK) {
        PQfinish(p->conn);
        free(p);
        return rc;
    }
    *out = &p->base;
    return WHS__BE_OK;
}

static const char *pg_type(whs__ctype_t t)
{
    switch (t) {
    case WHS__T_UUID: return "uuid";
    case WHS__T_INT32: return "integer";
    case WHS__T_INT64: return "bigint";
    case WHS__T_DOUBLE: return "double precision";
    case WHS__T_BOOL: return "boolean";
    case WHS__T_TIMESTAMP: return "timestamptz";
    case WHS__T_DATE: return "date";
    case WHS__T_JSON: return "jsonb";
    default: return "text";
    }
}

/* Adds the promoted columns the parent table lacks (partitions inherit them). */
static whs__be_rc_t add_columns(pg_be_t *p, int *added, char *err, size_t err_size)
{
    const whs__schema_t *sc = p->conf.schema;
    char sql[512];
    for (size_t c = WHS__COL__FIXED; c < sc->ncols; c++) {
        snprintf(sql, sizeof(sql),
                 "SELECT 1 FROM information_schema.columns WHERE "
                 "table_schema = current_schema() AND table_name = '%s' AND column_name = '%s'",
                 p->conf.table, sc->cols[c].name);
        PGresult *r = PQexec(p->conn, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return fail(p, r, "columns", err, err_size);
        int exists = PQntuples(r) > 0;
        PQclear(r);
        if (exists)
            continue;
        snprintf(sql, sizeof(sql), "ALTER TABLE \"%s\" ADD COLUMN IF NOT EXISTS \"%s\" %s",
                 p->conf.table, sc->cols[c].name, pg_type(sc->cols[c].type));
        whs__be_rc_t rc = exec(p, sql, err, err_size);
        if (rc != WHS__BE_OK)
            return rc;
        uc__log(p->conf.log, UC_LOG_NOTICE, "postgres: added column %s.%s", p->conf.table,
                sc->cols[c].name);
        (*added)++;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t pg_ensure_schema(whs__backend_t *be, int *added, char *err, size_t err_size)
{
    pg_be_t *p = (pg_be_t *)be;
    const whs__schema_t *sc = p->conf.schema;
    whs__buf_t *b = &p->sql;
    whs__buf_reset(b);
    whs__buf_printf(b, "CREATE TABLE IF NOT EXISTS \"%s\" (", p->conf.table);
    for (size_t c = 0; c < WHS__COL__FIXED; c++)
        whs__buf_printf(b, "%s\"%s\" %s%s", c ? ", " : "", sc->cols[c].name,
                        c == WHS__COL_USER_BUCKET ? "smallint" : pg_type(sc->cols[c].type),
                        sc->cols[c].nullable ? "" : " NOT NULL");
    whs__buf_puts(b, ") PARTITION BY RANGE (dt)");
    whs__be_rc_t rc = connect_pg(p, err, err_size);
    if (rc == WHS__BE_OK)
        rc = b->oom ? WHS__BE_FATAL : exec(p, b->data, err, err_size);
    if (rc == WHS__BE_OK)
        rc = exec(p,
                  "CREATE TABLE IF NOT EXISTS whs_offsets (table_name text NOT NULL, "
                  "topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT "
                  "NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY "
                  "(table_name, topic, partition))",
                  err, err_size);
    return rc == WHS__BE_OK ? add_columns(p, added, err, err_size) : rc;
}

/* Creates the day partitions of @p b that are not known to exist (outside a transaction). */
static whs__be_rc_t ensure_days(pg_be_t *p, const whs__batch_t *b, char *err, size_t err_size)
{
    char sql[512], from[11], to[11], name[11];
    for (size_t g = 0; g < b->ngroups; g++) {
        int32_t day = b->groups[g].dt;
        int known = 0;
        for (int i = 0; i < p->ndays && !known; i++)
            known = p->days[i] == day;
        if (known)
            continue;
        whs__fmt_date(day, from);
        whs__fmt_date(day + 1, to);
        snprintf(name, sizeof(name), "%.4s%.2s%.2s", from, from + 5, from + 8);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS \"%s_p%s\" PARTITION OF \"%s\" "
                 "FOR VALUES FROM ('%s') TO ('%s')",
                 p->conf.table, name, p->conf.table, from, to);
        whs__be_rc_t rc = exec(p, sql, err, err_size);
        if (rc != WHS__BE_OK)
            return rc;
        if (p->ndays == DAYS_CACHED)
            p->ndays = 0;
        p->days[p->ndays++] = day;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t pg_begin(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size)
{
    pg_be_t *p = (pg_be_t *)be;
    whs__be_rc_t rc = connect_pg(p, err, err_size);
    if (rc == WHS__BE_OK)
        rc = ensure_days(p, b, err, err_size);
    return rc == WHS__BE_OK ? exec(p, "BEGIN", err, err_size) : rc;
}

/* ---- COPY ------------------------------------------------------------------------------- */

/* Nonzero when one of the 8 bytes of @p v may need a COPY escape: below 0x0e (tab, newline,
 * CR and a few others, checked byte by byte) or a backslash. SWAR: no false negatives. */
static uint64_t copy_word_special(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t b = v ^ (ones * '\\');
    return (((v - ones * 0x0e) & ~v) | ((b - ones) & ~b)) & high;
}

static int copy_special(char c)
{
    return c == '\\' || c == '\t' || c == '\n' || c == '\r';
}

/* Length of the prefix of @p s that COPY text holds as it is, scanned eight bytes at a time. */
static size_t copy_plain(const char *s, size_t len)
{
    size_t i = 0;
    for (;;) {
        while (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (copy_word_special(v))
                break;
            i += 8;
        }
        size_t stop = i + 8 < len ? i + 8 : len; /* the word that stopped it, byte by byte */
        for (; i < stop; i++)
            if (copy_special(s[i]))
                return i;
        if (i == len)
            return len;
    }
}

/* Appends @p s in COPY text form: backslash, tab, newline and CR escaped. */
static void copy_text(whs__buf_t *b, const char *s, size_t len)
{
    if (whs__buf_reserve(b, len * 2))
        return;
    char *o = b->data + b->len;
    size_t i = 0;
    while (i < len) {
        size_t run = copy_plain(s + i, len - i);
        memcpy(o, s + i, run);
        o += run;
        i += run;
        if (i == len)
            break;
        char c = s[i++];
        *o++ = '\\';
        *o++ = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

static void copy_value(whs__buf_t *b, const whs__column_t *col, const whs__value_t *v)
{
    char text[40];
    switch (v->kind) {
    case WHS__V_NULL: whs__buf_append(b, "\\N", 2); return;
    case WHS__V_STR: copy_text(b, v->u.s, v->len); return;
    case WHS__V_DOUBLE:
        if (!isfinite(v->u.d))
            whs__buf_append(b, "\\N", 2);
        else
            whs__json_double(b, v->u.d);
        return;
    default: break;
    }
    switch (col->type) {
    case WHS__T_TIMESTAMP:
        whs__fmt_timestamp(v->u.i, text);
        whs__buf_append(b, text, 23);
        whs__buf_append(b, "+00", 3);
        break;
    case WHS__T_DATE:
        whs__fmt_date((int32_t)v->u.i, text);
        whs__buf_append(b, text, 10);
        break;
    case WHS__T_BOOL: whs__buf_putc(b, v->u.i ? 't' : 'f'); break;
    default: whs__json_int(b, v->u.i); break;
    }
}

/* Ends the COPY: sends the end (or an abort with @p why) and reads its result. */
static whs__be_rc_t copy_end(pg_be_t *p, const char *why, char *err, size_t err_size)
{
    if (PQputCopyEnd(p->conn, why) != 1)
        return fail(p, NULL, "COPY end", err, err_size);
    whs__be_rc_t rc = WHS__BE_OK;
    PGresult *r;
    while ((r = PQgetResult(p->conn))) {
        if (rc == WHS__BE_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = fail(p, r, "COPY", err, err_size);
        else
            PQclear(r);
    }
    return why && rc == WHS__BE_OK ? WHS__BE_RETRY : rc;
}

static whs__be_rc_t copy_start(pg_be_t *p, const whs__group_t *g, char *err, size_t err_size)
{
    const whs__schema_t *sc = p->conf.schema;
    char day[11];
    whs__fmt_date(g->dt, day);
    whs__buf_reset(&p->sql);
    whs__buf_printf(&p->sql, "COPY \"%s_p%.4s%.2s%.2s\" (", p->conf.table, day, day + 5, day + 8);
    for (size_t c = 0; c < sc->ncols; c++)
        whs__buf_printf(&p->sql, "%s\"%s\"", c ? "," : "", sc->cols[c].name);
    whs__buf_puts(&p->sql, ") FROM STDIN");
    PGresult *r = PQexec(p->conn, p->sql.data);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return fail(p, r, "COPY", err, err_size);
    PQclear(r);
    return WHS__BE_OK;
}

static whs__be_rc_t pg_write(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                             size_t from, size_t n, int retry, char *err, size_t err_size)
{
    pg_be_t *p = (pg_be_t *)be;
    const whs__schema_t *sc = p->conf.schema;
    (void)b;
    (void)retry; /* a retry is a new transaction: nothing of the last attempt stayed */
    whs__be_rc_t rc = copy_start(p, g, err, err_size);
    if (rc != WHS__BE_OK)
        return rc;
    whs__buf_reset(&p->buf);
    for (size_t r = from; r < from + n; r++) {
        const whs__row_t *row = g->rows[r];
        for (size_t c = 0; c < sc->ncols; c++) {
            if (c)
                whs__buf_putc(&p->buf, '\t');
            copy_value(&p->buf, &sc->cols[c], &row->v[c]);
        }
        whs__buf_putc(&p->buf, '\n');
        if (p->buf.oom)
            return copy_end(p, "out of memory", err, err_size);
        if (p->buf.len >= COPY_CHUNK || r + 1 == from + n) {
            if (PQputCopyData(p->conn, p->buf.data, (int)p->buf.len) != 1)
                return copy_end(p, "send failed", err, err_size);
            whs__buf_reset(&p->buf);
        }
    }
    return copy_end(p, NULL, err, err_size);
}

static whs__be_rc_t pg_savepoint(whs__backend_t *be, int op, char *err, size_t err_size)
{
    static const char *const sql[] = {"SAVEPOINT whs_rows", "ROLLBACK TO SAVEPOINT whs_rows",
                                      "RELEASE SAVEPOINT whs_rows"};
    return exec((pg_be_t *)be, sql[op], err, err_size);
}

/* Moves one partition's offset from base to next; FENCED when base is not what is stored. */
static whs__be_rc_t store_offset(pg_be_t *p, const whs__bpart_t *bp, char *err, size_t err_size)
{
    char part[16], next[24], base[24];
    snprintf(part, sizeof(part), "%d", bp->partition);
    snprintf(next, sizeof(next), "%lld", (long long)bp->next);
    snprintf(base, sizeof(base), "%lld", (long long)bp->base);
    const char *vals[] = {p->conf.table, p->conf.topic, part, next, base};
    const char *sql = bp->base < 0
                          ? "INSERT INTO whs_offsets (table_name, topic, partition, next_offset) "
                            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
                          : "UPDATE whs_offsets SET next_offset = $4, updated_at = now() WHERE "
                            "table_name = $1 AND topic = $2 AND partition = $3 AND "
                            "next_offset = $5";
    PGresult *r = PQexecParams(p->conn, sql, bp->base < 0 ? 4 : 5, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return fail(p, r, "offsets", err, err_size);
    int changed = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!changed) {
        uc__errstr(err, err_size,
                   "postgres %s: partition %d is no longer at offset %lld: "
                   "another sink committed it",
                   p->where, bp->partition, (long long)bp->base);
        return WHS__BE_FENCED;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t pg_commit(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size)
{
    pg_be_t *p = (pg_be_t *)be;
    for (size_t i = 0; i < b->nparts; i++) {
        whs__be_rc_t rc = store_offset(p, &b->parts[i], err, err_size);
        if (rc != WHS__BE_OK)
            return rc;
    }
    return exec(p, "COMMIT", err, err_size);
}

static void pg_rollback(whs__backend_t *be)
{
    pg_be_t *p = (pg_be_t *)be;
    if (PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        PQclear(PQexec(p->conn, "ROLLBACK"));
}

static whs__be_rc_t pg_committed(whs__backend_t *be, int32_t partition, whs__resume_t *out,
                                 char *err, size_t err_size)
{
    pg_be_t *p = (pg_be_t *)be;
    char part[16];
    memset(out, 0, sizeof(*out));
    out->next_offset = -1;
    whs__be_rc_t rc = connect_pg(p, err, err_size);
    if (rc != WHS__BE_OK)
        return rc;
    snprintf(part, sizeof(part), "%d", partition);
    const char *vals[] = {p->conf.table, p->conf.topic, part};
    PGresult *r = PQexecParams(p->conn,
                               "SELECT next_offset FROM whs_offsets WHERE table_name = $1 AND "
                               "topic = $2 AND partition = $3",
                               3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail(p, r, "read offsets", err, err_size);
    if (PQntuples(r) > 0)
        out->next_offset = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return WHS__BE_OK;
}

static void pg_close(whs__backend_t *be)
{
    pg_be_t *p = (pg_be_t *)be;
    if (!p)
        return;
    PQfinish(p->conn);
    whs__buf_free(&p->buf);
    whs__buf_free(&p->sql);
    free(p);
}

const whs__backend_ops_t whs__backend_postgres = {
    .scheme = "postgres",
    .group_by = 0,
    .transactional = 1,
    .open = pg_open,
    .ensure_schema = pg_ensure_schema,
    .begin = pg_begin,
    .write = pg_write,
    .savepoint = pg_savepoint,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .committed = pg_committed,
    .close = pg_close,
};
