/*
 * client.c - the public client API: create and destroy, track, flush, identify, statistics.
 * Everything here runs on the caller's thread and never does I/O; the background thread
 * (sender.c) does the rest.
 */
#include "client.h"
#include "event.h"
#include "transport_http.h"
#include "transport_kafka.h"
#include "uc_fork.h"
#include "uc_props.h"
#include "uc_time.h"
#include "uc_uuid7.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The client whose callback this thread is running, to refuse re-entrant destroy/flush. */
static _Thread_local ue_client_t *in_callback;

static int forked(const ue_client_t *c)
{
    return c->fork_generation != uc__fork_generation();
}

void ue__client_report(ue_client_t *c, const uint8_t *event_id, const char *type,
                       ue_outcome_t outcome, ue_err_t reason, const char *reason_str)
{
    if (!c->conf->dr_cb)
        return;
    ue_client_t *outer = in_callback;
    in_callback = c;
    c->conf->dr_cb(event_id, type, outcome, reason, reason_str, c->conf->dr_opaque);
    in_callback = outer;
}

void ue__client_resolved(ue_client_t *c, int64_t n)
{
    atomic_fetch_add_explicit(&c->resolved.v, n, memory_order_relaxed);
}

void ue__client_wake_flushers(ue_client_t *c)
{
    /* Once per turn of the sender, only when a flush could now be done: a broadcast per
     * delivery report made the flushing thread wake and sleep again for every event. */
    int spooled = c->safe_moved; /* what ue_flush_spooled() waits for moved */
    c->safe_moved = 0;
    if (atomic_load(&c->flush_requests) > 0 &&
        (spooled || atomic_load(&c->resolved.v) >= ue__accepted(c))) {
        pthread_mutex_lock(&c->wait_lock);
        pthread_cond_broadcast(&c->wait_cond);
        pthread_mutex_unlock(&c->wait_lock);
    }
}

static void log_to_user(int level, const char *message, void *opaque)
{
    ue_conf_t *conf = opaque;
    conf->log_cb(level, message, conf->log_opaque);
}

/* Builds the per-client defaults: anonymous id and context. */
static void init_identity(ue_client_t *c)
{
    const ue__settings_t *s = &c->conf->s;
    Userevents__Context init = USEREVENTS__CONTEXT__INIT;

    if (s->anonymous_id) {
        snprintf(c->anonymous_id, sizeof(c->anonymous_id), "%s", s->anonymous_id);
    } else {
        uint8_t id[16];
        uc__random_bytes(id, sizeof(id));
        id[6] = (id[6] & 0x0f) | 0x40; /* a random (v4) UUID */
        id[8] = (id[8] & 0x3f) | 0x80;
        uc__uuid_format(id, c->anonymous_id);
    }
    c->context = init;
    for (int i = 0; i < UE__CTX_CNT; i++) {
        const char *v = s->context[i];
        char *slot = (char *)&c->context + ue__ctx_fields[i].offset;
        if (!v)
            continue;
        if (ue__ctx_fields[i].is_number)
            *(uint32_t *)slot = (uint32_t)ue__ctx_parse_number(v);
        else
            *(const char **)slot = v;
    }
    c->context.library_name = "libuserevents";
    c->context.library_version = (char *)ue_version_str();
}

static int check_conf(const ue_conf_t *conf, char *errstr, size_t errstr_size)
{
    const ue__settings_t *s = &conf->s;
    if (ue__topic_template_valid(s->topic_template ? s->topic_template : "", errstr,
                                 errstr_size))
        return -1;
    if (s->transport == UE__TRANSPORT_HTTP &&
        ue__http_url_valid(s->http_url, errstr, errstr_size))
        return -1;
    if (s->spool_dir && s->spool_segment_bytes > s->spool_max_bytes) {
        uc__errstr(errstr, errstr_size, "spool.segment.bytes must not exceed spool.max.bytes");
        return -1;
    }
    return 0;
}

static int open_parts(ue_client_t *c, char *errstr, size_t errstr_size)
{
    const ue__settings_t *s = &c->conf->s;
    size_t keep_drops = c->conf->dr_cb ? 4096 : 0;

    if (ue__queue_init(&c->queue, (size_t)s->queue_max_events, (size_t)s->queue_max_bytes,
                       (ue__full_policy_t)s->queue_full_policy, (int)s->queue_block_timeout_ms,
                       keep_drops)) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return UE_ERR_NOMEM;
    }
    if (s->spool_dir) {
        ue__spool_opts_t o = {.dir = s->spool_dir,
                              .max_bytes = (uint64_t)s->spool_max_bytes,
                              .max_age_ms = s->spool_max_age_ms,
                              .segment_bytes = (uint64_t)s->spool_segment_bytes,
                              .fsync = s->spool_fsync,
                              .compression_level = (int)s->spool_compression_level};
        int rc = ue__spool_open(&c->spool, &o, &c->log, errstr, errstr_size);
        if (rc)
            return rc;
        c->replay_total = (int64_t)ue__spool_replay_total(c->spool);
        atomic_store(&c->stats[UE_STAT_SPOOL_CORRUPT].v, (int64_t)ue__spool_corrupt(c->spool));
    }
    if (s->transport == UE__TRANSPORT_HTTP) {
        c->transport = ue__transport_http_new(s, &c->log, ue__sender_on_result,
                                              ue__sender_on_retry, c, errstr, errstr_size);
        return c->transport ? 0 : UE_ERR_TRANSPORT;
    }
    /* The transport takes a copy of the librdkafka conf: ours stays for ue_conf_get(). */
    rd_kafka_conf_t *kconf = rd_kafka_conf_dup(c->conf->kconf);
    c->transport = kconf ? ue__transport_kafka_new(kconf, s->topic_template, &c->log,
                                                   ue__sender_on_result, c, errstr, errstr_size)
                         : NULL;
    if (!c->transport) {
        if (kconf)
            rd_kafka_conf_destroy(kconf);
        return UE_ERR_TRANSPORT;
    }
    return 0;
}

/* Frees what open_parts() and ue_client_new() made; the background thread is not running. */
static void free_client(ue_client_t *c)
{
    if (c->transport)
        c->transport->ops->destroy(c->transport);
    ue__spool_close(c->spool);
    ue__queue_destroy(&c->queue);
    ue__record_free_list(c->pending_head);
    pthread_rwlock_destroy(&c->identity_lock);
    pthread_mutex_destroy(&c->wait_lock);
    pthread_cond_destroy(&c->wait_cond);
    free(c->user_id);
    free(c);
}

ue_client_t *ue_client_new(ue_conf_t *conf, char *errstr, size_t errstr_size)
{
    pthread_condattr_t attr;
    ue_client_t *c;

    if (!conf) {
        uc__errstr(errstr, errstr_size, "conf must not be NULL");
        return NULL;
    }
    if (check_conf(conf, errstr, errstr_size))
        return NULL;
    if (!(c = calloc(1, sizeof(*c)))) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->conf = conf;
    c->fork_generation = uc__fork_generation();
    c->log = (uc__logger_t){.level = ue__conf_log_level(conf),
                            .prefix = "userevents",
                            .fn = conf->log_cb ? log_to_user : NULL,
                            .opaque = conf};
    pthread_rwlock_init(&c->identity_lock, NULL);
    pthread_mutex_init(&c->wait_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wait_cond, &attr);
    pthread_condattr_destroy(&attr);
    init_identity(c);

    if (open_parts(c, errstr, errstr_size)) {
        c->conf = NULL; /* on failure the caller keeps conf */
        free_client(c);
        return NULL;
    }
    if (!conf->s.anonymous_id && c->spool) /* one device, one anonymous user */
        ue__spool_anonymous_id(c->spool, c->anonymous_id);
    if (pthread_create(&c->thread, NULL, ue__sender_main, c)) {
        c->conf = NULL; /* on failure the caller keeps conf */
        free_client(c);
        return NULL;
    }
    return c;
}

ue_err_t ue_client_destroy(ue_client_t *c)
{
    if (!c)
        return UE_OK;
    if (in_callback == c)
        return UE_ERR_RECURSIVE_CALL;
    if (forked(c)) {
        /* The parent's thread does not exist here and its locks may be held forever: touch
         * nothing shared, leave the spool to the parent, free only our own block. */
        free(c);
        return UE_OK;
    }
    ue_flush(c, (int)c->conf->s.shutdown_timeout_ms);
    atomic_store(&c->stopping, 1);
    ue__queue_wakeup(&c->queue);
    pthread_join(c->thread, NULL);
    ue_conf_t *conf = c->conf;
    free_client(c);
    ue_conf_destroy(conf);
    return UE_OK;
}

ue_err_t ue_track(ue_client_t *c, ue_event_t *ev)
{
    ue_err_t err;
    ue__record_t *rec;

    if (!c || !ev)
        return UE_ERR_INVALID_ARG;
    if (forked(c))
        return UE_ERR_FORKED;
    if (atomic_load_explicit(&c->stopping, memory_order_relaxed))
        return UE_ERR_SHUTDOWN;

    size_t max = (size_t)c->conf->s.event_max_bytes;
    if (atomic_load_explicit(&c->has_user_id, memory_order_acquire)) {
        pthread_rwlock_rdlock(&c->identity_lock);
        rec = ue__event_encode(ev, &c->context, c->user_id, c->anonymous_id, max, &err);
        pthread_rwlock_unlock(&c->identity_lock);
    } else {
        rec = ue__event_encode(ev, &c->context, NULL, c->anonymous_id, max, &err);
    }
    if (!rec)
        return err;

    int rc = ue__queue_push(&c->queue, rec);
    if (rc < 0) {
        ue__stat_add(c, UE_STAT_DROPPED_QUEUE_FULL, 1);
        return UE_ERR_QUEUE_FULL;
    }
    ue__stat_add(c, UE_STAT_TRACKED, 1);
    if (rc > 0) { /* drop_oldest evicted rc accepted events */
        ue__stat_add(c, UE_STAT_DROPPED_QUEUE_FULL, rc);
        ue__client_resolved(c, rc);
    }
    return UE_OK;
}

static int all_resolved(ue_client_t *c, uint64_t unused)
{
    (void)unused;
    return atomic_load(&c->resolved.v) >= ue__accepted(c);
}

static int spooled_through(ue_client_t *c, uint64_t target)
{
    return atomic_load(&c->safe_through) >= target && atomic_load(&c->unspooled) == 0;
}

/* Waits until @p done(c, arg) or @p timeout_ms; the background thread does not linger
 * meanwhile and wakes the waiters once per turn. */
static ue_err_t wait_for(ue_client_t *c, int (*done)(ue_client_t *, uint64_t), uint64_t arg,
                         int timeout_ms)
{
    int64_t deadline = uc__deadline_ms(timeout_ms);
    ue_err_t rc = UE_OK;
    atomic_fetch_add(&c->flush_requests, 1);
    ue__queue_wakeup(&c->queue);
    pthread_mutex_lock(&c->wait_lock);
    while (!done(c, arg)) {
        int left = uc__remaining_ms(deadline);
        if (left == 0) {
            rc = UE_ERR_TIMED_OUT;
            break;
        }
        /* Wake at least every 100 ms: the sender signals only while flushes are counted. */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int step = left < 100 ? left : 100;
        until.tv_nsec += (long)step * 1000000;
        until.tv_sec += until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&c->wait_cond, &c->wait_lock, &until);
    }
    pthread_mutex_unlock(&c->wait_lock);
    atomic_fetch_sub(&c->flush_requests, 1);
    return rc;
}

ue_err_t ue_flush(ue_client_t *c, int timeout_ms)
{
    if (!c)
        return UE_ERR_INVALID_ARG;
    if (in_callback == c)
        return UE_ERR_RECURSIVE_CALL;
    if (forked(c))
        return UE_ERR_FORKED;
    return wait_for(c, all_resolved, 0, timeout_ms);
}

ue_err_t ue_flush_spooled(ue_client_t *c, int timeout_ms)
{
    if (!c)
        return UE_ERR_INVALID_ARG;
    if (in_callback == c)
        return UE_ERR_RECURSIVE_CALL;
    if (forked(c))
        return UE_ERR_FORKED;
    if (!c->spool)
        return ue_flush(c, timeout_ms);
    /* Queue positions, not the tracked counter: it is counted after the push, so another
     * thread's event could be counted in place of ours. Records whose spool write failed are
     * counted, not positioned: a failure before this call may have hit our events too, so
     * every such record is waited for until acknowledged (a counter compared before and after
     * missed those, and said UE_OK for events neither on disk nor acknowledged). */
    uint64_t target = ue__queue_pushed(&c->queue);
    ue_err_t rc = wait_for(c, spooled_through, target, timeout_ms);
    if (rc == UE_ERR_TIMED_OUT && atomic_load(&c->safe_through) >= target)
        return UE_ERR_SPOOL; /* only unacknowledged records of a failed write are left */
    return rc;
}

ue_err_t ue_identify(ue_client_t *c, const char *user_id)
{
    if (!c)
        return UE_ERR_INVALID_ARG;
    if (forked(c))
        return UE_ERR_FORKED;
    char *copy = NULL;
    if (user_id && *user_id && !(copy = strdup(user_id)))
        return UE_ERR_NOMEM;
    pthread_rwlock_wrlock(&c->identity_lock);
    free(c->user_id);
    c->user_id = copy;
    atomic_store_explicit(&c->has_user_id, copy != NULL, memory_order_release);
    pthread_rwlock_unlock(&c->identity_lock);
    return UE_OK;
}

const char *ue_anonymous_id(ue_client_t *c)
{
    return c ? c->anonymous_id : NULL;
}
