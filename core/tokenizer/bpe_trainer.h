// A small byte-level BPE trainer and the built-in tokenizer it makes, so that demos and tests
// have a real tokenizer.json without downloading one.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>

namespace hone {

// Learns `num_merges` merges on corpus (GPT-2-style pre-tokenization, byte-level symbols) and
// returns a complete tokenizer.json text: 256 byte tokens, the merges, and ChatML special tokens.
std::string train_bytelevel_tokenizer_json(const std::string& corpus, int num_merges);

// Writes tokenizer.json and tokenizer_config.json (ChatML template) of Hone's built-in tokenizer.
// merges: how many BPE merges to learn on the built-in English text (0: one token per byte).
void write_builtin_tokenizer(const std::string& dir, int merges = 400);

}  // namespace hone
