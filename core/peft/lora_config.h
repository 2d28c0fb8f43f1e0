// LoRA hyper-parameters, in a header of their own so that run configs (and the GUI, which never
// sees torch headers) can hold them without pulling in the model.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
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

}  // namespace hone
