// Training loop. Micro-batch k of the run is batch (k mod n) of epoch (k div n) in a fixed
// per-epoch order, so a run's data position follows from its step count and resume is exact.
// The loss of a step is the token mean over all its micro-batches (not a mean of means).
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <sys/stat.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "common/runtime.h"
#include "data/sequences.h"
#include "train/loss.h"
#include "model/checkpoint.h"
#include "peft/lora.h"
#include "train/adamw.h"
#include "train/batches.h"
#include "train/schedule.h"

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

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}) {
    std::string src = join_path(from, f);
    if (file_exists(src)) write_file_atomic(join_path(to, f), read_file(src));
  }
}

// Autocast on CUDA for the span of a forward pass: PyTorch's own op lists decide what runs in
// bf16 (matmuls) and what stays fp32 (norms, softmax, the loss; logits are cast to fp32).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on) : on_(on) {
    if (!on_) return;
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // the cached bf16 weight copies
    at::autocast::set_enabled(false);
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

// Token-summed cross entropy of next-token prediction over labelled positions.
at::Tensor loss_sum(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast = false) {
  CudaAutocast ac(autocast);
  return next_token_loss_sum(m, b.ids.to(dev), b.attention_mask.to(dev), b.labels.to(dev));
}

struct Prepared {
  std::vector<Sequence> train, eval;
  TokenizeStats stats;
  int32_t pad_id = 0;
};

Prepared prepare_data(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) {
  Prepared p;
  auto build = [&](const std::vector<std::string>& files, TokenizeStats* st) {
    std::vector<Sequence> out;
    if (cfg.recipe == "cpt") {
      std::vector<std::string> docs;
      for (const auto& f : files) {
        auto d = read_documents(f);
        docs.insert(docs.end(), d.begin(), d.end());
      }
      out = pack_documents(tok, docs, cfg.max_seq_len, st, cfg.packing);
    } else {
      ExampleFormat fmt;
      if (!example_format_from_name(cfg.data_format, &fmt)) throw Error("unknown data_format \"" + cfg.data_format + "\"");
      std::vector<Conversation> convs;
      for (const auto& f : files) {
        auto c = read_conversations(f, fmt);
        convs.insert(convs.end(), c.begin(), c.end());
      }
      ChatFormat cf = detect_chat_format(tok.config().chat_template);
      if (cfg.chat_template != "auto" && !chat_format_from_name(cfg.chat_template, &cf))
        throw Error("unknown chat_template \"" + cfg.chat_template + "\"");
      out = tokenize_conversations(tok, cf, convs, cfg.max_seq_len, cfg.loss_on == "assistant", st);
      if (log) log(std::string("chat template: ") + chat_format_name(cf));
    }
    return out;
  };
  for (const auto& f : cfg.train_data)
    if (!file_exists(f)) throw file_error(f, "training data file not found");
  for (const auto& f : cfg.eval_data)
    if (!file_exists(f)) throw file_error(f, "evaluation data file not found");
  p.train = build(cfg.train_data, &p.stats);
  if (!cfg.eval_data.empty()) {
    TokenizeStats es;
    p.eval = build(cfg.eval_data, &es);
  } else if (cfg.eval_fraction > 0) {
    // Stable split for the seed: a seeded permutation, the first fraction held out.
    std::vector<size_t> idx(p.train.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::mt19937_64 rng(cfg.seed * 7919 + 17);
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(cfg.eval_fraction * idx.size()));
    std::vector<Sequence> tr, ev;
    for (size_t k = 0; k < idx.size(); ++k) (k < n_eval ? ev : tr).push_back(std::move(p.train[idx[k]]));
    p.train = std::move(tr);
    p.eval = std::move(ev);
  }
  if (p.train.empty()) throw Error("no training sequences left (all dropped or held out)");
  p.pad_id = tok.pad_id() >= 0 ? tok.pad_id() : std::max(tok.eos_id(), 0);
  return p;
}

double evaluate(CausalLM& m, const std::vector<Sequence>& eval, int64_t batch_size, int32_t pad, const at::Device& dev,
                bool autocast) {
  at::NoGradGuard ng;
  m->eval();
  BatchPlan plan(eval, batch_size, 0, false);
  double sum = 0;
  int64_t n = 0;
  for (int64_t b = 0; b < plan.batches_per_epoch(); ++b) {
    auto batch = plan.batch(0, b, pad);
    sum += loss_sum(m, batch, dev, autocast).item<double>();
    n += batch.label_tokens;
  }
  m->train();
  return n ? sum / n : NAN;
}

}  // namespace

int64_t peak_rss_bytes() { return read_status_kb("VmHWM:"); }

TrainResult train(const RunConfig& cfg, const TrainOptions& opt) {
  auto t_start = Clock::now();
  auto log = [&](const std::string& s) {
    if (opt.on_log) opt.on_log(s);
  };
  if (cfg.threads > 0) init_runtime(static_cast<int>(cfg.threads));
  // Everything that can be wrong with the inputs is checked before training work starts.
  load_model_config(cfg.base_model);
  checkpoint_files(cfg.base_model);
  auto tok = load_tokenizer(cfg.base_model);
  Prepared data = prepare_data(cfg, *tok, opt.on_log);
  log("data: " + std::to_string(data.train.size()) + " training sequences (" + std::to_string(data.stats.loss_tokens) +
      " loss tokens, " + std::to_string(data.stats.truncated) + " truncated, " + std::to_string(data.stats.dropped) +
      " dropped), " + std::to_string(data.eval.size()) + " evaluation sequences");

  const bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && torch::cuda::is_available());
  const at::Device dev = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (cfg.mixed_precision == "bf16" && !cuda)
    throw Error("mixed_precision \"bf16\" needs a CUDA device; on the CPU Hone trains in fp32 (bf16 GEMMs measured slower there)");
  const bool autocast = cuda && cfg.mixed_precision != "no";
  if (autocast) log("mixed precision: autocast to bf16 on CUDA");
  auto lm = load_model(cfg.base_model);
  CausalLM model = lm.model;
  for (auto& p : model->parameters()) p.set_requires_grad(cfg.method == "full");
  TrainResult res;
  if (cfg.method == "qlora") res.frozen_weight_bytes = quantize_base_nf4(model);
  if (cfg.method != "full") {
    if (cfg.method == "lora")
      for (auto& item : model->named_modules())
        if (auto* l = dynamic_cast<LinearImpl*>(item.value().get()); l && item.key() != "lm_head") res.frozen_weight_bytes += l->weight.numel() * l->weight.element_size();
    attach_lora(model, cfg.lora, cfg.seed);
  }
  if (cuda) model->to(dev);
  model->gradient_checkpointing = cfg.gradient_checkpointing;
  model->train();
  std::vector<NamedParam> params;
  for (auto& p : model->named_parameters())
    if (p.value().requires_grad()) params.push_back({p.key(), p.value(), decays(p.key())});
  for (auto& p : params) res.trainable_params += p.param.numel();
  AdamW optim(params, {cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay});

  BatchPlan plan(data.train, cfg.batch_size, cfg.seed, cfg.bucket_by_length);
  const int64_t n_batches = plan.batches_per_epoch();
  const int64_t steps_per_epoch = std::max<int64_t>(1, (n_batches + cfg.grad_accum - 1) / cfg.grad_accum);
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps : static_cast<int64_t>(std::ceil(cfg.epochs * steps_per_epoch));
  const int64_t warmup = cfg.warmup_steps > 0 ? cfg.warmup_steps : static_cast<int64_t>(std::ceil(cfg.warmup_ratio * total));
  log("model: " + lm.config.model_type + ", " + std::to_string(count_parameters(model, false)) + " parameters, " +
      std::to_string(res.trainable_params) + " trainable (" + cfg.method + "); " + std::to_string(total) + " steps of " +
      std::to_string(cfg.batch_size * cfg.grad_accum) + " sequences; device " + (cuda ? "cuda" : "cpu"));

  mkdirs(opt.run_dir);
  const std::string ckpt_root = join_path(opt.run_dir, "checkpoints");
  write_file_atomic(join_path(opt.run_dir, "config.json"), cfg.to_json().dump(2) + "\n");

  int64_t start = 0, bad_evals = 0;
  double best_eval = NAN;
  torch::manual_seed(cfg.seed);
  if (!opt.resume_from.empty()) {
    const std::string st_path = join_path(opt.resume_from, "trainer_state.json");
    nlohmann::json st = read_json_file(st_path);
    start = st.at("step").get<int64_t>();
    if (st.contains("best_eval_loss") && st["best_eval_loss"].is_number()) best_eval = st["best_eval_loss"].get<double>();
    bad_evals = st.value("bad_evals", 0);
    if (cfg.method == "full") {
      auto saved = load_model(join_path(opt.resume_from, "model"));
      at::NoGradGuard ng;
      auto src = saved.model->named_parameters();
      for (auto& p : model->named_parameters()) p.value().copy_(src[p.key()]);
    } else {
      // The adapters are attached already: copy the saved tensors into them (PEFT key names).
      const std::string ap = join_path(join_path(opt.resume_from, "adapter"), "adapter_model.safetensors");
      SafetensorsFile st(ap);
      at::NoGradGuard ng;
      for (auto& p : params) {
        const auto* info = st.find("base_model.model." + p.name);
        if (!info) throw file_error(ap, "checkpoint lacks '" + p.name + "' (was it made with another LoRA config?)");
        auto t = tensor_from_bytes(st.data(*info), info->dtype, info->shape, ap);
        if (t.sizes() != p.param.sizes()) throw file_error(ap, "'" + p.name + "' has another shape than this run's adapter");
        p.param.copy_(t);
      }
    }
    optim.load(join_path(opt.resume_from, "optimizer.safetensors"));
    auto gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(unhex(st.at("rng").get<std::string>()));
    log("resumed from " + opt.resume_from + " at step " + std::to_string(start));
  }

  auto save_checkpoint = [&](int64_t step) {
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
        save_peft_adapter(model, cfg.lora, cfg.base_model, join_path(tmp, "adapter"));
      }
      optim.save(join_path(tmp, "optimizer.safetensors"));
      nlohmann::json st = {{"step", step},
                           {"epoch", static_cast<double>(step) / steps_per_epoch},
                           {"rng", hex(at::detail::getDefaultCPUGenerator().get_state())},
                           {"best_eval_loss", best_eval},
                           {"bad_evals", bad_evals},
                           {"seed", cfg.seed}};
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

  std::ofstream metrics(join_path(opt.run_dir, "metrics.jsonl"), std::ios::app);
  auto t_loop = Clock::now();
  int64_t tokens_done = 0;
  res.status = "completed";
  try {
    for (int64_t step = start; step < total; ++step) {
      auto t0 = Clock::now();
      const double lr = cfg.lr * lr_multiplier(cfg.schedule, step, total, warmup);
      std::vector<Batch> micro;
      int64_t label_tokens = 0, step_tokens = 0;
      for (int64_t a = 0; a < cfg.grad_accum; ++a) {
        const int64_t k = step * cfg.grad_accum + a;
        micro.push_back(plan.batch(k / n_batches, k % n_batches, data.pad_id));
        label_tokens += micro.back().label_tokens;
        step_tokens += micro.back().tokens;
      }
      double loss_total = 0;
      for (const auto& b : micro) {
        if (b.label_tokens == 0) continue;
        auto l = loss_sum(model, b, dev, autocast);
        loss_total += l.item<double>();
        (l / static_cast<double>(std::max<int64_t>(1, label_tokens))).backward();
      }
      const double loss = loss_total / std::max<int64_t>(1, label_tokens);
      if (!std::isfinite(loss)) {
        res.status = "failed";
        res.error = "loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " + std::to_string(step + 1) +
                    " (try a lower learning rate); " +
                    (res.last_checkpoint.empty() ? "no checkpoint was written" : "the last good checkpoint is " + res.last_checkpoint);
        break;
      }
      const double gnorm = optim.clip_grad_norm(cfg.max_grad_norm);
      optim.step(lr);
      optim.zero_grad();
      res.losses.push_back(loss);
      res.final_loss = loss;
      res.steps = step + 1;
      tokens_done += step_tokens;

      StepMetrics m;
      m.step = step + 1;
      m.total_steps = total;
      m.epoch = static_cast<double>(step + 1) / steps_per_epoch;
      m.loss = loss;
      m.lr = lr;
      m.grad_norm = gnorm;
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      m.tokens_per_s = dt > 0 ? step_tokens / dt : 0;
      m.elapsed_s = std::chrono::duration<double>(Clock::now() - t_start).count();
      const double per_step = std::chrono::duration<double>(Clock::now() - t_loop).count() / (step + 1 - start);
      m.eta_s = per_step * (total - step - 1);
      m.rss_bytes = read_status_kb("VmRSS:");
      bool stop_early = false;
      if (!data.eval.empty() && ((cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) || step + 1 == total)) {
        m.has_eval = true;
        m.eval_loss = evaluate(model, data.eval, cfg.batch_size, data.pad_id, dev, autocast);
        m.eval_ppl = std::exp(m.eval_loss);
        if (std::isnan(best_eval) || m.eval_loss < best_eval) {
          best_eval = m.eval_loss;
          bad_evals = 0;
        } else if (cfg.early_stopping_patience > 0 && ++bad_evals >= cfg.early_stopping_patience) {
          stop_early = true;
        }
      }
      nlohmann::json row = {{"step", m.step}, {"epoch", m.epoch}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                            {"tokens_per_s", m.tokens_per_s}, {"elapsed_s", m.elapsed_s}};
      if (m.has_eval) row["eval_loss"] = m.eval_loss;
      metrics << row.dump() << "\n" << std::flush;
      // Report the step before checkpointing it, so that whoever records metrics has this step's
      // values in hand when the checkpoint appears (a resume starts after it).
      Control c = opt.on_progress ? opt.on_progress(m) : Control::Continue;
      while (c == Control::Pause) {  // all state stays in memory while paused
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        m.paused = true;
        c = opt.on_progress(m);
      }
      if (c == Control::Cancel || (cfg.save_every > 0 && (step + 1) % cfg.save_every == 0)) save_checkpoint(step + 1);
      if (c == Control::Cancel) {
        res.status = "cancelled";
        break;
      }
      if (stop_early) {
        res.status = "stopped_early";
        break;
      }
    }
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
  if (res.status != "failed") {
    if (cfg.method == "full") {
      res.output_dir = join_path(opt.run_dir, "model");
      SaveOptions so;
      so.dtypes = lm.file_dtypes;
      save_model(model, res.output_dir, so);
      copy_tokenizer_files(cfg.base_model, res.output_dir);
    } else {
      res.output_dir = join_path(opt.run_dir, "adapter");
      save_peft_adapter(model, cfg.lora, cfg.base_model, res.output_dir);
    }
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return res;
}

}  // namespace hone
