/*
 * deadletter.h - the dead-letter producer: records that cannot be mapped, and rows the
 * warehouse refused, go to "dead_letter.topic" with why and where they came from.
 *
 * Headers: "reason" (text), "source.topic", "source.partition", "source.offset" (decimal
 * text), and "format": "protobuf" (the original EnrichedEvent value, key kept) or "row-json"
 * (a mapped row the warehouse refused, as the JSON the file backend writes).
 *
 * Delivery is idempotent and retried without end (message.timeout.ms=0); the sink waits for
 * every dead letter of a batch to be acknowledged before it commits the batch's offsets, so a
 * crash can repeat a dead letter but never lose one. Thread-safe: the consumer thread and the
 * writer thread both send.
 */
#ifndef WHS_DEADLETTER_H
#define WHS_DEADLETTER_H

#include "uc_log.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct whs__dl whs__dl_t;

/*
 * Creates the producer from the consumer's librdkafka configuration @p kconf (copied minus
 * consumer-only keys). Returns NULL with the reason in @p errstr.
 */
whs__dl_t *whs__dl_new(const rd_kafka_conf_t *kconf, const char *topic, const uc__logger_t *log,
                       char *errstr, size_t errstr_size);

/* Waits up to @p timeout_ms for outstanding dead letters, then frees. NULL is a no-op. */
void whs__dl_destroy(whs__dl_t *dl, int timeout_ms);

/* Queues one dead letter. 0, or -1 when librdkafka refused it at once (counted as failed). */
int whs__dl_send(whs__dl_t *dl, const void *value, size_t len, const void *key, size_t key_len,
                 const char *reason, const char *src_topic, int32_t src_partition,
                 int64_t src_offset, const char *format);

/* Serves delivery reports; 0 when nothing is outstanding any more. */
int whs__dl_pending(whs__dl_t *dl);

/* Waits up to @p timeout_ms until nothing is outstanding: 0, or -1 on timeout. */
int whs__dl_flush(whs__dl_t *dl, int timeout_ms);

/* Dead letters that could not be delivered (permanent errors) since the last call. */
int64_t whs__dl_take_failed(whs__dl_t *dl);

#endif
