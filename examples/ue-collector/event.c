/*
 * event.c - what ue-collector's two event builders (event_pb.c, event_json.c) share: the UTF-8
 * check, the type, string fields, the event time's bounds, and the stamp the request adds to
 * each event.
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
 * pipeline's own topics (the SDK's reserved list, common/uc_validate.c). 0 or -1 with @p err.
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

/*
 * The event's own time against the collector's clock: at most --max-clock-skew-ms after
 * received_at and --max-event-age-ms before it. Enrichment files events by this time (windows,
 * sessions, the watermark), so a device clock years off must not reach it. 0, or -1 with @p err.
 */
int check_time(int64_t t, const stamp_t *st, char *err, size_t errsz)
{
    if (t > st->latest)
        snprintf(err, errsz,
                 "timestamp: %lld (Unix ms) is more than %lld ms after the collector's clock "
                 "(%lld): --max-clock-skew-ms",
                 (long long)t, (long long)(st->latest - st->received_at),
                 (long long)st->received_at);
    else if (t < st->earliest)
        snprintf(err, errsz,
                 "timestamp: %lld (Unix ms) is more than %lld ms before the collector's clock "
                 "(%lld): --max-event-age-ms",
                 (long long)t, (long long)(st->received_at - st->earliest),
                 (long long)st->received_at);
    return t > st->latest || t < st->earliest ? -1 : 0;
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
