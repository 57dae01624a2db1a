/*
 * uc_kstats.h - the latest librdkafka statistics document of a client, stored from its stats
 * callback and copied out by any thread (the programs' /metrics read consumer lag and broker
 * health from it). One holder serves the SDK, libenrich and libwhsink.
 */
#ifndef UC_KSTATS_H
#define UC_KSTATS_H

#include <pthread.h>
#include <stddef.h>

typedef struct uc__kstats {
    pthread_mutex_t lock;
    char *json;
    size_t len;
} uc__kstats_t;

void uc__kstats_init(uc__kstats_t *k);
void uc__kstats_free(uc__kstats_t *k);

/* Keeps a copy of @p json (the previous one is freed; out of memory: it stays). */
void uc__kstats_store(uc__kstats_t *k, const char *json, size_t len);

/* snprintf-like: copies into @p buf (may be NULL) and returns the document's length (0: none). */
size_t uc__kstats_copy(uc__kstats_t *k, char *buf, size_t size);

#endif
