/*
 * transport_kafka.h - the Kafka transport: an idempotent librdkafka producer, one topic per
 * event type, the user (or anonymous) id as key, event id and schema version as headers.
 */
#ifndef UE_TRANSPORT_KAFKA_H
#define UE_TRANSPORT_KAFKA_H

#include "transport.h"
#include "uc_log.h"

#include <librdkafka/rdkafka.h>

/*
 * Creates the producer. Takes ownership of @p kconf on success. @p topic_template contains
 * "{type}" at most once. NULL with @p errstr on failure.
 */
ue__transport_t *ue__transport_kafka_new(rd_kafka_conf_t *kconf, const char *topic_template,
                                         const uc__logger_t *log, ue__result_fn *on_result,
                                         void *owner, char *errstr, size_t errstr_size);

/* 0 when @p template renders valid Kafka topic names for every valid type, else -1. */
int ue__topic_template_valid(const char *template, char *errstr, size_t errstr_size);

/* For tests: the librdkafka producer the transport uses now (replaced after a fatal error). */
rd_kafka_t *ue__transport_kafka_handle(ue__transport_t *t);

#endif
