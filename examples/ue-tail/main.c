/*
 * ue-tail - read user events back from Kafka and print them as NDJSON, or count them.
 *
 *   ue-tail -b 127.0.0.1:9092 -t events.page_view -t events.click      # print every event
 *   ue-tail -b 127.0.0.1:9092 -p '^events\..*' --count                  # per-topic counts,
 *                                                                       # distinct ids, dups
 * Reads from the beginning and stops when every partition is at its end (or after --max).
 * A debugging aid that decodes the schema in proto/ with the generated protobuf-c code: raw
 * events (Event, also in dead letters) and the enriched ones (EnrichedEvent: the event and
 * what enrichment added), window aggregates and anomaly alerts (by the topic's last name part:
 * "enriched", "aggregates", "alerts"; other topics are read as raw events).
 */
#include "enriched.pb-c.h"
#include "uc_pbdecode.h"
#include "userevents.pb-c.h"

#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct topic_count {
    char name[256];
    uint64_t events;
} topic_count_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: ue-tail -b HOSTS (-t TOPIC ... | -p REGEX) [--count] [--max N]\n"
                 "  -b, --bootstrap HOSTS  Kafka bootstrap servers (or env KAFKA_BOOTSTRAP)\n"
                 "  -t, --topic TOPIC      a topic to read (repeatable)\n"
                 "  -p, --pattern REGEX    every topic matching REGEX, e.g. '^events\\..*'\n"
                 "  -c, --count            print counts instead of events\n"
                 "  -m, --max N            stop after N events\n"
                 "  -w, --wait-ms MS       give up waiting for the end after MS (30000)\n"
                 "  -h, --help             this help\n");
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* A double in its shortest form that reads back as the same value (19.9, not
 * 19.899999999999999); null for what JSON cannot hold (NaN, infinities). */
static void print_double(double d)
{
    if (!isfinite(d)) {
        printf("null");
        return;
    }
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    printf("%s", buf);
}

static void print_value(const Userevents__Value *v)
{
    switch (v->kind_case) {
    case USEREVENTS__VALUE__KIND_STRING_VALUE: print_json_string(v->string_value); break;
    case USEREVENTS__VALUE__KIND_INT_VALUE: printf("%" PRId64, v->int_value); break;
    case USEREVENTS__VALUE__KIND_DOUBLE_VALUE: print_double(v->double_value); break;
    case USEREVENTS__VALUE__KIND_BOOL_VALUE: printf(v->bool_value ? "true" : "false"); break;
    default: printf("null"); break; /* nested values: not shown by this tool */
    }
}

/* Opens a record's object with its place: {"topic":...,"partition":...,"offset":..., */
static void print_place(const rd_kafka_message_t *m)
{
    printf("{\"topic\":\"%s\",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",",
           rd_kafka_topic_name(m->rkt), m->partition, m->offset);
}

/* The record's place, then the event's fields, without the closing brace. */
static void print_event_fields(const rd_kafka_message_t *m, const Userevents__Event *ev)
{
    print_place(m);
    printf("\"event_id\":\"");
    for (size_t i = 0; i < ev->event_id.len; i++)
        printf("%02x%s", ev->event_id.data[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
    printf("\",\"type\":");
    print_json_string(ev->type);
    printf(",\"user_id\":");
    print_json_string(ev->user_id);
    printf(",\"timestamp_ms\":%" PRId64 ",\"sent_at_ms\":%" PRId64 ",\"properties\":{",
           ev->timestamp_ms, ev->sent_at_ms);
    for (size_t i = 0; i < ev->n_properties; i++) {
        printf(i ? "," : "");
        print_json_string(ev->properties[i]->key);
        putchar(':');
        print_value(ev->properties[i]->value);
    }
    putchar('}');
}

static void print_event(const rd_kafka_message_t *m, const Userevents__Event *ev)
{
    print_event_fields(m, ev);
    printf("}\n");
}

/* An enriched event: the event, then what enrichment added (what is set of it). */
static void print_enriched(const rd_kafka_message_t *m, const Userevents__EnrichedEvent *ee)
{
    print_event_fields(m, ee->event);
    printf(",\"received_at_ms\":%" PRId64 ",\"corrected_timestamp_ms\":%" PRId64,
           ee->received_at_ms, ee->corrected_timestamp_ms);
    if (ee->session) {
        printf(",\"session_id\":");
        print_json_string(ee->session->session_id);
        printf(",\"session_sequence\":%" PRIu32, ee->session->sequence);
    }
    if (ee->geo && ee->geo->found) {
        printf(",\"country_code\":");
        print_json_string(ee->geo->country_code);
        printf(",\"city\":");
        print_json_string(ee->geo->city);
    }
    if (ee->user_agent) {
        printf(",\"browser\":");
        print_json_string(ee->user_agent->browser);
        printf(",\"os\":");
        print_json_string(ee->user_agent->os);
        printf(",\"device_class\":");
        print_json_string(ee->user_agent->device_class);
    }
    if (ee->profile) {
        printf(",\"plan\":");
        print_json_string(ee->profile->plan);
    }
    printf(",\"source\":\"%s[%" PRId32 "]@%" PRId64 "\"}\n", ee->source_topic, ee->source_partition,
           ee->source_offset);
}

static void print_aggregate(const rd_kafka_message_t *m, const Userevents__WindowAggregate *a)
{
    print_place(m);
    printf("\"event_type\":");
    print_json_string(a->event_type);
    printf(",\"window_start_ms\":%" PRId64 ",\"window_end_ms\":%" PRId64 ",\"count\":%" PRIu64
           ",\"distinct_users\":%" PRIu64 ",\"sum_property\":",
           a->window_start_ms, a->window_end_ms, a->count, a->distinct_users);
    print_json_string(a->sum_property);
    printf(",\"sum\":");
    print_double(a->sum);
    printf("}\n");
}

static void print_alert(const rd_kafka_message_t *m, const Userevents__AnomalyAlert *a)
{
    print_place(m);
    printf("\"key_kind\":");
    print_json_string(a->key_kind);
    printf(",\"key\":");
    print_json_string(a->key);
    printf(",\"window_end_ms\":%" PRId64 ",\"rate\":", a->window_end_ms);
    print_double(a->rate);
    printf(",\"baseline\":");
    print_double(a->baseline);
    printf(",\"zscore\":");
    print_double(a->zscore);
    printf("}\n");
}

/* What a topic holds, by the last part of its name (events.enriched, ...). */
static const ProtobufCMessageDescriptor *topic_schema(const char *topic)
{
    const char *dot = strrchr(topic, '.'), *last = dot ? dot + 1 : topic;
    if (!strcmp(last, "enriched"))
        return &userevents__enriched_event__descriptor;
    if (!strcmp(last, "aggregates"))
        return &userevents__window_aggregate__descriptor;
    if (!strcmp(last, "alerts"))
        return &userevents__anomaly_alert__descriptor;
    return &userevents__event__descriptor;
}

/* Decodes @p m by its topic and prints it (when @p print); its event's id into @p id (when it
 * is an event or enriched event). 1 when it has an id, 0 decoded without one, -1 undecodable. */
static int take(const rd_kafka_message_t *m, int print, uint8_t id[16])
{
    const ProtobufCMessageDescriptor *d = topic_schema(rd_kafka_topic_name(m->rkt));
    ProtobufCMessage *msg = uc__pb_unpack(d, NULL, m->len, m->payload, UC__PB_MAX_DEPTH, NULL);
    const Userevents__Event *ev = NULL;
    int rc = msg ? 0 : -1;
    if (msg && d == &userevents__event__descriptor)
        ev = (const Userevents__Event *)msg;
    else if (msg && d == &userevents__enriched_event__descriptor)
        ev = ((const Userevents__EnrichedEvent *)msg)->event;
    if ((d == &userevents__event__descriptor || d == &userevents__enriched_event__descriptor) &&
        (!ev || ev->event_id.len != 16))
        rc = -1;
    if (rc == 0 && ev) {
        memcpy(id, ev->event_id.data, 16);
        rc = 1;
    }
    if (rc >= 0 && print) {
        if (d == &userevents__enriched_event__descriptor)
            print_enriched(m, (const Userevents__EnrichedEvent *)msg);
        else if (d == &userevents__window_aggregate__descriptor)
            print_aggregate(m, (const Userevents__WindowAggregate *)msg);
        else if (d == &userevents__anomaly_alert__descriptor)
            print_alert(m, (const Userevents__AnomalyAlert *)msg);
        else
            print_event(m, ev);
    }
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Per-topic record counts; then over the events (raw or enriched: @p nids ids), how many
 * distinct ids and duplicates. */
static void print_counts(topic_count_t *topics, size_t ntopics, uint8_t (*ids)[16], size_t nids,
                         size_t n, uint64_t undecodable)
{
    uint64_t dups = 0;
    qsort(ids, nids, 16, cmp_id);
    for (size_t i = 1; i < nids; i++)
        dups += memcmp(ids[i - 1], ids[i], 16) == 0;
    for (size_t i = 0; i < ntopics; i++)
        printf("%-40s %10" PRIu64 "\n", topics[i].name, topics[i].events);
    printf("%-40s %10zu\n%-40s %10zu\n%-40s %10" PRIu64 "\n%-40s %10" PRIu64 "\n%-40s %10" PRIu64
           "\n",
           "records", n, "events", nids, "distinct event ids", (uint64_t)nids - dups, "duplicates",
           dups, "undecodable", undecodable);
}

static void count_topic(topic_count_t *topics, size_t *ntopics, const char *name)
{
    size_t i = 0;
    while (i < *ntopics && strcmp(topics[i].name, name))
        i++;
    if (i == *ntopics && *ntopics < 256)
        snprintf(topics[(*ntopics)++].name, sizeof(topics[0].name), "%s", name);
    if (i < 256)
        topics[i].events++;
}

static rd_kafka_t *consumer(const char *bootstrap)
{
    char errstr[512], group[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(group, sizeof(group), "ue-tail-%d-%ld", (int)getpid(), (long)time(NULL));
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "1000", errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "ue-tail: %s\n", errstr);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "ue-tail: %s\n", errstr);
    else
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bootstrap", 1, 0, 'b'}, {"topic", 1, 0, 't'},   {"pattern", 1, 0, 'p'},
        {"count", 0, 0, 'c'},     {"max", 1, 0, 'm'},     {"wait-ms", 1, 0, 'w'},
        {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
    const char *bootstrap = getenv("KAFKA_BOOTSTRAP");
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(8);
    int count = 0, opt;
    long wait_ms = 30000;
    uint64_t max = UINT64_MAX;

    while ((opt = getopt_long(argc, argv, "b:t:p:cm:w:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': bootstrap = optarg; break;
        case 't': rd_kafka_topic_partition_list_add(subs, optarg, RD_KAFKA_PARTITION_UA); break;
        case 'p': rd_kafka_topic_partition_list_add(subs, optarg, RD_KAFKA_PARTITION_UA); break;
        case 'c': count = 1; break;
        case 'm': max = strtoull(optarg, NULL, 10); break;
        case 'w': wait_ms = strtol(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!bootstrap || subs->cnt == 0) {
        usage(stderr);
        return 2;
    }
    rd_kafka_t *rk = consumer(bootstrap);
    if (!rk || rd_kafka_subscribe(rk, subs)) {
        fprintf(stderr, "ue-tail: cannot subscribe\n");
        return 1;
    }
    topic_count_t *topics = calloc(256, sizeof(*topics));
    size_t ntopics = 0, n = 0, nids = 0, cap = 1024;
    uint8_t(*ids)[16] = malloc(cap * 16);
    uint64_t undecodable = 0;
    time_t give_up = time(NULL) + (wait_ms + 999) / 1000;
    int eof_streak = 0;

    /* Done when every assigned partition reported its end with nothing new after. */
    while (n < max && time(NULL) < give_up) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        rd_kafka_topic_partition_list_t *assigned = NULL;
        if (!m) {
            if (eof_streak && !rd_kafka_assignment(rk, &assigned) && assigned->cnt > 0 &&
                eof_streak >= assigned->cnt) {
                rd_kafka_topic_partition_list_destroy(assigned);
                break;
            }
            if (assigned)
                rd_kafka_topic_partition_list_destroy(assigned);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof_streak++;
        } else if (!m->err) {
            eof_streak = 0;
            uint8_t id[16] = {0};
            int rc = take(m, !count, id);
            if (rc < 0) {
                undecodable++;
            } else if (count) {
                if (rc == 1 && n == cap)
                    ids = realloc(ids, (cap *= 2) * 16);
                if (rc == 1)
                    memcpy(ids[nids++], id, 16);
                count_topic(topics, &ntopics, rd_kafka_topic_name(m->rkt));
            }
            n += rc >= 0;
        }
        rd_kafka_message_destroy(m);
    }
    if (count)
        print_counts(topics, ntopics, ids, nids, n, undecodable);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rd_kafka_topic_partition_list_destroy(subs);
    free(ids);
    free(topics);
    return 0;
}
