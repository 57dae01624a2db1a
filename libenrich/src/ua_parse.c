/*
 * ua_parse.c - the user-agent rules listed in ua_parse.h.
 *
 * Every search is bounded by the input length (memmem and hand-written loops, never str*
 * functions on the input), so a UA without a NUL, with embedded NULs or of any length is
 * read safely. Order matters: most browsers also send the tokens of the ones they derive from
 * ("Edg/" UAs contain "Chrome/" and "Safari/"), so the specific tokens are tried first.
 */
#include "ua_parse.h"

#include <string.h>

/* A version component longer than this is cut (keeps every version within its buffer). */
#define COMPONENT_MAX 8

typedef struct text {
    const char *p;
    size_t n;
} text_t;

static const struct {
    const char *token;
    const char *name;
} bots[] = {
    {"Googlebot", "Googlebot"},     {"bingbot", "bingbot"},         {"YandexBot", "YandexBot"},
    {"DuckDuckBot", "DuckDuckBot"}, {"Baiduspider", "Baiduspider"},
};

static const struct {
    const char *token;
    const char *name;
} browsers[] = {
    {"Edg/", "Edge"},
    {"EdgA/", "Edge"},
    {"EdgiOS/", "Edge"},
    {"Edge/", "Edge"},
    {"OPR/", "Opera"},
    {"OPiOS/", "Opera"},
    {"SamsungBrowser/", "Samsung Internet"},
    {"YaBrowser/", "Yandex"},
    {"CriOS/", "Chrome"},
    {"FxiOS/", "Firefox"},
    {"Chromium/", "Chromium"},
    {"Chrome/", "Chrome"},
    {"Firefox/", "Firefox"},
    {"curl/", "curl"},
    {"Wget/", "Wget"},
    {"python-requests/", "python-requests"},
    {"Go-http-client/", "Go-http-client"},
};

static const struct {
    const char *nt;
    const char *name;
} windows_versions[] = {
    {"10.0", "10"},   {"6.3", "8.1"}, {"6.2", "8"},  {"6.1", "7"},
    {"6.0", "Vista"}, {"5.1", "XP"},  {"5.2", "XP"},
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The first occurrence of @p token in @p t, or NULL. */
static const char *find(const text_t *t, const char *token)
{
    return memmem(t->p, t->n, token, strlen(token));
}

/* The position just after @p token in @p t, or NULL when it does not occur. */
static const char *after(const text_t *t, const char *token)
{
    const char *at = find(t, token);
    return at ? at + strlen(token) : NULL;
}

/* 1 when the lower-case @p token is at @p s, case-insensitively, within @p end. */
static int ci_at(const char *s, const char *end, const char *token)
{
    size_t i = 0;
    for (; token[i]; i++)
        if (s + i >= end || lower(s[i]) != token[i])
            return 0;
    return 1;
}

/*
 * Copies up to @p parts numeric components at @p p ("10_15_7" or "10.15.7"; '_' becomes '.')
 * into @p out (ENR__UA_VERSION_MAX bytes). Stops at the first non-digit; "" when @p p does not
 * start with a digit.
 */
static void read_version(const text_t *t, const char *p, int parts, char *out)
{
    const char *end = t->p + t->n;
    size_t o = 0;
    for (int k = 0; k < parts && p && p < end && is_digit(*p); k++) {
        if (k > 0)
            out[o++] = '.';
        for (size_t d = 0; p < end && is_digit(*p); p++, d++)
            if (d < COMPONENT_MAX)
                out[o++] = *p;
        if (end - p < 2 || (*p != '.' && *p != '_') || !is_digit(p[1]))
            break;
        p++;
    }
    out[o] = '\0';
}

/* A named bot: its name and version; 1 when found. */
static int parse_bot(const text_t *t, enr__ua_t *out)
{
    for (size_t i = 0; i < sizeof(bots) / sizeof(bots[0]); i++) {
        const char *p = after(t, bots[i].token);
        if (!p)
            continue;
        out->browser = bots[i].name;
        if (p < t->p + t->n && *p == '/')
            read_version(t, p + 1, 2, out->browser_version);
        return 1;
    }
    return 0;
}

/* Browsers whose version is not right after their own token. */
static void parse_browser_special(const text_t *t, enr__ua_t *out)
{
    const char *p;
    if ((p = after(t, "Opera/"))) { /* Presto: "Opera/9.80 ... Version/12.16" */
        const char *v = after(t, "Version/");
        out->browser = "Opera";
        read_version(t, v ? v : p, 2, out->browser_version);
    } else if ((p = after(t, "MSIE "))) {
        out->browser = "IE";
        read_version(t, p, 2, out->browser_version);
    } else if (find(t, "Trident/")) { /* IE 11: "Trident/7.0; rv:11.0" */
        out->browser = "IE";
        read_version(t, after(t, "rv:"), 2, out->browser_version);
    } else if (find(t, "Safari/") && (p = after(t, "Version/")) && !find(t, "Android")) {
        out->browser = "Safari";
        read_version(t, p, 2, out->browser_version);
    }
}

static void parse_browser(const text_t *t, enr__ua_t *out)
{
    if (parse_bot(t, out))
        return;
    for (size_t i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++) {
        const char *p = after(t, browsers[i].token);
        if (p) {
            out->browser = browsers[i].name;
            read_version(t, p, 2, out->browser_version);
            return;
        }
    }
    parse_browser_special(t, out);
}

static void parse_windows(const text_t *t, const char *p, enr__ua_t *out)
{
    char nt[ENR__UA_VERSION_MAX];
    out->os = "Windows";
    read_version(t, p, 2, nt);
    for (size_t i = 0; i < sizeof(windows_versions) / sizeof(windows_versions[0]); i++) {
        if (!strcmp(nt, windows_versions[i].nt)) {
            strcpy(out->os_version, windows_versions[i].name);
            return;
        }
    }
}

/* iOS and iPadOS write their version as "iPhone OS 17_1_2" or "CPU OS 16_6". */
static void parse_apple_mobile(const text_t *t, const char *os, enr__ua_t *out)
{
    const char *p = after(t, "iPhone OS ");
    out->os = os;
    read_version(t, p ? p : after(t, "CPU OS "), 3, out->os_version);
}

/* "CrOS x86_64 14541.0.0": the version follows the architecture. */
static void parse_chromeos(const text_t *t, const char *p, enr__ua_t *out)
{
    const char *end = t->p + t->n;
    out->os = "ChromeOS";
    while (p < end && *p != ' ' && *p != ')' && *p != ';')
        p++;
    if (p < end && *p == ' ')
        read_version(t, p + 1, 3, out->os_version);
}

/* After "Android" or "Mac OS X": an optional space, then the version. */
static void parse_spaced(const text_t *t, const char *p, const char *os, enr__ua_t *out)
{
    out->os = os;
    if (p < t->p + t->n && *p == ' ')
        p++;
    read_version(t, p, 3, out->os_version);
}

static void parse_os(const text_t *t, enr__ua_t *out)
{
    const char *p;
    if ((p = after(t, "Windows NT ")))
        parse_windows(t, p, out);
    else if ((p = after(t, "Windows Phone")))
        parse_spaced(t, p, "Windows Phone", out);
    else if (find(t, "iPad"))
        parse_apple_mobile(t, "iPadOS", out);
    else if (find(t, "iPhone") || find(t, "iPod"))
        parse_apple_mobile(t, "iOS", out);
    else if ((p = after(t, "CrOS ")))
        parse_chromeos(t, p, out);
    else if ((p = after(t, "Android")))
        parse_spaced(t, p, "Android", out);
    else if ((p = after(t, "Mac OS X")))
        parse_spaced(t, p, "macOS", out);
    else if (find(t, "Macintosh"))
        out->os = "macOS";
    else if (find(t, "Linux"))
        out->os = "Linux";
}

/*
 * One pass for the generic bot words: "crawl", "spider", "slurp", or "bot" as a word ending
 * ("AhrefsBot/7.0", "MJ12bot;", "+http://.../bots"), but not "CUBOT" (a phone brand).
 */
static int generic_bot(const text_t *t)
{
    static const char ends[] = "/;) -+s";
    const char *end = t->p + t->n;
    for (const char *s = t->p; s < end; s++) {
        switch (lower(*s)) {
        case 'c':
            if (ci_at(s, end, "crawl"))
                return 1;
            break;
        case 's':
            if (ci_at(s, end, "spider") || ci_at(s, end, "slurp"))
                return 1;
            break;
        case 'b':
            if (ci_at(s, end, "bot")) {
                const char *next = s + 3;
                int word_end = next == end || (*next != '\0' && strchr(ends, lower(*next)));
                int cubot = s - t->p >= 2 && lower(s[-2]) == 'c' && lower(s[-1]) == 'u';
                if (word_end && !cubot)
                    return 1;
            }
            break;
        default: break;
        }
    }
    return 0;
}

static int blank(const text_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i] != ' ' && t->p[i] != '\t' && t->p[i] != '\r' && t->p[i] != '\n')
            return 0;
    return 1;
}

static const char *device_class(const text_t *t, const enr__ua_t *ua, int named_bot)
{
    int mobile = find(t, "Mobile") || find(t, "iPhone") || find(t, "iPod") ||
                 find(t, "Opera Mini") || find(t, "Windows Phone");
    if (named_bot || generic_bot(t))
        return "bot";
    if (find(t, "iPad") || (find(t, "Tablet") && !find(t, "Tablet PC")) ||
        (!strcmp(ua->os, "Android") && !mobile))
        return "tablet";
    return mobile ? "mobile" : "desktop";
}

void enr__ua_parse(const char *ua, size_t len, enr__ua_t *out)
{
    text_t t = {ua ? ua : "", ua ? len : 0};
    if (t.n > ENR__UA_SCAN_MAX)
        t.n = ENR__UA_SCAN_MAX;
    out->browser = "";
    out->browser_version[0] = '\0';
    out->os = "";
    out->os_version[0] = '\0';
    if (blank(&t)) {
        out->device = "unknown";
        return;
    }
    parse_browser(&t, out);
    parse_os(&t, out);
    int named_bot = 0;
    for (size_t i = 0; i < sizeof(bots) / sizeof(bots[0]); i++)
        named_bot |= out->browser == bots[i].name;
    out->device = device_class(&t, out, named_bot);
}
