// GRPO recipe (Shao et al. 2024, DeepSeekMath; as TRL's GRPOTrainer with one update per batch of
// rollouts): for each prompt of a micro-batch, a group of completions is sampled from the policy
// (train/rollout.h), scored by rule rewards and/or a trained reward model, and the advantages are
// the rewards normalised within the group (no value model). The loss is the clipped surrogate plus
// beta times a per-token KL estimate against the reference (the adapters switched off, or the
// starting adapter when the run starts from one), averaged
// over each completion's tokens, then over completions (train/policy_loss.h).
// Prompts come from chat data: the messages before the last assistant turn, whose content is the
// reference answer for the "exact" rule.
#include <memory>

#include "common/error.h"
#include "data/examples.h"
#include "peft/lora.h"
#include "serve/reward_scorer.h"
#include "train/policy_loss.h"
#include "train/recipe.h"
#include "train/rollout.h"
#include "train/rule_reward.h"

namespace hone {
namespace {

struct PromptExample {
  std::vector<ChatMessage> prompt;
  std::string reference;
  std::vector<int32_t> ids;
};

class GrpoRecipe : public Recipe {
 public:
  std::string name() const override { return "grpo"; }
  std::vector<std::string> plot_hints() const override { return {"reward", "kl"}; }
  int64_t train_size() const override { return static_cast<int64_t>(train_.size()); }
  int64_t eval_size() const override { return static_cast<int64_t>(eval_.size()); }
  std::vector<int64_t> train_lengths() const override {
    std::vector<int64_t> v;
    for (const auto& e : train_) v.push_back(static_cast<int64_t>(e.ids.size()));
    return v;
  }
  std::string data_summary() const override {
    return std::to_string(train_.size()) + " prompts (" + std::to_string(eval_.size()) + " held out), " +
           std::to_string(cfg_.num_generations) + " completions each of up to " + std::to_string(cfg_.max_new_tokens) +
           " tokens" + (dropped_ ? "; " + std::to_string(dropped_) + " prompts longer than max_seq_len dropped" : "");
  }

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    cfg_ = cfg;
    tok_ = &tok;
    rules_ = RuleReward(cfg.rewards, "run config");
    format_ = chat_format_for(cfg, tok);
    if (log) log(std::string("chat template: ") + chat_format_name(format_));
    ExampleFormat fmt;
    if (!example_format_from_name(cfg.data_format, &fmt)) throw Error("unknown data_format \"" + cfg.data_format + "\"");
    train_ = build(cfg.train_data, fmt);
    if (!cfg.eval_data.empty()) eval_ = build(cfg.eval_data, fmt);
    hold_out(train_, eval_, cfg.eval_fraction, cfg.seed);
    if (train_.empty()) throw Error("no prompts left (all dropped or held out)");
    stop_ids_.clear();
    if (tok.eos_id() >= 0) stop_ids_.push_back(tok.eos_id());
    for (const auto& t : end_of_turn_tokens(format_, tok.config().eos_token)) {
      const int32_t id = tok.token_to_id(t);
      if (id >= 0 && std::find(stop_ids_.begin(), stop_ids_.end(), id) == stop_ids_.end()) stop_ids_.push_back(id);
    }
  }

  void start(RecipeEnv& env, const RunConfig& cfg) override {
    if (!cfg.reward_model.empty()) scorer_ = std::make_unique<RewardScorer>(cfg.reward_model);
    // Started from an adapter (an SFT policy, say): that adapter, not the bare base, is the
    // reference the KL term holds the policy to. Its weights are kept aside (a copy the size of
    // the adapter) and swapped in for the reference pass. This runs before a resumed run's
    // trained weights are copied in, so a resume keeps the same reference.
    if (!cfg.init_adapter.empty() && cfg.beta != 0) {
      for (auto& p : env.model->named_parameters())
        if (p.key().find(".lora_") != std::string::npos) reference_adapter_.push_back({p.value(), p.value().detach().clone()});
      if (env.log) env.log("reference: the starting adapter " + cfg.init_adapter);
    }
  }

  std::vector<double> counts(const std::vector<size_t>& idx) const override {
    return {static_cast<double>(idx.size() * static_cast<size_t>(cfg_.num_generations))};
  }
  int64_t tokens(const std::vector<size_t>& idx) const override {
    int64_t n = 0;
    for (auto i : idx) n += static_cast<int64_t>(ex().at(i).ids.size()) * cfg_.num_generations;
    return n;
  }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t G = cfg_.num_generations;
    RolloutSettings rs = settings(G, cfg_.temperature);
    // The session's global CPU generator: its state is in every checkpoint, so a resumed run
    // samples the same completions the uninterrupted one did.
    at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);
    std::vector<Rollout> rows;
    std::vector<size_t> prompt_of;
    for (auto i : idx) {
      auto g = sample_group(env.model, ex().at(i).ids, rs, gen);
      for (auto& r : g) rows.push_back(std::move(r)), prompt_of.push_back(i);
    }
    const std::vector<double> rewards = score(rows, prompt_of);
    const int64_t N = static_cast<int64_t>(rows.size());
    at::Tensor r = at::tensor(rewards, at::kDouble).to(at::kFloat);  // [N]
    at::Tensor adv = group_advantages(r, G).to(env.dev);              // [N]
    // The reference pass comes first: swapping a starting adapter in and out writes the
    // parameters, which must not happen once the policy's forward has saved them for backward.
    at::Tensor ref;
    if (cfg_.beta != 0) ref = reference_logps(env, rows);
    TokenLogps pol = completion_logps(env.model, rows, env.pad_id, env.dev, env.autocast);  // [N, C]
    // One update per batch of rollouts: the sampling policy is the current one, so the ratio is 1
    // in value and its gradient is the policy gradient.
    PolicyLossTerms t = grpo_loss(pol.logps, pol.logps.detach(), ref, adv, pol.mask, cfg_.beta, cfg_.clip_epsilon);
    const double n = std::max(1.0, step_counts.at(0));
    MicroLoss out;
    out.loss = t.per_sequence.sum() / n;
    at::NoGradGuard ng;
    auto ntok = pol.mask.sum(1).clamp_min(1);  // [N]
    auto per_row = [&](const at::Tensor& x) { return ((x * pol.mask).sum(1) / ntok).sum().item<double>() / n; };
    const at::Tensor grouped = r.view({-1, G});
    out.scalars = {{"reward", r.sum().item<double>() / n},
                   {"reward_std", (grouped.std(1, true) * static_cast<double>(G)).sum().item<double>() / n},
                   {"kl", per_row(t.kl)},
                   {"entropy", per_row(pol.entropy)},
                   {"clip_ratio", per_row(t.clipped)},
                   {"policy_loss", (t.per_sequence - cfg_.beta * (t.kl * pol.mask).sum(1) / ntok).sum().item<double>() / n},
                   {"completion_length", pol.mask.sum().item<double>() / n}};
    (void)N;
    return out;
  }

  // Held out: one greedy completion per prompt; eval_reward is their mean reward, and eval_loss
  // (which early stopping watches) how far it is from the most the rules can give.
  Scalars evaluate(RecipeEnv& env, int64_t batch_size) override {
    (void)batch_size;
    if (eval_.empty()) return {};
    RolloutSettings rs = settings(1, 0.0);
    at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);  // unused when greedy
    std::vector<Rollout> rows;
    std::vector<size_t> prompt_of;
    use_eval_ = true;
    for (size_t i = 0; i < eval_.size(); ++i) {
      auto g = sample_group(env.model, eval_[i].ids, rs, gen);
      rows.push_back(std::move(g[0]));
      prompt_of.push_back(i);
    }
    const std::vector<double> rewards = score(rows, prompt_of);
    use_eval_ = false;
    double mean = 0;
    for (double x : rewards) mean += x / static_cast<double>(rewards.size());
    const double best = scorer_ ? 0.0 : rules_.max_score();
    return {{"eval_loss", best - mean}, {"eval_reward", mean}};
  }

 private:
  RolloutSettings settings(int64_t group, double temperature) const {
    RolloutSettings rs;
    rs.group = group;
    rs.max_new_tokens = cfg_.max_new_tokens;
    rs.temperature = temperature;
    rs.top_p = cfg_.top_p;
    rs.stop_ids.assign(stop_ids_.begin(), stop_ids_.end());
    return rs;
  }

  // Per-token log-probs of the rollouts under the reference: the adapters switched off, or the
  // starting adapter's weights swapped in and back out.
  at::Tensor reference_logps(RecipeEnv& env, const std::vector<Rollout>& rows) {
    at::NoGradGuard ng;
    const bool was_training = env.model->is_training();
    env.model->eval();
    std::vector<at::Tensor> current;
    if (reference_adapter_.empty()) {
      set_lora_enabled(env.model, false);
    } else {
      for (auto& [param, ref] : reference_adapter_) {
        current.push_back(param.detach().clone());
        param.detach().copy_(ref);
      }
    }
    at::Tensor out = completion_logps(env.model, rows, env.pad_id, env.dev, env.autocast).logps;
    if (reference_adapter_.empty()) {
      set_lora_enabled(env.model, true);
    } else {
      for (size_t i = 0; i < reference_adapter_.size(); ++i) reference_adapter_[i].first.detach().copy_(current[i]);
    }
    if (was_training) env.model->train();
    return out;
  }

  // Rule rewards on the decoded completion (without its stop token) plus the reward model's score.
  std::vector<double> score(const std::vector<Rollout>& rows, const std::vector<size_t>& prompt_of) {
    std::vector<double> out;
    std::vector<std::pair<std::vector<ChatMessage>, std::vector<ChatMessage>>> items;
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& r = rows[k];
      std::vector<int32_t> c = r.completion;
      if (r.stopped && !c.empty()) c.pop_back();
      const std::string text = tok_->decode(c, /*skip_special=*/true);
      const PromptExample& p = ex().at(prompt_of[k]);
      out.push_back(rules_.empty() ? 0.0 : rules_.score(text, p.reference));
      if (scorer_) items.push_back({p.prompt, {{"assistant", text}}});
    }
    if (scorer_) {
      const auto s = scorer_->score_many(items);
      for (size_t k = 0; k < out.size(); ++k) out[k] += s[k];
    }
    return out;
  }

  std::vector<PromptExample> build(const std::vector<std::string>& files, ExampleFormat fmt) {
    std::vector<PromptExample> out;
    for (const auto& f : files) {
      for (auto& conv : read_conversations(f, fmt)) {
        PromptExample e;
        size_t last = conv.messages.size();
        for (size_t k = conv.messages.size(); k-- > 0;)
          if (conv.messages[k].role == "assistant") {
            last = k;
            break;
          }
        e.prompt.assign(conv.messages.begin(), conv.messages.begin() + static_cast<std::ptrdiff_t>(last));
        if (last < conv.messages.size()) e.reference = conv.messages[last].content;
        if (e.prompt.empty() || e.prompt.back().role != "user") {
          ++dropped_;
          continue;
        }
        for (int32_t id : tokenize_chat(*tok_, format_, e.prompt, /*add_generation_prompt=*/true).ids) e.ids.push_back(id);
        if (e.ids.empty() || static_cast<int64_t>(e.ids.size()) + 1 > cfg_.max_seq_len) {
          ++dropped_;
          continue;
        }
        out.push_back(std::move(e));
      }
    }
    return out;
  }

  const std::vector<PromptExample>& ex() const { return use_eval_ ? eval_ : train_; }

  RunConfig cfg_;
  const Tokenizer* tok_ = nullptr;
  ChatFormat format_ = ChatFormat::ChatML;
  RuleReward rules_;
  std::unique_ptr<RewardScorer> scorer_;
  std::vector<std::pair<at::Tensor, at::Tensor>> reference_adapter_;  // (parameter, its starting value)
  std::vector<int64_t> stop_ids_;
  std::vector<PromptExample> train_, eval_;
  int64_t dropped_ = 0;
  bool use_eval_ = false;
};

}  // namespace

std::unique_ptr<Recipe> make_grpo_recipe() { return std::make_unique<GrpoRecipe>(); }

}  // namespace hone
