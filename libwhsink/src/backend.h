/*
 * backend.h - the one internal interface every warehouse implements, so a new warehouse is
 * one file: open, ensure the schema, begin a batch, write groups of rows, commit the batch
 * with its offsets, read the committed offsets back, close.
 *
 * All calls of one backend come from one thread at a time (the writer thread once the sink
 * runs). Every call returns a whs__be_rc_t and, on failure, a message in @p err that never
 * holds a password.
 *
 * The exactly-once contract:
 *   - commit() makes the batch's rows and its offsets (whs__bpart_t.next per partition)
 *     durable together. Transactional backends do it in one transaction and check that each
 *     partition's stored offset still equals whs__bpart_t.base (else WHS__BE_FENCED: another
 *     sink moved on). Backends without transactions write each group atomically in write()
 *     and record the offsets in commit().
 *   - committed() returns where a partition stands: every record before next_offset is in
 *     the warehouse (or was dead-lettered), plus "skips": records at or after it that are in
 *     the warehouse already because a crash interrupted a non-transactional commit. The sink
 *     seeks to next_offset and drops the records the skips match.
 */
#ifndef WHS_BACKEND_H
#define WHS_BACKEND_H

#include "batch.h"
#include "row.h"
#include "uc_log.h"

#include <stddef.h>
#include <stdint.h>

typedef enum whs__be_rc {
    WHS__BE_OK = 0,
    WHS__BE_RETRY = 1,  /* transient (connection, server down, timeout): retry */
    WHS__BE_DATA = 2,   /* the rows were refused (bad value): isolate and dead-letter them */
    WHS__BE_FENCED = 3, /* stored offsets are not the batch's base: drop the batch */
    WHS__BE_FATAL = 4,  /* anything else (permissions, schema): retried, reported loudly */
} whs__be_rc_t;

typedef struct whs__be_conf {
    const char *url; /* the full URL (with its password; never log it) */
    const char *table;
    const char *topic; /* the input topic: key of the offsets */
    const whs__schema_t *schema;
    int64_t timeout_ms; /* longest single request */
    int gzip;           /* ClickHouse: 1 gzip, 0 plain, -1 gzip unless loopback */
    int zstd_level;     /* file: */
    int fsync;          /* file: */
    const uc__logger_t *log;
} whs__be_conf_t;

/* Records at or after the resume offset already in the warehouse: offsets lo..hi whose row
 * falls in day @p dt (INT32_MIN: any) and bucket @p bucket (-1: any). */
typedef struct whs__skip {
    int64_t lo, hi;
    int32_t dt;
    int32_t bucket;
} whs__skip_t;

typedef struct whs__resume {
    int64_t next_offset; /* -1: the warehouse holds nothing of this partition */
    whs__skip_t *skips;  /* malloc'd, or NULL */
    size_t nskips;
} whs__resume_t;

typedef struct whs__backend whs__backend_t;

typedef struct whs__backend_ops {
    const char *scheme;
    int group_by;      /* WHS__BY_*: how batches must be grouped for write() */
    int transactional; /* 1: begin..commit is one transaction (write() may use savepoints) */
    int rewrite_ok;    /* 1: writing a group again replaces it (same file name), so retries
                          rewrite whole groups; 0 (and not transactional): each written range
                          is final, retries skip it */

    whs__be_rc_t (*open)(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                         size_t err_size);
    /* Creates the tables if missing; adds missing promoted columns (counted in *added). */
    whs__be_rc_t (*ensure_schema)(whs__backend_t *be, int *added, char *err, size_t err_size);
    whs__be_rc_t (*begin)(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size);
    /* Writes rows [from, from + n) of group @p g. @p retry: an earlier attempt of this batch
     * failed, so a backend without transactions checks whether the group already landed. */
    whs__be_rc_t (*write)(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                          size_t from, size_t n, int retry, char *err, size_t err_size);
    /* Transactional backends: 0 set a savepoint, 1 roll back to it, 2 release it. */
    whs__be_rc_t (*savepoint)(whs__backend_t *be, int op, char *err, size_t err_size);
    whs__be_rc_t (*commit)(whs__backend_t *be, const whs__batch_t *b, char *err, size_t err_size);
    void (*rollback)(whs__backend_t *be);
    whs__be_rc_t (*committed)(whs__backend_t *be, int32_t partition, whs__resume_t *out, char *err,
                              size_t err_size);
    void (*close)(whs__backend_t *be);
} whs__backend_ops_t;

/* Every backend's handle starts with this. */
struct whs__backend {
    const whs__backend_ops_t *ops;
};

extern const whs__backend_ops_t whs__backend_sqlite;
extern const whs__backend_ops_t whs__backend_postgres;
extern const whs__backend_ops_t whs__backend_clickhouse;
extern const whs__backend_ops_t whs__backend_file;

/* The backend of @p url's scheme, or NULL. */
const whs__backend_ops_t *whs__backend_for(const char *url);

/* Opens the backend of conf->url. */
whs__be_rc_t whs__backend_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                               size_t err_size);

void whs__resume_free(whs__resume_t *r);

/* 1 when record @p offset whose row is in (@p dt, @p bucket) is matched by a skip of @p r. */
int whs__resume_skips(const whs__resume_t *r, int64_t offset, int32_t dt, int32_t bucket);

/* Appends a skip; 0 or -1 (out of memory). Adjacent ones with the same keys are merged. */
int whs__resume_add_skip(whs__resume_t *r, int64_t lo, int64_t hi, int32_t dt, int32_t bucket);

/* Name of a backend return code, for logs. */
const char *whs__be_rc_name(whs__be_rc_t rc);

#endif
