/*
 * secret.c - values of command-line flags that may be secrets (see secret.h): "env:NAME",
 * "@PATH", or the value itself with a warning when it is a secret.
 */
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int secret_key(const char *key)
{
    static const char *const words[] = {"password",           "secret",  "token", "ssl.key",
                                        "oauthbearer.config", "api.key", "apikey"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(key, words[i]))
            return 1;
    return 0;
}

/* Whether the @p n bytes at @p s hold @p word, in any case. */
static int holds(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(s + i, word, wl) == 0)
            return 1;
    return 0;
}

int secret_in_url(const char *url)
{
    const char *sep = strstr(url, "://"), *at = sep ? strrchr(sep + 3, '@') : NULL;
    if (at && memchr(sep + 3, ':', (size_t)(at - sep - 3)))
        return 1;
    const char *q = strchr(url, '?');
    while (q && *q) {
        q++;
        size_t name = strcspn(q, "=&;");
        if (holds(q, name, "pass") || holds(q, name, "pwd") || holds(q, name, "secret") ||
            holds(q, name, "token") || holds(q, name, "key"))
            return 1;
        q += strcspn(q, "&;");
    }
    return 0;
}

/* The first line of @p path, malloc'd; NULL after a message. */
static char *read_first_line(const char *prog, const char *flag, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    struct stat st;
    if (!f || getline(&line, &cap, f) < 0) {
        fprintf(stderr, "%s: %s: cannot read %s\n", prog, flag, path);
        if (f)
            fclose(f);
        free(line);
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "%s: warning: %s: %s is open to group or others (mode %03o): chmod 600\n",
                prog, flag, path, (unsigned)(st.st_mode & 0777));
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

char *flag_value(const char *prog, const char *flag, const char *value, int secret)
{
    if (strncmp(value, "env:", 4) == 0) {
        const char *v = getenv(value + 4);
        if (!v) {
            fprintf(stderr, "%s: %s: the environment variable %s is not set\n", prog, flag,
                    value + 4);
            return NULL;
        }
        return strdup(v);
    }
    if (value[0] == '@')
        return read_first_line(prog, flag, value + 1);
    if (secret)
        fprintf(stderr,
                "%s: warning: %s: a secret on the command line is visible to every local user "
                "(ps, /proc/PID/cmdline); give env:NAME or @FILE instead\n",
                prog, flag);
    return strdup(value);
}
