/*
 * errors.c - names and descriptions of whs_err_t, and the library version.
 */
#include "whsink.h"

#include <stddef.h>

static const struct {
    whs_err_t code;
    const char *name, *desc;
} errors[] = {
    {WHS_OK, "WHS_OK", "success"},
    {WHS_ERR_INVALID_ARG, "WHS_ERR_INVALID_ARG", "invalid argument"},
    {WHS_ERR_CONF_UNKNOWN, "WHS_ERR_CONF_UNKNOWN", "unknown configuration property"},
    {WHS_ERR_CONF_INVALID, "WHS_ERR_CONF_INVALID", "invalid configuration value"},
    {WHS_ERR_NOMEM, "WHS_ERR_NOMEM", "out of memory"},
    {WHS_ERR_TIMED_OUT, "WHS_ERR_TIMED_OUT", "timed out"},
    {WHS_ERR_RECURSIVE_CALL, "WHS_ERR_RECURSIVE_CALL", "not allowed from inside a callback"},
    {WHS_ERR_CLOSED, "WHS_ERR_CLOSED", "sink is closed"},
    {WHS_ERR_KAFKA_INIT, "WHS_ERR_KAFKA_INIT", "Kafka client could not be created"},
    {WHS_ERR_MAPPING, "WHS_ERR_MAPPING", "record could not be mapped to a row"},
    {WHS_ERR_WAREHOUSE, "WHS_ERR_WAREHOUSE", "warehouse operation failed"},
    {WHS_ERR_WAREHOUSE_REJECTED, "WHS_ERR_WAREHOUSE_REJECTED", "warehouse refused rows"},
    {WHS_ERR_FENCED, "WHS_ERR_FENCED", "another sink committed these offsets first"},
    {WHS_ERR_KAFKA, "WHS_ERR_KAFKA", "Kafka error"},
    {WHS_ERR_DEAD_LETTER, "WHS_ERR_DEAD_LETTER", "dead letter could not be delivered"},
    {WHS_ERR_KAFKA_FATAL, "WHS_ERR_KAFKA_FATAL", "fatal Kafka client error"},
    {WHS_ERR_WAREHOUSE_FATAL, "WHS_ERR_WAREHOUSE_FATAL", "the warehouse refused for good"},
};

const char *whs_err2str(whs_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].desc;
    return "unknown error";
}

const char *whs_err2name(whs_err_t err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "WHS_ERR_UNKNOWN";
}

/* UE__VERSION_STR and UE__VERSION_HEX come from the file VERSION (the Makefile passes them);
 * the header's macro, which callers compile against, must agree. */
_Static_assert(WHS_VERSION == UE__VERSION_HEX,
               "WHS_VERSION in whsink.h differs from the file VERSION");

int whs_version(void)
{
    return WHS_VERSION;
}

const char *whs_version_str(void)
{
    return UE__VERSION_STR;
}
