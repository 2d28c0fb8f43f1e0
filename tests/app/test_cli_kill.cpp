// kill -9 anywhere loses nothing: hone-cli is killed with SIGKILL at several points of a dataset
// import, a label merge, an export, a training run writing checkpoints and a workspace migration
// (a hub download's kill is in test_hub). Each leaves the old state or the new one (never half a
// row set, half a file or a half export), and the next start says what it cleaned and goes on.
// The kill points are fractions of the same command's uninterrupted time, measured first.
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
#include <thread>

#include "common/files.h"
#include "model/safetensors.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/workspace.h"
#include "test_support.h"

using namespace hone;
using json = nlohmann::json;
namespace fs = std::filesystem;
using test::cli;
using test::shell_quote;

namespace {

using Clock = std::chrono::steady_clock;
const double kFractions[] = {0.2, 0.45, 0.7, 0.9};

// Runs `hone-cli args...`, killing it with SIGKILL after `kill_after_s` (< 0: never). Returns the
// wait status; `seconds` is how long it ran.
int run_cli(const std::vector<std::string>& args, double kill_after_s, double* seconds = nullptr, std::string* err = nullptr) {
  static int n = 0;
  const std::string errf = std::string(HONE_TEST_WORK) + "/kill-err-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open("/dev/null", O_WRONLY), e = ::open(errf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv = {const_cast<char*>(HONE_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(HONE_CLI, argv.data());
    ::_exit(127);
  }
  int st = 0;
  if (kill_after_s >= 0) {
    const auto at = t0 + std::chrono::duration<double>(kill_after_s);
    while (::waitpid(pid, &st, WNOHANG) == 0) {
      if (Clock::now() >= at) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  } else {
    bool hung = false;
    st = test::wait_bounded(pid, 300, hung);
  }
  if (seconds) *seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (err) *err = file_exists(errf) ? read_file(errf) : "";
  ::unlink(errf.c_str());
  return st;
}

bool ok(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }

int64_t count(const std::string& db_path, const std::string& sql) {
  Db db(db_path, true);
  Stmt s = db.prepare(sql);
  return s.step() ? s.i64(0) : -1;
}

void expect_intact(const std::string& db_path) {
  Db db(db_path, true);
  Stmt s = db.prepare("PRAGMA integrity_check");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.text(0), "ok");
}

std::string write_rows(const std::string& path, int n, const std::function<json(int)>& row) {
  std::string text;
  for (int i = 0; i < n; ++i) text += row(i).dump() + "\n";
  write_file_atomic(path, text);
  return path;
}

}  // namespace

// A dataset import is one transaction: killed anywhere, the dataset is absent or whole.
TEST(Kill, DatasetImportIsAllOrNothing) {
  const std::string d = test::temp_dir("kill-import");
  const int rows = 80000;
  const std::string file = write_rows(d + "/big.jsonl", rows, [](int i) {
    return json({{"instruction", "Write the number " + std::to_string(i)}, {"output", "It is " + std::to_string(i) + "."}});
  });
  double whole = 0;
  ASSERT_TRUE(ok(run_cli({"dataset", "import", file, "--name", "big", "--workspace", d + "/timed"}, -1, &whole)));
  const std::string ws = d + "/ws", db = ws + "/hone.db";
  int whole_seen = 0;
  for (double f : kFractions) {
    SCOPED_TRACE("killed at " + std::to_string(f * whole) + " s of " + std::to_string(whole));
    run_cli({"dataset", "import", file, "--name", "big", "--workspace", ws}, f * whole);
    if (!file_exists(db)) continue;  // killed before the workspace existed
    expect_intact(db);
    const int64_t n = count(db, "SELECT COUNT(*) FROM datasets WHERE name = 'big'");
    ASSERT_TRUE(n == 0 || n == 1);
    if (n == 1) {
      EXPECT_EQ(count(db, "SELECT COUNT(*) FROM rows r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'big'"), rows);
      ++whole_seen;
      Workspace w(ws);
      delete_dataset(w, find_dataset(w, "big").id);
    }
    EXPECT_EQ(count(db, "SELECT COUNT(*) FROM rows"), 0);
  }
  ASSERT_TRUE(ok(run_cli({"dataset", "import", file, "--name", "big", "--workspace", ws}, -1)));
  EXPECT_EQ(count(db, "SELECT COUNT(*) FROM rows"), rows);
  std::cout << "import: " << whole << " s uninterrupted; " << whole_seen << " of 4 kills came after the commit\n";
}

// Merging another annotator's verdicts is one transaction: none or all of them land.
TEST(Kill, LabelMergeIsAllOrNothing) {
  const std::string d = test::temp_dir("kill-label");
  const int rows = 30000;
  const std::string file = write_rows(d + "/pairs.jsonl", rows, [](int i) {
    return json({{"prompt", "Which is right for " + std::to_string(i) + "?"}, {"chosen", "yes " + std::to_string(i)}, {"rejected", "no"}});
  });
  // The verdicts to merge, made in another workspace by an annotator.
  const std::string verdicts = d + "/verdicts.jsonl";
  {
    Workspace src(d + "/src");
    const ImportReport rep = import_dataset(src, file, "pairs", {});
    ASSERT_EQ(rep.imported, rows);
    Transaction t(src.db());
    for (const auto& r : read_rows(src, rep.dataset_id, 0, rows)) set_label(src, r.id, r.position % 3 ? "chosen" : "rejected", "alice");
    t.commit();
    ASSERT_EQ(export_verdicts(src, rep.dataset_id, verdicts, "alice"), rows);
  }
  auto setup = [&](const std::string& ws) {
    auto r = cli("dataset import " + shell_quote(file) + " --name pairs --workspace " + shell_quote(ws));
    ASSERT_EQ(r.code, 0) << r.err;
  };
  setup(d + "/timed");
  double whole = 0;
  ASSERT_TRUE(ok(run_cli({"label", "merge", "pairs", verdicts, "--workspace", d + "/timed"}, -1, &whole)));
  ASSERT_EQ(count(d + "/timed/hone.db", "SELECT COUNT(*) FROM labels"), rows);
  const std::string ws = d + "/ws", db = ws + "/hone.db";
  setup(ws);
  for (double f : kFractions) {
    SCOPED_TRACE("killed at " + std::to_string(f * whole) + " s of " + std::to_string(whole));
    run_cli({"label", "merge", "pairs", verdicts, "--workspace", ws}, f * whole);
    expect_intact(db);
    const int64_t n = count(db, "SELECT COUNT(*) FROM labels");
    EXPECT_TRUE(n == 0 || n == rows) << n;
    if (n == rows) {
      Db w(db);
      w.exec("DELETE FROM labels");
    }
  }
}

namespace {

// A tiny trained run to export, and a folder for runs that write checkpoints.
struct RunFixture {
  test::CliFixture f;
  std::string run_dir;
};

const RunFixture& run_fixture() {
  static RunFixture x = [] {
    RunFixture r;
    r.f = test::make_cli_fixture("kill-run", 3, [](int i) {
      return json({{"instruction", "Say " + std::to_string(i)}, {"output", "It is " + std::to_string(i) + "."}});
    });
    r.run_dir = r.f.dir + "/trained";
    const std::string cfg = r.f.dir + "/lora.json";
    std::ofstream(cfg) << json({{"name", "trained"}, {"base_model", r.f.model}, {"method", "lora"}, {"train_data", {r.f.data}},
                                {"max_steps", 2}, {"batch_size", 2}, {"max_seq_len", 32}})
                              .dump();
    auto t = cli("train --config " + shell_quote(cfg) + " --run-dir " + shell_quote(r.run_dir) + " --workspace " + shell_quote(r.f.ws));
    if (t.code != 0) throw std::runtime_error("train failed: " + t.err);
    return r;
  }();
  return x;
}

std::map<std::string, uintmax_t> listing(const std::string& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = e.is_regular_file() ? e.file_size() : 0;
  return out;
}

}  // namespace

// An export is written beside its destination and renamed into place: killed anywhere, the
// destination is absent or the whole export; the next export removes the dead one's staging
// folder and says so.
TEST(Kill, ExportLeavesNoHalfExport) {
  const auto& x = run_fixture();
  const std::string d = test::temp_dir("kill-export");
  for (const std::string format : {"merged", "gguf"}) {
    SCOPED_TRACE(format);
    double whole = 0;
    const std::string ref = d + "/" + format + "-whole";
    ASSERT_TRUE(ok(run_cli({"export", "--run", x.run_dir, "--format", format, "--out", ref}, -1, &whole)));
    const auto expected = listing(ref);
    ASSERT_FALSE(expected.empty());
    for (double f : kFractions) {
      SCOPED_TRACE("killed at " + std::to_string(f * whole) + " s of " + std::to_string(whole));
      const std::string out = d + "/" + format + "-" + std::to_string(static_cast<int>(f * 100));
      run_cli({"export", "--run", x.run_dir, "--format", format, "--out", out}, f * whole);
      if (is_directory(out)) EXPECT_EQ(listing(out), expected);  // whole, or not there at all
      std::vector<std::string> staging;
      for (const auto& e : fs::directory_iterator(d))
        if (e.path().filename().string().rfind("." + fs::path(out).filename().string() + ".partial-", 0) == 0) staging.push_back(e.path());
      if (!is_directory(out)) {
        std::string err;
        ASSERT_TRUE(ok(run_cli({"export", "--run", x.run_dir, "--format", format, "--out", out}, -1, nullptr, &err))) << err;
        EXPECT_EQ(listing(out), expected);
        for (const auto& s : staging) {
          EXPECT_FALSE(fs::exists(s)) << s;
          EXPECT_NE(err.find("removed " + s), std::string::npos) << err;
        }
      }
    }
  }
}

// A run killed while it trains and writes a checkpoint every step: every checkpoint on disk is
// whole (a half-written one only ever exists as .tmp-step-N), the next start marks the run
// interrupted and removes the unfinished checkpoint, saying both, and the run resumes to its end.
TEST(Kill, TrainingKeepsWholeCheckpointsAndResumes) {
  const auto& x = run_fixture();
  const std::string d = test::temp_dir("kill-train");
  const std::string cfg = d + "/run.json";
  std::ofstream(cfg) << json({{"name", "killed"}, {"base_model", x.f.model}, {"method", "full"}, {"train_data", {x.f.data}},
                              {"max_steps", 30}, {"batch_size", 2}, {"max_seq_len", 32}, {"save_every", 1},
                              {"keep_checkpoints", 2}, {"seed", 1}})
                            .dump();
  double whole = 0;
  ASSERT_TRUE(ok(run_cli({"train", "--config", cfg, "--run-dir", d + "/timed", "--workspace", d + "/ws-timed"}, -1, &whole)));
  for (double f : kFractions) {
    SCOPED_TRACE("killed at " + std::to_string(f * whole) + " s of " + std::to_string(whole));
    const std::string ws = d + "/ws-" + std::to_string(static_cast<int>(f * 100)), run = ws + "-run";
    run_cli({"train", "--config", cfg, "--run-dir", run, "--workspace", ws}, f * whole);
    const bool had_tmp = [&] {
      if (!is_directory(run + "/checkpoints")) return false;
      for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
        if (e.path().filename().string().rfind(".tmp-", 0) == 0) return true;
      return false;
    }();
    if (is_directory(run + "/checkpoints"))
      for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
        const std::string n = e.path().filename().string();
        if (n.rfind("step-", 0) != 0) continue;
        EXPECT_TRUE(file_exists(e.path() / "trainer_state.json")) << n;
        EXPECT_NO_THROW(SafetensorsFile((e.path() / "model" / "model.safetensors").string())) << n;
        EXPECT_NO_THROW(SafetensorsFile((e.path() / "optimizer.safetensors").string())) << n;
      }
    std::cout << "training killed at " << f * whole << " s of " << whole << (had_tmp ? ": a checkpoint half-written\n" : "\n");
    if (!file_exists(ws + "/hone.db")) continue;
    auto listed = cli("runs list --json --workspace " + shell_quote(ws));
    ASSERT_EQ(listed.code, 0) << listed.err;
    const json runs = json::parse(listed.out);
    if (runs.empty()) continue;  // killed before the run was recorded: it left no record
    const json r = runs[0];
    if (r["status"] == "completed") continue;  // killed after the end
    EXPECT_EQ(r["status"], "interrupted");
    EXPECT_NE(listed.err.find("note: run " + std::to_string(r["id"].get<int>()) + " (killed) was still marked running"), std::string::npos)
        << listed.err;
    if (had_tmp) EXPECT_NE(listed.err.find("a checkpoint its process did not finish writing"), std::string::npos) << listed.err;
    if (is_directory(run + "/checkpoints"))
      for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
        EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u);
        EXPECT_NE(e.path().filename().string().rfind(".del-", 0), 0u);  // an old one caught being removed
      }
    auto res = cli("runs resume " + std::to_string(r["id"].get<int>()) + " --json --workspace " + shell_quote(ws));
    if (res.code != 0 && res.err.find("no checkpoint") != std::string::npos) continue;  // killed before the first one
    ASSERT_EQ(res.code, 0) << res.err;
    auto shown = json::parse(cli("runs show " + std::to_string(r["id"].get<int>()) + " --json --workspace " + shell_quote(ws)).out);
    EXPECT_EQ(shown["status"], "completed");
    EXPECT_EQ(shown["final"]["steps"], 30);
  }
}

// A schema upgrade is one transaction per version: a workspace killed while it upgrades opens at
// the version it reached and finishes the upgrade with every row and label.
TEST(Kill, MigrationResumesWithEveryRow) {
  const std::string d = test::temp_dir("kill-migrate");
  const int rows = 150000;
  auto make_v2 = [&](const std::string& ws) {
    make_dirs(ws);
    Db db(ws + "/hone.db");
    migrate(db, 2);
    Transaction t(db);
    db.exec("INSERT INTO datasets (id, name, kind, format, source) VALUES (1, 'old', 'preference', 'preference', 'x')");
    Stmt r = db.prepare("INSERT INTO rows (dataset_id, position, data) VALUES (1, ?, ?)");
    Stmt l = db.prepare("INSERT INTO labels (row_id, label, author) VALUES (?, 'chosen', 'v2')");
    for (int i = 0; i < rows; ++i) {
      r.bind(1, static_cast<int64_t>(i)).bind(2, "{\"prompt\":\"p" + std::to_string(i) + "\",\"chosen\":\"a\",\"rejected\":\"b\"}");
      r.run();
      r.reset();
      l.bind(1, db.last_insert_id());
      l.run();
      l.reset();
    }
    t.commit();
  };
  make_v2(d + "/timed");
  double whole = 0;
  ASSERT_TRUE(ok(run_cli({"dataset", "list", "--workspace", d + "/timed"}, -1, &whole)));
  for (double f : kFractions) {
    SCOPED_TRACE("killed at " + std::to_string(f * whole) + " s of " + std::to_string(whole));
    const std::string ws = d + "/ws-" + std::to_string(static_cast<int>(f * 100));
    make_v2(ws);
    run_cli({"dataset", "list", "--workspace", ws}, f * whole);
    expect_intact(ws + "/hone.db");
    const int64_t v = count(ws + "/hone.db", "PRAGMA user_version");
    EXPECT_TRUE(v >= 2 && v <= kSchemaVersion) << v;
    std::cout << "migration killed at " << f * whole << " s of " << whole << ": at schema version " << v << "\n";
    auto listed = cli("dataset list --json --workspace " + shell_quote(ws));
    ASSERT_EQ(listed.code, 0) << listed.err;
    EXPECT_EQ(json::parse(listed.out)[0]["rows"], rows);
    EXPECT_EQ(count(ws + "/hone.db", "PRAGMA user_version"), kSchemaVersion);
    EXPECT_EQ(count(ws + "/hone.db", "SELECT COUNT(*) FROM labels"), rows);
  }
}
