// Distributed tests. The launcher environment (torchrun's and SLURM's variables) read by hand, and
// the c10d process group in real processes: two ranks forked from this test average their tensors
// over Gloo through a TCPStore on the loopback, in buckets, to the values worked out here; and a
// rank that leaves makes the other's collective fail within its timeout with a clear error. And the
// equivalence of data parallelism: two ranks with batch b train as one process with batch 2b.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "train/trainer.h"
#include "distributed/dist_env.h"
#include "distributed/process_group.h"
#include "test_support.h"

using namespace hone;

namespace {

std::function<const char*(const char*)> vars(const std::map<std::string, std::string>& m) {
  return [m](const char* n) -> const char* {
    auto it = m.find(n);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

void refused(const std::map<std::string, std::string>& m, const std::string& what) {
  try {
    dist_env_from(vars(m));
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(DistEnv, TorchrunAndSlurmVariables) {
  DistEnv none = dist_env_from(vars({}));
  EXPECT_FALSE(none.distributed());
  EXPECT_EQ(none.launcher, "none");
  EXPECT_EQ(none.describe(), "one process");

  DistEnv t = dist_env_from(vars({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                  {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29400"}}));
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 4);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.local_world_size, 2);
  EXPECT_EQ(t.master_addr, "10.0.0.1");
  EXPECT_EQ(t.master_port, 29400);
  EXPECT_EQ(t.describe(), "rank 3 of 4 (local 1 of 2), rendezvous 10.0.0.1:29400, torchrun");
  EXPECT_FALSE(t.agent_store);

  // torchrun's static rendezvous: its agent hosts the store, the ranks join under the attempt's prefix.
  DistEnv a = dist_env_from(vars({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                  {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(a.agent_store);
  EXPECT_EQ(a.restart_count, 2);
  EXPECT_FALSE(dist_env_from(vars({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                                   {"TORCHELASTIC_USE_AGENT_STORE", "False"}})).agent_store);

  // srun: ranks from SLURM, the rendezvous host from the node list when MASTER_ADDR is not set.
  DistEnv s = dist_env_from(vars({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                  {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"SLURM_JOB_NODELIST", "gpu[07-08]"}}));
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.local_world_size, 4);
  EXPECT_EQ(s.master_addr, "gpu07");
  EXPECT_EQ(s.master_port, 29500);
  // torchrun's variables win over SLURM's (torchrun inside an allocation).
  EXPECT_EQ(dist_env_from(vars({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "1"}})).launcher, "torchrun");

  EXPECT_EQ(first_slurm_host("node[01-04,07],gpu3"), "node01");
  EXPECT_EQ(first_slurm_host("a1,a2"), "a1");
  EXPECT_EQ(first_slurm_host("rack[3,5]-n[1-2]"), "rack3-n1");
  EXPECT_EQ(first_slurm_host("solo"), "solo");

  refused({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "rank 2 is not below the world size 2");
  refused({{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK=\"x\"");
  refused({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT");
  refused({{"RANK", "0"}, {"WORLD_SIZE", "2"}}, "needs MASTER_ADDR");
}

namespace {

// Forks one process per rank running `body(env)`; each writes what it has to say to out/<rank>.txt
// and exits. Returns after all have exited (or kills them after `limit`).
void run_ranks(int world, const std::string& out, const std::function<std::string(const DistEnv&)>& body,
               std::chrono::seconds limit = std::chrono::seconds(60)) {
  const int port = free_local_port();
  std::vector<pid_t> kids;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      DistEnv e;
      e.rank = r;
      e.world_size = world;
      e.local_rank = r;
      e.local_world_size = world;
      e.master_port = port;
      e.launcher = "torchrun";
      std::string said;
      try {
        said = body(e);
      } catch (const std::exception& x) {
        said = std::string("error: ") + x.what();
      }
      std::ofstream(out + "/" + std::to_string(r) + ".txt") << said;
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (pid_t k : kids) {
    int st = 0;
    while (::waitpid(k, &st, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        for (pid_t x : kids) ::kill(x, SIGKILL);
        ADD_FAILURE() << "ranks still running after " << limit.count() << " s";
        ::waitpid(k, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace

// Rank r holds a = [1, 2, 3, 4, 5] * (r + 1) and b = ones(2, 3) * (r + 3) * 10; the mean over 2 ranks
// is a * 1.5 and b = 35. A bucket of 16 bytes holds one tensor at a time (3 collectives), and then
// one of 1 MiB holds both: the results must not depend on the packing.
TEST(ProcessGroup, TwoRanksAverageTheirTensorsInBuckets) {
  const std::string out = test::temp_dir("dist-mean");
  run_ranks(2, out, [](const DistEnv& e) {
    ProcessGroup pg(e, std::chrono::seconds(30));
    std::string said;
    for (int64_t bucket : {int64_t{16}, int64_t{1} << 20}) {
      auto a = at::arange(1, 6, at::kFloat) * static_cast<double>(e.rank + 1);  // [5]
      auto b = at::ones({2, 3}) * static_cast<double>((e.rank + 3) * 10);        // [2, 3]
      auto c = at::full({1}, static_cast<double>(e.rank));                       // [1]
      pg.all_reduce_mean({a, b, c}, bucket);
      for (const auto& t : {a, b.reshape({-1}), c})
        for (int64_t i = 0; i < t.numel(); ++i) said += std::to_string(t[i].item<double>()) + " ";
      said += "| ";
    }
    auto s = at::full({2}, static_cast<double>(e.rank + 1));
    pg.all_reduce_sum(s);
    auto w = at::full({1}, e.rank == 0 ? 7.0 : -1.0);
    pg.broadcast(w, 0);
    pg.barrier();
    return said + std::to_string(s[0].item<double>()) + " " + std::to_string(w[0].item<double>());
  });
  std::string want;
  for (int k = 0; k < 2; ++k) {
    for (double x : {1.5, 3.0, 4.5, 6.0, 7.5}) want += std::to_string(x) + " ";
    for (int i = 0; i < 6; ++i) want += std::to_string(35.0) + " ";
    want += std::to_string(0.5) + " | ";
  }
  want += std::to_string(3.0) + " " + std::to_string(7.0);
  for (int r = 0; r < 2; ++r) EXPECT_EQ(read_file(out + "/" + std::to_string(r) + ".txt"), want) << "rank " << r;
}

// Rank 1 joins and leaves; rank 0's all-reduce must fail within its timeout (2 s), not hang.
// The barrier first: without it rank 1 could leave while rank 0 was still connecting, and rank 0
// then failed (rightly, but in the constructor) with "could not join" (seen once in a clean run).
TEST(ProcessGroup, ALostRankFailsTheCollectiveWithinTheTimeout) {
  const std::string out = test::temp_dir("dist-lost");
  run_ranks(
      2, out,
      [](const DistEnv& e) {
        ProcessGroup pg(e, std::chrono::seconds(2));
        pg.barrier();
        if (e.rank == 1) return std::string("left");
        const auto t0 = std::chrono::steady_clock::now();
        try {
          pg.all_reduce_mean({at::ones({4})});
        } catch (const Error& x) {
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          return std::string(s < 15 ? "failed in time: " : "failed late: ") + x.what();
        }
        return std::string("no failure");
      },
      std::chrono::seconds(45));
  const std::string said = read_file(out + "/0.txt");
  EXPECT_EQ(said.rfind("failed in time: distributed all-reduce failed", 0), 0u) << said;
}

namespace {

struct TinyRun {
  std::string dir, model, data;
};

const TinyRun& tiny() {
  static TinyRun f;
  if (!f.dir.empty()) return f;
  f.dir = test::temp_dir("dist-train");
  f.model = f.dir + "/base";
  auto r = test::run(std::string(HONE_CLI) + " init-model --preset tiny --tokenizer builtin --out " + test::shell_quote(f.model) +
                     " --seed 2");
  if (r.code) throw std::runtime_error(r.err);
  std::string rows;
  const char* words[] = {"table", "model", "chair", "green", "apple", "river", "stone", "light", "cloud", "piano", "tiger", "ocean"};
  for (const char* w : words) {
    std::string rev(w);
    std::reverse(rev.begin(), rev.end());
    rows += nlohmann::json({{"instruction", std::string("Reverse the word ") + w + "."}, {"output", rev}}).dump() + "\n";
  }
  f.data = f.dir + "/train.jsonl";
  write_file_atomic(f.data, rows);
  return f;
}

RunConfig tiny_config(int64_t batch) {
  RunConfig c = default_run_config("lora");
  c.base_model = tiny().model;
  c.train_data = {tiny().data};
  c.batch_size = batch;
  c.grad_accum = 2;
  c.lr = 1e-2;
  c.schedule = "constant";
  c.lora.r = 4;
  c.lora.alpha = 8;
  c.lora.dropout = 0.0;  // dropout masks are drawn per process: with them the runs differ
  c.max_steps = 4;
  c.eval_fraction = 0;
  c.save_every = 0;
  c.bucket_by_length = false;
  return c;
}

std::string losses_text(const TrainResult& r) {
  std::string s = r.status + (r.error.empty() ? "" : ": " + r.error) + "\n";
  for (double l : r.losses) s += std::to_string(l) + "\n";
  return s;
}

}  // namespace

// 2 ranks x batch 3 x 2 accumulation steps against 1 process x batch 6: the same global batches
// (12 rows: one epoch per 2 steps), so the same losses and, after 4 steps, the same adapter.
TEST(DataParallel, TwoRanksTrainAsOneProcessWithTheirGlobalBatch) {
  const std::string one_dir = test::temp_dir("dist-one");
  TrainOptions o1;
  o1.run_dir = one_dir;
  const TrainResult one = train(tiny_config(6), o1);
  ASSERT_EQ(one.status, "completed") << one.error;
  ASSERT_EQ(one.losses.size(), 4u);

  const std::string out = test::temp_dir("dist-two");
  run_ranks(2, out, [&](const DistEnv& e) {
    ProcessGroup pg(e, std::chrono::seconds(60));
    TrainOptions o;
    o.run_dir = out + "/run-" + std::to_string(e.rank);
    o.group = &pg;
    return losses_text(train(tiny_config(3), o));
  });
  const std::string r0 = read_file(out + "/0.txt"), r1 = read_file(out + "/1.txt");
  ASSERT_EQ(r0.rfind("completed\n", 0), 0u) << r0;
  EXPECT_EQ(r0, r1);  // every rank reports the global figures
  std::vector<double> two;
  std::istringstream in(r0.substr(r0.find('\n') + 1));
  for (double x; in >> x;) two.push_back(x);
  ASSERT_EQ(two.size(), one.losses.size());
  for (size_t i = 0; i < two.size(); ++i) EXPECT_NEAR(two[i], one.losses[i], 1e-5) << "step " << i + 1;
  // Rank 0 alone wrote the adapter; it equals the one-process adapter.
  EXPECT_FALSE(file_exists(out + "/run-1/adapter/adapter_model.safetensors"));
  SafetensorsFile a(one_dir + "/adapter/adapter_model.safetensors"), b(out + "/run-0/adapter/adapter_model.safetensors");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  double worst = 0;
  for (const auto& t : a.tensors()) {
    const auto* u = b.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    auto x = tensor_from_bytes(a.data(t), t.dtype, t.shape, "a"), y = tensor_from_bytes(b.data(*u), u->dtype, u->shape, "b");
    worst = std::max(worst, (x - y).abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(one.losses.front() - one.losses.back(), 0.0);  // and the run learned something
}
