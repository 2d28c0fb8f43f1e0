// The one table of training recipes (as model/arch.h is for architectures): per recipe its name,
// label, the data it trains on, what it needs (pairs, a reference, sampling), the methods it allows,
// the config keys it reads and their checks (declared in the recipe's own file), its presets as
// data, its plot hints and the factory of its code (train/recipe.h). make_recipe, config checks,
// the memory plan, the Train page, the demo and the help texts all read it. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/run_config.h"

namespace hone {

class Recipe;

// Run-config keys over default_run_config(method): `all` for every method, then the method's own.
struct Preset {
  nlohmann::json all = nlohmann::json::object();
  std::map<std::string, nlohmann::json> per_method;
};

struct RecipeInfo {
  std::string name;       // the config's "recipe"
  std::string label;      // short, for lists: "DPO"
  std::string summary;    // one line: what it trains, for help texts and tooltips
  std::string data_kind;  // the workspace dataset kind it trains on: chat | text | preference
  std::string data_help;  // that data in words, for messages: "preference pairs (prompt, chosen, rejected) ..."
  bool pairs = false;     // an example is two sequences (the memory plan and estimates count both)
  bool reference = false;  // the loss reads a reference model's log-probs for every example (a frozen
                           // copy under full fine-tuning; grpo/ppo's KL reference is the adapters off)
  bool rl = false;         // samples completions from the policy: num_generations sequences a prompt
  std::vector<std::string> methods;  // lora, qlora, full: those it trains with
  std::string methods_why;           // why the others are not allowed ("" when all are)
  std::vector<ConfigKey> keys;       // what it reads besides common_config_keys()
  void (*check)(const RunConfig& c, const std::string& where) = nullptr;  // its keys' values
  Preset preset;       // general settings over the method's defaults
  Preset demo_preset;  // on the demo's small base, as `hone-cli demo` trains it
  std::vector<std::string> plot_hints;  // metrics worth plotting beside the loss
  std::unique_ptr<Recipe> (*make)() = nullptr;

  bool allows(const std::string& method) const;
  // Whether a workspace dataset of this kind is data for it (labelled candidates are preference pairs).
  bool reads_kind(const std::string& kind) const;
};

const std::vector<RecipeInfo>& recipe_table();
// Throws hone::Error listing the recipes when `name` is none of them.
const RecipeInfo& recipe_info(const std::string& name);
const RecipeInfo* find_recipe(const std::string& name);
// "sft, cpt, dpo, orpo, kto, reward, grpo or ppo" (last_sep between the last two).
std::string recipe_names(const std::string& sep = ", ", const std::string& last_sep = " or ");

// The training methods, in the order front ends offer them.
struct MethodInfo {
  std::string name;   // lora | qlora | full
  std::string label;  // "LoRA"
  std::string summary;
};
const std::vector<MethodInfo>& method_table();
const MethodInfo* find_method(const std::string& name);
// "LoRA or QLoRA" for {"lora", "qlora"}.
std::string method_labels(const std::vector<std::string>& methods);

// The settings a front end starts from: the method's defaults, the recipe and its preset (the demo
// preset on the demo's base). Name, model and data are left empty.
RunConfig preset_run_config(const std::string& recipe, const std::string& method, bool demo = false);

}  // namespace hone
