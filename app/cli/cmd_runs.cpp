// hone-cli runs: list, show, compare and resume the runs recorded in a workspace.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <thread>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "store/runs.h"

namespace hone::cli {

const char* const kRunsUsage = R"(usage: hone-cli runs <action> [options]   (every action takes --workspace DIR)

  list [--json]
  show ID [--json]                                  config, status, final metrics, checkpoints
  compare ID ID... [--metric NAME] [--csv] [--json] the metric per step side by side (default loss),
                                                    the config keys that differ, final metrics
  resume ID [--json]                                continue an interrupted or cancelled run from
                                                    its newest checkpoint
  recover ID [--signal NAME] [--report FILE] [--wait S]
                                                    mark a run whose process crashed interrupted
                                                    once that process is gone (the crash handler
                                                    runs this; waits up to S seconds, default 60)
)";
namespace {


nlohmann::json run_json(const RunInfo& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"method", r.method},
          {"recipe", r.recipe},
          {"base_model", r.base_model},
          {"datasets", nlohmann::json::parse(r.datasets)},
          {"status", r.status},
          {"error", r.error},
          {"started_at", r.started_at},
          {"ended_at", r.ended_at},
          {"run_dir", r.run_dir},
          {"final", nlohmann::json::parse(r.final_metrics)},
          {"notes", r.notes}};
}

// Flattens nested config objects to "lora.r" style keys for diffing.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>* out) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    (*out)[prefix] = j.dump();
  }
}

int64_t parse_id(const std::string& s) {
  try {
    size_t n = 0;
    int64_t v = std::stoll(s, &n);
    if (n == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("\"" + s + "\" is not a run id (hone-cli runs list shows them)");
}

// Opening the workspace marks a run interrupted once its lock is free, which happens when the
// crashed process is fully gone; until then it is polled. The run's error names the signal and the
// report, written in the same update that marks it (a reader polling the status never sees the
// generic reason first); when another process (the GUI listing runs) marked it first, the error is
// corrected afterwards.
int recover(const Args& a) {
  if (a.positional().empty()) throw Error("runs recover: missing run id");
  const int64_t id = parse_id(a.positional()[0]);
  const std::string dir = a.get("workspace", default_workspace());
  const double wait_s = std::stod(a.get("wait", "60"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  std::map<int64_t, std::string> causes;
  if (!a.get("signal", "").empty()) {
    std::string why = "the training process crashed (" + a.get("signal", "") + ")";
    if (!a.get("report", "").empty()) why += "; crash report: " + a.get("report", "");
    causes[id] = why;
  }
  for (;;) {
    Workspace ws(dir, causes);
    const RunInfo r = get_run(ws, id);
    if (r.status != "running" && r.status != "paused") {
      if (r.status == "interrupted" && !causes.empty() && r.error != causes[id]) note_run_error(ws, id, causes[id]);
      return 0;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw Error("runs recover: run " + std::to_string(id) + " is still held by a live process after " + a.get("wait", "60") + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

int cmd_runs(const Args& a) {
  const std::string& action = a.action();
  const bool json = a.flag("json");
  // Resume opens the workspace itself: only rank 0 of a distributed resume may.
  if (action == "resume") {
    if (a.positional().empty()) throw Error("runs resume: missing run id");
    return cmd_runs_resume(a.get("workspace", default_workspace()), parse_id(a.positional()[0]), json);
  }
  if (action == "recover") return recover(a);
  Workspace ws = open_workspace(a.get("workspace", default_workspace()));
  if (action == "list") {
    auto runs = list_runs(ws);
    if (json) {
      nlohmann::json out = nlohmann::json::array();
      for (auto& r : runs) out.push_back(run_json(r));
      std::cout << out.dump() << "\n";
      return 0;
    }
    std::printf("%-5s %-26s %-6s %-5s %-12s %-20s %10s\n", "ID", "NAME", "METHOD", "RECIPE", "STATUS", "STARTED", "FINAL LOSS");
    for (auto& r : runs) {
      auto fin = nlohmann::json::parse(r.final_metrics);
      std::string loss = fin.contains("final_loss") ? std::to_string(fin["final_loss"].get<double>()).substr(0, 7) : "-";
      std::printf("%-5lld %-26s %-6s %-5s %-12s %-20s %10s\n", static_cast<long long>(r.id), r.name.substr(0, 26).c_str(),
                  r.method.c_str(), r.recipe.c_str(), r.status.c_str(), r.started_at.substr(0, 19).c_str(), loss.c_str());
    }
    return 0;
  }
  if (a.positional().empty()) throw Error("runs " + action + ": missing run id");
  if (action == "show") {
    RunInfo r = get_run(ws, parse_id(a.positional()[0]));
    auto arts = run_artifacts(ws, r.id);
    const std::string resume = last_checkpoint(ws, r.id);
    if (json) {
      nlohmann::json j = run_json(r);
      j["config"] = nlohmann::json::parse(r.config);
      j["metrics"] = metric_names(ws, r.id);
      j["artifacts"] = nlohmann::json::array();
      for (auto& x : arts) j["artifacts"].push_back({{"kind", x.kind}, {"step", x.step}, {"path", x.path}, {"bytes", x.bytes}});
      j["resume_from"] = resume;
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::cout << "run " << r.id << " \"" << r.name << "\": " << r.status << (r.error.empty() ? "" : " (" + r.error + ")") << "\n"
              << "method " << r.method << ", recipe " << r.recipe << ", base " << r.base_model << "\n"
              << "data " << r.datasets << "\nstarted " << r.started_at << ", ended " << (r.ended_at.empty() ? "-" : r.ended_at)
              << "\nfolder " << r.run_dir << "\nfinal " << r.final_metrics << "\n";
    if (!r.notes.empty()) std::cout << "notes: " << r.notes << "\n";
    for (auto& x : arts)
      std::cout << x.kind << (x.step >= 0 ? " @" + std::to_string(x.step) : "") << "  " << x.path << "  "
                << x.bytes / 1024 << " KiB\n";
    auto loss = run_metric(ws, r.id, "loss");
    if (!loss.empty()) std::cout << loss.size() << " loss points, last " << loss.back().value << " at step " << loss.back().step << "\n";
    if ((r.status == "interrupted" || r.status == "cancelled" || r.status == "failed") && !resume.empty())
      std::cout << "resume from " << resume << " with: hone-cli runs resume " << r.id << "\n";
    std::cout << "reproduce with: hone-cli train --config " << r.run_dir << "/config.json\n";
    return 0;
  }
  if (action == "compare") {
    const std::string metric = a.get("metric", "loss");
    std::vector<RunInfo> runs;
    for (const auto& p : a.positional()) runs.push_back(get_run(ws, parse_id(p)));
    std::map<int64_t, std::vector<double>> table;  // step -> value per run
    for (size_t i = 0; i < runs.size(); ++i)
      for (auto& pt : run_metric(ws, runs[i].id, metric)) {
        auto& row = table[pt.step];
        row.resize(runs.size(), NAN);
        row[i] = pt.value;
      }
    std::vector<std::map<std::string, std::string>> cfgs(runs.size());
    std::map<std::string, bool> keys;
    for (size_t i = 0; i < runs.size(); ++i) {
      flatten(nlohmann::json::parse(runs[i].config), "", &cfgs[i]);
      for (auto& [k, v] : cfgs[i]) keys[k] = true;
    }
    std::vector<std::string> differ;
    for (auto& [k, _] : keys) {
      bool same = true;
      for (size_t i = 1; i < runs.size(); ++i) same = same && cfgs[i].count(k) && cfgs[0].count(k) && cfgs[i][k] == cfgs[0][k];
      if (!same && k != "name") differ.push_back(k);
    }
    if (a.flag("csv")) {
      std::cout << "step";
      for (auto& r : runs) std::cout << ",run" << r.id;
      std::cout << "\n";
      for (auto& [step, vals] : table) {
        std::cout << step;
        for (size_t i = 0; i < runs.size(); ++i) {
          std::cout << ",";
          if (i < vals.size() && std::isfinite(vals[i])) std::cout << vals[i];
        }
        std::cout << "\n";
      }
      return 0;
    }
    if (json) {
      nlohmann::json j = {{"metric", metric}, {"runs", nlohmann::json::array()}, {"config_diff", nlohmann::json::object()}};
      for (size_t i = 0; i < runs.size(); ++i) {
        nlohmann::json pts = nlohmann::json::array();
        for (auto& pt : run_metric(ws, runs[i].id, metric)) pts.push_back({pt.step, pt.value});
        j["runs"].push_back({{"id", runs[i].id}, {"name", runs[i].name}, {"final", nlohmann::json::parse(runs[i].final_metrics)},
                             {"points", pts}});
      }
      for (auto& k : differ) {
        nlohmann::json vals = nlohmann::json::array();
        for (auto& c : cfgs) vals.push_back(c.count(k) ? nlohmann::json::parse(c[k]) : nlohmann::json());
        j["config_diff"][k] = vals;
      }
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::cout << "config keys that differ:\n";
    for (auto& k : differ) {
      std::cout << "  " << k << ":";
      for (auto& c : cfgs) std::cout << "  " << (c.count(k) ? c[k] : "-");
      std::cout << "\n";
    }
    if (differ.empty()) std::cout << "  (none)\n";
    std::cout << "final:\n";
    for (auto& r : runs) std::cout << "  run " << r.id << " " << r.status << " " << r.final_metrics << "\n";
    std::cout << metric << " by step:\nstep";
    for (auto& r : runs) std::cout << "\trun " << r.id;
    std::cout << "\n";
    // Every step would flood a terminal: show about 20 evenly spaced rows (--csv gives all).
    const size_t every = std::max<size_t>(1, table.size() / 20);
    size_t i = 0;
    for (auto& [step, vals] : table) {
      if (i++ % every != 0 && i != table.size()) continue;
      std::cout << step;
      for (size_t k = 0; k < runs.size(); ++k) {
        if (k < vals.size() && std::isfinite(vals[k])) std::printf("\t%.4f", vals[k]);
        else std::cout << "\t-";
      }
      std::cout << "\n";
    }
    return 0;
  }
  throw Error("unknown runs action \"" + action + "\" (list, show, compare, resume)");
}

}  // namespace hone::cli
