// The Hugging Face hub cache read offline (hub_cache.h): locations, names and snapshots.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "common/hub_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"

namespace fs = std::filesystem;

namespace hone {
namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v && *v ? v : "";
}

std::string expand_home(std::string p) {
  if (!p.empty() && p[0] == '~') p = env("HOME") + p.substr(1);
  return p;
}

bool name_part_ok(const std::string& s) {
  if (s.empty() || s.size() > 96 || s[0] == '.' || s[0] == '-' || s.back() == '.') return false;
  if (s.find("..") != std::string::npos || s.find("--") != std::string::npos) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

bool is_commit(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string hf_home() {
  if (auto h = env("HF_HOME"); !h.empty()) return expand_home(h);
  if (auto x = env("XDG_CACHE_HOME"); !x.empty()) return join_path(expand_home(x), "huggingface");
  return join_path(env("HOME"), ".cache/huggingface");
}

std::string hub_cache_dir() {
  if (auto c = env("HF_HUB_CACHE"); !c.empty()) return expand_home(c);
  if (auto c = env("HUGGINGFACE_HUB_CACHE"); !c.empty()) return expand_home(c);
  return join_path(hf_home(), "hub");
}

std::string HubRef::text() const {
  return (type == "dataset" ? "datasets/" : "") + id + (revision.empty() ? "" : "@" + revision);
}

bool parse_hub_ref(const std::string& s0, HubRef* out) {
  HubRef r;
  std::string s = s0;
  if (s.rfind("datasets/", 0) == 0) {
    r.type = "dataset";
    s = s.substr(9);
  } else if (s.rfind("models/", 0) == 0) {
    s = s.substr(7);
  }
  if (auto at = s.find('@'); at != std::string::npos) {
    r.revision = s.substr(at + 1);
    s = s.substr(0, at);
    // A revision is a branch, tag or commit; "refs/pr/1" is allowed, a path escape is not.
    if (r.revision.empty() || r.revision.size() > 200 || r.revision.find("..") != std::string::npos ||
        r.revision[0] == '/' || r.revision.find_first_of(" \t\n\\") != std::string::npos)
      return false;
  }
  auto slash = s.find('/');
  if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return false;
  if (!name_part_ok(s.substr(0, slash)) || !name_part_ok(s.substr(slash + 1))) return false;
  r.id = s;
  if (out) *out = r;
  return true;
}

std::string repo_folder_name(const HubRef& r) {
  std::string id = r.id;
  auto slash = id.find('/');
  return std::string(r.type == "dataset" ? "datasets" : "models") + "--" + id.substr(0, slash) + "--" + id.substr(slash + 1);
}

std::string repo_folder(const HubRef& r, const std::string& cache) { return join_path(cache, repo_folder_name(r)); }

std::string cached_snapshot(const HubRef& r, std::string* why, const std::string& cache) {
  const std::string folder = repo_folder(r, cache);
  auto fail = [&](const std::string& w) {
    if (why) *why = w;
    return std::string();
  };
  if (!is_directory(folder)) return fail("not in the Hugging Face cache (" + cache + ")");
  std::string rev = r.revision.empty() ? "main" : r.revision;
  std::string commit = rev;
  if (!is_commit(rev)) {
    const std::string ref_file = join_path(folder, "refs/" + rev);
    if (!file_exists(ref_file)) return fail("revision \"" + rev + "\" is not in the cache (no " + ref_file + ")");
    commit = trim(read_file(ref_file));
    if (!is_commit(commit)) return fail(ref_file + " does not hold a commit hash");
  }
  const std::string snap = join_path(folder, "snapshots/" + commit);
  if (!is_directory(snap)) return fail("commit " + commit + " has no snapshot folder (" + snap + ")");
  return snap;
}

std::string resolve_model_dir(const std::string& p) {
  std::error_code ec;
  if (p.empty() || fs::exists(p, ec)) return p;  // a folder or file that is there is what it names
  HubRef r;
  if (!parse_hub_ref(p, &r) || r.type != "model") return p;
  std::string why;
  std::string snap = cached_snapshot(r, &why);
  if (snap.empty())
    throw Error(p + ": no such folder, and as a hub model " + why + "; download it with `hone-cli hub download " + r.text() + "`");
  return snap;
}

std::string resolve_model_dir_or_empty(const std::string& p) {
  try {
    return resolve_model_dir(p);
  } catch (const std::exception&) {
    return "";
  }
}

std::string hub_name_of_path(const std::string& path) {
  // .../models--ORG--NAME/snapshots/COMMIT[/...] or .../datasets--ORG--NAME/...
  for (const char* kind : {"/models--", "/datasets--"}) {
    const auto at = path.rfind(kind);
    if (at == std::string::npos) continue;
    const auto start = at + std::string(kind).size();
    const auto end = path.find('/', start);
    const std::string folder = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const auto sep = folder.find("--");
    if (sep == std::string::npos) continue;
    HubRef r;
    const std::string id = folder.substr(0, sep) + "/" + folder.substr(sep + 2);
    if (parse_hub_ref(id, &r)) return id;
  }
  return "";
}

std::string resolve_dataset_path(const std::string& p) {
  std::error_code ec;
  if (p.empty() || fs::exists(p, ec)) return p;
  HubRef r;
  if (!parse_hub_ref(p, &r)) return p;
  r.type = "dataset";
  std::string why;
  std::string snap = cached_snapshot(r, &why);
  if (snap.empty())
    throw Error(p + ": no such file or folder, and as a hub dataset " + why + "; download it with `hone-cli hub download --dataset " +
                r.id + (r.revision.empty() ? "" : "@" + r.revision) + "`");
  return snap;
}

std::vector<CachedRepo> list_cached_repos(const std::string& cache) {
  std::vector<CachedRepo> out;
  std::error_code ec;
  if (!is_directory(cache)) return out;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    const std::string name = e.path().filename().string();
    CachedRepo repo;
    std::string rest;
    if (name.rfind("models--", 0) == 0) rest = name.substr(8);
    else if (name.rfind("datasets--", 0) == 0) rest = name.substr(10), repo.ref.type = "dataset";
    else continue;
    auto sep = rest.find("--");
    if (sep == std::string::npos || !e.is_directory(ec)) continue;
    repo.ref.id = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    repo.folder = e.path().string();
    const std::string blobs = join_path(repo.folder, "blobs");
    if (is_directory(blobs))
      for (const auto& b : fs::directory_iterator(blobs, ec)) {
        if (!b.is_regular_file(ec)) continue;
        const int64_t sz = static_cast<int64_t>(b.file_size(ec));
        if (b.path().extension() == ".incomplete") repo.incomplete_bytes += sz;
        else repo.bytes += sz;
      }
    // refs: every file under refs/ (names may hold '/': refs/pr/1).
    std::vector<std::pair<std::string, std::string>> refs;
    const std::string refs_dir = join_path(repo.folder, "refs");
    if (is_directory(refs_dir))
      for (auto it = fs::recursive_directory_iterator(refs_dir, ec); !ec && it != fs::end(it); it.increment(ec))
        if (it->is_regular_file(ec))
          refs.emplace_back(fs::relative(it->path(), refs_dir, ec).string(), trim(read_file(it->path().string())));
    std::vector<std::pair<fs::file_time_type, CachedRevision>> revs;
    const std::string snaps = join_path(repo.folder, "snapshots");
    if (is_directory(snaps))
      for (const auto& s : fs::directory_iterator(snaps, ec)) {
        if (!s.is_directory(ec)) continue;
        CachedRevision cr;
        cr.commit = s.path().filename().string();
        cr.snapshot = s.path().string();
        for (auto it = fs::recursive_directory_iterator(s.path(), ec); !ec && it != fs::end(it); it.increment(ec))
          if (!it->is_directory(ec)) ++cr.files;
        for (const auto& [n, c] : refs)
          if (c == cr.commit) cr.refs.push_back(n);
        revs.emplace_back(fs::last_write_time(s.path(), ec), cr);
      }
    std::sort(revs.begin(), revs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& r : revs) repo.revisions.push_back(std::move(r.second));
    out.push_back(std::move(repo));
  }
  std::sort(out.begin(), out.end(), [](const CachedRepo& a, const CachedRepo& b) {
    return a.ref.type != b.ref.type ? a.ref.type > b.ref.type : a.ref.id < b.ref.id;  // models first
  });
  return out;
}

}  // namespace hone
