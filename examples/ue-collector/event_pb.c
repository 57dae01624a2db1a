/*
 * event_pb.c - builds an event from one userevents.Event of a protobuf batch (what the SDK's
 * transport=http sends): checked field by field, so that a bad one is refused with its reason.
 */
#include "collector.h"

#include <stddef.h>
#include <stdio.h>

/* Context fields of the schema that ue_event_set_context() takes, by name. */
static const struct {
    const char *name;
    size_t offset;
} CTX_FIELDS[] = {
    {"app.name", offsetof(Userevents__Context, app_name)},
    {"app.version", offsetof(Userevents__Context, app_version)},
    {"app.build", offsetof(Userevents__Context, app_build)},
    {"device.model", offsetof(Userevents__Context, device_model)},
    {"device.manufacturer", offsetof(Userevents__Context, device_manufacturer)},
    {"os.name", offsetof(Userevents__Context, os_name)},
    {"os.version", offsetof(Userevents__Context, os_version)},
    {"locale", offsetof(Userevents__Context, locale)},
    {"timezone", offsetof(Userevents__Context, timezone)},
    {"network", offsetof(Userevents__Context, network)},
    {"ip", offsetof(Userevents__Context, ip)},
    {"user_agent", offsetof(Userevents__Context, user_agent)},
};
#define NCTX (sizeof(CTX_FIELDS) / sizeof(CTX_FIELDS[0]))

static int set_ctx(ue_event_t *ev, const char *field, const char *v, char *err, size_t errsz)
{
    if (!utf8_ok(v) || ue_event_set_context(ev, field, v) != UE_OK) {
        snprintf(err, errsz, "context.%s: invalid value", field);
        return -1;
    }
    return 0;
}

static int pb_props(ue_event_t *ev, const Userevents__Event *e, char *err, size_t errsz)
{
    for (size_t i = 0; i < e->n_properties; i++) {
        const char *k = e->properties[i]->key;
        const Userevents__Value *v = e->properties[i]->value;
        ue_err_t rc = UE_ERR_INVALID_ARG;
        if (!k || !*k || !utf8_ok(k) || !v)
            rc = UE_ERR_INVALID_ARG;
        else if (v->kind_case == USEREVENTS__VALUE__KIND_STRING_VALUE)
            rc = utf8_ok(v->string_value) ? ue_event_prop_string(ev, k, v->string_value) : rc;
        else if (v->kind_case == USEREVENTS__VALUE__KIND_INT_VALUE)
            rc = ue_event_prop_int(ev, k, v->int_value);
        else if (v->kind_case == USEREVENTS__VALUE__KIND_DOUBLE_VALUE)
            rc = ue_event_prop_double(ev, k, v->double_value);
        else if (v->kind_case == USEREVENTS__VALUE__KIND_BOOL_VALUE)
            rc = ue_event_prop_bool(ev, k, v->bool_value);
        if (rc != UE_OK) {
            snprintf(err, errsz,
                     "properties[%zu]: invalid key or value (strings, integers, "
                     "finite numbers and booleans are accepted)",
                     i);
            return -1;
        }
    }
    return 0;
}

static int pb_context(ue_event_t *ev, const Userevents__Context *c, int *has_ip, char *err,
                      size_t errsz)
{
    char num[16];
    for (size_t i = 0; c && i < NCTX; i++) {
        const char *v = *(char *const *)((const char *)c + CTX_FIELDS[i].offset);
        if (v && *v && set_ctx(ev, CTX_FIELDS[i].name, v, err, errsz))
            return -1;
    }
    if (c && c->screen_width) {
        snprintf(num, sizeof(num), "%u", c->screen_width);
        ue_event_set_context(ev, "screen.width", num);
    }
    if (c && c->screen_height) {
        snprintf(num, sizeof(num), "%u", c->screen_height);
        ue_event_set_context(ev, "screen.height", num);
    }
    *has_ip = c && c->ip && *c->ip;
    return 0;
}

/* Builds @p ev from one decoded Event of a protobuf batch. 0, or -1 with the reason. */
int build_pb(ue_event_t *ev, const Userevents__Event *e, const stamp_t *st, char *err, size_t errsz)
{
    int has_ip = 0;
    if (set_type(ev, e->type, err, errsz))
        return -1;
    if (e->schema_version > UE_SCHEMA_VERSION) {
        snprintf(err, errsz, "schema_version %u is newer than this collector (%d)",
                 e->schema_version, UE_SCHEMA_VERSION);
        return -1;
    }
    if (e->event_id.len != 0 && e->event_id.len != 16) {
        snprintf(err, errsz, "event_id: 16 bytes expected, got %zu", e->event_id.len);
        return -1;
    }
    if (e->event_id.len == 16)
        ue_event_set_event_id(ev, e->event_id.data);
    if ((!e->user_id || !*e->user_id) && (!e->anonymous_id || !*e->anonymous_id)) {
        snprintf(err, errsz, "user_id or anonymous_id is required");
        return -1;
    }
    int64_t t = e->timestamp_ms > 0 ? e->timestamp_ms : st->received_at; /* 0: not set */
    if (check_time(t, st, err, errsz) ||
        set_str(ev, ue_event_set_user_id, e->user_id, "user_id", err, errsz) ||
        set_str(ev, ue_event_set_anonymous_id, e->anonymous_id, "anonymous_id", err, errsz) ||
        set_str(ev, ue_event_set_session_id, e->session_id, "session_id", err, errsz) ||
        pb_props(ev, e, err, errsz) || pb_context(ev, e->context, &has_ip, err, errsz))
        return -1;
    ue_event_set_timestamp_ms(ev, t);
    return apply_stamp(ev, st, has_ip, 1);
}
