/*
 * test_whs_row.c - mapping EnrichedEvent records to rows: every column from its source, the
 * properties as escaped JSON, invalid UTF-8 replaced (or dead-lettered when configured),
 * promoted columns typed, unmappable records refused with a reason (time columns outside
 * 1970..2099 among them), user buckets stable
 * across versions, and the date/time text every backend writes.
 */
#include "conf.h"
#include "json.h"
#include "row.h"
#include "whs_testevents.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct fixture {
    whs_conf_t *conf;
    whs__schema_t schema;
    whs__mapper_t mapper;
    uc__arena_t arena;
    char reason[256];
} fixture_t;

static fixture_t *fixture_new(const char *promote, const char *utf8)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char errstr[256];
    f->conf = whs_conf_new();
    if (promote)
        assert_int_equal(whs_conf_set(f->conf, "columns.promote", promote, errstr, 256), 0);
    if (utf8)
        assert_int_equal(whs_conf_set(f->conf, "utf8.invalid", utf8, errstr, 256), 0);
    whs__schema_init(&f->schema, f->conf->promote, f->conf->npromote);
    whs__mapper_init(&f->mapper, &f->schema, &f->conf->s);
    uc__arena_init(&f->arena, NULL, 0);
    return f;
}

static void fixture_free(fixture_t *f)
{
    whs__mapper_free(&f->mapper);
    uc__arena_free(&f->arena);
    whs_conf_destroy(f->conf);
    free(f);
}

/* Maps @p buf; returns the row or NULL (reason in f->reason). Frees @p buf. */
static whs__row_t *map(fixture_t *f, uint8_t *buf, size_t len, int64_t offset)
{
    whs__row_t *row = NULL;
    f->reason[0] = '\0';
    int rc = whs__map(&f->mapper, buf, len, "events.enriched", 2, offset, &f->arena, &row,
                      f->reason, sizeof(f->reason));
    free(buf);
    return rc ? NULL : row;
}

static whs__row_t *map_event(fixture_t *f, uint64_t i, const wt_opts_t *o)
{
    size_t len;
    uint8_t *buf = wt_event(i, o, &len);
    return map(f, buf, len, (int64_t)i + 1000);
}

static const char *str(const whs__row_t *r, int col)
{
    return r->v[col].kind == WHS__V_STR ? r->v[col].u.s : NULL;
}

static void test_whs_row_maps_every_column(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    wt_opts_t o = {.nonce = 7};
    whs__row_t *r = map_event(f, 7, &o);
    char id[37];
    assert_non_null(r);
    wt_event_id_text(7, 7, id);
    assert_string_equal(str(r, WHS__COL_EVENT_ID), id);
    assert_string_equal(str(r, WHS__COL_TYPE), "click");
    assert_string_equal(str(r, WHS__COL_USER_ID), "user-7");
    assert_string_equal(str(r, WHS__COL_ANONYMOUS_ID), "anon-7");
    assert_string_equal(str(r, WHS__COL_SESSION_ID), "s-7-0");
    assert_int_equal(r->v[WHS__COL_SESSION_SEQ].u.i, 8);
    assert_int_equal(r->v[WHS__COL_EVENT_TIME].u.i, WT_BASE_MS + 7000);
    assert_int_equal(r->v[WHS__COL_CLIENT_TIME].u.i, WT_BASE_MS + 7000 - 5);
    assert_int_equal(r->v[WHS__COL_RECEIVED_AT].u.i, WT_BASE_MS + 7000 + 100);
    assert_int_equal(r->dt, 19783); /* 2024-03-01 */
    assert_int_equal(r->v[WHS__COL_DT].u.i, 19783);
    assert_int_equal(r->bucket, whs__bucket("user-7", 6, 16));
    assert_int_equal(r->v[WHS__COL_USER_BUCKET].u.i, r->bucket);
    assert_string_equal(str(r, WHS__COL_GEO_COUNTRY), "DE");
    assert_string_equal(str(r, WHS__COL_GEO_CITY), "Berlin");
    assert_true(r->v[WHS__COL_GEO_LAT].u.d == 52.52);
    assert_true(r->v[WHS__COL_GEO_LON].u.d == 13.405);
    assert_string_equal(str(r, WHS__COL_UA_BROWSER), "Firefox");
    assert_string_equal(str(r, WHS__COL_UA_OS), "Linux");
    assert_string_equal(str(r, WHS__COL_UA_DEVICE), "desktop");
    assert_string_equal(str(r, WHS__COL_PROFILE_PLAN), "free");
    assert_string_equal(str(r, WHS__COL_PROFILE_COUNTRY), "DE");
    assert_string_equal(str(r, WHS__COL_PROPERTIES),
                        "{\"seq\":7,\"amount\":1.75,\"sku\":\"A-7\",\"first\":false}");
    assert_int_equal(r->v[WHS__COL_SCHEMA_VERSION].u.i, 1);
    assert_string_equal(str(r, WHS__COL_SOURCE_TOPIC), "events.enriched");
    assert_int_equal(r->v[WHS__COL_SOURCE_PARTITION].u.i, 2);
    assert_int_equal(r->v[WHS__COL_SOURCE_OFFSET].u.i, 1007);
    assert_int_equal(r->partition, 2);
    assert_int_equal(r->offset, 1007);
    assert_true(r->bytes > sizeof(whs__row_t));
    fixture_free(f);
}

/* An EnrichedEvent with one property @p key = string @p val and geo not found. */
static uint8_t *event_with_prop(const char *key, Userevents__Value *val, size_t *len)
{
    Userevents__Event ev = USEREVENTS__EVENT__INIT;
    Userevents__EnrichedEvent ee = USEREVENTS__ENRICHED_EVENT__INIT;
    Userevents__Event__PropertiesEntry pe = USEREVENTS__EVENT__PROPERTIES_ENTRY__INIT, *pp = &pe;
    uint8_t id[16];
    wt_event_id(1, 1, id);
    ev.event_id.data = id;
    ev.event_id.len = 16;
    ev.type = "t";
    ev.timestamp_ms = WT_BASE_MS;
    pe.key = (char *)key;
    pe.value = val;
    ev.n_properties = 1;
    ev.properties = &pp;
    ee.event = &ev;
    *len = userevents__enriched_event__get_packed_size(&ee);
    uint8_t *buf = malloc(*len);
    userevents__enriched_event__pack(&ee, buf);
    return buf;
}

static void test_whs_row_properties_are_escaped_json(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    Userevents__Value v = USEREVENTS__VALUE__INIT;
    v.kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
    v.string_value = "say \"hi\"\\\n\t\x01 caf\xc3\xa9 \xe2\x82\xac";
    size_t len;
    uint8_t *buf = event_with_prop("k\"ey", &v, &len);
    whs__row_t *r = map(f, buf, len, 1);
    assert_non_null(r);
    assert_string_equal(
        str(r, WHS__COL_PROPERTIES),
        "{\"k\\\"ey\":\"say \\\"hi\\\"\\\\\\n\\t\\u0001 caf\xc3\xa9 \xe2\x82\xac\"}");
    /* an event without user or anonymous id still gets a bucket (from its id), no geo */
    assert_int_equal(r->v[WHS__COL_USER_ID].kind, WHS__V_NULL);
    assert_int_equal(r->v[WHS__COL_GEO_LAT].kind, WHS__V_NULL);
    assert_true(r->bucket >= 0 && r->bucket < 16);
    fixture_free(f);
}

static void test_whs_row_nested_properties(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    Userevents__Value leaf = USEREVENTS__VALUE__INIT, b = USEREVENTS__VALUE__INIT;
    Userevents__Value *items[2] = {&leaf, &b};
    Userevents__ListValue list = USEREVENTS__LIST_VALUE__INIT;
    Userevents__Value lv = USEREVENTS__VALUE__INIT, mv = USEREVENTS__VALUE__INIT;
    Userevents__MapValue map_ = USEREVENTS__MAP_VALUE__INIT;
    Userevents__MapValue__FieldsEntry fe = USEREVENTS__MAP_VALUE__FIELDS_ENTRY__INIT, *fp = &fe;
    leaf.kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
    leaf.double_value = 3;
    b.kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
    b.bool_value = 1;
    list.n_values = 2;
    list.values = items;
    lv.kind_case = USEREVENTS__VALUE__KIND_LIST_VALUE;
    lv.list_value = &list;
    fe.key = "xs";
    fe.value = &lv;
    map_.n_fields = 1;
    map_.fields = &fp;
    mv.kind_case = USEREVENTS__VALUE__KIND_MAP_VALUE;
    mv.map_value = &map_;
    size_t len;
    uint8_t *buf = event_with_prop("m", &mv, &len);
    whs__row_t *r = map(f, buf, len, 1);
    assert_non_null(r);
    assert_string_equal(str(r, WHS__COL_PROPERTIES), "{\"m\":{\"xs\":[3.0,true]}}");
    fixture_free(f);
}

static void test_whs_row_too_deep_properties_dead_lettered(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    Userevents__Value vals[40];
    Userevents__ListValue lists[40];
    Userevents__Value *ptrs[40];
    for (int i = 0; i < 40; i++) {
        userevents__value__init(&vals[i]);
        userevents__list_value__init(&lists[i]);
        vals[i].kind_case = USEREVENTS__VALUE__KIND_LIST_VALUE;
        vals[i].list_value = &lists[i];
        if (i + 1 < 40) {
            ptrs[i] = &vals[i + 1];
            lists[i].n_values = 1;
            lists[i].values = &ptrs[i];
        }
    }
    size_t len;
    uint8_t *buf = event_with_prop("deep", &vals[0], &len);
    assert_null(map(f, buf, len, 1));
    assert_non_null(strstr(f->reason, "nested deeper"));
    fixture_free(f);
}

static void test_whs_row_invalid_utf8_replaced(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    wt_opts_t o = {
        .bad_city = "Ber\xfflin\xc3", .extra_key = "note", .extra_val = "a\xed\xa0\x80z"};
    whs__row_t *r = map_event(f, 1, &o);
    assert_non_null(r);
    assert_string_equal(str(r, WHS__COL_GEO_CITY), "Ber\xef\xbf\xbdlin\xef\xbf\xbd");
    /* a UTF-16 surrogate encoded in UTF-8 is invalid: 3 bytes, 3 replacements */
    assert_non_null(
        strstr(str(r, WHS__COL_PROPERTIES), "\"note\":\"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\""));
    fixture_free(f);
}

static void test_whs_row_invalid_utf8_dead_lettered_when_configured(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, "dead_letter");
    wt_opts_t o = {.bad_city = "Ber\xfflin"};
    assert_null(map_event(f, 1, &o));
    assert_string_equal(f->reason, "invalid UTF-8 in geo_city");
    wt_opts_t p = {.extra_key = "note", .extra_val = "\xc0\xaf"}; /* overlong '/' */
    assert_null(map_event(f, 2, &p));
    assert_string_equal(f->reason, "invalid UTF-8 in properties");
    assert_non_null(map_event(f, 3, NULL)); /* valid ones still map */
    fixture_free(f);
}

static void test_whs_row_unmappable_records_have_reasons(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    uint8_t *garbage = malloc(8);
    memcpy(garbage, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    assert_null(map(f, garbage, 8, 1));
    assert_non_null(strstr(f->reason, "not a valid EnrichedEvent"));

    Userevents__Event ev = USEREVENTS__EVENT__INIT;
    Userevents__EnrichedEvent ee = USEREVENTS__ENRICHED_EVENT__INIT;
    uint8_t id[16] = {1};
    ee.event = &ev;
    ev.type = "t";
    ev.timestamp_ms = WT_BASE_MS;
    const struct {
        size_t idlen;
        const char *type;
        int64_t ts;
        uint32_t version;
        const char *reason;
    } cases[] = {
        {0, "t", WT_BASE_MS, 1, "event_id is 0 bytes"},
        {16, "", WT_BASE_MS, 1, "without a type"},
        {16, "t", -5, 1, "outside 1970..2099"},
        {16, "t", INT64_C(4200000000000), 1, "outside 1970..2099"},
        {16, "t", WT_BASE_MS, 9, "schema_version 9 is newer"},
    };
    char errstr[256];
    whs_conf_set(f->conf, "schema.version.max", "2", errstr, sizeof(errstr));
    f->mapper.schema_version_max = 2;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ev.event_id.data = id;
        ev.event_id.len = cases[c].idlen;
        ev.type = (char *)cases[c].type;
        ev.timestamp_ms = cases[c].ts;
        ev.schema_version = cases[c].version;
        size_t len = userevents__enriched_event__get_packed_size(&ee);
        uint8_t *buf = malloc(len + 1);
        userevents__enriched_event__pack(&ee, buf);
        assert_null(map(f, buf, len, 1));
        if (!strstr(f->reason, cases[c].reason))
            fail_msg("case %zu: reason \"%s\" lacks \"%s\"", c, f->reason, cases[c].reason);
    }
    fixture_free(f);
}

/*
 * Found by fuzz_whs_map (issue 11): client_time and received_at were never range-checked.
 * INT64_MAX did not fit the 32-bit day number of the timestamp text and was written as
 * "0000-04-06 07:12:55.807"; 2^47 ms as the year 6429, which no warehouse takes. Every time
 * column must lie in 1970..2099, else the record is dead-lettered with the column named.
 */
static void test_whs_row_time_columns_out_of_range_dead_lettered(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    Userevents__Event ev = USEREVENTS__EVENT__INIT;
    Userevents__EnrichedEvent ee = USEREVENTS__ENRICHED_EVENT__INIT;
    uint8_t id[16] = {1};
    const int64_t end = INT64_C(4102444800000); /* 2100-01-01 */
    ee.event = &ev;
    ee.corrected_timestamp_ms = WT_BASE_MS; /* a good event time: the others are at fault */
    ev.event_id.data = id;
    ev.event_id.len = 16;
    ev.type = "t";
    const struct {
        int64_t client, received, collector_received; /* timestamp_ms, the two received_at */
        const char *reason;                           /* NULL: maps */
    } cases[] = {
        {INT64_MAX, WT_BASE_MS, 0, "client_time 9223372036854775807 ms is outside 1970..2099"},
        {INT64_C(1) << 47, WT_BASE_MS, 0, "client_time 140737488355328 ms"},
        {end, WT_BASE_MS, 0, "client_time"},
        {WT_BASE_MS, INT64_MAX, 0, "received_at 9223372036854775807 ms"},
        {WT_BASE_MS, 0, INT64_MAX, "received_at"}, /* the collector's, enrichment's unset */
        {WT_BASE_MS, end, WT_BASE_MS, "received_at"},
        {end - 1, end - 1, 0, NULL}, /* the last millisecond of 2099 */
        {-5, 0, -7, NULL},           /* unset: NULL columns */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ev.timestamp_ms = cases[c].client;
        ee.received_at_ms = cases[c].received;
        ev.received_at_ms = cases[c].collector_received;
        size_t len = userevents__enriched_event__get_packed_size(&ee);
        uint8_t *buf = malloc(len);
        userevents__enriched_event__pack(&ee, buf);
        whs__row_t *r = map(f, buf, len, 1);
        if (!cases[c].reason) {
            assert_non_null(r);
            whs__buf_t b = {0};
            whs__row_json(&b, &f->schema, r, &whs__json_style_plain);
            if (cases[c].client > 0)
                assert_non_null(strstr(b.data, "\"client_time\":\"2099-12-31 23:59:59.999\""));
            else
                assert_null(strstr(b.data, "client_time"));
            whs__buf_free(&b);
            continue;
        }
        if (r || !strstr(f->reason, cases[c].reason))
            fail_msg("case %zu: %s, reason \"%s\", expected \"%s\"", c, r ? "mapped" : "refused",
                     f->reason, cases[c].reason);
    }
    fixture_free(f);
}

static void test_whs_row_newer_schema_version_loads_by_default(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    wt_opts_t o = {.schema_version = 7};
    whs__row_t *r = map_event(f, 1, &o);
    assert_non_null(r);
    assert_int_equal(r->v[WHS__COL_SCHEMA_VERSION].u.i, 7);
    fixture_free(f);
}

static void test_whs_row_promoted_columns_typed(void **state)
{
    (void)state;
    fixture_t *f = fixture_new("amount:double,seq:double,sku:string,first:bool,amount_i:int,"
                               "sku_n:int,missing:string",
                               NULL);
    assert_int_equal(f->schema.ncols, WHS__COL__FIXED + 7);
    assert_string_equal(f->schema.cols[WHS__COL__FIXED].name, "prop_amount");
    whs__row_t *r = map_event(f, 10, NULL);
    assert_non_null(r);
    const whs__value_t *v = &r->v[WHS__COL__FIXED];
    assert_int_equal(v[0].kind, WHS__V_DOUBLE);
    assert_true(v[0].u.d == 2.5);
    assert_int_equal(v[1].kind, WHS__V_DOUBLE); /* int property into a double column */
    assert_true(v[1].u.d == 10.0);
    assert_string_equal(v[2].u.s, "A-10");
    assert_int_equal(v[3].kind, WHS__V_INT);
    assert_int_equal(v[3].u.i, 1);
    assert_int_equal(v[4].kind, WHS__V_NULL); /* no property "amount_i" */
    assert_int_equal(v[5].kind, WHS__V_NULL); /* "sku_n" absent */
    assert_int_equal(v[6].kind, WHS__V_NULL);
    fixture_free(f);

    /* a string where an int column is promoted stays NULL (it is still in the JSON) */
    f = fixture_new("sku:int,amount:int", NULL);
    r = map_event(f, 8, NULL);
    assert_int_equal(r->v[WHS__COL__FIXED].kind, WHS__V_NULL);
    assert_int_equal(r->v[WHS__COL__FIXED + 1].kind, WHS__V_INT); /* 2.0 -> 2 */
    assert_int_equal(r->v[WHS__COL__FIXED + 1].u.i, 2);
    fixture_free(f);
}

static void test_whs_row_max_bytes_dead_lettered(void **state)
{
    (void)state;
    fixture_t *f = fixture_new(NULL, NULL);
    char errstr[256];
    assert_int_equal(whs_conf_set(f->conf, "row.max.bytes", "4096", errstr, 256), 0);
    f->mapper.row_max_bytes = 4096;
    wt_opts_t o = {.pad_bytes = 5000};
    assert_null(map_event(f, 1, &o));
    assert_non_null(strstr(f->reason, "row.max.bytes"));
    fixture_free(f);
}

static void test_whs_bucket_is_stable_and_spread(void **state)
{
    (void)state;
    /* Pinned (standard CRC-32C, checked with an independent implementation): changing the
     * hash would split users across buckets in tables that already hold rows. */
    assert_int_equal(whs__bucket("user-42", 7, 16), 14);
    assert_int_equal(whs__bucket("user-42", 7, 1000), 790);
    assert_int_equal(whs__bucket("123456789", 9, 1000), 755); /* check value 0xe3069283 */
    assert_int_equal(whs__bucket("", 0, 16), 0);
    int counts[16] = {0};
    char id[32];
    for (int i = 0; i < 16000; i++) {
        int n = snprintf(id, sizeof(id), "user-%d", i);
        counts[whs__bucket(id, (size_t)n, 16)]++;
    }
    for (int b = 0; b < 16; b++)
        if (counts[b] < 700 || counts[b] > 1300)
            fail_msg("bucket %d holds %d of 16000 users", b, counts[b]);
}

static void test_whs_dates_and_times_text(void **state)
{
    (void)state;
    char d[11], t[24];
    whs__fmt_date(0, d);
    assert_string_equal(d, "1970-01-01");
    whs__fmt_date(19783, d);
    assert_string_equal(d, "2024-03-01");
    whs__fmt_date(19782, d);
    assert_string_equal(d, "2024-02-29");
    whs__fmt_timestamp(WT_BASE_MS + 3723004, t);
    assert_string_equal(t, "2024-03-01 01:02:03.004");
    assert_int_equal(whs__day_of(-1), -1);
    assert_int_equal(whs__day_of(86399999), 0);
    for (int32_t day = 0; day < 60000; day += 7) {
        int32_t back;
        whs__fmt_date(day, d);
        assert_int_equal(whs__parse_date(d, &back), 0);
        assert_int_equal(back, day);
    }
    int32_t x;
    assert_int_equal(whs__parse_date("2024-13-01", &x), -1);
    assert_int_equal(whs__parse_date("2024-01-01x", &x), -1);
}

static void test_whs_json_numbers_and_utf8_checks(void **state)
{
    (void)state;
    whs__buf_t b = {0};
    whs__json_double(&b, 3);
    whs__buf_putc(&b, ' ');
    whs__json_double(&b, 0.1);
    whs__buf_putc(&b, ' ');
    whs__json_double(&b, NAN);
    whs__buf_putc(&b, ' ');
    whs__json_double(&b, 1e300);
    whs__buf_putc(&b, ' ');
    whs__json_int(&b, INT64_MIN);
    assert_string_equal(b.data, "3.0 0.1 null 1e+300 -9223372036854775808");
    whs__buf_reset(&b);
    assert_int_equal(whs__utf8_repair(&b, "ok\xf4\x90\x80\x80!", 7), 4); /* > U+10FFFF */
    assert_string_equal(b.data, "ok\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!");
    assert_int_equal(whs__utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(whs__utf8_seq((const unsigned char *)"\xf0\x9f\x98", 3), 0);
    whs__buf_free(&b);
}

/* The word-at-a-time scan finds a special byte at any position of any 8-byte word. */
static void test_whs_json_string_escapes_at_every_offset(void **state)
{
    (void)state;
    static const char *const specials[] = {"\"",   "\\", "\n", "\x01", "\x1f", "\xc3\xa9",
                                           "\xff", "\t", "\r", "\b",   "\f",   "\x7f"};
    static const char *const escaped[] = {"\\\"",    "\\\\",     "\\n",          "\\u0001",
                                          "\\u001f", "\xc3\xa9", "\xef\xbf\xbd", "\\t",
                                          "\\r",     "\\b",      "\\f",          "\x7f"};
    whs__buf_t b = {0};
    char in[64], want[96];
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
        for (int at = 0; at < 20; at++) {
            int n = snprintf(in, sizeof(in), "%.*s%s%.*s", at, "abcdefghijklmnopqrstuvwxyz",
                             specials[k], 20 - at, " !#$%&'()*+,-./0123456789");
            snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", at, "abcdefghijklmnopqrstuvwxyz",
                     escaped[k], 20 - at, " !#$%&'()*+,-./0123456789");
            whs__buf_reset(&b);
            assert_int_equal(whs__json_string(&b, in, (size_t)n), k == 6);
            assert_string_equal(b.data, want);
            assert_int_equal(whs__json_plain(in, (size_t)n), k == 11 ? (size_t)n : (size_t)at);
        }
    whs__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whs_row_maps_every_column),
        cmocka_unit_test(test_whs_row_properties_are_escaped_json),
        cmocka_unit_test(test_whs_row_nested_properties),
        cmocka_unit_test(test_whs_row_too_deep_properties_dead_lettered),
        cmocka_unit_test(test_whs_row_invalid_utf8_replaced),
        cmocka_unit_test(test_whs_row_invalid_utf8_dead_lettered_when_configured),
        cmocka_unit_test(test_whs_row_unmappable_records_have_reasons),
        cmocka_unit_test(test_whs_row_time_columns_out_of_range_dead_lettered),
        cmocka_unit_test(test_whs_row_newer_schema_version_loads_by_default),
        cmocka_unit_test(test_whs_row_promoted_columns_typed),
        cmocka_unit_test(test_whs_row_max_bytes_dead_lettered),
        cmocka_unit_test(test_whs_bucket_is_stable_and_spread),
        cmocka_unit_test(test_whs_dates_and_times_text),
        cmocka_unit_test(test_whs_json_numbers_and_utf8_checks),
        cmocka_unit_test(test_whs_json_string_escapes_at_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
