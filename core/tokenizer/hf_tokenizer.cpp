// tokenizer.json pipeline. Matches the tokenizers library (and transformers.js) on the shared
// reference cases: added tokens split the raw text first; each remaining span is normalized,
// pre-tokenized and BPE-encoded; TemplateProcessing adds BOS/EOS; decoders run as a chain.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "common/utf8.h"

namespace hone {

namespace {

bool is_llama_class(const std::string& c) { return c == "LlamaTokenizer" || c == "LlamaTokenizerFast"; }

// A token id from the file: an integer (a float such as 1e300 would be undefined behaviour to
// convert) within int32.
int32_t token_id(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max())
    throw Error(what + " is not a token id: " + v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

void require_utf8(const std::string& text) {
  size_t bad = 0;
  if (!utf8_valid(text, &bad)) throw Error("text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
}

}  // namespace

HfTokenizer::HfTokenizer(const std::string& path, TokenizerConfig cfg) {
  cfg_ = std::move(cfg);
  nlohmann::json j = read_json_file(path);
  try {
    if (!j.is_object() || !j.contains("model")) throw Error("no \"model\" section");
    model_ = std::make_unique<BpeModel>(j["model"]);
    normalizer_ = make_normalizer(j.value("normalizer", nlohmann::json()));
    pretok_ = make_pretokenizer(j.value("pre_tokenizer", nlohmann::json()), &pstate_);
    if (j.contains("decoder") && !j["decoder"].is_null()) {
      parse_decoder(j["decoder"], &decoder_, 0);
      has_decoder_ = true;
    }
    // transformers.js's LlamaTokenizer with legacy=false (TinyLlama, newer Llama-2 style files):
    // no normalizer, Metaspace with a prefix on the first section only, and the text itself is
    // prefixed with the replacement character (see encode()).
    if (is_llama_class(cfg_.tokenizer_class) && cfg_.legacy.has_value() && !*cfg_.legacy) {
      llama_nonlegacy_ = true;
      normalizer_.reset();
      PreTokenizeState st;
      pretok_ = make_pretokenizer({{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"add_prefix_space", true},
                                   {"prepend_scheme", "first"}},
                                  &st);
    }
    vocab_size_ = model_->vocab_size();
    // Ids are indexes into a table as long as the highest one: an added token far beyond the
    // vocabulary (2^31 in a few bytes) would have it allocate gigabytes. Real files are dense.
    const size_t n_added = (j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"].size() : 0) +
                           cfg_.added_tokens_decoder.size();
    const size_t id_limit = std::min<size_t>(BpeModel::kMaxTokenId, 4 * (model_->tokens() + n_added) + 1024);
    auto check_id = [&](const AddedToken& t) {
      if (static_cast<size_t>(t.id) >= id_limit)
        throw Error("added token \"" + t.content + "\" has id " + std::to_string(t.id) + ", far beyond the " +
                    std::to_string(model_->tokens() + n_added) + " tokens the files define");
    };
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& a : j["added_tokens"]) {
        AddedToken t;
        t.id = a.contains("id") && !a["id"].is_null() ? token_id(a["id"], "an added token's id") : -1;
        t.content = a.value("content", "");
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.single_word = a.value("single_word", false);
        t.normalized = a.value("normalized", false);
        if (t.id < 0 || t.content.empty()) continue;
        check_id(t);
        added_.add(t);
        model_->add_token(t.content, t.id);
        vocab_size_ = std::max(vocab_size_, static_cast<size_t>(t.id) + 1);
      }
    }
    for (const auto& t : cfg_.added_tokens_decoder) {
      if (!added_.find_content(t.content) && t.id >= 0) {
        check_id(t);
        added_.add(t);
        model_->add_token(t.content, t.id);
        vocab_size_ = std::max(vocab_size_, static_cast<size_t>(t.id) + 1);
      }
    }
    // Post-processor from the file, as transformers.js does (it never applies add_bos_token).
    {
      std::function<void(const nlohmann::json&)> parse_post = [&](const nlohmann::json& p) {
        if (p.is_null()) return;
        const std::string type = p.value("type", "");
        if (type == "TemplateProcessing") {
          // at(), not []: a missing key or index throws, where [] on a const JSON value is undefined.
          for (const auto& item : p.at("single")) {
            if (item.contains("Sequence")) post_.push_back({true, {}});
            else if (item.contains("SpecialToken")) {
              std::string id = item.at("SpecialToken").at("id");
              const auto& st = p.at("special_tokens").at(id);
              std::vector<int32_t> ids;
              for (const auto& x : st.at("ids")) ids.push_back(token_id(x, "post-processor token " + id));
              post_.push_back({false, ids});
            }
          }
        } else if (type == "RobertaProcessing" || type == "BertProcessing") {
          post_.push_back({false, {token_id(p.at("cls").at(1), "the cls token")}});
          post_.push_back({true, {}});
          post_.push_back({false, {token_id(p.at("sep").at(1), "the sep token")}});
        } else if (type == "Sequence") {
          for (const auto& q : p.at("processors")) parse_post(q);
        } else if (type != "ByteLevel") {
          throw Error("post-processor type \"" + type + "\" is not supported");
        }
      };
      parse_post(j.value("post_processor", nlohmann::json()));
      bool has_seq = false;
      for (auto& it : post_) has_seq = has_seq || it.sequence;
      if (!has_seq) post_.push_back({true, {}});
    }
  } catch (const Error& e) {
    throw file_error(path, e.what());
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("unexpected structure: ") + e.what());
  }
}

std::string HfTokenizer::kind() const {
  if (pstate_.byte_level) return "bpe-byte-level";
  return model_->byte_fallback() ? "bpe-sentencepiece-style" : "bpe";
}

int32_t HfTokenizer::token_to_id(const std::string& token) const {
  if (auto* a = added_.find_content(token)) return a->id;
  return model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  if (auto* a = added_.find_id(id)) return a->content;
  return model_->id_to_token(id);
}

bool HfTokenizer::is_special(int32_t id) const {
  auto* a = added_.find_id(id);
  return a && a->special;
}

void HfTokenizer::add_text(const std::string& text, size_t base, bool first, Encoding& out) const {
  AlignedString s = AlignedString::from_original(text, static_cast<uint32_t>(base));
  if (normalizer_) s = normalizer_->apply(s);
  if (s.empty()) return;
  std::vector<AlignedString> pieces{s};
  if (pretok_) pieces = pretok_->split(std::move(pieces), first);
  for (const auto& p : pieces) {
    for (const auto& t : model_->tokenize(p.s, pstate_.byte_level)) {
      out.ids.push_back(t.id);
      out.offsets.emplace_back(p.ob[t.b], p.oe[t.e - 1]);
    }
  }
}

Encoding HfTokenizer::encode(const std::string& text, bool add_special) const {
  require_utf8(text);
  if (llama_nonlegacy_ && !text.empty()) return encode_llama_nonlegacy(text, add_special);
  return encode_raw(text, add_special);
}

Encoding HfTokenizer::encode_llama_nonlegacy(const std::string& text, bool add_special) const {
  // text' = "▁" + text with every "▁" turned into a space; offsets mapped back to text.
  static const std::string kMeta = "\xE2\x96\x81";
  std::string t2 = kMeta;
  std::vector<uint32_t> back(3, 0);  // t2 byte -> text byte
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, kMeta) == 0) {
      t2 += ' ';
      back.push_back(static_cast<uint32_t>(i));
      i += 3;
    } else {
      t2 += text[i];
      back.push_back(static_cast<uint32_t>(i));
      ++i;
    }
  }
  back.push_back(static_cast<uint32_t>(text.size()));
  Encoding enc = encode_raw(t2, false);
  const int32_t meta_id = model_->token_to_id(kMeta);
  if (enc.ids.size() > 1 && enc.ids[0] == meta_id && meta_id >= 0 && is_special(enc.ids[1])) {
    enc.ids.erase(enc.ids.begin());
    enc.offsets.erase(enc.offsets.begin());
  }
  for (auto& o : enc.offsets) {
    uint32_t b = back[o.first], e = o.second >= t2.size() ? static_cast<uint32_t>(text.size()) : back[o.second];
    // a token made only of the added prefix maps to an empty range at 0
    o = {b, std::max(b, e)};
  }
  return add_special ? post_process(enc) : enc;
}

Encoding HfTokenizer::encode_raw(const std::string& text, bool add_special) const {
  Encoding enc;
  for (const auto& seg : added_.split(text)) {
    if (seg.token >= 0) {
      enc.ids.push_back(added_.tokens()[seg.token].id);
      enc.offsets.emplace_back(static_cast<uint32_t>(seg.b), static_cast<uint32_t>(seg.e));
    } else {
      add_text(text.substr(seg.b, seg.e - seg.b), seg.b, seg.b == 0, enc);
    }
  }
  return add_special ? post_process(enc) : enc;
}

Encoding HfTokenizer::post_process(const Encoding& enc) const {
  Encoding out;
  for (const auto& item : post_) {
    if (item.sequence) {
      out.ids.insert(out.ids.end(), enc.ids.begin(), enc.ids.end());
      out.offsets.insert(out.offsets.end(), enc.offsets.begin(), enc.offsets.end());
    } else {
      for (auto id : item.ids) {
        out.ids.push_back(id);
        out.offsets.emplace_back(0, 0);
      }
    }
  }
  return out;
}

void HfTokenizer::parse_decoder(const nlohmann::json& d, std::vector<DecodeStep>* steps, int depth) {
  if (!d.is_object() || !d.contains("type") || !d["type"].is_string()) throw Error("a decoder is not an object with a \"type\"");
  if (depth > 64) throw Error("decoder sequences nest more than 64 deep");
  const std::string type = d["type"].get<std::string>();
  auto str = [&](const char* k, const std::string& def) {
    if (!d.contains(k) || d[k].is_null()) return def;
    if (!d[k].is_string()) throw Error("decoder " + type + ": \"" + k + "\" is not a string");
    return d[k].get<std::string>();
  };
  auto count = [&](const char* k) -> size_t {
    if (!d.contains(k) || d[k].is_null()) return 0;
    if (!d[k].is_number_unsigned()) throw Error("decoder " + type + ": \"" + k + "\" is not a non-negative integer");
    return d[k].get<size_t>();
  };
  DecodeStep st{};
  if (type == "Sequence") {
    if (!d.contains("decoders") || !d["decoders"].is_array()) throw Error("decoder Sequence has no \"decoders\" list");
    for (const auto& sub : d["decoders"]) parse_decoder(sub, steps, depth + 1);
    return;
  } else if (type == "ByteLevel") {
    st.kind = DecodeStep::ByteLevel;
  } else if (type == "Replace") {
    st.kind = DecodeStep::Replace;
    if (!d.contains("pattern") || !d["pattern"].is_object()) throw Error("decoder Replace has no \"pattern\" object");
    const auto& pat = d["pattern"];
    if (pat.contains("String") && !pat["String"].is_string()) throw Error("decoder Replace: pattern \"String\" is not a string");
    st.pattern = pat.contains("String") ? pat["String"].get<std::string>() : "";
    st.content = str("content", "");
  } else if (type == "ByteFallback") {
    st.kind = DecodeStep::ByteFallback;
  } else if (type == "Fuse") {
    st.kind = DecodeStep::Fuse;
  } else if (type == "Strip") {
    st.kind = DecodeStep::Strip;
    st.content = str("content", " ");
    st.start = count("start");
    st.stop = count("stop");
    if (st.content.empty()) throw Error("decoder Strip: \"content\" is empty");
  } else if (type == "Metaspace") {
    st.kind = DecodeStep::Metaspace;
    st.content = str("replacement", "\xE2\x96\x81");
    st.prefix = d.contains("add_prefix_space") && d["add_prefix_space"].is_boolean() && d["add_prefix_space"].get<bool>();
    if (st.content.empty()) throw Error("decoder Metaspace: \"replacement\" is empty");
  } else {
    st.kind = DecodeStep::Unsupported;
    st.content = type;
  }
  steps->push_back(std::move(st));
}

std::vector<std::string> HfTokenizer::run_decoder(const DecodeStep& d, std::vector<std::string> toks) {
  switch (d.kind) {
    case DecodeStep::ByteLevel: {
      std::string bytes;
      for (const auto& t : toks) {
        std::string tb;
        bool all = true;
        for (size_t i = 0; i < t.size() && all;) {
          size_t l = utf8_seq_len(t, i);
          if (!l) l = 1;
          int b = unicode_to_byte(t.substr(i, l));
          if (b < 0) all = false;
          else tb += static_cast<char>(b);
          i += l;
        }
        bytes += all ? tb : t;
      }
      // Lossy: invalid sequences become U+FFFD, as from_utf8_lossy does.
      std::string out;
      for (size_t i = 0; i < bytes.size();) {
        size_t l = utf8_seq_len(bytes, i);
        if (l) {
          out.append(bytes, i, l);
          i += l;
        } else {
          out += "\xEF\xBF\xBD";
          ++i;
        }
      }
      return {out};
    }
    case DecodeStep::Replace: {
      if (d.pattern.empty()) return toks;
      for (auto& t : toks) {
        std::string r;
        size_t i = 0;
        for (size_t f = t.find(d.pattern); f != std::string::npos; f = t.find(d.pattern, i)) {
          r.append(t, i, f - i);
          r += d.content;
          i = f + d.pattern.size();
        }
        r.append(t, i, std::string::npos);
        t = r;
      }
      return toks;
    }
    case DecodeStep::ByteFallback: {
      std::vector<std::string> out;
      std::string pending;
      size_t npending = 0;
      auto flush = [&]() {
        if (!npending) return;
        if (utf8_valid(pending)) out.push_back(pending);
        else
          for (size_t k = 0; k < npending; ++k) out.push_back("\xEF\xBF\xBD");
        pending.clear();
        npending = 0;
      };
      for (const auto& t : toks) {
        unsigned v;
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::sscanf(t.c_str() + 3, "%2x", &v) == 1) {
          pending += static_cast<char>(v);
          ++npending;
        } else {
          flush();
          out.push_back(t);
        }
      }
      flush();
      return out;
    }
    case DecodeStep::Fuse: {
      std::string all;
      for (const auto& t : toks) all += t;
      return {all};
    }
    case DecodeStep::Strip: {
      const std::string& content = d.content;
      for (auto& t : toks) {
        size_t b = 0, e = t.size();
        for (size_t k = 0; k < d.start && t.compare(b, content.size(), content) == 0 && b < e; ++k) b += content.size();
        for (size_t k = 0; k < d.stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
          e -= content.size();
        t = t.substr(b, e - b);
      }
      return toks;
    }
    case DecodeStep::Metaspace: {
      const std::string& rep = d.content;
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string r;
        size_t k = 0;
        for (size_t f = toks[i].find(rep); f != std::string::npos; f = toks[i].find(rep, k)) {
          r.append(toks[i], k, f - k);
          r += ' ';
          k = f + rep.size();
        }
        r.append(toks[i], k, std::string::npos);
        if (i == 0 && d.prefix && !r.empty() && r[0] == ' ') r.erase(0, 1);
        toks[i] = r;
      }
      return toks;
    }
    case DecodeStep::Unsupported: throw Error("decoder type \"" + d.content + "\" is not supported");
  }
  return toks;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> toks;
  for (auto id : ids) {
    if (skip_special && is_special(id)) continue;
    toks.push_back(id_to_token(id));
  }
  std::string out;
  if (!has_decoder_) {
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
  } else {
    for (const auto& step : decoder_) toks = run_decoder(step, std::move(toks));
    for (const auto& t : toks) out += t;
  }
  if (cfg_.clean_up_tokenization_spaces) {
    static const std::pair<const char*, const char*> rules[] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","},
                                                                {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                                                {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& r : rules) {
      std::string from = r.first, to = r.second, res;
      size_t i = 0;
      for (size_t f = out.find(from); f != std::string::npos; f = out.find(from, i)) {
        res.append(out, i, f - i);
        res += to;
        i = f + from.size();
      }
      res.append(out, i, std::string::npos);
      out = res;
    }
  }
  return out;
}

}  // namespace hone
