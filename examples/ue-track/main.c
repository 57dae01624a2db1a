/*
 * ue-track - track user events from the command line or from NDJSON on stdin.
 *
 *   ue-track -b 127.0.0.1:9092 -t page_view -u user-42 -p path=/pricing
 *   printf '{"type":"click","user_id":"u1","properties":{"button":"buy","n":2}}\n' |
 *       ue-track -b 127.0.0.1:9092 -s /tmp/spool
 *
 * The SDK in a nutshell: configure, create a client, build events, track, destroy (which
 * flushes; with a spool, whatever is unsent waits there for the next run).
 *
 * SIGTERM or SIGINT stops reading stdin; what was tracked is flushed, and with a spool what is
 * not yet acknowledged stays there for the next run. Every printed id was tracked, so a
 * caller that counts the printed ids knows which input lines to feed the next run.
 */
#include "userevents.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1; /* the read of stdin it interrupts returns: no SA_RESTART */
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ue-track [options]\n"
            "  -b, --bootstrap HOSTS   Kafka bootstrap servers (or env KAFKA_BOOTSTRAP)\n"
            "  -s, --spool DIR         durable spool directory (default ./ue-spool; '' = off)\n"
            "  -t, --type TYPE         track one event of TYPE (else read NDJSON from stdin)\n"
            "  -u, --user ID           user id of the events\n"
            "  -p, --prop KEY=VALUE    a string property (repeatable)\n"
            "  -X, --set KEY=VALUE     any configuration property (repeatable)\n"
            "  -q, --quiet             do not print event ids and statistics\n"
            "  -h, --help              this help\n"
            "NDJSON lines: {\"type\":..., \"user_id\":..., \"properties\":{...}}\n"
            "SIGTERM/SIGINT: stop reading, flush; the unsent rest stays in the spool.\n"
            "Exit 1 when a line could not be tracked or an event was lost (failed, dropped).\n");
}

static int set(ue_conf_t *conf, const char *kv)
{
    char errstr[512], key[256];
    const char *eq = strchr(kv, '=');
    if (!eq || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "ue-track: expected KEY=VALUE, got \"%s\"\n", kv);
        return -1;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    if (ue_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != UE_CONF_OK) {
        fprintf(stderr, "ue-track: %s\n", errstr);
        return -1;
    }
    return 0;
}

/* Adds the JSON properties to the event: strings, numbers (int or double) and booleans. */
static void add_json_props(ue_event_t *ev, const cJSON *props)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, props) {
        if (cJSON_IsString(p))
            ue_event_prop_string(ev, p->string, p->valuestring);
        else if (cJSON_IsBool(p))
            ue_event_prop_bool(ev, p->string, cJSON_IsTrue(p));
        else if (cJSON_IsNumber(p) && p->valuedouble == (double)(int64_t)p->valuedouble)
            ue_event_prop_int(ev, p->string, (int64_t)p->valuedouble);
        else if (cJSON_IsNumber(p))
            ue_event_prop_double(ev, p->string, p->valuedouble);
    }
}

static int track_one(ue_client_t *ue, ue_event_t *ev, int quiet)
{
    uint8_t id[16];
    char text[37];
    ue_err_t err = ue_track(ue, ev);
    if (err) {
        fprintf(stderr, "ue-track: %s\n", ue_err2str(err));
        return -1;
    }
    ue_event_get_event_id(ev, id);
    ue_event_id_format(id, text);
    if (!quiet)
        printf("%s\n", text);
    return 0;
}

/* Tracks one event per NDJSON line of stdin; a bad line is reported and skipped. */
static int track_stdin(ue_client_t *ue, int quiet)
{
    char *line = NULL;
    size_t cap = 0;
    int failures = 0, lineno = 0;
    while (!stopping && getline(&line, &cap, stdin) > 0) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(j, "user_id");
        ue_event_t *ev = cJSON_IsString(type) ? ue_event_new(type->valuestring) : NULL;
        if (!ev) {
            fprintf(stderr, "ue-track: line %d: not an object with a valid \"type\"\n", lineno);
            failures++;
        } else {
            if (cJSON_IsString(user))
                ue_event_set_user_id(ev, user->valuestring);
            add_json_props(ev, cJSON_GetObjectItemCaseSensitive(j, "properties"));
            failures += track_one(ue, ev, quiet) != 0;
        }
        ue_event_destroy(ev);
        cJSON_Delete(j);
    }
    if (stopping)
        fprintf(stderr, "ue-track: stopped by signal after %d lines; the rest of stdin is unread\n",
                lineno);
    else if (ferror(stdin) && errno != EINTR)
        fprintf(stderr, "ue-track: reading stdin: %s\n", strerror(errno));
    free(line);
    return failures;
}

/* Events the client gave up on (failed for good, or dropped): they are in no topic and not in
 * the spool, so the run lost them. Returns how many, after saying so on stderr. */
static int64_t report_losses(ue_client_t *ue)
{
    int64_t failed = ue_stat(ue, UE_STAT_FAILED);
    int64_t dropped = ue_stat(ue, UE_STAT_DROPPED_QUEUE_FULL) +
                      ue_stat(ue, UE_STAT_DROPPED_SPOOL_FULL) +
                      ue_stat(ue, UE_STAT_DROPPED_SPOOL_AGE);
    if (failed + dropped > 0)
        fprintf(stderr,
                "ue-track: %" PRId64 " events lost: %" PRId64 " failed for good, %" PRId64
                " dropped (see the statistics)\n",
                failed + dropped, failed, dropped);
    return failed + dropped;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", 1, 0, 'b'}, {"spool", 1, 0, 's'}, {"type", 1, 0, 't'},
        {"user", 1, 0, 'u'},      {"prop", 1, 0, 'p'},  {"set", 1, 0, 'X'},
        {"quiet", 0, 0, 'q'},     {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    const char *bootstrap = getenv("KAFKA_BOOTSTRAP"), *spool = "ue-spool", *type = NULL,
               *user = NULL;
    const char *props[64];
    int nprops = 0, quiet = 0, c;
    int64_t failures = 0;
    char errstr[512];
    ue_conf_t *conf = ue_conf_new();

    while ((c = getopt_long(argc, argv, "b:s:t:u:p:X:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 's': spool = optarg; break;
        case 't': type = optarg; break;
        case 'u': user = optarg; break;
        case 'p': if (nprops < 64) props[nprops++] = optarg; break;
        case 'X': if (set(conf, optarg)) return 2; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap) {
        fprintf(stderr, "ue-track: no broker: pass -b HOST:PORT or set KAFKA_BOOTSTRAP\n");
        return 2;
    }
    if (ue_conf_set(conf, "kafka.bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        ue_conf_set(conf, "spool.dir", spool, errstr, sizeof(errstr))) {
        fprintf(stderr, "ue-track: %s\n", errstr);
        return 2;
    }
    ue_client_t *ue = ue_client_new(conf, errstr, sizeof(errstr));
    if (!ue) {
        fprintf(stderr, "ue-track: %s\n", errstr);
        ue_conf_destroy(conf);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read of stdin returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (type) {
        ue_event_t *ev = ue_event_new(type);
        if (!ev) {
            fprintf(stderr, "ue-track: invalid event type \"%s\"\n", type);
            failures++;
        }
        for (int i = 0; ev && i < nprops; i++) {
            char *eq = strchr(props[i], '=');
            if (eq) {
                *eq = '\0';
                ue_event_prop_string(ev, props[i], eq + 1);
            }
        }
        if (ev && user)
            ue_event_set_user_id(ev, user);
        if (ev)
            failures += track_one(ue, ev, quiet) != 0;
        ue_event_destroy(ev);
    } else {
        failures = track_stdin(ue, quiet);
    }
    int unsent = ue_flush(ue, 10000) != UE_OK;
    int64_t waiting = ue_stat(ue, UE_STAT_TRACKED) - ue_stat(ue, UE_STAT_DELIVERED) -
                      ue_stat(ue, UE_STAT_FAILED);
    if (unsent && *spool)
        fprintf(stderr, "ue-track: %lld event(s) not acknowledged yet: they stay in the spool "
                "%s, and the next ue-track with this spool sends them\n", (long long)waiting,
                spool);
    failures += report_losses(ue);
    if (!quiet) {
        ue_stats_json(ue, errstr, sizeof(errstr));
        fprintf(stderr, "%s\n", errstr);
    }
    ue_client_destroy(ue);
    if (unsent && !*spool) { /* nothing keeps them: say so, and fail */
        fprintf(stderr, "ue-track: %lld event(s) LOST: not acknowledged within 10 s and no "
                "spool (-s DIR) to keep them\n", (long long)waiting);
        return 1;
    }
    return failures ? 1 : 0;
}
