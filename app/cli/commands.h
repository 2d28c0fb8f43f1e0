// hone-cli command entry points; each returns the process exit code.
#pragma once
#include <string>

namespace hone::cli {

// $HONE_WORKSPACE, else $XDG_DATA_HOME/hone, else ~/.local/share/hone.
std::string default_workspace();

int cmd_inspect(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_init_model(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_demo(int argc, char** argv);

}  // namespace hone::cli
