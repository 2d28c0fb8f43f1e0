// Parquet files as rows of JSON: a reader that takes one row group at a time (the dataset importer
// streams through it) and a writer for exporting datasets, both written from the format spec since
// Debian has no Arrow. docs/parquet.md lists what is supported and what is refused.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hone {

// Reads and checks the footer on construction; every error (here or while reading rows) is a
// hone::Error naming the file and, where one is at fault, the column and row group.
class ParquetReader {
 public:
  explicit ParquetReader(const std::string& path);
  ~ParquetReader();
  ParquetReader(const ParquetReader&) = delete;
  ParquetReader& operator=(const ParquetReader&) = delete;

  int64_t num_rows() const;
  size_t num_row_groups() const;
  std::vector<std::string> columns() const;  // leaf columns, dotted paths

  // Decodes row group `g` (only its column chunks are read from disk) and calls `row` with each
  // row as a JSON object, in order; null fields are left out, as a JSON row would omit them.
  // Returns false when `row` returned false (stop).
  bool read_row_group(size_t g, const std::function<bool(nlohmann::json& row)>& row);
  bool read_all(const std::function<bool(nlohmann::json& row)>& row);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Parquet schema a set of JSON rows needs: fields in first-seen order, strings, integers,
// doubles, booleans, lists and structs (a struct's fields are the union of the objects seen).
// Every field is optional (rows may lack it). Mixed types in one field (a string here, a list
// there) are refused by add() naming the field and the row.
class ParquetSchemaBuilder {
 public:
  ParquetSchemaBuilder();
  ~ParquetSchemaBuilder();
  void add(const nlohmann::json& row, const std::string& where);
  struct Node;
  const Node& root() const { return *root_; }

 private:
  std::unique_ptr<Node> root_;
};

struct ParquetWriteOptions {
  std::string codec = "snappy";          // snappy, zstd, gzip or none
  size_t row_group_bytes = 32u << 20;    // a row group is cut when its values pass this size
  size_t row_group_rows = 100000;        // ... or this many rows
};

// Writes rows to `path` through a temporary file renamed on finish() (nothing is left behind when
// it is destroyed unfinished). Data pages v1, PLAIN values, RLE levels, the chosen codec.
class ParquetWriter {
 public:
  ParquetWriter(const std::string& path, const ParquetSchemaBuilder& schema, const ParquetWriteOptions& opt = {});
  ~ParquetWriter();
  void add(const nlohmann::json& row);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone
