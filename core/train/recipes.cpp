// The recipe table (see recipes.h). A new recipe is one row here plus its file (its Recipe class,
// keys and checks), tests and docs/run-config.md.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/recipes.h"

#include <algorithm>

#include "common/error.h"

namespace hone {

// Declared in each recipe's file: its code, the keys it reads and their checks.
std::unique_ptr<Recipe> make_sft_recipe();
std::unique_ptr<Recipe> make_cpt_recipe();
std::unique_ptr<Recipe> make_dpo_recipe();
std::unique_ptr<Recipe> make_orpo_recipe();
std::unique_ptr<Recipe> make_kto_recipe();
std::unique_ptr<Recipe> make_reward_recipe();
std::unique_ptr<Recipe> make_grpo_recipe();
std::unique_ptr<Recipe> make_ppo_recipe();
std::vector<ConfigKey> sft_keys();
std::vector<ConfigKey> cpt_keys();
std::vector<ConfigKey> dpo_keys();
std::vector<ConfigKey> orpo_keys();
std::vector<ConfigKey> kto_keys();
std::vector<ConfigKey> grpo_keys();
std::vector<ConfigKey> ppo_keys();
void check_sft(const RunConfig& c, const std::string& where);
void check_dpo(const RunConfig& c, const std::string& where);
void check_orpo(const RunConfig& c, const std::string& where);
void check_kto(const RunConfig& c, const std::string& where);
void check_grpo(const RunConfig& c, const std::string& where);
void check_ppo(const RunConfig& c, const std::string& where);

namespace {

using J = nlohmann::json;

// The demo's base is tiny and trained from scratch: short sequences, no adapter dropout and a
// short warm-up make its runs converge in minutes (hone-cli demo; the Train page on that model).
Preset demo(J specific, std::map<std::string, J> per_method = {}) {
  Preset p;
  p.all = {{"max_seq_len", 96}, {"lora", {{"dropout", 0.0}}}, {"schedule", "cosine"}, {"warmup_steps", 10}};
  p.all.update(specific);
  p.per_method = std::move(per_method);
  return p;
}

const J kExactReward = J::array({{{"type", "exact"}, {"weight", 1.0}}});
const std::vector<std::string> kAllMethods = {"lora", "qlora", "full"};
const std::vector<std::string> kAdapterMethods = {"lora", "qlora"};
const char* kPreferenceData = "preference pairs (prompt/chosen/rejected rows, or candidates labelled on the Label page)";
const char* kChatData = "instruction or chat data";

std::vector<RecipeInfo> make_table() {
  std::vector<RecipeInfo> t;
  auto row = [&](RecipeInfo r) { t.push_back(std::move(r)); };
  // name, label, summary; data kind and its description; pairs, reference, rl; methods and why
  // not the others; keys and check; presets; plot hints; code.
  row({"sft", "SFT", "instruction tuning, with the loss on the assistant's replies",
       "chat", kChatData, false, false, false, kAllMethods, "", sft_keys(), check_sft,
       {},
       demo({{"lr", 3e-3}, {"batch_size", 16}, {"max_steps", 800}, {"max_grad_norm", 1.0}}, {{"full", {{"lr", 5e-4}}}}),
       {}, make_sft_recipe});
  // On the demo's base, CPT is how its pre-training ran (one document per sequence, a constant rate).
  row({"cpt", "Continued pre-training", "domain adaptation, with the loss on every token of raw text packed into blocks",
       "text", "a raw-text dataset", false, false, false, kAllMethods, "", cpt_keys(), nullptr,
       {},
       demo({{"max_seq_len", 128}, {"batch_size", 32}, {"lr", 3e-3}, {"warmup_steps", 20}, {"schedule", "constant"},
             {"packing", false}, {"max_steps", 800}}),
       {}, make_cpt_recipe});
  // Preference alignment moves a tuned model a little: 5e-5 (SFT's 2e-4 overshoots).
  row({"dpo", "DPO", "direct preference optimisation against a reference model (sigmoid, IPO, hinge or robust loss)",
       "preference", kPreferenceData, true, true, false, kAllMethods, "", dpo_keys(), check_dpo,
       {{{"lr", 5e-5}}},
       demo({{"lr", 2e-3}, {"batch_size", 8}, {"max_steps", 500}, {"chat_template", "chatml"}}),
       {"rewards/margins", "rewards/accuracies"}, make_dpo_recipe});
  row({"orpo", "ORPO", "odds-ratio preference optimisation, SFT on the chosen answers plus an odds-ratio term (no reference)",
       "preference", kPreferenceData, true, false, false, kAllMethods, "", orpo_keys(), check_orpo,
       {{{"lr", 5e-5}}},
       demo({{"lr", 2e-3}, {"batch_size", 8}, {"max_steps", 500}, {"chat_template", "chatml"}}),
       {"rewards/margins", "rewards/accuracies"}, make_orpo_recipe});
  row({"kto", "KTO", "Kahneman-Tversky optimisation on thumbs-up/down ratings (or pairs taken apart)",
       "preference", "thumbs-up/down ratings or preference pairs (prompt/chosen/rejected rows, labelled candidates)", true,
       true, false, kAllMethods, "", kto_keys(), check_kto,
       {{{"lr", 5e-5}}},
       demo({{"lr", 2e-3}, {"batch_size", 8}, {"max_steps", 500}, {"chat_template", "chatml"}}),
       {"rewards/chosen", "rewards/rejected", "kl"}, make_kto_recipe});
  // A reward model's score head starts from scratch: SFT-like rates (TRL's LoRA examples use 1e-4).
  row({"reward", "Reward model", "a Bradley-Terry reward model, a score head on the last token (for PPO, GRPO or ranking)",
       "preference", kPreferenceData, true, false, false, kAdapterMethods, "its score head is saved with the adapter", {},
       nullptr,
       {{{"lr", 1e-4}}},
       demo({{"lr", 2e-3}, {"batch_size", 8}, {"max_steps", 200}}),
       {"accuracy", "margin"}, make_reward_recipe});
  // GRPO: small steps on a policy that already answers sometimes; no KL by default (TRL's too).
  // The demo samples 64 completions a step: with 4 prompts, seed 0 never found the repeat skill.
  // 400 steps: the sampled reward was still rising at step 300 in the runs looked at (docs/reliability.md).
  // The demos' cosine schedule, as PPO's (a constant one before): at a constant lr GRPO lost a
  // test prompt on a policy that started right on all of them (oneDNN seed 4, 1.00 -> 0.99).
  row({"grpo", "GRPO", "group relative policy optimisation over completions sampled per prompt, scored by rules or a reward model",
       "chat", "prompts (with reference answers) from instruction or chat data", false, false, true, kAdapterMethods,
       "the reference is the adapters switched off", grpo_keys(), check_grpo,
       {{{"lr", 1e-5}, {"beta", 0.0}, {"batch_size", 4}, {"rewards", kExactReward}}},
       demo({{"lr", 5e-4}, {"max_steps", 400}, {"beta", 0.0}, {"num_generations", 8}, {"batch_size", 8},
             {"max_new_tokens", 12}, {"temperature", 1.0}, {"rewards", kExactReward}}),
       {"reward", "kl"}, make_grpo_recipe});
  // PPO: the same small steps, several updates per batch, held near the reference by a KL term.
  // The demo's 16 prompts x 2 completions and 2 updates per batch give twice the rollouts of 8 x 4
  // for the same update cost; the rare skill needs the exploration (docs/rlhf.md). The learning rate
  // anneals (the demos' cosine schedule; a constant one before): held at 3e-4, single updates kept
  // moving a policy that was already right (approx_kl 0.1-0.5 within a step) until one cost it the
  // repeat skill (oneDNN seed 4, 1.00 -> 0.79).
  row({"ppo", "PPO", "proximal policy optimisation with a value head, GAE and a KL penalty against the reference",
       "chat", "prompts (with reference answers) from instruction or chat data", false, false, true, kAdapterMethods,
       "the reference is the adapters switched off", ppo_keys(), check_ppo,
       {{{"lr", 1e-5}, {"beta", 0.05}, {"batch_size", 8}, {"num_generations", 2}, {"rewards", kExactReward}}},
       demo({{"lr", 3e-4}, {"max_steps", 400}, {"beta", 0.05}, {"num_generations", 2}, {"batch_size", 16}, {"ppo_epochs", 2},
             {"value_model", "head"}, {"max_new_tokens", 12}, {"temperature", 1.0},
             {"rewards", kExactReward}}),
       {"reward", "kl", "value_loss"}, make_ppo_recipe});
  return t;
}

}  // namespace

bool RecipeInfo::allows(const std::string& method) const {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

bool RecipeInfo::reads_kind(const std::string& kind) const {
  return kind == data_kind || (data_kind == "preference" && kind == "candidates");
}

const std::vector<RecipeInfo>& recipe_table() {
  static const std::vector<RecipeInfo> t = make_table();
  return t;
}

const RecipeInfo* find_recipe(const std::string& name) {
  for (const auto& r : recipe_table())
    if (r.name == name) return &r;
  return nullptr;
}

const RecipeInfo& recipe_info(const std::string& name) {
  if (const RecipeInfo* r = find_recipe(name)) return *r;
  throw Error("unknown recipe \"" + name + "\" (" + recipe_names() + ")");
}

std::string recipe_names(const std::string& sep, const std::string& last_sep) {
  std::string s;
  const auto& t = recipe_table();
  for (size_t i = 0; i < t.size(); ++i) s += (i == 0 ? "" : i + 1 == t.size() ? last_sep : sep) + t[i].name;
  return s;
}

const std::vector<MethodInfo>& method_table() {
  static const std::vector<MethodInfo> t = {
      {"lora", "LoRA", "low-rank adapters on a frozen base"},
      {"qlora", "QLoRA", "LoRA over a 4-bit NF4 base"},
      {"full", "Full fine-tuning", "every weight trains"},
  };
  return t;
}

const MethodInfo* find_method(const std::string& name) {
  for (const auto& m : method_table())
    if (m.name == name) return &m;
  return nullptr;
}

std::string method_labels(const std::vector<std::string>& methods) {
  std::string s;
  for (size_t i = 0; i < methods.size(); ++i) {
    const MethodInfo* m = find_method(methods[i]);
    s += (i == 0 ? "" : i + 1 == methods.size() ? " or " : ", ") + (m ? m->label : methods[i]);
  }
  return s;
}

RunConfig preset_run_config(const std::string& recipe, const std::string& method, bool on_demo) {
  const RecipeInfo& r = recipe_info(recipe);
  RunConfig c = default_run_config(method);
  c.recipe = recipe;
  c.name.clear();
  const std::string where = "the " + recipe + " preset";
  for (const Preset* p : {&r.preset, on_demo ? &r.demo_preset : nullptr}) {
    if (!p) continue;
    apply_config_json(c, p->all, where);
    if (auto it = p->per_method.find(method); it != p->per_method.end()) apply_config_json(c, it->second, where);
  }
  return c;
}

}  // namespace hone
