/*
 * uc_pbdecode.h - the one way to decode Protobuf bytes from untrusted sources (HTTP bodies,
 * Kafka records, anything another process wrote): every unpack of such bytes in the libraries
 * and programs goes through uc__pb_unpack().
 *
 * libprotobuf-c recurses once per nested message with no depth limit (6,000 levels of nested
 * lists, 42 KB, overflow an 8 MB stack; a connection thread's is smaller), and keeps a field
 * numbered 0, which it then cannot encode again. uc__pb_check() walks the wire format first,
 * iteratively, following the message descriptors; only bytes it passes reach protobuf-c.
 */
#ifndef UC_PBDECODE_H
#define UC_PBDECODE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How deep messages may nest: an Event (or a UserProfile) is level 1, a property's map entry
 * level 2, its Value level 3, a ListValue in it level 4, and so on. An EnrichedEvent wraps
 * both one level down, so its readers pass UC__PB_MAX_DEPTH + 1: whatever enrichment accepted
 * loads. The single limit of the pipeline; nothing decoded under it can recurse further.
 */
#define UC__PB_MAX_DEPTH 32

enum {
    UC__PB_OK = 0,
    UC__PB_MALFORMED = -1, /* not wire data: truncated, a bad tag or wire type, field 0 */
    UC__PB_TOO_DEEP = -2,  /* messages nested deeper than the limit */
    UC__PB_INVALID = -3,   /* wire data, but protobuf-c refused it (a field of the wrong wire
                              type, an invalid packed value) or ran out of memory */
};

/* Checks that @p buf is well-formed wire data for @p desc nested at most @p max_depth deep. */
int uc__pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                 int max_depth);

/*
 * Decodes @p buf (@p len bytes) as a message of @p desc, allocating with @p alloc (NULL:
 * malloc), after uc__pb_check() with @p max_depth (UC__PB_MAX_DEPTH, or one more for an
 * EnrichedEvent). Returns the message, freed by the caller with its type's
 * __free_unpacked(msg, @p alloc); or NULL with the reason in *@p err (a UC__PB_* code, for
 * uc__pb_strerror()). @p err may be NULL.
 */
ProtobufCMessage *uc__pb_unpack(const ProtobufCMessageDescriptor *desc,
                                ProtobufCAllocator *alloc, size_t len, const uint8_t *buf,
                                int max_depth, int *err);

/* Why uc__pb_unpack() refused, in words, e.g. "nested deeper than 32 levels". Static. */
const char *uc__pb_strerror(int err);

#endif
