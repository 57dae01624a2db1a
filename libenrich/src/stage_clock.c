/*
 * stage_clock.c - the "clock" stage: event time that survives wrong device clocks.
 *
 * A device's clock may be minutes or years off, but it is off by the same amount when the
 * event is tracked (timestamp) and when it is sent (sent_at). The server's receive time is
 * right, so timestamp + (received_at - sent_at) is when the event happened on the server's
 * clock (Segment's rule). The stage writes out.received_at_ms and out.corrected_timestamp_ms;
 * every later stage reads event time through enr_event_time_ms(). Stateless.
 */
#include "stage_clock.h"
#include "stage.h"

int64_t enr__clock_received_ms(const enr_event_t *e)
{
    if (e->ev->received_at_ms > 0)
        return e->ev->received_at_ms;
    return e->out.received_at_ms > 0 ? e->out.received_at_ms : 0;
}

int64_t enr__clock_corrected_ms(const enr_event_t *e)
{
    int64_t ts = e->ev->timestamp_ms, sent = e->ev->sent_at_ms;
    int64_t received = enr__clock_received_ms(e);
    int64_t skew, corrected;
    if (ts <= 0)
        return received;
    if (sent <= 0 || received <= 0)
        return ts;
    /* Both positive: received - sent cannot overflow; the sum can, for absurd values. */
    skew = received - sent;
    if (__builtin_add_overflow(ts, skew, &corrected))
        return ts;
    return corrected;
}

int64_t enr__clock_capped_ms(const enr_event_t *e, int64_t t)
{
    int64_t received = enr__clock_received_ms(e);
    return received > 0 && t > received ? received : t;
}

static enr_verdict_t clock_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)state, (void)ctx, (void)opaque;
    e->out.received_at_ms = enr__clock_received_ms(e);
    e->out.corrected_timestamp_ms = enr__clock_corrected_ms(e);
    return ENR_KEEP;
}

enr_stage_t *enr__stage_clock_new(const enr__settings_t *s)
{
    return enr_stage_new("clock", clock_process, (void *)s);
}
