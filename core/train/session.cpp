// The training session: everything the methods share, as named steps. Inputs are checked before
// any work; the model is set up per method (train/method_model.h) and the recipe adds its parts;
// AdamW and the schedule, accumulation, clipping, evaluation cadence, early stopping, checkpoints
// on a step and a time interval with every RNG state (train/checkpoint_state.h), exact resume,
// stop requests between micro-batches, and the metrics sink. What differs per method is the
// recipe (train/recipe.h).
// Micro-batch k of the run is batch (k mod n) of epoch (k div n) in a fixed per-epoch order, so a
// run's data position follows from its step count and resume is exact.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <torch/cuda.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/cpu_allocator.h"
#include "common/error.h"
#include "common/files.h"
#include "common/memory_use.h"
#include "common/runtime.h"
#include "distributed/process_group.h"
#include "model/bf16_gemm.h"
#include "model/checkpoint.h"
#include "peft/lora.h"
#include "train/adamw.h"
#include "train/batches.h"
#include "train/checkpoint_state.h"
#include "train/eval_suite.h"
#include "train/method_model.h"
#include "train/recipe.h"
#include "train/recipes.h"
#include "train/schedule.h"
#include "train/text_metrics.h"
#include "train/trainer.h"

namespace hone {
namespace {

using Clock = std::chrono::steady_clock;

// Sums named scalars over micro-batches, keeping first-seen order.
void accumulate(Scalars& into, const Scalars& add) {
  for (const auto& x : add) set_scalar(into, x.name, scalar_value(into, x.name, 0) + x.value);
}

// One step's outcome for the loop.
enum class StepEnd { Next, Stop };

class Session {
 public:
  Session(const RunConfig& cfg, const TrainOptions& opt);
  TrainResult run();

 private:
  void log(const std::string& s) const {
    if (opt_.on_log) opt_.on_log(s);
  }
  bool stop_now() const { return opt_.stop_requested && opt_.stop_requested(); }
  void check_inputs();
  void set_up_model();
  void plan_steps();
  void start_run_folder();
  void resume();
  StepEnd step();
  // Runs `fn` with stop requests reaching inside the forward and backward passes; false when a
  // stop was requested.
  bool interruptible(const std::function<void()>& fn);
  std::vector<size_t> rank_slice(std::vector<size_t> global) const;
  void save_checkpoint(int64_t step, const RngState& rng);
  Scalars suite_scores();
  void checkpoint_after_lost_rank();
  void write_output();

  const RunConfig& cfg_;
  const TrainOptions& opt_;
  Clock::time_point t_start_ = Clock::now();
  ProcessGroup* group_;
  int rank_, world_;
  bool writer_;  // one process writes the run folder
  bool cuda_ = false;
  at::Device dev_ = at::kCPU;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Recipe> recipe_;
  const RecipeInfo& info_;
  nlohmann::json resume_state_;
  MethodModel mm_;
  CausalLM model_{nullptr};
  RecipeEnv env_;
  std::vector<NamedParam> params_;
  std::unique_ptr<AdamW> optim_;
  std::unique_ptr<BatchPlan> plan_;
  int64_t n_batches_ = 0, steps_per_epoch_ = 0, total_ = 0, warmup_ = 0;
  RunPlan run_plan_;
  std::unique_ptr<CheckpointWriter> ckpt_;
  std::ofstream metrics_;
  TrainResult res_;
  struct Suite {  // an eval_suites entry, read before training starts
    std::string name;
    DatasetKind kind = DatasetKind::Chat;
    std::vector<std::string> rows;
  };
  std::vector<Suite> suites_;
  // The loop's position and what a checkpoint of it holds.
  int64_t step_ = 0, start_ = 0, bad_evals_ = 0;
  double best_eval_ = NAN;
  RngState rng_at_start_;   // the random state the step in progress started from
  AdamW::Snapshot before_;  // several updates per step: what a stop part-way rolls back to
  bool updated_ = false;    // the step's (last) optimizer update is in the weights
  Clock::time_point t_loop_, t_saved_;
};

Session::Session(const RunConfig& cfg, const TrainOptions& opt)
    : cfg_(cfg), opt_(opt), group_(opt.group), info_(recipe_info(cfg.recipe)) {
  rank_ = group_ ? group_->rank() : opt.rank;
  world_ = group_ ? group_->world_size() : std::max(1, opt.world_size);
  writer_ = rank_ == 0;
  watch_memory();  // the peak that StepMetrics and bench report
}

// 1. Everything that can be wrong with the inputs is checked before training work starts.
void Session::check_inputs() {
  load_model_config(cfg_.base_model);
  checkpoint_files(cfg_.base_model);
  tok_ = load_tokenizer(cfg_.base_model);
  recipe_ = info_.make();
  recipe_->prepare(cfg_, *tok_, opt_.on_log);
  log("data: " + recipe_->data_summary());
  if (!opt_.resume_from.empty()) resume_state_ = read_trainer_state(opt_.resume_from, cfg_, world_);
  for (const auto& path : cfg_.eval_suites) {
    ReadResult rr = read_dataset(path);
    for (const auto& p : rr.problems)
      if (p.error) throw Error("eval_suites: " + p.text());
    if (rr.kind != DatasetKind::Choice && rr.kind != DatasetKind::Chat && rr.kind != DatasetKind::Text)
      throw Error("eval_suites: " + path + " holds " + dataset_kind_name(rr.kind) + " rows; a suite is a choice, chat or text dataset");
    Suite s;
    // A workspace suite is exported as <id>-<name>.jsonl: its metrics carry the dataset's name.
    s.name = std::filesystem::path(path).stem().string();
    const size_t dash = s.name.find('-');
    if (dash != std::string::npos && dash > 0 && s.name.find_first_not_of("0123456789") == dash) s.name = s.name.substr(dash + 1);
    s.kind = rr.kind;
    for (auto& r : rr.records) s.rows.push_back(std::move(r.data));
    suites_.push_back(std::move(s));
  }
  cuda_ = cfg_.device == "cuda" || (cfg_.device == "auto" && torch::cuda::is_available());
  dev_ = cuda_ ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (cfg_.mixed_precision == "bf16" && !cuda_)
    throw Error("mixed_precision \"bf16\" needs a CUDA device; on the CPU, \"base_dtype\": \"bf16\" stores the frozen base in bf16 "
                "with fp32 accumulation (autocast's bf16 outputs measured slower and less exact there)");
}

// 2. The model for the method, the recipe's parts, the optimizer over what trains.
void Session::set_up_model() {
  const bool autocast = cuda_ && cfg_.mixed_precision != "no";
  if (autocast) log("mixed precision: autocast to bf16 on CUDA");
  const BaseDtypeChoice base_dtype =
      resolve_base_dtype(cfg_.base_dtype, cfg_.method, cuda_, load_model_config(cfg_.base_model).parameter_count() * 4);
  mm_ = set_up_method_model(cfg_, base_dtype, opt_.on_log);
  model_ = mm_.lm.model;
  res_.frozen_weight_bytes = mm_.frozen_weight_bytes;
  recipe_->setup_model(model_, cfg_);
  if (info_.reference && cfg_.method == "full" && !cfg_.precompute_ref_log_probs) {
    env_.reference = load_model(cfg_.base_model).model;  // a frozen copy: full training changes every weight
    for (auto& p : env_.reference->parameters()) p.set_requires_grad(false);
    env_.reference->eval();
    if (cuda_) env_.reference->to(dev_);
  }
  if (cuda_) model_->to(dev_);
  model_->gradient_checkpointing = cfg_.gradient_checkpointing;
  model_->set_mlp_recompute(cfg_.mlp_recompute && !cfg_.gradient_checkpointing);  // a checkpointed layer recomputes it all
  model_->set_bf16_activations(cfg_.bf16_activations == "auto");  // takes effect over a bf16 base only
  model_->train();
  for (auto& p : model_->named_parameters())
    if (p.value().requires_grad()) params_.push_back({p.key(), p.value(), decays(p.key())});
  for (auto& p : params_) res_.trainable_params += p.param.numel();
  optim_ = std::make_unique<AdamW>(params_, AdamWConfig{cfg_.adam_beta1, cfg_.adam_beta2, cfg_.adam_eps, cfg_.weight_decay});
  trim_cpu_allocator();  // what loading and preparing the model freed is not kept for training
  env_.autocast = autocast;
}

// 3. Steps, warm-up and what the run is about to do (the launcher records the run only now).
void Session::plan_steps() {
  // Distributed: the plan is of global batches (batch_size per rank), each rank taking its slice.
  plan_ = std::make_unique<BatchPlan>(recipe_->train_lengths(), cfg_.batch_size * world_, cfg_.seed, cfg_.bucket_by_length);
  if (world_ > 1)
    log("distributed: " + (group_ ? group_->env().describe() + ", " + group_->backend() : "rank " + std::to_string(rank_)) +
        "; global batch " + std::to_string(cfg_.batch_size * world_));
  n_batches_ = plan_->batches_per_epoch();
  steps_per_epoch_ = std::max<int64_t>(1, (n_batches_ + cfg_.grad_accum - 1) / cfg_.grad_accum);
  total_ = cfg_.max_steps > 0 ? cfg_.max_steps : static_cast<int64_t>(std::ceil(cfg_.epochs * steps_per_epoch_));
  warmup_ = cfg_.warmup_steps > 0 ? cfg_.warmup_steps : static_cast<int64_t>(std::ceil(cfg_.warmup_ratio * total_));
  log("model: " + mm_.lm.config.model_type + ", " + std::to_string(count_parameters(model_, false)) + " parameters, " +
      std::to_string(res_.trainable_params) + " trainable (" + cfg_.method + ", " + cfg_.recipe + "); " + std::to_string(total_) +
      " steps of " + std::to_string(cfg_.batch_size * cfg_.grad_accum) + " examples; device " + (cuda_ ? "cuda" : "cpu"));
  run_plan_.total_steps = total_;
  run_plan_.train_examples = recipe_->train_size();
  run_plan_.eval_examples = recipe_->eval_size();
  run_plan_.trainable_params = res_.trainable_params;
  if (!resume_state_.is_null()) {
    const int64_t s = resume_state_.at("step").get<int64_t>();
    const int64_t k = s * cfg_.grad_accum;
    run_plan_.start_step = s;
    run_plan_.resumed = "step " + std::to_string(s) + ": " + (cfg_.method == "full" ? "model weights" : "adapter weights") +
                        ", optimizer moments, data position (epoch " + std::to_string(k / n_batches_ + 1) + ", batch " +
                        std::to_string(k % n_batches_ + 1) + " of " + std::to_string(n_batches_) + "), random state" +
                        (resume_state_.contains("rng_cuda") ? " (CPU and CUDA)" : " (CPU)");
  }
  if (opt_.on_ready) opt_.on_ready(run_plan_);
}

// 4. The run folder, and the recipe's start (DPO: the reference log-probs, when precomputed).
void Session::start_run_folder() {
  if (writer_) {
    make_dirs(opt_.run_dir);
    write_file_atomic(join_path(opt_.run_dir, "config.json"), cfg_.to_json().dump(2) + "\n");
  }
  ckpt_ = std::make_unique<CheckpointWriter>(opt_.run_dir, cfg_, world_);
  env_.model = model_;
  env_.dev = dev_;
  env_.adapters = cfg_.method != "full";
  env_.run_dir = opt_.run_dir;
  env_.log = [this](const std::string& s) { log(s); };
  env_.pad_id = tok_->pad_id() >= 0 ? tok_->pad_id() : std::max(tok_->eos_id(), 0);
  env_.group = group_;
  // Reference log-probs, when precomputed, come from the weights as they are before any step (the
  // base with adapters off, the starting adapter, or the base of a full fine-tune): so this runs
  // before a checkpoint's trained weights are copied in, and a resume into a new folder recomputes
  // the same table (the run's own folder has it cached).
  recipe_->start(env_, cfg_);
}

// 5. A resumed run continues from its checkpoint's weights, moments, random state and position.
void Session::resume() {
  torch::manual_seed(cfg_.seed);
  if (resume_state_.is_null()) return;
  const LoopState ls = loop_state_of(resume_state_);
  start_ = ls.step;
  // The run's step count so far: a run resumed from its last step's checkpoint (killed after
  // writing it, before recording its end) runs no step and would report 0.
  res_.steps = start_;
  best_eval_ = ls.best_eval_loss;
  bad_evals_ = ls.bad_evals;
  load_checkpoint_weights(opt_.resume_from, cfg_.method, model_, params_);
  restore_optimizer_and_rng(opt_.resume_from, resume_state_, cuda_, *optim_);
  if (!ls.recipe_state.is_null()) recipe_->restore_state(ls.recipe_state);
  log("resumed from " + opt_.resume_from + " at " + run_plan_.resumed);
}

// The eval_suites on the model as it is now (the evaluation restores training mode): choice suites
// by log-likelihood, chat suites by greedy answers, text suites by held-out loss (train/eval_suite.h).
Scalars Session::suite_scores() {
  Scalars out;
  const ChatTemplate t = chat_template_for(cfg_, *tok_);
  for (const auto& s : suites_) {
    const std::string p = "eval/" + s.name + "/";
    if (s.kind == DatasetKind::Choice) {
      std::vector<ChoiceQuestion> qs;
      for (const auto& r : s.rows) qs.push_back(choice_question(r));
      double acc = 0, acc_norm = 0;
      for (const auto& r : score_choices(model_, *tok_, t, qs, ChoiceFormat::Plain)) acc += r.correct, acc_norm += r.correct_norm;
      out.push_back({p + "acc", acc / static_cast<double>(qs.size())});
      out.push_back({p + "acc_norm", acc_norm / static_cast<double>(qs.size())});
    } else if (s.kind == DatasetKind::Chat) {
      std::vector<GenerateItem> items;
      std::vector<std::vector<ChatMessage>> prompts;
      for (const auto& r : s.rows) items.push_back(generate_item(r)), prompts.push_back(items.back().prompt);
      const auto answers = greedy_answers(model_, *tok_, t, prompts, cfg_.eval_max_new_tokens);
      double em = 0, cf = 0;
      for (size_t i = 0; i < items.size(); ++i) em += exact_match(answers[i], items[i].reference), cf += chrf(answers[i], items[i].reference);
      out.push_back({p + "exact_match", em / static_cast<double>(items.size())});
      out.push_back({p + "chrf", cf / static_cast<double>(items.size())});
    } else {
      double nll = 0, tokens = 0;
      for (const auto& l : heldout_loss(model_, *tok_, t, s.kind, s.rows, cfg_.max_seq_len)) nll += l.nll, tokens += static_cast<double>(l.tokens);
      out.push_back({p + "loss", tokens > 0 ? nll / tokens : 0});
    }
  }
  return out;
}

void Session::save_checkpoint(int64_t step, const RngState& rng) {
  if (!writer_) return;
  LoopState s;
  s.step = step;
  s.epoch = static_cast<double>(step) / steps_per_epoch_;
  s.best_eval_loss = best_eval_;
  s.bad_evals = bad_evals_;
  s.recipe_state = recipe_->state();
  res_.last_checkpoint = ckpt_->save(s, rng, model_, mm_.lora, *optim_);
  if (opt_.on_checkpoint) opt_.on_checkpoint(step, res_.last_checkpoint);
  ckpt_->prune();
}

std::vector<size_t> Session::rank_slice(std::vector<size_t> global) const {
  if (world_ == 1) return global;
  const size_t b = static_cast<size_t>(cfg_.batch_size), lo = std::min(global.size(), static_cast<size_t>(rank_) * b);
  return std::vector<size_t>(global.begin() + static_cast<std::ptrdiff_t>(lo),
                             global.begin() + static_cast<std::ptrdiff_t>(std::min(global.size(), lo + b)));
}

// The autograd engine may hand the Interrupted back wrapped. With several ranks a stop is agreed at
// the end of a step instead: a rank leaving mid-step would leave the others waiting in a collective.
bool Session::interruptible(const std::function<void()>& fn) {
  if (group_) {
    fn();
    return true;
  }
  if (stop_now()) return false;
  try {
    model_->interrupt = opt_.stop_requested;
    fn();
    model_->interrupt = nullptr;
    return true;
  } catch (...) {
    model_->interrupt = nullptr;
    if (!stop_now()) throw;
    return false;
  }
}

// 6. One optimizer step (or several updates over the same micro-batches), its metrics, evaluation,
// progress report, pause, checkpoint and stop.
StepEnd Session::step() {
  const int64_t step = step_;
  auto t0 = Clock::now();
  rng_at_start_ = RngState::capture(cuda_);
  if (world_ > 1) {
    // Each rank draws its own dropout masks and samples from a stream of its own, derived from
    // the seed, the step and the rank (the same after a resume), not from one state all ranks
    // would share.
    uint64_t z = static_cast<uint64_t>(cfg_.seed) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull ^
                 static_cast<uint64_t>(rank_ + 1) * 0x94D049BB133111EBull;
    z = (z ^ (z >> 31)) * 0x94D049BB133111EBull;
    torch::manual_seed(z ^ (z >> 29));
  }
  before_ = AdamW::Snapshot();
  updated_ = false;
  AdamW& optim = *optim_;
  const double lr = cfg_.lr * lr_multiplier(cfg_.schedule, step, total_, warmup_);
  std::vector<std::vector<size_t>> micro;
  std::vector<double> step_counts;
  int64_t step_tokens = 0;
  for (int64_t a = 0; a < cfg_.grad_accum; ++a) {
    const int64_t k = step * cfg_.grad_accum + a;
    micro.push_back(rank_slice(plan_->indices(k / n_batches_, k % n_batches_)));
    auto c = recipe_->counts(micro.back());
    if (step_counts.empty()) step_counts.assign(c.size(), 0);
    for (size_t i = 0; i < c.size(); ++i) step_counts[i] += c[i];
    step_tokens += recipe_->tokens(micro.back());
  }
  if (group_) {
    // The losses are normalised by the global batch's counts (tokens, pairs, ...), so that the
    // ranks' gradients add up to the one-process gradient.
    auto t = at::tensor(step_counts, at::kDouble);
    group_->all_reduce_sum(t);
    step_counts.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }
  double loss = 0, gnorm = 0;
  Scalars step_scalars;
  const int64_t updates = std::max<int64_t>(1, recipe_->updates_per_step());
  bool interrupted = !interruptible([&] { recipe_->begin_step(env_, micro); });
  for (int64_t u = 0; u < updates && !interrupted; ++u) {
    double update_loss = 0;
    env_.update = u;
    for (size_t k = 0; k < micro.size() && !interrupted; ++k) {
      env_.micro = static_cast<int64_t>(k);
      interrupted = !interruptible([&] {
        if (micro[k].empty()) return;  // this rank's slice of a short last batch
        MicroLoss ml = recipe_->loss(env_, micro[k], step_counts);
        if (ml.loss.defined()) {
          update_loss += ml.loss.item<double>();
          ml.loss.backward();
          accumulate(step_scalars, ml.scalars);
        }
      });
    }
    if (interrupted) break;
    if (group_) {
      // Gradients summed over the ranks, in buckets; a rank without a gradient for a parameter
      // (no rows this step) contributes zeros.
      std::vector<at::Tensor> grads;
      for (auto& p : params_) {
        if (!p.param.grad().defined()) p.param.mutable_grad() = at::zeros_like(p.param);
        grads.push_back(p.param.grad());
      }
      group_->all_reduce_sum(grads);
      auto l = at::tensor({update_loss}, at::kDouble);
      group_->all_reduce_sum(l);
      update_loss = l.item<double>();
    }
    if (!std::isfinite(update_loss)) {
      loss = update_loss;
      break;
    }
    if (updates > 1 && u == 0) before_ = optim.snapshot();
    gnorm += optim.clip_grad_norm(cfg_.max_grad_norm) / static_cast<double>(updates);
    optim.step(lr);
    optim.zero_grad();
    loss += update_loss / static_cast<double>(updates);
    updated_ = u + 1 == updates;
  }
  if (interrupted) {
    // Stopped inside a step: its partial gradients are dropped (and any updates it made are rolled
    // back), and the checkpoint is of the last finished step, with the random state that step
    // started from.
    optim.zero_grad();
    if (!before_.params.empty()) optim.restore(before_);
    if (step > 0) save_checkpoint(step, rng_at_start_);
    res_.status = "cancelled";
    return StepEnd::Stop;
  }
  if (!std::isfinite(loss)) {
    res_.status = "failed";
    res_.error = "loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " + std::to_string(step + 1) +
                 " (try a lower learning rate); " +
                 (res_.last_checkpoint.empty() ? "no checkpoint was written" : "the last good checkpoint is " + res_.last_checkpoint);
    return StepEnd::Stop;
  }
  bool agreed_stop = false;
  if (group_) {
    // The step's scalars are sums over its micro-batches normalised by the global counts: summed
    // over the ranks they are the global batch's. So are the tokens. A stop request (a signal
    // reaches the ranks at different moments) rides along, so all stop after the same step.
    std::vector<double> v = {static_cast<double>(step_tokens), stop_now() ? 1.0 : 0.0};
    for (const auto& x : step_scalars) v.push_back(x.value);
    auto t = at::tensor(v, at::kDouble);
    group_->all_reduce_sum(t);
    step_tokens = static_cast<int64_t>(t[0].item<double>());
    agreed_stop = t[1].item<double>() > 0;
    for (size_t i = 0; i < step_scalars.size(); ++i) step_scalars[i].value = t[static_cast<int64_t>(i) + 2].item<double>();
  }
  res_.losses.push_back(loss);
  res_.final_loss = loss;
  res_.steps = step + 1;

  StepMetrics m;
  m.step = step + 1;
  m.total_steps = total_;
  m.epoch = static_cast<double>(step + 1) / steps_per_epoch_;
  m.plot_hints = info_.plot_hints;
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  m.scalars.push_back({"loss", loss});
  for (const auto& x : step_scalars) m.scalars.push_back(x);
  m.scalars.push_back({"lr", lr});
  m.scalars.push_back({"grad_norm", gnorm});
  m.scalars.push_back({"tokens_per_s", dt > 0 ? step_tokens / dt : 0});
  m.scalars.push_back({"elapsed_s", std::chrono::duration<double>(Clock::now() - t_start_).count()});
  const double per_step = std::chrono::duration<double>(Clock::now() - t_loop_).count() / (step + 1 - start_);
  m.eta_s = per_step * (total_ - step - 1);
  m.rss_bytes = memory_use().needed();
  m.peak_rss_bytes = peak_rss_bytes();
  bool stop_early = false;
  if (recipe_->eval_size() > 0 && ((cfg_.eval_every > 0 && (step + 1) % cfg_.eval_every == 0) || step + 1 == total_)) {
    Scalars ev = recipe_->evaluate(env_, cfg_.batch_size);
    const double el = scalar_value(ev, "eval_loss");
    for (const auto& x : ev) m.scalars.push_back(x);
    if (std::isnan(best_eval_) || el < best_eval_) {
      best_eval_ = el;
      bad_evals_ = 0;
    } else if (cfg_.early_stopping_patience > 0 && ++bad_evals_ >= cfg_.early_stopping_patience) {
      stop_early = true;
    }
  }
  if (!suites_.empty() && ((cfg_.eval_suites_every > 0 && (step + 1) % cfg_.eval_suites_every == 0) || step + 1 == total_))
    for (const auto& x : suite_scores()) m.scalars.push_back(x);
  res_.final_scalars = m.scalars;
  if (writer_) {
    nlohmann::json row = {{"step", m.step}, {"epoch", m.epoch}};
    for (const auto& x : m.scalars) row[x.name] = x.value;
    metrics_ << row.dump() << "\n" << std::flush;
  }
  // Report the step before checkpointing it, so that whoever records metrics has this step's
  // values in hand when the checkpoint appears (a resume starts after it).
  Control c = opt_.on_progress ? opt_.on_progress(m) : Control::Continue;
  if (group_) {
    // Cancelling one rank alone would stall the others: only agreed stops count. A pause is rank
    // 0's to ask for (its front end's Pause, or SIGUSR2 through hone-cli launch); every rank learns
    // it from one small sum after each step and all wait together, still agreeing on stops.
    bool pause = writer_ && c == Control::Pause;
    c = agreed_stop ? Control::Cancel : Control::Continue;
    for (bool first = true; c != Control::Cancel; first = false) {
      auto t = at::tensor(std::vector<double>{pause ? 1.0 : 0.0, stop_now() ? 1.0 : 0.0}, at::kDouble);
      group_->all_reduce_sum(t);
      if (t[1].item<double>() > 0) c = Control::Cancel;
      if (c == Control::Cancel || t[0].item<double>() == 0) break;
      if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      m.paused = true;
      if (writer_ && opt_.on_progress) pause = opt_.on_progress(m) == Control::Pause;
    }
  } else {
    while (c == Control::Pause && !stop_now()) {  // all state stays in memory while paused
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      m.paused = true;
      c = opt_.on_progress(m);
    }
    if (stop_now()) c = Control::Cancel;
  }
  const bool timed = cfg_.save_every_minutes > 0 &&
                     std::chrono::duration<double>(Clock::now() - t_saved_).count() >= cfg_.save_every_minutes * 60;
  if (c == Control::Cancel || timed || (cfg_.save_every > 0 && (step + 1) % cfg_.save_every == 0)) {
    save_checkpoint(step + 1, RngState::capture(cuda_));
    t_saved_ = Clock::now();
  }
  if (c == Control::Cancel) {
    res_.status = "cancelled";
    return StepEnd::Stop;
  }
  if (stop_early) {
    res_.status = "stopped_early";
    return StepEnd::Stop;
  }
  return StepEnd::Next;
}

// A rank was lost (or the network failed): the survivors stop with the weights of the last
// finished step, rank 0 checkpoints them, and the run is interrupted, to resume from there.
void Session::checkpoint_after_lost_rank() {
  model_->interrupt = nullptr;
  optim_->zero_grad();
  try {
    if (updated_ && before_.params.empty()) {
      save_checkpoint(step_ + 1, RngState::capture(cuda_));  // the step's update is in; its metrics are not
    } else {
      if (!before_.params.empty()) optim_->restore(before_);
      if (step_ > 0) save_checkpoint(step_, rng_at_start_);
    }
  } catch (const std::exception& x) {
    log(std::string("could not checkpoint after the loss: ") + x.what());
  }
}

// 7. The result: the adapter (PEFT files) or the full model with the tokenizer.
void Session::write_output() {
  if (res_.status == "failed" || res_.status == "interrupted" || !writer_) return;
  if (cfg_.method == "full") {
    res_.output_dir = join_path(opt_.run_dir, "model");
    SaveOptions so;
    so.dtypes = mm_.lm.file_dtypes;
    save_model(model_, res_.output_dir, so);
    copy_tokenizer_files(cfg_.base_model, res_.output_dir);
  } else {
    res_.output_dir = join_path(opt_.run_dir, "adapter");
    save_peft_adapter(model_, mm_.lora, cfg_.base_model, res_.output_dir);
  }
}

TrainResult Session::run() {
  // The peak shown while training is this run's: the desktop app trains in its own process, whose
  // earlier peak (an earlier run, a generation) would otherwise stand (proc(5): clear_refs 5).
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
  if (cfg_.threads > 0) init_runtime(static_cast<int>(cfg_.threads));
  check_inputs();
  set_up_model();
  plan_steps();
  start_run_folder();
  resume();
  if (writer_) metrics_.open(join_path(opt_.run_dir, "metrics.jsonl"), std::ios::app);
  t_loop_ = t_saved_ = Clock::now();
  res_.status = "completed";
  ThreadGovernor governor;  // fewer threads while other busy processes hold cores (runtime.h)
  try {
    for (step_ = start_; step_ < total_; ++step_) {
      governor.tick();
      if (step() == StepEnd::Stop) break;
    }
  } catch (const DistError& e) {
    const std::string who = group_ ? group_->diagnose_loss() : std::string("a rank was lost");
    checkpoint_after_lost_rank();
    res_.status = "interrupted";
    res_.error = who + " (" + std::string(e.what()).substr(0, 240) + "); " +
                 (res_.last_checkpoint.empty() ? "no checkpoint was written" : "resume from " + res_.last_checkpoint);
  } catch (const c10::Error& e) {
    res_.status = "failed";
    std::string w = e.what_without_backtrace();
    res_.error = w.find("alloc") != std::string::npos ? "out of memory: " + w.substr(0, w.find('\n')) : w.substr(0, w.find('\n'));
  } catch (const std::bad_alloc&) {
    res_.status = "failed";
    res_.error = "out of memory (try a smaller batch_size or max_seq_len, gradient_checkpointing, or qlora)";
  } catch (const Error& e) {
    res_.status = "failed";
    res_.error = std::string(e.what()) + "; " +
                 (res_.last_checkpoint.empty() ? "no checkpoint was written" : "the last good checkpoint is " + res_.last_checkpoint);
  }
  res_.best_eval_loss = best_eval_;
  write_output();
  res_.seconds = std::chrono::duration<double>(Clock::now() - t_start_).count();
  return res_;
}

}  // namespace

int64_t peak_rss_bytes() { return needed_peak(); }

TrainResult train(const RunConfig& cfg, const TrainOptions& opt) { return Session(cfg, opt).run(); }

}  // namespace hone
