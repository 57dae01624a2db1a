/*
 * uc_props.h - table-driven configuration, shared by the three libraries.
 *
 * Each library describes its properties once, in a table of uc__prop_t (name, type, where the
 * value lives in its settings struct, range, default, doc). That one table validates
 * ue_conf_set(), answers _get() and _dump(), and generates CONFIGURATION.md, so the docs and
 * the code cannot disagree (librdkafka's rdkafka_conf.c does the same).
 */
#ifndef UC_PROPS_H
#define UC_PROPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum uc__prop_type {
    UC__PROP_INT,  /* int64_t, range [min, max] */
    UC__PROP_STR,  /* char *, owned by the settings struct; NULL when empty */
    UC__PROP_BOOL, /* int 0/1; accepts true/false/1/0 */
    UC__PROP_ENUM, /* int index into the comma-separated choices */
    UC__PROP_DOUBLE, /* double, range [min, max] (the integer bounds) */
} uc__prop_type_t;

typedef struct uc__prop {
    const char *name;
    uc__prop_type_t type;
    size_t offset; /* offsetof() the value in the settings struct */
    int64_t min, max;
    const char *def;     /* default, as text ("" for none) */
    const char *choices; /* ENUM only: "drop_newest,drop_oldest,block" */
    const char *doc;
} uc__prop_t;

/* Results, equal to the public *_CONF_OK / _INVALID / _UNKNOWN of each library. */
enum { UC__PROP_OK = 0, UC__PROP_INVALID = -1, UC__PROP_UNKNOWN = -2 };

const uc__prop_t *uc__prop_find(const uc__prop_t *table, const char *name);

/* Parses @p value into @p settings; on failure writes the reason to @p errstr. */
int uc__prop_set(const uc__prop_t *table, void *settings, const char *name, const char *value,
                 char *errstr, size_t errstr_size);

/* Formats the current value; contract of ue_conf_get() (dest may be NULL to ask the size). */
int uc__prop_get(const uc__prop_t *table, const void *settings, const char *name, char *dest,
                 size_t *dest_size);

/* Applies every default. Returns 0, or -1 when out of memory. */
int uc__props_init(const uc__prop_t *table, void *settings);

/* Deep-copies strings from @p src to @p dst (a memcpy'd settings struct). 0 or -1 (ENOMEM). */
int uc__props_dup_strings(const uc__prop_t *table, void *dst);

/* Frees the strings of @p settings. */
void uc__props_free(const uc__prop_t *table, void *settings);

size_t uc__props_count(const uc__prop_t *table);

/* Writes the table as a Markdown table (the generator of CONFIGURATION.md). */
void uc__props_markdown(const uc__prop_t *table, FILE *out);

/* 1 when a configuration key names a secret whose value must never be shown or logged. */
int uc__prop_is_secret(const char *name);

/* The *_conf_dump() calls: appends librdkafka's name/value pairs @p kdump (@p kcnt strings) to
 * @p arr from index @p i as "<prefix><name>", secrets "[redacted]"; returns the new count. */
size_t uc__dump_kafka(const char **arr, size_t i, const char **kdump, size_t kcnt,
                      const char *prefix);

/* Frees what a *_conf_dump() returned: @p cnt strings and the array. */
void uc__dump_free(const char **arr, size_t cnt);

/*
 * Writes {"name":value,...} of @p n counters, snprintf-like (returns the full length; @p buf
 * may be NULL to measure). @p get reads counter i of @p handle. The *_stats_json() calls.
 */
size_t uc__stats_json(const char *const *names, int n, int64_t (*get)(void *handle, int i),
                      void *handle, char *buf, size_t size);

/*
 * Sets a librdkafka property, mapping librdkafka's answer to UC__PROP_OK / _INVALID / _UNKNOWN
 * (the "kafka.*" keys of every library).
 */
struct rd_kafka_conf_s;
int uc__kafka_conf_set(struct rd_kafka_conf_s *kc, const char *name, const char *value,
                       char *errstr, size_t errstr_size);

/* An integer librdkafka property as @p kc holds it (its default included), or @p dflt when
 * librdkafka does not know the name. */
int64_t uc__kafka_conf_int(const struct rd_kafka_conf_s *kc, const char *name, int64_t dflt);

/* snprintf into an error buffer that may be NULL or zero-sized. */
void uc__errstr(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
