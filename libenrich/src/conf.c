/*
 * conf.c - libenrich's property table and the public enr_conf_* API (see conf.h).
 */
#include "conf.h"
#include "stage.h"

#include <stdlib.h>
#include <string.h>

#define S(field) offsetof(enr__settings_t, field)
#define INT(name, field, min, max, def, doc)                                                       \
    {                                                                                              \
        name, UC__PROP_INT, S(field), min, max, def, NULL, doc                                     \
    }
#define DBL(name, field, min, max, def, doc)                                                       \
    {                                                                                              \
        name, UC__PROP_DOUBLE, S(field), min, max, def, NULL, doc                                  \
    }
#define STR(name, field, def, doc) {name, UC__PROP_STR, S(field), 0, 1000, def, NULL, doc}

const uc__prop_t enr__conf_props[] = {
    STR("group.id", group_id, "enrich", "Consumer group of the raw topics: the processors "
        "of one group share its input partitions (tasks) and their state."),
    STR("instance.id", instance_id, "",
        "This processor within its group, unique per group (empty: the host name). A restart "
        "with the same id takes its tasks back at once (static membership, "
        "group.instance.id); a second running process with the same id fences the first."),
    STR("transactional.id", transactional_id, "",
        "Transactional id of the producer; empty: \"enrich-<group.id>-<instance.id>\"."),
    STR("input.topics", input_topics, "^events\\..*",
        "Raw topics: comma-separated names or ^regexes. The output topics are never read. "
        "They must be co-partitioned (the SDK keys by user id): all with the same partition "
        "count, the number of tasks."),
    STR("output.topic", output_topic, "events.enriched", "The enriched events."),
    STR("dead_letter.topic", dead_letter_topic, "events.dead_letter",
        "Records that could not be processed, with the reason and source in headers."),
    STR("aggregates.topic", aggregates_topic, "events.aggregates", "Closed window aggregates."),
    STR("alerts.topic", alerts_topic, "events.alerts", "Rate anomaly alerts."),
    STR("changelog.topic", changelog_topic, "",
        "Compacted topic of stage state, one partition per task; empty: "
        "\"<group.id>.changelog\". Created with the input's partition count when missing; "
        "refused when it has another count."),
    STR("repartition.topic", repartition_topic, "",
        "Internal topic of window partials, one partition per task; empty: "
        "\"<group.id>.repartition\". Its partitions are what the group assigns: partition p "
        "brings task p (partition p of every input topic)."),
    STR("stages", stages, "dedup,clock,useragent,geoip,profile,session,window,anomaly",
        "Stages in the order they run, built-in or added with enr_conf_add_stage()."),
    INT("txn.max.events", txn_max_events, 1, 10000000, "10000",
        "Most input events in one transaction."),
    INT("txn.max.bytes", txn_max_bytes, 1024, INT64_C(1) << 31, "4194304",
        "Most bytes (keys and values of outputs, state and partials) one transaction produces: "
        "the producer holds them until the commit, so this bounds its memory when a backlog "
        "fills every transaction at once."),
    INT("txn.max.ms", txn_max_ms, 1, 600000, "100",
        "Longest a transaction stays open: bounds end-to-end latency."),
    INT("rollback.max.bytes", rollback_max_bytes, 0, INT64_C(1) << 40, "8388608",
        "Memory the processor keeps to roll its tasks' state back in memory when a transaction "
        "aborts (a copy of the committed state, task by task). A task whose state does not fit "
        "rolls back by reading its changelog partition again. 0: always from the changelog."),
    INT("batch.max.events", batch_max_events, 1, 100000, "1000",
        "Most input records taken from the consumer in one step."),
    INT("input.max.bytes", input_max_bytes, 64, 64 << 20, "1000000",
        "Larger input records go to the dead-letter topic."),
    INT("time.max.future.ms", time_max_future_ms, 0, INT64_C(1) << 40, "86400000",
        "An event whose time (the clock stage's corrected time, else its timestamp) is more "
        "than this after its receive time goes to the dead-letter topic, counted in "
        "future_events, before any stage sees it. Dead-lettered, not clamped: a clock that far "
        "ahead says nothing about when the event happened, and a clamped time would put it "
        "into a window and a session it does not belong to; the dead letter keeps it intact. "
        "The partition clock (the watermark) never runs ahead of the receive time, so an "
        "event within this tolerance cannot close windows early either."),
    INT("dedup.window.ms", dedup_window_ms, 1000, INT64_C(1) << 40, "3600000",
        "An event id seen within this time (event time) is a duplicate."),
    INT("dedup.max.ids", dedup_max_ids, 1000, 100000000, "1000000",
        "Most event ids remembered per task (input partition); the oldest are forgotten "
        "first. About 40 bytes each: a processor's window takes up to its tasks times this."),
    STR("profile.topic", profile_topic, "users.profiles",
        "Compacted topic of user profiles (key user id, value UserProfile)."),
    STR("geoip.database", geoip_database, "",
        "MaxMind DB file (GeoLite2/GeoIP2 City or ASN). Empty: geo-IP off."),
    INT("session.gap.ms", session_gap_ms, 1000, INT64_C(1) << 40, "1800000",
        "Inactivity (event time) after which a user's next event starts a new session."),
    INT("window.size.ms", window_size_ms, 1000, INT64_C(1) << 40, "60000",
        "Length of the tumbling aggregate windows (event time)."),
    INT("window.allowed.lateness.ms", window_lateness_ms, 0, INT64_C(1) << 40, "5000",
        "How far behind the newest event time a window stays open."),
    STR("window.sum.property", window_sum_property, "amount",
        "Numeric property summed per window (empty: no sum)."),
    INT("window.idle.timeout.ms", window_idle_ms, 0, INT64_C(1) << 40, "60000",
        "An input partition without events for this long (processing time, counted from its "
        "assignment) no longer holds the watermark back. 0: never (windows then wait for "
        "every partition)."),
    {"anomaly.key", UC__PROP_ENUM, S(anomaly_key), 0, 0, "type", "type,user",
     "What anomaly rates are kept per: the event type or the user."},
    INT("anomaly.window.ms", anomaly_window_ms, 1000, INT64_C(1) << 40, "60000",
        "Window over which a rate is measured (event time)."),
    DBL("anomaly.zscore", anomaly_zscore, 0, 1000, "3",
        "z-score over which a window's rate is an anomaly."),
    DBL("anomaly.alpha", anomaly_alpha, 0, 1, "0.2",
        "Weight of the newest window in the EWMA baseline."),
    INT("anomaly.min.windows", anomaly_min_windows, 1, 100000, "5",
        "Windows of history a key needs before it can alert."),
    INT("anomaly.max.keys", anomaly_max_keys, 1, 10000000, "100000",
        "Most keys tracked; the least recently seen are forgotten first."),
    {"log.level", UC__PROP_ENUM, S(log_level), 0, 0, "warning", "error,warning,notice,info,debug",
     "Least severe level logged."},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

/* Settings that make exactly-once hold; "kafka.*" keys may override the rest. */
static const char *const consumer_defaults[][2] = {
    {"isolation.level", "read_committed"},
    /* Tasks that stay keep running through a rebalance; only moved ones stop. */
    {"partition.assignment.strategy", "cooperative-sticky"},
    /* A processor that died without coming back loses its tasks within 10 s (one that
     * restarts with its instance.id takes them back at once). */
    {"session.timeout.ms", "10000"},
    {"heartbeat.interval.ms", "2000"},
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "earliest"},
    {"topic.metadata.refresh.interval.ms", "5000"}, /* a new event type's topic: within 5 s */
    /* Prefetch is most of the memory: one fetch of 1 MB compressed is ~13 MB of records and
     * their ops, and librdkafka fetches again while fewer than queued.min.messages wait (the
     * stage wakes it when the queue runs low, processor_step.c). At the defaults (50 MB per
     * fetch) the first fetch took the whole backlog: 140 MB peak RSS in bench_enrich. */
    {"fetch.max.bytes", "1000000"},
    {"queued.max.messages.kbytes", "16384"},
    {"queued.min.messages", "5000"},
    {"statistics.interval.ms", "5000"}, /* lag and broker health: enr_kafka_stats_json() */
    {NULL, NULL},
};
static const char *const producer_defaults[][2] = {
    {"enable.idempotence", "true"},
    /* A processor that hangs (a zombie) with a transaction open holds back every read_committed
     * reader of what it wrote, and the next owner of its tasks, until the coordinator aborts
     * it: after 10 s, not librdkafka's 60 (transactions last txn.max.ms, 100 ms). */
    {"transaction.timeout.ms", "10000"},
    {"acks", "all"},
    {"compression.type", "zstd"},
    {"linger.ms", "5"},
    {"partitioner", "murmur2_random"},
    {NULL, NULL},
};

uc__logger_t enr__conf_logger(const enr_conf_t *conf, const char *prefix)
{
    static const int levels[] = {UC_LOG_ERR, UC_LOG_WARNING, UC_LOG_NOTICE, UC_LOG_INFO,
                                 UC_LOG_DEBUG};
    return (uc__logger_t){.level = levels[conf->s.log_level],
                          .prefix = prefix,
                          .fn = conf->log_cb,
                          .opaque = conf->log_opaque};
}

static void apply(rd_kafka_conf_t *kc, const char *const defaults[][2])
{
    for (int i = 0; defaults[i][0]; i++)
        rd_kafka_conf_set(kc, defaults[i][0], defaults[i][1], NULL, 0);
}

enr_conf_t *enr_conf_new(void)
{
    enr_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf)
        return NULL;
    conf->consumer = rd_kafka_conf_new();
    conf->producer = rd_kafka_conf_new();
    if (!conf->consumer || !conf->producer || uc__props_init(enr__conf_props, &conf->s)) {
        enr_conf_destroy(conf);
        return NULL;
    }
    apply(conf->consumer, consumer_defaults);
    apply(conf->producer, producer_defaults);
    return conf;
}

void enr_conf_destroy(enr_conf_t *conf)
{
    if (!conf)
        return;
    uc__props_free(enr__conf_props, &conf->s);
    if (conf->consumer)
        rd_kafka_conf_destroy(conf->consumer);
    if (conf->producer)
        rd_kafka_conf_destroy(conf->producer);
    while (conf->custom) {
        enr_stage_t *next = conf->custom->next;
        enr_stage_destroy(conf->custom);
        conf->custom = next;
    }
    free(conf);
}

static enr_conf_res_t kafka_set(rd_kafka_conf_t *kc, const char *name, const char *value,
                                char *errstr, size_t errstr_size)
{
    return (enr_conf_res_t)uc__kafka_conf_set(kc, name, value, errstr, errstr_size);
}

enr_conf_res_t enr_conf_set(enr_conf_t *conf, const char *name, const char *value,
                            char *errstr, size_t errstr_size)
{
    if (!conf || !name || !value) {
        uc__errstr(errstr, errstr_size, "conf, name and value must not be NULL");
        return ENR_CONF_INVALID;
    }
    if (!strncmp(name, "kafka.consumer.", 15))
        return kafka_set(conf->consumer, name + 15, value, errstr, errstr_size);
    if (!strncmp(name, "kafka.producer.", 15))
        return kafka_set(conf->producer, name + 15, value, errstr, errstr_size);
    if (!strncmp(name, "kafka.", 6)) {
        /* Shared keys: both clients must accept them (bootstrap, security, ...). */
        enr_conf_res_t rc = kafka_set(conf->consumer, name + 6, value, errstr, errstr_size);
        return rc ? rc : kafka_set(conf->producer, name + 6, value, errstr, errstr_size);
    }
    return (enr_conf_res_t)uc__prop_set(enr__conf_props, &conf->s, name, value, errstr,
                                        errstr_size);
}

enr_conf_res_t enr_conf_get(const enr_conf_t *conf, const char *name, char *dest,
                            size_t *dest_size)
{
    if (!conf || !name || !dest_size)
        return ENR_CONF_UNKNOWN;
    if (!strncmp(name, "kafka.producer.", 15))
        return rd_kafka_conf_get(conf->producer, name + 15, dest, dest_size) ? ENR_CONF_UNKNOWN
                                                                             : ENR_CONF_OK;
    if (!strncmp(name, "kafka.", 6)) {
        const char *key = strncmp(name, "kafka.consumer.", 15) ? name + 6 : name + 15;
        return rd_kafka_conf_get(conf->consumer, key, dest, dest_size) ? ENR_CONF_UNKNOWN
                                                                       : ENR_CONF_OK;
    }
    return (enr_conf_res_t)uc__prop_get(enr__conf_props, &conf->s, name, dest, dest_size);
}

enr_err_t enr_conf_add_stage(enr_conf_t *conf, enr_stage_t *stage)
{
    if (!conf || !stage) {
        enr_stage_destroy(stage);
        return ENR_ERR_INVALID_ARG;
    }
    for (enr_stage_t *s = conf->custom; s; s = s->next) {
        if (!strcmp(s->name, stage->name)) {
            enr_stage_destroy(stage);
            return ENR_ERR_INVALID_ARG;
        }
    }
    stage->next = conf->custom;
    conf->custom = stage;
    return ENR_OK;
}

void enr_conf_set_log_cb(enr_conf_t *conf, enr_log_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->log_cb = cb;
    conf->log_opaque = opaque;
}

void enr_conf_set_txn_cb(enr_conf_t *conf, enr_txn_cb_t *cb, void *opaque)
{
    if (!conf)
        return;
    conf->txn_cb = cb;
    conf->txn_opaque = opaque;
}
