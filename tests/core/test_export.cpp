// Export tests: PEFT adapter and merged-model round trips over runs made here (LoRA, rsLoRA,
// QLoRA, full), the merged weights against PEFT's merge rule computed by hand from the adapter
// file, generation_config's end-of-turn ids, the export check passing on good exports and flagging
// a merged model that dropped its adapter, and the refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "export/export.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "peft/lora.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

using namespace hone;
using nlohmann::json;

namespace {

struct Fixture {
  std::string dir, base;
  Fixture() {
    dir = test::temp_dir("export");
    base = dir + "/base";
    auto r = test::run(std::string(HONE_CLI) + " init-model --preset tiny --tokenizer builtin --out " + test::shell_quote(base) +
                       " --seed 11");
    if (r.code != 0) throw std::runtime_error(r.err);
  }
  // A run folder as training leaves it: config.json + adapter/ (or model/ for a full fine-tune),
  // with adapter weights far from zero so that the fine-tune visibly moves the logits.
  std::string run(const std::string& name, const std::string& method, bool rslora = false) {
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
    std::ofstream(rd + "/config.json") << json({{"name", name}, {"base_model", base}, {"method", method}, {"recipe", "sft"}}).dump();
    return rd;
  }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

torch::Tensor tensor_of(const SafetensorsFile& f, const std::string& name) {
  const auto* t = f.find(name);
  if (!t) throw std::runtime_error("no tensor " + name + " in " + f.path());
  return tensor_from_bytes(f.data(*t), t->dtype, t->shape, name).to(torch::kFloat);
}

}  // namespace

TEST(Export, PeftAdapterRoundTripsAndPassesTheCheck) {
  const std::string run = fx().run("lora-peft", "lora");
  ExportSpec s{run, "peft", "", fx().dir + "/out-peft"};
  ExportResult r = export_run(s);
  EXPECT_TRUE(r.check.passed) << r.check.summary;
  EXPECT_EQ(r.check.max_logit_diff, 0.0);  // the same files, reloaded
  EXPECT_GT(r.check.adapter_effect, 1.0);
  EXPECT_TRUE(r.check.differs_from_base);
  EXPECT_EQ(read_file(s.out_dir + "/adapter_model.safetensors"), read_file(run + "/adapter/adapter_model.safetensors"));
  json c = test::load_json(s.out_dir + "/adapter_config.json");
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["task_type"], "CAUSAL_LM");
  EXPECT_EQ(c["r"], 4);
  EXPECT_EQ(c["lora_alpha"], 16);
  EXPECT_EQ(c["base_model_name_or_path"], fx().base);
  // A second export into the same, now non-empty, folder writes nothing.
  EXPECT_THROW(export_run(s), Error);
  // The CLI does the same and reports the check on its JSON line.
  const std::string out = fx().dir + "/out-cli";
  auto r2 = test::run(std::string(HONE_CLI) + " export --run " + test::shell_quote(run) + " --format merged --dtype f16 --out " +
                      test::shell_quote(out) + " --json");
  ASSERT_EQ(r2.code, 0) << r2.err;
  std::string last = r2.out.substr(0, r2.out.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') + 1);
  json done = json::parse(last);
  EXPECT_EQ(done["check"]["passed"], true);
  EXPECT_EQ(done["dtype"], "f16");
  EXPECT_GE(done["check"]["next_token_agreement"].get<double>(), 0.9);  // f16 may flip near-ties of a random model
  auto again = test::run(std::string(HONE_CLI) + " export --run " + test::shell_quote(run) + " --format merged --out " +
                         test::shell_quote(out));
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;
}

// PEFT's merge rule, W' = W + (B A) * scaling with scaling = alpha / r (rsLoRA: alpha / sqrt(r)),
// computed here from the adapter file and the base file, against the merged file's weights.
TEST(Export, MergedWeightsFollowPeftsMergeRule) {
  for (bool rslora : {false, true}) {
    const std::string run = fx().run(rslora ? "rslora-merged" : "lora-merged", "lora", rslora);
    ExportSpec s{run, "merged", "f32", fx().dir + (rslora ? "/out-rs" : "/out-merged")};
    ExportResult r = export_run(s);
    EXPECT_TRUE(r.check.passed) << r.check.summary;
    SafetensorsFile merged(s.out_dir + "/model.safetensors"), basef(fx().base + "/model.safetensors"),
        ad(run + "/adapter/adapter_model.safetensors");
    const double scaling = rslora ? 16.0 / 2.0 : 16.0 / 4.0;
    for (const std::string m : {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"}) {
      auto w = tensor_of(basef, m + ".weight");
      auto a = tensor_of(ad, "base_model.model." + m + ".lora_A.weight");
      auto b = tensor_of(ad, "base_model.model." + m + ".lora_B.weight");
      auto want = w + torch::matmul(b, a) * scaling;
      EXPECT_LT((tensor_of(merged, m + ".weight") - want).abs().max().item<double>(), 1e-5) << m << " rslora " << rslora;
    }
    for (const auto& t : merged.tensors()) EXPECT_EQ(t.name.find("lora"), std::string::npos) << t.name;
  }
}

TEST(Export, MergedModelCarriesTokenizerAndEndOfTurnIds) {
  const std::string run = fx().run("lora-files", "lora");
  ExportSpec s{run, "merged", "", fx().dir + "/out-files"};
  ExportResult r = export_run(s);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(std::filesystem::exists(s.out_dir + "/" + f)) << f;
  EXPECT_EQ(r.dtype, "f32");  // the base's storage dtype
  auto tok = load_tokenizer(fx().base);
  json g = test::load_json(s.out_dir + "/generation_config.json");
  std::vector<int64_t> eos = g["eos_token_id"].is_array() ? g["eos_token_id"].get<std::vector<int64_t>>()
                                                          : std::vector<int64_t>{g["eos_token_id"].get<int64_t>()};
  // The builtin tokenizer's template is ChatML: <|im_end|> ends a turn and must stop generation.
  const int64_t im_end = tok->token_to_id("<|im_end|>");
  ASSERT_GE(im_end, 0);
  EXPECT_NE(std::find(eos.begin(), eos.end(), im_end), eos.end()) << g.dump();
  // The exported folder is a model Hone (and transformers) load as is.
  auto back = load_model(s.out_dir);
  EXPECT_EQ(back.config.num_layers, load_model(fx().base).config.num_layers);
}

TEST(Export, QloraMergesIntoTheDequantizedBaseAndFullExportsItsModel) {
  const std::string q = fx().run("qlora", "qlora");
  ExportResult rq = export_run({q, "merged", "f32", fx().dir + "/out-qlora"});
  EXPECT_TRUE(rq.check.passed) << rq.check.summary;
  ASSERT_FALSE(rq.notes.empty());
  EXPECT_NE(rq.notes[0].find("dequantized NF4"), std::string::npos);
  ExportResult rp = export_run({q, "peft", "", fx().dir + "/out-qlora-peft"});
  EXPECT_TRUE(rp.check.passed) << rp.check.summary;
  const std::string full = fx().run("full", "full");
  EXPECT_THROW(export_run({full, "peft", "", fx().dir + "/out-full-peft"}), Error);  // no adapter
  ExportResult rf = export_run({full, "merged", "bf16", fx().dir + "/out-full"});
  EXPECT_TRUE(rf.check.passed) << rf.check.summary;
  EXPECT_GT(rf.check.tolerance, 1e-3);  // bf16 rounding is allowed for
  EXPECT_GT(rf.check.max_logit_diff, 0.0);
}

// The failure users report from other tools: a "merged" model that is silently the base model.
TEST(Export, CheckFlagsAMergedModelThatDroppedItsAdapter) {
  const std::string run = fx().run("lora-broken", "lora");
  const std::string out = fx().dir + "/out-broken";
  ExportResult good = export_run({run, "merged", "f32", out});
  ASSERT_TRUE(good.check.passed) << good.check.summary;
  auto b = load_model(fx().base);
  save_model(b.model, out);  // the base's weights in place of the merged ones
  ExportCheckResult c = check_export(run, "merged", out, "f32");
  EXPECT_FALSE(c.passed);
  EXPECT_FALSE(c.differs_from_base) << c.summary;
  EXPECT_NE(c.summary.find("behaves like the base model"), std::string::npos) << c.summary;
  EXPECT_LT(c.next_token_agreement, 1.0);
  // With the run's own data at hand (<run>/data/, as training leaves it), the check reads its rows.
  std::filesystem::create_directories(run + "/data");
  std::ofstream(run + "/data/1-qa.jsonl") << R"({"instruction":"Say hi","output":"Hi."})" "\n"
                                          << R"({"instruction":"Say bye","output":"Bye."})" "\n";
  ExportCheckResult own = check_export(run, "merged", out, "f32");
  EXPECT_EQ(own.prompts, 2);
  EXPECT_FALSE(own.passed);  // still the base's weights
}

// An independent consumer of the merged export: the plain PyTorch re-implementation of
// transformers' forward pass in tests/reference/llama_reference.py loads the exported folder and
// scores a token sequence. Its per-token NLL must equal Hone's run (base + adapter), not the base's.
TEST(Export, MergedModelScoresInThePyTorchReferenceLikeTheRun) {
  const std::string run = fx().run("lora-ref", "lora");
  const std::string out = fx().dir + "/out-ref";
  ASSERT_TRUE(export_run({run, "merged", "f32", out}).check.passed);
  const std::vector<int64_t> ids = {1, 17, 42, 99, 5, 250, 7, 63, 128, 3, 77, 200};
  const std::string ids_path = fx().dir + "/ids.json";
  std::ofstream(ids_path) << json(ids).dump();
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/llama_reference.py")) +
                     " --score " + test::shell_quote(out) + " " + test::shell_quote(ids_path));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ref_nll = json::parse(r.out)["nll"].get<std::vector<double>>();
  auto nll_of = [&](CausalLM& m) {
    torch::NoGradGuard ng;
    m->eval();
    auto logp = torch::log_softmax(m->forward(torch::tensor(ids, torch::kLong).unsqueeze(0)).squeeze(0), -1);
    std::vector<double> v;
    for (size_t t = 0; t + 1 < ids.size(); ++t) v.push_back(-logp[static_cast<int64_t>(t)][ids[t + 1]].item<double>());
    return v;
  };
  auto tuned = load_model(fx().base);
  load_peft_adapter(tuned.model, run + "/adapter");
  auto base = load_model(fx().base);
  const auto want = nll_of(tuned.model), base_nll = nll_of(base.model);
  ASSERT_EQ(ref_nll.size(), want.size());
  double diff = 0, moved = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(ref_nll[i] - want[i]));
    moved = std::max(moved, std::abs(base_nll[i] - want[i]));
  }
  EXPECT_LT(diff, 1e-3);
  EXPECT_GT(moved, 0.1);  // the fine-tune matters on these tokens, so the comparison means something
}
