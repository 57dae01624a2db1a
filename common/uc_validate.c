/*
 * uc_validate.c - see uc_validate.h.
 */
#include "uc_validate.h"

#include <stdint.h>
#include <string.h>

int uc__event_type_valid(const char *type, size_t len)
{
    if (!type || len == 0 || len > 200)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = type[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The one list: the SDK (ue_event_new, ue_event_reset, spool replay) and the collector. */
static const char *const RESERVED[] = {"enriched", "dead_letter", "aggregates", "alerts",
                                       "changelog", "profiles"};

static int same_name(const char *type, size_t len, const char *reserved)
{
    if (strlen(reserved) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = type[i] == '.' ? '_' : type[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != reserved[i])
            return 0;
    }
    return 1;
}

int uc__event_type_reserved(const char *type, size_t len)
{
    for (size_t i = 0; type && i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++)
        if (same_name(type, len, RESERVED[i]))
            return 1;
    return 0;
}

int uc__utf8_valid(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str, *end = s + len;
    while (s < end) {
        uint8_t c = *s;
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - s) < n)
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n;
    }
    return 1;
}
