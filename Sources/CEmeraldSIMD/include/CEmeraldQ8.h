// Integer products for 8-bit generation: q8_0 weights (an fp32 scale per 32 weights) times a
// q8_0-quantized activation row, as llama.cpp, but in panels of 16 weight rows so that one
// register of weights serves several activation rows at once.
//
// A panel block holds 16 rows × 32 columns: 16 fp32 scales (64 bytes), then 8 groups of 4
// columns, each group 16 rows × 4 bytes (64 bytes): byte 64 + 64g + 4r + t is column 32b + 4g + t
// of row r, stored as q + 128 (unsigned). One 512-bit load is then 4 columns of all 16 rows;
// vpdpbusd multiplies it by 4 bytes of an activation row broadcast from memory (unsigned times
// signed) into the 16 rows' sums, and 128·Σx per block comes back out. Batched decoding was
// compute-bound with one row of x per loaded weight (2.0–2.4× at 8 streams).
//
// Every path (AVX-512 VNNI, AVX2, portable C) computes the same integers per block and the same
// fp32 operations in the same order, f ← fma(d_row·d_x, float(Σ x·q), f) block after block,
// so every machine gives the same logits, and each activation row's result is the same
// whatever other rows share the call (batched decoding = one sequence alone, to the bit).
#ifndef CEMERALD_Q8_H
#define CEMERALD_Q8_H

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define EMERALD_Q8_PATH 2
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__FMA__)
#define EMERALD_Q8_PATH 1
#include <immintrin.h>
#else
#define EMERALD_Q8_PATH 0
#endif

/// The path compiled: 2 AVX-512 VNNI, 1 AVX2 + FMA, 0 portable C.
static inline int emerald_q8_path(void) { return EMERALD_Q8_PATH; }

/// q8_0 of `count` floats: per 32 values a scale d = max|x| / 127 in `scales` and 32 bytes
/// round(x / d) (half away from zero) in `bytes`, the last block zero-padded; a block with a NaN
/// or an infinity gets d = NaN and zero bytes (its products are NaN, as in fp32). With `sums`,
/// 128·Σ bytes per block too (what the VNNI products take back out). Weights and activations
/// are quantized alike.
static inline void emerald_q8_quantize(const float *x, long count, float *scales, signed char *bytes, int *sums) {
    long b = 0;
#if EMERALD_Q8_PATH == 2
    // Whole blocks 16 lanes at a time; round half away from zero as roundf: the truncation plus
    // one step away where the (exact) remainder is at least a half.
    for (; 32 * b + 32 <= count; b++) {
        const long lo = 32 * b;
        const __m512 v0 = _mm512_loadu_ps(x + lo), v1 = _mm512_loadu_ps(x + lo + 16);
        const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1), big = _mm512_set1_ps(__FLT_MAX__);
        const int finite = (_mm512_cmp_ps_mask(a0, big, _CMP_LE_OQ) & _mm512_cmp_ps_mask(a1, big, _CMP_LE_OQ)) == 0xFFFF;
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        const float inv = finite && amax > 0 ? 127.0f / amax : 0.0f;
        scales[b] = finite ? amax / 127.0f : __builtin_nanf("");
        if (inv == 0) {
            __builtin_memset(bytes + lo, 0, 32);
            if (sums) sums[b] = 0;
            continue;
        }
        __m512i q[2];
        const __m512 vs[2] = {v0, v1};
        for (int h = 0; h < 2; h++) {
            const __m512 t = _mm512_mul_ps(vs[h], _mm512_set1_ps(inv));
            const __m512 whole = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __mmask16 away = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(t, whole)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
            const __m512 one = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_set1_ps(1.0f),
                                                    _mm512_set1_ps(-1.0f));
            q[h] = _mm512_cvttps_epi32(_mm512_mask_add_ps(whole, away, whole, one));
            _mm_storeu_si128((__m128i *)(bytes + lo + 16 * h), _mm512_cvtepi32_epi8(q[h]));
        }
        if (sums) sums[b] = 128 * _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
    }
#endif
    for (; b * 32 < count; b++) {
        const long lo = 32 * b, n = count - lo < 32 ? count - lo : 32;
        float amax = 0;
        int finite = 1;
        for (long i = 0; i < n; i++) {
            const float v = __builtin_fabsf(x[lo + i]);
            finite &= v <= __FLT_MAX__;
            amax = v > amax ? v : amax;
        }
        const float inv = finite && amax > 0 ? 127.0f / amax : 0.0f;
        scales[b] = finite ? amax / 127.0f : __builtin_nanf("");
        int sum = 0;
        for (long i = 0; i < 32; i++) {
            const int q = i < n && inv != 0 ? (int)__builtin_roundf(x[lo + i] * inv) : 0;
            bytes[lo + i] = (signed char)q;
            sum += q;
        }
        if (sums) sums[b] = 128 * sum;
    }
}

// Loops over the M rows and the 8 column groups unrolled, so sums stay in registers.
#define EMERALD_UNROLL _Pragma("clang loop unroll(full)")

#if EMERALD_Q8_PATH > 0
// The panel block 64 ahead (36 KiB) into L2 while this one computes: with several rows the
// arithmetic and the hardware prefetcher's reads took turns (12 GB/s from memory per core at 8
// rows, 20 with this; one row as before). A prefetch never faults past the end.
#define EMERALD_Q8_PREFETCH(blk)                                                       \
    EMERALD_UNROLL                                                                     \
    for (int l = 0; l < 9; l++) _mm_prefetch((blk) + 576 * 64 + 64 * l, _MM_HINT_T1)
#endif

#if EMERALD_Q8_PATH == 2
// M activation rows (M ≤ 8, a constant after inlining) against one panel.
static inline __attribute__((always_inline)) void emerald_q8_panel_rows(const signed char *x, long ldx, const float *xd,
                                                                        const int *xs, long ldd, const int M, const char *panel,
                                                                        long blocks, const float *bias, long valid, float *out,
                                                                        long ldo) {
    __m512 f[8];
    EMERALD_UNROLL
    for (int j = 0; j < M; j++) f[j] = _mm512_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        const char *blk = panel + 576 * b;
        EMERALD_Q8_PREFETCH(blk);
        __m512i acc[8];
        EMERALD_UNROLL
        for (int j = 0; j < M; j++) acc[j] = _mm512_setzero_si512();
        EMERALD_UNROLL
        for (int g = 0; g < 8; g++) {
            const __m512i w = _mm512_loadu_si512((const void *)(blk + 64 + 64 * g));
            EMERALD_UNROLL
            for (int j = 0; j < M; j++) {
                int four;
                __builtin_memcpy(&four, x + j * ldx + 32 * b + 4 * g, 4);
                acc[j] = _mm512_dpbusd_epi32(acc[j], w, _mm512_set1_epi32(four));
            }
        }
        const __m512 d = _mm512_loadu_ps((const float *)blk);
        EMERALD_UNROLL
        for (int j = 0; j < M; j++) {
            const __m512i dot = _mm512_sub_epi32(acc[j], _mm512_set1_epi32(xs[j * ldd + b]));
            f[j] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xd[j * ldd + b])), _mm512_cvtepi32_ps(dot), f[j]);
        }
    }
    const __mmask16 keep = (__mmask16)((1u << valid) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(keep, bias) : _mm512_setzero_ps();
    EMERALD_UNROLL
    for (int j = 0; j < M; j++) _mm512_mask_storeu_ps(out + j * ldo, keep, _mm512_add_ps(f[j], bv));
}
#define EMERALD_Q8_GROUP 8

// One activation row against P panels at once (P ≤ 4, `stride` bytes apart; all but the last
// whole): P memory streams per thread, as many as the row-at-a-time kernel had. The same
// operations per panel as emerald_q8_panel_rows.
static inline __attribute__((always_inline)) void emerald_q8_one_row(const signed char *x, const float *xd, const int *xs,
                                                                     const int P, const char *panel, long stride, long blocks,
                                                                     const float *bias, long valid, float *out) {
    __m512 f[4];
    EMERALD_UNROLL
    for (int p = 0; p < P; p++) f[p] = _mm512_setzero_ps();
    for (long b = 0; b < blocks; b++) {
        __m512i acc[4];
        EMERALD_UNROLL
        for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_si512();
        EMERALD_UNROLL
        for (int g = 0; g < 8; g++) {
            int four;
            __builtin_memcpy(&four, x + 32 * b + 4 * g, 4);
            const __m512i xb = _mm512_set1_epi32(four);
            EMERALD_UNROLL
            for (int p = 0; p < P; p++)
                acc[p] = _mm512_dpbusd_epi32(acc[p], _mm512_loadu_si512((const void *)(panel + p * stride + 576 * b + 64 + 64 * g)), xb);
        }
        const __m512 dx = _mm512_set1_ps(xd[b]);
        const __m512i sx = _mm512_set1_epi32(xs[b]);
        EMERALD_UNROLL
        for (int p = 0; p < P; p++) {
            const __m512 d = _mm512_loadu_ps((const float *)(panel + p * stride + 576 * b));
            f[p] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[p], sx)), f[p]);
        }
    }
    EMERALD_UNROLL
    for (int p = 0; p < P; p++) {
        const __mmask16 keep = (__mmask16)((1u << (p == P - 1 ? valid : 16)) - 1);
        const __m512 bv = bias ? _mm512_maskz_loadu_ps(keep, bias + 16 * p) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(out + 16 * p, keep, _mm512_add_ps(f[p], bv));
    }
}
#define EMERALD_Q8_ONE_ROW 1
#elif EMERALD_Q8_PATH == 1
// AVX2 without VNNI: the bytes back to signed q (one xor per loaded register, shared by the M
// rows), then |x| times sign-adjusted q with vpmaddubsw (pair sums at most 2·127², never
// saturating) and vpmaddwd to 32 bits; rows 0–7 and 8–15 of the panel in two registers.
static inline __attribute__((always_inline)) void emerald_q8_panel_rows(const signed char *x, long ldx, const float *xd,
                                                                        const int *xs, long ldd, const int M, const char *panel,
                                                                        long blocks, const float *bias, long valid, float *out,
                                                                        long ldo) {
    (void)xs;
    __m256 f[2][2];
    EMERALD_UNROLL
    for (int j = 0; j < M; j++) f[j][0] = f[j][1] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    for (long b = 0; b < blocks; b++) {
        const char *blk = panel + 576 * b;
        EMERALD_Q8_PREFETCH(blk);
        __m256i acc[2][2];
        EMERALD_UNROLL
        for (int j = 0; j < M; j++) acc[j][0] = acc[j][1] = _mm256_setzero_si256();
        // Not unrolled: 16 registers hold no more than one group's weights and the sums.
        for (int g = 0; g < 8; g++) {
            const __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 64 + 64 * g)), flip);
            const __m256i w1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 96 + 64 * g)), flip);
            EMERALD_UNROLL
            for (int j = 0; j < M; j++) {
                int four;
                __builtin_memcpy(&four, x + j * ldx + 32 * b + 4 * g, 4);
                const __m256i xb = _mm256_set1_epi32(four), ab = _mm256_sign_epi8(xb, xb);
                acc[j][0] = _mm256_add_epi32(acc[j][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(w0, xb)), ones));
                acc[j][1] = _mm256_add_epi32(acc[j][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(w1, xb)), ones));
            }
        }
        const __m256 d0 = _mm256_loadu_ps((const float *)blk), d1 = _mm256_loadu_ps((const float *)blk + 8);
        EMERALD_UNROLL
        for (int j = 0; j < M; j++) {
            const __m256 dx = _mm256_set1_ps(xd[j * ldd + b]);
            f[j][0] = _mm256_fmadd_ps(_mm256_mul_ps(d0, dx), _mm256_cvtepi32_ps(acc[j][0]), f[j][0]);
            f[j][1] = _mm256_fmadd_ps(_mm256_mul_ps(d1, dx), _mm256_cvtepi32_ps(acc[j][1]), f[j][1]);
        }
    }
    EMERALD_UNROLL
    for (int j = 0; j < M; j++) {
        float s[16];
        _mm256_storeu_ps(s, f[j][0]);
        _mm256_storeu_ps(s + 8, f[j][1]);
        for (long r = 0; r < valid; r++) out[j * ldo + r] = s[r] + (bias ? bias[r] : 0.0f);
    }
}
#define EMERALD_Q8_GROUP 2
#else
static inline void emerald_q8_panel_rows(const signed char *x, long ldx, const float *xd, const int *xs, long ldd, const int M,
                                         const char *panel, long blocks, const float *bias, long valid, float *out, long ldo) {
    (void)xs;
    for (int j = 0; j < M; j++) {
        float f[16] = {0};
        for (long b = 0; b < blocks; b++) {
            const char *blk = panel + 576 * b;
            for (int r = 0; r < 16; r++) {
                float d;
                __builtin_memcpy(&d, blk + 4 * r, 4);
                int t = 0;
                for (int c = 0; c < 32; c++) t += (int)x[j * ldx + 32 * b + c] * ((int)(unsigned char)blk[64 + 64 * (c / 4) + 4 * r + c % 4] - 128);
                f[r] = __builtin_fmaf(d * xd[j * ldd + b], (float)t, f[r]);
            }
        }
        for (long r = 0; r < valid; r++) out[j * ldo + r] = f[r] + (bias ? bias[r] : 0.0f);
    }
}
#define EMERALD_Q8_GROUP 1
#endif

/// out[i·ldo + r] = Σ_b xd[i·ldd + b]·d(r, b)·Σ_t x[i·ldx + 32b + t]·q(r, 32b + t) (+ bias[r]) for
/// i < m and r < valid (≤ 16), over one panel of `blocks` panel blocks (layout above). `x` holds
/// each row's 32·blocks bytes, `xd` its block scales and `xs` its block sums, as
/// `emerald_q8_quantize` wrote them.
static inline void emerald_q8_panel(const signed char *x, long ldx, const float *xd, const int *xs, long ldd, long m,
                                    const void *panel, long blocks, const float *bias, long valid, float *out, long ldo) {
    const char *p = (const char *)panel;
    long i = 0;
#define EMERALD_Q8_ROWS(M) emerald_q8_panel_rows(x + i * ldx, ldx, xd + i * ldd, xs + i * ldd, ldd, M, p, blocks, bias, valid, out + i * ldo, ldo)
    for (; i + EMERALD_Q8_GROUP <= m; i += EMERALD_Q8_GROUP) EMERALD_Q8_ROWS(EMERALD_Q8_GROUP);
#if EMERALD_Q8_GROUP > 4
    if (i + 4 <= m) { EMERALD_Q8_ROWS(4); i += 4; }
#endif
#if EMERALD_Q8_GROUP > 2
    if (i + 2 <= m) { EMERALD_Q8_ROWS(2); i += 2; }
#endif
    for (; i < m; i++) EMERALD_Q8_ROWS(1);
#undef EMERALD_Q8_ROWS
}

/// `emerald_q8_panel` over `count` consecutive panels (`blocks` panel blocks each) for output
/// rows 16·p ..< 16·p + 16 of panel p, `rows` of them in all (the last panel may be partial):
/// one row of x takes four panels at a time where the path has a kernel for it.
static inline void emerald_q8_panels(const signed char *x, long ldx, const float *xd, const int *xs, long ldd, long m,
                                     const void *panels, long count, long blocks, const float *bias, long rows, float *out,
                                     long ldo) {
    const char *p = (const char *)panels;
    const long stride = 576 * blocks;
    long q = 0;
#ifdef EMERALD_Q8_ONE_ROW
    if (m == 1) {
        for (; q + 4 <= count; q += 4) {
            const long valid = rows - 16 * (q + 3) < 16 ? rows - 16 * (q + 3) : 16;
            emerald_q8_one_row(x, xd, xs, 4, p + q * stride, stride, blocks, bias ? bias + 16 * q : 0, valid, out + 16 * q);
        }
    }
#endif
    for (; q < count; q++) {
        const long valid = rows - 16 * q < 16 ? rows - 16 * q : 16;
        emerald_q8_panel(x, ldx, xd, xs, ldd, m, p + q * stride, blocks, bias ? bias + 16 * q : 0, valid, out + 16 * q, ldo);
    }
}

#endif
