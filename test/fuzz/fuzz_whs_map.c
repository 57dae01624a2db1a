/*
 * fuzz_whs_map.c - libFuzzer target for the sink's row mapper, whs__map() (libwhsink/src/row.c):
 * EnrichedEvent records as the sink reads them from Kafka, where anyone who can write to the
 * enriched topic (or a buggy processor) chooses the bytes.
 *
 * The input is the record. It is mapped twice, by a mapper that repairs invalid UTF-8 and by
 * one that dead-letters it (utf8.invalid), both with promoted columns of every type. Oracles:
 * the answer is a row or a reason; a row's time columns (event_time, client_time, received_at)
 * lie in 1970..2099, its day is event_time's, its bucket within bucket.count and its size
 * within row.max.bytes; every string is valid UTF-8 of the length it claims; the properties
 * column and the row's JSON (as files and dead letters write it, and as ClickHouse reads it)
 * parse as JSON objects whose timestamps are in 1970..2099, never the year 0000 an overflowed
 * time prints as.
 */
#include "conf.h"
#include "fuzz_util.h"
#include "row.h"
#include "uc_validate.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TIME_MS INT64_C(4102444800000) /* 2100-01-01: the mapper's bound of event time */
#define MAX_DAY 47482                      /* its day */

typedef struct mapper {
    whs_conf_t *conf;
    whs__schema_t schema;
    whs__mapper_t m;
} mapper_t;

static mapper_t mappers[2];
static uc__arena_t arena;
static whs__buf_t json;

static void mapper_init(mapper_t *mp, const char *utf8)
{
    char err[256];
    mp->conf = whs_conf_new();
    FUZZ_CHECK(mp->conf != NULL, "out of memory");
    FUZZ_CHECK(!whs_conf_set(mp->conf, "columns.promote",
                             "amount:double,sku:string,seq:int,first:bool,plan:string", err,
                             sizeof(err)),
               "%s", err);
    FUZZ_CHECK(!whs_conf_set(mp->conf, "utf8.invalid", utf8, err, sizeof(err)), "%s", err);
    FUZZ_CHECK(!whs_conf_set(mp->conf, "row.max.bytes", "65536", err, sizeof(err)), "%s", err);
    whs__schema_init(&mp->schema, mp->conf->promote, mp->conf->npromote);
    whs__mapper_init(&mp->m, &mp->schema, &mp->conf->s);
}

static void check_value(const whs__column_t *col, const whs__value_t *v)
{
    if (v->kind == WHS__V_NULL) {
        FUZZ_CHECK(col->nullable, "%s is NULL", col->name);
        return;
    }
    switch (col->type) {
    case WHS__T_TIMESTAMP:
        FUZZ_CHECK(v->kind == WHS__V_INT, "%s: kind %d", col->name, v->kind);
        FUZZ_CHECK(v->u.i >= 0 && v->u.i < MAX_TIME_MS, "%s %lld is outside 1970..2099", col->name,
                   (long long)v->u.i);
        break;
    case WHS__T_DATE:
        FUZZ_CHECK(v->u.i >= 0 && v->u.i < MAX_DAY, "%s: day %lld", col->name, (long long)v->u.i);
        break;
    case WHS__T_UUID:
    case WHS__T_STRING:
    case WHS__T_JSON:
        FUZZ_CHECK(v->kind == WHS__V_STR && v->u.s, "%s: kind %d", col->name, v->kind);
        FUZZ_CHECK(strlen(v->u.s) == v->len, "%s: length %u, NUL at %zu", col->name, v->len,
                   strlen(v->u.s));
        FUZZ_CHECK(uc__utf8_valid(v->u.s, v->len), "%s: invalid UTF-8", col->name);
        break;
    default: break;
    }
}

/* A JSON object, whose "YYYY-..." timestamp strings (those of @p names) are in 1970..2099. */
static void check_json(const char *text, size_t len, const whs__schema_t *schema, int ts_chars)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    FUZZ_CHECK(cJSON_IsObject(o), "not a JSON object: %.*s", (int)len, text);
    for (size_t c = 0; c < schema->ncols; c++) {
        if (schema->cols[c].type != WHS__T_TIMESTAMP)
            continue;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, schema->cols[c].name);
        if (!t)
            continue;
        FUZZ_CHECK(cJSON_IsString(t) && strlen(t->valuestring) == (size_t)ts_chars, "%s: %s",
                   schema->cols[c].name, cJSON_Print(t));
        int year = atoi(t->valuestring);
        FUZZ_CHECK(year >= 1970 && year <= 2099, "%s written as %s", schema->cols[c].name,
                   t->valuestring);
    }
    cJSON_Delete(o);
}

static void check_row(const mapper_t *mp, const whs__row_t *row)
{
    const whs__schema_t *s = &mp->schema;
    static const whs__json_style_t clickhouse = {
        .json_as_string = 1, .bool_as_int = 1, .ts_chars = 19};
    for (size_t c = 0; c < s->ncols; c++)
        check_value(&s->cols[c], &row->v[c]);
    int64_t t = row->v[WHS__COL_EVENT_TIME].u.i;
    FUZZ_CHECK(t > 0, "event_time %lld", (long long)t);
    FUZZ_CHECK(row->dt == whs__day_of(t) && row->v[WHS__COL_DT].u.i == row->dt,
               "day %d for event_time %lld", row->dt, (long long)t);
    FUZZ_CHECK(row->bucket >= 0 && row->bucket < mp->m.bucket_count, "bucket %d", row->bucket);
    FUZZ_CHECK((int64_t)row->bytes <= mp->m.row_max_bytes, "row of %u bytes", row->bytes);
    const whs__value_t *props = &row->v[WHS__COL_PROPERTIES];
    cJSON *p = cJSON_ParseWithLength(props->u.s, props->len);
    FUZZ_CHECK(cJSON_IsObject(p), "properties not a JSON object: %s", props->u.s);
    cJSON_Delete(p);
    whs__buf_reset(&json);
    whs__row_json(&json, s, row, &whs__json_style_plain);
    FUZZ_CHECK(!json.oom, "out of memory");
    check_json(json.data, json.len, s, whs__json_style_plain.ts_chars);
    whs__buf_reset(&json);
    whs__row_json(&json, s, row, &clickhouse);
    FUZZ_CHECK(!json.oom, "out of memory");
    check_json(json.data, json.len, s, clickhouse.ts_chars);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mappers[0].conf) {
        mapper_init(&mappers[0], "replace");
        mapper_init(&mappers[1], "dead_letter");
        uc__arena_init(&arena, NULL, 0);
    }
    /* In a buffer of exactly its size: ASan flags any read past the record. */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    for (int i = 0; i < 2; i++) {
        whs__row_t *row = NULL;
        char reason[512];
        reason[0] = '\0';
        uc__arena_reset(&arena);
        int rc = whs__map(&mappers[i].m, copy, size, "events.enriched", 3, 42, &arena, &row, reason,
                          sizeof(reason));
        FUZZ_CHECK(rc == 0 || rc == -1, "answer %d", rc);
        if (rc) {
            FUZZ_CHECK(reason[0] && memchr(reason, '\0', sizeof(reason)), "no reason");
            continue;
        }
        FUZZ_CHECK(row != NULL, "mapped without a row");
        check_row(&mappers[i], row);
    }
    free(copy);
    return 0;
}
