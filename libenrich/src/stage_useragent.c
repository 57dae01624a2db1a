/*
 * stage_useragent.c - the "useragent" stage: the event's context.user_agent parsed into
 * browser, OS and device class (rules and coverage: ua_parse.h).
 *
 * An event without a user agent gets no out.user_agent; one with a UA always gets one, with
 * empty names for what the rules do not know. Real traffic repeats a few thousand UA strings,
 * so parses are kept in a direct-mapped cache (CACHE_SLOTS entries, UAs shorter than
 * CACHE_UA_MAX, compared byte for byte): a hit costs a hash and a memcmp instead of the
 * token searches. The cache is fixed-size and allocated once; results never depend on it.
 */
#include "event.h"
#include "htab.h"
#include "stage.h"
#include "ua_parse.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 512 /* a power of two */
#define CACHE_UA_MAX 384

typedef struct cached {
    uint64_t hash;
    size_t len; /* 0: empty */
    enr__ua_t ua;
    char text[CACHE_UA_MAX];
} cached_t;

typedef struct uastate {
    cached_t slots[CACHE_SLOTS];
} uastate_t;

/* The parse of the @p len bytes at @p ua, from the cache when it holds them. */
static void parse(uastate_t *st, const char *ua, size_t len, enr__ua_t *out)
{
    if (!st || len >= CACHE_UA_MAX) {
        enr__ua_parse(ua, len, out);
        return;
    }
    uint64_t h = enr__hash64(ua, len);
    cached_t *c = &st->slots[h & (CACHE_SLOTS - 1)];
    if (c->len == len && c->hash == h && !memcmp(c->text, ua, len)) {
        *out = c->ua;
        return;
    }
    enr__ua_parse(ua, len, out);
    c->hash = h;
    c->len = len;
    c->ua = *out;
    memcpy(c->text, ua, len);
}

static enr_verdict_t useragent_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    const char *ua = e->ev->context ? e->ev->context->user_agent : NULL;
    if (!ua || !*ua)
        return ENR_KEEP;
    enr__ua_t parsed;
    parse(state, ua, strnlen(ua, ENR__UA_SCAN_MAX), &parsed);
    e->ua.browser = enr__event_strdup(e, parsed.browser);
    e->ua.browser_version = enr__event_strdup(e, parsed.browser_version);
    e->ua.os = enr__event_strdup(e, parsed.os);
    e->ua.os_version = enr__event_strdup(e, parsed.os_version);
    e->ua.device_class = enr__event_strdup(e, parsed.device);
    e->out.user_agent = &e->ua;
    return ENR_KEEP;
}

static int useragent_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    (void)opaque, (void)errstr, (void)errstr_size;
    *state = calloc(1, sizeof(uastate_t)); /* NULL (no memory): parse without a cache */
    return 0;
}

static void useragent_destroy(void *state, void *opaque)
{
    (void)opaque;
    free(state);
}

enr_stage_t *enr__stage_useragent_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("useragent", useragent_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, useragent_init);
    enr_stage_set_destroy(st, useragent_destroy);
    return st;
}
