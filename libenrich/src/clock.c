/*
 * clock.c - see clock.h. Few partitions per processor: a linear table is enough.
 */
#include "clock.h"
#include "le.h"
#include "uc_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enr__part_clock_t *find(enr_pipeline_t *pipe, const char *topic, size_t topic_len,
                               int32_t partition)
{
    for (size_t i = 0; i < pipe->nclocks; i++) {
        enr__part_clock_t *c = &pipe->clocks[i];
        if (c->partition == partition && strlen(c->topic) == topic_len &&
            !memcmp(c->topic, topic, topic_len))
            return c;
    }
    if (pipe->nclocks == pipe->clocks_cap) {
        size_t cap = pipe->clocks_cap ? pipe->clocks_cap * 2 : 16;
        enr__part_clock_t *grown = realloc(pipe->clocks, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        pipe->clocks = grown;
        pipe->clocks_cap = cap;
    }
    char *name = strndup(topic, topic_len);
    if (!name)
        return NULL;
    enr__part_clock_t *c = &pipe->clocks[pipe->nclocks++];
    *c = (enr__part_clock_t){.topic = name, .partition = partition, .newest_ms = INT64_MIN,
                             .active_ms = uc__mono_ms()};
    return c;
}

void enr__clock_advance(enr_pipeline_t *pipe, const char *topic, int32_t partition, int64_t t)
{
    enr__part_clock_t *c = find(pipe, topic ? topic : "", topic ? strlen(topic) : 0, partition);
    if (!c)
        return;
    c->active_ms = uc__mono_ms();
    if (t > c->newest_ms) {
        c->newest_ms = t;
        c->dirty = 1;
    }
}

void enr__clock_assign(enr_pipeline_t *pipe, const char *topic, int32_t partition)
{
    enr__part_clock_t *c = find(pipe, topic, strlen(topic), partition);
    if (c)
        c->active_ms = uc__mono_ms(); /* idleness counts from the assignment */
}

int64_t enr__pipeline_event_clock(const enr_pipeline_t *pipe)
{
    int64_t now = uc__mono_ms(), idle = pipe->s.window_idle_ms;
    int64_t low = INT64_MAX, high = INT64_MIN;
    for (size_t i = 0; i < pipe->nclocks; i++) {
        const enr__part_clock_t *c = &pipe->clocks[i];
        if (c->newest_ms > high)
            high = c->newest_ms;
        /* An assigned partition not read yet counts as INT64_MIN: its backlog may hold
         * events older than what the other partitions show. */
        if ((idle == 0 || now - c->active_ms < idle) && c->newest_ms < low)
            low = c->newest_ms;
    }
    if (high == INT64_MIN)
        return INT64_MIN; /* nothing seen yet: nothing may close */
    return low == INT64_MAX ? high : low; /* every partition idle: the newest of them */
}

void enr__clock_flush(enr_pipeline_t *pipe)
{
    for (size_t i = 0; i < pipe->nclocks; i++) {
        enr__part_clock_t *c = &pipe->clocks[i];
        if (!c->dirty || c->newest_ms == INT64_MIN)
            continue;
        char key[600];
        uint8_t value[8];
        int n = snprintf(key, sizeof(key), "%" PRId32 "/%s", c->partition, c->topic);
        enr__le_put64(value, (uint64_t)c->newest_ms);
        pipe->sink.changelog(pipe->sink.opaque, "_clock", key, (size_t)n, value, sizeof(value));
        c->dirty = 0;
    }
}

int enr__clock_restore(enr_pipeline_t *pipe, const void *key, size_t key_len, const void *value,
                       size_t value_len)
{
    char buf[600];
    if (!value || value_len != 8 || key_len >= sizeof(buf))
        return value ? -1 : 0;
    memcpy(buf, key, key_len);
    buf[key_len] = '\0';
    char *slash = strchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    const char *topic = slash + 1;
    enr__part_clock_t *c = find(pipe, topic, strlen(topic), (int32_t)atoi(buf));
    if (!c)
        return -1;
    c->newest_ms = (int64_t)enr__le_load64(value);
    return 0;
}

void enr__clock_free(enr_pipeline_t *pipe)
{
    for (size_t i = 0; i < pipe->nclocks; i++)
        free(pipe->clocks[i].topic);
    free(pipe->clocks);
    pipe->clocks = NULL;
    pipe->nclocks = pipe->clocks_cap = 0;
}
