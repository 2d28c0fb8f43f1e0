// safetensors files: a validating, memory-mapped reader and a streaming atomic writer.
// Byte-level only (no torch): checkpoint.cpp turns entries into tensors.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/files.h"

namespace hone {

enum class StDtype { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E5M2, F8_E4M3 };

const char* st_dtype_name(StDtype d);
size_t st_dtype_size(StDtype d);
bool st_dtype_from_name(const std::string& s, StDtype* out);

struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the data buffer, end exclusive
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws hone::Error naming the file and the problem.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // in offset order
  const StTensorInfo* find(const std::string& name) const;
  const uint8_t* data(const StTensorInfo& t) const { return buffer_ + t.begin; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's bytes have been copied out: let their pages go (MappedFile::drop).
  void release(const StTensorInfo& t) const { file_.drop(static_cast<size_t>(buffer_ - file_.data()) + t.begin, t.end - t.begin); }

  static constexpr uint64_t kMaxHeader = 100000000;

 private:
  MappedFile file_;
  const uint8_t* buffer_ = nullptr;
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: raw little-endian row-major bytes that must outlive the write call.
struct StWriteEntry {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};

// Writes entries in the given order; header padded with spaces to a multiple of 8;
// metadata defaults to {"format":"pt"}. Atomic: a failure leaves any existing file untouched.
void write_safetensors(const std::string& path, const std::vector<StWriteEntry>& entries,
                       std::map<std::string, std::string> metadata = {{"format", "pt"}});

}  // namespace hone
