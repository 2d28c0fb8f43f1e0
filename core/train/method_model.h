// The model a training method trains: the base loaded as the method keeps it (NF4 layers for
// QLoRA, a bf16 frozen base where chosen) and its trainable parts (every weight, fresh LoRA
// adapters or a starting adapter). The training session sets up with it, and the loader of a
// run's output (train/run_output.h) loads a run's base the same way.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>

#include "model/bf16_gemm.h"
#include "model/checkpoint.h"
#include "peft/lora_config.h"
#include "train/run_config.h"
#include "train/trainer.h"

namespace hone {

// The base for `method`: frozen unless the method is full; QLoRA's linear layers quantized to
// NF4 as they load (from fp32), then, with base_bf16, the dense frozen weights (QLoRA: the
// embedding and an untied head) stored in bf16. frozen_bytes: what the frozen linear layers take.
LoadedModel load_method_base(const std::string& base_model, const std::string& method, bool base_bf16,
                             int64_t* frozen_bytes = nullptr, LoadOptions o = {});

struct MethodModel {
  LoadedModel lm;
  LoraConfig lora;  // the adapters' settings (a starting adapter's own, with the run's targets)
  int64_t frozen_weight_bytes = 0;
};

// The run's model before its recipe adds anything: load_method_base (with the base dtype chosen
// for the run, logged), then fresh adapters (seeded by cfg.seed) or cfg.init_adapter made trainable.
MethodModel set_up_method_model(const RunConfig& cfg, const BaseDtypeChoice& base_dtype, const LogFn& log);

}  // namespace hone
