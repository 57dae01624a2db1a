/*
 * uc_time.h - the two clocks the libraries use: wall time for event timestamps (Unix ms) and
 * a monotonic clock for deadlines and intervals, which never jumps with NTP.
 */
#ifndef UC_TIME_H
#define UC_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t uc__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t uc__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t uc__mono_ms(void)
{
    return uc__mono_ns() / 1000000;
}

/* A deadline in monotonic ms from a timeout; -1 (forever) maps to INT64_MAX. */
static inline int64_t uc__deadline_ms(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : uc__mono_ms() + timeout_ms;
}

/* Milliseconds left until @p deadline, clamped to [0, INT32_MAX]. */
static inline int uc__remaining_ms(int64_t deadline)
{
    int64_t left = deadline - uc__mono_ms();
    if (left < 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

#endif
