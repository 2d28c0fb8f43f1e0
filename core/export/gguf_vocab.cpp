// Tokenizer metadata for GGUF (see gguf_vocab.h). Token types are llama.cpp's: NORMAL 1, UNKNOWN 2,
// CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/gguf_vocab.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone {

using nlohmann::json;

namespace {

enum TokType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Pre-tokenizer regexes as published checkpoints write them, with llama.cpp's name for each.
struct PreName {
  const char* regex;
  const char* name;
};
const PreName kPreNames[] = {
    // Llama 3.x
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    // Qwen2, Qwen2.5, Qwen3
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
};

bool is_byte_piece(const std::string& s) {
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
         std::isxdigit(static_cast<unsigned char>(s[4]));
}

// --- protobuf (SentencePiece's ModelProto) -------------------------------------------------------

class Pb {
 public:
  Pb(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  bool done() const { return pos_ >= n_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= n_) fail("truncated varint");
      const uint8_t b = p_[pos_++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
    return 0;
  }
  Pb sub() {
    const uint64_t len = varint();
    if (len > n_ - pos_) fail("a field of " + std::to_string(len) + " bytes runs past the end");
    Pb s(p_ + pos_, static_cast<size_t>(len), path_);
    pos_ += static_cast<size_t>(len);
    return s;
  }
  std::string bytes() {
    Pb s = sub();
    return std::string(reinterpret_cast<const char*>(s.p_), s.n_);
  }
  float fixed32f() {
    if (n_ - pos_ < 4) fail("truncated float");
    float f;
    std::memcpy(&f, p_ + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: if (n_ - pos_ < 8) fail("truncated field"); pos_ += 8; break;
      case 2: sub(); break;
      case 5: if (n_ - pos_ < 4) fail("truncated field"); pos_ += 4; break;
      default: fail("unknown wire type " + std::to_string(wire));
    }
  }
  [[noreturn]] void fail(const std::string& m) const { throw file_error(path_, "is not a valid SentencePiece model: " + m); }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& path_;
};

// --- vocabularies --------------------------------------------------------------------------------

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;  // SentencePiece only
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // BPE only
  std::string model, pre;
  bool add_space_prefix = false;
};

void set_token(Vocab& v, size_t id, const std::string& s, int type, float score = 0) {
  if (id >= v.tokens.size()) {
    v.tokens.resize(id + 1);
    v.types.resize(id + 1, kUnused);
    v.scores.resize(id + 1, -1e9f);
  }
  v.tokens[id] = s;
  v.types[id] = type;
  v.scores[id] = score;
}

Vocab vocab_from_spm(const std::string& path) {
  const SpmModelProto m = read_spm_model(path);
  Vocab v;
  v.model = "llama";
  v.add_space_prefix = m.add_dummy_prefix;
  for (size_t i = 0; i < m.pieces.size(); ++i) set_token(v, i, m.pieces[i].piece, m.pieces[i].type, m.pieces[i].score);
  return v;
}

std::string merge_string(const json& m, const std::string& path) {
  if (m.is_string()) return m.get<std::string>();
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return m[0].get<std::string>() + " " + m[1].get<std::string>();
  throw file_error(path, "a merge is neither \"a b\" nor [\"a\", \"b\"]");
}

// llama_cpp_pre_name on a parsed file; nlohmann's exceptions on fields of the wrong type.
std::string pre_name_of(const json& j) {
  if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null()) return "";
  const json& p = j["pre_tokenizer"];
  std::vector<json> parts;
  if (p.value("type", "") == "Sequence") {
    for (const auto& x : p.value("pretokenizers", json::array())) parts.push_back(x);
  } else {
    parts.push_back(p);
  }
  std::vector<std::string> sig;  // a compact signature of the sequence
  std::string regex;
  for (const auto& x : parts) {
    const std::string t = x.value("type", "");
    if (t == "Split" && x.contains("pattern") && x["pattern"].contains("Regex")) {
      regex = x["pattern"]["Regex"].get<std::string>();
      sig.push_back("split");
    } else if (t == "ByteLevel") {
      sig.push_back(x.value("use_regex", true) ? "bytelevel+regex" : "bytelevel");
    } else if (t == "Digits") {
      sig.push_back(x.value("individual_digits", false) ? "digits1" : "digits");
    } else {
      sig.push_back(t);
    }
  }
  if (sig == std::vector<std::string>{"split", "bytelevel"})
    for (const auto& pn : kPreNames)
      if (regex == pn.regex) return pn.name;
  if (sig == std::vector<std::string>{"digits1", "bytelevel+regex"}) return "smollm";  // SmolLM, SmolLM2
  if (sig == std::vector<std::string>{"bytelevel+regex"}) return "gpt-2";
  return "";
}

Vocab vocab_from_json_unchecked(const std::string& path, const std::string& text);

// The file is anyone's: a field of the wrong type or a missing one (nlohmann's type_error and
// out_of_range) is an error that names the file like the others.
Vocab vocab_from_json(const std::string& path, const std::string& text) {
  try {
    return vocab_from_json_unchecked(path, text);
  } catch (const json::exception& e) {
    throw file_error(path, std::string("is not a tokenizer.json Hone can read: ") + e.what());
  }
}

Vocab vocab_from_json_unchecked(const std::string& path, const std::string& text) {
  json j;
  check_json_nesting(text, path);
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw file_error(path, std::string("is not valid JSON: ") + e.what());
  }
  const json& model = j.at("model");
  if (model.value("type", "") != "BPE")
    throw file_error(path, "GGUF export handles BPE tokenizers (this one is " + model.value("type", std::string("?")) + ")");
  Vocab v;
  const bool spm_style = model.value("byte_fallback", false);
  v.model = spm_style ? "llama" : "gpt2";
  const json& vocab = model.at("vocab");
  const size_t n_added = j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"].size() : 0;
  // The token table is as long as the highest id, so ids are checked before it grows: integers
  // (a cast of 1e300 is undefined), and not far beyond the tokens the file holds (real files are dense).
  const int64_t id_limit = std::min<int64_t>(1 << 24, 4 * static_cast<int64_t>(vocab.size() + n_added) + 1024);
  auto id_of = [&](const json& x, const std::string& what) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= id_limit)
      throw file_error(path, what + " has id " + x.dump() + ", not one of the " + std::to_string(vocab.size() + n_added) +
                                 " token ids the file can hold");
    return x.get<int64_t>();
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = id_of(it.value(), "token '" + it.key() + "'");
    const std::string& s = it.key();
    int type = kNormal;
    if (spm_style && is_byte_piece(s)) type = kByte;
    set_token(v, static_cast<size_t>(id), s, type, 0);
  }
  const std::string unk = model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"].get<std::string>() : "";
  const json& merges = model.contains("merges") ? model["merges"] : json::array();
  if (spm_style) {
    // SentencePiece merges the pair whose result scores highest; HF's file ranks merges in that same
    // order, so the score of a piece is minus the rank of the first merge that makes it. Pieces no
    // merge makes (characters, bytes) are never the result of a pair and keep a low score.
    std::map<std::string, int32_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of[v.tokens[i]] = static_cast<int32_t>(i);
    for (auto& s : v.scores) s = -1e9f;
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string m = merge_string(merges[r], path);
      const size_t sp = m.find(' ');
      if (sp == std::string::npos) continue;
      m.erase(sp, 1);
      auto it = id_of.find(m);
      if (it != id_of.end() && v.scores[it->second] < -1e8f) v.scores[it->second] = -static_cast<float>(r);
    }
    v.add_space_prefix = false;
    const std::string norm = j.contains("normalizer") ? j["normalizer"].dump() : "";
    const std::string pretok = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "";
    // A prefix "▁" comes from a Prepend normalizer (Llama 2, Mistral) or a Metaspace pre-tokenizer
    // that prepends; Gemma replaces spaces only.
    if (norm.find("\"Prepend\"") != std::string::npos) v.add_space_prefix = true;
    if (pretok.find("\"Metaspace\"") != std::string::npos && pretok.find("\"never\"") == std::string::npos &&
        pretok.find("\"add_prefix_space\":false") == std::string::npos)
      v.add_space_prefix = true;
  } else {
    v.merges.reserve(merges.size());
    for (const auto& m : merges) v.merges.push_back(merge_string(m, path));
    v.pre = llama_cpp_pre_name(text);
  }
  if (!unk.empty()) {
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == unk) v.types[i] = kUnknown;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      const std::string s = a.at("content").get<std::string>();
      const int64_t id = id_of(a.at("id"), "added token '" + s + "'");
      int type = a.value("special", false) ? kControl : kUserDefined;
      if (s == unk) type = kUnknown;
      set_token(v, static_cast<size_t>(id), s, type, 0);
    }
  }
  return v;
}

}  // namespace

SpmModelProto read_spm_model(const std::string& path) {
  const std::string data = read_file(path);
  Pb top(reinterpret_cast<const uint8_t*>(data.data()), data.size(), path);
  SpmModelProto m;
  while (!top.done()) {
    const uint64_t key = top.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = key & 7;
    if (field == 1 && wire == 2) {  // SentencePiece
      Pb p = top.sub();
      SpmPiece sp;
      while (!p.done()) {
        const uint64_t k = p.varint();
        const uint32_t f = static_cast<uint32_t>(k >> 3), w = k & 7;
        if (f == 1 && w == 2) sp.piece = p.bytes();
        else if (f == 2 && w == 5) sp.score = p.fixed32f();
        else if (f == 3 && w == 0) sp.type = static_cast<int>(p.varint());
        else p.skip(w);
      }
      if (sp.type < 1 || sp.type > 6) top.fail("piece " + std::to_string(m.pieces.size()) + " has type " + std::to_string(sp.type));
      m.pieces.push_back(std::move(sp));
      if (m.pieces.size() > (1u << 24)) top.fail("more than 16M pieces");
    } else if ((field == 2 || field == 3) && wire == 2) {  // TrainerSpec / NormalizerSpec
      Pb s = top.sub();
      while (!s.done()) {
        const uint64_t k = s.varint();
        const uint32_t f = static_cast<uint32_t>(k >> 3), w = k & 7;
        if (field == 2 && f == 3 && w == 0) m.model_type = static_cast<int>(s.varint());
        else if (field == 3 && f == 3 && w == 0) m.add_dummy_prefix = s.varint() != 0;
        else s.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  if (m.pieces.empty()) top.fail("it has no pieces");
  return m;
}

std::string llama_cpp_pre_name(const std::string& tokenizer_json_text) {
  if (json_nesting(tokenizer_json_text) > kMaxJsonNesting) return "";
  try {
    return pre_name_of(json::parse(tokenizer_json_text));
  } catch (const json::exception&) {
    return "";  // not a tokenizer.json (or not one whose pre-tokenizer llama.cpp knows)
  }
}

GgufVocabInfo add_gguf_vocab(GgufWriter& w, const std::string& tok_dir, int64_t n_vocab) {
  const std::string spm = join_path(tok_dir, "tokenizer.model"), tj = join_path(tok_dir, "tokenizer.json");
  Vocab v;
  // SentencePiece's own file carries the exact scores; a tokenizer.json stands in when it is alone.
  if (file_exists(spm)) v = vocab_from_spm(spm);
  else if (file_exists(tj)) v = vocab_from_json(tj, read_file(tj));
  else throw file_error(tok_dir, "has neither tokenizer.json nor tokenizer.model");
  auto tok = load_tokenizer(tok_dir);
  const TokenizerConfig& cfg = tok->config();
  // Added tokens that tokenizer_config.json declares beyond the vocabulary file (SentencePiece).
  for (const auto& a : cfg.added_tokens_decoder) {
    if (a.id < 0) continue;
    if (static_cast<size_t>(a.id) >= v.tokens.size() || v.tokens[a.id].empty())
      set_token(v, static_cast<size_t>(a.id), a.content, a.special ? kControl : kUserDefined, 0);
    else if (a.special && v.tokens[a.id] == a.content && v.types[a.id] == kNormal)
      v.types[a.id] = kControl;
  }
  GgufVocabInfo info;
  info.model = v.model;
  info.pre = v.pre;
  const size_t n = static_cast<size_t>(n_vocab);
  if (v.tokens.size() > n) {
    info.notes.push_back("the tokenizer knows " + std::to_string(v.tokens.size()) + " tokens but the model has " +
                         std::to_string(n) + " embedding rows; the extra tokens were left out");
    v.tokens.resize(n);
    v.types.resize(n);
    v.scores.resize(n);
  }
  size_t padded = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i >= v.tokens.size()) set_token(v, i, "", kUnused, -1e9f);
    if (v.tokens[i].empty()) {  // ids without a token (padding rows): unique placeholders, as llama.cpp needs
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = kUnused;
      ++padded;
    }
  }
  if (padded) info.notes.push_back(std::to_string(padded) + " embedding rows have no token; written as unused [PADn] tokens");
  info.tokens = n;

  w.set("tokenizer.ggml.model", GgufValue::str(v.model));
  if (v.model == "gpt2") {
    if (v.pre.empty()) {
      // llama.cpp refuses names it does not know; "default" is what it assumes without one.
      info.pre = "default";
      if (!v.merges.empty())
        info.notes.push_back("llama.cpp has no pre-tokenizer that splits text exactly like this tokenizer; written as "
                             "\"default\": llama.cpp may split some text (digits, spaces) into other tokens");
    }
    w.set("tokenizer.ggml.pre", GgufValue::str(info.pre));
  }
  w.set("tokenizer.ggml.tokens", GgufValue::str_array(v.tokens));
  if (v.model == "llama") w.set("tokenizer.ggml.scores", GgufValue::f32_array(v.scores));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(v.types));
  if (v.model == "gpt2") w.set("tokenizer.ggml.merges", GgufValue::str_array(v.merges));

  auto in_vocab = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n; };
  info.bos = tok->bos_id();
  info.eos = tok->eos_id();
  // What the tokenizer does when asked for special tokens: the same flags llama.cpp applies.
  const Encoding probe = tok->encode("a", true), plain = tok->encode("a", false);
  info.add_bos = info.bos >= 0 && !probe.ids.empty() && probe.ids.front() == info.bos &&
                 (plain.ids.empty() || plain.ids.front() != info.bos);
  info.add_eos = info.eos >= 0 && !probe.ids.empty() && probe.ids.back() == info.eos &&
                 (plain.ids.empty() || plain.ids.back() != info.eos);
  if (in_vocab(info.bos)) w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(info.bos)));
  if (in_vocab(info.eos)) w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(info.eos)));
  const ChatFormat f = detect_chat_format(cfg.chat_template);
  for (const auto& t : end_of_turn_tokens(f, cfg.eos_token)) {
    const int32_t id = tok->token_to_id(t);
    if (in_vocab(id)) {
      info.eot = id;  // generation must stop at the end of a turn, not only at EOS
      w.set("tokenizer.ggml.eot_token_id", GgufValue::u32(static_cast<uint32_t>(id)));
      break;
    }
  }
  const int32_t unk = cfg.unk_token.empty() ? -1 : tok->token_to_id(cfg.unk_token);
  if (in_vocab(unk)) w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(static_cast<uint32_t>(unk)));
  const int32_t pad = tok->pad_id();
  if (in_vocab(pad)) w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(static_cast<uint32_t>(pad)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(info.add_bos && in_vocab(info.bos)));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(info.add_eos && in_vocab(info.eos)));
  if (v.model == "llama") w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(v.add_space_prefix));
  if (!cfg.chat_template.empty()) w.set("tokenizer.chat_template", GgufValue::str(cfg.chat_template));
  return info;
}

}  // namespace hone
