// Export of what a run produced into the formats other tools load: the PEFT adapter folder, and the
// merged model in the Hugging Face layout (config, safetensors, tokenizer files, a
// generation_config.json whose EOS ids include the template's end-of-turn tokens). Every export is
// followed by the export check (export_check.h). Torch-free header: the CLI and the GUI use it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hone {

struct ExportSpec {
  std::string run_dir;  // a run folder or one of its checkpoints/step-N
  std::string format;   // peft | merged
  std::string dtype;    // merged: f32 | bf16 | f16 ("" = the dtype the base is stored in)
  std::string out_dir;  // created; must be empty or absent
};

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
  ExportCheckResult check;
};

using ExportProgress = std::function<void(const std::string& stage)>;

// Writes the export and checks it. Throws hone::Error naming what is wrong (unknown format, a run
// without an adapter for peft, an out_dir that is not empty). Files are written atomically.
ExportResult export_run(const ExportSpec& spec, const ExportProgress& progress = nullptr);

// The check alone: `exported_dir` (in `format`) against the run's base + adapter in the core.
ExportCheckResult check_export(const std::string& run_dir, const std::string& format, const std::string& exported_dir,
                               const std::string& dtype = "f32");

}  // namespace hone
