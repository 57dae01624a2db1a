/*
 * context.c - the context field table (see context.h).
 */
#include "context.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define F(n, member, num) {n, offsetof(Userevents__Context, member), num}

const ue__ctx_field_t ue__ctx_fields[UE__CTX_CNT] = {
    F("app.name", app_name, 0),
    F("app.version", app_version, 0),
    F("app.build", app_build, 0),
    F("device.model", device_model, 0),
    F("device.manufacturer", device_manufacturer, 0),
    F("os.name", os_name, 0),
    F("os.version", os_version, 0),
    F("locale", locale, 0),
    F("timezone", timezone, 0),
    F("screen.width", screen_width, 1),
    F("screen.height", screen_height, 1),
    F("network", network, 0),
    F("ip", ip, 0),
    F("user_agent", user_agent, 0),
};

int ue__ctx_find(const char *name)
{
    for (int i = 0; i < UE__CTX_CNT; i++)
        if (strcmp(ue__ctx_fields[i].name, name) == 0)
            return i;
    return -1;
}

long ue__ctx_parse_number(const char *value)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < 0 || v > 100000)
        return -1;
    return v;
}
