// RewardScorer (see reward_scorer.h): the run's base with its adapter and score head, in eval mode.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/reward_scorer.h"

#include "common/error.h"
#include "common/files.h"
#include "data/pairs.h"
#include "model/reward_head.h"
#include "train/batches.h"
#include "train/recipe.h"
#include "train/run_config.h"
#include "train/run_output.h"

namespace hone {

struct RewardScorer::Impl {
  RunModel rm;
  std::unique_ptr<Tokenizer> tok;
  ChatTemplate format = ChatFormat::ChatML;
  int64_t max_len = 512;
  int32_t pad = 0;

  std::vector<double> run(const std::vector<Sequence>& seqs, int batch) {
    std::vector<double> out;
    at::NoGradGuard ng;
    for (size_t s = 0; s < seqs.size(); s += static_cast<size_t>(batch)) {
      std::vector<size_t> idx;
      for (size_t i = s; i < std::min(seqs.size(), s + static_cast<size_t>(batch)); ++i) idx.push_back(i);
      Batch b = collate(seqs, idx, pad);
      const auto dev = rm.lm.model->output_weight().device();
      at::Tensor r = reward_scores(rm.lm.model, b.ids.to(dev), b.attention_mask.to(dev)).to(at::kCPU);  // [n]
      for (int64_t i = 0; i < r.size(0); ++i) out.push_back(r[i].item<double>());
    }
    return out;
  }
};

RewardScorer::RewardScorer(const std::string& run_dir) : impl_(std::make_unique<Impl>()) {
  impl_->rm = load_run_output(run_dir);
  if (!has_score_head(impl_->rm.lm.model))
    throw file_error(run_dir, "is not a reward model (its adapter has no score head; train one with recipe \"reward\")");
  impl_->rm.lm.model->eval();
  impl_->tok = load_tokenizer(impl_->rm.base_model);
  // The run's own settings: its chat template and sequence length.
  std::string cfg_dir = run_dir;
  if (!file_exists(join_path(cfg_dir, "config.json")) && file_exists(join_path(run_dir, "trainer_state.json")))
    cfg_dir = run_dir + "/../..";
  RunConfig cfg = load_run_config(join_path(cfg_dir, "config.json"));
  impl_->format = chat_template_for(cfg, *impl_->tok);
  impl_->max_len = cfg.max_seq_len;
  impl_->pad = impl_->tok->pad_id() >= 0 ? impl_->tok->pad_id() : std::max(impl_->tok->eos_id(), 0);
}

RewardScorer::~RewardScorer() = default;

const ChatTemplate& RewardScorer::format() const { return impl_->format; }

double RewardScorer::score_text(const std::string& text) {
  Sequence s;
  for (int32_t id : impl_->tok->encode(text, true).ids) s.ids.push_back(id);
  if (s.ids.empty()) throw Error("reward score: the text gives no tokens");
  if (static_cast<int64_t>(s.ids.size()) > impl_->max_len) s.ids.resize(static_cast<size_t>(impl_->max_len));
  s.loss_mask.assign(s.ids.size(), 0);
  return impl_->run({s}, 1).at(0);
}

double RewardScorer::score(const std::vector<ChatMessage>& prompt, const std::vector<ChatMessage>& completion) {
  return score_many({{prompt, completion}}, 1).at(0);
}

std::vector<double> RewardScorer::score_many(
    const std::vector<std::pair<std::vector<ChatMessage>, std::vector<ChatMessage>>>& items, int batch) {
  std::vector<Sequence> seqs;
  for (const auto& [p, c] : items) seqs.push_back(tokenize_completion(*impl_->tok, impl_->format, p, c, impl_->max_len));
  return impl_->run(seqs, std::max(1, batch));
}

}  // namespace hone
