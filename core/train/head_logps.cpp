// Chunked head + log-softmax (see head_logps.h). Per chunk of c positions: a = h_c W^T [c, V],
// z = softcap(a), y = z / temperature, log p = log_softmax(y); the gradient of log p(target) with
// respect to a is (onehot - p) / temperature * (1 - (z / cap)^2), and with respect to h_c that
// times W. Only one chunk's [c, V] buffers live at a time.
#include "train/head_logps.h"

#include <torch/autograd.h>

#include <algorithm>

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Params {
  double cap, temp;
  int64_t ignore, chunk;
  bool entropy;
};

int64_t rows_per_chunk(int64_t N, int64_t V, int64_t asked) {
  if (asked > 0) return std::min(N, asked);
  const int64_t budget = (32LL << 20) / 4;  // fp32 elements in about 32 MB
  return std::max<int64_t>(1, std::min(N, std::max<int64_t>(16, budget / std::max<int64_t>(V, 1))));
}

// One chunk's forward quantities. a: [c, V] fp32 head outputs (raw), t: [c] int64 targets.
struct Chunk {
  at::Tensor z;      // [c, V] soft-capped logits (a itself without a cap)
  at::Tensor logp;   // [c, V] log-softmax of z / temperature
  at::Tensor valid;  // [c] bool
  at::Tensor tsafe;  // [c, 1] targets with ignored ones set to 0
};

Chunk chunk_forward(const at::Tensor& a, const at::Tensor& t, const Params& p) {
  Chunk k;
  k.z = p.cap > 0 ? at::tanh(a / p.cap) * p.cap : a;
  k.logp = at::log_softmax(p.temp != 1.0 ? k.z / p.temp : k.z, 1);  // [c, V]
  k.valid = t.ne(p.ignore);
  k.tsafe = at::where(k.valid, t, at::zeros_like(t)).unsqueeze(1);  // [c, 1]
  return k;
}

// d log p(target) / d a, each row scaled by scale[row] (0 for ignored rows): [c, V], in place of
// the chunk's log-softmax buffer.
at::Tensor chunk_grad(Chunk& k, const at::Tensor& scale, const Params& p) {
  at::Tensor d = k.logp.exp_().neg_();                                        // -p
  d.scatter_add_(1, k.tsafe, at::ones({d.size(0), 1}, d.options()));          // onehot - p
  d.mul_((scale * k.valid.to(scale.scalar_type()) / p.temp).unsqueeze(1));
  if (p.cap > 0) d.mul_(1.0 - (k.z / p.cap).square());                          // through tanh
  return d;
}

at::Tensor as_float(const at::Tensor& x) { return x.scalar_type() == at::kFloat ? x : x.to(at::kFloat); }

struct HeadLogpsFn : public torch::autograd::Function<HeadLogpsFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& t,
                               double cap, double temp, int64_t ignore, int64_t chunk, bool entropy) {
    const Params p{cap, temp, ignore, chunk, entropy};
    const int64_t N = h.size(0), V = w.size(0);
    // Where the head is frozen the gradient for h is formed here; a trainable head recomputes.
    const bool grad_h = h.requires_grad() && !w.requires_grad();
    auto logps = at::zeros({N}, h.options().dtype(at::kFloat));
    auto lsum = at::zeros({N}, logps.options());
    auto ent = at::zeros({entropy ? N : 0}, logps.options());
    at::Tensor jac = grad_h ? at::empty_like(h) : at::Tensor();  // [N, H]: d log p(target_i) / d h_i
    const int64_t c = rows_per_chunk(N, V, chunk);
    for (int64_t s = 0; s < N; s += c) {
      const int64_t n = std::min(c, N - s);
      auto hc = h.narrow(0, s, n);
      auto tc = t.narrow(0, s, n);
      auto a = as_float(at::mm(hc, w.t()));  // [n, V]
      Chunk k = chunk_forward(a, tc, p);
      logps.narrow(0, s, n).copy_(k.logp.gather(1, k.tsafe).squeeze(1) * k.valid);
      lsum.narrow(0, s, n).copy_(k.z.sum(1));
      if (entropy) ent.narrow(0, s, n).copy_(-(k.logp.exp() * k.logp).sum(1));
      if (grad_h) {
        auto d = chunk_grad(k, at::ones({n}, logps.options()), p);
        jac.narrow(0, s, n).copy_(at::mm(d.to(w.scalar_type()), w));  // [n, H]
      }
    }
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["temp"] = temp;
    ctx->saved_data["ignore"] = ignore;
    ctx->saved_data["chunk"] = c;
    ctx->saved_data["recompute"] = !grad_h;
    if (grad_h) ctx->save_for_backward({jac});
    else ctx->save_for_backward({h, w, t});
    ctx->mark_non_differentiable({lsum, ent});
    return {logps, lsum, ent};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor g = grads[0];  // [N]
    if (!ctx->saved_data["recompute"].toBool()) {
      const at::Tensor& jac = saved[0];
      if (!g.defined()) return {at::zeros_like(jac), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}};
      return {jac * g.to(jac.scalar_type()).unsqueeze(1), at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}};
    }
    const at::Tensor &h = saved[0], &w = saved[1], &t = saved[2];
    const Params p{ctx->saved_data["cap"].toDouble(), ctx->saved_data["temp"].toDouble(), ctx->saved_data["ignore"].toInt(),
                   ctx->saved_data["chunk"].toInt(), false};
    const int64_t N = h.size(0);
    at::Tensor gh = at::zeros_like(h), gw = at::zeros(w.sizes(), w.options().dtype(at::kFloat));
    if (g.defined()) {
      for (int64_t s = 0; s < N; s += p.chunk) {
        const int64_t n = std::min(p.chunk, N - s);
        auto hc = h.narrow(0, s, n);
        Chunk k = chunk_forward(as_float(at::mm(hc, w.t())), t.narrow(0, s, n), p);
        auto d = chunk_grad(k, as_float(g.narrow(0, s, n)), p);  // [n, V]
        gh.narrow(0, s, n).copy_(at::mm(d.to(w.scalar_type()), w));
        gw.addmm_(d.t(), as_float(hc));  // [V, H] += [V, n] [n, H]
      }
    }
    return {h.requires_grad() ? gh : at::Tensor(), w.requires_grad() ? gw.to(w.scalar_type()) : at::Tensor(), at::Tensor(),
            {}, {}, {}, {}, {}};
  }
};

}  // namespace

HeadLogps head_token_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                           const HeadLogpsOptions& opt) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "head log-probs: hidden [N, H] and weight [V, H] must agree on H");
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0), "head log-probs: targets must be [N]");
  TORCH_CHECK(opt.temperature > 0, "head log-probs: temperature must be positive");
  const auto t = targets.to(at::kLong).contiguous();
  {
    // Out-of-range targets would index past a row; the other recipes' check, said once here.
    auto bad = t.ne(opt.ignore_index).logical_and(t.lt(0).logical_or(t.ge(weight.size(0))));
    TORCH_CHECK(!bad.any().item<bool>(), "head log-probs: a target is outside the vocabulary of ", weight.size(0));
  }
  auto out = HeadLogpsFn::apply(hidden.contiguous(), weight, t, opt.softcap, opt.temperature, opt.ignore_index, opt.chunk_rows,
                                opt.entropy);
  HeadLogps r;
  r.logps = out[0];
  r.logit_sum = out[1];
  if (opt.entropy) r.entropy = out[2];
  return r;
}

}  // namespace hone
