// Run folders as training leaves them, for the export tests (test_export, test_gguf_interop): a
// base made by `hone-cli init-model`, then config.json + adapter/ (or model/ for a full fine-tune)
// with adapter weights far from zero, so that the fine-tune visibly moves the logits.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "peft/lora.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace hone::test {

struct ExportFixture {
  std::string dir, base;
  // preset: an init-model preset; tokenizer: "builtin" or a tokenizer folder.
  explicit ExportFixture(const std::string& name, const std::string& preset = "tiny", const std::string& tokenizer = "builtin") {
    dir = temp_dir(name);
    base = dir + "/base";
    auto r = run(std::string(HONE_CLI) + " init-model --preset " + preset + " --tokenizer " + shell_quote(tokenizer) +
                 " --out " + shell_quote(base) + " --seed 11");
    if (r.code != 0) throw std::runtime_error(r.err);
  }
  std::string run_dir(const std::string& name, const std::string& method, bool rslora = false) {
    const std::string rd = dir + "/" + name;
    std::filesystem::create_directories(rd);
    auto lm = load_model(base);
    torch::manual_seed(5);
    if (method == "full") {
      torch::NoGradGuard ng;
      for (auto& p : lm.model->parameters()) p.add_(torch::randn_like(p) * 0.02);
      save_model(lm.model, rd + "/model");
      copy_tokenizer_files(base, rd + "/model");  // as training leaves a full fine-tune's model/
    } else {
      if (method == "qlora") quantize_base_nf4(lm.model);
      LoraConfig c;
      c.r = 4;
      c.alpha = 16;
      c.rslora = rslora;
      c.targets = {"all-linear"};
      attach_lora(lm.model, c, 3);
      torch::NoGradGuard ng;
      for (auto& p : lm.model->named_parameters())
        if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.3);
      save_peft_adapter(lm.model, c, base, rd + "/adapter");
    }
    std::ofstream(rd + "/config.json")
        << nlohmann::json({{"name", name}, {"base_model", base}, {"method", method}, {"recipe", "sft"}}).dump();
    return rd;
  }
};

}  // namespace hone::test
