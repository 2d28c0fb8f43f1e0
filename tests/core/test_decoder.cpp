// The decoder against tests/reference/llama_reference.py (an independent PyTorch implementation
// of HF's forward pass): per-token NLL to 1e-4 on nine checkpoints covering GQA, llama3 and linear
// RoPE scaling, tied embeddings, q/k/v and o biases, sliding window, Gemma quirks, Qwen3 q/k norms, Gemma 2/3 (sandwich norms, soft-capping, sliding layers, local RoPE),
// Phi-3 (fused projections, longrope), SmolLM3 (no RoPE on every fourth layer), OLMo 2 (post-norms,
// whole-projection q/k norms), Granite (multipliers), Gemma 3's multimodal layout (text model read,
// vision tower skipped), F32/F16/BF16 files and shards. Also KV cache, padding masks, bit-exact re-save, generation
// (single and batched), the few-row GEMM of decoding, Hone's parallel loop and bad folders.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <functional>
#include <limits>

#include "common/error.h"
#include "common/parallel.h"
#include "common/json_file.h"
#include "model/bf16_gemm.h"
#include "model/cpu_gemm.h"
#include "model/blocked_attention.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/fused_cpu.h"
#include "model/linear.h"
#include "model/small_gemm.h"
#include "peft/lora.h"
#include "test_support.h"

using namespace hone;
using nlohmann::json;

namespace {

std::string ref(const std::string& name) { return std::string(HONE_TEST_WORK) + "/ref/" + name; }

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong).unsqueeze(0); }

class Reference : public ::testing::TestWithParam<std::string> {};

// A model of config cj run with a switch off and on (fused kernels, blocked attention): logits and
// every parameter's gradient must agree to 1e-5, on 3 rows of T tokens, the second padded at its end.
void expect_switch_leaves_model_unchanged(const json& cj, int64_t T, const std::function<void(CausalLM&, bool)>& set) {
  CausalLM m(parse_model_config(cj, "test"));
  init_weights(m, 7, 0.2);
  for (auto& p : m->parameters()) p.set_requires_grad(true);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto ids = at::randint(0, 101, {3, T}, gen, at::TensorOptions(at::kLong));
  auto mask = torch::ones({3, T}, torch::kLong);
  mask[1].narrow(0, T * 3 / 4, T - T * 3 / 4).zero_();
  auto run = [&](bool on) {
    set(m, on);
    m->zero_grad();
    auto logits = m->forward(ids, mask);
    (logits * mask.unsqueeze(-1)).pow(2).mean().backward();
    std::vector<at::Tensor> out = {logits.detach()};
    for (auto& p : m->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  auto a = run(false), b = run(true);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LT((a[i] - b[i]).abs().max().item<double>(), 1e-5 * std::max(1.0, a[i].abs().max().item<double>())) << "tensor " << i;
}

}  // namespace

TEST_P(Reference, NllMatchesPyTorchReference) {
  const std::string dir = ref(GetParam());
  json g = test::load_json(dir + "/golden.json");
  auto lm = load_model(dir);
  torch::NoGradGuard ng;
  auto ids = g["ids"].get<std::vector<int64_t>>();
  auto logits = lm.model->forward(ids_tensor(ids)).squeeze(0);  // [T,V]
  auto logp = torch::log_softmax(logits, -1);
  auto want = g["nll"].get<std::vector<double>>();
  double max_diff = 0, sum = 0;
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    double nll = -logp[t][ids[t + 1]].item<double>();
    max_diff = std::max(max_diff, std::abs(nll - want[t]));
    sum += nll;
  }
  EXPECT_LT(max_diff, 1e-4) << GetParam();
  EXPECT_NEAR(sum / want.size(), g["mean_nll"].get<double>(), 1e-4);
  auto top1 = logits.argmax(-1);
  auto want_top = g["top1"].get<std::vector<int64_t>>();
  auto margin = g["top1_margin"].get<std::vector<double>>();
  for (size_t t = 0; t < ids.size(); ++t)
    if (margin[t] > 1e-3) EXPECT_EQ(top1[t].item<int64_t>(), want_top[t]) << "position " << t;
}
INSTANTIATE_TEST_SUITE_P(Checkpoints, Reference,
                         ::testing::Values("llama_gqa_llama3rope_f32", "qwen2_bias_tied_bf16", "mistral_window_f16",
                                           "gemma_headdim_tied_f32", "qwen3_qknorm_headdim_tied_f32", "gemma2_softcap_sliding_f32",
                                           "gemma3_localrope_qknorm_f32", "phi3_fused_longrope_f32", "smollm3_nope_tied_f32",
                                           "olmo2_postnorm_wholeqknorm_f32", "granite_multipliers_tied_f32",
                                           "gemma3_multimodal_layout_f32", "llama_attnbias_sharded_f32"));

TEST(Decoder, KvCacheMatchesFullForward) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  torch::NoGradGuard ng;
  json g = test::load_json(ref("llama_gqa_llama3rope_f32") + "/golden.json");
  auto ids = g["ids"].get<std::vector<int64_t>>();
  auto full = lm.model->forward(ids_tensor(ids)).squeeze(0);
  KVCache cache;
  std::vector<int64_t> prefix(ids.begin(), ids.begin() + 10);
  auto part = lm.model->forward(ids_tensor(prefix), {}, &cache).squeeze(0);
  EXPECT_TRUE(torch::allclose(part, full.narrow(0, 0, 10), 1e-4, 1e-4));
  for (size_t t = 10; t < ids.size(); ++t) {
    auto step = lm.model->forward(ids_tensor({ids[t]}), {}, &cache).squeeze(0);
    EXPECT_TRUE(torch::allclose(step[0], full[t], 1e-4, 1e-4)) << "position " << t;
  }
  EXPECT_EQ(cache.length(), static_cast<int64_t>(ids.size()));
}

// The fused fp32 CPU kernels (model/fused_cpu.cpp) against the ATen formulas they replace, in value
// and in every gradient: RMSNorm, RoPE on a transposed view, cross entropy with ignored labels.
// Hone's fp32 -> bf16 rounding bit for bit against c10::BFloat16's (ATen's .to): random values
// over many magnitudes, exact ties (odd and even), infinities, denormals, the largest floats; NaN.
TEST(Decoder, Bf16RoundingEqualsAten) {
  torch::manual_seed(3);
  auto x = torch::randn({1000, 77}) * torch::pow(10.0, torch::randint(-40, 38, {1000, 77}).to(at::kFloat));
  std::vector<float> special = {0.f, -0.f, 1.f + 1.f / 256, 1.f + 3.f / 256, -(1.f + 1.f / 256), 1e-45f, -1e-40f,
                                std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), 3.3895314e38f};
  auto sp = torch::tensor(special);
  for (const auto& t : {x, sp, x.t()}) {
    auto want = t.to(at::kBFloat16), got = t.is_contiguous() ? fused_to_bf16(t) : fused_to_bf16(t.contiguous());
    // NaN stays NaN; its bits are not compared (ATen's vector path writes 0xffff, its scalar path
    // and Hone's 0x7fc0).
    auto nan = t.contiguous().isnan();
    EXPECT_TRUE(torch::equal(got.to(at::kFloat).isnan(), nan));
    auto wb = want.contiguous().view(at::kShort).masked_fill(nan, 0), gb = got.contiguous().view(at::kShort).masked_fill(nan, 0);
    EXPECT_TRUE(torch::equal(wb, gb)) << (wb != gb).sum().item<int64_t>() << " of " << t.numel() << " differ";
  }
  // The span form the head's panels use, on a length off the 16-lane step.
  auto row = x.narrow(0, 3, 1).contiguous().view(-1);
  std::vector<uint16_t> bits(static_cast<size_t>(row.numel()));
  round_to_bf16_span(row.data_ptr<float>(), bits.data(), row.numel());
  auto want = row.to(at::kBFloat16).view(at::kShort);
  for (int64_t i = 0; i < row.numel(); ++i) EXPECT_EQ(static_cast<int16_t>(bits[static_cast<size_t>(i)]), want[i].item<int16_t>()) << i;
}

TEST(Decoder, FusedKernelsEqualTheirAtenFormulas) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto close = [](const at::Tensor& a, const at::Tensor& b, double tol) {
    return (a - b).abs().max().item<double>() <= tol * std::max(1.0, b.abs().max().item<double>());
  };
  {  // RMSNorm: w * x / sqrt(mean(x^2) + eps)
    auto x = at::randn({3, 7, 48}, gen).requires_grad_(true);
    auto w = (at::rand({48}, gen) + 0.5).requires_grad_(true);
    auto dy = at::randn({3, 7, 48}, gen);
    auto y = fused_rms_norm(x, w, 1e-6);
    auto gf = torch::autograd::grad({y}, {x, w}, {dy});
    const auto &gx = gf[0], &gw = gf[1];
    auto yr = w * (x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
    auto gr = torch::autograd::grad({yr}, {x, w}, {dy});
    EXPECT_TRUE(close(y, yr, 1e-6));
    EXPECT_TRUE(close(gx, gr[0], 1e-5));
    EXPECT_TRUE(close(gw, gr[1], 1e-5));
  }
  {  // RoPE on [B,H,T,D] given as the transposed view the attention makes
    auto xt = at::randn({2, 5, 3, 8}, gen).requires_grad_(true);  // [B,T,H,D]
    auto x = xt.transpose(1, 2);                                  // [B,H,T,D], not contiguous
    auto ang = at::rand({2, 5, 4}, gen) * 6.0;
    auto cos = at::cat({ang, ang}, -1).cos(), sin = at::cat({ang, ang}, -1).sin();  // [B,T,D]
    auto dy = at::randn({2, 3, 5, 8}, gen);
    auto y = fused_rope(x, cos, sin);
    EXPECT_TRUE(y.is_contiguous());
    auto g = torch::autograd::grad({y}, {xt}, {dy})[0];
    auto rot = at::cat({-x.narrow(-1, 4, 4), x.narrow(-1, 0, 4)}, -1);
    auto yr = x * cos.unsqueeze(1) + rot * sin.unsqueeze(1);
    auto gr = torch::autograd::grad({yr}, {xt}, {dy})[0];
    EXPECT_TRUE(close(y, yr, 1e-6));
    EXPECT_TRUE(close(g, gr, 1e-6));
  }
  {  // Cross entropy, summed, label -100 ignored; one row with a label of tiny probability
    auto l = (at::randn({9, 50}, gen) * 3.0);
    l[4][7] = -120.0;
    l = l.requires_grad_(true);
    auto y = at::randint(0, 50, {9}, gen, at::TensorOptions(at::kLong));
    y[2] = -100;
    y[4] = 7;
    auto loss = fused_cross_entropy_sum(l, y);
    auto g = torch::autograd::grad({loss * 0.5}, {l})[0];
    auto ref = at::cross_entropy_loss(l, y, {}, at::Reduction::Sum, -100);
    auto gr = torch::autograd::grad({ref * 0.5}, {l})[0];
    EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-4);
    EXPECT_TRUE(close(g, gr, 1e-6));
    EXPECT_EQ(g[2].abs().sum().item<double>(), 0.0) << "an ignored row gets no gradient";
  }
  {  // SwiGLU silu(g) * u and its gradients, over more elements than one task's span, with
     // gates far out on both sides (the logistic from exp(-|g|) must not overflow)
    auto g = at::randn({3, 7001}, gen) * 4.0, u = at::randn({3, 7001}, gen), d = at::randn({3, 7001}, gen);
    g[0][0] = 95.0;
    g[0][1] = -95.0;
    auto gr = g.clone().requires_grad_(true), ur = u.clone().requires_grad_(true);
    auto ar = at::silu(gr) * ur;
    auto grads = torch::autograd::grad({ar}, {gr, ur}, {d});
    auto a = fused_swiglu(g, u);
    auto [dg, du] = fused_swiglu_backward(d, g, u);
    EXPECT_TRUE(close(a, ar, 1e-6));
    EXPECT_TRUE(close(dg, grads[0], 1e-6));
    EXPECT_TRUE(close(du, grads[1], 1e-6));
    EXPECT_FALSE(at::isnan(a).any().item<bool>() || at::isnan(dg).any().item<bool>());
    // Keeping g and u in bf16 for backward: the product is still the fp32 one, the kept tensors
    // are c10's own roundings (to nearest, ties to even), and the gradients are autograd's
    // through those roundings widened back to fp32.
    auto [a2, g16, u16] = fused_swiglu_keep_bf16(g, u);
    EXPECT_TRUE(close(a2, ar, 1e-6));
    EXPECT_TRUE(torch::equal(g16, g.to(at::kBFloat16)));
    EXPECT_TRUE(torch::equal(u16, u.to(at::kBFloat16)));
    auto gw = g16.to(at::kFloat).requires_grad_(true), uw = u16.to(at::kFloat).requires_grad_(true);
    auto wgrads = torch::autograd::grad({at::silu(gw) * uw}, {gw, uw}, {d});
    auto [dg16, du16] = fused_swiglu_backward(d, g16, u16);
    EXPECT_TRUE(close(dg16, wgrads[0], 1e-6));
    EXPECT_TRUE(close(du16, wgrads[1], 1e-6));
    EXPECT_TRUE(close(fused_swiglu(g16, u16), at::silu(gw) * uw, 1e-6));
    EXPECT_FALSE(torch::equal(dg16, dg)) << "the roundings are what backward reads";
    EXPECT_TRUE(close(dg16, dg, 2e-2)) << "within bf16's rounding of g and u";
  }
  {  // Softmax in place over rows of 77 with masked keys (the lowest float, as the causal mask
     // writes) and one row masked throughout (uniform, as at::softmax gives)
    auto x = at::randn({4, 5, 77}, gen) * 5.0;
    x.narrow(2, 40, 37).fill_(std::numeric_limits<float>::lowest());
    x[1][2].fill_(std::numeric_limits<float>::lowest());
    auto want = at::softmax(x, -1);
    auto got = x.clone();
    fused_softmax_lastdim_(got);
    EXPECT_TRUE(close(got, want, 1e-6));
    EXPECT_EQ(got.narrow(2, 40, 37)[0].abs().max().item<float>(), 0.f) << "masked keys get exactly 0";
  }
  {  // The softmax's backward in place against autograd through at::softmax, rows of 77 (not a
     // multiple of the 16 partial sums) with masked keys
    auto x = at::randn({4, 5, 77}, gen) * 3.0, d = at::randn({4, 5, 77}, gen);
    x.narrow(2, 60, 17).fill_(std::numeric_limits<float>::lowest());
    auto xr = x.clone().requires_grad_(true);
    auto want = torch::autograd::grad({at::softmax(xr, -1)}, {xr}, {d})[0];
    auto p = at::softmax(x, -1), got = d.clone();
    fused_softmax_backward_lastdim_(got, p);
    EXPECT_TRUE(close(got, want, 1e-6));
  }
}

// A whole model with the fused kernels on and off: same logits and same gradients.
TEST(Decoder, FusedKernelsLeaveTheModelUnchanged) {
  json cj = {{"model_type", "llama"}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
             {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 101}, {"max_position_embeddings", 64}};
  expect_switch_leaves_model_unchanged(cj, 40, [](CausalLM& m, bool on) { m->set_fused_kernels(on); });
}

// Blocked attention against softmax(scale q k^T + mask) v with autograd: outputs and the
// gradients of q, k and v, over blocks that do not divide T, with padding, a sliding window,
// Gemma 2's soft-capping, queries that follow earlier keys (S > T), and GQA (k and v at fewer
// heads, each serving nh / nkv query heads in transformers' repeat_kv order).
TEST(BlockedAttention, MatchesPlainAttentionInValuesAndGradients) {
  torch::manual_seed(5);
  struct Case {
    int64_t T, S;
    int64_t window;
    double cap;
    int64_t nkv = 4;
  };
  for (const Case& c : {Case{37, 37, 0, 0.0}, Case{37, 37, 10, 0.0}, Case{37, 37, 0, 5.0}, Case{9, 20, 0, 0.0}, Case{37, 37, 0, 0.0, 2},
                        Case{9, 20, 10, 0.0, 1}}) {
    SCOPED_TRACE("T " + std::to_string(c.T) + " S " + std::to_string(c.S) + " window " + std::to_string(c.window) + " cap " +
                 std::to_string(c.cap) + " kv heads " + std::to_string(c.nkv));
    const int64_t B = 2, nh = 4, D = 8, past = c.S - c.T;
    auto q0 = torch::randn({B, nh, c.T, D}), k0 = torch::randn({B, c.nkv, c.S, D}), v0 = torch::randn({B, c.nkv, c.S, D});
    auto qi = torch::arange(past, c.S).view({c.T, 1}), kj = torch::arange(0, c.S).view({1, c.S});
    auto allowed = (kj <= qi).unsqueeze(0).expand({B, c.T, c.S}).clone();
    if (c.window > 0) allowed = allowed.logical_and(kj > qi - c.window);
    allowed[1].narrow(1, c.S - 5, 5).fill_(false);  // the second row's last 5 keys are padding
    auto mask = torch::where(allowed, torch::zeros({}), torch::full({}, std::numeric_limits<float>::lowest())).unsqueeze(1);
    auto dout = torch::randn({B, nh, c.T, D});
    const double scale = 0.35;

    auto q1 = q0.clone().requires_grad_(true), k1 = k0.clone().requires_grad_(true), v1 = v0.clone().requires_grad_(true);
    auto k1r = k1.repeat_interleave(nh / c.nkv, 1), v1r = v1.repeat_interleave(nh / c.nkv, 1);  // [B, nh, S, D]
    auto sc = torch::matmul(q1, k1r.transpose(2, 3)) * scale;
    if (c.cap > 0) sc = torch::tanh(sc / c.cap) * c.cap;
    auto ref = torch::matmul(torch::softmax(sc + mask, -1), v1r);
    (ref * dout).sum().backward();

    auto q2 = q0.clone().requires_grad_(true), k2 = k0.clone().requires_grad_(true), v2 = v0.clone().requires_grad_(true);
    auto got = blocked_attention(q2, k2, v2, mask, scale, c.cap, 8);
    (got * dout).sum().backward();
    auto close = [](const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); };
    EXPECT_LT(close(got, ref), 1e-5);
    EXPECT_LT(close(q2.grad(), q1.grad()), 1e-5);
    EXPECT_LT(close(k2.grad(), k1.grad()), 1e-5);
    EXPECT_LT(close(v2.grad(), v1.grad()), 1e-5);

    // bf16 products (a bf16 base's attention): the output is fp32 arithmetic over q, k, v and the
    // probabilities rounded to bf16; the gradients stay within bf16's rounding of the fp32 ones.
    auto round = [](const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); };
    auto q3 = q0.clone().requires_grad_(true), k3 = k0.clone().requires_grad_(true), v3 = v0.clone().requires_grad_(true);
    auto got16 = blocked_attention(q3, k3, v3, mask, scale, c.cap, 8, /*bf16=*/true);
    ASSERT_EQ(got16.scalar_type(), at::kFloat);
    {
      torch::NoGradGuard ng;
      auto s16 = torch::matmul(round(q0), round(k0).repeat_interleave(nh / c.nkv, 1).transpose(2, 3)) * scale;
      if (c.cap > 0) s16 = torch::tanh(s16 / c.cap) * c.cap;
      auto want16 = torch::matmul(round(torch::softmax(s16 + mask, -1)), round(v0).repeat_interleave(nh / c.nkv, 1));
      EXPECT_LT(close(got16, want16), 1e-5);
      EXPECT_GT(close(got16, ref), 0.0);
    }
    (got16 * dout).sum().backward();
    for (auto [g16, g32] : {std::pair{q3.grad(), q1.grad()}, {k3.grad(), k1.grad()}, {v3.grad(), v1.grad()}}) {
      ASSERT_EQ(g16.scalar_type(), at::kFloat);
      EXPECT_LT(close(g16, g32), 2e-2 * g32.abs().max().item<double>());
      EXPECT_GT(close(g16, g32), 0.0);
    }
  }
}

// The frozen layer and its adapter in one node (frozen_lora_linear) against the two nodes it
// replaces and, for an fp32 weight, against plain ATen autograd: the output and the gradients of
// x, A and B, with and without a bias, over an fp32 and a bf16 weight.
TEST(Bf16Gemm, FrozenLoraNodeEqualsTheFrozenLayerPlusItsAdapter) {
  torch::manual_seed(9);
  for (bool bf16 : {false, true})
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(std::string(bf16 ? "bf16" : "fp32") + (with_bias ? " with bias" : ""));
      const auto x0 = torch::randn({2, 5, 24}), A0 = torch::randn({4, 24}) * 0.2, B0 = torch::randn({16, 4}) * 0.2,
                 d = torch::randn({2, 5, 16});
      at::Tensor w = torch::randn({16, 24}) * 0.2, bias = with_bias ? torch::randn({16}) : at::Tensor();
      if (bf16) w = w.to(at::kBFloat16);
      const double s = 2.0;
      auto run = [&](int how) {
        auto x = x0.clone().requires_grad_(true), A = A0.clone().requires_grad_(true), B = B0.clone().requires_grad_(true);
        at::Tensor y;
        if (how == 0) y = frozen_lora_linear(x, w, bias, lora_low(x, A), B, s);
        else if (how == 1) y = lora_add(frozen_linear(x, w, bias), lora_low(x, A), B, s);
        else y = at::linear(x, w, bias) + at::linear(at::linear(x, A), B) * s;  // fp32 w only
        (y * d).sum().backward();
        return std::vector<at::Tensor>{y.detach(), x.grad(), A.grad(), B.grad()};
      };
      const auto got = run(0), want = run(1);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_GT(want[i].abs().max().item<double>(), 0) << i;
        EXPECT_LT((got[i] - want[i]).abs().max().item<double>(), 1e-5 * want[i].abs().max().item<double>()) << i;
      }
      if (!bf16) {
        const auto ref = run(2);
        for (size_t i = 0; i < got.size(); ++i)
          EXPECT_LT((got[i] - ref[i]).abs().max().item<double>(), 1e-5 * ref[i].abs().max().item<double>()) << i;
      }
    }
}

// bf16-weight GEMMs against fp32 arithmetic on the same bf16-rounded operands: products and the
// output stay fp32 (ATen's bf16 matmul rounds its output: 3e-3), for a weight given transposed or
// not, into a reused buffer, and through the frozen linear layer's gradient.
TEST(Bf16Gemm, EqualsFp32ArithmeticOnRoundedOperands) {
  torch::manual_seed(5);
  auto round = [](const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); };
  auto a = torch::randn({37, 70}), w = torch::randn({53, 70}).to(at::kBFloat16);  // w [N, K] as a layer holds it
  auto want = torch::mm(round(a), w.to(at::kFloat).t());
  auto got = gemm_f32(a, w.t());
  ASSERT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
  auto g = torch::randn({37, 53});
  auto back = gemm_f32(g, w);  // [37, 70], the weight untransposed
  EXPECT_LT((back - torch::mm(round(g), w.to(at::kFloat))).abs().max().item<double>(), 1e-5 * back.abs().max().item<double>());
  auto buf = torch::full({37, 53}, 7.f);
  gemm_f32_out(buf, a, w.t());
  EXPECT_TRUE(torch::equal(buf, got));

  auto x = torch::randn({2, 37, 70}).requires_grad_(true), bias = torch::randn({53});
  auto y = frozen_linear(x, w, bias);  // [2, 37, 53]
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 37, 53}));
  auto y_ref = torch::matmul(round(x.detach()), w.to(at::kFloat).t()) + bias;
  EXPECT_LT((y.detach() - y_ref).abs().max().item<double>(), 1e-5 * y_ref.abs().max().item<double>());
  auto gy = torch::randn({2, 37, 53});
  (y * gy).sum().backward();
  auto gx_ref = torch::matmul(round(gy), w.to(at::kFloat));
  EXPECT_LT((x.grad() - gx_ref).abs().max().item<double>(), 1e-5 * gx_ref.abs().max().item<double>());
  EXPECT_THROW(frozen_linear(x, w.clone().to(at::kFloat).to(at::kBFloat16).requires_grad_(true), bias), c10::Error);
  if (!onednn_bf16_gemm()) GTEST_LOG_(INFO) << "no bf16 GEMM unit here: the widened fallback was tested (" << cpu_gemm_describe() << ")";
}

// The path for bf16 operands on CPUs without a bf16 unit (run here whatever this CPU has) against
// fp64 arithmetic on the bf16-rounded operands: a weight given transposed, alpha with accumulation
// onto what c held, and weights past the 32 MB widening slice both ways (column slices written in
// place; row slices accumulating), an fp32 activation rounded and a bf16 one widened.
TEST(Bf16Gemm, WidenedPathEqualsFp64ArithmeticOnRoundedOperands) {
  torch::manual_seed(6);
  auto d = [](const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kDouble); };
  auto rel = [](const at::Tensor& got, const at::Tensor& want) {
    return (got.to(at::kDouble) - want).abs().max().item<double>() / want.abs().max().item<double>();
  };
  auto a = torch::randn({37, 70}), w = torch::randn({53, 70}).to(at::kBFloat16);  // w [N, K]
  auto c = torch::full({37, 53}, 9.f);
  gemm_bf16_widened_out(c, a, w.t());
  EXPECT_LT(rel(c, torch::mm(d(a), d(w).t())), 1e-6);
  auto c0 = torch::randn({37, 53});
  c = c0.clone();
  gemm_bf16_widened_out(c, a, w.t(), 0.5, true);
  EXPECT_LT(rel(c, c0.to(at::kDouble) + 0.5 * torch::mm(d(a), d(w).t())), 1e-6);

  // Past the slice: 140,000 x 64 fp32 is 35.8 MB. The head's shape (column slices of w^T, two of
  // them) and its gradient's (row slices of w, the activation given in bf16).
  auto head = torch::randn({140000, 64}).to(at::kBFloat16);
  auto h = torch::randn({5, 64});
  auto logits = torch::empty({5, 140000});
  gemm_bf16_widened_out(logits, h, head.t());
  EXPECT_LT(rel(logits, torch::mm(d(h), d(head).t())), 1e-6);
  auto g = torch::randn({5, 140000}).to(at::kBFloat16);
  auto dh = torch::full({5, 64}, 3.f);
  gemm_bf16_widened_out(dh, g, head, 2.0);
  EXPECT_LT(rel(dh, 2.0 * torch::mm(d(g), d(head))), 1e-6);
}

// fp32 GEMMs as Hone runs them (oneDNN on AVX-512 CPUs, ATen elsewhere) against fp64 ATen: 2-D
// with a transposed weight, batched with transposed operands, alpha, accumulation into a narrowed
// view (the attention's dv rows), 4-D with a broadcast operand, and the frozen fp32 linear
// layer's input gradient.
TEST(CpuGemm, Fp32ProductsEqualDoublePrecisionArithmetic) {
  torch::manual_seed(11);
  auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
  auto rel = [&](const at::Tensor& got, const at::Tensor& want) {
    return (d(got) - want).abs().max().item<double>() / want.abs().max().item<double>();
  };
  auto a = torch::randn({37, 70}), w = torch::randn({53, 70});
  EXPECT_LT(rel(gemm_f32(a, w.t()), torch::mm(d(a), d(w).t())), 1e-6);
  EXPECT_LT(rel(gemm_f32(a.t().contiguous().t(), w.t()), torch::mm(d(a), d(w).t())), 1e-6);  // column-major a

  auto q = torch::randn({6, 9, 16}), k = torch::randn({6, 13, 16}), p = torch::randn({6, 9, 13});
  EXPECT_LT(rel(bmm_f32(q, k.transpose(1, 2), 0.25), torch::bmm(d(q), d(k).transpose(1, 2)) * 0.25), 1e-6);
  auto acc = torch::randn({6, 20, 16});
  auto want = d(acc).clone();
  want.narrow(1, 0, 13) += torch::bmm(d(p).transpose(1, 2), d(q)) * 0.5;
  matmul_f32_out(acc.narrow(1, 0, 13), p.transpose(1, 2), q, 0.5, true);  // [6, 13, 16], batch stride of 20 rows
  EXPECT_LT(rel(acc, want), 1e-6);
  EXPECT_TRUE(torch::equal(acc.narrow(1, 13, 7), want.narrow(1, 13, 7).to(at::kFloat)));  // rows past the view untouched
  EXPECT_THROW(matmul_f32_out(acc, p, q.transpose(1, 2).contiguous(), 1.0, false), c10::Error);  // shapes disagree
  // 4-D with the second operand broadcast over dimension 1 (a kv head shared by 3 query heads),
  // into a strided view of a larger output.
  auto q4 = torch::randn({2, 3, 9, 16}), k4 = torch::randn({2, 1, 13, 16});
  auto o4 = torch::zeros({2, 3, 12, 13});
  matmul_f32_out(o4.narrow(2, 2, 9), q4, k4.transpose(2, 3), 2.0, false);
  EXPECT_LT(rel(o4.narrow(2, 2, 9), torch::matmul(d(q4), d(k4).transpose(2, 3)) * 2.0), 1e-6);
  EXPECT_TRUE(torch::equal(o4.narrow(2, 0, 2), torch::zeros({2, 3, 2, 13})));

  auto x = torch::randn({2, 37, 70}).requires_grad_(true), bias = torch::randn({53});
  ASSERT_EQ(frozen_linear_applies(x, w), onednn_f32_gemm());
  auto y = frozen_linear(x, w, bias);
  EXPECT_LT(rel(y.detach(), torch::matmul(d(x.detach()), d(w).t()) + d(bias)), 1e-6);
  auto gy = torch::randn({2, 37, 53});
  (y * gy).sum().backward();
  EXPECT_LT(rel(x.grad(), torch::matmul(d(gy), d(w))), 1e-6);
  EXPECT_FALSE(frozen_linear_applies(x, w.clone().requires_grad_(true)));  // a trained weight takes at::linear
  GTEST_LOG_(INFO) << cpu_gemm_describe();
}

// GEMMs from several threads at once (a training job beside a generation or the Train page's rate
// measurement in the GUI): every product right. With oneDNN's shared library scratchpad 3 and 16
// of these 480 products came out wrong in two runs (and the GUI test crashed); each call now
// brings its own.
TEST(CpuGemm, ConcurrentThreadsGetTheirOwnProducts) {
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      at::NoGradGuard ng;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + t);
      for (int i = 0; i < 120; ++i) {
        const int64_t n = 192 + 64 * ((i + t) % 4);  // shapes shared between the threads
        auto a = at::randn({n, n}, gen), b = at::randn({n, n}, gen);
        const bool bf16 = (i + t) % 2 == 1;
        if (bf16) b = b.to(at::kBFloat16);
        const at::Tensor c = gemm_f32(a, b);
        const at::Tensor ref = bf16 ? at::mm(a.to(at::kBFloat16).to(at::kDouble), b.to(at::kDouble)) : at::mm(a.to(at::kDouble), b.to(at::kDouble));
        if (!at::allclose(c.to(at::kDouble), ref, 1e-4, 1e-3)) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << cpu_gemm_describe();
}

namespace {
// Rank-4 adapters on every linear layer with B drawn nonzero, so that each adapter changes the
// output and every adapter has a gradient.
void attach_live_lora(CausalLM& m) {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = {"all-linear"};
  attach_lora(m, lc, 3);
  at::NoGradGuard ng;
  for (auto& p : m->named_parameters())
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0.0, 0.1, at::detail::getDefaultCPUGenerator());
}
}  // namespace

// base_dtype "bf16" on a model: every frozen weight is stored in bf16 (half the bytes), the
// adapters attached afterwards are fp32 and the only parameters with gradients, and the logits and
// the adapters' gradients stay within bf16 rounding of the fp32 model holding the same
// (pre-rounded) weights; full training and a bf16 request for it are refused.
TEST(Decoder, Bf16BaseStaysWithinRoundingOfTheFp32Model) {
  for (bool tie : {true, false}) {
    SCOPED_TRACE(tie ? "tied head" : "untied head");
    json cj = {{"model_type", "qwen2"}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
               {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 101}, {"max_position_embeddings", 128},
               {"tie_word_embeddings", tie}};
    auto make = [&](bool bf16) {
      CausalLM m(parse_model_config(cj, "test"));
      init_weights(m, 7, 0.05);
      {
        at::NoGradGuard ng;
        for (auto& p : m->named_parameters())  // bf16-representable weights: storage then loses nothing
          if (p.key().find("norm") == std::string::npos && p.key().find("bias") == std::string::npos)
            p.value().copy_(p.value().to(at::kBFloat16).to(at::kFloat));
      }
      for (auto& p : m->parameters()) p.set_requires_grad(false);
      int64_t fp32 = 0;
      for (auto& p : m->parameters()) fp32 += p.numel() * 4;
      if (bf16) {
        const int64_t linear_bytes = store_base_bf16(m);
        int64_t now = 0;
        for (auto& p : m->parameters()) now += p.numel() * p.element_size();
        EXPECT_GT(linear_bytes, 0);
        EXPECT_LT(now, fp32 * 6 / 10);  // norms and biases stay fp32
        EXPECT_EQ(m->output_weight().scalar_type(), at::kBFloat16);
      }
      attach_live_lora(m);
      return m;
    };
    torch::manual_seed(11);
    CausalLM a = make(false);
    torch::manual_seed(11);
    CausalLM b = make(true);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    auto ids = at::randint(0, 101, {2, 24}, gen, at::TensorOptions(at::kLong));
    auto la = a->forward(ids), lb = b->forward(ids);
    ASSERT_EQ(lb.scalar_type(), at::kFloat);
    const double scale = la.abs().max().item<double>();
    const double diff = (la - lb).abs().max().item<double>();
    EXPECT_LT(diff, 1e-2 * scale) << "logits";  // measured 0.4%
    EXPECT_GT(diff, 0.0) << "the activations feeding the GEMMs are rounded to bf16";
    la.pow(2).mean().backward();
    lb.pow(2).mean().backward();
    auto pa = a->named_parameters(), pb = b->named_parameters();
    int compared = 0;
    for (auto& p : pb) {
      const bool adapter = p.key().find(".lora_") != std::string::npos;
      EXPECT_EQ(p.value().grad().defined(), adapter) << p.key();
      if (!adapter) continue;
      EXPECT_EQ(p.value().scalar_type(), at::kFloat) << p.key();
      const auto& ga = pa[p.key()].grad();
      EXPECT_LT((p.value().grad() - ga).abs().max().item<double>(), 3e-2 * std::max(1e-6, ga.abs().max().item<double>())) << p.key();  // up to 1%
      ++compared;
    }
    EXPECT_EQ(compared, 2 * 7 * 2);
  }
  {  // Initialised straight into bf16 storage (in blocks of rows, as bench does): the fp32
     // initialisation's values, rounded
    json cj = {{"model_type", "llama"}, {"hidden_size", 56}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
               {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 150001}};  // 3 blocks, a ragged tail
    CausalLM f(parse_model_config(cj, "test")), b(parse_model_config(cj, "test"));
    for (auto& p : b->parameters()) p.set_requires_grad(false);
    store_base_bf16(b);
    init_weights(f, 9);
    init_weights(b, 9);
    auto pf = f->named_parameters(), pb = b->named_parameters();
    for (auto& p : pf) EXPECT_TRUE(torch::equal(p.value().to(pb[p.key()].scalar_type()), pb[p.key()])) << p.key();
  }
  EXPECT_THROW(resolve_base_dtype("bf16", "full", false, 1LL << 30), Error);
  EXPECT_FALSE(resolve_base_dtype("auto", "lora", false, 1 << 20).bf16);  // small bases stay fp32
  EXPECT_FALSE(resolve_base_dtype("f32", "lora", false, 1LL << 32).bf16);
  EXPECT_TRUE(resolve_base_dtype("bf16", "qlora", false, 1 << 20).bf16);
  // Without a bf16 unit LoRA's base is still bf16 where widening it runs at fp32 speed (AVX-512);
  // QLoRA's stays fp32 there.
  EXPECT_EQ(resolve_base_dtype("auto", "lora", false, 1LL << 32).bf16, onednn_bf16_gemm() || bf16_widened_at_f32_speed());
  EXPECT_EQ(resolve_base_dtype("auto", "qlora", false, 1LL << 32).bf16, onednn_bf16_gemm());
}

// Over a bf16 base, SwiGLU keeps gate and up for backward in bf16 (the default, run config
// bf16_activations "auto") instead of fp32 ("off"): the forward is the same bit for bit, the
// adapters' gradients differ by bf16's rounding of g and u only. The memory it saves is bench's
// peak_rss_mb (docs/performance.md).
TEST(Decoder, Bf16BaseKeepsSwiGluInputsInBf16ForBackward) {
  json cj = {{"model_type", "qwen2"}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
             {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 101}, {"max_position_embeddings", 128}};
  CausalLM m(parse_model_config(cj, "test"));
  init_weights(m, 7, 0.05);
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  store_base_bf16(m);
  attach_live_lora(m);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto ids = at::randint(0, 101, {2, 24}, gen, at::TensorOptions(at::kLong));
  auto run = [&](bool bf16, bool recompute = false) {
    m->mlp_keep_bf16(bf16);
    m->set_mlp_recompute(recompute);
    m->zero_grad();
    auto logits = m->forward(ids);
    logits.pow(2).mean().backward();
    std::vector<std::pair<std::string, at::Tensor>> out = {{"logits", logits.detach()}};
    for (auto& p : m->named_parameters())
      if (p.value().requires_grad()) out.emplace_back(p.key(), p.value().grad().clone());
    return out;
  };
  const auto f32 = run(false);
  // With mlp_recompute (the gate's output alone kept, in bf16; the up projection run again) too.
  for (bool recompute : {false, true}) {
    SCOPED_TRACE(recompute ? "mlp_recompute" : "gate and up kept");
    const auto b16 = run(true, recompute);
    ASSERT_EQ(f32.size(), b16.size());
    ASSERT_EQ(f32.size(), 1u + 2 * 2 * 7);
    EXPECT_TRUE(torch::equal(f32[0].second, b16[0].second)) << "the forward is unchanged";
    int moved = 0;
    for (size_t i = 1; i < f32.size(); ++i) {
      const auto& want = f32[i].second;
      const double scale = want.abs().max().item<double>(), diff = (want - b16[i].second).abs().max().item<double>();
      EXPECT_GT(scale, 0) << f32[i].first;
      EXPECT_LT(diff, 2e-2 * scale) << f32[i].first;
      moved += diff > 0;
    }
    // Every adapter before the MLP's product sees its backward (the last layer's o, q, k, v too);
    // only the last layer's down projection reads nothing SwiGLU kept.
    EXPECT_GE(moved, 2 * 2 * 7 - 2);
  }
}

// The model with blocked attention (the default) against the plain path: logits and every
// parameter's gradient, with padding and GQA, for Llama and for Mistral's sliding window.
TEST(Decoder, BlockedAttentionLeavesTheModelUnchanged) {
  for (const std::string type : {"llama", "mistral"}) {
    SCOPED_TRACE(type);
    json cj = {{"model_type", type}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
               {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 101}, {"max_position_embeddings", 128}};
    if (type == "mistral") cj["sliding_window"] = 16;
    expect_switch_leaves_model_unchanged(cj, 70, [](CausalLM& m, bool on) { m->set_blocked_attention(on); });
  }
}

// The down projection's LoRA branch recomputes its input act(g) * u in backward instead of keeping
// it (decoder.cpp, GatedLoraAFn). Against the plain path (the unfused ops and the layer's own
// LoRA branch, which keeps the product): the loss and every adapter's gradient, for SwiGLU and
// GELU-tanh (Gemma); and with mlp_recompute, which keeps only the gate's output and runs the up
// projection again in backward, also with the adapters switched off and under PPO's critic
// adapter. (The memory they save is bench's peak_rss_mb: docs/performance.md.)
TEST(Decoder, DownLoraRecomputesItsInputAndKeepsGradients) {
  for (const std::string type : {"llama", "gemma"}) {
    SCOPED_TRACE(type);
    json cj = {{"model_type", type}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
               {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 101}, {"head_dim", 8}};
    CausalLM m(parse_model_config(cj, "test"));
    init_weights(m, 7, 0.2);
    for (auto& p : m->parameters()) p.set_requires_grad(false);
    LoraConfig lc;
    lc.targets = {"all-linear"};
    attach_lora(m, lc, 3);
    {
      torch::NoGradGuard ng;  // B starts at 0; nonzero so that A's gradient is not trivially 0
      for (auto& p : m->named_parameters())
        if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
    }
    auto ids = torch::randint(0, 101, {2, 23}, at::TensorOptions(at::kLong));
    auto run = [&](bool fused, bool recompute = false) {
      m->set_fused_kernels(fused);
      m->set_mlp_recompute(recompute);
      m->zero_grad();
      auto logits = m->forward(ids);
      logits.pow(2).mean().backward();
      std::vector<at::Tensor> out = {logits.detach()};
      for (auto& p : m->named_parameters())
        if (p.value().requires_grad()) out.push_back(p.value().grad().clone());
      return out;
    };
    auto compare = [](const std::vector<at::Tensor>& want, const std::vector<at::Tensor>& got, size_t n) {
      ASSERT_EQ(want.size(), n);
      ASSERT_EQ(got.size(), n);
      for (size_t i = 0; i < n; ++i) {
        EXPECT_GT(want[i].abs().max().item<double>(), 0) << "tensor " << i;
        EXPECT_LT((want[i] - got[i]).abs().max().item<double>(), 1e-5 * std::max(1.0, want[i].abs().max().item<double>())) << "tensor " << i;
      }
    };
    const auto plain = run(false);
    compare(plain, run(true), 1u + 2 * 2 * 7);
    compare(plain, run(true, true), 1u + 2 * 2 * 7);
    set_lora_enabled(m, false);  // the base alone: only the input ids' path, no adapter grads
    {
      m->set_fused_kernels(false);
      m->set_mlp_recompute(false);
      auto a = m->forward(ids).detach();
      m->set_fused_kernels(true);
      m->set_mlp_recompute(true);
      EXPECT_LT((a - m->forward(ids).detach()).abs().max().item<double>(), 1e-5);
    }
    set_lora_enabled(m, true);
    // PPO's critic adapter in place of the policy's: the recompute runs the adapter the forward ran.
    for (auto& l : *m->model->layers)
      for (auto& mod : l->modules(false))
        if (auto* lin = dynamic_cast<LinearImpl*>(mod.get()); lin && lin->has_lora()) {
          lin->add_critic_lora();
          torch::NoGradGuard ng;
          lin->critic_B->weight.normal_(0, 0.1);
          lin->use_critic = true;
        }
    auto critic = [&](bool fused, bool recompute) {
      m->set_fused_kernels(fused);
      m->set_mlp_recompute(recompute);
      m->zero_grad();
      auto logits = m->forward(ids);
      for (auto& l : *m->model->layers)  // switched back before backward, as PPO's value pass does
        for (auto& mod : l->modules(false))
          if (auto* lin = dynamic_cast<LinearImpl*>(mod.get())) lin->use_critic = false;
      logits.pow(2).mean().backward();
      std::vector<at::Tensor> out = {logits.detach()};
      for (auto& p : m->named_parameters())
        if (p.key().find("critic_") != std::string::npos) out.push_back(p.value().grad().clone());
      for (auto& l : *m->model->layers)
        for (auto& mod : l->modules(false))
          if (auto* lin = dynamic_cast<LinearImpl*>(mod.get()); lin && lin->has_critic()) lin->use_critic = true;
      return out;
    };
    compare(critic(false, false), critic(true, true), 1u + 2 * 2 * 7);
  }
}

TEST(Decoder, PaddingMaskIsolatesSequences) {
  auto lm = load_model(ref("qwen2_bias_tied_bf16"));
  torch::NoGradGuard ng;
  std::vector<int64_t> a = {5, 17, 99, 3, 42, 7, 8, 150}, b = {11, 23, 4, 200, 9};
  auto la = lm.model->forward(ids_tensor(a)).squeeze(0);
  auto lb = lm.model->forward(ids_tensor(b)).squeeze(0);
  // Right padding: [B=2, T=8].
  std::vector<int64_t> bp = b;
  bp.resize(a.size(), 0);
  auto x = torch::stack({torch::tensor(a), torch::tensor(bp)});
  auto m = torch::ones({2, 8}, torch::kLong);
  m[1].narrow(0, 5, 3).zero_();
  auto out = lm.model->forward(x, m);
  EXPECT_TRUE(torch::allclose(out[0], la, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(out[1].narrow(0, 0, 5), lb, 1e-4, 1e-4));
  // Left padding with explicit positions, as batched generation uses.
  std::vector<int64_t> left = {0, 0, 0, 11, 23, 4, 200, 9};
  auto xl = torch::tensor(left).unsqueeze(0);
  auto ml = torch::tensor(std::vector<int64_t>{0, 0, 0, 1, 1, 1, 1, 1}).unsqueeze(0);
  auto pos = (ml.cumsum(1) - 1).clamp_min(0);
  auto outl = lm.model->forward(xl, ml, nullptr, pos).squeeze(0);
  EXPECT_TRUE(torch::allclose(outl.narrow(0, 3, 5), lb, 1e-4, 1e-4));
  EXPECT_FALSE(torch::isnan(outl).any().item<bool>()) << "fully masked rows must stay finite";
}

TEST(Checkpoint, ResaveIsBitExactInTheOriginalDtypes) {
  for (const std::string name : {"qwen2_bias_tied_bf16", "mistral_window_f16", "qwen3_qknorm_headdim_tied_f32", "llama_attnbias_sharded_f32"}) {
    auto lm = load_model(ref(name));
    std::string out = test::temp_dir("resave-" + name);
    SaveOptions so;
    so.dtypes = lm.file_dtypes;
    save_model(lm.model, out, so);
    // Every tensor's bytes equal the original file's.
    std::map<std::string, std::string> orig;
    for (const auto& f : checkpoint_files(ref(name))) {
      SafetensorsFile st(f);
      for (const auto& t : st.tensors()) orig[t.name] = std::string(reinterpret_cast<const char*>(st.data(t)), t.end - t.begin);
    }
    SafetensorsFile saved(out + "/model.safetensors");
    EXPECT_EQ(saved.tensors().size(), orig.size()) << name;
    for (const auto& t : saved.tensors()) {
      ASSERT_TRUE(orig.count(t.name)) << t.name;
      EXPECT_EQ(orig[t.name], std::string(reinterpret_cast<const char*>(saved.data(t)), t.end - t.begin)) << name << " " << t.name;
      EXPECT_EQ(t.dtype, lm.file_dtypes[t.name]);
    }
    EXPECT_EQ(saved.metadata().at("format"), "pt");
    // Saving what was loaded from our own file reproduces it byte for byte.
    auto lm2 = load_model(out);
    std::string out2 = test::temp_dir("resave2-" + name);
    SaveOptions so2;
    so2.dtypes = lm2.file_dtypes;
    save_model(lm2.model, out2, so2);
    EXPECT_EQ(read_file(out + "/model.safetensors"), read_file(out2 + "/model.safetensors")) << name;
    EXPECT_EQ(test::load_json(out2 + "/config.json")["model_type"], test::load_json(ref(name) + "/config.json")["model_type"]);
  }
}

TEST(Checkpoint, ShardedSaveLoadsBackIdentically) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  std::string out = test::temp_dir("shards");
  SaveOptions so;
  so.max_shard_bytes = 40000;
  save_model(lm.model, out, so);
  json idx = test::load_json(out + "/model.safetensors.index.json");
  EXPECT_GT(checkpoint_files(out).size(), 2u);
  EXPECT_TRUE(idx["metadata"].contains("total_size"));
  auto lm2 = load_model(out);
  torch::NoGradGuard ng;
  auto x = ids_tensor({1, 2, 3, 4, 5});
  EXPECT_TRUE(torch::equal(lm.model->forward(x), lm2.model->forward(x)));
}

TEST(Checkpoint, BadFoldersAreRejectedWithClearMessages) {
  auto expect_error = [](const std::string& dir, const std::string& needle) {
    try {
      load_model(dir);
      ADD_FAILURE() << "no error for " << dir;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string src = ref("llama_gqa_llama3rope_f32");
  // Pickled checkpoint only.
  std::string d1 = test::temp_dir("ck-pickle");
  write_file_atomic(d1 + "/config.json", read_file(src + "/config.json"));
  write_file_atomic(d1 + "/pytorch_model.bin", "PK\x03\x04 not loaded");
  expect_error(d1, "convert it to safetensors");
  // A folder with the reference weights and one config.json field changed.
  auto with_config = [&](const std::string& name, const char* key, const json& value, bool weights) {
    std::string d = test::temp_dir(name);
    json cfg = test::load_json(src + "/config.json");
    cfg[key] = value;
    write_file_atomic(d + "/config.json", cfg.dump());
    if (weights) write_file_atomic(d + "/model.safetensors", read_file(src + "/model.safetensors"));
    return d;
  };
  // Wrong shape: config says a different intermediate size.
  expect_error(with_config("ck-shape", "intermediate_size", 100, true),
               "mlp.gate_proj.weight' has shape [96,64] but config.json implies [100,64]");
  // Missing tensor: one layer more than the file has.
  expect_error(with_config("ck-missing", "num_hidden_layers", 3, true), "model.layers.2.");
  // Unknown architecture and truncated file.
  expect_error(with_config("ck-arch", "model_type", "gpt_neox", false), "unknown architecture model_type \"gpt_neox\"");
  std::string d5 = test::temp_dir("ck-trunc");
  write_file_atomic(d5 + "/config.json", read_file(src + "/config.json"));
  std::string st = read_file(src + "/model.safetensors");
  write_file_atomic(d5 + "/model.safetensors", st.substr(0, st.size() - 100));
  expect_error(d5, "model.safetensors");
  // A config far larger than the files is refused before allocating anything.
  std::string d7 = with_config("ck-huge", "hidden_size", 65536, true);
  json huge = test::load_json(d7 + "/config.json");
  huge["intermediate_size"] = 1 << 20;
  write_file_atomic(d7 + "/config.json", huge.dump());
  expect_error(d7, "parameters but the safetensors files hold only");
  // Index naming a file outside the folder.
  std::string d6 = test::temp_dir("ck-index");
  write_file_atomic(d6 + "/config.json", read_file(src + "/config.json"));
  write_file_atomic(d6 + "/model.safetensors.index.json", R"({"weight_map": {"lm_head.weight": "../../etc/passwd"}})");
  expect_error(d6, "not a plain file name");
}

// Found by fuzzing (tests/fuzz/regressions/model_config): a Gemma 2 config with 10^12 layers
// filled a per-layer table until memory ran out, and huge sizes overflowed the parameter count;
// sizes beyond any real model are refused, naming the field.
TEST(Checkpoint, ConfigSizesBeyondAnyModelAreRefused) {
  const json base = test::load_json(ref("llama_gqa_llama3rope_f32") + "/config.json");
  for (const auto& [key, value] : std::vector<std::pair<std::string, int64_t>>{
           {"num_hidden_layers", 1000000000000}, {"hidden_size", int64_t{1} << 62}, {"vocab_size", int64_t{1} << 40},
           {"intermediate_size", int64_t{1} << 40}, {"num_attention_heads", 1 << 20}, {"head_dim", 1 << 20}}) {
    json cfg = base;
    cfg[key] = value;
    if (key == "num_attention_heads") cfg["num_key_value_heads"] = 1 << 20;
    try {
      parse_model_config(cfg, "m/config.json");
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("m/config.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(key == "num_attention_heads" ? "num_" : key), std::string::npos) << e.what();
    }
  }
  json gemma = base;
  gemma["model_type"] = "gemma2";
  gemma["num_hidden_layers"] = 1000000000000;
  EXPECT_THROW(parse_model_config(gemma, "m/config.json"), Error);
  EXPECT_GT(parse_model_config(base, "m/config.json").parameter_count(), 0);
  // Copying a value nested 30,000 deep (config.json keeps the whole file) overflowed the stack;
  // JSON files nested deeper than 512 levels are refused when read.
  const std::string d = test::temp_dir("config-deep");
  write_file_atomic(d + "/config.json", R"({"model_type": "llama", "x": )" + std::string(600, '[') + std::string(600, ']') + "}");
  try {
    load_model_config(d);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d + "/config.json: JSON nested more than 512 levels deep"), std::string::npos) << e.what();
  }
  EXPECT_EQ(json_nesting(R"({"a": "[[[[", "b": [[1], {"c": "\"]]"}]})"), 3u);
}

TEST(Generate, GreedyWithCacheEqualsRecomputation) {
  auto lm = load_model(ref("gemma_headdim_tied_f32"));
  std::vector<int64_t> prompt = {3, 14, 15, 92, 65};
  SamplingParams p;
  p.max_new_tokens = 12;
  auto r = generate(lm.model, prompt, p);
  ASSERT_EQ(r.tokens.size(), 12u);
  torch::NoGradGuard ng;
  std::vector<int64_t> seq = prompt;
  for (int i = 0; i < 12; ++i) {
    auto logits = lm.model->forward(ids_tensor(seq)).squeeze(0);
    int64_t next = logits[logits.size(0) - 1].argmax().item<int64_t>();
    EXPECT_EQ(next, r.tokens[i]) << "step " << i;
    seq.push_back(next);
  }
}

TEST(Generate, SamplingIsSeededAndStopsOnStopTokens) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  std::vector<int64_t> prompt = {1, 2, 3};
  SamplingParams p;
  p.max_new_tokens = 20;
  p.temperature = 1.0;
  p.top_k = 50;
  p.top_p = 0.9;
  p.seed = 7;
  auto a = generate(lm.model, prompt, p), b = generate(lm.model, prompt, p);
  EXPECT_EQ(a.tokens, b.tokens);
  p.seed = 8;
  auto c = generate(lm.model, prompt, p);
  EXPECT_NE(a.tokens, c.tokens);
  // top_k = 1 is greedy whatever the temperature.
  SamplingParams g;
  g.max_new_tokens = 8;
  SamplingParams k1 = g;
  k1.temperature = 5.0;
  k1.top_k = 1;
  EXPECT_EQ(generate(lm.model, prompt, g).tokens, generate(lm.model, prompt, k1).tokens);
  // Stop token ends generation; the callback can stop it too.
  SamplingParams s = g;
  s.stop_ids = {generate(lm.model, prompt, g).tokens[2]};
  auto st = generate(lm.model, prompt, s);
  EXPECT_TRUE(st.stopped_on_token);
  EXPECT_LE(st.tokens.size(), 3u);
  int seen = 0;
  auto cb = generate(lm.model, prompt, g, [&](int64_t) { return ++seen < 4; });
  EXPECT_EQ(cb.tokens.size(), 4u);
}

TEST(Generate, RepetitionPenaltyFollowsTransformers) {
  // Positive logits are divided by the penalty, negative ones multiplied (hand-computed).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  SamplingParams p;
  p.repetition_penalty = 2.0;
  auto logits = torch::tensor({3.0f, 2.5f, -1.0f, 1.0f});
  EXPECT_EQ(sample_next(logits, {0}, p, gen), 1);  // 3/2 = 1.5 < 2.5
  auto l2 = torch::tensor({-0.5f, -0.8f, -3.0f});
  EXPECT_EQ(sample_next(l2, {0}, p, gen), 1);  // -0.5*2 = -1.0 < -0.8
}

// The few-row linear layer of decoding (model/small_gemm.cpp) against double-precision arithmetic
// on the same operands (x rounded to bf16 against a bf16 weight, as the GEMM path does): every row
// count it takes, lengths with and without a tail of K, fp32 and bf16 weights, with and without a
// bias; and the same bits whether its rows are split over one thread or two.
TEST(SmallGemm, FewRowsEqualDoublePrecisionArithmetic) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const int threads = at::get_num_threads();
  for (int64_t K : {16, 40, 200, 903})
    for (int64_t M : {1, 2, 3, 5, 8})
      for (bool bf16 : {false, true})
        for (bool with_bias : {false, true}) {
          SCOPED_TRACE("K " + std::to_string(K) + " M " + std::to_string(M) + (bf16 ? " bf16" : " f32") + (with_bias ? " bias" : ""));
          const int64_t N = 37;
          auto x = at::randn({M, K}, gen), w = at::randn({N, K}, gen), bias = with_bias ? at::randn({N}, gen) : at::Tensor();
          if (bf16) w = w.to(at::kBFloat16);
          ASSERT_TRUE(small_rows_linear_applies(x, w, bias));
          at::set_num_threads(1);
          const at::Tensor one = small_rows_linear(x, w, bias);
          at::set_num_threads(2);
          const at::Tensor two = small_rows_linear(x, w, bias);
          at::set_num_threads(threads);
          const auto xd = (bf16 ? x.to(at::kBFloat16) : x).to(at::kDouble), wd = w.to(at::kDouble);
          auto want = at::mm(xd, wd.t());
          if (with_bias) want = want + bias.to(at::kDouble);
          const double err = (one.to(at::kDouble) - want).abs().max().item<double>();
          const double scale = at::mm(xd.abs(), wd.abs().t()).max().item<double>();
          EXPECT_LT(err, 4e-7 * scale) << "largest error " << err << " at a scale of " << scale;
          EXPECT_TRUE(at::equal(one, two));
        }
  // Not for it: a gradient wanted, more rows than it takes, a transposed weight.
  auto x = at::randn({2, 16}, gen), w = at::randn({8, 16}, gen);
  EXPECT_FALSE(small_rows_linear_applies(x.clone().requires_grad_(true), w));
  EXPECT_FALSE(small_rows_linear_applies(at::randn({kSmallRows + 1, 16}, gen), w));
  EXPECT_FALSE(small_rows_linear_applies(x, at::randn({16, 8}, gen).t()));
  // A batch of inputs [B, 1, K] keeps its leading shape.
  EXPECT_EQ(small_rows_linear(at::randn({4, 1, 16}, gen), w, {}).sizes(), (std::vector<int64_t>{4, 1, 8}));
}

// Hone's own parallel loop (common/parallel.h): every index once, over two threads; an exception
// from any part reaches the caller; a loop inside a parallel part runs inline.
TEST(Parallel, RangesCoverEachIndexOnceAndCarryExceptions) {
  std::vector<std::atomic<int>> hits(1000);
  std::atomic<int> parts{0};
  parallel_ranges(0, 1000, 1, 2, [&](int64_t lo, int64_t hi) {
    ++parts;
    for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
    std::atomic<int> inner{0};
    parallel_ranges(0, 10, 1, 2, [&](int64_t, int64_t) { ++inner; });
    EXPECT_EQ(inner.load(), 1);  // nested: one inline call over the whole range
  });
  for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_EQ(parts.load(), 2);
  parts = 0;
  parallel_ranges(0, 10, 100, 2, [&](int64_t, int64_t) { ++parts; });  // under one grain: inline
  EXPECT_EQ(parts.load(), 1);
  EXPECT_THROW(parallel_ranges(0, 100, 1, 2, [](int64_t lo, int64_t) {
                 if (lo > 0) throw Error("the second part failed");
               }),
               Error);
}

// The KV cache writes each step in place into a buffer with room (no copy of the whole cache per
// step), and a cache whose rows a caller replaced (eval suites select rows) moves into a new one.
TEST(Decoder, KvCacheAppendsInPlaceAndTakesReplacedRows) {
  KVCache c;
  c.reserve = 8;
  auto k1 = at::randn({2, 1, 3, 4}), v1 = at::randn({2, 1, 3, 4});
  c.append(0, k1, v1);
  const void* buffer = c.k[0].data_ptr();
  auto k2 = at::randn({2, 1, 1, 4}), v2 = at::randn({2, 1, 1, 4});
  c.append(0, k2, v2);
  EXPECT_EQ(c.k[0].data_ptr(), buffer);  // the same buffer
  EXPECT_EQ(c.length(), 4);
  EXPECT_TRUE(at::equal(c.k[0], at::cat({k1, k2}, 2)));
  EXPECT_TRUE(at::equal(c.v[0], at::cat({v1, v2}, 2)));
  c.k[0] = c.k[0].index_select(0, at::tensor({1, 1, 0}, at::kLong));
  c.v[0] = c.v[0].index_select(0, at::tensor({1, 1, 0}, at::kLong));
  auto k3 = at::randn({3, 1, 5, 4}), v3 = at::randn({3, 1, 5, 4});  // past the reserve: grows
  const at::Tensor want_k = at::cat({c.k[0], k3}, 2), want_v = at::cat({c.v[0], v3}, 2);
  c.append(0, k3, v3);
  EXPECT_EQ(c.length(), 9);
  EXPECT_TRUE(at::equal(c.k[0], want_k));
  EXPECT_TRUE(at::equal(c.v[0], want_v));
}

// Batched decoding against the model run without a cache: prompts of different lengths (padded on
// the left), greedy; each token a row generates is the argmax of a full forward pass over its own
// prompt and tokens so far (within 1e-4 of the top logit), and it equals single-stream generate's
// token wherever the top two logits are further apart than rounding could move them.
TEST(Generate, BatchedRowsFollowTheirOwnFullPasses) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 7, 1, 30}, {4}, {8, 8, 3}, {11, 12, 13, 14, 15, 16, 17, 18}};
  SamplingParams p;
  p.max_new_tokens = 10;
  const auto res = generate_batch(lm.model, prompts, p);
  ASSERT_EQ(res.size(), prompts.size());
  torch::NoGradGuard ng;
  for (size_t b = 0; b < prompts.size(); ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    ASSERT_EQ(res[b].tokens.size(), 10u);
    const auto single = generate(lm.model, prompts[b], p).tokens;
    std::vector<int64_t> seq = prompts[b];
    bool clear = true;  // every step so far had a clear winner
    for (size_t i = 0; i < res[b].tokens.size(); ++i) {
      const auto logits = lm.model->forward(ids_tensor(seq)).squeeze(0)[static_cast<int64_t>(seq.size()) - 1];  // [V]
      const auto top = logits.topk(2);
      const float best = std::get<0>(top)[0].item<float>(), second = std::get<0>(top)[1].item<float>();
      EXPECT_GE(logits[res[b].tokens[i]].item<float>(), best - 1e-4f) << "step " << i;
      clear = clear && best - second > 1e-3f;
      if (clear) EXPECT_EQ(res[b].tokens[i], single[i]) << "step " << i;
      seq.push_back(res[b].tokens[i]);
    }
  }
  // Stop tokens end a row; the others go on.
  SamplingParams s = p;
  s.stop_ids = {res[1].tokens[2]};
  const auto stopped = generate_batch(lm.model, prompts, s);
  EXPECT_TRUE(stopped[1].stopped_on_token);
  EXPECT_EQ(stopped[1].tokens.size(), 3u);
}
