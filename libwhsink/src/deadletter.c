/*
 * deadletter.c - see deadletter.h.
 */
#include "deadletter.h"
#include "uc_props.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct whs__dl {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    const uc__logger_t *log;
    _Atomic int64_t failed;
};

/* Consumer-only keys the producer copy leaves out (librdkafka would warn about each). */
static const char *consumer_only[] = {
    "group.id",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "offset.store.method",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "auto.offset.reset",
    "consume.callback.max.messages",
    "allow.auto.create.topics",
    "client.rack",
    "consume_cb",
    "rebalance_cb",
    "offset_commit_cb",
    "fetch.queue.backoff.ms",
    "default_topic_conf", /* holds auto.offset.reset: the producer gets librdkafka's defaults */
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    whs__dl_t *dl = rd_kafka_opaque(rk);
    uc__log(dl->log, level, "rdkafka dead-letter producer %s: %s", fac, buf);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    whs__dl_t *dl = opaque;
    (void)rk;
    if (!m->err)
        return;
    atomic_fetch_add(&dl->failed, 1);
    uc__log(dl->log, UC_LOG_ERR, "dead letter to %s not delivered: %s", rd_kafka_topic_name(m->rkt),
            rd_kafka_err2str(m->err));
}

whs__dl_t *whs__dl_new(const rd_kafka_conf_t *kconf, const char *topic, const uc__logger_t *log,
                       char *errstr, size_t errstr_size)
{
    whs__dl_t *dl = calloc(1, sizeof(*dl));
    rd_kafka_conf_t *conf = rd_kafka_conf_dup_filter(
        kconf, sizeof(consumer_only) / sizeof(consumer_only[0]), consumer_only);
    if (!dl || !conf) {
        free(dl);
        if (conf)
            rd_kafka_conf_destroy(conf);
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    dl->log = log;
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "message.timeout.ms", "0", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, dl);
    dl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!dl->rk) {
        rd_kafka_conf_destroy(conf);
        free(dl);
        return NULL;
    }
    dl->rkt = rd_kafka_topic_new(dl->rk, topic, NULL);
    return dl;
}

void whs__dl_destroy(whs__dl_t *dl, int timeout_ms)
{
    if (!dl)
        return;
    if (rd_kafka_flush(dl->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        uc__log(dl->log, UC_LOG_WARNING, "%d dead letters not delivered at shutdown",
                rd_kafka_outq_len(dl->rk));
    rd_kafka_topic_destroy(dl->rkt);
    rd_kafka_destroy(dl->rk);
    free(dl);
}

int whs__dl_send(whs__dl_t *dl, const void *value, size_t len, const void *key, size_t key_len,
                 const char *reason, const char *src_topic, int32_t src_partition,
                 int64_t src_offset, const char *format)
{
    char part[16], off[24];
    if (!dl)
        return 0;
    snprintf(part, sizeof(part), "%" PRId32, src_partition);
    snprintf(off, sizeof(off), "%" PRId64, src_offset);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        dl->rk, RD_KAFKA_V_RKT(dl->rkt), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("reason", reason, -1), RD_KAFKA_V_HEADER("source.topic", src_topic, -1),
        RD_KAFKA_V_HEADER("source.partition", part, -1),
        RD_KAFKA_V_HEADER("source.offset", off, -1), RD_KAFKA_V_HEADER("format", format, -1),
        RD_KAFKA_V_END);
    if (err) {
        atomic_fetch_add(&dl->failed, 1);
        uc__log(dl->log, UC_LOG_ERR, "dead letter refused: %s", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_poll(dl->rk, 0);
    return 0;
}

int whs__dl_pending(whs__dl_t *dl)
{
    if (!dl)
        return 0;
    rd_kafka_poll(dl->rk, 0);
    return rd_kafka_outq_len(dl->rk) > 0;
}

int whs__dl_flush(whs__dl_t *dl, int timeout_ms)
{
    if (!dl || rd_kafka_outq_len(dl->rk) == 0)
        return 0;
    return rd_kafka_flush(dl->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int64_t whs__dl_take_failed(whs__dl_t *dl)
{
    return dl ? atomic_exchange(&dl->failed, 0) : 0;
}
