/*
 * uc_uuid7.c - UUIDv7 generation (see uc_uuid7.h).
 *
 * The 60 bits of timestamp + counter live in one atomic word, so every id from this process
 * is greater than the previous one without a lock: the next value is max(last + 1, now << 12).
 * When more than 4096 ids are made in one millisecond the counter carries into the timestamp,
 * which then runs slightly ahead of the clock, as RFC 9562 allows.
 */
#include "uc_uuid7.h"
#include "uc_fork.h"
#include "uc_time.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static _Atomic uint64_t last_ts_counter;

/* Per-thread xoshiro256** state; reseeded from the kernel on first use and after fork(). */
static _Thread_local uint64_t rng_state[4];
static _Thread_local uint32_t rng_generation = UINT32_MAX;

void uc__random_bytes(void *out, size_t len)
{
    uint8_t *p = out;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    /* getrandom can only fail on ancient kernels; never leave the bytes predictable-zero. */
    for (uint64_t x = (uint64_t)uc__mono_ns() ^ (uint64_t)getpid() << 32; len > 0; len--) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        *p++ = (uint8_t)(x >> 56);
    }
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    uint32_t gen = uc__fork_generation();
    if (rng_generation != gen) {
        do
            uc__random_bytes(rng_state, sizeof(rng_state));
        while (!(rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]));
        rng_generation = gen;
    }
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t next_ts_counter(void)
{
    uint64_t now = (uint64_t)uc__wall_ms() << 12;
    uint64_t last = atomic_load_explicit(&last_ts_counter, memory_order_relaxed);
    uint64_t next;
    do
        next = last >= now ? last + 1 : now;
    while (!atomic_compare_exchange_weak_explicit(&last_ts_counter, &last, next,
                                                  memory_order_relaxed, memory_order_relaxed));
    return next;
}

void uc__uuid7_new(uint8_t out[16])
{
    uint64_t hi = next_ts_counter();     /* 48-bit ms | 12-bit counter */
    uint64_t lo = rng_next();
    uint64_t ms = hi >> 12;
    uint16_t counter = hi & 0xfff;

    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (counter >> 8));
    out[7] = (uint8_t)counter;
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
}

int64_t uc__uuid7_time_ms(const uint8_t id[16])
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id[i];
    return ms;
}

void uc__uuid_format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 0xf];
    }
    *p = '\0';
}
