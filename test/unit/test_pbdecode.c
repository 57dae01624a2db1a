/*
 * test_pbdecode.c - hostile Protobuf input: the guarded decoder (common/uc_pbdecode.h) and
 * every entry point that decodes bytes another process wrote (libenrich's pipeline for events
 * and profiles, libwhsink's row mapper) refuse a property nested 6,000 lists deep with a reason
 * instead of overflowing the stack in protobuf-c's recursive unpack; the deepest payload the
 * limit allows still decodes, and an event enrichment accepts still loads in the sink. The
 * collector's batches go through the same decoder (test/integration/it_collector.c posts one).
 */
#include "collector.pb-c.h"
#include "conf.h"
#include "deep_pb.h"
#include "enrich.h"
#include "enriched.pb-c.h"
#include "row.h"
#include "uc_pbdecode.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HOSTILE 6000   /* lists: 42 KB, past what an 8 MB stack survives in protobuf-c */
#define DEEPEST_OK 14  /* lists: the innermost Value of an Event at level 31 of 32 */

static void assert_reason(const char *reason, const char *want)
{
    if (!strstr(reason, want))
        fail_msg("reason \"%s\" does not say \"%s\"", reason, want);
}

static void test_pbdecode_refuses_6000_deep_lists_in_every_message(void **state)
{
    (void)state;
    size_t len;
    int err = 0;
    uint8_t *buf = dp_event(HOSTILE, &len);
    assert_true(len > 40000);
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, len, buf, UC__PB_MAX_DEPTH,
                              &err));
    assert_int_equal(err, UC__PB_TOO_DEEP);
    assert_reason(uc__pb_strerror(err), "nested deeper than 32 levels");
    free(buf);

    buf = dp_enriched(HOSTILE, &len);
    err = 0;
    assert_null(uc__pb_unpack(&userevents__enriched_event__descriptor, NULL, len, buf,
                              UC__PB_MAX_DEPTH + 1, &err));
    assert_int_equal(err, UC__PB_TOO_DEEP);
    free(buf);

    buf = dp_profile(HOSTILE, &len);
    err = 0;
    assert_null(uc__pb_unpack(&userevents__user_profile__descriptor, NULL, len, buf,
                              UC__PB_MAX_DEPTH, &err));
    assert_int_equal(err, UC__PB_TOO_DEEP);
    free(buf);
}

/* The collector's two steps: the batch holds its events as bytes, each decoded on its own. */
static void test_pbdecode_batch_decodes_and_its_deep_event_does_not(void **state)
{
    (void)state;
    size_t len;
    int err = -99;
    uint8_t *buf = dp_batch(HOSTILE, &len);
    Userevents__EventBatch *b = (Userevents__EventBatch *)uc__pb_unpack(
        &userevents__event_batch__descriptor, NULL, len, buf, UC__PB_MAX_DEPTH, &err);
    assert_non_null(b);
    assert_int_equal(err, UC__PB_OK);
    assert_int_equal(b->n_events, 1);
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, b->events[0].len,
                              b->events[0].data, UC__PB_MAX_DEPTH, &err));
    assert_int_equal(err, UC__PB_TOO_DEEP);
    userevents__event_batch__free_unpacked(b, NULL);
    free(buf);
}

static void test_pbdecode_limit_is_exact(void **state)
{
    (void)state;
    size_t len;
    int err;
    uint8_t *buf = dp_event(DEEPEST_OK, &len);
    Userevents__Event *e = (Userevents__Event *)uc__pb_unpack(
        &userevents__event__descriptor, NULL, len, buf, UC__PB_MAX_DEPTH, &err);
    assert_non_null(e);
    assert_string_equal(e->type, "click");
    assert_int_equal(e->n_properties, 1);
    userevents__event__free_unpacked(e, NULL);
    free(buf);

    buf = dp_event(DEEPEST_OK + 1, &len);
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, len, buf, UC__PB_MAX_DEPTH,
                              &err));
    assert_int_equal(err, UC__PB_TOO_DEEP);
    free(buf);
}

static void test_pbdecode_says_why(void **state)
{
    (void)state;
    int err = 0;
    const uint8_t truncated[] = {0x12, 0x05, 'c', 'l'}; /* type: 5 bytes said, 2 there */
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, sizeof(truncated), truncated,
                              UC__PB_MAX_DEPTH, &err));
    assert_int_equal(err, UC__PB_MALFORMED);
    assert_reason(uc__pb_strerror(err), "malformed");
    const uint8_t field_zero[] = {0x80, 0x00, 0x16}; /* an overlong tag of field 0 */
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, sizeof(field_zero),
                              field_zero, UC__PB_MAX_DEPTH, &err));
    assert_int_equal(err, UC__PB_MALFORMED);
    const uint8_t wrong_wire[] = {0x48, 0x01}; /* properties (a message) as a varint */
    assert_null(uc__pb_unpack(&userevents__event__descriptor, NULL, sizeof(wrong_wire),
                              wrong_wire, UC__PB_MAX_DEPTH, &err));
    assert_int_equal(err, UC__PB_INVALID);
    assert_reason(uc__pb_strerror(err), "not a valid");
    Userevents__Event *e = (Userevents__Event *)uc__pb_unpack(&userevents__event__descriptor,
                                                              NULL, 0, NULL, UC__PB_MAX_DEPTH,
                                                              NULL); /* empty: all defaults */
    assert_non_null(e);
    userevents__event__free_unpacked(e, NULL);
}

/* ---- libenrich ------------------------------------------------------------------------- */

static enr_pipeline_t *enrich_pipeline(void)
{
    char errstr[256];
    enr_conf_t *conf = enr_conf_new();
    assert_int_equal(enr_conf_set(conf, "stages", "clock,profile", errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    enr_pipeline_t *pipe = enr_pipeline_new(conf, errstr, sizeof(errstr));
    enr_conf_destroy(conf);
    if (!pipe)
        fail_msg("enr_pipeline_new: %s", errstr);
    return pipe;
}

static enr_verdict_t process(enr_pipeline_t *pipe, int lists, char *reason, size_t size)
{
    size_t len, out_len = 0;
    void *out = NULL;
    uint8_t *buf = dp_event(lists, &len);
    reason[0] = '\0';
    enr_verdict_t v = enr_pipeline_process(pipe, buf, len, 1790000041000, &out, &out_len,
                                           reason, size);
    enr_free(out);
    free(buf);
    return v;
}

static void test_pbdecode_enrich_dead_letters_the_deep_event(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = enrich_pipeline();
    char reason[256];
    assert_int_equal(process(pipe, HOSTILE, reason, sizeof(reason)), ENR_FAIL);
    assert_reason(reason, "nested deeper than 32 levels");
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_DEAD_LETTERS), 1);
    /* the next event goes through: nothing was left half-decoded */
    assert_int_equal(process(pipe, DEEPEST_OK, reason, sizeof(reason)), ENR_KEEP);
    enr_pipeline_destroy(pipe);
}

static void test_pbdecode_enrich_refuses_the_deep_profile(void **state)
{
    (void)state;
    enr_pipeline_t *pipe = enrich_pipeline();
    size_t len;
    uint8_t *buf = dp_profile(HOSTILE, &len);
    assert_int_equal(enr_pipeline_put_profile(pipe, buf, len), ENR_ERR_DECODE);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_PROFILES), 0);
    free(buf);
    buf = dp_profile(DEEPEST_OK, &len);
    assert_int_equal(enr_pipeline_put_profile(pipe, buf, len), ENR_OK);
    assert_int_equal(enr_pipeline_stat(pipe, ENR_STAT_PROFILES), 1);
    free(buf);
    enr_pipeline_destroy(pipe);
}

/* ---- libwhsink ------------------------------------------------------------------------- */

typedef struct sink_fixture {
    whs_conf_t *conf;
    whs__schema_t schema;
    whs__mapper_t mapper;
    uc__arena_t arena;
} sink_fixture_t;

static int map_enriched(sink_fixture_t *f, int lists, char *reason, size_t size)
{
    size_t len;
    whs__row_t *row = NULL;
    uint8_t *buf = dp_enriched(lists, &len);
    reason[0] = '\0';
    int rc = whs__map(&f->mapper, buf, len, "events.enriched", 0, 7, &f->arena, &row, reason,
                      size);
    free(buf);
    return rc;
}

static void test_pbdecode_sink_dead_letters_the_deep_record(void **state)
{
    (void)state;
    sink_fixture_t f;
    char reason[256];
    f.conf = whs_conf_new();
    whs__schema_init(&f.schema, f.conf->promote, f.conf->npromote);
    whs__mapper_init(&f.mapper, &f.schema, &f.conf->s);
    uc__arena_init(&f.arena, NULL, 0);
    assert_int_equal(map_enriched(&f, HOSTILE, reason, sizeof(reason)), -1);
    assert_reason(reason, "nested deeper than 32 levels");
    /* the deepest event enrichment accepts is one level deeper in an EnrichedEvent: it loads */
    assert_int_equal(map_enriched(&f, DEEPEST_OK, reason, sizeof(reason)), 0);
    assert_int_equal(map_enriched(&f, DEEPEST_OK + 1, reason, sizeof(reason)), -1);
    whs__mapper_free(&f.mapper);
    uc__arena_free(&f.arena);
    whs_conf_destroy(f.conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbdecode_refuses_6000_deep_lists_in_every_message),
        cmocka_unit_test(test_pbdecode_batch_decodes_and_its_deep_event_does_not),
        cmocka_unit_test(test_pbdecode_limit_is_exact),
        cmocka_unit_test(test_pbdecode_says_why),
        cmocka_unit_test(test_pbdecode_enrich_dead_letters_the_deep_event),
        cmocka_unit_test(test_pbdecode_enrich_refuses_the_deep_profile),
        cmocka_unit_test(test_pbdecode_sink_dead_letters_the_deep_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
