// config.json parsing with the defaults of transformers' Llama/Mistral/Qwen2/Gemma configs.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/config.h"

#include <cmath>

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"

namespace hone {
namespace {

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& path, int64_t def, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw file_error(path, std::string("missing required field \"") + key + "\"");
    return def;
  }
  if (!j[key].is_number_integer()) throw file_error(path, std::string("field \"") + key + "\" must be an integer");
  return j[key].get<int64_t>();
}

double get_num(const nlohmann::json& j, const char* key, const std::string& path, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) throw file_error(path, std::string("field \"") + key + "\" must be a number");
  return j[key].get<double>();
}

bool get_bool(const nlohmann::json& j, const char* key, const std::string& path, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw file_error(path, std::string("field \"") + key + "\" must be true or false");
  return j[key].get<bool>();
}

void parse_rope(const nlohmann::json& j, ModelConfig& c, const std::string& path) {
  // Newer files put theta and scaling under rope_parameters.
  const nlohmann::json* rs = nullptr;
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rs = &j["rope_scaling"];
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    rs = &j["rope_parameters"];
    c.rope_theta = get_num(*rs, "rope_theta", path, c.rope_theta);
  }
  if (!rs) return;
  std::string type = "default";
  if (rs->contains("rope_type") && (*rs)["rope_type"].is_string()) type = (*rs)["rope_type"];
  else if (rs->contains("type") && (*rs)["type"].is_string()) type = (*rs)["type"];
  if (type == "su") type = "longrope";  // Phi-3's older name
  if (type != "default" && type != "linear" && type != "llama3" && type != "longrope")
    throw file_error(path, "rope scaling type \"" + type + "\" is not supported (supported: default, linear, llama3, longrope)");
  c.rope.type = type;
  if (type == "longrope") {
    for (const char* k : {"short_factor", "long_factor"}) {
      if (!rs->contains(k) || !(*rs)[k].is_array()) throw file_error(path, std::string("longrope scaling needs \"") + k + "\"");
      auto& v = std::string(k) == "short_factor" ? c.rope.short_factor : c.rope.long_factor;
      for (const auto& x : (*rs)[k]) {
        if (!x.is_number() || x.get<double>() <= 0) throw file_error(path, std::string("\"") + k + "\" must hold positive numbers");
        v.push_back(x.get<double>());
      }
    }
    c.rope.attention_factor = get_num(*rs, "attention_factor", path, 0.0);  // 0: derived below, once lengths are known
  }
  c.rope.factor = get_num(*rs, "factor", path, 1.0);
  c.rope.low_freq_factor = get_num(*rs, "low_freq_factor", path, 1.0);
  c.rope.high_freq_factor = get_num(*rs, "high_freq_factor", path, 4.0);
  c.rope.original_max_position_embeddings =
      get_int(*rs, "original_max_position_embeddings", path, 8192, false);
  if (c.rope.factor <= 0) throw file_error(path, "rope scaling factor must be positive");
  if (type == "llama3" && c.rope.high_freq_factor <= c.rope.low_freq_factor)
    throw file_error(path, "llama3 rope scaling needs high_freq_factor > low_freq_factor");
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
  int64_t attn = hidden_size * q_dim() + 2 * hidden_size * kv_dim() + q_dim() * hidden_size;
  if (qkv_bias) attn += q_dim() + 2 * kv_dim();
  if (o_bias) attn += hidden_size;
  int64_t mlp = 3 * hidden_size * intermediate_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  const int64_t qk_norms = !arch || !arch->qk_norm ? 0 : arch->qk_norm_whole ? q_dim() + kv_dim() : 2 * head_dim;
  int64_t layer = attn + mlp + 2 * hidden_size + qk_norms + (arch && arch->sandwich_norms ? 2 * hidden_size : 0);
  int64_t total = vocab_size * hidden_size + num_layers * layer + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

namespace {

// Gemma3TextConfig's defaults, for the fields a Gemma3ForConditionalGeneration text_config leaves
// out (the 4B, 12B and 27B configs list only what differs from them).
nlohmann::json gemma3_text_defaults() {
  return {{"vocab_size", 262208}, {"hidden_size", 2304}, {"intermediate_size", 9216}, {"num_hidden_layers", 26},
          {"num_attention_heads", 8}, {"num_key_value_heads", 4}, {"head_dim", 256}, {"hidden_activation", "gelu_pytorch_tanh"},
          {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"query_pre_attn_scalar", 256},
          {"sliding_window", 4096}, {"rope_local_base_freq", 10000.0}, {"sliding_window_pattern", 6},
          {"tie_word_embeddings", true}, {"bos_token_id", 2}, {"eos_token_id", 1}, {"pad_token_id", 0}};
}

}  // namespace

std::string text_model_tensor_name(const ModelConfig& c, const std::string& name) {
  if (!c.multimodal_text) return name;
  for (const char* p : {"language_model.model.", "model.language_model."})
    if (name.rfind(p, 0) == 0) return "model." + name.substr(std::string(p).size());
  if (name == "language_model.lm_head.weight" || name == "lm_head.weight") return "lm_head.weight";
  return "";  // vision_tower.*, multi_modal_projector.* (or their model.* forms)
}

ModelConfig parse_model_config(const nlohmann::json& top, const std::string& path) {
  if (!top.is_object()) throw file_error(path, "config is not a JSON object");
  // A multimodal Gemma 3 (model_type "gemma3"): its text model, as the Gemma3ForCausalLM it holds.
  nlohmann::json j = top;
  bool multimodal = false;
  if (top.contains("model_type") && top["model_type"] == "gemma3") {
    if (!top.contains("text_config") || !top["text_config"].is_object())
      throw file_error(path, "a \"gemma3\" (multimodal) config needs a \"text_config\" object");
    j = gemma3_text_defaults();
    for (auto it = top["text_config"].begin(); it != top["text_config"].end(); ++it) j[it.key()] = it.value();
    j["model_type"] = "gemma3_text";
    j["architectures"] = nlohmann::json::array({"Gemma3ForCausalLM"});
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype", "dtype"})
      if (top.contains(k) && !top["text_config"].contains(k)) j[k] = top[k];
    multimodal = true;
  }
  ModelConfig c;
  c.raw = j;
  c.multimodal_text = multimodal;
  if (!j.contains("model_type") || !j["model_type"].is_string()) throw file_error(path, "missing \"model_type\"");
  c.model_type = j["model_type"];
  c.arch = find_arch(c.model_type);
  if (!c.arch) {
    std::string list;
    for (const auto& s : supported_model_types()) list += (list.empty() ? "" : ", ") + s;
    throw file_error(path, "unknown architecture model_type \"" + c.model_type + "\" (supported: " + list + ")");
  }
  c.vocab_size = get_int(j, "vocab_size", path, 0, true);
  c.hidden_size = get_int(j, "hidden_size", path, 0, true);
  c.intermediate_size = get_int(j, "intermediate_size", path, 0, true);
  c.num_layers = get_int(j, "num_hidden_layers", path, 0, true);
  c.num_heads = get_int(j, "num_attention_heads", path, 0, true);
  c.num_kv_heads = get_int(j, "num_key_value_heads", path, c.num_heads, false);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", path, 2048, false);
  c.rms_norm_eps = get_num(j, "rms_norm_eps", path, 1e-6);
  c.rope_theta = get_num(j, "rope_theta", path, 10000.0);
  parse_rope(j, c, path);
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
      c.num_kv_heads <= 0)
    throw file_error(path, "sizes (vocab, hidden, intermediate, layers, heads, kv heads) must be positive");
  // Far above any real model (the largest are near 256k vocab, 16k hidden, 128 layers), and low
  // enough that sizes multiplied together (parameter counts, per-layer tables) stay within int64.
  struct Limit {
    const char* key;
    int64_t value, most;
  };
  for (const Limit& l : {Limit{"vocab_size", c.vocab_size, 1 << 24}, Limit{"hidden_size", c.hidden_size, 1 << 17},
                         Limit{"intermediate_size", c.intermediate_size, 1 << 20}, Limit{"num_hidden_layers", c.num_layers, 1 << 12},
                         Limit{"num_attention_heads", c.num_heads, 1 << 12}, Limit{"num_key_value_heads", c.num_kv_heads, 1 << 12}})
    if (l.value > l.most)
      throw file_error(path, std::string("\"") + l.key + "\" is " + std::to_string(l.value) + ", beyond any real model (Hone reads at most " +
                                 std::to_string(l.most) + ")");
  if (c.num_heads % c.num_kv_heads)
    throw file_error(path, "num_attention_heads (" + std::to_string(c.num_heads) +
                               ") is not a multiple of num_key_value_heads (" + std::to_string(c.num_kv_heads) + ")");
  // head_dim is never derived when present (Gemma: 256 with hidden 2048/3072).
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = get_int(j, "head_dim", path, 0, true);
  } else {
    if (c.hidden_size % c.num_heads) throw file_error(path, "hidden_size is not a multiple of num_attention_heads");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 || c.head_dim > (1 << 16)) throw file_error(path, "head_dim must be positive, even and at most 65536");
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", path, c.arch->default_tied);
  bool attention_bias = get_bool(j, "attention_bias", path, false);
  c.qkv_bias = c.arch->qkv_bias_always || attention_bias;
  c.o_bias = !c.arch->qkv_bias_always && attention_bias;
  c.mlp_bias = get_bool(j, "mlp_bias", path, false);
  c.hidden_act = c.arch->default_act;
  if (j.contains(c.arch->act_field) && j[c.arch->act_field].is_string()) c.hidden_act = j[c.arch->act_field];
  else if (j.contains("hidden_act") && j["hidden_act"].is_string() && c.arch->norm_weight_offset == 0.f) c.hidden_act = j["hidden_act"];
  if (c.hidden_act == "gelu" && c.arch->norm_weight_offset != 0.f) c.hidden_act = "gelu_pytorch_tanh";  // as transformers does for Gemma
  if (c.hidden_act != "silu" && c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "gelu")
    throw file_error(path, "activation \"" + c.hidden_act + "\" is not supported (silu, gelu, gelu_pytorch_tanh)");
  if (c.arch->honours_sliding_window) c.sliding_window = get_int(j, "sliding_window", path, 0, false);
  if (c.rope.type == "longrope") {
    const int64_t half = c.head_dim / 2;
    if (static_cast<int64_t>(c.rope.short_factor.size()) != half || static_cast<int64_t>(c.rope.long_factor.size()) != half)
      throw file_error(path, "longrope short_factor and long_factor need head_dim/2 = " + std::to_string(half) + " values each");
    // transformers: the original length comes from the config, the factor is their ratio, and
    // the attention factor defaults to sqrt(1 + ln(factor) / ln(original)).
    c.rope.original_max_position_embeddings = get_int(j, "original_max_position_embeddings", path, c.max_position_embeddings, false);
    const double factor = static_cast<double>(c.max_position_embeddings) / static_cast<double>(c.rope.original_max_position_embeddings);
    if (c.rope.attention_factor <= 0)
      c.rope.attention_factor =
          factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(c.rope.original_max_position_embeddings)));
  }
  if (c.arch->nope_interval > 0) {
    // no_rope_layers: 1 = rotate; when absent, every no_rope_layer_interval-th layer is left unrotated.
    if (j.contains("no_rope_layers") && j["no_rope_layers"].is_array()) {
      if (static_cast<int64_t>(j["no_rope_layers"].size()) != c.num_layers) throw file_error(path, "no_rope_layers must list every layer");
      for (const auto& v : j["no_rope_layers"]) {
        if (!v.is_number_integer() || (v != 0 && v != 1)) throw file_error(path, "no_rope_layers holds 0 or 1 per layer");
        c.rope_layers.push_back(v.get<int>() == 1);
      }
    } else {
      const int64_t n = get_int(j, "no_rope_layer_interval", path, c.arch->nope_interval, false);
      if (n < 1) throw file_error(path, "no_rope_layer_interval must be positive");
      for (int64_t i = 0; i < c.num_layers; ++i) c.rope_layers.push_back((i + 1) % n != 0);
    }
  }
  if (c.arch->multipliers) {
    c.embedding_multiplier = get_num(j, "embedding_multiplier", path, 1.0);
    c.residual_multiplier = get_num(j, "residual_multiplier", path, 1.0);
    c.logits_scaling = get_num(j, "logits_scaling", path, 1.0);
    const double am = get_num(j, "attention_multiplier", path, 1.0);
    if (c.logits_scaling == 0 || am <= 0) throw file_error(path, "logits_scaling must not be 0 and attention_multiplier must be positive");
    c.query_scale = am;
  }
  if (c.arch->sandwich_norms) {
    const double qs = get_num(j, "query_pre_attn_scalar", path, static_cast<double>(c.head_dim));
    if (qs <= 0) throw file_error(path, "query_pre_attn_scalar must be positive");
    c.query_scale = 1.0 / std::sqrt(qs);
    c.attn_softcap = get_num(j, "attn_logit_softcapping", path, 0.0);
    c.final_softcap = get_num(j, "final_logit_softcapping", path, 0.0);
    if (c.attn_softcap < 0 || c.final_softcap < 0) throw file_error(path, "soft-capping values must not be negative");
    c.rope_local_theta = get_num(j, "rope_local_base_freq", path, 0.0);
  }
  if (c.arch->sliding_pattern > 0) {
    // layer_types when the file lists them, else every Nth layer global (sliding_window_pattern).
    if (j.contains("layer_types") && j["layer_types"].is_array()) {
      if (static_cast<int64_t>(j["layer_types"].size()) != c.num_layers) throw file_error(path, "layer_types must list every layer");
      for (const auto& t : j["layer_types"]) {
        if (!t.is_string() || (t != "sliding_attention" && t != "full_attention"))
          throw file_error(path, "layer_types holds \"sliding_attention\" or \"full_attention\" entries");
        c.sliding_layers.push_back(t == "sliding_attention");
      }
    } else {
      const int64_t p = get_int(j, "sliding_window_pattern", path, c.arch->sliding_pattern, false);
      if (p < 1) throw file_error(path, "sliding_window_pattern must be positive");
      for (int64_t i = 0; i < c.num_layers; ++i) c.sliding_layers.push_back((i + 1) % p != 0);
    }
    if (c.sliding_window <= 0) c.sliding_layers.assign(static_cast<size_t>(c.num_layers), 0);
  }
  c.bos_token_id = get_int(j, "bos_token_id", path, -1, false);
  c.pad_token_id = get_int(j, "pad_token_id", path, -1, false);
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
    else if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
  }
  for (const char* k : {"torch_dtype", "dtype"})
    if (j.contains(k) && j[k].is_string()) c.torch_dtype = j[k];
  return c;
}

ModelConfig load_model_config(const std::string& model_dir_or_ref) {
  const std::string model_dir = resolve_model_dir(model_dir_or_ref);  // ORG/NAME: its snapshot in the hub cache
  const std::string path = join_path(model_dir, "config.json");
  if (!file_exists(path)) throw file_error(path, "not found (a model folder needs config.json)");
  nlohmann::json j = read_json_file(path);
  return parse_model_config(j, path);
}

}  // namespace hone
