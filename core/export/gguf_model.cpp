// CausalLM <-> GGUF (see gguf_model.h). Every layout change is written once as a pair of functions
// (to_gguf / from_gguf) so that the check's reload is exactly the inverse of the export.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/gguf_model.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/error.h"
#include "export/gguf_mix.h"
#include "model/rope.h"
#include "peft/lora.h"

namespace hone {

namespace {

// HF -> llama.cpp names inside a decoder layer.
const std::pair<const char*, const char*> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"},  // Phi-3's fused projections
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},       // gate | up, which llama.cpp's SwiGLU splits in halves
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

const std::string kLayerPrefix = "model.layers.";

// llama.cpp's "llama" graph applies RoPE to adjacent pairs (GPT-J style); HF checkpoints rotate
// halves. Meta's original order is restored by interleaving each head's two halves:
// rows [h, 2, d/2] -> [h, d/2, 2]. Qwen2 and Gemma graphs rotate halves: nothing changes there.
at::Tensor permute_qk(const at::Tensor& w, int64_t heads) {  // w [heads*d, ...]
  auto sizes = w.sizes().vec();
  std::vector<int64_t> v = {heads, 2, w.size(0) / heads / 2};
  v.insert(v.end(), sizes.begin() + 1, sizes.end());
  return w.reshape(v).transpose(1, 2).reshape(sizes).contiguous();
}
at::Tensor unpermute_qk(const at::Tensor& w, int64_t heads) {
  auto sizes = w.sizes().vec();
  std::vector<int64_t> v = {heads, w.size(0) / heads / 2, 2};
  v.insert(v.end(), sizes.begin() + 1, sizes.end());
  return w.reshape(v).transpose(1, 2).reshape(sizes).contiguous();
}

bool is_llama_graph(const ModelConfig& c) { return c.arch->gguf_permute_qk; }

// What llama.cpp's graphs fix where Hugging Face configs choose: Gemma 2/3 scale queries by
// 1/sqrt(head_dim) and Gemma 3 windows five layers of six with RoPE base 10000 there; its phi3
// graph attends to the whole context. Differences become notes on the export.
std::vector<std::string> llama_cpp_differences(const ModelConfig& c) {
  std::vector<std::string> notes;
  const std::string arch = c.arch->gguf_arch;
  if (c.sliding_window > 0 && c.sliding_window < c.max_position_embeddings && (arch == "llama" || arch == "phi3"))
    notes.push_back("llama.cpp's " + arch + " graph attends to the whole context; this model's sliding window of " +
                    std::to_string(c.sliding_window) + " tokens is not applied there");
  if (c.arch->sandwich_norms && std::abs(c.query_scale * std::sqrt(static_cast<double>(c.head_dim)) - 1.0) > 1e-6)
    notes.push_back("llama.cpp scales " + arch + " queries by 1/sqrt(head_dim) (hidden/heads for 27B models); this model's query_pre_attn_scalar differs");
  if (arch == "smollm3") {  // llama.cpp fixes its no-RoPE layers at every fourth
    bool standard = true;
    for (size_t i = 0; i < c.rope_layers.size(); ++i) standard = standard && c.rope_layers[i] == ((i + 1) % 4 != 0);
    if (!standard) notes.push_back("llama.cpp's smollm3 graph leaves every fourth layer without RoPE; this model's no_rope_layers differ");
  }
  if (arch == "gemma3") {
    bool standard = c.rope_local_theta == 0 || c.rope_local_theta == 10000.0;
    for (size_t i = 0; i < c.sliding_layers.size(); ++i) standard = standard && c.sliding_layers[i] == ((i + 1) % 6 != 0);
    if (!standard) notes.push_back("llama.cpp's gemma3 graph windows five layers of six with RoPE base 10000; this model's layout differs");
  }
  return notes;
}

// Heads whose rows a q/k tensor holds under this HF name, or 0 when no permutation applies.
int64_t qk_heads(const ModelConfig& c, const std::string& hf_name) {
  if (!is_llama_graph(c)) return 0;
  if (hf_name.find("self_attn.q_proj.") != std::string::npos) return c.num_heads;
  if (hf_name.find("self_attn.k_proj.") != std::string::npos) return c.num_kv_heads;
  return 0;
}

// The tensor as stored in GGUF, from the HF parameter (fp32 CPU).
at::Tensor to_gguf(const ModelConfig& c, const std::string& hf_name, at::Tensor t) {
  t = t.detach().to(at::kCPU, at::kFloat).contiguous();
  if (const int64_t h = qk_heads(c, hf_name)) t = permute_qk(t, h);
  if (c.arch->norm_weight_offset != 0.f && hf_name.find("norm.weight") != std::string::npos)
    t = t + c.arch->norm_weight_offset;  // Gemma: llama.cpp multiplies by the stored weight itself
  return t.contiguous();
}

at::Tensor from_gguf(const ModelConfig& c, const std::string& hf_name, at::Tensor t) {
  if (const int64_t h = qk_heads(c, hf_name)) t = unpermute_qk(t, h);
  if (c.arch->norm_weight_offset != 0.f && hf_name.find("norm.weight") != std::string::npos)
    t = t - c.arch->norm_weight_offset;
  return t.contiguous();
}

std::string encode_tensor(const at::Tensor& t, GgmlType type, const std::vector<float>* col_weights = nullptr) {
  const uint64_t n = static_cast<uint64_t>(t.numel());
  const float* x = t.data_ptr<float>();
  if (ggml_block_elems(type) == 1 || t.dim() < 2) return ggml_encode(type, x, n);
  // Quantized types search every block: rows split over every core, each part encoded on its own.
  // Plain threads, not at::parallel_for: with OpenBLAS's pthread build Hone gives libtorch's own
  // pool one thread (common/runtime.cpp), and this work has no GEMM to share the cores with.
  const int64_t row = t.size(-1), rows = t.numel() / row;
  const uint64_t row_bytes = ggml_nbytes(type, static_cast<uint64_t>(row), 1);
  std::string out(row_bytes * static_cast<uint64_t>(rows), '\0');
  const float* w = col_weights && static_cast<int64_t>(col_weights->size()) == row ? col_weights->data() : nullptr;
  auto encode = [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    const std::string part = ggml_encode(type, x + r0 * row, static_cast<uint64_t>((r1 - r0) * row), w, static_cast<uint64_t>(row));
    std::memcpy(out.data() + static_cast<uint64_t>(r0) * row_bytes, part.data(), part.size());
  };
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(static_cast<int64_t>(std::thread::hardware_concurrency()), rows / 16));
  std::vector<std::thread> pool;
  for (int64_t k = 1; k < parts; ++k) pool.emplace_back(encode, rows * k / parts, rows * (k + 1) / parts);
  encode(0, rows / parts);
  for (auto& th : pool) th.join();
  return out;
}

// model_type for a GGUF architecture: the first in the table written as it (Mistral is written as
// "llama", the same graph; "gemma3" is gemma3_text).
std::string model_type_of(const std::string& arch) {
  for (const auto& mt : supported_model_types())
    if (std::string(find_arch(mt)->gguf_arch) == arch) return mt;
  return "";
}

std::vector<std::pair<std::string, LinearImpl*>> lora_layers(CausalLM& m) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (auto& kv : m->named_modules()) {
    if (auto* l = kv.value()->as<LinearImpl>())
      if (l->has_lora()) out.emplace_back(kv.key(), l);
  }
  return out;
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf, const ArchTraits* arch) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  // Gemma 2/3: the attention's output norm, then the norms before and after the MLP.
  static const std::pair<const char*, const char*> kSandwich[] = {{"post_attention_layernorm.weight", "post_attention_norm.weight"},
                                                                   {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
                                                                   {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"}};
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  if (hf.compare(0, kLayerPrefix.size(), kLayerPrefix) == 0) {
    const size_t dot = hf.find('.', kLayerPrefix.size());
    if (dot == std::string::npos) return "";
    const std::string layer = hf.substr(kLayerPrefix.size(), dot - kLayerPrefix.size()), rest = hf.substr(dot + 1);
    if (arch && (arch->sandwich_norms || arch->post_norms))  // OLMo 2's two post-norms are named as Gemma's
      for (const auto& [from, to] : kSandwich)
        if (rest == from) return "blk." + layer + "." + to;
    for (const auto& [from, to] : kLayerNames)
      if (rest == from) return "blk." + layer + "." + to;
  }
  return "";
}

GgufModelResult write_gguf_model(CausalLM& m, const std::string& tok_dir, const std::string& dtype, const std::string& path,
                                 const std::string& name, const std::function<void(size_t, size_t)>& progress,
                                 const GgufImportance* importance) {
  GgufScheme scheme;
  if (!gguf_scheme_from_name(dtype.empty() ? "f16" : dtype, &scheme))
    throw Error("gguf export: unknown dtype \"" + dtype + "\"");
  const ModelConfig& c = m->config;
  const std::string arch = c.arch->gguf_arch;
  GgufWriter w;
  GgufModelResult r;
  w.set("general.architecture", GgufValue::str(arch));
  w.set("general.type", GgufValue::str("model"));
  w.set("general.name", GgufValue::str(name));
  w.set("general.file_type", GgufValue::u32(scheme.file_type));
  if (ggml_block_elems(scheme.base) > 1) w.set("general.quantization_version", GgufValue::u32(2));
  auto key = [&](const std::string& k) { return arch + "." + k; };
  w.set(key("vocab_size"), GgufValue::u32(static_cast<uint32_t>(c.vocab_size)));
  w.set(key("context_length"), GgufValue::u32(static_cast<uint32_t>(c.max_position_embeddings)));
  w.set(key("embedding_length"), GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  w.set(key("block_count"), GgufValue::u32(static_cast<uint32_t>(c.num_layers)));
  w.set(key("feed_forward_length"), GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  w.set(key("attention.head_count"), GgufValue::u32(static_cast<uint32_t>(c.num_heads)));
  w.set(key("attention.head_count_kv"), GgufValue::u32(static_cast<uint32_t>(c.num_kv_heads)));
  w.set(key("attention.layer_norm_rms_epsilon"), GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  w.set(key("attention.key_length"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  w.set(key("attention.value_length"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  w.set(key("rope.freq_base"), GgufValue::f32(static_cast<float>(c.rope_theta)));
  w.set(key("rope.dimension_count"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  if (c.rope.type == "linear") {
    w.set(key("rope.scaling.type"), GgufValue::str("linear"));
    w.set(key("rope.scaling.factor"), GgufValue::f32(static_cast<float>(c.rope.factor)));
  }
  if (c.sliding_window > 0) w.set(key("attention.sliding_window"), GgufValue::u32(static_cast<uint32_t>(c.sliding_window)));
  if (c.arch->multipliers) {  // Granite
    w.set(key("attention.scale"), GgufValue::f32(static_cast<float>(c.query_scale)));
    w.set(key("embedding_scale"), GgufValue::f32(static_cast<float>(c.embedding_multiplier)));
    w.set(key("residual_scale"), GgufValue::f32(static_cast<float>(c.residual_multiplier)));
    w.set(key("logit_scale"), GgufValue::f32(static_cast<float>(c.logits_scaling)));
  }
  if (c.attn_softcap > 0) w.set(key("attn_logit_softcapping"), GgufValue::f32(static_cast<float>(c.attn_softcap)));
  if (c.final_softcap > 0) w.set(key("final_logit_softcapping"), GgufValue::f32(static_cast<float>(c.final_softcap)));
  if (c.rope.type == "longrope") {
    w.set(key("rope.scaling.attn_factor"), GgufValue::f32(static_cast<float>(c.rope.attention_factor)));
    w.set(key("rope.scaling.original_context_length"), GgufValue::u32(static_cast<uint32_t>(c.rope.original_max_position_embeddings)));
  }
  if (importance && ggml_block_elems(scheme.base) > 1) {
    // What llama-quantize records when an importance matrix shaped the file (its entry count).
    w.set("quantize.imatrix.entries_count", GgufValue::i32(static_cast<int32_t>(importance->size())));
  }
  for (const auto& n : llama_cpp_differences(c)) r.notes.push_back(n);
  r.vocab = add_gguf_vocab(w, tok_dir, c.vocab_size);
  for (const auto& n : r.vocab.notes) r.notes.push_back(n);

  at::NoGradGuard ng;
  bool has_output = false;
  for (auto& p : m->named_parameters()) has_output = has_output || gguf_tensor_name(p.key(), c.arch) == "output.weight";
  for (auto& p : m->named_parameters()) {
    const std::string hf = p.key();
    if (hf.find(".lora_") != std::string::npos) continue;
    const std::string g = gguf_tensor_name(hf, c.arch);
    if (g.empty()) throw Error("gguf export: no llama.cpp tensor for " + hf);
    at::Tensor t = p.value();
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    const GgmlType st = gguf_tensor_type(scheme, g, shape, static_cast<int>(c.num_layers), has_output);
    ++r.tensor_types[ggml_type_name(st)];
    // The tied embedding is the head's matrix: it is weighted by what the head reads.
    const std::string key = !has_output && g == "token_embd.weight" ? std::string("lm_head.weight") : hf;
    const std::vector<float>* cw = nullptr;
    if (importance && ggml_block_elems(st) > 1)
      if (auto it = importance->find(key); it != importance->end()) cw = &it->second;
    const ModelConfig* cp = &m->config;
    w.add_tensor(g, st, shape, [cp, hf, t, st, cw] { return encode_tensor(to_gguf(*cp, hf, t), st, cw); });
  }
  if (c.rope.type == "longrope") {  // Phi-3: the per-frequency divisors as llama.cpp reads them
    for (const auto& [tname, f] : {std::make_pair("rope_factors_long.weight", &c.rope.long_factor),
                                   std::make_pair("rope_factors_short.weight", &c.rope.short_factor)}) {
      at::Tensor t = at::tensor(std::vector<float>(f->begin(), f->end()), at::kFloat);
      w.add_tensor(tname, GgmlType::F32, {t.size(0)}, [t] { return encode_tensor(t, GgmlType::F32); });
    }
  }
  if (c.rope.type == "llama3") {
    // llama.cpp divides each frequency by a per-dimension factor stored as a tensor.
    ModelConfig plain = c;
    plain.rope = RopeScaling{};
    at::Tensor factors = (rope_inv_freq(plain) / m->inv_freq.to(at::kCPU, at::kFloat)).contiguous();  // [d/2]
    w.add_tensor("rope_freqs.weight", GgmlType::F32, {factors.size(0)},
                 [factors] { return encode_tensor(factors, GgmlType::F32); });
  }
  w.write(path, progress);
  r.bytes = 0;
  return r;
}

void write_gguf_lora(CausalLM& m, const std::string& path, const std::string& name) {
  const ModelConfig& c = m->config;
  auto layers = lora_layers(m);
  if (layers.empty()) throw Error("gguf-lora export: the model has no LoRA adapters");
  const int64_t r = layers[0].second->lora_rank();
  const double scaling = layers[0].second->lora_scaling;
  for (const auto& [n, l] : layers)
    if (l->lora_rank() != r || std::abs(l->lora_scaling - scaling) > 1e-12 * std::abs(scaling))
      throw Error("gguf-lora export: adapters of different ranks or scales (" + n + ") cannot share one alpha");
  GgufWriter w;
  w.set("general.architecture", GgufValue::str(c.arch->gguf_arch));
  w.set("general.type", GgufValue::str("adapter"));
  w.set("general.name", GgufValue::str(name));
  w.set("adapter.type", GgufValue::str("lora"));
  // llama.cpp scales by alpha / r; the trained scale (alpha/r, or alpha/sqrt(r) with rsLoRA) is
  // folded into the alpha written here.
  w.set("adapter.lora.alpha", GgufValue::f32(static_cast<float>(scaling * static_cast<double>(r))));
  at::NoGradGuard ng;
  for (const auto& [n, l] : layers) {
    const std::string g = gguf_tensor_name(n + ".weight", c.arch);
    if (g.empty()) throw Error("gguf-lora export: no llama.cpp tensor for " + n);
    at::Tensor a = l->lora_A->weight.detach().to(at::kCPU, at::kFloat).contiguous();  // [r, in]
    at::Tensor b = l->lora_B->weight.detach().to(at::kCPU, at::kFloat).contiguous();  // [out, r]
    // (P B) A = P (B A): the q/k row order of the base applies to B's rows.
    if (const int64_t h = qk_heads(c, n + ".weight")) b = permute_qk(b, h);
    w.add_tensor(g + ".lora_a", GgmlType::F32, {a.size(0), a.size(1)}, [a] { return encode_tensor(a, GgmlType::F32); });
    w.add_tensor(g + ".lora_b", GgmlType::F32, {b.size(0), b.size(1)}, [b] { return encode_tensor(b, GgmlType::F32); });
  }
  w.write(path);
}

LoadedModel load_gguf_model(const std::string& path) {
  GgufFile f(path);
  const std::string arch = f.get_string("general.architecture");
  const std::string mt = model_type_of(arch);
  if (mt.empty()) throw file_error(path, "architecture \"" + arch + "\" is not one Hone reads");
  if (f.get("general.type") && f.get_string("general.type") == "adapter")
    throw file_error(path, "is a LoRA adapter, not a model");
  auto key = [&](const std::string& k) { return arch + "." + k; };
  const GgufTensorInfo* emb = f.find("token_embd.weight");
  if (!emb || emb->shape.size() != 2) throw file_error(path, "has no 2-D token_embd.weight");
  nlohmann::json cj = {{"model_type", mt},
                       {"architectures", {find_arch(mt)->hf_class}},
                       {"vocab_size", emb->shape[0]},
                       {"hidden_size", f.get_uint(key("embedding_length"))},
                       {"intermediate_size", f.get_uint(key("feed_forward_length"))},
                       {"num_hidden_layers", f.get_uint(key("block_count"))},
                       {"num_attention_heads", f.get_uint(key("attention.head_count"))},
                       {"num_key_value_heads", f.get_uint(key("attention.head_count_kv"))},
                       {"max_position_embeddings", f.get_uint(key("context_length"))},
                       {"rms_norm_eps", f.get_float(key("attention.layer_norm_rms_epsilon"))},
                       {"rope_theta", f.get_float(key("rope.freq_base"))},
                       {"tie_word_embeddings", f.find("output.weight") == nullptr}};
  if (f.get(key("attention.key_length"))) cj["head_dim"] = f.get_uint(key("attention.key_length"));
  else if (f.get(key("rope.dimension_count"))) cj["head_dim"] = f.get_uint(key("rope.dimension_count"));
  if (f.find("blk.0.attn_q.bias") && mt == "llama") cj["attention_bias"] = true;
  if (f.get(key("rope.scaling.type")) && f.get_string(key("rope.scaling.type")) == "linear")
    cj["rope_scaling"] = {{"type", "linear"}, {"factor", f.get_float(key("rope.scaling.factor"))}};
  // The quirks llama.cpp reads from keys, or fixes in its graph (llama_cpp_differences above).
  if (f.get(key("attention.sliding_window"))) cj["sliding_window"] = f.get_uint(key("attention.sliding_window"));
  if (f.get(key("attn_logit_softcapping"))) cj["attn_logit_softcapping"] = f.get_float(key("attn_logit_softcapping"));
  if (f.get(key("final_logit_softcapping"))) cj["final_logit_softcapping"] = f.get_float(key("final_logit_softcapping"));
  if (find_arch(mt)->sandwich_norms) cj["query_pre_attn_scalar"] = cj.value("head_dim", cj["hidden_size"].get<int64_t>() / cj["num_attention_heads"].get<int64_t>());
  if (mt == "gemma3_text") cj["rope_local_base_freq"] = 10000.0, cj["sliding_window_pattern"] = 6;
  if (find_arch(mt)->multipliers) {
    const std::pair<const char*, const char*> scales[] = {{"attention.scale", "attention_multiplier"}, {"embedding_scale", "embedding_multiplier"},
                                                          {"residual_scale", "residual_multiplier"}, {"logit_scale", "logits_scaling"}};
    for (const auto& [k, field] : scales)
      if (f.get(key(k))) cj[field] = f.get_float(key(k));
  }
  if (const GgufTensorInfo* lf = f.find("rope_factors_long.weight")) {
    const GgufTensorInfo* sf = f.find("rope_factors_short.weight");
    if (!sf) throw file_error(path, "has rope_factors_long.weight without rope_factors_short.weight");
    cj["rope_scaling"] = {{"type", "longrope"}, {"long_factor", f.read_floats(*lf)}, {"short_factor", f.read_floats(*sf)}};
    if (f.get(key("rope.scaling.attn_factor"))) cj["rope_scaling"]["attention_factor"] = f.get_float(key("rope.scaling.attn_factor"));
    if (f.get(key("rope.scaling.original_context_length")))
      cj["original_max_position_embeddings"] = f.get_uint(key("rope.scaling.original_context_length"));
  }
  if (f.get("tokenizer.ggml.eos_token_id")) cj["eos_token_id"] = f.get_uint("tokenizer.ggml.eos_token_id");
  if (f.get("tokenizer.ggml.bos_token_id")) cj["bos_token_id"] = f.get_uint("tokenizer.ggml.bos_token_id");
  LoadedModel lm;
  lm.dir = path;
  lm.config = parse_model_config(cj, path);
  // An untrusted file must not make Hone allocate far more than it holds.
  int64_t file_elems = 0;
  for (const auto& t : f.tensors()) file_elems += t.numel();
  if (lm.config.parameter_count() > 2 * file_elems + 100000000)
    throw file_error(path, "its metadata implies " + std::to_string(lm.config.parameter_count()) +
                               " parameters but its tensors hold " + std::to_string(file_elems));
  lm.model = CausalLM(lm.config);
  std::map<std::string, std::string> hf_of;  // gguf -> hf
  std::map<std::string, at::Tensor> params;
  for (auto& p : lm.model->named_parameters()) {
    params[p.key()] = p.value();
    hf_of[gguf_tensor_name(p.key(), lm.config.arch)] = p.key();
  }
  std::set<std::string> loaded;
  at::NoGradGuard ng;
  for (const auto& info : f.tensors()) {
    if (info.name == "rope_factors_long.weight" || info.name == "rope_factors_short.weight") continue;  // read above
    if (info.name == "rope_freqs.weight") {
      const int64_t half = lm.config.head_dim / 2;
      if (info.numel() != half) throw file_error(path, "rope_freqs.weight must have head_dim/2 elements");
      auto fac = f.read_floats(info);
      lm.model->inv_freq = lm.model->inv_freq / at::tensor(fac, at::kFloat);
      continue;
    }
    auto it = hf_of.find(info.name);
    if (it == hf_of.end())
      throw file_error(path, "tensor " + info.name + " is not part of a " + arch + " model with this metadata");
    at::Tensor& p = params[it->second];
    std::vector<int64_t> want(p.sizes().begin(), p.sizes().end());
    if (info.shape != want) throw file_error(path, "tensor " + info.name + " has the wrong shape for its metadata");
    auto vals = f.read_floats(info);
    at::Tensor t = at::from_blob(vals.data(), want, at::kFloat).clone();
    p.copy_(from_gguf(lm.config, it->second, t));
    loaded.insert(it->second);
    lm.file_dtypes[it->second] = StDtype::F32;
  }
  for (const auto& kv : params)
    if (!loaded.count(kv.first)) throw file_error(path, "tensor " + gguf_tensor_name(kv.first, lm.config.arch) + " is missing");
  return lm;
}

void apply_gguf_lora(CausalLM& m, const std::string& path) {
  GgufFile f(path);
  if (!f.get("general.type") || f.get_string("general.type") != "adapter" || f.get_string("adapter.type") != "lora")
    throw file_error(path, "is not a LoRA adapter GGUF (general.type adapter, adapter.type lora)");
  const std::string arch = f.get_string("general.architecture");
  if (arch != m->config.arch->gguf_arch)
    throw file_error(path, "is an adapter for \"" + arch + "\", the model is \"" + m->config.arch->gguf_arch + "\"");
  const double alpha = f.get_float("adapter.lora.alpha");
  std::map<std::string, LinearImpl*> by_gguf;
  for (auto& kv : m->named_modules())
    if (auto* l = kv.value()->as<LinearImpl>()) by_gguf[gguf_tensor_name(kv.key() + ".weight", m->config.arch)] = l;
  std::map<std::string, std::string> hf_name;
  for (auto& kv : m->named_modules())
    if (kv.value()->as<LinearImpl>()) hf_name[gguf_tensor_name(kv.key() + ".weight", m->config.arch)] = kv.key() + ".weight";
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  int attached = 0;
  at::NoGradGuard ng;
  for (const auto& info : f.tensors()) {
    const std::string suffix = ".lora_a";
    if (info.name.size() <= suffix.size() || info.name.compare(info.name.size() - suffix.size(), suffix.size(), suffix)) continue;
    const std::string base = info.name.substr(0, info.name.size() - suffix.size());
    const GgufTensorInfo* bi = f.find(base + ".lora_b");
    if (!bi) throw file_error(path, "tensor " + base + ".lora_b is missing");
    auto it = by_gguf.find(base);
    if (it == by_gguf.end()) throw file_error(path, "tensor " + info.name + " names no layer of the model");
    LinearImpl* l = it->second;
    if (info.shape.size() != 2 || bi->shape.size() != 2 || info.shape[1] != l->in_features ||
        bi->shape[0] != l->out_features || bi->shape[1] != info.shape[0])
      throw file_error(path, "tensors " + base + ".lora_a/.lora_b do not fit the layer's shape");
    const int64_t r = info.shape[0];
    l->add_lora(r, alpha, 0.0, false, gen);  // llama.cpp's scale: alpha / r
    auto av = f.read_floats(info), bv = f.read_floats(*bi);
    at::Tensor a = at::from_blob(av.data(), info.shape, at::kFloat).clone();
    at::Tensor b = at::from_blob(bv.data(), bi->shape, at::kFloat).clone();
    if (const int64_t h = qk_heads(m->config, hf_name[base])) b = unpermute_qk(b, h);
    l->lora_A->weight.copy_(a);
    l->lora_B->weight.copy_(b);
    ++attached;
  }
  if (attached == 0) throw file_error(path, "has no .lora_a / .lora_b tensors");
}

}  // namespace hone
