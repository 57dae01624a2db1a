/*
 * datetime.h - dates and times as the backends write them: day numbers (days since
 * 1970-01-01, UTC) for partitions, and their text forms.
 */
#ifndef WHS_DATETIME_H
#define WHS_DATETIME_H

#include <stdint.h>

/* "YYYY-MM-DD" of @p days since 1970-01-01; @p out holds 11 bytes. */
void whs__fmt_date(int32_t days, char out[11]);

/* "YYYY-MM-DD HH:MM:SS.mmm" (UTC) of Unix ms @p ms; @p out holds 24 bytes. */
void whs__fmt_timestamp(int64_t ms, char out[24]);

/* Parses "YYYY-MM-DD" into days since 1970-01-01. 0, or -1 when malformed. */
int whs__parse_date(const char *s, int32_t *days);

/* Floor of @p ms / 86400000: the UTC day. */
int32_t whs__day_of(int64_t ms);

#endif
