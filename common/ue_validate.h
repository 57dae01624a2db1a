/*
 * ue_validate.h - checks every library applies to event fields: the same rules where an
 * event is made (the SDK), read (enrichment) and loaded (the sink).
 */
#ifndef UE_VALIDATE_H
#define UE_VALIDATE_H

#include <stddef.h>

/* 1 when @p type is a valid event type: [A-Za-z0-9._-], 1..200 characters. */
int ue__event_type_valid(const char *type, size_t len);

/* 1 when @p s (@p len bytes) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ue__utf8_valid(const char *s, size_t len);

#endif
