/*
 * event.c - the event accessors stages use (public enr_event_* API).
 */
#include "event.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CTX_FIELD(n, m) {n, offsetof(Userevents__Context, m)}
static const struct {
    const char *name;
    size_t offset;
} ctx_fields[] = {
    CTX_FIELD("app.name", app_name),     CTX_FIELD("app.version", app_version),
    CTX_FIELD("app.build", app_build),   CTX_FIELD("device.model", device_model),
    CTX_FIELD("device.manufacturer", device_manufacturer),
    CTX_FIELD("os.name", os_name),       CTX_FIELD("os.version", os_version),
    CTX_FIELD("locale", locale),         CTX_FIELD("timezone", timezone),
    CTX_FIELD("network", network),       CTX_FIELD("ip", ip),
    CTX_FIELD("user_agent", user_agent),
};

void enr__event_init(enr_event_t *e, Userevents__Event *ev, uc__arena_t *arena)
{
    Userevents__EnrichedEvent out = USEREVENTS__ENRICHED_EVENT__INIT;
    Userevents__Geo geo = USEREVENTS__GEO__INIT;
    Userevents__UserAgentInfo ua = USEREVENTS__USER_AGENT_INFO__INIT;
    Userevents__SessionInfo session = USEREVENTS__SESSION_INFO__INIT;
    e->ev = ev;
    e->out = out;
    e->out.event = ev;
    e->out.enrich_version = ENR_OUTPUT_VERSION;
    e->out.corrected_timestamp_ms = ev->timestamp_ms;
    e->geo = geo;
    e->ua = ua;
    e->session = session;
    e->arena = arena;
}

char *enr__event_strdup(enr_event_t *e, const char *s)
{
    char *copy = uc__arena_strdup(e->arena, s ? s : "");
    return copy ? copy : (char *)"";
}

static const char *str(const char *s)
{
    return s ? s : "";
}

const char *enr_event_type(const enr_event_t *ev)
{
    return ev ? str(ev->ev->type) : "";
}

const char *enr_event_user_id(const enr_event_t *ev)
{
    return ev ? str(ev->ev->user_id) : "";
}

const char *enr_event_anonymous_id(const enr_event_t *ev)
{
    return ev ? str(ev->ev->anonymous_id) : "";
}

const char *enr_event_session_id(const enr_event_t *ev)
{
    return ev ? str(ev->session.session_id) : "";
}

void enr_event_id(const enr_event_t *ev, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ev && ev->ev->event_id.len == 16)
        memcpy(out, ev->ev->event_id.data, 16);
}

int64_t enr_event_time_ms(const enr_event_t *ev)
{
    return ev ? ev->out.corrected_timestamp_ms : 0;
}

const char *enr_event_context(const enr_event_t *ev, const char *field)
{
    if (!ev || !field || !ev->ev->context)
        return "";
    for (size_t i = 0; i < sizeof(ctx_fields) / sizeof(ctx_fields[0]); i++)
        if (!strcmp(ctx_fields[i].name, field))
            return str(*(char **)((char *)ev->ev->context + ctx_fields[i].offset));
    return "";
}

static Userevents__Value *find(const enr_event_t *ev, const char *key)
{
    if (!ev || !key)
        return NULL;
    for (size_t i = 0; i < ev->ev->n_properties; i++)
        if (!strcmp(ev->ev->properties[i]->key, key))
            return ev->ev->properties[i]->value;
    return NULL;
}

enr_err_t enr_event_get_string(const enr_event_t *ev, const char *key, const char **out)
{
    Userevents__Value *v = find(ev, key);
    if (!v || v->kind_case != USEREVENTS__VALUE__KIND_STRING_VALUE || !out)
        return ENR_ERR_INVALID_ARG;
    *out = v->string_value;
    return ENR_OK;
}

enr_err_t enr_event_get_int(const enr_event_t *ev, const char *key, int64_t *out)
{
    Userevents__Value *v = find(ev, key);
    if (!v || v->kind_case != USEREVENTS__VALUE__KIND_INT_VALUE || !out)
        return ENR_ERR_INVALID_ARG;
    *out = v->int_value;
    return ENR_OK;
}

enr_err_t enr_event_get_double(const enr_event_t *ev, const char *key, double *out)
{
    Userevents__Value *v = find(ev, key);
    if (!v || !out)
        return ENR_ERR_INVALID_ARG;
    if (v->kind_case == USEREVENTS__VALUE__KIND_DOUBLE_VALUE)
        *out = v->double_value;
    else if (v->kind_case == USEREVENTS__VALUE__KIND_INT_VALUE)
        *out = (double)v->int_value; /* an int is a number too: sums accept both */
    else
        return ENR_ERR_INVALID_ARG;
    return ENR_OK;
}

/*
 * A fresh value slot for @p key: the existing one emptied, or a new entry. Allocated with
 * malloc, as protobuf-c's unpack did, so free_unpacked releases it with the event.
 */
static Userevents__Value *slot(enr_event_t *ev, const char *key)
{
    Userevents__Value *v = find(ev, key);
    if (v) {
        if (v->kind_case == USEREVENTS__VALUE__KIND_STRING_VALUE)
            free(v->string_value);
        else if (v->kind_case == USEREVENTS__VALUE__KIND_LIST_VALUE ||
                 v->kind_case == USEREVENTS__VALUE__KIND_MAP_VALUE)
            protobuf_c_message_free_unpacked((ProtobufCMessage *)v->list_value, NULL);
        v->kind_case = USEREVENTS__VALUE__KIND__NOT_SET;
        return v;
    }
    Userevents__Event *e = ev->ev;
    Userevents__Event__PropertiesEntry **props =
        realloc(e->properties, (e->n_properties + 1) * sizeof(*props));
    if (!props)
        return NULL;
    e->properties = props;
    Userevents__Event__PropertiesEntry *entry = malloc(sizeof(*entry));
    v = malloc(sizeof(*v));
    char *k = strdup(key);
    if (!entry || !v || !k) {
        free(entry);
        free(v);
        free(k);
        return NULL;
    }
    userevents__event__properties_entry__init(entry);
    userevents__value__init(v);
    entry->key = k;
    entry->value = v;
    props[e->n_properties++] = entry;
    return v;
}

enr_err_t enr_event_set_string(enr_event_t *ev, const char *key, const char *value)
{
    if (!ev || !key || !*key || !value)
        return ENR_ERR_INVALID_ARG;
    char *copy = strdup(value);
    Userevents__Value *v = copy ? slot(ev, key) : NULL;
    if (!v) {
        free(copy);
        return ENR_ERR_NOMEM;
    }
    v->kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    v->string_value = copy;
    return ENR_OK;
}

enr_err_t enr_event_set_int(enr_event_t *ev, const char *key, int64_t value)
{
    if (!ev || !key || !*key)
        return ENR_ERR_INVALID_ARG;
    Userevents__Value *v = slot(ev, key);
    if (!v)
        return ENR_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    v->int_value = value;
    return ENR_OK;
}

enr_err_t enr_event_set_double(enr_event_t *ev, const char *key, double value)
{
    if (!ev || !key || !*key || !isfinite(value))
        return ENR_ERR_INVALID_ARG;
    Userevents__Value *v = slot(ev, key);
    if (!v)
        return ENR_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    v->double_value = value;
    return ENR_OK;
}
