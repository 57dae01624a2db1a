/*
 * uc_log.h - the libraries' logger: a level threshold and a callback (default: stderr).
 *
 * Never log secrets. A configuration value is shown only after uc__prop_is_secret()
 * (uc_props.h) said its key is not a secret (the _conf_dump() calls print "[redacted]"
 * instead); a warehouse URL only as whs__url_mask() prints it (libwhsink/src/url.h).
 */
#ifndef UC_LOG_H
#define UC_LOG_H

enum { UC_LOG_ERR = 3, UC_LOG_WARNING = 4, UC_LOG_NOTICE = 5, UC_LOG_INFO = 6, UC_LOG_DEBUG = 7 };

typedef void(uc__log_fn)(int level, const char *message, void *opaque);

typedef struct uc__logger {
    int level;            /* messages above this level are not formatted at all */
    const char *prefix;   /* "userevents", "enrich", ... */
    uc__log_fn *fn;       /* NULL: stderr */
    void *opaque;
} uc__logger_t;

void uc__log(const uc__logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
