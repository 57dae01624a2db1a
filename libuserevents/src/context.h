/*
 * context.h - the names of the event context fields, shared by the event builder
 * (ue_event_set_context) and the configuration ("context.<name>" sets a client-wide default).
 */
#ifndef UE_CONTEXT_H
#define UE_CONTEXT_H

#include "userevents.pb-c.h"

#include <stddef.h>

typedef struct ue__ctx_field {
    const char *name;  /* "app.name" */
    size_t offset;     /* in Userevents__Context */
    int is_number;     /* uint32 (screen size), else string */
} ue__ctx_field_t;

#define UE__CTX_CNT 14

extern const ue__ctx_field_t ue__ctx_fields[UE__CTX_CNT];

/* Index of @p name in ue__ctx_fields, or -1. */
int ue__ctx_find(const char *name);

/* Parses a screen dimension: 0..100000; returns -1 when malformed. */
long ue__ctx_parse_number(const char *value);

#endif
