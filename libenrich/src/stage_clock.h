/*
 * stage_clock.h - the clock stage's rule for event time, for the stages that need an event
 * time that a skewed client clock cannot move, even when they run before the clock stage
 * (dedup does, in the default order).
 */
#ifndef ENR_STAGE_CLOCK_H
#define ENR_STAGE_CLOCK_H

#include "event.h"

#include <stdint.h>

/*
 * The receive time of @p e: the event's received_at_ms when set (a collector stamped it),
 * else e->out.received_at_ms (the Kafka record timestamp the pipeline put there); 0 if none.
 */
int64_t enr__clock_received_ms(const enr_event_t *e);

/*
 * Segment's skew correction: timestamp + (received_at - sent_at) when timestamp, sent_at and
 * received_at are all > 0; else the timestamp when > 0; else received_at (0 when unknown).
 * Saturates instead of overflowing on absurd values.
 */
int64_t enr__clock_corrected_ms(const enr_event_t *e);

/*
 * @p t, but never after the receive time of @p e (when it has one): what the clocks that decide
 * what is old advance to (dedup's newest id, the partition clock behind the watermark), so that
 * a device clock ahead cannot move them early.
 */
int64_t enr__clock_capped_ms(const enr_event_t *e, int64_t t);

#endif
