/*
 * state.c - what a processor knows besides the raw events: stage state, kept in a compacted
 * changelog topic written inside the transactions and read back at start (and after an
 * abort); and the user profiles, materialised from the compacted profile topic.
 */
#include "processor.h"
#include "clock.h"
#include "uc_props.h"
#include "uc_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A consumer without a group, for reading whole topics (changelog, profiles). */
static rd_kafka_t *reader_new(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = enr__kafka_conf(p, p->conf->consumer);
    char group[300];
    snprintf(group, sizeof(group), "%s-reader", p->conf->s.group_id);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0); /* required, never joined */
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0); /* whole, whatever set */
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0); /* the end, found at once */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* Assigns every partition of @p topic from the beginning; returns how many (0: no topic). */
static int assign_all(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
        for (n = 0; n < md->topics[0].partition_cnt; n++)
            rd_kafka_topic_partition_list_add(parts, topic, n)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* The partition count of @p topic: 0 when it does not exist, -1 when the cluster did not
 * answer. Asked with the list of all topics: a request naming the topic would make a broker
 * with auto.create.topics.enable create it, with its default partition count. */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int n = 0;
    for (int i = 0; i < md->topic_cnt && !n; i++)
        if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
            n = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Creates @p topic with @p partitions partitions (compacted when @p compact). 0 or -1. */
static int create_topic(enr_processor_t *p, const char *topic, int partitions, int compact,
                        char *errstr, size_t errstr_size)
{
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, errstr, errstr_size);
    if (!nt)
        return -1;
    if (compact)
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(p->producer);
    rd_kafka_CreateTopics(p->producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    if (!ev) {
        uc__errstr(errstr, errstr_size, "%s: no answer to create", topic);
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t err =
            cnt ? rd_kafka_topic_result_error(res[0]) : rd_kafka_event_error(ev);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            uc__errstr(errstr, errstr_size, "%s: %s", topic, rd_kafka_err2str(err));
        else
            rc = 0;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* @p topic with ntasks partitions: created when missing, refused with another count. An
 * existing topic is used as it is (an operator may have made it; the mock cluster of the demo
 * cannot create topics through the admin API). */
static int ensure_topic(enr_processor_t *p, const char *topic, int compact, char *errstr,
                        size_t errstr_size)
{
    int n = partition_count(p->producer, topic);
    if (n < 0) {
        uc__errstr(errstr, errstr_size, "%s: the cluster did not answer", topic);
        return -1;
    }
    if (n == 0 && create_topic(p, topic, p->ntasks, compact, errstr, errstr_size))
        return -1;
    for (int tries = 0; n == 0 && tries < 100; tries++) { /* until its metadata shows it */
        struct timespec step = {0, 100 * 1000000};
        nanosleep(&step, NULL);
        n = partition_count(p->producer, topic);
    }
    if (n != p->ntasks) {
        uc__errstr(errstr, errstr_size,
                   "%s has %d partitions, but the input topics have %d (one per task): "
                   "delete it or name another with %s",
                   topic, n, (int)p->ntasks,
                   compact ? "changelog.topic" : "repartition.topic");
        return -1;
    }
    return 0;
}

/* The restorer is kept from one restore to the next: a new consumer spent about 0.5 s
 * connecting and fetching metadata, inside the rebalance callback, while every task waited. */
static rd_kafka_t *restorer(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    if (!p->restorer)
        p->restorer = reader_new(p, errstr, errstr_size);
    return p->restorer;
}

int enr__topics_ensure(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    if (ensure_topic(p, p->changelog_topic, 1, errstr, errstr_size) ||
        ensure_topic(p, p->repartition_topic, 0, errstr, errstr_size) ||
        !restorer(p, errstr, errstr_size))
        return -1;
    /* The restorer connects and learns where the changelog's partitions live now, not in the
     * first rebalance callback (that cost its first restore 0.5 s). */
    int64_t lo, hi;
    rd_kafka_query_watermark_offsets(p->restorer, p->changelog_topic, 0, &lo, &hi, 10000);
    return 0;
}

/* Reads @p parts (assigned to @p rk, all of one topic) to their end, handing each record to
 * @p apply. Each partition's end counts once: a reader that is assigned again (the restorer)
 * must not take a second end of one partition for the end of another. */
static int read_to_end(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                       int timeout_ms, void (*apply)(void *, const rd_kafka_message_t *),
                       void *opaque, const uc__logger_t *log)
{
    int at_end = 0;
    char *ended = calloc((size_t)parts->cnt + 1, 1);
    int64_t deadline = uc__mono_ms() + timeout_ms;
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    uc__fetch_kick_t kick; /* a restore at fetch speed, not a queue's worth a second */
    uc__fetch_kick_init(&kick, rd_kafka_conf(rk));
    while (ended && at_end < parts->cnt && uc__mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (queue)
            uc__fetch_kick(&kick, rk, queue, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition == m->partition && !ended[i])
                    ended[i] = 1, at_end++;
        } else if (!m->err) {
            apply(opaque, m);
        } else {
            uc__log(log, UC_LOG_WARNING, "reading %s: %s", rd_kafka_topic_name(m->rkt),
                    rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    if (queue)
        rd_kafka_queue_destroy(queue);
    free(ended);
    return at_end < parts->cnt ? -1 : 0;
}

/* The tasks being restored, found by partition. */
typedef struct restoring {
    enr__task_t *const *tasks;
    int n;
} restoring_t;

static void apply_changelog(void *opaque, const rd_kafka_message_t *m)
{
    const restoring_t *r = opaque;
    for (int i = 0; i < r->n; i++) {
        enr__task_t *t = r->tasks[i];
        if (t->id != m->partition)
            continue;
        atomic_fetch_add(&t->p->stats[ENR_STAT_RESTORE_RECORDS], 1);
        atomic_fetch_add(&t->p->stats[ENR_STAT_RESTORE_BYTES], (int64_t)(m->key_len + m->len));
        if (m->key)
            enr__task_apply_changelog(t, m->key, m->key_len, m->payload, m->len);
        return;
    }
}

int enr__tasks_restore(enr_processor_t *p, enr__task_t *const *tasks, int n, char *errstr,
                       size_t errstr_size)
{
    int64_t started = uc__mono_ms(), before = atomic_load(&p->stats[ENR_STAT_RESTORE_RECORDS]);
    for (int i = 0; i < n; i++)
        if (enr__task_rebuild(tasks[i], 0, errstr, errstr_size))
            return -1;
    if (n == 0)
        return 0;
    rd_kafka_t *rk = restorer(p, errstr, errstr_size);
    if (!rk)
        return -1;
    /* Only the partitions that hold something: an empty one would cost a fetch wait to say
     * so. */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        int64_t lo = 0, hi = 1;
        rd_kafka_query_watermark_offsets(rk, p->changelog_topic, tasks[i]->id, &lo, &hi, 10000);
        if (hi > lo) /* from lo, not BEGINNING: that lookup waited 0.5 s for a leader */
            rd_kafka_topic_partition_list_add(parts, p->changelog_topic, tasks[i]->id)->offset =
                lo;
    }
    restoring_t r = {tasks, n};
    int rc = 0;
    if (parts->cnt > 0) {
        rd_kafka_assign(rk, parts);
        rc = read_to_end(rk, parts, 120000, apply_changelog, &r, &p->log);
        rd_kafka_assign(rk, NULL);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    if (rc) {
        uc__errstr(errstr, errstr_size, "changelog %s: not read to its end in time",
                   p->changelog_topic);
        return -1;
    }
    uc__log(&p->log, UC_LOG_INFO, "%d task(s): restored %lld changelog record(s) in %lld ms", n,
            (long long)(atomic_load(&p->stats[ENR_STAT_RESTORE_RECORDS]) - before),
            (long long)(uc__mono_ms() - started));
    return 0;
}

static void apply_profile(void *opaque, const rd_kafka_message_t *m)
{
    enr_processor_t *p = opaque;
    void *table = enr__pipeline_profiles(p->pipe);
    char user[512];
    if (!table || !m->key || m->key_len >= sizeof(user))
        return;
    memcpy(user, m->key, m->key_len);
    user[m->key_len] = '\0';
    char reason[256];
    if (enr__profile_put(table, user, m->payload, m->payload ? m->len : 0, reason,
                         sizeof(reason)) == 0)
        atomic_fetch_add(&p->stats[ENR_STAT_PROFILE_UPDATES], 1);
    else /* the user's events go on without a profile; the producer has a bug to fix */
        uc__log(&p->log, UC_LOG_WARNING, "%s [%" PRId32 "] offset %" PRId64 ": %s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
}

int enr__profiles_open(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    if (!enr__pipeline_profiles(p->pipe))
        return 0; /* no profile stage configured */
    if (!(p->profiles = reader_new(p, errstr, errstr_size)))
        return -1;
    enr__profiles_poll(p, 1);
    return 0;
}

void enr__profiles_poll(enr_processor_t *p, int to_end)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (!p->profiles)
        return;
    if (!rd_kafka_assignment(p->profiles, &assigned) && assigned->cnt == 0) {
        /* Not assigned yet (the topic may not exist yet): try again. */
        int parts = assign_all(p->profiles, p->conf->s.profile_topic);
        rd_kafka_topic_partition_list_t *now = NULL;
        if (parts && to_end && !rd_kafka_assignment(p->profiles, &now))
            read_to_end(p->profiles, now, 30000, apply_profile, p, &p->log);
        if (now)
            rd_kafka_topic_partition_list_destroy(now);
    } else {
        rd_kafka_message_t *m;
        while ((m = rd_kafka_consumer_poll(p->profiles, 0))) {
            if (!m->err)
                apply_profile(p, m);
            rd_kafka_message_destroy(m);
        }
    }
    if (assigned)
        rd_kafka_topic_partition_list_destroy(assigned);
}
