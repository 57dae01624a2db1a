/*
 * url.h - the warehouse URL: which backend it names, its parts, and its printable form with
 * the password masked (the only form that may reach a log, an error or a dump).
 */
#ifndef WHS_URL_H
#define WHS_URL_H

#include <stddef.h>

typedef struct whs__url {
    char scheme[24]; /* "sqlite", "postgres", "clickhouse", "file" */
    int tls;         /* "clickhouse+https://": the same backend over HTTPS */
    char user[128];
    char password[256];
    char host[256];
    int port;         /* 0 when absent */
    char path[4096];  /* "sqlite:PATH" / "file:DIR": PATH, DIR; network URLs: "/db" */
    char query[1024]; /* after '?', without it */
} whs__url_t;

/*
 * Splits @p url. "postgresql://" is read as "postgres://". Returns 0, or -1 with the reason
 * in @p errstr (the URL masked) for an unknown scheme, a URL without its required part, or a
 * ClickHouse database name that is not an identifier.
 */
int whs__url_parse(const char *url, whs__url_t *out, char *errstr, size_t errstr_size);

/* Copies @p url into @p out with every credential replaced by "****": the userinfo's password
 * (the whole userinfo when the URL is malformed) and the value of any query parameter whose
 * name holds pass, pwd, secret, token, key or auth. Works on URLs that do not parse. */
void whs__url_mask(const char *url, char *out, size_t size);

#endif
