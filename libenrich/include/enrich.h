/*
 * enrich.h - the public API of libenrich, an embeddable exactly-once stream stage.
 *
 * A processor consumes the raw event topics (events.<type>, written by libuserevents), runs a
 * configured chain of stages on each event (dedup, user profile join, geo-IP, sessions, user
 * agent, clock-skew correction, and your own), runs the transforms (tumbling-window aggregates,
 * rate anomalies), and produces the enriched topic, the aggregates, the alerts and the dead
 * letters. Outputs, stage state (to a compacted changelog topic) and the consumed offsets
 * commit in one Kafka transaction: after a crash the processor continues exactly where the
 * last transaction left it, with the same sessions, dedup window and open windows.
 *
 *   enr_conf_t *conf = enr_conf_new();
 *   enr_conf_set(conf, "kafka.bootstrap.servers", "127.0.0.1:9092", errstr, sizeof(errstr));
 *   enr_conf_set(conf, "geoip.database", "/var/lib/GeoLite2-City.mmdb", errstr, sizeof(errstr));
 *   enr_processor_t *p = enr_processor_new(conf, errstr, sizeof(errstr));  // owns conf
 *   while (!stop)
 *       enr_poll(p, 100);               // or enr_run(p) on a thread, enr_stop(p) to end it
 *   enr_processor_destroy(p, 10000);    // commits what is done, within the deadline
 *
 * If a function does not appear in this file, it is not a published API.
 *
 * Threads: a processor is driven by one thread at a time (enr_poll() or enr_run());
 * enr_stop(), enr_stat(), enr_kafka_stats_json() and enr_under_replicated_partitions() may be
 * called from any thread. Stage and transaction callbacks run on the thread that drives the
 * processor. A pipeline (enr_pipeline_*) belongs to one thread.
 */
#ifndef ENRICH_H
#define ENRICH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(ENR_STATIC_ONLY)
#define ENR_API __attribute__((visibility("default")))
#else
#define ENR_API
#endif

/** Library version as 0xMMmmrrxx, like UE_VERSION. */
#define ENR_VERSION 0x000100ff

/** Version of the EnrichedEvent this library writes (EnrichedEvent.enrich_version). */
#define ENR_OUTPUT_VERSION 1

/** @brief The version of the library linked at run time, as ENR_VERSION. */
ENR_API int enr_version(void);
/** @brief The same as text ("0.1.0"): a static string. */
ENR_API const char *enr_version_str(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** Error codes: 0 OK, negative local, positive remote. Only ever appended. */
typedef enum enr_err {
    ENR_OK = 0,
    ENR_ERR_INVALID_ARG = -1,     /**< a NULL or malformed argument */
    ENR_ERR_CONF_UNKNOWN = -2,    /**< unknown configuration key */
    ENR_ERR_CONF_INVALID = -3,    /**< bad configuration value */
    ENR_ERR_NOMEM = -4,           /**< out of memory */
    ENR_ERR_STAGE = -5,           /**< a stage failed to start or is unknown */
    ENR_ERR_DECODE = -6,          /**< an input record is not a valid event */
    ENR_ERR_SCHEMA = -7,          /**< the event's schema version is newer than we read */
    ENR_ERR_TOO_LARGE = -8,       /**< an input record exceeds input.max.bytes */
    ENR_ERR_TIMED_OUT = -9,       /**< a deadline passed */
    ENR_ERR_TRANSPORT = -10,      /**< Kafka clients could not be created */
    ENR_ERR_RECURSIVE_CALL = -11, /**< called from inside a stage callback */
    ENR_ERR_STOPPED = -12,        /**< the processor was stopped */
    ENR_ERR_FENCED = -13,         /**< another instance took over this transactional id */
    ENR_ERR_KAFKA = 1,            /**< a Kafka error; see the message */
    ENR_ERR_KAFKA_FATAL = -14,    /**< a Kafka error the processor cannot go on after, other
                                       than fencing; enr_processor_last_error() says which */
    ENR_ERR_SELF_FENCED = -15,    /**< after its group session timed out, the group fenced
                                       this processor's own rejoin (librdkafka #3437): no other
                                       instance runs; destroy it and create a new one */
} enr_err_t;

/** @brief A sentence for @p err: a static string, also for a code this version does not know. */
ENR_API const char *enr_err2str(enr_err_t err);
/** @brief The constant's name ("ENR_ERR_FENCED"), "ENR_ERR_UNKNOWN" for an unknown code. */
ENR_API const char *enr_err2name(enr_err_t err);

/* ------------------------------------------------------------------------------------------ */
/* Events as stages see them                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct enr_event_s enr_event_t; /**< the event being processed; borrowed in callbacks */

/** @brief The event type ("page_view"). Valid during the callback. */
ENR_API const char *enr_event_type(const enr_event_t *ev);
/** @brief The user id, or "" when the event has none. */
ENR_API const char *enr_event_user_id(const enr_event_t *ev);
/** @brief The anonymous id, or "". */
ENR_API const char *enr_event_anonymous_id(const enr_event_t *ev);
/** @brief The session id stamped by the session stage, or "" before it ran. */
ENR_API const char *enr_event_session_id(const enr_event_t *ev);
/** @brief Copies the 16-byte event id into @p out. */
ENR_API void enr_event_id(const enr_event_t *ev, uint8_t out[16]);
/** @brief Event time: the clock-corrected timestamp (Unix ms) once the clock stage ran. Never
 *         more than time.max.future.ms after the receive time (later events are dead-lettered
 *         before any stage sees them). */
ENR_API int64_t enr_event_time_ms(const enr_event_t *ev);
/** @brief A context field by name ("ip", "user_agent", "app.name", ...) or "". */
ENR_API const char *enr_event_context(const enr_event_t *ev, const char *field);

/** @brief Reads a property. @returns ENR_OK, or ENR_ERR_INVALID_ARG if absent/other type. */
ENR_API enr_err_t enr_event_get_string(const enr_event_t *ev, const char *key, const char **out);
/** @brief Reads an integer property, as enr_event_get_string(). */
ENR_API enr_err_t enr_event_get_int(const enr_event_t *ev, const char *key, int64_t *out);
/** @brief Reads a floating-point property, as enr_event_get_string(). */
ENR_API enr_err_t enr_event_get_double(const enr_event_t *ev, const char *key, double *out);

/** @brief Sets (adds or replaces) a property of the event. Strings are copied. */
ENR_API enr_err_t enr_event_set_string(enr_event_t *ev, const char *key, const char *value);
/** @brief Sets an integer property, as enr_event_set_string(). */
ENR_API enr_err_t enr_event_set_int(enr_event_t *ev, const char *key, int64_t value);
/** @brief Sets a floating-point property, as enr_event_set_string(). */
ENR_API enr_err_t enr_event_set_double(enr_event_t *ev, const char *key, double value);

/* ------------------------------------------------------------------------------------------ */
/* Stages                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct enr_stage_s enr_stage_t; /**< a stage definition: a name and its callbacks */
typedef struct enr_ctx_s enr_ctx_t;     /**< what a callback may do besides its return value */

/** What a stage decides for one event. */
typedef enum enr_verdict {
    ENR_KEEP = 0, /**< go on to the next stage */
    ENR_DROP = 1, /**< drop the event silently (e.g. a duplicate); counted */
    ENR_FAIL = 2, /**< send it to the dead-letter topic with enr_ctx_fail()'s reason */
} enr_verdict_t;

/** Creates the stage's state. @returns 0, or non-zero with a reason in @p errstr. */
typedef int(enr_init_fn)(void **state, void *opaque, char *errstr, size_t errstr_size);
/** Processes one event. */
typedef enr_verdict_t(enr_process_fn)(void *state, enr_event_t *ev, enr_ctx_t *ctx,
                                      void *opaque);
/**
 * Called before each commit: write the state changed since the last call with
 * enr_ctx_changelog_put() and emit records that are due (enr_ctx_emit()).
 */
typedef void(enr_flush_fn)(void *state, enr_ctx_t *ctx, void *opaque);
/** Applies one changelog record (value NULL: the key was deleted). Called at start. */
typedef int(enr_restore_fn)(void *state, const void *key, size_t key_len, const void *value,
                            size_t value_len, void *opaque);
/** Frees the state. */
typedef void(enr_destroy_fn)(void *state, void *opaque);

/**
 * @brief Defines a stage named @p name ([a-z0-9_], at most 32) that runs @p process.
 *        The built-in stages use exactly this interface.
 * @returns the stage, owned by the caller until enr_conf_add_stage().
 */
ENR_API enr_stage_t *enr_stage_new(const char *name, enr_process_fn *process, void *opaque);
/** @brief Sets the stage's optional callbacks, each before enr_conf_add_stage(); NULL
 *         removes one. Without init the state is NULL; without restore the stage's changelog
 *         entries are not read back. */
ENR_API void enr_stage_set_init(enr_stage_t *stage, enr_init_fn *init);
/** @copydoc enr_stage_set_init */
ENR_API void enr_stage_set_flush(enr_stage_t *stage, enr_flush_fn *flush);
/** @copydoc enr_stage_set_init */
ENR_API void enr_stage_set_restore(enr_stage_t *stage, enr_restore_fn *restore);
/** @copydoc enr_stage_set_init */
ENR_API void enr_stage_set_destroy(enr_stage_t *stage, enr_destroy_fn *destroy);
/** @brief Frees a stage not handed to a conf. NULL is a no-op. */
ENR_API void enr_stage_destroy(enr_stage_t *stage);

/**
 * @brief Emits an extra record in the current transaction (e.g. an alert).
 * @returns ENR_OK or ENR_ERR_INVALID_ARG.
 */
ENR_API enr_err_t enr_ctx_emit(enr_ctx_t *ctx, const char *topic, const void *key,
                               size_t key_len, const void *value, size_t value_len);

/** @brief Writes a changelog entry of this stage (value NULL: delete the key). */
ENR_API enr_err_t enr_ctx_changelog_put(enr_ctx_t *ctx, const void *key, size_t key_len,
                                        const void *value, size_t value_len);

/** @brief Sets the reason reported with ENR_FAIL (copied). */
ENR_API void enr_ctx_fail(enr_ctx_t *ctx, const char *reason);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct enr_conf_s enr_conf_t;
typedef enum enr_conf_res {
    ENR_CONF_OK = 0,
    ENR_CONF_INVALID = -1,
    ENR_CONF_UNKNOWN = -2,
} enr_conf_res_t;

/** @brief A configuration with every default. @returns NULL when out of memory. */
ENR_API enr_conf_t *enr_conf_new(void);
/** @brief A copy of @p conf, custom stages and callbacks included (the stages' opaque
 *         pointers are shared). @returns NULL for NULL or when out of memory. */
ENR_API enr_conf_t *enr_conf_dup(const enr_conf_t *conf);
/** @brief Frees a configuration no processor took (enr_processor_new() takes it, also when it
 *         fails). NULL is a no-op. */
ENR_API void enr_conf_destroy(enr_conf_t *conf);

/**
 * @brief Sets a property, validated now. "kafka.*" keys go to both the consumer and the
 *        producer; "kafka.consumer.*" and "kafka.producer.*" to one of them. Every other key
 *        is in CONFIGURATION.md. The order of stages is "stages" (comma-separated names of
 *        built-in or added stages).
 */
ENR_API enr_conf_res_t enr_conf_set(enr_conf_t *conf, const char *name, const char *value,
                                    char *errstr, size_t errstr_size);
/**
 * @brief Reads a property as text into @p dest (NULL: only the size), as rd_kafka_conf_get():
 *        *@p dest_size is set to the size needed, terminating NUL included; a smaller buffer
 *        gets the text cut. @returns ENR_CONF_OK, or ENR_CONF_UNKNOWN for an unknown key.
 */
ENR_API enr_conf_res_t enr_conf_get(const enr_conf_t *conf, const char *name, char *dest,
                                    size_t *dest_size);

/**
 * @brief Every property and its value, as name/value pairs: the settings of CONFIGURATION.md,
 *        then librdkafka's as "kafka.consumer.<name>" and "kafka.producer.<name>". Secrets
 *        (passwords, keys, tokens) read "[redacted]". *@p cntp is the number of strings.
 * @returns an array freed with enr_conf_dump_free(), or NULL (with *@p cntp 0).
 */
ENR_API const char **enr_conf_dump(const enr_conf_t *conf, size_t *cntp);
/** @brief Frees what enr_conf_dump() returned. */
ENR_API void enr_conf_dump_free(const char **arr, size_t cnt);

/**
 * @brief Adds a custom stage, which "stages" may then name. Takes ownership of @p stage,
 *        also on failure. @returns ENR_ERR_INVALID_ARG for a duplicate name.
 */
ENR_API enr_err_t enr_conf_add_stage(enr_conf_t *conf, enr_stage_t *stage);

/** Log callback: level 3 error .. 7 debug. Runs on the thread that logs. */
typedef void(enr_log_cb_t)(int level, const char *message, void *opaque);
/** @brief Sends the library's and librdkafka's log lines to @p cb (NULL: stderr, the default).
 *         Secrets never appear in them. */
ENR_API void enr_conf_set_log_cb(enr_conf_t *conf, enr_log_cb_t *cb, void *opaque);

/* ------------------------------------------------------------------------------------------ */
/* The pure pipeline: stages on one event, no Kafka                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct enr_pipeline_s enr_pipeline_t;

/**
 * @brief Builds the configured stages without any Kafka client, for tests and bindings.
 *        The profile stage starts empty: feed it with enr_pipeline_put_profile().
 *        Does not take @p conf. @returns NULL with @p errstr on failure.
 */
ENR_API enr_pipeline_t *enr_pipeline_new(const enr_conf_t *conf, char *errstr,
                                         size_t errstr_size);
/** @brief Frees the pipeline and its stages' state. NULL is a no-op. */
ENR_API void enr_pipeline_destroy(enr_pipeline_t *pipe);

/**
 * @brief Runs the stages on one encoded Event (proto/userevents.proto).
 * @param received_at_ms the receive time when the event carries none (Kafka timestamp).
 * @param out on ENR_KEEP: the encoded EnrichedEvent, freed with enr_free().
 * @param reason on ENR_FAIL or a decode error: why (may be NULL).
 * @returns the verdict; a record that does not decode is ENR_FAIL.
 */
ENR_API enr_verdict_t enr_pipeline_process(enr_pipeline_t *pipe, const void *event,
                                           size_t event_len, int64_t received_at_ms,
                                           void **out, size_t *out_len, char *reason,
                                           size_t reason_size);

/** @brief Feeds one encoded UserProfile (proto/enriched.proto) to the profile stage. */
ENR_API enr_err_t enr_pipeline_put_profile(enr_pipeline_t *pipe, const void *profile,
                                           size_t len);

/**
 * @brief Runs the stages' flush as before a commit, with @p watermark_ms as the newest event
 *        time: windows whose end + window.allowed.lateness.ms is at or before it close (INT64_MAX
 *        closes all; later events for them are then late), and each emitted record (aggregates,
 *        alerts) goes to @p cb.
 */
typedef void(enr_record_cb_t)(const char *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len, void *opaque);
ENR_API void enr_pipeline_flush(enr_pipeline_t *pipe, int64_t watermark_ms, enr_record_cb_t *cb,
                                void *opaque);

/** @brief Frees memory the library returned. */
ENR_API void enr_free(void *ptr);

/* ------------------------------------------------------------------------------------------ */
/* The processor: Kafka in, Kafka out, exactly once                                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct enr_processor_s enr_processor_t;

/**
 * @brief Creates the consumer (read_committed), the transactional producer, restores stage
 *        state from the changelog and joins the group. Takes @p conf on success.
 */
ENR_API enr_processor_t *enr_processor_new(enr_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Does one step: consumes what is available (waiting up to @p timeout_ms), processes
 *        it, and commits the transaction when it is due (txn.max.events / txn.max.ms).
 * @returns the number of input records processed, or a negative enr_err_t (ENR_ERR_STOPPED
 *          after enr_stop(); once the processor cannot go on: ENR_ERR_FENCED when another
 *          instance took over, ENR_ERR_KAFKA_FATAL for any other fatal error, every later call
 *          returning the same, with the reason in enr_processor_last_error()).
 */
ENR_API int enr_poll(enr_processor_t *p, int timeout_ms);

/** @brief Calls enr_poll() until enr_stop() or a fatal error; returns that error or ENR_OK. */
ENR_API enr_err_t enr_run(enr_processor_t *p);

/** @brief Asks enr_run() / enr_poll() to return. Any thread; async-signal-safe. */
ENR_API void enr_stop(enr_processor_t *p);

/**
 * @brief Why the processor stopped: the text of the error that made enr_poll() return
 *        ENR_ERR_FENCED or ENR_ERR_KAFKA_FATAL (librdkafka's error string, with the step that
 *        failed: "commit: Failed to end transaction: ...").
 * @returns a NUL-terminated string owned by the processor, valid until
 *          enr_processor_destroy() (the first fatal error is kept; it never changes after);
 *          "" while there is none (also after enr_stop(), and for a NULL @p p).
 * @remark On the thread that drives the processor, or on any thread once enr_poll() or
 *         enr_run() returned the error (the text is set before they return, never after).
 */
ENR_API const char *enr_processor_last_error(enr_processor_t *p);

/**
 * @brief Commits what was processed (within @p timeout_ms), leaves the group and frees the
 *        processor. Uncommitted work is aborted and will be redone by the next instance.
 *        Leaving the group takes what is left of the deadline, at least a second; a
 *        coordinator that does not answer by then is left to the session timeout (librdkafka
 *        may still wait for its answer, up to kafka.socket.timeout.ms, while it frees its
 *        clients). NULL is a no-op.
 */
ENR_API enr_err_t enr_processor_destroy(enr_processor_t *p, int timeout_ms);

/** Counters of a processor (also of a pipeline, where meaningful). */
typedef enum enr_stat {
    ENR_STAT_CONSUMED = 0,       /**< input records read */
    ENR_STAT_ENRICHED = 1,       /**< events written to the enriched topic */
    ENR_STAT_DROPPED = 2,        /**< events dropped by a stage (duplicates) */
    ENR_STAT_DEAD_LETTERS = 3,   /**< records sent to the dead-letter topic */
    ENR_STAT_AGGREGATES = 4,     /**< window aggregates emitted */
    ENR_STAT_ALERTS = 5,         /**< anomaly alerts emitted */
    ENR_STAT_TXN_COMMITS = 6,    /**< transactions committed */
    ENR_STAT_TXN_ABORTS = 7,     /**< transactions aborted (and redone) */
    ENR_STAT_PROFILES = 8,       /**< profiles in the local table */
    ENR_STAT_PROFILE_UPDATES = 9,/**< profile records applied */
    ENR_STAT_LATE_EVENTS = 10,   /**< events too late for their window */
    ENR_STAT_RESTORED = 11,      /**< changelog records restored (tasks taken, aborts) */
    ENR_STAT_REBALANCES = 12,    /**< rebalance callbacks (assignments and revocations) */
    ENR_STAT_REBALANCE_MS = 13,  /**< milliseconds spent in them (restores included) */
    ENR_STAT_TASKS = 14,         /**< tasks (input partition numbers) owned now */
    ENR_STAT_RESTORE_RECORDS = 15, /**< changelog records read to restore tasks */
    ENR_STAT_RESTORE_BYTES = 16, /**< their bytes (keys and values) */
    ENR_STAT_FUTURE_EVENTS = 17, /**< dead-lettered: time past received + time.max.future.ms */
    ENR_STAT__CNT
} enr_stat_t;

/** @brief One counter of a processor, from any thread. @returns -1 for NULL or an unknown one. */
ENR_API int64_t enr_stat(enr_processor_t *p, enr_stat_t which);
/** @brief One counter of a pipeline (its thread only). @returns -1 for NULL or an unknown one. */
ENR_API int64_t enr_pipeline_stat(enr_pipeline_t *pipe, enr_stat_t which);
/** @brief The counter's name in metrics ("txn_commits"): static; NULL for an unknown one. */
ENR_API const char *enr_stat_name(enr_stat_t which);

/**
 * @brief Writes every counter as one JSON object ({"consumed":12,...}) into @p buf.
 * @returns the length the whole JSON needs (excluding the NUL), like snprintf(); the output is
 *          truncated when that is >= @p size. Any thread.
 */
ENR_API size_t enr_stats_json(enr_processor_t *p, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* Monitoring: what a metrics endpoint needs besides the counters                             */
/* ------------------------------------------------------------------------------------------ */

/**
 * Transaction callback: one call per transaction of the processor once it has ended,
 * committed or not. Meant for latency and size histograms (a metrics endpoint, a log).
 *
 * @param result ENR_OK when the transaction committed; ENR_ERR_KAFKA when it was aborted
 *        (state and positions went back to the last commit, and its work will be redone);
 *        ENR_ERR_FENCED or ENR_ERR_KAFKA_FATAL when the processor cannot go on (enr_poll() returns
 *        the same error, enr_processor_last_error() the reason; the transaction is left to the
 *        next instance, whose start aborts it).
 * @param events input records the transaction covered.
 * @param txn_ms from its first record to the end of the commit (or abort): the latency the
 *        transaction added to its first record.
 * @param commit_ms the commit alone (stage flush, offsets, the commit round trips), or the
 *        abort with its rewind.
 * @param opaque the pointer given to enr_conf_set_txn_cb().
 *
 * @remark Runs on the thread that drives the processor, from inside enr_poll(), enr_run()
 *         or enr_processor_destroy(). enr_poll() and enr_processor_destroy() called from
 *         inside the callback return ENR_ERR_RECURSIVE_CALL.
 */
typedef void(enr_txn_cb_t)(enr_err_t result, int64_t events, int64_t txn_ms, int64_t commit_ms,
                           void *opaque);

/** @brief Sets the transaction callback (NULL to unset) and its opaque pointer. */
ENR_API void enr_conf_set_txn_cb(enr_conf_t *conf, enr_txn_cb_t *cb, void *opaque);

/**
 * @brief Copies the latest librdkafka statistics of the processor's group consumer (a JSON
 *        object, see librdkafka's STATISTICS.md) into @p buf, NUL-terminated.
 *
 * The consumer emits them every "kafka.consumer.statistics.interval.ms" (libenrich's default:
 * 5000; 0 turns them off), served by enr_poll(). They hold the broker connections (state,
 * round-trip times, errors) and, per assigned input partition, "consumer_lag_stored": the
 * records after the last committed transaction's offset (libenrich stores that offset after
 * each commit; "consumer_lag", measured from the group's own commit, is not kept current by
 * transactional commits).
 *
 * @returns the length of the whole JSON (excluding the NUL), like snprintf(); the copy is
 *          truncated when that is >= @p size (call again with a larger buffer: the document
 *          may have changed meanwhile). 0 when there are no statistics yet, @p p is NULL or
 *          statistics are off.
 * @remark Any thread, while @p p exists.
 */
ENR_API size_t enr_kafka_stats_json(enr_processor_t *p, char *buf, size_t size);

/**
 * @brief Counts under-replicated partitions (fewer in-sync replicas than replicas) of the
 *        topics the processor depends on, from a metadata request to the cluster: the input
 *        topics (names, or topics matching the ^regexes), the output, dead-letter,
 *        aggregates, alerts, profile and changelog topics, and Kafka's own
 *        __consumer_offsets and __transaction_state, which every transaction writes.
 *
 * Blocks for up to @p timeout_ms (one round trip to a broker). Partitions without a leader
 * count too.
 *
 * @returns the count (0 or more), or a negative enr_err_t: ENR_ERR_INVALID_ARG,
 *          ENR_ERR_TIMED_OUT (no answer in time), ENR_ERR_KAFKA (the request failed).
 * @remark Any thread, while @p p exists; meant for a metrics endpoint, not for every step.
 */
ENR_API int enr_under_replicated_partitions(enr_processor_t *p, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* ENRICH_H */
