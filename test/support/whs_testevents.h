/*
 * whs_testevents.h - a deterministic stream of EnrichedEvent records for the libwhsink tests
 * and benchmark: record i has a known event id, user, day, properties and enrichment, so a
 * test can check any row a warehouse holds against what was produced.
 *
 * Header-only (static functions): unit tests, integration tests and the benchmark link
 * different support objects.
 */
#ifndef WHS_TESTEVENTS_H
#define WHS_TESTEVENTS_H

#include "enriched.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2024-03-01 00:00:00 UTC: the first day of every test stream. */
#define WT_BASE_MS INT64_C(1709251200000)

typedef struct wt_opts {
    uint32_t nonce;        /* keeps event ids of different runs apart */
    int users;             /* user-0 .. user-(users-1) (default 50) */
    int64_t step_ms;       /* event time of record i = WT_BASE_MS + i * step_ms (default 1 s) */
    const char *extra_key; /* an additional string property (NULL: none) */
    const char *extra_val;
    const char *bad_city;    /* geo city override, e.g. invalid UTF-8 */
    uint32_t schema_version; /* default 1 */
    int pad_bytes;           /* a "pad" string property of this many 'x' (bench row size) */
} wt_opts_t;

static const char *const wt_types[] = {"page_view", "click", "purchase"};

static inline void wt_event_id(uint64_t i, uint32_t nonce, uint8_t id[16])
{
    uint64_t ms = (uint64_t)WT_BASE_MS + i;
    for (int k = 0; k < 6; k++)
        id[k] = (uint8_t)(ms >> (40 - 8 * k));
    id[6] = 0x70 | (uint8_t)(nonce >> 28 & 0x0f);
    id[7] = (uint8_t)(nonce >> 20);
    id[8] = 0x80 | (uint8_t)(nonce >> 14 & 0x3f);
    id[9] = (uint8_t)(nonce >> 6);
    for (int k = 0; k < 6; k++)
        id[10 + k] = (uint8_t)(i >> (40 - 8 * k));
    id[10] ^= (uint8_t)(nonce << 2);
}

static inline void wt_event_id_text(uint64_t i, uint32_t nonce, char out[37])
{
    uint8_t id[16];
    wt_event_id(i, nonce, id);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
             id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12],
             id[13], id[14], id[15]);
}

static inline int64_t wt_event_time(uint64_t i, const wt_opts_t *o)
{
    return WT_BASE_MS + (int64_t)i * (o && o->step_ms ? o->step_ms : 1000);
}

static inline int wt_user(uint64_t i, const wt_opts_t *o)
{
    return (int)(i % (uint64_t)(o && o->users ? o->users : 50));
}

/* Packs record @p i into a malloc'd buffer (*@p len bytes). */
static inline uint8_t *wt_event(uint64_t i, const wt_opts_t *o, size_t *len)
{
    Userevents__Event ev = USEREVENTS__EVENT__INIT;
    Userevents__EnrichedEvent ee = USEREVENTS__ENRICHED_EVENT__INIT;
    Userevents__Geo geo = USEREVENTS__GEO__INIT;
    Userevents__UserAgentInfo ua = USEREVENTS__USER_AGENT_INFO__INIT;
    Userevents__UserProfile prof = USEREVENTS__USER_PROFILE__INIT;
    Userevents__SessionInfo sess = USEREVENTS__SESSION_INFO__INIT;
    Userevents__Event__PropertiesEntry pe[6], *pp[6];
    Userevents__Value pv[6];
    uint8_t id[16];
    char user[32], anon[32], session[32], sku[32], *pad = NULL;
    size_t np = 0;
    int64_t t = wt_event_time(i, o);

    wt_event_id(i, o ? o->nonce : 0, id);
    snprintf(user, sizeof(user), "user-%d", wt_user(i, o));
    snprintf(anon, sizeof(anon), "anon-%d", wt_user(i, o));
    snprintf(session, sizeof(session), "s-%d-%d", wt_user(i, o), (int)(i / 1000));
    snprintf(sku, sizeof(sku), "A-%d", (int)(i % 97));
    ev.event_id.data = id;
    ev.event_id.len = 16;
    ev.type = (char *)wt_types[i % 3];
    ev.user_id = user;
    ev.anonymous_id = anon;
    ev.session_id = session;
    ev.timestamp_ms = t - 5;
    ev.sent_at_ms = t;
    ev.schema_version = o && o->schema_version ? o->schema_version : 1;
    for (int k = 0; k < 6; k++) {
        userevents__event__properties_entry__init(&pe[k]);
        userevents__value__init(&pv[k]);
        pe[k].value = &pv[k];
        pp[k] = &pe[k];
    }
    pe[np].key = "seq", pv[np].kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
    pv[np++].int_value = (int64_t)i;
    pe[np].key = "amount", pv[np].kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    pv[np++].double_value = (double)(i % 1000) * 0.25;
    pe[np].key = "sku", pv[np].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    pv[np++].string_value = sku;
    pe[np].key = "first", pv[np].kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
    pv[np++].bool_value = i % 2 == 0;
    if (o && o->extra_key) {
        pe[np].key = (char *)o->extra_key, pv[np].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
        pv[np++].string_value = (char *)o->extra_val;
    }
    if (o && o->pad_bytes > 0 && (pad = malloc((size_t)o->pad_bytes + 1))) {
        memset(pad, 'x', (size_t)o->pad_bytes);
        pad[o->pad_bytes] = '\0';
        pe[np].key = "pad", pv[np].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
        pv[np++].string_value = pad;
    }
    ev.n_properties = np;
    ev.properties = pp;
    geo.found = 1;
    geo.country_code = "DE";
    geo.city = o && o->bad_city ? (char *)o->bad_city : "Berlin";
    geo.latitude = 52.52;
    geo.longitude = 13.405;
    ua.browser = "Firefox";
    ua.os = "Linux";
    ua.device_class = "desktop";
    prof.user_id = user;
    prof.plan = i % 5 == 0 ? "pro" : "free";
    prof.country = "DE";
    sess.session_id = session;
    sess.sequence = (uint32_t)(i % 1000) + 1;
    ee.event = &ev;
    ee.received_at_ms = t + 100;
    ee.corrected_timestamp_ms = t;
    ee.geo = &geo;
    ee.user_agent = &ua;
    ee.profile = &prof;
    ee.session = &sess;
    ee.source_topic = (char *)"events.page_view";
    *len = userevents__enriched_event__get_packed_size(&ee);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        userevents__enriched_event__pack(&ee, buf);
    free(pad);
    return buf;
}

#endif
