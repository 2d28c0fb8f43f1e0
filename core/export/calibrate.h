// Export calibration: how much each input column of every linear layer matters, measured as the
// mean squared activation that reaches it over token sequences of the run's own data (the idea of
// llama.cpp's importance matrix). The quantized GGUF types weight their per-block error search by
// it, so the columns the fine-tuned model actually uses are coded best.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "export/gguf_model.h"
#include "model/decoder.h"

namespace hone {

// Runs `m` (dense, eval) over each sequence and returns, per linear layer ("...q_proj.weight") and
// for the head ("lm_head.weight", tied or not), the mean over tokens of x^2 per input column, plus
// 1% of the layer's mean so that a column the sequences never used still counts a little.
GgufImportance gather_importance(CausalLM& m, const std::vector<std::vector<int64_t>>& inputs,
                                 const std::function<void(size_t done, size_t total)>& progress = nullptr);

}  // namespace hone
