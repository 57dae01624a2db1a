/*
 * event.h - the event builder's internals, read by the client when it tracks an event.
 *
 * An event is its Protobuf message plus a small arena that owns every string and property
 * entry, so building and resetting an event of a few properties does not call malloc.
 */
#ifndef UE_EVENT_H
#define UE_EVENT_H

#include "uc_arena.h"
#include "uc_validate.h"
#include "userevents.h"
#include "userevents.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct ue_event_s {
    Userevents__Event pb;
    Userevents__Context ctx;
    int has_ctx;                         /* any context field set on this event */
    uint8_t event_id[16];
    int id_explicit;                     /* set by ue_event_set_event_id() */
    int id_valid;                        /* event_id holds an id (explicit or last tracked) */
    int timestamp_explicit;
    Userevents__Event__PropertiesEntry **props;
    size_t props_cap;
    uint8_t *wire;                       /* encoding scratch, kept across resets */
    size_t wire_cap;
    uc__arena_t arena;                   /* owns every string and entry of the event */
    uc__arena_chunk_t first;             /* the arena's inline chunk; must stay last */
};

/*
 * Encodes @p ev into a new record keyed by @p key, filling the defaults it lacks from
 * @p defaults (client context) and stamping id and timestamp. NULL with *@p err set on failure.
 */
struct ue__record *ue__event_encode(ue_event_t *ev, const Userevents__Context *defaults,
                                    const char *user_id, const char *anonymous_id,
                                    size_t max_bytes, ue_err_t *err);

#endif
