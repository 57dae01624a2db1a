/*
 * event_encode.c - turning a built event into a record: stamp the event id (UUIDv7) and
 * timestamp, fill the client defaults the event lacks, and serialize it with protobuf-c
 * straight into the record's memory (one allocation per event).
 */
#include "context.h"
#include "event.h"
#include "record.h"
#include "ue_time.h"
#include "ue_uuid7.h"

#include <string.h>

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

ue__record_t *ue__event_encode(ue_event_t *ev, const Userevents__Context *defaults,
                               const char *user_id, const char *anonymous_id, size_t max_bytes,
                               ue_err_t *err)
{
    Userevents__Event saved = ev->pb;
    Userevents__Context ctx;

    if (!ev->id_explicit) {
        ue__uuid7_new(ev->event_id);
        ev->id_valid = 1;
    }
    if (!ev->timestamp_explicit)
        ev->pb.timestamp_ms = ev->id_explicit ? ue__wall_ms() : ue__uuid7_time_ms(ev->event_id);
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

    size_t size = protobuf_c_message_get_packed_size(&ev->pb.base);
    const char *key = is_set(ev->pb.user_id) ? ev->pb.user_id : ev->pb.anonymous_id;
    ue__record_t *rec = NULL;
    if (size > max_bytes) {
        *err = UE_ERR_TOO_LARGE;
    } else if (!(rec = ue__record_new(ev->pb.type, strlen(ev->pb.type), key ? key : "",
                                      key ? strlen(key) : 0, size))) {
        *err = UE_ERR_NOMEM;
    } else {
        protobuf_c_message_pack(&ev->pb.base, ue__record_payload(rec));
        memcpy(rec->event_id, ev->event_id, 16);
        rec->schema_version = UE_SCHEMA_VERSION;
        *err = UE_OK;
    }
    ev->pb = saved; /* the event stays as the caller built it, ready for reuse */
    return rec;
}
