/*
 * monitor.c - what a processor tells a metrics endpoint besides its counters: the group
 * consumer's librdkafka statistics (consumer lag per partition, broker health), kept as the
 * latest copy for any thread to read, and the under-replicated partitions of the topics the
 * processor depends on, from a metadata request.
 */
#include "processor.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kafka's own topics every transaction writes: offsets, and the transaction log. */
static const char *const internal_topics[] = {"__consumer_offsets", "__transaction_state"};

int enr__on_kafka_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    uc__kstats_store(&((enr_processor_t *)opaque)->kstats, json, json_len);
    return 0; /* librdkafka frees its own buffer */
}

static int64_t stat_of(void *p, int i)
{
    return enr_stat(p, (enr_stat_t)i);
}

size_t enr_stats_json(enr_processor_t *p, char *buf, size_t size)
{
    const char *names[ENR_STAT__CNT];
    for (int i = 0; i < ENR_STAT__CNT; i++)
        names[i] = enr_stat_name((enr_stat_t)i);
    return uc__stats_json(names, ENR_STAT__CNT, stat_of, p, buf, size);
}

size_t enr_kafka_stats_json(enr_processor_t *p, char *buf, size_t size)
{
    return p ? uc__kstats_copy(&p->kstats, buf, size) : 0;
}

/* 1 when @p topic is one the processor reads or writes (see enr_under_replicated_partitions). */
static int depends_on(const enr_processor_t *p, const char *topic, const regex_t *patterns,
                      size_t npatterns)
{
    const enr__settings_t *s = &p->conf->s;
    const char *fixed[] = {s->output_topic,    s->dead_letter_topic, s->aggregates_topic,
                           s->alerts_topic,    s->profile_topic,     p->changelog_topic,
                           internal_topics[0], internal_topics[1]};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i] && !strcmp(topic, fixed[i]))
            return 1;
    for (size_t i = 0; i < npatterns; i++)
        if (regexec(&patterns[i], topic, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

#define MAX_INPUTS 64

/* Compiles "input.topics" (names, or ^regexes, like the subscription) into anchored patterns;
 * returns how many. A name becomes ^name$ with its dots escaped. */
static size_t input_patterns(const enr_processor_t *p, regex_t *out)
{
    char *list = strdup(p->conf->s.input_topics ? p->conf->s.input_topics : ""), *save = NULL;
    size_t n = 0;
    if (!list)
        return 0;
    for (char *t = strtok_r(list, ", ", &save); t && n < MAX_INPUTS;
         t = strtok_r(NULL, ", ", &save)) {
        char re[1024];
        size_t len = 0;
        if (*t == '^') {
            snprintf(re, sizeof(re), "%s", t);
        } else {
            re[len++] = '^';
            for (const char *c = t; *c && len < sizeof(re) - 3; c++) {
                if (strchr(".[]()*+?{}|\\^$", *c))
                    re[len++] = '\\';
                re[len++] = *c;
            }
            re[len++] = '$';
            re[len] = '\0';
        }
        if (regcomp(&out[n], re, REG_EXTENDED | REG_NOSUB) == 0)
            n++;
    }
    free(list);
    return n;
}

int enr_under_replicated_partitions(enr_processor_t *p, int timeout_ms)
{
    if (!p || !p->consumer || timeout_ms < 0)
        return ENR_ERR_INVALID_ARG;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->consumer, 1, NULL, &md, timeout_ms);
    if (err) {
        uc__log(&p->log, UC_LOG_INFO, "metadata: %s", rd_kafka_err2str(err));
        return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? ENR_ERR_TIMED_OUT : ENR_ERR_KAFKA;
    }
    regex_t patterns[MAX_INPUTS];
    size_t npatterns = input_patterns(p, patterns);
    int count = 0;
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *topic = &md->topics[t];
        if (topic->err || !depends_on(p, topic->topic, patterns, npatterns))
            continue;
        for (int i = 0; i < topic->partition_cnt; i++) {
            const rd_kafka_metadata_partition_t *part = &topic->partitions[i];
            if (part->isr_cnt < part->replica_cnt || part->leader < 0)
                count++;
        }
    }
    for (size_t i = 0; i < npatterns; i++)
        regfree(&patterns[i]);
    rd_kafka_metadata_destroy(md);
    return count;
}
