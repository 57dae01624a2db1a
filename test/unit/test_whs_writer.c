/*
 * test_whs_writer.c - the writer thread against a scripted backend: transient failures are
 * retried until the batch commits; rows the warehouse refuses are isolated by bisection and
 * only they are dead-lettered; a backend without transactions never writes a range twice
 * across retries; a fenced batch is reported, not retried; cancel ends endless retries;
 * committed offsets are read on the writer thread.
 */
#include "whs_testbatch.h"
#include "writer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The script of the mock backend and what it saw. */
static struct {
    int fail_begin;         /* fail this many begin() calls with RETRY */
    int fail_commit_always; /* every commit() returns RETRY */
    int fence;              /* commit() returns FENCED */
    int64_t bad[4];         /* offsets whose row the warehouse refuses */
    int nbad;
    int fail_group_once; /* group index whose first write fails with RETRY */
    int begins, commits, writes;
    int64_t written[1000]; /* offsets durably written (committed or non-transactional) */
    int nwritten;
    int64_t pending[1000]; /* offsets written in the open transaction */
    int npending;
} mock;

static whs__backend_t mock_be;

static whs__be_rc_t m_begin(whs__backend_t *be, const whs__batch_t *b, char *err, size_t n)
{
    (void)be, (void)b;
    mock.begins++;
    mock.npending = 0;
    if (mock.fail_begin > 0) {
        mock.fail_begin--;
        snprintf(err, n, "connection refused");
        return WHS__BE_RETRY;
    }
    return WHS__BE_OK;
}

static whs__be_rc_t m_write(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                            size_t from, size_t n, int retry, char *err, size_t errn)
{
    (void)retry;
    mock.writes++;
    if (mock.fail_group_once >= 0 && g == &b->groups[mock.fail_group_once]) {
        mock.fail_group_once = -1;
        snprintf(err, errn, "timeout");
        return WHS__BE_RETRY;
    }
    for (size_t i = from; i < from + n; i++)
        for (int k = 0; k < mock.nbad; k++)
            if (g->rows[i]->offset == mock.bad[k]) {
                snprintf(err, errn, "value out of range at offset %lld", (long long)mock.bad[k]);
                return WHS__BE_DATA;
            }
    for (size_t i = from; i < from + n; i++) {
        if (be->ops->transactional)
            mock.pending[mock.npending++] = g->rows[i]->offset;
        else
            mock.written[mock.nwritten++] = g->rows[i]->offset;
    }
    return WHS__BE_OK;
}

static int savepoint_mark[64], nsave;

static whs__be_rc_t m_savepoint(whs__backend_t *be, int op, char *err, size_t n)
{
    (void)be, (void)err, (void)n;
    if (op == 0)
        savepoint_mark[nsave++] = mock.npending;
    else if (op == 1)
        mock.npending = savepoint_mark[nsave - 1];
    else
        nsave--;
    return WHS__BE_OK;
}

static whs__be_rc_t m_commit(whs__backend_t *be, const whs__batch_t *b, char *err, size_t n)
{
    (void)be, (void)b;
    mock.commits++;
    if (mock.fence) {
        snprintf(err, n, "moved on");
        return WHS__BE_FENCED;
    }
    if (mock.fail_commit_always) {
        snprintf(err, n, "server closed the connection");
        return WHS__BE_RETRY;
    }
    memcpy(mock.written + mock.nwritten, mock.pending, (size_t)mock.npending * 8);
    mock.nwritten += mock.npending;
    return WHS__BE_OK;
}

static void m_rollback(whs__backend_t *be)
{
    (void)be;
    mock.npending = 0;
    nsave = 0;
}

static whs__be_rc_t m_committed(whs__backend_t *be, int32_t partition, whs__resume_t *out,
                                char *err, size_t n)
{
    (void)be, (void)err, (void)n;
    memset(out, 0, sizeof(*out));
    out->next_offset = 1000 + partition;
    return WHS__BE_OK;
}

static whs__backend_ops_t ops = {
    .scheme = "mock",
    .transactional = 1,
    .begin = m_begin,
    .write = m_write,
    .savepoint = m_savepoint,
    .commit = m_commit,
    .rollback = m_rollback,
    .committed = m_committed,
};

typedef struct fx {
    wtb_t t;
    whs__batch_t b;
    whs__writer_t *w;
    _Atomic int64_t stats[WHS_STAT__CNT];
} fx_t;

static fx_t *start(int transactional)
{
    fx_t *f = calloc(1, sizeof(*f));
    memset(&mock, 0, sizeof(mock));
    mock.fail_group_once = -1;
    nsave = 0;
    ops.transactional = transactional;
    ops.savepoint = transactional ? m_savepoint : NULL;
    mock_be.ops = &ops;
    wtb_init(&f->t, NULL);
    whs__batch_init(&f->b, 0);
    whs__batch_reset(&f->b, 1);
    wt_opts_t o = {.step_ms = 6 * 3600 * 1000}; /* four days: four groups */
    wtb_fill(&f->t, &f->b, 0, 0, 16, -1, &o);
    whs__batch_sort(&f->b);
    whs__writer_conf_t wc = {.be = &mock_be,
                             .topic = "events.enriched",
                             .schema = &f->t.schema,
                             .backoff_ms = 1,
                             .backoff_max_ms = 5,
                             .stats = f->stats};
    static uc__logger_t quiet = {0, "test", NULL, NULL}; /* level 0: nothing logged */
    wc.log = &quiet;
    f->w = whs__writer_new(&wc);
    return f;
}

static whs__wstatus_t run(fx_t *f)
{
    whs__wstatus_t st = 99;
    whs__writer_submit(f->w, &f->b);
    assert_true(whs__writer_wait(f->w, 10000));
    assert_ptr_equal(whs__writer_take(f->w, &st), &f->b);
    return st;
}

static void stop(fx_t *f)
{
    whs__writer_destroy(f->w);
    whs__batch_free(&f->b);
    wtb_free(&f->t);
    free(f);
}

static void assert_written_once(const int64_t *skip, int nskip)
{
    for (int64_t off = 0; off < 16; off++) {
        int expected = 1, seen = 0;
        for (int k = 0; k < nskip; k++)
            expected &= skip[k] != off;
        for (int i = 0; i < mock.nwritten; i++)
            seen += mock.written[i] == off;
        if (seen != expected)
            fail_msg("offset %lld written %d times, expected %d", (long long)off, seen, expected);
    }
}

static void test_whs_writer_retries_transient_failures_until_commit(void **state)
{
    (void)state;
    fx_t *f = start(1);
    mock.fail_begin = 3;
    assert_int_equal(run(f), WHS__W_COMMITTED);
    assert_int_equal(mock.begins, 4);
    assert_int_equal(f->stats[WHS_STAT_RETRIES], 3);
    assert_written_once(NULL, 0);
    whs__wevent_t ev[8];
    assert_int_equal(whs__writer_events(f->w, ev, 8), 3);
    assert_int_equal(ev[0].err, WHS_ERR_WAREHOUSE);
    assert_int_equal(ev[0].retriable, 1);
    assert_non_null(strstr(ev[0].msg, "connection refused"));
    stop(f);
}

static void test_whs_writer_isolates_refused_rows(void **state)
{
    (void)state;
    fx_t *f = start(1);
    mock.bad[0] = 5;
    mock.bad[1] = 6;
    mock.bad[2] = 13;
    mock.nbad = 3;
    assert_int_equal(run(f), WHS__W_COMMITTED);
    assert_written_once(mock.bad, 3);
    assert_int_equal(f->b.parts[0].rows, 13);
    assert_int_equal(f->b.parts[0].dead_letters, 3);
    assert_int_equal(f->b.rows, 13);
    assert_int_equal(f->stats[WHS_STAT_DEAD_LETTERS], 3);
    assert_int_equal(mock.commits, 1);
    whs__wevent_t ev[8];
    assert_int_equal(whs__writer_events(f->w, ev, 8), 3);
    assert_int_equal(ev[0].err, WHS_ERR_WAREHOUSE_REJECTED);
    assert_non_null(strstr(ev[0].msg, "value out of range"));
    stop(f);
}

static void test_whs_writer_without_transactions_never_writes_twice(void **state)
{
    (void)state;
    fx_t *f = start(0);
    assert_true(f->b.ngroups >= 3);
    mock.fail_group_once = 2; /* groups 0 and 1 land, then a timeout */
    mock.bad[0] = 9;
    mock.nbad = 1;
    assert_int_equal(run(f), WHS__W_COMMITTED);
    assert_written_once(mock.bad, 1);
    assert_int_equal(mock.begins, 2);
    stop(f);
}

static void test_whs_writer_fenced_batch_is_not_retried(void **state)
{
    (void)state;
    fx_t *f = start(1);
    mock.fence = 1;
    assert_int_equal(run(f), WHS__W_FENCED);
    assert_int_equal(mock.commits, 1);
    assert_int_equal(mock.nwritten, 0);
    stop(f);
}

static void test_whs_writer_cancel_ends_endless_retries(void **state)
{
    (void)state;
    fx_t *f = start(1);
    mock.fail_commit_always = 1;
    whs__writer_submit(f->w, &f->b);
    assert_false(whs__writer_wait(f->w, 100));
    whs__writer_cancel(f->w);
    assert_true(whs__writer_wait(f->w, 5000));
    whs__wstatus_t st;
    assert_ptr_equal(whs__writer_take(f->w, &st), &f->b);
    assert_int_equal(st, WHS__W_CANCELLED);
    assert_int_equal(mock.nwritten, 0);
    assert_true(whs__writer_idle(f->w));
    stop(f);
}

static void test_whs_writer_resolves_offsets(void **state)
{
    (void)state;
    fx_t *f = start(1);
    whs__resume_t r;
    char err[128];
    assert_int_equal(whs__writer_resolve(f->w, 3, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, 1003);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whs_writer_retries_transient_failures_until_commit),
        cmocka_unit_test(test_whs_writer_isolates_refused_rows),
        cmocka_unit_test(test_whs_writer_without_transactions_never_writes_twice),
        cmocka_unit_test(test_whs_writer_fenced_batch_is_not_retried),
        cmocka_unit_test(test_whs_writer_cancel_ends_endless_retries),
        cmocka_unit_test(test_whs_writer_resolves_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
