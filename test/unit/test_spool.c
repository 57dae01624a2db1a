/*
 * test_spool.c - the durable disk spool, driven directly in a temporary directory: replay after
 * reopen, acknowledgements that persist, segment rotation and deletion, the directory lock,
 * a directory others could write (refused) and symbolic links in it (never followed),
 * damaged files (torn tail, corrupt middle frame, garbage), a write that fails half-way (its
 * partial frame cut off), the byte and age caps, and the sender's cursor.
 */
#include "record.h"
#include "spool.h"
#include "spool_frame.h"
#include "testutil.h"
#include "userevents.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static const uc__logger_t quiet = {.level = 0}; /* logs nothing */

static int setup_dir(void **state)
{
    *state = tu_tempdir("ue-spool-test");
    return 0;
}

static int teardown_dir(void **state)
{
    tu_rmrf(*state);
    free(*state);
    return 0;
}

static ue__spool_opts_t opts_for(const char *dir)
{
    return (ue__spool_opts_t){.dir = dir,
                              .max_bytes = UINT64_C(1) << 30,
                              .max_age_ms = 0,
                              .segment_bytes = 4u << 20,
                              .fsync = 0,
                              .compression_level = 1};
}

static ue__spool_t *open_with(const ue__spool_opts_t *o)
{
    ue__spool_t *sp = NULL;
    char errstr[512] = "";
    int rc = ue__spool_open(&sp, o, &quiet, errstr, sizeof(errstr));
    if (rc)
        fail_msg("ue__spool_open: %d %s", rc, errstr);
    assert_non_null(sp);
    return sp;
}

static ue__spool_t *open_dir(const char *dir)
{
    ue__spool_opts_t o = opts_for(dir);
    return open_with(&o);
}

/* Payload byte @p j of record @p i: reproducible and incompressible. */
static uint8_t payload_byte(int i, size_t j)
{
    uint64_t x = ((uint64_t)i << 32 | j) * 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return (uint8_t)(x >> 56);
}

/* Record number @p i: its type, key, id and payload all derive from i. */
static ue__record_t *make_rec(int i, size_t payload_len)
{
    char type[16], key[32];
    int tl = snprintf(type, sizeof(type), "type%d", i % 3);
    int kl = snprintf(key, sizeof(key), "user-%d", i);
    ue__record_t *r = ue__record_new(type, (size_t)tl, key, (size_t)kl, payload_len);
    assert_non_null(r);
    for (size_t j = 0; j < payload_len; j++)
        ue__record_payload(r)[j] = payload_byte(i, j);
    memset(r->event_id, 0xee, 16);
    memcpy(r->event_id, &i, sizeof(i));
    r->schema_version = 1;
    return r;
}

/* Asserts that @p r is record number @p i (as made by make_rec). */
static void check_rec(ue__record_t *r, int i, size_t payload_len)
{
    char type[16], key[32];
    snprintf(type, sizeof(type), "type%d", i % 3);
    snprintf(key, sizeof(key), "user-%d", i);
    assert_string_equal(ue__record_type(r), type);
    assert_string_equal(ue__record_key(r), key);
    assert_int_equal(r->payload_len, payload_len);
    for (size_t j = 0; j < payload_len; j++)
        if (ue__record_payload(r)[j] != payload_byte(i, j))
            fail_msg("record %d: payload byte %zu differs", i, j);
    int id;
    memcpy(&id, r->event_id, sizeof(id));
    assert_int_equal(id, i);
    assert_int_equal(r->event_id[15], 0xee);
    assert_int_equal(r->schema_version, 1);
}

/* Appends records @p first .. @p first + @p n - 1 as one frame; they get seqs in order. */
static void append(ue__spool_t *sp, int first, int n, size_t payload_len)
{
    ue__record_t *head = NULL, **tail = &head;
    for (int i = first; i < first + n; i++) {
        *tail = make_rec(i, payload_len);
        tail = &(*tail)->next;
    }
    assert_int_equal(ue__spool_append(sp, head, (size_t)n), 0);
    uint64_t seq = head->seq;
    for (ue__record_t *r = head; r; r = r->next)
        assert_int_equal(r->seq, seq++);
    ue__record_free_list(head);
}

/*
 * Reads the next @p n unsent records and checks that they are, in order, the records numbered
 * @p want, with increasing seqs and from_replay = @p replay.
 */
static void expect_unsent(ue__spool_t *sp, const int *want, size_t n, size_t payload_len,
                          int replay)
{
    ue__record_t *r;
    uint64_t last_seq = 0;
    for (size_t k = 0; k < n; k++) {
        int rc = ue__spool_next_unsent(sp, &r);
        if (rc != 1)
            fail_msg("record %zu of %zu (number %d): next_unsent returned %d", k, n, want[k], rc);
        check_rec(r, want[k], payload_len);
        assert_true(r->seq > last_seq);
        last_seq = r->seq;
        assert_int_equal(r->from_replay, replay);
        free(r);
    }
}

/* Asserts that nothing is left to read back. */
static void expect_done(ue__spool_t *sp)
{
    ue__record_t *r;
    assert_int_equal(ue__spool_next_unsent(sp, &r), 0);
    assert_null(r);
    assert_true(ue__spool_caught_up(sp));
}

/* want = {from, from + 1, ..., to - 1} */
static int *range(int from, int to)
{
    int *a = malloc(sizeof(int) * (size_t)(to > from ? to - from : 1));
    assert_non_null(a);
    for (int i = from; i < to; i++)
        a[i - from] = i;
    return a;
}

static void expect_range(ue__spool_t *sp, int from, int to, size_t payload_len, int replay)
{
    int *want = range(from, to);
    expect_unsent(sp, want, (size_t)(to - from), payload_len, replay);
    free(want);
}

/* Number of files in @p dir whose name ends with @p ext. */
static int count_files(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), elen = strlen(ext);
        if (len > elen && strcmp(e->d_name + len - elen, ext) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static char *seg_path(const char *dir, uint64_t first, const char *ext)
{
    char *path;
    assert_true(asprintf(&path, "%s/%020" PRIu64 ".%s", dir, first, ext) > 0);
    return path;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Flips every bit of the byte at @p off of @p path. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* ---- replay and acknowledgements --------------------------------------------------------- */

static void test_spool_replays_unsent_records_after_reopen(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 0);
    assert_true(ue__spool_caught_up(sp));
    append(sp, 1, 4, 100);
    append(sp, 5, 4, 0); /* an empty payload is a valid record */
    append(sp, 9, 4, 3000);
    assert_int_equal(ue__spool_pending(sp), 12);
    assert_false(ue__spool_caught_up(sp));
    ue__spool_close(sp);

    sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 12);
    assert_int_equal(ue__spool_pending(sp), 12);
    assert_int_equal(ue__spool_corrupt(sp), 0);
    expect_range(sp, 1, 5, 100, 1);
    expect_range(sp, 5, 9, 0, 1);
    expect_range(sp, 9, 13, 3000, 1);
    expect_done(sp);
    /* new records continue the sequence, in a new segment file */
    append(sp, 13, 2, 10);
    expect_range(sp, 13, 15, 10, 0);
    expect_done(sp);
    assert_int_equal(count_files(dir, ".seg"), 2);
    ue__spool_close(sp);
}

static void test_spool_records_keep_seq_order_across_frames(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    for (int f = 0; f < 10; f++)
        append(sp, 1 + f * 3, 3, 20);
    expect_range(sp, 1, 31, 20, 0); /* this process wrote them: not a replay */
    expect_done(sp);
    ue__spool_close(sp);
}

static void test_spool_acks_persist_across_reopen(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    ue__spool_drops_t drops = {0};
    append(sp, 1, 5, 50);
    append(sp, 6, 5, 50);
    ue__spool_ack(sp, 2);
    ue__spool_ack(sp, 4);
    ue__spool_ack(sp, 6);
    ue__spool_ack(sp, 10);
    assert_int_equal(ue__spool_sync(sp, &drops), 0);
    assert_int_equal(ue__spool_pending(sp), 6);
    ue__spool_close(sp);

    sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 6);
    assert_int_equal(ue__spool_pending(sp), 6);
    expect_unsent(sp, (int[]){1, 3, 5, 7, 8, 9}, 6, 50, 1);
    expect_done(sp);
    /* acks of replayed records add to the old ones */
    ue__spool_ack(sp, 1);
    ue__spool_ack(sp, 9);
    assert_int_equal(ue__spool_sync(sp, &drops), 0);
    ue__spool_close(sp);

    sp = open_dir(dir);
    expect_unsent(sp, (int[]){3, 5, 7, 8}, 4, 50, 1);
    expect_done(sp);
    ue__spool_close(sp);
    assert_int_equal(drops.full + drops.expired, 0);
}

static void test_spool_sent_but_unacked_records_replay(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    ue__spool_drops_t drops = {0};
    append(sp, 1, 5, 40);
    expect_range(sp, 1, 6, 40, 0); /* handed to the transport ... */
    expect_done(sp);
    ue__spool_ack(sp, 1); /* ... but only two came back */
    ue__spool_ack(sp, 2);
    ue__spool_sync(sp, &drops);
    ue__spool_close(sp); /* a crash now: the three in flight must not be lost */

    sp = open_dir(dir);
    expect_range(sp, 3, 6, 40, 1);
    expect_done(sp);
    ue__spool_close(sp);
}

static void test_spool_deletes_fully_acked_segment(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    ue__spool_drops_t drops = {0};
    append(sp, 1, 5, 40);
    assert_int_equal(count_files(dir, ".seg"), 1);
    expect_range(sp, 1, 6, 40, 0);
    for (uint64_t seq = 1; seq <= 4; seq++)
        ue__spool_ack(sp, seq);
    ue__spool_sync(sp, &drops);
    assert_int_equal(count_files(dir, ".seg"), 1); /* one still in flight */
    assert_int_equal(count_files(dir, ".ack"), 1);
    ue__spool_ack(sp, 5);
    ue__spool_sync(sp, &drops);
    assert_int_equal(count_files(dir, ".seg"), 0);
    assert_int_equal(count_files(dir, ".ack"), 0);
    assert_int_equal(ue__spool_pending(sp), 0);
    assert_int_equal(ue__spool_bytes(sp), 0);
    /* appending after the delete starts a new file */
    append(sp, 6, 1, 40);
    assert_int_equal(count_files(dir, ".seg"), 1);
    ue__spool_close(sp);
    assert_int_equal(drops.full + drops.expired, 0);
}

static void test_spool_fully_acked_segment_is_deleted_at_open(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    ue__spool_drops_t drops = {0};
    append(sp, 1, 3, 40);
    for (uint64_t seq = 1; seq <= 3; seq++)
        ue__spool_ack(sp, seq); /* acked, but the cursor never passed them in this process */
    ue__spool_sync(sp, &drops);
    ue__spool_close(sp);

    sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 0);
    assert_int_equal(count_files(dir, ".seg"), 0);
    assert_int_equal(count_files(dir, ".ack"), 0);
    expect_done(sp);
    ue__spool_close(sp);
}

static void test_spool_ignores_stale_ack_file_of_reused_name(void **state)
{
    const char *dir = *state;
    /* a crash between deleting a finished segment and its .ack left this behind */
    uint64_t stale[] = {1, 2, 3};
    char *ack = seg_path(dir, 1, "ack");
    write_file(ack, stale, sizeof(stale));
    free(ack);

    ue__spool_t *sp = open_dir(dir); /* empty: the sequence starts at 1 again */
    append(sp, 1, 3, 40);
    ue__spool_close(sp);
    sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 3); /* not acked by the stale file */
    expect_range(sp, 1, 4, 40, 1);
    expect_done(sp);
    ue__spool_close(sp);
}

/* ---- files -------------------------------------------------------------------------------- */

static void test_spool_rotates_at_segment_bytes(void **state)
{
    const char *dir = *state;
    ue__spool_opts_t o = opts_for(dir);
    o.segment_bytes = 4096;
    ue__spool_t *sp = open_with(&o);
    for (int f = 0; f < 12; f++)
        append(sp, 1 + f * 2, 2, 700); /* ~1.4 KB frames: two fit a segment */
    int segs = count_files(dir, ".seg");
    assert_true(segs >= 4);
    assert_true(segs <= 12);
    ue__spool_close(sp);

    DIR *d = opendir(dir); /* no segment file exceeds segment_bytes */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".seg")) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            assert_true(file_size(path) <= 4096);
        }
    }
    closedir(d);

    sp = open_with(&o);
    assert_int_equal(ue__spool_replay_total(sp), 24);
    expect_range(sp, 1, 25, 700, 1);
    expect_done(sp);
    ue__spool_close(sp);
}

static void test_spool_second_open_is_locked(void **state)
{
    const char *dir = *state;
    ue__spool_opts_t o = opts_for(dir);
    ue__spool_t *a = open_with(&o), *b = (ue__spool_t *)&o;
    char errstr[512] = "";
    assert_int_equal(ue__spool_open(&b, &o, &quiet, errstr, sizeof(errstr)), UE_ERR_SPOOL_LOCKED);
    assert_null(b);
    assert_non_null(strstr(errstr, dir));
    ue__spool_close(a);
    b = open_with(&o); /* free again once the first is closed */
    ue__spool_close(b);
    ue__spool_close(NULL);
}

static void test_spool_open_fails_on_unusable_dir(void **state)
{
    const char *dir = *state;
    char *file;
    assert_true(asprintf(&file, "%s/not-a-dir", dir) > 0);
    write_file(file, "x", 1);
    ue__spool_opts_t o = opts_for(file);
    ue__spool_t *sp = NULL;
    char errstr[512] = "";
    assert_int_equal(ue__spool_open(&sp, &o, &quiet, errstr, sizeof(errstr)), UE_ERR_SPOOL);
    assert_null(sp);
    assert_true(strlen(errstr) > 0);
    free(file);
}

/* ---- a directory others can reach (issue 11, item 7) ---------------------------------------- */

/* ue__spool_open's code for @p dir, with its message in @p errstr. */
static int open_code(const char *dir, char *errstr, size_t size)
{
    ue__spool_opts_t o = opts_for(dir);
    ue__spool_t *sp = NULL;
    errstr[0] = '\0';
    int rc = ue__spool_open(&sp, &o, &quiet, errstr, size);
    ue__spool_close(sp);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    return path;
}

static void assert_file_is(const char *path, const char *content)
{
    char buf[64] = "";
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(content));
    close(fd);
    assert_string_equal(buf, content);
}

static void test_spool_refuses_symlinked_lock(void **state)
{
    const char *dir = *state;
    char *outside = tu_tempdir("ue-spool-outside"), errstr[512];
    char *target = join(outside, "created-by-the-spool"), *lock = join(dir, "LOCK");
    assert_int_equal(symlink(target, lock), 0);
    assert_int_equal(open_code(dir, errstr, sizeof(errstr)), UE_ERR_SPOOL);
    assert_non_null(strstr(errstr, "LOCK"));
    assert_int_equal(access(target, F_OK), -1); /* O_CREAT did not go through the link */
    char *victim = join(outside, "victim");
    write_file(victim, "precious", 8);
    assert_int_equal(unlink(lock), 0);
    assert_int_equal(symlink(victim, lock), 0);
    assert_int_equal(open_code(dir, errstr, sizeof(errstr)), UE_ERR_SPOOL);
    assert_file_is(victim, "precious");
    tu_rmrf(outside);
    free(outside), free(target), free(lock), free(victim);
}

static void test_spool_refuses_symlinked_ack_file(void **state)
{
    const char *dir = *state;
    ue__spool_drops_t drops = {0};
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 3, 40);
    ue__spool_close(sp);
    char *outside = tu_tempdir("ue-spool-outside"), *victim = join(outside, "victim");
    char *ack = seg_path(dir, 1, "ack");
    write_file(victim, "precious", 8);
    assert_int_equal(symlink(victim, ack), 0);

    sp = open_dir(dir); /* the link is not read as acks ... */
    assert_int_equal(ue__spool_replay_total(sp), 3);
    expect_range(sp, 1, 4, 40, 1);
    ue__spool_ack(sp, 1);
    ue__spool_sync(sp, &drops); /* ... nor appended to */
    assert_file_is(victim, "precious");
    ue__spool_ack(sp, 2);
    ue__spool_ack(sp, 3);
    ue__spool_sync(sp, &drops); /* the finished segment goes, with the link, not its target */
    assert_int_equal(count_files(dir, ".seg"), 0);
    assert_int_equal(count_files(dir, ".ack"), 0);
    ue__spool_close(sp);
    assert_file_is(victim, "precious");
    tu_rmrf(outside);
    free(outside), free(victim), free(ack);
}

static void test_spool_refuses_symlinked_segment(void **state)
{
    const char *dir = *state;
    char *outside = tu_tempdir("ue-spool-outside");
    ue__spool_t *other = open_dir(outside); /* a valid segment, somewhere else */
    append(other, 1, 3, 40);
    ue__spool_close(other);
    char *target = seg_path(outside, 1, "seg"), *link = seg_path(dir, 1, "seg");
    off_t size = file_size(target);
    assert_int_equal(symlink(target, link), 0);

    ue__spool_t *sp = open_dir(dir);
    assert_int_equal(ue__spool_replay_total(sp), 0); /* not read through the link */
    expect_done(sp);
    ue__record_t *r = make_rec(9, 40);
    assert_int_equal(ue__spool_append(sp, r, 1), -1); /* nor written: its name is taken */
    ue__record_free_list(r);
    ue__spool_close(sp);
    assert_int_equal(file_size(target), size);
    other = open_dir(outside);
    assert_int_equal(ue__spool_replay_total(other), 3);
    ue__spool_close(other);
    tu_rmrf(outside);
    free(outside), free(target), free(link);
}

static void test_spool_refuses_group_or_other_writable_dir(void **state)
{
    const char *dir = *state;
    char errstr[512];
    const mode_t refused[] = {0777, 0770, 0702, 01777};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(chmod(dir, refused[i]), 0);
        assert_int_equal(open_code(dir, errstr, sizeof(errstr)), UE_ERR_SPOOL);
        assert_non_null(strstr(errstr, "writable by group or others"));
    }
    assert_int_equal(count_files(dir, "LOCK"), 0); /* refused before anything is created */

    /* ue_client_new() says why */
    char conf_dir[600];
    snprintf(conf_dir, sizeof(conf_dir), "spool.dir=%s", dir);
    const char *kv[] = {TU_NO_BROKER, conf_dir, NULL};
    ue_conf_t *conf = tu_conf(kv);
    assert_null(ue_client_new(conf, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "writable by group or others"));
    assert_non_null(strstr(errstr, dir));
    ue_conf_destroy(conf); /* still the caller's after a failure */

    assert_int_equal(chmod(dir, 0755), 0); /* readable by others is fine */
    assert_int_equal(open_code(dir, errstr, sizeof(errstr)), 0);
    /* a link to a directory of the user's own is followed: only what is inside is not */
    char *link;
    assert_true(asprintf(&link, "%s-link", dir) > 0);
    assert_int_equal(symlink(dir, link), 0);
    assert_int_equal(open_code(link, errstr, sizeof(errstr)), 0);
    unlink(link);
    free(link);
}

static void test_spool_refuses_dir_of_another_user(void **state)
{
    const char *dir = *state;
    char errstr[512];
    if (geteuid() != 0)
        skip(); /* only root can give a directory away */
    assert_int_equal(chown(dir, 65534, 65534), 0);
    assert_int_equal(open_code(dir, errstr, sizeof(errstr)), UE_ERR_SPOOL);
    assert_non_null(strstr(errstr, "owned by uid 65534"));
    assert_int_equal(chown(dir, 0, 0), 0);
    assert_int_equal(open_code(dir, errstr, sizeof(errstr)), 0);
}

/* ---- damage ------------------------------------------------------------------------------- */

static void test_spool_skips_torn_tail(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 3, 200);
    append(sp, 4, 3, 200);
    append(sp, 7, 3, 200);
    ue__spool_close(sp);
    char *seg = seg_path(dir, 1, "seg");
    assert_int_equal(truncate(seg, file_size(seg) - 7), 0); /* a crash mid-write */

    sp = open_dir(dir);
    assert_true(ue__spool_corrupt(sp) >= 1);
    assert_int_equal(ue__spool_replay_total(sp), 6);
    expect_range(sp, 1, 7, 200, 1);
    expect_done(sp);
    /* the spool goes on: new records after the torn bytes are kept and replayed */
    append(sp, 100, 2, 10);
    ue__spool_close(sp);
    sp = open_dir(dir);
    int want[] = {1, 2, 3, 4, 5, 6, 100, 101};
    ue__record_t *r;
    for (int k = 0; k < 8; k++) {
        assert_int_equal(ue__spool_next_unsent(sp, &r), 1);
        check_rec(r, want[k], want[k] >= 100 ? 10 : 200);
        free(r);
    }
    assert_int_equal(ue__spool_next_unsent(sp, &r), 0);
    ue__spool_close(sp);
    free(seg);
}

static void test_spool_skips_header_only_tail(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 2, 100);
    uint64_t first_end = ue__spool_bytes(sp);
    append(sp, 3, 2, 100);
    ue__spool_close(sp);
    char *seg = seg_path(dir, 1, "seg");
    assert_int_equal(truncate(seg, (off_t)first_end + 10), 0); /* part of a header */
    sp = open_dir(dir);
    assert_true(ue__spool_corrupt(sp) >= 1);
    expect_range(sp, 1, 3, 100, 1);
    expect_done(sp);
    ue__spool_close(sp);
    free(seg);
}

/* Appends records @p first.. of @p payload_len bytes while files may grow only @p room bytes
 * past @p seg: the write stops part-way (EFBIG, as on a full disk). Returns append's result. */
static int append_with_room(ue__spool_t *sp, const char *seg, off_t room, int first, int n,
                            size_t payload_len)
{
    ue__record_t *head = NULL, **tail = &head;
    for (int i = first; i < first + n; i++) {
        *tail = make_rec(i, payload_len);
        tail = &(*tail)->next;
    }
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)(file_size(seg) + room);
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = ue__spool_append(sp, head, (size_t)n); /* nothing else may write meanwhile */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    ue__record_free_list(head);
    return rc;
}

/* A write that fails part-way (disk full) leaves no partial frame: the segment is cut back to
 * its last whole frame, so the next frame follows it directly, the reader of this process
 * reads every frame, and the next process finds nothing corrupt and no record twice. */
static void test_spool_failed_write_leaves_no_partial_frame(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 3, 200);
    char *seg = seg_path(dir, 1, "seg");
    off_t whole = file_size(seg);
    assert_int_equal(append_with_room(sp, seg, 100, 4, 3, 2000), -1);
    assert_int_equal(file_size(seg), whole); /* the 100 bytes written are cut off */
    assert_int_equal(ue__spool_pending(sp), 3);
    append(sp, 7, 3, 200);
    expect_range(sp, 1, 4, 200, 0);
    expect_range(sp, 7, 10, 200, 0);
    expect_done(sp);
    ue__spool_close(sp);
    sp = open_dir(dir);
    assert_int_equal(ue__spool_corrupt(sp), 0);
    assert_int_equal(ue__spool_replay_total(sp), 6);
    expect_unsent(sp, (int[]){1, 2, 3, 7, 8, 9}, 6, 200, 1);
    expect_done(sp);
    ue__spool_close(sp);
    free(seg);
}

/* Writes three frames of three records and damages the middle one at @p where bytes in. */
static void corrupt_middle_frame(const char *dir, uint64_t where)
{
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 3, 300);
    uint64_t second = ue__spool_bytes(sp);
    append(sp, 4, 3, 300);
    append(sp, 7, 3, 300);
    ue__spool_close(sp);
    char *seg = seg_path(dir, 1, "seg");
    flip_byte(seg, (off_t)(second + where));
    free(seg);
}

static void assert_middle_frame_skipped(const char *dir)
{
    ue__spool_t *sp = open_dir(dir);
    assert_true(ue__spool_corrupt(sp) >= 1);
    assert_int_equal(ue__spool_replay_total(sp), 6);
    expect_unsent(sp, (int[]){1, 2, 3, 7, 8, 9}, 6, 300, 1);
    expect_done(sp);
    ue__spool_close(sp);
}

static void test_spool_resyncs_after_corrupt_payload_byte(void **state)
{
    corrupt_middle_frame(*state, UE__FRAME_HDR + 100);
    assert_middle_frame_skipped(*state);
}

static void test_spool_resyncs_after_corrupt_frame_magic(void **state)
{
    corrupt_middle_frame(*state, 1);
    assert_middle_frame_skipped(*state);
}

static void test_spool_resyncs_after_corrupt_frame_length(void **state)
{
    corrupt_middle_frame(*state, 5); /* comp_len: the header still parses, the CRC fails */
    assert_middle_frame_skipped(*state);
}

static void test_spool_skips_garbage_segment_file(void **state)
{
    const char *dir = *state;
    uint8_t garbage[5000];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = payload_byte(7, i);
    memcpy(garbage + 1000, "UES1", 4); /* a fake magic inside the garbage */
    char *bad = seg_path(dir, 500, "seg");
    write_file(bad, garbage, sizeof(garbage));
    char *other;
    assert_true(asprintf(&other, "%s/123.seg", dir) > 0); /* not 20 digits: not a segment */
    write_file(other, garbage, 10);
    char *empty = seg_path(dir, 900, "seg");
    write_file(empty, "", 0);

    ue__spool_t *sp = open_dir(dir);
    assert_true(ue__spool_corrupt(sp) >= 1);
    assert_int_equal(ue__spool_replay_total(sp), 0);
    expect_done(sp);
    append(sp, 1, 3, 50); /* still usable */
    expect_range(sp, 1, 4, 50, 0);
    expect_done(sp);
    ue__spool_close(sp);
    free(bad);
    free(other);
    free(empty);
}

static void test_spool_valid_segment_survives_next_to_garbage(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    append(sp, 1, 4, 60);
    ue__spool_close(sp);
    char *bad = seg_path(dir, 5000, "seg");
    write_file(bad, "definitely not a frame", 22);

    sp = open_dir(dir);
    assert_true(ue__spool_corrupt(sp) >= 1);
    assert_int_equal(ue__spool_replay_total(sp), 4);
    expect_range(sp, 1, 5, 60, 1);
    expect_done(sp);
    ue__spool_close(sp);
    free(bad);
}

/* ---- caps --------------------------------------------------------------------------------- */

static void test_spool_byte_cap_drops_oldest_segments(void **state)
{
    const char *dir = *state;
    ue__spool_opts_t o = opts_for(dir);
    o.segment_bytes = 4096;
    o.max_bytes = 10000;
    ue__spool_t *sp = open_with(&o);
    ue__spool_drops_t drops = {0};
    int appended = 0;
    for (int f = 0; f < 20; f++) {
        append(sp, 1 + f * 2, 2, 700);
        appended += 2;
        ue__spool_sync(sp, &drops);
        assert_true(ue__spool_bytes(sp) <= o.max_bytes);
    }
    assert_true(drops.full > 0);
    assert_int_equal(drops.expired, 0);
    assert_int_equal(ue__spool_pending(sp), appended - (int)drops.full);
    /* what is left is the newest records, in order, none missing in between */
    int left = appended - (int)drops.full;
    expect_range(sp, appended - left + 1, appended + 1, 700, 0);
    expect_done(sp);
    ue__spool_close(sp);
}

/* Sets the modification time of @p path to @p age_s seconds ago. */
static void age_file(const char *path, int age_s)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= age_s;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_spool_age_cap_drops_expired_segments(void **state)
{
    const char *dir = *state;
    ue__spool_opts_t o = opts_for(dir);
    o.segment_bytes = 4096;
    ue__spool_t *sp = open_with(&o);
    append(sp, 1, 2, 1500); /* segment 1: records 1-2 */
    append(sp, 3, 2, 1500); /* segment 3: records 3-4 */
    append(sp, 5, 2, 1500); /* segment 5: records 5-6 */
    ue__spool_close(sp);
    assert_int_equal(count_files(dir, ".seg"), 3);
    char *s1 = seg_path(dir, 1, "seg"), *s3 = seg_path(dir, 3, "seg");
    age_file(s1, 7200);
    age_file(s3, 7200);

    o.max_age_ms = 3600 * 1000;
    sp = open_with(&o);
    ue__spool_drops_t drops = {0};
    ue__spool_sync(sp, &drops);
    assert_int_equal(drops.expired, 4);
    assert_int_equal(drops.full, 0);
    assert_int_equal(count_files(dir, ".seg"), 1);
    assert_int_equal(ue__spool_pending(sp), 2);
    expect_range(sp, 5, 7, 1500, 1);
    expect_done(sp);
    ue__spool_close(sp);
    free(s1);
    free(s3);
}

static void test_spool_age_cap_counts_only_unsent_records(void **state)
{
    const char *dir = *state;
    ue__spool_opts_t o = opts_for(dir);
    ue__spool_t *sp = open_with(&o);
    ue__spool_drops_t drops = {0};
    append(sp, 1, 5, 30);
    ue__spool_ack(sp, 2);
    ue__spool_sync(sp, &drops);
    ue__spool_close(sp);
    char *s1 = seg_path(dir, 1, "seg");
    age_file(s1, 7200);

    o.max_age_ms = 1000;
    sp = open_with(&o);
    ue__record_t *r;
    assert_int_equal(ue__spool_next_unsent(sp, &r), 1); /* record 1 is in flight now */
    check_rec(r, 1, 30);
    free(r);
    ue__spool_sync(sp, &drops);
    assert_int_equal(drops.expired, 3); /* 3, 4, 5: never sent; 2 was acked */
    assert_int_equal(count_files(dir, ".seg"), 0);
    ue__spool_ack(sp, 1); /* a late ack of a dropped segment is harmless */
    ue__spool_sync(sp, &drops);
    assert_int_equal(ue__spool_pending(sp), 0);
    ue__spool_close(sp);
    free(s1);
}

/* ---- the sender's cursor ------------------------------------------------------------------ */

static void test_spool_mark_sent_moves_cursor(void **state)
{
    const char *dir = *state;
    ue__spool_t *sp = open_dir(dir);
    assert_true(ue__spool_caught_up(sp));
    append(sp, 1, 5, 20);
    assert_false(ue__spool_caught_up(sp));
    for (uint64_t seq = 1; seq <= 3; seq++)
        ue__spool_mark_sent(sp, seq);
    assert_false(ue__spool_caught_up(sp));
    expect_range(sp, 4, 6, 20, 0); /* only what was not sent from memory */
    expect_done(sp);

    append(sp, 6, 3, 20);
    for (uint64_t seq = 6; seq <= 8; seq++)
        ue__spool_mark_sent(sp, seq);
    assert_true(ue__spool_caught_up(sp));
    expect_done(sp);
    ue__spool_mark_sent(sp, 2); /* moving back is ignored */
    assert_true(ue__spool_caught_up(sp));
    ue__spool_close(sp);
}

static void test_record_spool_form_round_trips(void **state)
{
    (void)state;
    ue__record_t *r = make_rec(42, 123), *back = NULL;
    size_t len = ue__record_spool_size(r);
    uint8_t *buf = malloc(len);
    ue__record_spool_write(r, buf);
    assert_int_equal(ue__record_spool_read(buf, len, &back), len);
    check_rec(back, 42, 123);
    free(back);
    for (size_t cut = 0; cut < len; cut += 7) { /* every truncation is refused */
        assert_int_equal(ue__record_spool_read(buf, cut, &back), 0);
        assert_null(back);
    }
    buf[0] = buf[1] = 0; /* an empty type */
    assert_int_equal(ue__record_spool_read(buf, len, &back), 0);
    free(buf);
    free(r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_spool_replays_unsent_records_after_reopen),
        T(test_spool_records_keep_seq_order_across_frames),
        T(test_spool_acks_persist_across_reopen),
        T(test_spool_sent_but_unacked_records_replay),
        T(test_spool_deletes_fully_acked_segment),
        T(test_spool_fully_acked_segment_is_deleted_at_open),
        T(test_spool_ignores_stale_ack_file_of_reused_name),
        T(test_spool_rotates_at_segment_bytes),
        T(test_spool_second_open_is_locked),
        T(test_spool_open_fails_on_unusable_dir),
        T(test_spool_refuses_symlinked_lock),
        T(test_spool_refuses_symlinked_ack_file),
        T(test_spool_refuses_symlinked_segment),
        T(test_spool_refuses_group_or_other_writable_dir),
        T(test_spool_refuses_dir_of_another_user),
        T(test_spool_skips_torn_tail),
        T(test_spool_skips_header_only_tail),
        T(test_spool_resyncs_after_corrupt_payload_byte),
        T(test_spool_resyncs_after_corrupt_frame_magic),
        T(test_spool_resyncs_after_corrupt_frame_length),
        T(test_spool_skips_garbage_segment_file),
        T(test_spool_valid_segment_survives_next_to_garbage),
        T(test_spool_failed_write_leaves_no_partial_frame),
        T(test_spool_byte_cap_drops_oldest_segments),
        T(test_spool_age_cap_drops_expired_segments),
        T(test_spool_age_cap_counts_only_unsent_records),
        T(test_spool_mark_sent_moves_cursor),
        T(test_record_spool_form_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
