// The recipe factory (over the recipe table) and small pieces every recipe uses.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/recipe.h"

#include <ATen/autocast_mode.h>

#include "common/error.h"
#include "train/recipes.h"

namespace hone {

std::unique_ptr<Recipe> make_recipe(const std::string& name) { return recipe_info(name).make(); }

ChatTemplate chat_template_for(const RunConfig& cfg, const Tokenizer& tok) {
  ChatTemplate t = resolve_chat_template(tok.config(), cfg.chat_template);
  t.keep_final_thinking = cfg.thinking == "keep_final";
  return t;
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
