// SFT recipe: instruction tuning on conversations rendered with the chat template, with the loss on
// assistant replies (or on all tokens with loss_on: all).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "data/examples.h"
#include "train/token_recipe.h"

namespace hone {
namespace {

class SftRecipe : public TokenRecipe {
 public:

 protected:
  std::vector<Sequence> build(const RunConfig& cfg, const Tokenizer& tok, const std::vector<std::string>& files,
                              TokenizeStats* st, const LogFn& log) override {
    ExampleFormat fmt;
    if (!example_format_from_name(cfg.data_format, &fmt)) throw Error("unknown data_format \"" + cfg.data_format + "\"");
    std::vector<Conversation> convs;
    for (const auto& f : files) {
      auto c = read_conversations(f, fmt);
      convs.insert(convs.end(), c.begin(), c.end());
    }
    const ChatTemplate cf = chat_template_for(cfg, tok);
    auto out = tokenize_conversations(tok, cf, convs, cfg.max_seq_len, cfg.loss_on == "assistant", st);
    if (log) log("chat template: " + cf.describe());
    return out;
  }
};

}  // namespace

std::unique_ptr<Recipe> make_sft_recipe() { return std::make_unique<SftRecipe>(); }

std::vector<ConfigKey> sft_keys() {
  return {config_field<&RunConfig::loss_on>("loss_on", "assistant (the loss on the replies) | all (on every token)")};
}

void check_sft(const RunConfig& c, const std::string& where) {
  if (c.loss_on != "assistant" && c.loss_on != "all") throw Error(where + ": \"loss_on\" must be assistant or all");
}

}  // namespace hone
