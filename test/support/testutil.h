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

/*
 * On a crash or an abort (a failed assert, librdkafka's too), prints every thread's stack
 * (gdb when installed, else glibc's backtrace) and lets the process die. cmocka catches
 * SIGSEGV per test and goes on with threads of the failed test still running, which hides
 * where it happened: call this at the start of a test that runs threads.
 */
void tu_trace_crashes(void);

/* ---- helpers of the unit tests that run a client (added with test/unit/) ---------------- */

/* A log callback that discards everything: an unreachable broker makes librdkafka chatty. */
void tu_log_quiet(int level, const char *message, void *opaque);

/* Delivery outcomes counted by tu_dr_cb(); pass a zeroed tu_dr_t as the callback's opaque. */
typedef struct tu_dr {
    _Atomic int64_t outcome[4]; /* indexed by ue_outcome_t */
    _Atomic int64_t shutdown;   /* UE_OUTCOME_DROPPED with UE_ERR_SHUTDOWN */
    _Atomic int64_t queue_full; /* UE_OUTCOME_DROPPED with UE_ERR_QUEUE_FULL */
} tu_dr_t;

ue_delivery_cb_t tu_dr_cb;

/* Reads one counter of a tu_dr_t. */
int64_t tu_dr_get(tu_dr_t *dr, ue_outcome_t outcome);

/*
 * A client from "key=value" strings (NULL-terminated), with tu_log_quiet() and the delivery
 * callback @p cb (may be NULL); aborts the test when creation fails.
 */
ue_client_t *tu_client(const char *const *kv, ue_delivery_cb_t *cb, void *opaque);

/* Nothing listens on this address: events are accepted and never delivered. */
#define TU_NO_BROKER "kafka.bootstrap.servers=127.0.0.1:1"

#endif
