// hone-cli over a workspace: dataset import/list/show/validate/export, runs list/show/compare, and
// the crash case: `kill -9` of a recording training process at several moments leaves a database
// that passes integrity_check, keeps its committed metrics, and shows the run as interrupted.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <map>
#include <sstream>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/runs.h"
#include "test_support.h"

using namespace hone;
using json = nlohmann::json;
using test::shell_quote;

using test::cli;

namespace {

// A small model with Hone's own tokenizer and an instruction file.
const test::CliFixture& fixture() {
  static test::CliFixture f = test::make_cli_fixture("cli-store", 3, [](int i) {
    return json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}});
  });
  return f;
}

std::string write_config(const std::string& path, const std::string& name, int steps, double lr, int save_every) {
  const auto& f = fixture();
  json c = {{"name", name}, {"base_model", f.model}, {"method", "lora"}, {"train_data", {f.data}}, {"max_steps", steps},
            {"batch_size", 2}, {"max_seq_len", 48}, {"lr", lr}, {"save_every", save_every}, {"seed", 1}};
  std::ofstream(path) << c.dump(2);
  return path;
}

std::string ws_arg() { return " --workspace " + shell_quote(fixture().ws); }

// Starts `hone-cli ARGS... --workspace ws` with stdout and stderr in `log`, without core dumps.
pid_t start_cli(std::vector<std::string> args, const std::string& ws, const std::string& log) {
  args.insert(args.begin(), HONE_CLI);
  args.push_back("--workspace");
  args.push_back(ws);
  const pid_t pid = ::fork();
  if (pid == 0) {
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(HONE_CLI, argv.data());
    ::_exit(127);
  }
  return pid;
}
pid_t start_train(const std::string& cfg, const std::string& ws, const std::string& log) {
  return start_cli({"train", "--json", "--config", cfg}, ws, log);
}

}  // namespace

TEST(CliStore, DatasetCommandsOnAFreshWorkspace) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/fresh");
  auto imp = cli("dataset import " + shell_quote(f.data) + " --name numbers --json" + ws);
  ASSERT_EQ(imp.code, 0) << imp.err;
  auto ij = json::parse(imp.out);
  EXPECT_EQ(ij["imported"], 200);
  EXPECT_EQ(ij["format"], "alpaca");

  auto bad = f.dir + "/bad.jsonl";
  std::ofstream(bad) << R"({"instruction":"a","output":"b"})" "\n" R"({"instruction":"c","output":"d"})" "\n"
                     << R"({"instruction":"e", "output": )" "\n";
  auto rb = cli("dataset import " + shell_quote(bad) + " --name bad" + ws);
  EXPECT_EQ(rb.code, 1);
  EXPECT_NE(rb.err.find("bad.jsonl:3: malformed JSON"), std::string::npos) << rb.err;
  auto v = cli("dataset validate " + shell_quote(bad) + " --json");
  EXPECT_EQ(v.code, 1);
  EXPECT_EQ(json::parse(v.out)["errors"], 1);

  auto list = json::parse(cli("dataset list --json" + ws).out);
  ASSERT_EQ(list.size(), 1u);  // the malformed file imported nothing
  EXPECT_EQ(list[0]["rows"], 200);

  auto show = cli("dataset show numbers --rows 5:8 --json" + ws);
  ASSERT_EQ(show.code, 0) << show.err;
  auto sj = json::parse(show.out);
  ASSERT_EQ(sj["items"].size(), 3u);
  EXPECT_EQ(sj["items"][0]["position"], 5);
  EXPECT_EQ(sj["items"][0]["data"]["messages"][1]["content"], "Number 5.");

  auto st = cli("dataset stats numbers --tokenizer " + shell_quote(f.model) + " --json" + ws);
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_GT(json::parse(st.out)["tokens"]["max"].get<int>(), 5);

  const std::string out = f.dir + "/export.jsonl";
  ASSERT_EQ(cli("dataset export numbers --out " + shell_quote(out) + ws).code, 0);
  std::ifstream in(out);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(json::parse(first), json::parse(R"({"messages":[{"role":"user","content":"Say number 0"},{"role":"assistant","content":"Number 0."}]})"));
  auto missing = cli("dataset show nosuch" + ws);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no dataset \"nosuch\""), std::string::npos);
}

// Parquet through the CLI: a DuckDB-written file imports as its JSONL does, exports to Parquet
// (zstd) and that export imports again to the same rows; a bad codec is named.
TEST(CliStore, DatasetParquetImportExportRoundTrip) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/parquet");
  const std::string src = test::source("tests/data/parquet/preference_zstd.parquet");
  auto imp = cli("dataset import " + shell_quote(src) + " --name pq --json" + ws);
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(json::parse(imp.out)["imported"], 40);
  EXPECT_EQ(json::parse(imp.out)["kind"], "preference");
  auto jl = cli("dataset import " + shell_quote(test::source("tests/data/parquet/preference.jsonl")) + " --name jl --json" + ws);
  ASSERT_EQ(jl.code, 0) << jl.err;
  const std::string out = f.dir + "/pq-export.parquet";
  auto ex = cli("dataset export pq --out " + shell_quote(out) + " --compression zstd --json" + ws);
  ASSERT_EQ(ex.code, 0) << ex.err;
  EXPECT_EQ(json::parse(ex.out)["rows"], 40);
  ASSERT_EQ(cli("dataset import " + shell_quote(out) + " --name back" + ws).code, 0);
  auto rows = [&](const std::string& name) {
    json items = json::parse(cli("dataset show " + name + " --rows 0:100 --json" + ws).out)["items"];
    json data = json::array();
    for (const auto& it : items) data.push_back(it["data"]);
    return data;
  };
  EXPECT_EQ(rows("pq").size(), 40u);
  EXPECT_EQ(rows("pq"), rows("jl"));
  EXPECT_EQ(rows("back"), rows("pq"));
  auto bad = cli("dataset export pq --out " + shell_quote(f.dir + "/x.parquet") + " --compression lz4" + ws);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("unknown Parquet compression \"lz4\""), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/x.parquet"));
}

TEST(CliStore, TrainRecordsRunsThatCompare) {
  const auto& f = fixture();
  auto a = cli("train --json --config " + shell_quote(write_config(f.dir + "/a.json", "lr-low", 6, 1e-4, 3)) + ws_arg());
  ASSERT_EQ(a.code, 0) << a.err;
  auto b = cli("train --json --config " + shell_quote(write_config(f.dir + "/b.json", "lr-high", 6, 1e-3, 3)) + ws_arg());
  ASSERT_EQ(b.code, 0) << b.err;
  auto last_line = [](const std::string& s) {
    auto p = s.rfind('\n', s.size() - 2);
    return json::parse(s.substr(p == std::string::npos ? 0 : p + 1));
  };
  const int64_t ia = last_line(a.out)["run_id"], ib = last_line(b.out)["run_id"];
  // Every per-step loss printed by the run is what the store holds.
  std::vector<double> printed;
  std::istringstream lines(a.out);
  for (std::string l; std::getline(lines, l);) {
    auto j = json::parse(l);
    if (j["event"] == "step") {
      printed.push_back(j["loss"]);
      // The figure the Train page shows: the run's peak, never below the resident size now.
      EXPECT_GT(j["rss_mb"].get<double>(), 50.0);  // libtorch alone maps more
      EXPECT_GE(j["peak_rss_mb"].get<double>(), j["rss_mb"].get<double>());
    }
  }
  auto show = json::parse(cli("runs show " + std::to_string(ia) + " --json" + ws_arg()).out);
  EXPECT_EQ(show["status"], "completed");
  EXPECT_EQ(show["config"]["lr"], 1e-4);
  int checkpoints = 0, adapters = 0;
  for (auto& x : show["artifacts"]) {
    checkpoints += x["kind"] == "checkpoint";
    adapters += x["kind"] == "adapter";
    EXPECT_GT(x["bytes"].get<int64_t>(), 0);
  }
  EXPECT_EQ(checkpoints, 2);  // steps 3 and 6
  EXPECT_EQ(adapters, 1);
  auto cmp = cli("runs compare " + std::to_string(ia) + " " + std::to_string(ib) + " --json" + ws_arg());
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  auto cj = json::parse(cmp.out);
  ASSERT_EQ(cj["runs"][0]["points"].size(), printed.size());
  for (size_t i = 0; i < printed.size(); ++i) EXPECT_DOUBLE_EQ(cj["runs"][0]["points"][i][1].get<double>(), printed[i]);
  EXPECT_TRUE(cj["config_diff"].contains("lr"));
  EXPECT_FALSE(cj["config_diff"].contains("max_steps"));  // only keys that differ
  auto csv = cli("runs compare " + std::to_string(ia) + " " + std::to_string(ib) + " --csv" + ws_arg());
  EXPECT_EQ(csv.out.substr(0, csv.out.find('\n')), "step,run" + std::to_string(ia) + ",run" + std::to_string(ib));
  auto list = json::parse(cli("runs list --json" + ws_arg()).out);
  EXPECT_GE(list.size(), 2u);
}

TEST(CliStore, TrainsOnAWorkspaceDataset) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/ds-ws");
  ASSERT_EQ(cli("dataset import " + shell_quote(f.data) + " --name my-data" + ws).code, 0);
  json c = {{"name", "from-ws"}, {"base_model", f.model}, {"method", "lora"}, {"train_data", "dataset:my-data"},
            {"max_steps", 2}, {"batch_size", 2}, {"max_seq_len", 48}};
  std::ofstream(f.dir + "/ds.json") << c.dump();
  auto r = cli("train --json --config " + shell_quote(f.dir + "/ds.json") + ws);
  ASSERT_EQ(r.code, 0) << r.err;
  auto runs = json::parse(cli("runs list --json" + ws).out);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["datasets"], json::array({"dataset:my-data"}));
  // The rows it trained on are kept in the run folder, identical to an export.
  const std::string kept = runs[0]["run_dir"].get<std::string>() + "/data/1-my-data.jsonl";
  ASSERT_EQ(cli("dataset export my-data --out " + shell_quote(f.dir + "/ds-export.jsonl") + ws).code, 0);
  EXPECT_EQ(read_file(kept), read_file(f.dir + "/ds-export.jsonl"));
  c["train_data"] = "dataset:nosuch";
  std::ofstream(f.dir + "/nosuch.json") << c.dump();
  auto missing = cli("train --config " + shell_quote(f.dir + "/nosuch.json") + ws);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no dataset \"nosuch\""), std::string::npos) << missing.err;
}

TEST(CliStore, KillNineLeavesAnIntactDatabaseAndAnInterruptedRun) {
  const auto& f = fixture();
  const std::string ws = f.dir + "/crash-ws";
  // Kill at several moments: during start-up, mid-run and later (a run takes a few seconds).
  for (int delay_ms : {150, 1500, 3000, 4500}) {
    SCOPED_TRACE("kill after " + std::to_string(delay_ms) + " ms");
    const std::string cfg = write_config(f.dir + "/crash.json", "crash", 100000, 1e-4, 5);
    pid_t pid = start_train(cfg, ws, f.dir + "/crash-" + std::to_string(delay_ms) + ".log");
    ASSERT_GE(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st));

    Workspace w(ws);  // the next open marks the dead run
    {
      Stmt ic = w.db().prepare("PRAGMA integrity_check");
      ASSERT_TRUE(ic.step());
      EXPECT_EQ(ic.text(0), "ok");
    }
    auto runs = list_runs(w);
    if (runs.empty()) continue;  // killed before the run was recorded: nothing to check but integrity
    const RunInfo r = runs.back();
    EXPECT_EQ(r.status, "interrupted");
    // Committed metrics are whole steps from 1 up, and agree with what the run wrote to
    // metrics.jsonl for the same steps.
    auto loss = run_metric(w, r.id, "loss");
    auto lr = run_metric(w, r.id, "lr");
    EXPECT_EQ(loss.size(), lr.size());
    for (size_t i = 0; i < loss.size(); ++i) EXPECT_EQ(loss[i].step, static_cast<int64_t>(i + 1));
    std::ifstream jl(r.run_dir + "/metrics.jsonl");
    std::map<int64_t, double> file_loss;
    for (std::string l; std::getline(jl, l);) {
      try {
        auto j = json::parse(l);
        file_loss[j["step"]] = j["loss"];
      } catch (...) {  // the last line may be cut by the kill
      }
    }
    for (auto& p : loss)
      if (file_loss.count(p.step)) EXPECT_DOUBLE_EQ(p.value, file_loss[p.step]);
    if (delay_ms >= 3000) {
      EXPECT_GT(loss.size(), 0u);
      EXPECT_FALSE(last_checkpoint(w, r.id).empty());  // offered for resume
    }
  }
}

TEST(CliStore, InterruptedRunResumesToCompletion) {
  const auto& f = fixture();
  const std::string ws = f.dir + "/resume-ws";
  const std::string cfg = write_config(f.dir + "/resume.json", "resumable", 60, 1e-4, 5);
  pid_t pid = start_train(cfg, ws, "/dev/null");
  ASSERT_GE(pid, 0);
  // Kill it once a checkpoint past step 10 is recorded.
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    try {
      Workspace w(ws);
      auto runs = list_runs(w);
      for (auto& a : runs.empty() ? std::vector<Artifact>{} : run_artifacts(w, runs[0].id)) ready |= a.kind == "checkpoint" && a.step >= 10;
    } catch (...) {
    }
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(ready);
  {
    Workspace w(ws);
    ASSERT_EQ(list_runs(w).at(0).status, "interrupted");
  }
  auto show = cli("runs show 1 --workspace " + shell_quote(ws));
  EXPECT_NE(show.out.find("hone-cli runs resume 1"), std::string::npos) << show.out;
  auto r = cli("runs resume 1 --json --workspace " + shell_quote(ws));
  ASSERT_EQ(r.code, 0) << r.err;
  Workspace w(ws);
  RunInfo run = get_run(w, 1);
  EXPECT_EQ(run.status, "completed");
  auto loss = run_metric(w, 1, "loss");
  ASSERT_EQ(loss.size(), 60u);  // every step once, including those repeated after the checkpoint
  for (size_t i = 0; i < loss.size(); ++i) EXPECT_EQ(loss[i].step, static_cast<int64_t>(i + 1));
  EXPECT_DOUBLE_EQ(json::parse(run.final_metrics)["final_loss"].get<double>(), loss.back().value);
}

// A crash (SIGSEGV here, as a real fault would raise) writes a report into the workspace and, with
// no other process opening the workspace, leaves the run marked interrupted with the signal and
// the report named; the run then resumes to completion.
TEST(CliStore, FatalSignalWritesACrashReportAndLeavesAResumableRun) {
  const auto& f = fixture();
  const std::string ws = f.dir + "/segv-ws";
  const std::string cfg = write_config(f.dir + "/segv.json", "segv", 60, 1e-4, 5);
  const std::string log = f.dir + "/segv.log";
  pid_t pid = start_train(cfg, ws, log);
  ASSERT_GE(pid, 0);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    try {
      Db db(ws + "/hone.db");  // not a Workspace: opening one would recover the run itself
      Stmt s = db.prepare("SELECT COUNT(*) FROM artifacts WHERE kind = 'checkpoint' AND step >= 10");
      ready = s.step() && s.i64(0) > 0;
    } catch (...) {
    }
  }
  ASSERT_TRUE(ready);
  ::kill(pid, SIGSEGV);
  bool hung = false;
  const int st = test::wait_bounded(pid, 120, hung);
  ASSERT_FALSE(hung) << "the process was still alive 120 s after SIGSEGV: its crash handler hung";
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGSEGV);  // the handler re-raises: the exit status still tells the truth
  // The handler's helper marks the run once the crashed process is gone.
  std::string status, error;
  for (int i = 0; i < 300; ++i) {
    Db db(ws + "/hone.db");
    Stmt s = db.prepare("SELECT status, COALESCE(error, '') FROM runs WHERE id = 1");
    ASSERT_TRUE(s.step());
    status = s.text(0);
    error = s.text(1);
    if (status != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, "interrupted");
  EXPECT_NE(error.find("crashed (SIGSEGV)"), std::string::npos) << error;
  const auto at = error.find("crash report: ");
  ASSERT_NE(at, std::string::npos) << error;
  const std::string report = read_file(error.substr(at + 14));
  EXPECT_EQ(report.rfind("Hone crash report\nprogram: hone-cli", 0), 0u) << report;
  EXPECT_NE(report.find("signal: 11 (SIGSEGV)"), std::string::npos) << report;
  EXPECT_NE(report.find("pid: " + std::to_string(pid) + "\n"), std::string::npos) << report;
  EXPECT_NE(report.find("run in progress: 1 "), std::string::npos) << report;
  EXPECT_NE(report.find("sent by process: " + std::to_string(::getpid()) + "\n"), std::string::npos) << report;
  EXPECT_NE(report.find("backtrace"), std::string::npos);
  EXPECT_NE(report.find("hone-cli("), std::string::npos) << "no frames of the program: " << report;
  EXPECT_EQ(std::filesystem::path(error.substr(at + 14)).parent_path(), std::filesystem::path(ws + "/crash-reports"));
  const std::string said = read_file(log);
  EXPECT_NE(said.find("hone-cli: fatal SIGSEGV; crash report written to "), std::string::npos) << said;

  auto r = cli("runs resume 1 --json --workspace " + shell_quote(ws));
  ASSERT_EQ(r.code, 0) << r.err;
  Workspace w(ws);
  EXPECT_EQ(get_run(w, 1).status, "completed");
  EXPECT_EQ(run_metric(w, 1, "loss").size(), 60u);
}

// SIGTERM (logout, a killed terminal) with save_every 0: the run stops within a micro-batch, writes
// a checkpoint of its last finished step, is recorded as interrupted, and resumes to completion.
TEST(CliStore, SigtermCheckpointsAndLeavesAResumableRun) {
  const auto& f = fixture();
  const std::string ws = f.dir + "/term-ws";
  const std::string cfg = write_config(f.dir + "/term.json", "term", 100000, 1e-4, 0);
  const std::string log = f.dir + "/term.log";
  pid_t pid = start_train(cfg, ws, log);
  ASSERT_GE(pid, 0);
  auto steps_logged = [&] {
    std::ifstream in(log);
    int n = 0;
    for (std::string l; std::getline(in, l);) n += l.find("\"event\":\"step\"") != std::string::npos;
    return n;
  };
  for (int i = 0; i < 600 && steps_logged() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(steps_logged(), 5);
  ::kill(pid, SIGTERM);
  bool hung = false;
  int st = test::wait_bounded(pid, 120, hung);
  ASSERT_FALSE(hung) << "the process was still alive 120 s after SIGTERM";
  ASSERT_TRUE(WIFEXITED(st)) << "SIGTERM killed the process instead of stopping the run";
  EXPECT_EQ(WEXITSTATUS(st), 130);
  int64_t steps_done = 0;
  {
    std::ifstream in(log);
    for (std::string l; std::getline(in, l);)
      if (l.find("\"event\":\"done\"") != std::string::npos) {
        auto j = json::parse(l);
        EXPECT_EQ(j["status"], "interrupted");
        steps_done = j["steps"];
      }
  }
  ASSERT_GE(steps_done, 5);
  {
    Workspace w(ws);
    RunInfo r = list_runs(w).at(0);
    EXPECT_EQ(r.status, "interrupted");
    const std::string ck = last_checkpoint(w, r.id);
    ASSERT_FALSE(ck.empty()) << "nothing was kept although save_every is 0";
    EXPECT_EQ(test::load_json(ck + "/trainer_state.json")["step"].get<int64_t>(), steps_done);
  }
  // Resume: says what it restores, then runs to its end (max_steps cut short via a fresh config is
  // not possible for a recorded run, so this run is resumed and stopped again by SIGTERM).
  const std::string log2 = f.dir + "/term2.log";
  pid = start_cli({"runs", "resume", "1", "--json"}, ws, log2);
  ASSERT_GE(pid, 0);
  bool resumed_line = false;
  for (int i = 0; i < 600 && !resumed_line; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(log2);
    for (std::string l; std::getline(in, l);)
      if (l.find("\"event\":\"step\"") != std::string::npos) resumed_line = true;
  }
  ::kill(pid, SIGTERM);
  st = test::wait_bounded(pid, 120, hung);
  EXPECT_FALSE(hung) << "the resumed process was still alive 120 s after SIGTERM";
  std::ifstream in(log2);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("optimizer moments, data position"), std::string::npos) << all.substr(0, 2000);
  EXPECT_NE(all.find("\"step\":" + std::to_string(steps_done + 1) + ","), std::string::npos) << "did not continue after the checkpoint";
}

// A method given data of the wrong kind fails before any work and leaves no run record behind.
TEST(CliStore, WrongDatasetKindLeavesNoRun) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/kind-ws");
  ASSERT_EQ(cli("dataset import " + shell_quote(f.data) + " --name instructions" + ws).code, 0);
  json c = {{"name", "wrong"}, {"base_model", f.model}, {"recipe", "dpo"}, {"train_data", {"dataset:instructions"}}, {"max_steps", 2}};
  std::ofstream(f.dir + "/kind.json") << c.dump();
  auto r = cli("train --config " + shell_quote(f.dir + "/kind.json") + ws);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("dataset \"instructions\" holds chat rows; the dpo recipe needs a preference dataset"), std::string::npos) << r.err;
  c["recipe"] = "sft";
  c["base_model"] = f.dir + "/no-such-model";
  std::ofstream(f.dir + "/kind.json") << c.dump();
  r = cli("train --config " + shell_quote(f.dir + "/kind.json") + ws);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("no-such-model"), std::string::npos) << r.err;
  auto l = cli("runs list --json" + ws);
  ASSERT_EQ(l.code, 0) << l.err;
  EXPECT_TRUE(json::parse(l.out).empty()) << l.out;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/kind-ws/runs") && !std::filesystem::is_empty(f.dir + "/kind-ws/runs"));
}

// A DPO run's own metrics reach the CLI's JSON lines, the store and `runs compare` by name.
TEST(CliStore, DpoMetricNamesReachJsonAndTheStore) {
  const auto& f = fixture();
  const std::string ws = f.dir + "/dpo-ws";
  const std::string pairs = f.dir + "/pairs.jsonl";
  {
    std::ofstream p(pairs);
    for (int i = 0; i < 16; ++i)
      p << json({{"prompt", "Say number " + std::to_string(i)}, {"chosen", "Number " + std::to_string(i) + "."},
                 {"rejected", "No."}}).dump() << "\n";
  }
  json c = {{"name", "dpo"}, {"base_model", f.model}, {"recipe", "dpo"}, {"train_data", {pairs}}, {"max_steps", 3},
            {"batch_size", 4}, {"max_seq_len", 48}, {"lr", 1e-3}, {"beta", 0.2}, {"eval_fraction", 0.25}};
  std::ofstream(f.dir + "/dpo.json") << c.dump();
  auto r = cli("train --json --config " + shell_quote(f.dir + "/dpo.json") + " --workspace " + shell_quote(ws));
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  json last_step, done;
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) {
    auto j = json::parse(l);
    if (j["event"] == "step") last_step = j;
    if (j["event"] == "done") done = j;
  }
  for (const char* n : {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                        "logps/rejected", "logits/chosen", "logits/rejected", "eval_loss", "eval_rewards/accuracies"})
    EXPECT_TRUE(last_step.contains(n)) << n << " missing from " << last_step.dump();
  EXPECT_TRUE(done["metrics"].contains("rewards/margins")) << done.dump();
  Workspace w(ws);
  auto names = metric_names(w, 1);
  for (const char* n : {"rewards/margins", "rewards/accuracies", "eval_rewards/margins", "loss"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  auto m = run_metric(w, 1, "rewards/margins");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m.back().value, last_step["rewards/margins"].get<double>());
  auto cmp = cli("runs compare 1 --metric rewards/margins --csv --workspace " + shell_quote(ws));
  EXPECT_EQ(cmp.code, 0) << cmp.err;
  EXPECT_EQ(std::count(cmp.out.begin(), cmp.out.end(), '\n'), 4) << cmp.out;  // header and 3 steps
  EXPECT_NE(cmp.out.find("\n3,"), std::string::npos) << cmp.out;
}

// Candidates for labelling: imported from {"prompt","responses"} rows (problems named by line),
// labelled by row, a response edited with its original kept, and exported as DPO pairs and KTO
// ratings with ties and both_bad counted; the export trains with the dpo recipe.
TEST(CliStore, LabelCandidatesImportLabelEditExport) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/label-ws");
  const std::string bad = f.dir + "/bad-candidates.jsonl";
  std::ofstream(bad) << R"({"prompt":"p","responses":["x","y"]})" "\n" R"({"prompt":"q","responses":[]})" "\n";
  auto r = cli("dataset import " + shell_quote(bad) + " --name bad" + ws);
  EXPECT_NE(r.code, 0);
  EXPECT_NE((r.out + r.err).find(bad + ":2: responses: must be a list of 1 to 16 responses"), std::string::npos) << r.out << r.err;
  const std::string file = f.dir + "/candidates.jsonl";
  {
    std::ofstream c(file);
    for (int i = 0; i < 6; ++i)
      c << json({{"prompt", "Say number " + std::to_string(i)}, {"responses", {"Number " + std::to_string(i) + ".", "No."}}}).dump() << "\n";
    c << json({{"prompt", {{{"role", "user"}, {"content", "Hello"}}}}, {"responses", {"Hi there."}}}).dump() << "\n";
  }
  ASSERT_EQ(cli("dataset import " + shell_quote(file) + " --name cands" + ws).code, 0);
  auto show = cli("dataset list --json" + ws);
  EXPECT_NE(show.out.find("\"kind\":\"candidates\""), std::string::npos) << show.out;
  ASSERT_EQ(cli("label set cands 0 a" + ws).code, 0);
  ASSERT_EQ(cli("label set cands 1 b --note " + shell_quote("b is terse but right") + ws).code, 0);
  ASSERT_EQ(cli("label set cands 2 tie" + ws).code, 0);
  ASSERT_EQ(cli("label set cands 3 both_bad" + ws).code, 0);
  ASSERT_EQ(cli("label set cands 4 skip" + ws).code, 0);
  ASSERT_EQ(cli("label set cands 6 a" + ws).code, 0);  // the single response: a thumbs-up
  auto wrong = cli("label set cands 6 b" + ws);
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("one response"), std::string::npos) << wrong.err;
  wrong = cli("label set cands 0 chosen" + ws);
  EXPECT_NE(wrong.err.find("label must be a, b, tie, both_bad, skip or ranked"), std::string::npos) << wrong.err;
  ASSERT_EQ(cli("label edit cands 1 b " + shell_quote("Number one.") + ws).code, 0);
  auto list = cli("label list cands --json" + ws);
  ASSERT_EQ(list.code, 0) << list.err;
  auto rows = json::parse(list.out);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0]["label"], "a");
  EXPECT_EQ(rows[1]["label"], "b");
  EXPECT_EQ(rows[1]["note"], "b is terse but right");
  EXPECT_EQ(rows[1]["edited"], json::array({1}));
  EXPECT_EQ(rows[1]["data"]["responses"][1], "Number one.");
  EXPECT_EQ(rows[1]["data"]["original_responses"][1], "No.");  // the original is kept
  EXPECT_EQ(rows[5]["label"], "none");
  ASSERT_EQ(cli("label set cands 5 none" + ws).code, 0);
  const std::string pairs = f.dir + "/labelled.jsonl", ratings = f.dir + "/ratings.jsonl";
  auto ex = cli("label export cands --json --out " + shell_quote(pairs) + " --ratings-out " + shell_quote(ratings) + ws);
  ASSERT_EQ(ex.code, 0) << ex.err;
  auto rep = json::parse(ex.out);
  EXPECT_EQ(rep["pairs"], 2);
  EXPECT_EQ(rep["ties"], 1);
  EXPECT_EQ(rep["both_bad"], 1);
  EXPECT_EQ(rep["skipped"], 1);
  EXPECT_EQ(rep["unlabelled"], 1);
  EXPECT_EQ(rep["ratings"], 3);  // both responses of the both_bad pair, and the thumbs-up
  std::ifstream pin(pairs);
  std::vector<json> p;
  for (std::string l; std::getline(pin, l);) p.push_back(json::parse(l));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0]["chosen"], "Number 0.");
  EXPECT_EQ(p[0]["rejected"], "No.");
  EXPECT_EQ(p[1]["chosen"], "Number one.");  // b won, with the labeller's edit
  EXPECT_EQ(p[1]["rejected"], "Number 1.");
  std::ifstream rin(ratings);
  std::vector<json> k;
  for (std::string l; std::getline(rin, l);) k.push_back(json::parse(l));
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[0]["label"], false);
  EXPECT_EQ(k[2]["label"], true);
  EXPECT_EQ(k[2]["completion"], "Hi there.");
  // A dpo run names the candidates dataset itself: it trains on the pairs the labels chose, the
  // same two the export wrote (ties, both_bad and unlabelled rows left out).
  json c = {{"name", "c"}, {"base_model", f.model}, {"recipe", "dpo"}, {"train_data", {"dataset:cands"}}, {"max_steps", 1},
            {"eval_fraction", 0}};
  std::ofstream(f.dir + "/cands.json") << c.dump();
  auto t = cli("train --config " + shell_quote(f.dir + "/cands.json") + ws);
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("data: 2 training examples"), std::string::npos) << t.err;
  // Candidates are not chat data: an sft run on them fails before any work.
  c["recipe"] = "sft";
  std::ofstream(f.dir + "/cands.json") << c.dump();
  t = cli("train --config " + shell_quote(f.dir + "/cands.json") + ws);
  EXPECT_NE(t.err.find("holds candidates rows; the sft recipe needs a chat dataset"), std::string::npos) << t.err;
  c["recipe"] = "dpo";
  // The exported pairs train.
  c["train_data"] = {pairs};
  c["max_steps"] = 2;
  c["batch_size"] = 2;
  std::ofstream(f.dir + "/cands.json") << c.dump();
  t = cli("train --config " + shell_quote(f.dir + "/cands.json") + ws);
  EXPECT_EQ(t.code, 0) << t.err;
  // Two runs named "c", often started within the same second: each has its own folder.
  Workspace w(f.dir + "/label-ws");
  auto runs = list_runs(w);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_NE(runs[0].run_dir, runs[1].run_dir);
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[1].status, "completed");
}

// label generate samples n responses per prompt with the model and stores them as candidates;
// the same seed gives the same responses.
TEST(CliStore, LabelGenerateStoresCandidates) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/gen-ws");
  ASSERT_EQ(cli("dataset import " + shell_quote(f.data) + " --name numbers" + ws).code, 0);
  auto g = cli("label generate --dataset numbers --model " + shell_quote(f.model) +
               " --n 2 --limit 3 --max-new-tokens 6 --temperature 1.0 --seed 7 --json" + ws);
  ASSERT_EQ(g.code, 0) << g.err;
  auto done = json::parse(g.out.substr(g.out.rfind("{\"dataset_id\"")));
  EXPECT_EQ(done["rows"], 3);
  EXPECT_EQ(done["name"], "numbers-candidates");
  EXPECT_NE(g.out.find("{\"done\":3,\"event\":\"progress\",\"total\":3}"), std::string::npos) << g.out;
  auto list = json::parse(cli("label list numbers-candidates --json" + ws).out);
  ASSERT_EQ(list.size(), 3u);
  for (const auto& row : list) {
    EXPECT_EQ(row["data"]["responses"].size(), 2u);
    EXPECT_EQ(row["label"], "none");
  }
  EXPECT_EQ(list[0]["data"]["prompt"][0]["content"], "Say number 0");  // the chat row's prompt
  auto again = cli("label generate --dataset numbers --model " + shell_quote(f.model) +
                   " --n 2 --limit 3 --max-new-tokens 6 --temperature 1.0 --seed 7 --name again --json" + ws);
  ASSERT_EQ(again.code, 0) << again.err;
  auto list2 = json::parse(cli("label list again --json" + ws).out);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(list2[i]["data"]["responses"], list[i]["data"]["responses"]);
  // The default name again: the next free one.
  auto third = cli("label generate --dataset numbers --model " + shell_quote(f.model) + " --n 2 --limit 1 --max-new-tokens 4 --json" + ws);
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_EQ(json::parse(third.out.substr(third.out.rfind("{\"dataset_id\"")))["name"], "numbers-candidates-2");
  auto taken = cli("label generate --dataset numbers --model " + shell_quote(f.model) + " --n 2 --limit 1 --name again" + ws);
  EXPECT_NE(taken.err.find("a dataset named \"again\" already exists"), std::string::npos) << taken.err;
  auto text = cli("label generate --dataset numbers" + ws);
  EXPECT_NE(text.code, 0);
}

// The labelling loop from hone-cli: a text file of prompts imported as a prompts dataset, four
// candidates per prompt from a run at the default settings, rankings and a best/worst pick, the
// export's counts, a DPO run on the dataset that completes; greedy sampling repeats itself and
// every such row is reported; two annotators' verdict sets merge and agreement prints the kappa.
TEST(CliStore, LabelLoopFromAPromptsFile) {
  const auto& f = fixture();
  const std::string ws = " --workspace " + shell_quote(f.dir + "/loop-ws");
  std::ofstream(f.dir + "/prompts.txt") << "Say number 1\nSay number 2\n\nSay number 3\n";
  auto imp = cli("dataset import " + shell_quote(f.dir + "/prompts.txt") + " --name qs --kind prompts --json" + ws);
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_EQ(json::parse(imp.out)["imported"], 3);
  // The run: three LoRA steps on the fixture's data.
  ASSERT_EQ(cli("train --config " + shell_quote(write_config(f.dir + "/loop-run.json", "loop-run", 3, 1e-3, 0)) + ws).code, 0);
  auto g = cli("label generate --dataset qs --run 1 --max-new-tokens 6 --json" + ws);
  ASSERT_EQ(g.code, 0) << g.err;
  auto done = json::parse(g.out.substr(g.out.rfind("{\"dataset_id\"")));
  EXPECT_EQ(done["rows"], 3);
  EXPECT_EQ(done["responses_per_prompt"], 4);
  auto list = json::parse(cli("label list qs-candidates --json" + ws).out);
  ASSERT_EQ(list.size(), 3u);
  for (const auto& row : list) ASSERT_EQ(row["data"]["responses"].size(), 4u);
  ASSERT_EQ(cli("label set qs-candidates 0 dbca --annotator ann" + ws).code, 0);
  ASSERT_EQ(cli("label set qs-candidates 1 a,d --annotator ann" + ws).code, 0);  // best a, worst d
  EXPECT_NE(cli("label set qs-candidates 2 a --annotator ann" + ws).code, 0);    // four responses: rank them
  ASSERT_EQ(cli("label set qs-candidates 2 tie --annotator ann" + ws).code, 0);
  auto ex = cli("label export qs-candidates --json" + ws);
  ASSERT_EQ(ex.code, 0) << ex.err;
  auto rep = json::parse(ex.out);
  EXPECT_EQ(rep["pairs"].get<int>() + rep["identical"].get<int>(), 6 + 1);  // a full ranking: 6 pairs; best/worst: 1
  EXPECT_EQ(rep["ties"], 1);
  json c = {{"name", "dpo"}, {"base_model", f.model}, {"recipe", "dpo"}, {"train_data", {"dataset:qs-candidates"}},
            {"max_steps", 2}, {"batch_size", 2}, {"eval_fraction", 0}};
  std::ofstream(f.dir + "/loop-dpo.json") << c.dump();
  auto t = cli("train --config " + shell_quote(f.dir + "/loop-dpo.json") + ws);
  EXPECT_EQ(t.code, 0) << t.err;
  Workspace w(f.dir + "/loop-ws");
  EXPECT_EQ(list_runs(w).back().status, "completed");

  // Greedy sampling gives one answer per prompt: drawing again cannot help, every row is reported.
  auto greedy = cli("label generate --dataset qs --run 1 --max-new-tokens 6 --temperature 0 --name greedy --json" + ws);
  ASSERT_EQ(greedy.code, 0) << greedy.err;
  auto gd = json::parse(greedy.out.substr(greedy.out.rfind("{\"dataset_id\"")));
  EXPECT_EQ(gd["identical_rows"], 3);
  EXPECT_EQ(gd["resampled"], 0);
  auto glist = json::parse(cli("label list greedy --json" + ws).out);
  EXPECT_EQ(glist[0]["identical"].size(), 6u);  // all four the same: every pair flagged

  // Two sources: half of each row from the run, half from the base, and the tally after labelling.
  auto two = cli("label generate --dataset qs --run 1 --versus-model " + shell_quote(f.model) +
                 " --n 2 --max-new-tokens 6 --name versus --json" + ws);
  ASSERT_EQ(two.code, 0) << two.err;
  auto vlist = json::parse(cli("label list versus --json" + ws).out);
  ASSERT_EQ(vlist[0]["data"]["sources"].size(), 2u);
  std::set<std::string> names = {vlist[0]["data"]["sources"][0], vlist[0]["data"]["sources"][1]};
  EXPECT_EQ(names.size(), 2u);

  // A second annotator, a merge, and the kappa: ann tie, tie, both_bad; bob tie, both_bad,
  // both_bad on three rows (verdicts any pair takes, identical or not) -> p_o = 2/3,
  // p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9, kappa = (6/9 - 4/9) / (5/9) = 0.4.
  for (const auto& [who, verdicts] : std::vector<std::pair<std::string, std::string>>{{"ann", "ttx"}, {"bob", "txx"}})
    for (int i = 0; i < 3; ++i) {
      const std::string v = verdicts[static_cast<size_t>(i)] == 't' ? "tie" : "both_bad";
      ASSERT_EQ(cli("label set versus " + std::to_string(i) + " " + v + " --annotator " + who + ws).code, 0);
    }
  const std::string bob = f.dir + "/bob-verdicts.jsonl";
  ASSERT_EQ(cli("label export-verdicts versus --annotator bob --out " + shell_quote(bob) + ws).code, 0);
  const std::string ws2 = " --workspace " + shell_quote(f.dir + "/loop-ws2");
  // Bob's workspace holds the same rows: the dataset exported and imported there.
  ASSERT_EQ(cli("dataset export versus --out " + shell_quote(f.dir + "/versus.jsonl") + ws).code, 0);
  ASSERT_EQ(cli("dataset import " + shell_quote(f.dir + "/versus.jsonl") + " --name versus" + ws2).code, 0);
  auto merged = cli("label merge versus " + shell_quote(bob) + " --json" + ws2);
  ASSERT_EQ(merged.code, 0) << merged.err;
  EXPECT_EQ(json::parse(merged.out)["added"], 3);
  ASSERT_EQ(cli("label export-verdicts versus --annotator ann --out " + shell_quote(f.dir + "/ann.jsonl") + ws).code, 0);
  ASSERT_EQ(cli("label merge versus " + shell_quote(f.dir + "/ann.jsonl") + ws2).code, 0);
  auto ag = cli("label agreement versus --json" + ws2);
  ASSERT_EQ(ag.code, 0) << ag.err;
  auto k = json::parse(ag.out);
  EXPECT_EQ(k["rows"], 3);
  EXPECT_EQ(k["agree"], 2);
  EXPECT_NEAR(k["kappa"].get<double>(), 0.4, 1e-9);
  ASSERT_EQ(k["disagreements"].size(), 1u);
  EXPECT_EQ(k["disagreements"][0]["row"], 1);
  auto text = cli("label agreement versus" + ws2);
  EXPECT_NE(text.out.find("Cohen's kappa"), std::string::npos) << text.out;
}

// Disk full while checkpointing: the run runs out of space on its second checkpoint (a 700 KiB
// tmpfs mounted in a private mount namespace holds one 476 KiB checkpoint). The run fails with
// the reason, the first checkpoint stays complete and resumes, and no partial folder is left.
TEST(Faults, DiskFullWhileCheckpointingKeepsThePreviousCheckpoint) {
  const auto& f = fixture();
  if (test::run("unshare -rm true").code != 0) GTEST_SKIP() << "no unprivileged mount namespaces here";
  const std::string root = f.dir + "/full", ws = f.dir + "/full-ws";
  ASSERT_EQ(std::system(("mkdir -p " + shell_quote(root)).c_str()), 0);
  const std::string cfg = write_config(f.dir + "/full.json", "full-disk", 9, 1e-4, 3);
  const std::string more = write_config(f.dir + "/more.json", "after-full", 5, 1e-4, 0);
  const std::string cli_path = HONE_CLI;
  const std::string script =
      "mount -t tmpfs -o size=700k tmpfs " + shell_quote(root) + " || exit 99; " + shell_quote(cli_path) +
      " train --config " + shell_quote(cfg) + " --run-dir " + shell_quote(root + "/run") + " --workspace " + shell_quote(ws) +
      " > /dev/null 2> " + shell_quote(f.dir + "/full.err") + "; echo train=$?; ls -a " + shell_quote(root + "/run/checkpoints") +
      "; ls " + shell_quote(root + "/run/checkpoints/step-000003") + "; " + shell_quote(cli_path) + " train --config " +
      shell_quote(more) + " --resume " + shell_quote(root + "/run/checkpoints/step-000003") + " --run-dir " +
      shell_quote(f.dir + "/full-resumed") + " --workspace " + shell_quote(ws) + " --json | tail -1";
  auto r = test::run("unshare -rm sh -c " + shell_quote(script));
  if (r.out.find("train=") == std::string::npos) GTEST_SKIP() << "cannot mount a tmpfs here: " << r.err;
  EXPECT_NE(r.out.find("train=1"), std::string::npos) << r.out;
  const std::string err = read_file(f.dir + "/full.err");
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find("step-000003"), std::string::npos) << err;  // names the checkpoint that survives
  EXPECT_NE(r.out.find("step-000003\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("step-000006"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(".tmp-"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("optimizer.safetensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trainer_state.json"), std::string::npos) << r.out;
  auto last = json::parse(r.out.substr(r.out.rfind("{\"best_eval_loss\"")));  // the done line
  EXPECT_EQ(last["status"], "completed");  // resumed from the surviving checkpoint: steps 4..5
  EXPECT_EQ(last["steps"], 5);
  Workspace w(ws);
  auto runs = list_runs(w);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, "failed");
  EXPECT_NE(runs[0].error.find("No space left"), std::string::npos) << runs[0].error;
}

// Running out of memory is an error message, not a crash: a 1.5 GiB address-space limit and a
// batch whose activations need far more.
TEST(Faults, OutOfMemoryIsAClearError) {
  const auto& f = fixture();
  {
    std::ofstream t(f.dir + "/long.jsonl");
    std::string doc;
    for (int i = 0; i < 2000; ++i) doc += "word" + std::to_string(i % 97) + " ";
    for (int i = 0; i < 64; ++i) t << json({{"text", doc}}).dump() << "\n";
  }
  // 64 blocks of 2048 tokens: attention scores alone need 64 x 4 heads x 2048^2 x 4 bytes = 4 GiB.
  json c = {{"name", "oom"}, {"base_model", f.model}, {"method", "full"}, {"recipe", "cpt"}, {"train_data", {f.dir + "/long.jsonl"}},
            {"max_steps", 2}, {"batch_size", 64}, {"max_seq_len", 2048}};
  std::ofstream(f.dir + "/oom.json") << c.dump();
  auto r = test::run("ulimit -v 3000000; " + std::string(HONE_CLI) + " train --config " + shell_quote(f.dir + "/oom.json") +
                     " --workspace " + shell_quote(f.dir + "/oom-ws"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
}
