/*
 * subscribe.c - which topics the processor's group reads. "input.topics" may hold ^regexes,
 * and the default (^events\..*) also matches the processor's own outputs (events.enriched,
 * events.dead_letter, ...). Handing such a regex to librdkafka makes the group rebalance each
 * time a matching topic appears, our own outputs included, and every rebalance of a busy
 * consumer is a chance to lose or repeat work. So the processor resolves the regexes itself
 * against the cluster's topic list, leaves its outputs out, and subscribes to the names it
 * found.
 *
 * The raw topics must be co-partitioned (the SDK keys every type's topic by user id), and
 * their partition count is the number of tasks: task p is partition p of each of them. The
 * first time input topics exist, the processor checks that, makes the changelog and
 * repartition topics (one partition per task) and joins the group on the repartition topic.
 */
#include "processor.h"
#include "clock.h"
#include "uc_time.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_MS 5000     /* a new event type's topic is read within 5 s */
#define REFRESH_EMPTY_MS 500 /* while nothing matches: the first events of a fresh pipeline */

int enr__is_output(const enr_processor_t *p, const char *topic)
{
    const enr__settings_t *s = &p->conf->s;
    return !strcmp(topic, s->output_topic) || !strcmp(topic, s->dead_letter_topic) ||
           !strcmp(topic, s->aggregates_topic) || !strcmp(topic, s->alerts_topic) ||
           !strcmp(topic, p->changelog_topic) || !strcmp(topic, p->repartition_topic) ||
           !strcmp(topic, s->profile_topic);
}

/* 1 when @p topic is named by "input.topics" (a name, or a match of a ^regex). */
static int wanted(const enr_processor_t *p, const char *topic)
{
    if (enr__is_output(p, topic) || topic[0] == '_') /* outputs, __consumer_offsets, ... */
        return 0;
    for (int i = 0; i < p->sub.npatterns; i++)
        if (regexec(&p->sub.patterns[i], topic, 0, NULL, 0) == 0)
            return 1;
    for (int i = 0; i < p->sub.names->cnt; i++)
        if (!strcmp(p->sub.names->elems[i].topic, topic))
            return 1;
    return 0;
}

int enr__subscription_init(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    enr__subscription_t *sub = &p->sub;
    sub->names = rd_kafka_topic_partition_list_new(4);
    sub->current = rd_kafka_topic_partition_list_new(4);
    char *list = strdup(p->conf->s.input_topics ? p->conf->s.input_topics : ""), *save = NULL;
    if (!list)
        return uc__errstr(errstr, errstr_size, "out of memory"), -1;
    int rc = 0;
    for (char *t = strtok_r(list, ", ", &save); t && !rc; t = strtok_r(NULL, ", ", &save)) {
        if (t[0] != '^') {
            rd_kafka_topic_partition_list_add(sub->names, t, RD_KAFKA_PARTITION_UA);
        } else if (sub->npatterns == ENR__MAX_PATTERNS) {
            uc__errstr(errstr, errstr_size, "input.topics: more than %d regexes",
                       ENR__MAX_PATTERNS);
            rc = -1;
        } else if (regcomp(&sub->patterns[sub->npatterns], t, REG_EXTENDED | REG_NOSUB)) {
            uc__errstr(errstr, errstr_size, "input.topics: invalid regex \"%s\"", t);
            rc = -1;
        } else {
            sub->npatterns++;
        }
    }
    free(list);
    if (!rc && sub->npatterns == 0 && sub->names->cnt == 0) {
        uc__errstr(errstr, errstr_size, "input.topics names no topic");
        rc = -1;
    }
    return rc;
}

void enr__subscription_free(enr_processor_t *p)
{
    for (int i = 0; i < p->sub.npatterns; i++)
        regfree(&p->sub.patterns[i]);
    p->sub.npatterns = 0;
    if (p->sub.names)
        rd_kafka_topic_partition_list_destroy(p->sub.names);
    if (p->sub.current)
        rd_kafka_topic_partition_list_destroy(p->sub.current);
    p->sub.names = p->sub.current = NULL;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp(((const rd_kafka_topic_partition_t *)a)->topic,
                  ((const rd_kafka_topic_partition_t *)b)->topic);
}

/* The sorted input topics the cluster has now, each element's partition field holding the
 * topic's partition count; NULL when the cluster did not answer. */
static rd_kafka_topic_partition_list_t *matching_topics(enr_processor_t *p, int timeout_ms)
{
    const rd_kafka_metadata_t *md = NULL;
    if (rd_kafka_metadata(p->consumer, 1, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(md->topic_cnt);
    for (int i = 0; i < md->topic_cnt; i++)
        if (!md->topics[i].err && md->topics[i].partition_cnt > 0 &&
            wanted(p, md->topics[i].topic))
            rd_kafka_topic_partition_list_add(l, md->topics[i].topic,
                                              md->topics[i].partition_cnt);
    rd_kafka_metadata_destroy(md);
    qsort(l->elems, (size_t)l->cnt, sizeof(*l->elems), cmp_topic);
    return l;
}

static int has_topic(const rd_kafka_topic_partition_list_t *l, const char *topic)
{
    for (int i = 0; l && i < l->cnt; i++)
        if (!strcmp(l->elems[i].topic, topic))
            return 1;
    return 0;
}

/* 1 when @p a and @p b (sorted) name the same topics with the same partition counts. */
static int same_topics(const rd_kafka_topic_partition_list_t *a,
                       const rd_kafka_topic_partition_list_t *b)
{
    if (a->cnt != b->cnt)
        return 0;
    for (int i = 0; i < a->cnt; i++)
        if (strcmp(a->elems[i].topic, b->elems[i].topic) ||
            a->elems[i].partition != b->elems[i].partition)
            return 0;
    return 1;
}

/* 0 when every topic of @p l has @p want partitions (the first one's count when 0), else
 * -1 with the reason naming two that differ. */
static int check_copartitioned(const rd_kafka_topic_partition_list_t *l, int32_t want,
                               char *errstr, size_t errstr_size)
{
    const rd_kafka_topic_partition_t *first = &l->elems[0];
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &l->elems[i];
        if (t->partition == (want ? want : first->partition))
            continue;
        if (want)
            uc__errstr(errstr, errstr_size,
                       "input topic %s has %d partitions, the processors' tasks are %d: the "
                       "raw topics must keep the partition count they started with (each "
                       "user's events, and state, live in one partition number)",
                       t->topic, (int)t->partition, (int)want);
        else
            uc__errstr(errstr, errstr_size,
                       "input topics are not co-partitioned: %s has %d partitions, %s has %d "
                       "(every raw topic needs the same count: a user's events of every type "
                       "share one partition number, one task)",
                       first->topic, (int)first->partition, t->topic, (int)t->partition);
        return -1;
    }
    return 0;
}

void enr__task_partitions(const enr_processor_t *p, int32_t task,
                          rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_add(l, p->repartition_topic, task);
    for (int i = 0; p->sub.current && i < p->sub.current->cnt; i++)
        rd_kafka_topic_partition_list_add(l, p->sub.current->elems[i].topic, task);
}

/* The first input topics: the task count, the internal topics, the group. */
static int start_tasks(enr_processor_t *p, const rd_kafka_topic_partition_list_t *l,
                       char *errstr, size_t errstr_size)
{
    p->ntasks = l->elems[0].partition;
    p->tasks = calloc((size_t)p->ntasks, sizeof(*p->tasks));
    if (!p->tasks)
        return uc__errstr(errstr, errstr_size, "out of memory"), -1;
    if (enr__topics_ensure(p, errstr, errstr_size))
        return -1;
    /* The group assigns the repartition topic's partitions: partition p brings task p, and
     * with it partition p of every input topic (rebalance.c), so a task is never split. */
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, p->repartition_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(p->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err)
        return uc__errstr(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err)), -1;
    uc__log(&p->log, UC_LOG_NOTICE, "%d task(s): %d input topic(s), %s%s", (int)p->ntasks,
            l->cnt, l->elems[0].topic, l->cnt > 1 ? ", ..." : "");
    return 0;
}

/* Input topics that appeared: their partitions of the tasks owned now are read too. */
static void assign_new_topics(enr_processor_t *p, const rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *add = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < l->cnt; i++) {
        const char *topic = l->elems[i].topic;
        if (has_topic(p->sub.current, topic))
            continue;
        uc__log(&p->log, UC_LOG_NOTICE, "new input topic %s", topic);
        for (int32_t t = 0; t < p->ntasks; t++)
            if (p->tasks[t]) {
                rd_kafka_topic_partition_list_add(add, topic, t);
                enr__clock_assign(p->tasks[t]->pipe, topic, t);
            }
    }
    if (add->cnt > 0) {
        enr__owned_change(p, add, 1);
        enr__assignment_change(p, add, 1);
    }
    rd_kafka_topic_partition_list_destroy(add);
}

int enr__subscription_refresh(enr_processor_t *p, int timeout_ms, char *errstr,
                              size_t errstr_size)
{
    enr__subscription_t *sub = &p->sub;
    int64_t now = uc__mono_ms();
    if (now < sub->next_refresh_ms)
        return 0;
    rd_kafka_topic_partition_list_t *l = matching_topics(p, timeout_ms);
    sub->next_refresh_ms = now + (l && l->cnt ? REFRESH_MS : REFRESH_EMPTY_MS);
    int rc = 0;
    if (!l || !l->cnt || same_topics(l, sub->current))
        goto out;
    rc = -1;
    if (check_copartitioned(l, p->ntasks, errstr, errstr_size))
        goto out;
    if (!p->ntasks && start_tasks(p, l, errstr, errstr_size))
        goto out;
    assign_new_topics(p, l);
    rd_kafka_topic_partition_list_destroy(sub->current);
    sub->current = l;
    l = NULL;
    rc = 1;
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return rc;
}
