// hone-cli: the headless front end of Hone. Dispatches sub-commands; every failure becomes one
// line on stderr naming the file and the problem, and a non-zero exit code.
#include <c10/util/Exception.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/crash.h"
#include "common/runtime.h"

namespace {

const char* kUsage = R"(hone-cli: fine-tune and inspect Llama-family models (Hone )" HONE_VERSION R"()

usage: hone-cli <command> [options]      (hone-cli <command> --help for details)

commands:
  inspect     describe a model folder (--model DIR) or this machine (--system)
  tokenize    token ids of a text with a model's tokenizer
  template    a conversation rendered with a model's chat template (its own Jinja, or a family)
  score       per-token negative log-likelihood of a text under a model
  generate    generate text from a prompt (plain or chat)
  init-model  write a randomly initialised model in the Hugging Face layout
  train       fine-tune from a run config (LoRA, QLoRA, full; SFT or continued pre-training)
  demo        build a small base model, fine-tune it on four skills, show accuracy before/after
  dataset     import, validate, list, show, stats and export workspace datasets
  runs        list, show, compare and resume the runs recorded in the workspace
  label       generate candidate pairs with a model, label them (a/b/tie/both_bad), export DPO/KTO data
  export      a run as a PEFT adapter, a merged Hugging Face model, GGUF or for Ollama, checked against the run
  gguf        show a GGUF file: metadata, tensors, validation
  reward      score texts or a preference dataset with a trained reward model
  bench       training throughput, MFU and memory on a Llama-shaped model with random tokens
  launch      run a command (train, runs resume) as N data-parallel processes on this machine
)";

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

int main(int argc, char** argv) {
  hone::tune_blas_kernel(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "hone-cli " << HONE_VERSION << "\n";
    return 0;
  }
  const std::string cmd = argv[1];
  {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    hone::install_crash_handler("hone-cli", ec ? std::string() : self.string());
  }
  try {
    hone::init_runtime();
    if (cmd == "inspect") return hone::cli::cmd_inspect(argc, argv);
    if (cmd == "tokenize") return hone::cli::cmd_tokenize(argc, argv);
    if (cmd == "template") return hone::cli::cmd_template(argc, argv);
    if (cmd == "score") return hone::cli::cmd_score(argc, argv);
    if (cmd == "generate") return hone::cli::cmd_generate(argc, argv);
    if (cmd == "init-model") return hone::cli::cmd_init_model(argc, argv);
    if (cmd == "train") return hone::cli::cmd_train(argc, argv);
    if (cmd == "bench") return hone::cli::cmd_bench(argc, argv);
    if (cmd == "demo") return hone::cli::cmd_demo(argc, argv);
    if (cmd == "dataset") return hone::cli::cmd_dataset(argc, argv);
    if (cmd == "runs") return hone::cli::cmd_runs(argc, argv);
    if (cmd == "label") return hone::cli::cmd_label(argc, argv);
    if (cmd == "export") return hone::cli::cmd_export(argc, argv);
    if (cmd == "gguf") return hone::cli::cmd_gguf(argc, argv);
    if (cmd == "reward") return hone::cli::cmd_reward(argc, argv);
    if (cmd == "launch") return hone::cli::cmd_launch(argc, argv);
    std::cerr << "error: unknown command '" << cmd << "' (see hone-cli --help)\n";
    return 2;
  } catch (const hone::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "error: " << first_line(e.what_without_backtrace()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << first_line(e.what()) << "\n";
  }
  return 1;
}
