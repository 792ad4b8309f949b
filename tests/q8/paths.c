// Prints, as bit patterns, what emerald_q8_quantize and emerald_q8_panel compute for fixed
// pseudo-random activations and panels: ties, a non-finite block, row counts 1–19 (every group
// and tail), 1–5 blocks, partial panels, with and without bias. scripts/q8-paths builds this once per compiled path (AVX-512 VNNI, AVX2,
// portable C) and demands the same output from each: every machine computes the same logits.
#include <stdio.h>
#include <string.h>
#include "CEmeraldQ8.h"

static unsigned long long state = 0x9E3779B97F4A7C15ull;
static unsigned rnd(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (unsigned)(state >> 32);
}
static float rndf(void) { return (float)(rnd() % 2000001) / 1e6f - 1.0f; }

int main(void) {
    enum { maxBlocks = 5, maxRows = 19 };
    static char panel[576 * maxBlocks * 6];
    static signed char x[maxRows * 32 * maxBlocks];
    static float xf[maxRows * 32 * maxBlocks], xd[maxRows * maxBlocks], bias[80], out[maxRows * 16];
    static int xs[maxRows * maxBlocks];
    fprintf(stderr, "q8 path %d\n", emerald_q8_path());
    // Quantization: 70 values (a partial last block), ties of round-half-away (max|x| = 127
    // makes x/d = x), a NaN block.
    for (int i = 0; i < 70; i++) xf[i] = i < 32 ? (float)(i % 9) - 4.5f : rndf() * 3.0f;
    xf[0] = 127.0f; xf[40] = __builtin_nanf("");
    emerald_q8_quantize(xf, 70, xd, x, xs);
    printf("quantize:");
    for (int b = 0; b < 3; b++) { unsigned u; memcpy(&u, &xd[b], 4); printf(" %08x %d", u, xs[b]); }
    for (int i = 0; i < 96; i++) printf(" %d", x[i]);
    printf("\n");
    // 40 blocks of magnitudes from 1e-38 to 1e30, one with an infinity, one of zeros.
    for (int i = 0; i < 40 * 32; i++) {
        const int b = i / 32;
        float scale = 1.0f;
        for (int e = 0; e < b % 14; e++) scale *= b % 2 ? 1e-3f : 1e3f;
        xf[i] = b == 7 ? 0.0f : rndf() * scale;
    }
    xf[32 * 9 + 5] = -__builtin_inff();
    emerald_q8_quantize(xf, 40 * 32, xd, x, xs);
    printf("quantize wide:");
    for (int b = 0; b < 40; b++) { unsigned u; memcpy(&u, &xd[b], 4); printf(" %08x %d", u, xs[b]); }
    for (int i = 0; i < 40 * 32; i++) printf(" %d", x[i]);
    printf("\n");
    for (int blocks = 1; blocks <= maxBlocks; blocks++) {
        for (int b = 0; b < blocks; b++) {
            for (int r = 0; r < 16; r++) {
                float d = rndf() * 0.01f;
                memcpy(panel + 576 * b + 4 * r, &d, 4);
            }
            // q + 128 for q in [-127, 127], as quantization makes them, the extremes included.
            for (int i = 0; i < 512; i++) panel[576 * b + 64 + i] = (char)(128 + (i % 97 == 0 ? (i % 2 ? 127 : -127) : (int)(rnd() % 255) - 127));
        }
        for (int i = 0; i < maxRows * 32 * blocks; i++) xf[i] = i % 89 == 0 ? -2.0f : rndf();
        for (int i = 0; i < maxRows; i++) emerald_q8_quantize(xf + 32 * blocks * i, 32 * blocks, xd + blocks * i, x + 32 * blocks * i, xs + blocks * i);
        for (int r = 0; r < 80; r++) bias[r] = rndf();
        for (int m = 1; m <= maxRows; m++) {
            for (int valid = 16; valid >= 5; valid -= 11) {
                for (int withBias = 0; withBias < 2; withBias++) {
                    for (int i = 0; i < maxRows * 16; i++) out[i] = -1.0f;
                    emerald_q8_panel(x, 32 * blocks, xd, xs, blocks, m, panel, blocks, withBias ? bias : 0, valid, out, 16);
                    printf("blocks %d m %d valid %d bias %d:", blocks, m, valid, withBias);
                    for (int i = 0; i < maxRows * 16; i++) {
                        unsigned u;
                        memcpy(&u, &out[i], 4);
                        printf(" %08x", u);
                    }
                    printf("\n");
                }
            }
        }
        // Several panels (one row takes four at a time on some paths), the last one partial.
        memcpy(panel + 576 * blocks * 5, panel, 576 * blocks);
        for (int q = 1; q < 5; q++)
            for (int i = 0; i < 576 * blocks; i++) panel[576 * blocks * q + i] = (char)(i % 576 < 64 ? panel[i] : (char)(rnd() % 255 + 1));
        static float wide[3 * 90];
        for (int m = 1; m <= 3; m++) {
            for (int i = 0; i < 3 * 90; i++) wide[i] = -1.0f;
            emerald_q8_panels(x, 32 * blocks, xd, xs, blocks, m, panel, 5, blocks, m == 2 ? 0 : bias, 16 * 4 + 7, wide, 90);
            printf("panels blocks %d m %d:", blocks, m);
            for (int i = 0; i < 3 * 90; i++) {
                unsigned u;
                memcpy(&u, &wide[i], 4);
                printf(" %08x", u);
            }
            printf("\n");
        }
    }
    return 0;
}
