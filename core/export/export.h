// Export of what a run produced into the formats other tools load: the PEFT adapter folder; the
// merged model in the Hugging Face layout (config, safetensors, tokenizer files, a
// generation_config.json whose EOS ids include the template's end-of-turn tokens); GGUF for
// llama.cpp (the merged model, or a LoRA adapter GGUF with its base); and an Ollama Modelfile.
// Every export is followed by the export check. Torch-free header: the CLI and the GUI use it.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hone {

struct ExportSpec {
  std::string run_dir;  // a run folder or one of its checkpoints/step-N
  std::string format;   // peft | merged | gguf | gguf-lora | ollama
  // merged: f32 | bf16 | f16 ("" = the dtype the base is stored in);
  // gguf, ollama and the base of gguf-lora: f16 | q8_0 | q6_k | q5_k_m | q4_k_m | f32 | bf16
  // ("" = f16; q4_k_m for ollama, what Ollama's own library serves). The K-quant mixtures follow
  // llama-quantize's per-tensor rules (export/gguf_mix.h).
  std::string dtype;
  std::string out_dir;  // created; must be empty or absent
  bool include_base = true;  // gguf-lora: also write the base as GGUF (the weights the adapter was trained on)
  // Quantized GGUF types: weight each block's error search by the mean squared activation of its
  // columns over up to `calibrate_rows` rows of the run's own training data (export/calibrate.h).
  bool calibrate = false;
  int calibrate_rows = 64;
};

// The formats and the dtypes each accepts (first = default), for the CLI's and the GUI's choices.
std::vector<std::string> export_formats();
std::vector<std::string> export_dtypes(const std::string& format);

struct ExportCheckResult {
  int prompts = 0, positions = 0;
  double max_logit_diff = 0;        // exported artifact vs base + adapter in the core
  double tolerance = 0;             // for the exported dtype
  double next_token_agreement = 0;  // share of positions whose most likely next token agrees
  double adapter_effect = 0;        // max |tuned - base| in the core
  double exported_effect = 0;       // max |exported - base|
  bool differs_from_base = true;    // false: the export behaves like the base where the adapter does not
  bool passed = false;
  std::string summary;  // one line for people
};

struct ExportResult {
  std::string out_dir, format, dtype;
  std::vector<std::string> files;  // written, relative to out_dir
  int64_t bytes = 0;
  std::vector<std::string> notes;  // e.g. "QLoRA merged into the dequantized NF4 base"
  std::map<std::string, int> tensor_types;  // GGUF: type name -> tensors of the model file
  int calibration_rows = 0;                 // rows of the run's data the calibration ran over
  int64_t calibration_tokens = 0;
  double quantize_seconds = 0;              // GGUF: writing the model file (encoding included)
  ExportCheckResult check;
};

using ExportProgress = std::function<void(const std::string& stage)>;

// Writes the export and checks it. Throws hone::Error naming what is wrong (unknown format, a run
// without an adapter for peft, an out_dir that is not empty). Everything is written into a hidden
// staging folder beside out_dir (.NAME.partial-PID) and renamed to out_dir at the end, so a failure
// or a kill leaves no half export; staging folders of dead processes are removed (and said) first.
ExportResult export_run(const ExportSpec& spec, const ExportProgress& progress = nullptr);

// The check alone: `exported_dir` (in `format`) against the run's base + adapter in the core.
// GGUF files are found in the folder by their general.type (model or adapter).
ExportCheckResult check_export(const std::string& run_dir, const std::string& format, const std::string& exported_dir,
                               const std::string& dtype = "f32");

}  // namespace hone
