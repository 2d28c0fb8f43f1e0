// RunConfig: one JSON file describes a run completely (the GUI's form edits the same struct the
// CLI reads). Unknown keys are an error that names the key; omitted keys take per-method defaults.
// The keys every run reads are declared in run_config.cpp; each recipe declares and checks the keys
// it reads in its own file (train/recipes.h lists them). Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "common/json_file.h"

#include "peft/lora_config.h"

namespace hone {

struct RunConfig {
  std::string name = "run";
  std::string base_model;
  std::string method = "lora";  // lora | qlora | full
  std::string recipe = "sft";   // a name in the recipe table (train/recipes.h)
  std::vector<std::string> train_data, eval_data;
  std::string data_format = "auto";
  std::string chat_template = "auto";
  // Replies with thinking ("<think>...</think>" or reasoning_content): "template" trains on what the
  // chat template prints (DeepSeek-R1's drops the thinking from every reply); "keep_final" keeps
  // the final reply whole after the generation prompt (docs/run-config.md).
  std::string thinking = "template";
  std::string loss_on = "assistant";  // assistant | all (sft)
  int64_t max_seq_len = 512;
  double epochs = 1;
  int64_t max_steps = 0;  // 0: derived from epochs
  int64_t batch_size = 4;
  int64_t grad_accum = 1;
  double lr = 2e-4;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  std::string schedule = "cosine";
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;
  double max_grad_norm = 1.0;
  LoraConfig lora;
  bool gradient_checkpointing = false;
  bool mlp_recompute = false;  // run the up projection again in backward instead of keeping it
  // "auto": over a bf16 base (whose GEMMs round their inputs to bf16 already), backward keeps
  // SwiGLU's gate and up and attention's q, k, v rounded to bf16 (half the bytes) and attention's
  // products run as bf16 GEMMs with fp32 accumulation, where the CPU has a bf16 unit; "off": fp32.
  std::string bf16_activations = "auto";
  bool bucket_by_length = true;
  bool packing = true;  // cpt: concatenate documents into full blocks (false: one document per sequence)
  int64_t eval_every = 0;
  double eval_fraction = 0.0;  // held out of train_data when eval_data is empty
  int64_t early_stopping_patience = 0;
  // Evaluation suites (choice, chat or text datasets: dataset:NAME or files) scored at the end of
  // the run and every eval_suites_every steps (0: the end only), recorded as eval/<suite>/<metric>.
  std::vector<std::string> eval_suites;
  int64_t eval_suites_every = 0;
  int64_t eval_max_new_tokens = 32;  // generate suites: the answer's length limit
  int64_t save_every = 0;
  int64_t keep_checkpoints = 2;
  uint64_t seed = 0;
  int64_t threads = 0;
  std::string device = "auto";
  // auto: autocast to bf16 on CUDA (matmuls in bf16, norms, softmax and loss in fp32), fp32 on the
  // CPU, where ATen's bf16 GEMMs measured slower than fp32 (157-167 against 297 GFLOP/s, a CPU
  // without AVX512-BF16) and round every output to bf16; bf16 | no. See base_dtype for the CPU.
  std::string mixed_precision = "auto";
  // Storage of the frozen base for lora/qlora (the linear layers, embedding and head; NF4 layers
  // stay NF4): "bf16" halves it and runs its GEMMs on the CPU's bf16 unit with fp32 accumulation
  // (model/bf16_gemm.h); "f32" keeps it exact; "auto" picks bf16 on CPUs with AVX512-BF16/AMX once
  // the fp32 base passes 256 MB (models from ~64M parameters), f32 otherwise and for full training.
  std::string base_dtype = "auto";
  // Checkpoints also every N minutes of training (0: off), so that a long run stopped by a crash
  // or a power cut keeps recent work even when save_every is 0.
  double save_every_minutes = 10;

  // Preference recipes (dpo, orpo, kto); hf-compat.md §6, TRL's names and defaults.
  double beta = 0.1;                  // dpo/kto: KL strength; orpo: weight of the odds-ratio term (lambda)
  std::string loss_type = "sigmoid";  // dpo: sigmoid | ipo | hinge | robust
  double label_smoothing = 0.0;       // dpo sigmoid/robust: assumed share of flipped labels, [0, 0.5)
  bool precompute_ref_log_probs = false;  // dpo/kto: reference log-probs computed once, cached in the run folder
  double desirable_weight = 1.0, undesirable_weight = 1.0;  // kto
  // LoRA/QLoRA: start from this PEFT adapter instead of fresh adapters. For dpo/kto that adapter,
  // frozen, is the reference (its log-probs are precomputed before training).
  std::string init_adapter;

  // RL recipes (grpo, ppo): each prompt's completions are sampled from the policy and scored by
  // rule rewards ("rewards": train/rule_reward.h) and/or a trained reward model (a reward run's
  // folder); beta weighs the per-token KL penalty against the reference (0 drops it; ppo: the
  // starting coefficient when kl_target adapts it).
  nlohmann::json rewards = nlohmann::json::array();
  std::string reward_model;
  int64_t num_generations = 4;  // completions per prompt (the group)
  int64_t max_new_tokens = 64;
  double temperature = 1.0, top_p = 1.0;
  double clip_epsilon = 0.2;    // PPO-style clipping of the probability ratio
  // ppo (TRL's PPOTrainer names in brackets where they differ):
  int64_t ppo_epochs = 4;       // optimizer updates over each batch of rollouts
  double gae_gamma = 1.0;       // discount (gamma)
  double gae_lambda = 0.95;     // GAE lambda (lam)
  // The critic: "head", the value head alone on the policy's features, read without passing
  // gradients back (TRL's AutoModelForCausalLMWithValueHead), or "adapter", a value model of its
  // own (a second LoRA adapter on the frozen base plus the head, as TRL's PPOv2 keeps a separate
  // value model), which doubles the cost of each update (docs/rlhf.md has both measured).
  std::string value_model = "head";
  double value_coef = 0.1;      // weight of the value loss (vf_coef)
  double value_clip = 0.2;      // clipping of the value change (cliprange_value)
  double kl_target = 0;         // adaptive KL coefficient towards this KL per sequence (0: fixed beta)
  int64_t kl_horizon = 10000;   // sequences over which the adaptive coefficient moves (horizon)

  nlohmann::json to_json() const;
};

// One run-config key: its JSON name, how it is read into a RunConfig and written from one, and a
// line of help. read() throws hone::Error naming `where` and the key.
struct ConfigKey {
  std::string name;
  std::string help;
  std::string label;  // what a form calls it, when it differs by recipe ("Lambda (odds ratio)"); "" for the default
  void (*read)(RunConfig& c, const nlohmann::json& v, const std::string& where, const std::string& key) = nullptr;
  nlohmann::json (*write)(const RunConfig& c) = nullptr;
};

// A key held in one RunConfig member of a JSON-convertible type.
template <auto Member>
ConfigKey config_field(std::string name, std::string help, std::string label = "");

// The keys every run reads, whatever its recipe (name, model, data, optimizer, LoRA, memory, ...).
const std::vector<ConfigKey>& common_config_keys();
// Every key a run config may hold: the common ones, then each recipe's (train/recipes.h), once each.
std::vector<const ConfigKey*> all_config_keys();

// Defaults of a method (LoRA: lr 2e-4, r 16, alpha 32; QLoRA: r 64, alpha 16, dropout 0.1,
// grad clip 0.3; full: lr 2e-5).
RunConfig default_run_config(const std::string& method);
// Reads the keys `j` holds into `c` (unknown keys and wrong types are errors naming them), without
// checking the values together: presets and parse_run_config apply JSON this way.
void apply_config_json(RunConfig& c, const nlohmann::json& j, const std::string& where);
// Checks the values: the common ones here, then the recipe's methods and its own keys' values.
void check_run_config(const RunConfig& c, const std::string& where);
// What a run needs to start: a base model and training data, then check_run_config.
void validate_run_config(const RunConfig& c, const std::string& where);
// Parses a config; relative paths are resolved against base_dir. `where` names the file in errors.
RunConfig parse_run_config(const nlohmann::json& j, const std::string& where, const std::string& base_dir = "");
RunConfig load_run_config(const std::string& path);

namespace detail {
template <typename M>
struct member_of;
template <typename C, typename T>
struct member_of<T C::*> {
  using type = T;
};
[[noreturn]] void wrong_config_type(const std::string& where, const std::string& key);
}  // namespace detail

template <auto Member>
ConfigKey config_field(std::string name, std::string help, std::string label) {
  using T = typename detail::member_of<decltype(Member)>::type;
  ConfigKey k;
  k.name = std::move(name);
  k.help = std::move(help);
  k.label = std::move(label);
  k.read = [](RunConfig& c, const nlohmann::json& v, const std::string& where, const std::string& key) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Checked, not get<T>(): a float such as 1e300 converted to an integer is undefined.
      int64_t x = 0;
      if (!json_integer(v, std::is_signed_v<T> ? static_cast<int64_t>(std::numeric_limits<T>::min()) : 0,
                        static_cast<int64_t>(std::min<uint64_t>(std::numeric_limits<T>::max(), std::numeric_limits<int64_t>::max())), &x))
        detail::wrong_config_type(where, key);
      c.*Member = static_cast<T>(x);
    } else {
      try {
        c.*Member = v.get<T>();
      } catch (const nlohmann::json::exception&) {
        detail::wrong_config_type(where, key);
      }
    }
  };
  k.write = [](const RunConfig& c) { return nlohmann::json(c.*Member); };
  return k;
}

}  // namespace hone

