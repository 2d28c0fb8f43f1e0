// Training events as JSON lines (see run_events.h): each encoder and its decoder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs/run_events.h"

#include <cmath>

namespace hone {
namespace {

constexpr double kMiB = 1048576.0;

// The fields of a step event that are not named scalars.
bool step_field(const std::string& k) {
  return k == "event" || k == "step" || k == "total_steps" || k == "epoch" || k == "eta_s" || k == "rss_mb" ||
         k == "peak_rss_mb" || k == "run_id" || k == "plot_hints";
}

// JSON writes NaN (no loss yet, no evaluation) as null.
double number(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

}  // namespace

nlohmann::json started_event(int64_t run_id, const std::string& run_dir, const RunPlan& plan) {
  nlohmann::json j = {{"event", "started"}, {"run_id", run_id}, {"run_dir", run_dir}, {"total_steps", plan.total_steps},
                      {"train_examples", plan.train_examples}, {"eval_examples", plan.eval_examples}};
  if (!plan.resumed.empty()) j["resumed"] = plan.resumed;
  return j;
}

nlohmann::json step_event(const StepMetrics& m, int64_t run_id) {
  nlohmann::json j = {{"event", "step"}, {"step", m.step}, {"total_steps", m.total_steps}, {"epoch", m.epoch}};
  for (const auto& x : m.scalars) j[x.name] = x.value;
  j["eta_s"] = m.eta_s;
  j["rss_mb"] = static_cast<double>(m.rss_bytes) / kMiB;
  j["peak_rss_mb"] = static_cast<double>(m.peak_rss_bytes) / kMiB;
  if (!m.plot_hints.empty()) j["plot_hints"] = m.plot_hints;  // the recipe's own metrics, for plots
  if (run_id > 0) j["run_id"] = run_id;
  return j;
}

nlohmann::json log_event(const std::string& message) { return {{"event", "log"}, {"message", message}}; }

nlohmann::json done_event(int64_t run_id, const std::string& run_dir, const std::string& status, const TrainResult& r) {
  nlohmann::json j = {{"event", "done"},         {"run_id", run_id},         {"status", status},
                      {"steps", r.steps},        {"final_loss", r.final_loss}, {"best_eval_loss", r.best_eval_loss},
                      {"seconds", r.seconds},    {"run_dir", run_dir},       {"output", r.output_dir},
                      {"last_checkpoint", r.last_checkpoint}, {"trainable_params", r.trainable_params}};
  nlohmann::json fin = nlohmann::json::object();
  for (const auto& x : r.final_scalars) fin[x.name] = x.value;
  j["metrics"] = fin;
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

std::string run_event_line(const nlohmann::json& event) { return event.dump() + "\n"; }

RunEvent parse_run_event(const nlohmann::json& j) {
  RunEvent e;
  if (!j.is_object()) return e;
  const std::string ev = j.value("event", "");
  e.run_id = j.contains("run_id") && j["run_id"].is_number_integer() ? j["run_id"].get<int64_t>() : 0;
  e.run_dir = j.value("run_dir", "");
  if (ev == "started") {
    e.kind = RunEvent::Kind::Started;
    e.plan.total_steps = j.value("total_steps", int64_t{0});
    e.plan.train_examples = j.value("train_examples", int64_t{0});
    e.plan.eval_examples = j.value("eval_examples", int64_t{0});
    e.plan.resumed = j.value("resumed", "");
  } else if (ev == "step") {
    e.kind = RunEvent::Kind::Step;
    StepMetrics& m = e.step;
    m.step = j.value("step", int64_t{0});
    m.total_steps = j.value("total_steps", int64_t{0});
    m.epoch = j.value("epoch", 0.0);
    m.eta_s = j.value("eta_s", 0.0);
    m.rss_bytes = static_cast<int64_t>(std::llround(j.value("rss_mb", 0.0) * kMiB));
    m.peak_rss_bytes = static_cast<int64_t>(std::llround(j.value("peak_rss_mb", 0.0) * kMiB));
    if (j.contains("plot_hints") && j["plot_hints"].is_array())
      for (const auto& h : j["plot_hints"])
        if (h.is_string()) m.plot_hints.push_back(h.get<std::string>());
    for (const auto& [k, v] : j.items())
      if (!step_field(k) && (v.is_number() || v.is_null())) m.scalars.push_back({k, v.is_null() ? NAN : v.get<double>()});
  } else if (ev == "log") {
    e.kind = RunEvent::Kind::Log;
    e.message = j.value("message", "");
  } else if (ev == "done") {
    e.kind = RunEvent::Kind::Done;
    e.status = j.value("status", "failed");
    TrainResult& r = e.result;
    r.status = e.status;
    r.steps = j.value("steps", int64_t{0});
    r.final_loss = number(j, "final_loss");
    r.best_eval_loss = number(j, "best_eval_loss");
    r.seconds = j.value("seconds", 0.0);
    r.output_dir = j.value("output", "");
    r.last_checkpoint = j.value("last_checkpoint", "");
    r.trainable_params = j.value("trainable_params", int64_t{0});
    r.error = j.value("error", "");
    if (j.contains("metrics") && j["metrics"].is_object())
      for (const auto& [k, v] : j["metrics"].items())
        if (v.is_number() || v.is_null()) r.final_scalars.push_back({k, v.is_null() ? NAN : v.get<double>()});
  }
  return e;
}

bool parse_run_event_line(const std::string& line, RunEvent* out) {
  if (line.empty() || line[0] != '{') return false;
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  *out = parse_run_event(j);
  return true;
}

}  // namespace hone
