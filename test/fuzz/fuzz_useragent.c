/*
 * fuzz_useragent.c - libFuzzer target for the user-agent parser of the "useragent" stage
 * (libenrich/src/ua_parse.h): the User-Agent header a collector copied into the event, any
 * bytes a client chose.
 *
 * The input is the user agent, in a buffer of exactly its length (no NUL after it: ASan flags
 * any read past it). Oracles, from what ua_parse.h promises: every output is a short printable
 * ASCII string; the device class is one of the five, "unknown" with nothing else found; a
 * browser version is digits and at most one dot (major.minor), an OS version digits and dots
 * or one of the Windows names; only the first ENR__UA_SCAN_MAX bytes count (parsing all of a
 * longer input equals parsing that prefix); the same input always gives the same answer.
 */
#include "fuzz_util.h"
#include "ua_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when @p s is NUL-terminated within @p max bytes and printable ASCII. */
static int printable(const char *s, size_t max)
{
    size_t i = 0;
    for (; i < max && s[i]; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return i < max;
}

/* Digits, with dots only between digits; at most @p dots of them. */
static int version_ok(const char *v, int dots)
{
    int n = 0;
    for (size_t i = 0; v[i]; i++) {
        if (v[i] == '.') {
            if (i == 0 || v[i + 1] < '0' || v[i + 1] > '9' || ++n > dots)
                return 0;
        } else if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static void check(const enr__ua_t *ua)
{
    static const char *const devices[] = {"desktop", "mobile", "tablet", "bot", "unknown"};
    static const char *const windows[] = {"Vista", "XP"};
    FUZZ_CHECK(ua->browser && ua->os && ua->device, "a NULL output");
    FUZZ_CHECK(printable(ua->browser, 64) && printable(ua->os, 64), "browser/os not short ASCII");
    FUZZ_CHECK(printable(ua->browser_version, ENR__UA_VERSION_MAX), "browser version");
    FUZZ_CHECK(printable(ua->os_version, ENR__UA_VERSION_MAX), "os version");
    int device = 0;
    for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
        device |= !strcmp(ua->device, devices[i]);
    FUZZ_CHECK(device, "device class \"%s\"", ua->device);
    FUZZ_CHECK(strcmp(ua->device, "unknown") ||
                   (!*ua->browser && !*ua->os && !*ua->browser_version && !*ua->os_version),
               "unknown device, but %s %s found", ua->browser, ua->os);
    FUZZ_CHECK(version_ok(ua->browser_version, 1), "browser version \"%s\"", ua->browser_version);
    int named = !strcmp(ua->os_version, windows[0]) || !strcmp(ua->os_version, windows[1]);
    FUZZ_CHECK(named || version_ok(ua->os_version, ENR__UA_VERSION_MAX), "os version \"%s\"",
               ua->os_version);
    FUZZ_CHECK(!*ua->os_version || *ua->os, "os version \"%s\" without an os", ua->os_version);
    FUZZ_CHECK(!*ua->browser_version || *ua->browser, "browser version without a browser");
}

static int same(const enr__ua_t *a, const enr__ua_t *b)
{
    return !strcmp(a->browser, b->browser) && !strcmp(a->browser_version, b->browser_version) &&
           !strcmp(a->os, b->os) && !strcmp(a->os_version, b->os_version) &&
           !strcmp(a->device, b->device);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ua = malloc(size ? size : 1); /* exactly the input: no NUL after it */
    enr__ua_t first, again, prefix;
    FUZZ_CHECK(ua != NULL, "out of memory");
    memcpy(ua, data, size);
    enr__ua_parse(ua, size, &first);
    check(&first);
    enr__ua_parse(ua, size, &again);
    FUZZ_CHECK(same(&first, &again), "two parses of one input differ");
    if (size > ENR__UA_SCAN_MAX) {
        enr__ua_parse(ua, ENR__UA_SCAN_MAX, &prefix);
        FUZZ_CHECK(same(&first, &prefix), "bytes past ENR__UA_SCAN_MAX changed the answer");
    }
    free(ua);
    return 0;
}
