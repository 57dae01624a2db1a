/*
 * backend.c - choosing a backend by URL scheme, and the resume helpers they share.
 */
#include "backend.h"
#include "url.h"

#include <stdlib.h>
#include <string.h>

static const whs__backend_ops_t *const backends[] = {
    &whs__backend_sqlite,
    &whs__backend_postgres,
    &whs__backend_clickhouse,
    &whs__backend_file,
};

const whs__backend_ops_t *whs__backend_for(const char *url)
{
    whs__url_t u;
    if (whs__url_parse(url, &u, NULL, 0))
        return NULL;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->scheme, u.scheme) == 0)
            return backends[i];
    return NULL;
}

whs__be_rc_t whs__backend_open(const whs__be_conf_t *conf, whs__backend_t **out, char *err,
                               size_t err_size)
{
    const whs__backend_ops_t *ops = whs__backend_for(conf->url);
    *out = NULL;
    if (!ops) {
        whs__url_t u;
        if (whs__url_parse(conf->url, &u, err, err_size) == 0)
            uc__errstr(err, err_size, "warehouse.url: no backend for scheme \"%s\"", u.scheme);
        return WHS__BE_FATAL;
    }
    whs__be_rc_t rc = ops->open(conf, out, err, err_size);
    if (rc == WHS__BE_OK)
        (*out)->ops = ops;
    return rc;
}

void whs__resume_free(whs__resume_t *r)
{
    free(r->skips);
    r->skips = NULL;
    r->nskips = 0;
}

int whs__resume_skips(const whs__resume_t *r, int64_t offset, int32_t dt, int32_t bucket)
{
    for (size_t i = 0; i < r->nskips; i++) {
        const whs__skip_t *s = &r->skips[i];
        if (offset >= s->lo && offset <= s->hi && (s->dt == INT32_MIN || s->dt == dt) &&
            (s->bucket < 0 || s->bucket == bucket))
            return 1;
    }
    return 0;
}

int whs__resume_add_skip(whs__resume_t *r, int64_t lo, int64_t hi, int32_t dt, int32_t bucket)
{
    if (r->nskips) {
        whs__skip_t *last = &r->skips[r->nskips - 1];
        if (last->dt == dt && last->bucket == bucket && last->hi + 1 == lo) {
            last->hi = hi;
            return 0;
        }
    }
    if ((r->nskips & (r->nskips - 1)) == 0) { /* grow at powers of two */
        size_t cap = r->nskips ? r->nskips * 2 : 4;
        whs__skip_t *ns = realloc(r->skips, cap * sizeof(*ns));
        if (!ns)
            return -1;
        r->skips = ns;
    }
    r->skips[r->nskips++] = (whs__skip_t){lo, hi, dt, bucket};
    return 0;
}

const char *whs__be_rc_name(whs__be_rc_t rc)
{
    switch (rc) {
    case WHS__BE_OK: return "ok";
    case WHS__BE_RETRY: return "transient";
    case WHS__BE_DATA: return "rows refused";
    case WHS__BE_FENCED: return "fenced";
    default: return "failed";
    }
}
