/*
 * conf_dump.c - a configuration copied (enr_conf_dup) and listed (enr_conf_dump), as the other
 * two libraries do: a daemon logs what it runs with, a binding builds processors from one.
 */
#include "conf.h"
#include "stage.h"

#include <stdlib.h>
#include <string.h>

enr_conf_t *enr_conf_dup(const enr_conf_t *conf)
{
    enr_conf_t *dup = conf ? malloc(sizeof(*dup)) : NULL;
    if (!dup)
        return NULL;
    *dup = *conf;
    dup->consumer = rd_kafka_conf_dup(conf->consumer);
    dup->producer = rd_kafka_conf_dup(conf->producer);
    dup->custom = NULL;
    int failed = uc__props_dup_strings(enr__conf_props, &dup->s) || !dup->consumer ||
                 !dup->producer;
    enr_stage_t **tail = &dup->custom; /* the stages in the same order */
    for (const enr_stage_t *st = conf->custom; st && !failed; st = st->next) {
        if (!(*tail = malloc(sizeof(**tail)))) {
            failed = 1;
            break;
        }
        **tail = *st;
        (*tail)->next = NULL;
        tail = &(*tail)->next;
    }
    if (failed) {
        enr_conf_destroy(dup);
        return NULL;
    }
    return dup;
}

static char *value_of(const enr_conf_t *conf, const uc__prop_t *p)
{
    size_t size = 0;
    uc__prop_get(enr__conf_props, &conf->s, p->name, NULL, &size);
    char *v = malloc(size);
    if (v)
        uc__prop_get(enr__conf_props, &conf->s, p->name, v, &size);
    return v;
}

const char **enr_conf_dump(const enr_conf_t *conf, size_t *cntp)
{
    if (!conf || !cntp) {
        if (cntp)
            *cntp = 0;
        return NULL;
    }
    size_t ccnt = 0, pcnt = 0, n = uc__props_count(enr__conf_props), i = 0;
    const char **cdump = rd_kafka_conf_dump(conf->consumer, &ccnt);
    const char **pdump = rd_kafka_conf_dump(conf->producer, &pcnt);
    const char **arr = calloc(n * 2 + ccnt + pcnt + 1, sizeof(*arr));
    for (const uc__prop_t *p = enr__conf_props; arr && p->name; p++) {
        arr[i++] = strdup(p->name);
        arr[i++] = uc__prop_is_secret(p->name) ? strdup("[redacted]") : value_of(conf, p);
    }
    if (arr) {
        i = uc__dump_kafka(arr, i, cdump, ccnt, "kafka.consumer.");
        i = uc__dump_kafka(arr, i, pdump, pcnt, "kafka.producer.");
    }
    rd_kafka_conf_dump_free(cdump, ccnt);
    rd_kafka_conf_dump_free(pdump, pcnt);
    *cntp = i;
    return arr;
}

void enr_conf_dump_free(const char **arr, size_t cnt)
{
    uc__dump_free(arr, cnt);
}
