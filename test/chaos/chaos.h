/*
 * chaos.h - ue-chaos, the helper of test/chaos/run.sh: creates the pipeline's topics, generates
 * the events, samples the pipeline's progress while faults are injected, and verifies every
 * stage afterwards.
 *
 * Independent of the code it checks: it links no userevents library. It decodes with the
 * protobuf-c code generated from proto/ (build/gen), reads Kafka with plain librdkafka, the
 * warehouses with libpq and libcurl, and keeps its own books.
 */
#ifndef CHAOS_H
#define CHAOS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Wall clock in Unix ms: the samples and run.sh's fault log share it (date +%s%3N). */
int64_t chaos_now_ms(void);

/* A consumer (no subscription: callers assign), read_committed when @p committed; group.id
 * @p group (NULL: a throwaway one). NULL with the reason in @p err. */
rd_kafka_t *chaos_consumer_new(const char *bootstrap, const char *group, int committed, char *err,
                               size_t err_size);

/* The partition count of @p topic, or -1. */
int chaos_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* Splits a comma list in place into at most @p max items; returns how many. */
int chaos_split(char *list, char **items, int max);

/* The subcommands; each parses its own argv (argv[0] is the subcommand). */
int chaos_topics(int argc, char **argv);
int chaos_gen(int argc, char **argv);
int chaos_watch(int argc, char **argv);
int chaos_verify(int argc, char **argv);

/* ---- warehouse.c: the two warehouses, read with their own client libraries ---- */

typedef struct chaos_wh chaos_wh_t;

/* One row: the event id as text (8-4-4-4-12), the promoted seq property (has_seq 0 when NULL)
 * and where the row says it came from. */
typedef void chaos_row_fn(const char *event_id, int64_t seq, int has_seq, int partition,
                          int64_t offset, void *opaque);

/* postgres://... (libpq) or clickhouse://host:port/db (HTTP). Connects lazily. */
chaos_wh_t *chaos_wh_open(const char *url, const char *table);
/* Rows in the table now; -1 when the server or the table is not there. */
int64_t chaos_wh_count(chaos_wh_t *w);
/* Where the sink stands per partition of @p topic (whs_offsets: PostgreSQL's next_offset,
 * ClickHouse's last commit row) into @p next[0..n); partitions without a row are left as they
 * are. 0, or -1 when the server or the table is not there. */
int chaos_wh_offsets(chaos_wh_t *w, const char *topic, int64_t *next, int n);
/* Streams every row to @p fn. 0, or -1 with the reason in @p err. */
int chaos_wh_rows(chaos_wh_t *w, chaos_row_fn *fn, void *opaque, char *err, size_t err_size);
void chaos_wh_close(chaos_wh_t *w);

#endif
