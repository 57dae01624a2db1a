/*
 * test_whs_sqlite.c - the SQLite backend keeps rows and offsets in one transaction: a commit
 * then a crash mid-batch then a reopen resumes exactly after the commit with no row twice;
 * a second writer with a stale base is fenced; a newly promoted column is added by ALTER
 * TABLE while old rows keep NULL; values land with the documented types and text; the
 * database and its WAL are not readable by other users.
 */
#include "testutil.h"
#include "whs_testbatch.h"

#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

typedef struct fx {
    char *dir;
    char url[600], path[512];
    wtb_t t;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = tu_tempdir("whs-sqlite");
    snprintf(f->path, sizeof(f->path), "%s/wh.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    wtb_init(&f->t, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    wtb_free(&f->t);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static whs__backend_t *open_be(fx_t *f, int *added)
{
    whs__be_conf_t c = wtb_be_conf(&f->t, f->url);
    whs__backend_t *be = NULL;
    char err[512];
    int dummy = 0;
    assert_int_equal(whs__backend_open(&c, &be, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(be->ops->ensure_schema(be, added ? added : &dummy, err, sizeof(err)),
                     WHS__BE_OK);
    return be;
}

/* Runs a single-value query on the file with the plain sqlite3 API. */
static int64_t query_int(fx_t *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -999 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void query_text(fx_t *f, const char *sql, char *out, size_t size)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int64_t committed(whs__backend_t *be, int32_t partition)
{
    whs__resume_t r;
    char err[512];
    assert_int_equal(be->ops->committed(be, partition, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.nskips, 0);
    return r.next_offset;
}

static void test_whs_sqlite_commit_crash_reopen_resumes_exactly(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f, NULL);
    whs__batch_t b;
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 1);
    wt_opts_t other = {.nonce = 1}; /* partition 1: other event ids */
    wtb_fill(&f->t, &b, 0, 0, 100, -1, NULL);
    wtb_fill(&f->t, &b, 1, 0, 50, -1, &other);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);

    /* the next batch is written but the process dies before COMMIT */
    char err[512];
    whs__batch_reset(&b, 2);
    wtb_fill(&f->t, &b, 0, 100, 200, 100, NULL);
    whs__batch_sort(&b);
    assert_int_equal(be->ops->begin(be, &b, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(be->ops->write(be, &b, &b.groups[0], 0, b.groups[0].n, 0, err, 512), 0);
    be->ops->close(be); /* closing with an open transaction: what a crash leaves */

    be = open_be(f, NULL);
    assert_int_equal(committed(be, 0), 100);
    assert_int_equal(committed(be, 1), 50);
    assert_int_equal(committed(be, 2), -1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 150);
    assert_int_equal(query_int(f, "SELECT count(DISTINCT event_id) FROM events"), 150);

    /* the replay from the resume point commits once */
    whs__batch_reset(&b, 3);
    wtb_fill(&f->t, &b, 0, 100, 200, 100, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    assert_int_equal(committed(be, 0), 200);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 250);
    assert_int_equal(query_int(f, "SELECT count(DISTINCT source_offset || '/' || "
                                  "source_partition) FROM events"),
                     250);
    whs__batch_free(&b);
    be->ops->close(be);
}

static void test_whs_sqlite_second_writer_is_fenced(void **state)
{
    fx_t *f = *state;
    whs__backend_t *a = open_be(f, NULL), *b2 = open_be(f, NULL);
    whs__batch_t b;
    whs__batch_init(&b, 0);
    whs__batch_reset(&b, 1);
    wtb_fill(&f->t, &b, 0, 0, 10, -1, NULL);
    assert_int_equal(wtb_commit(a, &b), WHS__BE_OK);
    /* both believe the partition stands at 10; a commits first */
    whs__batch_reset(&b, 2);
    wtb_fill(&f->t, &b, 0, 10, 20, 10, NULL);
    assert_int_equal(wtb_commit(a, &b), WHS__BE_OK);
    whs__batch_reset(&b, 3);
    wtb_fill(&f->t, &b, 0, 10, 20, 10, NULL);
    assert_int_equal(wtb_commit(b2, &b), WHS__BE_FENCED);
    /* a first commit against an existing offsets row is fenced too */
    whs__batch_reset(&b, 4);
    wtb_fill(&f->t, &b, 0, 0, 5, -1, NULL);
    assert_int_equal(wtb_commit(b2, &b), WHS__BE_FENCED);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events"), 20);
    assert_int_equal(committed(b2, 0), 20);
    whs__batch_free(&b);
    a->ops->close(a);
    b2->ops->close(b2);
}

static void test_whs_sqlite_promoted_column_added_by_alter(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f, NULL);
    whs__batch_t b;
    whs__batch_init(&b, 0);
    whs__batch_reset(&b, 1);
    wtb_fill(&f->t, &b, 0, 0, 10, -1, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    be->ops->close(be);
    whs__batch_free(&b);

    /* a restart with a newly promoted property */
    wtb_free(&f->t);
    wtb_init(&f->t, "amount:double,sku:string");
    int added = 0;
    be = open_be(f, &added);
    assert_int_equal(added, 2);
    whs__batch_init(&b, 0);
    whs__batch_reset(&b, 2);
    wtb_fill(&f->t, &b, 0, 10, 20, 10, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE prop_amount IS NULL"), 10);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE prop_sku IS NOT NULL"), 10);
    assert_int_equal(query_int(f, "SELECT prop_amount * 4 FROM events WHERE "
                                  "source_offset = 13"),
                     13);
    be->ops->close(be);
    added = -1;
    be = open_be(f, &added);
    assert_int_equal(added, -1); /* nothing to add the second time */
    whs__batch_free(&b);
    be->ops->close(be);
}

static void test_whs_sqlite_values_and_types(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f, NULL);
    whs__batch_t b;
    whs__batch_init(&b, 0);
    whs__batch_reset(&b, 1);
    wt_opts_t o = {.nonce = 3, .step_ms = 3600 * 1000}; /* one event per hour: two days */
    wtb_fill(&f->t, &b, 0, 0, 48, -1, &o);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    char text[256], id[37];
    wt_event_id_text(25, 3, id);
    query_text(f, "SELECT event_time FROM events WHERE source_offset = 25", text, sizeof(text));
    assert_string_equal(text, "2024-03-02 01:00:00.000");
    query_text(f, "SELECT dt FROM events WHERE source_offset = 25", text, sizeof(text));
    assert_string_equal(text, "2024-03-02");
    query_text(f, "SELECT event_id FROM events WHERE source_offset = 25", text, sizeof(text));
    assert_string_equal(text, id);
    assert_int_equal(query_int(f, "SELECT json_extract(properties, '$.seq') FROM events "
                                  "WHERE source_offset = 25"),
                     25);
    assert_int_equal(query_int(f, "SELECT count(*) FROM events WHERE dt = '2024-03-01'"), 24);
    assert_int_equal(query_int(f, "SELECT typeof(geo_lat) = 'real' FROM events LIMIT 1"), 1);
    assert_int_equal(query_int(f, "SELECT count(DISTINCT user_bucket) > 1 FROM events"), 1);
    whs__batch_free(&b);
    be->ops->close(be);
}

/* The database file and its -wal and -shm files are created 0640 (SQLite's own default is
 * 0644: every local user could read the events). */
static void test_whs_sqlite_files_not_readable_by_others(void **state)
{
    fx_t *f = *state;
    mode_t old = umask(022);
    whs__backend_t *be = open_be(f, NULL);
    whs__batch_t b;
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 1);
    wtb_fill(&f->t, &b, 0, 0, 10, -1, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    const char *ext[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char path[600];
        struct stat st;
        snprintf(path, sizeof(path), "%s%s", f->path, ext[i]);
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_mode & 0777) != 0640)
            fail_msg("%s: mode %o, expected 640", path, (unsigned)(st.st_mode & 0777));
    }
    whs__batch_free(&b);
    be->ops->close(be);
    umask(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whs_sqlite_commit_crash_reopen_resumes_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_whs_sqlite_second_writer_is_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_sqlite_promoted_column_added_by_alter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_whs_sqlite_values_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_sqlite_files_not_readable_by_others, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
