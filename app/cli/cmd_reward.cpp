// hone-cli reward score: what a trained reward model (a run of recipe "reward") says of a text, of
// a prompt and response, or of every pair of a preference dataset (with the share ranked right).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "data/pairs.h"
#include "train/reward_scorer.h"
#include "store/datasets.h"
#include "store/workspace.h"

namespace hone::cli {

const char* const kRewardUsage = R"(usage: hone-cli reward score --run ID|RUN_DIR (--text T | --prompt P --response R | --dataset ID|NAME [--limit N])
                         [--workspace DIR] [--json]

Scores with a reward model trained by Hone (recipe "reward": the base, its LoRA adapter and the
score head saved beside it as PEFT's modules_to_save "score", task_type SEQ_CLS).
--text       the text as it is (tokenized with the tokenizer's special tokens)
--prompt/--response  a user prompt and an assistant response, rendered with the run's chat
             template exactly as the reward model was trained
--dataset    every pair of a workspace preference dataset (or labelled candidates): the score of the
             chosen and of the rejected response, and the share of pairs ranked right (accuracy)
--json: one JSON object (text/prompt) or one per pair and a summary line (dataset).
)";

namespace {
}  // namespace

int cmd_reward(const Args& a) {
  if (a.action() != "score") throw Error("reward: unknown subcommand \"" + a.action() + "\" (score)");
  const bool json = a.flag("json");
  const std::string workspace = a.get("workspace", default_workspace());
  RewardScorer rs(run_dir_of(a.require("run"), workspace, "reward score"));
  const int given = a.has("text") + a.has("prompt") + a.has("dataset");
  if (given != 1) throw Error("reward score: give one of --text, --prompt (with --response) or --dataset");
  if (a.has("text")) {
    const double r = rs.score_text(a.get("text"));
    if (json) std::cout << nlohmann::json({{"reward", r}}).dump() << "\n";
    else std::cout << r << "\n";
    return 0;
  }
  if (a.has("prompt")) {
    const double r = rs.score({{"user", a.get("prompt")}}, {{"assistant", a.require("response")}});
    if (json) std::cout << nlohmann::json({{"reward", r}, {"chat_format", chat_format_name(rs.format().family)}, {"chat_template", rs.format().name()}}).dump() << "\n";
    else std::cout << r << "\n";
    return 0;
  }
  Workspace ws = open_workspace(workspace);
  const DatasetInfo d = find_dataset(ws, a.get("dataset"));
  if (d.kind != "preference") throw Error("reward score: dataset " + d.name + " is a " + d.kind + " dataset (preference pairs needed)");
  const int64_t limit = a.integer("limit", d.rows);
  int64_t right = 0, n = 0;
  double margin = 0;
  const int64_t chunk = 64;
  for (int64_t at = 0; at < std::min(limit, d.rows); at += chunk) {
    std::vector<std::pair<std::vector<ChatMessage>, std::vector<ChatMessage>>> items;
    std::vector<DatasetRow> rows = read_rows(ws, d.id, at, std::min(std::min(limit, d.rows), at + chunk));
    for (const auto& row : rows) {
      PreferencePair p = preference_from_record(row.data, d.name + " row " + std::to_string(row.position + 1));
      items.push_back({p.prompt, p.chosen});
      items.push_back({p.prompt, p.rejected});
    }
    const std::vector<double> r = rs.score_many(items);
    for (size_t i = 0; i < rows.size(); ++i) {
      const double c = r[2 * i], rj = r[2 * i + 1];
      right += c > rj;
      margin += c - rj;
      ++n;
      if (json)
        std::cout << nlohmann::json({{"row", rows[i].position + 1}, {"chosen", c}, {"rejected", rj}}).dump() << "\n";
      else
        std::cout << "row " << rows[i].position + 1 << ": chosen " << c << ", rejected " << rj << (c > rj ? "" : "  (ranked wrong)")
                  << "\n";
    }
  }
  const double acc = n ? static_cast<double>(right) / n : 0;
  if (json)
    std::cout << nlohmann::json({{"event", "done"}, {"pairs", n}, {"accuracy", acc}, {"mean_margin", n ? margin / n : 0}}).dump()
              << "\n";
  else
    std::cout << n << " pairs: accuracy " << acc << ", mean margin " << (n ? margin / n : 0) << "\n";
  return 0;
}

}  // namespace hone::cli
