/*
 * itutil.c - see itutil.h.
 */
#include "itutil.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *it_bootstrap(void)
{
    const char *b = getenv("KAFKA_BOOTSTRAP");
    return b && *b ? b : NULL;
}

const char *it_unique_prefix(void)
{
    static char prefix[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(prefix, sizeof(prefix), "it-%d-%ld%03ld", (int)getpid(), (long)ts.tv_sec,
             ts.tv_nsec / 1000000);
    return prefix;
}

int it_kafka_node(const char *action, int node)
{
    const char *dir = getenv("UE_KAFKA_DIR");
    char cmd[1024];
    if (!dir || !*dir)
        return -1;
    snprintf(cmd, sizeof(cmd), "test/kafka.sh %s %d --dir '%s' >&2", action, node, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Assigns every partition of @p topics from the beginning; returns the partition count. */
static int assign_all(rd_kafka_t *rk, const char *const *topics, size_t ntopics)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    int total = 0;
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[i], NULL);
        const rd_kafka_metadata_t *md = NULL;
        for (int tries = 0; tries < 50; tries++) { /* a topic may still be being created */
            if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0)
                break;
            if (md)
                rd_kafka_metadata_destroy(md);
            md = NULL;
            usleep(100 * 1000); /* metadata of a new topic: retry a moment later */
        }
        for (int p = 0; md && p < md->topics[0].partition_cnt; p++) {
            rd_kafka_topic_partition_list_add(parts, topics[i], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            total++;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    return total;
}

static void keep(it_msg_t *m, const rd_kafka_message_t *km)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t size;

    memset(m, 0, sizeof(*m));
    m->topic = strdup(rd_kafka_topic_name(km->rkt));
    m->partition = km->partition;
    m->offset = km->offset;
    m->key = strndup(km->key ? (const char *)km->key : "", km->key_len);
    if (!rd_kafka_message_headers(km, &hdrs)) {
        if (!rd_kafka_header_get_last(hdrs, "ue-event-id", &val, &size) && size == 16) {
            memcpy(m->header_id, val, 16);
            m->has_header_id = 1;
        }
        if (!rd_kafka_header_get_last(hdrs, "ue-schema-version", &val, &size) && size < 8)
            memcpy(m->schema_header, val, size);
    }
    m->ev = userevents__event__unpack(NULL, km->len, km->payload);
}

/* Which partitions are at their end; a partition is found by topic name and number. */
#define MAX_PARTS 256
typedef struct eof_state {
    const char *topic;
    int32_t partition;
    int at_eof;
} eof_state_t;

/* Sets the EOF flag of @p km's partition to @p value; returns 1 when it changed. */
static int mark_eof(eof_state_t *eof, const rd_kafka_message_t *km, int value)
{
    const char *topic = rd_kafka_topic_name(km->rkt);
    for (int i = 0; i < MAX_PARTS; i++) {
        if (!eof[i].topic) {
            eof[i].topic = topic;
            eof[i].partition = km->partition;
        } else if (strcmp(eof[i].topic, topic) || eof[i].partition != km->partition) {
            continue;
        }
        int changed = eof[i].at_eof != value;
        eof[i].at_eof = value;
        return changed;
    }
    return 0;
}

size_t it_read(const char *const *topics, size_t ntopics, size_t expected, int timeout_ms,
               it_record_fn *fn, void *opaque)
{
    char errstr[512], group[96];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(group, sizeof(group), "%s-checker", it_unique_prefix());
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "it_read: %s\n", errstr);
        return 0;
    }
    int nparts = assign_all(rk, topics, ntopics), at_eof = 0;
    size_t n = 0;
    int64_t deadline = now_ms() + timeout_ms;
    eof_state_t eof[MAX_PARTS] = {{0}};

    while (now_ms() < deadline && !(n >= expected && at_eof >= nparts)) {
        rd_kafka_message_t *km = rd_kafka_consumer_poll(rk, 200);
        if (!km)
            continue;
        if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_eof += mark_eof(eof, km, 1);
        } else if (!km->err) {
            it_record_t r = {rd_kafka_topic_name(km->rkt), km->partition, km->offset, km->key,
                             km->key_len, km->payload, km->len, km};
            fn(&r, opaque);
            n++;
            at_eof -= mark_eof(eof, km, 0); /* new data: this partition's end moved */
        }
        rd_kafka_message_destroy(km);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

const char *it_header(const it_record_t *r, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    if (rd_kafka_message_headers(r->msg, &hdrs) ||
        rd_kafka_header_get_last(hdrs, name, &val, &size))
        return NULL;
    if (len)
        *len = size;
    return val;
}

typedef struct keep_state {
    it_msg_t *msgs;
    size_t n, cap;
} keep_state_t;

static void keep_record(const it_record_t *r, void *opaque)
{
    keep_state_t *k = opaque;
    if (k->n == k->cap)
        k->msgs = realloc(k->msgs, (k->cap = k->cap ? k->cap * 2 : 64) * sizeof(*k->msgs));
    keep(&k->msgs[k->n++], r->msg);
}

size_t it_consume(const char *const *topics, size_t ntopics, size_t expected, int timeout_ms,
                  it_msg_t **out)
{
    keep_state_t k = {0};
    it_read(topics, ntopics, expected, timeout_ms, keep_record, &k);
    *out = k.msgs;
    return k.n;
}

void it_msgs_free(it_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].topic);
        free(msgs[i].key);
        if (msgs[i].ev)
            userevents__event__free_unpacked(msgs[i].ev, NULL);
    }
    free(msgs);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int64_t seq_prop(const Userevents__Event *ev)
{
    for (size_t i = 0; i < ev->n_properties; i++)
        if (!strcmp(ev->properties[i]->key, "seq") &&
            ev->properties[i]->value->kind_case == USEREVENTS__VALUE__KIND_INT_VALUE)
            return ev->properties[i]->value->int_value;
    return -1;
}

/* Per-(user, partition) last seen "seq", in a small linear table: tests use few users. */
typedef struct last_seq {
    char user[64];
    char topic[256];
    int32_t partition;
    int64_t seq;
} last_seq_t;

static size_t check_order(const it_msg_t *msgs, size_t n)
{
    last_seq_t *table = calloc(n + 1, sizeof(*table));
    size_t used = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        const it_msg_t *m = &msgs[i];
        if (!m->ev)
            continue;
        size_t j = 0;
        while (j < used && (strcmp(table[j].user, m->ev->user_id) ||
                            strcmp(table[j].topic, m->topic) || table[j].partition != m->partition))
            j++;
        if (j == used) {
            snprintf(table[j].user, sizeof(table[j].user), "%s", m->ev->user_id);
            snprintf(table[j].topic, sizeof(table[j].topic), "%s", m->topic);
            table[j].partition = m->partition;
            table[j].seq = -1;
            used++;
        }
        int64_t seq = seq_prop(m->ev);
        if (seq <= table[j].seq)
            bad++;
        table[j].seq = seq;
    }
    free(table);
    return bad;
}

it_report_t it_check(const it_msg_t *msgs, size_t n, const uint8_t (*ids)[16], size_t nids,
                     const char *prefix)
{
    it_report_t r = {0};
    uint8_t(*seen)[16] = calloc(n + 1, 16);
    size_t nseen = 0;

    for (size_t i = 0; i < n; i++) {
        const it_msg_t *m = &msgs[i];
        char topic[512];
        if (!m->ev || m->ev->event_id.len != 16) {
            r.undecodable++;
            continue;
        }
        const Userevents__Event *ev = m->ev;
        const char *key = *ev->user_id ? ev->user_id : ev->anonymous_id;
        snprintf(topic, sizeof(topic), "%s.%s", prefix, ev->type);
        if (strcmp(m->topic, topic) || strcmp(m->key, key) || !m->has_header_id ||
            memcmp(m->header_id, ev->event_id.data, 16) || strcmp(m->schema_header, "1") ||
            ev->schema_version != 1 || ev->sent_at_ms < ev->timestamp_ms)
            r.bad_meta++;
        memcpy(seen[nseen++], ev->event_id.data, 16);
    }
    qsort(seen, nseen, 16, cmp_id);
    uint8_t(*want)[16] = calloc(nids + 1, 16);
    memcpy(want, ids, nids * 16);
    qsort(want, nids, 16, cmp_id);
    size_t i = 0, j = 0;
    while (i < nseen || j < nids) { /* merge the two sorted lists */
        int c = i == nseen ? 1 : j == nids ? -1 : memcmp(seen[i], want[j], 16);
        if (c < 0) {
            if (j > 0 && !memcmp(seen[i], want[j - 1], 16))
                r.duplicates++;
            else
                r.unexpected++;
            i++;
        } else if (c > 0) {
            r.missing++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    r.out_of_order = check_order(msgs, n);
    free(seen);
    free(want);
    return r;
}

/* ---- added with libwhsink's integration tests --------------------------------------------- */

/* Waits until the metadata of @p topic shows @p partitions partitions. */
static int wait_partitions(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int ok = 0;
    for (int tries = 0; tries < 100 && !ok; tries++) {
        const rd_kafka_metadata_t *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            ok = md->topic_cnt == 1 && !md->topics[0].err &&
                 md->topics[0].partition_cnt == partitions;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (!ok)
            nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    return ok ? 0 : -1;
}

int it_create_topic(const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it_bootstrap(), NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "it_create_topic: %s\n", errstr);
        return -1;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (res) {
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        rc = n == 1 && !rd_kafka_topic_result_error(tr[0]) ? 0 : -1;
        if (rc)
            fprintf(stderr, "it_create_topic %s: %s\n", topic,
                    n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
    } else {
        fprintf(stderr, "it_create_topic %s: no answer\n", topic);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (rc == 0)
        rc = wait_partitions(rk, topic, partitions);
    rd_kafka_destroy(rk);
    return rc;
}
