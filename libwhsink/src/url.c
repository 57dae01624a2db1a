/*
 * url.c - parsing and masking warehouse URLs (see url.h).
 *
 * Only the shapes the backends need: "sqlite:PATH", "file:DIR" and
 * "scheme://[user[:password]@]host[:port][/path][?query]". Percent-escapes in the user and
 * password are decoded so a password may hold '@' or ':'.
 */
#include "url.h"
#include "ue_props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies @p n bytes of @p s into @p out, decoding %XX. Returns -1 when it does not fit. */
static int copy_decoded(char *out, size_t size, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (j + 1 >= size)
            return -1;
        out[j++] = c;
    }
    out[j] = '\0';
    return 0;
}

static int copy_plain(char *out, size_t size, const char *s, size_t n)
{
    if (n >= size)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Parses "[user[:password]@]host[:port]" of @p n bytes. */
static int parse_authority(const char *s, size_t n, whs__url_t *u)
{
    const char *at = memrchr(s, '@', n);
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
        if (copy_decoded(u->user, sizeof(u->user), s, ulen))
            return -1;
        if (colon &&
            copy_decoded(u->password, sizeof(u->password), colon + 1, (size_t)(at - colon - 1)))
            return -1;
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    const char *colon = memrchr(s, ':', n);
    if (colon && !memchr(colon, ']', (size_t)(s + n - colon))) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != s + n || port <= 0 || port > 65535)
            return -1;
        u->port = (int)port;
        n = (size_t)(colon - s);
    }
    return copy_plain(u->host, sizeof(u->host), s, n);
}

static int parse_network(const char *rest, whs__url_t *u)
{
    size_t auth_len = strcspn(rest, "/?");
    if (parse_authority(rest, auth_len, u) || !u->host[0])
        return -1;
    const char *p = rest + auth_len;
    size_t path_len = strcspn(p, "?");
    if (copy_plain(u->path, sizeof(u->path), p, path_len))
        return -1;
    if (p[path_len] == '?' &&
        copy_plain(u->query, sizeof(u->query), p + path_len + 1, strlen(p + path_len + 1)))
        return -1;
    return 0;
}

int whs__url_parse(const char *url, whs__url_t *u, char *errstr, size_t errstr_size)
{
    char masked[512];
    memset(u, 0, sizeof(*u));
    if (!url || !*url) {
        ue__errstr(errstr, errstr_size, "warehouse.url: not set");
        return -1;
    }
    whs__url_mask(url, masked, sizeof(masked));
    const char *colon = strchr(url, ':');
    size_t slen = colon ? (size_t)(colon - url) : 0;
    if (!colon || slen >= sizeof(u->scheme)) {
        ue__errstr(errstr, errstr_size,
                   "warehouse.url: \"%s\" has no scheme "
                   "(sqlite:, file:, postgres://, clickhouse://)",
                   masked);
        return -1;
    }
    memcpy(u->scheme, url, slen);
    if (strcmp(u->scheme, "postgresql") == 0)
        strcpy(u->scheme, "postgres");
    int network = !strcmp(u->scheme, "postgres") || !strcmp(u->scheme, "clickhouse");
    int local = !strcmp(u->scheme, "sqlite") || !strcmp(u->scheme, "file");
    int rc = -1;
    if (network && strncmp(colon, "://", 3) == 0)
        rc = parse_network(colon + 3, u);
    else if (local)
        rc = copy_plain(u->path, sizeof(u->path), colon + 1, strlen(colon + 1));
    if (rc == 0 && local && !u->path[0])
        rc = -1;
    if (rc) {
        ue__errstr(errstr, errstr_size,
                   network || local ? "warehouse.url: \"%s\" is malformed"
                                    : "warehouse.url: unknown scheme in \"%s\" (sqlite:, "
                                      "file:, postgres://, clickhouse://)",
                   masked);
        return -1;
    }
    return 0;
}

void whs__url_mask(const char *url, char *out, size_t size)
{
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!size)
        return;
    if (!sep) {
        snprintf(out, size, "%s", url ? url : "");
        return;
    }
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?");
    const char *at = memrchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(out, size, "%s", url);
        return;
    }
    snprintf(out, size, "%.*s:****%s", (int)(colon - url), url, at);
}
