// The hub client against a loopback hub (tests/hub/hub_server.py): the cache layout huggingface_hub
// writes, resumed and refused downloads, gated repos, search, and hub names resolving offline.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "hub/hub_download.h"
#include "test_support.h"
#include "../hub/loopback_hub.h"

namespace fs = std::filesystem;
using namespace hone;
using namespace hone::test;

namespace {


bool same_bytes(const std::string& a, const std::string& b) { return read_file(a) == read_file(b); }

int64_t size_or_zero(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

TEST(HubCache, NamesAndLocations) {
  HubRef r;
  ASSERT_TRUE(parse_hub_ref("Qwen/Qwen2.5-0.5B-Instruct@v1.0", &r));
  EXPECT_EQ(r.id, "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(r.revision, "v1.0");
  EXPECT_EQ(repo_folder_name(r), "models--Qwen--Qwen2.5-0.5B-Instruct");
  ASSERT_TRUE(parse_hub_ref("datasets/trl-lib/ultrafeedback_binarized", &r));
  EXPECT_EQ(repo_folder_name(r), "datasets--trl-lib--ultrafeedback_binarized");
  for (const char* bad : {"/abs/path", "a/b/c", "../x", "org/..", "org/na--me", "org/", "org/x@", "org/x@../../etc", "./m"})
    EXPECT_FALSE(parse_hub_ref(bad, nullptr)) << bad;
  // huggingface_hub's order: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub.
  ::setenv("HF_HOME", "/tmp/hfh", 1);
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(hub_cache_dir(), "/tmp/hfh/hub");
  ::setenv("HF_HUB_CACHE", "/tmp/c", 1);
  EXPECT_EQ(hub_cache_dir(), "/tmp/c");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HF_HOME");
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  EXPECT_EQ(hub_cache_dir(), "/tmp/xdg/huggingface/hub");
  ::unsetenv("XDG_CACHE_HOME");
}

// From the hub_plan fuzz target (tests/fuzz/regressions/hub_plan): a number like 1e999 in the
// answer threw nlohmann's out_of_range past get_json (found by fuzzing), and file sizes near 2^63
// overflowed the plan's totals (found writing the target).
TEST(Hub, PlanChecksTheHubsAnswer) {
  EXPECT_THROW(hub::parse_hub_json(R"({"sha": 1e999})", "org/name", "https://hub/api"), Error);
  EXPECT_THROW(hub::parse_hub_json("<html>", "org/name", "https://hub/api"), Error);
  EXPECT_THROW(hub::parse_hub_json(std::string(100000, '[') + std::string(100000, ']'), "org/name", "https://hub/api"), Error);
  const std::string sha = "0123456789abcdef0123456789abcdef01234567";
  auto file = [](const std::string& name, int64_t size) {
    return nlohmann::json{{"rfilename", name}, {"blobId", std::string(40, 'a')}, {"size", size}};
  };
  hub::DownloadRequest r;
  r.ref.id = "org/name";
  const std::string repo = temp_dir("hub-plan") + "/models--org--name";
  const hub::DownloadPlan ok = hub::plan_from_answer({{"sha", sha}, {"siblings", {file("config.json", 700), file("model.safetensors", 4000)}}}, r, repo);
  EXPECT_EQ(ok.commit, sha);
  EXPECT_EQ(ok.bytes_total, 4700);
  const std::pair<nlohmann::json, std::string> bad[] = {
      {{{"sha", sha}, {"siblings", {file("config.json", INT64_MAX), file("model.safetensors", INT64_MAX)}}}, "no valid size"},
      {{{"sha", sha}, {"siblings", {file("../../etc/passwd", 1)}}}, "unsafe file name"},
      {{{"sha", sha}, {"siblings", {file("config.json", 1), file("config.json", 1)}}}, "twice"},
      {{{"sha", 5}, {"siblings", nlohmann::json::array()}}, "commit hash"},
      {nlohmann::json::array(), "commit hash"},
  };
  for (const auto& [answer, why] : bad) {
    try {
      hub::plan_from_answer(answer, r, repo);
      ADD_FAILURE() << answer.dump() << " was planned";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("org/name"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}

TEST(Hub, DownloadWritesHuggingfaceHubLayoutAndWorksOffline) {
  HubServer s("layout");
  auto r = s.hub("hub download test-org/tiny-model --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped pytorch_model.bin"), std::string::npos) << r.err;  // pickles only when asked
  const std::string repo = s.repo();
  const std::string commit = read_file(repo + "/refs/main");
  ASSERT_EQ(commit.size(), 40u) << commit;
  const std::string snap = repo + "/snapshots/" + commit;
  // Each file: a relative link to ../../blobs/ETAG, the blob named by sha256 (LFS) or git's sha1.
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"}) {
    const std::string link = snap + "/" + f;
    ASSERT_TRUE(fs::is_symlink(link)) << f;
    const bool lfs = std::string(f) == "model.safetensors";
    const std::string want = "../../blobs/" + py_hash(model_src(f), !lfs);
    EXPECT_EQ(fs::read_symlink(link).string(), want) << f;
    EXPECT_TRUE(same_bytes(link, model_src(f))) << f;
  }
  EXPECT_FALSE(fs::exists(snap + "/pytorch_model.bin"));
  for (const auto& e : fs::directory_iterator(repo + "/blobs")) EXPECT_NE(e.path().extension(), ".incomplete");
  // The last JSON line says where it went.
  auto done = nlohmann::json::parse(r.out.substr(r.out.rfind("{\"")));
  EXPECT_EQ(done["event"], "done");
  EXPECT_EQ(done["snapshot"], snap);

  // Offline, with no server at all: the name resolves from the cache.
  const std::string offline = "env -u HF_ENDPOINT HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + q(s.cache) + " ";
  auto in = run(offline + HONE_CLI + " inspect --model test-org/tiny-model");
  ASSERT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(nlohmann::json::parse(in.out)["architecture"], "llama");
  auto in2 = run(offline + HONE_CLI + " inspect --model test-org/tiny-model@" + commit);
  EXPECT_EQ(in2.code, 0) << in2.err;
  auto gen = run(offline + HONE_CLI + " generate --model test-org/tiny-model --prompt hi --max-new-tokens 2");
  EXPECT_EQ(gen.code, 0) << gen.err;
  auto missing = run(offline + HONE_CLI + " inspect --model test-org/other");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("hone-cli hub download test-org/other"), std::string::npos) << missing.err;
  auto list = run(offline + HONE_CLI + " hub list --json");
  ASSERT_EQ(list.code, 0) << list.err;
  auto repos = nlohmann::json::parse(list.out)["repos"];
  ASSERT_EQ(repos.size(), 1u);
  EXPECT_EQ(repos[0]["id"], "test-org/tiny-model");
  EXPECT_EQ(repos[0]["architecture"], "llama");
  EXPECT_TRUE(repos[0]["loadable"].get<bool>()) << repos[0].dump();
  EXPECT_GT(repos[0]["parameters"].get<int64_t>(), 0);
  // A run config naming the model by its hub name trains from the cached snapshot.
  const std::string cfg = s.dir + "/run.json";
  write_file_atomic(s.dir + "/train.jsonl", R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]})" "\n");
  write_file_atomic(cfg, nlohmann::json{{"base_model", "test-org/tiny-model"}, {"train_data", {"train.jsonl"}}, {"max_steps", 1}}.dump());
  auto tr = run(offline + HONE_CLI + " train --config " + q(cfg) + " --run-dir " + q(s.dir + "/run"));
  ASSERT_EQ(tr.code, 0) << tr.err;
  // The run and its PEFT adapter record the name people share, not this machine's cache path.
  EXPECT_EQ(load_json(s.dir + "/run/config.json")["base_model"], "test-org/tiny-model");
  EXPECT_EQ(load_json(s.dir + "/run/adapter/adapter_config.json")["base_model_name_or_path"], "test-org/tiny-model");
  auto g2 = run(offline + HONE_CLI + " generate --run " + q(s.dir + "/run") + " --prompt hi --max-new-tokens 2");
  EXPECT_EQ(g2.code, 0) << g2.err;
  // A second download fetches nothing: every blob is there.
  auto again = s.hub("hub download test-org/tiny-model --json");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out.substr(again.out.rfind("{\"")))["bytes_fetched"], 0);
  // hub rm deletes the repo.
  auto rm = run(offline + HONE_CLI + " hub rm test-org/tiny-model");
  EXPECT_EQ(rm.code, 0) << rm.err;
  EXPECT_FALSE(fs::exists(repo));
}

TEST(Hub, DroppedConnectionResumesToTheSameBytes) {
  HubServer s("drop", "--drop model.safetensors");
  auto r = s.hub("hub download test-org/tiny-model");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string sha = py_hash(model_src("model.safetensors"), false);
  EXPECT_TRUE(same_bytes(s.repo() + "/blobs/" + sha, model_src("model.safetensors")));
  // The second request for the file asked for the rest only.
  int ranged = 0;
  for (const auto& q : s.requests())
    if (q["path"].get<std::string>().rfind("/cdn/" + sha, 0) == 0 && q["range"] != "") {
      ++ranged;
      EXPECT_NE(q["range"], "bytes=0-");
    }
  EXPECT_EQ(ranged, 1);
}

// Starts `cmd` (a hub download) against a --stall server and returns once the server has sent half
// of the file with hash `sha` and stalled (the client waits for the rest); -1 if it never asked.
pid_t start_stalled_download(HubServer& s, const std::string& cmd, const std::string& sha) {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto asked = [&] {
    for (const auto& q : s.requests())
      if (q["path"].get<std::string>().rfind("/cdn/" + sha, 0) == 0) return true;
    return false;
  };
  for (int i = 0; i < 500 && !asked(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!asked()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return pid;
}

TEST(Hub, InterruptedDownloadLeavesNothingHalfAndResumes) {
  HubServer s("stall", "--stall model.safetensors");
  const std::string sha = py_hash(model_src("model.safetensors"), false);
  const std::string part = s.repo() + "/blobs/" + sha + ".incomplete";
  const std::string cmd = "exec " + s.env() + HONE_CLI + " hub download test-org/tiny-model --jobs 2";
  const pid_t pid = start_stalled_download(s, cmd, sha);
  ASSERT_GT(pid, 0) << "the client never asked for the file";
  const int64_t half = static_cast<int64_t>(fs::file_size(model_src("model.safetensors")) / 2);
  kill(pid, SIGINT);  // as Ctrl-C does
  bool hung = false;
  int st = wait_bounded(pid, 30, hung);
  ASSERT_FALSE(hung);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 130) << st;
  // Resumable, and nothing claims a whole model: no blob, no link for the file, no refs/main.
  EXPECT_EQ(size_or_zero(part), half);
  EXPECT_FALSE(fs::exists(s.repo() + "/blobs/" + sha));
  EXPECT_FALSE(fs::exists(s.repo() + "/refs/main"));
  for (auto it = fs::recursive_directory_iterator(s.repo() + "/snapshots"); it != fs::end(it); ++it)
    EXPECT_NE(it->path().filename(), "model.safetensors");
  auto r = s.hub("hub download test-org/tiny-model");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("1 resumed"), std::string::npos) << r.err;
  EXPECT_TRUE(same_bytes(s.repo() + "/blobs/" + sha, model_src("model.safetensors")));
  EXPECT_FALSE(fs::exists(part));
  bool asked_rest = false;
  for (const auto& q : s.requests()) asked_rest = asked_rest || q["range"] == "bytes=" + std::to_string(half) + "-";
  EXPECT_TRUE(asked_rest);
}

// kill -9 mid-file: no handler runs, yet the state is the same as after Ctrl-C: the partial blob,
// no whole blob, no snapshot link, no refs; the next download resumes it to the same bytes.
TEST(Hub, KilledDownloadLeavesNothingHalfAndResumes) {
  HubServer s("killed", "--stall model.safetensors");
  const std::string sha = py_hash(model_src("model.safetensors"), false);
  const std::string part = s.repo() + "/blobs/" + sha + ".incomplete";
  const std::string cmd = "exec " + s.env() + HONE_CLI + " hub download test-org/tiny-model";
  const pid_t pid = start_stalled_download(s, cmd, sha);
  ASSERT_GT(pid, 0) << "the client never asked for the file";
  const int64_t half = static_cast<int64_t>(fs::file_size(model_src("model.safetensors")) / 2);
  kill(pid, SIGKILL);
  bool hung = false;
  int st = wait_bounded(pid, 30, hung);
  ASSERT_FALSE(hung);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
  // What reached the disk (bytes still in the killed process's buffers are lost, and fetched again).
  const int64_t kept = size_or_zero(part);
  EXPECT_LE(kept, half);
  EXPECT_FALSE(fs::exists(s.repo() + "/blobs/" + sha));
  EXPECT_FALSE(fs::exists(s.repo() + "/refs/main"));
  for (auto it = fs::recursive_directory_iterator(s.repo() + "/snapshots"); it != fs::end(it); ++it)
    EXPECT_NE(it->path().filename(), "model.safetensors");
  auto listed = s.hub("hub list");
  EXPECT_NE(listed.out.find("download not finished"), std::string::npos) << listed.out;
  auto r = s.hub("hub download test-org/tiny-model");
  ASSERT_EQ(r.code, 0) << r.err;
  if (kept > 0) EXPECT_NE(r.err.find("1 resumed"), std::string::npos) << r.err;
  EXPECT_TRUE(same_bytes(s.repo() + "/blobs/" + sha, model_src("model.safetensors")));
  EXPECT_FALSE(fs::exists(part));
}

TEST(Hub, CorruptedFileIsRefusedAndLeavesNothing) {
  HubServer s("corrupt", "--corrupt model.safetensors");
  auto r = s.hub("hub download test-org/tiny-model");
  ASSERT_NE(r.code, 0);
  EXPECT_NE(r.err.find("model.safetensors: sha256 of the downloaded bytes"), std::string::npos) << r.err;
  const std::string sha = py_hash(model_src("model.safetensors"), false);
  EXPECT_FALSE(fs::exists(s.repo() + "/blobs/" + sha));
  EXPECT_FALSE(fs::exists(s.repo() + "/blobs/" + sha + ".incomplete"));
  EXPECT_FALSE(fs::exists(s.repo() + "/refs/main"));
  for (auto it = fs::recursive_directory_iterator(s.repo() + "/snapshots"); it != fs::end(it); ++it)
    EXPECT_NE(it->path().filename(), "model.safetensors");
}

TEST(Hub, GatedMissingAndOfflineSayWhatToDo) {
  HubServer s("gated");
  auto no_token = s.hub("hub download gated/tiny-model");
  ASSERT_NE(no_token.code, 0);
  EXPECT_NE(no_token.err.find("401"), std::string::npos) << no_token.err;
  EXPECT_NE(no_token.err.find("HF_TOKEN"), std::string::npos) << no_token.err;
  // Said once (not once per file), and nothing left behind to list. (The phrase, not the bare
  // number: the loopback hub's port can contain 401.)
  EXPECT_EQ(no_token.err.find("answered 401"), no_token.err.rfind("answered 401")) << no_token.err;
  EXPECT_FALSE(fs::exists(s.repo("models--gated--tiny-model")));
  auto bad = s.hub("hub download gated/tiny-model", "HF_TOKEN=hf_bad");
  ASSERT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("403"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("accept its conditions"), std::string::npos) << bad.err;
  // The token file in HF_HOME works as HF_TOKEN does.
  fs::create_directories(s.dir + "/hf-home");
  write_file_atomic(s.dir + "/hf-home/token", "hf_good\n");
  auto ok = s.hub("hub download gated/tiny-model");
  EXPECT_EQ(ok.code, 0) << ok.err;
  auto missing = s.hub("hub download test-org/does-not-exist");
  ASSERT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;
  auto offline = s.hub("hub download test-org/tiny-model", "HF_HUB_OFFLINE=1");
  ASSERT_NE(offline.code, 0);
  EXPECT_NE(offline.err.find("HF_HUB_OFFLINE"), std::string::npos) << offline.err;
  EXPECT_TRUE(s.requests().size() > 0);
}

TEST(Hub, IncludeGlobsSearchAndDatasets) {
  HubServer s("misc");
  auto r = s.hub("hub download test-org/tiny-model --include '*.bin' --include config.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string snap = read_file(s.repo() + "/refs/main");
  EXPECT_TRUE(same_bytes(s.repo() + "/snapshots/" + snap + "/pytorch_model.bin", model_src("pytorch_model.bin")));
  EXPECT_FALSE(fs::exists(s.repo() + "/snapshots/" + snap + "/model.safetensors"));

  auto found = s.hub("hub search tiny --json");
  ASSERT_EQ(found.code, 0) << found.err;
  auto hits = nlohmann::json::parse(found.out);
  std::set<std::string> ids;
  for (const auto& h : hits) ids.insert(h["id"].get<std::string>());
  EXPECT_TRUE(ids.count("test-org/tiny-model"));
  EXPECT_FALSE(ids.count("other-org/tiny-bert"));  // an architecture Hone does not load
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["id"], "test-org/tiny-model");  // most downloaded first (the loopback hub lists by name)
  auto all = s.hub("hub search tiny --all --json");
  EXPECT_NE(all.out.find("other-org/tiny-bert"), std::string::npos) << all.out;

  auto d = s.hub("hub download --dataset test-org/chat-data");
  ASSERT_EQ(d.code, 0) << d.err;
  const std::string ds = s.repo("datasets--test-org--chat-data");
  EXPECT_TRUE(fs::exists(ds + "/snapshots/" + read_file(ds + "/refs/main") + "/data/train-00000-of-00001.jsonl"));
  // The symlink of a file in a folder climbs one more level.
  EXPECT_EQ(fs::read_symlink(ds + "/snapshots/" + read_file(ds + "/refs/main") + "/data/train-00000-of-00001.jsonl").string().rfind("../../../blobs/", 0), 0u);
  auto imp = s.hub("dataset import test-org/chat-data --workspace " + q(s.dir + "/ws") + " --json");
  ASSERT_EQ(imp.code, 0) << imp.err << imp.out;
  EXPECT_EQ(nlohmann::json::parse(imp.out)["imported"], 12) << imp.out;  // the README is not a row
  auto listed = s.hub("dataset list --workspace " + q(s.dir + "/ws") + " --json");
  EXPECT_NE(listed.out.find("\"chat-data\""), std::string::npos) << listed.out;  // named after the repo
  // A name cached only as a dataset is that dataset for path and rm, as `hub list` shows it.
  auto path = s.hub("hub path test-org/chat-data");
  EXPECT_EQ(path.code, 0) << path.err;
  EXPECT_EQ(path.out.substr(0, path.out.find('\n')), ds + "/snapshots/" + read_file(ds + "/refs/main"));
}
