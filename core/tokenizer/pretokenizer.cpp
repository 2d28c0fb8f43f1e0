// Pre-tokenizers: Split (string or regex; Isolated/Removed/MergedWithPrevious/MergedWithNext/
// Contiguous; invert), ByteLevel (optional GPT-2 regex and prefix space), Metaspace, Digits,
// Whitespace, WhitespaceSplit, Punctuation, Sequence.
// SPDX-License-Identifier: GPL-3.0-or-later
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>
#include <unicode/uchar.h>

#include "common/error.h"
#include "common/utf8.h"

namespace hone {

Regex::Regex(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                             &off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    throw Error("pre-tokenizer regex does not compile at offset " + std::to_string(off) + ": " +
                reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& s) const {
  std::vector<std::pair<size_t, size_t>> out;
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  size_t pos = 0;
  while (pos <= s.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step one code point
      if (b >= s.size()) break;
      size_t l = utf8_seq_len(s, b);
      pos = b + (l ? l : 1);
      continue;
    }
    out.emplace_back(b, e);
    pos = e;
  }
  pcre2_match_data_free(md);
  return out;
}

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  throw Error("split behavior \"" + s + "\" is not supported");
}

// Splits one piece given match ranges, following the tokenizers library's semantics.
void split_by(const AlignedString& in, std::vector<std::pair<size_t, size_t>> matches, bool invert, Behavior bh,
              std::vector<AlignedString>& out) {
  // Mark each range as (begin, end, is_match) covering the whole string.
  struct R {
    size_t b, e;
    bool m;
  };
  std::vector<R> rs;
  size_t cur = 0;
  for (auto& m : matches) {
    if (m.first > cur) rs.push_back({cur, m.first, false});
    rs.push_back({m.first, m.second, true});
    cur = m.second;
  }
  if (cur < in.s.size()) rs.push_back({cur, in.s.size(), false});
  if (invert)
    for (auto& r : rs) r.m = !r.m;
  std::vector<std::pair<size_t, size_t>> pieces;
  switch (bh) {
    case Behavior::Isolated:
      for (auto& r : rs) pieces.emplace_back(r.b, r.e);
      break;
    case Behavior::Removed:
      for (auto& r : rs)
        if (!r.m) pieces.emplace_back(r.b, r.e);
      break;
    case Behavior::MergedWithPrevious: {
      bool prev_unmatched = false;
      for (auto& r : rs) {
        if (r.m && prev_unmatched && !pieces.empty()) pieces.back().second = r.e;
        else pieces.emplace_back(r.b, r.e);
        prev_unmatched = !r.m;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (auto& r : rs) {
        if (!r.m && prev_match && !pieces.empty()) pieces.back().second = r.e;
        else pieces.emplace_back(r.b, r.e);
        prev_match = r.m;
      }
      break;
    }
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (auto& r : rs) {
        if (r.m && prev_match && !pieces.empty()) pieces.back().second = r.e;
        else pieces.emplace_back(r.b, r.e);
        prev_match = r.m;
      }
      break;
    }
  }
  for (auto& p : pieces)
    if (p.second > p.first) out.push_back(in.slice(p.first, p.second));
}

class SplitPT : public PreTokenizer {
 public:
  SplitPT(const nlohmann::json& pattern, Behavior bh, bool invert) : bh_(bh), invert_(invert) {
    if (pattern.contains("Regex")) regex_ = std::make_unique<Regex>(pattern["Regex"].get<std::string>());
    else if (pattern.contains("String")) literal_ = pattern["String"].get<std::string>();
    else throw Error("Split pre-tokenizer pattern must be String or Regex");
  }
  SplitPT(std::unique_ptr<Regex> re, Behavior bh, bool invert = false) : regex_(std::move(re)), bh_(bh), invert_(invert) {}
  std::vector<AlignedString> split(std::vector<AlignedString> pieces, bool) const override {
    std::vector<AlignedString> out;
    for (auto& p : pieces) split_by(p, matches(p.s), invert_, bh_, out);
    return out;
  }
  std::vector<std::pair<size_t, size_t>> matches(const std::string& s) const {
    if (regex_) return regex_->find_all(s);
    std::vector<std::pair<size_t, size_t>> m;
    if (literal_.empty()) return m;
    for (size_t f = s.find(literal_); f != std::string::npos; f = s.find(literal_, f + literal_.size()))
      m.emplace_back(f, f + literal_.size());
    return m;
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string literal_;
  Behavior bh_;
  bool invert_ = false;
};

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPT : public PreTokenizer {
 public:
  ByteLevelPT(bool prefix, bool use_regex) : prefix_(prefix) {
    if (use_regex) re_ = std::make_unique<Regex>(kGpt2Pattern);
  }
  std::vector<AlignedString> split(std::vector<AlignedString> pieces, bool) const override {
    std::vector<AlignedString> out;
    for (auto& p : pieces) {
      AlignedString q = p;
      if (prefix_ && (q.s.empty() || q.s[0] != ' ')) {
        AlignedString t;
        uint32_t o = q.s.empty() ? 0 : q.ob[0];
        t.append(" ", o, o);
        t.append_from(q, 0, q.s.size());
        q = t;
      }
      if (re_) split_by(q, re_->find_all(q.s), false, Behavior::Isolated, out);
      else if (!q.s.empty()) out.push_back(q);
    }
    return out;
  }

 private:
  bool prefix_;
  std::unique_ptr<Regex> re_;
};

// Follows transformers.js (the reference Hone is checked against): the prefix is added only when
// add_prefix_space is set, and the text is not split at the replacement character.
class MetaspacePT : public PreTokenizer {
 public:
  MetaspacePT(std::string rep, std::string scheme, bool prefix)
      : rep_(std::move(rep)), scheme_(std::move(scheme)), prefix_(prefix) {}
  std::vector<AlignedString> split(std::vector<AlignedString> pieces, bool first) const override {
    std::vector<AlignedString> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const auto& p = pieces[i];
      AlignedString q;
      bool prepend = prefix_ && (scheme_ == "always" || (scheme_ == "first" && first && i == 0));
      // "already starts with the replacement" is judged after spaces become the replacement
      const bool starts = !p.s.empty() && (p.s[0] == ' ' || p.s.compare(0, rep_.size(), rep_) == 0);
      if (prepend && !starts && !p.s.empty()) q.append(rep_, p.ob[0], p.ob[0]);
      for (size_t k = 0; k < p.s.size(); ++k) {
        if (p.s[k] == ' ') q.append(rep_, p.ob[k], p.oe[k]);
        else q.append_from(p, k, k + 1);
      }
      if (!q.s.empty()) out.push_back(q);
    }
    return out;
  }

 private:
  std::string rep_, scheme_;
  bool prefix_;
};

class SequencePT : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> parts;
  std::vector<AlignedString> split(std::vector<AlignedString> pieces, bool first) const override {
    for (const auto& p : parts) pieces = p->split(std::move(pieces), first);
    return pieces;
  }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pretokenizer(const nlohmann::json& j, PreTokenizeState* state) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Split")
    return std::make_unique<SplitPT>(j.at("pattern"), parse_behavior(j.value("behavior", "Isolated")), j.value("invert", false));
  if (type == "ByteLevel") {
    state->byte_level = true;
    return std::make_unique<ByteLevelPT>(j.value("add_prefix_space", false), j.value("use_regex", true));
  }
  if (type == "Metaspace") {
    std::string scheme = "always";
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) scheme = j["prepend_scheme"];
    bool prefix = j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() && j["add_prefix_space"].get<bool>();
    return std::make_unique<MetaspacePT>(j.value("replacement", "\xE2\x96\x81"), scheme, prefix);
  }
  if (type == "Digits")
    return std::make_unique<SplitPT>(std::make_unique<Regex>(j.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+"),
                                     Behavior::Isolated);
  if (type == "Whitespace") return std::make_unique<SplitPT>(std::make_unique<Regex>("\\w+|[^\\w\\s]+"), Behavior::Removed, true);
  if (type == "WhitespaceSplit") return std::make_unique<SplitPT>(std::make_unique<Regex>("\\s+"), Behavior::Removed);
  if (type == "Punctuation")
    return std::make_unique<SplitPT>(std::make_unique<Regex>("\\p{P}"), parse_behavior(j.value("behavior", "Isolated")));
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePT>();
    for (const auto& p : j.at("pretokenizers"))  // at(): a missing key throws, [] on a const object is undefined
      if (auto q = make_pretokenizer(p, state)) seq->parts.push_back(std::move(q));
    return seq;
  }
  throw Error("pre-tokenizer type \"" + type + "\" is not supported");
}

}  // namespace hone
