/*
 * ue_kstats.c - see ue_kstats.h.
 */
#include "ue_kstats.h"

#include <stdlib.h>
#include <string.h>

void ue__kstats_init(ue__kstats_t *k)
{
    pthread_mutex_init(&k->lock, NULL);
    k->json = NULL;
    k->len = 0;
}

void ue__kstats_free(ue__kstats_t *k)
{
    free(k->json);
    k->json = NULL;
    pthread_mutex_destroy(&k->lock);
}

void ue__kstats_store(ue__kstats_t *k, const char *json, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, json, len);
    copy[len] = '\0';
    pthread_mutex_lock(&k->lock);
    char *old = k->json;
    k->json = copy;
    k->len = len;
    pthread_mutex_unlock(&k->lock);
    free(old);
}

size_t ue__kstats_copy(ue__kstats_t *k, char *buf, size_t size)
{
    pthread_mutex_lock(&k->lock);
    size_t len = k->json ? k->len : 0;
    if (buf && size) {
        size_t n = len < size ? len : size - 1;
        if (n)
            memcpy(buf, k->json, n);
        buf[n] = '\0';
    }
    pthread_mutex_unlock(&k->lock);
    return len;
}
