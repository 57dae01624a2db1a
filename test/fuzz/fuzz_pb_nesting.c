/*
 * fuzz_pb_nesting.c - libFuzzer target for the guarded decoder (common/uc_pbdecode.h) on deep
 * input, for every message type the pipeline reads from untrusted bytes (Event, EnrichedEvent,
 * UserProfile, EventBatch), reached two ways from each input:
 *
 *   raw         the input itself, as each of the four types. run.sh gives this target inputs
 *               up to 64 KB (FUZZ_NESTING_MAX_LEN), room for about 9,000 nested lists;
 *               fuzz_event_decode's 16 KB stop near 2,300, below what overflows a stack.
 *   structured  the input as a recipe: bytes 0-1 a depth (up to 12,000 levels), byte 2 the
 *               message type, then one byte per level (cycled) choosing a list or a map there,
 *               a sibling, an unknown field, or a damaged length. The recipe is written out as
 *               wire data, so that a few bytes of input reach any depth.
 *
 * Oracles: nothing decoded is nested deeper than the limit, measured on the decoded tree
 * through the descriptors (the check and protobuf-c must agree on what is a message); a clean
 * recipe within the limit decodes and one past it is refused as UC__PB_TOO_DEEP; no crash,
 * leak or stack overflow on the way (ASan).
 */
#include "collector.pb-c.h"
#include "deep_pb.h"
#include "enriched.pb-c.h"
#include "uc_pbdecode.h"
#include "userevents.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_LEVELS 12000

enum { T_EVENT, T_ENRICHED, T_PROFILE, T_BATCH, T_CNT };

static const ProtobufCMessageDescriptor *const DESC[T_CNT] = {
    &userevents__event__descriptor, &userevents__enriched_event__descriptor,
    &userevents__user_profile__descriptor, &userevents__event_batch__descriptor};

/* The limit of each type: an EnrichedEvent wraps the Event one level down. */
static int limit_of(int type)
{
    return type == T_ENRICHED ? UC__PB_MAX_DEPTH + 1 : UC__PB_MAX_DEPTH;
}

/* Levels of messages in @p m (itself 1), found through its descriptor as protobuf-c laid it out. */
static int depth_of(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int deepest = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                int sd = depth_of(subs[k]);
                deepest = sd > deepest ? sd : deepest;
            }
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue; /* the union holds another member */
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub) {
            int sd = depth_of(sub);
            deepest = sd > deepest ? sd : deepest;
        }
    }
    return deepest + 1;
}

/*
 * Decodes @p buf as @p type the way the pipeline does (a batch: then each of its events, as the
 * collector does) and checks the depth oracle. Returns the code of the decode of @p buf.
 */
static int decode(int type, const uint8_t *buf, size_t len)
{
    int err = 1;
    ProtobufCMessage *m = uc__pb_unpack(DESC[type], NULL, len, buf, limit_of(type), &err);
    if (!m) {
        CHECK(err == UC__PB_MALFORMED || err == UC__PB_TOO_DEEP || err == UC__PB_INVALID,
              "code %d", err);
        return err;
    }
    CHECK(err == UC__PB_OK, "code %d with a message", err);
    int depth = depth_of(m);
    CHECK(depth <= limit_of(type), "decoded %d levels deep, limit %d", depth, limit_of(type));
    if (type == T_BATCH) {
        const Userevents__EventBatch *b = (const Userevents__EventBatch *)m;
        for (size_t i = 0; i < b->n_events; i++)
            decode(T_EVENT, b->events[i].data, b->events[i].len);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return UC__PB_OK;
}

/* ---- structured: a recipe written out as wire data ------------------------------------- */

/* Wraps the Value written since @p mark in one more level chosen by @p op; returns the levels
 * added. A damaged length clears *@p clean: what it decodes to is anyone's guess. */
static int wrap_level(dp_buf_t *d, size_t mark, uint8_t op, int *clean)
{
    int levels;
    if (op & 0x04)
        dp_bytes(d, 15, "\x0a\x02\x10\x01", 4); /* an unknown field of the Value: skipped */
    if (op & 0x01) {                            /* a map: entry, MapValue, Value */
        dp_wrap(d, mark, 2);
        dp_bytes(d, 1, "k", 1);
        dp_wrap(d, mark, 1);
        levels = 3;
    } else { /* a list: ListValue, Value */
        dp_wrap(d, mark, 1);
        if (op & 0x02)
            dp_bytes(d, 1, "\x10\x07", 2); /* a scalar sibling before it */
        levels = 2;
    }
    if ((op & 0xf0) == 0xf0) { /* the Value's length one too long */
        dp_varint(d, dp_len(d) - mark + 1);
        dp_varint(d, (op & 0x01 ? 6 : 5) << 3 | 2);
        *clean = 0;
    } else {
        dp_wrap(d, mark, op & 0x01 ? 6 : 5);
    }
    return levels;
}

/* Checks the verdict on a recipe of @p level levels (innermost Value) decoded as @p type. */
static void check_verdict(int type, int level, int clean, int rc)
{
    int limit = limit_of(type);
    if (!clean)
        return;
    CHECK(level > limit || rc == UC__PB_OK, "%d levels (limit %d) refused: %d", level, limit, rc);
    CHECK(level <= limit || rc == UC__PB_TOO_DEEP, "%d levels (limit %d): code %d", level, limit,
          rc);
}

static void structured(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    int levels = ((data[0] << 8) | data[1]) % MAX_LEVELS, type = data[2] % T_CNT;
    const uint8_t *ops = data + 3;
    size_t nops = size - 3;
    dp_buf_t d = dp_new(levels * 2); /* up to 21 bytes a level */
    int level = 1, clean = 1;        /* the innermost Value's, counted from the top message */
    size_t mark = dp_len(&d);
    dp_uint(&d, 2, 1); /* Value.int_value */
    for (int i = 0; i < levels; i++)
        level += wrap_level(&d, mark, ops[(size_t)i % nops], &clean);
    dp_wrap(&d, mark, 2); /* the map entry's value: entry level 2, Value 3 */
    dp_bytes(&d, 1, "p", 1);
    dp_wrap(&d, mark, type == T_PROFILE ? 7 : 9); /* traits / properties */
    dp_bytes(&d, 2, "click", 5);                  /* Event.type or UserProfile.name */
    level += 2;
    if (type == T_BATCH) /* the collector's order: the batch, then its event on its own */
        check_verdict(T_EVENT, level, clean, decode(T_EVENT, d.p + d.off, dp_len(&d)));
    if (type == T_ENRICHED || type == T_BATCH) {
        dp_wrap(&d, 0, 1); /* EnrichedEvent.event, or EventBatch.events[0] (bytes) */
        level += type == T_ENRICHED;
    }
    int rc = decode(type, d.p + d.off, dp_len(&d));
    if (type != T_BATCH)
        check_verdict(type, level, clean, rc);
    free(d.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int type = 0; type < T_CNT; type++)
        decode(type, data, size);
    structured(data, size);
    return 0;
}
