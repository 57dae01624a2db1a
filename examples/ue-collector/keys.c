/*
 * keys.c - ue-collector's API keys: compared in constant time, loaded from the command line and
 * from files, each with its own token bucket (requests per second and burst).
 */
#include "collector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < la; i++) /* constant time in the key's length */
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    return diff == 0;
}

api_key_t *find_key(collector_t *col, struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!v && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        v = auth + 7;
    api_key_t *found = NULL;
    for (int i = 0; v && *v && i < col->nkeys; i++)
        if (ct_equal(v, col->keys[i].key))
            found = &col->keys[i];
    return found;
}

/* Takes one request from @p k's token bucket; 0, or the seconds to wait. */
int take_token(api_key_t *k)
{
    if (k->rate <= 0)
        return 0;
    pthread_mutex_lock(&k->lock);
    int64_t now = mono_ns();
    k->tokens += (double)(now - k->last_ns) / 1e9 * k->rate;
    if (k->tokens > k->burst)
        k->tokens = k->burst;
    k->last_ns = now;
    int wait = 0;
    if (k->tokens >= 1)
        k->tokens -= 1;
    else
        wait = (int)ceil((1 - k->tokens) / k->rate);
    pthread_mutex_unlock(&k->lock);
    return wait > 0 ? wait : 0;
}

int add_key(collector_t *col, const char *key, double rate, double burst)
{
    if (col->nkeys == MAX_KEYS || !*key || rate < 0 || burst < 1) {
        fprintf(stderr, "ue-collector: bad API key entry (or more than %d keys)\n", MAX_KEYS);
        return -1;
    }
    api_key_t *k = &col->keys[col->nkeys++];
    k->key = strdup(key);
    k->rate = rate;
    k->burst = k->tokens = burst;
    k->last_ns = mono_ns();
    pthread_mutex_init(&k->lock, NULL);
    return 0;
}

/* Lines "KEY [RATE [BURST]]"; '#' starts a comment. */
int load_keys(collector_t *col, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024], key[512];
    int lineno = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        double rate = col->rate, burst = col->burst;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        int n = sscanf(line, "%511s %lf %lf", key, &rate, &burst);
        if (n <= 0)
            continue;
        if (n == 2 && burst < rate)
            burst = rate > 1 ? rate : 1;
        if (add_key(col, key, rate, burst)) {
            fprintf(stderr, "ue-collector: %s:%d: bad entry\n", path, lineno);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}
