/*
 * spool_frame.h - the on-disk frame of the spool: one zstd-compressed batch of records.
 *
 *   offset  size  field
 *   0       4     magic "UES1"
 *   4       4     compressed length (little-endian)
 *   8       4     raw length
 *   12      4     record count
 *   16      8     sequence number of the first record (the others follow consecutively)
 *   24      4     CRC-32C of bytes 4..23 and of the compressed payload
 *   28      ...   zstd frame of the concatenated serialized records (record.h)
 *
 * A frame is written with one write(); a crash can leave a torn frame at a segment's end,
 * which the CRC exposes. Pure functions on buffers, so the fuzzer can drive them directly.
 */
#ifndef UE_SPOOL_FRAME_H
#define UE_SPOOL_FRAME_H

#include "record.h"

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#define UE__FRAME_HDR 28
#define UE__FRAME_MAX_COMP (64u << 20) /* sanity bounds for lengths read from disk */
#define UE__FRAME_MAX_RAW (256u << 20)

typedef struct ue__frame_hdr {
    uint32_t comp_len;
    uint32_t raw_len;
    uint32_t count;
    uint64_t first_seq;
    uint32_t crc;
} ue__frame_hdr_t;

/* Parses and sanity-checks a header; 0 when plausible, -1 otherwise. */
int ue__frame_parse_hdr(const uint8_t *buf, size_t len, ue__frame_hdr_t *h);

/* 0 when the CRC over header and @p payload (comp_len bytes) matches. */
int ue__frame_check_crc(const uint8_t *hdr_buf, const uint8_t *payload, const ue__frame_hdr_t *h);

/* Bytes needed to hold the frame of @p raw_len raw bytes (worst case). */
size_t ue__frame_bound(size_t raw_len);

/* Compresses @p raw into a complete frame at @p out; returns its length or 0 on error. */
size_t ue__frame_encode(ZSTD_CCtx *cctx, int level, const uint8_t *raw, size_t raw_len,
                        uint32_t count, uint64_t first_seq, uint8_t *out, size_t out_cap);

/*
 * Decompresses the payload of a checked frame into *@p raw (grown as needed, reused across
 * calls) and verifies it holds exactly h->count well-formed records. 0 or -1.
 */
int ue__frame_decompress(ZSTD_DCtx *dctx, const uint8_t *payload, const ue__frame_hdr_t *h,
                         uint8_t **raw, size_t *raw_cap);

/*
 * Scans a whole segment image: calls @p on_frame for each valid frame (with its offset),
 * skipping corrupt bytes by searching for the next magic. Returns the number of corrupt
 * regions skipped; *@p valid_end receives the end of the last valid frame.
 */
typedef void(ue__frame_visit_fn)(const ue__frame_hdr_t *h, size_t offset, void *opaque);
int ue__frames_scan(const uint8_t *buf, size_t len, ZSTD_DCtx *dctx, uint8_t **raw,
                    size_t *raw_cap, ue__frame_visit_fn *on_frame, void *opaque,
                    size_t *valid_end);

#endif
