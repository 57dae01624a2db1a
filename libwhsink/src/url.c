/*
 * url.c - parsing and masking warehouse URLs (see url.h).
 *
 * Only the shapes the backends need: "sqlite:PATH", "file:DIR" and
 * "scheme://[user[:password]@]host[:port][/path][?query]". Percent-escapes in the user and
 * password are decoded so a password may hold '@' or ':'. A ClickHouse database name must be
 * an identifier: it goes into the request URL and into SQL text unquoted.
 *
 * Masking: a URL reaches logs, errors and dumps only through whs__url_mask(), which hides the
 * password and every credential query parameter (libpq takes password=, sslpassword=, ...).
 */
#include "url.h"
#include "uc_props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* "" or "/" (the default database) or "/NAME" with NAME an identifier. */
static int clickhouse_db_ok(const char *path)
{
    const char *db = path[0] == '/' ? path + 1 : path;
    if (!*db)
        return 1;
    if (!((*db >= 'A' && *db <= 'Z') || (*db >= 'a' && *db <= 'z') || *db == '_'))
        return 0;
    return db[strspn(db, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] ==
           '\0';
}

int whs__url_parse(const char *url, whs__url_t *u, char *errstr, size_t errstr_size)
{
    char masked[512];
    memset(u, 0, sizeof(*u));
    if (!url || !*url) {
        uc__errstr(errstr, errstr_size, "warehouse.url: not set");
        return -1;
    }
    whs__url_mask(url, masked, sizeof(masked));
    const char *colon = strchr(url, ':');
    size_t slen = colon ? (size_t)(colon - url) : 0;
    if (!colon || slen >= sizeof(u->scheme)) {
        uc__errstr(errstr, errstr_size,
                   "warehouse.url: \"%s\" has no scheme "
                   "(sqlite:, file:, postgres://, clickhouse://, clickhouse+https://)",
                   masked);
        return -1;
    }
    memcpy(u->scheme, url, slen);
    if (strcmp(u->scheme, "postgresql") == 0)
        strcpy(u->scheme, "postgres");
    if (strcmp(u->scheme, "clickhouse+https") == 0) {
        strcpy(u->scheme, "clickhouse");
        u->tls = 1;
    }
    int network = !strcmp(u->scheme, "postgres") || !strcmp(u->scheme, "clickhouse");
    int local = !strcmp(u->scheme, "sqlite") || !strcmp(u->scheme, "file");
    int rc = -1;
    if (network && strncmp(colon, "://", 3) == 0)
        rc = parse_network(colon + 3, u);
    else if (local)
        rc = copy_plain(u->path, sizeof(u->path), colon + 1, strlen(colon + 1));
    if (rc == 0 && local && !u->path[0])
        rc = -1;
    if (rc == 0 && !strcmp(u->scheme, "clickhouse") && !clickhouse_db_ok(u->path)) {
        uc__errstr(errstr, errstr_size,
                   "warehouse.url: the ClickHouse database of \"%s\" is not an identifier "
                   "([A-Za-z_][A-Za-z0-9_]*)",
                   masked);
        return -1;
    }
    if (rc) {
        uc__errstr(errstr, errstr_size,
                   network || local ? "warehouse.url: \"%s\" is malformed"
                                    : "warehouse.url: unknown scheme in \"%s\" (sqlite:, "
                                      "file:, postgres://, clickhouse://, clickhouse+https://)",
                   masked);
        return -1;
    }
    return 0;
}

/* Appends @p n bytes of @p s to @p out (capacity @p size, used *@p len), cut where it is full. */
static void put(char *out, size_t size, size_t *len, const char *s, size_t n)
{
    size_t room = *len + 1 < size ? size - 1 - *len : 0;
    memcpy(out + *len, s, n < room ? n : room);
    *len += n < room ? n : room;
    out[*len] = '\0';
}

/*
 * Whether a query parameter named @p name (@p n bytes) carries a credential: any name holding
 * "pass", "pwd", "secret", "token", "key" or "auth", in any case (libpq's password and
 * sslpassword, tokens, API keys). A harmless match (sslkey, a path) is masked too: better one
 * value too many than one secret in a log.
 */
static int secret_param(const char *name, size_t n)
{
    static const char *const words[] = {"pass", "pwd", "secret", "token", "key", "auth"};
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (strncasecmp(name + i, words[w], wl) == 0)
                return 1;
    }
    return 0;
}

/* Appends query @p q (after its '?') with the value of every credential parameter masked. */
static void put_query(char *out, size_t size, size_t *len, const char *q)
{
    while (*q) {
        size_t plen = strcspn(q, "&;"), nlen = strcspn(q, "=&;");
        if (nlen < plen && secret_param(q, nlen)) {
            put(out, size, len, q, nlen + 1);
            put(out, size, len, "****", 4);
        } else {
            put(out, size, len, q, plen);
        }
        q += plen;
        if (*q)
            put(out, size, len, q++, 1);
    }
}

/*
 * Masks every credential a URL can carry, whether it parses or not (a malformed URL is shown
 * in an error too): the userinfo's password, from the first ':' to the last '@', so that a
 * password holding an unescaped '@', '/' or '?' is hidden whole; and the value of every
 * credential query parameter. The user name stays in a "scheme://" URL; in any other shape
 * the whole userinfo goes, since there is no telling the user from the password. Local URLs
 * (sqlite:, file:) are paths and are shown as they are.
 */
void whs__url_mask(const char *url, char *out, size_t size)
{
    size_t len = 0;
    if (!size)
        return;
    out[0] = '\0';
    url = url ? url : "";
    if (!strncmp(url, "sqlite:", 7) || !strncmp(url, "file:", 5)) {
        put(out, size, &len, url, strlen(url));
        return;
    }
    size_t slen = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    int well_formed = slen > 0 && strncmp(url + slen, "://", 3) == 0;
    const char *rest = well_formed ? url + slen + 3 : slen > 0 && url[slen] == ':' ? url + slen + 1
                                                                                 : url;
    const char *at = strrchr(rest, '@');
    put(out, size, &len, url, (size_t)(rest - url));
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (well_formed && !colon)
            put(out, size, &len, rest, (size_t)(at - rest)); /* a user name alone */
        else if (well_formed)
            put(out, size, &len, rest, (size_t)(colon + 1 - rest));
        put(out, size, &len, well_formed && !colon ? "@" : "****@", well_formed && !colon ? 1 : 5);
        rest = at + 1;
    }
    const char *query = strchr(rest, '?');
    put(out, size, &len, rest, query ? (size_t)(query + 1 - rest) : strlen(rest));
    if (query)
        put_query(out, size, &len, query + 1);
}
