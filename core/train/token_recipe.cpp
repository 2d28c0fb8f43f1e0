// Next-token recipes' shared pieces (see token_recipe.h). The loss of a step is the token mean over
// all its micro-batches (not a mean of means).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/token_recipe.h"

#include <cmath>

#include "common/error.h"
#include "common/files.h"
#include "distributed/process_group.h"
#include "train/loss.h"

namespace hone {

at::Tensor batch_loss_sum(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast) {
  CudaAutocast ac(autocast);
  return next_token_loss_sum(m, b.ids.to(dev), b.attention_mask.to(dev), b.labels.to(dev));
}

void TokenRecipe::prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) {
  for (const auto& f : cfg.train_data)
    if (!file_exists(f) && !is_directory(f)) throw file_error(f, "training data file not found");
  for (const auto& f : cfg.eval_data)
    if (!file_exists(f) && !is_directory(f)) throw file_error(f, "evaluation data file not found");
  train_ = build(cfg, tok, cfg.train_data, &stats_, log);
  if (!cfg.eval_data.empty()) {
    TokenizeStats es;
    eval_ = build(cfg, tok, cfg.eval_data, &es, log);
  }
  hold_out(train_, eval_, cfg.eval_fraction, cfg.seed);
  if (train_.empty()) throw Error("no training sequences left (all dropped or held out)");
}

std::vector<int64_t> TokenRecipe::train_lengths() const {
  std::vector<int64_t> l;
  l.reserve(train_.size());
  for (const auto& s : train_) l.push_back(static_cast<int64_t>(s.ids.size()));
  return l;
}

std::string TokenRecipe::data_summary() const {
  return std::to_string(train_.size()) + " training sequences (" + std::to_string(stats_.loss_tokens) + " loss tokens, " +
         std::to_string(stats_.truncated) + " truncated, " + std::to_string(stats_.dropped) + " dropped), " +
         std::to_string(eval_.size()) + " evaluation sequences";
}

std::vector<double> TokenRecipe::counts(const std::vector<size_t>& idx) const {
  double n = 0;
  for (auto i : idx) {
    const auto& m = train_[i].loss_mask;
    for (auto v : m) n += v;
  }
  return {n};
}

int64_t TokenRecipe::tokens(const std::vector<size_t>& idx) const {
  int64_t n = 0;
  for (auto i : idx) n += static_cast<int64_t>(train_[i].ids.size());
  return n;
}

MicroLoss TokenRecipe::loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) {
  Batch b = collate(train_, idx, env.pad_id);
  MicroLoss out;
  if (b.label_tokens == 0) return out;  // nothing to learn in this micro-batch
  auto l = batch_loss_sum(env.model, b, env.dev, env.autocast);
  out.loss = l / std::max(1.0, step_counts.at(0));
  return out;
}

Scalars TokenRecipe::evaluate(RecipeEnv& env, int64_t batch_size) {
  at::NoGradGuard ng;
  env.model->eval();
  BatchPlan plan(std::vector<int64_t>(eval_.size(), 0), batch_size, 0, false);
  // Data-parallel: rank r scores batches r, r + world, ...; the loss sums and target counts are
  // added over the ranks, so each rank does 1/world of the work and all get the whole set's loss.
  const int64_t rank = env.group ? env.group->rank() : 0, world = env.group ? env.group->world_size() : 1;
  if (world > 1 && !eval_split_said_ && env.log) {
    env.log("held-out evaluation split over " + std::to_string(world) + " processes: " + std::to_string(plan.batches_per_epoch()) +
            " batches");
    eval_split_said_ = true;
  }
  double sum = 0;
  int64_t n = 0;
  for (int64_t b = rank; b < plan.batches_per_epoch(); b += world) {
    auto batch = collate(eval_, plan.indices(0, b), env.pad_id);
    sum += batch_loss_sum(env.model, batch, env.dev, env.autocast).item<double>();
    n += batch.label_tokens;
  }
  if (world > 1) {
    auto t = at::tensor(std::vector<double>{sum, static_cast<double>(n)}, at::kDouble);
    env.group->all_reduce_sum(t);
    sum = t[0].item<double>();
    n = static_cast<int64_t>(t[1].item<double>());
  }
  env.model->train();
  const double l = n ? sum / n : NAN;
  return {{"eval_loss", l}, {"eval_ppl", std::exp(l)}};
}

}  // namespace hone
