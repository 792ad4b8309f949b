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

/// 8 signed bytes at `p` as fp32.
static inline __attribute__((always_inline)) emerald_float8 emerald_widen_i8x8(const signed char *p) {
    emerald_char8 q;
    __builtin_memcpy(&q, p, sizeof q);
    return __builtin_convertvector(q, emerald_float8);
}

// Integer dot products for 8-bit generation (q8_0 weights times a q8_0-quantized activation
// row), as llama.cpp's AVX2 path: |x| times sign-adjusted w with vpmaddubsw (16-bit pair sums,
// at most 2·127² so never saturating), vpmaddwd to 32-bit, then one fp32 multiply-add per
// 32 weights by the two scales. Swift has no saturating byte multiply-add, and widening every
// byte to fp32 made int8 decode compute-bound at 14–19 GB/s of weights.

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
// Sums of four byte products into each 32-bit lane. With AVX-512 VNNI, vpdpbusd in one
// instruction; else vpmaddubsw + vpmaddwd. The same integers either way (no pair sum
// saturates), so every machine computes the same logits.
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define EMERALD_Q8_PAIRS(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#else
#define EMERALD_Q8_PAIRS(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), ones)
#endif
#endif

/// out[r] = Σ_b xd[b]·d(r, b)·Σ_i xq[32b + i]·q(r, b, i) for r < 4, where row r's blocks start at
/// `w + r·ld` bytes, each 36 bytes: an fp32 scale d, then 32 signed bytes q. `xq` holds
/// 32·blocks signed bytes with |xq| ≤ 127, `xd` one scale per block.
static inline __attribute__((always_inline)) void emerald_q8_dot4(const signed char *xq, const float *xd,
                                                                  const void *w, long ld, long blocks, float *out) {
    const char *w0 = (const char *)w;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        const float dx = xd[b];
#define EMERALD_Q8_ROW(r, acc)                                                                    \
        {                                                                                         \
            const char *blk = w0 + (r) * ld + 36 * b;                                             \
            float d;                                                                              \
            __builtin_memcpy(&d, blk, 4);                                                         \
            const __m256i qw = _mm256_loadu_si256((const __m256i *)(blk + 4));                    \
            const __m256i p = EMERALD_Q8_PAIRS(ax, _mm256_sign_epi8(qw, qx));                      \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(p), acc);            \
        }
        EMERALD_Q8_ROW(0, a0) EMERALD_Q8_ROW(1, a1) EMERALD_Q8_ROW(2, a2) EMERALD_Q8_ROW(3, a3)
#undef EMERALD_Q8_ROW
    }
    // Horizontal sums of the four accumulators.
    const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
    const __m256 h = _mm256_hadd_ps(h01, h23);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
#else
    for (int r = 0; r < 4; r++) {
        float s = 0;
        for (long b = 0; b < blocks; b++) {
            const char *blk = w0 + r * ld + 36 * b;
            float d;
            __builtin_memcpy(&d, blk, 4);
            int t = 0;
            for (int i = 0; i < 32; i++) t += (int)xq[32 * b + i] * (int)(signed char)blk[4 + i];
            s += d * xd[b] * (float)t;
        }
        out[r] = s;
    }
#endif
}

/// Whether `emerald_q8_dot4` was compiled with its AVX2 path.
static inline int emerald_q8_dot4_is_vectorized(void) {
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}

#endif
