// Torch-free entry point that samples candidate responses to a dataset's prompts and stores them as
// a new candidates dataset for labelling; shared by `hone-cli label generate` and the Label page.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "store/workspace.h"

namespace hone {

struct CandidateRequest {
  std::string dataset;               // id or name of a chat, preference or candidates dataset
  std::string model_dir, adapter_dir;  // a model folder (and a PEFT adapter) ...
  std::string run_dir;               // ... or what a run produced (takes precedence)
  std::string name;                  // "" = <dataset>-candidates
  int n = 2;
  double temperature = 0.9, top_p = 0.95;
  int max_new_tokens = 128;
  uint64_t seed = 0;
  std::string chat_template;  // "" = the model's own
  int64_t limit = 0;          // first N rows only (0 = all)
};

struct CandidateOutcome {
  int64_t dataset_id = 0;  // 0 when cancelled (nothing stored)
  std::string name;
  int64_t rows = 0, prompts = 0;
  bool cancelled = false;
};

// progress(done, total) -> false cancels; a cancelled request stores nothing. The rows are
// imported in one transaction like any file. Throws hone::Error naming what is wrong.
CandidateOutcome make_candidate_dataset(Workspace& ws, const CandidateRequest& r,
                                        const std::function<bool(int64_t done, int64_t total)>& progress = nullptr);

}  // namespace hone
