// safetensors reader/writer. Validation follows the format's own rules (hf-compat.md §1):
// header size cap, unique keys, known dtypes, offsets contiguous from 0 with no holes or
// overlaps, last end == buffer length, end-begin == numel * dtype size.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/json_file.h"

namespace hone {
namespace {

struct DtypeRow {
  StDtype d;
  const char* name;
  size_t size;
};
constexpr DtypeRow kDtypes[] = {
    {StDtype::BOOL, "BOOL", 1}, {StDtype::U8, "U8", 1},       {StDtype::I8, "I8", 1},
    {StDtype::I16, "I16", 2},   {StDtype::U16, "U16", 2},     {StDtype::F16, "F16", 2},
    {StDtype::BF16, "BF16", 2}, {StDtype::I32, "I32", 4},     {StDtype::U32, "U32", 4},
    {StDtype::F32, "F32", 4},   {StDtype::F64, "F64", 8},     {StDtype::I64, "I64", 8},
    {StDtype::U64, "U64", 8},   {StDtype::F8_E5M2, "F8_E5M2", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1},
};

std::string json_escape(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

const char* st_dtype_name(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.d == d) return r.name;
  return "?";
}
size_t st_dtype_size(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.d == d) return r.size;
  return 0;
}
bool st_dtype_from_name(const std::string& s, StDtype* out) {
  for (const auto& r : kDtypes)
    if (s == r.name) {
      *out = r.d;
      return true;
    }
  return false;
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint8_t* p = file_.data();
  const uint64_t size = file_.size();
  if (size < 8) throw file_error(path, "not a safetensors file (shorter than its 8-byte header length)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | p[i];
  if (hlen > kMaxHeader)
    throw file_error(path, "safetensors header length " + std::to_string(hlen) + " exceeds the 100 MB limit");
  if (hlen > size - 8)
    throw file_error(path, "truncated: header length " + std::to_string(hlen) + " but the file has only " +
                               std::to_string(size - 8) + " bytes after it");
  std::string header(reinterpret_cast<const char*>(p + 8), hlen);
  check_json_nesting(header, path + ": safetensors header");
  size_t first = header.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || header[first] != '{')
    throw file_error(path, "safetensors header is not a JSON object");

  // Duplicate keys are an error in the format; nlohmann would silently keep the last one.
  std::string dup;
  std::set<std::string> seen;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& v) {
      if (ev == nlohmann::json::parse_event_t::key && depth == 1 && v.is_string()) {
        if (!seen.insert(v.get<std::string>()).second && dup.empty()) dup = v.get<std::string>();
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!dup.empty()) throw file_error(path, "safetensors header lists tensor '" + dup + "' twice");
  if (!j.is_object()) throw file_error(path, "safetensors header is not a JSON object");

  buffer_ = p + 8 + hlen;
  const uint64_t buflen = size - 8 - hlen;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw file_error(path, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw file_error(path, "__metadata__ value of '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return file_error(path, "tensor '" + name + "': " + what); };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw bad("entry needs dtype, shape and data_offsets");
    StTensorInfo t;
    t.name = name;
    if (!v["dtype"].is_string() || !st_dtype_from_name(v["dtype"].get<std::string>(), &t.dtype))
      throw bad("unknown dtype " + v["dtype"].dump());
    if (!v["shape"].is_array()) throw bad("shape is not an array");
    uint64_t numel = 1, nonzero = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape " + v["shape"].dump() + " has a non-integer or negative dimension");
      uint64_t dim = d.get<uint64_t>();
      // Also with a zero among them, the other dimensions must multiply within int64: shapes are
      // int64 from here on, and numel() multiplies them in order ([2^62, 2, 0] overflowed).
      if (dim != 0 && nonzero > (uint64_t{1} << 62) / dim) throw bad("shape " + v["shape"].dump() + " overflows");
      if (dim != 0) nonzero *= dim;
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.end < t.begin) throw bad("data_offsets end before they begin");
    if (t.end > buflen)
      throw bad("data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                "] run past the end of the file (buffer is " + std::to_string(buflen) + " bytes; truncated?)");
    const size_t es = st_dtype_size(t.dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / es || numel * es != t.end - t.begin)
      throw bad("holds " + std::to_string(t.end - t.begin) + " bytes but shape " + v["shape"].dump() + " of " +
                st_dtype_name(t.dtype) + " needs " + std::to_string(numel * es));
    tensors_.push_back(std::move(t));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : tensors_) {
    if (t.begin != expect)
      throw file_error(path, "tensor '" + t.name + "' starts at byte " + std::to_string(t.begin) + " but the previous tensor ends at " +
                                 std::to_string(expect) + (t.begin < expect ? " (overlap)" : " (hole)"));
    expect = t.end;
  }
  if (expect != buflen)
    throw file_error(path, "tensors cover " + std::to_string(expect) + " bytes but the data buffer is " + std::to_string(buflen) +
                               " bytes");
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

const StTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<StWriteEntry>& entries,
                       std::map<std::string, std::string> metadata) {
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool f2 = true;
    for (const auto& kv : metadata) {
      if (!f2) h += ",";
      f2 = false;
      h += json_escape(kv.first) + ":" + json_escape(kv.second);
    }
    h += "}";
    first = false;
  }
  uint64_t off = 0;
  std::set<std::string> names;
  for (const auto& e : entries) {
    if (!names.insert(e.name).second) throw file_error(path, "tensor '" + e.name + "' given twice");
    uint64_t numel = 1;
    for (auto d : e.shape) numel *= static_cast<uint64_t>(d);
    if (numel * st_dtype_size(e.dtype) != e.nbytes)
      throw file_error(path, "tensor '" + e.name + "': byte size does not match its shape");
    if (!first) h += ",";
    first = false;
    h += json_escape(e.name) + ":{\"dtype\":\"" + st_dtype_name(e.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < e.shape.size(); ++i) h += (i ? "," : "") + std::to_string(e.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + e.nbytes) + "]}";
    off += e.nbytes;
  }
  h += "}";
  while ((h.size() + 8) % 8) h += ' ';
  uint8_t len[8];
  uint64_t hl = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(hl >> (8 * i));
  AtomicWriter w(path);
  w.write(len, 8);
  w.write(h.data(), h.size());
  for (const auto& e : entries) w.write(e.data, e.nbytes);
  w.commit();
}

}  // namespace hone
