// export_run / check_export (see export.h). The reference is always the run as Hone trains and
// serves it (train/run_output: base + adapter, NF4 for QLoRA); the exported artifact is reloaded
// from disk through the core and compared with it position by position.
#include "export/export.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "data/pairs.h"
#include "data/records.h"
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

// Conversations for the check: the first rows of the data the run trained on (its own copy in
// <run>/data/), so that the check looks where the fine-tune acts; the fixed ones above otherwise.
std::vector<std::vector<ChatMessage>> check_conversations(const std::string& run_dir) {
  std::vector<std::vector<ChatMessage>> out;
  std::string dir = join_path(run_dir, "data");
  if (!is_directory(dir) && file_exists(join_path(run_dir, "trainer_state.json")))  // a checkpoint folder
    dir = join_path(fs::path(run_dir).parent_path().parent_path().string(), "data");
  if (is_directory(dir)) {
    try {
      ReadResult rr = read_dataset(dir);
      for (const auto& rec : rr.records) {
        if (out.size() >= 4) break;
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
      out.clear();  // unreadable data: the fixed conversations still check the export
    }
  }
  if (out.empty())
    for (const auto& [q, a] : kCheckTurns) out.push_back({{"user", q}, {"assistant", a}});
  return out;
}

std::vector<std::vector<int64_t>> check_inputs(const std::string& run_dir, const std::string& tok_dir, int64_t vocab) {
  auto tok = load_tokenizer(tok_dir);
  const ChatFormat f = detect_chat_format(tok->config().chat_template);
  std::vector<std::vector<int64_t>> out;
  for (const auto& conv : check_conversations(run_dir)) {
    auto ids = tokenize_chat(*tok, f, conv, false).ids;
    std::vector<int64_t> v;
    for (auto id : ids)
      if (id < vocab) v.push_back(id);  // a builtin test tokenizer may know ids a tiny model lacks
    if (v.size() > 256) v.resize(256);
    if (!v.empty()) out.push_back(std::move(v));
  }
  if (out.empty()) throw Error("export check: the tokenizer gives no tokens for the check prompts");
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
// model), f16 (11-bit) by about 1% (measured 1.1%),
// f32 only by summation order.
double tolerance_of(const std::string& dtype, double logit_scale) {
  const double rel = dtype == "bf16" ? 0.08 : dtype == "f16" ? 0.02 : 1e-4;
  return std::max(1e-3, rel * logit_scale);
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

ExportCheckResult compare(const std::string& run_dir, RunModel& ref, CausalLM& exported, const std::string& tok_dir,
                          const std::string& dtype) {
  ExportCheckResult c;
  const auto inputs = check_inputs(run_dir, tok_dir, ref.lm.config.vocab_size);
  const auto tuned = logits_of(ref.lm.model, inputs);
  const auto got = logits_of(exported, inputs);
  // The base: the same loaded model with its adapters switched off (a full fine-tune has none: its
  // base is loaded from the run's base_model when that folder is here).
  std::vector<at::Tensor> base;
  if (!ref.adapter_dir.empty()) {
    set_lora_enabled(ref.lm.model, false);
    base = logits_of(ref.lm.model, inputs);
    set_lora_enabled(ref.lm.model, true);
  } else if (!ref.base_model.empty() && is_directory(ref.base_model)) {
    auto b = load_model(ref.base_model);
    base = logits_of(b.model, inputs);
  }
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
  const double need_agree = dtype == "f32" ? 1.0 : 0.9;
  c.passed = c.max_logit_diff <= c.tolerance && c.next_token_agreement >= need_agree && c.differs_from_base;
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

}  // namespace

ExportCheckResult check_export(const std::string& run_dir, const std::string& format, const std::string& exported_dir,
                               const std::string& dtype) {
  RunModel ref = load_run_output(run_dir);
  const std::string tok_dir = tokenizer_dir_of(ref);
  if (format == "peft") {
    RunModel got = load_with_adapter(ref.base_model, exported_dir, ref.method == "qlora");
    return compare(run_dir, ref, got.lm.model, tok_dir, "f32");
  }
  if (format == "merged") {
    LoadedModel got = load_model(exported_dir);
    return compare(run_dir, ref, got.model, tok_dir, dtype.empty() ? "f32" : dtype);
  }
  throw Error("export check: unknown format \"" + format + "\" (peft or merged)");
}

ExportResult export_run(const ExportSpec& spec, const ExportProgress& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  if (spec.format != "peft" && spec.format != "merged")
    throw Error("export: unknown format \"" + spec.format + "\" (peft or merged; GGUF comes with a later release)");
  if (spec.out_dir.empty()) throw Error("export: choose an output folder");
  if (is_directory(spec.out_dir) && !fs::is_empty(spec.out_dir))
    throw file_error(spec.out_dir, "is not empty; choose a new or empty folder (nothing was written)");
  say("loading the run");
  RunModel ref = load_run_output(spec.run_dir);
  const std::string tok_dir = tokenizer_dir_of(ref);
  fs::create_directories(spec.out_dir);
  ExportResult r;
  r.out_dir = spec.out_dir;
  r.format = spec.format;

  if (spec.format == "peft") {
    if (ref.adapter_dir.empty())
      throw Error("export: run " + spec.run_dir + " fine-tuned the full model; it has no adapter (export it as merged)");
    say("writing the adapter");
    for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
      const std::string from = join_path(ref.adapter_dir, f);
      if (!file_exists(from)) throw file_error(from, "missing from the run's adapter");
      copy_atomic(from, join_path(spec.out_dir, f));
      r.files.push_back(f);
    }
    r.dtype = "f32";
    if (ref.method == "qlora")
      r.notes.push_back("a QLoRA adapter: load its base in 4-bit NF4 (bitsandbytes) to get what was trained");
  } else {
    say("merging");
    LoadedModel merged;
    if (ref.adapter_dir.empty()) {
      merged = load_model(ref.lm.dir);  // a full fine-tune: the run's own model/
    } else {
      RunModel m = load_with_adapter(ref.base_model, ref.adapter_dir, ref.method == "qlora");
      if (ref.method == "qlora") {
        dequantize_base(m.lm.model);
        r.notes.push_back("QLoRA: merged into the dequantized NF4 base (what training saw); quantizing the merged model "
                          "again loses precision");
      }
      merge_lora(m.lm.model);
      merged = std::move(m.lm);
    }
    const StDtype dt = spec.dtype.empty() ? merged.dominant_dtype : st_dtype_from(spec.dtype);
    r.dtype = dtype_name(dt);
    say("writing " + r.dtype + " safetensors");
    SaveOptions so;
    so.default_dtype = dt;
    save_model(merged.model, spec.out_dir, so);
    // Tokenizer files travel with the weights; generation stops on every end-of-turn token of the
    // template as well as EOS (exports that stop only on EOS generate past the end of a turn).
    copy_tokenizer_files(tok_dir, spec.out_dir);
    auto tok = load_tokenizer(tok_dir);
    std::vector<int64_t> eos = merged.config.eos_token_ids;
    for (const auto& t : end_of_turn_tokens(detect_chat_format(tok->config().chat_template), tok->config().eos_token)) {
      const int32_t id = tok->token_to_id(t);
      if (id >= 0 && std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    }
    json gen = {{"_from_model_config", false}};
    if (tok->bos_id() >= 0) gen["bos_token_id"] = tok->bos_id();
    if (!eos.empty()) gen["eos_token_id"] = eos.size() == 1 ? json(eos[0]) : json(eos);
    if (tok->pad_id() >= 0) gen["pad_token_id"] = tok->pad_id();
    write_file_atomic(join_path(spec.out_dir, "generation_config.json"), gen.dump(2) + "\n");
    for (const auto& e : fs::directory_iterator(spec.out_dir)) r.files.push_back(e.path().filename().string());
    std::sort(r.files.begin(), r.files.end());
  }
  for (const auto& f : r.files) r.bytes += static_cast<int64_t>(fs::file_size(join_path(spec.out_dir, f)));
  say("checking the export");
  if (spec.format == "peft") {
    RunModel got = load_with_adapter(ref.base_model, spec.out_dir, ref.method == "qlora");
    r.check = compare(spec.run_dir, ref, got.lm.model, tok_dir, "f32");
  } else {
    LoadedModel got = load_model(spec.out_dir);
    r.check = compare(spec.run_dir, ref, got.model, tok_dir, r.dtype);
  }
  return r;
}

}  // namespace hone
