/*
 * cors.c - lets web pages of the configured origins POST batches from a browser (CORS): the
 * preflight a browser sends before a POST with an API key header, and the header that lets
 * the page read the answer. Without --cors-origin nothing changes: browsers refuse to send
 * such requests, and a form POST or beacon cannot read the answer.
 */
#include "collector.h"

#include <string.h>

int cors_origin_valid(const char *origin)
{
    if (!strcmp(origin, "*"))
        return 1;
    const char *host = strstr(origin, "://");
    if (!host || host == origin || !host[3] || strlen(origin) > 255)
        return 0;
    for (const char *c = origin; c < host; c++)
        if (!(*c >= 'a' && *c <= 'z'))
            return 0;                         /* a scheme is lower case when browsers send it */
    return !strpbrk(host + 3, "/?#@ \t\r\n"); /* an origin has no path, query or userinfo */
}

/* The configured origin that admits the request's Origin header, or NULL. */
static const char *allowed(const collector_t *col, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin || !*origin)
        return NULL;
    for (int i = 0; i < col->ncors; i++)
        if (!strcmp(col->cors[i], "*") || !strcmp(col->cors[i], origin))
            return col->cors[i];
    return NULL;
}

void cors_headers(const collector_t *col, struct MHD_Connection *conn, struct MHD_Response *r)
{
    const char *match = allowed(col, conn);
    if (!match)
        return;
    /* "*" admits any page; otherwise the page's own origin, which makes the answer depend on
     * the Origin header: caches must know. */
    MHD_add_response_header(
        r, "Access-Control-Allow-Origin",
        strcmp(match, "*") ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin") : "*");
    if (strcmp(match, "*"))
        MHD_add_response_header(r, "Vary", "Origin");
}

int cors_preflight(const collector_t *col, struct MHD_Connection *conn, const char *method)
{
    return !strcmp(method, "OPTIONS") &&
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method") &&
           allowed(col, conn) != NULL;
}

void cors_preflight_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "POST");
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Authorization, X-API-Key, Content-Type, Content-Encoding");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
}
