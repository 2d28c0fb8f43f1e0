// Candidates for labelling: n sampled responses to each prompt of a dataset, rendered with the
// model's chat template, as rows {"prompt", "responses": [...]} of a candidates dataset. Runs on
// the caller's thread with a progress callback that can cancel (the GUI runs it as a job).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/generate.h"
#include "tokenizer/chat_template.h"

namespace hone {

struct CandidateOptions {
  int n = 2;                 // responses per prompt
  SamplingParams sampling;   // temperature, top_p, top_k, max_new_tokens; seed s gives prompt i, response k seed s + 1000 i + k
  ChatTemplate format = ChatFormat::ChatML;
  // A response that reads the same as an earlier one for its prompt (whitespace normalised) is
  // sampled again with another seed and a temperature raised by half the setting each time (1.0,
  // 1.5, 2.0, ...), up to this many times; one still the same is kept (and the Label page flags it).
  int resample = 4;
};

struct CandidateStats {
  int64_t resampled = 0;       // extra samples drawn because a response repeated an earlier one
  int64_t identical_rows = 0;  // rows where two responses still read the same
};

// Prompts of canonical dataset rows: a chat row's messages before its last assistant reply, a
// preference or candidate row's prompt. Text rows have none (an error names the row).
std::vector<std::string> prompts_of_rows(const std::vector<std::string>& canonical_rows, const std::string& kind);

// (done, total) -> false cancels; the rows made so far are returned.
using CandidateProgress = std::function<bool(int64_t done, int64_t total)>;

// One canonical candidates row per prompt (prompts as canonical JSON: a string or a message list).
std::vector<std::string> generate_candidates(CausalLM& m, const Tokenizer& tok, const std::vector<std::string>& prompts,
                                             const CandidateOptions& o, const CandidateProgress& progress = nullptr,
                                             bool* cancelled = nullptr, CandidateStats* stats = nullptr);

}  // namespace hone
