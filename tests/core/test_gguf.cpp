// GGUF byte layer and tokenizer metadata: f16 / bf16 / q8_0 encodings against hand-computed bits,
// the K-quant and 5-bit blocks against hand-built blocks, their error search against the plain
// min/max rule, llama-quantize's mixture rules, Hone's reader against the independent dequantizer,
// writer -> reader round trips with every value type, damaged files refused with the file named,
// SentencePiece .model files read like SentencePiece itself reads them, and the tokenizer metadata
// written for the real Qwen3 and Mistral tokenizer files, and every Ollama TEMPLATE executed by an
// independent Go-template evaluator against Hone's own rendering.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "export/gguf.h"
#include "export/ggml_quants.h"
#include "export/gguf_mix.h"
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

// --- quantized block types --------------------------------------------------------------------

namespace {

// Gaussian-ish values with a few outliers, the shape of trained weight rows.
std::vector<float> weight_like(size_t n, uint32_t seed) {
  std::vector<float> x(n);
  uint32_t s = seed;
  auto uni = [&] {
    s = s * 1664525u + 1013904223u;
    return (static_cast<float>(s >> 8) + 0.5f) / 16777216.f;
  };
  for (size_t i = 0; i < n; ++i) {
    const float g = std::sqrt(-2 * std::log(uni())) * std::cos(6.2831853f * uni());
    x[i] = 0.02f * g * (i % 97 == 5 ? 6.f : 1.f);
  }
  return x;
}

std::vector<float> round_trip(GgmlType t, const std::vector<float>& x, const float* w = nullptr, uint64_t row = 0) {
  const std::string q = ggml_encode(t, x.data(), x.size(), w, row);
  EXPECT_EQ(q.size(), ggml_nbytes(t, x.size(), 1));
  std::vector<float> y(x.size());
  ggml_decode(t, reinterpret_cast<const uint8_t*>(q.data()), x.size(), y.data());
  return y;
}

double weighted_sq_error(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& w, size_t row) {
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += w[i % row] * (x[i] - y[i]) * (x[i] - y[i]);
  return e;
}

// The plain rule the error search must beat: per block of `n`, scale = (max - min) / levels, offset
// min (asymmetric) or scale = amax / half-levels (symmetric), no search, no sub-block scale coding
// (an upper bound on what the type can do with plain min/max, its scales kept in fp32).
double plain_rule_rmse(const std::vector<float>& x, int n, int levels, bool asymmetric) {
  double e = 0;
  for (size_t b = 0; b < x.size(); b += n) {
    float lo = x[b], hi = x[b], amax = 0;
    for (int i = 0; i < n; ++i) lo = std::min(lo, x[b + i]), hi = std::max(hi, x[b + i]), amax = std::max(amax, std::fabs(x[b + i]));
    for (int i = 0; i < n; ++i) {
      float y;
      if (asymmetric) {
        const float s = (hi - lo) / (levels - 1);
        y = lo + s * std::round((x[b + i] - lo) / s);
      } else {
        const float s = amax / (levels / 2 - 1);
        y = s * std::round(x[b + i] / s);
      }
      e += (x[b + i] - y) * (x[b + i] - y);
    }
  }
  return std::sqrt(e / x.size());
}

double rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += (x[i] - y[i]) * (x[i] - y[i]);
  return std::sqrt(e / x.size());
}

}  // namespace

TEST(GgufQuant, BlockSizesAreGgmls) {
  // Bytes per block from ggml's structs: Q5_0 = f16 + u32 + 16, Q5_1 adds an f16, Q4_K = 2 f16 +
  // 12 + 128, Q5_K adds 32, Q6_K = 128 + 64 + 16 + f16.
  EXPECT_EQ(ggml_nbytes(GgmlType::Q5_0, 64, 3), 3u * 2 * 22);
  EXPECT_EQ(ggml_nbytes(GgmlType::Q5_1, 32, 1), 24u);
  EXPECT_EQ(ggml_nbytes(GgmlType::Q4_K, 512, 2), 2u * 2 * 144);
  EXPECT_EQ(ggml_nbytes(GgmlType::Q5_K, 256, 1), 176u);
  EXPECT_EQ(ggml_nbytes(GgmlType::Q6_K, 256, 1), 210u);
  EXPECT_THROW(ggml_nbytes(GgmlType::Q4_K, 896, 1), Error);  // Qwen2.5-0.5B's rows are 3.5 super-blocks
  GgmlType t;
  ASSERT_TRUE(ggml_type_from_id(14, &t));
  EXPECT_EQ(t, GgmlType::Q6_K);
  EXPECT_FALSE(ggml_type_from_id(2, &t));  // Q4_0: not one Hone reads
}

TEST(GgufQuant, HandBuiltBlocksDecodeAsGgmlDefinesThem) {
  // Q4_K: d = 0.5, dmin = 0.25; sub-block 5 (j >= 4: low 4 bits in byte 9, high 2 bits in the top
  // of bytes 1 and 5) with scale 37 = 0b100101 and min 50 = 0b110010; its value 7 (high nibble of
  // qs[64 + 3], as sub-block 5 is the odd half of the third 64-chunk) decodes to 0.5*37*7 - 0.25*50.
  std::string b(144, '\0');
  auto put16 = [&](size_t at, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(&b[at], &h, 2);
  };
  put16(0, 0.5f);
  put16(2, 0.25f);
  b[4 + 9] = static_cast<char>((37 & 0xF) | ((50 & 0xF) << 4));
  b[4 + 1] = static_cast<char>((37 >> 4) << 6);
  b[4 + 5] = static_cast<char>((50 >> 4) << 6);
  b[16 + 64 + 3] = static_cast<char>(7 << 4);
  std::vector<float> y(256);
  ggml_decode(GgmlType::Q4_K, reinterpret_cast<const uint8_t*>(b.data()), 256, y.data());
  EXPECT_FLOAT_EQ(y[5 * 32 + 3], 0.5f * 37 * 7 - 0.25f * 50);
  EXPECT_FLOAT_EQ(y[4 * 32 + 3], 0.f);  // sub-block 4: scale and min 0
  // Q6_K: d = 2, scale of the values 144..159 (index 9) = -3; value 150 is in the second half
  // (h = 1), the 22nd of its quarter l in [0, 32) of part 0: low 4 bits in ql[64 + 22], high 2
  // bits in qh[32 + 22] bits 0-1. q = 45 -> 2 * -3 * (45 - 32) = -78.
  std::string c(210, '\0');
  const uint16_t d2 = fp32_to_fp16(2.f);
  std::memcpy(&c[208], &d2, 2);
  c[192 + 9] = static_cast<char>(-3);
  c[64 + 22] = static_cast<char>(45 & 0xF);
  c[128 + 32 + 22] = static_cast<char>(45 >> 4);
  ggml_decode(GgmlType::Q6_K, reinterpret_cast<const uint8_t*>(c.data()), 256, y.data());
  EXPECT_FLOAT_EQ(y[150], -78.f);
  EXPECT_FLOAT_EQ(y[149], 192.f);  // same scale, stored q 0: 2 * -3 * (0 - 32)
  EXPECT_FLOAT_EQ(y[160], 0.f);    // scale 10 is 0
}

TEST(GgufQuant, ErrorSearchBeatsThePlainMinMaxRule) {
  // 64 rows of 512 weight-like values. Each type's RMSE after the search (its sub-block scales
  // coded in 6 or 8 bits, all in fp16) must beat the plain rule with exact fp32 scales on the same
  // block size and levels; and the K-quants order by their bits.
  const auto x = weight_like(64 * 512, 7);
  struct Case {
    GgmlType t;
    int block, levels;
    bool asym;
  };
  std::map<GgmlType, double> err;
  for (const Case c : {Case{GgmlType::Q4_K, 32, 16, true}, Case{GgmlType::Q5_K, 32, 32, true}, Case{GgmlType::Q6_K, 16, 64, false},
                       Case{GgmlType::Q5_0, 32, 32, false}, Case{GgmlType::Q5_1, 32, 32, true}}) {
    SCOPED_TRACE(ggml_type_name(c.t));
    err[c.t] = rmse(x, round_trip(c.t, x));
    const double plain = plain_rule_rmse(x, c.block, c.levels, c.asym);
    EXPECT_LT(err[c.t], plain);
    std::printf("%s: rmse %.3g, plain min/max rule %.3g (%.0f%%)\n", ggml_type_name(c.t), err[c.t], plain, 100 * err[c.t] / plain);
  }
  EXPECT_LT(err[GgmlType::Q6_K], err[GgmlType::Q5_K]);
  EXPECT_LT(err[GgmlType::Q5_K], err[GgmlType::Q4_K]);
  // Constant and all-zero rows decode exactly (no division by a zero range).
  std::vector<float> z(256, 0.f), k(256, -0.75f);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::Q5_1}) {
    EXPECT_EQ(round_trip(t, z), z) << ggml_type_name(t);
    EXPECT_NEAR(round_trip(t, k)[17], -0.75f, 1e-3) << ggml_type_name(t);
  }
}

TEST(GgufQuant, ColumnWeightsMoveTheErrorToColumnsThatMatterLess) {
  // Rows of 512 where every fifth column carries 100x the weight (what calibration measures for
  // the columns the model's activations use), so weights differ inside every block: the weighted
  // error with the weights given must be below the weighted error of the unweighted encoding.
  const size_t row = 512;
  const auto x = weight_like(32 * row, 11);
  std::vector<float> w(row, 1.f);
  for (size_t i = 0; i < row; i += 5) w[i] = 100.f;
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::Q5_1}) {
    const double plain = weighted_sq_error(x, round_trip(t, x), w, row);
    const double weighted = weighted_sq_error(x, round_trip(t, x, w.data(), row), w, row);
    EXPECT_LT(weighted, plain) << ggml_type_name(t);
    std::printf("%s: weighted error %.3g with the weights, %.3g without (%.0f%%)\n", ggml_type_name(t), weighted, plain,
                100 * weighted / plain);
  }
  EXPECT_THROW(ggml_encode(GgmlType::Q4_K, x.data(), 512, w.data(), 500), Error);  // rows of partial blocks
}

TEST(GgufQuant, MixtureRulesAreLlamaQuantizes) {
  // q4_k_m on a 24-layer model: attn_v / ffn_down of layers 0-2, 21-23 and every third between
  // (5, 8, ...) get Q6_K; the head Q6_K; everything else Q4_K; rows of 896 (not whole 256-blocks)
  // fall back to Q5_0 (Q4_K) or Q8_0 (Q6_K); rows of 100 (not whole 32-blocks) to F16.
  GgufScheme q4, q5, q6, q8;
  ASSERT_TRUE(gguf_scheme_from_name("q4_k_m", &q4));
  ASSERT_TRUE(gguf_scheme_from_name("q5_k_m", &q5));
  ASSERT_TRUE(gguf_scheme_from_name("q6_k", &q6));
  ASSERT_TRUE(gguf_scheme_from_name("q8_0", &q8));
  EXPECT_EQ(q4.file_type, 15u);
  EXPECT_EQ(q5.file_type, 17u);
  EXPECT_EQ(q6.file_type, 18u);
  auto ty = [](const GgufScheme& s, const std::string& n, std::vector<int64_t> shape, bool has_output = true) {
    return std::string(ggml_type_name(gguf_tensor_type(s, n, shape, 24, has_output)));
  };
  std::vector<std::string> more;
  for (int l = 0; l < 24; ++l)
    if (ty(q4, "blk." + std::to_string(l) + ".attn_v.weight", {256, 1024}) == "q6_k") more.push_back(std::to_string(l));
  EXPECT_EQ(more, (std::vector<std::string>{"0", "1", "2", "5", "8", "11", "14", "17", "20", "21", "22", "23"}));
  EXPECT_EQ(ty(q4, "blk.4.ffn_down.weight", {1024, 4096}), "q4_k");
  EXPECT_EQ(ty(q4, "blk.5.ffn_down.weight", {1024, 4096}), "q6_k");
  EXPECT_EQ(ty(q5, "blk.5.ffn_down.weight", {1024, 4096}), "q6_k");
  EXPECT_EQ(ty(q5, "blk.4.attn_q.weight", {1024, 1024}), "q5_k");
  EXPECT_EQ(ty(q4, "blk.4.attn_q.weight", {896, 896}), "q5_0");
  EXPECT_EQ(ty(q5, "blk.4.attn_q.weight", {896, 896}), "q5_1");
  EXPECT_EQ(ty(q4, "blk.0.attn_v.weight", {128, 896}), "q8_0");  // Q6_K's fallback
  EXPECT_EQ(ty(q4, "blk.0.attn_q.weight", {100, 100}), "f16");
  EXPECT_EQ(ty(q4, "blk.3.attn_qkv.weight", {3072, 1024}), "q5_k");  // Phi-3's fused projection
  EXPECT_EQ(ty(q4, "output.weight", {32000, 1024}), "q6_k");
  EXPECT_EQ(ty(q4, "token_embd.weight", {32000, 1024}), "q4_k");
  EXPECT_EQ(ty(q4, "token_embd.weight", {151936, 896}, false), "q8_0");  // tied: the head's rule
  EXPECT_EQ(ty(q6, "token_embd.weight", {32000, 1024}), "q6_k");
  EXPECT_EQ(ty(q6, "blk.0.ffn_up.weight", {4864, 896}), "q8_0");
  EXPECT_EQ(ty(q4, "blk.0.attn_norm.weight", {1024}), "f32");
  EXPECT_EQ(ty(q8, "blk.0.attn_q.weight", {100, 100}), "f16");
  EXPECT_EQ(ty(q8, "blk.0.attn_q.weight", {64, 64}), "q8_0");
}

TEST(GgufQuant, HonesReaderAgreesWithTheIndependentDequantizer) {
  // Every quantized type written by Hone's encoder into a GGUF file, read back by Hone's reader and
  // by tests/reference/gguf_read.py (written from ggml's block structs): the same floats.
  const std::string dir = test::temp_dir("gguf-kq");
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llama"));
  std::map<std::string, std::vector<float>> values;
  uint32_t seed = 1;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::string name = std::string("t.") + ggml_type_name(t);
    values[name] = weight_like(3 * 512, seed++);
    const auto* v = &values[name];
    w.add_tensor(name, t, {3, 512}, [t, v] { return ggml_encode(t, v->data(), v->size()); });
  }
  w.write(dir + "/q.gguf");
  std::filesystem::create_directories(dir + "/dump");
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::source("tests/reference/gguf_read.py") + " " + dir +
                     "/q.gguf --dump " + dir + "/dump");
  ASSERT_EQ(r.code, 0) << r.err;
  GgufFile f(dir + "/q.gguf");
  ASSERT_EQ(f.tensors().size(), 6u);
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    const auto mine = f.read_floats(t);
    const std::string raw = read_file(dir + "/dump/" + t.name + ".f32");
    ASSERT_EQ(raw.size(), mine.size() * 4);
    std::vector<float> theirs(mine.size());
    std::memcpy(theirs.data(), raw.data(), raw.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < mine.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(mine[i] - theirs[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(theirs[i])));
    }
    EXPECT_LE(worst, 1e-6 * scale);
    // And both decode what was encoded, to the type's precision (not a shared misreading).
    EXPECT_LT(rmse(values[t.name], theirs), 0.15 * 0.02 * 1.1);  // values' RMS is about 0.02 x 1.1
  }
}
