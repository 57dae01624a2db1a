/*
 * json_scan.c - a pre-scan of a JSON body, fed byte by byte as it is decompressed, that bounds
 * what cJSON_Parse() will build before it builds anything.
 *
 * cJSON makes one 64-byte node per value (plus malloc's overhead) and a copy of every string:
 * 8 MiB of "[0,0,...]" (8 KB of gzip) became 4 million nodes, ~340 MB, before the event count
 * was checked. The scan counts what the tree will hold, as the bytes arrive, and stops the
 * decompression at the first limit passed: the events of the batch (elements of the outer
 * array, or of an array right inside the outer object), the nesting depth, and the estimated
 * bytes of the tree. It also refuses what cJSON would silently truncate: a "\u0000" escape
 * or a raw control byte inside a string (a user id "a\u0000b" became "a").
 *
 * It does not validate JSON: cJSON does that afterwards. Its counts are upper bounds of what
 * cJSON builds for any input, valid or not (cJSON stops at the first error).
 */
#include "collector.h"

#include <stdio.h>
#include <string.h>

/* What one value costs in the tree: its node and malloc's header, rounded up. */
#define NODE_COST (sizeof(cJSON) + 16)
/* What one string (a value or an object key) costs beyond its bytes: terminator, header. */
#define STRING_COST 32

void jscan_init(jscan_t *js, size_t max_events, size_t max_cost)
{
    memset(js, 0, sizeof(*js));
    js->max_events = max_events;
    js->max_cost = max_cost;
}

static int refuse(jscan_t *js, int status, const char *reason)
{
    js->status = status;
    snprintf(js->reason, sizeof(js->reason), "%s", reason);
    return status;
}

static int level_is_array(const jscan_t *js, int depth)
{
    return depth >= 1 && ((js->arrays >> (depth - 1)) & 1);
}

static int check_cost(jscan_t *js)
{
    if (js->cost <= js->max_cost)
        return 0;
    char why[128];
    snprintf(why, sizeof(why), "parsing the body would take more than %zu bytes", js->max_cost);
    return refuse(js, 413, why);
}

/* A value starts at the current depth: count it, and as an event where events are. */
static int value_starts(jscan_t *js)
{
    js->values++;
    js->cost += NODE_COST;
    int event = (js->depth == 1 && level_is_array(js, 1)) ||
                (js->depth == 2 && level_is_array(js, 2) && !level_is_array(js, 1));
    if (event && ++js->events > js->max_events) {
        char why[128];
        snprintf(why, sizeof(why), "more than %zu events in one batch", js->max_events);
        return refuse(js, 413, why);
    }
    return check_cost(js);
}

static int open_container(jscan_t *js, int array)
{
    if (value_starts(js))
        return js->status;
    if (js->depth == JSCAN_MAX_DEPTH)
        return refuse(js, 400, "JSON nested deeper than 32 levels");
    js->depth++;
    if (array)
        js->arrays |= (uint64_t)1 << (js->depth - 1);
    else
        js->arrays &= ~((uint64_t)1 << (js->depth - 1));
    js->key_next = !array; /* an object starts with a key */
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* One byte inside a string. */
static int string_byte(jscan_t *js, unsigned char c)
{
    js->str_len++;
    if (js->escape == 1) {
        js->escape = c == 'u' ? 2 : 0;
        js->uvalue = 0;
        return 0;
    }
    if (js->escape >= 2) { /* the 4 hex digits of \uXXXX */
        js->uvalue = js->uvalue * 16 + (unsigned)(hexval(c) < 0 ? 1 : hexval(c));
        if (++js->escape == 6) {
            js->escape = 0;
            if (js->uvalue == 0)
                return refuse(js, 400, "\\u0000 in a string (it would cut the string short)");
        }
        return 0;
    }
    if (c == '\\') {
        js->escape = 1;
    } else if (c == '"') {
        js->in_string = 0;
        js->cost += js->str_len + STRING_COST;
        return check_cost(js);
    } else if (c < 0x20) {
        return refuse(js, 400, "a control character in a string (JSON wants it escaped)");
    }
    return 0;
}

/* One byte outside strings. A scalar (number, true, false, null) is a run of letters, digits
 * and "+-."; each run counts as one value, which bounds what cJSON makes of it. */
static int structure_byte(jscan_t *js, unsigned char c)
{
    int scalar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '+' || c == '.';
    if (scalar) {
        if (js->in_scalar)
            return 0;
        js->in_scalar = 1;
        return value_starts(js);
    }
    js->in_scalar = 0;
    switch (c) {
    case '{': return open_container(js, 0);
    case '[': return open_container(js, 1);
    case '}':
    case ']':
        if (js->depth > 0)
            js->depth--;
        js->key_next = 0;
        return 0;
    case ',': js->key_next = js->depth > 0 && !level_is_array(js, js->depth); return 0;
    case ':': js->key_next = 0; return 0;
    case '"':
        js->in_string = 1;
        js->str_len = 0;
        if (js->key_next) {
            js->key_next = 0; /* a key: no node of its own, its bytes are counted */
            return 0;
        }
        return value_starts(js);
    default: return 0; /* blanks; anything else is for cJSON to refuse */
    }
}

int jscan_feed(jscan_t *js, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && !js->status; i++) {
        if (js->in_string)
            string_byte(js, data[i]);
        else
            structure_byte(js, data[i]);
    }
    return js->status;
}
