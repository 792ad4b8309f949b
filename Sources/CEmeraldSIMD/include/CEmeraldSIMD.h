// Vector math that Swift's SIMD types do not lower to vector instructions.
//
// `SIMD8<Float>.squareRoot()` (and a plain scalar loop of `Float.squareRoot()`) compiles to
// eight scalar vsqrtss plus lane inserts: it was most of AdamW's update. Clang's elementwise
// builtin is one vsqrtps (NEON fsqrt on arm64); always_inline so Swift inlines it.
#ifndef CEMERALD_SIMD_H
#define CEMERALD_SIMD_H

typedef float emerald_float8 __attribute__((ext_vector_type(8)));

/// Lane-wise square root of 8 floats (IEEE, correctly rounded).
static inline __attribute__((always_inline)) emerald_float8 emerald_sqrt8(emerald_float8 x) {
    return __builtin_elementwise_sqrt(x);
}

typedef unsigned short emerald_ushort8 __attribute__((ext_vector_type(8)));
typedef unsigned int emerald_uint8 __attribute__((ext_vector_type(8)));
typedef signed char emerald_char8 __attribute__((ext_vector_type(8)));

// Widening loads for generation's compressed weight copies. Swift's generic
// `SIMD8<UInt32>(truncatingIfNeeded:)` stayed an out-of-line call once the kernel moved
// into a closure (18% of bf16 decode); __builtin_convertvector is one vpmovzx/vpmovsx.

/// 8 bfloat16 values (bit patterns) at `p` as fp32: zero-extend, shift into the high half.
static inline __attribute__((always_inline)) emerald_float8 emerald_widen_bf16x8(const unsigned short *p) {
    emerald_ushort8 h;
    __builtin_memcpy(&h, p, sizeof h);
    emerald_uint8 w = __builtin_convertvector(h, emerald_uint8) << 16;
    emerald_float8 f;
    __builtin_memcpy(&f, &w, sizeof f);
    return f;
}

/// Asks for the cache line at `p` for writing, without waiting for it.
static inline __attribute__((always_inline)) void emerald_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

/// 8 signed bytes at `p` as fp32.
static inline __attribute__((always_inline)) emerald_float8 emerald_widen_i8x8(const signed char *p) {
    emerald_char8 q;
    __builtin_memcpy(&q, p, sizeof q);
    return __builtin_convertvector(q, emerald_float8);
}

// Integer products for 8-bit generation.
#include "CEmeraldQ8.h"

#endif
