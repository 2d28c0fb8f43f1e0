// HTTPS to the Hugging Face hub (or a mirror) through libcurl: settings from the environment
// (HF_ENDPOINT, HF_TOKEN or the token file, HF_HUB_OFFLINE), JSON API calls, HEAD requests that
// show the hub's own headers, and resumable downloads into a file.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace hone::hub {

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // no trailing slash
  std::string token;                                 // "" = anonymous
  std::string token_source;                          // "HF_TOKEN", the token file's path, or ""
  bool offline = false;                              // HF_HUB_OFFLINE=1
  std::string cache;                                 // hub_cache_dir()
  // From the environment: HF_ENDPOINT, HF_TOKEN (else HF_TOKEN_PATH, else $HF_HOME/token),
  // HF_HUB_OFFLINE, HF_HUB_CACHE/HF_HOME.
  static HubSettings from_env();
};

// Where a token is kept for the hub client and the other tools that read it ($HF_HOME/token,
// or HF_TOKEN_PATH). Written 0600, then renamed; an empty token removes the file.
std::string token_file_path();
void save_token(const std::string& token);

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response
  std::string body;
  std::string url;  // effective URL after redirects
};

// The outcome of a status for `what` (a repo or file) in plain words: "" for 2xx, else why and
// what to do (401: a token; 403: the repo's conditions or the token's rights; 404: the name).
std::string status_message(long status, const std::string& what, const HubSettings& s);
// A body the hub (or whatever answers at its address) sent, as JSON; anything that does not parse,
// numbers out of range included, throws hone::Error naming `what` and `url`.
nlohmann::json parse_hub_json(const std::string& body, const std::string& what, const std::string& url);

class HubClient {
 public:
  explicit HubClient(HubSettings s);
  const HubSettings& settings() const { return s_; }
  std::string url(const std::string& path) const { return s_.endpoint + path; }

  // GET endpoint+path, parsed; a non-2xx status throws with status_message(what).
  nlohmann::json get_json(const std::string& path, const std::string& what) const;
  // HEAD without following redirects: the hub's own headers (X-Repo-Commit, X-Linked-Etag, ...).
  HttpResponse head(const std::string& url) const;

  // GET url (redirects followed) appending to `file` from byte `offset` (a Range request when
  // offset > 0; a server that answers 200 restarts the file). on_data sees every byte written
  // (for hashing) and returns false to stop; cancel stops the transfer as well. Returns the final
  // status; transport errors throw. *restarted says the server ignored the Range.
  long download(const std::string& url, const std::string& file, int64_t offset,
                const std::function<bool(const char*, size_t)>& on_data, const std::atomic<bool>* cancel,
                bool* restarted, std::string* error) const;

 private:
  HubSettings s_;
};

}  // namespace hone::hub
