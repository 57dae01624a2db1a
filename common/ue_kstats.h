/*
 * ue_kstats.h - the latest librdkafka statistics document of a client, stored from its stats
 * callback and copied out by any thread (the programs' /metrics read consumer lag and broker
 * health from it). One holder serves the SDK, libenrich and libwhsink.
 */
#ifndef UE_KSTATS_H
#define UE_KSTATS_H

#include <pthread.h>
#include <stddef.h>

typedef struct ue__kstats {
    pthread_mutex_t lock;
    char *json;
    size_t len;
} ue__kstats_t;

void ue__kstats_init(ue__kstats_t *k);
void ue__kstats_free(ue__kstats_t *k);

/* Keeps a copy of @p json (the previous one is freed; out of memory: it stays). */
void ue__kstats_store(ue__kstats_t *k, const char *json, size_t len);

/* snprintf-like: copies into @p buf (may be NULL) and returns the document's length (0: none). */
size_t ue__kstats_copy(ue__kstats_t *k, char *buf, size_t size);

#endif
