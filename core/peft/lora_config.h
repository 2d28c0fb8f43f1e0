// LoRA hyper-parameters, in a header of their own so that run configs (and the GUI, which never
// sees torch headers) can hold them without pulling in the model.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hone {

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32;
  double dropout = 0.0;
  bool rslora = false;
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // or {"all-linear"}
};

// Projection names a target list expands to ("all-linear": every linear except lm_head); throws
// naming a target that is none of them.
std::vector<std::string> expand_lora_targets(const std::vector<std::string>& targets);
// The hyper-parameters of a PEFT adapter_config.json (untrusted: from any adapter folder); throws
// hone::Error naming `path` and the key. The targets are left empty: the adapter's tensors say.
LoraConfig parse_peft_adapter_config(const nlohmann::json& j, const std::string& path);

}  // namespace hone
