/*
 * keys.c - ue-collector's API keys: compared in constant time, loaded from the command line and
 * from files, each with its own token bucket (requests per second and burst). A key is 16 to
 * 256 printable characters; a keys file must be its owner's alone (mode 600), and its format is
 * strict: a mistake is refused with its line, never read as a shorter key.
 */
#include "collector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
    if (!v) /* navigator.sendBeacon cannot set a header: /v1/batch?key=KEY */
        v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
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

/* A key: 16 to 256 printable ASCII characters, no blank. 0, or -1 with the reason in @p why. */
static int key_ok(const char *key, char *why, size_t size)
{
    size_t n = strlen(key);
    if (n < KEY_MIN || n > KEY_MAX) {
        snprintf(why, size, "a key of %zu characters (%d to %d wanted)", n, KEY_MIN, KEY_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (key[i] <= ' ' || key[i] > '~') {
            snprintf(why, size, "a key with a blank, control or non-ASCII character");
            return -1;
        }
    }
    return 0;
}

int add_key(collector_t *col, const char *key, double rate, double burst, char *why,
            size_t why_size)
{
    if (key_ok(key, why, why_size))
        return -1;
    if (col->nkeys == MAX_KEYS || rate < 0 || burst < 1) {
        snprintf(why, why_size,
                 col->nkeys == MAX_KEYS ? "more than %d keys" : "a bad rate or burst", MAX_KEYS);
        return -1;
    }
    api_key_t *k = &col->keys[col->nkeys++];
    k->key = strdup(key);
    k->rate = rate;
    k->burst = k->tokens = burst;
    k->last_ns = mono_ns();
    pthread_mutex_init(&k->lock, NULL);
    return k->key ? 0 : -1;
}

/* A number token of a keys line: 0, or -1. */
static int number_token(const char *tok, double *out)
{
    char *end;
    *out = strtod(tok, &end);
    return end != tok && !*end ? 0 : -1;
}

/* One line "KEY [RATE [BURST]]", blanks already split into @p tok (@p n of them). */
static int key_line(collector_t *col, char **tok, int n, char *why, size_t size)
{
    double rate = col->rate, burst = col->burst;
    if (n > 3) {
        snprintf(why, size, "more than KEY RATE BURST (a comment must take a whole line)");
        return -1;
    }
    if ((n > 1 && number_token(tok[1], &rate)) || (n > 2 && number_token(tok[2], &burst))) {
        snprintf(why, size, "RATE and BURST must be numbers");
        return -1;
    }
    if (n == 2 && burst < rate)
        burst = rate > 1 ? rate : 1;
    return add_key(col, tok[0], rate, burst, why, size);
}

/* The file must be the owner's alone: anyone who can read it can send as any of its keys. */
int file_private(FILE *f, const char *path)
{
    struct stat st;
    if (fstat(fileno(f), &st)) {
        perror(path);
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "ue-collector: %s is open to group or others (mode %03o): chmod 600 %s\n",
                path, (unsigned)(st.st_mode & 0777), path);
        return -1;
    }
    return 0;
}

/* Lines "KEY [RATE [BURST]]"; blank lines and whole-line '#' comments are skipped. A '#' inside
 * a line is part of it (a key "abc#def" is that key, not "abc"). */
int load_keys(collector_t *col, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024], why[128];
    int lineno = 0, rc = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    if (file_private(f, path)) {
        fclose(f);
        return -1;
    }
    while (!rc && fgets(line, sizeof(line), f)) {
        char *tok[4], *save = NULL;
        int n = 0;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(why, sizeof(why), "a line over %zu characters", sizeof(line) - 2);
            rc = -1;
            break;
        }
        char *s = line + strspn(line, " \t");
        if (*s == '#')
            continue;
        for (char *t = strtok_r(s, " \t\r\n", &save); t && n < 4;
             t = strtok_r(NULL, " \t\r\n", &save))
            tok[n++] = t;
        if (n > 0)
            rc = key_line(col, tok, n, why, sizeof(why));
    }
    if (rc)
        fprintf(stderr, "ue-collector: %s:%d: %s\n", path, lineno, why);
    fclose(f);
    return rc;
}
