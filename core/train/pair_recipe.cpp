// Shared preference-recipe pieces (see pair_recipe.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/pair_recipe.h"
#include "train/recipes.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "distributed/process_group.h"
#include "peft/lora.h"

namespace hone {

std::vector<int64_t> PairRecipe::train_lengths() const {
  std::vector<int64_t> l;
  l.reserve(train_.size());
  for (const auto& e : train_) l.push_back(static_cast<int64_t>(std::max(e.a.ids.size(), e.b.ids.size())));
  return l;
}

std::string PairRecipe::data_summary() const {
  return std::to_string(train_.size()) + " training examples of two sequences (" + std::to_string(truncated_) + " truncated, " +
         std::to_string(dropped_) + " dropped), " + std::to_string(eval_.size()) + " evaluation examples";
}

int64_t PairRecipe::tokens(const std::vector<size_t>& idx) const {
  int64_t n = 0;
  for (auto i : idx) n += static_cast<int64_t>(train_[i].a.ids.size() + train_[i].b.ids.size());
  return n;
}

bool PairRecipe::make_example(const Tokenizer& tok, const ChatTemplate& f, const RunConfig& cfg, const std::vector<ChatMessage>& prompt,
                              const std::vector<ChatMessage>& first, const std::vector<ChatMessage>& second, PairExample* out) {
  bool t1 = false, t2 = false;
  out->a = tokenize_completion(tok, f, prompt, first, cfg.max_seq_len, &t1);
  out->b = tokenize_completion(tok, f, prompt, second, cfg.max_seq_len, &t2);
  truncated_ += (t1 || t2);
  auto any = [](const Sequence& s) {
    for (auto m : s.loss_mask)
      if (m) return true;
    return false;
  };
  if (!any(out->a) || !any(out->b)) {
    ++dropped_;
    return false;
  }
  return true;
}

std::vector<PairExample> PairRecipe::build_pairs(const RunConfig& cfg, const Tokenizer& tok, const ChatTemplate& f,
                                                 const std::vector<std::string>& files) {
  std::vector<PairExample> out;
  for (const auto& file : files)
    for (const auto& p : read_preference_pairs(file, cfg.recipe)) {
      PairExample e;
      if (make_example(tok, f, cfg, p.prompt, p.chosen, p.rejected, &e)) out.push_back(std::move(e));
    }
  return out;
}

Scalars PairRecipe::pair_metrics(const at::Tensor& rc, const at::Tensor& rr, const at::Tensor& logps,
                                 const at::Tensor& logits_mean, int64_t B, double n) {
  at::NoGradGuard ng;
  auto sum = [&](const at::Tensor& x) { return x.sum().item<double>() / n; };
  auto lp = logps.detach();
  return {{"rewards/chosen", sum(rc)},
          {"rewards/rejected", sum(rr)},
          {"rewards/accuracies", sum(rc.gt(rr).to(at::kFloat))},
          {"rewards/margins", sum(rc - rr)},
          {"logps/chosen", sum(lp.narrow(0, 0, B))},
          {"logps/rejected", sum(lp.narrow(0, B, B))},
          {"logits/chosen", sum(logits_mean.narrow(0, 0, B))},
          {"logits/rejected", sum(logits_mean.narrow(0, B, B))}};
}

void PairRecipe::prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) {
  const ChatTemplate f = chat_template_for(cfg, tok);
  if (log) log("chat template: " + f.describe());
  train_ = build(cfg, tok, f, cfg.train_data);
  if (!cfg.eval_data.empty()) eval_ = build(cfg, tok, f, cfg.eval_data);
  hold_out(train_, eval_, cfg.eval_fraction, cfg.seed);
  if (train_.empty()) throw Error("no training examples left (all dropped or held out)");
}

Batch PairRecipe::batch_of(const std::vector<size_t>& idx, int32_t pad, bool eval_split) const {
  const auto& ex = eval_split ? eval_ : train_;
  std::vector<const Sequence*> rows;
  for (auto i : idx) rows.push_back(&ex.at(i).a);
  for (auto i : idx) rows.push_back(&ex.at(i).b);
  return collate(rows, pad);
}

at::Tensor PairRecipe::compute_reference(RecipeEnv& env, const std::vector<PairExample>& ex, int64_t batch_size,
                                         bool as_is) {
  auto table = at::zeros({static_cast<int64_t>(ex.size()), 2}, at::kFloat);
  const bool eval_split = &ex == &eval_;
  for (size_t s = 0; s < ex.size(); s += static_cast<size_t>(batch_size)) {
    std::vector<size_t> idx;
    for (size_t i = s; i < std::min(ex.size(), s + static_cast<size_t>(batch_size)); ++i) idx.push_back(i);
    Batch b = batch_of(idx, env.pad_id, eval_split);
    at::Tensor lp;
    {
      at::NoGradGuard ng;
      // as_is: the model as it stands (a starting adapter is the reference), else the usual reference.
      lp = (as_is ? pair_sequence_logps(env.model, b, env.dev, env.autocast).logps : reference_logps(env, idx, b, eval_split))
               .to(at::kCPU);  // [2n]
    }
    const int64_t n = static_cast<int64_t>(idx.size());
    table.narrow(0, static_cast<int64_t>(s), n).select(1, 0).copy_(lp.narrow(0, 0, n));
    table.narrow(0, static_cast<int64_t>(s), n).select(1, 1).copy_(lp.narrow(0, n, n));
  }
  return table;
}

namespace {

// Identifies the examples and the reference a cached table belongs to.
std::string fingerprint(const std::vector<PairExample>& ex, const RunConfig& cfg) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  for (const auto& e : ex) {
    for (auto t : e.a.ids) mix(static_cast<uint64_t>(t));
    mix(0xfffffffful);
    for (auto t : e.b.ids) mix(static_cast<uint64_t>(t));
    mix(0xfffffffeul);
  }
  for (char c : cfg.base_model + "|" + cfg.init_adapter + "|" + cfg.method) mix(static_cast<unsigned char>(c));
  return std::to_string(h) + "-" + std::to_string(ex.size());
}

nlohmann::json table_json(const at::Tensor& t) {
  nlohmann::json a = nlohmann::json::array();
  auto acc = t.accessor<float, 2>();
  for (int64_t i = 0; i < t.size(0); ++i) a.push_back({acc[i][0], acc[i][1]});
  return a;
}

at::Tensor table_from(const nlohmann::json& a, size_t n, const std::string& where) {
  if (!a.is_array() || a.size() != n) throw file_error(where, "cached reference log-probs do not match the data");
  auto t = at::zeros({static_cast<int64_t>(n), 2}, at::kFloat);
  auto acc = t.accessor<float, 2>();
  for (size_t i = 0; i < n; ++i) {
    acc[static_cast<int64_t>(i)][0] = a[i].at(0).get<float>();
    acc[static_cast<int64_t>(i)][1] = a[i].at(1).get<float>();
  }
  return t;
}

}  // namespace

void PairRecipe::start(RecipeEnv& env, const RunConfig& cfg) {
  if (!recipe_info(cfg.recipe).reference) return;
  // Continuing from an adapter: that adapter, as it is now (before any step), is the reference.
  const bool from_adapter = !cfg.init_adapter.empty();
  if (!cfg.precompute_ref_log_probs && !from_adapter) {
    env.log(std::string("reference: ") + (env.adapters ? "the policy with its adapters switched off" : "a frozen copy of the base model"));
    return;
  }
  const std::string path = join_path(env.run_dir, "reference_logps.json");
  const std::string fp = fingerprint(train_, cfg) + "/" + fingerprint(eval_, cfg);
  if (file_exists(path)) {
    try {
      auto j = read_json_file(path);
      if (j.value("fingerprint", "") == fp) {
        ref_train_ = table_from(j.at("train"), train_.size(), path);
        ref_eval_ = table_from(j.at("eval"), eval_.size(), path);
        env.log("reference log-probs: cached in " + path);
        return;
      }
    } catch (const std::exception&) {
      // a damaged cache is recomputed
    }
  }
  env.log(std::string("reference log-probs: computing once for ") + std::to_string(train_.size() + eval_.size()) +
          " examples (" + (from_adapter ? "the starting adapter, frozen" : env.adapters ? "adapters off" : "frozen copy") + ")");
  const bool was_training = env.model->is_training();
  env.model->eval();
  auto tr = compute_reference(env, train_, std::max<int64_t>(1, cfg.batch_size), from_adapter);
  auto ev = compute_reference(env, eval_, std::max<int64_t>(1, cfg.batch_size), from_adapter);
  if (was_training) env.model->train();
  ref_train_ = tr;
  ref_eval_ = ev;
  nlohmann::json j = {{"fingerprint", fp}, {"train", table_json(tr)}, {"eval", table_json(ev)}};
  write_file_atomic(path, j.dump() + "\n");
}

at::Tensor PairRecipe::reference_logps(RecipeEnv& env, const std::vector<size_t>& idx, const Batch& b, bool eval_split) {
  at::NoGradGuard ng;
  if (precomputed()) {
    const auto& t = eval_split ? ref_eval_ : ref_train_;
    auto ix = at::empty({static_cast<int64_t>(idx.size())}, at::kLong);
    for (size_t k = 0; k < idx.size(); ++k) ix[static_cast<int64_t>(k)] = static_cast<int64_t>(idx[k]);
    auto rows = t.index_select(0, ix);                       // [n, 2]
    return at::cat({rows.select(1, 0), rows.select(1, 1)}).to(env.dev);  // [2n]
  }
  if (env.reference) return pair_sequence_logps(env.reference, b, env.dev, env.autocast).logps;
  // The same weights with the adapters switched off: the base model, without a second copy.
  set_lora_enabled(env.model, false);
  at::Tensor r;
  try {
    r = pair_sequence_logps(env.model, b, env.dev, env.autocast).logps;
  } catch (...) {
    set_lora_enabled(env.model, true);
    throw;
  }
  set_lora_enabled(env.model, true);
  return r;
}

Scalars PairRecipe::evaluate_by_loss(RecipeEnv& env, int64_t batch_size) {
  at::NoGradGuard ng;
  env.model->eval();
  use_eval_ = true;
  Scalars sum;
  try {
    // Whole-split normalisers: the batches' shares then add up to split means.
    std::vector<double> totals;
    for (size_t i = 0; i < eval_.size(); i += static_cast<size_t>(batch_size)) {
      std::vector<size_t> j;
      for (size_t k = i; k < std::min(eval_.size(), i + static_cast<size_t>(batch_size)); ++k) j.push_back(k);
      auto c = counts(j);
      if (totals.empty()) totals.assign(c.size(), 0);
      for (size_t q = 0; q < c.size(); ++q) totals[q] += c[q];
    }
    // Data-parallel: rank r scores batches r, r + world, ... (the batches one process scores) and
    // the sums are added over the ranks; each batch's figures are shares of the whole split, so the
    // sum is the split's. Where the split has fewer batches than ranks every rank scores them all
    // (a rank without a batch would have no metric names to add).
    const size_t B = static_cast<size_t>(batch_size), batches = (eval_.size() + B - 1) / B;
    const size_t world = env.group ? static_cast<size_t>(env.group->world_size()) : 1;
    const bool split = world > 1 && batches >= world;
    const size_t rank = split ? static_cast<size_t>(env.group->rank()) : 0, stride = split ? world : 1;
    if (split && !eval_split_said_ && env.log) {
      env.log("held-out evaluation split over " + std::to_string(world) + " processes: " + std::to_string(batches) + " batches");
      eval_split_said_ = true;
    }
    for (size_t bi = rank; bi < batches; bi += stride) {
      std::vector<size_t> idx;
      for (size_t i = bi * B; i < std::min(eval_.size(), (bi + 1) * B); ++i) idx.push_back(i);
      MicroLoss ml = loss(env, idx, totals);
      const double l = ml.loss.defined() ? ml.loss.item<double>() : 0;
      set_scalar(sum, "eval_loss", scalar_value(sum, "eval_loss", 0) + l);
      for (const auto& x : ml.scalars) set_scalar(sum, "eval_" + x.name, scalar_value(sum, "eval_" + x.name, 0) + x.value);
    }
    if (split) {
      // Every batch yields the same names in the same order; the count is checked before the values
      // are added, so that ranks that disagree fail instead of adding unlike figures.
      at::Tensor k = at::tensor(std::vector<double>{static_cast<double>(sum.size())}, at::kDouble);
      env.group->all_reduce_sum(k);
      if (k.item<double>() != static_cast<double>(sum.size() * world))
        throw Error("held-out evaluation: the processes' metrics differ (" + std::to_string(sum.size()) + " here)");
      std::vector<double> v;
      for (const auto& x : sum) v.push_back(x.value);
      at::Tensor t = at::tensor(v, at::kDouble);
      env.group->all_reduce_sum(t);
      for (size_t q = 0; q < sum.size(); ++q) sum[q].value = t[static_cast<int64_t>(q)].item<double>();
    }
  } catch (...) {
    use_eval_ = false;
    env.model->train();
    throw;
  }
  use_eval_ = false;
  env.model->train();
  return sum;
}

void check_preference_beta(const RunConfig& c, const std::string& where) {
  if (c.beta <= 0) throw Error(where + ": \"beta\" must be positive (grpo, ppo: 0 drops the KL penalty)");
}

std::vector<ConfigKey> reference_keys() {
  return {config_field<&RunConfig::beta>("beta", "strength of the pull toward the reference (TRL's beta)"),
          config_field<&RunConfig::precompute_ref_log_probs>("precompute_ref_log_probs",
                                                              "compute the reference's log-probs once, cached in the run folder")};
}

}  // namespace hone
