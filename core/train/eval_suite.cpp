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

std::vector<ChoiceResult> score_choices(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t,
                                        const std::vector<ChoiceQuestion>& qs, ChoiceFormat f,
                                        const EvalProgress& progress, int64_t batch) {
  at::NoGradGuard ng;
  EvalMode mode(m);
  const auto dev = m->output_weight().device();
  const bool special = f != ChoiceFormat::Chat;  // a chat template writes its own BOS
  std::vector<ChoiceResult> out(qs.size());
  struct Item {
    size_t q, c;
    Rollout r;
  };
  std::vector<Item> items;
  for (size_t i = 0; i < qs.size(); ++i) {
    out[i].prompt = choice_prompt(qs[i], f, t);
    out[i].logprobs.assign(qs[i].choices.size(), 0.0);
    for (size_t c = 0; c < qs[i].choices.size(); ++c) {
      EncodedPair e = encode_pair(tok, out[i].prompt.context, out[i].prompt.continuations[c], special);
      if (e.context.empty()) e.context.push_back(tok.eos_id() >= 0 ? tok.eos_id() : 0);  // lm-eval: an empty context is the EOT token
      items.push_back({i, c, {std::move(e.context), std::move(e.continuation), false}});
    }
  }
  // Longest first, so a batch holds rows of like length (less padding) and a memory problem shows early.
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return items[a].r.prompt.size() + items[a].r.completion.size() > items[b].r.prompt.size() + items[b].r.completion.size();
  });
  const int64_t total = static_cast<int64_t>(items.size());
  for (size_t s = 0; s < order.size(); s += static_cast<size_t>(batch)) {
    const size_t e = std::min(order.size(), s + static_cast<size_t>(batch));
    std::vector<Rollout> rows;
    for (size_t k = s; k < e; ++k) rows.push_back(items[order[k]].r);
    const at::Tensor lp = completion_logps(m, rows, pad_of(tok), dev, false).logps.sum(1).to(at::kDouble).cpu();  // [N]
    const double* v = lp.data_ptr<double>();
    for (size_t k = s; k < e; ++k) out[items[order[k]].q].logprobs[items[order[k]].c] = v[k - s];
    report(progress, static_cast<int64_t>(e), total);
  }
  for (size_t i = 0; i < qs.size(); ++i) {
    auto& r = out[i];
    std::vector<double> chars;  // code points, as Python's len() counts a choice
    for (const auto& c : qs[i].choices) {
      size_t n = 0;
      for (size_t k = 0; k < c.size(); ++k) n += (static_cast<unsigned char>(c[k]) & 0xC0) != 0x80;
      chars.push_back(static_cast<double>(std::max<size_t>(n, 1)));
    }
    size_t best = 0, best_norm = 0;
    for (size_t c = 1; c < r.logprobs.size(); ++c) {
      if (r.logprobs[c] > r.logprobs[best]) best = c;
      if (r.logprobs[c] / chars[c] > r.logprobs[best_norm] / chars[best_norm])
        best_norm = c;
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
