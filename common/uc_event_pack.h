/*
 * uc_event_pack.h - a single-pass Protobuf encoder for userevents.Event, written against
 * proto/userevents.proto, whose output is byte-identical to protobuf-c's
 * userevents__event__pack() (test_event_pack.c and the fuzz_event_decode target check it).
 *
 * protobuf-c walks the descriptors twice (get_packed_size, then pack); on the ue_track() path
 * that was most of the caller's cost. This encoder writes the message back to front into a
 * caller buffer, so a nested message's length is known when its tag is written and one pass
 * suffices: the bytes end at the end of the buffer.
 */
#ifndef UC_EVENT_PACK_H
#define UC_EVENT_PACK_H

#include "userevents.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Encodes @p e into the last bytes of @p buf (@p cap bytes). Returns where the encoding
 * starts (it ends at @p buf + @p cap), or NULL when it does not fit in @p cap bytes.
 * Unknown fields (from a decoded event) are written after the known ones, as protobuf-c does.
 */
uint8_t *uc__event_pack(const Userevents__Event *e, uint8_t *buf, size_t cap);

#endif
