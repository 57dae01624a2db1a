/*
 * stats.c - statistics of a sink: single counters and the JSON document of all of them.
 */
#include "sink.h"
#include "uc_props.h"

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

static int64_t stat_of(void *sink, int i)
{
    return whs_stat(sink, (whs_stat_t)i);
}

size_t whs_stats_json(whs_sink_t *s, char *buf, size_t size)
{
    return uc__stats_json(names, WHS_STAT__CNT, stat_of, s, buf, size);
}
