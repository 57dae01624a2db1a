/*
 * event.c - what ue-collector's two event builders (event_pb.c, event_json.c) share: the UTF-8
 * check, the type, string fields, and the stamp the request adds to each event.
 */
#include "collector.h"

#include <stdio.h>

int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xe0) == 0xc0 ? 1
                : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
            return 0;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if ((n == 2 && *p == 0xe0 && p[1] < 0xa0) || (n == 2 && *p == 0xed && p[1] > 0x9f) ||
            (n == 3 && *p == 0xf0 && p[1] < 0x90) || (n == 3 && *p == 0xf4 && p[1] > 0x8f))
            return 0; /* overlong, surrogate or past U+10FFFF */
        p += n + 1;
    }
    return 1;
}

/*
 * The event's type, through ue_event_reset(): valid ([A-Za-z0-9._-]), and not one of the
 * pipeline's own topics (the SDK's reserved list, common/ue_validate.c). 0 or -1 with @p err.
 */
int set_type(ue_event_t *ev, const char *type, char *err, size_t errsz)
{
    ue_err_t rc = type ? ue_event_reset(ev, type) : UE_ERR_INVALID_ARG;
    if (rc == UE_ERR_TYPE_RESERVED)
        snprintf(err, errsz, "type: \"%s\" is reserved for the pipeline's own topics", type);
    else if (rc != UE_OK)
        snprintf(err, errsz, "type: missing or invalid ([A-Za-z0-9._-], 1..200 characters)");
    return rc == UE_OK ? 0 : -1;
}

/* A string field: checked, then set when non-empty. Returns 0 or -1 with @p err. */
int set_str(ue_event_t *ev, ue_err_t (*setter)(ue_event_t *, const char *), const char *v,
            const char *what, char *err, size_t errsz)
{
    if (!v || !*v)
        return 0;
    if (!utf8_ok(v) || setter(ev, v) != UE_OK) {
        snprintf(err, errsz, "%s: not valid UTF-8", what);
        return -1;
    }
    return 0;
}

/* The request's stamp: received_at, and ip / user agent where the event has none. */
int apply_stamp(ue_event_t *ev, const stamp_t *st, int has_ip, int has_ua)
{
    ue_event_set_received_at_ms(ev, st->received_at);
    if (!has_ip && st->ip[0])
        ue_event_set_context(ev, "ip", st->ip);
    if (!has_ua && st->user_agent && utf8_ok(st->user_agent))
        ue_event_set_context(ev, "user_agent", st->user_agent);
    return 0;
}
