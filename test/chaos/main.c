/*
 * main.c - ue-chaos: the subcommands and the helpers they share (clock, Kafka handles).
 *
 *   ue-chaos topics -b HOSTS [--rf 3] [--min-isr 2] NAME[:PARTITIONS[:compact]]...
 *   ue-chaos gen --from A --to B [--rate EVENTS_PER_S] [--users N]
 *   ue-chaos watch -b HOSTS --raw T,T.. --group G --pg URL --ch URL [--interval-ms MS]
 *   ue-chaos verify -b HOSTS --events N --ids FILE:FIRST_SEQ... --raw T,T.. --enriched T
 *                   --pg URL --ch URL
 *
 * test/chaos/run.sh is the caller; each subcommand's file says what it does.
 */
#include "chaos.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t chaos_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t n)
{
    return rd_kafka_conf_set(c, k, v, err, n) == RD_KAFKA_CONF_OK ? 0 : -1;
}

rd_kafka_t *chaos_consumer_new(const char *bootstrap, const char *group, int committed, char *err,
                               size_t err_size)
{
    char own[64];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    snprintf(own, sizeof(own), "ue-chaos-%lld", (long long)chaos_now_ms());
    if (conf_set(c, "bootstrap.servers", bootstrap, err, err_size) ||
        conf_set(c, "group.id", group ? group : own, err, err_size) ||
        conf_set(c, "enable.auto.commit", "false", err, err_size) ||
        conf_set(c, "enable.partition.eof", "true", err, err_size) ||
        conf_set(c, "isolation.level", committed ? "read_committed" : "read_uncommitted", err,
                 err_size) ||
        conf_set(c, "client.id", "ue-chaos", err, err_size) ||
        conf_set(c, "log_level", "3", err, err_size)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, err_size);
    if (!rk)
        rd_kafka_conf_destroy(c);
    return rk;
}

int chaos_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}

int chaos_split(char *list, char **items, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *s = strtok_r(list, ",", &save); s && n < max; s = strtok_r(NULL, ",", &save))
        items[n++] = s;
    return n;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"topics", chaos_topics},
                {"gen", chaos_gen},
                {"watch", chaos_watch},
                {"verify", chaos_verify}};
    for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "usage: ue-chaos topics|gen|watch|verify ... (see test/chaos/main.c)\n");
    return 2;
}
