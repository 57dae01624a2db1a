/*
 * stats.c - statistics of a sink: single counters and the JSON document of all of them.
 */
#include "sink.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const names[WHS_STAT__CNT] = {
    [WHS_STAT_CONSUMED] = "consumed",
    [WHS_STAT_ROWS_LOADED] = "rows_loaded",
    [WHS_STAT_BYTES_LOADED] = "bytes_loaded",
    [WHS_STAT_BATCHES] = "batches",
    [WHS_STAT_DEAD_LETTERS] = "dead_letters",
    [WHS_STAT_SKIPPED] = "skipped",
    [WHS_STAT_RETRIES] = "retries",
    [WHS_STAT_FENCED] = "fenced",
    [WHS_STAT_PAUSES] = "pauses",
    [WHS_STAT_PAUSED] = "paused",
    [WHS_STAT_BUFFERED_ROWS] = "buffered_rows",
    [WHS_STAT_BUFFERED_BYTES] = "buffered_bytes",
    [WHS_STAT_REBALANCES] = "rebalances",
    [WHS_STAT_COLUMNS_ADDED] = "columns_added",
    [WHS_STAT_DEAD_LETTER_FAILED] = "dead_letter_failed",
    [WHS_STAT_LAST_COMMIT_MS] = "last_commit_ms",
};

const char *whs_stat_name(whs_stat_t which)
{
    return (unsigned)which < WHS_STAT__CNT ? names[which] : NULL;
}

int64_t whs_stat(whs_sink_t *s, whs_stat_t which)
{
    if (!s || (unsigned)which >= WHS_STAT__CNT)
        return -1;
    return atomic_load_explicit(&s->stats[which], memory_order_relaxed);
}

size_t whs_stats_json(whs_sink_t *s, char *buf, size_t size)
{
    size_t len = 0;
    char scratch[1];
    if (!buf || size == 0) { /* only measure */
        buf = scratch;
        size = 1;
    }
    for (int i = 0; i < WHS_STAT__CNT; i++) {
        size_t room = len < size ? size - len : 0;
        int n = snprintf(room ? buf + len : NULL, room, "%s\"%s\":%" PRId64, i ? "," : "{",
                         names[i], s ? whs_stat(s, (whs_stat_t)i) : 0);
        len += (size_t)n;
    }
    size_t room = len < size ? size - len : 0;
    len += (size_t)snprintf(room ? buf + len : NULL, room, "}");
    return len;
}
