/*
 * report.c - what landed: tracked vs rows, duplicates, rows per type, and the latency from
 * ue_track() to the warehouse commit (p50, p99), read back from the SQLite warehouse.
 */
#include "demo.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* When the sink committed the row at @p offset of @p partition (its first commit past it). */
static int64_t committed_at(commit_log_t *log, int32_t partition, int64_t offset)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->c[i].partition == partition && log->c[i].next_offset > offset)
            return log->c[i].at_ms;
    return -1;
}

static int64_t single(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void per_type(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT type, count(*) FROM events GROUP BY type ORDER BY 2 DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("  %-28s %10lld\n", (const char *)sqlite3_column_text(st, 0),
               (long long)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
}

static void latency(sqlite3 *db, commit_log_t *log)
{
    sqlite3_stmt *st;
    size_t n = 0, cap = 1024;
    int64_t *lat = malloc(cap * sizeof(*lat));
    const char *sql =
        "SELECT source_partition, source_offset, "
        "CAST((julianday(client_time) - 2440587.5) * 86400000.0 AS INTEGER) FROM events";
    if (!lat || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        free(lat);
        return;
    }
    pthread_mutex_lock(&log->lock);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t at = committed_at(log, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1));
        if (at < 0)
            continue;
        if (n == cap && !(lat = realloc(lat, (cap *= 2) * sizeof(*lat))))
            break;
        lat[n++] = at - sqlite3_column_int64(st, 2);
    }
    pthread_mutex_unlock(&log->lock);
    sqlite3_finalize(st);
    if (n) {
        qsort(lat, n, sizeof(*lat), cmp_i64);
        printf("latency, ue_track() to warehouse commit: p50 %lld ms, p99 %lld ms (%zu rows)\n",
               (long long)lat[n / 2], (long long)lat[n * 99 / 100], n);
    }
    free(lat);
}

int report(const demo_opts_t *o, commit_log_t *log, long tracked)
{
    sqlite3 *db;
    if (strncmp(o->warehouse, "sqlite:", 7) != 0) {
        printf("tracked %ld; see the warehouse (%s) for rows\n", tracked, o->warehouse_shown);
        return 0;
    }
    const char *path = o->warehouse + 7;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "ue-demo: cannot open %s\n", path);
        return -1;
    }
    int64_t rows = single(db, "SELECT count(*) FROM events");
    int64_t ids = single(db, "SELECT count(DISTINCT event_id) FROM events");
    int64_t sessions = single(db, "SELECT count(DISTINCT session_id) FROM events");
    printf("\n== report\n");
    printf("tracked %ld, landed %lld %s\n", tracked, (long long)ids,
           ids == tracked ? "(equal)" : "(NOT EQUAL)");
    printf("duplicates: %lld %s\n", (long long)(rows - ids), rows == ids ? "(none)" : "(!)");
    printf("sessions: %lld\nrows per type:\n", (long long)sessions);
    per_type(db);
    latency(db, log);
    sqlite3_close(db);
    printf("\nquery it:\n  sqlite3 %s \"SELECT type, count(*), count(DISTINCT user_id) "
           "FROM events GROUP BY type\"\n  sqlite3 %s \"SELECT dt, user_bucket, count(*) "
           "FROM events GROUP BY 1, 2 LIMIT 10\"\n", path, path);
    return ids == tracked && rows == ids ? 0 : 1;
}
