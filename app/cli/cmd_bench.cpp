// hone-cli bench: trains a Llama-shaped model on random tokens and reports tokens/s (median step),
// model FLOPs utilisation against the fp32 GEMM peak measured in this process, peak memory and
// the bytes held by frozen linear weights. bench/bench_train.py is the PyTorch counterpart.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>
#ifdef HONE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/memory_use.h"
#include "common/runtime.h"
#include "model/bf16_gemm.h"
#include "model/cpu_gemm.h"
#include "model/decoder.h"
#include "peft/lora.h"
#include "common/cpu_allocator.h"
#include "train/adamw.h"
#include "train/logps.h"
#include "train/loss.h"
#include "train/preference_loss.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace hone::cli {

const char* const kBenchUsage = R"(usage: hone-cli bench [--preset qwen2.5-0.5b|qwen2.5-1.5b|llama-3.2-1b] [--hidden 512] [--layers 8] [--heads 8] [--kv-heads 8] [--ffn 1408]
                      [--vocab 8000] [--seq 256] [--batch 4] [--rank 16] [--steps 6]
                      [--method lora|qlora|full|dpo] [--prompt-frac F] [--lora-dropout P] [--checkpointing] [--mlp-recompute] [--fp32-activations] [--unfused] [--full-logits] [--full-attention] [--no-prefix-share] [--contend N] [--profile FILE] [--json]
                      [--device cpu|cuda] [--bf16] [--tie] [--base-dtype auto|bf16|f32]
       hone-cli bench --generate [--preset NAME | --model DIR] [--dtype f32|bf16] [--prompt-tokens 64] [--new-tokens 128]
                      [--batch 8] [--steps 3] [--json]
       hone-cli bench store [--json]      (the workspace store's speed targets; see --help there)

Prints one JSON object: tokens_per_s (median step), step_s, mfu (model FLOPs/s over the fp32
GEMM peak measured here: the faster of BLAS and Hone's own fp32 GEMM path, gemm_gflops_blas and
gemm_gflops_hone_fp32), gemm_gflops, peak_rss_mb (anonymous + shared memory at its peak, sampled
every 10 ms: pages of mapped model files, which the kernel can drop, are not counted),
peak_rss_total_mb (VmHWM: everything resident, mapped files included), frozen_weight_bytes,
trainable_params.
Model FLOPs per token: 2N forward + 2N input gradients (+2N weight gradients when the base
trains) over the matmul parameters N (head included), plus attention: 4*T*d per layer forward
and twice that backward.
--method dpo trains a LoRA policy with the DPO loss on --batch pairs (2 x batch sequences of --seq
tokens, the first half of each a masked prompt the pair shares); the reference is the same model
with its adapters switched off, as the dpo recipe does it, and each pair's prompt runs once
(--no-prefix-share: both rows whole, as before session 30). Compare its peak_rss_bytes with --method lora at twice the
batch (the same number of sequences).
--prompt-frac F masks the first F of each sequence's tokens as a prompt (SFT on instruction or chat
data; 0, every position a target, is continued pre-training): positions without a target skip the
output head, and mfu counts the head's work only where it runs. --method dpo always masks half.
--lora-dropout P puts dropout on the adapters' inputs (0 here; run configs default to 0.05 for lora,
0.1 for qlora); its masks are made again in backward from a seed, so it costs time, not memory.
--mlp-recompute runs the up projection again in backward instead of keeping its output, as the
run config's mlp_recompute does (one [tokens, ffn] tensor less per layer, one more GEMM).
--fp32-activations keeps attention and SwiGLU in fp32 over a bf16 base, as the run config's
bf16_activations "off" does (by default backward keeps SwiGLU's gate and up and attention's q, k, v
in bf16 there, and attention's products run on the bf16 unit with fp32 accumulation).
--full-attention keeps the [heads, T, T] attention probabilities for backward (the plain path).
--full-logits computes the loss from the whole [tokens, vocab] logits instead of chunks of positions.
--unfused runs RMSNorm, RoPE and the cross entropy as plain ATen ops instead of Hone's fused
CPU kernels (model/fused_cpu.h), and each frozen layer and its adapter as two nodes, for comparison.
--profile FILE writes the last step's operator trace (chrome://tracing JSON) to FILE;
bench/profile_summary.py FILE turns it into a table of self time per operator.
--device cuda trains on the GPU (a CUDA build of libtorch; bench/gpu.sh), --bf16 under bf16
autocast as runs with mixed_precision bf16 do; it reports peak_gpu_mb (the caching allocator's
peak) and mfu against the GPU's measured fp32 GEMM rate (bf16 GEMMs with --bf16). --tie ties the
output head to the embeddings (Llama 3.2 1B/3B, Qwen2.5 0.5B-3B, Gemma).
--contend N runs N busy-looping processes beside the timed steps (another CPU-bound job sharing
the machine); mfu stays relative to the quiet GEMM peak.
--base-dtype stores the frozen base (lora, qlora) as the run config's base_dtype does: bf16 runs
its GEMMs on the CPU's bf16 unit with fp32 accumulation (without one, widened to fp32 per GEMM);
auto picks it once the fp32 base passes 256 MB (the presets) on CPUs with AVX512-BF16 or AMX, and
for lora also on other AVX-512 CPUs, f32 otherwise (docs/run-config.md). With a bf16 base, mfu is
over the bf16 GEMM peak measured here (gemm_gflops_bf16) and mfu_of_fp32_peak over the fp32 one.
--preset takes a published model's shape with random weights (tied head; seq 512, batch 1 and
3 steps unless given): qwen2.5-0.5b (896 x 24, ffn 4864, 14/2 heads, vocab 151936), qwen2.5-1.5b
(1536 x 28, ffn 8960, 12/2 heads) or llama-3.2-1b (2048 x 16, ffn 8192, 32/8 heads, vocab 128256).

--generate measures greedy decoding instead of training: one stream (generate, as the Playground and
`hone-cli generate` run it) and --batch streams over one KV cache (generate_batch, as evaluation,
candidate generation and rollouts run it), on --preset's shape (default qwen2.5-0.5b, random
weights) or the model in --model DIR, with its weights in --dtype (f32 default, or bf16), random
prompts of --prompt-tokens and --new-tokens each; the median of --steps rounds. Reports
single_decode_tokens_per_s (new tokens after the first over the time after the prefill),
single_weight_gb_per_s (weights read per second), batch_decode_tokens_per_s (all rows together),
batch_speedup, and how many leading tokens of the batch's first row equal the single stream's.
bench/decode_compare.sh runs it beside llama.cpp on the same weights.
)";


int cmd_bench(const Args& a) {
  if (a.flag("generate")) return cmd_bench_generate(a);
  for (const char* k : {"model", "dtype", "prompt-tokens", "new-tokens"})
    if (a.has(k)) throw Error(std::string("bench: --") + k + " is for --generate");
  watch_memory();
  // --preset: a published model's shape (random weights); explicit options still win.
  struct Shape {
    const char* name;
    int64_t hidden, layers, heads, kv, ffn, vocab;
  };
  static const Shape kPresets[] = {{"qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936},
                                   {"qwen2.5-1.5b", 1536, 28, 12, 2, 8960, 151936},
                                   {"llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256}};
  const Shape* preset = nullptr;
  if (a.has("preset")) {
    for (const auto& p : kPresets)
      if (a.get("preset") == p.name) preset = &p;
    if (!preset) throw Error("bench: --preset must be qwen2.5-0.5b, qwen2.5-1.5b or llama-3.2-1b");
  }
  auto dflt = [&](int64_t plain, int64_t Shape::*field) { return preset ? preset->*field : plain; };
  const int64_t H = a.integer("hidden", dflt(512, &Shape::hidden)), L = a.integer("layers", dflt(8, &Shape::layers)),
                nh = a.integer("heads", dflt(8, &Shape::heads)), nkv = a.integer("kv-heads", dflt(8, &Shape::kv)),
                I = a.integer("ffn", dflt(1408, &Shape::ffn)), V = a.integer("vocab", dflt(8000, &Shape::vocab)),
                T = a.integer("seq", preset ? 512 : 256), B = a.integer("batch", preset ? 1 : 4), r = a.integer("rank", 16),
                steps = a.integer("steps", preset ? 3 : 6);
  const bool tie = a.flag("tie") || preset;  // all three tie their embeddings
  const std::string method = a.get("method", "lora");
  if (method != "lora" && method != "qlora" && method != "full" && method != "dpo")
    throw Error("bench: --method must be lora, qlora, full or dpo");
  const bool dpo = method == "dpo";
  const bool no_share = a.flag("no-prefix-share");
  if (no_share && !dpo) throw Error("bench: --no-prefix-share is for --method dpo");
  const double prompt_frac = a.number("prompt-frac", dpo ? 0.5 : 0.0);
  if (dpo && a.has("prompt-frac")) throw Error("bench: --method dpo masks half of each sequence; --prompt-frac is for the others");
  if (!(prompt_frac >= 0 && prompt_frac < 1)) throw Error("bench: --prompt-frac must be in [0, 1)");
  // Masked prompt positions per sequence (at least 1 target stays); labels[t] is the target
  // predicted from position t-1, so T - prompt rows of the head's T - 1 have one.
  const int64_t prompt = std::min<int64_t>(static_cast<int64_t>(prompt_frac * T + 0.5), T - 1);
  if (steps < 2) throw Error("bench: --steps must be at least 2");
  const std::string device = a.get("device", "cpu");
  if (device != "cpu" && device != "cuda") throw Error("bench: --device must be cpu or cuda");
  const bool cuda = device == "cuda", bf16 = a.flag("bf16");
  if (cuda && !torch::cuda::is_available())
    throw Error("bench: --device cuda needs a CUDA build of libtorch and a visible GPU (this build: " +
                std::string(torch::cuda::is_available() ? "" : "no CUDA device") + ")");
  if (bf16 && !cuda) throw Error("bench: --bf16 is for --device cuda (on the CPU Hone trains in fp32)");
  const at::Device dev = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  nlohmann::json cj = {{"model_type", "llama"}, {"hidden_size", H}, {"num_hidden_layers", L}, {"num_attention_heads", nh},
                       {"num_key_value_heads", nkv}, {"intermediate_size", I}, {"vocab_size", V}, {"max_position_embeddings", T},
                       {"tie_word_embeddings", tie}};
  ModelConfig cfg = parse_model_config(cj, "bench");
  // The fp32 peak is the faster of BLAS (ATen's mm) and the GEMM Hone runs its frozen base, head
  // and attention through (oneDNN from AVX2 up: 2x Debian's OpenBLAS on the 2-core Zen 4 EPYC), so that
  // MFU is never flattered by a slow reference. Each is measured again after the timed steps and
  // the higher reading kept: on a shared VM a reading can only come out low, and a low peak
  // flatters MFU (561 against 694 GFLOP/s bf16 in two runs minutes apart).
  double gemm_blas = cuda ? 0.0 : measure_gemm_gflops(1024, 4);
  double gemm_hone = cuda ? 0.0 : measure_f32_gemm_gflops(1024, 8);
  double gemm = cuda ? measure_cuda_gemm_gflops(bf16) : std::max(gemm_blas, gemm_hone);
  double gemm_bf16 = cuda ? 0.0 : measure_bf16_gemm_gflops(1024, 16);  // 2x the fp32 rate: more runs for as long a window
  const SystemInfo sys = system_info(false);
  CausalLM m(cfg);
  // --base-dtype as the training session resolves it: auto is bf16 on CPUs with AVX512-BF16/AMX
  // once the fp32 base passes 256 MB (the presets), f32 otherwise.
  const BaseDtypeChoice base = resolve_base_dtype(a.get("base-dtype", "auto"), method == "full" ? "full" : "lora", cuda,
                                                  cfg.parameter_count() * 4);
  if (base.bf16 && method == "lora") {  // stored before init, so that no fp32 copy is ever resident
    for (auto& p : m->parameters()) p.set_requires_grad(false);
    store_base_bf16(m, /*keep_values=*/false);  // init_weights fills them below
  }
  if (method == "qlora") {  // each layer initialised and quantized in turn, as loading does it
    at::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(a.integer("seed", 0)) + 1);
    for (auto& it : m->named_modules())
      if (auto* l = dynamic_cast<LinearImpl*>(it.value().get()); l && it.key() != "lm_head") {
        l->weight.normal_(0.0, 0.02, gen);
        l->quantize_nf4();
        trim_cpu_allocator();  // as loading does: the freed fp32 weight must not stay cached
      }
  }
  init_weights(m, static_cast<uint64_t>(a.integer("seed", 0)));
  int64_t frozen_bytes = 0, frozen_fp32 = 0;
  for (auto& it : m->named_modules())
    if (auto* l = dynamic_cast<LinearImpl*>(it.value().get()); l && it.key() != "lm_head") frozen_fp32 += l->in_features * l->out_features * 4;
  if (method == "full") {
    for (auto& p : m->parameters()) p.set_requires_grad(true);
  } else {
    for (auto& p : m->parameters()) p.set_requires_grad(false);
    if (method == "qlora") frozen_bytes = quantize_base_nf4(m);
    if (base.bf16) store_base_bf16(m);  // qlora: the embedding
    if (method != "qlora")
      for (auto& it : m->named_modules())
        if (auto* l = dynamic_cast<LinearImpl*>(it.value().get()); l && it.key() != "lm_head") frozen_bytes += l->weight.numel() * l->weight.element_size();
    LoraConfig lc;
    lc.r = r;
    lc.alpha = 2.0 * r;
    lc.targets = {"all-linear"};
    lc.dropout = a.number("lora-dropout", 0.0);
    if (!(lc.dropout >= 0 && lc.dropout < 1)) throw Error("bench: --lora-dropout must be in [0, 1)");
    attach_lora(m, lc, 0);
  }
  m->gradient_checkpointing = a.flag("checkpointing");
  m->set_fused_kernels(!a.flag("unfused"));
  m->chunked_head = !a.flag("full-logits");  // the loss from all [T, V] logits at once, as before the chunked head
  m->set_blocked_attention(!a.flag("full-attention"));
  m->set_mlp_recompute(a.flag("mlp-recompute") && !a.flag("checkpointing"));
  m->set_bf16_activations(!a.flag("fp32-activations"));
  if (cuda) m->to(dev);
  m->train();
  std::vector<NamedParam> params;
  for (auto& p : m->named_parameters())
    if (p.value().requires_grad()) params.push_back({p.key(), p.value(), decays(p.key())});
  int64_t trainable = 0;
  for (auto& p : params) trainable += p.param.numel();
  AdamW opt(params, {});
  trim_cpu_allocator();  // as the training session does once the model is ready
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  std::vector<double> times;
  const bool profile = a.has("profile");
  // --contend N: N busy processes beside the timed steps, as another CPU-bound job on the machine.
  struct Busy {
    std::vector<pid_t> pids;
    ~Busy() {
      for (pid_t p : pids) ::kill(p, SIGKILL);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
    }
  } busy;
  for (int64_t i = 0; i < a.integer("contend", 0); ++i) {
    const pid_t p = ::fork();
    if (p == 0) {
      volatile uint64_t x = 0;
      for (;;) x = x + 1;
    }
    if (p > 0) busy.pids.push_back(p);
  }
  ThreadGovernor governor;  // as the training session does
  for (int64_t s = 0; s < steps + (profile ? 1 : 0); ++s) {  // the profiled step is an extra one, not timed
    governor.tick();
    const int64_t rows = dpo ? 2 * B : B;
    auto ids = at::randint(0, V, {rows, T}, gen, at::TensorOptions(at::kLong)).to(dev);
    if (dpo) ids.narrow(0, B, B).narrow(1, 0, prompt).copy_(ids.narrow(0, 0, B).narrow(1, 0, prompt));  // a pair shares its prompt
    std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
    if (s == steps) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(a.get("profile"));
    if (cuda) torch::cuda::synchronize();
    auto t0 = std::chrono::steady_clock::now();
    CudaAutocast ac(bf16);
    if (dpo) {
      // The dpo recipe's micro-batch: reference pass with adapters off, policy pass, DPO loss.
      Batch b;
      b.ids = ids;
      b.attention_mask = at::ones_like(ids);
      b.labels = ids.clone();
      b.labels.narrow(1, 0, prompt).fill_(-100);  // the prompt half is masked
      at::Tensor ref;
      {
        at::NoGradGuard ng;
        set_lora_enabled(m, false);
        ref = (no_share ? sequence_logps(m, b, dev, bf16) : pair_sequence_logps(m, b, dev, bf16)).logps;
        set_lora_enabled(m, true);
      }
      auto pol = (no_share ? sequence_logps(m, b, dev, bf16) : pair_sequence_logps(m, b, dev, bf16)).logps;
      auto t = dpo_loss(pol.narrow(0, 0, B), pol.narrow(0, B, B), ref.narrow(0, 0, B), ref.narrow(0, B, B), 0.1, "sigmoid", 0.0);
      t.losses.mean().backward();
    } else {
      at::Tensor labels = ids;
      if (prompt > 0) {
        labels = ids.clone();
        labels.narrow(1, 0, prompt).fill_(-100);
      }
      auto loss = next_token_loss_sum(m, ids, {}, labels) / static_cast<double>(B * (T - prompt));  // the trainer's loss
      loss.backward();
    }
    opt.clip_grad_norm(1.0);
    opt.step(1e-4);
    opt.zero_grad();
    if (cuda) torch::cuda::synchronize();
    if (s < steps) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!cuda) {
    gemm_blas = std::max(gemm_blas, measure_gemm_gflops(1024, 4));
    gemm_hone = std::max(gemm_hone, measure_f32_gemm_gflops(1024, 8));
    gemm = std::max(gemm_blas, gemm_hone);
    gemm_bf16 = std::max(gemm_bf16, measure_bf16_gemm_gflops(1024, 16));
  }
  std::vector<double> warm(times.begin() + 1, times.end());  // the first step warms allocators and caches
  std::sort(warm.begin(), warm.end());
  const double step_s = warm[warm.size() / 2];
  const double tokens = static_cast<double>((dpo ? 2 : 1) * B * T);
  // Matmul parameters per token: the layers' attention and MLP projections, and the output head,
  // which runs only at the positions that have a target (T - 1 of T; T - prompt behind a prompt).
  const double head_rows = static_cast<double>(T - std::max<int64_t>(prompt, 1)) / static_cast<double>(T);
  const double n_mat = static_cast<double>(L * (H * cfg.q_dim() * 2 + H * cfg.kv_dim() * 2 + 3 * H * I)) +
                       static_cast<double>(V * H) * head_rows;
  const double attn = static_cast<double>(L) * 4.0 * T * cfg.q_dim();  // QK^T and PV per token, forward
  // Forward 2N + attention; backward: input gradients 2N (+ weight gradients 2N when the base
  // trains) and twice the forward attention work (dQ, dK from dS; dP, dV from dO).
  // DPO adds a forward without gradients (the reference): 2N + attention per token.
  const double per_token = (method == "full" ? 6 : 4) * n_mat + 3 * attn + (dpo ? 2 * n_mat + attn : 0);
  const double flops = per_token * tokens / step_s;
  // MFU against the peak of the dtype the base's GEMMs run in (the issue's convention).
  const double peak = base.bf16 && !cuda ? gemm_bf16 : gemm;
  const CpuAllocatorStats alloc = cpu_allocator_stats();
  nlohmann::json j = {{"method", method},
                      {"tokens_per_s", tokens / step_s},
                      {"step_s", step_s},
                      {"mfu", flops / (peak * 1e9)},
                      {"mfu_of_fp32_peak", flops / (gemm * 1e9)},
                      {"model_gflops", flops / 1e9},
                      {"gemm_gflops", gemm},
                      {"gemm_gflops_bf16", gemm_bf16},
                      {"gemm_gflops_blas", gemm_blas},
                      {"gemm_gflops_hone_fp32", gemm_hone},
                      {"gemm", cuda ? std::string("CUDA") : cpu_gemm_describe()},
                      {"base_dtype", base.bf16 ? "bf16" : "f32"},
                      {"peak_rss_mb", peak_rss_bytes() / 1048576.0},
                      {"peak_rss_bytes", peak_rss_bytes()},
                      {"peak_rss_total_mb", memory_use().rss_peak / 1048576.0},
                      {"cpu_allocator", cpu_allocator_installed() ? "hone" : "system"},
                      {"alloc_cache_hits", alloc.hits},
                      {"alloc_cache_misses", alloc.misses},
                      {"alloc_peak_mapped_mb", alloc.peak_mapped_bytes / 1048576.0},
                      {"device", device},
                      {"bf16", bf16},
                      {"peak_gpu_mb", cuda ? cuda_peak_memory_bytes() / 1048576.0 : 0.0},
                      {"sequences_per_step", (dpo ? 2 : 1) * B},
                      {"prompt_tokens", prompt},
                      {"contending_processes", static_cast<int64_t>(busy.pids.size())},
                      {"threads_last_step", governor.threads()},
                      {"frozen_weight_bytes", frozen_bytes},
                      {"frozen_weight_ratio", frozen_fp32 ? static_cast<double>(frozen_bytes) / frozen_fp32 : 0.0},
                      {"trainable_params", trainable},
                      {"threads", sys.threads},
                      {"blas", sys.blas},
                      {"blas_core", sys.blas_core},
                      {"shape", {{"hidden", H}, {"layers", L}, {"heads", nh}, {"kv_heads", nkv}, {"ffn", I}, {"vocab", V}, {"seq", T}, {"batch", B}, {"rank", r}}}};
  std::cout << (a.flag("json") ? j.dump() : j.dump(2)) << "\n";
  return 0;
}

}  // namespace hone::cli
