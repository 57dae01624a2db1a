/*
 * event_json.c - builds an event from one JSON object of a batch (web pages, beacons, anything
 * without the SDK): RFC 3339 or Unix ms times, textual UUIDs, nested context and properties.
 *
 * An event sent without an event_id gets one derived from the request, not a random one, so
 * that a retried request (same key, same body once decompressed) carries the same ids and
 * enrichment's dedup drops the copies: the first 16 bytes of SHA-256(seed || index), seed =
 * SHA-256(key length || key || body), as a UUID of version 8 (custom). Mixing in the key keeps
 * one customer's ids from being computed by another. The other side of it: two requests with
 * the same key and the very same body are one request to the pipeline; events that must count
 * twice need an event_id or a timestamp of their own.
 */
#include "collector.h"

#include <gnutls/crypto.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "2024-05-01T12:34:56.789Z" or "...+02:00" to Unix ms; -1 when malformed. */
static int64_t parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    int ms = 0, n = 0, oh = 0, om = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*s - '0');
        for (; digits > 0 && digits < 3; digits++)
            ms *= 10;
    }
    int sign = *s == '+' ? 1 : *s == '-' ? -1 : 0;
    if (sign && sscanf(s + 1, "%2d:%2d", &oh, &om) != 2)
        return -1;
    if (!sign && strcmp(s, "Z") && strcmp(s, "z"))
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || oh > 23 || om > 59)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 + ms;
}

static int json_time(const cJSON *v, int64_t *out)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15)
        *out = (int64_t)v->valuedouble;
    else if (cJSON_IsString(v))
        *out = parse_rfc3339(v->valuestring);
    else
        return -1;
    return *out >= 0 ? 0 : -1;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
    if (strlen(s) != 36)
        return -1;
    for (int i = 0, j = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        int c = s[i], v = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (v < 0)
            return -1;
        out[j / 2] = (uint8_t)(j % 2 ? out[j / 2] | v : v << 4);
        j++;
    }
    return 0;
}

void json_id_seed(const char *key, const uint8_t *body, size_t len, uint8_t seed[32])
{
    gnutls_hash_hd_t h;
    uint64_t klen = strlen(key);
    memset(seed, 0, 32);
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return; /* all-zero seed: ids still per index, only not per request */
    gnutls_hash(h, &klen, sizeof(klen));
    gnutls_hash(h, key, klen);
    gnutls_hash(h, body, len);
    gnutls_hash_deinit(h, seed);
}

/* The id of event @p index of the request whose seed is @p seed (see the top of the file). */
static void derived_id(const uint8_t seed[32], size_t index, uint8_t id[16])
{
    uint8_t in[40], out[32];
    uint64_t i = index;
    memcpy(in, seed, 32);
    memcpy(in + 32, &i, 8);
    gnutls_hash_fast(GNUTLS_DIG_SHA256, in, sizeof(in), out);
    memcpy(id, out, 16);
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x80); /* version 8 */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

/* Properties: strings, numbers and booleans; nested objects and arrays as JSON text. */
static int json_props(ue_event_t *ev, const cJSON *props, size_t *size, char *err, size_t errsz)
{
    const cJSON *p;
    if (props && !cJSON_IsObject(props) && !cJSON_IsNull(props)) {
        snprintf(err, errsz, "properties: an object expected");
        return -1;
    }
    for (p = props ? props->child : NULL; p; p = p->next) {
        ue_err_t rc = UE_OK;
        const char *k = p->string;
        *size += strlen(k) + 24; /* map entry, key and value: tags and length varints */
        if (!*k || !utf8_ok(k)) {
            rc = UE_ERR_INVALID_ARG;
        } else if (cJSON_IsString(p)) {
            *size += strlen(p->valuestring);
            rc = utf8_ok(p->valuestring) ? ue_event_prop_string(ev, k, p->valuestring)
                                         : UE_ERR_INVALID_ARG;
        } else if (cJSON_IsBool(p)) {
            rc = ue_event_prop_bool(ev, k, cJSON_IsTrue(p));
        } else if (cJSON_IsNumber(p)) {
            double d = p->valuedouble;
            rc = d == floor(d) && fabs(d) < 9e15 ? ue_event_prop_int(ev, k, (int64_t)d)
                                                 : ue_event_prop_double(ev, k, d);
        } else if (cJSON_IsObject(p) || cJSON_IsArray(p)) {
            char *text = cJSON_PrintUnformatted(p);
            *size += text ? strlen(text) : 0;
            rc = text && utf8_ok(text) ? ue_event_prop_string(ev, k, text) : UE_ERR_INVALID_ARG;
            free(text);
        }
        if (rc != UE_OK) {
            snprintf(err, errsz, "properties.%.64s: invalid key or value", k);
            return -1;
        }
    }
    return 0;
}

/* Context: "app.name": "x" or {"app": {"name": "x"}}; unknown fields are ignored. */
static int json_context(ue_event_t *ev, const cJSON *ctx, int *has_ip, int *has_ua, size_t *size,
                        char *err, size_t errsz)
{
    const cJSON *c, *sub;
    char name[128], num[32];
    if (ctx && !cJSON_IsObject(ctx) && !cJSON_IsNull(ctx)) {
        snprintf(err, errsz, "context: an object expected");
        return -1;
    }
    for (c = ctx ? ctx->child : NULL; c; c = c->next) {
        const cJSON *items = cJSON_IsObject(c) ? c->child : c;
        for (sub = items; sub; sub = cJSON_IsObject(c) ? sub->next : NULL) {
            if (cJSON_IsObject(c))
                snprintf(name, sizeof(name), "%s.%s", c->string, sub->string);
            else
                snprintf(name, sizeof(name), "%s", c->string);
            const char *v = cJSON_IsString(sub) ? sub->valuestring : NULL;
            if (cJSON_IsNumber(sub)) {
                snprintf(num, sizeof(num), "%.0f", sub->valuedouble);
                v = num;
            }
            if (!v)
                continue;
            *size += strlen(v) + 7;
            if (!utf8_ok(v)) {
                snprintf(err, errsz, "context.%.64s: not valid UTF-8", name);
                return -1;
            }
            if (ue_event_set_context(ev, name, v) == UE_OK) {
                *has_ip |= strcmp(name, "ip") == 0;
                *has_ua |= strcmp(name, "user_agent") == 0;
            } else if (!strncmp(name, "screen.", 7)) {
                snprintf(err, errsz, "context.%s: a whole number of pixels expected", name);
                return -1;
            }
        }
    }
    return 0;
}

static const char *json_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A string field's share of the encoded size, at most: tag, length varint, bytes. */
static size_t str_size(const char *s)
{
    return s ? strlen(s) + 6 : 0;
}

/* Builds @p ev from event @p index of a JSON batch; *@p size bounds its encoded size. 0 or -1. */
int build_json(ue_event_t *ev, const cJSON *o, size_t index, const stamp_t *st, size_t *size,
               char *err, size_t errsz)
{
    const char *type = json_string(o, "type"), *id = json_string(o, "event_id");
    const char *uid = json_string(o, "user_id"), *anon = json_string(o, "anonymous_id");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "timestamp");
    int64_t t = st->received_at;
    int has_ip = 0, has_ua = 0;
    uint8_t bin[16];
    *size = 64;
    if (set_type(ev, cJSON_IsObject(o) ? type : NULL, err, errsz))
        return -1;
    if (id && parse_uuid(id, bin)) {
        snprintf(err, errsz, "event_id: a UUID (8-4-4-4-12 hex) expected");
        return -1;
    }
    if (!id)
        derived_id(st->id_seed, index, bin);
    ue_event_set_event_id(ev, bin);
    if ((!uid || !*uid) && (!anon || !*anon)) {
        snprintf(err, errsz, "user_id or anonymous_id is required");
        return -1;
    }
    const cJSON *sent = cJSON_GetObjectItemCaseSensitive(o, "sent_at");
    int64_t sent_at; /* checked only: the SDK stamps its own sent_at when it publishes */
    if ((ts && !cJSON_IsNull(ts) && json_time(ts, &t)) ||
        (sent && !cJSON_IsNull(sent) && json_time(sent, &sent_at))) {
        snprintf(err, errsz, "timestamp/sent_at: Unix ms or RFC 3339 expected");
        return -1;
    }
    if (check_time(t, st, err, errsz))
        return -1;
    /* Every string the event carries counts (each with its tag and length), or an event
     * that passes the check could fail ue_track() after earlier events of its batch were
     * tracked: the batch must publish all or nothing. */
    const char *session = json_string(o, "session_id");
    *size += str_size(type) + str_size(uid) + str_size(anon) + str_size(session);
    if (set_str(ev, ue_event_set_user_id, uid, "user_id", err, errsz) ||
        set_str(ev, ue_event_set_anonymous_id, anon, "anonymous_id", err, errsz) ||
        set_str(ev, ue_event_set_session_id, session, "session_id", err, errsz) ||
        json_props(ev, cJSON_GetObjectItemCaseSensitive(o, "properties"), size, err, errsz) ||
        json_context(ev, cJSON_GetObjectItemCaseSensitive(o, "context"), &has_ip, &has_ua, size,
                     err, errsz))
        return -1;
    ue_event_set_timestamp_ms(ev, t);
    return apply_stamp(ev, st, has_ip, has_ua);
}
