// hone-cli bench store: the workspace store's speed targets in one run, on a scratch workspace:
// import of 100k Alpaca rows, a 1,000-row page read from a 1M-row dataset, and the cost of
// recording metrics against a real training step of a small model.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "model/decoder.h"
#include "peft/lora.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "train/adamw.h"

namespace hone::cli {

const char* const kBenchStoreUsage = R"(usage: hone-cli bench store [--dir SCRATCH] [--import-rows 100000] [--page-rows 1000000] [--json]

Creates a scratch workspace (default: a fresh folder under /tmp, removed afterwards) and reports:
  import_s             importing an Alpaca JSONL file of --import-rows rows (target <= 10 s for 100k)
  page_ms              median time to read a 1,000-row page at random positions of a
                       --page-rows dataset (target <= 50 ms for 1M rows)
  metrics_us_per_step  recording 6 metrics per step through the batched writer
  train_step_ms        median step of a small LoRA model (hidden 256, 4 layers, 512 tokens)
  metrics_overhead     metrics_us_per_step / train_step_ms (target < 1%)
)";
namespace {


using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int cmd_bench_store(const Args& a) {
  const bool own_dir = !a.has("dir");
  const std::string dir = own_dir ? "/tmp/hone-bench-store-" + std::to_string(::getpid()) : a.get("dir");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  const int64_t n_import = a.integer("import-rows", 100000), n_page = a.integer("page-rows", 1000000);
  nlohmann::json out;
  {
    Workspace ws(join_path(dir, "ws"));
    // 1. Import: a realistic Alpaca file (~200 bytes a row), parse + validate + insert.
    const std::string file = join_path(dir, "alpaca.jsonl");
    {
      std::ofstream f(file);
      for (int64_t i = 0; i < n_import; ++i)
        f << nlohmann::json({{"instruction", "Summarise item " + std::to_string(i) + " of the catalogue in one sentence."},
                             {"input", "Item " + std::to_string(i) + ": a blue ceramic mug, 350 ml, dishwasher safe."},
                             {"output", "A 350 ml blue ceramic mug that can go in the dishwasher (" + std::to_string(i) + ")."}})
                 .dump()
          << "\n";
    }
    auto t = Clock::now();
    ImportReport rep = import_dataset(ws, file, "bench-import", {});
    out["import_s"] = secs(t);
    out["import_rows"] = rep.imported;
    if (rep.imported != n_import) throw Error("bench store: import stored " + std::to_string(rep.imported) + " rows");

    // 2. Page reads from a large dataset (rows inserted directly: the import path is measured above).
    {
      Transaction tx(ws.db());
      ws.db().exec("INSERT INTO datasets (name, kind, format, source) VALUES ('bench-pages', 'text', 'text', 'generated')");
      const int64_t ds = ws.db().last_insert_id();
      Stmt s = ws.db().prepare("INSERT INTO rows (dataset_id, position, data, source) VALUES (?, ?, ?, '')");
      for (int64_t i = 0; i < n_page; ++i) {
        s.bind(1, ds).bind(2, i).bind(3, "{\"text\":\"row " + std::to_string(i) + " of a long dataset with some text in it\"}");
        s.run();
        s.reset();
      }
      tx.commit();
      std::vector<double> ms;
      uint64_t x = 12345;
      for (int k = 0; k < 15; ++k) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const int64_t start = static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(std::max<int64_t>(1, n_page - 1000)));
        auto t0 = Clock::now();
        auto rows = read_rows(ws, ds, start, start + 1000);
        ms.push_back(secs(t0) * 1000);
        if (rows.size() != static_cast<size_t>(std::min<int64_t>(1000, n_page - start))) throw Error("bench store: short page");
      }
      out["page_ms"] = median(ms);
      out["page_rows"] = n_page;
    }

    // 3. Metrics: the writer's cost per step (6 points, flushed every 2 s or 512 points as in training).
    const int64_t run = create_run(ws, {"bench", "lora", "sft", "-", "[]", "{}", dir}, "running");
    const int steps = 20000;
    auto t3 = Clock::now();
    {
      MetricsWriter mw(ws, run);
      for (int s = 1; s <= steps; ++s)
        for (const char* name : {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "rss_mb"}) mw.add(s, name, 1.0 / s);
    }
    const double us = secs(t3) * 1e6 / steps;
    out["metrics_us_per_step"] = us;

    // A real training step to compare with: small LoRA model, 2 x 256 tokens.
    nlohmann::json cj = {{"model_type", "llama"}, {"hidden_size", 256}, {"num_hidden_layers", 4}, {"num_attention_heads", 4},
                         {"num_key_value_heads", 4}, {"intermediate_size", 688}, {"vocab_size", 4000},
                         {"max_position_embeddings", 256}};
    CausalLM m(parse_model_config(cj, "bench"));
    init_weights(m, 0);
    LoraConfig lc;
    lc.targets = {"all-linear"};
    attach_lora(m, lc, 0);
    std::vector<NamedParam> params;
    for (auto& p : m->named_parameters())
      if (p.value().requires_grad()) params.push_back({p.key(), p.value(), true});
    AdamW opt(params, {});
    std::vector<double> step_ms;
    for (int s = 0; s < 8; ++s) {
      auto ids = at::randint(0, 4000, {2, 256}, at::kLong);
      auto t0 = Clock::now();
      auto logits = m->forward(ids);
      auto loss = at::cross_entropy_loss(logits.slice(1, 0, 255).reshape({-1, 4000}), ids.slice(1, 1).reshape({-1}));
      loss.backward();
      opt.step(1e-4);
      opt.zero_grad();
      if (s >= 2) step_ms.push_back(secs(t0) * 1000);
    }
    out["train_step_ms"] = median(step_ms);
    out["metrics_overhead"] = us / 1000.0 / median(step_ms);
  }
  if (own_dir) std::filesystem::remove_all(dir, ec);
  if (a.flag("json")) {
    std::cout << out.dump() << "\n";
  } else {
    std::printf("import %lld rows: %.2f s (target <= 10 s for 100k)\n", static_cast<long long>(n_import), out["import_s"].get<double>());
    std::printf("1,000-row page of %lld rows: %.2f ms median (target <= 50 ms for 1M)\n", static_cast<long long>(n_page),
                out["page_ms"].get<double>());
    std::printf("metrics: %.1f us per step vs a %.1f ms training step: %.3f%% (target < 1%%)\n",
                out["metrics_us_per_step"].get<double>(), out["train_step_ms"].get<double>(),
                100 * out["metrics_overhead"].get<double>());
  }
  return 0;
}

}  // namespace hone::cli
