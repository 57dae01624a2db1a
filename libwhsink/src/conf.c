/*
 * conf.c - the sink's configuration table and the public whs_conf_* API (see conf.h).
 *
 * Keys "kafka.*" go to a librdkafka configuration object so that librdkafka itself rejects
 * unknown keys and bad values at set time. Keys whose value has a shape (the warehouse URL,
 * names, the promote list) are checked here at set time too, so whs_sink_new() only fails
 * on what cannot be known before connecting.
 */
#include "conf.h"
#include "url.h"

#include <stdlib.h>
#include <string.h>

#define S(field) offsetof(whs__settings_t, field)
#define INT(name, field, min, max, def, doc)                                                       \
    {                                                                                              \
        name, UC__PROP_INT, S(field), min, max, def, NULL, doc                                     \
    }
#define STR(name, field, maxlen, def, doc)                                                         \
    {                                                                                              \
        name, UC__PROP_STR, S(field), 0, maxlen, def, NULL, doc                                    \
    }
#define ENUM(name, field, def, choices, doc)                                                       \
    {                                                                                              \
        name, UC__PROP_ENUM, S(field), 0, 0, def, choices, doc                                     \
    }

const uc__prop_t whs__conf_props[] = {
    STR("warehouse.url", warehouse_url, 4000, "",
        "Where rows go (required): sqlite:PATH, file:DIR, postgres://[user[:password]@]host"
        "[:port]/db[?libpq-params], clickhouse://[user[:password]@]host[:port]/db (db an "
        "identifier), clickhouse+https://...[?ca=FILE] (HTTPS, port 8443 by default, the "
        "certificate verified against FILE or the system's CAs). Credentials (the password, "
        "and libpq parameters such as password= or sslpassword=) are masked wherever the URL "
        "is shown. Files and SQLite databases are created 0640."),
    STR("topic", topic, 249, "events.enriched",
        "Kafka topic to load; its values are userevents.EnrichedEvent (proto/enriched.proto)."),
    STR("table", table, WHS__NAME_MAX, "events",
        "Table (directory for file:) the rows go to; [A-Za-z_][A-Za-z0-9_]*."),
    STR("columns.promote", columns_promote, 4000, "",
        "Properties also loaded into typed columns \"prop_<name>\": name:type,... with type "
        "string, int, double or bool. A newly listed one is added with ALTER TABLE at start."),
    INT("bucket.count", bucket_count, 1, 1024, "16",
        "User buckets: user_bucket = CRC-32C(user id, else anonymous id) mod bucket.count. "
        "Changing it re-buckets new rows only."),
    INT("batch.max.rows", batch_max_rows, 1, 10000000, "50000",
        "Most rows in one batch (one warehouse commit). While the writer is idle, a quarter of "
        "this (or of batch.max.bytes) is enough to commit: batches are big under load, prompt "
        "when the sink keeps up."),
    INT("batch.max.bytes", batch_max_bytes, 65536, INT64_C(1) << 34, "8388608",
        "Most bytes of rows in one batch. Memory stays near twice this (one batch being "
        "written, one filling) plus librdkafka's fetch queue (kafka.queued.max.messages.kbytes) "
        "and about 20 MB of code and connections: near 64 MB at the defaults, at any backlog."),
    INT("batch.max.ms", batch_max_ms, 0, 3600000, "1000",
        "Longest a consumed record waits before its batch is committed."),
    STR("dead_letter.topic", dead_letter_topic, 249, "events.dead_letter",
        "Topic of records that cannot be mapped or that the warehouse refused, with headers "
        "reason, source.topic, source.partition, source.offset. Empty: log and count only."),
    ENUM("offset.fallback", offset_fallback, "earliest", "earliest,latest,group",
         "Where to start a partition the warehouse holds nothing of: its first record, its "
         "end, or the Kafka group's committed offset (else the first record)."),
    ENUM("utf8.invalid", utf8_invalid, "replace", "replace,dead_letter",
         "A string with invalid UTF-8: replace the bad bytes with U+FFFD, or dead-letter the "
         "record."),
    INT("schema.version.max", schema_version_max, 0, 1000000, "0",
        "Dead-letter events whose schema_version is above this. 0: load every version (unknown "
        "fields are ignored)."),
    INT("row.max.bytes", row_max_bytes, 1024, 64 << 20, "1048576",
        "Largest row; a larger one is dead-lettered."),
    INT("retry.backoff.ms", retry_backoff_ms, 1, 600000, "200",
        "First wait before retrying a failed warehouse operation (full jitter, doubling)."),
    INT("retry.backoff.max.ms", retry_backoff_max_ms, 1, 3600000, "10000",
        "Longest wait between warehouse retries."),
    INT("warehouse.timeout.ms", warehouse_timeout_ms, 100, 3600000, "60000",
        "Longest one warehouse request may take before it counts as failed (and is retried)."),
    INT("rebalance.timeout.ms", rebalance_timeout_ms, 0, 3600000, "30000",
        "How long a revocation waits for the batch to commit before dropping it (it is then "
        "re-read from the warehouse offsets by the partition's next owner)."),
    INT("shutdown.timeout.ms", shutdown_timeout_ms, 0, 3600000, "30000",
        "Default deadline of whs_close() and whs_sink_destroy()."),
    ENUM("clickhouse.compression", clickhouse_compression, "auto", "auto,gzip,none",
         "Body encoding of ClickHouse inserts: gzip, none, or auto (gzip unless the server is "
         "on the loopback interface, where compressing only costs CPU)."),
    INT("file.compression.level", file_compression_level, 1, 19, "3",
        "zstd level of file: backend files."),
    {"file.fsync", UC__PROP_BOOL, S(file_fsync), 0, 0, "true", NULL,
     "fsync() files and directories before a file: batch counts as committed."},
    ENUM("log.level", log_level, "warning", "error,warning,notice,info,debug",
         "Least severe level logged."),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

/* librdkafka settings that make the guarantees hold; a user may still override them. */
static const char *const kafka_defaults[][2] = {
    {"group.id", "whsink"},
    {"isolation.level", "read_committed"}, /* only committed transactions of libenrich */
    {"enable.auto.commit", "false"},       /* offsets are committed after the warehouse */
    {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "earliest"},
    {"enable.partition.eof", "false"},
    {"fetch.wait.max.ms", "100"}, /* one long-poll fetch per broker: keep it short */
    /* A sink that died hands its partitions on within 6 s (the broker's minimum); one that
     * restarts with its kafka.group.instance.id (whsinkd --instance-id) takes them back at
     * once, without a rebalance. */
    {"session.timeout.ms", "6000"},
    {"heartbeat.interval.ms", "2000"},
    /* A small prefetch, so that memory stays near 64 MB at any backlog: librdkafka's defaults
     * (one fetch up to 50 MB compressed, 64 MiB queued) held 100+ MB of a backlog. librdkafka
     * 2.0 fetches again only at its broker thread's next wake-up (up to a second) once the queue
     * reached queued.min.messages: the sink wakes it when the queue runs low
     * (uc_fetch_kick.h), which keeps the small prefetch as fast as a large one. */
    {"queued.min.messages", "10000"},
    {"queued.max.messages.kbytes", "8192"},
    {"fetch.max.bytes", "1000000"},
    {"statistics.interval.ms", "5000"}, /* lag and broker health: whs_kafka_stats_json() */
    {NULL, NULL},
};

int whs__conf_log_level(const whs_conf_t *conf)
{
    static const int levels[] = {UC_LOG_ERR, UC_LOG_WARNING, UC_LOG_NOTICE, UC_LOG_INFO,
                                 UC_LOG_DEBUG};
    return levels[conf->s.log_level];
}

whs_conf_t *whs_conf_new(void)
{
    whs_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf)
        return NULL;
    conf->kconf = rd_kafka_conf_new();
    if (!conf->kconf || uc__props_init(whs__conf_props, &conf->s)) {
        whs_conf_destroy(conf);
        return NULL;
    }
    for (int i = 0; kafka_defaults[i][0]; i++)
        rd_kafka_conf_set(conf->kconf, kafka_defaults[i][0], kafka_defaults[i][1], NULL, 0);
    return conf;
}

void whs_conf_destroy(whs_conf_t *conf)
{
    if (!conf)
        return;
    uc__props_free(whs__conf_props, &conf->s);
    if (conf->kconf)
        rd_kafka_conf_destroy(conf->kconf);
    free(conf);
}

whs_conf_t *whs_conf_dup(const whs_conf_t *conf)
{
    whs_conf_t *dup = conf ? malloc(sizeof(*dup)) : NULL;
    if (!dup)
        return NULL;
    *dup = *conf;
    dup->kconf = rd_kafka_conf_dup(conf->kconf);
    if (uc__props_dup_strings(whs__conf_props, &dup->s) || !dup->kconf) {
        whs_conf_destroy(dup);
        return NULL;
    }
    return dup;
}

int whs__ident_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > WHS__NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

static int topic_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 249 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int parse_one_promote(const char *item, size_t len, whs__promote_t *p, char *errstr,
                             size_t errstr_size)
{
    static const char *const types[] = {"string", "int", "double", "bool"};
    const char *colon = memchr(item, ':', len);
    size_t nlen = colon ? (size_t)(colon - item) : 0;
    if (!colon || nlen == 0 || nlen > WHS__NAME_MAX - 5) {
        uc__errstr(errstr, errstr_size, "columns.promote: expected name:type, got \"%.*s\"",
                   (int)len, item);
        return -1;
    }
    memcpy(p->name, item, nlen);
    p->name[nlen] = '\0';
    if (!whs__ident_valid(p->name) ||
        strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != nlen) {
        uc__errstr(errstr, errstr_size,
                   "columns.promote: \"%s\" is not a lowercase name [a-z_][a-z0-9_]*", p->name);
        return -1;
    }
    size_t tlen = len - nlen - 1;
    for (int t = 0; t < 4; t++) {
        if (strlen(types[t]) == tlen && strncmp(colon + 1, types[t], tlen) == 0) {
            p->type = (whs__ptype_t)t;
            return 0;
        }
    }
    uc__errstr(errstr, errstr_size,
               "columns.promote: type of \"%s\" must be string, int, double or bool, got "
               "\"%.*s\"",
               p->name, (int)tlen, colon + 1);
    return -1;
}

int whs__promote_parse(const char *list, whs__promote_t *out, char *errstr, size_t errstr_size)
{
    int n = 0;
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (n == WHS__PROMOTE_MAX) {
                uc__errstr(errstr, errstr_size, "columns.promote: more than %d columns",
                           WHS__PROMOTE_MAX);
                return -1;
            }
            if (parse_one_promote(p, len, &out[n], errstr, errstr_size))
                return -1;
            for (int i = 0; i < n; i++) {
                if (strcmp(out[i].name, out[n].name) == 0) {
                    uc__errstr(errstr, errstr_size, "columns.promote: \"%s\" listed twice",
                               out[n].name);
                    return -1;
                }
            }
            n++;
        }
        p += len + (p[len] == ',');
    }
    return n;
}

/* The checks of keys whose value has a shape; 0 or -1 with the reason. */
static int check_shape(whs_conf_t *conf, const char *name, const char *value, char *errstr,
                       size_t errstr_size)
{
    if (strcmp(name, "warehouse.url") == 0) {
        whs__url_t url;
        return *value ? whs__url_parse(value, &url, errstr, errstr_size) : 0;
    }
    if ((strcmp(name, "topic") == 0 || (strcmp(name, "dead_letter.topic") == 0 && *value)) &&
        !topic_valid(value)) {
        uc__errstr(errstr, errstr_size, "%s: \"%s\" is not a valid Kafka topic name", name, value);
        return -1;
    }
    if (strcmp(name, "table") == 0 && !whs__ident_valid(value)) {
        uc__errstr(errstr, errstr_size, "table: \"%s\" is not a name [A-Za-z_][A-Za-z0-9_]*",
                   value);
        return -1;
    }
    if (strcmp(name, "columns.promote") == 0) {
        whs__promote_t parsed[WHS__PROMOTE_MAX];
        int n = whs__promote_parse(value, parsed, errstr, errstr_size);
        if (n < 0)
            return -1;
        memcpy(conf->promote, parsed, sizeof(parsed[0]) * (size_t)n);
        conf->npromote = n;
    }
    return 0;
}

whs_conf_res_t whs_conf_set(whs_conf_t *conf, const char *name, const char *value, char *errstr,
                            size_t errstr_size)
{
    if (!conf || !name || !value) {
        uc__errstr(errstr, errstr_size, "conf, name and value must not be NULL");
        return WHS_CONF_INVALID;
    }
    if (strncmp(name, "kafka.", 6) == 0)
        return (whs_conf_res_t)uc__kafka_conf_set(conf->kconf, name + 6, value, errstr,
                                                  errstr_size);
    if (!uc__prop_find(whs__conf_props, name)) {
        uc__errstr(errstr, errstr_size, "unknown configuration property \"%s\"", name);
        return WHS_CONF_UNKNOWN;
    }
    /* Parse into a scratch copy first, so a refused value leaves the conf unchanged. */
    whs__promote_t saved[WHS__PROMOTE_MAX];
    int nsaved = conf->npromote;
    memcpy(saved, conf->promote, sizeof(saved));
    if (check_shape(conf, name, value, errstr, errstr_size))
        return WHS_CONF_INVALID;
    int rc = uc__prop_set(whs__conf_props, &conf->s, name, value, errstr, errstr_size);
    if (rc != UC__PROP_OK) {
        memcpy(conf->promote, saved, sizeof(saved));
        conf->npromote = nsaved;
    }
    return (whs_conf_res_t)rc;
}

whs_conf_res_t whs_conf_get(const whs_conf_t *conf, const char *name, char *dest, size_t *dest_size)
{
    if (!conf || !name || !dest_size)
        return WHS_CONF_UNKNOWN;
    if (strncmp(name, "kafka.", 6) == 0) {
        return rd_kafka_conf_get(conf->kconf, name + 6, dest, dest_size) == RD_KAFKA_CONF_OK
                   ? WHS_CONF_OK
                   : WHS_CONF_UNKNOWN;
    }
    return (whs_conf_res_t)uc__prop_get(whs__conf_props, &conf->s, name, dest, dest_size);
}

/* The value of property @p p as dump shows it (URL password masked); malloc'd. */
static char *dump_value(const whs_conf_t *conf, const uc__prop_t *p)
{
    size_t size = 0;
    uc__prop_get(whs__conf_props, &conf->s, p->name, NULL, &size);
    char *v = malloc(size);
    if (!v)
        return NULL;
    uc__prop_get(whs__conf_props, &conf->s, p->name, v, &size);
    if (strcmp(p->name, "warehouse.url") == 0) {
        char *masked = malloc(size + 8);
        if (masked)
            whs__url_mask(v, masked, size + 8);
        free(v);
        v = masked;
    }
    return v;
}

const char **whs_conf_dump(const whs_conf_t *conf, size_t *cntp)
{
    if (!conf || !cntp) {
        if (cntp)
            *cntp = 0;
        return NULL;
    }
    size_t kcnt = 0, n = uc__props_count(whs__conf_props), i = 0;
    const char **kdump = rd_kafka_conf_dump(conf->kconf, &kcnt);
    const char **arr = calloc(n * 2 + kcnt + 1, sizeof(*arr));
    for (const uc__prop_t *p = whs__conf_props; arr && p->name; p++) {
        arr[i++] = strdup(p->name);
        arr[i++] = dump_value(conf, p);
    }
    if (arr)
        i = uc__dump_kafka(arr, i, kdump, kcnt, "kafka.");
    rd_kafka_conf_dump_free(kdump, kcnt);
    *cntp = i;
    return arr;
}

void whs_conf_dump_free(const char **arr, size_t cnt)
{
    uc__dump_free(arr, cnt);
}

void whs_conf_set_commit_cb(whs_conf_t *conf, whs_commit_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->commit_cb = cb;
    conf->commit_opaque = opaque;
}

void whs_conf_set_error_cb(whs_conf_t *conf, whs_error_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->error_cb = cb;
    conf->error_opaque = opaque;
}

void whs_conf_set_log_cb(whs_conf_t *conf, whs_log_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->log_cb = cb;
    conf->log_opaque = opaque;
}
