// LoRA and NF4 (QLoRA): hand-computed NF4 codes and packing, double-quantized absmax, gradients
// through the NF4 autograd function, LoRA identities (B=0, merge, disable), a PEFT adapter written
// by the independent Python reference, and Hone's own PEFT files round-tripping.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <cstring>
#include <torch/torch.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/seeded_dropout.h"
#include "peft/lora.h"
#include "model/nf4.h"
#include "model/nf4_bf16.h"
#include "test_support.h"

using namespace hone;
using nlohmann::json;

namespace {
std::string ref(const std::string& name) { return std::string(HONE_TEST_WORK) + "/ref/" + name; }
at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong).unsqueeze(0); }
const std::vector<int64_t> kIds = {5, 17, 99, 3, 42, 7, 8, 150, 2, 77};
}  // namespace

TEST(NF4, CodesAndPackingByHand) {
  // One block whose values are absmax * codebook[i % 16]: codes must be exactly i % 16.
  std::vector<float> v(64);
  for (int i = 0; i < 64; ++i) v[i] = 2.0f * kNF4Codebook[i % 16];
  auto q = nf4_quantize(torch::tensor(v).view({4, 16}));
  ASSERT_EQ(q.codes.numel(), 32);
  auto c = q.codes.contiguous();
  const uint8_t* b = c.data_ptr<uint8_t>();
  EXPECT_EQ(b[0], 0x01);  // codes 0 (high nibble) and 1 (low nibble)
  EXPECT_EQ(b[1], 0x23);
  EXPECT_EQ(b[7], 0xEF);
  EXPECT_EQ(b[8], 0x01);
  auto d = nf4_dequantize(q);
  EXPECT_EQ(d.sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_TRUE(torch::allclose(d, torch::tensor(v).view({4, 16}), 0, 1e-6));
  // Nearest code: 0.04 is past the 0/0.0796 midpoint (0.0398) -> code 8; -0.05 -> code 6 (-0.091).
  auto idx = nf4_nearest_code(torch::tensor({0.04f, 0.039f, -0.05f, 1.0f, -1.0f, 0.9f}));
  EXPECT_EQ(idx[0].item<int64_t>(), 8);
  EXPECT_EQ(idx[1].item<int64_t>(), 7);
  EXPECT_EQ(idx[2].item<int64_t>(), 6);
  EXPECT_EQ(idx[3].item<int64_t>(), 15);
  EXPECT_EQ(idx[4].item<int64_t>(), 0);
  EXPECT_EQ(idx[5].item<int64_t>(), 15);  // 0.9 is nearer 1.0 than 0.723
}

TEST(NF4, DoubleQuantizedAbsmaxAndSize) {
  torch::manual_seed(0);
  auto w = torch::randn({512, 1024}) * 0.02;
  auto q = nf4_quantize(w);
  // absmax restored within half a quantization step of its group's scale.
  auto blocks = w.view({-1, kNF4Block}).abs().amax(1);
  auto restored = q.absmax_q.to(torch::kFloat) * q.absmax_scale.repeat_interleave(kNF4AbsmaxBlock).narrow(0, 0, blocks.numel()) +
                  q.absmax_offset;
  EXPECT_LE((restored - blocks).abs().max().item<double>(), q.absmax_scale.max().item<double>() * 0.5 + 1e-7);
  const double bits = 8.0 * q.bytes() / w.numel();
  EXPECT_NEAR(bits, 4.127, 0.01);
  EXPECT_LE(static_cast<double>(q.bytes()) / (w.numel() * 4), 0.14);
  auto e = nf4_error(w, q);
  EXPECT_GT(e.relative_frobenius, 0.0);
  EXPECT_LT(e.relative_frobenius, 0.12);  // NF4 on Gaussian weights: about 0.09-0.10
}

// Dequantization element by element as hf-compat.md §5 states it (absmax = q * group scale +
// offset, value = codebook[code] * absmax, in fp32; bf16 rounds that to nearest even), over a
// weight of 3 absmax groups whose last block is partial: the vectorized kernel must give the same bits.
TEST(NF4, DequantizationEqualsTheFormulaElementByElement) {
  torch::manual_seed(3);
  auto q = nf4_quantize(torch::randn({37, 1000}) * 0.05);  // 37000 values: 578 blocks and 8 more
  ASSERT_EQ(q.absmax_q.numel(), 579);
  ASSERT_EQ(q.absmax_scale.numel(), 3);
  auto f32 = nf4_dequantize(q, at::kFloat).contiguous();
  auto b16 = nf4_dequantize(q, at::kBFloat16).contiguous();
  const uint8_t* codes = q.codes.data_ptr<uint8_t>();
  const int8_t* aq = q.absmax_q.data_ptr<int8_t>();
  const float* scale = q.absmax_scale.data_ptr<float>();
  const float* got = f32.data_ptr<float>();
  const at::BFloat16* got16 = b16.data_ptr<at::BFloat16>();
  int64_t wrong = 0, wrong16 = 0;
  for (int64_t e = 0; e < 37000; ++e) {
    const int64_t b = e / 64;
    const int code = e % 2 == 0 ? codes[e / 2] >> 4 : codes[e / 2] & 15;
    const float scaled = static_cast<float>(aq[b]) * scale[b / 256];
    const float absmax = scaled + static_cast<float>(q.absmax_offset);
    const float want = kNF4Codebook[code] * absmax;
    wrong += std::memcmp(&want, got + e, 4) != 0;
    wrong16 += at::BFloat16(want).x != got16[e].x;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(wrong16, 0);
}

TEST(NF4, LinearGradientsMatchDequantizedDense) {
  torch::manual_seed(1);
  auto w = torch::randn({48, 64});
  auto q = nf4_quantize(w);
  auto dense = nf4_dequantize(q);
  auto bias = torch::randn({48});
  auto x1 = torch::randn({3, 5, 64}, torch::requires_grad());
  auto x2 = x1.detach().clone().set_requires_grad(true);
  auto y1 = nf4_linear(x1, q, bias);
  auto y2 = torch::linear(x2, dense, bias);
  EXPECT_TRUE(torch::allclose(y1, y2, 1e-5, 1e-5));
  auto g = torch::randn_like(y1);
  y1.backward(g);
  y2.backward(g);
  EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), 1e-5, 1e-5));
}

// QLoRA with base_dtype bf16: the NF4 weight dequantized to bf16, the input rounded to bf16, the
// product in fp32 (the reference does that arithmetic in fp32), and the input's gradient likewise.
TEST(NF4, Bf16ComputeEqualsFp32ArithmeticOnTheRoundedOperands) {
  torch::manual_seed(2);
  auto q = nf4_quantize(torch::randn({48, 64}));
  auto wr = nf4_dequantize(q, at::kBFloat16).to(at::kFloat);
  auto bias = torch::randn({48});
  auto round = [](const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); };
  auto x = torch::randn({3, 5, 64}, torch::requires_grad());
  auto y = nf4_linear_bf16(x, q, bias);
  auto want = torch::matmul(round(x.detach()), wr.t()) + bias;
  EXPECT_LT((y.detach() - want).abs().max().item<double>(), 1e-5 * want.abs().max().item<double>());
  auto g = torch::randn_like(y);
  y.backward(g);
  auto gx = torch::matmul(round(g), wr);
  EXPECT_LT((x.grad() - gx).abs().max().item<double>(), 1e-5 * gx.abs().max().item<double>());
}

// Seeded dropout's mask: each element kept with probability 1 - p, the same mask for the same
// seed, an unrelated one for a seed differing only in its high half; x scaled by 1 / (1 - p).
TEST(SeededDropout, KeepsOneMinusPIndependentlyAndRepeatsPerSeed) {
  const int64_t n = 1 << 20;
  const double p = 0.1;
  auto m = seeded_dropout_mask(n, 42, p);
  EXPECT_NEAR(m.mean().item<double>(), 0.9, 0.002);  // 7 standard deviations (3e-4 each)
  EXPECT_TRUE(torch::equal(m, seeded_dropout_mask(n, 42, p)));
  auto other = seeded_dropout_mask(n, 42 + (1ull << 32), p);
  EXPECT_NEAR(m.eq(other).to(torch::kFloat).mean().item<double>(), 0.9 * 0.9 + 0.1 * 0.1, 0.003);  // independent masks
  // Neighbouring elements independent: P(both kept) = 0.81.
  EXPECT_NEAR((m.narrow(0, 0, n - 1) * m.narrow(0, 1, n - 1)).mean().item<double>(), 0.81, 0.003);
  auto x = torch::randn({1024, 1024});
  auto want = x * m.view({1024, 1024}) / (1 - p);
  EXPECT_TRUE(torch::allclose(seeded_dropout(x, 42, p), want, 1e-6, 0));
  EXPECT_THROW(seeded_dropout_mask(4, 1, 1.0), Error);
}

// The mask kernels (8 lanes at a time on AVX2) against the definition one element at a time, over
// ranges that start unaligned, end in a partial vector, cross a 2^32 index boundary (where the
// index's high word changes) and end at the last index.
TEST(SeededDropout, KernelsEqualTheDefinitionElementByElement) {
  const uint64_t seed = 0x1234567890abcdefull;
  for (double p : {0.05, 0.5})
    for (uint64_t first : {uint64_t{3}, (uint64_t{1} << 32) - 21, ~uint64_t{0} - 40}) {
      const int64_t n = 41 + (first == 3 ? 40000 : 0);
      auto m = seeded_dropout_mask(n, seed, p, first);
      const float* d = m.data_ptr<float>();
      int64_t wrong = 0;
      for (int64_t j = 0; j < n; ++j) wrong += d[j] != (seeded_dropout_keeps(seed, first + j, p) ? 1.f : 0.f);
      EXPECT_EQ(wrong, 0) << "p " << p << " first " << first;
    }
  auto x = torch::randn({7, 1001});
  auto want = x.clone();
  for (int64_t j = 0; j < x.numel(); ++j)
    if (!seeded_dropout_keeps(seed, j, 0.3)) want.view({-1})[j] = 0;
  EXPECT_TRUE(torch::allclose(seeded_dropout(x, seed, 0.3), want / 0.7, 1e-6, 0));
}

// A LoRA layer with dropout against the plain ATen composition with the same mask: output and
// every gradient (the input's, A's and B's). Only x is kept for backward; the mask is made again.
TEST(Lora, DropoutMatchesTheExplicitMaskInOutputAndGradients) {
  torch::manual_seed(4);
  Linear l(64, 48, /*with_bias=*/false);
  l->weight.set_requires_grad(false);
  auto gen = at::detail::createCPUGenerator(9);
  l->add_lora(8, 16, 0.25, false, gen);
  {
    torch::NoGradGuard ng;
    l->weight.normal_(0, 0.1);  // Linear leaves its weight uninitialised (loading fills it): NaN garbage once failed this
    l->lora_B->weight.normal_(0, 0.1);
  }
  l->train();
  auto x = torch::randn({3, 10, 64}, torch::requires_grad());
  torch::manual_seed(21);
  auto y = l->forward(x);
  torch::manual_seed(21);
  const uint64_t seed = draw_dropout_seed(x);  // the draw the layer made
  auto mask = seeded_dropout_mask(x.numel(), seed, 0.25).view(x.sizes());
  auto x2 = x.detach().clone().requires_grad_(true);
  auto A2 = l->lora_A->weight.detach().clone().requires_grad_(true), B2 = l->lora_B->weight.detach().clone().requires_grad_(true);
  auto want = torch::linear(x2, l->weight) + torch::linear(torch::linear(x2 * mask / 0.75, A2), B2) * l->lora_scaling;
  EXPECT_TRUE(torch::allclose(y, want, 1e-5, 1e-5));
  auto g = torch::randn_like(y);
  y.backward(g);
  want.backward(g);
  EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(l->lora_A->weight.grad(), A2.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(l->lora_B->weight.grad(), B2.grad(), 1e-5, 1e-5));
  EXPECT_GT(mask.eq(0).sum().item<int64_t>(), 0);  // some inputs were dropped
}

TEST(Lora, ZeroBEqualsBaseAndDisableRestoresIt) {
  auto base = load_model(ref("llama_gqa_llama3rope_f32"));
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  // Frozen as attach_lora freezes lm's, so that both run the same GEMMs (oneDNN's for frozen
  // weights on AVX-512 CPUs, model/cpu_gemm.h) and the outputs can be compared bit for bit.
  for (auto& p : base.model->parameters()) p.set_requires_grad(false);
  torch::NoGradGuard ng;
  LoraConfig c;
  c.r = 8;
  c.alpha = 16;
  c.targets = {"all-linear"};
  EXPECT_EQ(attach_lora(lm.model, c, 0), 2 * 7);
  auto x = ids_tensor(kIds);
  auto want = base.model->forward(x);
  EXPECT_TRUE(torch::equal(lm.model->forward(x), want)) << "B = 0 at init";
  for (auto& p : lm.model->named_parameters())
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
  EXPECT_FALSE(torch::allclose(lm.model->forward(x), want, 1e-4, 1e-4));
  set_lora_enabled(lm.model, false);
  EXPECT_TRUE(torch::equal(lm.model->forward(x), want)) << "disabled adapters = base model";
  set_lora_enabled(lm.model, true);
  // Only adapters train.
  EXPECT_EQ(count_parameters(lm.model, true), 2 * (8 * (64 + 64) + 8 * (64 + 16) * 2 + 8 * (64 + 64) + 8 * (64 + 96) * 2 + 8 * (96 + 64)));
}

TEST(Lora, MergedEqualsUnmerged) {
  auto lm = load_model(ref("qwen2_bias_tied_bf16"));
  torch::NoGradGuard ng;
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.rslora = true;
  c.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"};
  attach_lora(lm.model, c, 3);
  for (auto& p : lm.model->named_parameters())
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
  auto x = ids_tensor(kIds);
  auto unmerged = lm.model->forward(x);
  merge_lora(lm.model);
  EXPECT_TRUE(torch::allclose(lm.model->forward(x), unmerged, 1e-5, 1e-5));
  unmerge_lora(lm.model);
  EXPECT_TRUE(torch::allclose(lm.model->forward(x), unmerged, 1e-5, 1e-5));
}

TEST(Lora, PeftAdapterFromReferenceMatchesItsNll) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  auto c = load_peft_adapter(lm.model, ref("llama_gqa_llama3rope_f32") + "/adapter");
  EXPECT_EQ(c.r, 4);
  EXPECT_DOUBLE_EQ(c.alpha, 8.0);
  EXPECT_EQ(c.targets, (std::vector<std::string>{"o_proj", "q_proj", "v_proj"}));
  json g = test::load_json(ref("llama_gqa_llama3rope_f32") + "/adapter/golden.json");
  auto ids = g["ids"].get<std::vector<int64_t>>();
  torch::NoGradGuard ng;
  auto logp = torch::log_softmax(lm.model->forward(ids_tensor(ids)).squeeze(0), -1);
  double max_diff = 0;
  for (size_t t = 0; t + 1 < ids.size(); ++t)
    max_diff = std::max(max_diff, std::abs(-logp[t][ids[t + 1]].item<double>() - g["nll"][t].get<double>()));
  EXPECT_LT(max_diff, 1e-4);
}

TEST(Lora, SavedAdapterReloadsToIdenticalLogits) {
  auto lm = load_model(ref("mistral_window_f16"));
  LoraConfig c;
  c.r = 6;
  c.alpha = 12;
  c.targets = {"q_proj", "v_proj", "gate_proj"};
  attach_lora(lm.model, c, 9);
  {
    torch::NoGradGuard ng;
    for (auto& p : lm.model->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
  }
  std::string dir = test::temp_dir("peft-save");
  save_peft_adapter(lm.model, c, "mistral_window_f16", dir);
  json cfg = test::load_json(dir + "/adapter_config.json");
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 6);
  SafetensorsFile st(dir + "/adapter_model.safetensors");
  const auto* a = st.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  const auto* b = st.find("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{6, 32}));
  EXPECT_EQ(b->shape, (std::vector<int64_t>{64, 6}));
  EXPECT_EQ(st.metadata().at("format"), "pt");
  auto fresh = load_model(ref("mistral_window_f16"));
  load_peft_adapter(fresh.model, dir);
  torch::NoGradGuard ng;
  auto x = ids_tensor(kIds);
  EXPECT_TRUE(torch::equal(lm.model->forward(x), fresh.model->forward(x)));
  // The base checkpoint saved alongside carries no adapter tensors.
  std::string md = test::temp_dir("peft-base");
  save_model(lm.model, md);
  SafetensorsFile base(md + "/model.safetensors");
  for (const auto& t : base.tensors()) EXPECT_EQ(t.name.find("lora"), std::string::npos) << t.name;
}

TEST(Lora, QloraTrainsOnlyAdaptersOverAnNf4Base) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  int64_t fp32_bytes = 0;
  for (auto& item : lm.model->named_modules())
    if (auto* l = dynamic_cast<LinearImpl*>(item.value().get()); l && item.key() != "lm_head") fp32_bytes += l->weight.numel() * 4;
  auto x = ids_tensor(kIds);
  torch::Tensor before;
  {
    torch::NoGradGuard ng;
    before = lm.model->forward(x);
  }
  int64_t held = quantize_base_nf4(lm.model);
  EXPECT_LE(static_cast<double>(held) / fp32_bytes, 0.14);
  {  // Quantized layer by layer while loading (what a qlora run does): the same codes and scales
    LoadOptions o;
    o.base_nf4 = true;
    auto streamed = load_model(ref("llama_gqa_llama3rope_f32"), o);
    auto mods = lm.model->named_modules();
    int layers = 0;
    for (auto& item : streamed.model->named_modules())
      if (auto* l = dynamic_cast<LinearImpl*>(item.value().get()); l && item.key() != "lm_head") {
        ASSERT_TRUE(l->quantized()) << item.key();
        auto* w = dynamic_cast<LinearImpl*>(mods[item.key()].get());
        EXPECT_TRUE(torch::equal(l->nf4().codes, w->nf4().codes)) << item.key();
        EXPECT_TRUE(torch::equal(l->nf4().absmax_q, w->nf4().absmax_q)) << item.key();
        ++layers;
      }
    EXPECT_GT(layers, 0);
    EXPECT_EQ(quantize_base_nf4(streamed.model), held);
  }
  LoraConfig c;
  c.r = 8;
  c.alpha = 16;
  c.targets = {"all-linear"};
  attach_lora(lm.model, c, 1);
  for (auto& p : lm.model->named_parameters()) EXPECT_EQ(p.key().find("proj.weight"), std::string::npos) << "no dense copy: " << p.key();
  auto logits = lm.model->forward(x);
  EXPECT_LT((logits - before).abs().mean().item<double>(), 0.5) << "NF4 stays close to the base";
  auto loss = torch::cross_entropy_loss(logits.squeeze(0).narrow(0, 0, 9), x.squeeze(0).narrow(0, 1, 9));
  loss.backward();
  int with_grad = 0;
  for (auto& p : lm.model->named_parameters()) {
    if (p.value().grad().defined()) {
      ++with_grad;
      EXPECT_NE(p.key().find("lora_"), std::string::npos) << p.key();
    }
  }
  EXPECT_EQ(with_grad, 2 * 7 * 2);
}

TEST(Lora, BadAdapterFolders) {
  auto lm = load_model(ref("llama_gqa_llama3rope_f32"));
  std::string d = test::temp_dir("peft-bad");
  EXPECT_THROW(load_peft_adapter(lm.model, d), Error);
  write_file_atomic(d + "/adapter_config.json", R"({"peft_type": "LORA", "use_dora": true})");
  try {
    load_peft_adapter(lm.model, d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("DoRA"), std::string::npos);
  }
  write_file_atomic(d + "/adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8})");
  float z[4] = {0, 0, 0, 0};
  write_safetensors(d + "/adapter_model.safetensors",
                    {{"base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight", StDtype::F32, {1, 4}, z, 16}});
  try {
    load_peft_adapter(lm.model, d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.9"), std::string::npos) << e.what();
  }
}

// Found by fuzzing (tests/fuzz/regressions/peft_config): a field of the wrong type threw a bare
// nlohmann type_error; now every field is checked and the error names the file and the key.
TEST(Lora, AdapterConfigFieldsAreChecked) {
  const std::string path = "x/adapter_config.json";
  const nlohmann::json good = {{"peft_type", "LORA"}, {"r", 8}, {"lora_alpha", 16}, {"lora_dropout", 0.05}, {"use_rslora", true}};
  const LoraConfig c = parse_peft_adapter_config(good, path);
  EXPECT_EQ(c.r, 8);
  EXPECT_DOUBLE_EQ(c.alpha, 16);
  EXPECT_DOUBLE_EQ(c.dropout, 0.05);
  EXPECT_TRUE(c.rslora);
  const std::pair<const char*, nlohmann::json> bad[] = {
      {"r", "8"}, {"r", 0}, {"r", 1.5}, {"lora_alpha", "16"}, {"lora_dropout", 1.0}, {"use_rslora", 1}, {"use_dora", "no"}, {"peft_type", 3}};
  for (const auto& [key, value] : bad) {
    nlohmann::json j = good;
    j[key] = value;
    try {
      parse_peft_adapter_config(j, path);
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_peft_adapter_config(nlohmann::json::array(), path), Error);
}
