/*
 * test_enr_useragent.c - the user-agent parser (ua_parse.h) on real UA strings of the
 * browsers, systems, bots and tools it claims to cover; hostile input (empty, blank, garbage,
 * truncated tokens, very long, embedded NULs) never crashes; and the "useragent" stage.
 */
#include "enr_stagetest.h"
#include "ua_parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct ua_case {
    const char *ua;
    const char *browser, *browser_version, *os, *os_version, *device;
} ua_case_t;

static const ua_case_t cases[] = {
    /* desktop browsers */
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     "Chrome", "120.0", "Windows", "10", "desktop"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox",
     "121.0", "Windows", "10", "desktop"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Safari/605.1.15",
     "Safari", "17.1", "macOS", "10.15.7", "desktop"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:120.0) Gecko/20100101 Firefox/120.0",
     "Firefox", "120.0", "macOS", "10.15", "desktop"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     "Chrome", "120.0", "macOS", "10.15.7", "desktop"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
     "Edge", "120.0", "Windows", "10", "desktop"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582",
     "Edge", "18.19582", "Windows", "10", "desktop"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Safari/537.36 OPR/105.0.0.0",
     "Opera", "105.0", "Windows", "10", "desktop"},
    {"Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.16", "Opera", "12.16",
     "Windows", "7", "desktop"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36",
     "Yandex", "23.11", "Windows", "10", "desktop"},
    {"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", "IE", "11.0",
     "Windows", "7", "desktop"},
    {"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)", "IE", "10.0", "Windows",
     "8", "desktop"},
    {"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)", "IE", "8.0", "Windows",
     "XP", "desktop"},
    {"Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/109.0.0.0 Safari/537.36",
     "Chrome", "109.0", "Windows", "8.1", "desktop"},
    {"Mozilla/5.0 (Windows NT 6.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 "
     "Safari/537.36",
     "Chrome", "49.0", "Windows", "Vista", "desktop"},
    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox",
     "121.0", "Linux", "", "desktop"},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu "
     "Chromium/79.0.3945.79 Chrome/79.0.3945.79 Safari/537.36",
     "Chromium", "79.0", "Linux", "", "desktop"},
    {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     "Chrome", "120.0", "ChromeOS", "14541.0.0", "desktop"},
    /* phones */
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Mobile Safari/537.36",
     "Chrome", "120.0", "Android", "10", "mobile"},
    {"Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
     "Samsung Internet", "23.0", "Android", "13", "mobile"},
    {"Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Mobile Safari/537.36 OPR/79.0.4195.76505",
     "Opera", "79.0", "Android", "10", "mobile"},
    {"Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.6099.116 Mobile Safari/537.36 EdgA/120.0.2210.115",
     "Edge", "120.0", "Android", "10", "mobile"},
    {"Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", "Firefox", "121.0",
     "Android", "14", "mobile"},
    {"Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36",
     "Chrome", "119.0", "Android", "13", "mobile"},
    {"Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/91.0.4472.120 Mobile Safari/537.36",
     "Chrome", "91.0", "Android", "9", "mobile"},
    {"Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebKit/534.30 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
     "", "", "Android", "4.0.3", "mobile"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
     "Safari", "17.1", "iOS", "17.1.2", "mobile"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
     "Chrome", "120.0", "iOS", "17.2", "mobile"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
     "Firefox", "121.0", "iOS", "17.2", "mobile"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.0 EdgiOS/120.0.2210.126 Mobile/15E148 Safari/605.1.15",
     "Edge", "120.0", "iOS", "17.2", "mobile"},
    {"Mozilla/5.0 (iPod touch; CPU iPhone OS 15_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Version/15.6 Mobile/15E148 Safari/604.1",
     "Safari", "15.6", "iOS", "15.7", "mobile"},
    {"Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
     "Opera", "12.16", "Android", "", "mobile"},
    {"Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
     "Edge", "15.15063", "Windows Phone", "10.0", "mobile"},
    /* tablets */
    {"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1",
     "Safari", "16.6", "iPadOS", "16.6", "tablet"},
    {"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     "Chrome", "120.0", "Android", "13", "tablet"},
    {"Mozilla/5.0 (Linux; Android 12; SAMSUNG SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/17.0 Chrome/96.0.4664.104 Safari/537.36",
     "Samsung Internet", "17.0", "Android", "12", "tablet"},
    {"Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0", "Firefox", "121.0",
     "Android", "14", "tablet"},
    {"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0; Touch; Tablet PC "
     "2.0)",
     "IE", "10.0", "Windows", "8", "desktop"},
    /* bots */
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "2.1",
     "", "", "bot"},
    {"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html)",
     "Googlebot", "2.1", "Android", "6.0.1", "bot"},
    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot", "2.0",
     "", "", "bot"},
    {"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot", "3.0", "", "",
     "bot"},
    {"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "DuckDuckBot", "1.1", "", "",
     "bot"},
    {"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
     "Baiduspider", "2.0", "", "", "bot"},
    {"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", "", "",
     "", "", "bot"},
    {"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "", "", "", "", "bot"},
    {"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "", "", "", "",
     "bot"},
    {"Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)", "", "", "", "",
     "bot"},
    {"CCBot/2.0 (https://commoncrawl.org/faq/)", "", "", "", "", "bot"},
    /* HTTP tools */
    {"curl/8.4.0", "curl", "8.4", "", "", "desktop"},
    {"Wget/1.21.3", "Wget", "1.21", "", "", "desktop"},
    {"python-requests/2.31.0", "python-requests", "2.31", "", "", "desktop"},
    {"Go-http-client/1.1", "Go-http-client", "1.1", "", "", "desktop"},
    {"Go-http-client/2.0", "Go-http-client", "2.0", "", "", "desktop"},
    /* nothing known */
    {"MyApp/3.2 (build 77)", "", "", "", "", "desktop"},
    {"", "", "", "", "", "unknown"},
    {" \t ", "", "", "", "", "unknown"},
};

static void check_case(const ua_case_t *c)
{
    enr__ua_t ua;
    enr__ua_parse(c->ua, strlen(c->ua), &ua);
    if (strcmp(ua.browser, c->browser) || strcmp(ua.browser_version, c->browser_version) ||
        strcmp(ua.os, c->os) || strcmp(ua.os_version, c->os_version) ||
        strcmp(ua.device, c->device))
        fail_msg("%s\n  got      {%s, %s, %s, %s, %s}\n  expected {%s, %s, %s, %s, %s}", c->ua,
                 ua.browser, ua.browser_version, ua.os, ua.os_version, ua.device, c->browser,
                 c->browser_version, c->os, c->os_version, c->device);
}

static void test_ua_parses_real_user_agents(void **state)
{
    (void)state;
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 30);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_ua_null_is_unknown(void **state)
{
    (void)state;
    enr__ua_t ua;
    enr__ua_parse(NULL, 10, &ua);
    assert_string_equal(ua.device, "unknown");
    assert_string_equal(ua.browser, "");
    assert_string_equal(ua.os_version, "");
}

/* Every prefix of every case: tokens cut anywhere ("Chrome/", "Windows NT ", "CrOS x86"). */
static void test_ua_truncated_input_never_reads_past_its_length(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].ua);
        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n ? n : 1); /* exactly n bytes, no NUL: ASan sees overreads */
            assert_non_null(copy);
            memcpy(copy, cases[i].ua, n);
            enr__ua_t ua;
            enr__ua_parse(copy, n, &ua);
            assert_true(strlen(ua.browser_version) < ENR__UA_VERSION_MAX);
            assert_true(strlen(ua.os_version) < ENR__UA_VERSION_MAX);
            free(copy);
        }
    }
}

static void test_ua_huge_versions_stay_in_bounds(void **state)
{
    (void)state;
    enr__ua_t ua;
    const char *s = "Chrome/12345678901234567890.98765432109876543210.1 (Mac OS X "
                    "99999999999_88888888888_77777777777_66)";
    enr__ua_parse(s, strlen(s), &ua);
    assert_string_equal(ua.browser_version, "12345678.98765432");
    assert_string_equal(ua.os_version, "99999999.88888888.77777777");
}

static void test_ua_garbage_and_long_input_never_crash(void **state)
{
    (void)state;
    size_t len = 1 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    unsigned seed = 12345;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            big[i] = (char)(seed >> 16); /* any byte, NULs and invalid UTF-8 included */
        }
        enr__ua_t ua;
        enr__ua_parse(big, round == 0 ? len : (seed >> 4) % 5000, &ua);
        assert_non_null(ua.device);
    }
    /* a long run of a token's prefix (worst case for the searches), then the token */
    memset(big, 'b', len);
    memcpy(big + len - 6, "bot/1.", 6);
    enr__ua_t ua;
    enr__ua_parse(big, len, &ua);
    assert_string_equal(ua.device, "desktop"); /* past ENR__UA_SCAN_MAX: not read */
    memcpy(big + 100, "Chrome/1", 8);
    enr__ua_parse(big, len, &ua);
    assert_string_equal(ua.browser, "Chrome");
    assert_string_equal(ua.browser_version, "1");
    free(big);
}

/* ---- the stage ----------------------------------------------------------------------------- */

static void test_useragent_stage_fills_out_user_agent(void **state)
{
    (void)state;
    st_sink_t sink;
    st_stage_t st;
    st_event_t t;
    st_sink_init(&sink);
    assert_int_equal(st_stage_start(&st, enr__stage_useragent_new(NULL), &sink, NULL, NULL, 0), 0);
    assert_string_equal(st.def->name, "useragent");
    st_event_init(&t);
    t.context.user_agent = (char *)cases[0].ua;
    enr_event_t *e = st_event_ready(&t, 0);
    assert_int_equal(st_process(&st, e), ENR_KEEP);
    assert_ptr_equal(e->out.user_agent, &e->ua);
    assert_string_equal(e->ua.browser, "Chrome");
    assert_string_equal(e->ua.browser_version, "120.0");
    assert_string_equal(e->ua.os, "Windows");
    assert_string_equal(e->ua.os_version, "10");
    assert_string_equal(e->ua.device_class, "desktop");
    st_event_free(&t);
    st_stage_stop(&st);
    st_sink_free(&sink);
}

static void test_useragent_stage_leaves_events_without_ua_alone(void **state)
{
    (void)state;
    st_sink_t sink;
    st_stage_t st;
    st_event_t t;
    st_sink_init(&sink);
    assert_int_equal(st_stage_start(&st, enr__stage_useragent_new(NULL), &sink, NULL, NULL, 0), 0);
    st_event_init(&t);
    t.context.user_agent = (char *)"";
    assert_int_equal(st_process(&st, st_event_ready(&t, 0)), ENR_KEEP);
    assert_null(t.e.out.user_agent);
    t.context.user_agent = NULL;
    assert_int_equal(st_process(&st, st_event_ready(&t, 0)), ENR_KEEP);
    assert_null(t.e.out.user_agent);
    t.ev.context = NULL;
    assert_int_equal(st_process(&st, st_event_ready(&t, 0)), ENR_KEEP);
    assert_null(t.e.out.user_agent);
    st_event_free(&t);
    st_stage_stop(&st);
    st_sink_free(&sink);
}

/* Whatever the cache holds (hits, slot collisions, UAs too long to cache): a fresh parse. */
static void test_useragent_stage_cache_returns_what_the_parser_returns(void **state)
{
    (void)state;
    st_sink_t sink;
    st_stage_t st;
    st_event_t t;
    char buf[600];
    st_sink_init(&sink);
    assert_int_equal(st_stage_start(&st, enr__stage_useragent_new(NULL), &sink, NULL, NULL, 0), 0);
    st_event_init(&t);
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t round = 0; round < 3 * n + 2000; round++) {
        const char *ua = cases[round % n].ua;
        if (round >= 3 * n) { /* many distinct UAs: every slot is reused */
            snprintf(buf, sizeof(buf), "%s %zu%s", cases[round % n].ua, round,
                     round % 7 ? ""
                               : " padding past the cached length ......................."
                                 "...................................................."
                                 "...................................................."
                                 "....................................................");
            ua = buf;
        }
        t.context.user_agent = (char *)ua;
        enr_event_t *e = st_event_ready(&t, 0);
        assert_int_equal(st_process(&st, e), ENR_KEEP);
        if (!*ua) {
            assert_null(e->out.user_agent);
            continue;
        }
        enr__ua_t want;
        enr__ua_parse(ua, strlen(ua), &want);
        assert_non_null(e->out.user_agent);
        assert_string_equal(e->ua.browser, want.browser);
        assert_string_equal(e->ua.browser_version, want.browser_version);
        assert_string_equal(e->ua.os, want.os);
        assert_string_equal(e->ua.os_version, want.os_version);
        assert_string_equal(e->ua.device_class, want.device);
    }
    st_event_free(&t);
    st_stage_stop(&st);
    st_sink_free(&sink);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ua_parses_real_user_agents),
        cmocka_unit_test(test_ua_null_is_unknown),
        cmocka_unit_test(test_ua_truncated_input_never_reads_past_its_length),
        cmocka_unit_test(test_ua_huge_versions_stay_in_bounds),
        cmocka_unit_test(test_ua_garbage_and_long_input_never_crash),
        cmocka_unit_test(test_useragent_stage_fills_out_user_agent),
        cmocka_unit_test(test_useragent_stage_leaves_events_without_ua_alone),
        cmocka_unit_test(test_useragent_stage_cache_returns_what_the_parser_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
