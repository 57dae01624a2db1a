/*
 * errors.c - names and descriptions of enr_err_t and enr_stat_t; the library version.
 */
#include "enrich.h"

#include <stddef.h>

static const struct {
    enr_err_t code;
    const char *name, *desc;
} errors[] = {
    {ENR_OK, "ENR_OK", "success"},
    {ENR_ERR_INVALID_ARG, "ENR_ERR_INVALID_ARG", "invalid argument"},
    {ENR_ERR_CONF_UNKNOWN, "ENR_ERR_CONF_UNKNOWN", "unknown configuration property"},
    {ENR_ERR_CONF_INVALID, "ENR_ERR_CONF_INVALID", "invalid configuration value"},
    {ENR_ERR_NOMEM, "ENR_ERR_NOMEM", "out of memory"},
    {ENR_ERR_STAGE, "ENR_ERR_STAGE", "stage failed to start or is unknown"},
    {ENR_ERR_DECODE, "ENR_ERR_DECODE", "record is not a valid event"},
    {ENR_ERR_SCHEMA, "ENR_ERR_SCHEMA", "schema version newer than supported"},
    {ENR_ERR_TOO_LARGE, "ENR_ERR_TOO_LARGE", "record larger than input.max.bytes"},
    {ENR_ERR_TIMED_OUT, "ENR_ERR_TIMED_OUT", "timed out"},
    {ENR_ERR_TRANSPORT, "ENR_ERR_TRANSPORT", "Kafka clients could not be created"},
    {ENR_ERR_RECURSIVE_CALL, "ENR_ERR_RECURSIVE_CALL", "not allowed from inside a callback"},
    {ENR_ERR_STOPPED, "ENR_ERR_STOPPED", "processor stopped"},
    {ENR_ERR_FENCED, "ENR_ERR_FENCED", "fenced: another instance uses this transactional id"},
    {ENR_ERR_KAFKA, "ENR_ERR_KAFKA", "Kafka error"},
    {ENR_ERR_KAFKA_FATAL, "ENR_ERR_KAFKA_FATAL", "fatal Kafka error: the processor stopped"},
    {ENR_ERR_SELF_FENCED, "ENR_ERR_SELF_FENCED",
     "fenced by its own rejoin after a session timeout: start a new processor"},
};

const char *enr_err2str(enr_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].desc;
    return "unknown error";
}

const char *enr_err2name(enr_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "ENR_ERR_UNKNOWN";
}

static const char *const stat_names[ENR_STAT__CNT] = {
    [ENR_STAT_CONSUMED] = "consumed",         [ENR_STAT_ENRICHED] = "enriched",
    [ENR_STAT_DROPPED] = "dropped",           [ENR_STAT_DEAD_LETTERS] = "dead_letters",
    [ENR_STAT_AGGREGATES] = "aggregates",     [ENR_STAT_ALERTS] = "alerts",
    [ENR_STAT_TXN_COMMITS] = "txn_commits",   [ENR_STAT_TXN_ABORTS] = "txn_aborts",
    [ENR_STAT_PROFILES] = "profiles",         [ENR_STAT_PROFILE_UPDATES] = "profile_updates",
    [ENR_STAT_LATE_EVENTS] = "late_events",   [ENR_STAT_RESTORED] = "restored",
    [ENR_STAT_REBALANCES] = "rebalances",     [ENR_STAT_REBALANCE_MS] = "rebalance_ms",
    [ENR_STAT_TASKS] = "tasks",               [ENR_STAT_RESTORE_RECORDS] = "restore_records",
    [ENR_STAT_RESTORE_BYTES] = "restore_bytes",
    [ENR_STAT_FUTURE_EVENTS] = "future_events",
};

const char *enr_stat_name(enr_stat_t which)
{
    return (unsigned)which < ENR_STAT__CNT ? stat_names[which] : NULL;
}

/* UE__VERSION_STR and UE__VERSION_HEX come from the file VERSION (the Makefile passes them);
 * the header's macro, which callers compile against, must agree. */
_Static_assert(ENR_VERSION == UE__VERSION_HEX,
               "ENR_VERSION in enrich.h differs from the file VERSION");

int enr_version(void)
{
    return ENR_VERSION;
}

const char *enr_version_str(void)
{
    return UE__VERSION_STR;
}
