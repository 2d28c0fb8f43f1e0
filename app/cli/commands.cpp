// The command table (see commands.h), the usage texts generated from it and the dispatch. A new
// command is one row here plus its cmd_*.cpp (run function and usage text).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "cli/commands.h"

#include <algorithm>
#include <cstring>
#include <iostream>

#include "common/error.h"
#include "common/hub_cache.h"
#include "train/recipes.h"

namespace hone::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      // name, summary, usage, options with a value, flags, [action, min. positional words], run
      {"inspect", "describe a model folder (--model DIR) or this machine (--system)", kInspectUsage, {"model"}, {"system"},
       false, 0, cmd_inspect},
      {"tokenize", "token ids of a text with a model's tokenizer", kTokenizeUsage, {"tokenizer", "text", "text-file"},
       {"add-special", "offsets"}, false, 0, cmd_tokenize},
      {"template", "a conversation rendered with a model's chat template (its own Jinja, or a family)", kTemplateUsage,
       {"model", "messages", "tools", "template", "thinking", "var"}, {"add-generation-prompt", "json"}, false, 0, cmd_template},
      {"score", "per-token negative log-likelihood of a text under a model", kScoreUsage,
       {"model", "text", "text-file", "tokenizer", "device", "adapter", "run"}, {"timing", "nf4"}, false, 0, cmd_score},
      {"generate", "generate text from a prompt (plain or chat)", kGenerateUsage,
       {"model", "prompt", "system", "template", "max-new-tokens", "temperature", "top-k", "top-p", "repetition-penalty", "seed",
        "device", "tokenizer", "adapter", "run"},
       {"chat", "nf4"}, false, 0, cmd_generate},
      {"init-model", "write a randomly initialised model in the Hugging Face layout", kInitModelUsage,
       {"like", "preset", "tokenizer", "out", "seed", "dtype"}, {}, false, 0, cmd_init_model},
      {"train", "fine-tune from a run config: {recipe_names}, over LoRA, QLoRA or full fine-tuning", kTrainUsage,
       {"config", "workspace", "run-dir", "resume", "dist-timeout"}, {"json", "dry-run"}, false, 0, cmd_train},
      {"launch", "run a command (train, runs resume) as N data-parallel processes on this machine", kLaunchUsage, {}, {},
       false, 0, nullptr, cmd_launch},
      {"demo", "build a small base model, fine-tune it on four skills, show accuracy before/after", kDemoUsage,
       {"workspace", "method", "pretrain-steps", "pretrain-lr", "steps", "seed", "lr", "warmup-steps", "warmup-until", "warmup-max-steps", "generations", "beta",
        "base-dtype", "bf16-activations"},
       {"json", "rebuild"}, false, 0, cmd_demo},
      {"dataset", "import, validate, list, show, stats and export workspace datasets", kDatasetUsage,
       {"workspace", "name", "format", "kind", "map", "rows", "out", "tokenizer", "split", "seed", "val-fraction",
        "compression"},
       {"json", "skip-invalid"}, true, 0, cmd_dataset},
      {"runs", "list, show, compare and resume the runs recorded in the workspace", kRunsUsage,
       {"workspace", "metric", "signal", "report", "wait"}, {"json", "csv"}, true, 0, cmd_runs},
      {"label", "generate candidates with one or two models, label them (a/b, rankings, review), export DPO/KTO data, agreement",
       kLabelUsage,
       {"workspace", "dataset", "model", "adapter", "run", "versus-model", "versus-adapter", "versus-run", "name", "n", "temperature",
        "top-p", "top-k", "resample", "max-new-tokens", "seed", "template", "limit", "note", "author", "annotator", "out",
        "ratings-out", "between"},
       {"json"}, true, 0, cmd_label},
      {"eval", "evaluate runs and models on suites (choice, generate, loss), pairwise judging, compare scores", kEvalUsage,
       {"workspace", "suite", "run", "model", "adapter", "metric", "mode", "format", "max-new-tokens", "limit", "template", "a",
        "b", "judge", "seed", "name"},
       {"json", "csv", "human"}, true, 0, cmd_eval},
      {"export", "a run as a PEFT adapter, a merged Hugging Face model, GGUF or for Ollama, checked against the run",
       kExportUsage, {"run", "format", "dtype", "out", "workspace", "calibrate-rows"}, {"json", "no-base", "calibrate"}, false, 0,
       cmd_export},
      {"gguf", "show a GGUF file: metadata, tensors, validation", kGgufUsage, {}, {"json"}, false, 1, cmd_gguf},
      {"reward", "score texts or a preference dataset with a trained reward model", kRewardUsage,
       {"run", "text", "prompt", "response", "dataset", "limit", "workspace"}, {"json"}, true, 0, cmd_reward},
      {"bench", "training throughput, MFU and memory on a Llama-shaped model with random tokens", kBenchUsage,
       {"hidden", "layers", "heads", "kv-heads", "ffn", "vocab", "seq", "batch", "rank", "steps", "method", "seed", "profile",
        "device", "preset", "contend", "base-dtype", "lora-dropout", "prompt-frac", "model", "dtype", "prompt-tokens", "new-tokens"},
       {"json", "checkpointing", "mlp-recompute", "unfused", "bf16", "tie", "full-logits", "full-attention", "generate", "no-prefix-share", "fp32-activations"}, false, 0,
       cmd_bench},
      {"hub", "Hugging Face models and datasets: list the cache, search, download (resumable, verified), remove",
       kHubUsage, {"revision", "include", "jobs", "limit"}, {"json", "dataset", "all"}, true, 0, cmd_hub},
      {"bench store", "import, page-read and metrics-recording speed of the workspace store", kBenchStoreUsage,
       {"dir", "import-rows", "page-rows"}, {"json"}, false, 0, cmd_bench_store},
  };
  return table;
}

const Command* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
}

constexpr size_t kWidth = 100;  // columns of help text

// "  name    text", the text wrapped at kWidth under its first column.
std::string entry(const std::string& name, size_t name_width, const std::string& text) {
  std::string out = "  " + name + std::string(name_width > name.size() ? name_width - name.size() : 1, ' ');
  const size_t indent = out.size();
  size_t col = indent, i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    if (col > indent && col + 1 + word.size() > kWidth) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (col > indent) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    i = j + 1;
  }
  return out + "\n";
}

// One entry per recipe: its name, label and summary, its data and the methods it trains with.
std::string recipe_lines() {
  std::string s;
  for (const auto& r : recipe_table())
    s += entry(r.name, 8, r.label + ": " + r.summary + " (" + r.data_kind + " data" +
                              (r.methods.size() < method_table().size() ? "; " + method_labels(r.methods) : std::string()) + ")");
  return s;
}

std::string method_lines() {
  std::string s;
  for (const auto& m : method_table()) s += entry(m.name, 8, m.label + ": " + m.summary);
  return s;
}

std::string fill(std::string text) {
  replace_all(text, "{recipes}", recipe_lines());
  replace_all(text, "{methods}", method_lines());
  replace_all(text, "{recipe_names}", recipe_names(", ", " and "));
  return text;
}

bool is_help(const char* a) { return !std::strcmp(a, "--help") || !std::strcmp(a, "-h"); }

}  // namespace

std::string recipes_text() {
  std::string s;
  for (const auto& r : recipe_table()) {
    std::string methods, keys;
    for (const auto& m : r.methods) methods += (methods.empty() ? "" : ", ") + m;
    for (const auto& k : r.keys) keys += (keys.empty() ? "" : ", ") + k.name;
    s += r.name + "  " + r.label + "\n" + entry("trains", 10, r.summary) + entry("data", 10, r.data_help + " (" + r.data_kind + ")") +
         entry("methods", 10, methods + (r.methods_why.empty() ? "" : " (" + r.methods_why + ")")) +
         entry("keys", 10, keys.empty() ? "none of its own" : keys) + "\n";
  }
  return s + "(hone-cli help recipes --markdown: the same as a table, as docs/run-config.md shows it)\n";
}

std::string recipes_markdown() {
  std::string s = "| recipe | what it trains | data (workspace kind) | methods | its own keys |\n|---|---|---|---|---|\n";
  for (const auto& r : recipe_table()) {
    std::string methods, keys;
    for (const auto& m : r.methods) methods += (methods.empty() ? "" : ", ") + m;
    if (!r.methods_why.empty()) methods += " (" + r.methods_why + ")";
    for (const auto& k : r.keys) keys += (keys.empty() ? "`" : ", `") + k.name + "`";
    s += "| `" + r.name + "` | " + r.label + ": " + r.summary + " | " + r.data_help + " (" + r.data_kind + ") | " + methods +
         " | " + (keys.empty() ? "none" : keys) + " |\n";
  }
  return s;
}

std::string usage_of(const Command& c) { return fill(c.usage); }

std::string top_level_usage() {
  std::string s = "hone-cli: fine-tune and inspect Llama-family models (Hone " HONE_VERSION
                  ")\n\nusage: hone-cli <command> [options]      (hone-cli <command> --help, or hone-cli help <command>, for "
                  "details)\n\ncommands:\n";
  size_t width = 0;
  for (const auto& c : commands()) width = std::max(width, c.name.size() + 2);
  for (const auto& c : commands()) s += entry(c.name, width, fill(c.summary));
  s += "\nrecipes (a run config's \"recipe\"; hone-cli help recipes tells their data, methods and keys):\n" + recipe_lines();
  s += "\nmethods (its \"method\"):\n" + method_lines();
  return s;
}

int dispatch(int argc, char** argv) {
  if (argc < 2 || is_help(argv[1])) {
    std::cout << top_level_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "hone-cli " << HONE_VERSION << "\n";
    return 0;
  }
  std::string name = argv[1];
  if (name == "help") {
    if (argc < 3) {
      std::cout << top_level_usage();
      return 0;
    }
    std::string want = argv[2];
    if (want == "recipes") {  // the recipe table; as docs/run-config.md shows it with --markdown
      std::cout << (argc > 3 && !std::strcmp(argv[3], "--markdown") ? recipes_markdown() : recipes_text());
      return 0;
    }
    if (argc > 3 && find_command(want + " " + argv[3])) want += std::string(" ") + argv[3];
    const Command* c = find_command(want);
    if (!c) throw Error("help: no command '" + want + "' (hone-cli --help lists them)");
    std::cout << usage_of(*c);
    return 0;
  }
  // A command under another (bench store) is named by its first two words.
  int start = 2;
  if (argc > 2 && find_command(name + " " + argv[2])) {
    name += std::string(" ") + argv[2];
    start = 3;
  }
  const Command* c = find_command(name);
  if (!c) {
    std::cerr << "error: unknown command '" << name << "' (see hone-cli --help)\n";
    return 2;
  }
  if (c->run_raw) {
    if (argc > start && is_help(argv[start])) {
      std::cout << usage_of(*c);
      return 0;
    }
    return c->run_raw(argc, argv);
  }
  for (int i = start; i < argc; ++i)
    if (is_help(argv[i])) {
      std::cout << usage_of(*c);
      return 0;
    }
  std::string action;
  if (c->action) {
    if (argc <= start) {
      std::cout << usage_of(*c);
      return 2;
    }
    action = argv[start++];
  }
  Args a(argc, argv, start, c->name + (action.empty() ? "" : " " + action), c->values, c->flags, action);
  // Wherever a model folder is taken, a hub name (ORG/NAME[@REV]) is its folder in the hub cache.
  for (const char* k : {"model", "versus-model", "tokenizer"})
    if (a.has(k)) a.set(k, resolve_model_dir(a.get(k)));
  if (static_cast<int>(a.positional().size()) < c->min_positional) {
    std::cout << usage_of(*c);
    return 2;
  }
  return c->run(a);
}

}  // namespace hone::cli
