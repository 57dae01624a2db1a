/*
 * json.c - UTF-8 validation and JSON string escaping (see json.h).
 */
#include "json.h"
#include "ue_validate.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t whs__utf8_seq(const unsigned char *s, size_t len)
{
    if (s[0] < 0x80)
        return 1;
    /* the lead byte says the length; the shortest valid prefix is the sequence */
    for (size_t n = 2; n <= 4 && n <= len; n++)
        if (ue__utf8_valid((const char *)s, n))
            return n;
    return 0;
}

size_t whs__utf8_repair(whs__buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, start = 0, bad = 0;
    while (i < len) {
        size_t n = p[i] < 0x80 ? 1 : whs__utf8_seq(p + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        whs__buf_append(out, s + start, i - start);
        whs__buf_append(out, "\xEF\xBF\xBD", 3);
        bad++;
        start = ++i;
    }
    whs__buf_append(out, s + start, len - start);
    return bad;
}

/* Appends the escape of control or special character @p c. */
static void escape_char(whs__buf_t *out, unsigned char c)
{
    switch (c) {
    case '"': whs__buf_append(out, "\\\"", 2); break;
    case '\\': whs__buf_append(out, "\\\\", 2); break;
    case '\n': whs__buf_append(out, "\\n", 2); break;
    case '\r': whs__buf_append(out, "\\r", 2); break;
    case '\t': whs__buf_append(out, "\\t", 2); break;
    case '\b': whs__buf_append(out, "\\b", 2); break;
    case '\f': whs__buf_append(out, "\\f", 2); break;
    default: whs__buf_printf(out, "\\u%04x", c); break;
    }
}

size_t whs__json_string(whs__buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, start = 0, bad = 0;
    whs__buf_reserve(out, len + 2);
    whs__buf_putc(out, '"');
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t n = c < 0x80 ? 1 : whs__utf8_seq(p + i, len - i);
        if (c >= 0x80 && n) {
            i += n;
            continue;
        }
        whs__buf_append(out, s + start, i - start);
        if (n) {
            escape_char(out, c);
        } else {
            whs__buf_append(out, "\xEF\xBF\xBD", 3);
            bad++;
        }
        start = ++i;
    }
    whs__buf_append(out, s + start, len - start);
    whs__buf_putc(out, '"');
    return bad;
}

/* Writes @p v in decimal at the end of @p tmp (no printf on the hot path); returns the start. */
static char *utoa_end(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void whs__json_double(whs__buf_t *out, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        whs__buf_append(out, "null", 4);
        return;
    }
    /* Fast path: up to 6 decimals that survive the round trip exactly (amounts, degrees). */
    double a = fabs(v), scaled = a * 1e6;
    if (a < 1e12 && scaled == (double)(uint64_t)scaled && (double)(uint64_t)scaled / 1e6 == a) {
        uint64_t units = (uint64_t)scaled, whole = units / 1000000, frac = units % 1000000;
        int digits = 6;
        while (frac % 10 == 0 && digits > 1) {
            frac /= 10;
            digits--;
        }
        char *end = tmp + sizeof(tmp), *p = utoa_end(frac, end);
        while (end - p < digits)
            *--p = '0';
        *--p = '.';
        p = utoa_end(whole, p);
        if (v < 0)
            *--p = '-';
        whs__buf_append(out, p, (size_t)(end - p));
        return;
    }
    /* %.17g always round-trips; try the shorter %.15g first (most decimal inputs). */
    int n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    whs__buf_append(out, tmp, (size_t)n);
    if (!strpbrk(tmp, ".eEn")) /* keep it a float for typed readers: 3 -> 3.0 */
        whs__buf_append(out, ".0", 2);
}

void whs__json_int(whs__buf_t *out, int64_t v)
{
    char tmp[24], *end = tmp + sizeof(tmp);
    char *p = utoa_end(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, end);
    if (v < 0)
        *--p = '-';
    whs__buf_append(out, p, (size_t)(end - p));
}
