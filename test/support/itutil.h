/*
 * itutil.h - helpers of the integration tests against a real Kafka cluster: an independent
 * consumer (plain librdkafka + the generated Protobuf decoder, none of the SDK's code), the
 * checks every test repeats, and control of the broker started by test/kafka.sh.
 */
#ifndef UE_ITUTIL_H
#define UE_ITUTIL_H

#include "userevents.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct it_msg {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *key;                /* NUL-terminated copy */
    uint8_t header_id[16];    /* "ue-event-id" header */
    int has_header_id;
    char schema_header[8];    /* "ue-schema-version" header */
    Userevents__Event *ev;    /* decoded value; NULL if it did not decode */
} it_msg_t;

/* The cluster under test (KAFKA_BOOTSTRAP), or NULL: the caller skips. */
const char *it_bootstrap(void);

/* A topic prefix no other run uses, e.g. "it-1234-1700000000". Static storage. */
const char *it_unique_prefix(void);

/* One record as read by it_read(), valid during the callback. */
typedef struct it_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const void *msg; /* the rd_kafka_message_t, for it_header() */
} it_record_t;

typedef void(it_record_fn)(const it_record_t *r, void *opaque);

/*
 * Reads every record of @p topics (read_committed) from the beginning until at least
 * @p expected arrived and every partition is at its end, or until @p timeout_ms; calls @p fn
 * for each. Returns the number read.
 */
size_t it_read(const char *const *topics, size_t ntopics, size_t expected, int timeout_ms,
               it_record_fn *fn, void *opaque);

/* The value of header @p name of @p r (not NUL-terminated; *@p len its size), or NULL. */
const char *it_header(const it_record_t *r, const char *name, size_t *len);

/*
 * Reads every message of @p topics from the beginning until at least @p expected arrived and
 * every partition is at its end (so duplicates past @p expected are seen too), or until
 * @p timeout_ms. Returns the number read; the messages in *@p out (free with it_msgs_free).
 */
size_t it_consume(const char *const *topics, size_t ntopics, size_t expected, int timeout_ms,
                  it_msg_t **out);
void it_msgs_free(it_msg_t *msgs, size_t n);

/* Runs "test/kafka.sh ACTION NODE --dir $UE_KAFKA_DIR"; -1 when the cluster is not ours. */
int it_kafka_node(const char *action, int node);

/* Counts of the exactly-once check of a set of messages against the ids that were tracked. */
typedef struct it_report {
    size_t missing;      /* tracked ids not found */
    size_t duplicates;   /* ids found more than once */
    size_t unexpected;   /* ids found that were never tracked */
    size_t undecodable;  /* values that did not decode with the .proto */
    size_t bad_meta;     /* wrong topic, key or headers */
    size_t out_of_order; /* a user's "seq" property going backwards within a partition */
} it_report_t;

/*
 * Checks @p msgs against the @p nids tracked ids: each exactly once, decodable, on topic
 * "<prefix>.<type>", keyed by the user id, headers matching, and per user and partition in
 * increasing order of the int property "seq".
 */
it_report_t it_check(const it_msg_t *msgs, size_t n, const uint8_t (*ids)[16], size_t nids,
                     const char *prefix);

/* ---- added with libwhsink's integration tests --------------------------------------------- */

/*
 * Creates @p topic with @p partitions partitions (replication factor 1) and waits until its
 * metadata shows them. 0, or -1 with the reason on stderr. An existing topic is an error.
 */
int it_create_topic(const char *topic, int partitions);

#endif
