// Torch-free entry point that samples candidate responses to a dataset's prompts and stores them as
// a new candidates dataset for labelling; shared by `hone-cli label generate` and the Label page.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "store/workspace.h"

namespace hone {

// Where responses come from: a model folder (and a PEFT adapter), or what a run produced.
struct CandidateSource {
  std::string model_dir, adapter_dir;
  std::string run_dir;  // takes precedence
  std::string label;    // the name recorded with each response ("" = the run's or folder's name)
  bool empty() const { return model_dir.empty() && run_dir.empty(); }
};

struct CandidateRequest {
  std::string dataset;               // id or name of a prompts, chat, preference or candidates dataset
  std::string model_dir, adapter_dir;  // source A: a model folder (and a PEFT adapter) ...
  std::string run_dir;               // ... or what a run produced (takes precedence)
  // Source B (optional): half of each prompt's responses come from A and half from B, in an order
  // shuffled per row, each response recording its source ("compare my two runs by labelling").
  CandidateSource second;
  std::string name;                  // "" = <dataset>-candidates (-2, -3, ... when taken)
  int n = 4;                         // 2-8 responses per prompt (an even number with two sources)
  // Defaults that give a small model's answers room to differ: the labeller needs a choice.
  double temperature = 1.0, top_p = 0.95;
  int top_k = 50;
  int max_new_tokens = 128;
  uint64_t seed = 0;
  int resample = 4;           // re-draws of a response that repeats an earlier one
  std::string chat_template;  // "" = the model's own
  int64_t limit = 0;          // first N rows only (0 = all)
};

struct CandidateOutcome {
  int64_t dataset_id = 0;  // 0 when cancelled (nothing stored)
  std::string name;
  int64_t rows = 0, prompts = 0;
  int64_t resampled = 0, identical_rows = 0;  // re-draws made; rows still holding two same responses
  bool cancelled = false;
};

// Where a candidates dataset's responses came from, as its `source` records it ("label generate
// --run DIR", "label generate --model DIR [--adapter DIR]", then " --versus-..."): source A.
// Empty fields for a dataset imported from a file.
CandidateSource candidate_origin(const std::string& dataset_source);
// What DPO on the candidates should start from: the run's base and its adapter (which, frozen, is
// also the reference), or a full fine-tune's model; base_model "" when unknown or gone.
struct TrainingStart {
  std::string base_model, init_adapter, label;
};
TrainingStart training_start_for(const std::string& dataset_source);

// progress(done, total) -> false cancels; a cancelled request stores nothing. The rows are
// imported in one transaction like any file. Throws hone::Error naming what is wrong.
CandidateOutcome make_candidate_dataset(Workspace& ws, const CandidateRequest& r,
                                        const std::function<bool(int64_t done, int64_t total)>& progress = nullptr);

}  // namespace hone
