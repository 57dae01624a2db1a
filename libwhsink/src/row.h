/*
 * row.h - rows: the table's columns (fixed ones from the event envelope and the enrichment,
 * then the promoted properties), the typed values of one row, and the mapper that turns an
 * EnrichedEvent record into a row or into a reason to dead-letter it.
 *
 * A row is backend-neutral: an array of typed values in column order. Each backend turns
 * values into its own text (COPY, JSONEachRow, SQLite binds, NDJSON) with the helpers here.
 */
#ifndef WHS_ROW_H
#define WHS_ROW_H

#include "buf.h"
#include "conf.h"
#include "datetime.h"
#include "uc_arena.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Logical column types; each backend has its SQL type for each. */
typedef enum whs__ctype {
    WHS__T_UUID, /* text "8-4-4-4-12" */
    WHS__T_STRING,
    WHS__T_INT32,
    WHS__T_INT64,
    WHS__T_DOUBLE,
    WHS__T_BOOL,      /* value: int 0/1 */
    WHS__T_TIMESTAMP, /* value: int, Unix ms, UTC */
    WHS__T_DATE,      /* value: int, days since 1970-01-01 */
    WHS__T_JSON,      /* value: string holding a JSON object */
} whs__ctype_t;

/* The fixed columns, in table order. */
enum {
    WHS__COL_EVENT_ID,
    WHS__COL_TYPE,
    WHS__COL_USER_ID,
    WHS__COL_ANONYMOUS_ID,
    WHS__COL_SESSION_ID,
    WHS__COL_SESSION_SEQ,
    WHS__COL_EVENT_TIME,
    WHS__COL_CLIENT_TIME,
    WHS__COL_RECEIVED_AT,
    WHS__COL_DT,
    WHS__COL_USER_BUCKET,
    WHS__COL_GEO_COUNTRY,
    WHS__COL_GEO_CITY,
    WHS__COL_GEO_LAT,
    WHS__COL_GEO_LON,
    WHS__COL_UA_BROWSER,
    WHS__COL_UA_OS,
    WHS__COL_UA_DEVICE,
    WHS__COL_PROFILE_PLAN,
    WHS__COL_PROFILE_COUNTRY,
    WHS__COL_PROPERTIES,
    WHS__COL_SCHEMA_VERSION,
    WHS__COL_SOURCE_TOPIC,
    WHS__COL_SOURCE_PARTITION,
    WHS__COL_SOURCE_OFFSET,
    WHS__COL__FIXED
};

typedef struct whs__column {
    char name[WHS__NAME_MAX + 1];
    char key[WHS__NAME_MAX + 5]; /* "name": as JSON, ready to append */
    uint8_t key_len;
    whs__ctype_t type;
    int nullable;
    const char *prop; /* promoted: the property key; NULL for fixed columns */
} whs__column_t;

typedef struct whs__schema {
    whs__column_t cols[WHS__COL__FIXED + WHS__PROMOTE_MAX];
    size_t ncols;
} whs__schema_t;

/* Fills @p schema: the fixed columns, then "prop_<name>" for each promoted property. */
void whs__schema_init(whs__schema_t *schema, const whs__promote_t *promote, int npromote);

typedef enum whs__vkind { WHS__V_NULL = 0, WHS__V_INT, WHS__V_DOUBLE, WHS__V_STR } whs__vkind_t;

typedef struct whs__value {
    union {
        int64_t i;
        double d;
        const char *s; /* NUL-terminated, valid UTF-8, in the batch's arena */
    } u;
    uint32_t len; /* of s */
    uint8_t kind; /* whs__vkind_t */
} whs__value_t;

enum {
    WHS__ROW_DEAD = 1, /* refused by the warehouse and dead-lettered (writer thread) */
    WHS__ROW_DONE = 2, /* durably written by a backend without transactions (writer thread) */
};

typedef struct whs__row {
    int32_t dt;     /* days since 1970-01-01 of event_time (UTC) */
    int32_t bucket; /* user bucket */
    int32_t partition;
    uint32_t bytes; /* memory the row takes in its batch */
    int64_t offset;
    uint32_t flags; /* WHS__ROW_* */
    uint32_t unused;
    whs__value_t v[]; /* schema->ncols values */
} whs__row_t;

typedef struct whs__mapper {
    const whs__schema_t *schema;
    int64_t bucket_count;
    int64_t schema_version_max; /* 0: any */
    int64_t row_max_bytes;
    int utf8_policy;     /* WHS__UTF8_* */
    uc__arena_t scratch; /* protobuf-c unpacking of the current record */
    ProtobufCAllocator pb_alloc;
    whs__buf_t json, tmp;
    size_t utf8_replaced; /* strings repaired so far (for the log) */
    size_t row_bytes;     /* arena bytes taken by the row being mapped */
} whs__mapper_t;

void whs__mapper_init(whs__mapper_t *m, const whs__schema_t *schema, const whs__settings_t *s);
void whs__mapper_free(whs__mapper_t *m);

/*
 * Maps one EnrichedEvent record (@p payload, @p len bytes) read at @p partition / @p offset of
 * @p topic (a pointer that outlives the row) into a row allocated from @p arena.
 * Returns 0 with the row in *@p out, or -1 with the reason to dead-letter it in @p reason.
 */
int whs__map(whs__mapper_t *m, const void *payload, size_t len, const char *topic,
             int32_t partition, int64_t offset, uc__arena_t *arena, whs__row_t **out, char *reason,
             size_t reason_size);

/* The user bucket of @p id (user id, else anonymous id): CRC-32C mod @p count. */
int32_t whs__bucket(const char *id, size_t len, int64_t count);

/* How whs__row_json() writes the values JSON readers type differently. */
typedef struct whs__json_style {
    int json_as_string; /* the properties column as a JSON string, not an object (ClickHouse) */
    int bool_as_int;    /* booleans as 0/1 (ClickHouse UInt8), not true/false */
    int ts_chars;       /* characters of a timestamp: 23 with milliseconds, 19 without */
} whs__json_style_t;

/* Properties as an object, true/false, timestamps with milliseconds: files, dead letters. */
extern const whs__json_style_t whs__json_style_plain;

/* Appends @p row as one JSON object, column name to value (NULLs omitted), no newline. */
void whs__row_json(whs__buf_t *out, const whs__schema_t *schema, const whs__row_t *row,
                   const whs__json_style_t *style);

#endif
