// What the RL recipes share (see rl_recipe.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/rl_recipe.h"

#include <algorithm>

#include "common/error.h"
#include "data/examples.h"
#include "distributed/process_group.h"
#include "peft/lora.h"

namespace hone {

std::vector<int64_t> RlRecipe::train_lengths() const {
  std::vector<int64_t> v;
  for (const auto& e : train_) v.push_back(static_cast<int64_t>(e.ids.size()));
  return v;
}

std::string RlRecipe::data_summary() const {
  return std::to_string(train_.size()) + " prompts (" + std::to_string(eval_.size()) + " held out), " +
         std::to_string(cfg_.num_generations) + " completion" + (cfg_.num_generations == 1 ? "" : "s") + " each of up to " +
         std::to_string(cfg_.max_new_tokens) + " tokens" +
         (dropped_ ? "; " + std::to_string(dropped_) + " prompts longer than max_seq_len dropped" : "");
}

void RlRecipe::prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) {
  cfg_ = cfg;
  tok_ = &tok;
  rules_ = RuleReward(cfg.rewards, "run config");
  format_ = chat_template_for(cfg, tok);
  if (log) log("chat template: " + format_.describe());
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

void RlRecipe::start(RecipeEnv& env, const RunConfig& cfg) {
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

std::vector<double> RlRecipe::counts(const std::vector<size_t>& idx) const {
  return {static_cast<double>(idx.size() * static_cast<size_t>(cfg_.num_generations))};
}

int64_t RlRecipe::tokens(const std::vector<size_t>& idx) const {
  int64_t n = 0;
  for (auto i : idx) n += static_cast<int64_t>(ex().at(i).ids.size()) * cfg_.num_generations;
  return n;
}

RolloutSettings RlRecipe::settings(int64_t group, double temperature) const {
  RolloutSettings rs;
  rs.group = group;
  rs.max_new_tokens = cfg_.max_new_tokens;
  rs.temperature = temperature;
  rs.top_p = cfg_.top_p;
  rs.stop_ids.assign(stop_ids_.begin(), stop_ids_.end());
  return rs;
}

std::vector<Rollout> RlRecipe::sample(RecipeEnv& env, const std::vector<size_t>& idx, std::vector<size_t>* prompt_of) {
  RolloutSettings rs = settings(cfg_.num_generations, cfg_.temperature);
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);
  std::vector<std::vector<int32_t>> prompts;
  for (auto i : idx) {
    prompts.push_back(ex().at(i).ids);
    for (int64_t g = 0; g < cfg_.num_generations; ++g) prompt_of->push_back(i);
  }
  return sample_prompts(env.model, prompts, rs, gen);
}

Scalars RlRecipe::evaluate(RecipeEnv& env, int64_t batch_size) {
  (void)batch_size;
  if (eval_.empty()) return {};
  RolloutSettings rs = settings(1, 0.0);
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);  // unused when greedy
  std::vector<Rollout> rows;
  std::vector<size_t> prompt_of;
  use_eval_ = true;
  // Greedy, in batches of 32 prompts (padded on the left). Data-parallel: rank r takes batches r,
  // r + world, ... (the same batches as one process, so the same greedy answers); the reward sums
  // and counts are added over the ranks.
  const size_t rank = env.group ? static_cast<size_t>(env.group->rank()) : 0;
  const size_t world = env.group ? static_cast<size_t>(env.group->world_size()) : 1;
  for (size_t i0 = rank * 32; i0 < eval_.size(); i0 += 32 * world) {
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = i0; i < std::min(eval_.size(), i0 + 32); ++i) prompts.push_back(eval_[i].ids), prompt_of.push_back(i);
    for (auto& r : sample_prompts(env.model, prompts, rs, gen)) rows.push_back(std::move(r));
  }
  const std::vector<double> rewards = rows.empty() ? std::vector<double>{} : score(rows, prompt_of);
  use_eval_ = false;
  double total = 0, count = static_cast<double>(rewards.size());
  for (double x : rewards) total += x;
  if (world > 1) {
    auto t = at::tensor(std::vector<double>{total, count}, at::kDouble);
    env.group->all_reduce_sum(t);
    total = t[0].item<double>();
    count = t[1].item<double>();
  }
  const double mean = count > 0 ? total / count : 0;
  const double best = scorer_ ? 0.0 : rules_.max_score();
  return {{"eval_loss", best - mean}, {"eval_reward", mean}};
}

at::Tensor RlRecipe::reference_logps(RecipeEnv& env, const std::vector<Rollout>& rows) {
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
  at::Tensor out = completion_logps(env.model, rows, env.pad_id, env.dev, env.autocast, false, cfg_.temperature).logps;
  if (reference_adapter_.empty()) {
    set_lora_enabled(env.model, true);
  } else {
    for (size_t i = 0; i < reference_adapter_.size(); ++i) reference_adapter_[i].first.detach().copy_(current[i]);
  }
  if (was_training) env.model->train();
  return out;
}

void RlRecipe::note_flat_rewards(RecipeEnv& env, const std::vector<double>& rewards) {
  if (use_eval_ || rewards.empty() || flat_batches_ < 0) return;
  const bool flat = std::all_of(rewards.begin(), rewards.end(), [&](double r) { return r == rewards.front(); });
  flat_batches_ = flat ? flat_batches_ + 1 : 0;
  if (flat_batches_ < 5) return;
  flat_batches_ = -1;  // said once
  if (env.log)
    env.log("warning: in 5 batches running every completion got the same reward (" + std::to_string(rewards.front()) + "): " +
            (cfg_.recipe == "grpo" ? "GRPO has nothing to learn from them (every advantage is 0)"
                                   : "PPO learns only its KL term from them") +
            ". Start from a model that sometimes earns the reward (init_adapter: an SFT run's adapter, as hone-cli demo "
            "warms up first) or give partial credit (a similarity rule).");
}

std::vector<double> RlRecipe::score(const std::vector<Rollout>& rows, const std::vector<size_t>& prompt_of) {
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

std::vector<PromptExample> RlRecipe::build(const std::vector<std::string>& files, ExampleFormat fmt) {
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

std::vector<ConfigKey> rl_keys() {
  ConfigKey rewards{"rewards", "rule rewards, summed with their weights: exact, similarity, regex, json, length (train/rule_reward.h)", "",
                    [](RunConfig& c, const nlohmann::json& v, const std::string&, const std::string&) { c.rewards = v; },
                    [](const RunConfig& c) { return c.rewards; }};
  return {rewards,
          config_field<&RunConfig::reward_model>("reward_model", "a reward run's folder, scoring completions (with or beside rules)"),
          config_field<&RunConfig::beta>("beta", "weight of the per-token KL penalty against the reference (0 drops it)",
                                         "KL coefficient (beta)"),
          config_field<&RunConfig::num_generations>("num_generations", "completions sampled per prompt"),
          config_field<&RunConfig::max_new_tokens>("max_new_tokens", "longest completion sampled, in tokens"),
          config_field<&RunConfig::temperature>("temperature", "sampling temperature"),
          config_field<&RunConfig::top_p>("top_p", "nucleus sampling, (0, 1]"),
          config_field<&RunConfig::clip_epsilon>("clip_epsilon", "clipping of the probability ratio")};
}

void check_rl(const RunConfig& c, const std::string& where) {
  RuleReward check(c.rewards, where);  // validates every rule
  if (check.empty() && c.reward_model.empty())
    throw Error(where + ": " + c.recipe + " needs \"rewards\" (rule rewards) or a \"reward_model\" (a reward run's folder)");
  if (c.num_generations < 1) throw Error(where + ": \"num_generations\" must be at least 1");
  if (c.max_new_tokens < 1 || c.temperature <= 0 || c.top_p <= 0 || c.top_p > 1 || c.clip_epsilon <= 0)
    throw Error(where + ": max_new_tokens, temperature and clip_epsilon must be positive and top_p in (0, 1]");
  if (c.beta < 0) throw Error(where + ": \"beta\" must be positive (grpo, ppo: 0 drops the KL penalty)");
}

}  // namespace hone
