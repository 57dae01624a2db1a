/*
 * event.h - the event as it moves through the stages: the decoded input Event and the
 * EnrichedEvent being built around it. Strings a stage sets live in the pipeline's per-event
 * arena; properties a stage sets are malloc'd into the Event so protobuf-c frees them with it.
 */
#ifndef ENR_EVENT_H
#define ENR_EVENT_H

#include "enriched.pb-c.h"
#include "enrich.h"
#include "uc_arena.h"
#include "userevents.pb-c.h"

struct enr_event_s {
    Userevents__Event *ev;          /* decoded input, owned by the pipeline */
    Userevents__EnrichedEvent out;  /* out.event == ev; geo, user_agent, session below */
    Userevents__Geo geo;
    Userevents__UserAgentInfo ua;
    Userevents__SessionInfo session;
    uc__arena_t *arena;
};

/* Prepares @p e around the decoded @p ev (clears every enrichment). */
void enr__event_init(enr_event_t *e, Userevents__Event *ev, uc__arena_t *arena);

/* A string copied into the event's arena ("" when out of memory). */
char *enr__event_strdup(enr_event_t *e, const char *s);

#endif
