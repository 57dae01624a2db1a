/*
 * test_whs_file.c - the file backend: Hive-style paths and names that carry the offsets,
 * zstd NDJSON content, resume from the names alone, a crash between the renames of one
 * batch leaving skips so that the replay rewrites only what is missing (never a row twice),
 * leftover temp files removed at start, and files and folders not readable by other users.
 */
#include "testutil.h"
#include "whs_testbatch.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include <cmocka.h>

typedef struct fx {
    char *dir;
    char url[600];
    wtb_t t;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = tu_tempdir("whs-file");
    snprintf(f->url, sizeof(f->url), "file:%s", f->dir);
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

static whs__backend_t *open_be(fx_t *f)
{
    whs__be_conf_t c = wtb_be_conf(&f->t, f->url);
    whs__backend_t *be = NULL;
    char err[512];
    int added = 0;
    assert_int_equal(whs__backend_open(&c, &be, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(be->ops->ensure_schema(be, &added, err, sizeof(err)), WHS__BE_OK);
    return be;
}

/* Decompresses a whole file; returns malloc'd NUL-terminated text. */
static char *read_zst(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *in = malloc((size_t)n);
    assert_int_equal(fread(in, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    ZSTD_DStream *ds = ZSTD_createDStream();
    ZSTD_inBuffer ib = {in, (size_t)n, 0};
    while (ib.pos < ib.size) {
        if (cap - len < 65536)
            out = realloc(out, cap *= 2);
        ZSTD_outBuffer ob = {out + len, cap - len - 1, 0};
        size_t rc = ZSTD_decompressStream(ds, &ob, &ib);
        assert_false(ZSTD_isError(rc));
        len += ob.pos;
    }
    out[len] = '\0';
    ZSTD_freeDStream(ds);
    free(in);
    return out;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* Counts rows in every committed file of the table, and offset duplicates among them. */
static size_t total_rows(fx_t *f, size_t *dups)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "find '%s/events' -name 'part-*.ndjson.zst' -print", f->dir);
    FILE *p = popen(cmd, "r");
    char path[1024];
    size_t rows = 0;
    static char seen[100000];
    memset(seen, 0, sizeof(seen));
    *dups = 0;
    while (fgets(path, sizeof(path), p)) {
        path[strcspn(path, "\n")] = '\0';
        char *text = read_zst(path);
        for (char *line = text; *line;) {
            char *nl = strchr(line, '\n');
            const char *o = strstr(line, "\"source_offset\":");
            long off = o ? strtol(o + 16, NULL, 10) : -1;
            if (off >= 0 && off < (long)sizeof(seen) && seen[off]++)
                (*dups)++;
            rows++;
            line = nl + 1;
        }
        free(text);
    }
    pclose(p);
    return rows;
}

static void test_whs_file_layout_names_and_content(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f);
    whs__batch_t b;
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 0xabc);
    wt_opts_t o = {.nonce = 1, .step_ms = 3600 * 1000, .users = 3};
    wtb_fill(&f->t, &b, 4, 0, 48, -1, &o); /* 48 hours: two days, three users */
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    int bucket = whs__bucket("user-1", 6, 16);
    char path[1200];
    /* offsets 0..47 of partition 4, six files (2 days x 3 buckets), batch id 0xabc */
    snprintf(path, sizeof(path),
             "%s/events/dt=2024-03-02/bucket=%02d/"
             "part-events.enriched_p4_o0-47_n6_0000000000000abc.ndjson.zst",
             f->dir, bucket);
    struct stat st;
    if (stat(path, &st))
        fail_msg("missing %s", path);
    char *text = read_zst(path);
    assert_int_equal(count_lines(text), 8); /* user-1 on day two: 24 hours / 3 users */
    assert_non_null(strstr(text, "\"user_id\":\"user-1\""));
    assert_non_null(strstr(text, "\"dt\":\"2024-03-02\""));
    assert_non_null(strstr(text, "\"properties\":{\"seq\":"));
    assert_null(strstr(text, "\"session_seq\":null")); /* NULLs are left out, never null */
    free(text);
    size_t dups;
    assert_int_equal(total_rows(f, &dups), 48);
    assert_int_equal(dups, 0);
    whs__batch_free(&b);
    be->ops->close(be);
}

static void test_whs_file_resume_from_names_and_checkpoint(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f);
    whs__resume_t r;
    char err[512];
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, -1);
    whs__batch_t b;
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 1);
    wtb_fill(&f->t, &b, 0, 0, 30, -1, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    be->ops->close(be);
    be = open_be(f);
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, 30);
    assert_int_equal(r.nskips, 0);
    /* without the checkpoint the names alone say the same */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/events/_whs_offsets'", f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, 30);
    assert_int_equal(be->ops->committed(be, 1, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, -1);
    whs__batch_free(&b);
    be->ops->close(be);
}

static void test_whs_file_crash_between_renames_replays_without_duplicates(void **state)
{
    fx_t *f = *state;
    whs__backend_t *be = open_be(f);
    whs__batch_t b;
    char err[512];
    wt_opts_t o = {.users = 8};
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 1);
    wtb_fill(&f->t, &b, 0, 0, 100, -1, &o);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);

    /* batch 2 renames two of its files, then the process dies */
    whs__batch_reset(&b, 2);
    wtb_fill(&f->t, &b, 0, 100, 200, 100, &o);
    whs__batch_sort(&b);
    assert_true(b.ngroups > 2);
    assert_int_equal(be->ops->begin(be, &b, err, sizeof(err)), WHS__BE_OK);
    for (size_t g = 0; g < 2; g++)
        assert_int_equal(be->ops->write(be, &b, &b.groups[g], 0, b.groups[g].n, 0, err, 512),
                         WHS__BE_OK);
    size_t landed = b.groups[0].n + b.groups[1].n;
    be->ops->close(be);

    be = open_be(f);
    whs__resume_t r;
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, 100);
    assert_int_equal(r.nskips, 2);
    /* the replay: records from 100 on, minus what the skips say is on disk */
    whs__batch_t replay;
    whs__batch_init(&replay, be->ops->group_by);
    whs__batch_reset(&replay, 3);
    whs__batch_t all;
    whs__batch_init(&all, be->ops->group_by);
    whs__batch_reset(&all, 4);
    wtb_fill(&f->t, &all, 0, 100, 200, 100, &o);
    whs__bpart_t *p = whs__batch_part(&replay, 0, 100);
    size_t skipped = 0;
    for (size_t g = 0; g < all.ngroups; g++) {
        for (size_t i = 0; i < all.groups[g].n; i++) {
            whs__row_t *row = all.groups[g].rows[i];
            if (whs__resume_skips(&r, row->offset, row->dt, row->bucket)) {
                skipped++;
                continue;
            }
            assert_int_equal(whs__batch_add(&replay, row), 0);
            p->rows++;
        }
    }
    p->first = 100;
    p->next = 200;
    assert_int_equal(skipped, landed);
    assert_int_equal(wtb_commit(be, &replay), WHS__BE_OK);
    whs__resume_free(&r);
    size_t dups;
    assert_int_equal(total_rows(f, &dups), 200);
    assert_int_equal(dups, 0);
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, 200);
    whs__resume_free(&r);
    whs__batch_free(&b);
    whs__batch_free(&replay);
    whs__batch_free(&all);
    be->ops->close(be);
}

static void test_whs_file_temp_files_removed_at_start(void **state)
{
    fx_t *f = *state;
    char dir[1200], tmp[1400];
    snprintf(dir, sizeof(dir), "%s/events/dt=2024-03-01/bucket=03", f->dir);
    char cmd[1500];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(tmp, sizeof(tmp),
             "%s/.tmp-part-events.enriched_p0_o0-9_n1_0000000000000001.ndjson.zst", dir);
    FILE *fp = fopen(tmp, "w");
    fputs("torn", fp);
    fclose(fp);
    whs__backend_t *be = open_be(f);
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    whs__resume_t r;
    char err[512];
    assert_int_equal(be->ops->committed(be, 0, &r, err, sizeof(err)), WHS__BE_OK);
    assert_int_equal(r.next_offset, -1);
    be->ops->close(be);
}

/* Every file and folder the backend makes is closed to other users: 0640 and 0750. */
static void test_whs_file_modes_not_readable_by_others(void **state)
{
    fx_t *f = *state;
    mode_t old = umask(022);
    whs__backend_t *be = open_be(f);
    whs__batch_t b;
    whs__batch_init(&b, be->ops->group_by);
    whs__batch_reset(&b, 7);
    wtb_fill(&f->t, &b, 0, 0, 10, -1, NULL);
    assert_int_equal(wtb_commit(be, &b), WHS__BE_OK);
    char cmd[1200], path[1024];
    snprintf(cmd, sizeof(cmd), "find '%s/events' -mindepth 1", f->dir);
    FILE *p = popen(cmd, "r");
    int files = 0, dirs = 0;
    while (fgets(path, sizeof(path), p)) {
        struct stat st;
        path[strcspn(path, "\n")] = '\0';
        assert_int_equal(stat(path, &st), 0);
        unsigned want = S_ISDIR(st.st_mode) ? 0750 : 0640;
        if ((st.st_mode & 0777) != want)
            fail_msg("%s: mode %o, expected %o", path, (unsigned)(st.st_mode & 0777), want);
        files += !S_ISDIR(st.st_mode);
        dirs += S_ISDIR(st.st_mode);
    }
    pclose(p);
    assert_true(files >= 2 && dirs >= 3); /* a part file, a checkpoint, dt=, bucket=, offsets */
    whs__batch_free(&b);
    be->ops->close(be);
    umask(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_whs_file_layout_names_and_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_file_resume_from_names_and_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_whs_file_crash_between_renames_replays_without_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_file_temp_files_removed_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whs_file_modes_not_readable_by_others, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
