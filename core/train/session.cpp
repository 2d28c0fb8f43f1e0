// The training session: everything the methods share. Model set-up per method (full, LoRA, QLoRA,
// a starting adapter, a frozen reference copy when a full-fine-tuning recipe needs one), AdamW and
// the schedule, accumulation, clipping, evaluation cadence, early stopping, checkpoints on a step
// and a time interval with every RNG state, exact resume, stop requests between micro-batches, and
// the metrics sink. What differs per method is the recipe (train/recipe.h).
// Micro-batch k of the run is batch (k mod n) of epoch (k div n) in a fixed per-epoch order, so a
// run's data position follows from its step count and resume is exact.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <sys/stat.h>

#include <cstdio>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "common/cpu_allocator.h"
#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "common/runtime.h"
#include "dist/process_group.h"
#include "model/bf16_gemm.h"
#include "model/checkpoint.h"
#include "model/value_head.h"
#include "peft/lora.h"
#include "train/adamw.h"
#include "train/batches.h"
#include "train/recipe.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace hone {
namespace {

using Clock = std::chrono::steady_clock;

int64_t read_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::strlen(key)) * 1024;
  return 0;
}

std::string hex(const at::Tensor& bytes) {
  auto c = bytes.contiguous();
  const uint8_t* p = c.data_ptr<uint8_t>();
  static const char* d = "0123456789abcdef";
  std::string s;
  for (int64_t i = 0; i < c.numel(); ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

at::Tensor unhex(const std::string& s) {
  auto t = at::empty({static_cast<int64_t>(s.size() / 2)}, at::kByte);
  uint8_t* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i + 1 < s.size(); i += 2) p[i / 2] = static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16));
  return t;
}

void mkdirs(const std::string& d) {
  std::error_code ec;
  std::filesystem::create_directories(d, ec);
  if (!is_directory(d)) throw file_error(d, "cannot create folder" + (ec ? ": " + ec.message() : std::string()));
}

void remove_tree(const std::string& d) {
  std::error_code ec;  // best effort: a leftover temporary folder is harmless
  if (!d.empty() && d != "/") std::filesystem::remove_all(d, ec);
}

// Every random state a run uses: the CPU generator (LoRA dropout, init) and, on CUDA, the device's.
struct RngState {
  at::Tensor cpu, cuda;
  static RngState capture(bool cuda) {
    RngState s;
    s.cpu = at::detail::getDefaultCPUGenerator().get_state();
    if (cuda) s.cuda = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0)).get_state();
    return s;
  }
  void restore() const {
    if (cpu.defined()) {
      at::Generator g = at::detail::getDefaultCPUGenerator();
      g.set_state(cpu);
    }
    if (cuda.defined()) {
      at::Generator g = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0));
      g.set_state(cuda);
    }
  }
};

// Sums named scalars over micro-batches, keeping first-seen order.
void accumulate(Scalars& into, const Scalars& add) {
  for (const auto& x : add) set_scalar(into, x.name, scalar_value(into, x.name, 0) + x.value);
}

}  // namespace

int64_t peak_rss_bytes() { return read_status_kb("VmHWM:"); }

TrainResult train(const RunConfig& cfg, const TrainOptions& opt) {
  auto t_start = Clock::now();
  // The peak shown while training is this run's: the desktop app trains in its own process, whose
  // earlier peak (an earlier run, a generation) would otherwise stand (proc(5): clear_refs 5).
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
  auto log = [&](const std::string& s) {
    if (opt.on_log) opt.on_log(s);
  };
  if (cfg.threads > 0) init_runtime(static_cast<int>(cfg.threads));
  ProcessGroup* group = opt.group;
  const int rank = group ? group->rank() : opt.rank;
  const int world = group ? group->world_size() : std::max(1, opt.world_size);
  const bool writer = rank == 0;  // one process writes the run folder

  // 1. Everything that can be wrong with the inputs is checked before training work starts.
  load_model_config(cfg.base_model);
  checkpoint_files(cfg.base_model);
  auto tok = load_tokenizer(cfg.base_model);
  std::unique_ptr<Recipe> recipe = make_recipe(cfg.recipe);
  recipe->prepare(cfg, *tok, opt.on_log);
  log("data: " + recipe->data_summary());
  nlohmann::json resume_state;
  if (!opt.resume_from.empty()) {
    const std::string st_path = join_path(opt.resume_from, "trainer_state.json");
    if (!file_exists(st_path)) throw file_error(st_path, "not found: this folder is not a Hone checkpoint");
    resume_state = read_json_file(st_path);
    if (resume_state.value("recipe", cfg.recipe) != cfg.recipe)
      throw file_error(st_path, "was written by a " + resume_state.value("recipe", std::string()) + " run, not " + cfg.recipe);
    // The data position of a step depends on the global batch, so the world size must match.
    if (const int saved = resume_state.value("world_size", 1); saved != world)
      throw file_error(st_path, "was written by a run of " + std::to_string(saved) + " process" + (saved == 1 ? "" : "es") +
                                    "; resume it with the same number (this run has " + std::to_string(world) + ")");
  }

  const bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && torch::cuda::is_available());
  const at::Device dev = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (cfg.mixed_precision == "bf16" && !cuda)
    throw Error("mixed_precision \"bf16\" needs a CUDA device; on the CPU, \"base_dtype\": \"bf16\" stores the frozen base in bf16 "
                "with fp32 accumulation (autocast's bf16 outputs measured slower and less exact there)");
  const bool autocast = cuda && cfg.mixed_precision != "no";
  if (autocast) log("mixed precision: autocast to bf16 on CUDA");

  // 2. The model for the method.
  const BaseDtypeChoice base_dtype =
      resolve_base_dtype(cfg.base_dtype, cfg.method, cuda, load_model_config(cfg.base_model).parameter_count() * 4);
  LoadOptions load_opt;
  load_opt.base_bf16 = base_dtype.bf16 && cfg.method == "lora";  // qlora quantizes from fp32 first
  load_opt.base_nf4 = cfg.method == "qlora";                       // layer by layer, as it loads
  auto lm = load_model(cfg.base_model, load_opt);
  CausalLM model = lm.model;
  for (auto& p : model->parameters()) p.set_requires_grad(cfg.method == "full");
  TrainResult res;
  if (cfg.method == "qlora") res.frozen_weight_bytes = quantize_base_nf4(model);
  if (base_dtype.bf16) store_base_bf16(model);  // qlora: the embedding and an untied head
  log("base weights: " + base_dtype.why);
  LoraConfig lora = cfg.lora;
  if (cfg.method != "full") {
    if (cfg.method == "lora")
      for (auto& item : model->named_modules())
        if (auto* l = dynamic_cast<LinearImpl*>(item.value().get()); l && item.key() != "lm_head")
          res.frozen_weight_bytes += l->weight.numel() * l->weight.element_size();
    if (!cfg.init_adapter.empty()) {
      lora = load_peft_adapter(model, cfg.init_adapter);
      lora.targets = cfg.lora.targets;
      for (auto& p : model->named_parameters())
        p.value().set_requires_grad(p.key().find(".lora_") != std::string::npos);
      log("starting from adapter " + cfg.init_adapter);
    } else {
      attach_lora(model, cfg.lora, cfg.seed);
    }
  }
  recipe->setup_model(model, cfg);
  RecipeEnv env;
  if (recipe->needs_reference() && cfg.method == "full" && !cfg.precompute_ref_log_probs) {
    env.reference = load_model(cfg.base_model).model;  // a frozen copy: full training changes every weight
    for (auto& p : env.reference->parameters()) p.set_requires_grad(false);
    env.reference->eval();
    if (cuda) env.reference->to(dev);
  }
  if (cuda) model->to(dev);
  model->gradient_checkpointing = cfg.gradient_checkpointing;
  model->set_mlp_recompute(cfg.mlp_recompute && !cfg.gradient_checkpointing);  // a checkpointed layer recomputes it all
  model->train();
  std::vector<NamedParam> params;
  for (auto& p : model->named_parameters())
    if (p.value().requires_grad()) params.push_back({p.key(), p.value(), decays(p.key())});
  for (auto& p : params) res.trainable_params += p.param.numel();
  AdamW optim(params, {cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay});
  trim_cpu_allocator();  // what loading and preparing the model freed is not kept for training

  // Distributed: the plan is of global batches (batch_size per rank), each rank taking its slice.
  BatchPlan plan(recipe->train_lengths(), cfg.batch_size * world, cfg.seed, cfg.bucket_by_length);
  auto rank_slice = [&](std::vector<size_t> global) {
    if (world == 1) return global;
    const size_t b = static_cast<size_t>(cfg.batch_size), lo = std::min(global.size(), static_cast<size_t>(rank) * b);
    return std::vector<size_t>(global.begin() + static_cast<std::ptrdiff_t>(lo),
                               global.begin() + static_cast<std::ptrdiff_t>(std::min(global.size(), lo + b)));
  };
  if (world > 1) log("distributed: " + (group ? group->env().describe() + ", " + group->backend() : "rank " + std::to_string(rank)) + "; global batch " +
                     std::to_string(cfg.batch_size * world));
  const int64_t n_batches = plan.batches_per_epoch();
  const int64_t steps_per_epoch = std::max<int64_t>(1, (n_batches + cfg.grad_accum - 1) / cfg.grad_accum);
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps : static_cast<int64_t>(std::ceil(cfg.epochs * steps_per_epoch));
  const int64_t warmup = cfg.warmup_steps > 0 ? cfg.warmup_steps : static_cast<int64_t>(std::ceil(cfg.warmup_ratio * total));
  log("model: " + lm.config.model_type + ", " + std::to_string(count_parameters(model, false)) + " parameters, " +
      std::to_string(res.trainable_params) + " trainable (" + cfg.method + ", " + cfg.recipe + "); " + std::to_string(total) +
      " steps of " + std::to_string(cfg.batch_size * cfg.grad_accum) + " examples; device " + (cuda ? "cuda" : "cpu"));

  RunPlan rp;
  rp.total_steps = total;
  rp.train_examples = recipe->train_size();
  rp.eval_examples = recipe->eval_size();
  rp.trainable_params = res.trainable_params;
  if (!resume_state.is_null()) {
    const int64_t s = resume_state.at("step").get<int64_t>();
    const int64_t k = s * cfg.grad_accum;
    rp.start_step = s;
    rp.resumed = "step " + std::to_string(s) + ": " + (cfg.method == "full" ? "model weights" : "adapter weights") +
                 ", optimizer moments, data position (epoch " + std::to_string(k / n_batches + 1) + ", batch " +
                 std::to_string(k % n_batches + 1) + " of " + std::to_string(n_batches) + "), random state" +
                 (resume_state.contains("rng_cuda") ? " (CPU and CUDA)" : " (CPU)");
  }
  if (opt.on_ready) opt.on_ready(rp);

  // 3. The run folder.
  const std::string ckpt_root = join_path(opt.run_dir, "checkpoints");
  if (writer) {
    mkdirs(opt.run_dir);
    write_file_atomic(join_path(opt.run_dir, "config.json"), cfg.to_json().dump(2) + "\n");
  }
  env.model = model;
  env.dev = dev;
  env.autocast = autocast;
  env.adapters = cfg.method != "full";
  env.run_dir = opt.run_dir;
  env.log = log;
  env.pad_id = tok->pad_id() >= 0 ? tok->pad_id() : std::max(tok->eos_id(), 0);
  env.group = group;

  // Reference log-probs, when precomputed, come from the weights as they are before any step (the
  // base with adapters off, the starting adapter, or the base of a full fine-tune): so this runs
  // before a checkpoint's trained weights are copied in, and a resume into a new folder recomputes
  // the same table (the run's own folder has it cached).
  recipe->start(env, cfg);

  int64_t start = 0, bad_evals = 0;
  double best_eval = NAN;
  torch::manual_seed(cfg.seed);
  if (!resume_state.is_null()) {
    const auto& st = resume_state;
    start = st.at("step").get<int64_t>();
    if (st.contains("best_eval_loss") && st["best_eval_loss"].is_number()) best_eval = st["best_eval_loss"].get<double>();
    bad_evals = st.value("bad_evals", 0);
    at::NoGradGuard ng;
    if (cfg.method == "full") {
      auto saved = load_model(join_path(opt.resume_from, "model"));
      auto src = saved.model->named_parameters();
      for (auto& p : model->named_parameters()) p.value().copy_(src[p.key()]);
    } else {
      // The adapters are attached already: copy the saved tensors into them (PEFT key names).
      // A PPO value model (head, critic adapter) is kept beside the adapter, in its own file
      // (model/value_head.h).
      const std::string adir = join_path(opt.resume_from, "adapter");
      const std::string ap = join_path(adir, "adapter_model.safetensors");
      SafetensorsFile sf(ap);
      std::unique_ptr<SafetensorsFile> vh;
      for (auto& p : params) {
        const SafetensorsFile* file = &sf;
        const auto* info = sf.find("base_model.model." + p.name);
        if (!info && is_value_model_tensor(p.name)) {
          if (!vh) vh = std::make_unique<SafetensorsFile>(join_path(adir, kValueHeadFile));
          file = vh.get();
          info = vh->find(p.name);
        }
        if (!info) throw file_error(file->path(), "checkpoint lacks '" + p.name + "' (was it made with another LoRA config?)");
        auto t = tensor_from_bytes(file->data(*info), info->dtype, info->shape, file->path());
        if (t.sizes() != p.param.sizes()) throw file_error(ap, "'" + p.name + "' has another shape than this run's adapter");
        p.param.copy_(t);
      }
    }
  }
  if (!resume_state.is_null()) {
    const auto& st = resume_state;
    optim.load(join_path(opt.resume_from, "optimizer.safetensors"));
    RngState rs;
    rs.cpu = unhex(st.at("rng").get<std::string>());
    if (cuda && st.contains("rng_cuda")) rs.cuda = unhex(st["rng_cuda"].get<std::string>());
    rs.restore();
    if (st.contains("recipe_state")) recipe->restore_state(st["recipe_state"]);
    log("resumed from " + opt.resume_from + " at " + rp.resumed);
  }

  auto save_checkpoint = [&](int64_t step, const RngState& rng) {
    if (!writer) return;
    mkdirs(ckpt_root);
    char name[32];
    std::snprintf(name, sizeof(name), "step-%06lld", static_cast<long long>(step));
    const std::string final_dir = join_path(ckpt_root, name);
    const std::string tmp = join_path(ckpt_root, std::string(".tmp-") + name);
    remove_tree(tmp);
    mkdirs(tmp);
    try {
      if (cfg.method == "full") {
        SaveOptions so;
        save_model(model, join_path(tmp, "model"), so);
      } else {
        save_peft_adapter(model, lora, cfg.base_model, join_path(tmp, "adapter"));
      }
      optim.save(join_path(tmp, "optimizer.safetensors"));
      nlohmann::json st = {{"step", step},
                           {"epoch", static_cast<double>(step) / steps_per_epoch},
                           {"recipe", cfg.recipe},
                           {"rng", hex(rng.cpu)},
                           {"best_eval_loss", best_eval},
                           {"bad_evals", bad_evals},
                           {"seed", cfg.seed},
                           {"world_size", world}};
      if (rng.cuda.defined()) st["rng_cuda"] = hex(rng.cuda);
      if (auto rs = recipe->state(); !rs.is_null()) st["recipe_state"] = rs;
      write_file_atomic(join_path(tmp, "trainer_state.json"), st.dump(2) + "\n");
    } catch (...) {
      remove_tree(tmp);  // the previous checkpoint stays intact
      throw;
    }
    remove_tree(final_dir);
    if (::rename(tmp.c_str(), final_dir.c_str()) != 0) throw file_error(final_dir, "cannot finish the checkpoint");
    res.last_checkpoint = final_dir;
    if (opt.on_checkpoint) opt.on_checkpoint(step, final_dir);
    // Keep the newest keep_checkpoints.
    std::vector<std::string> all;
    for (const auto& e : std::filesystem::directory_iterator(ckpt_root)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("step-", 0) == 0) all.push_back(n);
    }
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(1, cfg.keep_checkpoints)) < all.size(); ++i)
      remove_tree(join_path(ckpt_root, all[i]));
  };

  std::ofstream metrics;
  if (writer) metrics.open(join_path(opt.run_dir, "metrics.jsonl"), std::ios::app);
  const std::vector<std::string> hints = recipe->plot_hints();
  auto t_loop = Clock::now();
  auto t_saved = Clock::now();
  auto stop_now = [&] { return opt.stop_requested && opt.stop_requested(); };
  res.status = "completed";
  // Where the step in progress stands, for a lost rank's checkpoint (caught below the loop).
  int64_t step = start;
  RngState rng_at_start;                   // what a checkpoint of `step` must hold
  AdamW::Snapshot before;                  // several updates per step: what a stop part-way rolls back to
  bool updated = false;                    // the step's (last) optimizer update is in the weights
  ThreadGovernor governor;  // fewer threads while other busy processes hold cores (runtime.h)
  try {
    for (; step < total; ++step) {
      governor.tick();
      auto t0 = Clock::now();
      rng_at_start = RngState::capture(cuda);
      if (world > 1) {
        // Each rank draws its own dropout masks and samples from a stream of its own, derived from
        // the seed, the step and the rank (the same after a resume), not from one state all ranks
        // would share.
        uint64_t z = static_cast<uint64_t>(cfg.seed) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull ^
                     static_cast<uint64_t>(rank + 1) * 0x94D049BB133111EBull;
        z = (z ^ (z >> 31)) * 0x94D049BB133111EBull;
        torch::manual_seed(z ^ (z >> 29));
      }
      before = AdamW::Snapshot();
      updated = false;
      const double lr = cfg.lr * lr_multiplier(cfg.schedule, step, total, warmup);
      std::vector<std::vector<size_t>> micro;
      std::vector<double> step_counts;
      int64_t step_tokens = 0;
      for (int64_t a = 0; a < cfg.grad_accum; ++a) {
        const int64_t k = step * cfg.grad_accum + a;
        micro.push_back(rank_slice(plan.indices(k / n_batches, k % n_batches)));
        auto c = recipe->counts(micro.back());
        if (step_counts.empty()) step_counts.assign(c.size(), 0);
        for (size_t i = 0; i < c.size(); ++i) step_counts[i] += c[i];
        step_tokens += recipe->tokens(micro.back());
      }
      if (group) {
        // The losses are normalised by the global batch's counts (tokens, pairs, ...), so that
        // the ranks' gradients add up to the one-process gradient.
        auto t = at::tensor(step_counts, at::kDouble);
        group->all_reduce_sum(t);
        step_counts.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
      }
      double loss = 0, gnorm = 0;
      Scalars step_scalars;
      bool interrupted = false;
      const int64_t updates = std::max<int64_t>(1, recipe->updates_per_step());
      // Runs `fn` with stop requests reaching inside the forward and backward passes; false when a
      // stop was requested (the autograd engine may hand the Interrupted back wrapped). With
      // several ranks a stop is agreed at the end of a step instead: a rank leaving mid-step
      // would leave the others waiting in a collective.
      auto interruptible = [&](const std::function<void()>& fn) {
        if (group) {
          fn();
          return true;
        }
        if (stop_now()) return false;
        try {
          model->interrupt = opt.stop_requested;
          fn();
          model->interrupt = nullptr;
          return true;
        } catch (...) {
          model->interrupt = nullptr;
          if (!stop_now()) throw;
          return false;
        }
      };
      interrupted = !interruptible([&] { recipe->begin_step(env, micro); });
      for (int64_t u = 0; u < updates && !interrupted; ++u) {
        double update_loss = 0;
        env.update = u;
        for (size_t k = 0; k < micro.size() && !interrupted; ++k) {
          env.micro = static_cast<int64_t>(k);
          interrupted = !interruptible([&] {
            if (micro[k].empty()) return;  // this rank's slice of a short last batch
            MicroLoss ml = recipe->loss(env, micro[k], step_counts);
            if (ml.loss.defined()) {
              update_loss += ml.loss.item<double>();
              ml.loss.backward();
              accumulate(step_scalars, ml.scalars);
            }
          });
        }
        if (interrupted) break;
        if (group) {
          // Gradients summed over the ranks, in buckets; a rank without a gradient for a
          // parameter (no rows this step) contributes zeros.
          std::vector<at::Tensor> grads;
          for (auto& p : params) {
            if (!p.param.grad().defined()) p.param.mutable_grad() = at::zeros_like(p.param);
            grads.push_back(p.param.grad());
          }
          group->all_reduce_sum(grads);
          auto l = at::tensor({update_loss}, at::kDouble);
          group->all_reduce_sum(l);
          update_loss = l.item<double>();
        }
        if (!std::isfinite(update_loss)) {
          loss = update_loss;
          break;
        }
        if (updates > 1 && u == 0) before = optim.snapshot();
        gnorm += optim.clip_grad_norm(cfg.max_grad_norm) / static_cast<double>(updates);
        optim.step(lr);
        optim.zero_grad();
        loss += update_loss / static_cast<double>(updates);
        updated = u + 1 == updates;
      }
      if (interrupted) {
        // Stopped inside a step: its partial gradients are dropped (and any updates it made are
        // rolled back), and the checkpoint is of the last finished step, with the random state
        // that step started from.
        optim.zero_grad();
        if (!before.params.empty()) optim.restore(before);
        if (step > 0) save_checkpoint(step, rng_at_start);
        res.status = "cancelled";
        break;
      }
      if (!std::isfinite(loss)) {
        res.status = "failed";
        res.error = "loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " + std::to_string(step + 1) +
                    " (try a lower learning rate); " +
                    (res.last_checkpoint.empty() ? "no checkpoint was written" : "the last good checkpoint is " + res.last_checkpoint);
        break;
      }
      bool agreed_stop = false;
      if (group) {
        // The step's scalars are sums over its micro-batches normalised by the global counts:
        // summed over the ranks they are the global batch's. So are the tokens. A stop request
        // (a signal reaches the ranks at different moments) rides along, so all stop after the
        // same step.
        std::vector<double> v = {static_cast<double>(step_tokens), stop_now() ? 1.0 : 0.0};
        for (const auto& x : step_scalars) v.push_back(x.value);
        auto t = at::tensor(v, at::kDouble);
        group->all_reduce_sum(t);
        step_tokens = static_cast<int64_t>(t[0].item<double>());
        agreed_stop = t[1].item<double>() > 0;
        for (size_t i = 0; i < step_scalars.size(); ++i) step_scalars[i].value = t[static_cast<int64_t>(i) + 2].item<double>();
      }
      res.losses.push_back(loss);
      res.final_loss = loss;
      res.steps = step + 1;

      StepMetrics m;
      m.step = step + 1;
      m.total_steps = total;
      m.epoch = static_cast<double>(step + 1) / steps_per_epoch;
      m.plot_hints = hints;
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      m.scalars.push_back({"loss", loss});
      for (const auto& x : step_scalars) m.scalars.push_back(x);
      m.scalars.push_back({"lr", lr});
      m.scalars.push_back({"grad_norm", gnorm});
      m.scalars.push_back({"tokens_per_s", dt > 0 ? step_tokens / dt : 0});
      m.scalars.push_back({"elapsed_s", std::chrono::duration<double>(Clock::now() - t_start).count()});
      const double per_step = std::chrono::duration<double>(Clock::now() - t_loop).count() / (step + 1 - start);
      m.eta_s = per_step * (total - step - 1);
      m.rss_bytes = read_status_kb("VmRSS:");
      m.peak_rss_bytes = peak_rss_bytes();
      bool stop_early = false;
      if (recipe->eval_size() > 0 && ((cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) || step + 1 == total)) {
        Scalars ev = recipe->evaluate(env, cfg.batch_size);
        const double el = scalar_value(ev, "eval_loss");
        for (const auto& x : ev) m.scalars.push_back(x);
        if (std::isnan(best_eval) || el < best_eval) {
          best_eval = el;
          bad_evals = 0;
        } else if (cfg.early_stopping_patience > 0 && ++bad_evals >= cfg.early_stopping_patience) {
          stop_early = true;
        }
      }
      res.final_scalars = m.scalars;
      if (writer) {
        nlohmann::json row = {{"step", m.step}, {"epoch", m.epoch}};
        for (const auto& x : m.scalars) row[x.name] = x.value;
        metrics << row.dump() << "\n" << std::flush;
      }
      // Report the step before checkpointing it, so that whoever records metrics has this step's
      // values in hand when the checkpoint appears (a resume starts after it).
      Control c = opt.on_progress ? opt.on_progress(m) : Control::Continue;
      if (group) {
        // Pausing or cancelling one rank alone would stall the others: only agreed stops count.
        c = agreed_stop ? Control::Cancel : Control::Continue;
      } else {
        while (c == Control::Pause && !stop_now()) {  // all state stays in memory while paused
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          m.paused = true;
          c = opt.on_progress(m);
        }
        if (stop_now()) c = Control::Cancel;
      }
      const bool timed = cfg.save_every_minutes > 0 &&
                         std::chrono::duration<double>(Clock::now() - t_saved).count() >= cfg.save_every_minutes * 60;
      if (c == Control::Cancel || timed || (cfg.save_every > 0 && (step + 1) % cfg.save_every == 0)) {
        save_checkpoint(step + 1, RngState::capture(cuda));
        t_saved = Clock::now();
      }
      if (c == Control::Cancel) {
        res.status = "cancelled";
        break;
      }
      if (stop_early) {
        res.status = "stopped_early";
        break;
      }
    }
  } catch (const DistError& e) {
    // A rank was lost (or the network failed): the survivors stop with the weights of the last
    // finished step, rank 0 checkpoints them, and the run is interrupted, to resume from there.
    model->interrupt = nullptr;
    optim.zero_grad();
    const std::string who = group ? group->diagnose_loss() : std::string("a rank was lost");
    try {
      if (updated && before.params.empty()) {
        save_checkpoint(step + 1, RngState::capture(cuda));  // the step's update is in; its metrics are not
      } else {
        if (!before.params.empty()) optim.restore(before);
        if (step > 0) save_checkpoint(step, rng_at_start);
      }
    } catch (const std::exception& x) {
      log(std::string("could not checkpoint after the loss: ") + x.what());
    }
    res.status = "interrupted";
    res.error = who + " (" + std::string(e.what()).substr(0, 240) + "); " +
                (res.last_checkpoint.empty() ? "no checkpoint was written" : "resume from " + res.last_checkpoint);
  } catch (const c10::Error& e) {
    res.status = "failed";
    std::string w = e.what_without_backtrace();
    res.error = w.find("alloc") != std::string::npos ? "out of memory: " + w.substr(0, w.find('\n')) : w.substr(0, w.find('\n'));
  } catch (const std::bad_alloc&) {
    res.status = "failed";
    res.error = "out of memory (try a smaller batch_size or max_seq_len, gradient_checkpointing, or qlora)";
  } catch (const Error& e) {
    res.status = "failed";
    res.error = std::string(e.what()) + "; " +
                (res.last_checkpoint.empty() ? "no checkpoint was written" : "the last good checkpoint is " + res.last_checkpoint);
  }
  res.best_eval_loss = best_eval;
  if (res.status != "failed" && res.status != "interrupted" && writer) {
    if (cfg.method == "full") {
      res.output_dir = join_path(opt.run_dir, "model");
      SaveOptions so;
      so.dtypes = lm.file_dtypes;
      save_model(model, res.output_dir, so);
      copy_tokenizer_files(cfg.base_model, res.output_dir);
    } else {
      res.output_dir = join_path(opt.run_dir, "adapter");
      save_peft_adapter(model, lora, cfg.base_model, res.output_dir);
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return res;
}

}  // namespace hone
