/*
 * testutil.h - small helpers shared by the unit and integration tests.
 */
#ifndef UE_TESTUTIL_H
#define UE_TESTUTIL_H

#include "userevents.h"

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
char *tu_tempdir(const char *prefix);

/* Removes @p path and everything below it. */
void tu_rmrf(const char *path);

/* A configuration from "key=value" strings (NULL-terminated); aborts the test on a bad one. */
ue_conf_t *tu_conf(const char *const *kv);

/* Waits until @p cond(@p arg) is true or @p timeout_ms passes; returns the last result. */
int tu_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms);

#endif
