// Normalizers: NFC/NFKC/NFD/NFKD (ICU), Lowercase, Replace (string pattern), Prepend, Strip,
// Sequence. NFC alignment: ICU tells where normalization boundaries are, so each chunk between
// boundaries is normalized alone and mapped to its original byte range.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "common/error.h"
#include "common/utf8.h"

namespace hone {

AlignedString AlignedString::from_original(const std::string& text, uint32_t base) {
  AlignedString a;
  a.s = text;
  a.ob.resize(text.size());
  a.oe.resize(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t l = utf8_seq_len(text, i);
    if (!l) l = 1;
    for (size_t k = 0; k < l && i + k < text.size(); ++k) {
      a.ob[i + k] = base + static_cast<uint32_t>(i);
      a.oe[i + k] = base + static_cast<uint32_t>(i + l);
    }
    i += l;
  }
  return a;
}

AlignedString AlignedString::slice(size_t b, size_t e) const {
  AlignedString a;
  a.s = s.substr(b, e - b);
  a.ob.assign(ob.begin() + b, ob.begin() + e);
  a.oe.assign(oe.begin() + b, oe.begin() + e);
  return a;
}

void AlignedString::append(const std::string& bytes, uint32_t b, uint32_t e) {
  s += bytes;
  ob.insert(ob.end(), bytes.size(), b);
  oe.insert(oe.end(), bytes.size(), e);
}

void AlignedString::append_from(const AlignedString& o, size_t b, size_t e) {
  s.append(o.s, b, e - b);
  ob.insert(ob.end(), o.ob.begin() + b, o.ob.begin() + e);
  oe.insert(oe.end(), o.oe.begin() + b, o.oe.begin() + e);
}

namespace {

const icu::Normalizer2* icu_form(const std::string& form) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  if (form == "nfc") n = icu::Normalizer2::getNFCInstance(err);
  else if (form == "nfkc") n = icu::Normalizer2::getNFKCInstance(err);
  else if (form == "nfd") n = icu::Normalizer2::getNFDInstance(err);
  else if (form == "nfkd") n = icu::Normalizer2::getNFKDInstance(err);
  if (U_FAILURE(err) || !n) throw Error("ICU normalizer " + form + " unavailable");
  return n;
}

std::string icu_apply(const icu::Normalizer2* n, const std::string& s) {
  UErrorCode err = U_ZERO_ERROR;
  auto u = icu::UnicodeString::fromUTF8(s);
  if (n->isNormalized(u, err) && U_SUCCESS(err)) return s;
  err = U_ZERO_ERROR;
  auto out = n->normalize(u, err);
  if (U_FAILURE(err)) return s;
  std::string r;
  out.toUTF8String(r);
  return r;
}

class UnicodeNorm : public Normalizer {
 public:
  explicit UnicodeNorm(std::string form) : n_(icu_form(form)) {}
  AlignedString apply(const AlignedString& in) const override {
    UErrorCode err = U_ZERO_ERROR;
    if (n_->isNormalized(icu::UnicodeString::fromUTF8(in.s), err) && U_SUCCESS(err)) return in;
    // Split at code points that start a new normalization unit, normalize each unit alone.
    AlignedString out;
    size_t start = 0;
    for (size_t i = 0; i < in.s.size();) {
      size_t save = i;
      uint32_t cp = utf8_next(in.s, i);
      if (save > start && n_->hasBoundaryBefore(static_cast<UChar32>(cp))) {
        flush(in, start, save, out);
        start = save;
      }
    }
    flush(in, start, in.s.size(), out);
    return out;
  }

 private:
  void flush(const AlignedString& in, size_t b, size_t e, AlignedString& out) const {
    if (b >= e) return;
    std::string chunk = in.s.substr(b, e - b);
    std::string norm = icu_apply(n_, chunk);
    if (norm == chunk) out.append_from(in, b, e);
    else out.append(norm, in.ob[b], in.oe[e - 1]);
  }
  const icu::Normalizer2* n_;
};

class Lowercase : public Normalizer {
 public:
  AlignedString apply(const AlignedString& in) const override {
    AlignedString out;
    for (size_t i = 0; i < in.s.size();) {
      size_t b = i;
      uint32_t cp = utf8_next(in.s, i);
      std::string c;
      utf8_append(c, static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp))));
      out.append(c, in.ob[b], in.oe[i - 1]);
    }
    return out;
  }
};

class Replace : public Normalizer {
 public:
  Replace(std::string pat, std::string with) : pat_(std::move(pat)), with_(std::move(with)) {}
  AlignedString apply(const AlignedString& in) const override {
    if (pat_.empty()) return in;
    AlignedString out;
    size_t i = 0;
    while (i < in.s.size()) {
      size_t f = in.s.find(pat_, i);
      if (f == std::string::npos) break;
      out.append_from(in, i, f);
      out.append(with_, in.ob[f], in.oe[f + pat_.size() - 1]);
      i = f + pat_.size();
    }
    out.append_from(in, i, in.s.size());
    return out;
  }

 private:
  std::string pat_, with_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string p) : p_(std::move(p)) {}
  AlignedString apply(const AlignedString& in) const override {
    if (in.s.empty()) return in;  // nothing is prepended to an empty string
    AlignedString out;
    out.append(p_, in.ob[0], in.ob[0]);
    out.append_from(in, 0, in.s.size());
    return out;
  }

 private:
  std::string p_;
};

class Strip : public Normalizer {
 public:
  Strip(bool l, bool r) : l_(l), r_(r) {}
  AlignedString apply(const AlignedString& in) const override {
    size_t b = 0, e = in.s.size();
    auto ws = [&](size_t i, size_t* len) {
      size_t j = i;
      uint32_t cp = utf8_next(in.s, j);
      *len = j - i;
      return u_isUWhiteSpace(static_cast<UChar32>(cp));
    };
    size_t len;
    if (l_)
      while (b < e && ws(b, &len)) b += len;
    if (r_)
      while (e > b) {
        size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(in.s[k]) & 0xC0) == 0x80) --k;
        if (!ws(k, &len)) break;
        e = k;
      }
    return in.slice(b, e);
  }

 private:
  bool l_, r_;
};

class SequenceNorm : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> parts;
  AlignedString apply(const AlignedString& in) const override {
    AlignedString cur = in;
    for (const auto& p : parts) cur = p->apply(cur);
    return cur;
  }
};

std::string pattern_string(const nlohmann::json& p, const char* where) {
  if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"];
  throw Error(std::string(where) + ": only string patterns are supported here, got " + p.dump());
}

}  // namespace

std::string unicode_normalize(const std::string& s, const char* form) { return icu_apply(icu_form(form), s); }

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
    std::string f = type;
    for (auto& ch : f) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return std::make_unique<UnicodeNorm>(f);
  }
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Replace")
    return std::make_unique<Replace>(pattern_string(j.value("pattern", nlohmann::json()), "Replace normalizer"), j.value("content", ""));
  if (type == "Prepend") return std::make_unique<Prepend>(j.value("prepend", ""));
  if (type == "Strip") return std::make_unique<Strip>(j.value("strip_left", true), j.value("strip_right", true));
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNorm>();
    for (const auto& p : j.at("normalizers"))  // at(): a missing key throws, [] on a const object is undefined
      if (auto n = make_normalizer(p)) seq->parts.push_back(std::move(n));
    return seq;
  }
  throw Error("normalizer type \"" + type + "\" is not supported");
}

}  // namespace hone
