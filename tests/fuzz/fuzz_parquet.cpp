// Fuzzes the Parquet reader (core/data/parquet.cpp, parquet_format.cpp): footer and Thrift
// metadata, schema, pages, codecs, encodings and levels, then the same file as a dataset import.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/parquet.h"
#include "data/records.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hone::fuzz::scratch_file("data.parquet", data, size);
  hone::fuzz::expect_errors_only([&] {
    hone::ParquetReader r(path);
    volatile size_t n = r.columns().size() + static_cast<size_t>(r.num_rows() > 0) + r.num_row_groups();
    size_t rows = 0;
    r.read_all([&](nlohmann::json& row) {
      n = n + row.size();
      return ++rows < 100000;
    });
    (void)n;
  });
  hone::fuzz::expect_errors_only([&] {
    const hone::ReadResult r = hone::read_dataset(path);
    volatile size_t n = r.records.size() + r.problems.size();
    (void)n;
  });
  return 0;
}
