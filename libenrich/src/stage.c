/*
 * stage.c - the public stage API: defining a stage, and what its callbacks may do through
 * their context (emit records, write changelog entries, give a failure reason).
 */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 32)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
}

enr_stage_t *enr_stage_new(const char *name, enr_process_fn *process, void *opaque)
{
    if (!name_valid(name) || !process)
        return NULL;
    enr_stage_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    snprintf(st->name, sizeof(st->name), "%s", name);
    st->process = process;
    st->opaque = opaque;
    return st;
}

void enr_stage_set_init(enr_stage_t *stage, enr_init_fn *init)
{
    if (stage)
        stage->init = init;
}

void enr_stage_set_flush(enr_stage_t *stage, enr_flush_fn *flush)
{
    if (stage)
        stage->flush = flush;
}

void enr_stage_set_restore(enr_stage_t *stage, enr_restore_fn *restore)
{
    if (stage)
        stage->restore = restore;
}

void enr_stage_set_destroy(enr_stage_t *stage, enr_destroy_fn *destroy)
{
    if (stage)
        stage->destroy = destroy;
}

void enr_stage_destroy(enr_stage_t *stage)
{
    free(stage);
}

enr_err_t enr_ctx_emit(enr_ctx_t *ctx, const char *topic, const void *key, size_t key_len,
                       const void *value, size_t value_len)
{
    if (!ctx || !topic || !*topic || (!value && value_len))
        return ENR_ERR_INVALID_ARG;
    ctx->sink->emit(ctx->sink->opaque, topic, key, key_len, value, value_len);
    return ENR_OK;
}

enr_err_t enr_ctx_changelog_put(enr_ctx_t *ctx, const void *key, size_t key_len,
                                const void *value, size_t value_len)
{
    if (!ctx || !key || !key_len)
        return ENR_ERR_INVALID_ARG;
    ctx->sink->changelog(ctx->sink->opaque, ctx->stage, key, key_len, value, value_len);
    return ENR_OK;
}

void enr_ctx_fail(enr_ctx_t *ctx, const char *reason)
{
    if (ctx)
        snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason ? reason : "");
}
