// A few plain-C wrappers around liblzma's xz decoder, so Swift never has to
// touch LZMA_STREAM_INIT or the flag macros.
#ifndef EMERALD_CLZMA_SHIM_H
#define EMERALD_CLZMA_SHIM_H
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>

/// A new .xz decoder (concatenated streams allowed, no memory limit), or NULL.
static inline void *emerald_xz_new(void) {
    lzma_stream init = LZMA_STREAM_INIT;
    lzma_stream *s = (lzma_stream *)malloc(sizeof(lzma_stream));
    if (!s) return NULL;
    *s = init;
    if (lzma_stream_decoder(s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) { free(s); return NULL; }
    return s;
}

/// Decodes: returns the lzma_ret code (0 OK, 1 STREAM_END, otherwise an error);
/// `*in_used` and `*out_made` report progress. `finish` = no more input will come.
static inline int emerald_xz_decode(void *h, const uint8_t *in, size_t in_len, size_t *in_used,
                                    uint8_t *out, size_t out_len, size_t *out_made, int finish) {
    lzma_stream *s = (lzma_stream *)h;
    s->next_in = in; s->avail_in = in_len;
    s->next_out = out; s->avail_out = out_len;
    lzma_ret r = lzma_code(s, finish ? LZMA_FINISH : LZMA_RUN);
    *in_used = in_len - s->avail_in;
    *out_made = out_len - s->avail_out;
    return (int)r;
}

/// Frees a decoder made by emerald_xz_new.
static inline void emerald_xz_free(void *h) {
    if (!h) return;
    lzma_end((lzma_stream *)h);
    free(h);
}
#endif
