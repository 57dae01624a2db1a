/*
 * uc_log.c - formats a log line and hands it to the callback or to stderr.
 */
#include "uc_log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *level_name(int level)
{
    switch (level) {
    case UC_LOG_ERR: return "ERROR";
    case UC_LOG_WARNING: return "WARN";
    case UC_LOG_NOTICE: return "NOTICE";
    case UC_LOG_INFO: return "INFO";
    default: return "DEBUG";
    }
}

void uc__log(const uc__logger_t *lg, int level, const char *fmt, ...)
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
