// Plain-C wrappers around zlib's gzip inflater (inflateInit2 is a macro).
#ifndef EMERALD_CZLIB_SHIM_H
#define EMERALD_CZLIB_SHIM_H
#include <zlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/// A new gzip decoder (window 15, gzip header required), or NULL.
static inline void *emerald_gz_new(void) {
    z_stream *s = (z_stream *)malloc(sizeof(z_stream));
    if (!s) return NULL;
    memset(s, 0, sizeof(z_stream));
    if (inflateInit2(s, 15 + 16) != Z_OK) { free(s); return NULL; }
    return s;
}

/// Inflates: returns 0 (OK), 1 (end of a gzip member), or a negative zlib error
/// (Z_BUF_ERROR = -5 means no progress was possible).
static inline int emerald_gz_decode(void *h, const uint8_t *in, size_t in_len, size_t *in_used,
                                    uint8_t *out, size_t out_len, size_t *out_made) {
    z_stream *s = (z_stream *)h;
    s->next_in = (Bytef *)in; s->avail_in = (uInt)in_len;
    s->next_out = out; s->avail_out = (uInt)out_len;
    int r = inflate(s, Z_NO_FLUSH);
    *in_used = in_len - s->avail_in;
    *out_made = out_len - s->avail_out;
    if (r == Z_STREAM_END) return 1;
    if (r == Z_OK) return 0;
    return r < 0 ? r : -100;
}

/// Prepares for the next concatenated gzip member.
static inline int emerald_gz_reset(void *h) { return inflateReset((z_stream *)h); }

/// Frees a decoder made by emerald_gz_new.
static inline void emerald_gz_free(void *h) {
    if (!h) return;
    inflateEnd((z_stream *)h);
    free(h);
}
#endif
