/*
 * ue_pbcheck.h - a check of Protobuf bytes from untrusted sources before protobuf-c unpacks
 * them: libprotobuf-c recurses once per nested message with no depth limit (5000 levels of
 * nested lists overflow an 8 MB stack), and keeps a field numbered 0, which it then cannot
 * encode again. This walk is iterative and follows the message descriptors.
 */
#ifndef UE_PBCHECK_H
#define UE_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

enum { UE__PB_OK = 0, UE__PB_MALFORMED = -1, UE__PB_TOO_DEEP = -2 };

/* Checks that @p buf is well-formed wire data for @p desc nested at most @p max_depth deep. */
int ue__pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                 int max_depth);

#endif
