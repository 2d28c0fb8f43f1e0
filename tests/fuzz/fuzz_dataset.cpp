// Fuzzes dataset files (core/data/records.cpp): JSONL, JSON arrays, CSV and TSV rows in every
// example format, their checks and the canonical records they become. The extension is chosen from
// the content as a person would name the file, so that every seed stays a plain data file.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstdlib>

#include "data/records.h"
#include "fuzz_support.h"

namespace {

const char* extension_for(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && s[first] == '[') return ".json";
  if (first != std::string::npos && s[first] == '{') return ".jsonl";
  const size_t eol = s.find('\n');
  if (s.substr(0, eol).find('\t') != std::string::npos) return ".tsv";
  if (s.substr(0, eol).find(',') != std::string::npos) return ".csv";
  return ".txt";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = hone::fuzz::as_string(data, size);
  const std::string path = hone::fuzz::scratch_file(std::string("data") + extension_for(text), data, size);
  hone::fuzz::expect_errors_only([&] {
    hone::ReadOptions opt;
    opt.max_row_bytes = 1 << 16;
    const hone::ReadResult r = hone::read_dataset(path, opt);
    volatile size_t n = 0;
    for (const auto& p : r.problems) n = n + p.text().size();
    for (const auto& rec : r.records) {
      if (r.kind == hone::DatasetKind::Chat) n = n + hone::record_messages(rec.data).size();
      std::string canonical;
      const auto problems = hone::validate_record(r.kind, rec.data, &canonical);
      // A record the reader accepted is valid and already canonical.
      if (!problems.empty() || canonical != rec.data) std::abort();
    }
    (void)n;
  });
  volatile size_t n = hone::json_problem(text).size();
  (void)n;
  return 0;
}
