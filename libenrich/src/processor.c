/*
 * processor.c - the start of a processor's life (enr_processor_new): check the stages,
 * create the transactional producer (fencing an earlier incarnation of this instance),
 * open the profile consumer, and join the group once input topics exist; plus the rebalance
 * callback: a repartition partition assigned brings its task (restored from its changelog
 * partition) and partition p of every input topic; a revoked one commits the open
 * transaction first and drops the task. The step itself (enr_poll) and the end are in
 * processor_step.c, the tasks in task.c.
 */
#include "processor.h"
#include "clock.h"
#include "uc_kclose.h"
#include "uc_props.h"
#include "uc_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the group: repartition partitions bring tasks --------------------------------------- */

static int cooperative(const enr_processor_t *p)
{
    return !strcmp(rd_kafka_rebalance_protocol(p->consumer), "COOPERATIVE");
}

void enr__assignment_change(enr_processor_t *p, rd_kafka_topic_partition_list_t *parts, int add)
{
    rd_kafka_error_t *error = NULL;
    if (cooperative(p)) {
        error = add ? rd_kafka_incremental_assign(p->consumer, parts)
                    : rd_kafka_incremental_unassign(p->consumer, parts);
    } else { /* eager (a range assignor configured): the whole assignment each time */
        rd_kafka_topic_partition_list_t *now = NULL;
        if (rd_kafka_assignment(p->consumer, &now) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (!add)
                    rd_kafka_topic_partition_list_del(now, tp->topic, tp->partition);
                else if (!rd_kafka_topic_partition_list_find(now, tp->topic, tp->partition))
                    rd_kafka_topic_partition_list_add(now, tp->topic, tp->partition);
            }
            rd_kafka_assign(p->consumer, now->cnt ? now : NULL);
            rd_kafka_topic_partition_list_destroy(now);
        }
    }
    if (error) {
        uc__log(&p->log, UC_LOG_ERR, "%s: %s", add ? "assign" : "unassign",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

/* The tasks that the repartition partitions of @p parts stand for, and every partition they
 * bring (input topics included); NULL when none. */
static rd_kafka_topic_partition_list_t *tasks_of(const enr_processor_t *p,
                                                 const rd_kafka_topic_partition_list_t *parts,
                                                 int32_t *ids, int *n)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(parts->cnt * 4);
    *n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (strcmp(tp->topic, p->repartition_topic) || tp->partition >= p->ntasks)
            continue;
        ids[(*n)++] = tp->partition;
        enr__task_partitions(p, tp->partition, all);
    }
    return all;
}

static void log_tasks(enr_processor_t *p, const char *what, const int32_t *ids, int n)
{
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < n && len + 12 < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", i ? "," : "", (int)ids[i]);
    int owned = 0;
    for (int32_t i = 0; i < p->ntasks; i++)
        owned += p->tasks[i] != NULL;
    uc__log(&p->log, UC_LOG_NOTICE, "tasks %s: %s; %d of %d owned", what, n ? list : "none",
            owned, (int)p->ntasks);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    enr_processor_t *p = opaque;
    int32_t *ids = malloc(((size_t)parts->cnt + 1) * sizeof(*ids));
    int n = 0;
    rd_kafka_topic_partition_list_t *all = ids ? tasks_of(p, parts, ids, &n) : NULL;
    int64_t started = uc__mono_ms();
    p->in_callback = 1;
    if (!all) {
        enr__processor_fail(p, ENR_ERR_KAFKA_FATAL, "out of memory in a rebalance");
    } else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && p->closing) {
        enr__assignment_change(p, all, 1); /* only to close: see enr_processor_destroy() */
    } else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        enr__tasks_take(p, ids, n); /* restores each from its changelog partition */
        enr__owned_change(p, all, 1);
        enr__assignment_change(p, all, 1);
        log_tasks(p, "assigned", ids, n);
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        /* Commit what was done with these tasks while they are still ours; lost ones were
         * taken already: their work is redone by the new owner. */
        if (!lost && p->in_txn && !p->fatal)
            enr__txn_commit(p, 30000);
        enr__tasks_drop(p, ids, n);
        enr__owned_change(p, all, 0);
        enr__assignment_change(p, all, 0);
        if (lost && p->in_txn && !p->fatal)
            enr__txn_abort(p, "tasks lost: out of the group too long, or fenced");
        log_tasks(p, lost ? "lost" : "revoked", ids, n);
    }
    p->in_callback = 0;
    atomic_fetch_add(&p->stats[ENR_STAT_REBALANCES], 1);
    atomic_fetch_add(&p->stats[ENR_STAT_REBALANCE_MS], uc__mono_ms() - started);
    if (all)
        rd_kafka_topic_partition_list_destroy(all);
    free(ids);
}

int enr__consumer_close(enr_processor_t *p, int64_t deadline)
{
    return uc__consumer_close(p->consumer, on_rebalance, p, deadline);
}

/* The first reason is kept: a later error is a consequence of it. Every fatal code is
 * negative, so enr_poll() can never mistake one for a count of records. */
enr_err_t enr__processor_fail(enr_processor_t *p, enr_err_t err, const char *reason)
{
    uc__log(&p->log, UC_LOG_ERR, "%s: the processor stops (%s)", reason, enr_err2name(err));
    if (!p->fatal) {
        p->fatal = err;
        size_t n = strnlen(reason, sizeof(p->last_error) - 1); /* cut, never overflowed */
        memcpy(p->last_error, reason, n);
        p->last_error[n] = '\0';
    }
    return p->fatal;
}

/* ---- creation ---------------------------------------------------------------------------- */

/* librdkafka's own log lines go where the processor's go (enr_conf_set_log_cb). */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enr_processor_t *p = rd_kafka_opaque(rk);
    if (!strcmp(fac, "SESSTMOUT")) /* see consumer_error(): a fence that may be our own */
        atomic_store(&p->session_lost_ms, uc__mono_ms());
    uc__log(&p->log, level, "rdkafka %s: %s", fac, buf);
}

rd_kafka_conf_t *enr__kafka_conf(enr_processor_t *p, const rd_kafka_conf_t *base)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(base);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    return conf;
}

static int set(const char *v)
{
    return v && *v;
}

static int make_names(enr_processor_t *p)
{
    const enr__settings_t *s = &p->conf->s;
    char buf[600], host[256] = "enrich";
    if (!set(s->instance_id) && gethostname(host, sizeof(host) - 1) == 0)
        host[sizeof(host) - 1] = '\0';
    p->instance_id = strdup(set(s->instance_id) ? s->instance_id : host);
    snprintf(buf, sizeof(buf), "enrich-%s-%s", s->group_id, p->instance_id ? p->instance_id : "");
    p->transactional_id = strdup(set(s->transactional_id) ? s->transactional_id : buf);
    snprintf(buf, sizeof(buf), "%s.changelog", s->group_id);
    p->changelog_topic = strdup(set(s->changelog_topic) ? s->changelog_topic : buf);
    snprintf(buf, sizeof(buf), "%s.repartition", s->group_id);
    p->repartition_topic = strdup(set(s->repartition_topic) ? s->repartition_topic : buf);
    return p->instance_id && p->transactional_id && p->changelog_topic && p->repartition_topic
               ? 0
               : -1;
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
        uc__errstr(errstr, errstr_size, "init transactions: %s", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        return -1;
    }
    return 0;
}

/* The group consumer, static member "instance.id"; it joins once input topics exist
 * (enr__subscription_refresh(), now or from enr_poll()). */
static int open_consumer(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = enr__kafka_conf(p, p->conf->consumer);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, enr__on_kafka_stats);
    uc__fetch_kick_init(&p->fetch_kick, conf);
    if (rd_kafka_conf_set(conf, "group.id", p->conf->s.group_id, errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "group.instance.id", p->instance_id, errstr, errstr_size) ||
        !(p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    p->queue = rd_kafka_queue_get_consumer(p->consumer);
    enr__owned_set(p, NULL);
    return enr__subscription_refresh(p, 10000, errstr, errstr_size) < 0 ? -1 : 0;
}

void enr__processor_free(enr_processor_t *p)
{
    if (p->queue)
        rd_kafka_queue_destroy(p->queue);
    if (p->consumer) /* closed by enr__consumer_close() already, or left to the session */
        rd_kafka_destroy_flags(p->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (p->profiles)
        rd_kafka_destroy(p->profiles);
    if (p->restorer)
        rd_kafka_destroy(p->restorer);
    if (p->producer)
        rd_kafka_destroy(p->producer);
    enr__tasks_free(p);
    enr_pipeline_destroy(p->pipe);
    free(p->instance_id);
    free(p->transactional_id);
    free(p->changelog_topic);
    free(p->repartition_topic);
    enr__subscription_free(p);
    if (p->owned)
        rd_kafka_topic_partition_list_destroy(p->owned);
    uc__kstats_free(&p->kstats);
    free(p);
}

enr_processor_t *enr_processor_new(enr_conf_t *conf, char *errstr, size_t errstr_size)
{
    enr_processor_t *p = conf ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        uc__errstr(errstr, errstr_size, conf ? "out of memory" : "conf must not be NULL");
        return NULL;
    }
    p->conf = conf;
    p->image_budget.max = (size_t)conf->s.rollback_max_bytes;
    uc__kstats_init(&p->kstats);
    p->log = enr__conf_logger(conf, "enrich");
    /* The stages and the topic patterns are checked before any connection, so a bad stage
     * list, GeoIP file or regex fails at once instead of after the broker round trips. */
    if (make_names(p) || enr__subscription_init(p, errstr, errstr_size) ||
        !(p->pipe = enr__pipeline_new(conf, NULL, NULL, errstr, errstr_size)) ||
        open_producer(p, errstr, errstr_size) ||
        enr__profiles_open(p, errstr, errstr_size) ||
        open_consumer(p, errstr, errstr_size)) {
        if (!p->transactional_id)
            uc__errstr(errstr, errstr_size, "out of memory");
        enr__processor_free(p);
        return NULL;
    }
    uc__log(&p->log, UC_LOG_NOTICE, "processor %s (group %s) started: %s -> %s",
            p->instance_id, conf->s.group_id, conf->s.input_topics, conf->s.output_topic);
    return p;
}
