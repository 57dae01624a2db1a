/*
 * shim.c - see shim.h. The Go exports (uegDelivery, uegLog) are in callbacks.go.
 */
#include "shim.h"

#include "_cgo_export.h"

#include <string.h>

/* Offsets index buf only for the kinds whose key/val are strings (see shim.h). */
static ue_err_t apply(ue_event_t *ev, const char *buf, const ueg_op_t *op)
{
    switch (op->kind) {
    case UEG_USER_ID: return ue_event_set_user_id(ev, buf + op->val);
    case UEG_ANONYMOUS_ID: return ue_event_set_anonymous_id(ev, buf + op->val);
    case UEG_SESSION_ID: return ue_event_set_session_id(ev, buf + op->val);
    case UEG_TIMESTAMP_MS: return ue_event_set_timestamp_ms(ev, op->val);
    case UEG_EVENT_ID: return ue_event_set_event_id(ev, (const uint8_t *)buf + op->val);
    case UEG_PROP_STRING: return ue_event_prop_string(ev, buf + op->key, buf + op->val);
    case UEG_PROP_INT: return ue_event_prop_int(ev, buf + op->key, op->val);
    case UEG_PROP_DOUBLE: {
        double d;
        memcpy(&d, &op->val, sizeof(d));
        return ue_event_prop_double(ev, buf + op->key, d);
    }
    case UEG_PROP_BOOL: return ue_event_prop_bool(ev, buf + op->key, op->val != 0);
    case UEG_CONTEXT: return ue_event_set_context(ev, buf + op->key, buf + op->val);
    }
    return UE_ERR_INVALID_ARG;
}

ue_err_t ueg_track(ue_client_t *client, ue_event_t *ev, const char *buf, const ueg_op_t *ops,
                   size_t nops, int64_t *failed, uint8_t *id_out)
{
    ue_err_t rc = ue_event_reset(ev, buf);
    if (rc != UE_OK) {
        *failed = -1;
        return rc;
    }
    for (size_t i = 0; i < nops; i++) {
        rc = apply(ev, buf, &ops[i]);
        if (rc != UE_OK) {
            *failed = (int64_t)i;
            return rc;
        }
    }
    rc = ue_track(client, ev);
    if (rc != UE_OK) {
        *failed = (int64_t)nops;
        return rc;
    }
    return ue_event_get_event_id(ev, id_out);
}

static void on_delivery(const uint8_t *event_id, const char *type, ue_outcome_t outcome,
                        ue_err_t reason, const char *reason_str, void *opaque)
{
    uegDelivery((uint8_t *)event_id, (char *)type, (int)outcome, (int)reason, (char *)reason_str,
                (uintptr_t)opaque);
}

static void on_log(int level, const char *message, void *opaque)
{
    uegLog(level, (char *)message, (uintptr_t)opaque);
}

void ueg_conf_set_callbacks(ue_conf_t *conf, uintptr_t handle, int deliveries, int logs)
{
    if (deliveries)
        ue_conf_set_delivery_cb(conf, on_delivery, (void *)handle);
    if (logs)
        ue_conf_set_log_cb(conf, on_log, (void *)handle);
}

ue_event_t *ueg_event_new(void)
{
    return ue_event_new("event");
}
