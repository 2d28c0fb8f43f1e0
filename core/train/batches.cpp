// Length bucketing: shuffle, cut into chunks of 32 batches, sort each chunk by length, slice into
// batches, shuffle the batches. Padding then stays small while the order stays random.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/batches.h"

#include <algorithm>
#include <random>

#include "common/error.h"

namespace hone {

namespace {
// Fisher-Yates with our own index draw so that the order does not depend on the library.
template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}
}  // namespace

BatchPlan::BatchPlan(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, bool bucket)
    : lengths_(std::move(lengths)), batch_size_(batch_size), seed_(seed), bucket_(bucket) {
  if (lengths_.empty()) throw Error("no training examples");
  if (batch_size <= 0) throw Error("batch_size must be positive");
  batches_per_epoch_ = (lengths_.size() + batch_size - 1) / batch_size;
}

std::vector<std::vector<size_t>> BatchPlan::order(int64_t epoch) const {
  std::mt19937_64 rng(seed_ * 1000003ull + static_cast<uint64_t>(epoch));
  std::vector<size_t> idx(lengths_.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  shuffle(idx, rng);
  if (bucket_) {
    const size_t chunk = static_cast<size_t>(batch_size_) * 32;
    for (size_t b = 0; b < idx.size(); b += chunk) {
      auto e = idx.begin() + std::min(idx.size(), b + chunk);
      std::stable_sort(idx.begin() + b, e, [&](size_t x, size_t y) { return lengths_[x] < lengths_[y]; });
    }
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t b = 0; b < idx.size(); b += batch_size_)
    batches.emplace_back(idx.begin() + b, idx.begin() + std::min(idx.size(), b + static_cast<size_t>(batch_size_)));
  if (bucket_) shuffle(batches, rng);
  return batches;
}

std::vector<size_t> BatchPlan::indices(int64_t epoch, int64_t b) const {
  if (epoch != cached_epoch_) {
    cached_ = order(epoch);
    cached_epoch_ = epoch;
  }
  return cached_.at(static_cast<size_t>(b));
}

Batch collate(const std::vector<Sequence>& data, const std::vector<size_t>& idx, int32_t pad_id) {
  std::vector<const Sequence*> seqs;
  for (auto i : idx) seqs.push_back(&data.at(i));
  return collate(seqs, pad_id);
}

Batch collate(const std::vector<const Sequence*>& seqs, int32_t pad_id) {
  int64_t T = 0;
  for (const auto* s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s->ids.size()));
  const int64_t B = static_cast<int64_t>(seqs.size());
  Batch out;
  out.ids = at::full({B, T}, std::max(pad_id, 0), at::kLong);
  out.attention_mask = at::zeros({B, T}, at::kLong);
  out.labels = at::full({B, T}, -100, at::kLong);
  auto ids = out.ids.accessor<int64_t, 2>();
  auto am = out.attention_mask.accessor<int64_t, 2>();
  auto lb = out.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = *seqs[b];
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ids[b][t] = s.ids[t];
      am[b][t] = 1;
      if (s.loss_mask[t]) {
        lb[b][t] = s.ids[t];
        ++out.label_tokens;
      }
    }
    out.tokens += static_cast<int64_t>(s.ids.size());
  }
  return out;
}

}  // namespace hone
