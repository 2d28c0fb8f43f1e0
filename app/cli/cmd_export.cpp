// hone-cli export: what a run produced, as a PEFT adapter folder or a merged Hugging Face model,
// followed by the export check (the artifact reloaded and compared with base + adapter).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "export/export.h"
#include "store/runs.h"

namespace hone::cli {

namespace {
const char* kHelp = R"(usage: hone-cli export --run ID|RUN_DIR --format peft|merged [--dtype f32|bf16|f16] --out DIR [--json]

peft    the run's LoRA adapter as adapter_config.json + adapter_model.safetensors, which
        peft.PeftModel.from_pretrained loads over the base model
merged  the adapter merged into its base (QLoRA: into the dequantized NF4 base), or a full
        fine-tune's model, in the Hugging Face layout: config.json, safetensors (sharded above
        5 GB), tokenizer files and generation_config.json with EOS and the template's
        end-of-turn ids; --dtype defaults to the base's storage dtype

After writing, the export check reloads the artifact and compares its logits with the run's base +
adapter on fixed prompts: the largest difference against the dtype's tolerance, next-token
agreement, and that the export differs from the base where the fine-tune does. A failed check
exits 3. --out must be a new or empty folder. ID is a run of the workspace (--workspace DIR,
default $HONE_WORKSPACE, else ~/.local/share/hone).
)";
}  // namespace

int cmd_export(int argc, char** argv) {
  Args a(argc, argv, 2, "export", {"run", "format", "dtype", "out", "workspace"}, {"json"});
  if (a.flag("help")) {
    std::cout << kHelp;
    return 0;
  }
  const bool json = a.flag("json");
  ExportSpec spec;
  const std::string run = a.require("run");
  if (is_directory(run)) {
    spec.run_dir = run;
  } else {
    int64_t id = 0;
    try {
      id = std::stoll(run);
    } catch (const std::exception&) {
      throw Error("export: --run takes a run id or a run folder (got \"" + run + "\")");
    }
    Workspace ws(a.get("workspace", default_workspace()));
    spec.run_dir = get_run(ws, id).run_dir;
  }
  spec.format = a.require("format");
  spec.dtype = a.get("dtype");
  spec.out_dir = a.require("out");
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
    for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
    std::cout << "export check " << c.summary << "\n";
  }
  return c.passed ? 0 : 3;
}

}  // namespace hone::cli
