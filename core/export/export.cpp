// export_run / check_export (see export.h). The reference is always the run as Hone trains and
// serves it (train/run_output: base + adapter, NF4 for QLoRA); the exported artifact is reloaded
// from disk through the core and compared with it position by position.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/export.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "common/json_file.h"
#include "data/pairs.h"
#include "data/records.h"
#include "export/calibrate.h"
#include "export/gguf.h"
#include "export/gguf_mix.h"
#include "export/gguf_model.h"
#include "export/ollama.h"
#include "model/checkpoint.h"
#include "model/linear.h"
#include "peft/lora.h"
#include "tokenizer/chat_template.h"
#include "train/run_output.h"

namespace hone {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Fixed conversations for the check when the run's data is not at hand: short, varied, with a reply
// so that positions inside an assistant turn (where an adapter acts most) are compared too.
const std::pair<const char*, const char*> kCheckTurns[] = {
    {"What is the capital of France?", "The capital of France is Paris."},
    {"Write a haiku about autumn.", "Leaves drift on cold wind,\nred and gold on quiet paths,\nthe year exhales slow."},
    {"Reverse the word 'stone'.", "enots"},
    {"Explain in one sentence what a tokenizer does.", "It splits text into the units a model reads."},
};

std::string tokenizer_dir_of(const RunModel& rm) { return rm.method == "full" ? rm.lm.dir : rm.base_model; }

// Rows [skip, skip + count) of the data the run trained on (its own copy in <run>/data/) as
// conversations; empty when the run has no readable data.
std::vector<std::vector<ChatMessage>> run_conversations(const std::string& run_dir, size_t skip, size_t count) {
  std::vector<std::vector<ChatMessage>> out;
  std::string dir = join_path(run_dir, "data");
  if (!is_directory(dir) && file_exists(join_path(run_dir, "trainer_state.json")))  // a checkpoint folder
    dir = join_path(fs::path(run_dir).parent_path().parent_path().string(), "data");
  if (is_directory(dir)) {
    try {
      ReadResult rr = read_dataset(dir);
      size_t seen = 0;
      for (const auto& rec : rr.records) {
        if (out.size() >= count) break;
        if (seen++ < skip) continue;
        if (rr.kind == DatasetKind::Chat) {
          out.push_back(record_messages(rec.data));
        } else if (rr.kind == DatasetKind::Preference) {
          PreferencePair p = preference_from_record(rec.data, rec.source);
          std::vector<ChatMessage> m = p.prompt;
          m.insert(m.end(), p.chosen.begin(), p.chosen.end());
          out.push_back(m);
        } else if (rr.kind == DatasetKind::Text) {
          out.push_back({{"user", json::parse(rec.data).value("text", "").substr(0, 400)}});
        }
      }
    } catch (const std::exception&) {
      out.clear();  // unreadable data: the check falls back to fixed conversations
    }
  }
  return out;
}

// Conversations for the check: the first rows of the run's data, so that the check looks where the
// fine-tune acts; the fixed ones above otherwise.
std::vector<std::vector<ChatMessage>> check_conversations(const std::string& run_dir) {
  auto out = run_conversations(run_dir, 0, 4);
  if (out.empty())
    for (const auto& [q, a] : kCheckTurns) out.push_back({{"user", q}, {"assistant", a}});
  return out;
}

std::vector<std::vector<int64_t>> token_inputs(const std::vector<std::vector<ChatMessage>>& convs, const std::string& tok_dir,
                                               int64_t vocab, size_t max_len) {
  auto tok = load_tokenizer(tok_dir);
  const ChatFormat f = detect_chat_format(tok->config().chat_template);
  std::vector<std::vector<int64_t>> out;
  for (const auto& conv : convs) {
    auto ids = tokenize_chat(*tok, f, conv, false).ids;
    std::vector<int64_t> v;
    for (auto id : ids)
      if (id < vocab) v.push_back(id);  // a builtin test tokenizer may know ids a tiny model lacks
    if (v.size() > max_len) v.resize(max_len);
    if (!v.empty()) out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::vector<int64_t>> check_inputs(const std::string& run_dir, const std::string& tok_dir, int64_t vocab) {
  auto out = token_inputs(check_conversations(run_dir), tok_dir, vocab, 256);
  if (out.empty()) throw Error("export check: the tokenizer gives no tokens for the check prompts");
  return out;
}

// Calibration rows: past the check's four where the data has enough (so the check is not judged on
// the rows the quantization was tuned to), else from the start.
std::vector<std::vector<int64_t>> calibration_inputs(const std::string& run_dir, const std::string& tok_dir, int64_t vocab,
                                                     int rows) {
  auto convs = run_conversations(run_dir, 4, static_cast<size_t>(rows));
  if (convs.size() < 8) convs = run_conversations(run_dir, 0, static_cast<size_t>(rows));
  if (convs.empty())
    throw Error("export: --calibrate needs the run's training data (" + join_path(run_dir, "data") + " is missing or unreadable)");
  auto out = token_inputs(convs, tok_dir, vocab, 512);
  if (out.empty()) throw Error("export: the run's data gives no tokens to calibrate on");
  return out;
}

std::vector<at::Tensor> logits_of(CausalLM& m, const std::vector<std::vector<int64_t>>& inputs) {
  at::NoGradGuard ng;
  m->eval();
  std::vector<at::Tensor> out;
  for (const auto& ids : inputs) {
    auto x = at::tensor(ids, at::kLong).to(m->output_weight().device()).unsqueeze(0);  // [1, T]
    out.push_back(m->forward(x).squeeze(0).to(at::kCPU, at::kFloat));                // [T, V]
  }
  return out;
}

double max_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  return m;
}

// Logit tolerance of a stored dtype, relative to the size of the logits: rounding every weight to
// bf16 (8-bit mantissa) moves them by up to a few percent of their scale (measured: 3.4% on the demo
// model), f16 (11-bit) by about 1% (measured 1.1%), f32 only by summation order. q8_0 rounds each
// weight to 1/254 of its block's largest: about 4x bf16's error on Gaussian weights (measured 4.0%
// on the demo model, up to 14% on untrained random models whose logits are small). A broken export
// (a dropped adapter, a wrong layout) moves logits by their whole scale, far above any of these.
// The K-quant mixtures: q6_k (6.56 bits a weight) about 2x q8_0's step, q5_k_m about 2x that and
// q4_k_m 2x again; their tolerances are set from the logit differences measured on the demo model
// and the test models (docs/export.md has the figures), with room for untrained models.
double tolerance_of(const std::string& dtype, double logit_scale) {
  const double rel = dtype == "q4_k_m" ? 0.6 : dtype == "q5_k_m" ? 0.4 : dtype == "q6_k" ? 0.3 : dtype == "q8_0" ? 0.25
                     : dtype == "bf16" ? 0.08 : dtype == "f16" ? 0.02 : 1e-4;
  return std::max(1e-3, rel * logit_scale);
}

// Share of positions whose most likely next token must agree: rounding can swap near-ties.
double agreement_needed(const std::string& dtype) {
  if (dtype == "f32") return 1.0;
  if (dtype == "q4_k_m") return 0.6;
  if (dtype == "q5_k_m" || dtype == "q6_k") return 0.7;
  return dtype == "q8_0" ? 0.8 : 0.9;
}

StDtype st_dtype_from(const std::string& d) {
  if (d == "f32") return StDtype::F32;
  if (d == "bf16") return StDtype::BF16;
  if (d == "f16") return StDtype::F16;
  throw Error("export: dtype must be f32, bf16 or f16 (got \"" + d + "\")");
}

std::string dtype_name(StDtype d) { return d == StDtype::BF16 ? "bf16" : d == StDtype::F16 ? "f16" : "f32"; }

void copy_atomic(const std::string& from, const std::string& to) { write_file_atomic(to, read_file(from)); }

// Replaces every NF4 base weight by its dequantized values (QLoRA trained against exactly these),
// so that the adapter can be merged into a dense weight.
void dequantize_base(CausalLM& m) {
  for (auto& kv : m->named_modules()) {
    if (auto* l = kv.value()->as<LinearImpl>()) l->dequantize_nf4();
  }
}

// What the run itself predicts on the check prompts, fine-tuned and with the fine-tune removed.
struct Reference {
  std::vector<std::vector<int64_t>> inputs;
  std::vector<at::Tensor> tuned, base;  // [T, V] per prompt; base empty when no base is at hand
};

// The run's weights are freed before this returns, so that a check never holds the run and the
// export in memory at once (a 1.5B model is 6 GB in fp32).
Reference reference_logits(const std::string& run_dir, const RunModel& info, const std::string& tok_dir) {
  Reference R;
  {
    RunModel ref = load_run_output(run_dir);
    R.inputs = check_inputs(run_dir, tok_dir, ref.lm.config.vocab_size);
    R.tuned = logits_of(ref.lm.model, R.inputs);
    // The base: the same model with its adapters switched off.
    if (!ref.adapter_dir.empty()) {
      set_lora_enabled(ref.lm.model, false);
      R.base = logits_of(ref.lm.model, R.inputs);
    }
  }
  // A full fine-tune has no adapters: its base is loaded from the run's base_model when it is here.
  if (info.adapter_dir.empty() && !info.base_model.empty() && is_directory(resolve_model_dir_or_empty(info.base_model))) {
    auto b = load_model(info.base_model);
    R.base = logits_of(b.model, R.inputs);
  }
  return R;
}

ExportCheckResult judge(const Reference& R, const std::vector<at::Tensor>& got, const std::string& dtype) {
  ExportCheckResult c;
  const auto& inputs = R.inputs;
  const auto& tuned = R.tuned;
  const auto& base = R.base;
  c.prompts = static_cast<int>(inputs.size());
  int64_t agree = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    c.positions += static_cast<int>(inputs[i].size());
    agree += (tuned[i].argmax(-1) == got[i].argmax(-1)).sum().item<int64_t>();
  }
  c.max_logit_diff = max_diff(tuned, got);
  double scale = 0;
  for (const auto& t : tuned) scale = std::max(scale, t.abs().max().item<double>());
  c.tolerance = tolerance_of(dtype, scale);
  c.next_token_agreement = static_cast<double>(agree) / std::max(1, c.positions);
  if (!base.empty()) {
    c.adapter_effect = max_diff(tuned, base);
    c.exported_effect = max_diff(got, base);
    // Where the fine-tune moved the logits well beyond rounding, the export must move them too
    // (the "silently the base model" failure of merges that drop the adapter).
    if (c.adapter_effect > 10 * c.tolerance) c.differs_from_base = c.exported_effect > 0.5 * c.adapter_effect;
  }
  c.passed = c.max_logit_diff <= c.tolerance && c.next_token_agreement >= agreement_needed(dtype) && c.differs_from_base;
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%s: largest logit difference %.3g (tolerance %.3g for %s), next token agrees at %.1f%% of %d positions "
                "in %d prompts; the fine-tune moves logits by up to %.3g, the export by %.3g%s",
                c.passed ? "passed" : "FAILED", c.max_logit_diff, c.tolerance, dtype.c_str(), 100 * c.next_token_agreement,
                c.positions, c.prompts, c.adapter_effect, c.exported_effect,
                c.differs_from_base ? "" : " (the export behaves like the base model)");
  c.summary = buf;
  return c;
}

// The check: the reference first, then the export loaded (by `load`) and run on the same prompts.
ExportCheckResult check_with(const std::string& run_dir, const RunModel& info, const std::string& tok_dir,
                             const std::string& dtype, const std::function<CausalLM()>& load) {
  const Reference R = reference_logits(run_dir, info, tok_dir);
  std::vector<at::Tensor> got;
  {
    CausalLM m = load();
    got = logits_of(m, R.inputs);
  }
  return judge(R, got, dtype);
}

}  // namespace

std::vector<std::string> export_formats() { return {"peft", "merged", "gguf", "gguf-lora", "ollama"}; }

std::vector<std::string> export_dtypes(const std::string& format) {
  if (format == "peft") return {"f32"};
  if (format == "merged") return {"f32", "bf16", "f16"};
  if (format == "ollama") return {"q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16", "f32", "bf16"};
  if (format == "gguf" || format == "gguf-lora") return gguf_scheme_names();
  throw Error("export: unknown format \"" + format + "\" (peft, merged, gguf, gguf-lora or ollama)");
}

namespace {

bool is_gguf_format(const std::string& f) { return f == "gguf" || f == "gguf-lora" || f == "ollama"; }

// The run's weights as one dense model: a full fine-tune's model/, else base + adapter merged (a
// QLoRA base dequantized first: the values training saw).
LoadedModel merged_model(const RunModel& ref, std::vector<std::string>& notes) {
  if (ref.adapter_dir.empty()) return load_model(ref.lm.dir);
  RunModel m = load_with_adapter(ref.base_model, ref.adapter_dir, ref.method == "qlora");
  if (ref.method == "qlora") {
    dequantize_base(m.lm.model);
    notes.push_back("QLoRA: merged into the dequantized NF4 base (what training saw); quantizing the merged model "
                    "again loses precision");
  }
  merge_lora(m.lm.model);
  return std::move(m.lm);
}

// Base + adapter unmerged, the base dense (for the LoRA GGUF and its base).
RunModel adapter_model(const RunModel& ref, std::vector<std::string>& notes) {
  RunModel m = load_with_adapter(ref.base_model, ref.adapter_dir, ref.method == "qlora");
  if (ref.method == "qlora") {
    dequantize_base(m.lm.model);
    notes.push_back("QLoRA: the base GGUF holds the dequantized NF4 weights the adapter was trained on; the original "
                    "base model gives slightly different results with this adapter");
  }
  return m;
}

std::string run_name_of(const std::string& run_dir) {
  fs::path p = fs::path(run_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (file_exists(join_path(p.string(), "trainer_state.json"))) p = p.parent_path().parent_path();  // a checkpoint
  std::string n = p.filename().string();
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
  return n.empty() ? "model" : n;
}

// The GGUF scheme of an export: the format's default when none is asked for.
std::string gguf_dtype_from(const std::string& format, const std::string& d) {
  const std::string want = d.empty() ? export_dtypes(format).front() : d;
  GgufScheme s;
  if (!gguf_scheme_from_name(want, &s)) {
    std::string all;
    for (const auto& n : gguf_scheme_names()) all += (all.empty() ? "" : ", ") + n;
    throw Error("export: GGUF dtype must be one of " + all + " (got \"" + d + "\")");
  }
  return want;
}

// GGUF files of an export folder by kind.
struct GgufSet {
  std::string model, adapter;
};
GgufSet find_ggufs(const std::string& dir) {
  GgufSet s;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    GgufFile f(e.path().string());
    const GgufValue* t = f.get("general.type");
    const bool adapter = t && t->type == GgufType::STRING && t->s == "adapter";
    std::string& slot = adapter ? s.adapter : s.model;
    if (!slot.empty()) throw file_error(dir, "holds more than one " + std::string(adapter ? "adapter" : "model") + " GGUF");
    slot = e.path().string();
  }
  return s;
}

std::string gguf_dtype_of(const std::string& path) {
  GgufFile f(path);
  if (const GgufValue* ft = f.get("general.file_type"))  // the scheme the file was written as
    for (const auto& n : gguf_scheme_names()) {
      GgufScheme s;
      if (gguf_scheme_from_name(n, &s) && ft->type == GgufType::U32 && ft->u == s.file_type) return n;
    }
  for (const auto& t : f.tensors())
    if (t.shape.size() == 2) return ggml_type_name(t.type);
  return "f32";
}

ExportCheckResult check_gguf(const std::string& run_dir, const RunModel& info, const std::string& format,
                             const std::string& dir, const std::string& tok_dir) {
  const GgufSet g = find_ggufs(dir);
  if (format == "gguf-lora") {
    if (g.adapter.empty()) throw file_error(dir, "has no LoRA adapter GGUF");
    const std::string dtype = g.model.empty() ? "f32" : gguf_dtype_of(g.model);
    return check_with(run_dir, info, tok_dir, dtype, [&] {
      CausalLM m{nullptr};
      if (!g.model.empty()) {
        m = load_gguf_model(g.model).model;
      } else {  // the adapter alone: over the run's own base
        RunModel b = load_with_adapter(info.base_model, "", info.method == "qlora");
        if (info.method == "qlora") dequantize_base(b.lm.model);
        m = b.lm.model;
      }
      apply_gguf_lora(m, g.adapter);
      return m;
    });
  }
  if (g.model.empty()) throw file_error(dir, "has no model GGUF");
  return check_with(run_dir, info, tok_dir, gguf_dtype_of(g.model), [&] { return load_gguf_model(g.model).model; });
}

}  // namespace

ExportCheckResult check_export(const std::string& run_dir, const std::string& format, const std::string& exported_dir,
                               const std::string& dtype) {
  const RunModel info = describe_run_output(run_dir);
  const std::string tok_dir = tokenizer_dir_of(info);
  if (format == "peft")
    return check_with(run_dir, info, tok_dir, "f32", [&] {
      return load_with_adapter(info.base_model, exported_dir, info.method == "qlora").lm.model;
    });
  if (format == "merged")
    return check_with(run_dir, info, tok_dir, dtype.empty() ? "f32" : dtype, [&] { return load_model(exported_dir).model; });
  if (is_gguf_format(format)) return check_gguf(run_dir, info, format, exported_dir, tok_dir);
  throw Error("export check: unknown format \"" + format + "\" (peft, merged, gguf, gguf-lora or ollama)");
}

ExportResult export_run(const ExportSpec& spec, const ExportProgress& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  const auto formats = export_formats();
  if (std::find(formats.begin(), formats.end(), spec.format) == formats.end())
    throw Error("export: unknown format \"" + spec.format + "\" (peft, merged, gguf, gguf-lora or ollama)");
  if (spec.out_dir.empty()) throw Error("export: choose an output folder");
  if (is_directory(spec.out_dir) && !fs::is_empty(spec.out_dir))
    throw file_error(spec.out_dir, "is not empty; choose a new or empty folder (nothing was written)");
  if (is_gguf_format(spec.format)) gguf_dtype_from(spec.format, spec.dtype);  // a bad dtype fails before any work
  else if (spec.format == "merged" && !spec.dtype.empty()) st_dtype_from(spec.dtype);
  say("reading the run");
  const RunModel ref = describe_run_output(spec.run_dir);  // weights are loaded where each format needs them
  const std::string tok_dir = tokenizer_dir_of(ref);
  if (ref.recipe == "reward" && spec.format != "peft")
    throw Error("export: run " + spec.run_dir + " is a reward model; export it as peft (its adapter with the score head, "
                "task_type SEQ_CLS): merged and GGUF models have no place for the head");
  if (spec.format == "gguf-lora" && ref.adapter_dir.empty())
    throw Error("export: run " + spec.run_dir + " fine-tuned the full model; it has no adapter (export it as gguf)");
  // Everything is written into a staging folder beside the destination and renamed into place at
  // the end, so a failure, a Cancel or a kill -9 leaves no half export (docs/reliability.md).
  // Staging folders of processes that died are removed here, and said so.
  std::string dest = spec.out_dir;
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  const fs::path parent = fs::path(dest).parent_path().empty() ? fs::path(".") : fs::path(dest).parent_path();
  const std::string prefix = "." + fs::path(dest).filename().string() + ".partial-";
  fs::create_directories(parent);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;  // its process lives
    fs::remove_all(e.path(), ec);
    say("removed " + e.path().string() + ", an export that process " + std::to_string(pid) + " did not finish");
  }
  const std::string staging = (parent / (prefix + std::to_string(::getpid()))).string();
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      if (!dir.empty()) fs::remove_all(dir, e);
    }
  } cleanup{staging};
  ExportResult r;
  r.out_dir = dest;
  r.format = spec.format;
  const std::string name = run_name_of(spec.run_dir);
  auto tensor_progress = [&](size_t done, size_t total) {
    if (done == total || done % std::max<size_t>(1, total / 10) == 0)
      say("writing tensors " + std::to_string(done) + "/" + std::to_string(total));
  };

  if (spec.format == "peft") {
    if (ref.adapter_dir.empty())
      throw Error("export: run " + spec.run_dir + " fine-tuned the full model; it has no adapter (export it as merged)");
    say("writing the adapter");
    for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
      const std::string from = join_path(ref.adapter_dir, f);
      if (!file_exists(from)) throw file_error(from, "missing from the run's adapter");
      copy_atomic(from, join_path(staging, f));
    }
    r.dtype = "f32";
    if (ref.method == "qlora")
      r.notes.push_back("a QLoRA adapter: load its base in 4-bit NF4 (bitsandbytes) to get what was trained");
  } else if (spec.format == "merged") {
    say("merging");
    LoadedModel merged = merged_model(ref, r.notes);
    const StDtype dt = spec.dtype.empty() ? merged.dominant_dtype : st_dtype_from(spec.dtype);
    r.dtype = dtype_name(dt);
    say("writing " + r.dtype + " safetensors");
    SaveOptions so;
    so.default_dtype = dt;
    save_model(merged.model, staging, so);
    // Tokenizer files travel with the weights; generation stops on every end-of-turn token of the
    // template as well as EOS (exports that stop only on EOS generate past the end of a turn).
    copy_tokenizer_files(tok_dir, staging);
    auto tok = load_tokenizer(tok_dir);
    std::vector<int64_t> eos = merged.config.eos_token_ids;
    for (const auto& t : end_of_turn_tokens(family_chat_template(tok->config()), tok->config().eos_token)) {
      const int32_t id = tok->token_to_id(t);
      if (id >= 0 && std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    }
    json gen = {{"_from_model_config", false}};
    if (tok->bos_id() >= 0) gen["bos_token_id"] = tok->bos_id();
    if (!eos.empty()) gen["eos_token_id"] = eos.size() == 1 ? json(eos[0]) : json(eos);
    if (tok->pad_id() >= 0) gen["pad_token_id"] = tok->pad_id();
    write_file_atomic(join_path(staging, "generation_config.json"), gen.dump(2) + "\n");
  } else {
    r.dtype = gguf_dtype_from(spec.format, spec.dtype);
    GgufScheme scheme;
    gguf_scheme_from_name(r.dtype, &scheme);
    const bool quantized = ggml_block_elems(scheme.base) > 1;
    if (spec.calibrate && !quantized) r.notes.push_back("--calibrate only matters for quantized types; " + r.dtype + " ignores it");
    // Calibration on the model about to be written (its own activations), rows past the check's.
    GgufImportance importance;
    auto calibrate = [&](CausalLM& m) -> const GgufImportance* {
      if (!spec.calibrate || !quantized) return nullptr;
      say("calibrating on the run's data");
      const auto inputs = calibration_inputs(spec.run_dir, tok_dir, m->config.vocab_size, spec.calibrate_rows);
      importance = gather_importance(m, inputs);
      r.calibration_rows = static_cast<int>(inputs.size());
      for (const auto& v : inputs) r.calibration_tokens += static_cast<int64_t>(v.size());
      return &importance;
    };
    auto timed_write = [&](CausalLM& m, const std::string& file, const std::string& gname) {
      const GgufImportance* imp = calibrate(m);
      const auto t0 = std::chrono::steady_clock::now();
      GgufModelResult g = write_gguf_model(m, tok_dir, r.dtype, join_path(staging, file), gname, tensor_progress, imp);
      r.quantize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.tensor_types = g.tensor_types;
      return g;
    };
    std::string model_file, adapter_file;
    GgufVocabInfo vocab;
    auto add_notes = [&](const GgufModelResult& g) {
      for (const auto& n : g.notes)
        if (std::find(r.notes.begin(), r.notes.end(), n) == r.notes.end()) r.notes.push_back(n);
      vocab = g.vocab;
    };
    if (spec.format == "gguf-lora") {
      say("loading base and adapter");
      RunModel m = adapter_model(ref, r.notes);
      adapter_file = name + "-lora-f32.gguf";
      say("writing the LoRA adapter GGUF");
      write_gguf_lora(m.lm.model, join_path(staging, adapter_file), name);
      if (spec.include_base) {
        model_file = name + "-base-" + r.dtype + ".gguf";
        say("writing the base as " + r.dtype + " GGUF");
        add_notes(timed_write(m.lm.model, model_file, name + "-base"));
      } else {
        r.notes.push_back("the adapter alone: load it over a GGUF of the run's base model converted at the same layout");
      }
    } else {
      say("merging");
      LoadedModel merged = merged_model(ref, r.notes);
      model_file = name + "-" + r.dtype + ".gguf";
      say("writing " + r.dtype + " GGUF");
      add_notes(timed_write(merged.model, model_file, name));
    }
    if (r.dtype == "q8_0") r.notes.push_back("q8_0: 8-bit blocks of 32 weights; norms and biases stay f32");
    if (scheme.k_mixture) {
      std::string mix;
      for (const auto& [t, n] : r.tensor_types) mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " " + t;
      r.notes.push_back(r.dtype + ": llama.cpp's mixture of types per tensor (" + mix +
                        "); rows that are not whole 256-blocks fall back to 32-blocks as llama-quantize does");
      const bool any_k = r.tensor_types.count("q4_k") || r.tensor_types.count("q5_k") || r.tensor_types.count("q6_k");
      if (!any_k)
        r.notes.push_back("this model's rows are not multiples of 256 values, so no tensor could take a K-quant: the file "
                          "is what llama-quantize makes of " + r.dtype + " for this shape (5- and 8-bit blocks of 32)");
    }
    if (r.calibration_rows > 0)
      r.notes.push_back("calibrated on " + std::to_string(r.calibration_rows) + " rows (" + std::to_string(r.calibration_tokens) +
                        " tokens) of the run's training data");
    if (spec.format == "ollama" || (spec.format == "gguf-lora" && !model_file.empty())) {
      auto tok = load_tokenizer(tok_dir);
      ModelfileSpec ms;
      ms.model_gguf = "./" + model_file;
      if (!adapter_file.empty()) ms.adapter_gguf = "./" + adapter_file;
      ms.format = detect_chat_format(tok->config().chat_template);
      ms.bos = tok->config().bos_token.empty() ? "<s>" : tok->config().bos_token;
      ms.eos = tok->config().eos_token.empty() ? "</s>" : tok->config().eos_token;
      ms.add_bos = vocab.add_bos;
      ms.name = name;
      write_file_atomic(join_path(staging, "Modelfile"), make_modelfile(ms));
    }
  }
  for (const auto& e : fs::directory_iterator(staging)) r.files.push_back(e.path().filename().string());
  std::sort(r.files.begin(), r.files.end());
  for (const auto& f : r.files) r.bytes += static_cast<int64_t>(fs::file_size(join_path(staging, f)));
  say("checking the export");
  r.check = check_export(spec.run_dir, spec.format, staging, r.dtype);
  // Into place: an empty destination folder (checked above) gives way; rename is atomic.
  if (is_directory(dest)) fs::remove(dest);
  fs::rename(staging, dest);
  cleanup.dir.clear();
  return r;
}

}  // namespace hone
