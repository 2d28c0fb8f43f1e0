// libcurl for the hub client (hub_http.h). One easy handle per request: downloads run on several
// threads at once and a handle must not be shared between them.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "hub/hub_http.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unistd.h>
#include <vector>

#include "common/error.h"
#include "common/json_file.h"
#include "common/files.h"
#include "common/hub_cache.h"

namespace hone::hub {
namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v && *v ? v : "";
}

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Easy {
  CURL* h;
  curl_slist* headers = nullptr;
  Easy() : h(curl_easy_init()) {
    if (!h) throw Error("libcurl: cannot start a transfer");
  }
  ~Easy() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
};

// Collects the last response's headers: a redirect's headers are dropped when the next status line comes.
size_t on_header(char* buf, size_t size, size_t n, void* user) {
  auto* r = static_cast<HttpResponse*>(user);
  std::string line(buf, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    std::string k = line.substr(0, colon);
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r->headers[k] = trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t on_body(char* buf, size_t size, size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() + size * n > (64u << 20)) return 0;  // an API answer is small; refuse a runaway one
  s->append(buf, size * n);
  return size * n;
}

curl_slist* auth_headers(const HubSettings& s, curl_slist* list) {
  // libcurl drops a custom Authorization header when a redirect leaves the host, so the token is
  // not handed to a CDN.
  if (!s.token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + s.token).c_str());
  return list;
}

// What every request sets: the headers collected into *r, identification, timeouts, the URL and
// (when `token`) the token.
void start_request(Easy& e, const HubSettings& s, HttpResponse* r, const std::string& url, bool token) {
  curl_easy_setopt(e.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e.h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e.h, CURLOPT_USERAGENT, "hone/" HONE_VERSION);
  curl_easy_setopt(e.h, CURLOPT_CONNECTTIMEOUT, 20L);
  // A stalled connection (under 1 KB/s for 60 s) fails rather than hanging forever.
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e.h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(e.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.h, CURLOPT_ACCEPT_ENCODING, "identity");
  curl_easy_setopt(e.h, CURLOPT_URL, url.c_str());
  if (token) {
    e.headers = auth_headers(s, nullptr);
    curl_easy_setopt(e.h, CURLOPT_HTTPHEADER, e.headers);
  }
}

void check_online(const HubSettings& s) {
  if (s.offline)
    throw Error("HF_HUB_OFFLINE is set: the hub is not contacted (unset it to download; cached models need no network)");
}

struct DownloadCtx {
  FILE* f = nullptr;
  const std::function<bool(const char*, size_t)>* on_data = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  HttpResponse* resp = nullptr;
  bool checked_status = false;
  bool restart = false, truncated = false;
  bool failed_write = false;
  long status = 0;
  CURL* h = nullptr;
};

size_t on_file_body(char* buf, size_t size, size_t n, void* user) {
  auto* c = static_cast<DownloadCtx*>(user);
  const size_t len = size * n;
  if (!c->checked_status) {
    c->checked_status = true;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->status < 200 || c->status >= 300) return len;  // an error page: not written
    if (c->status == 200 && c->restart && !c->truncated) {
      // The server ignored the Range: start the file over rather than append a second copy.
      if (fflush(c->f) != 0 || ftruncate(fileno(c->f), 0) != 0 || fseek(c->f, 0, SEEK_SET) != 0) {
        c->failed_write = true;
        return 0;
      }
      c->truncated = true;
    }
  }
  if (c->status < 200 || c->status >= 300) return len;
  if (fwrite(buf, 1, len, c->f) != len) {
    c->failed_write = true;
    return 0;
  }
  if (c->on_data && *c->on_data && !(*c->on_data)(buf, len)) return 0;
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* c = static_cast<DownloadCtx*>(user);
  return c->cancel && c->cancel->load() ? 1 : 0;
}

}  // namespace

HubSettings HubSettings::from_env() {
  HubSettings s;
  if (auto e = env("HF_ENDPOINT"); !e.empty()) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    s.endpoint = e;
  }
  if (auto t = env("HF_TOKEN"); !t.empty()) {
    s.token = trim(t);
    s.token_source = "HF_TOKEN";
  } else if (auto p = token_file_path(); file_exists(p)) {
    s.token = trim(read_file(p));
    if (!s.token.empty()) s.token_source = p;
  }
  const std::string off = env("HF_HUB_OFFLINE");
  s.offline = !off.empty() && off != "0" && off != "false" && off != "False";
  s.cache = hub_cache_dir();
  return s;
}

std::string token_file_path() {
  if (auto p = env("HF_TOKEN_PATH"); !p.empty()) return p;
  return join_path(hf_home(), "token");
}

void save_token(const std::string& token) {
  const std::string p = token_file_path();
  const std::string t = trim(token);
  if (t.empty()) {
    std::remove(p.c_str());
    return;
  }
  auto slash = p.rfind('/');
  if (slash != std::string::npos) make_dirs(p.substr(0, slash));
  const std::string tmp = p + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw file_error(tmp, "cannot write the token file");
  chmod(tmp.c_str(), 0600);  // a secret: only its owner reads it
  const bool ok = std::fwrite(t.data(), 1, t.size(), f) == t.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), p.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw file_error(p, "cannot write the token file");
  }
}

std::string status_message(long st, const std::string& what, const HubSettings& s) {
  if (st >= 200 && st < 300) return "";
  if (st == 401)
    return what + ": the hub answered 401 (unauthorised): it is gated or private and " +
           (s.token.empty() ? std::string("no token was given; create a read token at ") + s.endpoint +
                                  "/settings/tokens and set HF_TOKEN or save it (Models page > Token, or write it to " +
                                  token_file_path() + ")"
                            : "the token (from " + s.token_source + ") was refused; check that it is valid");
  if (st == 403)
    return what + ": the hub answered 403 (forbidden): the repo is gated and your account has not been granted access; "
                  "accept its conditions on " + s.endpoint + "/" + what.substr(0, what.find(' ')) +
           " with the account of your token, or ask the owner for access";
  if (st == 404)
    return what + ": not found on " + s.endpoint + " (check the name and revision" +
           (s.token.empty() ? "; a private repo also answers 404 without a token)" : ")");
  if (st == 416) return what + ": the server refused the byte range (the partial file is larger than the file)";
  if (st == 429) return what + ": the hub is rate-limiting requests (429); wait a minute and run the download again";
  return what + ": the hub answered HTTP " + std::to_string(st);
}

HubClient::HubClient(HubSettings s) : s_(std::move(s)) { global_init(); }

nlohmann::json HubClient::get_json(const std::string& path, const std::string& what) const {
  check_online(s_);
  Easy e;
  HttpResponse r;
  start_request(e, s_, &r, url(path), true);
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e.h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(e.h, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &r.body);
  CURLcode rc = curl_easy_perform(e.h);
  if (rc != CURLE_OK) throw Error(what + ": cannot reach " + s_.endpoint + ": " + curl_easy_strerror(rc));
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
  if (auto m = status_message(r.status, what, s_); !m.empty()) throw Error(m);
  return parse_hub_json(r.body, what, url(path));
}

nlohmann::json parse_hub_json(const std::string& body, const std::string& what, const std::string& url) {
  if (json_nesting(body) > kMaxJsonNesting) throw Error(what + ": the hub's answer from " + url + " is nested too deep to be its JSON");
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception&) {  // parse_error, and out_of_range for a number like 1e999
    throw Error(what + ": the hub's answer from " + url + " is not JSON");
  }
}

HttpResponse HubClient::head(const std::string& u) const {
  check_online(s_);
  Easy e;
  HttpResponse r;
  start_request(e, s_, &r, u, true);
  curl_easy_setopt(e.h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e.h, CURLOPT_TIMEOUT, 60L);
  CURLcode rc = curl_easy_perform(e.h);
  if (rc != CURLE_OK) throw Error(u + ": cannot reach the hub: " + curl_easy_strerror(rc));
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &r.status);
  r.url = u;
  return r;
}

long HubClient::download(const std::string& u, const std::string& file, int64_t offset,
                         const std::function<bool(const char*, size_t)>& on_data, const std::atomic<bool>* cancel,
                         bool* restarted, std::string* error) const {
  check_online(s_);
  Easy e;
  HttpResponse r;
  // The token goes to the hub's own host only; a redirect target (a CDN) gets a signed URL instead.
  start_request(e, s_, &r, u, u.rfind(s_.endpoint + "/", 0) == 0);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), offset > 0 ? "r+b" : "wb"), &std::fclose);
  if (!f) throw file_error(file, "cannot write the download");
  if (offset > 0 && std::fseek(f.get(), offset, SEEK_SET) != 0) throw file_error(file, "cannot seek in the partial download");
  std::vector<char> buf(1 << 20);
  setvbuf(f.get(), buf.data(), _IOFBF, buf.size());  // large writes: the disk, not the syscalls, sets the pace
  DownloadCtx c;
  c.f = f.get();
  c.on_data = &on_data;
  c.cancel = cancel;
  c.resp = &r;
  c.restart = offset > 0;
  c.h = e.h;
  curl_easy_setopt(e.h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e.h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(e.h, CURLOPT_WRITEFUNCTION, on_file_body);
  curl_easy_setopt(e.h, CURLOPT_WRITEDATA, &c);
  curl_easy_setopt(e.h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(e.h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e.h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e.h, CURLOPT_XFERINFODATA, &c);
  // CURLOPT_RANGE rather than RESUME_FROM: a server that ignores it answers 200 with the whole file,
  // which on_file_body turns into a fresh start instead of an error.
  const std::string range = std::to_string(offset) + "-";
  if (offset > 0) curl_easy_setopt(e.h, CURLOPT_RANGE, range.c_str());
  CURLcode rc = curl_easy_perform(e.h);
  long status = 0;
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &status);
  if (restarted) *restarted = c.truncated;
  const bool flushed = std::fflush(f.get()) == 0;
  if (c.failed_write || !flushed) throw file_error(file, "cannot write the download (disk full?)");
  if (rc == CURLE_ABORTED_BY_CALLBACK || (rc == CURLE_WRITE_ERROR && cancel && cancel->load())) {
    if (error) *error = "cancelled";
    return -1;
  }
  // A 416 for a Range at the end of the file is not a transport error: the caller checks the size.
  if (rc != CURLE_OK && !(rc == CURLE_HTTP_RETURNED_ERROR || (status == 416))) {
    if (error) *error = curl_easy_strerror(rc);
    return 0;
  }
  return status;
}

}  // namespace hone::hub
