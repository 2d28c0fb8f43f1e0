// hone-cli label: preference labelling. generate samples responses to each prompt of a dataset
// with one or two models (or runs) and stores them as a candidates dataset; list / set / edit
// label them; export writes DPO pairs and KTO ratings; export-verdicts / merge / agreement let a
// team label the same rows and measure how far they agree.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
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
                            [--versus-model DIR [--versus-adapter DIR] | --versus-run ID]
                            [--n 4] [--temperature 1.0] [--top-p 0.95] [--top-k 50] [--max-new-tokens 128]
                            [--seed S] [--resample 4] [--template NAME] [--limit N] [--json]
       hone-cli label list ID|NAME [--json]
       hone-cli label set ID|NAME ROW VERDICT [--note TEXT] [--annotator NAME]
       hone-cli label edit ID|NAME ROW a|b|c... TEXT [--annotator NAME]
       hone-cli label export ID|NAME [--out PAIRS.jsonl] [--ratings-out KTO.jsonl] [--json]
       hone-cli label export-verdicts ID|NAME --out VERDICTS.jsonl [--annotator NAME]
       hone-cli label merge ID|NAME VERDICTS.jsonl [--json]
       hone-cli label agreement ID|NAME [--between A,B] [--json]

generate samples --n responses (2-8, default 4) to each prompt of a prompts, chat, preference or
candidates dataset with a model folder (and a PEFT adapter), or with what a recorded run produced
(--run), and stores them as a new candidates dataset (default name: <dataset>-candidates, or -2,
-3, ... when taken) of rows
{"prompt", "responses": [...]}. With a second source (--versus-model or --versus-run) half of
each prompt's responses come from each, in a shuffled order, and "sources" records which wrote
which: `label export` then tallies how often each source was preferred. A response that repeats
an earlier one for its prompt (whitespace aside) is drawn again with another seed up to
--resample times; pairs still identical are reported and shown as such. Candidates can also be
imported from JSONL rows with `hone-cli dataset import`. Ctrl-C cancels; nothing is stored then.
ROW is a row position as `dataset show` prints it (from 0). Verdicts on candidates: a or b (that
response is better), tie, both_bad, skip, or a ranking of n responses, best first, as letters
("cab" or "c,a,b"; listing two, best and worst, is a best/worst pick); none clears. On a plain
preference dataset: keep, flip (the rejected answer is the better one), tie, drop, skip. Each
verdict is the annotator's own (--annotator, default $HONE_ANNOTATOR, else $USER); a row's label is
its newest verdict. edit replaces a response; the row keeps the original responses.
export writes the pairs that can train as {"prompt","chosen","rejected"} for the dpo and orpo
recipes (a ranking gives every better-worse pair of its order; ties, both_bad, identical, dropped,
skipped and unlabelled rows are left out and counted; without --out it only counts), and with
--ratings-out the single ratings as KTO rows {"prompt","completion","label"}.
export-verdicts writes the dataset's verdicts (or one annotator's) for another workspace; merge
adds such a file (rows matched by their content; the newer verdict of an annotator wins);
agreement reports Cohen's kappa between two annotators (--between, else the two with the most
verdicts) over the rows both judged and lists the rows where they differ.
The workspace defaults to $HONE_WORKSPACE, else ~/.local/share/hone (--workspace DIR).
)";

namespace {


volatile sig_atomic_t g_stop = 0;

int which_response(const std::string& s) {
  if (s.size() != 1 || s[0] < 'a' || s[0] > 'p') throw Error("label edit: the response is a letter: a, b, c, ...");
  return s[0] - 'a';
}

std::string annotator_of(const Args& a) {
  if (a.has("annotator")) return a.get("annotator");
  if (a.has("author")) return a.get("author");
  for (const char* v : {"HONE_ANNOTATOR", "USER"})
    if (const char* e = std::getenv(v); e && *e) return e;
  return "cli";
}

// "cab", "c,a,b" or "c a b" -> {2, 0, 1}.
std::vector<int> ranking_of(const std::string& s) {
  std::vector<int> out;
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '>') continue;
    if (c < 'a' || c > 'h') throw Error("label set: a ranking lists responses as letters a-h, best first (got \"" + s + "\")");
    out.push_back(c - 'a');
  }
  return out;
}

int cmd_generate_candidates(Workspace& ws, const Args& a) {
  const bool json = a.flag("json");
  CandidateRequest r;
  r.dataset = a.require("dataset");
  if (a.has("run")) r.run_dir = get_run(ws, std::stoll(a.get("run"))).run_dir;
  else r.model_dir = a.require("model"), r.adapter_dir = a.get("adapter");
  if (a.has("versus-run")) r.second.run_dir = get_run(ws, std::stoll(a.get("versus-run"))).run_dir;
  else if (a.has("versus-model")) r.second.model_dir = a.get("versus-model"), r.second.adapter_dir = a.get("versus-adapter");
  r.name = a.get("name");
  r.n = static_cast<int>(a.integer("n", r.n));
  r.temperature = a.number("temperature", r.temperature);
  r.top_p = a.number("top-p", r.top_p);
  r.top_k = static_cast<int>(a.integer("top-k", r.top_k));
  r.resample = static_cast<int>(a.integer("resample", r.resample));
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
  nlohmann::json done = {{"event", "done"},  {"dataset_id", out.dataset_id}, {"name", out.name},
                         {"rows", out.rows}, {"responses_per_prompt", r.n},    {"resampled", out.resampled},
                         {"identical_rows", out.identical_rows}};
  if (json) std::cout << done.dump() << "\n";
  else
    std::cout << "stored " << out.rows << " candidate rows of " << r.n << " responses as dataset " << out.dataset_id << " (" << out.name
              << "); " << out.resampled << " responses drawn again for repeating another, " << out.identical_rows
              << " rows still hold responses that read the same (marked on the Label page; a higher --temperature or a "
                 "second source gives more varied ones)\n";
  return 0;
}

}  // namespace

int cmd_label(const Args& a) {
  const std::string& action = a.action();
  Workspace ws = open_workspace(a.get("workspace", default_workspace()));
  if (action == "generate") return cmd_generate_candidates(ws, a);
  const auto& pos = a.positional();
  if (pos.empty()) throw Error("label " + action + ": missing dataset");
  DatasetInfo d = find_dataset(ws, pos[0]);
  const std::string author = annotator_of(a);
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
        out.push_back({{"row", c.position},        {"row_id", c.row_id},   {"label", c.label.empty() ? "none" : c.label},
                       {"ranking", c.ranking},     {"note", c.note},       {"annotator", c.author},
                       {"verdicts", c.verdicts},   {"edited", c.edited},   {"identical", c.identical},
                       {"data", nlohmann::json::parse(c.data)}});
      std::cout << out.dump() << "\n";
      return 0;
    }
    for (const auto& c : rows) {
      auto j = nlohmann::json::parse(c.data);
      std::string p = j["prompt"].is_string() ? j["prompt"].get<std::string>() : j["prompt"].back()["content"].get<std::string>();
      if (p.size() > 60) p = p.substr(0, 57) + "...";
      std::string l = c.label.empty() ? "none" : c.label;
      if (!c.ranking.empty()) {
        l = "";
        for (int k : c.ranking) l += static_cast<char>('a' + k);
      }
      std::printf("%5lld  %-9s %s%s%s%s\n", static_cast<long long>(c.position), l.c_str(), p.c_str(),
                  c.identical.empty() ? "" : "  (identical responses)", c.edited.empty() ? "" : "  (edited)",
                  c.note.empty() ? "" : ("  # " + c.note).c_str());
    }
    return 0;
  }
  if (action == "set") {
    if (pos.size() < 3) throw Error("label set: usage: label set ID ROW a|b|tie|both_bad|skip|none|RANKING (or keep|flip|tie|drop|skip)");
    const std::string v = pos[2];
    static const char* const kWords[] = {"a", "b", "tie", "both_bad", "skip", "none", "keep", "flip", "drop", "chosen", "rejected"};
    bool word = false;
    for (const char* w : kWords) word = word || v == w;
    label_candidate(ws, d.id, row_arg(1), v, a.get("note"), author, word ? std::vector<int>{} : ranking_of(v));
    return 0;
  }
  if (action == "edit") {
    if (pos.size() < 4) throw Error("label edit: usage: label edit ID ROW a|b TEXT");
    edit_response(ws, d.id, row_arg(1), which_response(pos[2]), pos[3], author);
    return 0;
  }
  if (action == "export") {
    auto rep = export_labels(ws, d.id, a.get("out"), a.get("ratings-out"));
    nlohmann::json j = {{"pairs", rep.pairs},          {"ratings", rep.ratings}, {"ties", rep.ties},
                        {"both_bad", rep.both_bad},    {"skipped", rep.skipped}, {"dropped", rep.dropped},
                        {"unlabelled", rep.unlabelled}, {"identical", rep.identical}, {"invalid", rep.invalid},
                        {"wins", rep.wins},             {"compared", rep.compared}};
    if (a.flag("json")) {
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::cout << (a.has("out") ? "wrote " : "would write ") << rep.summary() << "\n";
    if (a.has("ratings-out")) std::cout << "wrote " << rep.ratings << " KTO ratings to " << a.get("ratings-out") << "\n";
    for (const auto& [src, n] : rep.compared)
      std::printf("  %-32s preferred in %lld of %lld comparisons (%.0f%%)\n", src.c_str(), static_cast<long long>(rep.wins[src]),
                  static_cast<long long>(n), n ? 100.0 * static_cast<double>(rep.wins[src]) / static_cast<double>(n) : 0.0);
    return 0;
  }
  if (action == "export-verdicts") {
    const int64_t n = export_verdicts(ws, d.id, a.require("out"), a.get("annotator"));
    std::cout << "wrote " << n << " verdicts to " << a.get("out") << "\n";
    return 0;
  }
  if (action == "merge") {
    if (pos.size() < 2) throw Error("label merge: usage: label merge ID VERDICTS.jsonl");
    MergeReport m = merge_verdicts(ws, d.id, pos[1]);
    if (a.flag("json")) {
      std::cout << nlohmann::json({{"added", m.added}, {"updated", m.updated}, {"kept", m.kept}, {"unmatched", m.unmatched},
                                   {"annotators", m.annotators}})
                       .dump()
                << "\n";
      return 0;
    }
    std::string who;
    for (const auto& x : m.annotators) who += (who.empty() ? "" : ", ") + x;
    std::cout << "merged " << m.added << " new and " << m.updated << " newer verdicts" << (who.empty() ? "" : " from " + who) << "; kept "
              << m.kept << " where this workspace's were as new; " << m.unmatched << " lines matched no row of \"" << d.name << "\"\n";
    return 0;
  }
  if (action == "agreement") {
    std::string x, y;
    if (a.has("between")) {
      const std::string b = a.get("between");
      const size_t comma = b.find(',');
      if (comma == std::string::npos) throw Error("label agreement: --between takes two names, A,B");
      x = b.substr(0, comma), y = b.substr(comma + 1);
    }
    Agreement g = label_agreement(ws, d.id, x, y);
    if (a.flag("json")) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& r : g.disagreements) rows.push_back({{"row", r.position}, {g.a, r.a}, {g.b, r.b}});
      std::cout << nlohmann::json({{"a", g.a}, {"b", g.b}, {"rows", g.both}, {"agree", g.agree}, {"observed", g.observed},
                                   {"expected", g.expected}, {"kappa", std::isnan(g.kappa) ? nlohmann::json() : nlohmann::json(g.kappa)},
                                   {"categories", g.categories}, {"confusion", g.confusion}, {"disagreements", rows}})
                       .dump()
                << "\n";
      return 0;
    }
    std::printf("%s and %s both judged %lld rows and agree on %lld: observed %.3f, expected by chance %.3f, Cohen's kappa %s\n",
                g.a.c_str(), g.b.c_str(), static_cast<long long>(g.both), static_cast<long long>(g.agree), g.observed, g.expected,
                std::isnan(g.kappa) ? "undefined (one label throughout)" : std::to_string(g.kappa).substr(0, 6).c_str());
    if (!g.disagreements.empty()) std::printf("rows where they differ (row: %s / %s):\n", g.a.c_str(), g.b.c_str());
    for (const auto& r : g.disagreements)
      std::printf("  %5lld  %s / %s\n", static_cast<long long>(r.position), r.a.c_str(), r.b.c_str());
    return 0;
  }
  throw Error("label: unknown action \"" + action + "\" (generate, list, set, edit, export, export-verdicts, merge, agreement)");
}

}  // namespace hone::cli
