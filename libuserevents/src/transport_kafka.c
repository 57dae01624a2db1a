/*
 * transport_kafka.c - records to Kafka through librdkafka (see transport_kafka.h).
 *
 * The payload is produced without a copy: the record owns it, librdkafka points at it, and
 * the delivery report hands the record back. Topic handles are cached per event type.
 *
 * A fatal error of librdkafka's idempotent producer (seen after a broker was killed with
 * requests in flight: "out of order sequence number") leaves that producer unusable for good.
 * Its records are not failed: they go back to the sender as retriable, and the transport
 * replaces the producer with a new one (a new producer id) that sends them again, with the
 * same event ids, so nothing tracked is lost and dedup downstream drops what the old producer
 * had written.
 */
#include "transport_kafka.h"
#include "uc_kstats.h"
#include "uc_props.h"
#include "uc_time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC_SLOTS 256 /* open-addressing cache of topic handles, by event type */

typedef struct topic_slot {
    char *type;
    rd_kafka_topic_t *rkt;
} topic_slot_t;

typedef struct kafka_transport {
    ue__transport_t base;
    rd_kafka_t *rk;          /* NULL while a replacement could not be made yet */
    rd_kafka_conf_t *kconf;  /* a copy, to make a replacement after a fatal error */
    int fatal;               /* rk raised a fatal error: replace it (sender thread only) */
    int64_t next_replace_ms; /* when to try making a replacement again */
    char *prefix, *suffix; /* the template around "{type}" */
    const uc__logger_t *log;
    topic_slot_t topics[TOPIC_SLOTS];
    uc__kstats_t stats;         /* the latest librdkafka statistics, for any thread */
} kafka_transport_t;

static int topic_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int ue__topic_template_valid(const char *template, char *errstr, size_t errstr_size)
{
    const char *hole = strstr(template, "{type}");
    size_t fixed = strlen(template) - (hole ? 6 : 0);
    if (hole && strstr(hole + 6, "{type}")) {
        uc__errstr(errstr, errstr_size, "topic.template: \"{type}\" may appear only once");
        return -1;
    }
    for (const char *p = template; *p; p++) {
        if (p == hole) {
            p += 5;
            continue;
        }
        if (!topic_char_ok(*p)) {
            uc__errstr(errstr, errstr_size,
                       "topic.template: '%c' is not allowed in a Kafka topic name", *p);
            return -1;
        }
    }
    if (fixed + (hole ? 200 : 0) > 249 || fixed + (hole ? 1 : 0) == 0) {
        uc__errstr(errstr, errstr_size,
                   "topic.template: topic names must be 1..249 characters (types may have 200)");
        return -1;
    }
    return 0;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static rd_kafka_topic_t *topic_new(kafka_transport_t *kt, const char *type)
{
    char name[512];
    snprintf(name, sizeof(name), "%s%s%s", kt->prefix, kt->suffix ? type : "",
             kt->suffix ? kt->suffix : "");
    return rd_kafka_topic_new(kt->rk, name, NULL);
}

static rd_kafka_topic_t *topic_for(kafka_transport_t *kt, const char *type)
{
    uint32_t i = hash_str(type) % TOPIC_SLOTS;
    for (uint32_t probe = 0; probe < TOPIC_SLOTS; probe++, i = (i + 1) % TOPIC_SLOTS) {
        topic_slot_t *slot = &kt->topics[i];
        if (slot->type && strcmp(slot->type, type) == 0)
            return slot->rkt;
        if (slot->type)
            continue;
        rd_kafka_topic_t *rkt = topic_new(kt, type);
        if (!rkt || !(slot->type = strdup(type))) {
            if (rkt)
                rd_kafka_topic_destroy(rkt);
            return NULL;
        }
        slot->rkt = rkt;
        return rkt;
    }
    return NULL; /* more than TOPIC_SLOTS event types: kafka_send makes its own handle */
}

static int kafka_send(ue__transport_t *t, ue__record_t *rec, char *errstr, size_t errstr_size)
{
    kafka_transport_t *kt = (kafka_transport_t *)t;
    if (kt->fatal || !kt->rk)
        return UE__SEND_FULL; /* the record waits for the replacement producer */
    rd_kafka_topic_t *rkt = topic_for(kt, ue__record_type(rec)), *own = NULL;
    char version[8] = "1"; /* formatted only for records of another schema version */

    if (!rkt) /* past TOPIC_SLOTS types: a reference for this send only (librdkafka shares it) */
        rkt = own = topic_new(kt, ue__record_type(rec));
    if (!rkt) {
        uc__errstr(errstr, errstr_size, "no topic handle for type \"%s\"", ue__record_type(rec));
        return UE__SEND_FAILED;
    }
    size_t len = ue__record_stamp_sent_at(rec, uc__wall_ms());
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    if (rec->schema_version != 1)
        snprintf(version, sizeof(version), "%u", rec->schema_version);
    rd_kafka_header_add(hdrs, "ue-event-id", -1, rec->event_id, 16);
    rd_kafka_header_add(hdrs, "ue-schema-version", -1, version, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        kt->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE(ue__record_payload(rec), len),
        RD_KAFKA_V_KEY(ue__record_key(rec), rec->key_len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
    if (own)
        rd_kafka_topic_destroy(own); /* queued messages keep their own reference */
    if (!err)
        return UE__SEND_OK;
    rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        kt->fatal = 1; /* before its error event was served: the record waits all the same */
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__FATAL)
        return UE__SEND_FULL;
    uc__errstr(errstr, errstr_size, "%s", rd_kafka_err2str(err));
    return UE__SEND_FAILED;
}

/* Errors after which the same record may succeed later. */
static int is_retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        return 1;
    default:
        return 0;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_transport_t *kt = opaque;
    ue__record_t *rec = m->_private;
    (void)rk;
    if (!m->err) {
        kt->base.on_result(kt->base.owner, rec, UE_OK, "", 0);
        return;
    }
    int purged = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                 m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    /* Whatever a producer with a fatal error reports, a new producer may still send. */
    int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL || rd_kafka_fatal_error(rk, NULL, 0);
    if (fatal)
        kt->fatal = 1;
    kt->base.on_result(kt->base.owner, rec, purged && !fatal ? UE_ERR_SHUTDOWN : UE_ERR_BROKER,
                       rd_kafka_err2str(m->err), fatal || is_retriable(m->err));
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafka_transport_t *kt = rd_kafka_opaque(rk);
    /* A broker that cannot be reached is routine for an SDK with a spool, not an error. */
    if (!strcmp(fac, "FAIL") && level < UC_LOG_INFO)
        level = UC_LOG_INFO;
    uc__log(kt->log, level, "kafka %s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_transport_t *kt = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        kt->fatal = 1; /* replaced at the next poll: see the top of the file */
    /* Broker-down and similar are retried by librdkafka; the spool covers the outage. A
     * refused password or certificate is retried too, but heals only when someone fixes the
     * configuration: the default log level must show it. */
    int misconfigured = err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL ||
                        err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
                        err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                        err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    uc__log(kt->log, err == RD_KAFKA_RESP_ERR__FATAL || misconfigured ? UC_LOG_ERR : UC_LOG_INFO,
            "kafka: %s: %s", rd_kafka_err2name(err), reason);
}

/* librdkafka's statistics ("kafka.statistics.interval.ms"), from rd_kafka_poll() on the
 * background thread: kept as the latest copy for kafka_stats_json(). */
static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    uc__kstats_store(&((kafka_transport_t *)opaque)->stats, json, json_len);
    return 0; /* librdkafka frees its own buffer */
}

static size_t kafka_stats_json(ue__transport_t *t, char *buf, size_t size)
{
    return uc__kstats_copy(&((kafka_transport_t *)t)->stats, buf, size);
}

static void topics_free(kafka_transport_t *kt)
{
    for (int i = 0; i < TOPIC_SLOTS; i++) {
        if (kt->topics[i].rkt)
            rd_kafka_topic_destroy(kt->topics[i].rkt);
        free(kt->topics[i].type);
        kt->topics[i] = (topic_slot_t){0};
    }
}

static void kafka_purge(ue__transport_t *t, int timeout_ms);

/* The producer raised a fatal error: its records come back (retriable), then a new producer
 * takes its place. Tried again a second later when librdkafka cannot make one. */
static void replace_producer(kafka_transport_t *kt)
{
    char errstr[512];
    if (uc__mono_ms() < kt->next_replace_ms)
        return;
    if (kt->rk) {
        char why[512] = "";
        rd_kafka_fatal_error(kt->rk, why, sizeof(why));
        uc__log(kt->log, UC_LOG_WARNING, "kafka: the producer failed for good (%s): its "
                "events are sent again by a new one", why);
        kafka_purge(&kt->base, 10000); /* every record reported back, to be sent again */
        topics_free(kt);
        rd_kafka_destroy(kt->rk);
        kt->rk = NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(kt->kconf);
    kt->rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)) : NULL;
    if (!kt->rk) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        uc__log(kt->log, UC_LOG_ERR, "kafka: no new producer yet: %s", conf ? errstr : "no memory");
        kt->next_replace_ms = uc__mono_ms() + 1000;
        return;
    }
    kt->fatal = 0;
}

static void kafka_poll(ue__transport_t *t, int timeout_ms)
{
    kafka_transport_t *kt = (kafka_transport_t *)t;
    if (kt->fatal || !kt->rk)
        replace_producer(kt);
    if (kt->rk)
        rd_kafka_poll(kt->rk, timeout_ms);
}

static size_t kafka_in_flight(ue__transport_t *t)
{
    kafka_transport_t *kt = (kafka_transport_t *)t;
    int n = kt->rk ? rd_kafka_outq_len(kt->rk) : 0;
    return n > 0 ? (size_t)n : 0;
}

static void kafka_purge(ue__transport_t *t, int timeout_ms)
{
    kafka_transport_t *kt = (kafka_transport_t *)t;
    if (!kt->rk)
        return;
    rd_kafka_purge(kt->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t deadline = uc__mono_ms() + timeout_ms;
    do /* in-flight requests report once they are answered or time out */
        rd_kafka_poll(kt->rk, 10);
    while (rd_kafka_outq_len(kt->rk) > 0 && uc__mono_ms() < deadline);
}

static void kafka_destroy(ue__transport_t *t)
{
    kafka_transport_t *kt = (kafka_transport_t *)t;
    topics_free(kt);
    if (kt->rk)
        rd_kafka_destroy(kt->rk);
    if (kt->kconf)
        rd_kafka_conf_destroy(kt->kconf);
    free(kt->prefix);
    free(kt->suffix);
    uc__kstats_free(&kt->stats);
    free(kt);
}

rd_kafka_t *ue__transport_kafka_handle(ue__transport_t *t)
{
    return ((kafka_transport_t *)t)->rk;
}

static const ue__transport_ops_t kafka_ops = {
    .send = kafka_send,
    .poll = kafka_poll,
    .in_flight = kafka_in_flight,
    .purge = kafka_purge,
    .destroy = kafka_destroy,
    .stats_json = kafka_stats_json,
};

ue__transport_t *ue__transport_kafka_new(rd_kafka_conf_t *kconf, const char *topic_template,
                                         const uc__logger_t *log, ue__result_fn *on_result,
                                         void *owner, char *errstr, size_t errstr_size)
{
    kafka_transport_t *kt = calloc(1, sizeof(*kt));
    const char *hole = strstr(topic_template, "{type}");

    if (!kt) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    kt->base = (ue__transport_t){.ops = &kafka_ops, .on_result = on_result, .owner = owner};
    kt->log = log;
    uc__kstats_init(&kt->stats);
    kt->prefix = hole ? strndup(topic_template, (size_t)(hole - topic_template))
                      : strdup(topic_template);
    kt->suffix = hole ? strdup(hole + 6) : NULL;
    if (!kt->prefix || (hole && !kt->suffix)) {
        kafka_destroy(&kt->base);
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_opaque(kconf, kt);
    rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
    rd_kafka_conf_set_log_cb(kconf, on_log);
    rd_kafka_conf_set_error_cb(kconf, on_error);
    rd_kafka_conf_set_stats_cb(kconf, on_stats);
    kt->kconf = rd_kafka_conf_dup(kconf);
    kt->rk = kt->kconf ? rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size) : NULL;
    if (!kt->rk) {
        if (!kt->kconf)
            uc__errstr(errstr, errstr_size, "out of memory");
        kafka_destroy(&kt->base);
        return NULL;
    }
    return &kt->base;
}
