/*
 * fuzz_collector_body.c - libFuzzer target for ue-collector's body path: what a device POSTs to
 * /v1/batch after its headers were read. The same functions the server calls, in its order:
 * gunzip() or unzstd() (body.c, capped at --max-decoded), then publish_batch() (batch.c): the
 * EventBatch or JSON decoded within --max-events and --max-event-bytes, every event built and
 * checked (event_pb.c, event_json.c, event.c: type, ids, UTF-8, properties, context, the
 * timestamp's bounds), then tracked. Not reached: http.c's header parsing and answers (they
 * need a libmicrohttpd connection; the content type and encoding are the input's choice here)
 * and the SDK client: ue_track() and ue_flush_spooled() are replaced below by an encoder that
 * checks each event the collector would publish.
 *
 * Input: byte 0 chooses, bits 0-1: the Content-Encoding (0, 3 identity; 1 gzip; 2 zstd);
 * bit 2: JSON (else protobuf); bit 3: the harness compresses the rest itself, so that
 * mutations of a JSON or protobuf body reach the decoders through gzip or zstd; bits 4-5: the
 * caps (0 and 3: the defaults but --max-decoded 1 MiB; 1: tiny caps, for the 413 paths; 2: 64
 * KiB decoded, 64 events); bit 6: time bounds of 1 s either side instead of 24 h / 30 days.
 * The rest is the body.
 *
 * Oracles: the answer is 200, 400 or 413 (503 only when tracking failed), with a reason in
 * valid UTF-8 when not 200 (it goes out in a JSON answer); a batch publishes all or nothing
 * (tracked events only with 200: the collector's promise, which a size estimate below what
 * ue_track() enforces would break); every event tracked decodes, carries received_at, a valid type
 * that is not reserved, a user or an anonymous id, valid UTF-8 everywhere, and a timestamp within
 * the bounds.
 */
#include "collector.h"
#include "event.h"
#include "fuzz_util.h"
#include "record.h"
#include "uc_pbdecode.h"
#include "uc_validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define RECEIVED_AT INT64_C(1790000000000)
#define UA "Mozilla/5.0 (X11; Linux x86_64) fuzz"

static struct {
    size_t max_bytes;         /* the collector's event.max.bytes: --max-event-bytes + 64 KiB */
    int64_t earliest, latest; /* the timestamps an event may carry */
    size_t tracked;           /* calls of ue_track() that succeeded, this input */
} expect;

/* ---- the SDK client, replaced: encode and check what the collector publishes -------------- */

static void check_str(const char *s, const char *what)
{
    FUZZ_CHECK(s != NULL, "%s: NULL", what);
    FUZZ_CHECK(uc__utf8_valid(s, strlen(s)), "%s: invalid UTF-8 published", what);
}

static void check_published(const uint8_t *payload, size_t len)
{
    int rc;
    Userevents__Event *e = (Userevents__Event *)uc__pb_unpack(&userevents__event__descriptor, NULL,
                                                              len, payload, UC__PB_MAX_DEPTH, &rc);
    FUZZ_CHECK(e != NULL, "a published event does not decode: %s", uc__pb_strerror(rc));
    FUZZ_CHECK(e->received_at_ms == RECEIVED_AT, "received_at %lld", (long long)e->received_at_ms);
    FUZZ_CHECK(e->timestamp_ms >= expect.earliest && e->timestamp_ms <= expect.latest,
               "timestamp %lld published, bounds %lld..%lld", (long long)e->timestamp_ms,
               (long long)expect.earliest, (long long)expect.latest);
    FUZZ_CHECK(e->event_id.len == 16, "event id of %zu bytes", e->event_id.len);
    FUZZ_CHECK(uc__event_type_valid(e->type, strlen(e->type)) &&
                   !uc__event_type_reserved(e->type, strlen(e->type)),
               "type \"%s\" published", e->type);
    FUZZ_CHECK(*e->user_id || *e->anonymous_id, "an event of nobody published");
    check_str(e->user_id, "user_id");
    check_str(e->anonymous_id, "anonymous_id");
    check_str(e->session_id, "session_id");
    for (size_t i = 0; i < e->n_properties; i++) {
        const Userevents__Value *v = e->properties[i]->value;
        check_str(e->properties[i]->key, "property key");
        if (v && v->kind_case == USEREVENTS__VALUE__KIND_STRING_VALUE)
            check_str(v->string_value, "property value");
    }
    const Userevents__Context *c = e->context;
    if (c) {
        const char *s[] = {
            c->app_name, c->app_version, c->app_build, c->device_model, c->device_manufacturer,
            c->os_name,  c->os_version,  c->locale,    c->timezone,     c->network,
            c->ip,       c->user_agent};
        for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
            check_str(s[i], "context");
    }
    userevents__event__free_unpacked(e, NULL);
}

ue_err_t ue_track(ue_client_t *client, ue_event_t *event)
{
    Userevents__Context none = USEREVENTS__CONTEXT__INIT;
    ue_err_t err;
    (void)client;
    ue__record_t *rec = ue__event_encode(event, &none, NULL, NULL, expect.max_bytes, &err);
    if (!rec)
        return err;
    check_published(ue__record_payload(rec), rec->payload_len);
    free(rec);
    expect.tracked++;
    return UE_OK;
}

ue_err_t ue_flush_spooled(ue_client_t *client, int timeout_ms)
{
    (void)client, (void)timeout_ms;
    return UE_OK;
}

int64_t ue_stat(ue_client_t *client, ue_stat_t which) /* an empty queue: always room */
{
    (void)client, (void)which;
    return 0;
}

int64_t mono_ns(void) /* main.c's, which is not linked */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the request -------------------------------------------------------------------------- */

/* Compresses @p in as the client would have (gzip or zstd); malloc'd, NULL when it fails. */
static uint8_t *compress_body(int encoding, const uint8_t *in, size_t len, size_t *out_len)
{
    size_t cap = (encoding == 1 ? compressBound((uLong)len) + 64 : ZSTD_compressBound(len));
    uint8_t *out = malloc(cap);
    FUZZ_CHECK(out != NULL, "out of memory");
    if (encoding == 2) {
        *out_len = ZSTD_compress(out, cap, in, len, 1);
        FUZZ_CHECK(!ZSTD_isError(*out_len), "zstd: %s", ZSTD_getErrorName(*out_len));
        return out;
    }
    z_stream zs = {0};
    FUZZ_CHECK(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "zlib");
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END, "gzip of %zu bytes", len);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void set_caps(collector_t *col, int caps, int narrow)
{
    static const size_t decoded[] = {1 << 20, 4096, 64 << 10, 1 << 20};
    static const size_t event[] = {1000000, 256, 4096, 1000000};
    static const size_t events[] = {10000, 4, 64, 10000};
    col->max_decoded = decoded[caps];
    col->max_event = event[caps];
    col->max_events = events[caps];
    col->max_future_ms = narrow ? 1000 : 86400000;
    col->max_past_ms = narrow ? 1000 : INT64_C(2592000000);
    col->max_parse = 32 << 20;
    col->queue_max_events = col->queue_max_bytes = INT64_MAX / 4; /* the SDK's queue: no cap */
    col->max_inflight = (size_t)1 << 30; /* one request at a time: the budget never says 503 */
    expect.max_bytes = col->max_event + 65536;
    expect.earliest = RECEIVED_AT - col->max_past_ms;
    expect.latest = RECEIVED_AT + col->max_future_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static collector_t col; /* large: its keys table */
    static int client;      /* ue_track() above never reads it: only not NULL */
    if (size < 1)
        return 0;
    int encoding = data[0] & 3, json = data[0] >> 2 & 1, ours = data[0] >> 3 & 1;
    encoding = encoding == 3 ? 0 : encoding;
    col.ue = (ue_client_t *)&client;
    set_caps(&col, data[0] >> 4 & 3, data[0] >> 6 & 1);
    expect.tracked = 0;

    /* The body in a buffer of exactly its size, as http.c keeps it. */
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1), *decoded = NULL;
    FUZZ_CHECK(body != NULL, "out of memory");
    memcpy(body, data + 1, len);
    if (encoding && ours) {
        uint8_t *packed = compress_body(encoding, body, len, &len);
        free(body);
        body = packed;
    }
    const uint8_t *in = body;
    char err[512];
    size_t tracked = 0, held = 0;
    int status = 200, committed = 0;
    /* As http.c does: a JSON body is scanned (events, nesting, parse cost) while decoded. */
    jscan_t scan;
    jscan_init(&scan, col.max_events, col.max_parse);
    decoded_t dec = {
        .max = col.max_decoded, .col = &col, .held = &held, .scan = json ? &scan : NULL};
    if (encoding) {
        int rc = (encoding == 1 ? gunzip : unzstd)(body, len, &dec);
        FUZZ_CHECK(rc == DEC_OK || rc == DEC_TOO_LARGE || rc == DEC_BAD || rc == DEC_REFUSED,
                   "decoder answer %d", rc);
        FUZZ_CHECK(dec.len <= col.max_decoded, "%zu bytes decoded, cap %zu", dec.len,
                   col.max_decoded);
        FUZZ_CHECK(!ours || rc != DEC_BAD, "our own %s body refused",
                   encoding == 1 ? "gzip" : "zstd");
        status = rc == DEC_OK ? 200 : 0;
        in = decoded = dec.data;
        len = dec.len;
    } else if (json && jscan_feed(&scan, body, len)) {
        status = 0; /* refused before any parse, as http.c answers 400/413 */
    }
    if (status == 200) {
        stamp_t st = {
            .received_at = RECEIVED_AT, .ip = "203.0.113.7", .user_agent = json ? UA : NULL};
        err[0] = '\0';
        status = publish_batch(&col, in ? in : (const uint8_t *)"", len, json, &st, &tracked,
                               &committed, err, sizeof(err));
        FUZZ_CHECK(status == 200 || status == 400 || status == 413 || status == 503, "answer %d",
                   status);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "reason without a NUL");
        FUZZ_CHECK(status == 200 || err[0], "answer %d without a reason", status);
        FUZZ_CHECK(status == 200 || uc__utf8_valid(err, strlen(err)), "reason not UTF-8: %s", err);
        FUZZ_CHECK(tracked == expect.tracked, "tracked %zu, ue_track() took %zu", tracked,
                   expect.tracked);
        FUZZ_CHECK(status == 200 || tracked == 0, "answer %d after %zu events were tracked: %s",
                   status, tracked, err);
    }
    budget_release(&col, &held);
    free(decoded);
    free(body);
    return 0;
}
