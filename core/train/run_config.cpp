// Run config parsing: the keys every run reads, strict keys and types, method defaults, the
// common checks (then the recipe's own, train/recipes.h) and relative paths.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/run_config.h"

#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"
#include "peft/lora_config.h"
#include "train/recipes.h"

namespace hone {

namespace detail {
void wrong_config_type(const std::string& where, const std::string& key) {
  throw Error(where + ": \"" + key + "\" has the wrong type");
}
}  // namespace detail

namespace {

// A list of files, or one file as a string.
std::vector<std::string> string_list(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (v.is_string()) return {v.get<std::string>()};
  try {
    return v.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    detail::wrong_config_type(where, key);
  }
}

const std::set<std::string> kLoraKeys = {"r", "alpha", "dropout", "targets", "rslora"};

void read_lora(RunConfig& c, const nlohmann::json& l, const std::string& where, const std::string&) {
  if (!l.is_object()) throw Error(where + ": \"lora\" must be an object");
  for (auto it = l.begin(); it != l.end(); ++it)
    if (!kLoraKeys.count(it.key())) throw Error(where + ": unknown key \"lora." + it.key() + "\"");
  try {
    if (l.contains("r") && !json_integer(l["r"], 1, int64_t{1} << 20, &c.lora.r))
      throw Error(where + ": \"lora.r\" must be an integer from 1 to 1048576");
    if (l.contains("alpha")) c.lora.alpha = l["alpha"].get<double>();
    if (l.contains("dropout")) c.lora.dropout = l["dropout"].get<double>();
    if (l.contains("rslora")) c.lora.rslora = l["rslora"].get<bool>();
    if (l.contains("targets"))
      c.lora.targets = l["targets"].is_string() ? std::vector<std::string>{l["targets"].get<std::string>()}
                                                : l["targets"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": a \"lora\" field has the wrong type");
  }
  expand_lora_targets(c.lora.targets);  // validates the names
}

std::vector<ConfigKey> make_common_keys() {
  using C = RunConfig;
  ConfigKey train_data{"train_data", "training data: files or dataset:NAME (a workspace dataset), a list or one string", "",
                       [](C& c, const nlohmann::json& v, const std::string& w, const std::string& k) { c.train_data = string_list(v, w, k); },
                       [](const C& c) { return nlohmann::json(c.train_data); }};
  ConfigKey eval_data{"eval_data", "held-out data, as train_data (default: eval_fraction of it)", "",
                      [](C& c, const nlohmann::json& v, const std::string& w, const std::string& k) { c.eval_data = string_list(v, w, k); },
                      [](const C& c) { return nlohmann::json(c.eval_data); }};
  ConfigKey eval_suites{"eval_suites", "evaluation suites scored during the run (docs/evaluation.md): dataset:NAME or files, a list or one string", "",
                        [](C& c, const nlohmann::json& v, const std::string& w, const std::string& k) { c.eval_suites = string_list(v, w, k); },
                        [](const C& c) { return nlohmann::json(c.eval_suites); }};
  ConfigKey lora{"lora", "LoRA settings: r, alpha, dropout, targets (all-linear or projection names), rslora", "",
                 read_lora,
                 [](const C& c) {
                   return nlohmann::json{{"r", c.lora.r}, {"alpha", c.lora.alpha}, {"dropout", c.lora.dropout},
                                         {"targets", c.lora.targets}, {"rslora", c.lora.rslora}};
                 }};
  return {
      config_field<&C::name>("name", "run name; the run's folder is runs/<name>-<date-time>"),
      config_field<&C::base_model>("base_model", "Hugging Face model folder (config.json, safetensors, tokenizer)"),
      config_field<&C::method>("method", "lora | qlora | full"),
      config_field<&C::recipe>("recipe", "the training recipe (docs/run-config.md lists them)"),
      train_data,
      eval_data,
      config_field<&C::data_format>("data_format", "auto, or the row format of the data files"),
      config_field<&C::chat_template>("chat_template", "auto (the checkpoint's own), checkpoint, or a family name"),
      config_field<&C::thinking>("thinking", "replies with <think>...</think> or reasoning_content: template (what the chat "
                                             "template prints) | keep_final (the final reply kept whole, thinking included)"),
      config_field<&C::max_seq_len>("max_seq_len", "longest sequence in tokens; longer examples are cut"),
      config_field<&C::epochs>("epochs", "passes over the data when max_steps is 0"),
      config_field<&C::max_steps>("max_steps", "optimizer steps (0: from epochs)"),
      config_field<&C::batch_size>("batch_size", "examples per micro-batch (per process)"),
      config_field<&C::grad_accum>("grad_accum", "micro-batches per optimizer step"),
      config_field<&C::lr>("lr", "peak learning rate"),
      config_field<&C::weight_decay>("weight_decay", "AdamW decay (not on norms and biases)"),
      config_field<&C::adam_beta1>("adam_beta1", "AdamW beta1"),
      config_field<&C::adam_beta2>("adam_beta2", "AdamW beta2"),
      config_field<&C::adam_eps>("adam_eps", "AdamW epsilon"),
      config_field<&C::schedule>("schedule", "constant | linear | cosine, after warm-up"),
      config_field<&C::warmup_steps>("warmup_steps", "steps of linear warm-up"),
      config_field<&C::warmup_ratio>("warmup_ratio", "warm-up as a share of the steps, when warmup_steps is 0"),
      config_field<&C::max_grad_norm>("max_grad_norm", "gradient clipping"),
      lora,
      config_field<&C::gradient_checkpointing>("gradient_checkpointing", "recompute each layer in backward"),
      config_field<&C::mlp_recompute>("mlp_recompute", "run the MLP's up projection again in backward"),
      config_field<&C::bf16_activations>("bf16_activations", "auto (over a bf16 base: attention's products in bf16, and SwiGLU's "
                                                             "and attention's inputs kept in bf16 for backward) | off (fp32)"),
      config_field<&C::bucket_by_length>("bucket_by_length", "batch examples of similar length"),
      config_field<&C::eval_every>("eval_every", "evaluate every N steps (and at the end)"),
      config_field<&C::eval_fraction>("eval_fraction", "share of train_data held out when eval_data is empty"),
      config_field<&C::early_stopping_patience>("early_stopping_patience", "stop after N evaluations without improvement"),
      eval_suites,
      config_field<&C::eval_suites_every>("eval_suites_every", "score eval_suites every N steps as well as at the end (0: the end only)"),
      config_field<&C::eval_max_new_tokens>("eval_max_new_tokens", "answer length limit for generate suites in eval_suites"),
      config_field<&C::save_every>("save_every", "checkpoint every N steps"),
      config_field<&C::keep_checkpoints>("keep_checkpoints", "checkpoints kept"),
      config_field<&C::seed>("seed", "random seed"),
      config_field<&C::threads>("threads", "intra-op threads (0: the default)"),
      config_field<&C::device>("device", "auto | cpu | cuda"),
      config_field<&C::mixed_precision>("mixed_precision", "auto | bf16 | no (bf16 autocast on CUDA)"),
      config_field<&C::base_dtype>("base_dtype", "auto | bf16 | f32: storage of the frozen base"),
      config_field<&C::save_every_minutes>("save_every_minutes", "checkpoint also every N minutes (0: off)"),
      config_field<&C::init_adapter>("init_adapter", "start from this PEFT adapter (dpo/kto: it is the reference)"),
  };
}

std::string resolve(const std::string& p, const std::string& base) {
  // "dataset:NAME" names a workspace dataset; the front end exports it before training.
  if (p.empty() || p[0] == '/' || base.empty() || p.rfind("dataset:", 0) == 0) return p;
  return join_path(base, p);
}

}  // namespace

const std::vector<ConfigKey>& common_config_keys() {
  static const std::vector<ConfigKey> keys = make_common_keys();
  return keys;
}

std::vector<const ConfigKey*> all_config_keys() {
  std::vector<const ConfigKey*> out;
  std::set<std::string> seen;
  auto add = [&](const std::vector<ConfigKey>& ks) {
    for (const auto& k : ks)
      if (seen.insert(k.name).second) out.push_back(&k);
  };
  add(common_config_keys());
  for (const auto& r : recipe_table()) add(r.keys);
  return out;
}

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

void apply_config_json(RunConfig& c, const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": a run config is a JSON object");
  const auto keys = all_config_keys();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const ConfigKey* key = nullptr;
    for (const ConfigKey* k : keys)
      if (k->name == it.key()) key = k;
    if (!key) throw Error(where + ": unknown key \"" + it.key() + "\"");
    key->read(c, it.value(), where, it.key());
  }
}

void check_run_config(const RunConfig& c, const std::string& where) {
  if (c.method != "lora" && c.method != "qlora" && c.method != "full") throw Error(where + ": \"method\" must be lora, qlora or full");
  if (c.bf16_activations != "auto" && c.bf16_activations != "off")
    throw Error(where + ": \"bf16_activations\" must be \"auto\" or \"off\"");
  if (c.base_dtype != "auto" && c.base_dtype != "bf16" && c.base_dtype != "f32")
    throw Error(where + ": \"base_dtype\" must be \"auto\", \"bf16\" or \"f32\"");
  if (c.base_dtype == "bf16" && c.method == "full")
    throw Error(where + ": \"base_dtype\": \"bf16\" stores the frozen base; full fine-tuning trains every weight in fp32 (use lora or qlora)");
  if (c.mixed_precision != "auto" && c.mixed_precision != "bf16" && c.mixed_precision != "no")
    throw Error(where + ": \"mixed_precision\" must be \"auto\", \"bf16\" or \"no\"");
  const RecipeInfo* r = find_recipe(c.recipe);
  if (!r) throw Error(where + ": \"recipe\" must be " + recipe_names());
  if (!r->allows(c.method))
    throw Error(where + ": " + c.recipe + " trains " + method_labels(r->methods) + (r->methods.size() > 1 ? " adapters" : "") +
                ", not " + c.method + " (" + r->methods_why + ")");
  if (r->check) r->check(c, where);
  if (c.save_every_minutes < 0) throw Error(where + ": \"save_every_minutes\" must not be negative");
  if (!c.init_adapter.empty() && c.method == "full")
    throw Error(where + ": \"init_adapter\" needs method lora or qlora (full fine-tuning has no adapter)");
  if (c.thinking != "template" && c.thinking != "keep_final")
    throw Error(where + ": \"thinking\" must be template or keep_final");
  if (c.schedule != "constant" && c.schedule != "linear" && c.schedule != "cosine")
    throw Error(where + ": \"schedule\" must be constant, linear or cosine");
  if (c.batch_size <= 0 || c.grad_accum <= 0 || c.max_seq_len < 8 || c.lr <= 0 || c.epochs <= 0 || c.lora.r <= 0)
    throw Error(where + ": batch_size, grad_accum, lr, epochs and lora.r must be positive and max_seq_len at least 8");
  if (c.eval_fraction < 0 || c.eval_fraction >= 1) throw Error(where + ": \"eval_fraction\" must be in [0, 1)");
  if (c.eval_suites_every < 0 || c.eval_max_new_tokens < 1)
    throw Error(where + ": \"eval_suites_every\" must not be negative and \"eval_max_new_tokens\" must be positive");
}

void validate_run_config(const RunConfig& c, const std::string& where) {
  if (c.base_model.empty()) throw Error(where + ": \"base_model\" is required");
  if (c.train_data.empty()) throw Error(where + ": \"train_data\" is required");
  check_run_config(c, where);
}

RunConfig parse_run_config(const nlohmann::json& j, const std::string& where, const std::string& base_dir) {
  if (!j.is_object()) throw Error(where + ": a run config is a JSON object");
  std::string method = "lora";
  if (j.contains("method") && j["method"].is_string()) method = j["method"].get<std::string>();
  if (method != "lora" && method != "qlora" && method != "full") throw Error(where + ": \"method\" must be lora, qlora or full");
  RunConfig c = default_run_config(method);
  apply_config_json(c, j, where);
  validate_run_config(c, where);
  // A hub name (ORG/NAME[@REV]) that is not a folder beside the config stays a name: the loaders
  // find it in the hub cache, and the run's config and PEFT adapter record the name people share
  // rather than this machine's cache path. It must be cached now (this throws, naming the download).
  if (HubRef h; parse_hub_ref(c.base_model, &h) && !is_directory(resolve(c.base_model, base_dir)))
    resolve_model_dir(c.base_model);
  else
    c.base_model = resolve(c.base_model, base_dir);
  for (auto& p : c.train_data) p = resolve(p, base_dir);
  for (auto& p : c.eval_data) p = resolve(p, base_dir);
  if (!c.init_adapter.empty()) c.init_adapter = resolve(c.init_adapter, base_dir);
  if (!c.reward_model.empty()) c.reward_model = resolve(c.reward_model, base_dir);
  return c;
}

RunConfig load_run_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  auto slash = path.rfind('/');
  return parse_run_config(j, path, slash == std::string::npos ? "" : path.substr(0, slash));
}

nlohmann::json RunConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const ConfigKey* k : all_config_keys()) j[k->name] = k->write(*this);
  return j;
}

}  // namespace hone
