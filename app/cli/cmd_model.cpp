// hone-cli score / generate / init-model: commands that run or create a model.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <torch/cuda.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "peft/lora.h"
#include "train/run_output.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone::cli {

const char* const kInitModelUsage = R"(usage: hone-cli init-model (--like DIR | --preset NAME) --tokenizer (DIR | builtin) --out DIR [--seed S] [--dtype f32|bf16|f16]

Writes a randomly initialised model (weights ~ N(0, 0.02), norms at identity) in the Hugging Face
layout, with the tokenizer files copied beside it. --like copies another model's config.json;
presets: tiny (Llama, GQA), tiny-qwen2 (q/k/v bias, tied), tiny-mistral, tiny-gemma, tiny-qwen3 (q/k norms,
head_dim 24), tiny-gemma2 (soft-capping, alternating window 8), tiny-gemma3 (q/k norms, window 8 on 5 of 6
layers, local RoPE base), tiny-phi3 (fused projections, window 2047), tiny-smollm3 (no RoPE on every fourth
layer), tiny-olmo2 (norms after attention and MLP, q/k norms over the whole projection), tiny-granite
(embedding, residual, attention and logit multipliers), small.
--tokenizer builtin writes Hone's own byte-level BPE tokenizer (ChatML template) instead.
)";

const char* const kGenerateUsage = R"(usage: hone-cli generate (--model DIR [--adapter DIR [--nf4]] | --run RUN_DIR) --prompt P [--chat] [--system S] [--template NAME]
                         [--max-new-tokens N] [--temperature X] [--top-k K] [--top-p P]
                         [--repetition-penalty R] [--seed S] [--device auto|cpu|cuda]

Streams the continuation of P to stdout. --chat wraps P as a user turn in the model's chat template
(or --template llama3|chatml|mistral|llama2|zephyr|gemma|alpaca) and stops at end of turn.
Temperature 0 (the default) is greedy decoding.
)";

const char* const kScoreUsage = R"(usage: hone-cli score (--model DIR [--adapter DIR [--nf4]] | --run RUN_DIR) (--text T | --text-file F)
                      [--tokenizer DIR] [--device auto|cpu|cuda] [--timing]

Tokenizes the text with the model's tokenizer (default special tokens added) and prints
{"ids":[...],"nll":[...],"mean_nll":x,"top1":[...]} where nll[t] = -log p(ids[t+1] | ids[0..t]) and
top1[t] is the argmax of the logits at position t. --timing adds load and forward times on stderr.
--run loads what a training run produced (its model, or its base with its adapter, NF4 when the
run was QLoRA); --nf4 quantizes the base like QLoRA before attaching --adapter.
)";
namespace {

LoadOptions device_options(const Args& a) {
  LoadOptions o;
  std::string d = a.get("device", "auto");
  bool cuda = d == "cuda" || (d == "auto" && torch::cuda::is_available());
  if (d == "cuda" && !torch::cuda::is_available()) throw Error("--device cuda: this libtorch has no CUDA device");
  if (d != "auto" && d != "cpu" && d != "cuda") throw Error("--device must be auto, cpu or cuda");
  if (cuda) {
    o.device = at::Device(at::kCUDA, 0);
    o.dtype = at::kBFloat16;  // platform-notes §3: bf16 only pays off on CUDA
  }
  return o;
}

// --model DIR [--adapter DIR [--nf4]] or --run RUN_DIR: one loader for both (train/run_output.h).
struct CliModel {
  std::string dir;  // where the tokenizer is read from
  LoadedModel lm;
};
CliModel cli_model(const Args& a) {
  CliModel m;
  if (a.has("run")) {
    RunModel r = load_run_output(a.get("run"), device_options(a));
    m.dir = r.method == "full" ? r.lm.dir : r.base_model;
    m.lm = std::move(r.lm);
    return m;
  }
  m.dir = a.require("model");
  m.lm = load_with_adapter(m.dir, a.get("adapter"), a.flag("nf4"), device_options(a)).lm;
  return m;
}




struct Preset {
  const char* name;
  const char* model_type;
  int64_t hidden, layers, heads, kv_heads, ffn;
  bool tied;
};
const Preset kPresets[] = {
    {"tiny", "llama", 64, 2, 4, 2, 176, false},      {"tiny-qwen2", "qwen2", 64, 2, 4, 2, 176, true},
    {"tiny-mistral", "mistral", 64, 2, 4, 2, 176, false}, {"tiny-gemma", "gemma", 64, 2, 4, 1, 176, true},
    {"tiny-qwen3", "qwen3", 64, 2, 4, 2, 176, true},  {"tiny-gemma2", "gemma2", 64, 4, 4, 2, 176, true},
    {"tiny-gemma3", "gemma3_text", 64, 6, 4, 2, 176, true}, {"tiny-phi3", "phi3", 64, 2, 4, 2, 176, false},
    {"tiny-smollm3", "smollm3", 64, 4, 4, 2, 176, true}, {"tiny-olmo2", "olmo2", 64, 2, 4, 2, 176, false},
    {"tiny-granite", "granite", 64, 2, 4, 2, 176, true},
    {"small", "llama", 256, 4, 8, 4, 704, false},
};

void copy_file(const std::string& from, const std::string& to) { write_file_atomic(to, read_file(from)); }

}  // namespace

int cmd_score(const Args& a) {
  const std::string text = text_argument(a);
  CliModel cm = cli_model(a);
  auto tok = load_tokenizer(a.get("tokenizer", cm.dir));
  auto& lm = cm.lm;
  auto ids = tok->encode(text, true).ids;
  if (ids.empty()) throw Error("the text has no tokens to score");
  for (auto id : ids)
    if (id >= lm.config.vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the model's vocab_size " + std::to_string(lm.config.vocab_size));
  at::NoGradGuard ng;
  lm.model->eval();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  auto x = at::tensor(ids64, at::kLong).to(lm.model->output_weight().device()).unsqueeze(0);  // [1,T]
  auto logits = lm.model->forward(x).squeeze(0).to(at::kCPU);                                 // [T,V] fp32
  auto logp = at::log_softmax(logits, -1);
  const int64_t T = static_cast<int64_t>(ids.size());
  std::vector<double> nll;
  double sum = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    double v = -logp[t][ids[t + 1]].item<double>();
    nll.push_back(v);
    sum += v;
  }
  auto top1 = logits.argmax(-1);
  std::vector<int64_t> top(top1.data_ptr<int64_t>(), top1.data_ptr<int64_t>() + T);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"ids", ids}, {"nll", nll}, {"mean_nll", nll.empty() ? 0.0 : sum / nll.size()}, {"top1", top}};
  std::cout << j.dump() << "\n";
  if (a.flag("timing"))
    std::cerr << "load " << lm.load_seconds << " s; forward " << T << " tokens in " << secs << " s (" << T / secs
              << " tokens/s)\n";
  return 0;
}

int cmd_generate(const Args& a) {
  const std::string prompt = a.require("prompt");
  SamplingParams p;
  p.max_new_tokens = static_cast<int>(a.integer("max-new-tokens", 128));
  p.temperature = a.number("temperature", 0.0);
  p.top_k = static_cast<int>(a.integer("top-k", 0));
  p.top_p = a.number("top-p", 1.0);
  p.repetition_penalty = a.number("repetition-penalty", 1.0);
  p.seed = static_cast<uint64_t>(a.integer("seed", 0));
  if (p.max_new_tokens < 0 || p.temperature < 0 || p.top_k < 0 || p.top_p <= 0 || p.top_p > 1 || p.repetition_penalty <= 0)
    throw Error("generate: sampling options out of range");
  CliModel cm = cli_model(a);  // PEFT adapters from Hone or PEFT
  auto tok = load_tokenizer(a.get("tokenizer", cm.dir));
  auto& lm = cm.lm;
  std::vector<int32_t> ids;
  if (a.flag("chat") || a.has("template")) {
    const ChatTemplate f = resolve_chat_template(tok->config(), a.get("template", "auto"));
    std::vector<ChatMessage> msgs;
    if (a.has("system")) msgs.push_back({"system", a.get("system")});
    msgs.push_back({"user", prompt});
    ids = tokenize_chat(*tok, f, msgs, true).ids;
    for (const auto& s : end_of_turn_tokens(f, tok->config().eos_token)) {
      int32_t id = tok->token_to_id(s);
      if (id >= 0) p.stop_ids.push_back(id);
    }
  } else {
    ids = tok->encode(prompt, true).ids;
  }
  for (auto e : lm.config.eos_token_ids) p.stop_ids.push_back(e);
  if (tok->eos_id() >= 0) p.stop_ids.push_back(tok->eos_id());
  std::vector<int64_t> prompt_ids(ids.begin(), ids.end());
  std::vector<int32_t> out;
  size_t printed = 0;
  auto r = generate(lm.model, prompt_ids, p, [&](int64_t id) {
    out.push_back(static_cast<int32_t>(id));
    std::string s = tok->decode(out, true);
    // Hold back an incomplete UTF-8 character (decoded as U+FFFD) until its last byte arrives.
    if (s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0) return true;
    if (s.size() > printed) {
      std::cout << s.substr(printed) << std::flush;
      printed = s.size();
    }
    return true;
  });
  std::string s = tok->decode(out, true);
  if (s.size() > printed) std::cout << s.substr(printed);
  std::cout << "\n";
  const double tps = r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0;
  std::cerr << "[" << r.tokens.size() << " tokens, prefill " << prompt_ids.size() << " tokens in " << r.prefill_seconds
            << " s, decode " << tps << " tokens/s]\n";
  return 0;
}

int cmd_init_model(const Args& a) {
  if (a.has("like") == a.has("preset")) throw Error("init-model: give exactly one of --like DIR or --preset NAME");
  std::string tok_dir = a.require("tokenizer");
  const std::string out = a.require("out");
  ::mkdir(out.c_str(), 0755);
  if (tok_dir == "builtin") {  // Hone's own byte-level BPE tokenizer: no download needed
    write_builtin_tokenizer(out);
    tok_dir = out;
  }
  auto tok = load_tokenizer(tok_dir);
  nlohmann::json cfg;
  if (a.has("like")) {
    const std::string p = join_path(a.get("like"), "config.json");
    cfg = read_json_file(p);
  } else {
    const Preset* pr = nullptr;
    for (const auto& x : kPresets)
      if (a.get("preset") == x.name) pr = &x;
    if (!pr) throw Error("init-model: unknown preset '" + a.get("preset") + "' (tiny, tiny-qwen2, tiny-mistral, tiny-gemma, tiny-qwen3, tiny-gemma2, tiny-gemma3, tiny-phi3, tiny-smollm3, tiny-olmo2, tiny-granite, small)");
    const ArchTraits* arch = find_arch(pr->model_type);
    cfg = {{"architectures", {arch->hf_class}},
           {"model_type", pr->model_type},
           {"hidden_size", pr->hidden},
           {"intermediate_size", pr->ffn},
           {"num_hidden_layers", pr->layers},
           {"num_attention_heads", pr->heads},
           {"num_key_value_heads", pr->kv_heads},
           {"max_position_embeddings", 2048},
           {"rms_norm_eps", 1e-6},
           {"rope_theta", 10000.0},
           {"tie_word_embeddings", pr->tied},
           {"vocab_size", static_cast<int64_t>(tok->vocab_size())},
           {"hidden_act", arch->default_act},
           {"initializer_range", 0.02}};
    const std::string mt = pr->model_type;
    if (mt == "gemma" || mt == "gemma2" || mt == "gemma3_text") {
      cfg["head_dim"] = pr->hidden / pr->heads;
      cfg["hidden_activation"] = "gelu_pytorch_tanh";
    }
    if (mt == "gemma2" || mt == "gemma3_text") {
      cfg["query_pre_attn_scalar"] = pr->hidden / pr->heads;
      cfg["sliding_window"] = 8;
    }
    if (mt == "gemma2") cfg["attn_logit_softcapping"] = 50.0, cfg["final_logit_softcapping"] = 30.0;
    if (mt == "gemma3_text") cfg["rope_local_base_freq"] = 10000.0, cfg["rope_theta"] = 1000000.0;  // 5 of 6 layers windowed
    if (mt == "phi3") cfg["sliding_window"] = 2047;  // Phi-3-mini-4k's
    if (mt == "smollm3") cfg["no_rope_layers"] = {1, 1, 1, 0}, cfg["no_rope_layer_interval"] = 4, cfg["attention_bias"] = false;
    if (mt == "granite")  // Granite 3's multipliers, scaled to this width
      cfg["embedding_multiplier"] = 12.0, cfg["residual_multiplier"] = 0.22, cfg["attention_multiplier"] = 0.0625,
      cfg["logits_scaling"] = 8.0, cfg["initializer_range"] = 0.16;  // 8x: the head's logits as large as the others'
    if (std::string(pr->model_type) == "qwen3") {
      cfg["head_dim"] = 24;  // explicit and not hidden / heads, as in Qwen3 checkpoints
      cfg["attention_bias"] = false;
    }
    if (tok->bos_id() >= 0) cfg["bos_token_id"] = tok->bos_id();
    if (tok->eos_id() >= 0) cfg["eos_token_id"] = tok->eos_id();
    if (tok->pad_id() >= 0) cfg["pad_token_id"] = tok->pad_id();
  }
  ModelConfig c = parse_model_config(cfg, a.has("like") ? join_path(a.get("like"), "config.json") : "preset");
  if (c.vocab_size < static_cast<int64_t>(tok->vocab_size()))
    throw Error("init-model: the config's vocab_size " + std::to_string(c.vocab_size) + " is smaller than the tokenizer's " +
                std::to_string(tok->vocab_size()));
  std::string dt = a.get("dtype", "f32");
  StDtype sd = dt == "bf16" ? StDtype::BF16 : dt == "f16" ? StDtype::F16 : StDtype::F32;
  if (dt != "f32" && dt != "bf16" && dt != "f16") throw Error("init-model: --dtype must be f32, bf16 or f16");
  CausalLM m(c);
  // The config's initializer_range (0.02 in every preset but Granite's, whose logits are divided by 8).
  init_weights(m, static_cast<uint64_t>(a.integer("seed", 0)), cfg.value("initializer_range", 0.02));
  ::mkdir(out.c_str(), 0755);
  SaveOptions so;
  so.default_dtype = sd;
  save_model(m, out, so);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                        "chat_template.jinja", "generation_config.json"}) {
    std::string src = join_path(tok_dir, f);
    if (file_exists(src) && src != join_path(out, f)) copy_file(src, join_path(out, f));
  }
  nlohmann::json j = {{"out", out}, {"architecture", c.model_type}, {"parameters", c.parameter_count()}, {"dtype", dt}};
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace hone::cli
