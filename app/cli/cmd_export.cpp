// hone-cli export: what a run produced, as a PEFT adapter folder, a merged Hugging Face model, GGUF
// (model or LoRA adapter) or an Ollama Modelfile with its GGUF, followed by the export check (the
// artifact reloaded and compared with base + adapter). hone-cli gguf: what a GGUF file holds.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "export/export.h"
#include "export/gguf.h"
#include "store/runs.h"

namespace hone::cli {

const char* const kGgufUsage = R"(usage: hone-cli gguf FILE [--json]

Validates a GGUF file (header, every length and offset, tensor types and shapes) and lists its
metadata and tensors. Exits 1 with the problem when the file is damaged.
)";

const char* const kExportUsage = R"(usage: hone-cli export --run ID|RUN_DIR --format peft|merged|gguf|gguf-lora|ollama
                       [--dtype TYPE] [--calibrate [--calibrate-rows N]] [--no-base] --out DIR [--json]

peft    the run's LoRA adapter as adapter_config.json + adapter_model.safetensors, which
        peft.PeftModel.from_pretrained loads over the base model
merged  the adapter merged into its base (QLoRA: into the dequantized NF4 base), or a full
        fine-tune's model, in the Hugging Face layout: config.json, safetensors (sharded above
        5 GB), tokenizer files and generation_config.json with EOS and the template's
        end-of-turn ids; --dtype defaults to the base's storage dtype
gguf    the merged model as one GGUF file for llama.cpp, with the tokenizer (tokens, merges or
        scores, the pre-tokenizer name llama.cpp knows, special ids, add_bos/add_eos), end-of-turn
        id and the chat template. --dtype: f16 (default), q8_0, q6_k, q5_k_m, q4_k_m, f32, bf16.
        q6_k, q5_k_m and q4_k_m are llama-quantize's K-quant mixtures: its type for each tensor
        (more bits for the head and half of attn_v / ffn_down; 32-blocks where rows are not whole
        256-blocks), each block's scales searched for the least squared error
--calibrate  quantized types: weight that error by how much each input column is used, measured
        on up to --calibrate-rows rows (default 64) of the run's own training data
gguf-lora  the adapter as a llama.cpp LoRA GGUF (rsLoRA's scale folded into adapter.lora.alpha)
        plus the base it was trained on as GGUF (--no-base: the adapter alone) and a Modelfile
ollama  the gguf export (q4_k_m by default, as Ollama's library serves models) plus an Ollama
        Modelfile (TEMPLATE in the model's chat format, stop parameters for every end-of-turn
        token): ollama create NAME -f DIR/Modelfile

After writing, the export check reloads the artifact and compares its logits with the run's base +
adapter on fixed prompts: the largest difference against the dtype's tolerance, next-token
agreement, and that the export differs from the base where the fine-tune does. A failed check
exits 3. --out must be a new or empty folder. ID is a run of the workspace (--workspace DIR,
default $HONE_WORKSPACE, else ~/.local/share/hone).
)";

namespace {
}  // namespace

std::string run_dir_of(const std::string& run, const std::string& workspace, const std::string& command) {
  if (is_directory(run)) return run;
  int64_t id = 0;
  try {
    id = std::stoll(run);
  } catch (const std::exception&) {
    throw Error(command + ": --run takes a run id or a run folder (got \"" + run + "\")");
  }
  Workspace ws = open_workspace(workspace);
  return get_run(ws, id).run_dir;
}

int cmd_export(const Args& a) {
  const bool json = a.flag("json");
  ExportSpec spec;
  spec.run_dir = run_dir_of(a.require("run"), a.get("workspace", default_workspace()), "export");
  spec.format = a.require("format");
  spec.dtype = a.get("dtype");
  spec.out_dir = a.require("out");
  spec.include_base = !a.flag("no-base");
  spec.calibrate = a.flag("calibrate");
  spec.calibrate_rows = static_cast<int>(a.integer("calibrate-rows", 64));
  if (spec.calibrate_rows < 1) throw Error("export: --calibrate-rows must be at least 1");
  ExportResult r = export_run(spec, [&](const std::string& stage) {
    if (json) std::cout << nlohmann::json({{"event", "progress"}, {"stage", stage}}).dump() << "\n" << std::flush;
    else std::cerr << stage << "...\n";
  });
  const auto& c = r.check;
  if (json) {
    std::cout << nlohmann::json({{"event", "done"},
                                 {"out", r.out_dir},
                                 {"format", r.format},
                                 {"dtype", r.dtype},
                                 {"files", r.files},
                                 {"bytes", r.bytes},
                                 {"notes", r.notes},
                                 {"tensor_types", r.tensor_types},
                                 {"quantize_seconds", r.quantize_seconds},
                                 {"calibration_rows", r.calibration_rows},
                                 {"calibration_tokens", r.calibration_tokens},
                                 {"check",
                                  {{"passed", c.passed},
                                   {"max_logit_diff", c.max_logit_diff},
                                   {"tolerance", c.tolerance},
                                   {"next_token_agreement", c.next_token_agreement},
                                   {"adapter_effect", c.adapter_effect},
                                   {"exported_effect", c.exported_effect},
                                   {"differs_from_base", c.differs_from_base},
                                   {"prompts", c.prompts},
                                   {"positions", c.positions}}}})
                     .dump()
              << "\n";
  } else {
    std::cout << "wrote " << r.format << " (" << r.dtype << ", " << r.bytes << " bytes) to " << r.out_dir << "\n";
    if (r.quantize_seconds > 0) std::cout << "GGUF written in " << r.quantize_seconds << " s\n";
    if (r.calibration_rows > 0)
      std::cout << "calibrated on " << r.calibration_rows << " rows (" << r.calibration_tokens << " tokens) of the run's data\n";
    for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
    std::cout << "export check " << c.summary << "\n";
  }
  return c.passed ? 0 : 3;
}

namespace {
}  // namespace

int cmd_gguf(const Args& a) {
  GgufFile f(a.positional()[0]);
  if (a.flag("json")) {
    nlohmann::json meta = nlohmann::json::object(), tensors = nlohmann::json::array();
    for (const auto& k : f.key_order()) meta[k] = f.metadata().at(k).describe();
    for (const auto& t : f.tensors())
      tensors.push_back({{"name", t.name}, {"type", ggml_type_name(t.type)}, {"shape", t.shape}, {"offset", t.offset}});
    std::cout << nlohmann::json({{"version", f.version()}, {"alignment", f.alignment()}, {"metadata", meta}, {"tensors", tensors}})
                     .dump()
              << "\n";
    return 0;
  }
  std::cout << f.path() << ": GGUF v" << f.version() << ", " << f.metadata().size() << " keys, " << f.tensors().size()
            << " tensors\n";
  for (const auto& k : f.key_order()) std::cout << "  " << k << " = " << f.metadata().at(k).describe() << "\n";
  for (const auto& t : f.tensors()) {
    std::cout << "  " << t.name << "  " << ggml_type_name(t.type) << " [";
    for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
    std::cout << "]\n";
  }
  return 0;
}

}  // namespace hone::cli
