/*
 * processor_step.c - one step of a processor (enr_poll) and its end: consume a batch of
 * records, hand each to its task (task.c) inside the open transaction, commit when the
 * transaction is due; stop, destroy, statistics.
 */
#include "processor.h"
#include "uc_props.h"
#include "uc_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* librdkafka (#3437, open) rejoins a static member whose session timed out with a new member
 * id, and the group then fences the old one: its own. The transaction coordinator likewise
 * aborts a transaction left open past transaction.timeout.ms (a broker outage longer than it)
 * and fences its producer. Such a fence comes once the coordinator is back, which may take
 * long (a broker restart: 17 s in make chaos, past two 6 s sessions). Within a minute (or two
 * sessions, if longer) of a session timeout, or with the transaction open that long, a fence
 * is taken for the processor's own: nothing else runs, and a new processor continues. */
int enr__fence_is_own(const enr_processor_t *p)
{
    int64_t now = uc__mono_ms(), lost = atomic_load(&p->session_lost_ms);
    int64_t window = 2 * uc__kafka_conf_int(p->conf->consumer, "session.timeout.ms", 45000);
    if (lost && now - lost < (window > 60000 ? window : 60000))
        return 1;
    int64_t txn_timeout = uc__kafka_conf_int(p->conf->producer, "transaction.timeout.ms", 60000);
    return p->in_txn && now - p->txn_started_ms >= txn_timeout;
}

/* An error the consumer reports with a record: fatal ones (another process took this
 * instance.id) stop the processor with librdkafka's reason. */
static void consumer_error(enr_processor_t *p, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if (m->err != RD_KAFKA_RESP_ERR__FATAL) {
        uc__log(&p->log, UC_LOG_WARNING, "consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    char why[400], reason[600];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(p->consumer, why, sizeof(why));
    int self = err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID && enr__fence_is_own(p);
    snprintf(reason, sizeof(reason), "consumer: %s%s", why,
             self ? " (after its session timed out: its own rejoin, librdkafka #3437; a new "
                    "processor continues)"
             : err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID
                 ? " (another processor runs with this instance.id)"
                 : "");
    enr__processor_fail(p, self ? ENR_ERR_SELF_FENCED
                           : err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID ? ENR_ERR_FENCED
                                                                         : ENR_ERR_KAFKA_FATAL,
                        reason);
}

static int txn_due(const enr_processor_t *p)
{
    return p->in_txn && (p->txn_events >= p->conf->s.txn_max_events ||
                         p->txn_bytes >= p->conf->s.txn_max_bytes ||
                         uc__mono_ms() - p->txn_started_ms >= p->conf->s.txn_max_ms);
}

int enr_poll(enr_processor_t *p, int timeout_ms)
{
    if (!p)
        return ENR_ERR_INVALID_ARG;
    if (p->in_callback)
        return ENR_ERR_RECURSIVE_CALL;
    if (p->fatal)
        return p->fatal;
    if (atomic_load(&p->stop))
        return ENR_ERR_STOPPED;

    size_t max = (size_t)p->conf->s.batch_max_events;
    enr__profiles_poll(p, 0);
    char errstr[512];
    if (enr__subscription_refresh(p, 1000, errstr, sizeof(errstr)) < 0) {
        enr__processor_fail(p, ENR_ERR_KAFKA_FATAL, errstr);
        return p->fatal;
    }
    /* An open transaction waits for input only until it is due, not past it (nor spins). */
    int wait = timeout_ms;
    if (p->in_txn) {
        int64_t left = p->txn_started_ms + p->conf->s.txn_max_ms - uc__mono_ms();
        wait = left <= 0 ? 0 : left < wait || wait < 0 ? (int)left : wait;
    }
    /* One record per call, never librdkafka 2.0's batch API: that one could advance the
     * consumer past records it dropped at a rebalance (owned.c). A rebalance callback runs
     * inside rd_kafka_consume_queue(), so it always sees every record handed out processed. */
    int processed = 0;
    for (size_t i = 0; i < max; i++) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(p->queue, i == 0 ? wait : 0);
        if (!m)
            break;
        if (m->err) {
            consumer_error(p, m);
        } else if (!p->fatal &&
                   enr__owned_take(p, rd_kafka_topic_name(m->rkt), m->partition, m->offset) &&
                   enr__txn_begin(p) == 0) {
            enr__task_process(p, m);
            processed++;
        }
        rd_kafka_message_destroy(m);
        if (txn_due(p))
            break; /* its size, not the batch, bounds what the producer holds */
    }
    uc__fetch_kick(&p->fetch_kick, p->consumer, p->queue, (int64_t)max);
    if (txn_due(p))
        enr__txn_commit(p, 60000);
    rd_kafka_poll(p->producer, 0);
    rd_kafka_poll(p->consumer, 0); /* its statistics (and errors) wait on its main queue */
    enr__processor_publish_stats(p);
    return p->fatal ? p->fatal : processed;
}

enr_err_t enr_run(enr_processor_t *p)
{
    if (!p)
        return ENR_ERR_INVALID_ARG;
    for (;;) {
        int rc = enr_poll(p, 100);
        if (rc == ENR_ERR_STOPPED)
            return ENR_OK;
        if (rc < 0)
            return (enr_err_t)rc;
    }
}

void enr_stop(enr_processor_t *p)
{
    if (p)
        atomic_store(&p->stop, 1);
}

/* librdkafka before 2.3.0 (Debian's is 2.0.2) aborts on an assert when a cooperative-sticky
 * consumer is destroyed after the group answered its JoinGroup and before its first
 * assignment: the assignor's state is still NULL (librdkafka #4312, fixed by #4381). A member
 * id says the join may have got that far: poll until the first assignment, taken only to be
 * given back, or until a rebalance must have ended. */
#define FIRST_ASSIGNMENT_WAIT_MS 15000

static void await_first_assignment(enr_processor_t *p)
{
    char *member = rd_kafka_memberid(p->consumer);
    int joining = member && *member && !atomic_load(&p->stats[ENR_STAT_REBALANCES]);
    rd_kafka_mem_free(p->consumer, member);
    if (!joining)
        return;
    p->closing = 1;
    int64_t deadline = uc__mono_ms() + FIRST_ASSIGNMENT_WAIT_MS;
    while (!atomic_load(&p->stats[ENR_STAT_REBALANCES]) && uc__mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, 100);
        if (m) /* nothing is assigned yet: at most an error event */
            rd_kafka_message_destroy(m);
    }
}

enr_err_t enr_processor_destroy(enr_processor_t *p, int timeout_ms)
{
    if (!p)
        return ENR_OK;
    if (p->in_callback)
        return ENR_ERR_RECURSIVE_CALL;
    enr_err_t rc = p->fatal;
    int64_t deadline = uc__deadline_ms(timeout_ms > 0 ? timeout_ms : 1);
    if (p->in_txn && !p->fatal)
        rc = enr__txn_commit(p, timeout_ms > 0 ? timeout_ms : 1);
    if (p->consumer) {
        await_first_assignment(p);
        /* Leave the group now, not after a session timeout; a coordinator that does not
         * answer costs the deadline (at least a second to try), never a hang. */
        int64_t least = uc__mono_ms() + 1000;
        if (enr__consumer_close(p, deadline > least ? deadline : least))
            uc__log(&p->log, UC_LOG_WARNING,
                    "close: the group was not left in time; its tasks move after "
                    "session.timeout.ms");
    }
    enr_conf_t *conf = p->conf;
    enr__processor_free(p);
    enr_conf_destroy(conf);
    return rc == ENR_ERR_STOPPED ? ENR_OK : rc;
}

void enr__processor_publish_stats(enr_processor_t *p)
{
    int64_t sum[ENR_STAT__CNT];
    enr__tasks_sum_stats(p, sum);
    static const enr_stat_t from_tasks[] = {ENR_STAT_DROPPED,  ENR_STAT_AGGREGATES,
                                            ENR_STAT_ALERTS,   ENR_STAT_LATE_EVENTS,
                                            ENR_STAT_RESTORED, ENR_STAT_FUTURE_EVENTS};
    for (size_t i = 0; i < sizeof(from_tasks) / sizeof(from_tasks[0]); i++)
        atomic_store(&p->stats[from_tasks[i]], sum[from_tasks[i]]);
    int64_t owned = 0;
    for (int32_t i = 0; i < p->ntasks; i++)
        owned += p->tasks[i] != NULL;
    atomic_store(&p->stats[ENR_STAT_TASKS], owned);
    void *profiles = enr__pipeline_profiles(p->pipe);
    atomic_store(&p->stats[ENR_STAT_PROFILES], profiles ? enr__profile_count(profiles) : 0);
}

int64_t enr_stat(enr_processor_t *p, enr_stat_t which)
{
    if (!p || (unsigned)which >= ENR_STAT__CNT)
        return -1;
    return atomic_load(&p->stats[which]);
}
