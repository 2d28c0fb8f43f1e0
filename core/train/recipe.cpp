// The recipe registry and small pieces every recipe uses.
#include "train/recipe.h"

#include <ATen/autocast_mode.h>

#include "common/error.h"

namespace hone {

std::unique_ptr<Recipe> make_sft_recipe();
std::unique_ptr<Recipe> make_cpt_recipe();
std::unique_ptr<Recipe> make_dpo_recipe();
std::unique_ptr<Recipe> make_orpo_recipe();
std::unique_ptr<Recipe> make_kto_recipe();
std::unique_ptr<Recipe> make_reward_recipe();
std::unique_ptr<Recipe> make_grpo_recipe();
std::unique_ptr<Recipe> make_ppo_recipe();

std::unique_ptr<Recipe> make_recipe(const std::string& name) {
  if (name == "sft") return make_sft_recipe();
  if (name == "cpt") return make_cpt_recipe();
  if (name == "dpo") return make_dpo_recipe();
  if (name == "orpo") return make_orpo_recipe();
  if (name == "kto") return make_kto_recipe();
  if (name == "reward") return make_reward_recipe();
  if (name == "grpo") return make_grpo_recipe();
  if (name == "ppo") return make_ppo_recipe();
  throw Error("unknown recipe \"" + name + "\" (sft, cpt, dpo, orpo, kto, reward, grpo or ppo)");
}

ChatTemplate chat_template_for(const RunConfig& cfg, const Tokenizer& tok) {
  return resolve_chat_template(tok.config(), cfg.chat_template);
}

CudaAutocast::CudaAutocast(bool on) : on_(on) {
  if (!on_) return;
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
  at::autocast::increment_nesting();
}

CudaAutocast::~CudaAutocast() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // the cached bf16 weight copies
  at::autocast::set_enabled(false);
}

}  // namespace hone
