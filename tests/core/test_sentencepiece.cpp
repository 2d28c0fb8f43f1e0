// tokenizer.model through the dlopen'ed SentencePiece shim, in a process that links libtorch
// (the combination that crashes when sentencepiece is linked directly, platform-notes §4).
// A model is trained here with spm_train; ids are compared with sentencepiece's own Python module.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "common/error.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/spm_tokenizer.h"

using namespace hone;
using nlohmann::json;

namespace {

// Trains BPE and unigram models once per process on a generated corpus.
std::string model_dir(const std::string& type) {
  static std::map<std::string, std::string> made;
  if (made.count(type)) return made[type];
  std::string d = test::temp_dir("spm-" + type);
  std::string corpus;
  const char* words[] = {"fine", "tuning", "adapts", "a", "model", "to", "your", "domain", "Hello", "world", "café", "naïve",
                         "日本語", "テキスト", "numbers", "123", "4567", "code", "def", "return", "x", "=", "(", ")", ":", "!"};
  uint32_t s = 12345;
  for (int line = 0; line < 3000; ++line) {
    for (int w = 0; w < 12; ++w) {
      s = s * 1664525u + 1013904223u;
      corpus += words[(s >> 8) % (sizeof(words) / sizeof(*words))];
      corpus += ' ';
    }
    corpus += '\n';
  }
  write_file_atomic(d + "/corpus.txt", corpus);
  std::string cmd = "spm_train --input=" + d + "/corpus.txt --model_prefix=" + d + "/tokenizer --vocab_size=400 --model_type=" +
                    type + " --byte_fallback=true --character_coverage=1.0 --hard_vocab_limit=false > " + d + "/train.log 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("spm_train failed: see " + d + "/train.log");
  return made[type] = d;
}

const std::vector<std::string> kTexts = {"Hello world", "fine tuning adapts a model to your domain", "café naïve 日本語",
                                         "unseen: zebra quokka ✓ 🤖", "  leading and   inner spaces ", "x = (1 + 2)!",
                                         "", "newline\nand\ttab"};

json reference(const std::string& dir) {
  std::string sf = dir + "/strings.json";
  write_file_atomic(sf, json(kTexts).dump());
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/spm_reference.py")) + " " +
                     test::shell_quote(dir + "/tokenizer.model") + " " + test::shell_quote(sf));
  if (r.code != 0) throw std::runtime_error("reference failed: " + r.err);
  return json::parse(r.out);
}

class Spm : public ::testing::TestWithParam<std::string> {};

// The sanitizer build (tests/sanitize) cannot load the shim: ASan aborts on the RTLD_DEEPBIND
// dlopen that keeps its protobuf-lite apart from libtorch's libprotobuf, and without DEEPBIND
// sentencepiece's parser runs on libtorch's protobuf and crashes (tried). The main build runs these.
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "ASan refuses the RTLD_DEEPBIND dlopen of the SentencePiece shim"
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

}  // namespace

TEST_P(Spm, MatchesSentencePiecePythonNextToTorch) {
  SKIP_UNDER_ASAN();
  // Touch libtorch first so both runtimes are live in this process.
  auto t = torch::ones({2, 2}).sum().item<float>();
  ASSERT_EQ(t, 4.f);
  std::string d = model_dir(GetParam());
  auto tok = load_tokenizer(d);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  json ref = reference(d);
  for (size_t i = 0; i < kTexts.size(); ++i) {
    auto enc = tok->encode(kTexts[i], false);
    EXPECT_EQ(enc.ids, ref["ids"][i].get<std::vector<int32_t>>()) << json(kTexts[i]).dump();
    EXPECT_EQ(tok->decode(enc.ids), ref["decoded"][i].get<std::string>()) << json(kTexts[i]).dump();
    for (size_t k = 0; k < enc.offsets.size(); ++k) EXPECT_LE(enc.offsets[k].second, kTexts[i].size());
  }
  // Default special tokens: BOS first (LlamaTokenizer's add_bos_token defaults to true).
  auto with = tok->encode("Hello world", true).ids;
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with[0], ref["bos"].get<int32_t>());
  EXPECT_EQ(tok->bos_id(), ref["bos"].get<int32_t>());
  EXPECT_EQ(tok->eos_id(), ref["eos"].get<int32_t>());
  // Special tokens in the text are not fed to SentencePiece as characters.
  auto chat = tok->encode("<s>[INST] Hello [/INST]ok</s>", false).ids;
  EXPECT_EQ(chat.front(), tok->bos_id());
  EXPECT_EQ(chat.back(), tok->eos_id());
}
INSTANTIATE_TEST_SUITE_P(Types, Spm, ::testing::Values("bpe", "unigram"));

TEST(SpmTokenizer, TokenizerJsonIsPreferredWhenBothExist) {
  std::string d = test::temp_dir("spm-both");
  write_file_atomic(d + "/tokenizer.model", read_file(model_dir("bpe") + "/tokenizer.model"));
  write_file_atomic(d + "/tokenizer.json", read_file(test::shared("tokenizers/mistral/tokenizer.json")));
  write_file_atomic(d + "/tokenizer_config.json", read_file(test::shared("tokenizers/mistral/tokenizer_config.json")));
  EXPECT_EQ(load_tokenizer(d)->kind(), "bpe-sentencepiece-style");
}

TEST(SpmTokenizer, CorruptModelIsAnError) {
  SKIP_UNDER_ASAN();
  std::string d = test::temp_dir("spm-bad");
  write_file_atomic(d + "/tokenizer.model", "this is not a protobuf");
  try {
    load_tokenizer(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
  }
}
