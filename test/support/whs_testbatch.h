/*
 * whs_testbatch.h - building libwhsink batches from the deterministic test stream
 * (whs_testevents.h) without Kafka: what the unit tests of the backends and the writer
 * feed them. Uses libwhsink's internal headers (tests named test_whs_* may).
 */
#ifndef WHS_TESTBATCH_H
#define WHS_TESTBATCH_H

#include "backend.h"
#include "batch.h"
#include "conf.h"
#include "row.h"
#include "whs_testevents.h"

#include <stdlib.h>

typedef struct wtb {
    whs_conf_t *conf;
    whs__schema_t schema;
    whs__mapper_t mapper;
    uc__logger_t log;
} wtb_t;

static inline void wtb_init(wtb_t *t, const char *promote)
{
    char errstr[256];
    t->conf = whs_conf_new();
    if (promote && whs_conf_set(t->conf, "columns.promote", promote, errstr, sizeof(errstr)))
        abort();
    whs__schema_init(&t->schema, t->conf->promote, t->conf->npromote);
    whs__mapper_init(&t->mapper, &t->schema, &t->conf->s);
    t->log = (uc__logger_t){UC_LOG_WARNING, "test", NULL, NULL};
}

static inline void wtb_free(wtb_t *t)
{
    whs__mapper_free(&t->mapper);
    whs_conf_destroy(t->conf);
}

/* Backend configuration for @p url, table "events", topic "events.enriched". */
static inline whs__be_conf_t wtb_be_conf(wtb_t *t, const char *url)
{
    whs__be_conf_t c = {.url = url,
                        .table = "events",
                        .topic = "events.enriched",
                        .schema = &t->schema,
                        .timeout_ms = 5000,
                        .gzip = 1,
                        .zstd_level = 1,
                        .fsync = 0,
                        .log = &t->log};
    return c;
}

/* Adds records [from, to) of @p partition, record i at offset i, to @p b (base @p base). */
static inline void wtb_fill(wtb_t *t, whs__batch_t *b, int32_t partition, uint64_t from,
                            uint64_t to, int64_t base, const wt_opts_t *o)
{
    char reason[256];
    whs__bpart_t *p = whs__batch_part(b, partition, base);
    for (uint64_t i = from; i < to; i++) {
        size_t len;
        uint8_t *buf = wt_event(i, o, &len);
        whs__row_t *row = NULL;
        if (whs__map(&t->mapper, buf, len, "events.enriched", partition, (int64_t)i, &b->arena,
                     &row, reason, sizeof(reason)) ||
            whs__batch_add(b, row))
            abort();
        p->rows++;
        whs__batch_note(b, p, 1, (int64_t)i);
        free(buf);
    }
}

/* Runs begin, write of every group, commit; returns the first failure. */
static inline whs__be_rc_t wtb_commit(whs__backend_t *be, whs__batch_t *b)
{
    char err[512];
    whs__batch_sort(b);
    whs__be_rc_t rc = be->ops->begin(be, b, err, sizeof(err));
    for (size_t g = 0; rc == WHS__BE_OK && g < b->ngroups; g++)
        rc = be->ops->write(be, b, &b->groups[g], 0, b->groups[g].n, 0, err, sizeof(err));
    if (rc == WHS__BE_OK)
        rc = be->ops->commit(be, b, err, sizeof(err));
    if (rc != WHS__BE_OK) {
        fprintf(stderr, "wtb_commit: %s: %s\n", whs__be_rc_name(rc), err);
        be->ops->rollback(be);
    }
    return rc;
}

#endif
