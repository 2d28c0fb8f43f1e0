// PPO recipe (Schulman et al. 2017; for language models as Ziegler et al. 2019 and TRL's
// PPOTrainer): at the start of each step the step's prompts get their completions sampled from the
// policy and scored (train/rl_recipe.h); every completion token is rewarded -kl_coef times the
// policy's log-ratio to the reference, and the last token also gets the score. The critic
// (model/value_head.h: by default a critic adapter of its own on the shared frozen base, or the
// value head on the policy's features) estimates each state's return, GAE turns rewards and
// values into advantages, whitened over the step's whole batch of rollouts, and the clipped policy
// and value objectives are optimised for ppo_epochs updates over that batch (the session repeats
// the step's micro-batches, train/recipe.h). Dropout in the adapters is off, as TRL's PPO turns it
// off, so that the first update's ratio is exactly 1. The KL coefficient is fixed (beta) or adapts
// towards kl_target; it is carried in the checkpoints, so a resumed run continues exactly.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/error.h"
#include "model/value_head.h"
#include "peft/lora.h"
#include "distributed/process_group.h"
#include "train/policy_loss.h"
#include "train/rl_recipe.h"

namespace hone {
namespace {

class PpoRecipe : public RlRecipe {
 public:
  int64_t updates_per_step() const override { return cfg_.ppo_epochs; }

  void setup_model(CausalLM& model, const RunConfig& cfg) override {
    attach_value_head(model);
    // The critic starts as a copy of the policy's starting adapter: its features start as the
    // policy's, and learn what the value needs (TRL's PPOv2 starts its value model from the reward
    // model; a rule reward has none).
    if (cfg.value_model == "adapter") attach_critic_lora(model);
    set_lora_dropout(model, 0.0);
  }

  void start(RecipeEnv& env, const RunConfig& cfg) override {
    RlRecipe::start(env, cfg);
    kl_coef_ = next_kl_coef_ = cfg.beta;
  }

  nlohmann::json state() const override { return {{"kl_coef", kl_coef_}}; }
  void restore_state(const nlohmann::json& s) override { kl_coef_ = next_kl_coef_ = s.at("kl_coef").get<double>(); }

  // Samples and scores the step's rollouts and computes everything the updates hold fixed.
  void begin_step(RecipeEnv& env, const std::vector<std::vector<size_t>>& micro) override {
    at::NoGradGuard ng;
    batches_.clear();
    tokens_ = 0;
    double reward = 0, kl = 0, entropy = 0, value = 0, rows_n = 0;
    int64_t C = 1;
    for (const auto& idx : micro) {
      Batch b;
      if (idx.empty()) {  // this rank's share of a short last batch
        batches_.push_back(std::move(b));
        continue;
      }
      std::vector<size_t> prompt_of;
      b.rows = sample(env, idx, &prompt_of);
      const std::vector<double> scores = score(b.rows, prompt_of);
      note_flat_rewards(env, scores);
      at::Tensor ref;
      if (kl_coef_ != 0) ref = reference_logps(env, b.rows);
      TokenLogps old = values_from_policy(env, b.rows);  // [N, C]
      b.mask = old.mask;
      b.old_logps = old.logps;
      b.old_values = old.values;
      at::Tensor s = at::tensor(scores, at::kDouble).to(at::kFloat).to(env.dev);  // [N]
      at::Tensor r = ppo_token_rewards(s, old.logps, ref, old.mask, kl_coef_);  // [N, C]
      Gae g = gae(r, old.values, old.mask, cfg_.gae_gamma, cfg_.gae_lambda);
      b.advantages = g.advantages;
      b.returns = g.returns;
      auto ntok = old.mask.sum(1).clamp_min(1);  // [N]
      reward += s.sum().item<double>();
      if (ref.defined()) kl += ((old.logps - ref) * old.mask).sum().item<double>();
      entropy += (old.entropy.sum(1) / ntok).sum().item<double>();
      value += (old.values.sum(1) / ntok).sum().item<double>();
      rows_n += static_cast<double>(b.rows.size());
      tokens_ += old.mask.sum().item<double>();
      C = std::max(C, old.mask.size(1));
      batches_.push_back(std::move(b));
    }
    // Advantages are whitened over the whole batch of rollouts, not per micro-batch; on several
    // processes over the global batch, from its token count, sum and squared deviations.
    const int world = env.group ? env.group->world_size() : 1;
    if (world > 1) {
      at::Tensor t = at::tensor({reward, kl, entropy, value, rows_n, tokens_}, at::kDouble);
      env.group->all_reduce_sum(t);
      reward = t[0].item<double>(), kl = t[1].item<double>(), entropy = t[2].item<double>(), value = t[3].item<double>();
      rows_n = t[4].item<double>(), tokens_ = t[5].item<double>();
      double sum = 0;
      for (auto& b : batches_)
        if (b.mask.defined()) sum += (b.advantages * b.mask).sum().item<double>();
      at::Tensor s = at::tensor({sum}, at::kDouble);
      env.group->all_reduce_sum(s);
      const double mean = s.item<double>() / std::max(1.0, tokens_);
      double sq = 0;
      for (auto& b : batches_)
        if (b.mask.defined()) sq += ((b.advantages - mean).pow(2) * b.mask).sum().item<double>();
      at::Tensor q = at::tensor({sq}, at::kDouble);
      env.group->all_reduce_sum(q);
      const double inv_std = 1.0 / std::sqrt(q.item<double>() / std::max(1.0, tokens_ - 1) + 1e-8);
      for (auto& b : batches_)
        if (b.mask.defined()) b.advantages = ((b.advantages - mean) * inv_std * b.mask).contiguous();
    } else {
      std::vector<at::Tensor> adv, mask;
      for (auto& b : batches_) {
        const int64_t pad = C - b.mask.size(1);
        adv.push_back(at::constant_pad_nd(b.advantages, {0, pad}));
        mask.push_back(at::constant_pad_nd(b.mask, {0, pad}));
      }
      at::Tensor w = whiten(at::cat(adv), at::cat(mask));  // [N_step, C]
      int64_t row = 0;
      for (auto& b : batches_) {
        const int64_t n = b.mask.size(0);
        b.advantages = w.narrow(0, row, n).narrow(1, 0, b.mask.size(1)).contiguous();
        row += n;
      }
    }
    const double n = std::max(1.0, rows_n);
    // The session sums a step's scalars over the ranks: each rank reports its share (the global
    // figures divided by the world size, for those every rank already holds whole).
    const double share = 1.0 / world;
    rollout_scalars_ = {{"reward", share * reward / n},
                        {"kl", share * kl / n},
                        {"kl_coef", share * kl_coef_},
                        {"entropy", share * entropy / n},
                        {"value", share * value / n},
                        {"completion_length", share * tokens_ / n}};
    next_kl_coef_ = cfg_.kl_target > 0 ? adaptive_kl_coef(kl_coef_, kl / n, cfg_.kl_target, static_cast<int64_t>(rows_n), cfg_.kl_horizon)
                                       : kl_coef_;
  }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    (void)idx, (void)step_counts;
    const Batch& b = batches_.at(static_cast<size_t>(env.micro));
    if (!b.mask.defined()) return {};  // no rows of this rank in this micro-batch
    TokenLogps cur = values_from_policy(env, b.rows);  // [N, C]
    PpoTerms t = ppo_loss(cur.logps, b.old_logps, cur.values, b.old_values, b.advantages, b.returns, b.mask,
                          cfg_.clip_epsilon, cfg_.value_clip);
    // Token-level means over the step's whole batch (the micro-batches' losses add up to it).
    const double n = std::max(1.0, tokens_);
    MicroLoss out;
    out.loss = (t.policy.sum() + cfg_.value_coef * t.value.sum()) / n;
    at::NoGradGuard ng;
    const double per_update = n * static_cast<double>(cfg_.ppo_epochs);  // scalars: means over the updates
    out.scalars = {{"policy_loss", t.policy.sum().item<double>() / per_update},
                   {"value_loss", t.value.sum().item<double>() / per_update},
                   {"clip_fraction", t.clipped.sum().item<double>() / per_update},
                   {"value_clip_fraction", t.value_clipped.sum().item<double>() / per_update},
                   {"approx_kl", t.approx_kl.sum().item<double>() / per_update}};
    if (env.update == 0 && env.micro == 0) out.scalars.insert(out.scalars.begin(), rollout_scalars_.begin(), rollout_scalars_.end());
    // The step's last update commits the KL coefficient the next batch of rollouts uses (a step
    // interrupted before it keeps the old one, as its checkpoint does).
    if (env.update + 1 == cfg_.ppo_epochs && env.micro + 1 == static_cast<int64_t>(batches_.size())) kl_coef_ = next_kl_coef_;
    return out;
  }

 private:
  // The policy's log-probs, with the critic's values: from the same pass for a value head on the
  // policy, else from the critic adapter's own pass.
  TokenLogps values_from_policy(RecipeEnv& env, const std::vector<Rollout>& rows) {
    const bool head = cfg_.value_model == "head";
    TokenLogps t = completion_logps(env.model, rows, env.pad_id, env.dev, env.autocast, /*values=*/head, cfg_.temperature);  // [N, C]
    if (!head) t.values = critic_values(env.model, rows, env.pad_id, env.dev, env.autocast);  // [N, C]
    return t;
  }

  struct Batch {
    std::vector<Rollout> rows;
    at::Tensor mask, old_logps, old_values, advantages, returns;  // [N, C]
  };
  std::vector<Batch> batches_;
  double tokens_ = 0;
  Scalars rollout_scalars_;
  double kl_coef_ = 0, next_kl_coef_ = 0;
};

}  // namespace

std::unique_ptr<Recipe> make_ppo_recipe() { return std::make_unique<PpoRecipe>(); }

std::vector<ConfigKey> ppo_keys() {
  std::vector<ConfigKey> k = rl_keys();
  for (auto& x : std::vector<ConfigKey>{
           config_field<&RunConfig::ppo_epochs>("ppo_epochs", "optimizer updates over each batch of rollouts"),
           config_field<&RunConfig::gae_gamma>("gae_gamma", "discount (gamma)"),
           config_field<&RunConfig::gae_lambda>("gae_lambda", "GAE lambda"),
           config_field<&RunConfig::value_model>("value_model", "head (on the policy's features) | adapter (a critic adapter of its own)"),
           config_field<&RunConfig::value_coef>("value_coef", "weight of the value loss"),
           config_field<&RunConfig::value_clip>("value_clip", "clipping of the value change"),
           config_field<&RunConfig::kl_target>("kl_target", "adapt the KL coefficient towards this KL per sequence (0: fixed beta)"),
           config_field<&RunConfig::kl_horizon>("kl_horizon", "sequences over which the adaptive coefficient moves")})
    k.push_back(std::move(x));
  return k;
}

void check_ppo(const RunConfig& c, const std::string& where) {
  check_rl(c, where);
  if (c.ppo_epochs < 1 || c.ppo_epochs > 64) throw Error(where + ": \"ppo_epochs\" must be in [1, 64]");
  if (c.gae_gamma < 0 || c.gae_gamma > 1 || c.gae_lambda < 0 || c.gae_lambda > 1)
    throw Error(where + ": \"gae_gamma\" and \"gae_lambda\" must be in [0, 1]");
  if (c.value_model != "adapter" && c.value_model != "head")
    throw Error(where + ": \"value_model\" must be \"adapter\" (a critic adapter of its own) or \"head\" (on the policy's features)");
  if (c.value_coef < 0 || c.value_clip <= 0) throw Error(where + ": \"value_coef\" must not be negative and \"value_clip\" must be positive");
  if (c.kl_target < 0 || c.kl_horizon < 1) throw Error(where + ": \"kl_target\" must not be negative and \"kl_horizon\" must be positive");
  if (c.kl_target > 0 && c.beta == 0) throw Error(where + ": an adaptive KL (\"kl_target\") needs a positive starting \"beta\"");
}

}  // namespace hone
