/*
 * backend_sqlite.c - "sqlite:PATH": one SQLite file, the embedded default that anyone can
 * query with the sqlite3 CLI.
 *
 * Rows and offsets go in one transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
 * synchronous=FULL, so a commit survives a crash of the process and of the machine. The
 * offsets table is keyed by (table_name, topic, partition); a commit updates a partition's
 * row only where next_offset still equals the batch's base, which fences out a second sink.
 * Times are stored as "YYYY-MM-DD HH:MM:SS.mmm" UTC text (sqlite's date functions read it),
 * dates as "YYYY-MM-DD", booleans as 0/1, properties as JSON text (json_extract() reads it).
 * A new database file is created 0640 (less the umask) before SQLite opens it, and SQLite
 * gives its -wal and -shm files the same mode: events are not for every local user.
 */
#include "backend.h"
#include "url.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef struct sqlite_be {
    whs__backend_t base;
    whs__be_conf_t conf;
    sqlite3 *db;
    sqlite3_stmt *insert;
    char path[4096];
} sqlite_be_t;

static whs__be_rc_t classify(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL: return WHS__BE_RETRY;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return WHS__BE_DATA;
    default: return WHS__BE_FATAL;
    }
}

static whs__be_rc_t fail(sqlite_be_t *s, int rc, const char *what, char *err, size_t err_size)
{
    uc__errstr(err, err_size, "sqlite %s: %s: %s", s->path, what,
               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    return classify(rc);
}

static whs__be_rc_t exec(sqlite_be_t *s, const char *sql, char *err, size_t err_size)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? WHS__BE_OK : fail(s, rc, sql, err, err_size);
}

static const char *sql_type(whs__ctype_t t)
{
    switch (t) {
    case WHS__T_INT32:
    case WHS__T_INT64:
    case WHS__T_BOOL: return "INTEGER";
    case WHS__T_DOUBLE: return "REAL";
    default: return "TEXT";
    }
}

static whs__be_rc_t sqlite_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                                size_t err_size)
{
    whs__url_t u;
    if (whs__url_parse(conf->url, &u, err, err_size))
        return WHS__BE_FATAL;
    sqlite_be_t *s = calloc(1, sizeof(*s));
    if (!s)
        return WHS__BE_FATAL;
    s->conf = *conf;
    snprintf(s->path, sizeof(s->path), "%s", u.path);
    /* SQLite would create it 0644; ":memory:" and "file:" URIs are left to SQLite. */
    int fd = s->path[0] != ':' && strncmp(s->path, "file:", 5)
                 ? open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640)
                 : -1;
    if (fd >= 0) {
        close(fd);
    } else if (s->path[0] != ':' && strncmp(s->path, "file:", 5) &&
               (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EROFS ||
                errno == ELOOP)) { /* no directory, no permission, a symlink: waiting won't do */
        uc__errstr(err, err_size, "sqlite %s: %s", s->path, strerror(errno));
        free(s);
        return WHS__BE_FATAL;
    }
    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    whs__be_rc_t r = rc == SQLITE_OK ? WHS__BE_OK : fail(s, rc, "open", err, err_size);
    if (r == WHS__BE_OK) {
        sqlite3_busy_timeout(s->db, (int)conf->timeout_ms);
        r = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, err_size);
    }
    if (r != WHS__BE_OK) {
        sqlite3_close(s->db);
        free(s);
        return r;
    }
    *out = &s->base;
    return WHS__BE_OK;
}

/* Adds the promoted columns the table lacks. */
static whs__be_rc_t add_columns(sqlite_be_t *s, int *added, char *err, size_t err_size)
{
    const whs__schema_t *sc = s->conf.schema;
    char sql[512];
    for (size_t c = WHS__COL__FIXED; c < sc->ncols; c++) {
        sqlite3_stmt *st;
        snprintf(sql, sizeof(sql), "SELECT 1 FROM pragma_table_info('%s') WHERE name = '%s'",
                 s->conf.table, sc->cols[c].name);
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
            return fail(s, rc, "table_info", err, err_size);
        int exists = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (exists)
            continue;
        snprintf(sql, sizeof(sql), "ALTER TABLE \"%s\" ADD COLUMN \"%s\" %s", s->conf.table,
                 sc->cols[c].name, sql_type(sc->cols[c].type));
        whs__be_rc_t r = exec(s, sql, err, err_size);
        if (r != WHS__BE_OK)
            return r;
        uc__log(s->conf.log, UC_LOG_NOTICE, "sqlite: added column %s.%s", s->conf.table,
                sc->cols[c].name);
        (*added)++;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t prepare_insert(sqlite_be_t *s, char *err, size_t err_size)
{
    const whs__schema_t *sc = s->conf.schema;
    whs__buf_t b = {0};
    whs__buf_printf(&b, "INSERT INTO \"%s\" (", s->conf.table);
    for (size_t c = 0; c < sc->ncols; c++)
        whs__buf_printf(&b, "%s\"%s\"", c ? "," : "", sc->cols[c].name);
    whs__buf_puts(&b, ") VALUES (");
    for (size_t c = 0; c < sc->ncols; c++)
        whs__buf_puts(&b, c ? ",?" : "?");
    whs__buf_puts(&b, ")");
    sqlite3_finalize(s->insert);
    s->insert = NULL;
    int rc = b.oom ? SQLITE_NOMEM : sqlite3_prepare_v2(s->db, b.data, -1, &s->insert, NULL);
    whs__buf_free(&b);
    return rc == SQLITE_OK ? WHS__BE_OK : fail(s, rc, "prepare insert", err, err_size);
}

static whs__be_rc_t sqlite_ensure_schema(whs__backend_t *be, int *added, char *err, size_t err_size)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    const whs__schema_t *sc = s->conf.schema;
    whs__buf_t b = {0};
    whs__buf_printf(&b, "CREATE TABLE IF NOT EXISTS \"%s\" (", s->conf.table);
    for (size_t c = 0; c < WHS__COL__FIXED; c++)
        whs__buf_printf(&b, "%s\"%s\" %s%s", c ? ", " : "", sc->cols[c].name,
                        sql_type(sc->cols[c].type), sc->cols[c].nullable ? "" : " NOT NULL");
    whs__buf_printf(&b,
                    "); CREATE INDEX IF NOT EXISTS \"%s_dt_bucket\" ON \"%s\" "
                    "(dt, user_bucket); ",
                    s->conf.table, s->conf.table);
    whs__buf_puts(&b, "CREATE TABLE IF NOT EXISTS whs_offsets (table_name TEXT NOT NULL, "
                      "topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER "
                      "NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (table_name, topic, "
                      "partition));");
    whs__be_rc_t r = b.oom ? WHS__BE_FATAL : exec(s, b.data, err, err_size);
    whs__buf_free(&b);
    if (r == WHS__BE_OK)
        r = add_columns(s, added, err, err_size);
    return r == WHS__BE_OK ? prepare_insert(s, err, err_size) : r;
}

static whs__be_rc_t sqlite_begin(whs__backend_t *be, const whs__batch_t *b, char *err,
                                 size_t err_size)
{
    (void)b;
    return exec((sqlite_be_t *)be, "BEGIN IMMEDIATE", err, err_size);
}

static int bind_value(sqlite3_stmt *st, int i, const whs__column_t *col, const whs__value_t *v)
{
    char text[24];
    switch (v->kind) {
    case WHS__V_NULL: return sqlite3_bind_null(st, i);
    case WHS__V_DOUBLE: return sqlite3_bind_double(st, i, v->u.d);
    case WHS__V_STR: return sqlite3_bind_text(st, i, v->u.s, (int)v->len, SQLITE_STATIC);
    default: break;
    }
    if (col->type == WHS__T_TIMESTAMP) {
        whs__fmt_timestamp(v->u.i, text);
        return sqlite3_bind_text(st, i, text, 23, SQLITE_TRANSIENT);
    }
    if (col->type == WHS__T_DATE) {
        whs__fmt_date((int32_t)v->u.i, text);
        return sqlite3_bind_text(st, i, text, 10, SQLITE_TRANSIENT);
    }
    return sqlite3_bind_int64(st, i, v->u.i);
}

static whs__be_rc_t sqlite_write(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                                 size_t from, size_t n, int retry, char *err, size_t err_size)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    const whs__schema_t *sc = s->conf.schema;
    (void)b;
    (void)retry;
    for (size_t r = from; r < from + n; r++) {
        const whs__row_t *row = g->rows[r];
        int rc = SQLITE_OK;
        for (size_t c = 0; c < sc->ncols && rc == SQLITE_OK; c++)
            rc = bind_value(s->insert, (int)c + 1, &sc->cols[c], &row->v[c]);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s->insert);
        sqlite3_reset(s->insert);
        if (rc != SQLITE_DONE)
            return fail(s, rc, "insert", err, err_size);
    }
    return WHS__BE_OK;
}

static whs__be_rc_t sqlite_savepoint(whs__backend_t *be, int op, char *err, size_t err_size)
{
    static const char *const sql[] = {"SAVEPOINT whs_rows", "ROLLBACK TO whs_rows",
                                      "RELEASE whs_rows"};
    return exec((sqlite_be_t *)be, sql[op], err, err_size);
}

/* Moves one partition's offset from base to next; FENCED when base is not what is stored. */
static whs__be_rc_t store_offset(sqlite_be_t *s, const whs__bpart_t *p, char *err, size_t err_size)
{
    const char *sql = p->base < 0
                          ? "INSERT INTO whs_offsets (next_offset, table_name, topic, partition,"
                            " updated_at) VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%d %H:%M:%f',"
                            " 'now')) ON CONFLICT DO NOTHING"
                          : "UPDATE whs_offsets SET next_offset = ?1, updated_at = "
                            "strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE table_name = ?2 AND "
                            "topic = ?3 AND partition = ?4 AND next_offset = ?5";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "offsets", err, err_size);
    sqlite3_bind_int64(st, 1, p->next);
    sqlite3_bind_text(st, 2, s->conf.table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->conf.topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, p->partition);
    if (p->base >= 0)
        sqlite3_bind_int64(st, 5, p->base);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(s, rc, "offsets", err, err_size);
    if (sqlite3_changes(s->db) != 1) {
        uc__errstr(err, err_size,
                   "sqlite %s: partition %d moved past offset %lld by another "
                   "writer",
                   s->path, p->partition, (long long)p->base);
        return WHS__BE_FENCED;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t sqlite_commit(whs__backend_t *be, const whs__batch_t *b, char *err,
                                  size_t err_size)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    for (size_t i = 0; i < b->nparts; i++) {
        whs__be_rc_t r = store_offset(s, &b->parts[i], err, err_size);
        if (r != WHS__BE_OK)
            return r;
    }
    return exec(s, "COMMIT", err, err_size);
}

static void sqlite_rollback(whs__backend_t *be)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static whs__be_rc_t sqlite_committed(whs__backend_t *be, int32_t partition, whs__resume_t *out,
                                     char *err, size_t err_size)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT next_offset FROM whs_offsets WHERE table_name = ?1 "
                                "AND topic = ?2 AND partition = ?3",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc, "read offsets", err, err_size);
    sqlite3_bind_text(st, 1, s->conf.table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->conf.topic, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, partition);
    memset(out, 0, sizeof(*out));
    out->next_offset = -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        out->next_offset = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? WHS__BE_OK
                                                 : fail(s, rc, "read offsets", err, err_size);
}

static void sqlite_close(whs__backend_t *be)
{
    sqlite_be_t *s = (sqlite_be_t *)be;
    if (!s)
        return;
    sqlite3_finalize(s->insert);
    sqlite3_close(s->db);
    free(s);
}

const whs__backend_ops_t whs__backend_sqlite = {
    .scheme = "sqlite",
    .group_by = 0,
    .transactional = 1,
    .open = sqlite_open,
    .ensure_schema = sqlite_ensure_schema,
    .begin = sqlite_begin,
    .write = sqlite_write,
    .savepoint = sqlite_savepoint,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .committed = sqlite_committed,
    .close = sqlite_close,
};
