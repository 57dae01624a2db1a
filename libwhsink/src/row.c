/*
 * row.c - mapping an EnrichedEvent record to a row (see row.h).
 *
 * The record is unpacked by protobuf-c into a scratch arena that is reset per record; the
 * row's strings are copied once into the batch's arena, checked (and repaired) for UTF-8 on
 * the way. The properties become one JSON object; promoted ones also get a typed value.
 * What cannot be mapped returns a reason that goes with the record to the dead-letter topic.
 */
#include "row.h"
#include "enriched.pb-c.h"
#include "json.h"
#include "uc_crc32c.h"
#include "uc_pbdecode.h"
#include "uc_uuid7.h"
#include "uc_validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Times outside [1970-01-01, 2100-01-01) cannot be partitioned or held in every warehouse. */
#define MAX_TIME_MS INT64_C(4102444800000)

static const struct {
    const char *name;
    whs__ctype_t type;
    int nullable;
} fixed[WHS__COL__FIXED] = {
    [WHS__COL_EVENT_ID] = {"event_id", WHS__T_UUID, 0},
    [WHS__COL_TYPE] = {"type", WHS__T_STRING, 0},
    [WHS__COL_USER_ID] = {"user_id", WHS__T_STRING, 1},
    [WHS__COL_ANONYMOUS_ID] = {"anonymous_id", WHS__T_STRING, 1},
    [WHS__COL_SESSION_ID] = {"session_id", WHS__T_STRING, 1},
    [WHS__COL_SESSION_SEQ] = {"session_seq", WHS__T_INT32, 1},
    [WHS__COL_EVENT_TIME] = {"event_time", WHS__T_TIMESTAMP, 0},
    [WHS__COL_CLIENT_TIME] = {"client_time", WHS__T_TIMESTAMP, 1},
    [WHS__COL_RECEIVED_AT] = {"received_at", WHS__T_TIMESTAMP, 1},
    [WHS__COL_DT] = {"dt", WHS__T_DATE, 0},
    [WHS__COL_USER_BUCKET] = {"user_bucket", WHS__T_INT32, 0},
    [WHS__COL_GEO_COUNTRY] = {"geo_country", WHS__T_STRING, 1},
    [WHS__COL_GEO_CITY] = {"geo_city", WHS__T_STRING, 1},
    [WHS__COL_GEO_LAT] = {"geo_lat", WHS__T_DOUBLE, 1},
    [WHS__COL_GEO_LON] = {"geo_lon", WHS__T_DOUBLE, 1},
    [WHS__COL_UA_BROWSER] = {"ua_browser", WHS__T_STRING, 1},
    [WHS__COL_UA_OS] = {"ua_os", WHS__T_STRING, 1},
    [WHS__COL_UA_DEVICE] = {"ua_device", WHS__T_STRING, 1},
    [WHS__COL_PROFILE_PLAN] = {"profile_plan", WHS__T_STRING, 1},
    [WHS__COL_PROFILE_COUNTRY] = {"profile_country", WHS__T_STRING, 1},
    [WHS__COL_PROPERTIES] = {"properties", WHS__T_JSON, 0},
    [WHS__COL_SCHEMA_VERSION] = {"schema_version", WHS__T_INT32, 0},
    [WHS__COL_SOURCE_TOPIC] = {"source_topic", WHS__T_STRING, 0},
    [WHS__COL_SOURCE_PARTITION] = {"source_partition", WHS__T_INT32, 0},
    [WHS__COL_SOURCE_OFFSET] = {"source_offset", WHS__T_INT64, 0},
};

void whs__schema_init(whs__schema_t *schema, const whs__promote_t *promote, int npromote)
{
    static const whs__ctype_t ptypes[] = {WHS__T_STRING, WHS__T_INT64, WHS__T_DOUBLE, WHS__T_BOOL};
    memset(schema, 0, sizeof(*schema));
    for (int i = 0; i < WHS__COL__FIXED; i++) {
        snprintf(schema->cols[i].name, sizeof(schema->cols[i].name), "%s", fixed[i].name);
        schema->cols[i].type = fixed[i].type;
        schema->cols[i].nullable = fixed[i].nullable;
    }
    schema->ncols = WHS__COL__FIXED;
    for (int i = 0; i < npromote; i++) {
        whs__column_t *c = &schema->cols[schema->ncols++];
        snprintf(c->name, sizeof(c->name), "prop_%.*s", WHS__NAME_MAX - 5, promote[i].name);
        c->type = ptypes[promote[i].type];
        c->nullable = 1;
        c->prop = promote[i].name;
    }
    for (size_t i = 0; i < schema->ncols; i++) {
        whs__column_t *c = &schema->cols[i];
        c->key_len = (uint8_t)snprintf(c->key, sizeof(c->key), "\"%s\":", c->name);
    }
}

/* protobuf-c allocator on the scratch arena: free is a no-op, the arena resets per record. */
static void *pb_alloc(void *data, size_t size)
{
    return uc__arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void whs__mapper_init(whs__mapper_t *m, const whs__schema_t *schema, const whs__settings_t *s)
{
    memset(m, 0, sizeof(*m));
    m->schema = schema;
    m->bucket_count = s->bucket_count;
    m->schema_version_max = s->schema_version_max;
    m->row_max_bytes = s->row_max_bytes;
    m->utf8_policy = s->utf8_invalid;
    uc__arena_init(&m->scratch, NULL, 0);
    m->pb_alloc.alloc = pb_alloc;
    m->pb_alloc.free = pb_free;
    m->pb_alloc.allocator_data = &m->scratch;
}

void whs__mapper_free(whs__mapper_t *m)
{
    uc__arena_free(&m->scratch);
    whs__buf_free(&m->json);
    whs__buf_free(&m->tmp);
}

int32_t whs__bucket(const char *id, size_t len, int64_t count)
{
    return (int32_t)(uc__crc32c(0, id, len) % (uint64_t)count);
}

/* ---- strings ---------------------------------------------------------------------------- */

/* Row memory comes from the batch's arena, counted for batch.max.bytes and row.max.bytes. */
static void *row_alloc(whs__mapper_t *m, uc__arena_t *arena, size_t size)
{
    m->row_bytes += (size + 15) & ~(size_t)15;
    return uc__arena_alloc(arena, size);
}

static char *row_strndup(whs__mapper_t *m, uc__arena_t *arena, const char *s, size_t len)
{
    char *p = row_alloc(m, arena, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Copies @p s into the row's arena as a checked string value; NULL-valued when empty. */
static int put_str(whs__mapper_t *m, uc__arena_t *arena, whs__value_t *v, const char *s,
                   const char *field, char *reason, size_t reason_size)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0) {
        v->kind = WHS__V_NULL;
        return 0;
    }
    if (!uc__utf8_valid(s, len)) {
        if (m->utf8_policy == WHS__UTF8_DEAD_LETTER) {
            snprintf(reason, reason_size, "invalid UTF-8 in %s", field);
            return -1;
        }
        whs__buf_reset(&m->tmp);
        whs__utf8_repair(&m->tmp, s, len);
        m->utf8_replaced++;
        s = m->tmp.data;
        len = m->tmp.len;
    }
    char *copy = row_strndup(m, arena, s, len);
    if (!copy) {
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }
    v->kind = WHS__V_STR;
    v->u.s = copy;
    v->len = (uint32_t)len;
    return 0;
}

/* ---- properties ------------------------------------------------------------------------- */

/*
 * The writers below recurse once per nested list or map; uc__pb_unpack() in whs__map()
 * refused a record nested deeper than UC__PB_MAX_DEPTH, which bounds them.
 */
static int value_json(whs__mapper_t *m, const Userevents__Value *v);

/* Appends "key":value (with a leading comma unless @p first). 0, or -1: bad UTF-8 refused. */
static int pair_json(whs__mapper_t *m, const char *key, const Userevents__Value *v, int first)
{
    if (!first)
        whs__buf_putc(&m->json, ',');
    key = key ? key : "";
    size_t bad = whs__json_string(&m->json, key, strlen(key));
    if (bad && m->utf8_policy == WHS__UTF8_DEAD_LETTER)
        return -1;
    m->utf8_replaced += bad > 0;
    whs__buf_putc(&m->json, ':');
    return value_json(m, v);
}

static int list_json(whs__mapper_t *m, const Userevents__ListValue *l)
{
    whs__buf_putc(&m->json, '[');
    for (size_t i = 0; l && i < l->n_values; i++) {
        if (i)
            whs__buf_putc(&m->json, ',');
        int rc = value_json(m, l->values[i]);
        if (rc)
            return rc;
    }
    whs__buf_putc(&m->json, ']');
    return 0;
}

static int mapvalue_json(whs__mapper_t *m, const Userevents__MapValue *mv)
{
    whs__buf_putc(&m->json, '{');
    for (size_t i = 0; mv && i < mv->n_fields; i++) {
        int rc = pair_json(m, mv->fields[i]->key, mv->fields[i]->value, i == 0);
        if (rc)
            return rc;
    }
    whs__buf_putc(&m->json, '}');
    return 0;
}

/* Appends one property value. 0, or -1 (invalid UTF-8, refused). */
static int value_json(whs__mapper_t *m, const Userevents__Value *v)
{
    switch (v ? v->kind_case : USEREVENTS__VALUE__KIND__NOT_SET) {
    case USEREVENTS__VALUE__KIND_STRING_VALUE: {
        const char *s = v->string_value ? v->string_value : "";
        size_t bad = whs__json_string(&m->json, s, strlen(s));
        if (bad && m->utf8_policy == WHS__UTF8_DEAD_LETTER)
            return -1;
        m->utf8_replaced += bad > 0;
        return 0;
    }
    case USEREVENTS__VALUE__KIND_INT_VALUE: whs__json_int(&m->json, v->int_value); return 0;
    case USEREVENTS__VALUE__KIND_DOUBLE_VALUE:
        whs__json_double(&m->json, v->double_value);
        return 0;
    case USEREVENTS__VALUE__KIND_BOOL_VALUE:
        whs__buf_puts(&m->json, v->bool_value ? "true" : "false");
        return 0;
    case USEREVENTS__VALUE__KIND_LIST_VALUE: return list_json(m, v->list_value);
    case USEREVENTS__VALUE__KIND_MAP_VALUE: return mapvalue_json(m, v->map_value);
    default: whs__buf_puts(&m->json, "null"); return 0;
    }
}

/* The properties as one JSON object into the row. */
static int put_properties(whs__mapper_t *m, const Userevents__Event *ev, uc__arena_t *arena,
                          whs__value_t *v, char *reason, size_t reason_size)
{
    int rc = 0;
    whs__buf_reset(&m->json);
    whs__buf_putc(&m->json, '{');
    for (size_t i = 0; rc == 0 && i < ev->n_properties; i++)
        rc = pair_json(m, ev->properties[i]->key, ev->properties[i]->value, i == 0);
    whs__buf_putc(&m->json, '}');
    if (rc) {
        snprintf(reason, reason_size, "invalid UTF-8 in properties");
        return -1;
    }
    char *copy = m->json.oom ? NULL : row_strndup(m, arena, m->json.data, m->json.len);
    if (!copy) {
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }
    v->kind = WHS__V_STR;
    v->u.s = copy;
    v->len = (uint32_t)m->json.len;
    return 0;
}

static const Userevents__Value *find_prop(const Userevents__Event *ev, const char *key)
{
    const Userevents__Value *found = NULL;
    for (size_t i = 0; i < ev->n_properties; i++) /* last one wins, like a map */
        if (ev->properties[i]->key && strcmp(ev->properties[i]->key, key) == 0)
            found = ev->properties[i]->value;
    return found;
}

/* Converts a property to the promoted column's type; what does not convert is NULL (the
 * value stays in the properties JSON either way). */
static int put_promoted(whs__mapper_t *m, const whs__column_t *c, const Userevents__Value *p,
                        uc__arena_t *arena, whs__value_t *v, char *reason, size_t reason_size)
{
    int kind = p ? (int)p->kind_case : 0;
    v->kind = WHS__V_NULL;
    switch (c->type) {
    case WHS__T_STRING:
        if (kind == USEREVENTS__VALUE__KIND_STRING_VALUE)
            return put_str(m, arena, v, p->string_value, c->name, reason, reason_size);
        return 0;
    case WHS__T_INT64:
        if (kind == USEREVENTS__VALUE__KIND_INT_VALUE) {
            v->kind = WHS__V_INT, v->u.i = p->int_value;
        } else if (kind == USEREVENTS__VALUE__KIND_DOUBLE_VALUE &&
                   p->double_value == floor(p->double_value) && fabs(p->double_value) < 9e15) {
            v->kind = WHS__V_INT, v->u.i = (int64_t)p->double_value;
        }
        return 0;
    case WHS__T_DOUBLE:
        if (kind == USEREVENTS__VALUE__KIND_DOUBLE_VALUE && isfinite(p->double_value))
            v->kind = WHS__V_DOUBLE, v->u.d = p->double_value;
        else if (kind == USEREVENTS__VALUE__KIND_INT_VALUE)
            v->kind = WHS__V_DOUBLE, v->u.d = (double)p->int_value;
        return 0;
    case WHS__T_BOOL:
        if (kind == USEREVENTS__VALUE__KIND_BOOL_VALUE)
            v->kind = WHS__V_INT, v->u.i = p->bool_value != 0;
        return 0;
    default: return 0;
    }
}

/* ---- the row ---------------------------------------------------------------------------- */

static void put_int(whs__value_t *v, int64_t i)
{
    v->kind = WHS__V_INT;
    v->u.i = i;
}

/* The receive time: enrichment's, else the collector's stamp; <= 0 when unknown. */
static int64_t received_time(const Userevents__EnrichedEvent *e)
{
    return e->received_at_ms > 0 ? e->received_at_ms : e->event->received_at_ms;
}

/* Event time: the corrected timestamp, else the client's, else the receive time. */
static int64_t event_time(const Userevents__EnrichedEvent *e)
{
    if (e->corrected_timestamp_ms > 0)
        return e->corrected_timestamp_ms;
    if (e->event->timestamp_ms > 0)
        return e->event->timestamp_ms;
    return received_time(e);
}

/*
 * Every time column within [1970-01-01, 2100-01-01): what every warehouse can hold, and what
 * the day and text arithmetic (datetime.c, 32-bit day numbers) is exact for. event_time is
 * required; client_time and received_at are written only when > 0. 0 or -1 with the reason.
 */
static int check_times(const Userevents__EnrichedEvent *e, char *reason, size_t reason_size)
{
    const struct {
        const char *name;
        int64_t t;
        int required; /* else absent (NULL) when <= 0 */
    } cols[] = {
        {"event time", event_time(e), 1},
        {"client_time", e->event->timestamp_ms, 0},
        {"received_at", received_time(e), 0},
    };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        if ((cols[i].t <= 0 && !cols[i].required) || (cols[i].t > 0 && cols[i].t < MAX_TIME_MS))
            continue;
        snprintf(reason, reason_size, "%s %lld ms is outside 1970..2099", cols[i].name,
                 (long long)cols[i].t);
        return -1;
    }
    return 0;
}

/* Checks what makes a record unmappable; 0 or -1 with the reason. */
static int check_record(const whs__mapper_t *m, const Userevents__EnrichedEvent *e, char *reason,
                        size_t reason_size)
{
    if (!e->event) {
        snprintf(reason, reason_size, "EnrichedEvent without an event");
        return -1;
    }
    if (e->event->event_id.len != 16) {
        snprintf(reason, reason_size, "event_id is %zu bytes, expected 16", e->event->event_id.len);
        return -1;
    }
    if (!e->event->type || !*e->event->type) {
        snprintf(reason, reason_size, "event without a type");
        return -1;
    }
    if (m->schema_version_max && e->event->schema_version > m->schema_version_max) {
        snprintf(reason, reason_size, "schema_version %u is newer than schema.version.max %lld",
                 e->event->schema_version, (long long)m->schema_version_max);
        return -1;
    }
    return check_times(e, reason, reason_size);
}

/* The string columns of the envelope and the enrichment, with their sources. */
static int put_strings(whs__mapper_t *m, const Userevents__EnrichedEvent *e, uc__arena_t *a,
                       whs__value_t *v, char *reason, size_t rs)
{
    const Userevents__Event *ev = e->event;
    const char *session = e->session && e->session->session_id && *e->session->session_id
                              ? e->session->session_id
                              : ev->session_id;
    const Userevents__Geo *g = e->geo && e->geo->found ? e->geo : NULL;
    const Userevents__UserAgentInfo *ua = e->user_agent;
    const Userevents__UserProfile *pr = e->profile;
    const struct {
        int col;
        const char *s;
    } strs[] = {
        {WHS__COL_TYPE, ev->type},
        {WHS__COL_USER_ID, ev->user_id},
        {WHS__COL_ANONYMOUS_ID, ev->anonymous_id},
        {WHS__COL_SESSION_ID, session},
        {WHS__COL_GEO_COUNTRY, g ? g->country_code : NULL},
        {WHS__COL_GEO_CITY, g ? g->city : NULL},
        {WHS__COL_UA_BROWSER, ua ? ua->browser : NULL},
        {WHS__COL_UA_OS, ua ? ua->os : NULL},
        {WHS__COL_UA_DEVICE, ua ? ua->device_class : NULL},
        {WHS__COL_PROFILE_PLAN, pr ? pr->plan : NULL},
        {WHS__COL_PROFILE_COUNTRY, pr ? pr->country : NULL},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (put_str(m, a, &v[strs[i].col], strs[i].s, fixed[strs[i].col].name, reason, rs))
            return -1;
    if (g) {
        v[WHS__COL_GEO_LAT].kind = v[WHS__COL_GEO_LON].kind = WHS__V_DOUBLE;
        v[WHS__COL_GEO_LAT].u.d = g->latitude;
        v[WHS__COL_GEO_LON].u.d = g->longitude;
    }
    return 0;
}

/* The numeric columns and the keys of the row (day, bucket). */
static void put_numbers(const whs__mapper_t *m, const Userevents__EnrichedEvent *e, whs__row_t *row)
{
    const Userevents__Event *ev = e->event;
    whs__value_t *v = row->v;
    int64_t t = event_time(e), received = received_time(e);
    const char *who = ev->user_id && *ev->user_id ? ev->user_id : ev->anonymous_id;
    char idtext[37];

    if (!who || !*who) { /* nobody to keep together: spread by event id */
        uc__uuid_format(ev->event_id.data, idtext);
        who = idtext;
    }
    row->dt = whs__day_of(t);
    row->bucket = whs__bucket(who, strlen(who), m->bucket_count);
    put_int(&v[WHS__COL_EVENT_TIME], t);
    if (ev->timestamp_ms > 0)
        put_int(&v[WHS__COL_CLIENT_TIME], ev->timestamp_ms);
    if (received > 0)
        put_int(&v[WHS__COL_RECEIVED_AT], received);
    if (e->session && e->session->sequence)
        put_int(&v[WHS__COL_SESSION_SEQ], e->session->sequence);
    put_int(&v[WHS__COL_DT], row->dt);
    put_int(&v[WHS__COL_USER_BUCKET], row->bucket);
    put_int(&v[WHS__COL_SCHEMA_VERSION], ev->schema_version);
    put_int(&v[WHS__COL_SOURCE_PARTITION], row->partition);
    put_int(&v[WHS__COL_SOURCE_OFFSET], row->offset);
}

static int fill_row(whs__mapper_t *m, const Userevents__EnrichedEvent *e, const char *topic,
                    uc__arena_t *arena, whs__row_t *row, char *reason, size_t reason_size)
{
    const whs__schema_t *schema = m->schema;
    whs__value_t *v = row->v;
    char *id = row_alloc(m, arena, 37);
    if (!id) {
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }
    uc__uuid_format(e->event->event_id.data, id);
    v[WHS__COL_EVENT_ID] = (whs__value_t){.u.s = id, .len = 36, .kind = WHS__V_STR};
    v[WHS__COL_SOURCE_TOPIC] =
        (whs__value_t){.u.s = topic, .len = (uint32_t)strlen(topic), .kind = WHS__V_STR};
    put_numbers(m, e, row);
    if (put_strings(m, e, arena, v, reason, reason_size) ||
        put_properties(m, e->event, arena, &v[WHS__COL_PROPERTIES], reason, reason_size))
        return -1;
    for (size_t c = WHS__COL__FIXED; c < schema->ncols; c++) {
        const whs__column_t *col = &schema->cols[c];
        if (put_promoted(m, col, find_prop(e->event, col->prop), arena, &v[c], reason, reason_size))
            return -1;
    }
    return 0;
}

int whs__map(whs__mapper_t *m, const void *payload, size_t len, const char *topic,
             int32_t partition, int64_t offset, uc__arena_t *arena, whs__row_t **out, char *reason,
             size_t reason_size)
{
    int err;
    uc__arena_reset(&m->scratch);
    /* One level deeper than an Event: it wraps one (uc_pbdecode.h). */
    Userevents__EnrichedEvent *e = (Userevents__EnrichedEvent *)uc__pb_unpack(
        &userevents__enriched_event__descriptor, &m->pb_alloc, len, payload,
        UC__PB_MAX_DEPTH + 1, &err);
    if (!e) {
        snprintf(reason, reason_size, "not a valid EnrichedEvent protobuf (%zu bytes): %s", len,
                 uc__pb_strerror(err));
        return -1;
    }
    if (check_record(m, e, reason, reason_size))
        return -1;
    size_t head = sizeof(whs__row_t) + m->schema->ncols * sizeof(whs__value_t);
    m->row_bytes = 0;
    whs__row_t *row = row_alloc(m, arena, head);
    if (!row) {
        snprintf(reason, reason_size, "out of memory");
        return -1;
    }
    memset(row, 0, head);
    row->partition = partition;
    row->offset = offset;
    if (fill_row(m, e, topic, arena, row, reason, reason_size))
        return -1;
    size_t bytes = m->row_bytes;
    if ((int64_t)bytes > m->row_max_bytes) {
        snprintf(reason, reason_size, "row of %zu bytes exceeds row.max.bytes %lld", bytes,
                 (long long)m->row_max_bytes);
        return -1;
    }
    row->bytes = (uint32_t)bytes;
    *out = row;
    return 0;
}

/* ---- JSON of a row ---------------------------------------------------------------------- */

const whs__json_style_t whs__json_style_plain = {
    .json_as_string = 0, .bool_as_int = 0, .ts_chars = 23};

void whs__row_json(whs__buf_t *out, const whs__schema_t *schema, const whs__row_t *row,
                   const whs__json_style_t *style)
{
    char text[26];
    int first = 1;
    whs__buf_putc(out, '{');
    for (size_t c = 0; c < schema->ncols; c++) {
        const whs__value_t *v = &row->v[c];
        const whs__column_t *col = &schema->cols[c];
        if (v->kind == WHS__V_NULL)
            continue;
        if (!first)
            whs__buf_putc(out, ',');
        whs__buf_append(out, col->key, col->key_len);
        first = 0;
        switch (col->type) {
        case WHS__T_JSON:
            if (style->json_as_string)
                whs__json_string(out, v->u.s, v->len);
            else
                whs__buf_append(out, v->u.s, v->len);
            break;
        case WHS__T_UUID:
        case WHS__T_STRING: whs__json_string(out, v->u.s, v->len); break;
        case WHS__T_DOUBLE: whs__json_double(out, v->u.d); break;
        case WHS__T_BOOL:
            if (style->bool_as_int)
                whs__json_int(out, v->u.i);
            else
                whs__buf_puts(out, v->u.i ? "true" : "false");
            break;
        case WHS__T_TIMESTAMP:
            text[0] = '"';
            whs__fmt_timestamp(v->u.i, text + 1);
            text[1 + style->ts_chars] = '"';
            whs__buf_append(out, text, (size_t)style->ts_chars + 2);
            break;
        case WHS__T_DATE:
            text[0] = '"';
            whs__fmt_date((int32_t)v->u.i, text + 1);
            text[11] = '"';
            whs__buf_append(out, text, 12);
            break;
        default: whs__json_int(out, v->u.i); break;
        }
    }
    whs__buf_putc(out, '}');
}
