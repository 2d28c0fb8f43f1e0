// Per-row log-probs (see logps.h). On the CPU in fp32 each row goes through the fused cross
// entropy, which keeps one [T-1, V] gradient buffer per row instead of log-softmax and its grad.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train/logps.h"

#include "model/fused_cpu.h"
#include "train/head_logps.h"
#include "train/recipe.h"

namespace hone {

SeqLogps sequence_logps(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast) {
  const int64_t N = b.ids.size(0), T = b.ids.size(1);
  auto ids = b.ids.to(dev), am = b.attention_mask.to(dev), labels = b.labels.to(dev);
  if (m->chunked_head) {
    at::Tensor h;
    {
      CudaAutocast ac(autocast);
      h = m->hidden(ids, am);                                     // [N, T, H]
    }
    auto lb = labels.narrow(1, 1, T - 1).contiguous();            // [N, T-1]
    HeadLogps hl = head_token_logps(m->head_input(h.narrow(1, 0, T - 1).reshape({-1, h.size(2)})), m->output_weight(), lb.reshape({-1}),
                                    {m->config.final_softcap});
    SeqLogps out;
    out.logps = hl.logps.view({N, T - 1}).sum(1);                 // [N]
    auto valid = lb.ne(-100);
    out.tokens = valid.sum(1).to(at::kFloat);
    const double V = static_cast<double>(m->output_weight().size(0));
    out.logits_mean = (hl.logit_sum.view({N, T - 1}) * valid.to(at::kFloat)).sum(1) / (out.tokens.clamp_min(1) * V);
    return out;
  }
  at::Tensor logits;
  {
    CudaAutocast ac(autocast);
    auto h = m->hidden(ids, am);                                 // [N, T, H]
    logits = m->logits_from_hidden(h.narrow(1, 0, T - 1));       // [N, T-1, V] fp32
  }
  const int64_t V = logits.size(2);
  auto lb = labels.narrow(1, 1, T - 1).contiguous();              // [N, T-1]
  SeqLogps out;
  if (m->fused_kernels && fused_cpu_applies(logits)) {
    std::vector<at::Tensor> rows;
    rows.reserve(static_cast<size_t>(N));
    for (int64_t r = 0; r < N; ++r) rows.push_back(-fused_cross_entropy_sum(logits[r], lb[r], -100));
    out.logps = at::stack(rows);                                  // [N]
  } else {
    auto nll = at::cross_entropy_loss(logits.reshape({-1, V}), lb.reshape({-1}), {}, at::Reduction::None, -100);
    out.logps = -nll.view({N, T - 1}).sum(1);                     // [N]
  }
  auto valid = lb.ne(-100);                                       // [N, T-1]
  out.tokens = valid.sum(1).to(at::kFloat);
  {
    at::NoGradGuard ng;
    auto per_pos = logits.detach().sum(-1);                       // [N, T-1]
    out.logits_mean = (per_pos * valid.to(at::kFloat)).sum(1) / (out.tokens.clamp_min(1) * static_cast<double>(V));
  }
  return out;
}

SeqLogps pair_sequence_logps(CausalLM& m, const Batch& b, const at::Device& dev, bool autocast) {
  const int64_t N = b.ids.size(0), T = b.ids.size(1), B = N / 2;
  if (N % 2 != 0 || B == 0 || T < 2 || !m->chunked_head || (m->gradient_checkpointing && at::GradMode::is_enabled()))
    return sequence_logps(m, b, dev, autocast);
  // Each pair's prompt: the longest prefix both rows share whose tokens carry no label, at least
  // one token (its last hidden state predicts the first completion token).
  const at::Tensor idc = b.ids.to(at::kCPU).contiguous(), lbc = b.labels.to(at::kCPU).contiguous(),
                   amc = b.attention_mask.to(at::kCPU).contiguous();
  const int64_t *ip = idc.data_ptr<int64_t>(), *lp = lbc.data_ptr<int64_t>(), *ap = amc.data_ptr<int64_t>();
  std::vector<int64_t> plen(static_cast<size_t>(B)), len(static_cast<size_t>(N));
  int64_t P = 0, shared = 0, total = 0;
  for (int64_t r = 0; r < N; ++r) {
    int64_t n = 0;
    while (n < T && ap[r * T + n] != 0) ++n;
    len[static_cast<size_t>(r)] = n;
    total += n;
  }
  for (int64_t i = 0; i < B; ++i) {
    const int64_t c = i, j = B + i, most = std::min(len[static_cast<size_t>(c)], len[static_cast<size_t>(j)]);
    int64_t p = 0;
    while (p < most && ip[c * T + p] == ip[j * T + p] && lp[c * T + p] == -100 && lp[j * T + p] == -100) ++p;
    if (p == most) p = most - 1;  // a completion continues after the prompt: at least one token of each stays
    if (p < 1) return sequence_logps(m, b, dev, autocast);
    plen[static_cast<size_t>(i)] = p;
    P = std::max(P, p);
    shared += p;
  }
  if (8 * shared < total) return sequence_logps(m, b, dev, autocast);
  // Prompts [B, P] padded on the left, so that every prompt ends at column P - 1 and the columns
  // between any two real tokens are as far apart as their positions (sliding windows compare
  // columns); positions count real tokens. Completions [2B, C] from each row's prompt length on,
  // positions continuing from it, padded on the right.
  int64_t C = 1;
  for (int64_t r = 0; r < N; ++r) C = std::max(C, len[static_cast<size_t>(r)] - plen[static_cast<size_t>(r % B)]);
  std::vector<int64_t> pid(static_cast<size_t>(B * P), 0), pam(static_cast<size_t>(B * P), 0), ppos(static_cast<size_t>(B * P), 0);
  std::vector<int64_t> cid(static_cast<size_t>(N * C), 0), cam(static_cast<size_t>(N * C), 0), cpos(static_cast<size_t>(N * C), 0),
      tgt(static_cast<size_t>(N * C), -100);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t off = P - plen[static_cast<size_t>(i)];
    for (int64_t t = 0; t < plen[static_cast<size_t>(i)]; ++t) {
      pid[static_cast<size_t>(i * P + off + t)] = ip[i * T + t];
      pam[static_cast<size_t>(i * P + off + t)] = 1;
      ppos[static_cast<size_t>(i * P + off + t)] = t;
    }
  }
  for (int64_t r = 0; r < N; ++r) {
    const int64_t p = plen[static_cast<size_t>(r % B)];
    for (int64_t k = 0; p + k < len[static_cast<size_t>(r)]; ++k) {
      cid[static_cast<size_t>(r * C + k)] = ip[r * T + p + k];
      cam[static_cast<size_t>(r * C + k)] = 1;
      cpos[static_cast<size_t>(r * C + k)] = p + k;
    }
    // Completion slot k is predicted by the state before it: the prompt's last for k = 0, else
    // completion token k - 1's; its target is the row's label at p + k.
    for (int64_t k = 0; k < C && p + k < T; ++k) tgt[static_cast<size_t>(r * C + k)] = lp[r * T + p + k];
  }
  auto as = [&](std::vector<int64_t>& v, int64_t rows, int64_t cols) { return at::tensor(v, at::kLong).view({rows, cols}).to(dev); };
  const at::Tensor prompt_mask = as(pam, B, P);
  std::vector<int64_t> dup(static_cast<size_t>(N));
  for (int64_t r = 0; r < N; ++r) dup[static_cast<size_t>(r)] = r % B;
  const at::Tensor rows = at::tensor(dup, at::kLong).to(dev);  // [2B]: each row's pair
  at::Tensor hp, hc;
  {
    CudaAutocast ac(autocast);
    KVCache cache;
    hp = m->hidden(as(pid, B, P), prompt_mask, &cache, as(ppos, B, P));  // [B, P, H]
    for (size_t l = 0; l < cache.k.size(); ++l) {
      cache.k[l] = cache.k[l].index_select(0, rows);  // [2B, nkv, P, D]
      cache.v[l] = cache.v[l].index_select(0, rows);
    }
    const at::Tensor mask = at::cat({prompt_mask.index_select(0, rows), as(cam, N, C)}, 1);  // [2B, P + C]
    hc = m->hidden(as(cid, N, C), mask, &cache, as(cpos, N, C));                            // [2B, C, H]
  }
  const at::Tensor hp_last = hp.select(1, P - 1);  // [B, H]: each prompt's last state
  const at::Tensor hs = at::cat({hp_last.index_select(0, rows).unsqueeze(1), hc.narrow(1, 0, C - 1)}, 1);      // [2B, C, H]
  const at::Tensor lb = as(tgt, N, C);
  HeadLogps hl = head_token_logps(m->head_input(hs.reshape({-1, hs.size(2)})), m->output_weight(), lb.reshape({-1}),
                                  {m->config.final_softcap});
  SeqLogps out;
  out.logps = hl.logps.view({N, C}).sum(1);  // [2B]
  const auto valid = lb.ne(-100);
  out.tokens = valid.sum(1).to(at::kFloat);
  const double V = static_cast<double>(m->output_weight().size(0));
  out.logits_mean = (hl.logit_sum.view({N, C}) * valid.to(at::kFloat)).sum(1) / (out.tokens.clamp_min(1) * V);
  return out;
}

}  // namespace hone
