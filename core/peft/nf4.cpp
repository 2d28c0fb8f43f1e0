// NF4 quantization. Codes: nearest of the 16 NormalFloat values to w/absmax (bucketize against
// the midpoints). Double quantization: absmax - mean(absmax) stored as int8 with one fp32 scale
// per 256 blocks: 4 + 8/64 + 32/(64*256) ~= 4.127 bits per weight.
#include "peft/nf4.h"

#include "model/bf16_gemm.h"
#include "model/cpu_gemm.h"
#include "peft/nf4_bf16.h"

#include <torch/autograd.h>

#include <cmath>

namespace hone {

const float kNF4Codebook[16] = {-1.0f,
                                -0.6961928009986877f,
                                -0.5250730514526367f,
                                -0.39491748809814453f,
                                -0.28444138169288635f,
                                -0.18477343022823334f,
                                -0.09105003625154495f,
                                0.0f,
                                0.07958029955625534f,
                                0.16093020141124725f,
                                0.24611230194568634f,
                                0.33791524171829224f,
                                0.44070982933044434f,
                                0.5626170039176941f,
                                0.7229568362236023f,
                                1.0f};

namespace {
at::Tensor codebook(const at::Device& dev) {
  return at::from_blob(const_cast<float*>(kNF4Codebook), {16}, at::kFloat).to(dev);
}
}  // namespace

int64_t NF4Weight::bytes() const {
  return codes.numel() + absmax_q.numel() + absmax_scale.numel() * 4 + 8;
}

at::Tensor nf4_nearest_code(const at::Tensor& normalized) {
  auto cb = codebook(normalized.device());
  auto mid = (cb.narrow(0, 0, 15) + cb.narrow(0, 1, 15)) / 2;  // [15]
  return at::bucketize(normalized.contiguous(), mid);            // ties go to the lower code
}

NF4Weight nf4_quantize(const at::Tensor& w_in) {
  at::NoGradGuard ng;
  NF4Weight q;
  q.shape.assign(w_in.sizes().begin(), w_in.sizes().end());
  q.numel = w_in.numel();
  auto w = w_in.detach().to(at::kFloat).reshape({-1});
  const int64_t nblocks = (q.numel + kNF4Block - 1) / kNF4Block;
  if (nblocks * kNF4Block != q.numel) w = at::cat({w, at::zeros({nblocks * kNF4Block - q.numel}, w.options())});
  auto blocks = w.view({nblocks, kNF4Block});
  auto absmax = blocks.abs().amax(1);                                            // [n]
  auto safe = at::where(absmax > 0, absmax, at::ones_like(absmax));
  auto idx = nf4_nearest_code(blocks / safe.unsqueeze(1)).to(at::kByte).view({-1});  // [n*64]
  auto pairs = idx.view({-1, 2});
  q.codes = (pairs.select(1, 0) * 16 + pairs.select(1, 1)).to(at::kByte).contiguous();
  // Double quantization of the absmax values.
  q.absmax_offset = absmax.mean().item<double>();
  auto centered = absmax - q.absmax_offset;
  const int64_t ng2 = (nblocks + kNF4AbsmaxBlock - 1) / kNF4AbsmaxBlock;
  auto padded = ng2 * kNF4AbsmaxBlock == nblocks ? centered : at::cat({centered, at::zeros({ng2 * kNF4AbsmaxBlock - nblocks})});
  auto groups = padded.view({ng2, kNF4AbsmaxBlock});
  q.absmax_scale = (groups.abs().amax(1) / 127.0).clamp_min(1e-12).contiguous();  // [ng2]
  q.absmax_q = (groups / q.absmax_scale.unsqueeze(1)).round().clamp(-127, 127).to(at::kChar).view({-1}).narrow(0, 0, nblocks).contiguous();
  return q;
}

at::Tensor nf4_dequantize(const at::Tensor& codes, const at::Tensor& absmax_q, const at::Tensor& absmax_scale, double offset,
                          at::IntArrayRef shape, at::ScalarType dtype) {
  const int64_t nblocks = absmax_q.numel();
  int64_t numel = 1;
  for (auto s : shape) numel *= s;
  auto hi = at::bitwise_right_shift(codes, 4);
  auto lo = at::bitwise_and(codes, 15);
  auto idx = at::stack({hi, lo}, 1).view({-1}).to(at::kLong);                       // [n*64]
  auto vals = codebook(codes.device()).index_select(0, idx).view({nblocks, kNF4Block});
  auto scale = absmax_scale.repeat_interleave(kNF4AbsmaxBlock).narrow(0, 0, nblocks);  // [n]
  auto absmax = absmax_q.to(at::kFloat) * scale + offset;                              // [n]
  auto w = (vals * absmax.unsqueeze(1)).view({-1});
  if (w.numel() != numel) w = w.narrow(0, 0, numel);
  return w.view(shape).to(dtype);
}

at::Tensor nf4_dequantize(const NF4Weight& q, at::ScalarType dtype) {
  return nf4_dequantize(q.codes, q.absmax_q, q.absmax_scale, q.absmax_offset, q.shape, dtype);
}

QuantError nf4_error(const at::Tensor& w, const NF4Weight& q) {
  at::NoGradGuard ng;
  auto wf = w.detach().to(at::kFloat);
  auto d = nf4_dequantize(q) - wf;
  QuantError e;
  e.relative_frobenius = (d.norm() / wf.norm().clamp_min(1e-30)).item<double>();
  e.max_abs = d.abs().max().item<double>();
  return e;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What both NF4 products keep for backward: the codes and scales, never a dense weight.
void save_nf4(AutogradContext* ctx, const at::Tensor& codes, const at::Tensor& absmax_q, const at::Tensor& absmax_scale,
              double offset, int64_t out, int64_t in) {
  ctx->save_for_backward({codes, absmax_q, absmax_scale});
  ctx->saved_data["offset"] = offset;
  ctx->saved_data["out"] = out;
  ctx->saved_data["in"] = in;
}

struct NF4MatMul : public torch::autograd::Function<NF4MatMul> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& codes, const at::Tensor& absmax_q,
                            const at::Tensor& absmax_scale, double offset, int64_t out, int64_t in) {
    save_nf4(ctx, codes, absmax_q, absmax_scale, offset, out, in);
    auto w = nf4_dequantize(codes, absmax_q, absmax_scale, offset, {out, in}, x.scalar_type());  // transient
    return at::matmul(x, w.t());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto s = ctx->get_saved_variables();
    const int64_t out = ctx->saved_data["out"].toInt(), in = ctx->saved_data["in"].toInt();
    auto w = nf4_dequantize(s[0], s[1], s[2], ctx->saved_data["offset"].toDouble(), {out, in}, grad[0].scalar_type());
    return {at::matmul(grad[0], w), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

namespace {

struct NF4MatMulBf16 : public torch::autograd::Function<NF4MatMulBf16> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& codes, const at::Tensor& absmax_q,
                            const at::Tensor& absmax_scale, double offset, int64_t out, int64_t in) {
    save_nf4(ctx, codes, absmax_q, absmax_scale, offset, out, in);
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    auto w = nf4_dequantize(codes, absmax_q, absmax_scale, offset, {out, in}, at::kBFloat16);  // [out, in], transient
    auto sizes = x.sizes().vec();
    sizes.back() = out;
    return gemm_f32(x.reshape({-1, in}), w.t()).view(sizes);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto s = ctx->get_saved_variables();
    const int64_t out = ctx->saved_data["out"].toInt(), in = ctx->saved_data["in"].toInt();
    auto w = nf4_dequantize(s[0], s[1], s[2], ctx->saved_data["offset"].toDouble(), {out, in}, at::kBFloat16);
    auto gx = gemm_f32(grad[0].reshape({-1, out}), w).view(ctx->saved_data["x_sizes"].toIntVector());
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor nf4_linear_bf16(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias) {
  auto y = NF4MatMulBf16::apply(x, q.codes, q.absmax_q, q.absmax_scale, q.absmax_offset, q.shape[0], q.shape[1]);
  return bias.defined() ? y + bias : y;
}

at::Tensor nf4_linear(const at::Tensor& x, const NF4Weight& q, const at::Tensor& bias) {
  auto y = NF4MatMul::apply(x, q.codes, q.absmax_q, q.absmax_scale, q.absmax_offset, q.shape[0], q.shape[1]);
  return bias.defined() ? y + bias : y;
}

}  // namespace hone
