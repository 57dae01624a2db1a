/*
 * userevents.h - the public API of libuserevents, the client SDK.
 *
 * Apps link libuserevents to record user events (page views, clicks, transactions) and get
 * them into Apache Kafka without losing one:
 *
 *   ue_conf_t *conf = ue_conf_new();
 *   ue_conf_set(conf, "kafka.bootstrap.servers", "127.0.0.1:9092", errstr, sizeof(errstr));
 *   ue_conf_set(conf, "spool.dir", "/var/lib/myapp/events", errstr, sizeof(errstr));
 *   ue_client_t *ue = ue_client_new(conf, errstr, sizeof(errstr));   // owns conf from here
 *
 *   ue_event_t *ev = ue_event_new("page_view");
 *   ue_event_set_user_id(ev, "user-42");
 *   ue_event_prop_string(ev, "path", "/pricing");
 *   ue_track(ue, ev);           // never blocks on I/O; ev may be reused or destroyed now
 *   ue_event_destroy(ev);
 *
 *   ue_client_destroy(ue);      // flushes with a deadline; the rest stays in the spool
 *
 * If a function does not appear in this file, it is not a published API.
 *
 * Threads: a ue_client_t may be used from any number of threads at once. A ue_conf_t and a
 * ue_event_t belong to one thread at a time. The library owns one background thread per
 * client; user callbacks run on it (see each setter).
 *
 * Strings are NUL-terminated UTF-8 unless a length is given. Timeouts are milliseconds;
 * -1 means wait forever where a function says so.
 */
#ifndef USEREVENTS_H
#define USEREVENTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(UE_STATIC_ONLY)
#define UE_API __attribute__((visibility("default")))
#else
#define UE_API
#endif

/** Library version as 0xMMmmrrxx (major, minor, revision, pre-release 0xff = final). */
#define UE_VERSION 0x000100ff

/** Version of the event schema (proto/userevents.proto) this library writes. */
#define UE_SCHEMA_VERSION 1

/**
 * @brief Returns the library version in the same form as UE_VERSION.
 * @remark Compare with UE_VERSION to detect a header/library mismatch at run time.
 */
UE_API int ue_version(void);

/** @brief Returns the library version as a string, e.g. "0.1.0". Static storage. */
UE_API const char *ue_version_str(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/**
 * Error codes. 0 is success. Negative codes are local failures (in this process), positive
 * codes come from the remote side (broker, collector). New codes are only ever appended;
 * none is renumbered or removed.
 */
typedef enum ue_err {
    UE_OK = 0,
    UE_ERR_INVALID_ARG = -1,      /**< a NULL or malformed argument */
    UE_ERR_CONF_UNKNOWN = -2,     /**< unknown configuration key */
    UE_ERR_CONF_INVALID = -3,     /**< configuration value out of range or malformed */
    UE_ERR_NOMEM = -4,            /**< out of memory */
    UE_ERR_QUEUE_FULL = -5,       /**< in-memory queue full; the event was dropped */
    UE_ERR_TIMED_OUT = -6,        /**< a deadline passed before the work was done */
    UE_ERR_SPOOL = -7,            /**< the disk spool could not be read or written */
    UE_ERR_SPOOL_LOCKED = -8,     /**< another live process uses the same spool directory */
    UE_ERR_TRANSPORT = -9,        /**< the transport (librdkafka, libcurl) could not be created */
    UE_ERR_FORKED = -10,          /**< the client was created in a parent process */
    UE_ERR_RECURSIVE_CALL = -11,  /**< called from inside one of this client's callbacks */
    UE_ERR_ENCODE = -12,          /**< the event could not be encoded */
    UE_ERR_TOO_LARGE = -13,       /**< the encoded event exceeds event.max.bytes */
    UE_ERR_SHUTDOWN = -14,        /**< the client is shutting down */
    UE_ERR_SPOOL_FULL = -15,      /**< the spool reached spool.max.bytes; oldest dropped */
    UE_ERR_SPOOL_EXPIRED = -16,   /**< the event was older than spool.max.age.ms */
    UE_ERR_TYPE_RESERVED = -17,   /**< the event type would name one of the pipeline's own
                                       topics: enriched, dead_letter, aggregates, alerts,
                                       changelog, profiles (any case, '.' for '_') */
    UE_ERR_BROKER = 1,            /**< the broker refused the event; see the reason text */
    UE_ERR_COLLECTOR = 2,         /**< transport=http: the collector refused the event (400,
                                       401, 403, an event alone over its size limit) or, for a
                                       retry, could not take it now (429, 5xx, unreachable);
                                       the reason text says which (HTTP status first) */
} ue_err_t;

/** @brief A short English description of @p err. Static storage, never NULL. */
UE_API const char *ue_err2str(ue_err_t err);

/** @brief The symbolic name of @p err, e.g. "UE_ERR_QUEUE_FULL". Static storage. */
UE_API const char *ue_err2name(ue_err_t err);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct ue_conf_s ue_conf_t;     /* Private type: layout may change between versions. */
typedef struct ue_client_s ue_client_t; /* Private type. */
typedef struct ue_event_s ue_event_t;   /* Private type. */

/** Result of ue_conf_set(). */
typedef enum ue_conf_res {
    UE_CONF_OK = 0,
    UE_CONF_INVALID = -1, /**< known key, bad value */
    UE_CONF_UNKNOWN = -2, /**< unknown key */
} ue_conf_res_t;

/** @brief Creates a configuration holding every default. Free with ue_conf_destroy(). */
UE_API ue_conf_t *ue_conf_new(void);

/** @brief Frees @p conf. NULL is a no-op. Do not call after ue_client_new() took it. */
UE_API void ue_conf_destroy(ue_conf_t *conf);

/** @brief Returns a deep copy of @p conf, or NULL when out of memory. */
UE_API ue_conf_t *ue_conf_dup(const ue_conf_t *conf);

/**
 * @brief Sets configuration property @p name to @p value, validating it now.
 *
 * Keys starting with "kafka." are passed to librdkafka without the prefix and validated by it
 * (e.g. "kafka.bootstrap.servers"). Every other key is documented in CONFIGURATION.md
 * (generated from the same table as ue_conf_dump()).
 *
 * @param errstr receives a human-readable reason on failure (may be NULL).
 * @returns UE_CONF_OK, UE_CONF_INVALID (bad value) or UE_CONF_UNKNOWN (no such key).
 */
UE_API ue_conf_res_t ue_conf_set(ue_conf_t *conf, const char *name, const char *value,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Copies the current value of @p name into @p dest (NUL-terminated).
 * @param dest_size in: size of @p dest; out: bytes needed including the NUL. Pass dest NULL to
 *        ask for the size only.
 * @returns UE_CONF_OK or UE_CONF_UNKNOWN.
 */
UE_API ue_conf_res_t ue_conf_get(const ue_conf_t *conf, const char *name, char *dest,
                                 size_t *dest_size);

/**
 * @brief Lists every property and its current value as name, value, name, value, ...
 * @param cntp receives the number of array entries (twice the number of properties).
 * @returns an array freed with ue_conf_dump_free(). "kafka.*" values that look secret
 *          (passwords, keys, tokens) are masked.
 */
UE_API const char **ue_conf_dump(const ue_conf_t *conf, size_t *cntp);

/** @brief Frees what ue_conf_dump() returned. */
UE_API void ue_conf_dump_free(const char **arr, size_t cnt);

/** Delivery outcome of one event, reported to the delivery callback. */
typedef enum ue_outcome {
    UE_OUTCOME_DELIVERED = 0,      /**< acknowledged by Kafka (acks=all), or with
                                        transport=http accepted by the collector (2xx) */
    UE_OUTCOME_FAILED_RETRY = 1,   /**< a send failed; the event will be sent again */
    UE_OUTCOME_FAILED = 2,         /**< failed permanently (e.g. too large); not retried */
    UE_OUTCOME_DROPPED = 3,        /**< dropped by a local policy (queue full, spool cap) */
} ue_outcome_t;

/**
 * Delivery callback: called once per outcome of each event, on the client's background
 * thread (never from ue_track()). Keep it short: it delays delivery of other events.
 *
 * @param event_id the 16-byte UUIDv7 of the event (valid during the call only).
 * @param type the event type (valid during the call only).
 * @param outcome what happened.
 * @param reason UE_OK when delivered, else the error; @p reason_str says more (may be "").
 * @param opaque the pointer given to ue_conf_set_delivery_cb().
 *
 * @remark Calling ue_client_destroy() or ue_flush() from inside returns
 *         UE_ERR_RECURSIVE_CALL. ue_track() from inside is allowed.
 * @remark UE_OUTCOME_DROPPED for a queue-full drop is reported from the background thread
 *         too, shortly after ue_track() returned UE_ERR_QUEUE_FULL (drop_newest) or evicted
 *         an older event (drop_oldest).
 */
typedef void(ue_delivery_cb_t)(const uint8_t *event_id, const char *type, ue_outcome_t outcome,
                               ue_err_t reason, const char *reason_str, void *opaque);

/** @brief Sets the delivery callback (NULL to unset) and its opaque pointer. */
UE_API void ue_conf_set_delivery_cb(ue_conf_t *conf, ue_delivery_cb_t *cb, void *opaque);

/**
 * Log callback. @p level is syslog-like: 3 error, 4 warning, 6 info, 7 debug. Runs on
 * whichever thread logs (the background thread or a caller of the API). Default: stderr.
 */
typedef void(ue_log_cb_t)(int level, const char *message, void *opaque);

/** @brief Sets the log callback (NULL restores the default) and its opaque pointer. */
UE_API void ue_conf_set_log_cb(ue_conf_t *conf, ue_log_cb_t *cb, void *opaque);

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/**
 * @brief Creates a client: validates @p conf, opens the spool (if "spool.dir" is set) and
 *        starts the background thread, which first replays what an earlier process left.
 *
 * The spool directory must be the user's alone: owned by the process's effective user and
 * writable by no group or other (else refused, errstr says which); its files are never
 * opened through a symbolic link.
 *
 * A successful call takes ownership of @p conf; on failure the caller still owns it.
 * @returns the client, or NULL with the reason in @p errstr.
 */
UE_API ue_client_t *ue_client_new(ue_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Flushes for up to "shutdown.timeout.ms", stops the background thread and frees the
 *        client. Events still unacknowledged stay in the spool for the next process (without
 *        a spool they are reported UE_OUTCOME_DROPPED with UE_ERR_SHUTDOWN). NULL is a no-op.
 *
 * @returns UE_OK, or UE_ERR_RECURSIVE_CALL from inside a callback (nothing is freed then).
 * @remark In a child process after fork(), frees only the memory it can free safely.
 */
UE_API ue_err_t ue_client_destroy(ue_client_t *client);

/**
 * @brief Tracks @p event: stamps its event id (UUIDv7) and timestamp (unless set), fills the
 *        user id from ue_identify() and the context from configuration where the event has
 *        none, encodes it and queues it. Never blocks on I/O; with queue.full.policy=block it
 *        may wait up to queue.block.timeout.ms for room.
 *
 * Ownership of @p event stays with the caller: it may be reused (ue_event_reset()) or
 * destroyed as soon as this returns.
 *
 * @returns UE_OK (queued), UE_ERR_QUEUE_FULL (dropped by policy, counted),
 *          UE_ERR_INVALID_ARG (e.g. a type that is not a valid topic name),
 *          UE_ERR_TOO_LARGE, UE_ERR_SHUTDOWN, UE_ERR_FORKED.
 */
UE_API ue_err_t ue_track(ue_client_t *client, ue_event_t *event);

/**
 * @brief Waits until every event tracked so far is acknowledged, failed permanently or
 *        dropped, or until @p timeout_ms passes (-1: no limit). Like rd_kafka_flush(), events
 *        other threads track meanwhile are waited for too, so under a steady stream from other
 *        threads it may run until the timeout.
 * @returns UE_OK or UE_ERR_TIMED_OUT.
 */
UE_API ue_err_t ue_flush(ue_client_t *client, int timeout_ms);

/**
 * @brief Waits until every event tracked before the call is safe from a crash of this
 *        process: written to the spool (see "spool.fsync" for power loss), or already
 *        acknowledged, failed permanently or dropped. Delivery goes on in the background.
 *
 * Meant for gateways that must not answer their own client before its events are safe (the
 * collector answers 200 after this returns): it is usually done within one turn of the
 * background thread, and does not wait for the broker. Unlike ue_flush(), events tracked by
 * other threads after the call are not waited for. Without "spool.dir" it is ue_flush().
 *
 * When a spool write fails (disk full or gone) its events are sent on without the spool
 * (counted in UE_STAT_SPOOL_WRITE_FAILED), and this waits for their acknowledgement instead:
 * for every such event not yet resolved, whichever thread tracked it.
 *
 * @returns UE_OK; UE_ERR_TIMED_OUT; UE_ERR_SPOOL when at the timeout only events of a failed
 *          spool write are left unacknowledged (they are still sent, but are not crash-safe).
 * @remark Calling it from inside a callback returns UE_ERR_RECURSIVE_CALL.
 */
UE_API ue_err_t ue_flush_spooled(ue_client_t *client, int timeout_ms);

/**
 * @brief Sets the user id stamped on later events that carry none (NULL or "" clears it).
 *        The Kafka key is the user id, else the anonymous id, so one user's events keep their
 *        order.
 */
UE_API ue_err_t ue_identify(ue_client_t *client, const char *user_id);

/**
 * @brief Returns the anonymous id of this client: "anonymous.id"; else the one kept in
 *        "spool.dir" (made at the first ue_client_new() on that directory, the same after a
 *        restart); else a new random one. Valid until ue_client_destroy().
 */
UE_API const char *ue_anonymous_id(ue_client_t *client);

/** Counters and gauges of a client. */
typedef enum ue_stat {
    UE_STAT_TRACKED = 0,          /**< events accepted by ue_track() */
    UE_STAT_QUEUED = 1,           /**< gauge: events in the in-memory queue now */
    UE_STAT_QUEUED_BYTES = 2,     /**< gauge: bytes in the in-memory queue now */
    UE_STAT_SPOOLED = 3,          /**< gauge: events in the spool not yet acknowledged */
    UE_STAT_SPOOL_BYTES = 4,      /**< gauge: bytes of spool segment files on disk */
    UE_STAT_SENT = 5,             /**< events handed to the transport (retries included) */
    UE_STAT_DELIVERED = 6,        /**< events acknowledged */
    UE_STAT_RETRIES = 7,          /**< sends that failed and will be retried */
    UE_STAT_FAILED = 8,           /**< events failed permanently */
    UE_STAT_DROPPED_QUEUE_FULL = 9,   /**< dropped: in-memory queue full */
    UE_STAT_DROPPED_SPOOL_FULL = 10,  /**< dropped: spool over spool.max.bytes */
    UE_STAT_DROPPED_SPOOL_AGE = 11,   /**< dropped: older than spool.max.age.ms */
    UE_STAT_DROPPED_SHUTDOWN = 12,    /**< dropped: unsent at destroy with no spool */
    UE_STAT_BYTES_SENT = 13,      /**< payload bytes handed to the transport */
    UE_STAT_REPLAYED = 14,        /**< events read back from the spool of an earlier process */
    UE_STAT_SPOOL_CORRUPT = 15,   /**< corrupt or torn spool frames skipped */
    UE_STAT_SPOOL_WRITE_FAILED = 16, /**< events whose spool write failed (disk full or gone):
                                          sent on without the crash guarantee */
    UE_STAT__CNT                  /**< number of statistics; grows in later versions */
} ue_stat_t;

/** @brief Returns one statistic, or -1 for an unknown @p which. Thread-safe and lock-free. */
UE_API int64_t ue_stat(ue_client_t *client, ue_stat_t which);

/** @brief The JSON key of @p which, e.g. "dropped_queue_full". NULL if unknown. */
UE_API const char *ue_stat_name(ue_stat_t which);

/**
 * @brief Writes every statistic as one JSON object into @p buf.
 * @returns the length the full JSON needs (excluding the NUL), like snprintf(); the output is
 *          truncated when that is >= @p size.
 */
UE_API size_t ue_stats_json(ue_client_t *client, char *buf, size_t size);

/**
 * @brief Copies the latest librdkafka statistics of the client's producer (a JSON object,
 *        see librdkafka's STATISTICS.md: broker connection states, round-trip times, errors,
 *        queue sizes) into @p buf, NUL-terminated. For a metrics endpoint's broker health.
 *
 * The producer emits them every "kafka.statistics.interval.ms", which is 0 (off) unless set:
 * an app rarely wants them, a gateway or daemon does. They are served by the client's
 * background thread.
 *
 * @returns the length of the whole JSON (excluding the NUL), like snprintf(); the copy is
 *          truncated when that is >= @p size (call again with a larger buffer: the document
 *          may have changed meanwhile). 0 when there are none yet, statistics are off, the
 *          transport is not Kafka, or in a child process after fork().
 * @remark Any thread, until ue_client_destroy().
 */
UE_API size_t ue_kafka_stats_json(ue_client_t *client, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/**
 * @brief Creates an event of @p type ([A-Za-z0-9._-], 1..200 characters; it becomes part of a
 *        topic name). Returns NULL for an invalid type, a reserved one (UE_ERR_TYPE_RESERVED:
 *        the pipeline's own topics, which clients may not write), or when out of memory.
 */
UE_API ue_event_t *ue_event_new(const char *type);

/** @brief Frees @p event. NULL is a no-op. */
UE_API void ue_event_destroy(ue_event_t *event);

/**
 * @brief Clears every field and sets a new @p type, keeping the memory for reuse (the cheap
 *        way to track many events from one thread).
 * @returns UE_OK; UE_ERR_INVALID_ARG for an invalid type, UE_ERR_TYPE_RESERVED for a reserved
 *          one (the event is left as it was); UE_ERR_NOMEM.
 */
UE_API ue_err_t ue_event_reset(ue_event_t *event, const char *type);

/*
 * Every string an event carries must be valid UTF-8: the setters below refuse other bytes
 * with UE_ERR_INVALID_ARG (consumers of the Protobuf schema reject them).
 */

/** @brief Sets the user id (copied). */
UE_API ue_err_t ue_event_set_user_id(ue_event_t *event, const char *user_id);

/** @brief Sets the anonymous id (copied); the default is the client's. */
UE_API ue_err_t ue_event_set_anonymous_id(ue_event_t *event, const char *anonymous_id);

/** @brief Sets the session id (copied). */
UE_API ue_err_t ue_event_set_session_id(ue_event_t *event, const char *session_id);

/** @brief Sets the client timestamp (Unix ms). Default: the time of ue_track(). */
UE_API ue_err_t ue_event_set_timestamp_ms(ue_event_t *event, int64_t timestamp_ms);

/**
 * @brief Sets the event id (16 bytes), for a caller that forwards events it did not create
 *        (a gateway). Default: a new UUIDv7 stamped by ue_track().
 */
UE_API ue_err_t ue_event_set_event_id(ue_event_t *event, const uint8_t event_id[16]);

/**
 * @brief Copies the event id into @p out: the one given to ue_event_set_event_id(), else the
 *        one the last ue_track() stamped. @returns UE_ERR_INVALID_ARG when there is none yet.
 */
UE_API ue_err_t ue_event_get_event_id(const ue_event_t *event, uint8_t out[16]);

/** @brief Sets the server receive time (Unix ms), for gateways. Default: unset. */
UE_API ue_err_t ue_event_set_received_at_ms(ue_event_t *event, int64_t received_at_ms);

/** @brief Adds a string property (key and value copied). A repeated key: last one wins. */
UE_API ue_err_t ue_event_prop_string(ue_event_t *event, const char *key, const char *value);

/** @brief Adds an integer property. */
UE_API ue_err_t ue_event_prop_int(ue_event_t *event, const char *key, int64_t value);

/** @brief Adds a floating-point property (NaN and infinities are rejected). */
UE_API ue_err_t ue_event_prop_double(ue_event_t *event, const char *key, double value);

/** @brief Adds a boolean property (0 false, otherwise true). */
UE_API ue_err_t ue_event_prop_bool(ue_event_t *event, const char *key, int value);

/**
 * @brief Sets one context field by name: "app.name", "app.version", "app.build",
 *        "device.model", "device.manufacturer", "os.name", "os.version", "locale",
 *        "timezone", "screen.width", "screen.height", "network", "ip", "user_agent".
 *        The same names, prefixed "context.", are configuration keys that set the default for
 *        every event of a client.
 * @returns UE_ERR_INVALID_ARG for an unknown field or a non-numeric screen size.
 */
UE_API ue_err_t ue_event_set_context(ue_event_t *event, const char *field, const char *value);

/**
 * @brief Formats a 16-byte event id as the canonical 36-character UUID string.
 * @param out at least 37 bytes.
 */
UE_API void ue_event_id_format(const uint8_t event_id[16], char out[37]);

#ifdef __cplusplus
}
#endif
#endif /* USEREVENTS_H */
