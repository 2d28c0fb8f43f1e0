// tokenizer.json BPE against transformers.js: the shared reference cases (Qwen3, Gemma 3,
// Mistral) and 238 more strings on nine variants (tests/data/tokenizers/extra_cases.json), plus
// offsets, decode and error handling.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>
#include <memory>

#include "common/error.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

using namespace hone;
using nlohmann::json;

namespace {

// Builds (once per process) the tokenizer folder of a variant from variants.json.
std::string variant_dir(const std::string& name) {
  static std::map<std::string, std::string> made;
  if (made.count(name)) return made[name];
  json variants = test::load_json(test::source("tests/data/tokenizers/variants.json"));
  const json& spec = variants.at(name);
  const std::string base = test::shared("tokenizers/" + spec.at("base").get<std::string>());
  if (spec.at("patch").empty() && !spec.contains("model_patch") && !spec.contains("config_patch")) return made[name] = base;
  json tj = test::load_json(base + "/tokenizer.json");
  for (auto it = spec["patch"].begin(); it != spec["patch"].end(); ++it) tj[it.key()] = it.value();
  if (spec.contains("model_patch"))
    for (auto it = spec["model_patch"].begin(); it != spec["model_patch"].end(); ++it) tj["model"][it.key()] = it.value();
  std::string d = test::temp_dir("tok-" + name);
  write_file_atomic(d + "/tokenizer.json", tj.dump());
  json cfg = test::load_json(base + "/tokenizer_config.json");
  if (spec.contains("config_patch"))
    for (auto it = spec["config_patch"].begin(); it != spec["config_patch"].end(); ++it) cfg[it.key()] = it.value();
  write_file_atomic(d + "/tokenizer_config.json", cfg.dump());
  return made[name] = d;
}

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = load_tokenizer(variant_dir(name));
  return *t;
}

std::vector<int32_t> ids_of(const json& a) { return a.get<std::vector<int32_t>>(); }

void check_cases(const std::string& name, const json& cases) {
  const Tokenizer& tok = tokenizer(name);
  int bad = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    auto plain = tok.encode(text, false).ids;
    auto special = tok.encode(text, true).ids;
    bool ok = plain == ids_of(c.at("ids")) && special == ids_of(c.at("ids_with_special"));
    if (ok && c.contains("decoded")) ok = tok.decode(plain) == c.at("decoded").get<std::string>();
    if (!ok && ++bad <= 5) {
      ADD_FAILURE() << name << ": mismatch on " << json(text).dump() << "\n expected " << c.at("ids").dump() << "\n got      "
                    << json(plain).dump() << "\n decoded  " << json(tok.decode(plain)).dump();
    }
  }
  EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << cases.size() << " cases differ";
}

class SharedCases : public ::testing::TestWithParam<std::string> {};
class ExtraCases : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(SharedCases, MatchTransformersJs) {
  json cases = test::load_json(test::shared("tokenizers/" + GetParam() + "/cases.json"));
  check_cases(GetParam(), cases.at("cases"));
}
INSTANTIATE_TEST_SUITE_P(Tokenizers, SharedCases, ::testing::Values("qwen3", "gemma3", "mistral"));

TEST_P(ExtraCases, MatchTransformersJs) {
  static json all = test::load_json(test::source("tests/data/tokenizers/extra_cases.json"));
  check_cases(GetParam(), all.at("cases").at(GetParam()));
}
INSTANTIATE_TEST_SUITE_P(Variants, ExtraCases,
                         ::testing::Values("qwen3", "gemma3", "mistral", "qwen3_gpt2_bytelevel",
                                           "qwen3_llama3_ignore_merges", "mistral_metaspace_first",
                                           "mistral_llama_nonlegacy", "mistral_metaspace_legacy",
                                           "mistral_metaspace_prefix_always"));

TEST(Tokenizer, OffsetsPointIntoTheText) {
  const Tokenizer& tok = tokenizer("qwen3");
  const std::string text = "Hello, wörld!\n  def f(x): return 42 🤖";
  auto enc = tok.encode(text, false);
  ASSERT_EQ(enc.ids.size(), enc.offsets.size());
  uint32_t prev_b = 0, covered = 0;
  std::string joined;
  for (size_t i = 0; i < enc.ids.size(); ++i) {
    auto [b, e] = enc.offsets[i];
    EXPECT_LE(prev_b, b);
    EXPECT_LT(b, e);
    EXPECT_LE(e, text.size());
    // Tokens that split one character (the emoji's bytes) share that character's range, as in HF.
    if (e > covered) joined += text.substr(std::max(b, covered), e - std::max(b, covered));
    covered = std::max(covered, e);
    prev_b = b;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(enc.offsets.back(), std::make_pair(static_cast<uint32_t>(text.size() - 4), static_cast<uint32_t>(text.size())));
}

TEST(Tokenizer, SentencePieceStyleOffsetsIncludeTheSpaceMarker) {
  const Tokenizer& tok = tokenizer("mistral");
  const std::string text = "Hello world";
  auto enc = tok.encode(text, true);
  ASSERT_EQ(enc.ids.size(), 3u);  // <s> ▁Hello ▁world
  EXPECT_EQ(enc.offsets[0], std::make_pair(0u, 0u));
  EXPECT_EQ(enc.offsets[1], std::make_pair(0u, 5u));
  EXPECT_EQ(enc.offsets[2], std::make_pair(5u, 11u));
}

TEST(Tokenizer, SpecialTokensAreRecognisedAndDecoded) {
  const Tokenizer& tok = tokenizer("qwen3");
  auto ids = tok.encode("<|im_start|>user\nhi<|im_end|>", false).ids;
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), tok.token_to_id("<|im_start|>"));
  EXPECT_EQ(ids.back(), tok.token_to_id("<|im_end|>"));
  EXPECT_TRUE(tok.is_special(ids.front()));
  EXPECT_EQ(tok.decode(ids, true), "user\nhi");
  EXPECT_EQ(tok.eos_id(), 151645);
  EXPECT_EQ(tok.kind(), "bpe-byte-level");
  EXPECT_EQ(tokenizer("gemma3").kind(), "bpe-sentencepiece-style");
  EXPECT_EQ(tokenizer("gemma3").bos_id(), 2);
}

TEST(Tokenizer, InvalidUtf8IsRejectedWithItsOffset) {
  const Tokenizer& tok = tokenizer("qwen3");
  try {
    tok.encode(std::string("ok \xC3\x28 no"), false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("offset 3"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, BadFilesGiveErrorsNamingTheFile) {
  std::string d = test::temp_dir("tok-bad");
  EXPECT_THROW(load_tokenizer(d), Error);  // neither file
  write_file_atomic(d + "/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
  try {
    load_tokenizer(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d + "/tokenizer.json"), std::string::npos) << e.what();
  }
  write_file_atomic(d + "/tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  try {
    load_tokenizer(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Unigram"), std::string::npos) << e.what();
  }
}

// Found by fuzzing (tests/fuzz/regressions/tokenizer_json): the decoder was read at decode time,
// so a malformed one threw nlohmann's exceptions there (or looped for ever on an empty Metaspace
// replacement); now it is checked when the file is loaded.
TEST(Tokenizer, MalformedDecodersAreRefusedOnLoad) {
  const json base = test::load_json(test::shared("tokenizers/mistral/tokenizer.json"));
  const std::string d = test::temp_dir("tok-decoder");
  auto with_decoder = [&](const json& dec) {
    json tj = base;
    tj["decoder"] = dec;
    write_file_atomic(d + "/tokenizer.json", tj.dump());
    return load_tokenizer(d);
  };
  for (const json& bad : {json{{"type", "Replace"}, {"content", " "}}, json{{"type", "Metaspace"}, {"replacement", ""}},
                          json{{"type", "Strip"}, {"content", " "}, {"start", -1}}, json{{"type", "Sequence"}, {"decoders", 3}},
                          json{{"type", 7}}, json::array()}) {
    try {
      with_decoder(bad);
      ADD_FAILURE() << bad.dump() << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(d + "/tokenizer.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("decoder"), std::string::npos) << e.what();
    }
  }
  // A decoder Hone does not run still encodes; decoding says which one.
  auto tok = with_decoder(json{{"type", "Sequence"}, {"decoders", {{{"type", "CTC"}}}}});
  const auto ids = tok->encode("Hello", false).ids;
  EXPECT_FALSE(ids.empty());
  try {
    tok->decode(ids);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CTC"), std::string::npos) << e.what();
  }
  // The file's own decoder chain decodes as before.
  EXPECT_EQ(with_decoder(base["decoder"])->decode(ids), "Hello");
}

// Also from fuzzing: ids index a table as long as the highest one, so an id far beyond the
// vocabulary (or 2^31, which overflowed) is refused before anything is allocated; keys that
// are missing or of the wrong type are errors naming the file, in tokenizer_config.json too.
TEST(Tokenizer, IdsAndStructureAreCheckedBeforeUse) {
  const json base = test::load_json(test::shared("tokenizers/mistral/tokenizer.json"));
  const std::string d = test::temp_dir("tok-ids");
  auto load_with = [&](const std::function<void(json&)>& edit) {
    json tj = base;
    edit(tj);
    write_file_atomic(d + "/tokenizer.json", tj.dump());
    return load_tokenizer(d);
  };
  const std::vector<std::pair<std::string, std::function<void(json&)>>> bad = {
      {"far beyond", [](json& j) { j["added_tokens"].push_back({{"id", 2147483647}, {"content", "<big>"}}); }},
      {"not a token id", [](json& j) { j["added_tokens"].push_back({{"id", 1e300}, {"content", "<f>"}}); }},
      {"vocab ids reach", [](json& j) { j["model"]["vocab"]["far"] = 9999999; }},
      {"not a token id", [](json& j) { j["post_processor"]["special_tokens"]["<s>"]["ids"] = {1.5}; }},
      {"unexpected structure", [](json& j) { j["pre_tokenizer"] = {{"type", "Split"}}; }},
      {"unexpected structure", [](json& j) { j["normalizer"] = {{"type", "Sequence"}}; }},
      {"unexpected structure", [](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }},
      {"nested more than 512", [](json& j) {  // copying a decoder nested 30,000 deep overflowed the stack
         json deep = json::array();
         for (int i = 0; i < 600; ++i) deep = json::array({deep});
         j["decoder"] = deep;
       }},
  };
  for (const auto& [why, edit] : bad) {
    try {
      load_with(edit);
      ADD_FAILURE() << why << ": loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(d + "/tokenizer.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  write_file_atomic(d + "/tokenizer.json", base.dump());
  for (const char* cfg : {R"({"clean_up_tokenization_spaces": "yes"})", R"({"added_tokens_decoder": {"5": "x"}})",
                          R"({"chat_template": [{"name": "default", "template": 7}]})"}) {
    write_file_atomic(d + "/tokenizer_config.json", cfg);
    try {
      load_tokenizer(d);
      ADD_FAILURE() << cfg << ": loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(d + "/tokenizer_config.json"), std::string::npos) << e.what();
    }
  }
}

TEST(Tokenizer, ConcurrentEncodingGivesTheSameIds) {
  const Tokenizer& tok = tokenizer("qwen3");
  const std::string text = "Concurrency check: the quick brown fox jumps over 13 lazy dogs. ";
  auto want = tok.encode(text, false).ids;
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 50; ++i)
        if (tok.encode(text, false).ids != want) ++bad;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}
