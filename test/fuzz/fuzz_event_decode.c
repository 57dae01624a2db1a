/*
 * fuzz_event_decode.c - libFuzzer target for the event decoder the consumers run on bytes
 * from Kafka: uc__pb_unpack (common/uc_pbdecode.h), then a walk over everything it returned
 * (so ASan sees every string, id and nested value a consumer would touch), then a pack round
 * trip, then userevents__event__free_unpacked. The SDK's single-pass encoder
 * (common/uc_event_pack.c) must write the very bytes protobuf-c packs for every decoded
 * event: a differential check. Depth past the limit: fuzz_pb_nesting.c.
 *
 * The decoder itself is libprotobuf-c; run.sh links the system library, uninstrumented: ASan
 * still checks its allocations and its memcpy, but libFuzzer gets no coverage from inside it,
 * so the walk and the round trip are what make the decoder's output observable.
 *
 * Known and left out of the round-trip check (see test/fuzz/crashes/README.md): libprotobuf-c
 * 1.4.1 accepts field number 0 when its tag is an overlong varint (80 00), keeps it as an
 * unknown field and packs it as 00, which it then rejects.
 */
#include "uc_event_pack.h"
#include "uc_pbdecode.h"
#include "userevents.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__, __LINE__, what);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static volatile size_t sink; /* keeps the walk from being optimized away */
static int has_field_zero;   /* an unknown field numbered 0 somewhere in the event */

static void walk_unknown(const ProtobufCMessage *m)
{
    CHECK(m->n_unknown_fields == 0 || m->unknown_fields != NULL, "unknown fields missing");
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        CHECK(u->len == 0 || u->data != NULL, "unknown field without data");
        for (size_t k = 0; k < u->len; k++)
            sink += u->data[k];
        has_field_zero |= u->tag == 0;
    }
}

static void walk_string(const char *s)
{
    CHECK(s != NULL, "NULL string field");
    sink += strlen(s);
}

static void walk_value(const Userevents__Value *v);

static void walk_list(const Userevents__ListValue *l)
{
    walk_unknown(&l->base);
    CHECK(l->n_values == 0 || l->values != NULL, "list without values");
    for (size_t i = 0; i < l->n_values; i++)
        walk_value(l->values[i]);
}

static void walk_map(const Userevents__MapValue *m)
{
    walk_unknown(&m->base);
    CHECK(m->n_fields == 0 || m->fields != NULL, "map without fields");
    for (size_t i = 0; i < m->n_fields; i++) {
        walk_unknown(&m->fields[i]->base);
        walk_string(m->fields[i]->key);
        if (m->fields[i]->value)
            walk_value(m->fields[i]->value);
    }
}

static void walk_value(const Userevents__Value *v)
{
    CHECK(v != NULL, "NULL value in a list");
    walk_unknown(&v->base);
    switch (v->kind_case) {
    case USEREVENTS__VALUE__KIND_STRING_VALUE: walk_string(v->string_value); break;
    case USEREVENTS__VALUE__KIND_INT_VALUE: sink += (size_t)v->int_value; break;
    case USEREVENTS__VALUE__KIND_DOUBLE_VALUE: sink += (size_t)(v->double_value != 0); break;
    case USEREVENTS__VALUE__KIND_BOOL_VALUE: sink += v->bool_value; break;
    case USEREVENTS__VALUE__KIND_LIST_VALUE:
        CHECK(v->list_value != NULL, "list kind without a list");
        walk_list(v->list_value);
        break;
    case USEREVENTS__VALUE__KIND_MAP_VALUE:
        CHECK(v->map_value != NULL, "map kind without a map");
        walk_map(v->map_value);
        break;
    case USEREVENTS__VALUE__KIND__NOT_SET: break;
    default: CHECK(0, "unknown value kind");
    }
}

static void walk_context(const Userevents__Context *c)
{
    const char *s[] = {
        c->app_name,     c->app_version,     c->app_build, c->device_model, c->device_manufacturer,
        c->os_name,      c->os_version,      c->locale,    c->timezone,     c->network,
        c->library_name, c->library_version, c->ip,        c->user_agent};
    walk_unknown(&c->base);
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        walk_string(s[i]);
    sink += c->screen_width + c->screen_height;
}

static void walk_event(const Userevents__Event *e)
{
    walk_unknown(&e->base);
    CHECK(e->event_id.len == 0 || e->event_id.data != NULL, "event id without data");
    for (size_t i = 0; i < e->event_id.len; i++)
        sink += e->event_id.data[i];
    walk_string(e->type);
    walk_string(e->user_id);
    walk_string(e->anonymous_id);
    walk_string(e->session_id);
    /* Unsigned: decoded int64 values are any bits, and their signed sum may overflow. */
    sink += (size_t)e->timestamp_ms + (size_t)e->sent_at_ms + (size_t)e->received_at_ms +
            e->schema_version;
    CHECK(e->n_properties == 0 || e->properties != NULL, "properties without entries");
    for (size_t i = 0; i < e->n_properties; i++) {
        walk_unknown(&e->properties[i]->base);
        walk_string(e->properties[i]->key);
        if (e->properties[i]->value)
            walk_value(e->properties[i]->value);
    }
    if (e->context)
        walk_context(e->context);
}

/* Packs @p e into a fresh buffer of exactly its packed size. */
static uint8_t *pack(const Userevents__Event *e, size_t *len)
{
    *len = userevents__event__get_packed_size(e);
    uint8_t *buf = malloc(*len ? *len : 1);
    CHECK(buf != NULL, "out of memory");
    CHECK(userevents__event__pack(e, buf) == *len, "pack wrote other than its packed size");
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As every consumer does: the guarded decoder (depth and field 0 checked, then unpack). */
    Userevents__Event *e = (Userevents__Event *)uc__pb_unpack(
        &userevents__event__descriptor, NULL, size, data, UC__PB_MAX_DEPTH, NULL);
    if (!e)
        return 0;
    has_field_zero = 0;
    walk_event(e);
    CHECK(!has_field_zero, "uc__pb_check let a field numbered 0 through");

    /* What a consumer re-encodes (enrichment forwards the event) must decode to the same. */
    size_t len1, len2;
    uint8_t *p1 = pack(e, &len1);
    Userevents__Event *e2 = userevents__event__unpack(NULL, len1, p1);
    CHECK(e2 != NULL, "a packed event does not unpack");
    uint8_t *p2 = pack(e2, &len2);
    CHECK(len1 == len2 && memcmp(p1, p2, len1) == 0, "pack(unpack(pack(e))) != pack(e)");

    /* The SDK's encoder: exactly protobuf-c's bytes, and nothing in a buffer one byte short. */
    uint8_t *p3 = malloc(len1 + 1);
    CHECK(p3 != NULL, "out of memory");
    const uint8_t *start = uc__event_pack(e, p3, len1);
    CHECK(start == p3 && memcmp(p3, p1, len1) == 0, "uc__event_pack(e) != pack(e)");
    CHECK(len1 == 0 || uc__event_pack(e, p3, len1 - 1) == NULL, "a short buffer was accepted");
    free(p3);
    free(p1);
    free(p2);
    userevents__event__free_unpacked(e2, NULL);
    userevents__event__free_unpacked(e, NULL);
    return 0;
}
