/*
 * json.c - UTF-8 validation and JSON string escaping (see json.h).
 */
#include "json.h"
#include "uc_validate.h"

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
        if (uc__utf8_valid((const char *)s, n))
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

/* Nonzero when one of the 8 bytes of @p v is a byte that JSON needs escaped or checked:
 * below 0x20, '"', '\\' or non-ASCII (SWAR: eight bytes per test, no false negatives). */
static uint64_t json_word_special(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    return (v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

static inline size_t json_plain(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (;;) {
        while (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            if (json_word_special(v))
                break;
            i += 8;
        }
        size_t stop = i + 8 < len ? i + 8 : len; /* the word that stopped it, byte by byte */
        for (; i < stop; i++)
            if (p[i] < 0x20 || p[i] >= 0x80 || p[i] == '"' || p[i] == '\\')
                return i;
        if (i == len)
            return len;
    }
}

size_t whs__json_plain(const char *s, size_t len)
{
    return json_plain(s, len);
}

/* Writes the escape of '"', '\\' or control character @p c at @p o; returns its end. */
static char *escape_char(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    default:
        memcpy(o, "u00", 3);
        o[3] = hex[c >> 4];
        o[4] = hex[c & 15];
        o += 5;
        break;
    }
    return o;
}

size_t whs__json_string(whs__buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, bad = 0;
    if (whs__buf_reserve(out, len * 6 + 2)) /* the worst case: every byte as \u00XX */
        return 0;
    char *o = out->data + out->len;
    *o++ = '"';
    while (i < len) {
        size_t run = json_plain(s + i, len - i);
        memcpy(o, s + i, run);
        o += run;
        i += run;
        if (i == len)
            break;
        size_t n = p[i] < 0x80 ? 0 : whs__utf8_seq(p + i, len - i);
        if (n) { /* valid UTF-8 goes as it is */
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else if (p[i] >= 0x80) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            bad++;
            i++;
        } else {
            o = escape_char(o, p[i++]);
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
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
