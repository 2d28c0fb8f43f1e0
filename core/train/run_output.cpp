// Run output loader (see run_output.h).
#include "train/run_output.h"

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "peft/lora.h"

namespace hone {

RunModel load_with_adapter(const std::string& base_model, const std::string& adapter_dir, bool nf4, const LoadOptions& o) {
  RunModel r;
  r.base_model = base_model;
  r.lm = load_model(base_model, o);
  if (nf4) quantize_base_nf4(r.lm.model);
  if (!adapter_dir.empty()) load_peft_adapter(r.lm.model, adapter_dir);
  r.adapter_dir = adapter_dir;
  r.method = adapter_dir.empty() ? "base" : nf4 ? "qlora" : "lora";
  return r;
}

RunModel load_run_output(const std::string& dir, const LoadOptions& o) {
  // A checkpoint folder sits in <run>/checkpoints/; its run's config.json is two levels up.
  std::string run_dir = dir, cfg_path = join_path(dir, "config.json");
  if (!file_exists(cfg_path) && file_exists(join_path(dir, "trainer_state.json"))) {
    auto up = [](const std::string& p) { return p.substr(0, p.find_last_of('/')); };
    run_dir = up(up(dir));
    cfg_path = join_path(run_dir, "config.json");
  }
  if (!file_exists(cfg_path)) throw file_error(cfg_path, "not found: not a Hone run folder");
  auto j = read_json_file(cfg_path);
  const std::string method = j.value("method", "lora"), base = j.value("base_model", "");
  RunModel r;
  if (method == "full") {
    const std::string m = join_path(dir, "model");
    if (!is_directory(m)) throw file_error(m, "not found: the run has no model yet (did it finish or checkpoint?)");
    r.lm = load_model(m, o);
    r.base_model = base;
  } else {
    const std::string a = join_path(dir, "adapter");
    if (!is_directory(a)) throw file_error(a, "not found: the run has no adapter yet (did it finish or checkpoint?)");
    if (base.empty() || !is_directory(base)) throw file_error(cfg_path, "its base_model \"" + base + "\" is not a folder here");
    r = load_with_adapter(base, a, method == "qlora", o);
  }
  r.method = method;
  r.recipe = j.value("recipe", "sft");
  return r;
}

}  // namespace hone
