/*
 * errors.c - names and descriptions of ue_err_t, and the library version.
 */
#include "userevents.h"

#include <stddef.h>

static const struct {
    ue_err_t code;
    const char *name, *desc;
} errors[] = {
    {UE_OK, "UE_OK", "success"},
    {UE_ERR_INVALID_ARG, "UE_ERR_INVALID_ARG", "invalid argument"},
    {UE_ERR_CONF_UNKNOWN, "UE_ERR_CONF_UNKNOWN", "unknown configuration property"},
    {UE_ERR_CONF_INVALID, "UE_ERR_CONF_INVALID", "invalid configuration value"},
    {UE_ERR_NOMEM, "UE_ERR_NOMEM", "out of memory"},
    {UE_ERR_QUEUE_FULL, "UE_ERR_QUEUE_FULL", "in-memory queue full: event dropped"},
    {UE_ERR_TIMED_OUT, "UE_ERR_TIMED_OUT", "timed out"},
    {UE_ERR_SPOOL, "UE_ERR_SPOOL", "disk spool error"},
    {UE_ERR_SPOOL_LOCKED, "UE_ERR_SPOOL_LOCKED", "spool directory in use by another process"},
    {UE_ERR_TRANSPORT, "UE_ERR_TRANSPORT", "transport could not be created"},
    {UE_ERR_FORKED, "UE_ERR_FORKED",
     "client was created before fork(): create a new client in this process"},
    {UE_ERR_RECURSIVE_CALL, "UE_ERR_RECURSIVE_CALL", "not allowed from inside a callback"},
    {UE_ERR_ENCODE, "UE_ERR_ENCODE", "event could not be encoded"},
    {UE_ERR_TOO_LARGE, "UE_ERR_TOO_LARGE", "encoded event larger than event.max.bytes"},
    {UE_ERR_SHUTDOWN, "UE_ERR_SHUTDOWN", "client is shutting down"},
    {UE_ERR_SPOOL_FULL, "UE_ERR_SPOOL_FULL", "spool full: oldest events dropped"},
    {UE_ERR_SPOOL_EXPIRED, "UE_ERR_SPOOL_EXPIRED", "event older than spool.max.age.ms"},
    {UE_ERR_TYPE_RESERVED, "UE_ERR_TYPE_RESERVED",
     "event type reserved for the pipeline's own topics (enriched, dead_letter, ...)"},
    {UE_ERR_BROKER, "UE_ERR_BROKER", "broker refused the event"},
    {UE_ERR_COLLECTOR, "UE_ERR_COLLECTOR", "collector refused the event"},
};

const char *ue_err2str(ue_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].desc;
    return "unknown error";
}

const char *ue_err2name(ue_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "UE_ERR_UNKNOWN";
}

/* UE__VERSION_STR and UE__VERSION_HEX come from the file VERSION (the Makefile passes them);
 * the header's macro, which callers compile against, must agree. */
_Static_assert(UE_VERSION == UE__VERSION_HEX,
               "UE_VERSION in userevents.h differs from the file VERSION");

int ue_version(void)
{
    return UE_VERSION;
}

const char *ue_version_str(void)
{
    return UE__VERSION_STR;
}
