// The memory a run will take, before it starts: the Train page's estimate and `hone-cli train
// --dry-run` both come from here. Each term follows what the code keeps (weights in their storage
// dtype, adapters with their gradients and AdamW moments, the tensors each decoder layer saves
// for backward, the chunked head's buffers); the two constants were fitted to peak RSS measured
// with `hone-cli bench` on the Qwen2.5/Llama 3.2 shapes (docs/performance.md).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <string>
#include <vector>

#include "model/config.h"
#include "train/run_config.h"

namespace hone {

struct MemoryPlan {
  double weights = 0;      // the model as stored (fp32, bf16 base or NF4)
  double adapters = 0;     // trainable parameters
  double optimizer = 0;    // their gradients and AdamW's two moments
  double activations = 0;  // saved for backward at the peak (with allocator slack)
  double runtime = 0;      // libraries, the head's chunk buffers, oneDNN's packed weights
  double per_process = 0;  // the sum of the above
  double total = 0;        // per_process x processes
  int processes = 1;
  bool base_bf16 = false;
  std::string base_why;           // resolve_base_dtype's reason
  std::vector<std::string> fixes;  // when it does not fit: what would, with the total each gives
  std::string summary() const;     // one line: the terms and the total
};

// ram_bytes: what the run may use (0: this machine's physical memory). A plan over 85% of it
// lists fixes: gradient checkpointing, a bf16 base, QLoRA, shorter sequences, a smaller batch.
MemoryPlan plan_memory(const ModelConfig& model, const RunConfig& run, int processes = 1, double ram_bytes = 0);

// This machine's physical memory in bytes.
double physical_memory_bytes();

// "1.23 GB", "456 MB"
std::string format_bytes(double b);

}  // namespace hone
