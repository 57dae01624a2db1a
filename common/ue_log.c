/*
 * ue_log.c - formats a log line and hands it to the callback or to stderr.
 */
#include "ue_log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *level_name(int level)
{
    switch (level) {
    case UE_LOG_ERR: return "ERROR";
    case UE_LOG_WARNING: return "WARN";
    case UE_LOG_NOTICE: return "NOTICE";
    case UE_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

void ue__log(const ue__logger_t *lg, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!lg || level > lg->level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lg->fn)
        lg->fn(level, msg, lg->opaque);
    else
        fprintf(stderr, "%%%d|%s|%s: %s\n", level, level_name(level),
                lg->prefix ? lg->prefix : "ue", msg);
}
