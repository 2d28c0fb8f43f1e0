// Evaluation on a loaded model: multiple-choice questions scored by log-likelihood the way
// lm-evaluation-harness scores multiple_choice tasks (each choice's summed log-probability as a
// continuation of the context, split as its _encode_pair splits them; acc and acc_norm), greedy
// answers generated in batches over the KV cache, and held-out loss. The front ends
// (runs/evaluate.h, the demo, a training session's eval_suites) all score through here.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/records.h"
#include "model/decoder.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone {

// Called after each batch with (done, total); false cancels (throws hone::Interrupted).
using EvalProgress = std::function<bool(int64_t done, int64_t total)>;

struct ChoiceQuestion {
  std::string question, context;  // context "" when the row has none
  std::vector<std::string> choices;
  int64_t answer = 0;
};
// From a canonical choice row (data/records.h).
ChoiceQuestion choice_question(const std::string& canonical_json);

// plain: "<context>\nQuestion: <question>\nAnswer:" continued by " <choice>" (lm-evaluation-harness's
// default prompt and target delimiter); raw: "<context>\n<question>" continued by " <choice>" (a
// completion task such as HellaSwag: the question is the text the choices continue); chat: the
// question (after the context) as the user's turn in the model's chat template with the
// assistant's turn opened, continued by "<choice>".
enum class ChoiceFormat { Plain, Raw, Chat };
bool choice_format_from_name(const std::string& name, ChoiceFormat* out);
const char* choice_format_name(ChoiceFormat f);

// The strings a question is scored with, before the whitespace move of encode_pair.
struct ChoicePrompt {
  std::string context;
  std::vector<std::string> continuations;
};
ChoicePrompt choice_prompt(const ChoiceQuestion& q, ChoiceFormat f, const ChatTemplate& t);

// lm-evaluation-harness's _encode_pair: whitespace at the end of the context moves to the front of
// the continuation; the whole string is encoded once and the continuation's tokens are the ones
// after the context's own encoding. add_special: the tokenizer's own special tokens (BOS) in front.
struct EncodedPair {
  std::vector<int32_t> context, continuation;
};
EncodedPair encode_pair(const Tokenizer& tok, const std::string& context, const std::string& continuation, bool add_special);

struct ChoiceResult {
  ChoicePrompt prompt;
  std::vector<double> logprobs;  // summed log-probability of each continuation
  int64_t prediction = 0;        // argmax logprob
  int64_t prediction_norm = 0;   // argmax logprob / characters of the choice
  bool correct = false, correct_norm = false;
};
// Scores every choice of every question, in batches of up to `batch` continuations (sorted by length).
std::vector<ChoiceResult> score_choices(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t,
                                        const std::vector<ChoiceQuestion>& qs, ChoiceFormat f,
                                        const EvalProgress& progress = nullptr, int64_t batch = 64);

// A generate row: the conversation before its last assistant message, and that message as the reference.
struct GenerateItem {
  std::vector<ChatMessage> prompt;
  std::string reference;
};
GenerateItem generate_item(const std::string& canonical_chat_json);

// Greedy answers to the prompts in the chat template (the generation prompt added), `batch` prompts
// at a time over the KV cache, each stopping at the end of its turn or after max_new_tokens.
std::vector<std::string> greedy_answers(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t,
                                        const std::vector<std::vector<ChatMessage>>& prompts, int64_t max_new_tokens,
                                        const EvalProgress& progress = nullptr, int64_t batch = 32);

// Held-out loss of each row: chat rows on their assistant tokens (as SFT trains), text rows on all
// tokens; cut at max_len. nll is the summed negative log-likelihood of `tokens` tokens.
struct LossRow {
  double nll = 0;
  int64_t tokens = 0;
};
std::vector<LossRow> heldout_loss(CausalLM& m, const Tokenizer& tok, const ChatTemplate& t, DatasetKind kind,
                                  const std::vector<std::string>& canonical_rows, int64_t max_len,
                                  const EvalProgress& progress = nullptr, int64_t batch = 16);

}  // namespace hone
