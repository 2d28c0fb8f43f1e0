// hone-cli's command table: each command's name, one-line summary, usage text, options and run
// function (commands.cpp). The top-level usage, the dispatch, `hone-cli help COMMAND` and every
// command's --help are generated from it; each command's code and usage text live in its cmd_*.cpp.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/args.h"
#include "store/workspace.h"

namespace hone::cli {

struct Command {
  std::string name;     // "train"; two words for a command under another ("bench store")
  std::string summary;  // one line in `hone-cli --help`; {recipe_names} is filled in
  const char* usage;    // `hone-cli NAME --help`; {recipes} and {methods} are filled in from the recipe table
  std::vector<std::string> values;  // options that take a value (--workspace DIR)
  std::vector<std::string> flags;   // options that do not (--json)
  bool action = false;               // the first word after the name is an action (dataset import, runs list)
  int min_positional = 0;            // fewer words than this after the name (and action): usage, exit 2
  int (*run)(const Args& a) = nullptr;
  int (*run_raw)(int argc, char** argv) = nullptr;  // launch: the rest of its line is another command line
};

const std::vector<Command>& commands();
const Command* find_command(const std::string& name);
// The usage text with the recipe table filled in.
std::string usage_of(const Command& c);
// `hone-cli --help`: the commands, recipes and methods.
std::string top_level_usage();
// `hone-cli help recipes`: the recipe table as text, or in Markdown (docs/run-config.md holds a copy).
std::string recipes_text();
std::string recipes_markdown();
// Parses argv for the command it names and runs it; the exit code.
int dispatch(int argc, char** argv);

// $HONE_WORKSPACE, else $XDG_DATA_HOME/hone, else ~/.local/share/hone.
std::string default_workspace();
// Opens a workspace, saying on stderr which runs it found dead and marked interrupted, and which
// unfinished files it removed.
Workspace open_workspace(const std::string& dir);
// --run ID|RUN_DIR: a run folder as given, or the folder of run ID in the workspace.
std::string run_dir_of(const std::string& run, const std::string& workspace, const std::string& command);
// `runs resume`: continues a recorded run from its newest checkpoint (in cmd_train.cpp).
int cmd_runs_resume(const std::string& workspace, int64_t id, bool json);

// The commands (cmd_*.cpp) and their usage texts.
int cmd_inspect(const Args& a);
int cmd_tokenize(const Args& a);
int cmd_template(const Args& a);
int cmd_score(const Args& a);
int cmd_generate(const Args& a);
int cmd_init_model(const Args& a);
int cmd_train(const Args& a);
int cmd_launch(int argc, char** argv);
int cmd_demo(const Args& a);
int cmd_dataset(const Args& a);
int cmd_runs(const Args& a);
int cmd_label(const Args& a);
int cmd_eval(const Args& a);
int cmd_export(const Args& a);
int cmd_gguf(const Args& a);
int cmd_hub(const Args& a);
int cmd_reward(const Args& a);
int cmd_bench(const Args& a);
int cmd_bench_store(const Args& a);
int cmd_bench_generate(const Args& a);
extern const char* const kInspectUsage;
extern const char* const kTokenizeUsage;
extern const char* const kTemplateUsage;
extern const char* const kScoreUsage;
extern const char* const kGenerateUsage;
extern const char* const kInitModelUsage;
extern const char* const kTrainUsage;
extern const char* const kLaunchUsage;
extern const char* const kDemoUsage;
extern const char* const kDatasetUsage;
extern const char* const kRunsUsage;
extern const char* const kLabelUsage;
extern const char* const kEvalUsage;
extern const char* const kExportUsage;
extern const char* const kGgufUsage;
extern const char* const kHubUsage;
extern const char* const kRewardUsage;
extern const char* const kBenchUsage;
extern const char* const kBenchStoreUsage;

}  // namespace hone::cli
