/*
 * event_encode.c - turning a built event into a record: stamp the event id (UUIDv7) and
 * timestamp, fill the client defaults the event lacks, and serialize it in one pass
 * (uc_event_pack.c, byte-identical to protobuf-c) into the event's reusable scratch buffer,
 * then copy it into the record (one allocation per event).
 */
#include "context.h"
#include "event.h"
#include "record.h"
#include "uc_event_pack.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_FIRST 512 /* scratch bytes at the first ue_track() of an event */

static int is_set(const char *s)
{
    return s && *s;
}

/* @p out = @p defaults with every field the event set laid over it. */
static void merge_context(const ue_event_t *ev, const Userevents__Context *defaults,
                          Userevents__Context *out)
{
    *out = *defaults;
    if (!ev->has_ctx)
        return;
    for (int i = 0; i < UE__CTX_CNT; i++) {
        size_t off = ue__ctx_fields[i].offset;
        if (ue__ctx_fields[i].is_number) {
            uint32_t v = *(const uint32_t *)((const char *)&ev->ctx + off);
            if (v)
                *(uint32_t *)((char *)out + off) = v;
        } else {
            char *v = *(char *const *)((const char *)&ev->ctx + off);
            if (is_set(v))
                *(char **)((char *)out + off) = v;
        }
    }
}

/*
 * Encodes ev->pb into the event's scratch buffer, grown as needed up to @p max_bytes + 1.
 * Returns the first byte (the encoding ends at the end of the buffer) and its length in @p len,
 * or NULL with *@p err set (UE_ERR_TOO_LARGE, UE_ERR_NOMEM).
 */
static const uint8_t *pack_scratch(ue_event_t *ev, size_t max_bytes, size_t *len, ue_err_t *err)
{
    for (;;) {
        uint8_t *p = ev->wire_cap ? uc__event_pack(&ev->pb, ev->wire, ev->wire_cap) : NULL;
        if (p) {
            *len = (size_t)(ev->wire + ev->wire_cap - p);
            if (*len <= max_bytes)
                return p;
        }
        if (ev->wire_cap > max_bytes) {
            *err = UE_ERR_TOO_LARGE;
            return NULL;
        }
        size_t cap = ev->wire_cap ? ev->wire_cap * 2 : WIRE_FIRST;
        cap = cap > max_bytes + 1 ? max_bytes + 1 : cap;
        uint8_t *grown = malloc(cap);
        if (!grown) {
            *err = UE_ERR_NOMEM;
            return NULL;
        }
        free(ev->wire);
        ev->wire = grown;
        ev->wire_cap = cap;
    }
}

ue__record_t *ue__event_encode(ue_event_t *ev, const Userevents__Context *defaults,
                               const char *user_id, const char *anonymous_id, size_t max_bytes,
                               ue_err_t *err)
{
    Userevents__Event saved = ev->pb;
    Userevents__Context ctx;

    if (!ev->id_explicit) {
        uc__uuid7_new(ev->event_id);
        ev->id_valid = 1;
    }
    if (!ev->timestamp_explicit)
        ev->pb.timestamp_ms = ev->id_explicit ? uc__wall_ms() : uc__uuid7_time_ms(ev->event_id);
    saved.timestamp_ms = ev->pb.timestamp_ms;

    ev->pb.event_id.len = 16;
    ev->pb.event_id.data = ev->event_id;
    if (!is_set(ev->pb.user_id) && is_set(user_id))
        ev->pb.user_id = (char *)user_id;
    if (!is_set(ev->pb.anonymous_id) && is_set(anonymous_id))
        ev->pb.anonymous_id = (char *)anonymous_id;
    merge_context(ev, defaults, &ctx);
    ev->pb.context = &ctx;
    ev->pb.schema_version = UE_SCHEMA_VERSION;

    size_t size = 0;
    const uint8_t *wire = pack_scratch(ev, max_bytes, &size, err);
    ue__record_t *rec = NULL;
    if (wire) {
        const char *key = is_set(ev->pb.user_id) ? ev->pb.user_id : ev->pb.anonymous_id;
        rec = ue__record_new(ev->pb.type, strlen(ev->pb.type), key ? key : "",
                             key ? strlen(key) : 0, size);
        *err = rec ? UE_OK : UE_ERR_NOMEM;
    }
    if (rec) {
        memcpy(ue__record_payload(rec), wire, size);
        memcpy(rec->event_id, ev->event_id, 16);
        rec->schema_version = UE_SCHEMA_VERSION;
    }
    ev->pb = saved; /* the event stays as the caller built it, ready for reuse */
    return rec;
}
