// GGUF files (llama.cpp's format, hf-compat.md §8) at the byte level: a streaming atomic writer, a
// validating memory-mapped reader, and the tensor encodings (F32, F16, BF16 and the quantized
// blocks of ggml_quants.h). No torch: the model side (names, Q/K order, tokenizer metadata, which
// tensor gets which type) is in gguf_model.h and gguf_mix.h.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/files.h"

namespace hone {

// Metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
};
// Tensor element types Hone writes and reads, numbered as ggml numbers them.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30
};

const char* ggml_type_name(GgmlType t);                          // "f32", "q4_k", ...
bool ggml_type_from_name(const std::string& s, GgmlType* out);  // the inverse
bool ggml_type_from_id(uint32_t id, GgmlType* out);              // false for types Hone does not read
uint64_t ggml_block_elems(GgmlType t);                           // 1, 32 or 256
uint64_t ggml_block_bytes(GgmlType t);
// Bytes of a tensor of `row_elems` elements per row times rows; rows must be whole blocks.
uint64_t ggml_nbytes(GgmlType t, uint64_t row_elems, uint64_t rows);

// One metadata value: a scalar (type != ARRAY) or an array of scalars (elem says which).
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem = GgufType::U32;  // arrays only
  uint64_t u = 0;                 // unsigned and bool
  int64_t i = 0;                  // signed
  double f = 0;                   // floats
  std::string s;
  std::vector<std::string> strs;  // arrays of strings
  std::vector<double> nums;       // arrays of numbers (every numeric element type)

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue str(std::string v);
  static GgufValue str_array(std::vector<std::string> v);
  static GgufValue f32_array(const std::vector<float>& v);
  static GgufValue i32_array(const std::vector<int32_t>& v);
  // For people and tests: numbers as numbers, strings quoted, long arrays summarised.
  std::string describe() const;
};

// Encodes `n` floats (whole rows of `row_elems`) as `type`. `col_weights` (may be null) gives the
// importance of each of a row's columns to the quantized types' error search (ggml_quants.h);
// Q8_0 keeps llama.cpp's amax/127 rule.
std::string ggml_encode(GgmlType type, const float* x, uint64_t n, const float* col_weights = nullptr,
                        uint64_t row_elems = 0);
// Decodes `n` elements of `type` starting at `data` into floats.
void ggml_decode(GgmlType type, const uint8_t* data, uint64_t n, float* out);

// Writes a GGUF v3 file: add metadata and tensors, then write(). Tensor bytes are produced one at a
// time by a callback, so a model is never held twice in memory. Atomic (temp file + rename).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue v);  // keys keep insertion order; setting twice replaces
  // shape as PyTorch orders it (outermost first); the file stores it innermost first.
  // produce() must return exactly the encoded bytes of the tensor.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> shape,
                  std::function<std::string()> produce);
  void write(const std::string& path, const std::function<void(size_t done, size_t total)>& progress = nullptr);
  size_t tensor_count() const { return tensors_.size(); }
  uint64_t data_bytes() const;  // tensor data with padding

  static constexpr uint64_t kAlignment = 32;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
    std::function<std::string()> produce;
    uint64_t nbytes;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;  // PyTorch order (outermost first)
  uint64_t offset = 0;         // into the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
};

// Maps a GGUF file and validates all of it before anything is used: magic, version, counts, every
// string and array length against the file's size, tensor types, shapes, alignment, that each
// tensor's bytes lie inside the file without overlapping another. Errors name the file and what is
// wrong (and the key or tensor).
class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<std::string>& key_order() const { return key_order_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;
  const GgufValue* get(const std::string& key) const;
  // Typed accessors that throw naming the key when it is absent or of another type.
  std::string get_string(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;  // any unsigned or non-negative signed integer
  double get_float(const std::string& key) const;   // F32 or F64
  const uint8_t* data(const GgufTensorInfo& t) const { return data_ + t.offset; }
  std::vector<float> read_floats(const GgufTensorInfo& t) const;  // dequantized

  static constexpr uint64_t kMaxTensors = 1u << 20, kMaxKeys = 1u << 20;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  const uint8_t* data_ = nullptr;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> key_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace hone
