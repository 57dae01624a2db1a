/*
 * topics.c - `ue-chaos topics`: creates the pipeline's topics up front with the admin API, so
 * that each has the replication the run asks for (replication factor 3, min.insync.replicas 2)
 * instead of what auto-creation or a daemon would pick.
 *
 *   ue-chaos topics -b HOSTS [--rf 3] [--min-isr 2] NAME[:PARTITIONS[:compact]]...
 *
 * A topic that already exists is left as it is. Exit 0 when every topic exists afterwards.
 */
#include "chaos.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOPICS = 64 };

/* NAME[:PARTITIONS[:compact]] into a NewTopic; NULL (reason printed) on a bad spec. */
static rd_kafka_NewTopic_t *new_topic(char *spec, int rf, const char *min_isr)
{
    char err[256];
    char *parts = strchr(spec, ':'), *mode = NULL;
    if (parts) {
        *parts++ = '\0';
        mode = strchr(parts, ':');
        if (mode)
            *mode++ = '\0';
    }
    int n = parts ? atoi(parts) : 3;
    rd_kafka_NewTopic_t *t = rd_kafka_NewTopic_new(spec, n, rf, err, sizeof(err));
    if (!t) {
        fprintf(stderr, "ue-chaos topics: %s: %s\n", spec, err);
        return NULL;
    }
    rd_kafka_NewTopic_set_config(t, "min.insync.replicas", min_isr);
    if (mode && !strcmp(mode, "compact"))
        rd_kafka_NewTopic_set_config(t, "cleanup.policy", "compact");
    return t;
}

/* Waits for the CreateTopics answer; 0 when each topic was made or was there. */
static int await_result(rd_kafka_queue_t *q)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    int bad = 0;
    size_t cnt = 0;
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "ue-chaos topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "no answer within 60 s");
        if (ev)
            rd_kafka_event_destroy(ev);
        return -1;
    }
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "ue-chaos topics: %s: %s\n", name,
                    rd_kafka_topic_result_error_string(res[i]));
            bad = 1;
        } else {
            fprintf(stderr, "ue-chaos topics: %s %s\n", name, e ? "was there" : "created");
        }
    }
    rd_kafka_event_destroy(ev);
    return bad ? -1 : 0;
}

int chaos_topics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", 1, 0, 'b'}, {"rf", 1, 0, 'r'}, {"min-isr", 1, 0, 'm'}, {0, 0, 0, 0}};
    const char *bootstrap = NULL, *min_isr = "2";
    int rf = 3, c, n = 0;
    char err[512];
    rd_kafka_NewTopic_t *topics[MAX_TOPICS];
    while ((c = getopt_long(argc, argv, "b:r:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 'r': rf = atoi(optarg); break;
        case 'm': min_isr = optarg; break;
        default: return 2;
        }
    }
    if (!bootstrap || optind >= argc) {
        fprintf(stderr, "usage: ue-chaos topics -b HOSTS [--rf N] [--min-isr N] "
                        "NAME[:P[:compact]]...\n");
        return 2;
    }
    for (int i = optind; i < argc && n < MAX_TOPICS; i++) {
        if (!(topics[n] = new_topic(argv[i], rf, min_isr)))
            return 2;
        n++;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "ue-chaos topics: %s\n", err);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(o, 30000, err, sizeof(err));
    rd_kafka_CreateTopics(rk, topics, (size_t)n, o, q);
    int rc = await_result(q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy_array(topics, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc ? 1 : 0;
}
