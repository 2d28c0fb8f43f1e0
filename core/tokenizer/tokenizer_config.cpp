// tokenizer_config.json / chat_template.jinja reading, the added-token splitter and load_tokenizer().
// SPDX-License-Identifier: GPL-3.0-or-later
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"
#include "common/utf8.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace hone {
namespace {

// Special tokens appear either as strings or as AddedToken objects {"content": ...}.
std::string token_text(const nlohmann::json& j) {
  if (j.is_string()) return j;
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"];
  return {};
}

bool is_space_char(const std::string& s, size_t i, size_t* len) {
  size_t l = utf8_seq_len(s, i);
  if (!l) return false;
  *len = l;
  size_t j = i;
  uint32_t cp = utf8_next(s, j);
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0xA0 ||
         cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x85 || cp == 0x2028 || cp == 0x2029 || cp == 0x1680 ||
         cp == 0x202F || cp == 0x205F;
}

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

}  // namespace

TokenizerConfig load_tokenizer_config(const std::string& dir_or_ref) {
  const std::string dir = resolve_model_dir(dir_or_ref);
  TokenizerConfig c;
  const std::string path = join_path(dir, "tokenizer_config.json");
  if (file_exists(path)) {
    try {
      nlohmann::json j = read_json_file(path);
      if (!j.is_object()) throw file_error(path, "not a JSON object");
      if (j.contains("bos_token")) c.bos_token = token_text(j["bos_token"]);
      if (j.contains("eos_token")) c.eos_token = token_text(j["eos_token"]);
      if (j.contains("pad_token")) c.pad_token = token_text(j["pad_token"]);
      if (j.contains("unk_token")) c.unk_token = token_text(j["unk_token"]);
      if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) c.add_bos_token = j["add_bos_token"].get<bool>();
      if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) c.add_eos_token = j["add_eos_token"].get<bool>();
      if (j.contains("legacy") && j["legacy"].is_boolean()) c.legacy = j["legacy"].get<bool>();
      if (j.contains("tokenizer_class") && j["tokenizer_class"].is_string()) c.tokenizer_class = j["tokenizer_class"];
      c.clean_up_tokenization_spaces = j.value("clean_up_tokenization_spaces", false);
      if (j.contains("model_max_length") && j["model_max_length"].is_number_integer())
        c.model_max_length = j["model_max_length"].get<int64_t>();
      if (j.contains("chat_template")) {
        const auto& t = j["chat_template"];
        if (t.is_string()) c.chat_template = t;
        else if (t.is_array())  // [{"name": "default", "template": "..."}, ...]
          for (const auto& e : t)
            if (e.is_object() && e.value("name", "") == "default" && e.contains("template")) c.chat_template = e["template"];
        if (!c.chat_template.empty()) c.chat_template_file = path + " (chat_template)";
      }
      if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
        for (auto it = j["added_tokens_decoder"].begin(); it != j["added_tokens_decoder"].end(); ++it) {
          AddedToken a;
          try {
            a.id = std::stoi(it.key());
          } catch (...) {
            throw file_error(path, "added_tokens_decoder key '" + it.key() + "' is not an id");
          }
          const auto& v = it.value();
          a.content = token_text(v);
          a.special = v.value("special", false);
          a.lstrip = v.value("lstrip", false);
          a.rstrip = v.value("rstrip", false);
          a.single_word = v.value("single_word", false);
          a.normalized = v.value("normalized", false);
          if (!a.content.empty()) c.added_tokens_decoder.push_back(a);
        }
      }
    } catch (const nlohmann::json::exception& e) {  // a field of another type than the one read
      throw file_error(path, std::string("unexpected structure: ") + e.what());
    }
  }
  const std::string jinja = join_path(dir, "chat_template.jinja");
  if (file_exists(jinja)) c.chat_template = read_file(jinja), c.chat_template_file = jinja;
  return c;
}

void AddedTokenSplitter::add(const AddedToken& t) {
  if (t.content.empty() || find_content(t.content)) return;
  int idx = static_cast<int>(tokens_.size());
  tokens_.push_back(t);
  by_content_.emplace(t.content, tokens_.size() - 1);
  by_id_.emplace(t.id, tokens_.size() - 1);  // the first token with an id wins, as before
  int node = 0;
  for (unsigned char c : t.content) {
    int nx = -1;
    for (auto& p : trie_[node].next)
      if (p.first == c) nx = p.second;
    if (nx < 0) {
      nx = static_cast<int>(trie_.size());
      trie_[node].next.emplace_back(c, nx);
      trie_.push_back(Node{});
    }
    node = nx;
  }
  trie_[node].token = idx;
}

const AddedToken* AddedTokenSplitter::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokenSplitter::find_content(const std::string& s) const {
  auto it = by_content_.find(s);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<AddedTokenSplitter::Segment> AddedTokenSplitter::split(const std::string& text) const {
  std::vector<Segment> out;
  size_t plain = 0;  // start of the current plain-text run
  size_t i = 0;
  while (i < text.size()) {
    int node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      int nx = -1;
      for (auto& p : trie_[node].next)
        if (p.first == static_cast<unsigned char>(text[k])) nx = p.second;
      if (nx < 0) break;
      node = nx;
      if (trie_[node].token >= 0) {
        best = trie_[node].token;
        best_end = k + 1;
      }
    }
    if (best >= 0) {
      const auto& t = tokens_[best];
      bool ok = true;
      if (t.single_word) {
        if (i > 0 && is_word_byte(static_cast<unsigned char>(text[i - 1]))) ok = false;
        if (best_end < text.size() && is_word_byte(static_cast<unsigned char>(text[best_end]))) ok = false;
      }
      if (ok) {
        size_t b = i, e = best_end, len;
        if (t.lstrip)
          while (b > plain) {
            size_t k = b - 1;
            while (k > plain && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
            if (!is_space_char(text, k, &len)) break;
            b = k;
          }
        if (t.rstrip)
          while (e < text.size() && is_space_char(text, e, &len)) e += len;
        if (b > plain) out.push_back({plain, b, -1});
        out.push_back({b, e, best});
        i = plain = e;
        continue;
      }
    }
    ++i;
  }
  if (plain < text.size()) out.push_back({plain, text.size(), -1});
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir_or_ref) {
  const std::string dir = resolve_model_dir(dir_or_ref);
  if (!is_directory(dir)) throw file_error(dir, "tokenizer folder not found");
  const std::string tj = join_path(dir, "tokenizer.json");
  const std::string tm = join_path(dir, "tokenizer.model");
  if (file_exists(tj)) return std::make_unique<HfTokenizer>(tj, load_tokenizer_config(dir));
  if (file_exists(tm)) return std::make_unique<SpmTokenizer>(tm, load_tokenizer_config(dir));
  throw file_error(dir, "no tokenizer.json or tokenizer.model in the folder");
}

void copy_tokenizer_files(const std::string& from_or_ref, const std::string& to) {
  const std::string from = resolve_model_dir(from_or_ref);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}) {
    const std::string src = join_path(from, f);
    if (file_exists(src)) write_file_atomic(join_path(to, f), read_file(src));
  }
}

}  // namespace hone
