// The loopback hub (tests/hub/hub_server.py) for tests: the repos it serves, made once per
// process, and a server on a free port with its own cache; shared by the core and GUI tests.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../test_support.h"

namespace hone::test {

inline std::string q(const std::string& s) { return shell_quote(s); }

// The repos the loopback hub serves, made once per process: a tiny Llama with a README and a
// pickled file beside it, the same model gated, a model of an architecture Hone does not load, and
// a chat dataset in the layout hub datasets have (data/train-*.jsonl + README.md).
inline std::string hub_root() {
  static std::string root = [] {
    std::string d = temp_dir("hub-root");
    std::string m = d + "/models/test-org/tiny-model";
    std::filesystem::create_directories(m);
    auto r = cli("init-model --preset tiny --tokenizer builtin --out " + q(m) + " --seed 3");
    if (r.code != 0) throw std::runtime_error("init-model failed: " + r.err);
    write_file_atomic(m + "/README.md", "---\nlicense: apache-2.0\n---\n# tiny\n");
    std::string pickle(4096, '\x80');
    write_file_atomic(m + "/pytorch_model.bin", pickle);
    std::filesystem::create_directories(d + "/models/gated");
    std::filesystem::copy(m, d + "/models/gated/tiny-model", std::filesystem::copy_options::recursive);
    std::filesystem::create_directories(d + "/models/other-org/tiny-bert");
    write_file_atomic(d + "/models/other-org/tiny-bert/config.json", R"({"model_type": "bert", "hidden_size": 8})");
    std::string ds = d + "/datasets/test-org/chat-data";
    std::filesystem::create_directories(ds + "/data");
    std::string rows;
    for (int i = 0; i < 12; ++i)
      rows += nlohmann::json{{"messages", {{{"role", "user"}, {"content", "q" + std::to_string(i)}},
                                           {{"role", "assistant"}, {"content", "a" + std::to_string(i)}}}}}
                  .dump() +
              "\n";
    write_file_atomic(ds + "/data/train-00000-of-00001.jsonl", rows);
    write_file_atomic(ds + "/README.md", "# chat data\n");
    return d;
  }();
  return root;
}

// A loopback hub on a free port, with faults switched on by `faults` (--drop NAME ...).
struct HubServer {
  std::string dir, cache, log;
  pid_t pid = -1;
  int port = 0;
  explicit HubServer(const std::string& name, const std::string& faults = "") {
    dir = temp_dir("hub-" + name);
    cache = dir + "/cache";
    log = dir + "/requests.log";
    const std::string port_file = dir + "/port";
    const std::string cmd = std::string("exec ") + HONE_PYTHON + " " + q(source("tests/hub/hub_server.py")) + " --root " +
                            q(hub_root()) + " --port-file " + q(port_file) + " --log " + q(log) + " " + faults;
    pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 300 && !file_exists(port_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!file_exists(port_file)) throw std::runtime_error("the loopback hub did not start");
    port = std::stoi(read_file(port_file));
  }
  ~HubServer() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // The environment of a hub client pointed at this server and its own cache (no token, online).
  std::string env(const std::string& extra = "") const {
    return "env -u HF_TOKEN -u HF_HUB_OFFLINE HF_HOME=" + q(dir + "/hf-home") + " HF_ENDPOINT=http://127.0.0.1:" + std::to_string(port) +
           " HF_HUB_CACHE=" + q(cache) + " " + extra + " ";
  }
  RunResult hub(const std::string& args, const std::string& extra = "") const {
    return run(env(extra) + HONE_CLI + " " + args);
  }
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    if (!file_exists(log)) return out;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  std::string repo(const std::string& folder = "models--test-org--tiny-model") const { return cache + "/" + folder; }
};

// Hashes from Python's hashlib (an independent reference): sha256 of the bytes, and git's blob sha1.
inline std::string py_hash(const std::string& path, bool git_sha1) {
  const std::string code = git_sha1 ? "import hashlib,sys; d=open(sys.argv[1],'rb').read(); print(hashlib.sha1(b'blob %d\\0' % len(d) + d).hexdigest())"
                                    : "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())";
  auto r = run(std::string(HONE_PYTHON) + " -c " + q(code) + " " + q(path));
  if (r.code != 0) throw std::runtime_error("python hashlib failed: " + r.err);
  return r.out.substr(0, r.out.find('\n'));
}

inline std::string model_src(const std::string& file) { return hub_root() + "/models/test-org/tiny-model/" + file; }

}  // namespace hone::test
