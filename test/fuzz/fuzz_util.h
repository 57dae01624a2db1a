/*
 * fuzz_util.h - helpers shared by the fuzz targets: FUZZ_CHECK; for the spool targets, making
 * mutated segment images reach past the CRC, building segment images from a compact
 * description, and checking records; for the configuration targets, the password oracle.
 *
 * The CRC-32C of a frame stops almost every mutation at ue__frame_check_crc, so the targets
 * offer two ways past it: fuzz_fix_crcs() recomputes the CRC of every plausible frame of a
 * mutated image (mutations then reach the decompressor), and fuzz_build_image() compresses
 * fuzzer-chosen raw record bytes into real frames (mutations then reach the record parser and
 * the sequence-number logic, which a mutated zstd payload almost never does).
 */
#ifndef UE_FUZZ_UTIL_H
#define UE_FUZZ_UTIL_H

#include "record.h"
#include "spool_frame.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts with a message: libFuzzer reports it as a crash and saves the input. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A growable byte buffer. */
typedef struct fuzz_buf {
    uint8_t *p;
    size_t len, cap;
} fuzz_buf_t;

int fuzz_buf_reserve(fuzz_buf_t *b, size_t extra);
void fuzz_buf_free(fuzz_buf_t *b);

/* Recomputes the CRC of every frame whose header parses and whose payload fits in @p buf. */
void fuzz_fix_crcs(uint8_t *buf, size_t len);

/* What fuzz_build_image() produced, for the targets' oracles. */
typedef struct fuzz_image_info {
    size_t frames;      /* frames written */
    int all_valid;      /* every frame is well formed and in sequence order: a scan keeps all */
    uint64_t first_seq; /* of the first frame; 0 when none */
    uint64_t records;   /* records in the frames, when all_valid */
} fuzz_image_info_t;

/*
 * Builds a segment image from a compact description, appended to @p out:
 *
 *   repeated { u8 ctl; u8 count; u16le raw_len; raw_len bytes of serialized records }
 *
 * ctl bits 0-5: gap before this frame's first sequence number (63: 2^27, beyond what one spool
 * segment may span); bit 6: the gap goes backwards;
 * bit 7: the frame is torn (only its first half is written). The first frame starts at
 * @p start_seq. A truncated chunk takes what is left of the input.
 */
int fuzz_build_image(ZSTD_CCtx *cctx, const uint8_t *in, size_t len, uint64_t start_seq,
                     fuzz_buf_t *out, fuzz_image_info_t *info);

/*
 * Checks one record parsed from a spool frame: NUL-terminated strings where record.h says,
 * serialization round trip against @p in (its @p used bytes), sent_at stamping in the slack.
 */
void fuzz_check_record(ue__record_t *r, const uint8_t *in, size_t used);

/* 1 when @p in holds exactly @p count serialized records and nothing else. */
int fuzz_records_exact(const uint8_t *in, size_t len, uint32_t count);

/*
 * 1 when @p text shows the password of the warehouse URL @p url: the raw (still
 * percent-encoded) text between the ':' of the user info and the last '@' of the authority, as
 * whs__url_parse() and whs__url_mask() both find it. A password that also stands elsewhere in
 * the URL (scheme, user, host, path) or holds a '*' (the mask's own "****" could show it)
 * proves nothing and counts as not shown.
 */
int fuzz_url_shows_password(const char *url, const char *text);

#endif
