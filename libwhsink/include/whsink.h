/*
 * whsink.h - the public API of libwhsink, the exactly-once warehouse sink.
 *
 * Teams embed libwhsink to load the enriched event topic ("events.enriched", values are
 * userevents.EnrichedEvent, proto/enriched.proto) into a warehouse, each event exactly once:
 *
 *   whs_conf_t *conf = whs_conf_new();
 *   whs_conf_set(conf, "warehouse.url", "postgres://loader@db/analytics", errstr, sizeof(errstr));
 *   whs_conf_set(conf, "kafka.bootstrap.servers", "127.0.0.1:9092", errstr, sizeof(errstr));
 *   whs_conf_set(conf, "columns.promote", "amount:double,sku:string", errstr, sizeof(errstr));
 *   whs_sink_t *sink = whs_sink_new(conf, errstr, sizeof(errstr));   // owns conf from here
 *
 *   whs_run(sink);               // until whs_stop() (e.g. from a SIGTERM handler)
 *   whs_close(sink, 10000);      // flush what is batched, with a deadline; leave the group
 *   whs_sink_destroy(sink);
 *
 * How exactly-once works: the sink writes each batch of rows together with the Kafka offsets
 * it covers in one atomic step of the warehouse (a transaction with an offsets table in SQLite
 * and PostgreSQL; per-partition atomic inserts plus an offsets table in ClickHouse; renamed
 * files whose names carry the offsets for "file:"). When partitions are assigned the sink asks
 * the warehouse where it stands and seeks there; Kafka group offsets are committed after each
 * warehouse commit only as a hint for lag monitoring. A crash at any point therefore re-reads
 * exactly what the warehouse does not hold.
 *
 * Warehouses, chosen by "warehouse.url":
 *   sqlite:PATH                    one SQLite file (the embedded default)
 *   postgres://user@host:port/db   PostgreSQL (libpq; COPY; tables partitioned by date)
 *   clickhouse://host:port/db      ClickHouse over HTTP (MergeTree partitioned by date)
 *   file:DIR                       Hive-style DIR/TABLE/dt=YYYY-MM-DD/bucket=NN/ zstd NDJSON
 *
 * If a function does not appear in this file, it is not a published API.
 *
 * Threads: a whs_sink_t belongs to one thread at a time (the one calling whs_poll(),
 * whs_run(), whs_flush(), whs_close() and whs_sink_destroy()); whs_stop() and the statistics
 * calls may be made from any thread, and whs_stop() from a signal handler. The library owns
 * one writer thread per sink (all warehouse I/O) plus librdkafka's threads. The commit and
 * error callbacks run on the caller's thread from inside whs_poll(), whs_flush() and
 * whs_close(); the log callback may run on any library thread. Sinks of one group in one
 * process each need their own thread (or to be polled in turn): a sink nobody polls answers
 * no rebalance, and the group waits for it up to kafka.max.poll.interval.ms.
 *
 * Strings are NUL-terminated UTF-8. Timeouts are milliseconds; -1 means no limit where a
 * function says so.
 */
#ifndef WHSINK_H
#define WHSINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(WHS_STATIC_ONLY)
#define WHS_API __attribute__((visibility("default")))
#else
#define WHS_API
#endif

/** Library version as 0xMMmmrrxx (major, minor, revision, pre-release 0xff = final). */
#define WHS_VERSION 0x000100ff

/** @brief Returns the library version in the same form as WHS_VERSION. */
WHS_API int whs_version(void);

/** @brief Returns the library version as a string, e.g. "0.1.0". Static storage. */
WHS_API const char *whs_version_str(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/**
 * Error codes. 0 is success. Negative codes are local failures (in this process), positive
 * codes come from a remote side (the warehouse, the Kafka cluster). New codes are only ever
 * appended; none is renumbered or removed.
 */
typedef enum whs_err {
    WHS_OK = 0,
    WHS_ERR_INVALID_ARG = -1,       /**< a NULL or malformed argument */
    WHS_ERR_CONF_UNKNOWN = -2,      /**< unknown configuration key */
    WHS_ERR_CONF_INVALID = -3,      /**< configuration value out of range or malformed */
    WHS_ERR_NOMEM = -4,             /**< out of memory */
    WHS_ERR_TIMED_OUT = -5,         /**< a deadline passed before the work was done */
    WHS_ERR_RECURSIVE_CALL = -6,    /**< called from inside one of this sink's callbacks */
    WHS_ERR_CLOSED = -7,            /**< the sink was closed by whs_close() */
    WHS_ERR_KAFKA_INIT = -8,        /**< the Kafka consumer or producer could not be created */
    WHS_ERR_MAPPING = -9,           /**< a record could not be mapped to a row: dead-lettered */
    WHS_ERR_WAREHOUSE = 1,          /**< a warehouse operation failed; retried with backoff */
    WHS_ERR_WAREHOUSE_REJECTED = 2, /**< the warehouse refused rows for good: dead-lettered */
    WHS_ERR_FENCED = 3,             /**< another sink moved a partition's offsets first; the
                                         batch was dropped and the partition re-read */
    WHS_ERR_KAFKA = 4,              /**< the Kafka cluster reported an error */
    WHS_ERR_DEAD_LETTER = 5,        /**< a dead letter could not be delivered */
    WHS_ERR_KAFKA_FATAL = 6,        /**< librdkafka raised a fatal error: the sink must stop */
    WHS_ERR_WAREHOUSE_FATAL = 7,    /**< the warehouse refused for a reason waiting does not
                                         heal (a path that cannot be made, a file that cannot be
                                         opened, a schema it rejects): whs_sink_open() */
} whs_err_t;

/** @brief A short English description of @p err. Static storage, never NULL. */
WHS_API const char *whs_err2str(whs_err_t err);

/** @brief The symbolic name of @p err, e.g. "WHS_ERR_FENCED". Static storage, never NULL. */
WHS_API const char *whs_err2name(whs_err_t err);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct whs_conf_s whs_conf_t; /* Private type: layout may change between versions. */
typedef struct whs_sink_s whs_sink_t; /* Private type. */

/** Result of whs_conf_set(). */
typedef enum whs_conf_res {
    WHS_CONF_OK = 0,
    WHS_CONF_INVALID = -1, /**< known key, bad value */
    WHS_CONF_UNKNOWN = -2, /**< unknown key */
} whs_conf_res_t;

/** @brief Creates a configuration holding every default. Free with whs_conf_destroy(). */
WHS_API whs_conf_t *whs_conf_new(void);

/** @brief Frees @p conf. NULL is a no-op. Do not call after whs_sink_new() took it. */
WHS_API void whs_conf_destroy(whs_conf_t *conf);

/** @brief Returns a deep copy of @p conf (callbacks included), or NULL when out of memory. */
WHS_API whs_conf_t *whs_conf_dup(const whs_conf_t *conf);

/**
 * @brief Sets configuration property @p name to @p value, validating it now.
 *
 * Keys starting with "kafka." are passed to librdkafka's consumer configuration without the
 * prefix and validated by it ("kafka.bootstrap.servers", "kafka.group.id", ...); the
 * dead-letter producer gets the same keys minus the consumer-only ones. Every other key is
 * documented in CONFIGURATION.md, generated from the same table as whs_conf_dump():
 * "warehouse.url" (required), "topic", "table", "columns.promote", "bucket.count",
 * "batch.max.rows", "batch.max.bytes", "batch.max.ms", "dead_letter.topic", ...
 *
 * @param errstr receives a human-readable reason on failure (may be NULL).
 * @returns WHS_CONF_OK, WHS_CONF_INVALID (bad value) or WHS_CONF_UNKNOWN (no such key).
 */
WHS_API whs_conf_res_t whs_conf_set(whs_conf_t *conf, const char *name, const char *value,
                                    char *errstr, size_t errstr_size);

/**
 * @brief Copies the current value of @p name into @p dest (NUL-terminated).
 * @param dest_size in: size of @p dest; out: bytes needed including the NUL. Pass dest NULL
 *        to ask for the size only.
 * @returns WHS_CONF_OK or WHS_CONF_UNKNOWN.
 * @remark A password inside "warehouse.url" is returned as given: it is the caller's own.
 */
WHS_API whs_conf_res_t whs_conf_get(const whs_conf_t *conf, const char *name, char *dest,
                                    size_t *dest_size);

/**
 * @brief Lists every property and its current value as name, value, name, value, ...
 * @param cntp receives the number of array entries (twice the number of properties).
 * @returns an array freed with whs_conf_dump_free(). Secrets are masked: the password of
 *          "warehouse.url" and "kafka.*" values that look secret (passwords, keys, tokens).
 */
WHS_API const char **whs_conf_dump(const whs_conf_t *conf, size_t *cntp);

/** @brief Frees what whs_conf_dump() returned. */
WHS_API void whs_conf_dump_free(const char **arr, size_t cnt);

/**
 * Commit callback: one call per Kafka partition of each batch the warehouse committed, from
 * whs_poll() (or whs_flush(), whs_close()) on the caller's thread.
 *
 * @param topic, partition the input partition.
 * @param next_offset the offset the warehouse now holds everything before.
 * @param rows rows of this partition in the batch.
 * @param dead_letters records of this partition in the batch sent to the dead-letter topic.
 * @param opaque the pointer given to whs_conf_set_commit_cb().
 * @remark whs_close() and whs_sink_destroy() from inside return WHS_ERR_RECURSIVE_CALL.
 */
typedef void(whs_commit_cb_t)(const char *topic, int32_t partition, int64_t next_offset,
                              int64_t rows, int64_t dead_letters, void *opaque);

/** @brief Sets the commit callback (NULL to unset) and its opaque pointer. */
WHS_API void whs_conf_set_commit_cb(whs_conf_t *conf, whs_commit_cb_t *cb, void *opaque);

/**
 * Error callback: every failure the sink handles on its own (a warehouse write that will be
 * retried, a record dead-lettered, a fenced batch, a Kafka error), from whs_poll() (or
 * whs_flush(), whs_close()) on the caller's thread.
 *
 * @param err what failed.
 * @param retriable 1 when the sink retries by itself, 0 when it gave up on that piece of
 *        work (the record or rows were dead-lettered, or the batch dropped and re-read).
 * @param reason a message for humans (valid during the call only). Never holds a password.
 */
typedef void(whs_error_cb_t)(whs_err_t err, int retriable, const char *reason, void *opaque);

/** @brief Sets the error callback (NULL to unset) and its opaque pointer. */
WHS_API void whs_conf_set_error_cb(whs_conf_t *conf, whs_error_cb_t *cb, void *opaque);

/**
 * Log callback. @p level is syslog-like: 3 error, 4 warning, 6 info, 7 debug. May run on any
 * library thread (the caller's, the writer's, librdkafka's). Default: stderr.
 */
typedef void(whs_log_cb_t)(int level, const char *message, void *opaque);

/** @brief Sets the log callback (NULL restores the default) and its opaque pointer. */
WHS_API void whs_conf_set_log_cb(whs_conf_t *conf, whs_log_cb_t *cb, void *opaque);

/* ------------------------------------------------------------------------------------------ */
/* Sink                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/**
 * @brief Creates a sink: opens the warehouse, creates or evolves the table (a newly promoted
 *        column is added with ALTER TABLE), starts the writer thread, creates the consumer
 *        (group "kafka.group.id", default "whsink"; isolation.level=read_committed) and
 *        subscribes to "topic". Nothing is consumed before the first whs_poll().
 *
 * A successful call takes ownership of @p conf; on failure the caller still owns it.
 * @returns the sink, or NULL with the reason in @p errstr (an unreachable warehouse too:
 *          a daemon retries whs_sink_new() with a backoff).
 */
WHS_API whs_sink_t *whs_sink_new(whs_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief whs_sink_new() that also says whether trying again can help, so a daemon retries only
 *        what may heal. On success *@p out is the sink and @p conf is taken; on failure *@p out
 *        is NULL, the caller still owns @p conf, and @p errstr says why.
 * @returns WHS_OK; WHS_ERR_WAREHOUSE when the warehouse is not reachable yet or timed out
 *          (retry with a backoff); WHS_ERR_WAREHOUSE_FATAL when it refused for good;
 *          WHS_ERR_CONF_INVALID for a required setting missing ("warehouse.url",
 *          "kafka.bootstrap.servers"); WHS_ERR_KAFKA_INIT when a Kafka client could not be
 *          created; WHS_ERR_NOMEM; WHS_ERR_INVALID_ARG for NULL @p conf or @p out.
 */
WHS_API whs_err_t whs_sink_open(whs_conf_t *conf, whs_sink_t **out, char *errstr,
                                size_t errstr_size);

/**
 * @brief Closes the sink if whs_close() was not called (deadline "shutdown.timeout.ms"),
 *        stops the writer thread and frees everything. NULL is a no-op.
 * @returns WHS_OK, or WHS_ERR_RECURSIVE_CALL from inside a callback (nothing is freed then).
 */
WHS_API whs_err_t whs_sink_destroy(whs_sink_t *sink);

/**
 * @brief Does one step of work for up to @p timeout_ms: reports finished warehouse commits
 *        and errors through the callbacks, consumes records, maps them to rows, and hands a
 *        batch to the writer thread when it is full ("batch.max.rows", "batch.max.bytes") or
 *        old ("batch.max.ms"). When the warehouse is slower than Kafka, consumption pauses
 *        instead of buffering more (memory stays near two batches).
 *
 * Returns early once records were consumed and no more are waiting.
 * @returns the number of records consumed (0 or more), or a negative whs_err_t:
 *          WHS_ERR_CLOSED, WHS_ERR_RECURSIVE_CALL, WHS_ERR_KAFKA_FATAL.
 */
WHS_API int whs_poll(whs_sink_t *sink, int timeout_ms);

/**
 * @brief Calls whs_poll() until whs_stop() is called or a fatal error happens.
 * @returns WHS_OK after whs_stop(), else the fatal error. Call whs_close() next.
 */
WHS_API whs_err_t whs_run(whs_sink_t *sink);

/**
 * @brief Asks whs_run() to return (and a whs_poll() in progress to return early). Safe from
 *        any thread and from a signal handler. Nothing is flushed here: call whs_close().
 */
WHS_API void whs_stop(whs_sink_t *sink);

/**
 * @brief Hands everything consumed so far to the warehouse and waits until it is committed
 *        or @p timeout_ms (-1: no limit) passes. Runs callbacks. Not needed in normal
 *        operation (batches flush on their own); useful before a planned pause and in tests.
 * @returns WHS_OK or WHS_ERR_TIMED_OUT (the work goes on in the background).
 */
WHS_API whs_err_t whs_flush(whs_sink_t *sink, int timeout_ms);

/**
 * @brief Stops cleanly within @p timeout_ms (-1: "shutdown.timeout.ms"): flushes what is
 *        batched, waits for the warehouse commit, commits the Kafka hint, leaves the group.
 *        What cannot be committed in time is dropped, never half-written: the next sink
 *        re-reads it from the offsets the warehouse holds. Leaving the group takes what is
 *        left of the deadline, at least a second; a coordinator that does not answer by then
 *        does not hold whs_close() (librdkafka may still wait for its answer, up to
 *        kafka.socket.timeout.ms, in whs_sink_destroy()).
 * @returns WHS_OK, WHS_ERR_TIMED_OUT (something was left for the next run),
 *          WHS_ERR_RECURSIVE_CALL or WHS_ERR_CLOSED (second call).
 */
WHS_API whs_err_t whs_close(whs_sink_t *sink, int timeout_ms);

/** Counters and gauges of a sink. */
typedef enum whs_stat {
    WHS_STAT_CONSUMED = 0,            /**< records consumed from Kafka */
    WHS_STAT_ROWS_LOADED = 1,         /**< rows committed to the warehouse */
    WHS_STAT_BYTES_LOADED = 2,        /**< bytes of those rows (their in-memory size) */
    WHS_STAT_BATCHES = 3,             /**< batches committed */
    WHS_STAT_DEAD_LETTERS = 4,        /**< records or rows sent to the dead-letter topic */
    WHS_STAT_SKIPPED = 5,             /**< records skipped: already in the warehouse */
    WHS_STAT_RETRIES = 6,             /**< warehouse operations that failed and were retried */
    WHS_STAT_FENCED = 7,              /**< batches dropped because another sink moved on */
    WHS_STAT_PAUSES = 8,              /**< times consumption paused for backpressure */
    WHS_STAT_PAUSED = 9,              /**< gauge: 1 while consumption is paused */
    WHS_STAT_BUFFERED_ROWS = 10,      /**< gauge: rows in memory, batched or being written */
    WHS_STAT_BUFFERED_BYTES = 11,     /**< gauge: bytes of those rows */
    WHS_STAT_REBALANCES = 12,         /**< partition assignments and revocations */
    WHS_STAT_COLUMNS_ADDED = 13,      /**< columns added by ALTER TABLE at start */
    WHS_STAT_DEAD_LETTER_FAILED = 14, /**< dead letters that could not be delivered */
    WHS_STAT_LAST_COMMIT_MS = 15,     /**< gauge: wall clock (Unix ms) of the last commit */
    WHS_STAT__CNT                     /**< number of statistics; grows in later versions */
} whs_stat_t;

/** @brief Returns one statistic, or -1 for an unknown @p which. Thread-safe, lock-free. */
WHS_API int64_t whs_stat(whs_sink_t *sink, whs_stat_t which);

/** @brief The JSON key of @p which, e.g. "rows_loaded". NULL if unknown. */
WHS_API const char *whs_stat_name(whs_stat_t which);

/**
 * @brief Writes every statistic as one JSON object into @p buf.
 * @returns the length the full JSON needs (excluding the NUL), like snprintf(); the output
 *          is truncated when that is >= @p size.
 */
WHS_API size_t whs_stats_json(whs_sink_t *sink, char *buf, size_t size);

/**
 * @brief Copies the consumer's latest librdkafka statistics (JSON: consumer lag per partition,
 *        broker state and round trips) into @p buf, NUL-terminated and truncated to @p size.
 *        Refreshed every "kafka.statistics.interval.ms" (default 5000; 0 turns it off).
 * @returns the document's full length, like snprintf(); 0 before the first one. Any thread.
 */
WHS_API size_t whs_kafka_stats_json(whs_sink_t *sink, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* WHSINK_H */
