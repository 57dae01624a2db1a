/*
 * uc_event_pack.c - see uc_event_pack.h.
 *
 * The writer fills its buffer from the end towards the start: each message's fields are written
 * last to first, so when a nested message is done its length is known and goes right before
 * it. Byte-identical to protobuf-c 1.4 means: proto3 scalars and strings are left out when zero
 * or empty (and strings when NULL), a set message field is written even when empty, a oneof
 * member is written when its case is selected (a string or message only when not NULL, even
 * when empty), repeated fields keep their order, and unknown fields follow the known ones.
 */
#include "uc_event_pack.h"

#include <string.h>

typedef struct wr {
    uint8_t *start; /* the lowest byte the writer may use */
    uint8_t *p;     /* the first byte written so far; moves down */
    int full;       /* a write did not fit: the result is void */
} wr_t;

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2 };

static inline int room(wr_t *w, size_t n)
{
    if ((size_t)(w->p - w->start) >= n)
        return 1;
    w->full = 1;
    return 0;
}

static inline void put_varint(wr_t *w, uint64_t v)
{
    size_t n = 1;
    for (uint64_t x = v; x >= 0x80; x >>= 7)
        n++;
    if (!room(w, n))
        return;
    w->p -= n;
    uint8_t *q = w->p;
    for (; v >= 0x80; v >>= 7)
        *q++ = (uint8_t)(v | 0x80);
    *q = (uint8_t)v;
}

static inline void put_tag(wr_t *w, uint32_t field, int wire_type)
{
    put_varint(w, (uint64_t)field << 3 | (uint64_t)wire_type);
}

static inline void put_raw(wr_t *w, const void *data, size_t n)
{
    if (!room(w, n))
        return;
    w->p -= n;
    memcpy(w->p, data, n);
}

/* Tag and length of a length-delimited field whose body starts at w->p and ends at @p end. */
static inline void close_len(wr_t *w, uint32_t field, const uint8_t *end)
{
    put_varint(w, (uint64_t)(end - w->p));
    put_tag(w, field, WT_LEN);
}

static inline void put_bytes_field(wr_t *w, uint32_t field, const void *data, size_t n)
{
    const uint8_t *end = w->p;
    put_raw(w, data, n);
    close_len(w, field, end);
}

/* A proto3 string: nothing when NULL or empty. */
static inline void opt_string(wr_t *w, uint32_t field, const char *s)
{
    if (s && *s)
        put_bytes_field(w, field, s, strlen(s));
}

/* A proto3 integer: nothing when zero (negative int64 values take ten bytes). */
static inline void opt_varint(wr_t *w, uint32_t field, uint64_t v)
{
    if (v) {
        put_varint(w, v);
        put_tag(w, field, WT_VARINT);
    }
}

static void put_unknown(wr_t *w, const ProtobufCMessage *m)
{
    for (unsigned i = m->n_unknown_fields; i-- > 0;) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        put_raw(w, u->data, u->len);
        put_varint(w, (uint64_t)u->tag << 3 | (uint64_t)u->wire_type);
    }
}

static void put_value(wr_t *w, const Userevents__Value *v);

static void put_list(wr_t *w, const Userevents__ListValue *l)
{
    put_unknown(w, &l->base);
    for (size_t i = l->n_values; i-- > 0 && !w->full;) {
        const uint8_t *end = w->p;
        put_value(w, l->values[i]);
        close_len(w, 1, end);
    }
}

static void put_map_entry(wr_t *w, const Userevents__MapValue__FieldsEntry *e)
{
    put_unknown(w, &e->base);
    if (e->value) {
        const uint8_t *end = w->p;
        put_value(w, e->value);
        close_len(w, 2, end);
    }
    opt_string(w, 1, e->key);
}

static void put_map(wr_t *w, const Userevents__MapValue *m)
{
    put_unknown(w, &m->base);
    for (size_t i = m->n_fields; i-- > 0 && !w->full;) {
        const uint8_t *end = w->p;
        put_map_entry(w, m->fields[i]);
        close_len(w, 1, end);
    }
}

static void put_double(wr_t *w, double d)
{
    uint64_t bits;
    uint8_t le[8];
    memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(bits >> (8 * i));
    put_raw(w, le, 8);
}

/* The body of a Value: its one member (when set), then its unknown fields. */
static void put_value(wr_t *w, const Userevents__Value *v)
{
    const uint8_t *end;
    put_unknown(w, &v->base);
    switch (v->kind_case) {
    case USEREVENTS__VALUE__KIND_STRING_VALUE:
        if (v->string_value)
            put_bytes_field(w, 1, v->string_value, strlen(v->string_value));
        break;
    case USEREVENTS__VALUE__KIND_INT_VALUE:
        put_varint(w, (uint64_t)v->int_value);
        put_tag(w, 2, WT_VARINT);
        break;
    case USEREVENTS__VALUE__KIND_DOUBLE_VALUE:
        put_double(w, v->double_value);
        put_tag(w, 3, WT_FIXED64);
        break;
    case USEREVENTS__VALUE__KIND_BOOL_VALUE:
        put_varint(w, v->bool_value ? 1 : 0);
        put_tag(w, 4, WT_VARINT);
        break;
    case USEREVENTS__VALUE__KIND_LIST_VALUE:
        if (v->list_value) {
            end = w->p;
            put_list(w, v->list_value);
            close_len(w, 5, end);
        }
        break;
    case USEREVENTS__VALUE__KIND_MAP_VALUE:
        if (v->map_value) {
            end = w->p;
            put_map(w, v->map_value);
            close_len(w, 6, end);
        }
        break;
    default: break;
    }
}

static void put_property(wr_t *w, const Userevents__Event__PropertiesEntry *e)
{
    put_unknown(w, &e->base);
    if (e->value) {
        const uint8_t *end = w->p;
        put_value(w, e->value);
        close_len(w, 2, end);
    }
    opt_string(w, 1, e->key);
}

static void put_context(wr_t *w, const Userevents__Context *c)
{
    put_unknown(w, &c->base);
    opt_string(w, 16, c->user_agent);
    opt_string(w, 15, c->ip);
    opt_string(w, 14, c->library_version);
    opt_string(w, 13, c->library_name);
    opt_string(w, 12, c->network);
    opt_varint(w, 11, c->screen_height);
    opt_varint(w, 10, c->screen_width);
    opt_string(w, 9, c->timezone);
    opt_string(w, 8, c->locale);
    opt_string(w, 7, c->os_version);
    opt_string(w, 6, c->os_name);
    opt_string(w, 5, c->device_manufacturer);
    opt_string(w, 4, c->device_model);
    opt_string(w, 3, c->app_build);
    opt_string(w, 2, c->app_version);
    opt_string(w, 1, c->app_name);
}

uint8_t *uc__event_pack(const Userevents__Event *e, uint8_t *buf, size_t cap)
{
    wr_t w = {.start = buf, .p = buf + cap, .full = 0};

    put_unknown(&w, &e->base);
    opt_varint(&w, 11, e->schema_version);
    if (e->context) {
        const uint8_t *end = w.p;
        put_context(&w, e->context);
        close_len(&w, 10, end);
    }
    for (size_t i = e->n_properties; i-- > 0 && !w.full;) {
        const uint8_t *end = w.p;
        put_property(&w, e->properties[i]);
        close_len(&w, 9, end);
    }
    opt_varint(&w, 8, (uint64_t)e->received_at_ms);
    opt_varint(&w, 7, (uint64_t)e->sent_at_ms);
    opt_varint(&w, 6, (uint64_t)e->timestamp_ms);
    opt_string(&w, 5, e->session_id);
    opt_string(&w, 4, e->anonymous_id);
    opt_string(&w, 3, e->user_id);
    opt_string(&w, 2, e->type);
    if (e->event_id.len)
        put_bytes_field(&w, 1, e->event_id.data, e->event_id.len);
    return w.full ? NULL : w.p;
}
