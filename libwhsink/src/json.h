/*
 * json.h - the JSON text the sink writes (the properties column, NDJSON files, ClickHouse
 * JSONEachRow bodies, dead-lettered rows) and the UTF-8 checks behind it.
 *
 * Every string is checked: invalid UTF-8 (bad bytes, overlong forms, surrogates, code points
 * past U+10FFFF) is either refused or replaced byte by byte with U+FFFD, so what reaches a
 * warehouse always parses there (PostgreSQL's jsonb refuses both invalid UTF-8 and \u0000).
 */
#ifndef WHS_JSON_H
#define WHS_JSON_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at @p s (1..4), or 0 when it is not valid. Validity is
 * uc__utf8_valid()'s (common/uc_validate.h), the rule every library applies. */
size_t whs__utf8_seq(const unsigned char *s, size_t len);

/* Appends @p s with every invalid byte replaced by U+FFFD; returns the replacements made. */
size_t whs__utf8_repair(whs__buf_t *out, const char *s, size_t len);

/* Length of the prefix of @p s that a JSON string holds as it is (printable ASCII other than
 * '"' and '\\'), scanned eight bytes at a time. */
size_t whs__json_plain(const char *s, size_t len);

/*
 * Appends @p s as a JSON string literal (quotes included), escaping '"', '\\' and control
 * characters, and replacing invalid UTF-8 with U+FFFD. Returns the replacements made (0 when
 * out of memory: @p out is then flagged oom and unchanged).
 */
size_t whs__json_string(whs__buf_t *out, const char *s, size_t len);

/* Appends a finite double in its shortest round-trip form, or null for NaN and infinities. */
void whs__json_double(whs__buf_t *out, double v);

void whs__json_int(whs__buf_t *out, int64_t v);

#endif
