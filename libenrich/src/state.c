/*
 * state.c - what a processor knows besides the raw events: stage state, kept in a compacted
 * changelog topic written inside the transactions and read back at start (and after an
 * abort); and the user profiles, materialised from the compacted profile topic.
 */
#include "processor.h"
#include "clock.h"
#include "ue_props.h"
#include "ue_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A consumer without a group, for reading whole topics (changelog, profiles). */
static rd_kafka_t *reader_new(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = enr__kafka_conf(p, p->conf->consumer);
    char group[300];
    snprintf(group, sizeof(group), "%s-reader", p->conf->s.group_id);
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0); /* required, never joined */
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
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

/* 1 when @p topic exists (per the cluster's metadata). */
static int topic_exists(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int exists = rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                 md->topic_cnt == 1 && !md->topics[0].err;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return exists;
}

int enr__changelog_ensure(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    /* An existing topic is used as it is (an operator may have made it; the mock cluster
     * of the demo cannot create topics through the admin API). */
    if (topic_exists(p->producer, p->changelog_topic))
        return 0;
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(p->changelog_topic, 1, -1, errstr, errstr_size);
    if (!nt)
        return -1;
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(p->producer);
    rd_kafka_CreateTopics(p->producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    if (!ev) {
        ue__errstr(errstr, errstr_size, "changelog %s: no answer to create", p->changelog_topic);
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t err = cnt ? rd_kafka_topic_result_error(res[0]) : rd_kafka_event_error(ev);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            ue__errstr(errstr, errstr_size, "changelog %s: %s", p->changelog_topic,
                       rd_kafka_err2str(err));
        else
            rc = 0;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Reads @p rk's assignment to the end, handing each record to @p apply. */
static int read_to_end(rd_kafka_t *rk, int partitions, int timeout_ms,
                       void (*apply)(enr_processor_t *, const rd_kafka_message_t *),
                       enr_processor_t *p)
{
    int at_end = 0;
    int64_t deadline = ue__mono_ms() + timeout_ms;
    while (at_end < partitions && ue__mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            at_end++;
        else if (!m->err)
            apply(p, m);
        else
            ue__log(&p->log, UE_LOG_WARNING, "reading %s: %s", rd_kafka_topic_name(m->rkt),
                    rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return at_end < partitions ? -1 : 0;
}

static void apply_changelog(enr_processor_t *p, const rd_kafka_message_t *m)
{
    if (m->key && enr__pipeline_restore(p->pipe, m->key, m->key_len, m->payload, m->len) < 0)
        ue__log(&p->log, UE_LOG_INFO, "changelog: a record of no configured stage; skipped");
}

/* The input partitions the consumer holds now, registered with the pipeline's event clock
 * (enr__clock_assign): a rebuilt pipeline must not forget the ones not read yet. */
static void assign_clocks(enr_processor_t *p)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!p->consumer || rd_kafka_assignment(p->consumer, &parts) || !parts)
        return;
    for (int i = 0; i < parts->cnt; i++)
        enr__clock_assign(p->pipe, parts->elems[i].topic, parts->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(parts);
}

int enr__state_reload(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    enr_pipeline_t *fresh = enr__pipeline_new(p->conf, &p->sink, errstr, errstr_size);
    if (!fresh)
        return -1;
    enr_pipeline_destroy(p->pipe);
    p->pipe = fresh;
    return enr__state_restore(p, errstr, errstr_size);
}

int enr__state_restore(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    assign_clocks(p);
    rd_kafka_t *rk = reader_new(p, errstr, errstr_size);
    if (!rk)
        return -1;
    int parts = assign_all(rk, p->changelog_topic);
    int rc = parts ? read_to_end(rk, parts, 120000, apply_changelog, p) : 0;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc) {
        ue__errstr(errstr, errstr_size, "changelog %s: not read to its end in time",
                   p->changelog_topic);
        return -1;
    }
    if (p->profiles) { /* the new pipeline's profile table starts empty: read them again */
        rd_kafka_assign(p->profiles, NULL);
        enr__profiles_poll(p, 1);
    }
    enr__processor_publish_stats(p);
    ue__log(&p->log, UE_LOG_INFO, "restored %lld changelog record(s)",
            (long long)enr__pipeline_stats(p->pipe)[ENR_STAT_RESTORED]);
    return 0;
}

static void apply_profile(enr_processor_t *p, const rd_kafka_message_t *m)
{
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
        ue__log(&p->log, UE_LOG_WARNING, "%s [%" PRId32 "] offset %" PRId64 ": %s",
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
        if (parts && to_end)
            read_to_end(p->profiles, parts, 30000, apply_profile, p);
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
