/*
 * kafka_metrics.c - librdkafka's statistics JSON as metric families (see kafka_metrics.h).
 * Field names are those of librdkafka's STATISTICS.md.
 */
#include "kafka_metrics.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kafka_metrics {
    metric_t *up, *brokers_up, *rtt, *errors, *disconnects, *queue, *lag;
    char *buf; /* the statistics document, reused */
    size_t cap;
};

static metric_t *family(metrics_t *m, int gauge, const char *prefix, const char *suffix,
                        const char *help, const char *labels)
{
    char name[200];
    snprintf(name, sizeof(name), "%s_%s", prefix, suffix);
    return gauge ? metrics_gauge(m, name, help, labels) : metrics_counter(m, name, help, labels);
}

kafka_metrics_t *kafka_metrics_new(metrics_t *m, const char *prefix, int consumer)
{
    kafka_metrics_t *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->up = family(m, 1, prefix, "kafka_broker_up",
                   "1 when the client is connected to the broker, 0 when the connection is "
                   "down (brokers the client has used).",
                   "broker");
    k->brokers_up =
        family(m, 1, prefix, "kafka_brokers_up",
               "Brokers the client is connected to (0: the cluster is unreachable).", NULL);
    k->rtt = family(m, 1, prefix, "kafka_broker_rtt_seconds",
                    "Average request round-trip time to the broker over the last statistics "
                    "interval.",
                    "broker");
    k->errors =
        family(m, 0, prefix, "kafka_broker_errors_total",
               "Request errors with the broker: tx (send), rx (receive), timeout.", "broker,kind");
    k->disconnects = family(m, 0, prefix, "kafka_broker_disconnects_total",
                            "Connections to the broker lost.", "broker");
    if (consumer)
        k->lag = family(m, 1, prefix, "consumer_lag",
                        "Records of the partition after the committed offset (last stable "
                        "offset minus the offset stored at the last commit).",
                        "topic,partition");
    else
        k->queue = family(m, 1, prefix, "kafka_queue_messages",
                          "Messages in the producer's queues, not yet acknowledged.", NULL);
    if (!k->up || !k->brokers_up || !k->rtt || !k->errors || !k->disconnects ||
        !(k->lag || k->queue)) {
        free(k);
        return NULL;
    }
    return k;
}

void kafka_metrics_destroy(kafka_metrics_t *k)
{
    if (!k)
        return;
    free(k->buf);
    free(k);
}

static double number(const cJSON *o, const char *name, double otherwise)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : otherwise;
}

static const char *string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Brokers: the real ones (node id >= 0) the client has used; a bootstrap address counts
 * towards brokers_up only, so that "unreachable from the start" shows as 0. */
static void update_brokers(kafka_metrics_t *k, const cJSON *brokers)
{
    const cJSON *b;
    int up_count = 0;
    metric_clear(k->up);
    metric_clear(k->rtt);
    metric_clear(k->errors);
    metric_clear(k->disconnects);
    cJSON_ArrayForEach(b, brokers)
    {
        const char *state = string(b, "state"), *source = string(b, "source");
        int up = !strcmp(state, "UP") || !strcmp(state, "UPDATE");
        if (!strcmp(source, "logical") || !strcmp(source, "internal"))
            continue;
        up_count += up;
        if (number(b, "nodeid", -1) < 0 || !strcmp(state, "INIT"))
            continue; /* a bootstrap address, or a broker never needed */
        const char *name[] = {b->string};
        metric_set(k->up, name, up);
        const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(b, "rtt");
        if (number(rtt, "cnt", 0) > 0)
            metric_set(k->rtt, name, number(rtt, "avg", 0) / 1e6);
        metric_set(k->errors, (const char *[]){b->string, "tx"}, number(b, "txerrs", 0));
        metric_set(k->errors, (const char *[]){b->string, "rx"}, number(b, "rxerrs", 0));
        metric_set(k->errors, (const char *[]){b->string, "timeout"}, number(b, "req_timeouts", 0));
        metric_set(k->disconnects, name, number(b, "disconnects", 0));
    }
    metric_set(k->brokers_up, NULL, up_count);
}

/* Lag of each assigned partition: measured from the stored offset (libenrich stores what each
 * transaction committed), else from the group's committed offset. */
static void update_lag(kafka_metrics_t *k, const cJSON *topics)
{
    const cJSON *t, *p;
    metric_clear(k->lag);
    cJSON_ArrayForEach(t, topics)
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(t, "partitions"))
        {
            double partition = number(p, "partition", -1);
            double lag = number(p, "consumer_lag_stored", -1);
            if (lag < 0)
                lag = number(p, "consumer_lag", -1);
            if (partition < 0 || lag < 0 ||
                !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "desired")))
                continue;
            char id[16];
            snprintf(id, sizeof(id), "%.0f", partition);
            metric_set(k->lag, (const char *[]){t->string, id}, lag);
        }
    }
}

int kafka_metrics_update(kafka_metrics_t *k, const char *json)
{
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    const char *type = string(root, "type");
    if (!k || !cJSON_IsObject(brokers) || (strcmp(type, "producer") && strcmp(type, "consumer"))) {
        cJSON_Delete(root);
        return -1;
    }
    update_brokers(k, brokers);
    if (k->queue)
        metric_set(k->queue, NULL, number(root, "msg_cnt", 0));
    if (k->lag)
        update_lag(k, cJSON_GetObjectItemCaseSensitive(root, "topics"));
    cJSON_Delete(root);
    return 0;
}

int kafka_metrics_refresh(kafka_metrics_t *k, kafka_stats_fn *get, void *handle)
{
    size_t need = k->cap;
    for (int tries = 0; tries < 3; tries++) {
        if (need + 1 > k->cap) {
            size_t cap = need + 4096;
            char *grown = realloc(k->buf, cap);
            if (!grown)
                return -1;
            k->buf = grown;
            k->cap = cap;
        }
        need = get(handle, k->buf, k->cap);
        if (need == 0)
            return 1;
        if (need < k->cap)
            return kafka_metrics_update(k, k->buf);
    }
    return -1; /* growing faster than we read it */
}
