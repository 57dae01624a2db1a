/*
 * ue_log.h - the libraries' logger: a level threshold and a callback (default: stderr).
 *
 * Never log secrets. A configuration value is shown only after ue__prop_is_secret()
 * (ue_props.h) said its key is not a secret (the _conf_dump() calls print "[redacted]"
 * instead); a warehouse URL only as whs__url_mask() prints it (libwhsink/src/url.h).
 */
#ifndef UE_LOG_H
#define UE_LOG_H

enum { UE_LOG_ERR = 3, UE_LOG_WARNING = 4, UE_LOG_NOTICE = 5, UE_LOG_INFO = 6, UE_LOG_DEBUG = 7 };

typedef void(ue__log_fn)(int level, const char *message, void *opaque);

typedef struct ue__logger {
    int level;            /* messages above this level are not formatted at all */
    const char *prefix;   /* "userevents", "enrich", ... */
    ue__log_fn *fn;       /* NULL: stderr */
    void *opaque;
} ue__logger_t;

void ue__log(const ue__logger_t *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
