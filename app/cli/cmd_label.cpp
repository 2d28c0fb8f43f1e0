// hone-cli label: candidate pairs for preference labelling. generate samples responses to each
// prompt of a dataset with a model (or a run's output) and stores them as a candidates dataset;
// list / set / edit label them; export writes DPO pairs and KTO ratings.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/runs.h"
#include "serve/candidate_dataset.h"

namespace hone::cli {

const char* const kLabelUsage = R"(usage: hone-cli label generate --dataset ID|NAME (--model DIR [--adapter DIR] | --run ID) [--name NAME]
                            [--n 2] [--temperature 0.9] [--top-p 0.95] [--max-new-tokens 128] [--seed S]
                            [--template NAME] [--limit N] [--json]
       hone-cli label list ID|NAME [--json]
       hone-cli label set ID|NAME ROW a|b|tie|both_bad|skip|none [--note TEXT] [--author A]
       hone-cli label edit ID|NAME ROW a|b|c... TEXT [--author A]
       hone-cli label export ID|NAME --out PAIRS.jsonl [--ratings-out KTO.jsonl] [--json]

generate samples --n responses (default 2) to each prompt of a chat, preference or candidates
dataset with a model folder (and a PEFT adapter), or with what a recorded run produced (--run),
and stores them as a new candidates dataset (default name: <dataset>-candidates) of rows
{"prompt", "responses": [...]}. Candidates can also be imported from such JSONL rows with
`hone-cli dataset import`. Ctrl-C cancels; nothing is stored then.
ROW is a row position as `dataset show` prints it (from 0). Labels: a or b (that response is
better), tie, both_bad, skip; none clears. edit replaces a response; the row keeps the original
responses and `list` marks the edited ones.
export writes the pairs labelled a or b as {"prompt","chosen","rejected"} for the dpo and orpo
recipes (ties and both_bad left out and counted), and with --ratings-out the single ratings as KTO
rows {"prompt","completion","label"}: a single response labelled a (true), both responses of a
both_bad pair (false).
The workspace defaults to $HONE_WORKSPACE, else ~/.local/share/hone (--workspace DIR).
)";

namespace {


volatile sig_atomic_t g_stop = 0;

int which_response(const std::string& s) {
  if (s.size() != 1 || s[0] < 'a' || s[0] > 'p') throw Error("label edit: the response is a letter: a, b, c, ...");
  return s[0] - 'a';
}

int cmd_generate_candidates(Workspace& ws, const Args& a) {
  const bool json = a.flag("json");
  CandidateRequest r;
  r.dataset = a.require("dataset");
  if (a.has("run")) r.run_dir = get_run(ws, std::stoll(a.get("run"))).run_dir;
  else r.model_dir = a.require("model"), r.adapter_dir = a.get("adapter");
  r.name = a.get("name");
  r.n = static_cast<int>(a.integer("n", 2));
  r.temperature = a.number("temperature", 0.9);
  r.top_p = a.number("top-p", 0.95);
  r.max_new_tokens = static_cast<int>(a.integer("max-new-tokens", 128));
  r.seed = static_cast<uint64_t>(a.integer("seed", 0));
  r.chat_template = a.get("template");
  r.limit = a.integer("limit", 0);
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &sa, nullptr);
  CandidateOutcome out = make_candidate_dataset(ws, r, [&](int64_t done, int64_t total) {
    if (json) std::cout << nlohmann::json({{"event", "progress"}, {"done", done}, {"total", total}}).dump() << "\n" << std::flush;
    else if (::isatty(STDERR_FILENO)) std::cerr << "\r" << done << "/" << total << " prompts" << std::flush;
    else if (done == total || done % std::max<int64_t>(1, total / 10) == 0) std::cerr << done << "/" << total << " prompts\n";
    return g_stop == 0;
  });
  if (!json && ::isatty(STDERR_FILENO)) std::cerr << "\n";
  if (out.cancelled) {
    std::cerr << "cancelled before all " << out.prompts << " prompts were answered; nothing stored\n";
    return 130;
  }
  nlohmann::json done = {{"event", "done"}, {"dataset_id", out.dataset_id}, {"name", out.name}, {"rows", out.rows}, {"responses_per_prompt", r.n}};
  if (json) std::cout << done.dump() << "\n";
  else std::cout << "stored " << out.rows << " candidate rows of " << r.n << " responses as dataset " << out.dataset_id << " (" << out.name << ")\n";
  return 0;
}

}  // namespace

int cmd_label(const Args& a) {
  const std::string& action = a.action();
  Workspace ws(a.get("workspace", default_workspace()));
  if (action == "generate") return cmd_generate_candidates(ws, a);
  const auto& pos = a.positional();
  if (pos.empty()) throw Error("label " + action + ": missing dataset");
  DatasetInfo d = find_dataset(ws, pos[0]);
  const std::string author = a.get("author", "cli");
  auto row_arg = [&](size_t i) {
    if (pos.size() <= i) throw Error("label " + action + ": missing ROW");
    try {
      return static_cast<int64_t>(std::stoll(pos[i]));
    } catch (const std::exception&) {
      throw Error("label " + action + ": ROW must be a number (got \"" + pos[i] + "\")");
    }
  };
  if (action == "list") {
    auto rows = list_candidates(ws, d.id);
    if (a.flag("json")) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& c : rows)
        out.push_back({{"row", c.position}, {"row_id", c.row_id}, {"label", c.label.empty() ? "none" : c.label}, {"note", c.note},
                       {"author", c.author}, {"edited", c.edited}, {"data", nlohmann::json::parse(c.data)}});
      std::cout << out.dump() << "\n";
      return 0;
    }
    for (const auto& c : rows) {
      auto j = nlohmann::json::parse(c.data);
      std::string p = j["prompt"].is_string() ? j["prompt"].get<std::string>() : j["prompt"].back()["content"].get<std::string>();
      if (p.size() > 60) p = p.substr(0, 57) + "...";
      std::printf("%5lld  %-9s %s%s%s\n", static_cast<long long>(c.position), (c.label.empty() ? "none" : c.label).c_str(), p.c_str(),
                  c.edited.empty() ? "" : "  (edited)", c.note.empty() ? "" : ("  # " + c.note).c_str());
    }
    return 0;
  }
  if (action == "set") {
    if (pos.size() < 3) throw Error("label set: usage: label set ID ROW a|b|tie|both_bad|skip|none");
    label_candidate(ws, d.id, row_arg(1), pos[2], a.get("note"), author);
    return 0;
  }
  if (action == "edit") {
    if (pos.size() < 4) throw Error("label edit: usage: label edit ID ROW a|b TEXT");
    edit_response(ws, d.id, row_arg(1), which_response(pos[2]), pos[3], author);
    return 0;
  }
  if (action == "export") {
    auto rep = export_labels(ws, d.id, a.require("out"), a.get("ratings-out"));
    nlohmann::json j = {{"pairs", rep.pairs}, {"ratings", rep.ratings}, {"ties", rep.ties}, {"both_bad", rep.both_bad},
                        {"skipped", rep.skipped}, {"unlabelled", rep.unlabelled}};
    if (a.flag("json")) std::cout << j.dump() << "\n";
    else std::cout << "wrote " << rep.pairs << " pairs" << (a.has("ratings-out") ? " and " + std::to_string(rep.ratings) + " ratings" : "")
                   << "; left out " << rep.ties << " ties, " << rep.both_bad << " both bad, " << rep.skipped << " skipped, "
                   << rep.unlabelled << " unlabelled\n";
    return 0;
  }
  throw Error("label: unknown action \"" + action + "\" (generate, list, set, edit, export)");
}

}  // namespace hone::cli
