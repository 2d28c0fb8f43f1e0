// Batches for training: a deterministic, length-bucketed order per (seed, epoch), so that a run
// resumed at batch k of epoch e sees exactly the batches the uninterrupted run saw.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "data/sequences.h"

namespace hone {

struct Batch {
  at::Tensor ids;             // [B,T] int64, right-padded
  at::Tensor attention_mask;  // [B,T] int64, 1 real / 0 pad
  at::Tensor labels;          // [B,T] int64, -100 where no loss
  int64_t tokens = 0;         // real tokens
  int64_t label_tokens = 0;   // tokens with a label (after the shift)
};

// Pads the sequences data[idx] into one batch.
Batch collate(const std::vector<Sequence>& data, const std::vector<size_t>& idx, int32_t pad_id);
// Pads the given sequences (in order) into one batch.
Batch collate(const std::vector<const Sequence*>& seqs, int32_t pad_id);

// The order of examples, which a recipe turns into batches of its own kind (sequences, pairs).
class BatchPlan {
 public:
  // lengths: one per example (tokens), used for bucketing.
  BatchPlan(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, bool bucket_by_length);
  int64_t batches_per_epoch() const { return static_cast<int64_t>(batches_per_epoch_); }
  // Example indices of batch b of epoch e.
  std::vector<size_t> indices(int64_t epoch, int64_t b) const;

 private:
  std::vector<std::vector<size_t>> order(int64_t epoch) const;
  std::vector<int64_t> lengths_;
  int64_t batch_size_;
  uint64_t seed_;
  bool bucket_;
  size_t batches_per_epoch_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<std::vector<size_t>> cached_;
};

}  // namespace hone
