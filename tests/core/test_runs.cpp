// Runs (core/runs): the training events' encoders against their decoders and against what
// `hone-cli train --json` prints, and a recorded run's config given back with its data as named.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/files.h"
#include "runs/run_events.h"
#include "runs/run_launcher.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "test_support.h"
#include "train/recipes.h"

using namespace hone;
using json = nlohmann::json;

namespace {

std::string q(const std::string& s) { return test::shell_quote(s); }

std::map<std::string, double> by_name(const Scalars& s) {
  std::map<std::string, double> m;
  for (const auto& x : s) m[x.name] = x.value;
  return m;
}

RunEvent round_trip(const json& event) {
  RunEvent e;
  EXPECT_TRUE(parse_run_event_line(run_event_line(event), &e)) << event.dump();
  return e;
}

}  // namespace

TEST(RunEvents, EachEventReadsBackAsItWasWritten) {
  StepMetrics m;
  m.step = 7;
  m.total_steps = 40;
  m.epoch = 0.35;
  m.eta_s = 12.5;
  m.rss_bytes = 123 * 1048576LL;
  m.peak_rss_bytes = 456 * 1048576LL;
  m.scalars = {{"loss", 1.25}, {"rewards/margins", -0.5}, {"lr", 2e-4}, {"eval_loss", 3.0}};
  m.plot_hints = {"rewards/margins", "rewards/accuracies"};
  RunEvent s = round_trip(step_event(m, 9));
  ASSERT_EQ(s.kind, RunEvent::Kind::Step);
  EXPECT_EQ(s.run_id, 9);
  EXPECT_EQ(s.step.step, 7);
  EXPECT_EQ(s.step.total_steps, 40);
  EXPECT_DOUBLE_EQ(s.step.epoch, 0.35);
  EXPECT_DOUBLE_EQ(s.step.eta_s, 12.5);
  EXPECT_EQ(s.step.rss_bytes, m.rss_bytes);
  EXPECT_EQ(s.step.peak_rss_bytes, m.peak_rss_bytes);
  EXPECT_EQ(by_name(s.step.scalars), by_name(m.scalars));  // every named scalar, nothing more
  EXPECT_EQ(s.step.plot_hints, m.plot_hints);
  EXPECT_FALSE(step_event(m).contains("run_id"));  // unknown yet (the demo's pre-training)

  RunPlan plan;
  plan.total_steps = 40;
  plan.train_examples = 300;
  plan.eval_examples = 12;
  plan.resumed = "step 20: adapter weights";
  RunEvent st = round_trip(started_event(3, "/w/runs/a", plan));
  ASSERT_EQ(st.kind, RunEvent::Kind::Started);
  EXPECT_EQ(st.run_id, 3);
  EXPECT_EQ(st.run_dir, "/w/runs/a");
  EXPECT_EQ(st.plan.total_steps, 40);
  EXPECT_EQ(st.plan.train_examples, 300);
  EXPECT_EQ(st.plan.eval_examples, 12);
  EXPECT_EQ(st.plan.resumed, plan.resumed);

  RunEvent lg = round_trip(log_event("data: 300 rows \"quoted\"\nand a second line"));
  ASSERT_EQ(lg.kind, RunEvent::Kind::Log);
  EXPECT_EQ(lg.message, "data: 300 rows \"quoted\"\nand a second line");

  TrainResult r;
  r.status = "cancelled";
  r.steps = 20;
  r.final_loss = 0.75;  // best_eval_loss stays NaN: written as null, read back as NaN
  r.seconds = 31.5;
  r.output_dir = "/w/runs/a/adapter";
  r.last_checkpoint = "/w/runs/a/checkpoints/step-000020";
  r.trainable_params = 4096;
  r.error = "stopped";
  r.final_scalars = {{"loss", 0.75}, {"grad_norm", 0.5}};
  RunEvent dn = round_trip(done_event(3, "/w/runs/a", "interrupted", r));
  ASSERT_EQ(dn.kind, RunEvent::Kind::Done);
  EXPECT_EQ(dn.status, "interrupted");  // what the front end reports, not the session's status
  EXPECT_EQ(dn.result.steps, 20);
  EXPECT_DOUBLE_EQ(dn.result.final_loss, 0.75);
  EXPECT_TRUE(std::isnan(dn.result.best_eval_loss));
  EXPECT_DOUBLE_EQ(dn.result.seconds, 31.5);
  EXPECT_EQ(dn.result.output_dir, r.output_dir);
  EXPECT_EQ(dn.result.last_checkpoint, r.last_checkpoint);
  EXPECT_EQ(dn.result.trainable_params, 4096);
  EXPECT_EQ(dn.result.error, "stopped");
  EXPECT_EQ(by_name(dn.result.final_scalars), by_name(r.final_scalars));

  RunEvent other;
  EXPECT_TRUE(parse_run_event_line(R"({"reward": 1.0})", &other));
  EXPECT_EQ(other.kind, RunEvent::Kind::Other);
  EXPECT_FALSE(parse_run_event_line("step 3/40 loss 1.2", &other));
  EXPECT_FALSE(parse_run_event_line("{not json", &other));
}

// What hone-cli train --json prints is the vocabulary the decoder reads (the desktop app reads it
// from hone-cli launch), and a recorded run gives back its config with its data as the user named it.
TEST(RunEvents, TrainJsonLinesDecodeAndTheRunsConfigComesBack) {
  const std::string d = test::temp_dir("events");
  auto init = test::run(std::string(HONE_CLI) + " init-model --preset tiny --tokenizer builtin --out " + q(d + "/m") + " --seed 3");
  ASSERT_EQ(init.code, 0) << init.err;
  std::string rows;
  for (int i = 0; i < 12; ++i)
    rows += json({{"instruction", "Say " + std::to_string(i)}, {"output", "It is " + std::to_string(i) + "."}}).dump() + "\n";
  write_file_atomic(d + "/rows.jsonl", rows);
  {
    Workspace ws(d + "/ws");
    ASSERT_GT(import_dataset(ws, d + "/rows.jsonl", "numbers", {}).dataset_id, 0);
  }
  RunConfig c = preset_run_config("sft", "lora");
  c.name = "events";
  c.base_model = d + "/m";
  c.train_data = {"dataset:numbers"};
  c.max_steps = 3;
  c.batch_size = 2;
  c.lr = 1e-3;
  c.eval_fraction = 0.25;
  write_file_atomic(d + "/run.json", c.to_json().dump(2));
  auto r = test::run(std::string(HONE_CLI) + " train --config " + q(d + "/run.json") + " --workspace " + q(d + "/ws") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int started = 0, steps = 0, done = 0;
  int64_t run_id = 0;
  while (std::getline(lines, line)) {
    RunEvent e;
    ASSERT_TRUE(parse_run_event_line(line, &e)) << line;
    ASSERT_NE(e.kind, RunEvent::Kind::Other) << line;
    if (e.kind == RunEvent::Kind::Started) ++started, run_id = e.run_id;
    if (e.kind == RunEvent::Kind::Step) {
      ++steps;
      EXPECT_EQ(e.step.step, steps);
      EXPECT_EQ(e.step.total_steps, 3);
      EXPECT_TRUE(e.step.has("loss") && e.step.has("lr") && e.step.has("tokens_per_s")) << line;
      EXPECT_EQ(e.run_id, run_id);
    }
    if (e.kind == RunEvent::Kind::Done) {
      ++done;
      EXPECT_EQ(e.status, "completed");
      EXPECT_EQ(e.result.steps, 3);
      EXPECT_TRUE(is_directory(e.result.output_dir)) << e.result.output_dir;
      EXPECT_TRUE(e.result.final_scalars.size() >= 4);
    }
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(done, 1);

  Workspace ws(d + "/ws");
  const RunConfig back = recorded_run_config(ws, run_id);
  EXPECT_EQ(back.train_data, std::vector<std::string>{"dataset:numbers"});  // not the copy in the run's folder
  json want = c.to_json(), got = back.to_json();
  EXPECT_EQ(got, want);
  // The store holds the copy it trained on.
  EXPECT_NE(get_run(ws, run_id).config.find("/data/"), std::string::npos);
}
