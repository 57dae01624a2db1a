/*
 * record.c - allocation, sent_at stamping and spool serialization of records (see record.h).
 */
#include "record.h"
#include "uc_validate.h"

#include <stdlib.h>
#include <string.h>

#define SPOOL_HDR 26 /* type_len 2, key_len 2, payload_len 4, schema 2, event id 16 */

ue__record_t *ue__record_new(const char *type, size_t type_len, const char *key, size_t key_len,
                             size_t payload_len)
{
    if (type_len > UINT16_MAX || key_len > UINT16_MAX || payload_len > UINT32_MAX)
        return NULL;
    ue__record_t *r =
        malloc(sizeof(*r) + type_len + key_len + 2 + payload_len + UE__SENT_AT_SLACK);
    if (!r)
        return NULL;
    r->next = NULL;
    r->seq = 0;
    r->payload_len = (uint32_t)payload_len;
    r->type_len = (uint16_t)type_len;
    r->key_len = (uint16_t)key_len;
    r->schema_version = 0;
    r->from_replay = 0;
    memcpy(r->data, type, type_len);
    r->data[type_len] = '\0';
    memcpy(r->data + type_len + 1, key, key_len);
    r->data[type_len + 1 + key_len] = '\0';
    return r;
}

size_t ue__record_stamp_sent_at(ue__record_t *r, int64_t sent_at_ms)
{
    uint8_t *p = ue__record_payload(r) + r->payload_len;
    uint64_t v = (uint64_t)sent_at_ms;
    size_t n = 0;

    p[n++] = (7 << 3) | 0; /* field 7 (sent_at_ms), wire type varint */
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        p[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    return r->payload_len + n; /* at most 1 + 10 bytes: fits the slack */
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t ue__record_spool_size(const ue__record_t *r)
{
    return SPOOL_HDR + r->type_len + r->key_len + r->payload_len;
}

void ue__record_spool_write(const ue__record_t *r, uint8_t *out)
{
    put16(out, r->type_len);
    put16(out + 2, r->key_len);
    put32(out + 4, r->payload_len);
    put16(out + 8, r->schema_version);
    memcpy(out + 10, r->event_id, 16);
    out += SPOOL_HDR;
    memcpy(out, ue__record_type(r), r->type_len);
    out += r->type_len;
    memcpy(out, ue__record_key(r), r->key_len);
    out += r->key_len;
    memcpy(out, ue__record_payload((ue__record_t *)r), r->payload_len);
}

size_t ue__record_spool_read(const uint8_t *in, size_t len, ue__record_t **out)
{
    *out = NULL;
    if (len < SPOOL_HDR)
        return 0;
    uint16_t type_len = get16(in), key_len = get16(in + 2);
    uint32_t payload_len = get32(in + 4);
    size_t total = (size_t)SPOOL_HDR + type_len + key_len + payload_len;
    if (total > len || !uc__event_type_valid((const char *)in + SPOOL_HDR, type_len) ||
        uc__event_type_reserved((const char *)in + SPOOL_HDR, type_len))
        return 0; /* a spool file must not choose the topic: the type passes ue_track's check */
    const char *type = (const char *)in + SPOOL_HDR;
    ue__record_t *r = ue__record_new(type, type_len, type + type_len, key_len, payload_len);
    if (!r)
        return 0;
    r->schema_version = get16(in + 8);
    memcpy(r->event_id, in + 10, 16);
    memcpy(ue__record_payload(r), type + type_len + key_len, payload_len);
    *out = r;
    return total;
}

void ue__record_free_list(ue__record_t *head)
{
    while (head) {
        ue__record_t *next = head->next;
        free(head);
        head = next;
    }
}
