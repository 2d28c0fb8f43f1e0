// Memory planning for a run (see memory_plan.h): the terms, and the fixes when it will not fit.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "model/bf16_gemm.h"
#include "model/cpu_gemm.h"
#include "train/head_logps.h"
#include "train/recipes.h"

namespace hone {
namespace {

// Fitted to bench's peak RSS (docs/performance.md): what the process holds before the model
// (libtorch, oneDNN, OpenBLAS, the C++ runtime; `hone-cli inspect` peaks at 163 MB), and the
// allocator's slack over the saved tensors (freed blocks not yet reused at the peak).
// The slack was 1.35 under glibc's heap; Hone's CPU allocator (common/cpu_allocator.h) returns
// large blocks to the system and keeps it to about 1.12 (Qwen2.5-0.5B shape, seq 512).
constexpr double kRuntimeBytes = 190.0 * (1 << 20);
constexpr double kActivationSlack = 1.12;

struct Shape {
  double H, L, I, V, q, kv, params;
};

MemoryPlan plan(const Shape& s, const ModelConfig& model, const RunConfig& run, bool bf16, int procs) {
  MemoryPlan p;
  p.processes = procs;
  p.base_bf16 = bf16;
  const bool full = run.method == "full", q = run.method == "qlora";
  // Weights: the linear layers (NF4 for qlora: 4 bits + the double-quantised block scales), the
  // embedding and an untied head (bf16 with a bf16 base), norms and biases in fp32.
  const double linear = s.L * (s.H * s.q + 2 * s.H * s.kv + s.q * s.H + 3 * s.H * s.I);
  const double embed = s.V * s.H * (model.tie_word_embeddings ? 1 : 2);
  const double rest = std::max(0.0, s.params - linear - embed);
  const double dense = bf16 ? 2 : 4;
  p.weights = (q ? linear * 4.127 / 8 : linear * dense) + embed * dense + rest * 4;
  // Trainable: every weight (full) or the adapters, r x (in + out) per adapted projection.
  double trainable = s.params;
  if (!full) {
    const std::vector<std::string>& t = run.lora.targets;
    const bool all = std::find(t.begin(), t.end(), "all-linear") != t.end();
    auto has = [&](const char* n) { return all || std::find(t.begin(), t.end(), n) != t.end(); };
    const double r = static_cast<double>(run.lora.r);
    double per_layer = 0;
    if (has("q_proj")) per_layer += r * (s.H + s.q);
    if (has("k_proj")) per_layer += r * (s.H + s.kv);
    if (has("v_proj")) per_layer += r * (s.H + s.kv);
    if (has("o_proj")) per_layer += r * (s.q + s.H);
    if (has("gate_proj")) per_layer += r * (s.H + s.I);
    if (has("up_proj")) per_layer += r * (s.H + s.I);
    if (has("down_proj")) per_layer += r * (s.I + s.H);
    trainable = per_layer * s.L;
  }
  p.adapters = trainable * 4;
  p.optimizer = trainable * 4 * 3;  // gradient + AdamW's two moments
  // Tokens in one micro-batch: pairs train on two sequences per example, RL on its rollouts.
  double seqs = static_cast<double>(run.batch_size);
  const RecipeInfo& recipe = recipe_info(run.recipe);
  if (recipe.pairs) seqs *= 2;
  if (recipe.rl) seqs *= static_cast<double>(std::max<int64_t>(1, run.num_generations));
  const double tokens = seqs * static_cast<double>(run.max_seq_len);
  // Saved per token and layer (fp32): the two norms' inputs and outputs, q/k/v after RoPE (k and
  // v at their own heads), the attention output, gate and up; their product too when the down
  // projection's weight trains (full), as an adapter recomputes it (model/decoder.cpp); up not
  // with mlp_recompute. Over a bf16 base (bf16_activations "auto") SwiGLU keeps gate and up in
  // bf16 (its fused kernel: SiLU) and attention its q, k, v where the CPU has the bf16 unit: half
  // of each. mlp_recompute keeps the gate alone in bf16 there, but its backward's fp32 temporaries
  // (u again, the widened gate, their product) take back what that saves: the Qwen2.5-0.5B shape
  // peaked at 1.79 GB with it, 1.77 without (docs/performance.md), so it counts as one fp32 tensor.
  const bool act16 = bf16 && !full && run.bf16_activations == "auto";
  const bool recompute = run.mlp_recompute && !run.gradient_checkpointing;
  const double ffn_kept = full ? 3 : recompute ? 1 : act16 && model.hidden_act == "silu" ? 1 : 2;
  const double qkv16 = act16 && onednn_bf16_gemm() ? (s.q + 2 * s.kv) / 2 : 0;
  const double per_layer = tokens * (4 * s.H + 3 * s.q + 2 * s.kv - qkv16 + ffn_kept * s.I) * 4;
  // Checkpointed: every layer's input, and the layer being recomputed with its backward's
  // gradients in flight (about twice its saved tensors, fitted at seq 512 and 2048).
  const double saved = run.gradient_checkpointing ? tokens * s.H * 4 * s.L + 2 * per_layer : per_layer * s.L;
  p.activations = saved * kActivationSlack;
  // The head's logits: a frozen head without a soft-cap on the CPU makes them a vocabulary panel
  // at a time (2 MB of fp32 and their 1 MB of bf16, train/head_logps.cpp), any other one chunk of
  // about 120 MB. Then the final hidden states with their gradient, a QLoRA layer's weight
  // dequantised for its GEMM, the libraries.
  const bool panels = !full && model.final_softcap == 0 && run.device != "cuda";
  const double logits = panels ? 3.0 * (1 << 20) : std::min(static_cast<double>(head_chunk_rows(static_cast<int64_t>(s.V))), tokens) * s.V * 4;
  const double head = logits + 3 * tokens * s.H * 4;
  const double dequant = q ? std::max(s.H * s.I, s.q * s.H) * 4 : 0;
  // oneDNN packs a bf16 GEMM's weight into its own layout in scratch memory that grows with the
  // largest one, the head's [V, H]: measured 0.18 GB (Qwen2.5-0.5B shape) to 0.53 GB (Llama 3.2
  // 1B) more than an fp32 base's run; 0.6 of a bf16 copy of the head fits those.
  const double packed = bf16 ? 0.6 * s.V * s.H * 2 : 0;
  p.runtime = kRuntimeBytes + head + dequant + packed;
  p.per_process = p.weights + p.adapters + p.optimizer + p.activations + p.runtime;
  p.total = p.per_process * procs;
  return p;
}

Shape shape_of(const ModelConfig& m) {
  return {static_cast<double>(m.hidden_size), static_cast<double>(m.num_layers), static_cast<double>(m.intermediate_size),
          static_cast<double>(m.vocab_size), static_cast<double>(m.q_dim()), static_cast<double>(m.kv_dim()),
          static_cast<double>(m.parameter_count())};
}

}  // namespace

double physical_memory_bytes() { return static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE)); }

std::string format_bytes(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else std::snprintf(buf, sizeof buf, "%.0f MB", b / 1e6);
  return buf;
}

std::string MemoryPlan::summary() const {
  std::string s = "weights " + format_bytes(weights) + (base_bf16 ? " (bf16 base)" : "") + ", adapters " + format_bytes(adapters) +
                  ", optimizer " + format_bytes(optimizer) + ", activations " + format_bytes(activations) + ", runtime " +
                  format_bytes(runtime);
  if (processes > 1) s += ", x " + std::to_string(processes) + " processes";
  return s + ": about " + format_bytes(total);
}

MemoryPlan plan_memory(const ModelConfig& model, const RunConfig& run, int processes, double ram_bytes) {
  const Shape s = shape_of(model);
  const int procs = std::max(1, processes);
  const bool cuda = run.device == "cuda";
  const BaseDtypeChoice choice = resolve_base_dtype(run.base_dtype, run.method, cuda, model.parameter_count() * 4);
  MemoryPlan p = plan(s, model, run, choice.bf16, procs);
  p.base_why = choice.why;
  const double ram = ram_bytes > 0 ? ram_bytes : physical_memory_bytes();
  if (p.total <= 0.85 * ram) return p;
  // What would fit, each change alone, then checkpointing with the others.
  auto total_with = [&](RunConfig r) {
    const BaseDtypeChoice c = resolve_base_dtype(r.base_dtype, r.method, cuda, model.parameter_count() * 4);
    return plan(s, model, r, c.bf16, procs).total;
  };
  auto add = [&](const std::string& what, double total) {
    p.fixes.push_back(what + ": " + format_bytes(total) + (total <= 0.85 * ram ? "" : " (still too much)"));
  };
  RunConfig r = run;
  // The cheapest first: recomputing the up projection costs one GEMM per layer (5-15% of a step
  // on the Qwen2.5-0.5B shape, docs/performance.md), checkpointing a whole forward.
  if (!run.mlp_recompute && !run.gradient_checkpointing) {
    RunConfig b = run;
    b.mlp_recompute = true;
    if (const double t = total_with(b); t < p.total) add("mlp_recompute (the up projection again in backward)", t);  // not over a bf16 base
  }
  if (!r.gradient_checkpointing) {
    r.gradient_checkpointing = true;
    add("gradient checkpointing", total_with(r));
  }
  if (run.method == "lora" && !choice.bf16) {
    RunConfig b = r;
    b.base_dtype = "bf16";
    add(std::string("bf16 base") + (onednn_bf16_gemm() ? "" : " (this CPU widens it per GEMM: slower)") +
            (r.gradient_checkpointing != run.gradient_checkpointing ? " with checkpointing" : ""),
        total_with(b));
  }
  if (run.method != "qlora") {
    RunConfig b = r;
    b.method = "qlora";
    add(std::string("QLoRA") + (r.gradient_checkpointing != run.gradient_checkpointing ? " with checkpointing" : ""), total_with(b));
  }
  for (int64_t len = run.max_seq_len / 2; len >= 64; len /= 2) {
    RunConfig b = r;
    b.max_seq_len = len;
    const double t = total_with(b);
    if (t <= 0.85 * ram || len / 2 < 64) {
      add("max_seq_len " + std::to_string(len) + (r.gradient_checkpointing != run.gradient_checkpointing ? " with checkpointing" : ""), t);
      break;
    }
  }
  if (run.batch_size > 1) {
    RunConfig b = r;
    b.batch_size = 1;
    add("batch_size 1 with grad_accum " + std::to_string(run.batch_size * run.grad_accum) + " (the same examples per step)" +
            (r.gradient_checkpointing != run.gradient_checkpointing ? ", checkpointing" : ""),
        total_with(b));
  }
  return p;
}

}  // namespace hone
