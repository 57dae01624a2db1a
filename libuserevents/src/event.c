/*
 * event.c - the event builder (public ue_event_* API) and its encoding into a record.
 */
#include "event.h"
#include "context.h"
#include "record.h"
#include "uc_arena.h"
#include "uc_time.h"
#include "uc_validate.h"
#include "uc_uuid7.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CHUNK 1536 /* holds a typical event's strings and entries */

/* ---- building ------------------------------------------------------------------------- */

static void clear_fields(ue_event_t *ev)
{
    Userevents__Event pb = USEREVENTS__EVENT__INIT;
    Userevents__Context ctx = USEREVENTS__CONTEXT__INIT;
    ev->pb = pb;
    ev->ctx = ctx;
    ev->has_ctx = 0;
    ev->id_explicit = ev->id_valid = ev->timestamp_explicit = 0;
    ev->pb.properties = ev->props;
}

ue_event_t *ue_event_new(const char *type)
{
    if (!type || !uc__event_type_valid(type, strlen(type)) ||
        uc__event_type_reserved(type, strlen(type)))
        return NULL;
    ue_event_t *ev = malloc(sizeof(*ev) + FIRST_CHUNK);
    if (!ev)
        return NULL;
    ev->props = NULL;
    ev->props_cap = 0;
    ev->wire = NULL;
    ev->wire_cap = 0;
    uc__arena_init(&ev->arena, &ev->first, FIRST_CHUNK);
    if (ue_event_reset(ev, type) != UE_OK) {
        ue_event_destroy(ev);
        return NULL;
    }
    return ev;
}

void ue_event_destroy(ue_event_t *ev)
{
    if (!ev)
        return;
    uc__arena_free(&ev->arena);
    free(ev->props);
    free(ev->wire);
    free(ev);
}

ue_err_t ue_event_reset(ue_event_t *ev, const char *type)
{
    if (!ev || !type || !uc__event_type_valid(type, strlen(type)))
        return UE_ERR_INVALID_ARG;
    /* Checked here, not per ue_track(): an event gets its type nowhere else. */
    if (uc__event_type_reserved(type, strlen(type)))
        return UE_ERR_TYPE_RESERVED;
    uc__arena_reset(&ev->arena);
    clear_fields(ev);
    ev->pb.type = uc__arena_strdup(&ev->arena, type);
    return ev->pb.type ? UE_OK : UE_ERR_NOMEM;
}

/* Text the event carries must be UTF-8: protobuf strings are, and consumers refuse others. */
static int text_ok(const char *s)
{
    return s && uc__utf8_valid(s, strlen(s));
}

static int key_ok(const char *key)
{
    return key && *key && text_ok(key);
}

static ue_err_t set_string(ue_event_t *ev, char **field, const char *value)
{
    if (!ev || !text_ok(value))
        return UE_ERR_INVALID_ARG;
    char *copy = uc__arena_strdup(&ev->arena, value);
    if (!copy)
        return UE_ERR_NOMEM;
    *field = copy;
    return UE_OK;
}

ue_err_t ue_event_set_user_id(ue_event_t *ev, const char *user_id)
{
    return set_string(ev, ev ? &ev->pb.user_id : NULL, user_id);
}

ue_err_t ue_event_set_anonymous_id(ue_event_t *ev, const char *anonymous_id)
{
    return set_string(ev, ev ? &ev->pb.anonymous_id : NULL, anonymous_id);
}

ue_err_t ue_event_set_session_id(ue_event_t *ev, const char *session_id)
{
    return set_string(ev, ev ? &ev->pb.session_id : NULL, session_id);
}

ue_err_t ue_event_set_timestamp_ms(ue_event_t *ev, int64_t timestamp_ms)
{
    if (!ev || timestamp_ms < 0)
        return UE_ERR_INVALID_ARG;
    ev->pb.timestamp_ms = timestamp_ms;
    ev->timestamp_explicit = 1;
    return UE_OK;
}

ue_err_t ue_event_set_received_at_ms(ue_event_t *ev, int64_t received_at_ms)
{
    if (!ev || received_at_ms < 0)
        return UE_ERR_INVALID_ARG;
    ev->pb.received_at_ms = received_at_ms;
    return UE_OK;
}

ue_err_t ue_event_set_event_id(ue_event_t *ev, const uint8_t event_id[16])
{
    if (!ev || !event_id)
        return UE_ERR_INVALID_ARG;
    memcpy(ev->event_id, event_id, 16);
    ev->id_explicit = ev->id_valid = 1;
    return UE_OK;
}

ue_err_t ue_event_get_event_id(const ue_event_t *ev, uint8_t out[16])
{
    if (!ev || !out || !ev->id_valid)
        return UE_ERR_INVALID_ARG;
    memcpy(out, ev->event_id, 16);
    return UE_OK;
}

void ue_event_id_format(const uint8_t event_id[16], char out[37])
{
    uc__uuid_format(event_id, out);
}

/* The value slot of property @p key: an existing one (last wins) or a new entry. */
static Userevents__Value *prop_slot(ue_event_t *ev, const char *key)
{
    for (size_t i = 0; i < ev->pb.n_properties; i++)
        if (strcmp(ev->props[i]->key, key) == 0)
            return ev->props[i]->value;
    if (ev->pb.n_properties == ev->props_cap) {
        size_t cap = ev->props_cap ? ev->props_cap * 2 : 8;
        void *grown = realloc(ev->props, cap * sizeof(*ev->props));
        if (!grown)
            return NULL;
        ev->props = grown;
        ev->props_cap = cap;
        ev->pb.properties = ev->props;
    }
    Userevents__Event__PropertiesEntry *e = uc__arena_alloc(&ev->arena, sizeof(*e));
    Userevents__Value *v = uc__arena_alloc(&ev->arena, sizeof(*v));
    char *k = uc__arena_strdup(&ev->arena, key);
    if (!e || !v || !k)
        return NULL;
    Userevents__Event__PropertiesEntry init = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT;
    *e = init;
    e->key = k;
    e->value = v;
    ev->props[ev->pb.n_properties++] = e;
    return v;
}

static Userevents__Value *new_value(ue_event_t *ev, const char *key)
{
    if (!ev || !key || !*key)
        return NULL;
    Userevents__Value *v = prop_slot(ev, key);
    if (v) {
        Userevents__Value init = USEREVENTS__VALUE__INIT;
        *v = init;
    }
    return v;
}

ue_err_t ue_event_prop_string(ue_event_t *ev, const char *key, const char *value)
{
    if (!ev || !key_ok(key) || !text_ok(value))
        return UE_ERR_INVALID_ARG;
    char *copy = uc__arena_strdup(&ev->arena, value);
    Userevents__Value *v = copy ? new_value(ev, key) : NULL;
    if (!v)
        return UE_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    v->string_value = copy;
    return UE_OK;
}

ue_err_t ue_event_prop_int(ue_event_t *ev, const char *key, int64_t value)
{
    if (!ev || !key_ok(key))
        return UE_ERR_INVALID_ARG;
    Userevents__Value *v = new_value(ev, key);
    if (!v)
        return UE_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    v->int_value = value;
    return UE_OK;
}

ue_err_t ue_event_prop_double(ue_event_t *ev, const char *key, double value)
{
    if (!ev || !key_ok(key) || !isfinite(value))
        return UE_ERR_INVALID_ARG;
    Userevents__Value *v = new_value(ev, key);
    if (!v)
        return UE_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    v->double_value = value;
    return UE_OK;
}

ue_err_t ue_event_prop_bool(ue_event_t *ev, const char *key, int value)
{
    if (!ev || !key_ok(key))
        return UE_ERR_INVALID_ARG;
    Userevents__Value *v = new_value(ev, key);
    if (!v)
        return UE_ERR_NOMEM;
    v->kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
    v->bool_value = value != 0;
    return UE_OK;
}

ue_err_t ue_event_set_context(ue_event_t *ev, const char *field, const char *value)
{
    int i = field ? ue__ctx_find(field) : -1;
    if (!ev || i < 0 || !text_ok(value))
        return UE_ERR_INVALID_ARG;
    char *slot = (char *)&ev->ctx + ue__ctx_fields[i].offset;
    if (ue__ctx_fields[i].is_number) {
        long n = ue__ctx_parse_number(value);
        if (n < 0)
            return UE_ERR_INVALID_ARG;
        *(uint32_t *)slot = (uint32_t)n;
    } else {
        char *copy = uc__arena_strdup(&ev->arena, value);
        if (!copy)
            return UE_ERR_NOMEM;
        *(char **)slot = copy;
    }
    ev->has_ctx = 1;
    return UE_OK;
}
