// One loader for what a run produced, used by score, generate, the demo (and later the playground
// and export): a full fine-tune's model/, or the run's base model, NF4-quantized when the run was
// QLoRA, with the run's adapter (or a checkpoint's) attached.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>

#include "model/checkpoint.h"

namespace hone {

struct RunModel {
  LoadedModel lm;
  std::string method, recipe, base_model, adapter_dir;  // adapter_dir "" for full fine-tuning
};

// run_dir: a run folder (config.json + adapter/ or model/) or one of its checkpoints/step-N.
RunModel load_run_output(const std::string& run_dir, const LoadOptions& o = {});
// The same fields without loading any weights (lm.dir is the full fine-tune's model/, else empty):
// for callers that load the model later, or another form of it.
RunModel describe_run_output(const std::string& run_dir);
// A base model with an optional PEFT adapter; nf4 quantizes the base first (as QLoRA trained it).
RunModel load_with_adapter(const std::string& base_model, const std::string& adapter_dir, bool nf4, const LoadOptions& o = {});

}  // namespace hone
