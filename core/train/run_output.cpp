// Run output loader (see run_output.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/run_output.h"

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"
#include "peft/lora.h"
#include "train/method_model.h"

namespace hone {

RunModel load_with_adapter(const std::string& base_model, const std::string& adapter_dir, bool nf4, const LoadOptions& o) {
  RunModel r;
  r.base_model = base_model;
  // The base as the run trained over it (QLoRA: NF4 quantized from fp32).
  r.lm = load_method_base(base_model, nf4 ? "qlora" : "lora", o.base_bf16, nullptr, o);
  if (!adapter_dir.empty()) load_peft_adapter(r.lm.model, adapter_dir);
  r.adapter_dir = adapter_dir;
  r.method = adapter_dir.empty() ? "base" : nf4 ? "qlora" : "lora";
  return r;
}

RunModel describe_run_output(const std::string& dir) {
  // A checkpoint folder sits in <run>/checkpoints/; its run's config.json is two levels up.
  std::string run_dir = dir, cfg_path = join_path(dir, "config.json");
  if (!file_exists(cfg_path) && file_exists(join_path(dir, "trainer_state.json"))) {
    auto up = [](const std::string& p) { return p.substr(0, p.find_last_of('/')); };
    run_dir = up(up(dir));
    cfg_path = join_path(run_dir, "config.json");
  }
  if (!file_exists(cfg_path)) throw file_error(cfg_path, "not found: not a Hone run folder");
  auto j = read_json_file(cfg_path);
  RunModel r;
  r.method = j.value("method", "lora");
  r.recipe = j.value("recipe", "sft");
  r.base_model = j.value("base_model", "");
  if (r.method == "full") {
    r.lm.dir = join_path(dir, "model");
    if (!is_directory(r.lm.dir)) throw file_error(r.lm.dir, "not found: the run has no model yet (did it finish or checkpoint?)");
  } else {
    r.adapter_dir = join_path(dir, "adapter");
    if (!is_directory(r.adapter_dir))
      throw file_error(r.adapter_dir, "not found: the run has no adapter yet (did it finish or checkpoint?)");
    if (r.base_model.empty() || !is_directory(resolve_model_dir_or_empty(r.base_model)))
      throw file_error(cfg_path, "its base_model \"" + r.base_model + "\" is not a folder here");
  }
  return r;
}

RunModel load_run_output(const std::string& dir, const LoadOptions& o) {
  RunModel d = describe_run_output(dir);
  RunModel r;
  if (d.method == "full") {
    r.lm = load_model(d.lm.dir, o);
  } else {
    r = load_with_adapter(d.base_model, d.adapter_dir, d.method == "qlora", o);
  }
  r.method = d.method;
  r.recipe = d.recipe;
  r.base_model = d.base_model;
  return r;
}

}  // namespace hone
