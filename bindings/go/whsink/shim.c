/*
 * shim.c - see shim.h. The Go exports (whsgCommit, whsgError) are in callbacks.go.
 */
#include "shim.h"

#include "_cgo_export.h"

/* The sink whose callback this thread is running (0: none); saved and restored, so a
 * callback that drives another sink is told apart. */
static _Thread_local uintptr_t current;

static void on_commit(const char *topic, int32_t partition, int64_t next_offset, int64_t rows,
                      int64_t dead_letters, void *opaque)
{
    uintptr_t prev = current;
    current = (uintptr_t)opaque;
    whsgCommit((char *)topic, partition, next_offset, rows, dead_letters, (uintptr_t)opaque);
    current = prev;
}

static void on_error(whs_err_t err, int retriable, const char *reason, void *opaque)
{
    uintptr_t prev = current;
    current = (uintptr_t)opaque;
    whsgError((int)err, retriable, (char *)reason, (uintptr_t)opaque);
    current = prev;
}

void whsg_conf_set_callbacks(whs_conf_t *conf, uintptr_t handle, int commits, int errors)
{
    if (commits)
        whs_conf_set_commit_cb(conf, on_commit, (void *)handle);
    if (errors)
        whs_conf_set_error_cb(conf, on_error, (void *)handle);
}

int whsg_in_callback(uintptr_t handle)
{
    return current != 0 && current == handle;
}
