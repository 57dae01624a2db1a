/*
 * simulate.c - simulated users: a realistic mix of page views, clicks and purchases, with
 * IPs, user agents and amounts, tracked through libuserevents at a steady rate.
 */
#include "demo.h"
#include "userevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const IPS[] = {"81.2.69.142", "2001:db8:1::7", "192.0.2.10", "203.0.113.9"};
static const char *const UAS[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
};
static const char *const PAGES[] = {"/", "/pricing", "/docs", "/blog/launch", "/signup"};

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ue_client_t *client(const demo_opts_t *o)
{
    char errstr[512], template[128];
    ue_conf_t *conf = ue_conf_new();
    snprintf(template, sizeof(template), "%s.events", o->prefix);
    if (ue_conf_set(conf, "kafka.bootstrap.servers", o->bootstrap, errstr, sizeof(errstr)) ||
        ue_conf_set(conf, "topic.template", template, errstr, sizeof(errstr)) ||
        ue_conf_set(conf, "spool.dir", o->spool, errstr, sizeof(errstr)) ||
        ue_conf_set(conf, "context.app.name", "ue-demo", errstr, sizeof(errstr)) ||
        ue_conf_set(conf, "log.level", "error", errstr, sizeof(errstr))) {
        fprintf(stderr, "ue-demo: %s\n", errstr);
        ue_conf_destroy(conf);
        return NULL;
    }
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c) {
        fprintf(stderr, "ue-demo: %s\n", errstr);
        ue_conf_destroy(conf);
    }
    return c;
}

/* One event of a random user; returns ue_track's result. */
static ue_err_t track_one(ue_client_t *c, ue_event_t *ev, unsigned *seed, int users)
{
    int user = (int)(rand_r(seed) % (unsigned)users), roll = (int)(rand_r(seed) % 100);
    const char *type = roll < 70 ? "page_view" : roll < 95 ? "click" : "purchase";
    char uid[32];
    snprintf(uid, sizeof(uid), "user-%04d", user);
    ue_event_reset(ev, type);
    ue_event_set_user_id(ev, uid);
    ue_event_set_context(ev, "ip", IPS[user % 4]);
    ue_event_set_context(ev, "user_agent", UAS[user % 4]);
    ue_event_prop_string(ev, "path", PAGES[rand_r(seed) % 5]);
    if (roll >= 95) {
        ue_event_prop_double(ev, "amount", 5 + (double)(rand_r(seed) % 20000) / 100);
        ue_event_prop_string(ev, "sku", roll % 2 ? "A-113" : "B-7");
    }
    return ue_track(c, ev);
}

long simulate(demo_opts_t *o, void (*progress)(void *), void *opaque)
{
    ue_client_t *c = client(o);
    if (!c)
        return -1;
    ue_event_t *ev = ue_event_new("page_view");
    unsigned seed = (unsigned)now_ms();
    long tracked = 0;
    int64_t start = now_ms(), next_progress = start + 1000;
    for (int64_t t = start; t < start + o->duration_s * 1000L; t = now_ms()) {
        long due = (long)((t - start) * o->rate / 1000);
        while (tracked < due)
            tracked += track_one(c, ev, &seed, o->users) == UE_OK;
        o->tracked = tracked;
        if (t >= next_progress) {
            progress(opaque);
            next_progress += 1000;
        }
        struct timespec pace = {0, 2000000}; /* the rate's clock: 2 ms steps */
        nanosleep(&pace, NULL);
    }
    ue_event_destroy(ev);
    if (ue_flush(c, 30000) != UE_OK)
        fprintf(stderr, "ue-demo: not every event acknowledged yet; the rest stays spooled\n");
    ue_client_destroy(c);
    return tracked;
}
