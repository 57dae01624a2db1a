/*
 * batch.c - one batch of ue-collector: decoded (protobuf or JSON) within --max-events and
 * --max-event-bytes, every event checked before any is tracked (a batch with one bad event
 * publishes nothing), then tracked and made safe before the answer.
 *
 * A batch is tracked whole or not at all: batches are tracked one at a time, and only once the
 * client's queue has room for the whole of one (the collector is its only producer, so the
 * room can only grow meanwhile); a batch that finds no room within queue.block.timeout.ms,
 * or comes after the drain deadline, gets 503 with nothing tracked. Before, ue_track() could
 * fail half-way with the queue full, and the first half was published under a 503.
 */
#include "collector.h"
#include "collector.pb-c.h"
#include "uc_pbdecode.h"
#include "uc_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    size_t bytes; /* pass 1's estimate of the queue bytes of all the events */
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

/* Reads a varint at *@p p (before @p end); -1 when truncated or too long. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/*
 * Counts the events (field 1) of an EventBatch by walking its top-level fields, without
 * unpacking it: protobuf-c allocates a slot for every element first, so 8 MiB of empty
 * events (2 bytes each) would cost 64 MB before the count is checked. Stops past @p max.
 * A malformed body counts what it can; the unpack refuses it afterwards.
 */
static size_t pb_count_events(const uint8_t *p, size_t len, size_t max)
{
    const uint8_t *end = p + len;
    size_t n = 0;
    uint64_t tag, v;
    while (p < end && n <= max && varint(&p, end, &tag) == 0) {
        switch (tag & 7) {
        case 0: if (varint(&p, end, &v)) return n; break;
        case 1: p += (size_t)(end - p) < 8 ? (size_t)(end - p) : 8; break;
        case 5: p += (size_t)(end - p) < 4 ? (size_t)(end - p) : 4; break;
        case 2:
            if (varint(&p, end, &v) || v > (uint64_t)(end - p))
                return n;
            p += v;
            n += tag >> 3 == 1;
            break;
        default: return n;
        }
    }
    return n;
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
    if (pb_count_events(data, len, col->max_events) > col->max_events) {
        snprintf(err, errsz, "more than %zu events in one batch", col->max_events);
        return 413;
    }
    b->pb = (Userevents__EventBatch *)uc__pb_unpack(&userevents__event_batch__descriptor, NULL,
                                                    len, data, UC__PB_MAX_DEPTH, &rc);
    if (!b->pb) {
        snprintf(err, errsz, "not a userevents.EventBatch (proto/collector.proto): %s",
                 uc__pb_strerror(rc));
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
        b->events[i] = (Userevents__Event *)uc__pb_unpack(&userevents__event__descriptor, NULL,
                                                          e->len, e->data, UC__PB_MAX_DEPTH, &rc);
        if (!b->events[i]) {
            snprintf(err, errsz, "events[%zu]: not a userevents.Event: %s", i,
                     uc__pb_strerror(rc));
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
        if (n <= len - i && uc__utf8_valid(s + i, n)) {
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
        int rc = b->json ? build_json(ev, item, i, st, &size, why, sizeof(why))
                         : build_pb(ev, b->events[i], st, why, sizeof(why));
        if (!b->json)
            size = b->events[i] ? b->pb->events[i].len + 512 : 0; /* + received_at, ip */
        b->bytes += track ? 0 : size;
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

/* Whether the client's queue can take the whole batch now. A record takes its encoded size
 * plus ~100 bytes of header, type and key: twice the estimate and 512 bytes per event cover it. */
static int room_for(collector_t *col, const batch_t *b)
{
    return ue_stat(col->ue, UE_STAT_QUEUED) + (int64_t)b->n <= col->queue_max_events &&
           ue_stat(col->ue, UE_STAT_QUEUED_BYTES) + (int64_t)(2 * b->bytes + 512 * b->n) <=
               col->queue_max_bytes;
}

/* Tracks the whole batch, or nothing (see the top of the file). 200, or 413 / 503 with @p err;
 * *@p committed is set once it is tracked: then the answer must reach the client. */
static int track_all(collector_t *col, batch_t *b, const stamp_t *st, size_t *tracked,
                     int *committed, char *err, size_t errsz)
{
    if (b->n > (size_t)col->queue_max_events ||
        2 * b->bytes + 512 * b->n > (size_t)col->queue_max_bytes) {
        snprintf(err, errsz, "the batch is larger than the collector's queue");
        return 413;
    }
    int64_t until = mono_ns() + (int64_t)col->room_wait_ms * 1000000;
    pthread_mutex_lock(&col->track_lock);
    while (!col->stop_tracking && !room_for(col, b) && mono_ns() < until) {
        pthread_mutex_unlock(&col->track_lock);
        usleep(2000);
        pthread_mutex_lock(&col->track_lock);
    }
    int status = col->stop_tracking ? 503 : room_for(col, b) ? 200 : 503;
    if (status == 200) {
        atomic_fetch_add(&col->publishing, 1);
        *committed = 1;
        status = each_event(col, b, st, 1, tracked, err, errsz);
    } else {
        snprintf(err, errsz, col->stop_tracking ? "shutting down: send again"
                                                : "the collector's queue is full: send again");
    }
    pthread_mutex_unlock(&col->track_lock);
    return status;
}

/*
 * Decodes the body, checks every event, then tracks them and waits until they are safe.
 * Returns 200, or 400 / 413 / 503 with the reason in @p err. Nothing is tracked unless
 * *@p committed is set; then *@p tracked events are, and are published whatever the answer
 * (a 503 from a spool write failure or --ack-timeout-ms: the client resends the same ids).
 */
int publish_batch(collector_t *col, const uint8_t *data, size_t len, int json, const stamp_t *st,
                  size_t *tracked, int *committed, char *err, size_t errsz)
{
    batch_t b = {0};
    stamp_t stamp = *st;
    stamp.earliest = st->received_at - col->max_past_ms;
    stamp.latest = st->received_at + col->max_future_ms;
    int status = decode_batch(col, data, len, json, &b, err, errsz);
    if (status == 200)
        status = each_event(col, &b, &stamp, 0, tracked, err, errsz);
    if (status == 200)
        status = track_all(col, &b, &stamp, tracked, committed, err, errsz);
    /* Tracked events go on either way; the answer waits until they are safe. */
    ue_err_t safe = *tracked ? ue_flush_spooled(col->ue, col->ack_timeout_ms) : UE_OK;
    if (status == 200 && safe != UE_OK) {
        snprintf(err, errsz, "events not safe yet: %s", ue_err2str(safe));
        status = 503;
    }
    batch_free(&b);
    return status;
}
