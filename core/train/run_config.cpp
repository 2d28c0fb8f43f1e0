// Run config parsing: strict keys, typed values, method defaults, relative paths.
#include "train/run_config.h"

#include <set>

#include "common/error.h"
#include "train/rule_reward.h"
#include "common/files.h"
#include "common/json_file.h"
#include "peft/lora.h"

namespace hone {
namespace {

const std::set<std::string> kKeys = {
    "name", "base_model", "method", "recipe", "train_data", "eval_data", "data_format", "chat_template", "loss_on",
    "max_seq_len", "epochs", "max_steps", "batch_size", "grad_accum", "lr", "weight_decay", "adam_beta1", "adam_beta2",
    "adam_eps", "schedule", "warmup_steps", "warmup_ratio", "max_grad_norm", "lora", "gradient_checkpointing", "mlp_recompute",
    "bucket_by_length", "packing", "eval_every", "eval_fraction", "early_stopping_patience", "save_every", "keep_checkpoints", "seed",
    "threads", "device", "mixed_precision", "base_dtype", "save_every_minutes", "beta", "loss_type", "label_smoothing",
    "precompute_ref_log_probs", "desirable_weight", "undesirable_weight", "init_adapter",
    "rewards", "reward_model", "num_generations", "max_new_tokens", "temperature", "top_p", "clip_epsilon", "ppo_epochs", "gae_gamma", "gae_lambda", "value_model", "value_coef", "value_clip", "kl_target", "kl_horizon"};
const std::set<std::string> kLoraKeys = {"r", "alpha", "dropout", "targets", "rslora"};

std::string resolve(const std::string& p, const std::string& base) {
  // "dataset:NAME" names a workspace dataset; the front end exports it before training.
  if (p.empty() || p[0] == '/' || base.empty() || p.rfind("dataset:", 0) == 0) return p;
  return join_path(base, p);
}

}  // namespace

RunConfig default_run_config(const std::string& method) {
  RunConfig c;
  c.method = method;
  if (method == "qlora") {
    c.lora.r = 64;
    c.lora.alpha = 16;
    c.lora.dropout = 0.1;
    c.lora.targets = {"all-linear"};
    c.max_grad_norm = 0.3;
    c.schedule = "constant";
    c.warmup_ratio = 0.03;
  } else if (method == "full") {
    c.lr = 2e-5;
  } else {
    c.lora.r = 16;
    c.lora.alpha = 32;
    c.lora.dropout = 0.05;
    c.lora.targets = {"all-linear"};
  }
  return c;
}

RunConfig parse_run_config(const nlohmann::json& j, const std::string& where, const std::string& base_dir) {
  if (!j.is_object()) throw Error(where + ": a run config is a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kKeys.count(it.key())) throw Error(where + ": unknown key \"" + it.key() + "\"");
  std::string method = j.value("method", "lora");
  if (method != "lora" && method != "qlora" && method != "full")
    throw Error(where + ": \"method\" must be lora, qlora or full");
  RunConfig c = default_run_config(method);
  auto typed = [&](const char* k, auto& dst) {
    if (!j.contains(k)) return;
    try {
      dst = j.at(k).get<std::decay_t<decltype(dst)>>();
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": \"" + k + "\" has the wrong type");
    }
  };
  typed("name", c.name);
  typed("base_model", c.base_model);
  typed("recipe", c.recipe);
  if (j.contains("train_data") && j["train_data"].is_string()) c.train_data = {j["train_data"].get<std::string>()};
  else typed("train_data", c.train_data);
  if (j.contains("eval_data") && j["eval_data"].is_string()) c.eval_data = {j["eval_data"].get<std::string>()};
  else typed("eval_data", c.eval_data);
  typed("data_format", c.data_format);
  typed("chat_template", c.chat_template);
  typed("loss_on", c.loss_on);
  typed("max_seq_len", c.max_seq_len);
  typed("epochs", c.epochs);
  typed("max_steps", c.max_steps);
  typed("batch_size", c.batch_size);
  typed("grad_accum", c.grad_accum);
  typed("lr", c.lr);
  typed("weight_decay", c.weight_decay);
  typed("adam_beta1", c.adam_beta1);
  typed("adam_beta2", c.adam_beta2);
  typed("adam_eps", c.adam_eps);
  typed("schedule", c.schedule);
  typed("warmup_steps", c.warmup_steps);
  typed("warmup_ratio", c.warmup_ratio);
  typed("max_grad_norm", c.max_grad_norm);
  typed("gradient_checkpointing", c.gradient_checkpointing);
  typed("mlp_recompute", c.mlp_recompute);
  typed("bucket_by_length", c.bucket_by_length);
  typed("packing", c.packing);
  typed("eval_every", c.eval_every);
  typed("eval_fraction", c.eval_fraction);
  typed("early_stopping_patience", c.early_stopping_patience);
  typed("save_every", c.save_every);
  typed("keep_checkpoints", c.keep_checkpoints);
  typed("seed", c.seed);
  typed("threads", c.threads);
  typed("device", c.device);
  typed("mixed_precision", c.mixed_precision);
  typed("base_dtype", c.base_dtype);
  typed("save_every_minutes", c.save_every_minutes);
  typed("beta", c.beta);
  typed("loss_type", c.loss_type);
  typed("label_smoothing", c.label_smoothing);
  typed("precompute_ref_log_probs", c.precompute_ref_log_probs);
  typed("desirable_weight", c.desirable_weight);
  typed("undesirable_weight", c.undesirable_weight);
  typed("init_adapter", c.init_adapter);
  if (j.contains("rewards")) c.rewards = j["rewards"];
  typed("reward_model", c.reward_model);
  typed("num_generations", c.num_generations);
  typed("max_new_tokens", c.max_new_tokens);
  typed("temperature", c.temperature);
  typed("top_p", c.top_p);
  typed("clip_epsilon", c.clip_epsilon);
  typed("ppo_epochs", c.ppo_epochs);
  typed("gae_gamma", c.gae_gamma);
  typed("gae_lambda", c.gae_lambda);
  typed("value_model", c.value_model);
  typed("value_coef", c.value_coef);
  typed("value_clip", c.value_clip);
  typed("kl_target", c.kl_target);
  typed("kl_horizon", c.kl_horizon);
  if (c.base_dtype != "auto" && c.base_dtype != "bf16" && c.base_dtype != "f32")
    throw Error(where + ": \"base_dtype\" must be \"auto\", \"bf16\" or \"f32\"");
  if (c.base_dtype == "bf16" && c.method == "full")
    throw Error(where + ": \"base_dtype\": \"bf16\" stores the frozen base; full fine-tuning trains every weight in fp32 (use lora or qlora)");
  if (c.mixed_precision != "auto" && c.mixed_precision != "bf16" && c.mixed_precision != "no")
    throw Error(where + ": \"mixed_precision\" must be \"auto\", \"bf16\" or \"no\"");
  if (j.contains("lora")) {
    const auto& l = j["lora"];
    if (!l.is_object()) throw Error(where + ": \"lora\" must be an object");
    for (auto it = l.begin(); it != l.end(); ++it)
      if (!kLoraKeys.count(it.key())) throw Error(where + ": unknown key \"lora." + it.key() + "\"");
    try {
      if (l.contains("r")) c.lora.r = l["r"].get<int64_t>();
      if (l.contains("alpha")) c.lora.alpha = l["alpha"].get<double>();
      if (l.contains("dropout")) c.lora.dropout = l["dropout"].get<double>();
      if (l.contains("rslora")) c.lora.rslora = l["rslora"].get<bool>();
      if (l.contains("targets")) c.lora.targets = l["targets"].is_string() ? std::vector<std::string>{l["targets"].get<std::string>()}
                                                                           : l["targets"].get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": a \"lora\" field has the wrong type");
    }
    expand_lora_targets(c.lora.targets);  // validates the names
  }
  if (c.base_model.empty()) throw Error(where + ": \"base_model\" is required");
  if (c.train_data.empty()) throw Error(where + ": \"train_data\" is required");
  if (c.recipe != "sft" && c.recipe != "cpt" && c.recipe != "dpo" && c.recipe != "orpo" && c.recipe != "kto" &&
      c.recipe != "reward" && c.recipe != "grpo" && c.recipe != "ppo")
    throw Error(where + ": \"recipe\" must be sft, cpt, dpo, orpo, kto, reward, grpo or ppo");
  const bool rl = c.recipe == "grpo" || c.recipe == "ppo";
  if (rl) {
    RuleReward check(c.rewards, where);  // validates every rule
    if (check.empty() && c.reward_model.empty())
      throw Error(where + ": " + c.recipe + " needs \"rewards\" (rule rewards) or a \"reward_model\" (a reward run's folder)");
    if (c.recipe == "grpo" && c.num_generations < 2)
      throw Error(where + ": \"num_generations\" must be at least 2 (advantages compare a group)");
    if (c.num_generations < 1) throw Error(where + ": \"num_generations\" must be at least 1");
    if (c.max_new_tokens < 1 || c.temperature <= 0 || c.top_p <= 0 || c.top_p > 1 || c.clip_epsilon <= 0)
      throw Error(where + ": max_new_tokens, temperature and clip_epsilon must be positive and top_p in (0, 1]");
    if (c.method == "full")
      throw Error(where + ": " + c.recipe + " trains LoRA or QLoRA adapters (the reference is the adapters switched off)");
  }
  if (c.recipe == "ppo") {
    if (c.ppo_epochs < 1 || c.ppo_epochs > 64) throw Error(where + ": \"ppo_epochs\" must be in [1, 64]");
    if (c.gae_gamma < 0 || c.gae_gamma > 1 || c.gae_lambda < 0 || c.gae_lambda > 1)
      throw Error(where + ": \"gae_gamma\" and \"gae_lambda\" must be in [0, 1]");
    if (c.value_model != "adapter" && c.value_model != "head")
      throw Error(where + ": \"value_model\" must be \"adapter\" (a critic adapter of its own) or \"head\" (on the policy's features)");
    if (c.value_coef < 0 || c.value_clip <= 0) throw Error(where + ": \"value_coef\" must not be negative and \"value_clip\" must be positive");
    if (c.kl_target < 0 || c.kl_horizon < 1) throw Error(where + ": \"kl_target\" must not be negative and \"kl_horizon\" must be positive");
    if (c.kl_target > 0 && c.beta == 0) throw Error(where + ": an adaptive KL (\"kl_target\") needs a positive starting \"beta\"");
  }
  if (c.recipe == "reward" && c.method == "full")
    throw Error(where + ": a reward model trains over LoRA or QLoRA (method lora or qlora): its score head is saved with the adapter");
  if (c.loss_type != "sigmoid" && c.loss_type != "ipo" && c.loss_type != "hinge" && c.loss_type != "robust")
    throw Error(where + ": \"loss_type\" must be sigmoid, ipo, hinge or robust");
  if (c.beta < 0 || (c.beta == 0 && !rl))
    throw Error(where + ": \"beta\" must be positive (grpo, ppo: 0 drops the KL penalty)");
  if (c.label_smoothing < 0 || c.label_smoothing >= 0.5) throw Error(where + ": \"label_smoothing\" must be in [0, 0.5)");
  if (c.desirable_weight <= 0 || c.undesirable_weight <= 0)
    throw Error(where + ": \"desirable_weight\" and \"undesirable_weight\" must be positive");
  if (c.save_every_minutes < 0) throw Error(where + ": \"save_every_minutes\" must not be negative");
  if (!c.init_adapter.empty() && c.method == "full")
    throw Error(where + ": \"init_adapter\" needs method lora or qlora (full fine-tuning has no adapter)");
  if (c.loss_on != "assistant" && c.loss_on != "all") throw Error(where + ": \"loss_on\" must be assistant or all");
  if (c.schedule != "constant" && c.schedule != "linear" && c.schedule != "cosine")
    throw Error(where + ": \"schedule\" must be constant, linear or cosine");
  if (c.batch_size <= 0 || c.grad_accum <= 0 || c.max_seq_len < 8 || c.lr <= 0 || c.epochs <= 0 || c.lora.r <= 0)
    throw Error(where + ": batch_size, grad_accum, lr, epochs and lora.r must be positive and max_seq_len at least 8");
  if (c.eval_fraction < 0 || c.eval_fraction >= 1) throw Error(where + ": \"eval_fraction\" must be in [0, 1)");
  c.base_model = resolve(c.base_model, base_dir);
  for (auto& p : c.train_data) p = resolve(p, base_dir);
  for (auto& p : c.eval_data) p = resolve(p, base_dir);
  if (!c.init_adapter.empty()) c.init_adapter = resolve(c.init_adapter, base_dir);
  if (!c.reward_model.empty()) c.reward_model = resolve(c.reward_model, base_dir);
  return c;
}

std::string recipe_data_kind(const std::string& recipe) {
  if (recipe == "cpt") return "text";
  if (recipe == "dpo" || recipe == "orpo" || recipe == "kto" || recipe == "reward") return "preference";
  return "chat";
}

RunConfig load_run_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  auto slash = path.rfind('/');
  return parse_run_config(j, path, slash == std::string::npos ? "" : path.substr(0, slash));
}

nlohmann::json RunConfig::to_json() const {
  return {{"name", name},
          {"base_model", base_model},
          {"method", method},
          {"recipe", recipe},
          {"train_data", train_data},
          {"eval_data", eval_data},
          {"data_format", data_format},
          {"chat_template", chat_template},
          {"loss_on", loss_on},
          {"max_seq_len", max_seq_len},
          {"epochs", epochs},
          {"max_steps", max_steps},
          {"batch_size", batch_size},
          {"grad_accum", grad_accum},
          {"lr", lr},
          {"weight_decay", weight_decay},
          {"adam_beta1", adam_beta1},
          {"adam_beta2", adam_beta2},
          {"adam_eps", adam_eps},
          {"schedule", schedule},
          {"warmup_steps", warmup_steps},
          {"warmup_ratio", warmup_ratio},
          {"max_grad_norm", max_grad_norm},
          {"lora", {{"r", lora.r}, {"alpha", lora.alpha}, {"dropout", lora.dropout}, {"targets", lora.targets}, {"rslora", lora.rslora}}},
          {"gradient_checkpointing", gradient_checkpointing},
          {"mlp_recompute", mlp_recompute},
          {"bucket_by_length", bucket_by_length},
          {"packing", packing},
          {"eval_every", eval_every},
          {"eval_fraction", eval_fraction},
          {"early_stopping_patience", early_stopping_patience},
          {"save_every", save_every},
          {"keep_checkpoints", keep_checkpoints},
          {"seed", seed},
          {"threads", threads},
          {"device", device},
          {"mixed_precision", mixed_precision},
          {"base_dtype", base_dtype},
          {"save_every_minutes", save_every_minutes},
          {"beta", beta},
          {"loss_type", loss_type},
          {"label_smoothing", label_smoothing},
          {"precompute_ref_log_probs", precompute_ref_log_probs},
          {"desirable_weight", desirable_weight},
          {"undesirable_weight", undesirable_weight},
          {"init_adapter", init_adapter},
          {"rewards", rewards},
          {"reward_model", reward_model},
          {"num_generations", num_generations},
          {"max_new_tokens", max_new_tokens},
          {"temperature", temperature},
          {"top_p", top_p},
          {"clip_epsilon", clip_epsilon},
          {"ppo_epochs", ppo_epochs},
          {"gae_gamma", gae_gamma},
          {"gae_lambda", gae_lambda},
          {"value_model", value_model},
          {"value_coef", value_coef},
          {"value_clip", value_clip},
          {"kl_target", kl_target},
          {"kl_horizon", kl_horizon}};
}

}  // namespace hone
