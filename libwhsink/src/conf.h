/*
 * conf.h - the sink's configuration: the settings struct, the property table behind
 * whs_conf_set()/_get()/_dump() and CONFIGURATION.md, and the parsed "columns.promote" list.
 */
#ifndef WHS_CONF_H
#define WHS_CONF_H

#include "uc_log.h"
#include "uc_props.h"
#include "whsink.h"

#include <librdkafka/rdkafka.h>

#define WHS__PROMOTE_MAX 64
#define WHS__NAME_MAX 63 /* longest table or column name (PostgreSQL's limit) */

/* Types a promoted property column can have (the "TYPE" of "columns.promote=NAME:TYPE"). */
typedef enum whs__ptype {
    WHS__PT_STRING = 0,
    WHS__PT_INT = 1,
    WHS__PT_DOUBLE = 2,
    WHS__PT_BOOL = 3,
} whs__ptype_t;

typedef struct whs__promote {
    char name[WHS__NAME_MAX + 1]; /* the property key; the column is "prop_<name>" */
    whs__ptype_t type;
} whs__promote_t;

enum { WHS__FALLBACK_EARLIEST = 0, WHS__FALLBACK_LATEST = 1, WHS__FALLBACK_GROUP = 2 };
enum { WHS__UTF8_REPLACE = 0, WHS__UTF8_DEAD_LETTER = 1 };
enum { WHS__CH_AUTO = 0, WHS__CH_GZIP = 1, WHS__CH_NONE = 2 };

typedef struct whs__settings {
    char *warehouse_url;
    char *topic;
    char *table;
    char *columns_promote;
    int64_t bucket_count;
    int64_t batch_max_rows;
    int64_t batch_max_bytes;
    int64_t batch_max_ms;
    char *dead_letter_topic;
    int offset_fallback; /* WHS__FALLBACK_* */
    int utf8_invalid;    /* WHS__UTF8_* */
    int64_t schema_version_max;
    int64_t row_max_bytes;
    int64_t retry_backoff_ms;
    int64_t retry_backoff_max_ms;
    int64_t warehouse_timeout_ms;
    int64_t rebalance_timeout_ms;
    int64_t shutdown_timeout_ms;
    int clickhouse_compression; /* WHS__CH_* */
    int64_t file_compression_level;
    int file_fsync;
    int log_level; /* index into "error,warning,notice,info,debug" */
} whs__settings_t;

struct whs_conf_s {
    whs__settings_t s;
    whs__promote_t promote[WHS__PROMOTE_MAX]; /* parsed "columns.promote" */
    int npromote;
    rd_kafka_conf_t *kconf; /* "kafka.*", validated by librdkafka at set time */
    whs_commit_cb_t *commit_cb;
    void *commit_opaque;
    whs_error_cb_t *error_cb;
    void *error_opaque;
    whs_log_cb_t *log_cb;
    void *log_opaque;
};

extern const uc__prop_t whs__conf_props[];

/* Syslog level of the "log.level" choice index. */
int whs__conf_log_level(const whs_conf_t *conf);

/*
 * Parses "name:type,name:type" into @p out (at most WHS__PROMOTE_MAX). Names are property keys
 * matching [a-z_][a-z0-9_]*; types string, int, double, bool. Returns the count or -1 with
 * the reason in @p errstr.
 */
int whs__promote_parse(const char *list, whs__promote_t *out, char *errstr, size_t errstr_size);

/* 1 when @p name is a valid SQL identifier of ours: [A-Za-z_][A-Za-z0-9_]*, 1..63 bytes. */
int whs__ident_valid(const char *name);

#endif
