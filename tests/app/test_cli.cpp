// hone-cli end to end: every command's output against independent references, --help for all,
// and one clear error line (naming the file) with a non-zero exit for bad input.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <fstream>

#include <algorithm>

#include "common/files.h"
#include "common/runtime.h"
#include "tokenizer/tokenizer.h"
#include "test_support.h"
#include "train/run_config.h"

using namespace hone;
using nlohmann::json;

namespace {

test::RunResult cli(const std::string& args) { return test::run(std::string(HONE_CLI) + " " + args); }
std::string q(const std::string& s) { return test::shell_quote(s); }

// A tiny model with the Mistral tokenizer, made once per process by init-model.
std::string tiny_model() {
  static std::string d;
  if (!d.empty()) return d;
  std::string base = test::temp_dir("cli-tiny");
  auto r = cli("init-model --preset tiny --tokenizer " + q(test::shared("tokenizers/mistral")) + " --out " + q(base + "/m") +
               " --seed 3");
  if (r.code != 0) throw std::runtime_error("init-model failed: " + r.err);
  d = base + "/m";
  return d;
}

}  // namespace

TEST(Cli, EveryCommandHasHelp) {
  for (const char* c : {"inspect", "tokenize", "template", "score", "generate", "init-model"}) {
    auto r = cli(std::string(c) + " --help");
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.out.find("usage: hone-cli"), std::string::npos) << c;
  }
  EXPECT_EQ(cli("--help").code, 0);
  EXPECT_NE(cli("frobnicate").code, 0);
}

// The command table generates every help text: the top-level usage lists each command and recipe
// (the recipe table's), `help COMMAND` is the command's --help, and an unknown option names the
// command's own.
TEST(Cli, HelpListsEveryCommandAndRecipe) {
  const auto top = cli("--help");
  ASSERT_EQ(top.code, 0);
  const char* commands[] = {"inspect", "tokenize", "template", "score", "generate", "init-model", "train", "launch", "demo",
                            "dataset", "runs", "label", "eval", "export", "gguf", "reward", "bench", "bench store"};
  const char* recipes[] = {"sft", "cpt", "dpo", "orpo", "kto", "reward", "grpo", "ppo"};
  for (const char* c : commands) {
    EXPECT_NE(top.out.find("\n  " + std::string(c) + " "), std::string::npos) << c << "\n" << top.out;
    const auto h = cli(std::string(c) + " --help");
    EXPECT_EQ(h.code, 0) << c;
    EXPECT_EQ(h.out.rfind("usage: hone-cli " + std::string(c), 0), 0u) << c << ": " << h.out.substr(0, 80);
    const auto via_help = cli("help " + std::string(c));
    EXPECT_EQ(via_help.code, 0) << c;
    EXPECT_EQ(via_help.out, h.out) << c;
  }
  const auto train = cli("train --help");
  for (const char* r : recipes) {
    EXPECT_NE(top.out.find("\n  " + std::string(r) + " "), std::string::npos) << r;
    EXPECT_NE(train.out.find("\n  " + std::string(r) + " "), std::string::npos) << r << "\n" << train.out;
  }
  for (const char* m : {"lora", "qlora", "full"}) EXPECT_NE(train.out.find("\n  " + std::string(m) + " "), std::string::npos) << m;
  EXPECT_EQ(train.out.find("{recipes}"), std::string::npos);
  EXPECT_NE(cli("help frobnicate").code, 0);
  EXPECT_EQ(cli("dataset").code, 2);  // an action is needed: the usage, and status 2
  const auto bogus = cli("inspect --model x --bogus");
  EXPECT_NE(bogus.err.find("inspect: unknown option --bogus (its options: --model X, --system)"), std::string::npos) << bogus.err;
}

// docs/run-config.md keeps a copy of `hone-cli help recipes` (the recipe table) and describes
// every key a run config may hold.
TEST(Cli, RunConfigDocsFollowTheTables) {
  const std::string doc = read_file(test::source("docs/run-config.md"));
  const std::string begin = "<!-- recipes: begin -->\n", end = "<!-- recipes: end -->";
  const size_t b = doc.find(begin), e = doc.find(end);
  ASSERT_TRUE(b != std::string::npos && e != std::string::npos);
  const auto r = cli("help recipes --markdown");
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), r.out) << "run: hone-cli help recipes --markdown";
  for (const ConfigKey* k : all_config_keys()) EXPECT_NE(doc.find("`" + k->name + "`"), std::string::npos) << k->name;
}

TEST(Cli, TokenizeMatchesReferenceCases) {
  json cases = test::load_json(test::shared("tokenizers/gemma3/cases.json"));
  for (int i = 0; i < 4; ++i) {
    const auto& c = cases["cases"][i];
    auto r = cli("tokenize --tokenizer " + q(test::shared("tokenizers/gemma3")) + " --text " + q(c["text"]) + " --add-special");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ids"], c["ids_with_special"]);
  }
  std::string f = test::temp_dir("cli-tok") + "/t.txt";
  write_file_atomic(f, "Hello, world!");
  auto r = cli("tokenize --tokenizer " + q(test::shared("tokenizers/qwen3")) + " --text-file " + q(f));
  EXPECT_EQ(json::parse(r.out)["ids"], json::parse("[9707,11,1879,0]"));
}

TEST(Cli, TemplateRendersTheCheckpointsOwnTemplate) {
  // Qwen3's own template: thinking kept in the last reply, tools listed in the system turn.
  const std::string d = test::temp_dir("cli-template");
  write_file_atomic(d + "/m.json", R"([{"role": "user", "content": "Is 7 prime?"},
    {"role": "assistant", "content": "<think>\nDivisors: 1, 7.\n</think>\n\nYes."}])");
  write_file_atomic(d + "/tools.json", R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  const std::string model = " --model " + q(test::shared("tokenizers/qwen3"));
  auto r = cli("template" + model + " --messages " + q(d + "/m.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["template"], "checkpoint");
  EXPECT_EQ(j["text"], "<|im_start|>user\nIs 7 prime?<|im_end|>\n<|im_start|>assistant\n<think>\nDivisors: 1, 7.\n</think>\n\nYes.<|im_end|>\n");
  // The mask: the reply with its thinking and <|im_end|> (151645), not the final newline.
  auto tok = load_tokenizer(test::shared("tokenizers/qwen3"));
  std::vector<int32_t> ids = j["ids"].get<std::vector<int32_t>>(), masked;
  std::vector<int> mask = j["assistant_mask"].get<std::vector<int>>();
  ASSERT_EQ(ids.size(), mask.size());
  for (size_t i = 0; i < ids.size(); ++i)
    if (mask[i]) masked.push_back(ids[i]);
  EXPECT_EQ(tok->decode(masked), "<think>\nDivisors: 1, 7.\n</think>\n\nYes.<|im_end|>");
  r = cli("template" + model + " --messages " + q(d + "/m.json") + " --tools " + q(d + "/tools.json") + " --add-generation-prompt");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}\n</tools>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("<|im_start|>assistant\n"), std::string::npos);
  // --template names a family instead; a template error names the file.
  r = cli("template" + model + " --messages " + q(d + "/m.json") + " --template llama3");
  EXPECT_EQ(r.out.rfind("<|begin_of_text|>", 0), 0u) << r.out;
  write_file_atomic(d + "/bad.json", R"([{"content": "no role"}])");
  r = cli("template" + model + " --messages " + q(d + "/bad.json"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bad.json: messages: message 1"), std::string::npos) << r.err;
}

TEST(Cli, ScoreMatchesPyTorchReference) {
  const std::string m = tiny_model();
  auto r = cli("score --model " + q(m) + " --text " + q("Fine-tuning adapts a pre-trained model to your domain."));
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  auto ids = j["ids"].get<std::vector<int64_t>>();
  ASSERT_GT(ids.size(), 5u);
  EXPECT_EQ(ids[0], 1) << "BOS added by default";
  EXPECT_EQ(j["nll"].size(), ids.size() - 1);
  EXPECT_EQ(j["top1"].size(), ids.size());
  std::string idf = test::temp_dir("cli-score") + "/ids.json";
  write_file_atomic(idf, json(ids).dump());
  auto ref = test::run(std::string(HONE_PYTHON) + " " + q(test::source("tests/reference/llama_reference.py")) + " --score " +
                       q(m) + " " + q(idf));
  ASSERT_EQ(ref.code, 0) << ref.err;
  json g = json::parse(ref.out);
  double sum = 0;
  for (size_t t = 0; t < g["nll"].size(); ++t) {
    EXPECT_NEAR(j["nll"][t].get<double>(), g["nll"][t].get<double>(), 1e-4) << t;
    sum += g["nll"][t].get<double>();
  }
  EXPECT_NEAR(j["mean_nll"].get<double>(), sum / g["nll"].size(), 1e-4);
}

TEST(Cli, InspectDescribesModelAndSystem) {
  auto r = cli("inspect --model " + q(tiny_model()));
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["heads"], 4);
  EXPECT_EQ(j["kv_heads"], 2);
  EXPECT_EQ(j["vocab"], 32000);
  EXPECT_EQ(j["dtype"], "F32");
  EXPECT_EQ(j["parameters"], j["parameters_expected"]);
  EXPECT_EQ(j["tokenizer"]["kind"], "bpe-sentencepiece-style");
  EXPECT_EQ(j["chat_template"]["format"], "alpaca");
  auto s = cli("inspect --system");
  ASSERT_EQ(s.code, 0) << s.err;
  json sj = json::parse(s.out);
  EXPECT_GE(sj["threads"].get<int>(), 1);
  EXPECT_FALSE(sj["libtorch"].get<std::string>().empty());
  EXPECT_GT(sj["gemm_gflops_fp32"].get<double>(), 0.0);
}

// Debian's OpenBLAS falls back to its SSE3 kernels on CPUs newer than itself (62 against 297
// GFLOP/s measured); hone-cli must end up on AVX2/AVX-512 kernels wherever the CPU has them. The
// CPU's flags are read from /proc/cpuinfo, independently of the program's own cpuid check.
TEST(Cli, OpenBlasRunsKernelsForThisCpu) {
  std::string flags;
  {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("flags", 0) == 0) {
        flags = line + " ";
        break;
      }
  }
  auto has = [&](const char* fl) { return flags.find(std::string(" ") + fl + " ") != std::string::npos; };
  auto s = cli("inspect --system");
  ASSERT_EQ(s.code, 0) << s.err;
  json sj = json::parse(s.out);
  const std::string core = sj["blas_core"].get<std::string>();
  if (sj["blas"].get<std::string>().find("openblas") == std::string::npos) GTEST_SKIP() << "BLAS is not OpenBLAS";
  for (const char* generic : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"})
    if (has("avx2") && has("fma")) EXPECT_NE(core, generic) << "OpenBLAS stayed on a generic kernel on an AVX2 CPU";
  // The choice itself, for a generic kernel and for one OpenBLAS picked on its own.
  const bool avx512 = has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512dq") && has("avx512cd");
  EXPECT_EQ(preferred_blas_kernel("Prescott"), avx512 ? "SkylakeX" : (has("avx2") && has("fma")) ? "Haswell" : "");
  EXPECT_EQ(preferred_blas_kernel("SkylakeX"), "");
  EXPECT_EQ(preferred_blas_kernel("Haswell"), "");
  // With OpenBLAS's OpenMP build linked (core/CMakeLists.txt), libtorch uses every core.
  if (sj["blas"].get<std::string>().find("openblas-openmp") != std::string::npos && !std::getenv("HONE_THREADS"))
    EXPECT_EQ(sj["threads"], sj["cores"]);
}

TEST(Cli, GenerateStreamsText) {
  const std::string m = tiny_model();
  auto r = cli("generate --model " + q(m) + " --prompt " + q("Hello") + " --max-new-tokens 8 --temperature 0.8 --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  auto r2 = cli("generate --model " + q(m) + " --prompt " + q("Hello") + " --max-new-tokens 8 --temperature 0.8 --seed 1");
  EXPECT_EQ(r.out, r2.out) << "same seed, same text";
  auto c = cli("generate --model " + q(m) + " --prompt hi --chat --template chatml --max-new-tokens 4");
  EXPECT_EQ(c.code, 0) << c.err;
}

TEST(Cli, BadInputGivesOneClearLine) {
  std::string d = test::temp_dir("cli-bad");
  const std::string m = tiny_model();
  struct Case {
    std::string args, needle;
  };
  std::string bad_cfg = d + "/badcfg";
  test::run("mkdir -p " + q(bad_cfg));
  write_file_atomic(bad_cfg + "/config.json", "{ \"model_type\": ");
  std::string trunc = d + "/trunc";
  test::run("cp -r " + q(m) + " " + q(trunc));
  std::string st = read_file(trunc + "/model.safetensors");
  write_file_atomic(trunc + "/model.safetensors", st.substr(0, st.size() / 2));
  std::string arch = d + "/arch";
  test::run("cp -r " + q(m) + " " + q(arch));
  json cfg = test::load_json(arch + "/config.json");
  cfg["model_type"] = "falcon";
  write_file_atomic(arch + "/config.json", cfg.dump());
  const std::vector<Case> cases = {
      {"score --model " + q(d + "/nope") + " --text x", d + "/nope"},
      {"score --model " + q(bad_cfg) + " --tokenizer " + q(test::shared("tokenizers/mistral")) + " --text x", bad_cfg + "/config.json"},
      {"score --model " + q(trunc) + " --text x", trunc + "/model.safetensors"},
      {"inspect --model " + q(arch), "unknown architecture model_type \"falcon\""},
      {"tokenize --tokenizer " + q(d) + " --text x", "no tokenizer.json or tokenizer.model"},
      {"tokenize --tokenizer " + q(test::shared("tokenizers/qwen3")) + " --text-file " + q(d + "/missing.txt"), d + "/missing.txt"},
      {"score --model " + q(m) + " --text x --bogus 1", "unknown option --bogus"},
      {"generate --model " + q(m) + " --prompt x --top-p 0", "out of range"},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  }
}
