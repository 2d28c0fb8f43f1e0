// hone-cli inspect: a model folder's architecture, sizes, dtype, tokenizer and chat template, or
// this machine's device, libtorch, BLAS and threads. Reads only headers: no weights are loaded.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/runtime.h"
#include "model/cpu_gemm.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone::cli {

const char* const kInspectUsage = R"(usage: hone-cli inspect --model DIR
       hone-cli inspect --system

  --model DIR   a Hugging Face model folder (config.json + safetensors); prints JSON with the
                architecture, parameter count, layers, hidden size, heads, kv heads, vocab,
                dtype, tokenizer kind and chat template
  --system      prints JSON with the device, libtorch version, BLAS library and threads, plus a
                warning line on stderr when BLAS is the slow reference build
)";


int cmd_inspect(const Args& a) {
  if (a.flag("system")) {
    auto s = system_info(true);
    nlohmann::json j = {{"device", s.device},          {"cuda", s.cuda},         {"libtorch", s.libtorch_version},
                        {"blas", s.blas},              {"blas_core", s.blas_core},   {"blas_reference", s.blas_is_reference},
                        {"threads", s.threads},        {"blas_threads", s.blas_threads}, {"cores", s.cores},
                        {"blas_gflops_fp32", s.gemm_gflops}, {"gemm_gflops_fp32", measure_f32_gemm_gflops(512, 8)},
                        {"gemm", cpu_gemm_describe()},
                        {"hone", HONE_VERSION}};
    std::cout << j.dump(2) << "\n";
    auto w = blas_warning(s);
    if (!w.empty()) std::cerr << w << "\n";
    return 0;
  }
  const std::string dir = a.require("model");
  ModelConfig c = load_model_config(dir);
  int64_t params = 0, bytes = 0;
  std::map<std::string, int64_t> dtype_bytes;
  for (const auto& f : checkpoint_files(dir)) {
    SafetensorsFile st(f);
    for (const auto& t : st.tensors()) {
      if (t.name.find("rotary_emb.inv_freq") != std::string::npos) continue;
      params += t.numel();
      bytes += static_cast<int64_t>(t.end - t.begin);
      dtype_bytes[st_dtype_name(t.dtype)] += static_cast<int64_t>(t.end - t.begin);
    }
  }
  std::string dtype;
  int64_t best = -1;
  for (auto& kv : dtype_bytes)
    if (kv.second > best) best = kv.second, dtype = kv.first;
  nlohmann::json j = {{"path", dir},
                      {"architecture", c.model_type},
                      {"class", c.arch->hf_class},
                      {"parameters", params},
                      {"parameters_expected", c.parameter_count()},
                      {"bytes", bytes},
                      {"layers", c.num_layers},
                      {"hidden_size", c.hidden_size},
                      {"intermediate_size", c.intermediate_size},
                      {"heads", c.num_heads},
                      {"kv_heads", c.num_kv_heads},
                      {"head_dim", c.head_dim},
                      {"vocab", c.vocab_size},
                      {"dtype", dtype},
                      {"tie_word_embeddings", c.tie_word_embeddings},
                      {"qkv_bias", c.qkv_bias},
                      {"hidden_act", c.hidden_act},
                      {"rope_theta", c.rope_theta},
                      {"rope_scaling", c.rope.type},
                      {"max_position_embeddings", c.max_position_embeddings}};
  // The quirks that change the forward pass, where the architecture has them.
  if (c.sliding_window > 0) {
    int64_t windowed = 0;
    for (auto s : c.sliding_layers) windowed += s;
    j["sliding_window"] = {{"tokens", c.sliding_window},
                           {"layers", c.sliding_layers.empty() ? c.num_layers : windowed}};
  }
  if (c.arch->qk_norm) j["qk_norm"] = true;
  if (c.arch->sandwich_norms) {
    j["query_scale"] = c.query_scale;
    if (c.attn_softcap > 0) j["attn_logit_softcapping"] = c.attn_softcap;
    if (c.final_softcap > 0) j["final_logit_softcapping"] = c.final_softcap;
    if (c.rope_local_theta > 0) j["rope_local_base_freq"] = c.rope_local_theta;
  }
  if (c.arch->fused_proj) j["fused_projections"] = {"qkv_proj", "gate_up_proj"};
  try {
    auto tok = load_tokenizer(dir);
    j["tokenizer"] = {{"kind", tok->kind()}, {"vocab", tok->vocab_size()}, {"bos", tok->config().bos_token},
                      {"eos", tok->config().eos_token}};
    const auto& tmpl = tok->config().chat_template;
    j["chat_template"] = {{"format", chat_format_name(detect_chat_format(tmpl))},
                          {"source", tmpl.empty() ? "none (base model: alpaca)" : "checkpoint"}};
    if (!tmpl.empty()) {
      // Training and generation execute it as Jinja: say whether it parses, and where not.
      try {
        resolve_chat_template(tok->config());
        j["chat_template"]["jinja"] = "parses";
      } catch (const Error& e) {
        j["chat_template"]["jinja"] = std::string("error: ") + e.what();
      }
    }
  } catch (const Error& e) {
    j["tokenizer"] = {{"error", e.what()}};
    j["chat_template"] = nullptr;
  }
  std::cout << j.dump(2) << "\n";
  return 0;
}

}  // namespace hone::cli
