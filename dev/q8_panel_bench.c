// The int8 panel kernel alone (CEmeraldQ8.h), one thread: weights read per second with M rows
// of x at once, from memory (a GPT-2-sized 113M-weight matrix) and from cache (1,024 rows).
// A development probe, not part of the build:
//   clang -O2 -march=native -I Sources/CEmeraldSIMD/include dev/q8_panel_bench.c -o .build/q8_panel_bench && .build/q8_panel_bench
// (-mavx2 -mfma for the AVX2 path). Best of 5 runs per figure.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "CEmeraldQ8.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    enum { k = 768, blocks = k / 32, total = 147456 };  // 147,456 rows × 768: 113M weights
    static float xf[8 * k], xd[8 * blocks], out[8 * total];
    static signed char x[8 * k];
    static int xs[8 * blocks];
    for (int i = 0; i < 8 * k; i++) xf[i] = (float)((i * 7919) % 255 - 127) / 64.0f;
    for (int i = 0; i < 8; i++) emerald_q8_quantize(xf + i * k, k, xd + i * blocks, x + i * k, xs + i * blocks);
    const long bytes = (long)total / 16 * blocks * 576;
    char *w = aligned_alloc(64, bytes);
    for (long i = 0; i < bytes; i++) w[i] = (char)(i * 131 % 251);
    // Real scales: random bytes read as floats could be denormals, which slow the products.
    for (long b = 0; b < bytes / 576; b++)
        for (int r = 0; r < 16; r++) { float d = 0.01f; memcpy(w + 576 * b + 4 * r, &d, 4); }
    printf("q8 path %d\n", emerald_q8_path());
    for (int cached = 0; cached < 2; cached++) {
        const long rows = cached ? 1024 : total, reps = total / rows;
        for (int m = 1; m <= 8; m *= 2) {
            double best = 0;
            for (int run = 0; run < 5; run++) {
                const double t0 = now();
                for (long r = 0; r < reps; r++)
                    emerald_q8_panels(x, k, xd, xs, blocks, m, w, rows / 16, blocks, 0, rows, out, total);
                const double rate = reps * (rows / 16) * blocks * 576.0 / (now() - t0) / 1e9;
                if (rate > best) best = rate;
            }
            printf("%s, %d row%s: %.1f GB/s of weights (%.0f G products/s)\n", cached ? "cache " : "memory", m,
                   m > 1 ? "s" : " ", best, best / 1.125 * m);
        }
    }
    double sink = 0;
    for (int i = 0; i < 8 * 1024; i++) sink += out[i];
    return sink == 12345.678 ? 1 : 0;
}
