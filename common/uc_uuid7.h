/*
 * uc_uuid7.h - UUIDv7 event ids (RFC 9562).
 *
 * Layout: 48-bit Unix ms timestamp, version 7, a 12-bit counter (rand_a, RFC 9562 6.2
 * method 1), variant 10, 62 random bits. Ids from one process are strictly increasing, across
 * threads too; the random tail keeps processes apart, reseeded after fork().
 */
#ifndef UC_UUID7_H
#define UC_UUID7_H

#include <stddef.h>
#include <stdint.h>

/* Writes a new UUIDv7 into @p out. Thread-safe, lock-free. */
void uc__uuid7_new(uint8_t out[16]);

/* The Unix ms timestamp embedded in a UUIDv7. */
int64_t uc__uuid7_time_ms(const uint8_t id[16]);

/* Canonical 8-4-4-4-12 lowercase hex form; @p out holds 37 bytes. */
void uc__uuid_format(const uint8_t id[16], char out[37]);

/* Fills @p out with @p len random bytes from the kernel (getrandom), or a time-seeded fallback. */
void uc__random_bytes(void *out, size_t len);

#endif
