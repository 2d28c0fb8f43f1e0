// UTF-8 helpers: validation, code point decoding and encoding; whitespace collapsing.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hone {

// Length in bytes of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid.
size_t utf8_seq_len(const std::string& s, size_t i);
// True when s is valid UTF-8; on failure *bad_offset gets the byte offset of the first error.
bool utf8_valid(const std::string& s, size_t* bad_offset = nullptr);
// Decodes one code point at s[i] (must be valid), advancing i.
uint32_t utf8_next(const std::string& s, size_t& i);
void utf8_append(std::string& out, uint32_t cp);
// Runs of ASCII whitespace (space, tab, newline, CR, FF, VT) as one space, the ends trimmed: what a
// reader calls the same text (exact-match scoring, identical candidate responses).
std::string collapse_whitespace(const std::string& s);

}  // namespace hone
