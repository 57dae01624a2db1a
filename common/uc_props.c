/*
 * uc_props.c - parsing, formatting and documenting configuration tables (see uc_props.h).
 */
#include "uc_props.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void uc__errstr(char *errstr, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (!errstr || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}

const uc__prop_t *uc__prop_find(const uc__prop_t *table, const char *name)
{
    for (const uc__prop_t *p = table; p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

size_t uc__props_count(const uc__prop_t *table)
{
    size_t n = 0;
    while (table[n].name)
        n++;
    return n;
}

/* Index of @p value in the comma-separated @p choices, or -1. */
static int choice_index(const char *choices, const char *value)
{
    size_t len = strlen(value);
    int idx = 0;
    for (const char *c = choices; *c; idx++) {
        const char *end = strchr(c, ',');
        size_t clen = end ? (size_t)(end - c) : strlen(c);
        if (clen == len && strncmp(c, value, len) == 0)
            return idx;
        if (!end)
            break;
        c = end + 1;
    }
    return -1;
}

/* Copies choice @p idx of @p choices into @p out. */
static void choice_name(const char *choices, int idx, char *out, size_t size)
{
    const char *c = choices;
    for (int i = 0; i < idx && c; i++) {
        c = strchr(c, ',');
        if (c)
            c++;
    }
    if (!c) {
        snprintf(out, size, "?");
        return;
    }
    const char *end = strchr(c, ',');
    snprintf(out, size, "%.*s", (int)(end ? (size_t)(end - c) : strlen(c)), c);
}

static int parse_bool(const char *v)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
        return 1;
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
        return 0;
    return -1;
}

static int set_value(const uc__prop_t *p, void *settings, const char *value, char *errstr,
                     size_t errstr_size)
{
    char *field = (char *)settings + p->offset;

    switch (p->type) {
    case UC__PROP_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            uc__errstr(errstr, errstr_size, "%s: expected an integer, got \"%s\"", p->name,
                       value);
            return UC__PROP_INVALID;
        }
        if (v < p->min || v > p->max) {
            uc__errstr(errstr, errstr_size, "%s: %lld is outside [%" PRId64 ", %" PRId64 "]",
                       p->name, v, p->min, p->max);
            return UC__PROP_INVALID;
        }
        *(int64_t *)field = v;
        return UC__PROP_OK;
    }
    case UC__PROP_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || v != v) {
            uc__errstr(errstr, errstr_size, "%s: expected a number, got \"%s\"", p->name, value);
            return UC__PROP_INVALID;
        }
        if (v < (double)p->min || v > (double)p->max) {
            uc__errstr(errstr, errstr_size, "%s: %g is outside [%" PRId64 ", %" PRId64 "]",
                       p->name, v, p->min, p->max);
            return UC__PROP_INVALID;
        }
        *(double *)field = v;
        return UC__PROP_OK;
    }
    case UC__PROP_BOOL: {
        int b = parse_bool(value);
        if (b < 0) {
            uc__errstr(errstr, errstr_size, "%s: expected true or false, got \"%s\"", p->name,
                       value);
            return UC__PROP_INVALID;
        }
        *(int *)field = b;
        return UC__PROP_OK;
    }
    case UC__PROP_ENUM: {
        int idx = choice_index(p->choices, value);
        if (idx < 0) {
            uc__errstr(errstr, errstr_size, "%s: expected one of %s, got \"%s\"", p->name,
                       p->choices, value);
            return UC__PROP_INVALID;
        }
        *(int *)field = idx;
        return UC__PROP_OK;
    }
    case UC__PROP_STR: {
        if (strlen(value) > (size_t)p->max) {
            uc__errstr(errstr, errstr_size, "%s: longer than %" PRId64 " bytes", p->name,
                       p->max);
            return UC__PROP_INVALID;
        }
        char *copy = NULL;
        if (*value && !(copy = strdup(value))) {
            uc__errstr(errstr, errstr_size, "out of memory");
            return UC__PROP_INVALID;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return UC__PROP_OK;
    }
    }
    return UC__PROP_INVALID;
}

int uc__prop_set(const uc__prop_t *table, void *settings, const char *name, const char *value,
                 char *errstr, size_t errstr_size)
{
    if (!name || !value) {
        uc__errstr(errstr, errstr_size, "name and value must not be NULL");
        return UC__PROP_INVALID;
    }
    const uc__prop_t *p = uc__prop_find(table, name);
    if (!p) {
        uc__errstr(errstr, errstr_size, "unknown configuration property \"%s\"", name);
        return UC__PROP_UNKNOWN;
    }
    return set_value(p, settings, value, errstr, errstr_size);
}

static void format_value(const uc__prop_t *p, const void *settings, char *out, size_t size)
{
    const char *field = (const char *)settings + p->offset;
    switch (p->type) {
    case UC__PROP_INT:
        snprintf(out, size, "%" PRId64, *(const int64_t *)field);
        break;
    case UC__PROP_DOUBLE:
        snprintf(out, size, "%g", *(const double *)field);
        break;
    case UC__PROP_BOOL:
        snprintf(out, size, "%s", *(const int *)field ? "true" : "false");
        break;
    case UC__PROP_ENUM:
        choice_name(p->choices, *(const int *)field, out, size);
        break;
    case UC__PROP_STR:
        snprintf(out, size, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    }
}

int uc__prop_get(const uc__prop_t *table, const void *settings, const char *name, char *dest,
                 size_t *dest_size)
{
    const uc__prop_t *p = name ? uc__prop_find(table, name) : NULL;
    if (!p || !dest_size)
        return UC__PROP_UNKNOWN;

    char small[64] = "";
    const char *text = small;
    if (p->type == UC__PROP_STR) {
        const char *s = *(char *const *)((const char *)settings + p->offset);
        text = s ? s : "";
    } else {
        format_value(p, settings, small, sizeof(small));
    }
    size_t need = strlen(text) + 1;
    if (dest && *dest_size > 0)
        snprintf(dest, *dest_size, "%s", text);
    *dest_size = need;
    return UC__PROP_OK;
}

int uc__props_init(const uc__prop_t *table, void *settings)
{
    for (const uc__prop_t *p = table; p->name; p++) {
        if (set_value(p, settings, p->def, NULL, 0) != UC__PROP_OK)
            return -1;
    }
    return 0;
}

int uc__props_dup_strings(const uc__prop_t *table, void *dst)
{
    int rc = 0;
    for (const uc__prop_t *p = table; p->name; p++) {
        char **field = (char **)((char *)dst + p->offset);
        if (p->type != UC__PROP_STR || !*field)
            continue;
        /* On failure keep going with NULLs, so uc__props_free() stays safe. */
        if (!(*field = strdup(*field)))
            rc = -1;
    }
    return rc;
}

void uc__props_free(const uc__prop_t *table, void *settings)
{
    for (const uc__prop_t *p = table; p->name; p++) {
        if (p->type == UC__PROP_STR) {
            char **field = (char **)((char *)settings + p->offset);
            free(*field);
            *field = NULL;
        }
    }
}

void uc__props_markdown(const uc__prop_t *table, FILE *out)
{
    fprintf(out, "| property | type | range | default | description |\n");
    fprintf(out, "| --- | --- | --- | --- | --- |\n");
    for (const uc__prop_t *p = table; p->name; p++) {
        char range[80] = "";
        const char *type = "string";
        if (p->type == UC__PROP_INT) {
            type = "integer";
            snprintf(range, sizeof(range), "%" PRId64 " .. %" PRId64, p->min, p->max);
        } else if (p->type == UC__PROP_DOUBLE) {
            type = "number";
            snprintf(range, sizeof(range), "%" PRId64 " .. %" PRId64, p->min, p->max);
        } else if (p->type == UC__PROP_BOOL) {
            type = "boolean";
            snprintf(range, sizeof(range), "true, false");
        } else if (p->type == UC__PROP_ENUM) {
            type = "enum";
            snprintf(range, sizeof(range), "%s", p->choices);
        }
        fprintf(out, "| `%s` | %s | %s | %s | %s |\n", p->name, type, range,
                *p->def ? p->def : "(empty)", p->doc);
    }
}

int uc__prop_is_secret(const char *name)
{
    static const char *const words[] = {"password", "secret", "token", "ssl.key",
                                        "oauthbearer.config", "api.key", "apikey", NULL};
    for (int i = 0; words[i]; i++)
        if (strstr(name, words[i]))
            return 1;
    return 0;
}

size_t uc__stats_json(const char *const *names, int n, int64_t (*get)(void *handle, int i),
                      void *handle, char *buf, size_t size)
{
    size_t len = 0;
    char scratch[1];
    if (!buf || size == 0) { /* only measure */
        buf = scratch;
        size = 1;
    }
    for (int i = 0; i < n; i++) {
        size_t room = len < size ? size - len : 0;
        int w = snprintf(room ? buf + len : NULL, room, "%s\"%s\":%" PRId64, i ? "," : "{",
                         names[i], handle ? get(handle, i) : 0);
        len += (size_t)w;
    }
    size_t room = len < size ? size - len : 0;
    len += (size_t)snprintf(room ? buf + len : NULL, room, "}");
    return len;
}

int uc__kafka_conf_set(struct rd_kafka_conf_s *kc, const char *name, const char *value,
                       char *errstr, size_t errstr_size)
{
    switch (rd_kafka_conf_set(kc, name, value, errstr, errstr_size)) {
    case RD_KAFKA_CONF_OK: return UC__PROP_OK;
    case RD_KAFKA_CONF_UNKNOWN: return UC__PROP_UNKNOWN;
    default: return UC__PROP_INVALID;
    }
}

int64_t uc__kafka_conf_int(const struct rd_kafka_conf_s *kc, const char *name, int64_t dflt)
{
    char v[32];
    size_t n = sizeof(v);
    return rd_kafka_conf_get(kc, name, v, &n) == RD_KAFKA_CONF_OK ? atoll(v) : dflt;
}

size_t uc__dump_kafka(const char **arr, size_t i, const char **kdump, size_t kcnt,
                      const char *prefix)
{
    for (size_t k = 0; k + 1 < kcnt; k += 2) {
        char *key = malloc(strlen(prefix) + strlen(kdump[k]) + 1);
        if (key)
            strcat(strcpy(key, prefix), kdump[k]);
        arr[i++] = key;
        arr[i++] = strdup(uc__prop_is_secret(kdump[k]) ? "[redacted]" : kdump[k + 1]);
    }
    return i;
}

void uc__dump_free(const char **arr, size_t cnt)
{
    for (size_t i = 0; arr && i < cnt; i++)
        free((void *)arr[i]);
    free(arr);
}
