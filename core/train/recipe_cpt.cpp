// Continued pre-training recipe: raw documents, packed into blocks of max_seq_len with EOS between
// them (or one document per sequence with packing: false), the loss on every token.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "data/examples.h"
#include "train/token_recipe.h"

namespace hone {
namespace {

class CptRecipe : public TokenRecipe {
 public:

 protected:
  std::vector<Sequence> build(const RunConfig& cfg, const Tokenizer& tok, const std::vector<std::string>& files,
                              TokenizeStats* st, const LogFn&) override {
    std::vector<std::string> docs;
    for (const auto& f : files) {
      auto d = read_documents(f);
      docs.insert(docs.end(), d.begin(), d.end());
    }
    return pack_documents(tok, docs, cfg.max_seq_len, st, cfg.packing);
  }
};

}  // namespace

std::unique_ptr<Recipe> make_cpt_recipe() { return std::make_unique<CptRecipe>(); }

std::vector<ConfigKey> cpt_keys() {
  return {config_field<&RunConfig::packing>("packing", "concatenate documents into full blocks (false: one document per sequence)")};
}

}  // namespace hone
