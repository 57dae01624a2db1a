/*
 * ua_parse.h - a small user-agent parser for the "useragent" stage: browser family and
 * version, operating system and version, and device class, from token rules (no regular
 * expressions, no allocation, no tables to download). It covers what a product dashboard
 * needs for the browsers and systems that carry almost all traffic; anything else comes out
 * with empty names rather than wrong ones.
 *
 * Browser (first rule that matches wins; version = at most "major.minor" of the digits after
 * the token):
 *   bots (below), by their own token   Googlebot, bingbot, YandexBot, DuckDuckBot, Baiduspider
 *   "Edg/", "EdgA/", "EdgiOS/", "Edge/" Edge      (Chromium Edge, Android, iOS, legacy EdgeHTML)
 *   "OPR/", "OPiOS/"                    Opera     ("Opera/" of Presto: version from "Version/")
 *   "SamsungBrowser/"                   Samsung Internet
 *   "YaBrowser/"                        Yandex
 *   "CriOS/"                            Chrome    (Chrome on iOS)
 *   "FxiOS/"                            Firefox   (Firefox on iOS)
 *   "Chromium/"                         Chromium
 *   "Chrome/"                           Chrome    (also Android WebView)
 *   "Firefox/"                          Firefox
 *   "MSIE x", "Trident/" with "rv:x"    IE
 *   "Safari/" and "Version/x", not on Android    Safari (version from "Version/")
 *   "curl/", "Wget/", "python-requests/", "Go-http-client/"   the tool's own name
 * Anything else (other apps, old Android browser, in-app web views): browser "" and "".
 *
 * OS (first match wins):
 *   "Windows NT x.y"       Windows: 10.0 -> "10" (Windows 11 sends 10.0 too), 6.3 -> "8.1",
 *                          6.2 -> "8", 6.1 -> "7", 6.0 -> "Vista", 5.1/5.2 -> "XP", other ""
 *   "Windows Phone x.y"    Windows Phone "x.y"
 *   "iPad" ... "OS x_y_z"  iPadOS "x.y.z" (iPadOS 13+ in desktop mode sends a Mac UA: macOS)
 *   "iPhone"/"iPod" ... "OS x_y_z"   iOS "x.y.z"
 *   "CrOS <arch> x.y.z"    ChromeOS "x.y.z" (the platform version)
 *   "Android x.y.z"        Android "x.y.z" ("" when no version follows)
 *   "Mac OS X x_y_z"       macOS "x.y.z" (also with dots: Firefox sends "10.15")
 *   "Linux"                Linux ""
 *   otherwise              "" and ""
 *
 * Device class (first match wins):
 *   "unknown"  empty or blank input
 *   "bot"      a named bot above; or, case-insensitively, "crawl", "spider", "slurp", or
 *              "bot" followed by '/', ';', ')', ' ', '-', '+', 's' or the end, except
 *              "cubot" (a phone brand)
 *   "tablet"   "iPad"; "Tablet" (not "Tablet PC", which Windows desktops send); Android
 *              without any of the mobile tokens below
 *   "mobile"   "Mobile", "iPhone", "iPod", "Opera Mini", "Windows Phone"
 *   "desktop"  everything else (including curl and the other HTTP tools)
 *
 * Only the first ENR__UA_SCAN_MAX bytes are read; any bytes (invalid UTF-8, NULs beyond the
 * length) are safe, and every output is ASCII.
 */
#ifndef ENR_UA_PARSE_H
#define ENR_UA_PARSE_H

#include <stddef.h>

#define ENR__UA_SCAN_MAX 4096
#define ENR__UA_VERSION_MAX 32

typedef struct enr__ua {
    const char *browser;                       /* a static name, or "" */
    char browser_version[ENR__UA_VERSION_MAX]; /* "120.0", or "" */
    const char *os;                            /* a static name, or "" */
    char os_version[ENR__UA_VERSION_MAX];      /* "10.15.7", or "" */
    const char *device;                        /* desktop, mobile, tablet, bot, unknown */
} enr__ua_t;

/* Parses the @p len bytes at @p ua (NULL: empty) into @p out. Never fails. */
void enr__ua_parse(const char *ua, size_t len, enr__ua_t *out);

#endif
