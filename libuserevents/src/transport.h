/*
 * transport.h - how records leave the process. One small interface, so adding a transport
 * (Kafka: transport_kafka.c; HTTP batches to a collector: transport_http.c) is adding one
 * file.
 *
 * All calls come from the client's background thread, except stats_json (any thread).
 */
#ifndef UE_TRANSPORT_H
#define UE_TRANSPORT_H

#include "record.h"
#include "userevents.h"

#include <stddef.h>

typedef struct ue__transport ue__transport_t;

/*
 * The outcome of one record, reported from ops->poll(). Ownership of @p rec returns to the
 * owner. @p retriable: the record may be sent again (timeouts, broker down, purge at shutdown).
 */
typedef void(ue__result_fn)(void *owner, ue__record_t *rec, ue_err_t err, const char *reason,
                            int retriable);

/*
 * Optional (may be NULL): a send of @p rec failed and the transport keeps it to send again
 * after a backoff, so the owner counts a retry. Ownership does not change. Transports that
 * retry themselves (to keep records in order) report through this, not through on_result.
 */
typedef void(ue__retry_fn)(void *owner, const ue__record_t *rec, ue_err_t err,
                           const char *reason);

enum { UE__SEND_OK = 0, UE__SEND_FULL = 1, UE__SEND_FAILED = -1 };

typedef struct ue__transport_ops {
    /*
     * Takes @p rec for sending. UE__SEND_OK: the transport owns it until its result.
     * UE__SEND_FULL: no room now, poll and try again; UE__SEND_FAILED: will never be sent
     * (reason in errstr). In both failure cases the caller still owns @p rec.
     */
    int (*send)(ue__transport_t *t, ue__record_t *rec, char *errstr, size_t errstr_size);
    /* Serves network events and reports results for up to @p timeout_ms. */
    void (*poll)(ue__transport_t *t, int timeout_ms);
    /* Records handed over and not yet reported. */
    size_t (*in_flight)(ue__transport_t *t);
    /* Reports everything in flight now, as retriable UE_ERR_SHUTDOWN (unless done meanwhile). */
    void (*purge)(ue__transport_t *t, int timeout_ms);
    void (*destroy)(ue__transport_t *t);
    /*
     * Optional (NULL: none): copies the transport's latest statistics document (JSON) into
     * @p buf like ue_kafka_stats_json(). The one op that may be called from any thread.
     */
    size_t (*stats_json)(ue__transport_t *t, char *buf, size_t size);
} ue__transport_ops_t;

struct ue__transport {
    const ue__transport_ops_t *ops;
    ue__result_fn *on_result;
    ue__retry_fn *on_retry; /* may be NULL */
    void *owner;
};

#endif
