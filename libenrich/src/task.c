/*
 * task.c - the tasks a processor owns (see processor.h): taking and dropping them as the
 * group assigns repartition partitions, running each input record through its task's stages,
 * and the sink that puts a task's outputs into the open transaction: its state to its own
 * changelog partition, window partials to the task that merges them (merge.c).
 */
#include "clock.h"
#include "htab.h"
#include "image.h"
#include "merge.h"
#include "processor.h"
#include "stage_util.h"
#include "uc_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HORIZON_EVERY_MS 200 /* a task's moving horizon goes out at most this often */

/* ---- the sink: a task's outputs into the open transaction -------------------------------- */

static void sink_emit(void *opaque, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t value_len)
{
    enr__task_t *t = opaque;
    enr__txn_produce(t->p, topic, RD_KAFKA_PARTITION_UA, key, key_len, value, value_len, NULL);
}

static void sink_changelog(void *opaque, const char *stage, const void *key, size_t key_len,
                           const void *value, size_t value_len)
{
    enr__task_t *t = opaque;
    char small[512];
    size_t n = strlen(stage), len = n + 1 + key_len;
    char *buf = len <= sizeof(small) ? small : malloc(len); /* user-id keys may be long */
    if (!buf) {
        t->p->produce_failed = 1; /* the transaction must not commit without this state */
        return;
    }
    memcpy(buf, stage, n);
    buf[n] = '/';
    memcpy(buf + n + 1, key, key_len);
    enr__txn_produce(t->p, t->p->changelog_topic, t->id, buf, len, value, value_len, NULL);
    enr__image_stage(t->image, buf, len, value, value_len); /* failing: roll back from Kafka */
    if (buf != small)
        free(buf);
}

/* A partial to the task merging its key, or this task's horizon to every task (throttled:
 * the mergers need it moving, not each step of it). */
static void sink_partial(void *opaque, const void *key, size_t key_len, const void *value,
                         size_t value_len, int broadcast)
{
    enr__task_t *t = opaque;
    enr_processor_t *p = t->p;
    if (!broadcast) {
        int32_t to = (int32_t)(enr__hash64(key, key_len) % (uint64_t)p->ntasks);
        enr__txn_produce(p, p->repartition_topic, to, key, key_len, value, value_len, NULL);
        return;
    }
    int64_t now = uc__mono_ms(), h;
    uint8_t kind;
    if (enr__horizon_decode(value, value_len, &kind, &h))
        return;
    int k = kind == ENR__HORIZON_WINDOW ? 0 : 1;
    if (h == t->horizon_sent[k] || now - t->horizon_sent_ms[k] < HORIZON_EVERY_MS)
        return;
    char id[16];
    int n = snprintf(id, sizeof(id), "%" PRId32, t->id);
    for (int32_t to = 0; to < p->ntasks; to++)
        enr__txn_produce(p, p->repartition_topic, to, id, (size_t)n, value, value_len, NULL);
    t->horizon_sent[k] = h;
    t->horizon_sent_ms[k] = now;
}

/* ---- life of a task ---------------------------------------------------------------------- */

static void task_free(enr__task_t *t)
{
    if (!t)
        return;
    enr_pipeline_destroy(t->pipe);
    enr__merger_free(t->merger);
    enr__image_free(t->image);
    free(t);
}

static enr__task_t *task_new(enr_processor_t *p, int32_t id)
{
    enr__task_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->p = p;
    t->id = id;
    if (!(t->image = enr__image_new(&p->image_budget))) {
        free(t);
        return NULL;
    }
    t->sink = (enr__sink_t){sink_emit, sink_changelog, sink_partial, t};
    t->horizon_sent[0] = t->horizon_sent[1] = INT64_MIN;
    return t;
}

/* Adds the counters of @p t to @p sum. */
static void task_stats(const enr__task_t *t, int64_t *sum)
{
    const int64_t *a = enr__pipeline_stats(t->pipe), *b = enr__merger_stats(t->merger);
    for (int i = 0; i < ENR_STAT__CNT; i++)
        sum[i] += a[i] + b[i];
}

void enr__tasks_take(enr_processor_t *p, const int32_t *ids, int n)
{
    enr__task_t **taken = calloc((size_t)n + 1, sizeof(*taken));
    int k = 0, oom = !taken;
    for (int i = 0; !oom && i < n; i++) {
        if (ids[i] < 0 || ids[i] >= p->ntasks || p->tasks[ids[i]])
            continue;
        oom = !(taken[k] = task_new(p, ids[i]));
        k += !oom;
    }
    char errstr[512] = "out of memory";
    if (oom || enr__tasks_restore(p, taken, k, errstr, sizeof(errstr))) {
        for (int i = 0; taken && i < k; i++)
            task_free(taken[i]);
        free(taken);
        enr__processor_fail(p, ENR_ERR_KAFKA_FATAL, errstr);
        return;
    }
    for (int i = 0; i < k; i++)
        p->tasks[taken[i]->id] = taken[i];
    free(taken);
}

void enr__tasks_drop(enr_processor_t *p, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= p->ntasks || !p->tasks[ids[i]])
            continue;
        task_stats(p->tasks[ids[i]], p->retired);
        task_free(p->tasks[ids[i]]);
        p->tasks[ids[i]] = NULL;
    }
}

void enr__tasks_free(enr_processor_t *p)
{
    for (int32_t i = 0; i < p->ntasks && p->tasks; i++)
        task_free(p->tasks[i]);
    free(p->tasks);
    p->tasks = NULL;
}

void enr__tasks_committed(enr_processor_t *p)
{
    for (int32_t i = 0; i < p->ntasks; i++)
        if (p->tasks[i])
            enr__image_commit(p->tasks[i]->image);
}

int enr__tasks_roll_back(enr_processor_t *p, char *errstr, size_t errstr_size)
{
    enr__task_t **lost = calloc((size_t)p->ntasks + 1, sizeof(*lost));
    int n = 0, rolled = 0;
    size_t entries = 0;
    int64_t started = uc__mono_ms();
    if (!lost)
        return uc__errstr(errstr, errstr_size, "out of memory"), -1;
    for (int32_t i = 0; i < p->ntasks; i++) {
        enr__task_t *t = p->tasks[i];
        if (!t)
            continue;
        enr__image_discard(t->image);
        if (!enr__image_ok(t->image)) {
            lost[n++] = t;
            continue;
        }
        if (enr__task_rebuild(t, 1, errstr, errstr_size)) {
            free(lost);
            return -1;
        }
        rolled++;
        entries += enr__image_count(t->image);
    }
    if (rolled)
        uc__log(&p->log, UC_LOG_INFO, "%d task(s) rolled back in memory: %zu entries in %lld ms",
                rolled, entries, (long long)(uc__mono_ms() - started));
    int rc = enr__tasks_restore(p, lost, n, errstr, errstr_size);
    free(lost);
    return rc;
}

void enr__tasks_flush(enr_processor_t *p)
{
    for (int32_t i = 0; i < p->ntasks; i++) {
        enr__task_t *t = p->tasks[i];
        if (!t)
            continue;
        enr__pipeline_flush(t->pipe, enr__pipeline_event_clock(t->pipe));
        enr__merger_flush(t->merger, &t->sink);
    }
}

void enr__tasks_sum_stats(const enr_processor_t *p, int64_t *sum)
{
    memcpy(sum, p->retired, sizeof(p->retired));
    for (int32_t i = 0; i < p->ntasks; i++)
        if (p->tasks[i])
            task_stats(p->tasks[i], sum);
}

/* ---- one record -------------------------------------------------------------------------- */

static void dead_letter(enr_processor_t *p, const rd_kafka_message_t *m, const char *reason)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%" PRId32, m->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "ue-dlq-reason", -1, reason, -1);
    rd_kafka_header_add(h, "ue-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "ue-source-partition", -1, partition, -1);
    rd_kafka_header_add(h, "ue-source-offset", -1, offset, -1);
    enr__txn_produce(p, p->conf->s.dead_letter_topic, RD_KAFKA_PARTITION_UA, m->key, m->key_len,
                     m->payload, m->len, h);
    uc__log(&p->log, UC_LOG_INFO, "dead letter %s/%s@%s: %s", rd_kafka_topic_name(m->rkt),
            partition, offset, reason);
}

void enr__task_process(enr_processor_t *p, const rd_kafka_message_t *m)
{
    enr__task_t *t = m->partition >= 0 && m->partition < p->ntasks ? p->tasks[m->partition] : NULL;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (!t)
        return; /* not ours (enr__owned_take() lets none through) */
    p->txn_events++;
    if (!strcmp(topic, p->repartition_topic)) {
        if (enr__merger_apply(t->merger, m->key, m->key_len, m->payload, m->len))
            uc__log(&p->log, UC_LOG_WARNING, "%s/%d@%lld: not a window partial; skipped", topic,
                    (int)m->partition, (long long)m->offset);
        return;
    }
    rd_kafka_timestamp_type_t tstype;
    enr__source_t src = {.topic = topic, .partition = m->partition, .offset = m->offset,
                         .timestamp_ms = rd_kafka_message_timestamp(m, &tstype)};
    const uint8_t *out;
    size_t out_len;
    char reason[512];
    atomic_fetch_add_explicit(&p->stats[ENR_STAT_CONSUMED], 1, memory_order_relaxed);
    enr_verdict_t v = enr__pipeline_run(t->pipe, m->payload ? m->payload : "", m->len, &src,
                                        &out, &out_len, reason, sizeof(reason));
    if (v == ENR_KEEP) {
        enr__txn_produce(p, p->conf->s.output_topic, RD_KAFKA_PARTITION_UA, m->key, m->key_len,
                         out, out_len, NULL);
        atomic_fetch_add_explicit(&p->stats[ENR_STAT_ENRICHED], 1, memory_order_relaxed);
    } else if (v == ENR_FAIL) {
        dead_letter(p, m, reason);
        atomic_fetch_add_explicit(&p->stats[ENR_STAT_DEAD_LETTERS], 1, memory_order_relaxed);
    }
}

/* ---- restore ----------------------------------------------------------------------------- */

/* Hands a changelog record of the task's partition to the merger or the stages. */
static void apply(void *opaque, const void *key, size_t key_len, const void *value,
                  size_t value_len)
{
    enr__task_t *t = opaque;
    const char *k = key, *slash = memchr(k, '/', key_len);
    char stage[16];
    size_t n = slash ? (size_t)(slash - k) : 0;
    if (n > 0 && n < sizeof(stage) && k[0] == '_' && !memcmp(k, "_merge", 6)) {
        memcpy(stage, k, n);
        stage[n] = '\0';
        if (enr__merger_restore(t->merger, stage, slash + 1, key_len - n - 1, value, value_len))
            uc__log(&t->p->log, UC_LOG_INFO, "changelog: an invalid %s record; skipped", stage);
        return;
    }
    if (enr__pipeline_restore(t->pipe, key, key_len, value, value_len) < 0) /* name, no key */
        uc__log(&t->p->log, UC_LOG_WARNING,
                "changelog: a %.*s record that no configured stage takes; skipped",
                (int)(slash ? (size_t)(slash - k) : 0), k);
}

void enr__task_apply_changelog(enr__task_t *t, const void *key, size_t key_len, const void *value,
                               size_t value_len)
{
    enr__image_put(t->image, key, key_len, value, value_len); /* failing: from Kafka next time */
    apply(t, key, key_len, value, value_len);
}

int enr__task_rebuild(enr__task_t *t, int from_image, char *errstr, size_t errstr_size)
{
    enr_processor_t *p = t->p;
    enr_pipeline_t *pipe = enr__pipeline_new(p->conf, &t->sink, enr__pipeline_profiles(p->pipe),
                                             errstr, errstr_size);
    enr__merger_t *merger = pipe ? enr__merger_new(&pipe->s, p->ntasks) : NULL;
    enr__image_t *image = merger && !from_image ? enr__image_new(&p->image_budget) : NULL;
    if (!merger || (!from_image && !image)) {
        enr__merger_free(merger);
        enr_pipeline_destroy(pipe);
        if (pipe)
            uc__errstr(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (image) { /* the restore that follows fills it */
        enr__image_free(t->image);
        t->image = image;
    }
    if (t->pipe)
        task_stats(t, p->retired); /* what the old stages counted stays counted */
    enr_pipeline_destroy(t->pipe);
    enr__merger_free(t->merger);
    t->pipe = pipe;
    t->merger = merger;
    t->horizon_sent[0] = t->horizon_sent[1] = INT64_MIN;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    enr__task_partitions(p, t->id, parts);
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, p->repartition_topic))
            enr__clock_assign(pipe, parts->elems[i].topic, parts->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(parts);
    if (from_image)
        enr__image_replay(t->image, apply, t);
    return 0;
}
