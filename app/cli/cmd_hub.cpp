// hone-cli hub: the Hugging Face cache listed, the hub searched, models and datasets downloaded
// into the cache (resumable, verified) and removed from it.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/hub_cache.h"
#include "hub/hub_download.h"
#include "hub/hub_models.h"

namespace hone::cli {

const char* const kHubUsage = R"(usage: hone-cli hub list [--json]
       hone-cli hub download ORG/NAME[@REV] [--revision REV] [--include GLOB ...] [--dataset] [--jobs N] [--json]
       hone-cli hub search QUERY [--limit N] [--all] [--json]
       hone-cli hub rm ORG/NAME[@REV] [--dataset]
       hone-cli hub path ORG/NAME[@REV] [--dataset]

  The cache is huggingface_hub's: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  (models--ORG--NAME/{blobs,snapshots/COMMIT,refs/REV}); transformers and llama.cpp's scripts see
  the same files. Once a model is there, ORG/NAME[@REV] works wherever a model folder does
  (--model, base_model in a run config, the app), offline.

  list       cached models and datasets: size, architecture, parameters, loadable or why not
  download   what Hone needs (config, safetensors and index, tokenizer, generation config,
             README/licence; a dataset's data files) unless --include GLOB names files ('*'
             crosses '/'; pickled weights only when a glob names them, and never unpickled).
             Every file is checked (LFS sha256, else git's blob sha1) before it enters the cache;
             an interrupted download (Ctrl-C, a dropped connection) resumes where it stopped.
             --jobs N files at once (default 4). --json: progress and the result as JSON lines.
  search     text-generation models on the hub, most downloaded first; only architectures Hone
             loads unless --all
  rm         deletes a repo from the cache, or one revision and the files only it used
  path       prints the cached snapshot folder

  Environment: HF_ENDPOINT (a mirror), HF_TOKEN (else the token file $HF_HOME/token) for gated and
  private repos, HF_HUB_OFFLINE=1 (never contact the hub), HF_HUB_CACHE / HF_HOME.
)";

namespace {

std::atomic<bool> g_cancel{false};

void on_sigint(int) { g_cancel = true; }

std::string mib(int64_t b) {
  char buf[32];
  if (b < (1 << 20)) std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(b) / 1024);
  else if (b >= (1ll << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1 << 30));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

std::string params_text(int64_t p) {
  char buf[32];
  if (p <= 0) return "-";
  if (p >= 1000000000) std::snprintf(buf, sizeof buf, "%.2fB", p / 1e9);
  else if (p >= 10000000) std::snprintf(buf, sizeof buf, "%.0fM", p / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2fM", p / 1e6);
  return buf;
}

HubRef ref_arg(const Args& a, const std::string& action) {
  if (a.positional().empty()) throw Error("hub " + action + ": name a repo (ORG/NAME)");
  HubRef r;
  if (!parse_hub_ref(a.positional()[0], &r))
    throw Error("hub " + action + ": \"" + a.positional()[0] + "\" is not a hub name (ORG/NAME or ORG/NAME@REVISION)");
  if (a.flag("dataset")) r.type = "dataset";
  if (a.has("revision")) {
    if (!r.revision.empty()) throw Error("hub " + action + ": give the revision once (@REV or --revision)");
    r.revision = a.get("revision");
  }
  // rm and path of a name cached only as a dataset mean the dataset (as `hub list` shows it).
  if ((action == "rm" || action == "path") && r.type == "model" && !is_directory(repo_folder(r))) {
    HubRef d = r;
    d.type = "dataset";
    if (is_directory(repo_folder(d))) r = d;
  }
  return r;
}

int hub_list(const Args& a) {
  const std::string cache = hub_cache_dir();
  auto entries = hub::list_cached(cache);
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries)
      out.push_back({{"type", e.ref.type},          {"id", e.ref.id},         {"commit", e.commit},
                     {"refs", e.refs},              {"revisions", e.revisions}, {"bytes", e.bytes},
                     {"incomplete_bytes", e.incomplete_bytes}, {"files", e.files}, {"snapshot", e.snapshot},
                     {"architecture", e.architecture}, {"parameters", e.parameters}, {"dtype", e.dtype},
                     {"loadable", e.loadable},       {"why_not", e.why_not}});
    std::cout << nlohmann::json{{"cache", cache}, {"repos", out}}.dump(2) << "\n";
    return 0;
  }
  std::cout << "Hugging Face cache: " << cache << "\n";
  if (entries.empty()) {
    std::cout << "  (empty; hone-cli hub search QUERY, then hone-cli hub download ORG/NAME)\n";
    return 0;
  }
  for (const auto& e : entries) {
    std::cout << (e.ref.type == "dataset" ? "dataset " : "model   ") << e.ref.id << "  " << mib(e.bytes);
    if (e.ref.type == "model") {
      std::cout << "  " << (e.architecture.empty() ? "?" : e.architecture) << "  " << params_text(e.parameters) << "  "
                << (e.loadable ? "loadable" : "not loadable: " + e.why_not);
    }
    if (e.incomplete_bytes > 0) std::cout << "  (" << mib(e.incomplete_bytes) << " partly downloaded)";
    if (!e.refs.empty()) {
      std::cout << "  [";
      for (size_t i = 0; i < e.refs.size(); ++i) std::cout << (i ? "," : "") << e.refs[i];
      std::cout << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

int hub_download(const Args& a) {
  hub::DownloadRequest req;
  req.ref = ref_arg(a, "download");
  req.include = a.all("include");
  req.jobs = static_cast<int>(a.integer("jobs", 4));
  if (req.jobs < 1 || req.jobs > 32) throw Error("hub download: --jobs must be 1-32");
  const bool json = a.flag("json");
  hub::HubClient client(hub::HubSettings::from_env());
  if (client.settings().offline) {
    // Offline, a cached revision is the answer (as other hub clients do); anything else cannot be had.
    std::string why;
    const std::string snap = cached_snapshot(req.ref, &why, client.settings().cache);
    if (snap.empty())
      throw Error(req.ref.text() + ": HF_HUB_OFFLINE is set, so only the cache is read, and there it is " + why +
                  "; unset HF_HUB_OFFLINE to download it");
    if (json) std::cout << nlohmann::json{{"event", "done"}, {"id", req.ref.id}, {"snapshot", snap}, {"offline", true}}.dump() << std::endl;
    else std::cout << snap << "\n";
    return 0;
  }
  hub::DownloadPlan plan = hub::plan_download(client, req);
  for (const auto& s : plan.skipped) std::cerr << "skipped " << s << "\n";
  if (!plan.gated.empty() && client.settings().token.empty())
    std::cerr << "note: " << req.ref.id << " is gated; without a token (HF_TOKEN) its files will be refused\n";
  if (json)
    std::cout << nlohmann::json{{"event", "plan"}, {"commit", plan.commit}, {"files", plan.files.size()},
                                {"bytes", plan.bytes_total}, {"bytes_to_fetch", plan.bytes_to_fetch}}
                     .dump()
              << std::endl;
  else
    std::cerr << req.ref.text() << " @ " << plan.commit.substr(0, 12) << ": " << plan.files.size() << " files, " << mib(plan.bytes_total)
              << " (" << mib(plan.bytes_to_fetch) << " to fetch)\n";
  const bool tty = isatty(STDERR_FILENO);
  auto last_line = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  auto progress = [&](const hub::DownloadProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (json) {
      std::cout << nlohmann::json{{"event", "progress"}, {"bytes", p.bytes_done}, {"total", p.bytes_total},
                                  {"files_done", p.files_done}, {"files", p.files_total}, {"rate", static_cast<int64_t>(p.rate)},
                                  {"eta_s", p.eta_s < 0 ? nlohmann::json() : nlohmann::json(static_cast<int64_t>(p.eta_s))}}
                       .dump()
                << std::endl;
      return;
    }
    if (!tty && now - last_line < std::chrono::seconds(2)) return;
    last_line = now;
    char buf[200];
    const double pct = p.bytes_total > 0 ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 100.0;
    std::snprintf(buf, sizeof buf, "%s / %s  %3.0f%%  %s/s  ETA %s  files %d/%d", mib(p.bytes_done).c_str(), mib(p.bytes_total).c_str(),
                  pct, mib(static_cast<int64_t>(p.rate)).c_str(),
                  p.eta_s < 0 ? "?" : (std::to_string(static_cast<int64_t>(p.eta_s)) + "s").c_str(), p.files_done, p.files_total);
    std::cerr << (tty ? "\r\033[K" : "") << buf << (tty ? "" : "\n") << std::flush;
  };
  g_cancel = false;
  auto prev_int = std::signal(SIGINT, on_sigint);
  auto prev_term = std::signal(SIGTERM, on_sigint);
  hub::DownloadResult res;
  try {
    res = hub::run_download(client, req, plan, progress, &g_cancel);
  } catch (...) {
    std::signal(SIGINT, prev_int);
    std::signal(SIGTERM, prev_term);
    if (tty && !json) std::cerr << "\n";
    throw;
  }
  std::signal(SIGINT, prev_int);
  std::signal(SIGTERM, prev_term);
  if (tty && !json) std::cerr << "\n";
  if (res.cancelled) {
    std::cerr << "download interrupted: the partial files stay in the cache; run the same command again to resume\n";
    if (json) std::cout << nlohmann::json{{"event", "cancelled"}, {"files_done", res.files}}.dump() << std::endl;
    return 130;
  }
  const double rate = res.seconds > 0 ? static_cast<double>(res.bytes_fetched) / res.seconds : 0;
  if (json) {
    std::cout << nlohmann::json{{"event", "done"},         {"id", req.ref.id},          {"type", req.ref.type},
                                {"commit", res.commit},     {"snapshot", res.snapshot},  {"files", res.files},
                                {"reused", res.reused},     {"resumed", res.resumed},    {"bytes_fetched", res.bytes_fetched},
                                {"seconds", res.seconds},   {"rate", static_cast<int64_t>(rate)}}
                     .dump()
              << std::endl;
  } else {
    std::cout << res.snapshot << "\n";
    std::cerr << res.files << " files (" << res.reused << " already cached, " << res.resumed << " resumed), " << mib(res.bytes_fetched)
              << " fetched in " << static_cast<double>(static_cast<int64_t>(res.seconds * 100)) / 100.0 << " s; use it as " << req.ref.text() << "\n";
  }
  return 0;
}

int hub_search(const Args& a) {
  if (a.positional().empty()) throw Error("hub search: give a query (hone-cli hub search qwen2.5)");
  std::string q;
  for (const auto& p : a.positional()) q += (q.empty() ? "" : " ") + p;
  hub::HubClient client(hub::HubSettings::from_env());
  auto hits = hub::search_models(client, q, static_cast<int>(a.integer("limit", 20)), a.flag("all"));
  if (a.flag("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : hits)
      out.push_back({{"id", h.id}, {"model_type", h.model_type}, {"downloads", h.downloads}, {"likes", h.likes},
                     {"updated", h.updated}, {"gated", h.gated}, {"supported", h.supported}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (hits.empty()) std::cout << "no text-generation models" << (a.flag("all") ? "" : " of Hone's architectures") << " match \"" << q << "\"\n";
  for (const auto& h : hits)
    std::cout << h.id << "  " << (h.model_type.empty() ? "?" : h.model_type) << "  " << h.downloads << " downloads"
              << (h.gated ? "  gated" : "") << (h.supported ? "" : "  (not loadable by Hone)") << "\n";
  return 0;
}

}  // namespace

int cmd_hub(const Args& a) {
  const std::string& act = a.action();
  if (act == "list") return hub_list(a);
  if (act == "download") return hub_download(a);
  if (act == "search") return hub_search(a);
  if (act == "rm") {
    HubRef r = ref_arg(a, "rm");
    const int64_t freed = hub::remove_cached(r, hub_cache_dir());
    std::cout << "removed " << r.text() << " (" << mib(freed) << " freed)\n";
    return 0;
  }
  if (act == "path") {
    HubRef r = ref_arg(a, "path");
    std::string why;
    std::string snap = cached_snapshot(r, &why);
    if (snap.empty()) throw Error(r.text() + ": " + why);
    std::cout << snap << "\n";
    return 0;
  }
  throw Error("unknown hub action \"" + act + "\" (list, download, search, rm, path)");
}

}  // namespace hone::cli
