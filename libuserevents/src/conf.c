/*
 * conf.c - the SDK's configuration table and the public ue_conf_* API (see conf.h).
 *
 * Keys "kafka.*" go to a librdkafka configuration object so that librdkafka itself rejects
 * unknown keys and bad values at set time, with its own message.
 */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

#define S(field) offsetof(ue__settings_t, field)
#define INT(name, field, min, max, def, doc)                                                       \
    {                                                                                              \
        name, UC__PROP_INT, S(field), min, max, def, NULL, doc                                     \
    }
#define STR(name, field, maxlen, def, doc) {name, UC__PROP_STR, S(field), 0, maxlen, def, NULL, doc}
#define CTX(i, name)                                                                               \
    STR("context." name, context[i], 1024, "", "Default context field \"" name "\" of every event.")

const uc__prop_t ue__conf_props[] = {
    STR("topic.template", topic_template, 200, "events.{type}",
        "Kafka topic of an event; {type} is replaced by the event type."),
    STR("anonymous.id", anonymous_id, 200, "",
        "Anonymous id of this client (Kafka key of events without a user id). Empty: the one "
        "kept in spool.dir (file anonymous_id, made at the first start), so a device stays one "
        "anonymous user across restarts; without a spool, a new random id per client."),
    INT("queue.max.events", queue_max_events, 1, 100000000, "100000",
        "Most events held in memory, waiting for the background thread."),
    INT("queue.max.bytes", queue_max_bytes, 1024, INT64_C(1) << 40, "67108864",
        "Most bytes of encoded events held in memory."),
    {"queue.full.policy", UC__PROP_ENUM, S(queue_full_policy), 0, 0, "drop_newest",
     "drop_newest,drop_oldest,block",
     "What ue_track() does when the queue is full: refuse the new event, evict the oldest, or "
     "wait up to queue.block.timeout.ms. Every drop is counted."},
    INT("queue.block.timeout.ms", queue_block_timeout_ms, 0, 60000, "100",
        "Longest wait in ue_track() with queue.full.policy=block."),
    INT("batch.max.events", batch_max_events, 1, 1000000, "10000",
        "Most events the background thread takes from the queue in one batch (one spool frame)."),
    INT("batch.max.bytes", batch_max_bytes, 1024, 256 << 20, "1048576",
        "Most bytes in one batch."),
    INT("linger.ms", linger_ms, 0, 60000, "5",
        "How long a batch may wait to fill up before it is spooled and sent."),
    INT("event.max.bytes", event_max_bytes, 64, 16 << 20, "1000000",
        "Largest encoded event; a larger one is refused by ue_track()."),
    STR("spool.dir", spool_dir, 4000, "",
        "Directory of the durable disk spool, created 0700 when missing; it must be the user's "
        "alone (owned by the process's user, not writable by group or others). Empty: no spool "
        "(events in memory only)."),
    INT("spool.max.bytes", spool_max_bytes, 1 << 20, INT64_C(1) << 44, "268435456",
        "Cap on spool size; past it the oldest segment is dropped (counted)."),
    INT("spool.max.age.ms", spool_max_age_ms, 0, INT64_C(1) << 42, "604800000",
        "Events older than this are dropped from the spool (counted). 0: no age cap."),
    INT("spool.segment.bytes", spool_segment_bytes, 4096, 1 << 30, "4194304",
        "Size at which a spool segment file is closed and a new one started."),
    {"spool.fsync", UC__PROP_BOOL, S(spool_fsync), 0, 0, "false", NULL,
     "fdatasync() after every spool write: survives power loss, not only process crashes."},
    INT("spool.compression.level", spool_compression_level, 1, 19, "1",
        "zstd level of spool frames."),
    INT("shutdown.timeout.ms", shutdown_timeout_ms, 0, 3600000, "10000",
        "How long ue_client_destroy() flushes before leaving the rest to the spool."),
    {"log.level", UC__PROP_ENUM, S(log_level), 0, 0, "warning", "error,warning,notice,info,debug",
     "Least severe level logged."},
    {"transport", UC__PROP_ENUM, S(transport), 0, 0, "kafka", "kafka,http",
     "Where events go: straight to Kafka (kafka.* keys), or as HTTP batches to a collector "
     "(http.* keys), which publishes them to Kafka."},
    STR("http.url", http_url, 4000, "",
        "transport=http: the collector's batch endpoint, e.g. https://collector.example/v1/batch."),
    STR("http.api.key", http_api_key, 1000, "",
        "transport=http: API key, sent as \"Authorization: Bearer KEY\". Never logged; "
        "masked by ue_conf_dump()."),
    STR("http.ca.location", http_ca_location, 4000, "",
        "transport=http: PEM file of the certificate authorities an https:// collector is "
        "verified against (empty: the system's). Verification is never turned off."),
    INT("http.max.batch.bytes", http_max_batch_bytes, 1024, 256 << 20, "1048576",
        "transport=http: most bytes of events in one request (before zstd). A 413 answer halves "
        "it for the client's life and the same events go again in smaller requests; an event "
        "the collector refuses alone fails (UE_ERR_COLLECTOR)."),
    INT("http.backoff.base.ms", http_backoff_base_ms, 1, 3600000, "100",
        "transport=http: retry n of a batch (429, 5xx, network) waits a random time in "
        "[0, min(http.backoff.max.ms, base * 2^(n-1))] (full jitter), and at least Retry-After."),
    INT("http.backoff.max.ms", http_backoff_max_ms, 1, 3600000, "30000",
        "transport=http: cap of the exponential retry delay."),
    INT("http.retry.after.max.ms", http_retry_after_max_ms, 0, 3600000, "60000",
        "transport=http: longest wait a Retry-After answer (429, 503) is honoured for."),
    INT("http.timeout.ms", http_timeout_ms, 100, 3600000, "30000",
        "transport=http: deadline of one request, connect included; past it the batch is "
        "retried."),
    CTX(0, "app.name"), CTX(1, "app.version"), CTX(2, "app.build"), CTX(3, "device.model"),
    CTX(4, "device.manufacturer"), CTX(5, "os.name"), CTX(6, "os.version"), CTX(7, "locale"),
    CTX(8, "timezone"), CTX(9, "screen.width"), CTX(10, "screen.height"), CTX(11, "network"),
    CTX(12, "ip"), CTX(13, "user_agent"),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

/* librdkafka settings that make the guarantees hold; a user may still override them. */
static const char *const kafka_defaults[][2] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"compression.type", "zstd"},
    {"linger.ms", "5"},
    {"partitioner", "murmur2_random"}, /* the Java client's: same user, same partition */
    {"message.timeout.ms", "0"},       /* never expire: librdkafka retries in order */
    {NULL, NULL},
};

int ue__conf_log_level(const ue_conf_t *conf)
{
    static const int levels[] = {UC_LOG_ERR, UC_LOG_WARNING, UC_LOG_NOTICE, UC_LOG_INFO,
                                 UC_LOG_DEBUG};
    return levels[conf->s.log_level];
}

ue_conf_t *ue_conf_new(void)
{
    ue_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf)
        return NULL;
    conf->kconf = rd_kafka_conf_new();
    if (!conf->kconf || uc__props_init(ue__conf_props, &conf->s)) {
        ue_conf_destroy(conf);
        return NULL;
    }
    for (int i = 0; kafka_defaults[i][0]; i++)
        rd_kafka_conf_set(conf->kconf, kafka_defaults[i][0], kafka_defaults[i][1], NULL, 0);
    return conf;
}

void ue_conf_destroy(ue_conf_t *conf)
{
    if (!conf)
        return;
    uc__props_free(ue__conf_props, &conf->s);
    if (conf->kconf)
        rd_kafka_conf_destroy(conf->kconf);
    free(conf);
}

ue_conf_t *ue_conf_dup(const ue_conf_t *conf)
{
    ue_conf_t *dup = conf ? malloc(sizeof(*dup)) : NULL;
    if (!dup)
        return NULL;
    *dup = *conf;
    dup->kconf = rd_kafka_conf_dup(conf->kconf);
    if (uc__props_dup_strings(ue__conf_props, &dup->s) || !dup->kconf) {
        ue_conf_destroy(dup);
        return NULL;
    }
    return dup;
}

ue_conf_res_t ue_conf_set(ue_conf_t *conf, const char *name, const char *value, char *errstr,
                          size_t errstr_size)
{
    if (!conf || !name || !value) {
        uc__errstr(errstr, errstr_size, "conf, name and value must not be NULL");
        return UE_CONF_INVALID;
    }
    if (strncmp(name, "kafka.", 6) == 0)
        return (ue_conf_res_t)uc__kafka_conf_set(conf->kconf, name + 6, value, errstr,
                                                 errstr_size);
    if (strncmp(name, "context.screen.", 15) == 0 && *value && ue__ctx_parse_number(value) < 0) {
        uc__errstr(errstr, errstr_size, "%s: expected a whole number of pixels, got \"%s\"", name,
                   value);
        return UE_CONF_INVALID;
    }
    return (ue_conf_res_t)uc__prop_set(ue__conf_props, &conf->s, name, value, errstr,
                                       errstr_size);
}

ue_conf_res_t ue_conf_get(const ue_conf_t *conf, const char *name, char *dest, size_t *dest_size)
{
    if (!conf || !name || !dest_size)
        return UE_CONF_UNKNOWN;
    if (strncmp(name, "kafka.", 6) == 0) {
        return rd_kafka_conf_get(conf->kconf, name + 6, dest, dest_size) == RD_KAFKA_CONF_OK
                   ? UE_CONF_OK
                   : UE_CONF_UNKNOWN;
    }
    return (ue_conf_res_t)uc__prop_get(ue__conf_props, &conf->s, name, dest, dest_size);
}

/* Appends a librdkafka dump as "kafka.<name>" pairs at arr[i], masking secrets and skipping
 * names already listed from arr[from] on (a topic-level name that shadows a global one). */
static size_t append_kafka(const char **arr, size_t i, size_t from, const char **kdump,
                           size_t kcnt)
{
    for (size_t k = 0; k + 1 < kcnt; k += 2) {
        size_t j = from;
        while (j < i && !(arr[j] && strcmp(arr[j] + 6, kdump[k]) == 0))
            j += 2;
        if (j < i)
            continue;
        char *name = malloc(strlen(kdump[k]) + 7);
        if (name)
            strcat(strcpy(name, "kafka."), kdump[k]);
        arr[i++] = name;
        arr[i++] = strdup(uc__prop_is_secret(kdump[k]) ? "[redacted]" : kdump[k + 1]);
    }
    return i;
}

const char **ue_conf_dump(const ue_conf_t *conf, size_t *cntp)
{
    if (!conf || !cntp) {
        if (cntp)
            *cntp = 0;
        return NULL;
    }
    size_t kcnt = 0, tcnt = 0, n = uc__props_count(ue__conf_props);
    const char **kdump = rd_kafka_conf_dump(conf->kconf, &kcnt);
    /* acks, partitioner, message.timeout.ms live in librdkafka's default topic conf */
    rd_kafka_topic_conf_t *tconf = rd_kafka_conf_get_default_topic_conf(conf->kconf);
    const char **tdump = tconf ? rd_kafka_topic_conf_dump(tconf, &tcnt) : NULL;
    const char **arr = calloc(n * 2 + kcnt + tcnt + 1, sizeof(*arr));
    size_t i = 0;

    for (const uc__prop_t *p = ue__conf_props; arr && p->name; p++) {
        size_t size = 0;
        uc__prop_get(ue__conf_props, &conf->s, p->name, NULL, &size);
        char *v = malloc(size);
        if (v)
            uc__prop_get(ue__conf_props, &conf->s, p->name, v, &size);
        if (v && *v && uc__prop_is_secret(p->name)) {
            free(v);
            v = strdup("[redacted]");
        }
        arr[i++] = strdup(p->name);
        arr[i++] = v;
    }
    if (arr) {
        size_t from = i;
        i = append_kafka(arr, i, from, kdump, kcnt);
        i = append_kafka(arr, i, from, tdump, tcnt);
    }
    rd_kafka_conf_dump_free(kdump, kcnt);
    if (tdump)
        rd_kafka_conf_dump_free(tdump, tcnt);
    *cntp = i;
    return arr;
}

void ue_conf_dump_free(const char **arr, size_t cnt)
{
    uc__dump_free(arr, cnt);
}

void ue_conf_set_delivery_cb(ue_conf_t *conf, ue_delivery_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->dr_cb = cb;
    conf->dr_opaque = opaque;
}

void ue_conf_set_log_cb(ue_conf_t *conf, ue_log_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->log_cb = cb;
    conf->log_opaque = opaque;
}
