// Evaluation on a loaded model (see eval_suite.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/eval_suite.h"

#include <algorithm>
#include <numeric>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/examples.h"
#include "data/sequences.h"
#include "train/batches.h"
#include "train/head_logps.h"
#include "train/logps.h"
#include "train/rollout.h"

namespace hone {
namespace {

using json = nlohmann::json;

int32_t pad_of(const Tokenizer& tok) { return std::max<int32_t>(tok.pad_id() >= 0 ? tok.pad_id() : tok.eos_id(), 0); }

void report(const EvalProgress& p, int64_t done, int64_t total) {
  if (p && !p(done, total)) throw Interrupted();
}

// Restores the model's training mode when the evaluation ends (a training session evaluates mid-run).
struct EvalMode {
  CausalLM& m;
  bool was;
  explicit EvalMode(CausalLM& model) : m(model), was(model->is_training()) { m->eval(); }
  ~EvalMode() {
    if (was) m->train();
  }
};

}  // namespace

ChoiceQuestion choice_question(const std::string& canonical_json) {
  const json j = json::parse(canonical_json);
  ChoiceQuestion q;
  q.question = j.at("question").get<std::string>();
  q.context = j.value("context", "");
  q.choices = j.at("choices").get<std::vector<std::string>>();
  q.answer = j.at("answer").get<int64_t>();
  if (q.answer < 0 || q.answer >= static_cast<int64_t>(q.choices.size())) throw Error("choice row: answer out of range");
  return q;
}

bool choice_format_from_name(const std::string& name, ChoiceFormat* out) {
  if (name == "plain") *out = ChoiceFormat::Plain;
  else if (name == "raw") *out = ChoiceFormat::Raw;
  else if (name == "chat") *out = ChoiceFormat::Chat;
  else return false;
  return true;
}

const char* choice_format_name(ChoiceFormat f) {
  return f == ChoiceFormat::Plain ? "plain" : f == ChoiceFormat::Raw ? "raw" : "chat";
}

ChoicePrompt choice_prompt(const ChoiceQuestion& q, ChoiceFormat f, const ChatTemplate& t) {
  ChoicePrompt p;
  if (f != ChoiceFormat::Chat) {
    const std::string lead = q.context.empty() ? "" : q.context + "\n";
    p.context = f == ChoiceFormat::Plain ? lead + "Question: " + q.question + "\nAnswer:" : lead + q.question;
    for (const auto& c : q.choices) p.continuations.push_back(" " + c);
  } else {
    const std::string user = (q.context.empty() ? "" : q.context + "\n\n") + q.question;
    p.context = render_chat(t, {{"user", user}}, true).text;
    p.continuations = q.choices;
  }
  return p;
}

EncodedPair encode_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation, bool add_special) {
  // Python's str.rstrip() with no argument strips Unicode whitespace; the ASCII set covers what
  // prompts end with (space, newline, tab).
  size_t keep = context.size();
  while (keep > 0 && (context[keep - 1] == ' ' || context[keep - 1] == '\n' || context[keep - 1] == '\t' ||
                      context[keep - 1] == '\r' || context[keep - 1] == '\f' || context[keep - 1] == '\v'))
    --keep;
  const std::string ctx = context.substr(0, keep), cont = context.substr(keep) + continuation;
  EncodedPair e;
  const std::vector<int32_t> whole = tok.encode(ctx + cont, add_special).ids;
  e.context = tok.encode(ctx, add_special).ids;
  const size_t n = std::min(e.context.size(), whole.size());
  e.continuation.assign(whole.begin() + static_cast<long>(n), whole.end());
  return e;
}

namespace {

// One question's shared context and its choices' continuation tokens (encode_pair gives every
// choice the same context tokens: the whitespace move depends on the context alone).
struct Encoded {
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> continuations;
};

// Summed log-probabilities of each continuation of each question in `qs` (indices into `enc`):
// every context runs through the model once into the KV cache, which is then repeated for its
// choices, and all continuations run together on top of it. lm-evaluation-harness runs context
// + continuation once per choice; sharing the context gives the same numbers (to float rounding)
// in a fraction of the time when contexts are long and continuations short.
void score_chunk(CausalLM& m, const std::vector<Encoded>& enc, const std::vector<size_t>& qs, int32_t pad,
                 std::vector<std::vector<double>>* out) {
  const auto dev = m->output_weight().device();
  const int64_t Q = static_cast<int64_t>(qs.size());
  int64_t P = 0, L = 1, N = 0;
  for (size_t q : qs) {
    P = std::max<int64_t>(P, static_cast<int64_t>(enc[q].context.size()));
    for (const auto& c : enc[q].continuations) L = std::max<int64_t>(L, static_cast<int64_t>(c.size())), ++N;
  }
  // Contexts padded on the left, so that every context's last token sits in the last column.
  std::vector<int64_t> ids(static_cast<size_t>(Q * P), pad), am(static_cast<size_t>(Q * P), 0), pos(static_cast<size_t>(Q * P), 0);
  for (int64_t i = 0; i < Q; ++i) {
    const auto& c = enc[qs[static_cast<size_t>(i)]].context;
    const int64_t off = P - static_cast<int64_t>(c.size());
    for (size_t t = 0; t < c.size(); ++t) {
      ids[i * P + off + static_cast<int64_t>(t)] = c[t];
      am[i * P + off + static_cast<int64_t>(t)] = 1;
      pos[i * P + off + static_cast<int64_t>(t)] = static_cast<int64_t>(t);
    }
  }
  auto as = [&](std::vector<int64_t>& v, int64_t r, int64_t c) { return at::tensor(v, at::kLong).view({r, c}).to(dev); };
  const at::Tensor ctx_mask = as(am, Q, P);
  KVCache cache;
  const at::Tensor hc = m->hidden(as(ids, Q, P), ctx_mask, &cache, as(pos, Q, P));  // [Q, P, H]
  // Each choice's row: its question's cache, then its continuation (padded on the right).
  std::vector<int64_t> of(static_cast<size_t>(N)), cids(static_cast<size_t>(N * L), pad), cam(static_cast<size_t>(N * L), 0),
      cpos(static_cast<size_t>(N * L), 0), tgt(static_cast<size_t>(N * L), 0);
  std::vector<float> cmask(static_cast<size_t>(N * L), 0.f);
  int64_t n = 0;
  for (int64_t i = 0; i < Q; ++i) {
    const Encoded& e = enc[qs[static_cast<size_t>(i)]];
    for (const auto& c : e.continuations) {
      of[static_cast<size_t>(n)] = i;
      for (size_t t = 0; t < c.size(); ++t) {
        cids[n * L + static_cast<int64_t>(t)] = c[t];
        cam[n * L + static_cast<int64_t>(t)] = 1;
        cpos[n * L + static_cast<int64_t>(t)] = static_cast<int64_t>(e.context.size() + t);
        tgt[n * L + static_cast<int64_t>(t)] = c[t];
        cmask[n * L + static_cast<int64_t>(t)] = 1.f;
      }
      ++n;
    }
  }
  const at::Tensor rows = at::tensor(of, at::kLong).to(dev);  // [N]: the question of each choice
  for (size_t l = 0; l < cache.k.size(); ++l) {
    cache.k[l] = cache.k[l].index_select(0, rows);  // [N, kv heads, P, D]
    cache.v[l] = cache.v[l].index_select(0, rows);
  }
  const at::Tensor mask = at::cat({ctx_mask.index_select(0, rows), as(cam, N, L)}, 1);  // [N, P + L]
  const at::Tensor hn = m->hidden(as(cids, N, L), mask, &cache, as(cpos, N, L));      // [N, L, H]
  // The state that predicts continuation token t: the context's last for t = 0, else token t - 1's.
  at::Tensor hs = at::cat({hc.select(1, P - 1).index_select(0, rows).unsqueeze(1), hn.narrow(1, 0, L - 1)}, 1);  // [N, L, H]
  const at::Tensor targets = as(tgt, N, L), valid = at::tensor(cmask).view({N, L}).to(dev);
  at::Tensor lp;  // [N, L]
  if (m->chunked_head) {
    HeadLogpsOptions o;
    o.softcap = m->config.final_softcap;
    lp = head_token_logps(m->head_input(hs.reshape({N * L, hs.size(2)})), m->output_weight(), targets.reshape({-1}), o).logps.view({N, L});
  } else {
    lp = at::log_softmax(m->logits_from_hidden(hs), -1).gather(2, targets.unsqueeze(-1)).squeeze(-1);
  }
  const at::Tensor sums = (lp * valid).sum(1).to(at::kDouble).cpu();  // [N]
  const double* v = sums.data_ptr<double>();
  n = 0;
  for (size_t q : qs)
    for (size_t c = 0; c < enc[q].continuations.size(); ++c) (*out)[q][c] = v[n++];
}

}  // namespace

std::vector<ChoiceResult> score_choices(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t,
                                        const std::vector<ChoiceQuestion>& qs, ChoiceFormat f,
                                        const EvalProgress& progress, int64_t batch) {
  at::NoGradGuard ng;
  EvalMode mode(m);
  const bool special = f != ChoiceFormat::Chat;  // a chat template writes its own BOS
  std::vector<ChoiceResult> out(qs.size());
  std::vector<Encoded> enc(qs.size());
  std::vector<std::vector<double>> lps(qs.size());
  for (size_t i = 0; i < qs.size(); ++i) {
    out[i].prompt = choice_prompt(qs[i], f, t);
    lps[i].assign(qs[i].choices.size(), 0.0);
    for (size_t c = 0; c < qs[i].choices.size(); ++c) {
      EncodedPair e = encode_pair(tok, out[i].prompt.context, out[i].prompt.continuations[c], special);
      if (e.context.empty()) e.context.push_back(tok.eos_id() >= 0 ? tok.eos_id() : 0);  // lm-eval: an empty context is the EOT token
      if (c == 0) enc[i].context = e.context;
      enc[i].continuations.push_back(std::move(e.continuation));
    }
  }
  // Longest contexts first, so a chunk holds contexts of like length (less padding); a chunk is at
  // most `batch` continuations and about 8k context tokens once repeated for its choices.
  std::vector<size_t> order(qs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return enc[a].context.size() > enc[b].context.size(); });
  int64_t total = 0, done = 0;
  for (const auto& q : qs) total += static_cast<int64_t>(q.choices.size());
  for (size_t s = 0; s < order.size();) {
    std::vector<size_t> chunk;
    int64_t conts = 0;
    const int64_t P = static_cast<int64_t>(enc[order[s]].context.size());  // the chunk's longest context
    while (s < order.size()) {
      const int64_t c = static_cast<int64_t>(enc[order[s]].continuations.size());
      if (!chunk.empty() && (conts + c > batch || (conts + c) * P > 8192)) break;
      chunk.push_back(order[s++]);
      conts += c;
    }
    score_chunk(m, enc, chunk, pad_of(tok), &lps);
    done += conts;
    report(progress, done, total);
  }
  for (size_t i = 0; i < qs.size(); ++i) {
    auto& r = out[i];
    r.logprobs = lps[i];
    std::vector<double> chars;  // code points, as Python's len() counts a choice
    for (const auto& c : qs[i].choices) {
      size_t n = 0;
      for (size_t k = 0; k < c.size(); ++k) n += (static_cast<unsigned char>(c[k]) & 0xC0) != 0x80;
      chars.push_back(static_cast<double>(std::max<size_t>(n, 1)));
    }
    size_t best = 0, best_norm = 0;
    for (size_t c = 1; c < r.logprobs.size(); ++c) {
      if (r.logprobs[c] > r.logprobs[best]) best = c;
      if (r.logprobs[c] / chars[c] > r.logprobs[best_norm] / chars[best_norm]) best_norm = c;
    }
    r.prediction = static_cast<int64_t>(best);
    r.prediction_norm = static_cast<int64_t>(best_norm);
    r.correct = r.prediction == qs[i].answer;
    r.correct_norm = r.prediction_norm == qs[i].answer;
  }
  return out;
}

GenerateItem generate_item(const std::string& canonical_chat_json) {
  std::vector<ChatMessage> msgs = record_messages(canonical_chat_json);
  GenerateItem g;
  size_t last = msgs.size();
  while (last > 0 && msgs[last - 1].role != "assistant") --last;
  if (last == 0) throw Error("a generate row needs an assistant message (the reference answer)");
  g.reference = msgs[last - 1].content;
  g.prompt.assign(msgs.begin(), msgs.begin() + static_cast<long>(last - 1));
  if (g.prompt.empty()) throw Error("a generate row needs a prompt before its reference answer");
  return g;
}

std::vector<std::string> greedy_answers(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t,
                                        const std::vector<std::vector<ChatMessage>>& prompts, int64_t max_new_tokens,
                                        const EvalProgress& progress, int64_t batch) {
  EvalMode mode(m);
  RolloutSettings s;
  s.group = 1;
  s.max_new_tokens = max_new_tokens;
  s.temperature = 0;  // greedy: the same answer every time
  for (const auto& name : end_of_turn_tokens(t, tok.config().eos_token)) {
    const int32_t id = tok.token_to_id(name);
    if (id >= 0) s.stop_ids.push_back(id);
  }
  for (auto e : m->config.eos_token_ids) s.stop_ids.push_back(e);
  if (tok.eos_id() >= 0) s.stop_ids.push_back(tok.eos_id());
  std::vector<std::vector<int32_t>> ids;
  for (const auto& p : prompts) ids.push_back(tokenize_chat(tok, t, p, true).ids);
  // Prompts of like length share a batch (less left padding).
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  std::vector<std::string> out(prompts.size());
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // unused by greedy decoding
  for (size_t st = 0; st < order.size(); st += static_cast<size_t>(batch)) {
    const size_t e = std::min(order.size(), st + static_cast<size_t>(batch));
    std::vector<std::vector<int32_t>> chunk;
    for (size_t k = st; k < e; ++k) chunk.push_back(ids[order[k]]);
    const std::vector<Rollout> rs = sample_prompts(m, chunk, s, gen);
    for (size_t k = st; k < e; ++k) {
      std::vector<int32_t> c = rs[k - st].completion;
      if (rs[k - st].stopped && !c.empty()) c.pop_back();  // the end-of-turn token is not part of the answer
      out[order[k]] = tok.decode(c, true);
    }
    report(progress, static_cast<int64_t>(e), static_cast<int64_t>(order.size()));
  }
  return out;
}

std::vector<LossRow> heldout_loss(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t, DatasetKind kind,
                                  const std::vector<std::string>& rows, int64_t max_len, const EvalProgress& progress,
                                  int64_t batch) {
  if (kind != DatasetKind::Chat && kind != DatasetKind::Text)
    throw Error("held-out loss needs a chat or text dataset, not " + std::string(dataset_kind_name(kind)));
  at::NoGradGuard ng;
  EvalMode mode(m);
  const auto dev = m->output_weight().device();
  std::vector<Sequence> seqs;
  for (const auto& r : rows) {
    std::vector<Sequence> one;
    if (kind == DatasetKind::Chat)
      one = tokenize_conversations(tok, t, {{record_messages(r), ""}}, max_len, true, nullptr);
    else
      one = pack_documents(tok, {json::parse(r).at("text").get<std::string>()}, max_len, nullptr, false);
    seqs.push_back(one.empty() ? Sequence{} : std::move(one.front()));
  }
  std::vector<LossRow> out(rows.size());
  for (size_t s = 0; s < seqs.size(); s += static_cast<size_t>(batch)) {
    const size_t e = std::min(seqs.size(), s + static_cast<size_t>(batch));
    std::vector<const Sequence*> part;
    std::vector<size_t> where;
    for (size_t i = s; i < e; ++i)
      if (seqs[i].ids.size() > 1) part.push_back(&seqs[i]), where.push_back(i);
    if (!part.empty()) {
      SeqLogps lp = sequence_logps(m, collate(part, pad_of(tok)), dev, false);
      const at::Tensor l = lp.logps.to(at::kDouble).cpu(), n = lp.tokens.to(at::kDouble).cpu();
      for (size_t k = 0; k < where.size(); ++k) {
        out[where[k]].nll = -l[static_cast<int64_t>(k)].item<double>();
        out[where[k]].tokens = static_cast<int64_t>(n[static_cast<int64_t>(k)].item<double>());
      }
    }
    report(progress, static_cast<int64_t>(e), static_cast<int64_t>(seqs.size()));
  }
  return out;
}

}  // namespace hone
