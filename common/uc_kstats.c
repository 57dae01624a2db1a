/*
 * uc_kstats.c - see uc_kstats.h.
 */
#include "uc_kstats.h"

#include <stdlib.h>
#include <string.h>

void uc__kstats_init(uc__kstats_t *k)
{
    pthread_mutex_init(&k->lock, NULL);
    k->json = NULL;
    k->len = 0;
}

void uc__kstats_free(uc__kstats_t *k)
{
    free(k->json);
    k->json = NULL;
    pthread_mutex_destroy(&k->lock);
}

void uc__kstats_store(uc__kstats_t *k, const char *json, size_t len)
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

size_t uc__kstats_copy(uc__kstats_t *k, char *buf, size_t size)
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
