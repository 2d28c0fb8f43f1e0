// The demo's workspace, with nothing downloaded: a small Llama-shaped base model with Hone's own
// tokenizer, pre-trained on synthetic plain text until it has four skills, and its datasets
// (chat instructions for the skills, preference pairs of right and wrong answers). `hone-cli demo`
// and the desktop app's "Build the demo model" both build it here. Torch-free.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/workspace.h"
#include "train/trainer.h"

namespace hone {

struct DemoBaseOptions {
  std::string workspace;
  uint64_t seed = 0;
  int64_t pretrain_steps = 0;  // 0: rounds of 200 steps until the base has learnt the skills
  double pretrain_lr = 3e-3;
  bool rebuild = false;        // build it again even when the cached one matches
};

struct DemoHooks {
  LogFn log;                              // a line per stage and every 250 steps
  std::function<bool()> stop_requested;  // polled between micro-batches; a stop throws Interrupted
};

struct DemoBase {
  std::string dir;       // <workspace>/demo/skills-base: a Hugging Face model folder
  bool rebuilt = false;  // built now (false: the cached base matched the options)
};

// <workspace>/demo/skills-base.
std::string demo_base_dir(const std::string& workspace);
// Whether a base built with these options is there (what build_demo_base would reuse).
bool demo_base_cached(const DemoBaseOptions& o);
// Builds the base unless a matching one is cached (minutes on 2 cores; stops on request).
DemoBase build_demo_base(const DemoBaseOptions& o, const DemoHooks& hooks = {});

// The demo's datasets in the workspace: "demo-skills" (instruction rows), "demo-preferences"
// (prompt/chosen/rejected), and two evaluation suites on held-out words: "demo-skills-test" (100
// instruction rows: a generate suite, the demo's before/after accuracy) and "demo-skills-choice"
// (200 questions: the right answer among a plausible wrong one and another word's answer). Written
// next to the base and imported unless present; `replace` imports them again (a rebuilt base comes
// with new data). Returns the dataset's name.
enum class DemoData { Skills, Preferences, SkillsTest, SkillsChoice };
std::string ensure_demo_dataset(Workspace& ws, DemoData which, uint64_t seed, bool replace);

// The RL demos' supervised warm-up is a ladder of runs from the base, each `step` longer than the
// last, each probed per skill on unseen words: RL cannot reinforce a skill the policy never gets
// right, and has little to show on one it has mastered, so the first round whose worst skill is
// right on at least `until` of its probes is taken. The ladder stops at `max_steps`.
struct WarmupRound {
  int64_t steps = 0;
  double worst = 0;  // the lowest share of a skill's probes answered right
};
struct WarmupDecision {
  int64_t next = 0;   // steps of the next round to run; 0: stop
  int64_t start = 0;  // when stopping: the round RL starts from
  std::string why;    // when stopping: "passed" or "cap"
};
WarmupDecision next_warmup(const std::vector<WarmupRound>& rounds, double until, int64_t step, int64_t max_steps);

}  // namespace hone
