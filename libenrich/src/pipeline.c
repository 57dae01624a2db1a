/*
 * pipeline.c - the stage chain (see pipeline.h) and the public enr_pipeline_* API.
 */
#include "pipeline.h"
#include "clock.h"
#include "event.h"
#include "uc_validate.h"
#include "userevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enr_stage_t *(builtin_fn)(const enr__settings_t *s);
static const struct {
    const char *name;
    builtin_fn *make;
} builtins[] = {
    {"clock", enr__stage_clock_new},     {"dedup", enr__stage_dedup_new},
    {"useragent", enr__stage_useragent_new}, {"geoip", enr__stage_geoip_new},
    {"profile", enr__stage_profile_new}, {"session", enr__stage_session_new},
    {"window", enr__stage_window_new},   {"anomaly", enr__stage_anomaly_new},
};

/* The definition of stage @p name: a custom one from @p conf (0), else a built-in, made now
 * (1); -1 when there is none. */
static int find_stage(const enr_conf_t *conf, const enr__settings_t *s, const char *name,
                      enr_stage_t *out)
{
    for (const enr_stage_t *st = conf->custom; st; st = st->next) {
        if (!strcmp(st->name, name)) {
            *out = *st;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (!strcmp(builtins[i].name, name)) {
            enr_stage_t *st = builtins[i].make(s);
            if (!st)
                return -1;
            *out = *st;
            enr_stage_destroy(st);
            return 1;
        }
    }
    return -1;
}

static int add_stage(enr_pipeline_t *pipe, const enr_conf_t *conf, const char *name,
                     void *profiles, char *errstr, size_t errstr_size)
{
    stage_slot_t *slot = &pipe->stages[pipe->nstages];
    if (pipe->nstages == ENR__MAX_STAGES) {
        uc__errstr(errstr, errstr_size, "stages: more than %d", ENR__MAX_STAGES);
        return -1;
    }
    int builtin = find_stage(conf, &pipe->s, name, &slot->def);
    if (builtin < 0) {
        uc__errstr(errstr, errstr_size, "stages: unknown stage \"%s\"", name);
        return -1;
    }
    if (builtin && !strcmp(name, "clock"))
        pipe->has_clock = 1;
    slot->def.next = NULL;
    char why[256] = "";
    if (profiles && !strcmp(name, "profile")) {
        slot->state = profiles;
        slot->borrowed = 1;
    } else if (slot->def.init &&
               slot->def.init(&slot->state, slot->def.opaque, why, sizeof(why))) {
        uc__errstr(errstr, errstr_size, "stage %s: %s", name, why);
        return -1;
    }
    if (!strcmp(name, "profile"))
        pipe->profiles = slot->state;
    pipe->nstages++;
    return 0;
}

static void ignore_emit(void *o, const char *t, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)o, (void)t, (void)k, (void)kl, (void)v, (void)vl;
}

static void ignore_changelog(void *o, const char *st, const void *k, size_t kl, const void *v,
                             size_t vl)
{
    (void)o, (void)st, (void)k, (void)kl, (void)v, (void)vl;
}

enr_pipeline_t *enr__pipeline_new(const enr_conf_t *conf, const enr__sink_t *sink,
                                  void *profiles, char *errstr, size_t errstr_size)
{
    enr_pipeline_t *pipe = calloc(1, sizeof(*pipe));
    if (!pipe) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pipe->s = conf->s;
    uc__props_dup_strings(enr__conf_props, &pipe->s);
    pipe->sink = sink ? *sink : (enr__sink_t){ignore_emit, ignore_changelog, NULL, NULL};
    uc__arena_init(&pipe->arena, NULL, 0);

    char *list = strdup(pipe->s.stages ? pipe->s.stages : ""), *save = NULL;
    int rc = list ? 0 : -1;
    for (char *name = list ? strtok_r(list, ", ", &save) : NULL; name && !rc;
         name = strtok_r(NULL, ", ", &save))
        rc = add_stage(pipe, conf, name, profiles, errstr, errstr_size);
    free(list);
    if (rc) {
        enr_pipeline_destroy(pipe);
        return NULL;
    }
    return pipe;
}

enr_pipeline_t *enr_pipeline_new(const enr_conf_t *conf, char *errstr, size_t errstr_size)
{
    if (!conf) {
        uc__errstr(errstr, errstr_size, "conf must not be NULL");
        return NULL;
    }
    return enr__pipeline_new(conf, NULL, NULL, errstr, errstr_size);
}

void enr_pipeline_destroy(enr_pipeline_t *pipe)
{
    if (!pipe)
        return;
    for (size_t i = 0; i < pipe->nstages; i++)
        if (pipe->stages[i].def.destroy && !pipe->stages[i].borrowed)
            pipe->stages[i].def.destroy(pipe->stages[i].state, pipe->stages[i].def.opaque);
    uc__props_free(enr__conf_props, &pipe->s);
    enr__clock_free(pipe);
    uc__arena_free(&pipe->arena);
    free(pipe->out);
    free(pipe);
}
