/*
 * shim.h - the C side of the whsink Go binding's callbacks: trampolines from whsink.h's
 * callback types to the Go exports (callbacks.go), with the sink's cgo.Handle as opaque.
 */
#ifndef WHSG_SHIM_H
#define WHSG_SHIM_H

#include <stdint.h>
#include <whsink.h>

/* Sets the commit and/or error callbacks to the Go exports, @p handle as their opaque. */
void whsg_conf_set_callbacks(whs_conf_t *conf, uintptr_t handle, int commits, int errors);

/*
 * 1 when the calling thread is inside a callback of the sink of @p handle. The Go side asks
 * before taking its locks, which the callback's own driver call already holds: without this,
 * Close from a callback would deadlock instead of returning WHS_ERR_RECURSIVE_CALL.
 */
int whsg_in_callback(uintptr_t handle);

#endif
