/*
 * test_codec.c - the event builder and its encoding: every setter lands in the Protobuf
 * payload (decoded here with the generated protobuf-c code, not the SDK's), client defaults
 * merge under the event's own fields, the Kafka key, the sent_at suffix, and what is refused.
 */
#include "event.h"
#include "record.h"
#include "testutil.h"
#include "uc_time.h"
#include "uc_uuid7.h"
#include "userevents.h"
#include "userevents.pb-c.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const uint8_t ID[16] = {0x01, 0x8f, 0x00, 0x00, 0x00, 0x01, 0x70, 0x00,
                               0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42};

/* Encodes @p ev with @p defaults and no identified user; asserts success. */
static ue__record_t *encode(ue_event_t *ev, const Userevents__Context *defaults,
                            const char *user_id, const char *anonymous_id)
{
    ue_err_t err = UE_ERR_ENCODE;
    ue__record_t *rec = ue__event_encode(ev, defaults, user_id, anonymous_id, 1 << 20, &err);
    assert_int_equal(err, UE_OK);
    assert_non_null(rec);
    return rec;
}

/* Decodes the payload of @p rec (@p len bytes of it) with the generated code. */
static Userevents__Event *decode(ue__record_t *rec, size_t len)
{
    Userevents__Event *pb = userevents__event__unpack(NULL, len, ue__record_payload(rec));
    assert_non_null(pb);
    return pb;
}

static const Userevents__Value *prop(const Userevents__Event *pb, const char *key)
{
    const Userevents__Value *found = NULL;
    int seen = 0;
    for (size_t i = 0; i < pb->n_properties; i++) {
        if (strcmp(pb->properties[i]->key, key) == 0) {
            found = pb->properties[i]->value;
            seen++;
        }
    }
    if (seen > 1)
        fail_msg("property %s encoded %d times", key, seen);
    return found;
}

static const Userevents__Context no_defaults = USEREVENTS__CONTEXT__INIT;

/* Every context field name, with a value and where it lands. */
static const struct {
    const char *field, *value;
} CTX[] = {
    {"app.name", "shop"},
    {"app.version", "1.2.3"},
    {"app.build", "456"},
    {"device.model", "Pixel 8"},
    {"device.manufacturer", "Google"},
    {"os.name", "Android"},
    {"os.version", "14"},
    {"locale", "de-CH"},
    {"timezone", "Europe/Zurich"},
    {"screen.width", "1080"},
    {"screen.height", "2400"},
    {"network", "wifi"},
    {"ip", "192.0.2.7"},
    {"user_agent", "ua/1.0"},
};

static void assert_context_full(const Userevents__Context *ctx)
{
    assert_non_null(ctx);
    assert_string_equal(ctx->app_name, "shop");
    assert_string_equal(ctx->app_version, "1.2.3");
    assert_string_equal(ctx->app_build, "456");
    assert_string_equal(ctx->device_model, "Pixel 8");
    assert_string_equal(ctx->device_manufacturer, "Google");
    assert_string_equal(ctx->os_name, "Android");
    assert_string_equal(ctx->os_version, "14");
    assert_string_equal(ctx->locale, "de-CH");
    assert_string_equal(ctx->timezone, "Europe/Zurich");
    assert_int_equal(ctx->screen_width, 1080);
    assert_int_equal(ctx->screen_height, 2400);
    assert_string_equal(ctx->network, "wifi");
    assert_string_equal(ctx->ip, "192.0.2.7");
    assert_string_equal(ctx->user_agent, "ua/1.0");
}

static void test_codec_encodes_every_field(void **state)
{
    (void)state;
    ue_event_t *ev = ue_event_new("checkout.completed");
    assert_non_null(ev);
    assert_int_equal(ue_event_set_user_id(ev, "user-42"), UE_OK);
    assert_int_equal(ue_event_set_anonymous_id(ev, "anon-7"), UE_OK);
    assert_int_equal(ue_event_set_session_id(ev, "sess-1"), UE_OK);
    assert_int_equal(ue_event_set_timestamp_ms(ev, 1700000000123), UE_OK);
    assert_int_equal(ue_event_set_received_at_ms(ev, 1700000000999), UE_OK);
    assert_int_equal(ue_event_set_event_id(ev, ID), UE_OK);
    assert_int_equal(ue_event_prop_string(ev, "path", "/pricing"), UE_OK);
    assert_int_equal(ue_event_prop_int(ev, "qty", -3), UE_OK);
    assert_int_equal(ue_event_prop_double(ev, "price", 9.75), UE_OK);
    assert_int_equal(ue_event_prop_bool(ev, "gift", 7), UE_OK);
    assert_int_equal(ue_event_prop_string(ev, "dup", "first"), UE_OK);
    assert_int_equal(ue_event_prop_int(ev, "dup", 2), UE_OK);
    assert_int_equal(ue_event_prop_bool(ev, "dup", 0), UE_OK); /* last one wins */
    for (size_t i = 0; i < sizeof(CTX) / sizeof(CTX[0]); i++)
        assert_int_equal(ue_event_set_context(ev, CTX[i].field, CTX[i].value), UE_OK);

    ue__record_t *rec = encode(ev, &no_defaults, "identified-user", "client-anon");
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_int_equal(pb->event_id.len, 16);
    assert_memory_equal(pb->event_id.data, ID, 16);
    assert_string_equal(pb->type, "checkout.completed");
    assert_string_equal(pb->user_id, "user-42"); /* the event's own wins */
    assert_string_equal(pb->anonymous_id, "anon-7");
    assert_string_equal(pb->session_id, "sess-1");
    assert_int_equal(pb->timestamp_ms, 1700000000123);
    assert_int_equal(pb->received_at_ms, 1700000000999);
    assert_int_equal(pb->sent_at_ms, 0); /* stamped at send time only */
    assert_int_equal(pb->schema_version, UE_SCHEMA_VERSION);
    assert_int_equal(pb->n_properties, 5);
    assert_int_equal(prop(pb, "path")->kind_case, USEREVENTS__VALUE__KIND_STRING_VALUE);
    assert_string_equal(prop(pb, "path")->string_value, "/pricing");
    assert_int_equal(prop(pb, "qty")->kind_case, USEREVENTS__VALUE__KIND_INT_VALUE);
    assert_int_equal(prop(pb, "qty")->int_value, -3);
    assert_int_equal(prop(pb, "price")->kind_case, USEREVENTS__VALUE__KIND_DOUBLE_VALUE);
    assert_true(prop(pb, "price")->double_value == 9.75);
    assert_int_equal(prop(pb, "gift")->kind_case, USEREVENTS__VALUE__KIND_BOOL_VALUE);
    assert_true(prop(pb, "gift")->bool_value);
    assert_int_equal(prop(pb, "dup")->kind_case, USEREVENTS__VALUE__KIND_BOOL_VALUE);
    assert_false(prop(pb, "dup")->bool_value);
    assert_context_full(pb->context);

    /* the record's metadata agrees with the payload */
    assert_string_equal(ue__record_type(rec), "checkout.completed");
    assert_string_equal(ue__record_key(rec), "user-42");
    assert_memory_equal(rec->event_id, ID, 16);
    assert_int_equal(rec->schema_version, UE_SCHEMA_VERSION);
    assert_int_equal(rec->seq, 0);
    uint8_t got[16];
    assert_int_equal(ue_event_get_event_id(ev, got), UE_OK);
    assert_memory_equal(got, ID, 16);

    userevents__event__free_unpacked(pb, NULL);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_event_context_overrides_client_default(void **state)
{
    (void)state;
    Userevents__Context defaults = USEREVENTS__CONTEXT__INIT;
    defaults.app_name = "default-app";
    defaults.os_name = "default-os";
    defaults.locale = "en-US";
    defaults.screen_width = 640;
    defaults.screen_height = 480;
    defaults.library_name = "libuserevents";
    ue_event_t *ev = ue_event_new("page_view");
    assert_int_equal(ue_event_set_context(ev, "app.name", "event-app"), UE_OK);
    assert_int_equal(ue_event_set_context(ev, "screen.width", "1920"), UE_OK);
    assert_int_equal(ue_event_set_context(ev, "locale", ""), UE_OK); /* empty: no override */
    assert_int_equal(ue_event_set_context(ev, "ip", "198.51.100.1"), UE_OK);

    ue__record_t *rec = encode(ev, &defaults, NULL, "anon");
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_string_equal(pb->context->app_name, "event-app");
    assert_string_equal(pb->context->os_name, "default-os");
    assert_string_equal(pb->context->locale, "en-US");
    assert_int_equal(pb->context->screen_width, 1920);
    assert_int_equal(pb->context->screen_height, 480);
    assert_string_equal(pb->context->ip, "198.51.100.1");
    assert_string_equal(pb->context->library_name, "libuserevents");
    assert_string_equal(pb->context->network, "");
    userevents__event__free_unpacked(pb, NULL);
    free(rec);

    /* an event without any context of its own gets the defaults as they are */
    assert_int_equal(ue_event_reset(ev, "page_view"), UE_OK);
    rec = encode(ev, &defaults, NULL, "anon");
    pb = decode(rec, rec->payload_len);
    assert_string_equal(pb->context->app_name, "default-app");
    assert_int_equal(pb->context->screen_width, 640);
    userevents__event__free_unpacked(pb, NULL);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_key_is_user_id_else_anonymous_id(void **state)
{
    (void)state;
    ue_event_t *ev = ue_event_new("click");
    ue__record_t *rec;
    Userevents__Event *pb;

    /* identified client, no user on the event: the identified user, in key and payload */
    rec = encode(ev, &no_defaults, "who-am-i", "client-anon");
    pb = decode(rec, rec->payload_len);
    assert_string_equal(ue__record_key(rec), "who-am-i");
    assert_string_equal(pb->user_id, "who-am-i");
    assert_string_equal(pb->anonymous_id, "client-anon");
    userevents__event__free_unpacked(pb, NULL);
    free(rec);

    /* nobody identified: the client's anonymous id */
    rec = encode(ev, &no_defaults, NULL, "client-anon");
    pb = decode(rec, rec->payload_len);
    assert_string_equal(ue__record_key(rec), "client-anon");
    assert_string_equal(pb->user_id, "");
    userevents__event__free_unpacked(pb, NULL);
    free(rec);

    /* the event's own anonymous id wins over the client's; "" user id counts as none */
    assert_int_equal(ue_event_set_anonymous_id(ev, "event-anon"), UE_OK);
    assert_int_equal(ue_event_set_user_id(ev, ""), UE_OK);
    rec = encode(ev, &no_defaults, "", "client-anon");
    assert_string_equal(ue__record_key(rec), "event-anon");
    assert_int_equal(rec->key_len, strlen("event-anon"));
    free(rec);

    /* no id at all: an empty key, still encodable */
    assert_int_equal(ue_event_reset(ev, "click"), UE_OK);
    rec = encode(ev, &no_defaults, NULL, NULL);
    assert_string_equal(ue__record_key(rec), "");
    assert_int_equal(rec->key_len, 0);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_stamps_id_and_timestamp_when_unset(void **state)
{
    (void)state;
    ue_event_t *ev = ue_event_new("page_view");
    uint8_t got[16];
    assert_int_equal(ue_event_get_event_id(ev, got), UE_ERR_INVALID_ARG); /* none yet */

    int64_t before = uc__wall_ms();
    ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_int_equal(rec->event_id[6] >> 4, 7);
    assert_memory_equal(pb->event_id.data, rec->event_id, 16);
    assert_int_equal(pb->timestamp_ms, uc__uuid7_time_ms(rec->event_id));
    assert_true(pb->timestamp_ms >= before && pb->timestamp_ms <= uc__wall_ms() + 1000);
    assert_int_equal(ue_event_get_event_id(ev, got), UE_OK);
    assert_memory_equal(got, rec->event_id, 16);
    userevents__event__free_unpacked(pb, NULL);

    /* tracking the same event again: a new id, the next one in order */
    ue__record_t *again = encode(ev, &no_defaults, NULL, "a");
    assert_true(memcmp(rec->event_id, again->event_id, 16) < 0);
    free(again);
    free(rec);

    /* an explicit timestamp is kept; an explicit id survives re-encoding */
    assert_int_equal(ue_event_set_timestamp_ms(ev, 5), UE_OK);
    assert_int_equal(ue_event_set_event_id(ev, ID), UE_OK);
    for (int i = 0; i < 2; i++) {
        rec = encode(ev, &no_defaults, NULL, "a");
        pb = decode(rec, rec->payload_len);
        assert_int_equal(pb->timestamp_ms, 5);
        assert_memory_equal(pb->event_id.data, ID, 16);
        userevents__event__free_unpacked(pb, NULL);
        free(rec);
    }
    ue_event_destroy(ev);
}

static void test_codec_sent_at_suffix_decodes_as_sent_at_ms(void **state)
{
    (void)state;
    const int64_t values[] = {0, 1, 127, 128, 1700000000123, INT64_C(1) << 62, INT64_MAX};
    ue_event_t *ev = ue_event_new("page_view");
    assert_int_equal(ue_event_set_user_id(ev, "u"), UE_OK);
    assert_int_equal(ue_event_prop_int(ev, "n", 1), UE_OK);
    ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        size_t len = ue__record_stamp_sent_at(rec, values[i]);
        assert_true(len > rec->payload_len && len <= rec->payload_len + UE__SENT_AT_SLACK);
        Userevents__Event *pb = decode(rec, len);
        assert_int_equal(pb->sent_at_ms, values[i]);
        assert_string_equal(pb->user_id, "u"); /* the rest is untouched */
        assert_int_equal(pb->n_properties, 1);
        userevents__event__free_unpacked(pb, NULL);
    }
    /* a retry stamps again over the same slack: the payload proper never grows */
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_int_equal(pb->sent_at_ms, 0);
    userevents__event__free_unpacked(pb, NULL);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_rejects_invalid_types(void **state)
{
    (void)state;
    char long_type[202];
    memset(long_type, 'a', sizeof(long_type) - 1);
    long_type[201] = '\0';
    const char *bad[] = {"", "a b", "x/y", "ünicode", "tab\t", "a{type}", long_type};
    ue_event_t *ev = ue_event_new("ok");
    assert_non_null(ev);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(ue_event_new(bad[i]));
        assert_int_equal(ue_event_reset(ev, bad[i]), UE_ERR_INVALID_ARG);
    }
    assert_null(ue_event_new(NULL));
    assert_int_equal(ue_event_reset(ev, NULL), UE_ERR_INVALID_ARG);

    long_type[200] = '\0'; /* exactly 200 characters: allowed */
    ue_event_t *ok = ue_event_new(long_type);
    assert_non_null(ok);
    ue_event_destroy(ok);
    ok = ue_event_new("Az09._-");
    assert_non_null(ok);
    ue_event_destroy(ok);

    /* a refused reset leaves the event as it was */
    ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
    assert_string_equal(ue__record_type(rec), "ok");
    free(rec);
    ue_event_destroy(ev);
}

/* Types that would name the pipeline's own topics under "events.{type}" (issue 11, item 5). */
static void test_codec_refuses_reserved_types(void **state)
{
    (void)state;
    const char *reserved[] = {"enriched",   "dead_letter", "aggregates", "alerts",
                              "changelog",  "profiles",    "ENRICHED",   "Dead_Letter",
                              "dead.letter"};
    ue_event_t *ev = ue_event_new("ok");
    assert_non_null(ev);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        assert_null(ue_event_new(reserved[i]));
        assert_int_equal(ue_event_reset(ev, reserved[i]), UE_ERR_TYPE_RESERVED);
    }
    assert_string_equal(ue_err2name(UE_ERR_TYPE_RESERVED), "UE_ERR_TYPE_RESERVED");
    assert_non_null(strstr(ue_err2str(UE_ERR_TYPE_RESERVED), "reserved"));
    const char *near[] = {"enriched_v2", "alerts.seen", "enrich", "profile", "dead-letter"};
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++)
        assert_int_equal(ue_event_reset(ev, near[i]), UE_OK);
    ue_event_destroy(ev);

    /* nor can a spool file choose one: such a record does not read back */
    ue__record_t *r = ue__record_new("enriched", 8, "k", 1, 4), *back = NULL;
    assert_non_null(r);
    size_t len = ue__record_spool_size(r);
    uint8_t *buf = malloc(len);
    ue__record_spool_write(r, buf);
    assert_int_equal(ue__record_spool_read(buf, len, &back), 0);
    assert_null(back);
    free(buf);
    free(r);
}

static void test_codec_rejects_non_finite_double(void **state)
{
    (void)state;
    ue_event_t *ev = ue_event_new("measure");
    assert_int_equal(ue_event_prop_double(ev, "x", NAN), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_double(ev, "x", INFINITY), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_double(ev, "x", -INFINITY), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_double(ev, "y", -0.5), UE_OK);
    ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_int_equal(pb->n_properties, 1); /* nothing of the refused ones */
    assert_null(prop(pb, "x"));
    userevents__event__free_unpacked(pb, NULL);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_too_large_is_refused(void **state)
{
    (void)state;
    ue_event_t *ev = ue_event_new("page_view");
    char big[300];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ue_event_prop_string(ev, "blob", big), UE_OK);
    ue_err_t err = UE_OK;
    assert_null(ue__event_encode(ev, &no_defaults, NULL, "a", 256, &err));
    assert_int_equal(err, UE_ERR_TOO_LARGE);
    /* the same through the public API with event.max.bytes */
    const char *kv[] = {TU_NO_BROKER, "event.max.bytes=256", "shutdown.timeout.ms=0", NULL};
    ue_client_t *c = tu_client(kv, NULL, NULL);
    assert_int_equal(ue_track(c, ev), UE_ERR_TOO_LARGE);
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 0);
    assert_int_equal(ue_event_reset(ev, "page_view"), UE_OK);
    assert_int_equal(ue_track(c, ev), UE_OK); /* a small one still goes */
    assert_int_equal(ue_stat(c, UE_STAT_TRACKED), 1);
    assert_int_equal(ue_client_destroy(c), UE_OK);
    ue_event_destroy(ev);
}

/* An event of exactly event.max.bytes goes, one byte more is refused: the single-pass encoder
 * grows its scratch buffer up to the limit and no further. */
static void test_codec_max_bytes_is_inclusive(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t size = 0;
    for (int round = 0; round < 3; round++) {
        ue_event_t *ev = ue_event_new("page_view");
        assert_int_equal(ue_event_set_event_id(ev, ID), UE_OK);
        assert_int_equal(ue_event_set_timestamp_ms(ev, 1700000000000), UE_OK);
        assert_int_equal(ue_event_prop_string(ev, "blob", big), UE_OK);
        ue_err_t err = UE_ERR_ENCODE;
        size_t max = round == 0 ? 1 << 20 : round == 1 ? size : size - 1;
        ue__record_t *rec = ue__event_encode(ev, &no_defaults, NULL, "a", max, &err);
        if (round == 0)
            size = rec->payload_len;
        if (round < 2) {
            assert_int_equal(err, UE_OK);
            assert_int_equal(rec->payload_len, size);
            Userevents__Event *pb = decode(rec, rec->payload_len);
            assert_int_equal(strlen(prop(pb, "blob")->string_value), sizeof(big) - 1);
            userevents__event__free_unpacked(pb, NULL);
        } else {
            assert_null(rec);
            assert_int_equal(err, UE_ERR_TOO_LARGE);
        }
        free(rec);
        ue_event_destroy(ev);
    }
}

static void test_codec_reset_reuse_keeps_working(void **state)
{
    (void)state;
    char big[3000], key[32], type[32];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ue_event_t *ev = ue_event_new("start");
    for (int i = 0; i < 1000; i++) {
        snprintf(type, sizeof(type), "type_%d", i % 7);
        assert_int_equal(ue_event_reset(ev, type), UE_OK);
        assert_int_equal(ue_event_set_user_id(ev, "user"), UE_OK);
        int nprops = 1 + i % 20; /* sometimes more than fit the first arena chunk */
        for (int p = 0; p < nprops; p++) {
            snprintf(key, sizeof(key), "k%d", p);
            assert_int_equal(ue_event_prop_int(ev, key, i * 100 + p), UE_OK);
        }
        if (i % 10 == 0)
            assert_int_equal(ue_event_prop_string(ev, "big", big), UE_OK);
        ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
        Userevents__Event *pb = decode(rec, rec->payload_len);
        assert_string_equal(pb->type, type);
        assert_int_equal(pb->n_properties, (size_t)nprops + (i % 10 == 0));
        assert_int_equal(prop(pb, "k0")->int_value, i * 100);
        if (i % 10 == 0)
            assert_int_equal(strlen(prop(pb, "big")->string_value), sizeof(big) - 1);
        else
            assert_null(prop(pb, "big")); /* nothing survives a reset */
        userevents__event__free_unpacked(pb, NULL);
        free(rec);
    }
    ue_event_destroy(ev);
}

static void test_codec_null_and_bad_args_are_refused(void **state)
{
    (void)state;
    uint8_t id[16];
    ue_event_t *ev = ue_event_new("e");
    assert_int_equal(ue_event_reset(NULL, "e"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_user_id(NULL, "u"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_user_id(ev, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_anonymous_id(NULL, "a"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_anonymous_id(ev, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_session_id(NULL, "s"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_session_id(ev, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_timestamp_ms(NULL, 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_timestamp_ms(ev, -1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_received_at_ms(NULL, 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_received_at_ms(ev, -1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_event_id(NULL, ID), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_event_id(ev, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_get_event_id(NULL, id), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_get_event_id(ev, NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_string(NULL, "k", "v"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_string(ev, NULL, "v"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_string(ev, "", "v"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_string(ev, "k", NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_int(NULL, "k", 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_int(ev, NULL, 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_double(NULL, "k", 1.0), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_double(ev, "", 1.0), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_bool(NULL, "k", 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_prop_bool(ev, NULL, 1), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(NULL, "ip", "x"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, NULL, "x"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, "ip", NULL), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, "no.such.field", "x"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, "context.ip", "x"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, "screen.width", "abc"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_event_set_context(ev, "screen.height", "-5"), UE_ERR_INVALID_ARG);
    assert_int_equal(ue_track(NULL, ev), UE_ERR_INVALID_ARG);
    ue_event_destroy(NULL);

    /* none of the refused calls left anything behind */
    ue__record_t *rec = encode(ev, &no_defaults, NULL, "a");
    Userevents__Event *pb = decode(rec, rec->payload_len);
    assert_int_equal(pb->n_properties, 0);
    assert_string_equal(pb->user_id, "");
    assert_string_equal(pb->context->ip, "");
    assert_int_equal(pb->context->screen_width, 0);
    userevents__event__free_unpacked(pb, NULL);
    free(rec);
    ue_event_destroy(ev);
}

static void test_codec_invalid_utf8_is_refused(void **state)
{
    (void)state;
    const char *bad[] = {"a\xff" "b", "\xc3\x28", "\xed\xa0\x80" /* a surrogate */,
                         "\xf4\x90\x80\x80" /* past U+10FFFF */, "\xc0\xaf" /* overlong */};
    ue_event_t *ev = ue_event_new("page_view");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ue_event_set_user_id(ev, bad[i]), UE_ERR_INVALID_ARG);
        assert_int_equal(ue_event_prop_string(ev, "k", bad[i]), UE_ERR_INVALID_ARG);
        assert_int_equal(ue_event_prop_int(ev, bad[i], 1), UE_ERR_INVALID_ARG);
        assert_int_equal(ue_event_set_context(ev, "ip", bad[i]), UE_ERR_INVALID_ARG);
    }
    assert_int_equal(ue_event_set_user_id(ev, "J\xc3\xbcrgen \xf0\x9f\x98\x80"), UE_OK);
    ue_event_destroy(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_encodes_every_field),
        cmocka_unit_test(test_codec_event_context_overrides_client_default),
        cmocka_unit_test(test_codec_key_is_user_id_else_anonymous_id),
        cmocka_unit_test(test_codec_stamps_id_and_timestamp_when_unset),
        cmocka_unit_test(test_codec_sent_at_suffix_decodes_as_sent_at_ms),
        cmocka_unit_test(test_codec_rejects_invalid_types),
        cmocka_unit_test(test_codec_refuses_reserved_types),
        cmocka_unit_test(test_codec_rejects_non_finite_double),
        cmocka_unit_test(test_codec_too_large_is_refused),
        cmocka_unit_test(test_codec_max_bytes_is_inclusive),
        cmocka_unit_test(test_codec_reset_reuse_keeps_working),
        cmocka_unit_test(test_codec_null_and_bad_args_are_refused),
        cmocka_unit_test(test_codec_invalid_utf8_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
