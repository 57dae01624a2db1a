/*
 * backend_file.c - "file:DIR": Hive-style partitioned files any warehouse can bulk-load:
 *
 *   DIR/TABLE/dt=YYYY-MM-DD/bucket=NN/part-TOPIC_pP_oFIRST-LAST_nCOUNT_ID.ndjson.zst
 *
 * One file per (day, bucket, Kafka partition) of a batch: NDJSON (one object per row, the
 * columns by name, NULLs left out) compressed with zstd. A file is written under a hidden
 * temp name (".tmp-...", which Hive, Spark and DuckDB ignore), fsynced, renamed, and its
 * directory fsynced: the rename is the commit of that file.
 *
 * Exactly-once without transactions: the name says which batch the file belongs to (ID),
 * which offsets that batch covered for the partition (FIRST-LAST) and how many files that
 * batch wrote for it (COUNT). On resume a batch with all COUNT files present is complete; a
 * crash between renames leaves an incomplete one, whose present files become skips (offsets
 * FIRST..LAST in that day and bucket are already on disk), so a replay rewrites only the
 * missing files and never a row twice. After the files, commit() also writes a checkpoint
 * DIR/TABLE/_whs_offsets/TOPIC-P (so offsets of batches without rows count as well).
 * Leftover temp files are removed at start. Files are created 0640 and directories 0750 (less
 * the umask): events are personal data, not for every local user.
 */
#include "backend.h"
#include "json.h"
#include "url.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

typedef struct file_be {
    whs__backend_t base;
    whs__be_conf_t conf;
    char root[4096]; /* DIR/TABLE */
    ZSTD_CCtx *cctx;
    whs__buf_t text, out;
} file_be_t;

/* One file name, parsed. */
typedef struct part_name {
    int32_t partition;
    int64_t first, last;
    int count;
    char id[17];
} part_name_t;

static whs__be_rc_t fail_errno(const char *what, const char *path, char *err, size_t err_size)
{
    int e = errno;
    uc__errstr(err, err_size, "file: %s %s: %s", what, path, strerror(e));
    return e == ENOSPC || e == EIO || e == EAGAIN || e == EINTR || e == EDQUOT ? WHS__BE_RETRY
                                                                               : WHS__BE_FATAL;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0750) && errno != EEXIST ? -1 : 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Removes ".tmp-*" files below @p dir (two levels: dt=*, bucket=*). */
static void remove_temps(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && strncmp(e->d_name, ".tmp-", 5) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (strncmp(e->d_name, ".tmp-", 5) == 0)
            unlink(path);
        else if (depth < 2 && e->d_type == DT_DIR && strchr(e->d_name, '='))
            remove_temps(path, depth + 1);
    }
    if (d)
        closedir(d);
}

static whs__be_rc_t file_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                              size_t err_size)
{
    whs__url_t u;
    if (whs__url_parse(conf->url, &u, err, err_size))
        return WHS__BE_FATAL;
    file_be_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->cctx = ZSTD_createCCtx())) {
        free(f);
        uc__errstr(err, err_size, "file: out of memory");
        return WHS__BE_FATAL;
    }
    f->conf = *conf;
    ZSTD_CCtx_setParameter(f->cctx, ZSTD_c_compressionLevel, conf->zstd_level);
    int too_long =
        snprintf(f->root, sizeof(f->root), "%s/%s", u.path, conf->table) >= (int)sizeof(f->root);
    if (too_long || mkdir_p(f->root)) {
        errno = too_long ? ENAMETOOLONG : errno;
        whs__be_rc_t rc = fail_errno("mkdir", f->root, err, err_size);
        ZSTD_freeCCtx(f->cctx);
        free(f);
        return rc;
    }
    *out = &f->base;
    return WHS__BE_OK;
}

static whs__be_rc_t file_ensure_schema(whs__backend_t *be, int *added, char *err, size_t err_size)
{
    file_be_t *f = (file_be_t *)be;
    (void)added; /* NDJSON has no schema to evolve: new columns simply appear */
    (void)err;
    (void)err_size;
    remove_temps(f->root, 0);
    return WHS__BE_OK;
}

static whs__be_rc_t file_begin(whs__backend_t *be, const whs__batch_t *b, char *err,
                               size_t err_size)
{
    (void)be, (void)b, (void)err, (void)err_size;
    return WHS__BE_OK;
}

/* Number of groups of @p b for @p partition: the COUNT of its files' names. */
static int files_of(const whs__batch_t *b, int32_t partition)
{
    int n = 0;
    for (size_t g = 0; g < b->ngroups; g++)
        n += b->groups[g].partition == partition && b->groups[g].n > 0;
    return n;
}

/* Directory of a group and the file name (without directory). */
static int group_paths(file_be_t *f, const whs__batch_t *b, const whs__group_t *g, char *dir,
                       size_t dsize, char *name, size_t nsize)
{
    char day[11];
    const whs__bpart_t *p = NULL;
    for (size_t i = 0; i < b->nparts && !p; i++)
        if (b->parts[i].partition == g->partition)
            p = &b->parts[i];
    whs__fmt_date(g->dt, day);
    int n = snprintf(dir, dsize, "%s/dt=%s/bucket=%02d", f->root, day, g->bucket);
    int m =
        snprintf(name, nsize, "part-%s_p%d_o%" PRId64 "-%" PRId64 "_n%d_%016" PRIx64 ".ndjson.zst",
                 f->conf.topic, g->partition, p ? p->first : 0, p ? p->next - 1 : 0,
                 files_of(b, g->partition), b->id);
    return n < (int)dsize && m < (int)nsize ? 0 : -1;
}

/* Compresses what is in f->text into f->out (ZSTD_e_end finishes the frame). */
static int compress_chunk(file_be_t *f, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {f->text.data, f->text.len, 0};
    size_t rc;
    do {
        if (whs__buf_reserve(&f->out, ZSTD_CStreamOutSize()))
            return -1;
        ZSTD_outBuffer o = {f->out.data + f->out.len, f->out.cap - f->out.len - 1, 0};
        rc = ZSTD_compressStream2(f->cctx, &o, &in, mode);
        if (ZSTD_isError(rc))
            return -1;
        f->out.len += o.pos;
    } while (in.pos < in.size || (mode == ZSTD_e_end && rc != 0));
    whs__buf_reset(&f->text);
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the rows as one zstd frame to @p fd, streaming in chunks of about 1 MiB. */
static int write_rows(file_be_t *f, int fd, const whs__group_t *g)
{
    ZSTD_CCtx_reset(f->cctx, ZSTD_reset_session_only);
    whs__buf_reset(&f->text);
    whs__buf_reset(&f->out);
    for (size_t r = 0; r < g->n; r++) {
        whs__row_json(&f->text, f->conf.schema, g->rows[r], &whs__json_style_plain);
        whs__buf_putc(&f->text, '\n');
        if (f->text.len >= (1 << 20) || r + 1 == g->n) {
            if (f->text.oom || compress_chunk(f, r + 1 == g->n ? ZSTD_e_end : ZSTD_e_continue))
                return -1;
            if (write_all(fd, f->out.data, f->out.len))
                return -1;
            whs__buf_reset(&f->out);
        }
    }
    return 0;
}

static whs__be_rc_t file_write(whs__backend_t *be, const whs__batch_t *b, const whs__group_t *g,
                               size_t from, size_t n, int retry, char *err, size_t err_size)
{
    file_be_t *f = (file_be_t *)be;
    char dir[4096], name[512], tmp[4700], final[4700];
    (void)retry; /* rewriting a file under the same name is harmless */
    if (from != 0 || n != g->n) {
        uc__errstr(err, err_size, "file: a group is written whole");
        return WHS__BE_FATAL;
    }
    if (group_paths(f, b, g, dir, sizeof(dir), name, sizeof(name)) ||
        snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", dir, name) >= (int)sizeof(tmp) ||
        snprintf(final, sizeof(final), "%s/%s", dir, name) >= (int)sizeof(final)) {
        uc__errstr(err, err_size, "file: path too long below %s", f->root);
        return WHS__BE_FATAL;
    }
    if (mkdir_p(dir))
        return fail_errno("mkdir", dir, err, err_size);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail_errno("create", tmp, err, err_size);
    int bad = write_rows(f, fd, g) || (f->conf.fsync && fsync(fd));
    whs__be_rc_t rc = bad ? fail_errno("write", tmp, err, err_size) : WHS__BE_OK;
    close(fd);
    if (rc == WHS__BE_OK && rename(tmp, final))
        rc = fail_errno("rename", final, err, err_size);
    if (rc == WHS__BE_OK && f->conf.fsync && fsync_path(dir))
        rc = fail_errno("fsync", dir, err, err_size);
    if (rc != WHS__BE_OK)
        unlink(tmp);
    return rc;
}

/* Writes "DIR/TABLE/_whs_offsets/TOPIC-P" = next offset, atomically. */
static whs__be_rc_t write_checkpoint(file_be_t *f, const whs__bpart_t *p, char *err,
                                     size_t err_size)
{
    char dir[4200], path[4600], tmp[4700], text[32];
    snprintf(dir, sizeof(dir), "%s/_whs_offsets", f->root);
    snprintf(path, sizeof(path), "%s/%s-%d", dir, f->conf.topic, p->partition);
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%d", dir, f->conf.topic, p->partition);
    int n = snprintf(text, sizeof(text), "%" PRId64 "\n", p->next);
    if (mkdir_p(dir))
        return fail_errno("mkdir", dir, err, err_size);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail_errno("create", tmp, err, err_size);
    int bad = write_all(fd, text, (size_t)n) || (f->conf.fsync && fsync(fd));
    close(fd);
    if (bad || rename(tmp, path))
        return fail_errno("write", path, err, err_size);
    return WHS__BE_OK;
}

static whs__be_rc_t file_commit(whs__backend_t *be, const whs__batch_t *b, char *err,
                                size_t err_size)
{
    file_be_t *f = (file_be_t *)be;
    char dir[4200];
    for (size_t i = 0; i < b->nparts; i++) {
        whs__be_rc_t rc = write_checkpoint(f, &b->parts[i], err, err_size);
        if (rc != WHS__BE_OK)
            return rc;
    }
    snprintf(dir, sizeof(dir), "%s/_whs_offsets", f->root);
    if (b->nparts && f->conf.fsync && fsync_path(dir))
        return fail_errno("fsync", dir, err, err_size);
    return WHS__BE_OK;
}

static void file_rollback(whs__backend_t *be)
{
    (void)be;
}

/* ---- resume ----------------------------------------------------------------------------- */

typedef struct found {
    part_name_t name;
    int32_t dt, bucket;
} found_t;

typedef struct scan {
    found_t *v;
    size_t n, cap;
} scan_t;

/* Parses a committed file name of @p topic; 0 or -1 when it is not one. */
static int parse_name(const char *topic, const char *file, part_name_t *out)
{
    size_t tl = strlen(topic);
    long long first, last;
    int consumed = 0;
    if (strncmp(file, "part-", 5) != 0 || strncmp(file + 5, topic, tl) != 0 ||
        strncmp(file + 5 + tl, "_p", 2) != 0)
        return -1;
    if (sscanf(file + 5 + tl, "_p%d_o%lld-%lld_n%d_%16[0-9a-f].ndjson.zst%n", &out->partition,
               &first, &last, &out->count, out->id, &consumed) != 5 ||
        file[5 + tl + (size_t)consumed] != '\0')
        return -1;
    out->first = first;
    out->last = last;
    return 0;
}

static void scan_bucket(file_be_t *f, const char *dir, int32_t dt, int32_t bucket,
                        int32_t partition, scan_t *s)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        part_name_t pn;
        if (parse_name(f->conf.topic, e->d_name, &pn) || pn.partition != partition)
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 64;
            found_t *nv = realloc(s->v, cap * sizeof(*nv));
            if (!nv)
                break;
            s->v = nv;
            s->cap = cap;
        }
        s->v[s->n++] = (found_t){pn, dt, bucket};
    }
    if (d)
        closedir(d);
}

/* Collects every committed file of @p partition below f->root. */
static int scan_tree(file_be_t *f, int32_t partition, scan_t *s)
{
    DIR *top = opendir(f->root);
    struct dirent *e, *be;
    char dir[4200], bdir[4400];
    if (!top)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(top))) {
        int32_t dt;
        if (strncmp(e->d_name, "dt=", 3) != 0 || whs__parse_date(e->d_name + 3, &dt))
            continue;
        if (snprintf(dir, sizeof(dir), "%s/%s", f->root, e->d_name) >= (int)sizeof(dir))
            continue;
        DIR *days = opendir(dir);
        while (days && (be = readdir(days))) {
            int bucket;
            char tail;
            if (sscanf(be->d_name, "bucket=%d%c", &bucket, &tail) != 1)
                continue;
            if (snprintf(bdir, sizeof(bdir), "%s/%s", dir, be->d_name) >= (int)sizeof(bdir))
                continue;
            scan_bucket(f, bdir, dt, bucket, partition, s);
        }
        if (days)
            closedir(days);
    }
    closedir(top);
    return 0;
}

static int cmp_found(const void *a, const void *b)
{
    const part_name_t *x = &((const found_t *)a)->name, *y = &((const found_t *)b)->name;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->last < y->last ? -1 : x->last > y->last;
}

static int64_t read_checkpoint(file_be_t *f, int32_t partition)
{
    char path[4600];
    long long v = -1;
    snprintf(path, sizeof(path), "%s/_whs_offsets/%s-%d", f->root, f->conf.topic, partition);
    FILE *fp = fopen(path, "r");
    if (fp) {
        if (fscanf(fp, "%lld", &v) != 1)
            v = -1;
        fclose(fp);
    }
    return v;
}

/* From the sorted files: the resume offset of complete batches, skips of incomplete ones. */
static int resolve(const scan_t *s, whs__resume_t *out)
{
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && cmp_found(&s->v[i], &s->v[j]) == 0)
            j++;
        const part_name_t *pn = &s->v[i].name;
        if ((int)(j - i) >= pn->count && pn->last + 1 > out->next_offset)
            out->next_offset = pn->last + 1;
        i = j;
    }
    for (size_t i = 0; i < s->n;) { /* incomplete batches past the resume point */
        size_t j = i;
        while (j < s->n && cmp_found(&s->v[i], &s->v[j]) == 0)
            j++;
        const part_name_t *pn = &s->v[i].name;
        for (size_t k = i; (int)(j - i) < pn->count && pn->last >= out->next_offset && k < j; k++)
            if (whs__resume_add_skip(out, pn->first, pn->last, s->v[k].dt, s->v[k].bucket))
                return -1;
        i = j;
    }
    return 0;
}

static whs__be_rc_t file_committed(whs__backend_t *be, int32_t partition, whs__resume_t *out,
                                   char *err, size_t err_size)
{
    file_be_t *f = (file_be_t *)be;
    scan_t s = {0};
    memset(out, 0, sizeof(*out));
    out->next_offset = read_checkpoint(f, partition);
    if (scan_tree(f, partition, &s))
        return fail_errno("scan", f->root, err, err_size);
    if (s.n > 1)
        if (s.n) /* s.v is NULL when nothing was found: qsort(NULL, 0) is undefined */
            qsort(s.v, s.n, sizeof(*s.v), cmp_found);
    int rc = resolve(&s, out);
    free(s.v);
    if (rc) {
        whs__resume_free(out);
        uc__errstr(err, err_size, "file: out of memory");
        return WHS__BE_FATAL;
    }
    return WHS__BE_OK;
}

static void file_close(whs__backend_t *be)
{
    file_be_t *f = (file_be_t *)be;
    if (!f)
        return;
    ZSTD_freeCCtx(f->cctx);
    whs__buf_free(&f->text);
    whs__buf_free(&f->out);
    free(f);
}

const whs__backend_ops_t whs__backend_file = {
    .scheme = "file",
    .group_by = WHS__BY_BUCKET | WHS__BY_PARTITION,
    .transactional = 0,
    .rewrite_ok = 1,
    .open = file_open,
    .ensure_schema = file_ensure_schema,
    .begin = file_begin,
    .write = file_write,
    .savepoint = NULL,
    .commit = file_commit,
    .rollback = file_rollback,
    .committed = file_committed,
    .close = file_close,
};
