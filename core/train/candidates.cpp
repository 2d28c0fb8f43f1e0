// Candidate generation (see candidates.h). Each response has its own seed, so a prompt's responses
// differ from each other and the whole set is reproducible.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/candidates.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/utf8.h"

namespace hone {

using nlohmann::json;

namespace {
// Equal after runs of whitespace collapse and the ends are trimmed (what a reader would call the same).
bool same_text(const std::string& a, const std::string& b) { return collapse_whitespace(a) == collapse_whitespace(b); }
}  // namespace

std::vector<std::string> prompts_of_rows(const std::vector<std::string>& rows, const std::string& kind) {
  std::vector<std::string> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    json j = json::parse(rows[i]);
    if (kind == "chat") {
      json msgs = j.at("messages");
      size_t last = msgs.size();
      for (size_t k = msgs.size(); k-- > 0;)
        if (msgs[k]["role"] == "assistant") {
          last = k;
          break;
        }
      json prompt(msgs.begin(), msgs.begin() + static_cast<long>(last));
      if (prompt.empty()) throw Error("row " + std::to_string(i) + ": no prompt before the assistant reply");
      out.push_back(prompt.dump());
    } else if (kind == "preference" || kind == "candidates" || kind == "prompts") {
      out.push_back(j.at("prompt").dump());
    } else {
      throw Error("a " + kind + " dataset has no prompts to answer (use a prompts, chat, preference or candidates dataset)");
    }
  }
  return out;
}

std::vector<std::string> generate_candidates(CausalLM& m, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                             const CandidateOptions& o, const CandidateProgress& progress, bool* cancelled,
                                             CandidateStats* stats) {
  if (o.n < 1 || o.n > 16) throw Error("candidates: n must be 1 to 16");
  if (o.resample < 0) throw Error("candidates: resample must be 0 or more");
  SamplingParams p = o.sampling;
  for (const auto& s : end_of_turn_tokens(o.format, tok.config().eos_token)) {
    const int32_t id = tok.token_to_id(s);
    if (id >= 0) p.stop_ids.push_back(id);
  }
  for (auto e : m->config.eos_token_ids) p.stop_ids.push_back(e);
  if (tok.eos_id() >= 0) p.stop_ids.push_back(tok.eos_id());
  std::vector<std::string> rows;
  if (cancelled) *cancelled = false;
  const int64_t total = static_cast<int64_t>(prompts.size());
  at::NoGradGuard ng;
  m->eval();
  for (int64_t i = 0; i < total; ++i) {
    json prompt = json::parse(prompts[static_cast<size_t>(i)]);
    std::vector<ChatMessage> msgs;
    if (prompt.is_string()) msgs.push_back({"user", prompt.get<std::string>()});
    else
      for (const auto& x : prompt) msgs.push_back({x.at("role").get<std::string>(), x.at("content").get<std::string>()});
    auto ids = tokenize_chat(tok, o.format, msgs, true).ids;
    json responses = json::array();
    bool repeated = false;
    // Retries take seeds far from any first try's (prompt i, response k: s + 1000 i + k), and a
    // temperature raised by half the setting each time: a confident model repeats itself at the
    // setting, and a labeller needs responses that differ.
    auto seed_of = [&](int k, int attempt) {
      return o.sampling.seed + 1000ull * static_cast<uint64_t>(i) + static_cast<uint64_t>(k) + (1ull << 40) * static_cast<uint64_t>(attempt);
    };
    // The n first tries decode together, one batch over one KV cache (each row with its own seed).
    const std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
    std::vector<uint64_t> first_seeds;
    for (int k = 0; k < o.n; ++k) first_seeds.push_back(seed_of(k, 0));
    const auto first = generate_batch(m, std::vector<std::vector<int64_t>>(static_cast<size_t>(o.n), prompt_ids), p, nullptr, first_seeds);
    for (int k = 0; k < o.n; ++k) {
      std::string text;
      for (int attempt = 0; attempt <= o.resample; ++attempt) {
        SamplingParams pk = p;
        pk.seed = seed_of(k, attempt);
        pk.temperature = p.temperature * (1.0 + 0.5 * attempt);
        auto r = attempt == 0 ? first[static_cast<size_t>(k)] : generate(m, prompt_ids, pk);
        if (r.stopped_on_token && !r.tokens.empty()) r.tokens.pop_back();
        text = tok.decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.end()), true);
        // An empty sample is kept visible to the labeller rather than dropped (and fails no check).
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) text = "(empty response)";
        bool same = false;
        for (const auto& earlier : responses) same = same || same_text(earlier.get<std::string>(), text);
        if (!same) break;
        if (attempt == o.resample || p.temperature <= 0) {  // greedy decoding repeats itself: no point drawing again
          repeated = true;
          break;
        }
        if (stats) ++stats->resampled;
      }
      responses.push_back(text);
    }
    if (repeated && stats) ++stats->identical_rows;
    rows.push_back(json({{"prompt", prompt}, {"responses", responses}}).dump());
    if (progress && !progress(i + 1, total)) {
      if (cancelled) *cancelled = true;
      break;
    }
  }
  m->train();
  return rows;
}

}  // namespace hone
