// GGUF byte layer and tokenizer metadata: f16 / bf16 / q8_0 encodings against hand-computed bits,
// writer -> reader round trips with every value type, damaged files refused with the file named,
// SentencePiece .model files read like SentencePiece itself reads them, and the tokenizer metadata
// written for the real Qwen3 and Mistral tokenizer files, and every Ollama TEMPLATE executed by an
// independent Go-template evaluator against Hone's own rendering.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "export/gguf.h"
#include "export/gguf_vocab.h"
#include "export/ollama.h"
#include "tokenizer/chat_template.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

using namespace hone;
using nlohmann::json;

namespace {

uint16_t bits16(const std::string& s, size_t i) {
  uint16_t v;
  std::memcpy(&v, s.data() + 2 * i, 2);
  return v;
}

// A small file with every metadata type and three tensors (f32, f16, q8_0).
std::string write_sample(const std::string& path) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  w.set("test.count", GgufValue::u32(7));
  w.set("test.neg", GgufValue::i32(-3));
  w.set("test.eps", GgufValue::f32(1e-5f));
  w.set("test.flag", GgufValue::boolean(true));
  w.set("test.words", GgufValue::str_array({"a", "bb", ""}));
  w.set("test.scores", GgufValue::f32_array({0.5f, -1.f}));
  w.set("test.types", GgufValue::i32_array({1, 3, 6}));
  std::vector<float> a(6), b(64), q(64);
  for (int i = 0; i < 6; ++i) a[i] = 0.25f * i;
  for (int i = 0; i < 64; ++i) b[i] = 0.01f * (i - 32), q[i] = static_cast<float>(i % 32) - 7.f;
  w.add_tensor("a", GgmlType::F32, {2, 3}, [a] { return ggml_encode(GgmlType::F32, a.data(), a.size()); });
  w.add_tensor("b", GgmlType::F16, {64}, [b] { return ggml_encode(GgmlType::F16, b.data(), b.size()); });
  w.add_tensor("q", GgmlType::Q8_0, {2, 32}, [q] { return ggml_encode(GgmlType::Q8_0, q.data(), q.size()); });
  w.write(path);
  return read_file(path);
}

// Expects GgufFile(path) to throw an Error naming the file and containing `what`.
void expect_refused(const std::string& path, const std::string& bytes, const std::string& what) {
  { std::ofstream(path, std::ios::binary) << bytes; }
  try {
    GgufFile f(path);
    ADD_FAILURE() << "accepted a damaged file (" << what << ")";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << "wanted \"" << what << "\" in: " << m;
  }
}

template <class T>
void poke(std::string& s, size_t at, T v) {
  std::memcpy(s.data() + at, &v, sizeof(T));
}

}  // namespace

TEST(Gguf, EncodingsMatchHandComputedBits) {
  const float xs[] = {1.f, -2.f, 65504.f, 0.1f, 1e-8f, 6.1035156e-05f};
  const std::string h = ggml_encode(GgmlType::F16, xs, 6);
  EXPECT_EQ(bits16(h, 0), 0x3c00);  // 1.0
  EXPECT_EQ(bits16(h, 1), 0xc000);  // -2.0
  EXPECT_EQ(bits16(h, 2), 0x7bff);  // largest finite f16
  EXPECT_EQ(bits16(h, 3), 0x2e66);  // 0.1 rounds to 0.0999755859375
  EXPECT_EQ(bits16(h, 4), 0x0000);  // below half the smallest subnormal
  EXPECT_EQ(bits16(h, 5), 0x0400);  // smallest normal, 2^-14
  const std::string bf = ggml_encode(GgmlType::BF16, xs, 4);
  EXPECT_EQ(bits16(bf, 0), 0x3f80);
  EXPECT_EQ(bits16(bf, 1), 0xc000);
  EXPECT_EQ(bits16(bf, 3), 0x3dcd);  // 0.1: 0x3dcccccd rounds up
  // q8_0 over 0..31: d = 31/127, stored as f16; q = round(x * 127/31).
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);
  const std::string q = ggml_encode(GgmlType::Q8_0, x.data(), 32);
  ASSERT_EQ(q.size(), 34u);
  EXPECT_EQ(bits16(q, 0), 0x33d0);  // 31/127 = 0.244094... -> f16 0x33d0 (0.244140625)
  EXPECT_EQ(static_cast<int8_t>(q[2 + 1]), 4);     // 1 * 4.0968 -> 4
  EXPECT_EQ(static_cast<int8_t>(q[2 + 16]), 66);   // 16 * 4.0968 = 65.55 -> 66
  EXPECT_EQ(static_cast<int8_t>(q[2 + 31]), 127);
  std::vector<float> back(32);
  ggml_decode(GgmlType::Q8_0, reinterpret_cast<const uint8_t*>(q.data()), 32, back.data());
  EXPECT_FLOAT_EQ(back[16], 66 * 0.244140625f);
  EXPECT_THROW(ggml_encode(GgmlType::Q8_0, x.data(), 31), Error);  // not whole blocks
}

TEST(Gguf, WriterAndReaderRoundTripEveryValueType) {
  const std::string dir = test::temp_dir("gguf-rt"), path = dir + "/s.gguf";
  const std::string bytes = write_sample(path);
  EXPECT_EQ(bytes.compare(0, 4, "GGUF"), 0);
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.key_order().front(), "general.architecture");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("test.count"), 7u);
  EXPECT_EQ(f.get("test.neg")->i, -3);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("test.eps")), 1e-5f);
  EXPECT_EQ(f.get("test.flag")->u, 1u);
  EXPECT_EQ(f.get("test.words")->strs, (std::vector<std::string>{"a", "bb", ""}));
  EXPECT_EQ(f.get("test.scores")->nums, (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(f.get("test.types")->nums, (std::vector<double>{1, 3, 6}));
  ASSERT_EQ(f.tensors().size(), 3u);
  const auto* a = f.find("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.read_floats(*a), (std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1.f, 1.25f}));
  for (const auto& t : f.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  // The data section starts aligned: its first tensor's bytes sit at a multiple of 32 in the file.
  EXPECT_EQ((f.data(*a) - reinterpret_cast<const uint8_t*>(read_file(path).data())) >= 0, true);
  const auto qv = f.read_floats(*f.find("q"));
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(qv[i], static_cast<float>(i % 32) - 7.f, 24.f / 127 / 2 + 1e-3) << i;
  const auto bv = f.read_floats(*f.find("b"));
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(bv[i], 0.01f * (i - 32), 2e-4) << i;
}

TEST(Gguf, DamagedFilesAreRefusedWithTheFileNamed) {
  const std::string dir = test::temp_dir("gguf-bad"), good = dir + "/good.gguf", bad = dir + "/bad.gguf";
  const std::string s = write_sample(good);
  expect_refused(bad, s.substr(0, 10), "too small");
  expect_refused(bad, s.substr(0, 60), "truncated");
  expect_refused(bad, s.substr(0, s.size() - 40), "outside the file");
  std::string m = s;
  m[0] = 'X';
  expect_refused(bad, m, "no \"GGUF\" magic");
  m = s;
  poke<uint32_t>(m, 4, 7);
  expect_refused(bad, m, "version 7");
  m = s;
  poke<uint64_t>(m, 8, 1ull << 40);
  expect_refused(bad, m, "tensors");
  // The first key's length (u64 right after the 24-byte header) claims more than the file.
  m = s;
  poke<uint64_t>(m, 24, 1ull << 60);
  expect_refused(bad, m, "truncated");
  // An array that claims 2^40 elements.
  m = s;
  const size_t words = m.find("test.words");
  poke<uint64_t>(m, words + 10 + 4 + 4, 1ull << 40);
  expect_refused(bad, m, "larger than the file");
  // Tensor infos: name "q" is the last; after it n_dims (4), dims (2 x 8), type (4), offset (8).
  const size_t qi = m.rfind(std::string("\x01\0\0\0\0\0\0\0q", 9)) + 9;
  m = s;
  poke<uint32_t>(m, qi + 4 + 16, 2);  // Q4_0: not a type Hone reads
  expect_refused(bad, m, "has type 2");
  m = s;
  poke<uint64_t>(m, qi + 4 + 16 + 4, 3);  // misaligned
  expect_refused(bad, m, "not aligned");
  m = s;
  poke<uint64_t>(m, qi + 4 + 16 + 4, 0);  // on top of tensor "a"
  expect_refused(bad, m, "overlap");
  m = s;
  poke<uint32_t>(m, qi, 0);
  expect_refused(bad, m, "0 dimensions");
  m = s;
  poke<uint64_t>(m, qi + 4, 33);  // q8_0 rows must be whole blocks
  expect_refused(bad, m, "not a multiple of 32");
  // A bool that is neither 0 nor 1.
  m = s;
  const size_t flag = m.find("test.flag");
  m[flag + 9 + 4] = 7;
  expect_refused(bad, m, "bool");
  GgufFile ok(good);  // the original is untouched and still reads
  EXPECT_EQ(ok.tensors().size(), 3u);
}

TEST(Gguf, SentencePieceModelsReadAsSentencePieceReadsThem) {
  const std::string dir = test::temp_dir("gguf-spm");
  // SentencePiece's own trainer and processor are the reference (Debian's python3-sentencepiece).
  const std::string script = dir + "/make.py";
  std::ofstream(script) << R"(import json, sys, sentencepiece as spm
d = sys.argv[1]
open(d + '/corpus.txt', 'w').write('\n'.join(['the quick brown fox jumps over the lazy dog %d times' % i for i in range(300)]))
spm.SentencePieceTrainer.train(input=d + '/corpus.txt', model_prefix=d + '/m', vocab_size=400, model_type='bpe',
                               byte_fallback=True, user_defined_symbols=['<tool>'], minloglevel=2)
p = spm.SentencePieceProcessor(model_file=d + '/m.model')
def t(i):
    return 2 if p.is_unknown(i) else 3 if p.is_control(i) else 6 if p.is_byte(i) else 5 if p.is_unused(i) else (4 if p.id_to_piece(i) == '<tool>' else 1)
print(json.dumps([[p.id_to_piece(i), p.get_score(i), t(i)] for i in range(p.get_piece_size())]))
)";
  auto r = test::run(std::string(HONE_PYTHON) + " " + script + " " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json want = json::parse(r.out);
  const SpmModelProto m = read_spm_model(dir + "/m.model");
  ASSERT_EQ(m.pieces.size(), want.size());
  EXPECT_EQ(m.model_type, 2);  // BPE
  EXPECT_TRUE(m.add_dummy_prefix);
  int bytes = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(m.pieces[i].piece, want[i][0].get<std::string>()) << i;
    EXPECT_FLOAT_EQ(m.pieces[i].score, want[i][1].get<float>()) << i;
    EXPECT_EQ(m.pieces[i].type, want[i][2].get<int>()) << i;
    bytes += m.pieces[i].type == 6;
  }
  EXPECT_EQ(bytes, 256);
  // A damaged model file is refused with its name.
  std::string raw = read_file(dir + "/m.model");
  std::ofstream(dir + "/cut.model", std::ios::binary) << raw.substr(0, raw.size() / 2);
  try {
    read_spm_model(dir + "/cut.model");
    ADD_FAILURE() << "accepted half a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.model"), std::string::npos) << e.what();
  }
}

// Found by fuzzing (tests/fuzz/regressions/tokenizer_json): fields of the wrong type in a
// tokenizer.json escaped the export's vocabulary reader as bare nlohmann exceptions.
TEST(Gguf, MalformedTokenizerJsonIsRefusedNamingTheFile) {
  const std::string d = test::temp_dir("gguf-vocab-bad");
  for (const char* text : {R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]}})", R"({"model": 5})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"content": "<s>"}]})", "[]"}) {
    write_file_atomic(d + "/tokenizer.json", text);
    GgufWriter w;
    try {
      add_gguf_vocab(w, d, 8);
      ADD_FAILURE() << text << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(d + "/tokenizer.json"), std::string::npos) << e.what();
    }
  }
  // The pre-tokenizer name is "" (none llama.cpp knows) for anything it cannot read.
  EXPECT_EQ(llama_cpp_pre_name(R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": 3}})"), "");
  EXPECT_EQ(llama_cpp_pre_name(R"({"pre_tokenizer": [1, 2]})"), "");
  EXPECT_EQ(llama_cpp_pre_name("not json"), "");
}

TEST(Gguf, TokenizerMetadataOfRealTokenizers) {
  // Qwen3: byte-level BPE, llama.cpp's "qwen2" pre-tokenizer, no BOS, <|im_end|> ends a turn.
  {
    const std::string dir = test::shared("tokenizers/qwen3");
    const json tj = json::parse(read_file(dir + "/tokenizer.json"));
    EXPECT_EQ(llama_cpp_pre_name(read_file(dir + "/tokenizer.json")), "qwen2");
    GgufWriter w;
    GgufVocabInfo v = add_gguf_vocab(w, dir, 151936);  // Qwen2.5/3's embedding rows
    EXPECT_EQ(v.model, "gpt2");
    EXPECT_EQ(v.pre, "qwen2");
    EXPECT_FALSE(v.add_bos);
    EXPECT_EQ(v.eos, 151645);  // <|im_end|>
    EXPECT_EQ(v.eot, 151645);
    ASSERT_EQ(v.notes.size(), 1u);  // the padding rows are reported
    EXPECT_NE(v.notes[0].find("[PADn]"), std::string::npos);
    const std::string path = test::temp_dir("gguf-qwen3") + "/v.gguf";
    w.write(path);
    GgufFile f(path);
    const auto& toks = f.get("tokenizer.ggml.tokens")->strs;
    ASSERT_EQ(toks.size(), 151936u);
    EXPECT_EQ(toks[0], "!");
    EXPECT_EQ(toks[151645], "<|im_end|>");
    EXPECT_EQ(toks[151935], "[PAD151935]");
    EXPECT_EQ(f.get("tokenizer.ggml.token_type")->nums[151645], 3);  // control
    EXPECT_EQ(f.get("tokenizer.ggml.token_type")->nums[151935], 5);  // unused
    EXPECT_EQ(f.get("tokenizer.ggml.merges")->strs.size(), tj["model"]["merges"].size());
    EXPECT_EQ(f.get_string("tokenizer.chat_template"), load_tokenizer_config(dir).chat_template);
  }
  // Mistral: SentencePiece-style BPE with byte fallback -> "llama" with scores that rank merges.
  {
    const std::string dir = test::shared("tokenizers/mistral");
    GgufWriter w;
    GgufVocabInfo v = add_gguf_vocab(w, dir, 32000);
    EXPECT_EQ(v.model, "llama");
    EXPECT_TRUE(v.add_bos);
    EXPECT_EQ(v.bos, 1);
    const std::string path = test::temp_dir("gguf-mistral") + "/v.gguf";
    w.write(path);
    GgufFile f(path);
    const auto& toks = f.get("tokenizer.ggml.tokens")->strs;
    const auto& types = f.get("tokenizer.ggml.token_type")->nums;
    const auto& scores = f.get("tokenizer.ggml.scores")->nums;
    EXPECT_EQ(toks[0], "<unk>");
    EXPECT_EQ(types[0], 2);
    EXPECT_EQ(types[1], 3);                    // <s>
    EXPECT_EQ(toks[3 + 0x41], "<0x41>");       // byte pieces follow the three specials
    EXPECT_EQ(types[3 + 0x41], 6);
    EXPECT_EQ(f.get("tokenizer.ggml.add_space_prefix")->u, 1u);
    EXPECT_EQ(f.get("tokenizer.ggml.add_bos_token")->u, 1u);
    // The score of a piece is minus the rank of the merge that makes it: earlier merges win.
    const json tj = json::parse(read_file(dir + "/tokenizer.json"));
    const auto& merges = tj["model"]["merges"];
    auto joined = [&](size_t rank) {
      std::string m = merges[rank].get<std::string>();
      return m.erase(m.find(' '), 1);
    };
    for (size_t rank : {0, 1000, 5000, 20000}) {
      size_t first = 0;  // a piece can be made by several merges: the first one counts
      while (joined(first) != joined(rank)) ++first;
      EXPECT_DOUBLE_EQ(scores[tj["model"]["vocab"][joined(rank)].get<int64_t>()], -static_cast<double>(first)) << rank;
    }
  }
}

TEST(Ollama, TemplatesRenderConversationsExactlyAsHoneDoes) {
  // Every chat format's Modelfile TEMPLATE, executed by an independent evaluator of Go's
  // text/template (tests/reference/go_template.py), against Hone's renderer with the generation
  // prompt: equal text, and with add_bos the same text minus the BOS llama.cpp adds itself.
  const std::vector<std::vector<ChatMessage>> convs = {
      {{"user", "Hi there"}},
      {{"system", "Be brief."}, {"user", "Name a colour."}},
      {{"user", "2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}},
      {{"system", "You are a poet."}, {"user", "A line on rain."}, {"assistant", "Soft rain on tin."}, {"user", "Another."}},
  };
  const std::string bos = "<s>", eos = "</s>";
  json cases = json::array();
  std::vector<std::string> want;
  for (const auto& name : chat_format_names()) {
    ChatFormat f;
    ASSERT_TRUE(chat_format_from_name(name, &f));
    for (const auto& conv : convs) {
      json msgs = json::array();
      for (const auto& m : conv) msgs.push_back({{"role", m.role}, {"content", m.content}});
      const std::string text = render_chat(f, conv, true, f == ChatFormat::Gemma ? "<bos>" : bos, eos).text;
      for (bool add_bos : {false, true}) {
        cases.push_back({{"template", ollama_template(f, f == ChatFormat::Gemma ? "<bos>" : bos, eos, add_bos)}, {"messages", msgs}});
        std::string w = text;
        for (const std::string lead : {std::string("<|begin_of_text|>"), std::string("<bos>"), bos})
          if (add_bos && w.compare(0, lead.size(), lead) == 0) {
            w = w.substr(lead.size());
            break;
          }
        want.push_back(name + "|" + std::to_string(add_bos) + "|" + w);
      }
    }
  }
  const std::string dir = test::temp_dir("ollama-templates"), path = dir + "/cases.json";
  std::ofstream(path) << cases.dump();
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::source("tests/reference/go_template.py") + " --batch " + path);
  ASSERT_EQ(r.code, 0) << r.err;
  const json got = json::parse(r.out);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string& w = want[i];
    const size_t bar = w.find('|', w.find('|') + 1);
    EXPECT_EQ(got[i].get<std::string>(), w.substr(bar + 1)) << w.substr(0, bar) << " conversation " << (i / 2) % convs.size();
  }
  // Stops: every end-of-turn token of the format, then EOS.
  EXPECT_EQ(ollama_stops(ChatFormat::Llama3, "<|end_of_text|>"), (std::vector<std::string>{"<|eot_id|>", "<|end_of_text|>"}));
  EXPECT_EQ(ollama_stops(ChatFormat::Gemma, "<eos>"), (std::vector<std::string>{"<end_of_turn>", "<eos>"}));
}
