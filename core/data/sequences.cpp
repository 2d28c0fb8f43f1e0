// Sequence building. A conversation whose first assistant token would fall past max_len is
// dropped (it would train nothing); longer ones are truncated at max_len.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/sequences.h"

#include "common/error.h"

namespace hone {

std::vector<Sequence> tokenize_conversations(const Tokenizer& tok, const ChatTemplate& f, const std::vector<Conversation>& convs,
                                             int64_t max_len, bool assistant_only, TokenizeStats* stats) {
  std::vector<Sequence> out;
  TokenizeStats st;
  for (const auto& c : convs) {
    ChatTokens ct;
    try {
      ct = tokenize_chat(tok, f, c.messages, false);
    } catch (const Error& e) {
      throw Error(c.source + ": " + e.what());
    }
    Sequence s;
    s.ids = std::move(ct.ids);
    s.loss_mask = assistant_only ? std::move(ct.assistant_mask) : std::vector<uint8_t>(s.ids.size(), 1);
    if (!s.loss_mask.empty()) s.loss_mask[0] = 0;  // nothing predicts the first token
    if (static_cast<int64_t>(s.ids.size()) > max_len) {
      s.ids.resize(max_len);
      s.loss_mask.resize(max_len);
      ++st.truncated;
    }
    int64_t n = 0;
    for (auto m : s.loss_mask) n += m;
    if (n == 0) {
      ++st.dropped;
      continue;
    }
    st.tokens += static_cast<int64_t>(s.ids.size());
    st.loss_tokens += n;
    out.push_back(std::move(s));
  }
  st.sequences = static_cast<int64_t>(out.size());
  if (stats) *stats = st;
  return out;
}

namespace {

// A sequence trained on every token but the first (raw text).
void add_full_loss(Sequence s, TokenizeStats& st, std::vector<Sequence>& out) {
  s.loss_mask.assign(s.ids.size(), 1);
  s.loss_mask[0] = 0;
  st.tokens += static_cast<int64_t>(s.ids.size());
  st.loss_tokens += static_cast<int64_t>(s.ids.size()) - 1;
  out.push_back(std::move(s));
}

}  // namespace

std::vector<Sequence> pack_documents(const Tokenizer& tok, const std::vector<std::string>& docs, int64_t block_len,
                                     TokenizeStats* stats, bool packing) {
  const int32_t eos = tok.eos_id();
  if (eos < 0) throw Error("the tokenizer has no EOS token to separate packed documents");
  std::vector<Sequence> out;
  TokenizeStats st;
  if (!packing) {
    for (const auto& d : docs) {
      Sequence s;
      s.ids = tok.encode(d, true).ids;
      s.ids.push_back(eos);
      if (static_cast<int64_t>(s.ids.size()) > block_len) {
        s.ids.resize(static_cast<size_t>(block_len));
        ++st.truncated;
      }
      if (s.ids.size() < 2) {
        ++st.dropped;
        continue;
      }
      add_full_loss(std::move(s), st, out);
    }
  } else {
    std::vector<int32_t> stream;
    for (const auto& d : docs) {
      auto ids = tok.encode(d, true).ids;
      stream.insert(stream.end(), ids.begin(), ids.end());
      stream.push_back(eos);
    }
    for (size_t b = 0; b + 2 <= stream.size(); b += static_cast<size_t>(block_len)) {
      size_t e = std::min(stream.size(), b + static_cast<size_t>(block_len));
      Sequence s;
      s.ids.assign(stream.begin() + b, stream.begin() + e);
      add_full_loss(std::move(s), st, out);
    }
  }
  st.sequences = static_cast<int64_t>(out.size());
  if (stats) *stats = st;
  if (out.empty()) throw Error("the documents hold fewer than two tokens");
  return out;
}

}  // namespace hone
