/*
 * uc_pbdecode.c - see uc_pbdecode.h. The check keeps an explicit stack of (descriptor, end)
 * frames instead of recursing; unknown fields are skipped as protobuf allows.
 */
#include "uc_pbdecode.h"

#define STACK_MAX 64

typedef struct frame {
    const ProtobufCMessageDescriptor *desc;
    size_t end;
} frame_t;

static int read_varint(const uint8_t *buf, size_t len, size_t *off, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *off < len; shift += 7) {
        uint8_t b = buf[(*off)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *desc,
                                                uint32_t number)
{
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (desc->fields[i].id == number)
            return &desc->fields[i];
    return NULL;
}

/* Skips one field's value at *@p off; for a sub-message, returns its extent in *@p sub. */
static int skip_value(const uint8_t *buf, size_t end, size_t *off, int wire, uint64_t *sub_len)
{
    uint64_t v;
    *sub_len = UINT64_MAX;
    switch (wire) {
    case 0: return read_varint(buf, end, off, &v);
    case 1: return end - *off < 8 ? -1 : (*off += 8, 0);
    case 5: return end - *off < 4 ? -1 : (*off += 4, 0);
    case 2:
        if (read_varint(buf, end, off, &v) || v > end - *off)
            return -1;
        *sub_len = v;
        return 0;
    default: return -1; /* groups (3, 4) and reserved wire types */
    }
}

int uc__pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                 int max_depth)
{
    frame_t stack[STACK_MAX];
    int depth = 0;
    size_t off = 0;
    if (max_depth > STACK_MAX)
        max_depth = STACK_MAX;
    stack[0] = (frame_t){desc, len};
    for (;;) {
        if (off == stack[depth].end) {
            if (depth == 0)
                return UC__PB_OK;
            depth--;
            continue;
        }
        uint64_t key, sub_len;
        if (read_varint(buf, stack[depth].end, &off, &key) || (key >> 3) == 0 ||
            (key >> 3) > 536870911)
            return UC__PB_MALFORMED;
        if (skip_value(buf, stack[depth].end, &off, (int)(key & 7), &sub_len))
            return UC__PB_MALFORMED;
        const ProtobufCFieldDescriptor *f = field_of(stack[depth].desc, (uint32_t)(key >> 3));
        if (sub_len == UINT64_MAX || !f || f->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (sub_len != UINT64_MAX)
                off += sub_len; /* bytes, a string, packed scalars or an unknown field */
            continue;
        }
        if (depth + 1 >= max_depth)
            return UC__PB_TOO_DEEP;
        stack[++depth] = (frame_t){f->descriptor, off + sub_len};
    }
}

ProtobufCMessage *uc__pb_unpack(const ProtobufCMessageDescriptor *desc,
                                ProtobufCAllocator *alloc, size_t len, const uint8_t *buf,
                                int max_depth, int *err)
{
    int rc = uc__pb_check(desc, buf, len, max_depth);
    ProtobufCMessage *msg = rc ? NULL : protobuf_c_message_unpack(desc, alloc, len, buf);
    if (!msg && !rc)
        rc = UC__PB_INVALID;
    if (err)
        *err = rc;
    return msg;
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *uc__pb_strerror(int err)
{
    switch (err) {
    case UC__PB_OK: return "ok";
    case UC__PB_MALFORMED: return "malformed Protobuf (truncated, a bad tag or field number 0)";
    case UC__PB_TOO_DEEP: return "nested deeper than " STR(UC__PB_MAX_DEPTH) " levels";
    case UC__PB_INVALID: return "not a valid message of its type";
    default: return "undecodable";
    }
}
