// SentencePiece tokenizer via libhone_spm.so (dlopen, RTLD_LOCAL | RTLD_DEEPBIND).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/spm_tokenizer.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "common/error.h"
#include "common/files.h"
#include "common/utf8.h"

namespace hone {

std::string SpmTokenizer::shim_path() {
  if (const char* e = std::getenv("HONE_SPM_LIB")) return e;
  const std::string dir = executable_dir();
  for (const std::string& p : {join_path(dir, "libhone_spm.so"), join_path(dir, "../lib/hone/libhone_spm.so")})
    if (file_exists(p)) return p;
  return join_path(dir, "libhone_spm.so");
}

const SpmTokenizer::Api& SpmTokenizer::api() {
  static Api a{};
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = shim_path();
    // Checked before dlopen: ASan (the fuzz build) aborts on any RTLD_DEEPBIND dlopen, even of a
    // file that is not there.
    if (!file_exists(path)) {
      error = path + ": no SentencePiece shim (a build without libsentencepiece has none: use the model's tokenizer.json)";
      return;
    }
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) {
      const char* e = ::dlerror();
      error = path + ": cannot load the SentencePiece shim: " + (e ? e : "unknown error");
      return;
    }
    auto sym = [&](const char* n) {
      void* s = ::dlsym(lib, n);
      if (!s && error.empty()) error = path + ": missing symbol " + n;
      return s;
    };
    a.open = reinterpret_cast<hone_spm_open_fn>(sym("hone_spm_open"));
    a.close = reinterpret_cast<hone_spm_close_fn>(sym("hone_spm_close"));
    a.vocab_size = reinterpret_cast<hone_spm_vocab_size_fn>(sym("hone_spm_vocab_size"));
    a.encode = reinterpret_cast<hone_spm_encode_fn>(sym("hone_spm_encode"));
    a.decode = reinterpret_cast<hone_spm_decode_fn>(sym("hone_spm_decode"));
    a.id_to_piece = reinterpret_cast<hone_spm_id_to_piece_fn>(sym("hone_spm_id_to_piece"));
    a.piece_to_id = reinterpret_cast<hone_spm_piece_to_id_fn>(sym("hone_spm_piece_to_id"));
    a.special_id = reinterpret_cast<hone_spm_special_id_fn>(sym("hone_spm_special_id"));
    a.is_control = reinterpret_cast<hone_spm_is_control_fn>(sym("hone_spm_is_control"));
  });
  if (!error.empty()) throw Error(error);
  return a;
}

SpmTokenizer::SpmTokenizer(const std::string& model_path, TokenizerConfig cfg) {
  cfg_ = std::move(cfg);
  const Api& a = api();
  char err[512] = {0};
  handle_ = a.open(model_path.c_str(), err, sizeof(err));
  if (!handle_) throw file_error(model_path, std::string("not a SentencePiece model: ") + err);
  // Special tokens named by the model itself, unless tokenizer_config.json names them.
  auto piece = [&](int id) { return id >= 0 ? id_to_token(id) : std::string(); };
  if (cfg_.bos_token.empty()) cfg_.bos_token = piece(a.special_id(handle_, 0));
  if (cfg_.eos_token.empty()) cfg_.eos_token = piece(a.special_id(handle_, 1));
  if (cfg_.unk_token.empty()) cfg_.unk_token = piece(a.special_id(handle_, 2));
  // transformers' slow tokenizer never lets control tokens or added tokens reach SentencePiece.
  for (const auto& t : cfg_.added_tokens_decoder) added_.add(t);
  for (const auto& s : {cfg_.bos_token, cfg_.eos_token, cfg_.unk_token, cfg_.pad_token}) {
    int32_t id = s.empty() ? -1 : token_to_id(s);
    if (id >= 0) {
      AddedToken t;
      t.id = id;
      t.content = s;
      t.special = true;
      added_.add(t);
    }
  }
}

SpmTokenizer::~SpmTokenizer() {
  if (handle_) api().close(handle_);
}

size_t SpmTokenizer::vocab_size() const {
  size_t n = static_cast<size_t>(api().vocab_size(handle_));
  for (const auto& t : added_.tokens()) n = std::max(n, static_cast<size_t>(t.id) + 1);
  return n;
}

int32_t SpmTokenizer::token_to_id(const std::string& token) const {
  if (auto* t = added_.find_content(token)) return t->id;
  return api().piece_to_id(handle_, token.c_str());
}

std::string SpmTokenizer::id_to_token(int32_t id) const {
  if (auto* t = added_.find_id(id)) return t->content;
  char buf[512];
  int n = api().id_to_piece(handle_, id, buf, sizeof(buf));
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof(buf) - 1));
}

bool SpmTokenizer::is_special(int32_t id) const {
  if (auto* t = added_.find_id(id)) return t->special;
  return api().is_control(handle_, id) != 0;
}

Encoding SpmTokenizer::encode(const std::string& text, bool add_special) const {
  size_t bad = 0;
  if (!utf8_valid(text, &bad)) throw Error("text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  const Api& a = api();
  Encoding enc;
  if (add_special && cfg_.add_bos_token.value_or(true) && bos_id() >= 0) {
    enc.ids.push_back(bos_id());
    enc.offsets.emplace_back(0, 0);
  }
  for (const auto& seg : added_.split(text)) {
    if (seg.token >= 0) {
      enc.ids.push_back(added_.tokens()[seg.token].id);
      enc.offsets.emplace_back(static_cast<uint32_t>(seg.b), static_cast<uint32_t>(seg.e));
      continue;
    }
    const std::string part = text.substr(seg.b, seg.e - seg.b);
    std::vector<int> ids(part.size() + 8);
    std::vector<unsigned> bs(ids.size()), es(ids.size());
    int n = a.encode(handle_, part.data(), part.size(), ids.data(), bs.data(), es.data(), static_cast<int>(ids.size()));
    if (n > static_cast<int>(ids.size())) {
      ids.resize(n), bs.resize(n), es.resize(n);
      n = a.encode(handle_, part.data(), part.size(), ids.data(), bs.data(), es.data(), n);
    }
    if (n < 0) throw Error("SentencePiece failed to encode the text");
    for (int i = 0; i < n; ++i) {
      enc.ids.push_back(ids[i]);
      enc.offsets.emplace_back(static_cast<uint32_t>(seg.b + bs[i]), static_cast<uint32_t>(seg.b + es[i]));
    }
  }
  if (add_special && cfg_.add_eos_token.value_or(false) && eos_id() >= 0) {
    enc.ids.push_back(eos_id());
    enc.offsets.emplace_back(0, 0);
  }
  return enc;
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Api& a = api();
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    int n = a.decode(handle_, run.data(), static_cast<int>(run.size()), nullptr, 0);
    if (n > 0) {
      std::string buf(static_cast<size_t>(n) + 1, '\0');
      a.decode(handle_, run.data(), static_cast<int>(run.size()), buf.data(), n + 1);
      buf.resize(static_cast<size_t>(n));
      out += buf;
    }
    run.clear();
  };
  for (auto id : ids) {
    if (auto* t = added_.find_id(id)) {
      flush();
      if (!(skip_special && t->special)) out += t->content;
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

}  // namespace hone
