// hone-cli command entry points; each returns the process exit code.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/metrics.h"

namespace hone {
class Workspace;
}

namespace hone::cli {

// $HONE_WORKSPACE, else $XDG_DATA_HOME/hone, else ~/.local/share/hone.
std::string default_workspace();

int cmd_inspect(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_template(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_init_model(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_bench_store(int argc, char** argv);
int cmd_demo(int argc, char** argv);
int cmd_dataset(int argc, char** argv);
int cmd_runs(int argc, char** argv);
int cmd_label(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_gguf(int argc, char** argv);
int cmd_reward(int argc, char** argv);
int cmd_launch(int argc, char** argv);
// --run ID|RUN_DIR: a run folder as given, or the folder of run ID in the workspace.
std::string run_dir_of(const std::string& run, const std::string& workspace, const std::string& command);
// `runs resume`: continues a recorded run from its newest checkpoint (in cmd_train.cpp).
int cmd_runs_resume(const std::string& workspace, int64_t id, bool json);
// A training step as one JSON line: every named scalar it recorded (cmd_train.cpp).
nlohmann::json step_json(const StepMetrics& m);

}  // namespace hone::cli
