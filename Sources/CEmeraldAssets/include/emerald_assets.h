#ifndef EMERALD_ASSETS_H
#define EMERALD_ASSETS_H
#include <stddef.h>

/// Bytes of a file under assets/, compiled into the binary.
typedef struct { const unsigned char *bytes; size_t count; } emerald_asset;

/// assets/wizard_of_oz.txt: the course's book.
emerald_asset emerald_asset_book(void);
/// assets/gpt2/encoder.json: GPT-2's vocabulary.
emerald_asset emerald_asset_gpt2_encoder(void);
/// assets/gpt2/vocab.bpe: GPT-2's merges.
emerald_asset emerald_asset_gpt2_merges(void);

#endif
