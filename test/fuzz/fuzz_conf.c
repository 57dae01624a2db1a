/*
 * fuzz_conf.c - libFuzzer target for configuration parsing: the property-table setters of the
 * three libraries (ue_conf_set, enr_conf_set, whs_conf_set, through common/uc_props.c and each
 * library's own checks: columns.promote, warehouse.url, stages, ...) on key/value text from a
 * configuration file, a -X flag or an environment variable.
 *
 * The input is a configuration file: lines "key=value" (split at the first '='; no '=': the
 * whole line is the key, the value empty), at most MAX_LINES. Each line is set on the three
 * configurations of this input, which accumulate as a file's lines do. The daemons' own file
 * readers (load_file() in examples/enrichd/main.c and examples/whsinkd/main.c) are static
 * beside their main() and are not reached: they split lines and call these setters.
 *
 * Oracles, per line and library: the answer is OK, INVALID or UNKNOWN, and a refusal comes
 * with a reason that fits any errstr size (canary bytes after a small buffer; a NULL buffer);
 * a value set is read back by _get, and setting what _get returned is accepted and reads back
 * the same (the canonical form is a fixed point). At the end, when the input starts with a
 * comment line ('#', skipped like the file readers skip it): a copy (_dup) dumps exactly like
 * its original, and no dump shows a secret (keys uc__prop_is_secret() names, the warehouse
 * URL's password). Only then: a dump lists librdkafka's hundreds of properties, and doing it
 * for every input took the target from about 400 to 80 runs a second. Keys naming librdkafka
 * plugins are skipped: setting one loads a library.
 */
#include "enrich.h"
#include "fuzz_util.h"
#include "uc_props.h"
#include "userevents.h"
#include "whsink.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 64
#define CANARY 0x5a

/* One library's configuration behind one interface (wrappers: no function pointer casts). */
typedef struct lib {
    const char *name;
    int (*set)(void *c, const char *k, const char *v, char *err, size_t size);
    int (*get)(const void *c, const char *k, char *dest, size_t *size);
} lib_t;

static int ue_set(void *c, const char *k, const char *v, char *e, size_t n)
{
    return ue_conf_set(c, k, v, e, n);
}
static int ue_get(const void *c, const char *k, char *d, size_t *n)
{
    return ue_conf_get(c, k, d, n);
}
static int enr_set(void *c, const char *k, const char *v, char *e, size_t n)
{
    return enr_conf_set(c, k, v, e, n);
}
static int enr_get(const void *c, const char *k, char *d, size_t *n)
{
    return enr_conf_get(c, k, d, n);
}
static int whs_set(void *c, const char *k, const char *v, char *e, size_t n)
{
    return whs_conf_set(c, k, v, e, n);
}
static int whs_get(const void *c, const char *k, char *d, size_t *n)
{
    return whs_conf_get(c, k, d, n);
}

static const lib_t LIBS[3] = {
    {"libuserevents", ue_set, ue_get},
    {"libenrich", enr_set, enr_get},
    {"libwhsink", whs_set, whs_get},
};

/* The current value of @p key, malloc'd; NULL when _get does not know it. */
static char *get_value(const lib_t *l, const void *conf, const char *key)
{
    size_t size = 0;
    if (l->get(conf, key, NULL, &size) != 0)
        return NULL;
    FUZZ_CHECK(size > 0, "%s: %s: _get asks for 0 bytes", l->name, key);
    char *v = malloc(size + 1);
    FUZZ_CHECK(v != NULL, "out of memory");
    v[size] = CANARY;
    size_t got = size;
    FUZZ_CHECK(l->get(conf, key, v, &got) == 0, "%s: %s: _get refuses on the second call", l->name,
               key);
    FUZZ_CHECK(v[size] == CANARY && memchr(v, '\0', size) != NULL,
               "%s: %s: _get wrote past the size it asked for", l->name, key);
    return v;
}

/* The value just set reads back, and is a fixed point of set-then-get. */
static void check_round_trip(const lib_t *l, void *conf, const char *key)
{
    char err[512];
    char *v1 = get_value(l, conf, key);
    FUZZ_CHECK(v1 != NULL, "%s: %s: set, but _get does not know it", l->name, key);
    int rc = l->set(conf, key, v1, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "%s: %s: its own value \"%s\" refused: %s", l->name, key, v1, err);
    char *v2 = get_value(l, conf, key);
    FUZZ_CHECK(v2 && !strcmp(v1, v2), "%s: %s: \"%s\" reads back as \"%s\"", l->name, key, v1,
               v2 ? v2 : "(null)");
    free(v1);
    free(v2);
}

/* Sets one line on @p conf of @p l with every errstr shape, checking the answers agree. */
static void set_line(const lib_t *l, void *conf, const char *key, const char *value, size_t small)
{
    char err[512], tiny[40];
    err[0] = '\0';
    int rc = l->set(conf, key, value, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2, "%s: %s: answer %d", l->name, key, rc);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "%s: %s: reason without a NUL", l->name,
               key);
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0', "%s: %s: refused (%d) without a reason", l->name, key, rc);
        memset(tiny, CANARY, sizeof(tiny));
        int again = l->set(conf, key, value, tiny, small);
        FUZZ_CHECK(again == rc, "%s: %s: answer %d, then %d", l->name, key, rc, again);
        for (size_t i = small; i < sizeof(tiny); i++)
            FUZZ_CHECK(tiny[i] == CANARY, "%s: %s: reason written past %zu bytes", l->name, key,
                       small);
        FUZZ_CHECK(small == 0 || memchr(tiny, '\0', small), "%s: reason not terminated", l->name);
        FUZZ_CHECK(l->set(conf, key, value, NULL, 0) == rc, "%s: errstr NULL", l->name);
        return;
    }
    if (strncmp(key, "kafka.", 6) != 0) /* librdkafka's own forms are not ours to pin */
        check_round_trip(l, conf, key);
}

/* No dumped secret shows: redacted keys, the warehouse URL's password. */
static void check_dump(const char *lib, const char **arr, size_t cnt, const char *url)
{
    FUZZ_CHECK(arr != NULL && cnt % 2 == 0, "%s: dump of %zu entries", lib, cnt);
    for (size_t i = 0; i + 1 < cnt; i += 2) {
        const char *k = arr[i], *v = arr[i + 1];
        FUZZ_CHECK(k && v, "%s: dump entry %zu is NULL", lib, i);
        if (uc__prop_is_secret(k))
            FUZZ_CHECK(!*v || !strcmp(v, "[redacted]"), "%s: dump shows %s=%s", lib, k, v);
        if (url && !strcmp(k, "warehouse.url"))
            FUZZ_CHECK(!fuzz_url_shows_password(url, v), "%s: dump shows the password: %s", lib, v);
    }
}

/* A copy dumps exactly like its original, but for the pointers librdkafka dumps ("0x...": a
 * copy has its own default topic configuration). */
static void check_same_dump(const char *lib, const char **a, size_t na, const char **b, size_t nb)
{
    FUZZ_CHECK(na == nb, "%s: the copy dumps %zu entries, the original %zu", lib, nb, na);
    for (size_t i = 0; i < na; i++)
        FUZZ_CHECK(!strcmp(a[i], b[i]) || (!strncmp(a[i], "0x", 2) && !strncmp(b[i], "0x", 2)),
                   "%s: %s: %s in the copy, %s in the original", lib, i % 2 ? a[i - 1] : "key",
                   b[i], a[i]);
}

static void check_end(ue_conf_t *ue, whs_conf_t *whs)
{
    size_t n1, n2;
    ue_conf_t *ue2 = ue_conf_dup(ue);
    const char **d1 = ue_conf_dump(ue, &n1), **d2 = ue_conf_dump(ue2, &n2);
    check_dump("libuserevents", d1, n1, NULL);
    check_same_dump("libuserevents", d1, n1, d2, n2);
    ue_conf_dump_free(d1, n1);
    ue_conf_dump_free(d2, n2);
    ue_conf_destroy(ue2);

    char *url = get_value(&LIBS[2], whs, "warehouse.url");
    whs_conf_t *whs2 = whs_conf_dup(whs);
    d1 = whs_conf_dump(whs, &n1);
    d2 = whs_conf_dump(whs2, &n2);
    check_dump("libwhsink", d1, n1, url);
    check_same_dump("libwhsink", d1, n1, d2, n2);
    whs_conf_dump_free(d1, n1);
    whs_conf_dump_free(d2, n2);
    whs_conf_destroy(whs2);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *save = NULL;
    FUZZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    void *confs[3] = {ue_conf_new(), enr_conf_new(), whs_conf_new()};
    FUZZ_CHECK(confs[0] && confs[1] && confs[2], "out of memory");
    int lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line && lines < MAX_LINES;
         line = strtok_r(NULL, "\n", &save), lines++) {
        char *eq = strchr(line, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (line[0] == '#' || strstr(line, "plugin"))
            continue;
        size_t small = (size_t)(line[0] ? (unsigned char)line[0] % 12 : 0);
        for (int i = 0; i < 3; i++)
            set_line(&LIBS[i], confs[i], line, value, small);
    }
    if (size && data[0] == '#')
        check_end(confs[0], confs[2]);
    ue_conf_destroy(confs[0]);
    enr_conf_destroy(confs[1]);
    whs_conf_destroy(confs[2]);
    free(text);
    return 0;
}
