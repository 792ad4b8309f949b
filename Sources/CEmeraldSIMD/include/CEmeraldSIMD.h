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

#endif
