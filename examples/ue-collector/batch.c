/*
 * batch.c - one batch of ue-collector: decoded (protobuf or JSON) within --max-events and
 * --max-event-bytes, every event checked before any is tracked (a batch with one bad event
 * publishes nothing), then tracked and made safe before the answer.
 */
#include "collector.h"
#include "collector.pb-c.h"
#include "ue_pbdecode.h"
#include "ue_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    Userevents__EventBatch *pb;
    Userevents__Event **events; /* each element of pb, decoded */
    cJSON *json;
    const cJSON *items; /* the JSON array of events */
    size_t n;
} batch_t;

static void batch_free(batch_t *b)
{
    for (size_t i = 0; b->events && i < b->n; i++)
        if (b->events[i])
            userevents__event__free_unpacked(b->events[i], NULL);
    free(b->events);
    if (b->pb)
        userevents__event_batch__free_unpacked(b->pb, NULL);
    cJSON_Delete(b->json);
}

static int too_many(collector_t *col, size_t n, char *err, size_t errsz)
{
    if (n <= col->max_events)
        return 200;
    snprintf(err, errsz, "%zu events in one batch, over the limit of %zu", n, col->max_events);
    return 413;
}

/* Decodes the body into @p b: 200, or 400 / 413 with the reason in @p err. */
static int decode_batch(collector_t *col, const uint8_t *data, size_t len, int json, batch_t *b,
                        char *err, size_t errsz)
{
    if (json) {
        b->json = cJSON_ParseWithLength((const char *)data, len);
        b->items =
            cJSON_IsObject(b->json) ? cJSON_GetObjectItemCaseSensitive(b->json, "batch") : b->json;
        if (!cJSON_IsArray(b->items)) {
            snprintf(err, errsz, "not JSON, or neither an array nor {\"batch\": [...]}");
            return 400;
        }
        b->n = (size_t)cJSON_GetArraySize(b->items);
        return too_many(col, b->n, err, errsz);
    }
    int rc;
    b->pb = (Userevents__EventBatch *)ue__pb_unpack(&userevents__event_batch__descriptor, NULL,
                                                    len, data, UE__PB_MAX_DEPTH, &rc);
    if (!b->pb) {
        snprintf(err, errsz, "not a userevents.EventBatch (proto/collector.proto): %s",
                 ue__pb_strerror(rc));
        return 400;
    }
    b->n = b->pb->n_events;
    if (too_many(col, b->n, err, errsz) != 200)
        return 413;
    b->events = calloc(b->n + 1, sizeof(*b->events));
    for (size_t i = 0; b->events && i < b->n; i++) {
        const ProtobufCBinaryData *e = &b->pb->events[i];
        if (e->len > col->max_event) {
            snprintf(err, errsz, "events[%zu]: %zu bytes, over the limit of %zu", i, e->len,
                     col->max_event);
            return 413;
        }
        /* Checked first: protobuf-c's recursion on deep nesting overflows this thread's stack. */
        b->events[i] = (Userevents__Event *)ue__pb_unpack(&userevents__event__descriptor, NULL,
                                                          e->len, e->data, UE__PB_MAX_DEPTH, &rc);
        if (!b->events[i]) {
            snprintf(err, errsz, "events[%zu]: not a userevents.Event: %s", i,
                     ue__pb_strerror(rc));
            return 400;
        }
    }
    return b->events ? 200 : 503;
}

/*
 * Replaces with '?' each byte of @p s that starts no valid UTF-8 sequence (common's rule): a
 * reason quotes what the client sent (a property key, a context field), cut at a byte count,
 * and goes out in the JSON answer, which must stay valid UTF-8. Found by fuzz_collector_body.
 */
static void utf8_scrub(char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (n <= len - i && ue__utf8_valid(s + i, n)) {
            i += n;
            continue;
        }
        s[i++] = '?';
    }
}

/*
 * Builds every event of the batch: pass 1 (@p track 0) only checks, so that a batch with one
 * bad event publishes nothing; pass 2 tracks. Returns 200, or 400 / 413 / 503 with @p err.
 */
static int each_event(collector_t *col, batch_t *b, const stamp_t *st, int track, size_t *tracked,
                      char *err, size_t errsz)
{
    ue_event_t *ev = ue_event_new("event");
    const cJSON *item = b->json ? b->items->child : NULL;
    char why[256];
    int status = ev ? 200 : 503;
    for (size_t i = 0; i < b->n && status == 200; i++) {
        size_t size = 0;
        int rc = b->json ? build_json(ev, item, st, &size, why, sizeof(why))
                         : build_pb(ev, b->events[i], st, why, sizeof(why));
        if (b->json)
            item = item->next;
        if (rc) {
            utf8_scrub(why);
            snprintf(err, errsz, "events[%zu]: %s", i, why);
            status = 400;
        } else if (size > col->max_event) {
            snprintf(err, errsz, "events[%zu]: about %zu bytes, over the limit of %zu", i, size,
                     col->max_event);
            status = 413;
        } else if (track) {
            ue_err_t e = ue_track(col->ue, ev);
            if (e == UE_OK)
                (*tracked)++;
            snprintf(err, errsz, "events[%zu]: %s", i, ue_err2str(e));
            status = e == UE_OK ? 200 : e == UE_ERR_TOO_LARGE ? 413 : 503;
        }
    }
    ue_event_destroy(ev);
    return status;
}

/*
 * Decodes the body, checks every event, then tracks them and waits until they are safe.
 * Returns 200, or 400 / 413 / 503 with the reason in @p err; *@p tracked counts the events
 * tracked, which are published whatever the answer.
 */
int publish_batch(collector_t *col, const uint8_t *data, size_t len, int json, const stamp_t *st,
                  size_t *tracked, char *err, size_t errsz)
{
    batch_t b = {0};
    stamp_t stamp = *st;
    stamp.earliest = st->received_at - col->max_past_ms;
    stamp.latest = st->received_at + col->max_future_ms;
    int status = decode_batch(col, data, len, json, &b, err, errsz);
    if (status == 200)
        status = each_event(col, &b, &stamp, 0, tracked, err, errsz);
    if (status == 200)
        status = each_event(col, &b, &stamp, 1, tracked, err, errsz);
    /* Tracked events go on either way; the answer waits until they are safe. */
    ue_err_t safe = *tracked ? ue_flush_spooled(col->ue, col->ack_timeout_ms) : UE_OK;
    if (status == 200 && safe != UE_OK) {
        snprintf(err, errsz, "events not safe yet: %s", ue_err2str(safe));
        status = 503;
    }
    batch_free(&b);
    return status;
}
