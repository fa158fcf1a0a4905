/* A test over a Batch's row lengths, in C.
 *
 * The GSO send checks, on every call, that each row but the last is exactly
 * one segment long (src/_cengine.pyx, _check_segments): 1,023 comparisons for
 * a send of 1,024 rows, the largest single part of the call's user-space
 * work. GCC's and Clang's vector extensions give two lengths per register
 * (SSE2 on baseline x86-64, NEON on arm64) with no intrinsics and no
 * per-architecture code. */
#ifndef FASTNET_ROWS_H
#define FASTNET_ROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 16 bytes: one register on x86-64 (SSE2) and arm64 (NEON); elsewhere the
 * compiler splits it, with the same result. A 32-byte type, without AVX,
 * was kept on the stack between steps. */
typedef uint64_t fastnet_u64x2 __attribute__((vector_size(2 * sizeof(uint64_t))));

/* Whether any of values[0..n-1] differs from x; each value is read once.
 *
 * An OR of each value's XOR with x, eight a step into two registers, with no
 * branch per value: a caller that needs the first one that differs looks
 * for it only when this says there is one. */
static inline int fastnet_any_differs(const int64_t *values, ptrdiff_t n, int64_t x)
{
    const uint64_t want = (uint64_t)x;
    const fastnet_u64x2 wants = {want, want};
    fastnet_u64x2 off0 = {0, 0}, off1 = {0, 0};
    uint64_t rest = 0;
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        fastnet_u64x2 a, b, c, d;
        /* memcpy: the lengths are 8-byte aligned, not 16; each compiles to
         * one unaligned vector load (an array of four went through the stack). */
        memcpy(&a, values + i, sizeof a);
        memcpy(&b, values + i + 2, sizeof b);
        memcpy(&c, values + i + 4, sizeof c);
        memcpy(&d, values + i + 6, sizeof d);
        off0 |= (a ^ wants) | (c ^ wants);
        off1 |= (b ^ wants) | (d ^ wants);
    }
    for (; i < n; i++)
        rest |= (uint64_t)values[i] ^ want;
    off0 |= off1;
    return (off0[0] | off0[1] | rest) != 0;
}

#endif
