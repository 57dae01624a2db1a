/*
 * fuzz_whs_url.c - libFuzzer target for the warehouse URL (libwhsink/src/url.h): the text of
 * warehouse.url, which comes from a configuration file, a flag or an environment variable.
 *
 * The input is the URL (up to its first NUL). Oracles: whs__url_parse() answers 0 or -1, and -1
 * with a reason; every part it fills is NUL-terminated inside its field; the scheme is one of
 * the four (postgresql read as postgres), a network URL has a host and a port in 1..65535, a
 * local one a path; the reason never holds the password; whs__url_mask() stays inside any
 * buffer size and never shows the password (the only form of a URL that may reach a log).
 */
#include "fuzz_util.h"
#include "url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_parsed(const char *url, const whs__url_t *u)
{
    FUZZ_CHECK(TERMINATED(u->scheme) && TERMINATED(u->user) && TERMINATED(u->password) &&
                   TERMINATED(u->host) && TERMINATED(u->path) && TERMINATED(u->query),
               "a field without its NUL");
    int network = !strcmp(u->scheme, "postgres") || !strcmp(u->scheme, "clickhouse");
    int local = !strcmp(u->scheme, "sqlite") || !strcmp(u->scheme, "file");
    FUZZ_CHECK(network || local, "scheme \"%s\" accepted", u->scheme);
    if (network) {
        FUZZ_CHECK(u->host[0] != '\0', "network URL without a host: %s", url);
        FUZZ_CHECK(u->port >= 0 && u->port <= 65535, "port %d", u->port);
    } else {
        FUZZ_CHECK(u->path[0] != '\0', "local URL without a path: %s", url);
        FUZZ_CHECK(!u->host[0] && !u->user[0] && !u->password[0] && !u->port,
                   "local URL with parts");
    }
}

/* Masks @p url into buffers of several sizes, each guarded by canary bytes. */
static void check_mask(const char *url)
{
    static const size_t sizes[] = {1, 2, 8, 64, 512, 5000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = sizes[i];
        char *out = malloc(size + 8);
        FUZZ_CHECK(out != NULL, "out of memory");
        memset(out, 0x5a, size + 8);
        whs__url_mask(url, out, size);
        FUZZ_CHECK(memchr(out, '\0', size) != NULL, "mask into %zu bytes: no NUL", size);
        for (size_t k = size; k < size + 8; k++)
            FUZZ_CHECK(out[k] == 0x5a, "mask into %zu bytes wrote byte %zu", size, k);
        FUZZ_CHECK(!fuzz_url_shows_password(url, out), "mask shows the password: %s", out);
        free(out);
    }
    char one = 0x5a;
    whs__url_mask(url, &one, 0); /* nothing written at all */
    FUZZ_CHECK(one == 0x5a, "mask into 0 bytes wrote");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    whs__url_t u;
    char err[600];
    FUZZ_CHECK(url != NULL, "out of memory");
    memcpy(url, data, size);
    url[size] = '\0';
    err[0] = '\0';
    int rc = whs__url_parse(url, &u, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
        check_parsed(url, &u);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a reason: %s", url);
        /* The URL is quoted in the reason; the words around it may hold any short password. */
        char *open = strchr(err, '"'), *close = strrchr(err, '"');
        if (open && close > open) {
            *close = '\0';
            FUZZ_CHECK(!fuzz_url_shows_password(url, open + 1), "the reason shows the password: %s",
                       open + 1);
        }
    }
    check_mask(url);
    free(url);
    return 0;
}
