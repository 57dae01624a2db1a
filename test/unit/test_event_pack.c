/*
 * test_event_pack.c - the single-pass Event encoder (uc_event_pack.c) against protobuf-c: for
 * hand-picked edge cases and many random events (absent, NULL and empty fields, unicode, long
 * strings, extreme numbers, nested lists and maps, unknown fields) the bytes are identical to
 * userevents__event__pack(), and a buffer one byte short is refused.
 */
#include "uc_arena.h"
#include "uc_event_pack.h"
#include "userevents.pb-c.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- a small deterministic generator of events -------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int chance(int percent)
{
    return (int)(next() % 100) < percent;
}

static uc__arena_t arena;

static void *alloc(size_t n)
{
    void *p = uc__arena_alloc(&arena, n);
    assert_non_null(p);
    memset(p, 0, n);
    return p;
}

/* NULL, "", ASCII, multi-byte UTF-8, or long enough for a two- or three-byte length. */
static char *gen_string(void)
{
    static const char *const pieces[] = {"a", "Z", "0", "/", " ", "é", "日本", "😀", "\x7f"};
    switch (next() % 8) {
    case 0: return NULL;
    case 1: return "";
    default: break;
    }
    size_t target = chance(10) ? 100 + next() % 20000 : next() % 40;
    char *s = alloc(target + 8);
    size_t len = 0;
    while (len < target) {
        const char *p = pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))];
        memcpy(s + len, p, strlen(p));
        len += strlen(p);
    }
    s[len] = '\0';
    return s;
}

static int64_t gen_int(void)
{
    static const int64_t edges[] = {
        0, 1, -1, 127, 128, 16383, 16384, INT64_MAX, INT64_MIN, INT32_MAX, (int64_t)INT32_MIN - 1};
    if (chance(40))
        return edges[next() % (sizeof(edges) / sizeof(edges[0]))];
    return (int64_t)(next() >> (next() % 64));
}

static double gen_double(void)
{
    static const double edges[] = {0.0, -0.0, 1.5, -1e308, 5e-324, INFINITY, -INFINITY};
    if (chance(30))
        return edges[next() % (sizeof(edges) / sizeof(edges[0]))];
    uint64_t bits = next();
    double d;
    memcpy(&d, &bits, sizeof(d));
    return isnan(d) ? 0.25 : d;
}

static void gen_unknown(ProtobufCMessage *m)
{
    if (!chance(5))
        return;
    static const uint8_t varint[] = {0x96, 0x01}, len[] = {0x03, 'a', 'b', 'c'};
    m->n_unknown_fields = 1 + (unsigned)(next() % 3);
    m->unknown_fields = alloc(m->n_unknown_fields * sizeof(*m->unknown_fields));
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        int is_len = chance(50);
        u->tag = 20 + (uint32_t)(next() % 5000);
        u->wire_type = is_len ? PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED : PROTOBUF_C_WIRE_TYPE_VARINT;
        u->len = is_len ? sizeof(len) : sizeof(varint);
        u->data = (uint8_t *)(is_len ? len : varint);
    }
}

static Userevents__Value *gen_value(int depth);

static Userevents__ListValue *gen_list(int depth)
{
    Userevents__ListValue *l = alloc(sizeof(*l));
    Userevents__ListValue init = USEREVENTS__LIST_VALUE__INIT;
    *l = init;
    l->n_values = next() % 4;
    l->values = alloc((l->n_values + 1) * sizeof(*l->values));
    for (size_t i = 0; i < l->n_values; i++)
        l->values[i] = gen_value(depth + 1);
    gen_unknown(&l->base);
    return l;
}

static Userevents__MapValue *gen_map(int depth)
{
    Userevents__MapValue *m = alloc(sizeof(*m));
    Userevents__MapValue init = USEREVENTS__MAP_VALUE__INIT;
    *m = init;
    m->n_fields = next() % 4;
    m->fields = alloc((m->n_fields + 1) * sizeof(*m->fields));
    for (size_t i = 0; i < m->n_fields; i++) {
        Userevents__MapValue__FieldsEntry *e = alloc(sizeof(*e));
        Userevents__MapValue__FieldsEntry einit = USEREVENTS__MAP_VALUE__FIELDS_ENTRY__INIT;
        *e = einit;
        e->key = gen_string();
        e->value = chance(90) ? gen_value(depth + 1) : NULL;
        gen_unknown(&e->base);
        m->fields[i] = e;
    }
    gen_unknown(&m->base);
    return m;
}

static Userevents__Value *gen_value(int depth)
{
    Userevents__Value *v = alloc(sizeof(*v));
    Userevents__Value init = USEREVENTS__VALUE__INIT;
    *v = init;
    switch (next() % (depth < 3 ? 8 : 6)) {
    case 0: break; /* kind not set */
    case 1:
        v->kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
        v->string_value = gen_string();
        break;
    case 2:
        v->kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
        v->int_value = gen_int();
        break;
    case 3:
        v->kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
        v->double_value = gen_double();
        break;
    case 4:
    case 5:
        v->kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
        v->bool_value = (protobuf_c_boolean)(next() % 3); /* 2: any true value */
        break;
    case 6:
        v->kind_case = USEREVENTS__VALUE__KIND_LIST_VALUE;
        v->list_value = chance(90) ? gen_list(depth) : NULL;
        break;
    default:
        v->kind_case = USEREVENTS__VALUE__KIND_MAP_VALUE;
        v->map_value = chance(90) ? gen_map(depth) : NULL;
        break;
    }
    gen_unknown(&v->base);
    return v;
}

static Userevents__Context *gen_context(void)
{
    Userevents__Context *c = alloc(sizeof(*c));
    Userevents__Context init = USEREVENTS__CONTEXT__INIT;
    *c = init;
    char **s[] = {&c->app_name,
                  &c->app_version,
                  &c->app_build,
                  &c->device_model,
                  &c->device_manufacturer,
                  &c->os_name,
                  &c->os_version,
                  &c->locale,
                  &c->timezone,
                  &c->network,
                  &c->library_name,
                  &c->library_version,
                  &c->ip,
                  &c->user_agent};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        if (chance(50))
            *s[i] = gen_string();
    c->screen_width = chance(50) ? (uint32_t)next() >> (next() % 32) : 0;
    c->screen_height = chance(50) ? (uint32_t)next() : 0;
    gen_unknown(&c->base);
    return c;
}

static void gen_event(Userevents__Event *e, uint8_t id[16])
{
    Userevents__Event init = USEREVENTS__EVENT__INIT;
    *e = init;
    if (chance(90)) {
        for (int i = 0; i < 16; i++)
            id[i] = (uint8_t)next();
        e->event_id.len = chance(95) ? 16 : next() % 16;
        e->event_id.data = id;
    }
    e->type = chance(90) ? gen_string() : NULL;
    e->user_id = gen_string();
    e->anonymous_id = gen_string();
    e->session_id = gen_string();
    e->timestamp_ms = chance(80) ? gen_int() : 0;
    e->sent_at_ms = chance(30) ? gen_int() : 0;
    e->received_at_ms = chance(30) ? gen_int() : 0;
    e->n_properties = chance(10) ? 0 : next() % 12;
    e->properties = alloc((e->n_properties + 1) * sizeof(*e->properties));
    for (size_t i = 0; i < e->n_properties; i++) {
        Userevents__Event__PropertiesEntry *p = alloc(sizeof(*p));
        Userevents__Event__PropertiesEntry pinit = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT;
        *p = pinit;
        p->key = gen_string();
        p->value = chance(95) ? gen_value(0) : NULL;
        gen_unknown(&p->base);
        e->properties[i] = p;
    }
    e->context = chance(80) ? gen_context() : NULL;
    e->schema_version = chance(80) ? (uint32_t)(next() % 3) : UINT32_MAX;
    gen_unknown(&e->base);
}

/* ---- the comparison ----------------------------------------------------------------------- */

/* Asserts uc__event_pack(@p e) == protobuf-c's bytes, with an exact and a short buffer. */
static void assert_same_bytes(const Userevents__Event *e)
{
    size_t len = userevents__event__get_packed_size(e);
    uint8_t *want = malloc(len + 1), *buf = malloc(len + 1);
    assert_non_null(want);
    assert_non_null(buf);
    assert_int_equal(userevents__event__pack(e, want), len);

    uint8_t *got = uc__event_pack(e, buf, len);
    assert_non_null(got);
    assert_int_equal(buf + len - got, len);
    if (memcmp(got, want, len) != 0)
        fail_msg("encodings differ (%zu bytes)", len);
    if (len > 0)
        assert_null(uc__event_pack(e, buf, len - 1));
    free(want);
    free(buf);
}

/* uc__event_pack() writes every field these messages have today. A field added to
 * proto/userevents.proto fails here until common/uc_event_pack.c writes it and the random
 * events below set it: otherwise the SDK would drop it without a word. */
static void test_event_pack_knows_every_field_of_the_schema(void **state)
{
    (void)state;
    assert_int_equal(userevents__event__descriptor.n_fields, 11);
    assert_int_equal(userevents__context__descriptor.n_fields, 16);
    assert_int_equal(userevents__value__descriptor.n_fields, 6);
    assert_int_equal(userevents__list_value__descriptor.n_fields, 1);
    assert_int_equal(userevents__map_value__descriptor.n_fields, 1);
    assert_int_equal(userevents__event__properties_entry__descriptor.n_fields, 2);
    assert_int_equal(userevents__map_value__fields_entry__descriptor.n_fields, 2);
}

static void test_event_pack_matches_protobuf_c_for_an_empty_event(void **state)
{
    (void)state;
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    assert_same_bytes(&e);
    Userevents__Context ctx = USEREVENTS__CONTEXT__INIT;
    e.context = &ctx; /* a set message field is written even when empty */
    assert_same_bytes(&e);
}

static void test_event_pack_matches_protobuf_c_for_edge_values(void **state)
{
    (void)state;
    Userevents__Value v[6] = {USEREVENTS__VALUE__INIT, USEREVENTS__VALUE__INIT,
                              USEREVENTS__VALUE__INIT, USEREVENTS__VALUE__INIT,
                              USEREVENTS__VALUE__INIT, USEREVENTS__VALUE__INIT};
    v[0].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    v[0].string_value = ""; /* a oneof member is written even when empty */
    v[1].kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    v[1].int_value = 0;
    v[2].kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    v[2].int_value = INT64_MIN;
    v[3].kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    v[3].double_value = -0.0;
    v[4].kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
    v[4].bool_value = 0;
    v[5].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE; /* NULL: left out */
    Userevents__Event__PropertiesEntry p[6], *pp[6];
    for (int i = 0; i < 6; i++) {
        Userevents__Event__PropertiesEntry init = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT;
        p[i] = init;
        p[i].key = i == 1 ? "" : "k";
        p[i].value = &v[i];
        pp[i] = &p[i];
    }
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    e.type = "page_view";
    e.user_id = "";
    e.timestamp_ms = -1;
    e.n_properties = 6;
    e.properties = pp;
    assert_same_bytes(&e);
}

static void test_event_pack_matches_protobuf_c_for_random_events(void **state)
{
    (void)state;
    uc__arena_init(&arena, NULL, 0);
    for (int i = 0; i < 20000; i++) {
        Userevents__Event e;
        uint8_t id[16];
        uc__arena_reset(&arena);
        gen_event(&e, id);
        assert_same_bytes(&e);
    }
    uc__arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_pack_knows_every_field_of_the_schema),
        cmocka_unit_test(test_event_pack_matches_protobuf_c_for_an_empty_event),
        cmocka_unit_test(test_event_pack_matches_protobuf_c_for_edge_values),
        cmocka_unit_test(test_event_pack_matches_protobuf_c_for_random_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
