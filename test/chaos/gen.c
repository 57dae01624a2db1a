/*
 * gen.c - `ue-chaos gen`: the events of a run as NDJSON lines for ue-track's stdin, paced.
 *
 *   ue-chaos gen --from A --to B [--rate EVENTS_PER_S] [--users N]
 *
 * Line s (A <= s < B) is a pure function of s: its type, user and properties, among them
 * "seq": s, the event's number in the run. So a producer stopped after k lines is continued
 * by `gen --from A+k --to B` with exactly the lines it had not tracked. Rate 0: as fast as
 * the reader takes them. Ends quietly when the reader goes away.
 */
#include "chaos.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *const types[] = {"page_view", "click", "purchase"};

static int write_line(int64_t s, int users)
{
    int64_t user = (s * 7919) % users;
    int type = (int)(s % 3);
    if (type == 2)
        return printf("{\"type\":\"%s\",\"user_id\":\"u%" PRId64
                      "\",\"properties\":{\"seq\":%" PRId64 ",\"amount\":%.2f}}\n",
                      types[type], user, s, (double)(s % 1000) / 10.0 + 0.5);
    return printf("{\"type\":\"%s\",\"user_id\":\"u%" PRId64 "\",\"properties\":{\"seq\":%" PRId64
                  ",\"path\":\"/p/%" PRId64 "\"}}\n",
                  types[type], user, s, s % 50);
}

int chaos_gen(int argc, char **argv)
{
    static const struct option opts[] = {{"from", 1, 0, 'f'},
                                         {"to", 1, 0, 't'},
                                         {"rate", 1, 0, 'r'},
                                         {"users", 1, 0, 'u'},
                                         {0, 0, 0, 0}};
    int64_t from = 0, to = -1;
    double rate = 0;
    int users = 1000, c;
    while ((c = getopt_long(argc, argv, "f:t:r:u:", opts, NULL)) != -1) {
        switch (c) {
        case 'f': from = strtoll(optarg, NULL, 10); break;
        case 't': to = strtoll(optarg, NULL, 10); break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'u': users = atoi(optarg); break;
        default: return 2;
        }
    }
    if (to < from || users < 1) {
        fprintf(stderr, "usage: ue-chaos gen --from A --to B [--rate R] [--users N]\n");
        return 2;
    }
    int64_t t0 = chaos_now_ms(), s = from;
    struct timespec tick = {0, 5 * 1000 * 1000};
    while (s < to) {
        int64_t due =
            rate > 0 ? from + (int64_t)((double)(chaos_now_ms() - t0) * rate / 1000.0) : to;
        if (due > to)
            due = to;
        for (; s < due; s++)
            if (write_line(s, users) < 0)
                return 0;
        if (fflush(stdout) != 0)
            return 0; /* the reader is gone */
        if (s < to)
            nanosleep(&tick, NULL);
    }
    return fflush(stdout) != 0;
}
