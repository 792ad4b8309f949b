// The data Emerald's defaults need, compiled in with C23 #embed so the binary finds it
// wherever it runs (no resource bundle beside it, no network). See assets/README.md.
#include "emerald_assets.h"

static const unsigned char book[] = {
#embed "../../assets/wizard_of_oz.txt"
};
static const unsigned char gpt2_encoder[] = {
#embed "../../assets/gpt2/encoder.json"
};
static const unsigned char gpt2_merges[] = {
#embed "../../assets/gpt2/vocab.bpe"
};

emerald_asset emerald_asset_book(void) { return (emerald_asset){book, sizeof book}; }
emerald_asset emerald_asset_gpt2_encoder(void) { return (emerald_asset){gpt2_encoder, sizeof gpt2_encoder}; }
emerald_asset emerald_asset_gpt2_merges(void) { return (emerald_asset){gpt2_merges, sizeof gpt2_merges}; }
