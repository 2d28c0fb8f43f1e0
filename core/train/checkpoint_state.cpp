// Training checkpoints (see checkpoint_state.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/checkpoint_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/value_head.h"
#include "peft/lora.h"

namespace hone {
namespace {

std::string hex(const at::Tensor& bytes) {
  auto c = bytes.contiguous();
  const uint8_t* p = c.data_ptr<uint8_t>();
  static const char* d = "0123456789abcdef";
  std::string s;
  for (int64_t i = 0; i < c.numel(); ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

at::Tensor unhex(const std::string& s) {
  auto t = at::empty({static_cast<int64_t>(s.size() / 2)}, at::kByte);
  uint8_t* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i + 1 < s.size(); i += 2) p[i / 2] = static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16));
  return t;
}

void remove_tree(const std::string& d) {
  std::error_code ec;  // best effort: a leftover temporary folder is harmless
  if (!d.empty() && d != "/") std::filesystem::remove_all(d, ec);
}

}  // namespace

RngState RngState::capture(bool cuda) {
  RngState s;
  s.cpu = at::detail::getDefaultCPUGenerator().get_state();
  if (cuda) s.cuda = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0)).get_state();
  return s;
}

void RngState::restore() const {
  if (cpu.defined()) {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    g.set_state(cpu);
  }
  if (cuda.defined()) {
    at::Generator g = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0));
    g.set_state(cuda);
  }
}

CheckpointWriter::CheckpointWriter(const std::string& run_dir, const RunConfig& cfg, int world_size)
    : root_(join_path(run_dir, "checkpoints")), cfg_(cfg), world_(world_size) {}

std::string CheckpointWriter::save(const LoopState& s, const RngState& rng, CausalLM& model, const LoraConfig& lora, const AdamW& optim) {
  make_dirs(root_);
  char name[32];
  std::snprintf(name, sizeof(name), "step-%06lld", static_cast<long long>(s.step));
  const std::string final_dir = join_path(root_, name);
  const std::string tmp = join_path(root_, std::string(".tmp-") + name);
  remove_tree(tmp);
  make_dirs(tmp);
  try {
    if (cfg_.method == "full") {
      SaveOptions so;
      save_model(model, join_path(tmp, "model"), so);
    } else {
      save_peft_adapter(model, lora, cfg_.base_model, join_path(tmp, "adapter"));
    }
    optim.save(join_path(tmp, "optimizer.safetensors"));
    nlohmann::json st = {{"step", s.step},
                         {"epoch", s.epoch},
                         {"recipe", cfg_.recipe},
                         {"rng", hex(rng.cpu)},
                         {"best_eval_loss", s.best_eval_loss},
                         {"bad_evals", s.bad_evals},
                         {"seed", cfg_.seed},
                         {"world_size", world_}};
    if (rng.cuda.defined()) st["rng_cuda"] = hex(rng.cuda);
    if (!s.recipe_state.is_null()) st["recipe_state"] = s.recipe_state;
    write_file_atomic(join_path(tmp, "trainer_state.json"), st.dump(2) + "\n");
  } catch (...) {
    remove_tree(tmp);  // the previous checkpoint stays intact
    throw;
  }
  // A checkpoint of the same step (a resumed run saving again) is first moved aside whole, so a
  // kill at any moment leaves step-N whole or absent, never half-removed.
  const std::string old = join_path(root_, std::string(".del-") + name);
  remove_tree(old);
  if (is_directory(final_dir) && ::rename(final_dir.c_str(), old.c_str()) != 0) throw file_error(final_dir, "cannot replace the checkpoint");
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) throw file_error(final_dir, "cannot finish the checkpoint");
  remove_tree(old);
  return final_dir;
}

void CheckpointWriter::prune() {
  std::vector<std::string> all;
  for (const auto& e : std::filesystem::directory_iterator(root_)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0) all.push_back(n);
  }
  std::sort(all.begin(), all.end());
  // Renamed to .del-step-N before removal: remove_all goes file by file, and a kill in the middle
  // must not leave a step-N folder that looks resumable but lacks its weights. The next opening
  // of the workspace removes what a killed process left under that name.
  for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(1, cfg_.keep_checkpoints)) < all.size(); ++i) {
    const std::string doomed = join_path(root_, ".del-" + all[i]);
    remove_tree(doomed);
    if (::rename(join_path(root_, all[i]).c_str(), doomed.c_str()) == 0) remove_tree(doomed);
  }
}

nlohmann::json read_trainer_state(const std::string& checkpoint, const RunConfig& cfg, int world_size) {
  const std::string st_path = join_path(checkpoint, "trainer_state.json");
  if (!file_exists(st_path)) throw file_error(st_path, "not found: this folder is not a Hone checkpoint");
  nlohmann::json st = read_json_file(st_path);
  if (st.value("recipe", cfg.recipe) != cfg.recipe)
    throw file_error(st_path, "was written by a " + st.value("recipe", std::string()) + " run, not " + cfg.recipe);
  if (const int saved = st.value("world_size", 1); saved != world_size)
    throw file_error(st_path, "was written by a run of " + std::to_string(saved) + " process" + (saved == 1 ? "" : "es") +
                                  "; resume it with the same number (this run has " + std::to_string(world_size) + ")");
  return st;
}

LoopState loop_state_of(const nlohmann::json& st) {
  LoopState s;
  s.step = st.at("step").get<int64_t>();
  s.epoch = st.value("epoch", 0.0);
  if (st.contains("best_eval_loss") && st["best_eval_loss"].is_number()) s.best_eval_loss = st["best_eval_loss"].get<double>();
  s.bad_evals = st.value("bad_evals", 0);
  if (st.contains("recipe_state")) s.recipe_state = st["recipe_state"];
  return s;
}

void load_checkpoint_weights(const std::string& checkpoint, const std::string& method, CausalLM& model,
                             const std::vector<NamedParam>& params) {
  at::NoGradGuard ng;
  if (method == "full") {
    auto saved = load_model(join_path(checkpoint, "model"));
    auto src = saved.model->named_parameters();
    for (auto& p : model->named_parameters()) p.value().copy_(src[p.key()]);
    return;
  }
  // The adapters are attached already: copy the saved tensors into them (PEFT key names). A PPO
  // value model (head, critic adapter) is kept beside the adapter, in its own file
  // (model/value_head.h).
  const std::string adir = join_path(checkpoint, "adapter");
  const std::string ap = join_path(adir, "adapter_model.safetensors");
  SafetensorsFile sf(ap);
  std::unique_ptr<SafetensorsFile> vh;
  for (auto& p : params) {
    const SafetensorsFile* file = &sf;
    const auto* info = sf.find("base_model.model." + p.name);
    if (!info && is_value_model_tensor(p.name)) {
      if (!vh) vh = std::make_unique<SafetensorsFile>(join_path(adir, kValueHeadFile));
      file = vh.get();
      info = vh->find(p.name);
    }
    if (!info) throw file_error(file->path(), "checkpoint lacks '" + p.name + "' (was it made with another LoRA config?)");
    auto t = tensor_from_bytes(file->data(*info), info->dtype, info->shape, file->path());
    if (t.sizes() != p.param.sizes()) throw file_error(ap, "'" + p.name + "' has another shape than this run's adapter");
    p.param.copy_(t);
  }
}

void restore_optimizer_and_rng(const std::string& checkpoint, const nlohmann::json& st, bool cuda, AdamW& optim) {
  optim.load(join_path(checkpoint, "optimizer.safetensors"));
  RngState rs;
  rs.cpu = unhex(st.at("rng").get<std::string>());
  if (cuda && st.contains("rng_cuda")) rs.cuda = unhex(st["rng_cuda"].get<std::string>());
  rs.restore();
}

}  // namespace hone
