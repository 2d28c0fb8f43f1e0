// LoRA hyper-parameters without the model: target names and PEFT's adapter_config.json.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "peft/lora_config.h"

#include <cmath>

#include "common/error.h"

namespace hone {
namespace {

// Phi-3's fused qkv_proj and gate_up_proj are there too; a model has one set or the other.
const char* const kAllLinear[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj"};

}  // namespace

std::vector<std::string> expand_lora_targets(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets) {
    if (t == "all-linear") {
      for (const char* n : kAllLinear) out.push_back(n);
      continue;
    }
    bool ok = false;
    for (const char* n : kAllLinear) ok = ok || t == n;
    if (!ok)
      throw Error("LoRA target '" + t +
                  "' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, qkv_proj, gate_up_proj, all-linear");
    out.push_back(t);
  }
  return out;
}

LoraConfig parse_peft_adapter_config(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw file_error(path, "not a JSON object");
  auto given = [&](const char* k) { return j.contains(k) && !j[k].is_null(); };
  auto flag = [&](const char* k) {
    if (!given(k)) return false;
    if (!j[k].is_boolean()) throw file_error(path, std::string("\"") + k + "\" must be true or false");
    return j[k].get<bool>();
  };
  auto number = [&](const char* k, double def) {
    if (!given(k)) return def;
    if (!j[k].is_number() || !std::isfinite(j[k].get<double>())) throw file_error(path, std::string("\"") + k + "\" must be a number");
    return j[k].get<double>();
  };
  if (!given("peft_type") || !j["peft_type"].is_string() || j["peft_type"].get<std::string>() != "LORA")
    throw file_error(path, "peft_type must be \"LORA\"");
  if (flag("use_dora")) throw file_error(path, "DoRA adapters are not supported yet");
  if (flag("fan_in_fan_out")) throw file_error(path, "fan_in_fan_out adapters (GPT-2 Conv1D) are not supported");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (given(k) && j[k].is_object() && !j[k].empty()) throw file_error(path, std::string(k) + " is not supported yet");
  LoraConfig c;
  c.r = 8;
  if (given("r")) {
    if (!j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0) throw file_error(path, "\"r\" must be a positive integer");
    c.r = j["r"].get<int64_t>();
  }
  c.alpha = number("lora_alpha", 8.0);
  c.dropout = number("lora_dropout", 0.0);
  if (c.dropout < 0 || c.dropout >= 1) throw file_error(path, "\"lora_dropout\" must be in [0, 1)");
  c.rslora = flag("use_rslora");
  c.targets.clear();  // the adapter's tensors say which projections it adapts
  return c;
}

}  // namespace hone
