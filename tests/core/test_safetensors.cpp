// safetensors: round trip of every supported dtype (zero-size and 0-rank included) and rejection
// of every malformed header the format forbids, each with a message naming file and problem.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "model/safetensors.h"
#include "test_support.h"

using namespace hone;

namespace {

// A file with the given raw header text and `buf` zero bytes of data.
std::string make_file(const std::string& dir, const std::string& name, const std::string& header, size_t buf,
                      int64_t declared = -1) {
  std::string s(8, '\0');
  uint64_t n = declared >= 0 ? static_cast<uint64_t>(declared) : header.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  s += header;
  s += std::string(buf, '\0');
  if (declared == -2) s = s.substr(0, 5);  // shorter than the length prefix itself
  std::string p = dir + "/" + name;
  write_file_atomic(p, s);
  return p;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripKeepsBytesShapesAndOrder) {
  std::string d = test::temp_dir("st-rt");
  std::vector<float> a = {1.5f, -2.f, 3.25f, 0.f, 1e-8f, 7.f};
  std::vector<uint16_t> b = {0x3f80, 0xc000, 0x7f80};  // bf16 1, -2, inf
  std::vector<int64_t> c = {-1, 1ll << 40};
  float scalar = 42.f;
  std::vector<StWriteEntry> e = {
      {"z.first", StDtype::F32, {2, 3}, a.data(), a.size() * 4},
      {"a.second", StDtype::BF16, {3}, b.data(), b.size() * 2},
      {"empty", StDtype::F16, {0, 4}, nullptr, 0},
      {"scalar", StDtype::F32, {}, &scalar, 4},
      {"ints", StDtype::I64, {2}, c.data(), 16},
  };
  write_safetensors(d + "/m.safetensors", e, {{"format", "pt"}, {"note", "quotes \" and \\ ok"}});
  std::string raw = read_file(d + "/m.safetensors");
  uint64_t hl = 0;
  std::memcpy(&hl, raw.data(), 8);
  EXPECT_EQ((8 + hl) % 8, 0u) << "header must be padded to a multiple of 8";

  SafetensorsFile f(d + "/m.safetensors");
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "quotes \" and \\ ok");
  EXPECT_EQ(f.tensors()[0].name, "z.first");  // written order is offset order
  const auto* t = f.find("z.first");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(f.data(*t), a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.data(*f.find("a.second")), b.data(), 6), 0);
  EXPECT_EQ(f.find("empty")->numel(), 0);
  EXPECT_TRUE(f.find("scalar")->shape.empty());
  EXPECT_EQ(f.find("scalar")->numel(), 1);
  EXPECT_EQ(std::memcmp(f.data(*f.find("ints")), c.data(), 16), 0);

  // Writing what was read gives the identical file.
  std::vector<StWriteEntry> again;
  for (const auto& ti : f.tensors())
    again.push_back({ti.name, ti.dtype, ti.shape, f.data(ti), static_cast<size_t>(ti.end - ti.begin)});
  write_safetensors(d + "/m2.safetensors", again, f.metadata());
  EXPECT_EQ(read_file(d + "/m2.safetensors"), raw);
}

TEST(Safetensors, RejectsMalformedFiles) {
  std::string d = test::temp_dir("st-bad");
  struct Case {
    const char* name;
    std::string header;
    size_t buf;
    int64_t declared;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"short", "", 0, -2, "shorter than"},
      {"huge_header", "{}", 0, 200000000, "exceeds the 100 MB limit"},
      {"truncated_header", "{\"a\":{}}", 0, 500, "truncated"},
      {"not_json", "{not json}   ", 0, -1, "not valid JSON"},
      {"not_object", "[1,2,3]", 0, -1, "not a JSON object"},
      {"dup", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, -1, "twice"},
      {"dtype", R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4, -1, "unknown dtype"},
      {"size", R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12, -1, "needs 16"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, -1, "overlap"},
      {"hole", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12, -1, "hole"},
      {"trailing", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8, -1, "data buffer is 8"},
      {"past_end", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, -1, "past the end"},
      {"negative", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, -1, "negative"},
      {"reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4, -1, "end before"},
      {"missing", R"({"a":{"dtype":"F32","shape":[1]}})", 4, -1, "data_offsets"},
      {"meta", R"({"__metadata__":{"x":1}})", 0, -1, "not a string"},
      // Zero-element tensors whose other dimensions overflow int64 (found writing the fuzz target).
      {"zero_huge", R"({"a":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", 0, -1, "overflows"},
      {"zero_product", R"({"a":{"dtype":"F32","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})", 0, -1, "overflows"},
      // 30,000 nested brackets overflowed the stack when the error message printed the shape (fuzz target).
      {"deep", R"({"a":{"dtype":"F32","shape":)" + std::string(600, '[') + std::string(600, ']') + R"(,"data_offsets":[0,0]}})", 0, -1,
       "nested more than 512 levels deep"},
  };
  for (const auto& c : cases) {
    std::string p = make_file(d, std::string(c.name) + ".safetensors", c.header, c.buf, c.declared);
    std::string err = error_of(p);
    EXPECT_NE(err.find(p), std::string::npos) << c.name << ": error must name the file: " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
  }
}

TEST(Safetensors, FailedWriteLeavesNoFileBehind) {
  std::string d = test::temp_dir("st-atomic");
  float x = 1.f;
  write_safetensors(d + "/keep.safetensors", {{"x", StDtype::F32, {1}, &x, 4}});
  std::string before = read_file(d + "/keep.safetensors");
  // Size that does not match the shape: refused before anything is written.
  EXPECT_THROW(write_safetensors(d + "/keep.safetensors", {{"x", StDtype::F32, {2}, &x, 4}}), Error);
  EXPECT_EQ(read_file(d + "/keep.safetensors"), before);
  EXPECT_THROW(write_safetensors(d + "/no/such/dir/m.safetensors", {{"x", StDtype::F32, {1}, &x, 4}}), Error);
  auto r = test::run("ls -A " + test::shell_quote(d));
  EXPECT_EQ(r.out, "keep.safetensors\n");
}
