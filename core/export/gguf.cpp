// GGUF byte layer (see gguf.h): little-endian throughout; strings are u64 length + bytes; tensor
// dims innermost first; data offsets relative to the aligned data section.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "export/ggml_quants.h"

namespace hone {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;  // STRING, ARRAY
  }
}

bool valid_value_type(uint32_t t) { return t <= 12; }

// --- writing -------------------------------------------------------------------------------------

struct Out {
  std::string buf;
  template <class T>
  void put(T v) {
    buf.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    buf += s;
  }
};

void put_scalar(Out& o, GgufType t, const GgufValue& v, size_t k) {
  // k: index into nums for arrays, or SIZE_MAX for the scalar itself
  const bool arr = k != SIZE_MAX;
  const double num = arr ? v.nums[k] : 0;
  switch (t) {
    case GgufType::U8: o.put<uint8_t>(static_cast<uint8_t>(arr ? num : v.u)); break;
    case GgufType::I8: o.put<int8_t>(static_cast<int8_t>(arr ? num : v.i)); break;
    case GgufType::U16: o.put<uint16_t>(static_cast<uint16_t>(arr ? num : v.u)); break;
    case GgufType::I16: o.put<int16_t>(static_cast<int16_t>(arr ? num : v.i)); break;
    case GgufType::U32: o.put<uint32_t>(static_cast<uint32_t>(arr ? num : v.u)); break;
    case GgufType::I32: o.put<int32_t>(static_cast<int32_t>(arr ? num : v.i)); break;
    case GgufType::F32: o.put<float>(static_cast<float>(arr ? num : v.f)); break;
    case GgufType::BOOL: o.put<uint8_t>((arr ? num : v.u) ? 1 : 0); break;
    case GgufType::U64: o.put<uint64_t>(static_cast<uint64_t>(arr ? num : v.u)); break;
    case GgufType::I64: o.put<int64_t>(static_cast<int64_t>(arr ? num : v.i)); break;
    case GgufType::F64: o.put<double>(arr ? num : v.f); break;
    default: throw Error("gguf: cannot write a value of type " + std::to_string(static_cast<uint32_t>(t)));
  }
}

void put_value(Out& o, const GgufValue& v) {
  o.put<uint32_t>(static_cast<uint32_t>(v.type));
  if (v.type == GgufType::STRING) {
    o.str(v.s);
  } else if (v.type == GgufType::ARRAY) {
    o.put<uint32_t>(static_cast<uint32_t>(v.elem));
    if (v.elem == GgufType::STRING) {
      o.put<uint64_t>(v.strs.size());
      for (const auto& s : v.strs) o.str(s);
    } else {
      o.put<uint64_t>(v.nums.size());
      for (size_t k = 0; k < v.nums.size(); ++k) put_scalar(o, v.elem, v, k);
    }
  } else {
    put_scalar(o, v.type, v, SIZE_MAX);
  }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// --- reading -------------------------------------------------------------------------------------

class In {
 public:
  In(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const std::string& what) {
    const uint64_t len = get<uint64_t>(what.c_str());
    need(len, what.c_str());
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  void need(uint64_t k, const char* what) const {
    if (k > n_ - pos_)
      throw file_error(path_, std::string("truncated: ") + what + " needs " + std::to_string(k) + " bytes at offset " +
                                  std::to_string(pos_) + " but the file has " + std::to_string(n_ - pos_) + " left");
  }
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const std::string& path_;
};

double read_number(In& in, GgufType t, const std::string& what) {
  const char* w = what.c_str();
  switch (t) {
    case GgufType::U8: return in.get<uint8_t>(w);
    case GgufType::I8: return in.get<int8_t>(w);
    case GgufType::U16: return in.get<uint16_t>(w);
    case GgufType::I16: return in.get<int16_t>(w);
    case GgufType::U32: return in.get<uint32_t>(w);
    case GgufType::I32: return in.get<int32_t>(w);
    case GgufType::F32: return in.get<float>(w);
    case GgufType::BOOL: return in.get<uint8_t>(w);
    case GgufType::U64: return static_cast<double>(in.get<uint64_t>(w));
    case GgufType::I64: return static_cast<double>(in.get<int64_t>(w));
    case GgufType::F64: return in.get<double>(w);
    default: return 0;
  }
}

GgufValue read_value(In& in, GgufType t, const std::string& key, const std::string& path) {
  GgufValue v;
  v.type = t;
  const std::string what = "value of " + key;
  switch (t) {
    case GgufType::STRING: v.s = in.str(what); break;
    case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: case GgufType::BOOL:
      v.u = t == GgufType::U64 ? in.get<uint64_t>(what.c_str()) : static_cast<uint64_t>(read_number(in, t, what));
      if (t == GgufType::BOOL && v.u > 1) throw file_error(path, "key " + key + ": a bool must be 0 or 1");
      break;
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
      v.i = t == GgufType::I64 ? in.get<int64_t>(what.c_str()) : static_cast<int64_t>(read_number(in, t, what));
      break;
    case GgufType::F32: case GgufType::F64: v.f = read_number(in, t, what); break;
    case GgufType::ARRAY: {
      const uint32_t et = in.get<uint32_t>(what.c_str());
      if (!valid_value_type(et) || et == static_cast<uint32_t>(GgufType::ARRAY))
        throw file_error(path, "key " + key + ": array of unknown element type " + std::to_string(et));
      v.elem = static_cast<GgufType>(et);
      const uint64_t count = in.get<uint64_t>(what.c_str());
      // Each element takes at least one byte (a string at least 8): a count the file cannot hold
      // is refused before anything is allocated.
      const uint64_t min_size = v.elem == GgufType::STRING ? 8 : scalar_size(v.elem);
      if (count > in.left() / min_size)
        throw file_error(path, "key " + key + ": array of " + std::to_string(count) + " elements is larger than the file");
      if (v.elem == GgufType::STRING) {
        v.strs.reserve(count);
        for (uint64_t k = 0; k < count; ++k) v.strs.push_back(in.str(what));
      } else {
        v.nums.reserve(count);
        for (uint64_t k = 0; k < count; ++k) v.nums.push_back(read_number(in, v.elem, what));
      }
      break;
    }
  }
  return v;
}

}  // namespace

// --- types ---------------------------------------------------------------------------------------

namespace {
struct TypeRow {
  GgmlType type;
  const char* name;
  uint64_t block_elems, block_bytes;
};
// One row per type Hone reads and writes: ggml's block sizes (ggml_quants.h).
const TypeRow kTypes[] = {
    {GgmlType::F32, "f32", 1, 4},        {GgmlType::F16, "f16", 1, 2},
    {GgmlType::BF16, "bf16", 1, 2},      {GgmlType::Q8_0, "q8_0", kQK, kQ8_0Bytes},
    {GgmlType::Q5_0, "q5_0", kQK, kQ5_0Bytes}, {GgmlType::Q5_1, "q5_1", kQK, kQ5_1Bytes},
    {GgmlType::Q4_K, "q4_k", kQKK, kQ4_KBytes}, {GgmlType::Q5_K, "q5_k", kQKK, kQ5_KBytes},
    {GgmlType::Q6_K, "q6_k", kQKK, kQ6_KBytes},
};
const TypeRow& row_of(GgmlType t) {
  for (const auto& r : kTypes)
    if (r.type == t) return r;
  throw Error("gguf: unknown tensor type " + std::to_string(static_cast<uint32_t>(t)));
}
}  // namespace

const char* ggml_type_name(GgmlType t) {
  for (const auto& r : kTypes)
    if (r.type == t) return r.name;
  return "?";
}

bool ggml_type_from_name(const std::string& s, GgmlType* out) {
  for (const auto& r : kTypes)
    if (s == r.name) return *out = r.type, true;
  return false;
}

bool ggml_type_from_id(uint32_t id, GgmlType* out) {
  for (const auto& r : kTypes)
    if (static_cast<uint32_t>(r.type) == id) return *out = r.type, true;
  return false;
}

uint64_t ggml_block_elems(GgmlType t) { return row_of(t).block_elems; }
uint64_t ggml_block_bytes(GgmlType t) { return row_of(t).block_bytes; }

uint64_t ggml_nbytes(GgmlType t, uint64_t row_elems, uint64_t rows) {
  const TypeRow& r = row_of(t);
  if (row_elems % r.block_elems)
    throw Error(std::string("gguf: ") + r.name + " needs rows of a multiple of " + std::to_string(r.block_elems) +
                " elements (got " + std::to_string(row_elems) + ")");
  return row_elems / r.block_elems * r.block_bytes * rows;
}

GgufValue GgufValue::u32(uint32_t v) { GgufValue g; g.type = GgufType::U32; g.u = v; return g; }
GgufValue GgufValue::i32(int32_t v) { GgufValue g; g.type = GgufType::I32; g.i = v; return g; }
GgufValue GgufValue::f32(float v) { GgufValue g; g.type = GgufType::F32; g.f = v; return g; }
GgufValue GgufValue::boolean(bool v) { GgufValue g; g.type = GgufType::BOOL; g.u = v; return g; }
GgufValue GgufValue::str(std::string v) { GgufValue g; g.type = GgufType::STRING; g.s = std::move(v); return g; }
GgufValue GgufValue::str_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem = GgufType::STRING;
  g.strs = std::move(v);
  return g;
}
GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem = GgufType::F32;
  g.nums.assign(v.begin(), v.end());
  return g;
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem = GgufType::I32;
  g.nums.assign(v.begin(), v.end());
  return g;
}

std::string GgufValue::describe() const {
  std::ostringstream o;
  switch (type) {
    case GgufType::STRING: o << '"' << (s.size() > 60 ? s.substr(0, 57) + "..." : s) << '"'; break;
    case GgufType::BOOL: o << (u ? "true" : "false"); break;
    case GgufType::F32: case GgufType::F64: o << f; break;
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64: o << i; break;
    case GgufType::ARRAY: o << "[" << (elem == GgufType::STRING ? strs.size() : nums.size()) << " elements]"; break;
    default: o << u;
  }
  return o.str();
}

std::string ggml_encode(GgmlType type, const float* x, uint64_t n, const float* col_weights, uint64_t row_elems) {
  const TypeRow& r = row_of(type);
  if (n % r.block_elems)
    throw Error(std::string("gguf: ") + r.name + " needs a multiple of " + std::to_string(r.block_elems) + " elements");
  if (col_weights && (row_elems == 0 || n % row_elems || row_elems % r.block_elems))
    throw Error("gguf: column weights need whole rows of whole blocks");
  std::string out(n / r.block_elems * r.block_bytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  switch (type) {
    case GgmlType::F32:
      std::memcpy(p, x, n * 4);
      return out;
    case GgmlType::F16:
    case GgmlType::BF16: {
      auto* h = reinterpret_cast<uint16_t*>(p);
      for (uint64_t k = 0; k < n; ++k) h[k] = type == GgmlType::F16 ? fp32_to_fp16(x[k]) : fp32_to_bf16(x[k]);
      return out;
    }
    case GgmlType::Q8_0:
      quantize_q8_0(x, n, p);
      return out;
    default: break;
  }
  // Row by row, so that each row's values meet their columns' weights.
  const uint64_t row = col_weights ? row_elems : n, row_bytes = row / r.block_elems * r.block_bytes;
  for (uint64_t o = 0; o < n; o += row, p += row_bytes) {
    switch (type) {
      case GgmlType::Q5_0: quantize_q5_0(x + o, col_weights, row, p); break;
      case GgmlType::Q5_1: quantize_q5_1(x + o, col_weights, row, p); break;
      case GgmlType::Q4_K: quantize_q4_k(x + o, col_weights, row, p); break;
      case GgmlType::Q5_K: quantize_q5_k(x + o, col_weights, row, p); break;
      case GgmlType::Q6_K: quantize_q6_k(x + o, col_weights, row, p); break;
      default: break;
    }
  }
  return out;
}

void ggml_decode(GgmlType type, const uint8_t* data, uint64_t n, float* out) {
  switch (type) {
    case GgmlType::F32: std::memcpy(out, data, n * 4); break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (uint64_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, data + 2 * k, 2);
        out[k] = type == GgmlType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
      }
      break;
    case GgmlType::Q8_0: dequantize_q8_0(data, n, out); break;
    case GgmlType::Q5_0: dequantize_q5_0(data, n, out); break;
    case GgmlType::Q5_1: dequantize_q5_1(data, n, out); break;
    case GgmlType::Q4_K: dequantize_q4_k(data, n, out); break;
    case GgmlType::Q5_K: dequantize_q5_k(data, n, out); break;
    case GgmlType::Q6_K: dequantize_q6_k(data, n, out); break;
  }
}

// --- writer --------------------------------------------------------------------------------------

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& kv : kv_)
    if (kv.first == key) return void(kv.second = std::move(v));
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> shape,
                            std::function<std::string()> produce) {
  if (shape.empty() || shape.size() > 4) throw Error("gguf: tensor " + name + " must have 1 to 4 dimensions");
  uint64_t rows = 1;
  for (size_t k = 0; k + 1 < shape.size(); ++k) rows *= static_cast<uint64_t>(shape[k]);
  const uint64_t nb = ggml_nbytes(type, static_cast<uint64_t>(shape.back()), rows);
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("gguf: tensor " + name + " added twice");
  tensors_.push_back({name, type, std::move(shape), std::move(produce), nb});
}

uint64_t GgufWriter::data_bytes() const {
  uint64_t off = 0;
  for (const auto& t : tensors_) off = align_up(off + t.nbytes, kAlignment);
  return off;
}

void GgufWriter::write(const std::string& path, const std::function<void(size_t, size_t)>& progress) {
  Out h;
  h.put<uint32_t>(kMagic);
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    h.str(k);
    put_value(h, v);
  }
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    h.str(t.name);
    h.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) h.put<uint64_t>(static_cast<uint64_t>(*it));
    h.put<uint32_t>(static_cast<uint32_t>(t.type));
    h.put<uint64_t>(off);
    off = align_up(off + t.nbytes, kAlignment);
  }
  h.buf.resize(align_up(h.buf.size(), kAlignment), '\0');
  AtomicWriter w(path);
  w.write(h.buf.data(), h.buf.size());
  static const char zeros[kAlignment] = {};
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const auto& t = tensors_[k];
    const std::string bytes = t.produce();
    if (bytes.size() != t.nbytes)
      throw Error("gguf: tensor " + t.name + " produced " + std::to_string(bytes.size()) + " bytes, expected " +
                  std::to_string(t.nbytes));
    w.write(bytes.data(), bytes.size());
    const uint64_t pad = align_up(t.nbytes, kAlignment) - t.nbytes;
    if (pad) w.write(zeros, pad);
    if (progress) progress(k + 1, tensors_.size());
  }
  w.commit();
}

// --- reader --------------------------------------------------------------------------------------

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

GgufFile::GgufFile(const std::string& path) : file_(path) {
  In in(file_.data(), file_.size(), path);
  if (file_.size() < 24) throw file_error(path, "is too small to be a GGUF file (" + std::to_string(file_.size()) + " bytes)");
  if (in.get<uint32_t>("magic") != kMagic) throw file_error(path, "is not a GGUF file (no \"GGUF\" magic)");
  version_ = in.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    throw file_error(path, "GGUF version " + std::to_string(version_) + " is not supported (2 and 3 are)");
  const uint64_t n_tensors = in.get<uint64_t>("tensor count"), n_kv = in.get<uint64_t>("key count");
  if (n_tensors > kMaxTensors) throw file_error(path, "claims " + std::to_string(n_tensors) + " tensors");
  if (n_kv > kMaxKeys) throw file_error(path, "claims " + std::to_string(n_kv) + " metadata keys");
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key = in.str("key " + std::to_string(k));
    const uint32_t t = in.get<uint32_t>("value type");
    if (!valid_value_type(t)) throw file_error(path, "key " + key + " has unknown value type " + std::to_string(t));
    if (kv_.count(key)) throw file_error(path, "key " + key + " appears twice");
    kv_[key] = read_value(in, static_cast<GgufType>(t), key, path);
    key_order_.push_back(key);
  }
  if (const GgufValue* a = get("general.alignment")) {
    if (a->type != GgufType::U32 || a->u == 0 || (a->u & (a->u - 1)) || a->u > 1u << 20)
      throw file_error(path, "general.alignment must be a power of two (u32)");
    alignment_ = a->u;
  }
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.name = in.str("tensor name " + std::to_string(k));
    const uint32_t nd = in.get<uint32_t>("tensor dimensions");
    if (nd == 0 || nd > 4) throw file_error(path, "tensor " + t.name + " has " + std::to_string(nd) + " dimensions (1 to 4 allowed)");
    std::vector<int64_t> ne(nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t v = in.get<uint64_t>("tensor dimension");
      if (v == 0 || v > (1ull << 40) || numel > (1ull << 42) / v)
        throw file_error(path, "tensor " + t.name + " has an impossible dimension " + std::to_string(v));
      numel *= v;
      ne[d] = static_cast<int64_t>(v);
    }
    t.shape.assign(ne.rbegin(), ne.rend());
    const uint32_t ty = in.get<uint32_t>("tensor type");
    if (!ggml_type_from_id(ty, &t.type))
      throw file_error(path, "tensor " + t.name + " has type " + std::to_string(ty) +
                                 " (Hone reads f32, f16, bf16, q8_0, q5_0, q5_1, q4_k, q5_k and q6_k)");
    if (ne[0] % static_cast<int64_t>(ggml_block_elems(t.type)))
      throw file_error(path, "tensor " + t.name + ": " + ggml_type_name(t.type) + " rows of " + std::to_string(ne[0]) +
                                 " elements (not a multiple of " + std::to_string(ggml_block_elems(t.type)) + ")");
    t.offset = in.get<uint64_t>("tensor offset");
    t.nbytes = ggml_nbytes(t.type, static_cast<uint64_t>(ne[0]), numel / static_cast<uint64_t>(ne[0]));
    if (t.offset % alignment_) throw file_error(path, "tensor " + t.name + " is not aligned to " + std::to_string(alignment_));
    if (index_.count(t.name)) throw file_error(path, "tensor " + t.name + " appears twice");
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  const uint64_t data_start = align_up(in.pos(), alignment_);
  if (data_start > file_.size()) throw file_error(path, "truncated before the tensor data");
  data_ = file_.data() + data_start;
  const uint64_t data_size = file_.size() - data_start;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw file_error(path, "tensor " + t.name + " lies outside the file (bytes " + std::to_string(t.offset) + "+" +
                                 std::to_string(t.nbytes) + " of a " + std::to_string(data_size) + "-byte data section)");
    spans.emplace_back(t.offset, t.offset + t.nbytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k)
    if (spans[k].first < spans[k - 1].second) throw file_error(path, "two tensors overlap in the data section");
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::get(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) throw file_error(path(), "has no " + key);
  if (v->type != GgufType::STRING) throw file_error(path(), key + " is not a string");
  return v->s;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) throw file_error(path(), "has no " + key);
  switch (v->type) {
    case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64: return v->u;
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
      if (v->i >= 0) return static_cast<uint64_t>(v->i);
      break;
    default: break;
  }
  throw file_error(path(), key + " is not a non-negative integer");
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) throw file_error(path(), "has no " + key);
  if (v->type != GgufType::F32 && v->type != GgufType::F64) throw file_error(path(), key + " is not a float");
  return v->f;
}

std::vector<float> GgufFile::read_floats(const GgufTensorInfo& t) const {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ggml_decode(t.type, data(t), out.size(), out.data());
  return out;
}

}  // namespace hone
