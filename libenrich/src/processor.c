/*
 * processor.c - the start of a processor's life (enr_processor_new): build the stages,
 * create the transactional producer (fencing an earlier instance), make sure the changelog
 * topic exists, restore stage state from it, open the profile consumer, join the group; plus
 * the rebalance callback (commit before partitions are revoked) and the sink that routes the
 * stages' outputs into the open transaction. The step itself (enr_poll) and the end are in
 * processor_step.c.
 */
#include "processor.h"
#include "clock.h"
#include "ue_props.h"
#include "ue_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- outputs of the stages go into the transaction --------------------------------------- */

static void sink_emit(void *opaque, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t value_len)
{
    enr__txn_produce(opaque, topic, key, key_len, value, value_len, NULL);
}

static void sink_changelog(void *opaque, const char *stage, const void *key, size_t key_len,
                           const void *value, size_t value_len)
{
    enr_processor_t *p = opaque;
    char small[512];
    size_t n = strlen(stage), len = n + 1 + key_len;
    char *buf = len <= sizeof(small) ? small : malloc(len); /* user-id keys may be long */
    if (!buf) {
        p->produce_failed = 1; /* the transaction must not commit without this state */
        return;
    }
    memcpy(buf, stage, n);
    buf[n] = '/';
    memcpy(buf + n + 1, key, key_len);
    enr__txn_produce(p, p->changelog_topic, buf, len, value, value_len, NULL);
    if (buf != small)
        free(buf);
}

/* ---- the group ------------------------------------------------------------------------ */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    enr_processor_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_topic_partition_list_t *mine = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            if (enr__is_output(p, tp->topic)) /* named in input.topics by mistake */
                continue;
            rd_kafka_topic_partition_list_add(mine, tp->topic, tp->partition)->offset =
                RD_KAFKA_OFFSET_INVALID; /* the group's committed offset */
            enr__clock_assign(p->pipe, tp->topic, tp->partition);
        }
        ue__log(&p->log, UE_LOG_INFO, "assigned %d partition(s)", mine->cnt);
        enr__owned_set(p, mine);
        rd_kafka_assign(rk, mine);
        rd_kafka_topic_partition_list_destroy(mine);
        return;
    }
    /* Revoked: commit what was done with these partitions while they are still ours. */
    p->in_callback = 1;
    if (p->in_txn && !p->fatal)
        enr__txn_commit(p, 30000);
    p->in_callback = 0;
    enr__owned_set(p, NULL);
    rd_kafka_assign(rk, NULL);
}

/* ---- creation ---------------------------------------------------------------------------- */

/* librdkafka's own log lines go where the processor's go (enr_conf_set_log_cb). */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enr_processor_t *p = rd_kafka_opaque(rk);
    ue__log(&p->log, level, "rdkafka %s: %s", fac, buf);
}

rd_kafka_conf_t *enr__kafka_conf(enr_processor_t *p, const rd_kafka_conf_t *base)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(base);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    return conf;
}

static int make_names(enr_processor_t *p)
{
    const enr__settings_t *s = &p->conf->s;
    char buf[600];
    snprintf(buf, sizeof(buf), "enrich-%s", s->group_id);
    p->transactional_id = strdup(s->transactional_id ? s->transactional_id : buf);
    snprintf(buf, sizeof(buf), "%s.changelog", s->group_id);
    p->changelog_topic = strdup(s->changelog_topic ? s->changelog_topic : buf);
    return p->transactional_id && p->changelog_topic ? 0 : -1;
}

static int open_producer(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = enr__kafka_conf(p, p->conf->producer);
    if (rd_kafka_conf_set(conf, "transactional.id", p->transactional_id, errstr, errstr_size) ||
        !(p->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    /* Fences an earlier instance with the same id and aborts what it left open. */
    rd_kafka_error_t *err = rd_kafka_init_transactions(p->producer, 60000);
    if (err) {
        ue__errstr(errstr, errstr_size, "init transactions: %s", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return -1;
    }
    return 0;
}

/* Joins the group; the input topics are subscribed by enr__subscription_refresh(). */
static int open_consumer(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = enr__kafka_conf(p, p->conf->consumer);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, enr__on_kafka_stats);
    if (rd_kafka_conf_set(conf, "group.id", p->conf->s.group_id, errstr, errstr_size) ||
        !(p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    p->queue = rd_kafka_queue_get_consumer(p->consumer);
    enr__owned_set(p, NULL);
    char v[32];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(p->conf->consumer, "queued.min.messages", v, &n) == RD_KAFKA_CONF_OK)
        p->queued_min = atoll(v);
    if (enr__subscription_refresh(p, 10000) < 0) {
        ue__errstr(errstr, errstr_size, "subscribe to input.topics failed");
        return -1;
    }
    return 0;
}

void enr__processor_free(enr_processor_t *p)
{
    if (p->queue)
        rd_kafka_queue_destroy(p->queue);
    if (p->consumer)
        rd_kafka_destroy(p->consumer);
    if (p->profiles)
        rd_kafka_destroy(p->profiles);
    if (p->producer)
        rd_kafka_destroy(p->producer);
    enr_pipeline_destroy(p->pipe);
    free(p->transactional_id);
    free(p->changelog_topic);
    enr__subscription_free(p);
    if (p->owned)
        rd_kafka_topic_partition_list_destroy(p->owned);
    ue__kstats_free(&p->kstats);
    free(p);
}

enr_processor_t *enr_processor_new(enr_conf_t *conf, char *errstr, size_t errstr_size)
{
    enr_processor_t *p = conf ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        ue__errstr(errstr, errstr_size, conf ? "out of memory" : "conf must not be NULL");
        return NULL;
    }
    p->conf = conf;
    ue__kstats_init(&p->kstats);
    p->log = enr__conf_logger(conf, "enrich");
    p->sink = (enr__sink_t){sink_emit, sink_changelog, p};
    /* The stages and the topic patterns are checked before any connection, so a bad stage
     * list, GeoIP file or regex fails at once instead of after the broker round trips. */
    if (make_names(p) || enr__subscription_init(p, errstr, errstr_size) ||
        !(p->pipe = enr__pipeline_new(conf, &p->sink, errstr, errstr_size)) ||
        open_producer(p, errstr, errstr_size) ||
        enr__changelog_ensure(p, errstr, errstr_size) ||
        enr__state_restore(p, errstr, errstr_size) ||
        enr__profiles_open(p, errstr, errstr_size) ||
        open_consumer(p, errstr, errstr_size)) {
        if (!p->transactional_id)
            ue__errstr(errstr, errstr_size, "out of memory");
        enr__processor_free(p);
        return NULL;
    }
    ue__log(&p->log, UE_LOG_NOTICE, "processor %s started: %s -> %s", p->transactional_id,
            conf->s.input_topics, conf->s.output_topic);
    return p;
}
