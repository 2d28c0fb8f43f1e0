// hone-cli on several processes: `launch --nproc 2` and torchrun give the losses and adapter of one
// process with the global batch; rank 0 alone records the run; a rank killed mid-run stops the
// other within seconds with one line naming it, the run is recorded as interrupted, and resuming
// on 2 processes ends where an uninterrupted run ends.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "common/files.h"
#include "distributed/dist_env.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "store/sqlite.h"
#include "test_support.h"

using namespace hone;
using json = nlohmann::json;
using test::shell_quote;

using test::cli;

namespace {

// A small model with Hone's own tokenizer and 200 instruction rows of varied lengths.
const test::CliFixture& fixture() {
  static test::CliFixture f = test::make_cli_fixture("cli-dist", 5, [](int i) {
    return json({{"instruction", "Spell " + std::to_string(i * 37 % 1000) + std::string(i % 5, '!')},
                 {"output", "It is " + std::to_string(i * 37 % 1000) + "."}});
  });
  return f;
}

std::string write_config(const std::string& name, int batch, int steps, int save_every) {
  const auto& f = fixture();
  json c = {{"name", name},       {"base_model", f.model}, {"method", "lora"}, {"train_data", {f.data}},
            {"max_steps", steps}, {"batch_size", batch},   {"max_seq_len", 48}, {"lr", 2e-3},
            {"save_every", save_every}, {"keep_checkpoints", 2}, {"seed", 4},
            // LoRA dropout draws its masks per process: with it, 2 x 2 rows and 1 x 4 rows differ.
            {"lora", {{"r", 8}, {"alpha", 16}, {"dropout", 0.0}}}};
  const std::string path = f.dir + "/" + name + ".json";
  std::ofstream(path) << c.dump(2);
  return path;
}

std::string ws_arg() { return " --workspace " + shell_quote(fixture().ws); }

std::vector<double> losses(const std::string& run_dir) {
  std::vector<double> v;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(json::parse(line)["loss"].get<double>());
  return v;
}

double adapter_difference(const std::string& a_dir, const std::string& b_dir) {
  SafetensorsFile a(a_dir + "/adapter/adapter_model.safetensors"), b(b_dir + "/adapter/adapter_model.safetensors");
  EXPECT_EQ(a.tensors().size(), b.tensors().size());
  double worst = 0;
  for (const auto& t : a.tensors()) {
    const auto* u = b.find(t.name);
    if (!u) {
      ADD_FAILURE() << t.name << " missing";
      return 1e9;
    }
    auto x = tensor_from_bytes(a.data(t), t.dtype, t.shape, "a"), y = tensor_from_bytes(b.data(*u), u->dtype, u->shape, "b");
    worst = std::max(worst, (x - y).abs().max().item<double>());
  }
  return worst;
}

json last_json_line(const std::string& out) {
  json last;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') last = json::parse(line);
  return last;
}

int count_events(const std::string& out, const std::string& event) {
  int n = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{' && json::parse(line).value("event", "") == event) ++n;
  return n;
}

// The one-process reference: batch 4, 6 steps.
const std::string& reference_run() {
  static std::string dir = [] {
    const std::string d = fixture().dir + "/one";
    auto r = cli("train --config " + shell_quote(write_config("one", 4, 6, 0)) + " --run-dir " + shell_quote(d) + ws_arg() + " --json");
    if (r.code != 0) throw std::runtime_error("reference run failed: " + r.err);
    return d;
  }();
  return dir;
}

void expect_same_run(const std::string& dir) {
  const auto one = losses(reference_run()), two = losses(dir);
  ASSERT_EQ(one.size(), 6u);
  ASSERT_EQ(two.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(two[i], one[i], 1e-5) << "step " << i + 1;
  EXPECT_LT(adapter_difference(reference_run(), dir), 1e-5);
  EXPECT_GT(one.front() - one.back(), 0.0);  // it learned something
}

// `hone-cli launch --nproc 2 -- train CFG` in the background, its stdout and stderr to files.
pid_t start_launch(const std::string& cfg, const std::string& dir, const std::string& out, const std::string& err) {
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execl(HONE_CLI, HONE_CLI, "launch", "--nproc", "2", "--grace", "20", "--", "train", "--config", cfg.c_str(), "--run-dir",
            dir.c_str(), "--workspace", fixture().ws.c_str(), "--json", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return launcher;
}

}  // namespace

TEST(Launch, TwoProcessesTrainAsOneProcessWithTheirGlobalBatch) {
  const std::string dir = fixture().dir + "/launch2";
  auto r = cli("launch --nproc 2 -- train --config " + shell_quote(write_config("two", 2, 6, 0)) + " --run-dir " + shell_quote(dir) +
               ws_arg() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("hone-cli launch: 2 processes"), std::string::npos) << r.err;
  // Rank 0 alone speaks and records: one started and one done event, one run in the workspace.
  EXPECT_EQ(count_events(r.out, "started"), 1);
  EXPECT_EQ(count_events(r.out, "done"), 1);
  EXPECT_EQ(count_events(r.out, "step"), 6);
  const json done = last_json_line(r.out);
  EXPECT_EQ(done["status"], "completed");
  auto show = cli("runs show " + std::to_string(done["run_id"].get<int>()) + " --json" + ws_arg());
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_EQ(json::parse(show.out)["status"], "completed");
  expect_same_run(dir);
}

TEST(Torchrun, LaunchesHoneCliWithoutPython) {
  if (!file_exists("/usr/bin/torchrun")) GTEST_SKIP() << "torchrun (Debian's python3-torch) is not installed";
  const std::string dir = fixture().dir + "/torchrun";
  // Debian's torchrun 1.13 hosts the rendezvous store in its agent: the ranks are its clients.
  // Under Python 3.11 it cannot parse its own default "--redirects 0 --tee 0" (enum.Flag no
  // longer iterates NONE): single-stream values work, and rank 0's stdout goes to the log folder.
  const std::string logs = fixture().dir + "/torchrun-logs";
  auto r = test::run("OMP_NUM_THREADS=1 /usr/bin/torchrun --nproc_per_node 2 --master_port " + std::to_string(free_local_port()) +
                     " --redirects 1 --tee 2 --log_dir " + shell_quote(logs) + " --no_python " + shell_quote(HONE_CLI) +
                     " train --config " + shell_quote(write_config("tr", 2, 6, 0)) + " --run-dir " + shell_quote(dir) + ws_arg() +
                     " --json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::string out0, out1;
  for (const auto& e : std::filesystem::recursive_directory_iterator(logs)) {
    const std::string p = e.path().string();
    if (p.size() > 13 && p.substr(p.size() - 13) == "/0/stdout.log") out0 = read_file(p);
    if (p.size() > 13 && p.substr(p.size() - 13) == "/1/stdout.log") out1 = read_file(p);
  }
  EXPECT_EQ(count_events(out0, "done"), 1) << out0;
  EXPECT_NE(out0.find("agent's store"), std::string::npos) << out0;  // joined torchrun's store
  EXPECT_EQ(out1, "");  // rank 1 is silent
  expect_same_run(dir);
}

TEST(Launch, ALostRankStopsTheOtherWithOneLineAndTheRunResumes) {
  const auto& f = fixture();
  const std::string dir = f.dir + "/lost", out = f.dir + "/lost.out", err = f.dir + "/lost.err";
  const int steps = 80;
  const std::string cfg = write_config("lost", 2, steps, 1);
  const pid_t launcher = start_launch(cfg, dir, out, err);
  ASSERT_GT(launcher, 0);
  // Rank 1's pid from the launcher's first line, then the first checkpoints.
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  pid_t rank1 = -1;
  std::string ckpt_seen;
  while (Clock::now() - t0 < std::chrono::seconds(90)) {
    std::smatch m;
    const std::string e = file_exists(err) ? read_file(err) : "";
    if (rank1 < 0 && std::regex_search(e, m, std::regex("rank 1 pid ([0-9]+)"))) rank1 = std::stoi(m[1]);
    if (rank1 > 0 && is_directory(dir + "/checkpoints"))
      for (const auto& x : std::filesystem::directory_iterator(dir + "/checkpoints"))
        if (x.path().filename().string() >= "step-000003") ckpt_seen = x.path().filename().string();
    if (!ckpt_seen.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(rank1, 0) << read_file(err);
  ASSERT_FALSE(ckpt_seen.empty()) << "no checkpoint appeared";
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);

  // The launcher (and rank 0) must end within a bounded time, without the grace period's help.
  bool hung = false;
  const int st = test::wait_bounded(launcher, 15, hung);
  if (hung) FAIL() << "rank 0 did not stop within 15 s of rank 1's death:\n" << read_file(err);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0);
  const std::string e = read_file(err);
  EXPECT_NE(e.find("hone-cli launch: rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9"), std::string::npos) << e;
  // Rank 0's one line names the lost rank and says how to go on.
  EXPECT_TRUE(std::regex_search(e, std::regex("error: rank 1 of 2 was lost \\(.*\\); resume from .*step-[0-9]+; continue with: "
                                              "hone-cli runs resume [0-9]+")))
      << e;
  const json done = last_json_line(read_file(out));
  EXPECT_EQ(done["status"], "interrupted");
  const int id = done["run_id"].get<int>();
  auto show = cli("runs show " + std::to_string(id) + " --json" + ws_arg());
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_EQ(json::parse(show.out)["status"], "interrupted");
  const int64_t stopped_at = done["steps"].get<int64_t>();
  EXPECT_LT(stopped_at, steps);

  // With one process the resume is refused, naming both counts; on two it runs to the end.
  auto wrong = cli("runs resume " + std::to_string(id) + ws_arg());
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("run of 2 processes"), std::string::npos) << wrong.err;
  auto res = cli("launch --nproc 2 -- runs resume " + std::to_string(id) + " --json" + ws_arg());
  ASSERT_EQ(res.code, 0) << res.err;
  const json fin = last_json_line(res.out);
  EXPECT_EQ(fin["status"], "completed");
  EXPECT_EQ(fin["steps"], steps);

  // The same run uninterrupted ends with the same adapter.
  const std::string whole = f.dir + "/whole";
  auto w = cli("launch --nproc 2 -- train --config " + shell_quote(write_config("whole", 2, steps, 0)) + " --run-dir " +
               shell_quote(whole) + ws_arg() + " --json");
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_LT(adapter_difference(whole, dir), 1e-6);
  const auto a = losses(whole), b = losses(dir);
  ASSERT_FALSE(b.empty());
  EXPECT_NEAR(a.back(), b.back(), 1e-6);
}

// Rank 0 killed mid-run: the launcher sees it die, marks the run interrupted at once with the
// reason (rank 0's lock is free the moment it dies), and the run resumes on two processes.
TEST(Launch, ARank0DeathMarksTheRunInterruptedAtOnce) {
  const auto& f = fixture();
  const std::string dir = f.dir + "/rank0", out = f.dir + "/rank0.out", err = f.dir + "/rank0.err";
  const int steps = 80;
  const std::string cfg = write_config("rank0", 2, steps, 1);
  const pid_t launcher = start_launch(cfg, dir, out, err);
  ASSERT_GT(launcher, 0);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  pid_t rank0 = -1;
  bool ckpt = false;
  while (Clock::now() - t0 < std::chrono::seconds(90) && !ckpt) {
    std::smatch m;
    const std::string e = file_exists(err) ? read_file(err) : "";
    if (rank0 < 0 && std::regex_search(e, m, std::regex("rank 0 pid ([0-9]+)"))) rank0 = std::stoi(m[1]);
    ckpt = rank0 > 0 && is_directory(dir + "/checkpoints/step-000003");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(rank0, 0) << read_file(err);
  ASSERT_TRUE(ckpt) << "no checkpoint appeared";
  // The run's record, running, names its lock; the lock file names rank 0.
  const int id = json::parse(cli("runs list --json" + ws_arg()).out).back()["id"].get<int>();
  ASSERT_EQ(::kill(rank0, SIGKILL), 0);
  bool hung = false;
  const int st = test::wait_bounded(launcher, 40, hung);
  if (hung) FAIL() << "the launcher did not end within 40 s of rank 0's death:\n" << read_file(err);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0);
  const std::string e = read_file(err);
  EXPECT_NE(e.find("hone-cli launch: rank 0 (pid " + std::to_string(rank0) + ") was killed by signal 9"), std::string::npos) << e;
  EXPECT_NE(e.find("hone-cli launch: run " + std::to_string(id) + " (rank0) is marked interrupted"), std::string::npos) << e;
  // Read without opening the workspace through hone-cli (which would reap it too): the launcher did it.
  {
    Db db(f.ws + "/hone.db", true);
    Stmt s = db.prepare("SELECT status, error FROM runs WHERE id = ?");
    s.bind(1, static_cast<int64_t>(id));
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(0), "interrupted");
    EXPECT_NE(s.text(1).find("rank 0 (pid " + std::to_string(rank0) + ") was killed by signal 9"), std::string::npos) << s.text(1);
  }
  auto res = cli("launch --nproc 2 -- runs resume " + std::to_string(id) + " --json" + ws_arg());
  ASSERT_EQ(res.code, 0) << res.err;
  const json fin = last_json_line(res.out);
  EXPECT_EQ(fin["status"], "completed");
  EXPECT_EQ(fin["steps"], steps);
}

// The RL recipes split by prompt: each rank samples its own prompts' completions. PPO whitens its
// advantages over the global batch and keeps one KL coefficient for all ranks.
TEST(Launch, GrpoAndPpoRunOnTwoProcesses) {
  const auto& f = fixture();
  for (const std::string recipe : {"grpo", "ppo"}) {
    json c = {{"name", recipe + "2"}, {"base_model", f.model}, {"method", "lora"}, {"recipe", recipe}, {"train_data", {f.data}},
              {"rewards", {{{"type", "length"}, {"max_chars", 10}}}}, {"num_generations", recipe == "grpo" ? 4 : 2},
              {"max_new_tokens", 6}, {"batch_size", 2}, {"max_steps", 3}, {"max_seq_len", 64}, {"kl_target", 0.5}, {"beta", 0.08}};
    const std::string path = f.dir + "/" + recipe + "2.json";
    std::ofstream(path) << c.dump(2);
    auto r = cli("launch --nproc 2 -- train --config " + shell_quote(path) + ws_arg() + " --json");
    ASSERT_EQ(r.code, 0) << recipe << ": " << r.err;
    const json done = last_json_line(r.out);
    EXPECT_EQ(done["status"], "completed") << recipe;
    const json& m = done["metrics"];
    ASSERT_TRUE(m.contains("reward")) << m.dump();
    // A mean reward of the global batch: the length rule gives 0 or 1 per completion.
    EXPECT_GE(m["reward"].get<double>(), 0.0);
    EXPECT_LE(m["reward"].get<double>(), 1.0 + 1e-9);
    if (recipe == "ppo") {
      // Every rank holds the same coefficient; the recorded figure is that one, not a sum of them.
      EXPECT_NEAR(m["kl_coef"].get<double>(), 0.08, 0.01);
    }
  }
}

// SIGUSR2 to hone-cli launch pauses both ranks after the step in progress (the run is recorded as
// paused and no step is taken), and again resumes them; the run ends with the losses of the same
// run unpaused.
TEST(Launch, BothRanksPauseAndResumeTogether) {
  const auto& f = fixture();
  const std::string dir = f.dir + "/paused", out = f.dir + "/paused.out", err = f.dir + "/paused.err";
  const int steps = 60;
  const std::string cfg = write_config("paused", 2, steps, 0);
  const pid_t launcher = start_launch(cfg, dir, out, err);
  ASSERT_GT(launcher, 0);
  auto lines = [&] {
    std::ifstream in(dir + "/metrics.jsonl");
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  };
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  while (lines() < 3 && Clock::now() - t0 < std::chrono::seconds(90)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(lines(), 3) << read_file(err);
  ASSERT_EQ(::kill(launcher, SIGUSR2), 0);
  // Paused: the record says so, and no step is taken for a while.
  std::string status;
  for (int i = 0; i < 200 && status != "paused"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Db db(f.ws + "/hone.db", true);
    Stmt q = db.prepare("SELECT status FROM runs WHERE run_dir = ?");
    q.bind(1, dir);
    if (q.step()) status = q.text(0);
  }
  ASSERT_EQ(status, "paused") << read_file(err);
  const auto at = lines();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(lines(), at) << "steps were taken while paused";
  EXPECT_LT(at, steps);
  ASSERT_EQ(::kill(launcher, SIGUSR2), 0);
  bool hung = false;
  const int st = test::wait_bounded(launcher, 120, hung);
  ASSERT_FALSE(hung);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(err);
  EXPECT_EQ(last_json_line(read_file(out))["status"], "completed");
  const std::string whole = f.dir + "/unpaused";
  auto w = cli("launch --nproc 2 -- train --config " + shell_quote(write_config("unpaused", 2, steps, 0)) + " --run-dir " +
               shell_quote(whole) + ws_arg() + " --json");
  ASSERT_EQ(w.code, 0) << w.err;
  const auto a = losses(whole), b = losses(dir);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-6) << "step " << i + 1;
}

// Held-out evaluation is split across the ranks (each scores every world-th batch) and gathered:
// 2 processes x batch 2 report the eval_loss of 1 process x batch 4 at every evaluation. GRPO's
// greedy evaluation is split by batches of prompts and runs on 2 processes.
TEST(Launch, HeldOutEvaluationIsSplitAndGathered) {
  const auto& f = fixture();
  std::string held;
  for (int i = 0; i < 40; ++i)
    held += json({{"instruction", "Spell " + std::to_string(i * 53 % 997)}, {"output", "It is " + std::to_string(i * 53 % 997) + "."}}).dump() + "\n";
  const std::string eval_file = f.dir + "/held.jsonl";
  write_file_atomic(eval_file, held);
  auto config = [&](const std::string& name, int batch) {
    json c = json::parse(read_file(write_config(name, batch, 4, 0)));
    c["eval_data"] = {eval_file};
    c["eval_every"] = 2;
    const std::string path = f.dir + "/" + name + ".json";
    std::ofstream(path) << c.dump(2);
    return path;
  };
  auto eval_losses = [&](const std::string& dir) {
    std::vector<double> v;
    std::ifstream in(dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line);
      if (j.contains("eval_loss")) v.push_back(j["eval_loss"].get<double>());
    }
    return v;
  };
  const std::string one = f.dir + "/eval-one", two = f.dir + "/eval-two";
  auto r1 = cli("train --config " + shell_quote(config("eval1", 4)) + " --run-dir " + shell_quote(one) + ws_arg() + " --json");
  ASSERT_EQ(r1.code, 0) << r1.err;
  auto r2 = cli("launch --nproc 2 -- train --config " + shell_quote(config("eval2", 2)) + " --run-dir " + shell_quote(two) + ws_arg() + " --json");
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_NE(r2.out.find("held-out evaluation split over 2 processes"), std::string::npos) << r2.out;
  const auto a = eval_losses(one), b = eval_losses(two);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-5 * a[i]) << "evaluation " << i;

  json g = {{"name", "grpo-eval"}, {"base_model", f.model}, {"method", "lora"}, {"recipe", "grpo"}, {"train_data", {f.data}},
            {"eval_data", {eval_file}}, {"eval_every", 2}, {"rewards", {{{"type", "length"}, {"max_chars", 10}}}},
            {"num_generations", 2}, {"max_new_tokens", 4}, {"batch_size", 2}, {"max_steps", 2}, {"max_seq_len", 64}};
  const std::string path = f.dir + "/grpo-eval.json";
  std::ofstream(path) << g.dump(2);
  auto r = cli("launch --nproc 2 -- train --config " + shell_quote(path) + ws_arg() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json done = last_json_line(r.out);
  EXPECT_EQ(done["status"], "completed");
  ASSERT_TRUE(done["metrics"].contains("eval_reward")) << done.dump();
  EXPECT_GE(done["metrics"]["eval_reward"].get<double>(), 0.0);
  EXPECT_LE(done["metrics"]["eval_reward"].get<double>(), 1.0 + 1e-9);
}

// DPO, ORPO, KTO, reward models and continued pre-training on 2 processes x batch 2 give the
// losses of 1 process x batch 4 (their losses are normalised by the global batch's counts).
TEST(Launch, PreferenceRewardAndCptRecipesMatchOneProcess) {
  const auto& f = fixture();
  {
    std::ofstream p(f.dir + "/pairs.jsonl"), k(f.dir + "/kto.jsonl"), t(f.dir + "/text.jsonl");
    for (int i = 0; i < 40; ++i) {
      p << json({{"prompt", "Say " + std::to_string(i)}, {"chosen", "It is " + std::to_string(i) + "."},
                 {"rejected", "No " + std::to_string(i * 7)}}).dump() << "\n";
      k << json({{"prompt", "Say " + std::to_string(i)}, {"completion", i % 2 ? "It is " + std::to_string(i) + "." : "nope"},
                 {"label", i % 2 == 1}}).dump() << "\n";
      t << json({{"text", "Number " + std::to_string(i) + " follows " + std::to_string(i - 1) + "."}}).dump() << "\n";
    }
  }
  for (const auto& [recipe, data] : std::vector<std::pair<std::string, std::string>>{
           {"dpo", "pairs"}, {"orpo", "pairs"}, {"kto", "kto"}, {"reward", "pairs"}, {"cpt", "text"}}) {
    auto config = [&](int batch) {
      json c = {{"name", recipe + std::to_string(batch)}, {"base_model", f.model}, {"method", "lora"}, {"recipe", recipe},
                {"train_data", {f.dir + "/" + data + ".jsonl"}}, {"batch_size", batch}, {"max_steps", 3}, {"max_seq_len", 48},
                {"lora", {{"dropout", 0.0}}}};
      const std::string path = f.dir + "/" + recipe + std::to_string(batch) + ".json";
      std::ofstream(path) << c.dump(2);
      return path;
    };
    const std::string one = f.dir + "/" + recipe + "-one", two = f.dir + "/" + recipe + "-two";
    auto a = cli("train --config " + shell_quote(config(4)) + " --run-dir " + shell_quote(one) + ws_arg() + " --json");
    ASSERT_EQ(a.code, 0) << recipe << ": " << a.err;
    auto b = cli("launch --nproc 2 -- train --config " + shell_quote(config(2)) + " --run-dir " + shell_quote(two) + ws_arg() +
                 " --json");
    ASSERT_EQ(b.code, 0) << recipe << ": " << b.err;
    const auto la = losses(one), lb = losses(two);
    ASSERT_EQ(la.size(), 3u) << recipe;
    ASSERT_EQ(lb.size(), la.size()) << recipe;
    for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(lb[i], la[i], 1e-5) << recipe << " step " << i + 1;
    EXPECT_LT(adapter_difference(one, two), 1e-5) << recipe;
  }
}

// DPO, ORPO, KTO and reward models split their held-out evaluation too: 2 processes x batch 2
// score the batches 1 process x batch 2 scores (rank r every other one), and the gathered eval_*
// figures are that process's. A learning rate of 1e-12 keeps the weights the starting ones (to
// ~1e-12) though the two runs train on batches of 4 and 2; KTO's KL estimate is per eval batch, so
// the batches must be the same ones.
TEST(Launch, PreferenceAndRewardEvaluationIsSplitAndGathered) {
  const auto& f = fixture();
  {
    std::ofstream p(f.dir + "/ev-pairs.jsonl"), k(f.dir + "/ev-kto.jsonl"), hp(f.dir + "/ev-held-pairs.jsonl"),
        hk(f.dir + "/ev-held-kto.jsonl");
    for (int i = 0; i < 30; ++i) {
      std::ofstream& pairs = i < 20 ? p : hp;
      std::ofstream& rated = i < 20 ? k : hk;
      pairs << json({{"prompt", "Say " + std::to_string(i)}, {"chosen", "It is " + std::to_string(i) + "."},
                     {"rejected", "No " + std::to_string(i * 7)}}).dump() << "\n";
      rated << json({{"prompt", "Say " + std::to_string(i)}, {"completion", i % 2 ? "It is " + std::to_string(i) + "." : "nope"},
                     {"label", i % 2 == 1}}).dump() << "\n";
    }
  }
  auto eval_metrics = [](const std::string& dir) {
    json last;
    std::ifstream in(dir + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const json j = json::parse(line);
      if (j.contains("eval_loss")) last = j;
    }
    json out = json::object();
    for (const auto& [k, v] : last.items())
      if (k.rfind("eval_", 0) == 0) out[k] = v;
    return out;
  };
  for (const auto& [recipe, data] : std::vector<std::pair<std::string, std::string>>{
           {"dpo", "pairs"}, {"orpo", "pairs"}, {"kto", "kto"}, {"reward", "pairs"}}) {
    auto config = [&, recipe = recipe, data = data](const std::string& tag) {
      json c = {{"name", recipe + "-ev-" + tag}, {"base_model", f.model}, {"method", "lora"}, {"recipe", recipe},
                {"train_data", {f.dir + "/ev-" + data + ".jsonl"}}, {"eval_data", {f.dir + "/ev-held-" + data + ".jsonl"}},
                {"batch_size", 2}, {"max_steps", 1}, {"lr", 1e-12}, {"max_seq_len", 48}, {"lora", {{"dropout", 0.0}}}};
      const std::string path = f.dir + "/" + recipe + "-ev-" + tag + ".json";
      std::ofstream(path) << c.dump(2);
      return path;
    };
    const std::string one = f.dir + "/" + recipe + "-ev-one", two = f.dir + "/" + recipe + "-ev-two";
    auto a = cli("train --config " + shell_quote(config("one")) + " --run-dir " + shell_quote(one) + ws_arg() + " --json");
    ASSERT_EQ(a.code, 0) << recipe << ": " << a.err;
    auto b = cli("launch --nproc 2 -- train --config " + shell_quote(config("two")) + " --run-dir " + shell_quote(two) + ws_arg() +
                 " --json");
    ASSERT_EQ(b.code, 0) << recipe << ": " << b.err;
    EXPECT_NE(b.out.find("held-out evaluation split over 2 processes: 5 batches"), std::string::npos) << recipe << ": " << b.out;
    const json ea = eval_metrics(one), eb = eval_metrics(two);
    ASSERT_GE(ea.size(), 3u) << recipe << ": " << ea.dump();
    ASSERT_EQ(eb.size(), ea.size()) << recipe << ": " << eb.dump();
    for (const auto& [k, v] : ea.items()) {
      ASSERT_TRUE(eb.contains(k)) << recipe << " " << k;
      EXPECT_NEAR(eb[k].get<double>(), v.get<double>(), 1e-6 * (1 + std::abs(v.get<double>()))) << recipe << " " << k;
    }
  }
}
