/*
 * record.h - one encoded event on its way from ue_track() to an acknowledgement.
 *
 * A record is a single allocation: the header below, then the type, the key and the Protobuf
 * payload, each NUL-terminated, then UE__SENT_AT_SLACK spare bytes. At send time the transport
 * appends the sent_at field (a protobuf field may be appended to a serialized message) into that
 * slack, so the payload goes to librdkafka without a copy, and a retry carries a fresh sent_at
 * with the same event id.
 */
#ifndef UE_RECORD_H
#define UE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define UE__SENT_AT_SLACK 16

typedef struct ue__record {
    struct ue__record *next;
    uint64_t seq;            /* spool sequence number; 0 when there is no spool */
    uint32_t payload_len;    /* without the sent_at suffix */
    uint16_t type_len;
    uint16_t key_len;
    uint16_t schema_version;
    uint8_t from_replay;     /* read back from the spool of an earlier process */
    uint8_t event_id[16];
    char data[];             /* type \0 key \0 payload [slack] */
} ue__record_t;

/* Allocates a record with room for the strings and @p payload_len bytes of payload. */
ue__record_t *ue__record_new(const char *type, size_t type_len, const char *key, size_t key_len,
                             size_t payload_len);

static inline const char *ue__record_type(const ue__record_t *r)
{
    return r->data;
}

static inline const char *ue__record_key(const ue__record_t *r)
{
    return r->data + r->type_len + 1;
}

static inline uint8_t *ue__record_payload(ue__record_t *r)
{
    return (uint8_t *)r->data + r->type_len + 1 + r->key_len + 1;
}

/* Bytes the record occupies in memory: what queue.max.bytes counts. */
static inline size_t ue__record_size(const ue__record_t *r)
{
    return sizeof(*r) + r->type_len + r->key_len + 2 + r->payload_len + UE__SENT_AT_SLACK;
}

/*
 * Writes the sent_at field (field 7, fixed-width varint) after the payload, in the slack.
 * Returns the payload length including it.
 */
size_t ue__record_stamp_sent_at(ue__record_t *r, int64_t sent_at_ms);

/* Serialized form in a spool frame: fixed little-endian header then the three strings. */
size_t ue__record_spool_size(const ue__record_t *r);
void ue__record_spool_write(const ue__record_t *r, uint8_t *out);
/* Parses one serialized record; returns bytes consumed, or 0 when malformed. */
size_t ue__record_spool_read(const uint8_t *in, size_t len, ue__record_t **out);

void ue__record_free_list(ue__record_t *head);

#endif
