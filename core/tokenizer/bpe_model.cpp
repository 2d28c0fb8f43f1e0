// BPE merging as the tokenizers library does it: start from characters (or mapped bytes),
// repeatedly merge the adjacent pair of lowest rank (leftmost on ties) until none applies.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/bpe_model.h"

#include <queue>

#include "common/error.h"
#include "common/utf8.h"

namespace hone {

namespace {

struct ByteMap {
  std::string fwd[256];
  std::unordered_map<std::string, int> back;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      utf8_append(fwd[b], cp);
      back[fwd[b]] = b;
    }
  }
};
const ByteMap& bytemap() {
  static const ByteMap m;
  return m;
}

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return bytemap().fwd[b]; }
int unicode_to_byte(const std::string& ch) {
  auto it = bytemap().back.find(ch);
  return it == bytemap().back.end() ? -1 : it->second;
}

BpeModel::BpeModel(const nlohmann::json& m) {
  if (m.value("type", "BPE") != "BPE") throw Error("tokenizer model type \"" + m.value("type", "") + "\" is not supported (BPE only)");
  if (!m.contains("vocab") || !m["vocab"].is_object()) throw Error("tokenizer model has no vocab object");
  int32_t max_id = -1;
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() >= kMaxTokenId)
      throw Error("vocab entry '" + it.key() + "' has an invalid id");
    int32_t id = it.value().get<int32_t>();
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  // The table below is as long as the highest id: a few entries with ids in the millions must not
  // make it gigabytes. Real vocabularies are dense (ids 0..n-1).
  if (static_cast<size_t>(max_id + 1) > 4 * vocab_.size() + 1024)
    throw Error("vocab ids reach " + std::to_string(max_id) + " but it has only " + std::to_string(vocab_.size()) + " entries");
  id_to_tok_.resize(static_cast<size_t>(max_id + 1));
  for (auto& kv : vocab_) id_to_tok_[kv.second] = kv.first;
  byte_fallback_ = m.value("byte_fallback", false);
  fuse_unk_ = m.value("fuse_unk", false);
  ignore_merges_ = m.value("ignore_merges", false);
  if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string())
    cont_prefix_ = m["continuing_subword_prefix"];
  if (m.contains("end_of_word_suffix") && m["end_of_word_suffix"].is_string()) end_suffix_ = m["end_of_word_suffix"];
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk_id_ = token_to_id(m["unk_token"]);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = token_to_id(name);
  }
  int32_t rank = 0;
  if (m.contains("merges") && m["merges"].is_array()) {
    for (const auto& mg : m["merges"]) {
      std::string a, b;
      if (mg.is_string()) {  // "a b" (older files)
        const std::string s = mg;
        auto sp = s.find(' ', 1);
        if (sp == std::string::npos) throw Error("merge \"" + s + "\" is not two tokens");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (mg.is_array() && mg.size() == 2) {  // ["a", "b"]
        a = mg[0];
        b = mg[1];
      } else {
        throw Error("merge entry " + mg.dump() + " is malformed");
      }
      int32_t ia = token_to_id(a), ib = token_to_id(b);
      std::string merged = a + (cont_prefix_.empty() || b.compare(0, cont_prefix_.size(), cont_prefix_) ? b : b.substr(cont_prefix_.size()));
      int32_t im = token_to_id(merged);
      if (ia < 0 || ib < 0 || im < 0) {
        ++rank;
        continue;  // merges whose parts are not in the vocab can never fire
      }
      merges_.emplace(pair_key(ia, ib), Merge{rank++, im});
    }
  }
}

int32_t BpeModel::token_to_id(const std::string& s) const {
  auto it = vocab_.find(s);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<size_t>(id) >= id_to_tok_.size()) return empty;
  return id_to_tok_[id];
}

void BpeModel::add_token(const std::string& s, int32_t id) {
  if (id < 0) return;
  if (static_cast<size_t>(id) >= id_to_tok_.size()) id_to_tok_.resize(id + 1);
  if (id_to_tok_[id].empty()) id_to_tok_[id] = s;
}

std::vector<BpeToken> BpeModel::merge_word(const std::vector<std::string>& units,
                                           const std::vector<std::pair<uint32_t, uint32_t>>& ranges) const {
  struct Sym {
    int32_t id;
    uint32_t b, e;
    int prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    std::string u = units[i];
    if (i > 0 && !cont_prefix_.empty()) u = cont_prefix_ + u;
    if (i + 1 == units.size() && !end_suffix_.empty()) u += end_suffix_;
    int32_t id = token_to_id(u);
    if (id >= 0) {
      syms.push_back({id, ranges[i].first, ranges[i].second, 0, 0, true});
      continue;
    }
    bool done = false;
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : units[i]) all = all && byte_ids_[c] >= 0;
      if (all) {
        for (size_t k = 0; k < units[i].size(); ++k) {
          uint32_t p = ranges[i].first + static_cast<uint32_t>(k);
          syms.push_back({byte_ids_[static_cast<unsigned char>(units[i][k])], p, p + 1, 0, 0, true});
        }
        done = true;
      }
    }
    if (!done) {
      if (unk_id_ < 0) throw Error("text contains '" + units[i] + "', which the vocabulary cannot represent (no unk token)");
      if (fuse_unk_ && !syms.empty() && syms.back().id == unk_id_) syms.back().e = ranges[i].second;
      else syms.push_back({unk_id_, ranges[i].first, ranges[i].second, 0, 0, true});
    }
  }
  const int n = static_cast<int>(syms.size());
  for (int i = 0; i < n; ++i) {
    syms[i].prev = i - 1;
    syms[i].next = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;
    int32_t left, right;  // ids at push time, to detect stale entries
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
  auto push = [&](int i) {
    if (i < 0) return;
    int j = syms[i].next;
    if (j < 0) return;
    auto it = merges_.find(pair_key(syms[i].id, syms[j].id));
    if (it != merges_.end()) q.push({it->second.rank, i, syms[i].id, syms[j].id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!q.empty()) {
    Cand c = q.top();
    q.pop();
    Sym& l = syms[c.pos];
    if (!l.alive || l.id != c.left || l.next < 0) continue;
    Sym& r = syms[l.next];
    if (r.id != c.right) continue;
    auto it = merges_.find(pair_key(l.id, r.id));
    l.id = it->second.new_id;
    l.e = r.e;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.pos;
    push(l.prev);
    push(c.pos);
  }
  std::vector<BpeToken> out;
  for (int i = n ? 0 : -1; i >= 0; i = syms[i].next) out.push_back({syms[i].id, syms[i].b, syms[i].e});
  return out;
}

std::vector<BpeToken> BpeModel::tokenize(const std::string& word, bool byte_level) const {
  if (word.empty()) return {};
  const bool cacheable = word.size() <= 64;
  if (cacheable) {
    std::lock_guard<std::mutex> lk(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<std::string> units;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  std::string mapped;
  if (byte_level) {
    for (size_t i = 0; i < word.size(); ++i) {
      const auto& u = byte_to_unicode(static_cast<unsigned char>(word[i]));
      units.push_back(u);
      ranges.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1));
      mapped += u;
    }
  } else {
    for (size_t i = 0; i < word.size();) {
      size_t l = utf8_seq_len(word, i);
      if (!l) l = 1;
      units.push_back(word.substr(i, l));
      ranges.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(i + l));
      i += l;
    }
    mapped = word;
  }
  std::vector<BpeToken> out;
  int32_t whole = ignore_merges_ ? token_to_id(mapped) : -1;
  if (whole >= 0) out.push_back({whole, 0, static_cast<uint32_t>(word.size())});
  else out = merge_word(units, ranges);
  if (cacheable) {
    std::lock_guard<std::mutex> lk(cache_mu_);
    if (cache_.size() > 200000) cache_.clear();
    cache_.emplace(word, out);
  }
  return out;
}

}  // namespace hone
