/*
 * pipeline_run.c - one record through the stage chain: decode, validate (every bad input is
 * a reason, never a crash), run the stages, encode the EnrichedEvent; plus the flush and
 * restore hooks and the public enr_pipeline_* wrappers.
 */
#include "clock.h"
#include "event.h"
#include "pipeline.h"
#include "stage_clock.h"
#include "uc_pbdecode.h"
#include "uc_validate.h"
#include "userevents.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_ok(const char *s)
{
    return !s || uc__utf8_valid(s, strlen(s));
}

/* The first invalid string field of @p ev, or NULL. */
static const char *invalid_utf8_field(const Userevents__Event *ev)
{
    if (!str_ok(ev->type) || !str_ok(ev->user_id) || !str_ok(ev->anonymous_id) ||
        !str_ok(ev->session_id))
        return "envelope";
    for (size_t i = 0; i < ev->n_properties; i++) {
        const Userevents__Value *v = ev->properties[i]->value;
        if (!str_ok(ev->properties[i]->key) ||
            (v && v->kind_case == USEREVENTS__VALUE__KIND_STRING_VALUE && !str_ok(v->string_value)))
            return "properties";
    }
    const Userevents__Context *c = ev->context;
    if (c && (!str_ok(c->app_name) || !str_ok(c->app_version) || !str_ok(c->app_build) ||
              !str_ok(c->device_model) || !str_ok(c->device_manufacturer) ||
              !str_ok(c->os_name) || !str_ok(c->os_version) || !str_ok(c->locale) ||
              !str_ok(c->timezone) || !str_ok(c->network) || !str_ok(c->library_name) ||
              !str_ok(c->library_version) || !str_ok(c->ip) || !str_ok(c->user_agent)))
        return "context";
    return NULL;
}

/* Decodes and validates; NULL with the reason written when the record is unusable. */
static Userevents__Event *decode(const enr_pipeline_t *pipe, const void *value, size_t len,
                                 char *reason, size_t reason_size)
{
    if (len > (size_t)pipe->s.input_max_bytes) {
        uc__errstr(reason, reason_size, "oversized: %zu bytes > input.max.bytes", len);
        return NULL;
    }
    int err;
    Userevents__Event *ev = (Userevents__Event *)uc__pb_unpack(
        &userevents__event__descriptor, NULL, len, value, UC__PB_MAX_DEPTH, &err);
    const char *bad = NULL;
    if (!ev)
        uc__errstr(reason, reason_size, "undecodable: not a userevents.Event: %s",
                   uc__pb_strerror(err));
    else if (ev->schema_version > UE_SCHEMA_VERSION)
        uc__errstr(reason, reason_size, "unknown schema version %u (newest known: %d)",
                   ev->schema_version, UE_SCHEMA_VERSION);
    else if (ev->event_id.len != 16)
        uc__errstr(reason, reason_size, "invalid event id: %zu bytes", ev->event_id.len);
    else if (!uc__event_type_valid(ev->type, ev->type ? strlen(ev->type) : 0))
        uc__errstr(reason, reason_size, "invalid event type");
    else if ((bad = invalid_utf8_field(ev)))
        uc__errstr(reason, reason_size, "invalid UTF-8 in %s", bad);
    else
        return ev;
    if (ev)
        userevents__event__free_unpacked(ev, NULL);
    return NULL;
}

static enr_verdict_t run_stages(enr_pipeline_t *pipe, enr_event_t *e, char *reason,
                                size_t reason_size)
{
    enr_ctx_t ctx = {.sink = &pipe->sink, .settings = &pipe->s, .stats = pipe->stats,
                     .watermark_ms = enr__pipeline_event_clock(pipe)};
    for (size_t i = 0; i < pipe->nstages; i++) {
        stage_slot_t *st = &pipe->stages[i];
        ctx.stage = st->def.name;
        ctx.reason[0] = '\0';
        enr_verdict_t v = st->def.process(st->state, e, &ctx, st->def.opaque);
        if (v == ENR_DROP) {
            pipe->stats[ENR_STAT_DROPPED]++;
            return v;
        }
        if (v != ENR_KEEP) {
            uc__errstr(reason, reason_size, "stage %s: %s", st->def.name,
                       ctx.reason[0] ? ctx.reason : "failed");
            return ENR_FAIL;
        }
    }
    return ENR_KEEP;
}

static int encode(enr_pipeline_t *pipe, const enr_event_t *e, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(&e->out.base);
    if (size > pipe->out_cap) {
        uint8_t *grown = realloc(pipe->out, size);
        if (!grown)
            return -1;
        pipe->out = grown;
        pipe->out_cap = size;
    }
    *len = protobuf_c_message_pack(&e->out.base, pipe->out);
    return 0;
}

/*
 * 1, with the reason, when @p e's time is more than time.max.future.ms after its receive time.
 * The time checked is the one the stages will read: the clock stage's correction when the chain
 * has that stage, else the timestamp. Without a receive time there is nothing to compare with.
 */
static int too_far_ahead(enr_pipeline_t *pipe, const enr_event_t *e, char *reason,
                         size_t reason_size)
{
    int64_t t = pipe->has_clock ? enr__clock_corrected_ms(e) : e->out.corrected_timestamp_ms;
    int64_t received = enr__clock_received_ms(e);
    /* t > received > 0: the difference cannot overflow. */
    if (received <= 0 || t <= received || t - received <= pipe->s.time_max_future_ms)
        return 0;
    uc__errstr(reason, reason_size,
               "event time %" PRId64 " is %" PRId64 " ms after its receive time %" PRId64
               " (time.max.future.ms %" PRId64 ")",
               t, t - received, received, pipe->s.time_max_future_ms);
    pipe->stats[ENR_STAT_FUTURE_EVENTS]++;
    return 1;
}

enr_verdict_t enr__pipeline_run(enr_pipeline_t *pipe, const void *value, size_t len,
                                const enr__source_t *src, const uint8_t **out, size_t *out_len,
                                char *reason, size_t reason_size)
{
    enr_event_t e;
    Userevents__Event *ev = decode(pipe, value, len, reason, reason_size);
    if (!ev)
        return ENR_FAIL;
    uc__arena_reset(&pipe->arena);
    enr__event_init(&e, ev, &pipe->arena);
    e.out.received_at_ms = src->timestamp_ms;
    e.out.source_topic = enr__event_strdup(&e, src->topic);
    e.out.source_partition = src->partition;
    e.out.source_offset = src->offset;

    enr_verdict_t v = too_far_ahead(pipe, &e, reason, reason_size)
                          ? ENR_FAIL
                          : run_stages(pipe, &e, reason, reason_size);
    if (v == ENR_KEEP) {
        /* Never past the receive time: an event within time.max.future.ms ahead must not
         * close the windows of everyone else's events early. */
        enr__clock_advance(pipe, src->topic, src->partition,
                           enr__clock_capped_ms(&e, e.out.corrected_timestamp_ms));
        if (encode(pipe, &e, out_len)) {
            uc__errstr(reason, reason_size, "out of memory");
            v = ENR_FAIL;
        }
        *out = pipe->out;
    }
    userevents__event__free_unpacked(ev, NULL);
    return v;
}

void enr__pipeline_flush(enr_pipeline_t *pipe, int64_t watermark_ms)
{
    enr_ctx_t ctx = {.sink = &pipe->sink, .settings = &pipe->s, .stats = pipe->stats,
                     .watermark_ms = watermark_ms};
    enr__clock_flush(pipe);
    for (size_t i = 0; i < pipe->nstages; i++) {
        stage_slot_t *st = &pipe->stages[i];
        if (!st->def.flush)
            continue;
        ctx.stage = st->def.name;
        st->def.flush(st->state, &ctx, st->def.opaque);
    }
}

int enr__pipeline_restore(enr_pipeline_t *pipe, const void *key, size_t key_len,
                          const void *value, size_t value_len)
{
    const char *slash = memchr(key, '/', key_len);
    if (!slash)
        return -1;
    size_t name_len = (size_t)(slash - (const char *)key);
    if (name_len == 6 && !memcmp(key, "_clock", 6))
        return enr__clock_restore(pipe, slash + 1, key_len - 7, value, value_len);
    for (size_t i = 0; i < pipe->nstages; i++) {
        stage_slot_t *st = &pipe->stages[i];
        if (strlen(st->def.name) != name_len || memcmp(st->def.name, key, name_len))
            continue;
        if (!st->def.restore)
            return 0;
        pipe->stats[ENR_STAT_RESTORED]++;
        return st->def.restore(st->state, slash + 1, key_len - name_len - 1, value, value_len,
                               st->def.opaque);
    }
    return -1;
}

void *enr__pipeline_profiles(enr_pipeline_t *pipe)
{
    return pipe->profiles;
}

int64_t *enr__pipeline_stats(enr_pipeline_t *pipe)
{
    return pipe->stats;
}

/* ---- the public pure API ---------------------------------------------------------------- */

enr_verdict_t enr_pipeline_process(enr_pipeline_t *pipe, const void *event, size_t event_len,
                                   int64_t received_at_ms, void **out, size_t *out_len,
                                   char *reason, size_t reason_size)
{
    const uint8_t *enriched;
    size_t len = 0;
    enr__source_t src = {.topic = "", .partition = -1, .offset = -1,
                         .timestamp_ms = received_at_ms};
    if (!pipe || (!event && event_len) || !out || !out_len) {
        uc__errstr(reason, reason_size, "invalid argument");
        return ENR_FAIL;
    }
    *out = NULL;
    *out_len = 0;
    pipe->stats[ENR_STAT_CONSUMED]++;
    enr_verdict_t v = enr__pipeline_run(pipe, event ? event : "", event_len, &src, &enriched,
                                        &len, reason, reason_size);
    if (v == ENR_KEEP) {
        if (!(*out = malloc(len ? len : 1))) {
            uc__errstr(reason, reason_size, "out of memory");
            return ENR_FAIL;
        }
        memcpy(*out, enriched, len);
        *out_len = len;
        pipe->stats[ENR_STAT_ENRICHED]++;
    } else if (v == ENR_FAIL) {
        pipe->stats[ENR_STAT_DEAD_LETTERS]++;
    }
    return v;
}

enr_err_t enr_pipeline_put_profile(enr_pipeline_t *pipe, const void *profile, size_t len)
{
    if (!pipe || !pipe->profiles || !profile)
        return ENR_ERR_INVALID_ARG;
    /* Keyed by the profile's own user_id (NULL key); an empty value is no profile at all. */
    if (len == 0 || enr__profile_put(pipe->profiles, NULL, profile, len, NULL, 0))
        return ENR_ERR_DECODE;
    return ENR_OK;
}

typedef struct flush_cb {
    enr_record_cb_t *cb;
    void *opaque;
} flush_cb_t;

static void to_cb(void *opaque, const char *topic, const void *key, size_t key_len,
                  const void *value, size_t value_len)
{
    flush_cb_t *f = opaque;
    if (f->cb)
        f->cb(topic, key, key_len, value, value_len, f->opaque);
}

void enr_pipeline_flush(enr_pipeline_t *pipe, int64_t watermark_ms, enr_record_cb_t *cb,
                        void *opaque)
{
    if (!pipe)
        return;
    flush_cb_t f = {cb, opaque};
    enr__sink_t saved = pipe->sink;
    pipe->sink.emit = to_cb;
    pipe->sink.opaque = &f;
    enr__pipeline_flush(pipe, watermark_ms);
    pipe->sink = saved;
}

int64_t enr_pipeline_stat(enr_pipeline_t *pipe, enr_stat_t which)
{
    if (!pipe || (unsigned)which >= ENR_STAT__CNT)
        return -1;
    if (which == ENR_STAT_PROFILES)
        return pipe->profiles ? enr__profile_count(pipe->profiles) : 0;
    return pipe->stats[which];
}

void enr_free(void *ptr)
{
    free(ptr);
}
