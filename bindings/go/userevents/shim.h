/*
 * shim.h - the few C helpers of the Go binding. They only sequence public userevents.h calls
 * so that one event costs one cgo call instead of one per field; no behaviour of their own.
 */
#ifndef UEG_SHIM_H
#define UEG_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <userevents.h>

/* One field of an event to set: what, and where its strings are in the caller's buffer. */
enum {
    UEG_USER_ID = 1,
    UEG_ANONYMOUS_ID,
    UEG_SESSION_ID,
    UEG_TIMESTAMP_MS, /* val: the value */
    UEG_EVENT_ID,     /* val: offset of 16 bytes */
    UEG_PROP_STRING,  /* key: offset of the key, val: offset of the value */
    UEG_PROP_INT,     /* val: the value */
    UEG_PROP_DOUBLE,  /* val: the bits of the double */
    UEG_PROP_BOOL,    /* val: 0 or 1 */
    UEG_CONTEXT,      /* key: offset of the field name, val: offset of the value */
};

typedef struct ueg_op {
    int64_t kind;
    int64_t key;
    int64_t val;
} ueg_op_t;

/*
 * Resets @p ev to the type at buf[0], applies @p ops, tracks it and copies the stamped event
 * id to @p id_out. On failure *failed is the op that failed: -1 the type, nops ue_track().
 */
ue_err_t ueg_track(ue_client_t *client, ue_event_t *ev, const char *buf, const ueg_op_t *ops,
                   size_t nops, int64_t *failed, uint8_t *id_out);

/* Sets the delivery and/or log callbacks to the Go exports, with a cgo.Handle as opaque. */
void ueg_conf_set_callbacks(ue_conf_t *conf, uintptr_t handle, int deliveries, int logs);

/* A reusable event (ue_event_new() needs some valid type; ueg_track() resets it). */
ue_event_t *ueg_event_new(void);

#endif
