/*
 * uc_validate.h - checks every library applies to event fields: the same rules where an
 * event is made (the SDK, the collector), read (enrichment) and loaded (the sink).
 */
#ifndef UC_VALIDATE_H
#define UC_VALIDATE_H

#include <stddef.h>

/* 1 when @p type is a valid event type: [A-Za-z0-9._-], 1..200 characters. */
int uc__event_type_valid(const char *type, size_t len);

/*
 * 1 when @p type is reserved: with the default topic.template "events.{type}" it would name one
 * of the pipeline's own topics (events.enriched, events.dead_letter, events.aggregates,
 * events.alerts; changelog and profiles too), which clients must not write. Compared ignoring
 * case, and '.' as '_' (Kafka refuses a topic whose name differs from another's only there).
 */
int uc__event_type_reserved(const char *type, size_t len);

/* 1 when @p s (@p len bytes) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int uc__utf8_valid(const char *s, size_t len);

#endif
