/*
 * uc_crc32c.h - CRC-32C (Castagnoli), the checksum of spool frames: the same polynomial Kafka
 * uses for record batches, strong against torn writes and bit rot.
 */
#ifndef UC_CRC32C_H
#define UC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends @p crc (0 to start) over @p len bytes of @p data. */
uint32_t uc__crc32c(uint32_t crc, const void *data, size_t len);

#endif
