// Hub downloads into the shared cache (hub_download.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "hub/hub_download.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/files.h"

namespace fs = std::filesystem;

namespace hone::hub {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

bool hex_of_len(const std::string& s, size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// A repo path from the hub is untrusted: it becomes a file name under snapshots/COMMIT.
bool safe_repo_path(const std::string& p) {
  if (p.empty() || p.size() > 1024 || p[0] == '/' || p.find('\\') != std::string::npos || p.find('\0') != std::string::npos)
    return false;
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t next = p.find('/', pos);
    std::string part = p.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (part.empty() || part == "." || part == "..") return false;
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return true;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) out += static_cast<char>(c);
    else out += '%', out += hex[c >> 4], out += hex[c & 15];
  }
  return out;
}

std::string strip_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return lower(e);
}

struct Hasher {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  explicit Hasher(bool sha256) {
    if (!ctx || EVP_DigestInit_ex(ctx, sha256 ? EVP_sha256() : EVP_sha1(), nullptr) != 1) throw Error("OpenSSL: cannot start a hash");
  }
  ~Hasher() { EVP_MD_CTX_free(ctx); }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    static const char* h = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) out += h[md[i] >> 4], out += h[md[i] & 15];
    return out;
  }
};

// Hashes on a thread of its own while the transfer thread receives and writes: on one stream,
// hashing inline held a download to 407 MiB/s against curl's 758 (sha256 runs at ~1.8 GB/s).
// Bytes are copied (far cheaper than hashing them) and at most 64 MiB wait.
class HashPipe {
 public:
  explicit HashPipe(Hasher& h) : h_(h), t_([this] { loop(); }) { cur_.reserve(kChunk); }
  ~HashPipe() { finish(); }
  // Bytes are gathered into 1 MiB chunks so the threads meet once per MiB, not once per recv().
  void push(const char* p, size_t n) {
    while (n > 0) {
      const size_t k = std::min(n, kChunk - cur_.size());
      cur_.insert(cur_.end(), p, p + k);
      p += k;
      n -= k;
      if (cur_.size() == kChunk) hand_over();
    }
  }
  void finish() {
    if (joined_) return;
    if (!cur_.empty()) hand_over();
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    ready_.notify_one();
    t_.join();
    joined_ = true;
  }

 private:
  static constexpr size_t kChunk = 1u << 20;
  void hand_over() {
    std::vector<char> next;
    {
      std::unique_lock<std::mutex> l(m_);
      room_.wait(l, [&] { return q_.size() < 64; });  // at most 64 MiB wait
      q_.push_back(std::move(cur_));
      if (!spare_.empty()) {
        next = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    ready_.notify_one();
    next.clear();
    next.reserve(kChunk);
    cur_ = std::move(next);
  }
  void loop() {
    for (;;) {
      std::vector<char> c;
      {
        std::unique_lock<std::mutex> l(m_);
        ready_.wait(l, [&] { return done_ || !q_.empty(); });
        if (q_.empty()) return;
        c = std::move(q_.front());
        q_.pop_front();
      }
      h_.update(c.data(), c.size());
      {
        std::lock_guard<std::mutex> l(m_);
        if (spare_.size() < 4) spare_.push_back(std::move(c));  // reused: no page faults per chunk
      }
      room_.notify_one();
    }
  }
  Hasher& h_;
  std::vector<char> cur_;
  std::mutex m_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<char>> q_;
  std::vector<std::vector<char>> spare_;
  bool done_ = false, joined_ = false;
  std::thread t_;
};

int64_t file_size_or(const std::string& p, int64_t def) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? def : static_cast<int64_t>(n);
}

std::string repo_url_prefix(const HubRef& r) { return r.type == "dataset" ? "/datasets/" : "/"; }

// Replaces (or makes) the link snapshots/COMMIT/PATH -> ../../blobs/BLOB (one more ../ per folder
// level of PATH), relative as huggingface_hub writes it, through a temporary name and a rename.
void link_snapshot(const std::string& repo, const std::string& commit, const PlannedFile& f) {
  const std::string link = join_path(repo, "snapshots/" + commit + "/" + f.path);
  make_dirs(fs::path(link).parent_path().string());
  std::string target = "../../";
  for (char c : f.path)
    if (c == '/') target += "../";
  target += "blobs/" + f.blob;
  const std::string tmp = link + ".hone-link";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) throw file_error(link, "cannot link the snapshot file: " + ec.message());
  fs::rename(tmp, link, ec);
  if (ec) throw file_error(link, "cannot link the snapshot file: " + ec.message());
}

// An exclusive lock on .locks/REPO/BLOB.lock (the path huggingface_hub uses), so two programs do
// not write one .incomplete at once. Waits, but gives up when cancelled.
struct BlobLock {
  int fd = -1;
  BlobLock(const std::string& cache, const std::string& repo_name, const std::string& blob, const std::atomic<bool>* cancel) {
    const std::string dir = join_path(cache, ".locks/" + repo_name);
    make_dirs(dir);
    const std::string p = join_path(dir, blob + ".lock");
    fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) throw file_error(p, "cannot open the download lock");
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (cancel && cancel->load()) {
        ::close(fd);
        fd = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ~BlobLock() {
    if (fd >= 0) ::close(fd);
  }
};

struct Shared {
  std::mutex m;
  std::condition_variable cv;
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> fetched{0};
  std::atomic<int> files_done{0}, resumed{0};
  size_t next = 0;
  int finished_workers = 0;
  std::vector<std::string> failures;
  std::string fatal;  // a refusal every file would get (401/403): said once, the other files not tried
};

// One file: lock, (resume) download, verify, move into blobs/, link. Returns "" or why it failed.
std::string fetch_one(const HubClient& c, const DownloadRequest& r, const std::string& commit, const PlannedFile& f,
                      Shared& sh, const std::atomic<bool>* cancel) {
  const HubSettings& s = c.settings();
  const std::string repo = repo_folder(r.ref, s.cache);
  const std::string blob_path = join_path(repo, "blobs/" + f.blob);
  const std::string part = blob_path + ".incomplete";
  BlobLock lock(s.cache, repo_folder_name(r.ref), f.blob, cancel);
  if (lock.fd < 0) return "cancelled";
  if (file_size_or(blob_path, -1) == f.size) {  // another program finished it meanwhile
    sh.bytes += f.size - f.partial;
    link_snapshot(repo, commit, f);
    return "";
  }
  const std::string file_url = c.url(repo_url_prefix(r.ref) + r.ref.id + "/resolve/" + commit + "/" + url_encode(f.path, true));
  // The hub's own headers first (no redirect followed): what the file is and where its bytes are.
  HttpResponse h = c.head(file_url);
  if (h.status >= 400) return status_message(h.status, r.ref.id + " " + f.path, s);
  std::string get_url = file_url;
  if (h.status >= 300 && h.headers.count("location")) {
    get_url = h.headers["location"];
    if (get_url.rfind("http://", 0) != 0 && get_url.rfind("https://", 0) != 0)
      get_url = s.endpoint + (get_url[0] == '/' ? "" : "/") + get_url;
  }
  if (auto it = h.headers.find("x-repo-commit"); it != h.headers.end() && lower(it->second) != commit)
    return f.path + ": the hub serves commit " + it->second + ", not " + commit + " (the branch moved?); run the download again";
  std::string etag = h.headers.count("x-linked-etag") ? h.headers["x-linked-etag"] : h.headers["etag"];
  if (!etag.empty() && strip_etag(etag) != f.blob)
    return f.path + ": the hub's ETag " + etag + " does not match its file list (" + f.blob + ")";
  if (auto it = h.headers.find("x-linked-size"); it != h.headers.end() && std::to_string(f.size) != it->second)
    return f.path + ": the hub says " + it->second + " bytes here and " + std::to_string(f.size) + " in its file list";

  make_dirs(join_path(repo, "blobs"));
  for (int attempt = 0;; ++attempt) {
    int64_t have = file_size_or(part, 0);
    if (have > f.size) {  // longer than the file: not ours to keep
      std::remove(part.c_str());
      have = 0;
    }
    if (attempt == 0 && have > 0) ++sh.resumed;
    // The hash covers the kept bytes too: read them back once.
    Hasher hs(f.lfs);
    if (!f.lfs) {
      const std::string hdr = "blob " + std::to_string(f.size);
      hs.update(hdr.data(), hdr.size() + 1);  // git hashes "blob SIZE\0" + content
    }
    if (have > 0) {
      std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(part.c_str(), "rb"), &std::fclose);
      std::vector<char> buf(1 << 20);
      int64_t left = have;
      while (in && left > 0) {
        size_t n = std::fread(buf.data(), 1, static_cast<size_t>(std::min<int64_t>(left, buf.size())), in.get());
        if (n == 0) break;
        hs.update(buf.data(), n);
        left -= static_cast<int64_t>(n);
      }
      if (left != 0) {
        std::remove(part.c_str());
        have = 0;
        continue;
      }
    }
    int64_t got = have;
    long status = 200;
    std::string err;
    bool restarted = false;
    if (have < f.size || f.size == 0) {
      HashPipe pipe(hs);
      status = c.download(
          get_url, part, have,
          [&](const char* p, size_t n) {
            pipe.push(p, n);
            got += static_cast<int64_t>(n);
            sh.bytes += static_cast<int64_t>(n);
            sh.fetched += static_cast<int64_t>(n);
            return true;
          },
          cancel, &restarted, &err);
      pipe.finish();  // every byte received is hashed before the digest is read
    }
    if (restarted) {
      // The server sent the whole file again: the kept bytes were dropped, so the hash restarts.
      sh.bytes -= have;
      std::remove(part.c_str());
      if (attempt < r.retries) continue;
      return f.path + ": the server ignored the byte range twice";
    }
    if (status == -1) return "cancelled";
    if (status >= 400 && status != 416) return status_message(status, r.ref.id + " " + f.path, s);
    const int64_t on_disk = file_size_or(part, 0);
    if (on_disk < f.size) {
      if (attempt < r.retries && !(cancel && cancel->load())) continue;  // dropped: resume from here
      return f.path + ": the connection ended after " + std::to_string(on_disk) + " of " + std::to_string(f.size) + " bytes (" +
             (err.empty() ? "closed early" : err) + "); run the download again to resume";
    }
    if (on_disk > f.size || got != f.size) {
      std::remove(part.c_str());
      return f.path + ": got " + std::to_string(on_disk) + " bytes, the hub lists " + std::to_string(f.size) + "; the partial file was deleted";
    }
    const std::string digest = hs.hex();
    if (digest != f.blob) {
      // Wrong bytes cannot be resumed from: they go, and nothing enters blobs/ or snapshots/.
      std::remove(part.c_str());
      return f.path + ": " + (f.lfs ? "sha256" : "git sha1") + " of the downloaded bytes is " + digest + ", the hub lists " +
             f.blob + "; the file was deleted and nothing entered the cache";
    }
    std::error_code ec;
    fs::rename(part, blob_path, ec);
    if (ec) return f.path + ": cannot move the finished file into " + blob_path + ": " + ec.message();
    link_snapshot(repo, commit, f);
    return "";
  }
}

}  // namespace

bool pickled_file(const std::string& path) {
  const std::string b = lower(base_name(path));
  for (const char* e : {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
    if (ends_with(b, e)) return true;
  return false;
}

bool default_file(const std::string& path, bool dataset) {
  const std::string b = lower(base_name(path));
  if (pickled_file(path)) return false;
  if (b == "readme.md" || b.rfind("license", 0) == 0 || b.rfind("licence", 0) == 0 || b == "notice" || b == "use_policy.md")
    return true;
  if (dataset) {
    if (ends_with(b, ".py")) return false;  // loading scripts: code, never run
    for (const char* e : {".parquet", ".jsonl", ".json", ".csv", ".tsv", ".txt", ".jsonl.gz", ".json.gz"})
      if (ends_with(b, e)) return true;
    return false;
  }
  if (ends_with(b, ".safetensors")) return true;
  for (const char* n : {"config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
                        "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt",
                        "added_tokens.json", "chat_template.jinja", "chat_template.json", "preprocessor_config.json"})
    if (b == n) return true;
  return false;
}

bool glob_match(const std::string& pattern, const std::string& path) {
  // fnmatch without FNM_PATHNAME: '*' crosses '/', as the hub clients' allow patterns do.
  return fnmatch(pattern.c_str(), path.c_str(), 0) == 0 || fnmatch(pattern.c_str(), base_name(path).c_str(), 0) == 0;
}

namespace {
// How errors name a request: "dataset ORG/NAME@REV", "ORG/NAME".
std::string request_name(const HubRef& ref) {
  return (ref.type == "dataset" ? "dataset " : "") + ref.id + (ref.revision.empty() ? "" : "@" + ref.revision);
}
}  // namespace

DownloadPlan plan_download(const HubClient& c, const DownloadRequest& r) {
  const std::string rev = r.ref.revision.empty() ? "main" : r.ref.revision;
  const nlohmann::json j = c.get_json(std::string(r.ref.type == "dataset" ? "/api/datasets/" : "/api/models/") + r.ref.id +
                                          "/revision/" + url_encode(rev, false) + "?blobs=true",
                                      request_name(r.ref));
  return plan_from_answer(j, r, repo_folder(r.ref, c.settings().cache));
}

DownloadPlan plan_from_answer(const nlohmann::json& j, const DownloadRequest& r, const std::string& repo) {
  const bool dataset = r.ref.type == "dataset";
  const std::string what = request_name(r.ref);
  DownloadPlan p;
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !hex_of_len(lower(j["sha"].get<std::string>()), 40))
    throw Error(what + ": the hub's answer has no commit hash (\"sha\")");
  p.commit = lower(j["sha"].get<std::string>());
  if (j.contains("gated") && j["gated"].is_string()) p.gated = j["gated"].get<std::string>();
  if (!j.contains("siblings") || !j["siblings"].is_array()) throw Error(what + ": the hub's answer has no file list (\"siblings\")");
  bool any_safetensors = false, any_pickle = false;
  std::set<std::string> seen;
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) throw Error(what + ": a file entry has no name");
    const std::string path = s["rfilename"].get<std::string>();
    if (!safe_repo_path(path)) throw Error(what + ": the hub lists an unsafe file name \"" + path + "\"; nothing was downloaded");
    if (!seen.insert(path).second) throw Error(what + ": the hub lists \"" + path + "\" twice");
    if (ends_with(lower(path), ".safetensors")) any_safetensors = true;
    const bool pickle = pickled_file(path);
    if (pickle) any_pickle = true;
    bool want;
    if (r.include.empty()) {
      want = default_file(path, dataset);
    } else {
      want = false;
      for (const auto& g : r.include) want = want || glob_match(g, path);
    }
    if (!want) {
      if (pickle) p.skipped.push_back(path + " (pickled: Hone reads safetensors; --include it to fetch it anyway, it is never unpickled)");
      continue;
    }
    PlannedFile f;
    f.path = path;
    const bool has_lfs = s.contains("lfs") && s["lfs"].is_object();
    f.lfs = has_lfs;
    // At most 1 PiB a file: sizes are summed (and compared with free disk space) in int64.
    auto size_of = [&](const nlohmann::json& o) -> int64_t {
      if (!o.contains("size") || !o["size"].is_number_integer() || o["size"].get<int64_t>() < 0 ||
          o["size"].get<int64_t>() > (int64_t{1} << 50))
        throw Error(what + ": " + path + " has no valid size in the hub's file list");
      return o["size"].get<int64_t>();
    };
    if (has_lfs) {
      const auto& l = s["lfs"];
      std::string sha = l.contains("sha256") && l["sha256"].is_string() ? l["sha256"].get<std::string>()
                        : l.contains("oid") && l["oid"].is_string() ? l["oid"].get<std::string>() : "";
      if (sha.rfind("sha256:", 0) == 0) sha = sha.substr(7);
      f.blob = lower(sha);
      if (!hex_of_len(f.blob, 64)) throw Error(what + ": " + path + " has no valid LFS sha256 in the hub's file list");
      f.size = size_of(l);
    } else {
      f.blob = s.contains("blobId") && s["blobId"].is_string() ? lower(s["blobId"].get<std::string>()) : "";
      if (!hex_of_len(f.blob, 40)) throw Error(what + ": " + path + " has no valid blob id in the hub's file list");
      f.size = size_of(s);
    }
    f.cached = file_size_or(join_path(repo, "blobs/" + f.blob), -1) == f.size;
    if (!f.cached) {
      f.partial = std::min(file_size_or(join_path(repo, "blobs/" + f.blob + ".incomplete"), 0), f.size);
      if (__builtin_add_overflow(p.bytes_to_fetch, f.size - f.partial, &p.bytes_to_fetch))
        throw Error(what + ": the hub's file list adds up to more bytes than any repo holds");
    }
    if (__builtin_add_overflow(p.bytes_total, f.size, &p.bytes_total))
      throw Error(what + ": the hub's file list adds up to more bytes than any repo holds");
    p.files.push_back(f);
  }
  if (!dataset && r.include.empty() && !any_safetensors && any_pickle)
    throw Error(what + ": this repo has PyTorch pickle weights only (" + p.skipped.front().substr(0, p.skipped.front().find(' ')) +
                "); Hone reads safetensors and never unpickles. Look for a safetensors version of the model (or convert it "
                "with a trusted tool) and download that");
  if (p.files.empty()) throw Error(what + ": no file matches " + (r.include.empty() ? "what Hone needs" : "--include"));
  // Large files first: they set the total time, so they should not start last.
  std::stable_sort(p.files.begin(), p.files.end(), [](const PlannedFile& a, const PlannedFile& b) { return a.size > b.size; });
  return p;
}

DownloadResult run_download(const HubClient& c, const DownloadRequest& r, const DownloadPlan& plan,
                            const std::function<void(const DownloadProgress&)>& progress, const std::atomic<bool>* cancel) {
  const auto t0 = Clock::now();
  const HubSettings& s = c.settings();
  const std::string repo = repo_folder(r.ref, s.cache);
  make_dirs(join_path(repo, "blobs"));
  make_dirs(join_path(repo, "snapshots/" + plan.commit));
  struct statvfs vfs {};
  if (statvfs(repo.c_str(), &vfs) == 0) {
    const int64_t free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    const int64_t need = plan.bytes_to_fetch + (64ll << 20);
    if (free_bytes < need)
      throw Error(r.ref.text() + ": needs " + std::to_string(plan.bytes_to_fetch >> 20) + " MiB and " + s.cache + " has " +
                  std::to_string(free_bytes >> 20) + " MiB free; nothing was downloaded");
  }
  Shared sh;
  DownloadResult res;
  res.commit = plan.commit;
  res.snapshot = join_path(repo, "snapshots/" + plan.commit);
  std::vector<const PlannedFile*> todo;
  for (const auto& f : plan.files) {
    if (f.cached) {
      link_snapshot(repo, plan.commit, f);
      ++res.reused;
      ++sh.files_done;
    } else {
      todo.push_back(&f);
    }
    sh.bytes += f.cached ? f.size : f.partial;
  }
  const int jobs = std::max(1, std::min<int>(r.jobs, static_cast<int>(todo.size())));
  std::vector<std::thread> workers;
  for (int w = 0; w < jobs && !todo.empty(); ++w)
    workers.emplace_back([&] {
      for (;;) {
        const PlannedFile* f;
        {
          std::lock_guard<std::mutex> l(sh.m);
          if (sh.next >= todo.size() || (cancel && cancel->load()) || !sh.fatal.empty()) break;
          f = todo[sh.next++];
        }
        std::string why;
        try {
          why = fetch_one(c, r, plan.commit, *f, sh, cancel);
        } catch (const std::exception& e) {
          why = f->path + ": " + e.what();
        }
        std::lock_guard<std::mutex> l(sh.m);
        if (why.empty()) ++sh.files_done;
        else if (why.find("the hub answered 401") != std::string::npos || why.find("the hub answered 403") != std::string::npos)
          sh.fatal = why;
        else if (why != "cancelled") sh.failures.push_back(why);
      }
      std::lock_guard<std::mutex> l(sh.m);
      ++sh.finished_workers;
      sh.cv.notify_all();
    });
  // Progress on this thread: a rate over a sliding window of about 3 s.
  std::vector<std::pair<Clock::time_point, int64_t>> window{{Clock::now(), sh.bytes.load()}};
  auto report = [&] {
    if (!progress) return;
    DownloadProgress pg;
    pg.bytes_done = sh.bytes.load();
    pg.bytes_total = plan.bytes_total;
    pg.files_done = sh.files_done.load();
    pg.files_total = static_cast<int>(plan.files.size());
    const auto now = Clock::now();
    window.emplace_back(now, pg.bytes_done);
    while (window.size() > 2 && now - window.front().first > std::chrono::seconds(3)) window.erase(window.begin());
    const double dt = std::chrono::duration<double>(now - window.front().first).count();
    if (dt > 0.05) pg.rate = static_cast<double>(pg.bytes_done - window.front().second) / dt;
    if (pg.rate > 0) pg.eta_s = static_cast<double>(pg.bytes_total - pg.bytes_done) / pg.rate;
    progress(pg);
  };
  {
    std::unique_lock<std::mutex> l(sh.m);
    while (sh.finished_workers < static_cast<int>(workers.size())) {
      sh.cv.wait_for(l, std::chrono::milliseconds(200));
      l.unlock();
      report();
      l.lock();
    }
  }
  for (auto& t : workers) t.join();
  report();
  res.bytes_fetched = sh.fetched.load();
  res.files = sh.files_done.load();
  res.resumed = sh.resumed.load();
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!sh.fatal.empty() || !sh.failures.empty()) {
    // Nothing at all arrived (a refused token, say): no empty repo folder is left to list.
    std::error_code ec;
    if (fs::is_empty(join_path(repo, "blobs"), ec) && !ec) fs::remove_all(repo, ec);
  }
  if (!sh.fatal.empty()) throw Error(sh.fatal + "; nothing else was downloaded");
  if (!sh.failures.empty()) {
    std::string msg = r.ref.text() + ": " + std::to_string(sh.failures.size()) + " of " + std::to_string(plan.files.size()) +
                      " files failed";
    for (const auto& f : sh.failures) msg += "\n  " + f;
    throw Error(msg);
  }
  if (cancel && cancel->load() && res.files < static_cast<int>(plan.files.size())) {
    res.cancelled = true;
    return res;
  }
  // Every file is whole: now the name may point at this commit.
  if (!r.ref.revision.empty() ? r.ref.revision != plan.commit : true) {
    const std::string rev = r.ref.revision.empty() ? "main" : r.ref.revision;
    const std::string ref_file = join_path(repo, "refs/" + rev);
    make_dirs(fs::path(ref_file).parent_path().string());
    write_file_atomic(ref_file, plan.commit);
  }
  return res;
}

int64_t remove_cached(const HubRef& r, const std::string& cache) {
  const std::string repo = repo_folder(r, cache);
  if (!is_directory(repo)) throw Error(r.text() + ": not in the Hugging Face cache (" + cache + ")");
  std::error_code ec;
  int64_t freed = 0;
  if (r.revision.empty()) {
    for (auto it = fs::recursive_directory_iterator(repo, ec); !ec && it != fs::end(it); it.increment(ec))
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) freed += static_cast<int64_t>(it->file_size(ec));
    fs::remove_all(repo, ec);
    if (ec) throw file_error(repo, "cannot delete: " + ec.message());
    fs::remove_all(join_path(cache, ".locks/" + repo_folder_name(r)), ec);
    return freed;
  }
  std::string why;
  const std::string snap = cached_snapshot(r, &why, cache);
  if (snap.empty()) throw Error(r.text() + ": " + why);
  fs::remove_all(snap, ec);
  // refs pointing at the removed commit go too; then blobs no snapshot links any more.
  const std::string commit = fs::path(snap).filename().string();
  const std::string refs = join_path(repo, "refs");
  std::vector<fs::path> stale;
  if (is_directory(refs))
    for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::end(it); it.increment(ec))
      if (it->is_regular_file(ec) && read_file(it->path().string()).substr(0, 40) == commit) stale.push_back(it->path());
  for (auto& p : stale) fs::remove(p, ec);
  std::set<std::string> used;
  const std::string snaps = join_path(repo, "snapshots");
  if (is_directory(snaps))
    for (auto it = fs::recursive_directory_iterator(snaps, ec); !ec && it != fs::end(it); it.increment(ec))
      if (it->is_symlink(ec)) used.insert(fs::read_symlink(it->path(), ec).filename().string());
  const std::string blobs = join_path(repo, "blobs");
  std::vector<fs::path> drop;
  if (is_directory(blobs))
    for (const auto& b : fs::directory_iterator(blobs, ec))
      if (b.path().extension() != ".incomplete" && !used.count(b.path().filename().string())) drop.push_back(b.path());
  for (auto& b : drop) {
    freed += file_size_or(b.string(), 0);
    fs::remove(b, ec);
  }
  return freed;
}

}  // namespace hone::hub
