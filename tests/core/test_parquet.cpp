// Parquet import and export: DuckDB-written fixtures (tests/data/parquet, made by make_fixtures.mjs
// from the JSONL beside them) in every codec, page version and encoding DuckDB writes read to the
// same rows as their JSONL; damaged copies are refused naming file and column; Hone's own export
// reads back to the same rows through Hone and, when tests/parquet/setup.sh has installed it,
// through DuckDB.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/parquet.h"
#include "data/records.h"
#include "store/datasets.h"
#include "test_support.h"

using namespace hone;
using json = nlohmann::json;

namespace {

std::string fixture(const std::string& name) { return test::source("tests/data/parquet/" + name); }

std::vector<std::string> datas(const ReadResult& r) {
  std::vector<std::string> out;
  for (const auto& x : r.records) out.push_back(x.data);
  return out;
}

json drop_nulls(json j) {
  if (j.is_object()) {
    json o = json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!it->is_null()) o[it.key()] = drop_nulls(*it);
    return o;
  }
  if (j.is_array())
    for (auto& x : j) x = drop_nulls(x);
  return j;
}

std::vector<json> jsonl_rows(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(drop_nulls(json::parse(l)));
  return out;
}

std::vector<json> parquet_rows(const std::string& path) {
  std::vector<json> out;
  ParquetReader r(path);
  r.read_all([&](json& row) {
    out.push_back(row);
    return true;
  });
  return out;
}

std::string copy_with(const std::string& name, const std::string& dir, const std::function<void(std::string&)>& edit) {
  std::string data = read_file(fixture(name));
  edit(data);
  const std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << data;
  return p;
}

// The error reading `path` gives (all rows), or "" when it reads.
std::string read_error(const std::string& path) {
  try {
    parquet_rows(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct Case {
  const char* parquet;
  const char* jsonl;
  const char* map;
};
const Case kCases[] = {
    {"chat_snappy.parquet", "chat.jsonl", ""},
    {"chat_zstd_v2.parquet", "chat.jsonl", ""},
    {"chat_gzip.parquet", "chat.jsonl", ""},
    {"chat_dict_uncompressed.parquet", "chat.jsonl", ""},
    {"chat_plain_groups.parquet", "chat.jsonl", ""},
    {"alpaca_nulls_snappy.parquet", "alpaca.jsonl", ""},
    {"alpaca_nulls_v2.parquet", "alpaca.jsonl", ""},
    {"preference_zstd.parquet", "preference.jsonl", ""},
    {"preference_v2_uncompressed.parquet", "preference.jsonl", ""},
    {"text_gzip.parquet", "text.jsonl", ""},
    {"mapped_snappy_v2.parquet", "mapped.jsonl", "question=instruction,answer=output"},
    {"lists_zstd.parquet", "lists.jsonl", ""},
};

}  // namespace

// Every value, ints, doubles and booleans included, as DuckDB read them from the JSONL.
TEST(Parquet, DuckDbFixturesReadAsTheirJsonl) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.parquet);
    const auto want = jsonl_rows(fixture(c.jsonl));
    const auto got = parquet_rows(fixture(c.parquet));
    ASSERT_FALSE(want.empty());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "row " << i + 1;
  }
}

TEST(Parquet, ImportsToTheSameRecordsAsJsonl) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.parquet);
    ReadOptions o;
    if (*c.map) o.field_map = parse_field_map(c.map);
    const ReadResult a = read_dataset(fixture(c.parquet), o), b = read_dataset(fixture(c.jsonl), o);
    EXPECT_EQ(a.errors, 0) << (a.problems.empty() ? "" : a.problems[0].text());
    EXPECT_EQ(a.format, b.format);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.rows_read, b.rows_read);
    ASSERT_FALSE(a.records.empty());
    EXPECT_EQ(datas(a), datas(b));
    EXPECT_EQ(a.records[1].source, fixture(c.parquet) + ": row 2");
  }
  // The mapped file without its map is the same problem as the JSONL's (row 2: row 1's explicit
  // "w": null is a left-out field in Parquet, so the fields it lists differ).
  const ReadResult a = read_dataset(fixture("mapped_snappy_v2.parquet")), b = read_dataset(fixture("mapped.jsonl"));
  ASSERT_GE(a.problems.size(), 2u);
  EXPECT_EQ(a.problems[1].message, b.problems[1].message);
  EXPECT_EQ(a.problems[1].where, fixture("mapped_snappy_v2.parquet") + ": row 2");
  EXPECT_EQ(a.errors, b.errors);
}

TEST(Parquet, SeveralRowGroups) {
  ParquetReader r(fixture("many_groups.parquet"));
  ASSERT_GE(r.num_row_groups(), 3u);
  EXPECT_EQ(r.num_rows(), 5000);
  int64_t i = 0;
  for (size_t g = 0; g < r.num_row_groups(); ++g)
    r.read_row_group(g, [&](json& row) {
      EXPECT_EQ(row, json({{"text", "row " + std::to_string(i)}, {"n", i}}));
      ++i;
      return true;
    });
  EXPECT_EQ(i, 5000);
}

TEST(Parquet, DamagedFilesAreRefusedNamingFileAndColumn) {
  const std::string dir = test::temp_dir("parquet-damaged");
  // Truncated: the footer and its magic are gone.
  std::string p = copy_with("chat_snappy.parquet", dir, [](std::string& d) { d.resize(d.size() / 2); });
  EXPECT_NE(read_error(p).find(p + ": not a Parquet file"), std::string::npos) << read_error(p);
  // The footer length says more than the file holds.
  p = copy_with("chat_gzip.parquet", dir, [](std::string& d) { d[d.size() - 6] = '\x7f'; });
  EXPECT_NE(read_error(p).find("footer length"), std::string::npos) << read_error(p);
  // The first page's header (at byte 4: type, uncompressed size, compressed size, as Thrift
  // varints) claims a compressed size past its chunk.
  p = copy_with("preference_v2_uncompressed.parquet", dir, [](std::string& d) {
    size_t i = 4;
    ASSERT_EQ(d[i], '\x15');
    for (int field = 0; field < 2; ++field) {
      ++i;
      while (d[i] & 0x80) ++i;
      ++i;
      ASSERT_EQ(d[i], '\x15');
    }
    ++i;
    while (d[i] & 0x80) d[i++] = '\xff';
    d[i] = '\x7f';
  });
  std::string e = read_error(p);
  EXPECT_NE(e.find(p + ": column \"prompt\", row group 1: a page claims"), std::string::npos) << e;
  // The roles' dictionary page says it holds one value: the indices 1 and 2 point past it.
  p = copy_with("chat_dict_uncompressed.parquet", dir, [](std::string& d) {
    const size_t v = d.find(std::string("\x06\0\0\0system\x04\0\0\0user", 18));
    ASSERT_NE(v, std::string::npos);
    ASSERT_EQ(d.substr(v - 7, 7), std::string("\x4c\x15\x06\x15\0\0\0", 7));  // ..., num_values 3, PLAIN
    d[v - 5] = '\x02';
  });
  e = read_error(p);
  EXPECT_NE(e.find(p + ": column \"messages.list.element.role\", row group 1: dictionary index"), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  // As an import it is a problem of the file, not a crash or an exception.
  const ReadResult rr = read_dataset(p);
  ASSERT_GE(rr.errors, 1);
  EXPECT_EQ(rr.problems.back().where, p);
  EXPECT_NE(rr.problems.back().message.find("dictionary index"), std::string::npos);
}

// Every byte of a small file flipped in turn: each copy reads or is refused with a hone::Error
// naming the file (run under the sanitizers in CI's asan job, this is where a missed check shows).
TEST(Parquet, EveryFlippedByteReadsOrIsRefused) {
  const std::string dir = test::temp_dir("parquet-flip");
  for (const char* name : {"lists_zstd.parquet", "alpaca_nulls_v2.parquet"}) {
    const std::string orig = read_file(fixture(name));
    int refused = 0;
    for (size_t i = 0; i < orig.size(); ++i) {
      std::string d = orig;
      d[i] = static_cast<char>(d[i] ^ (i % 2 ? 0xff : 0x10));
      const std::string p = dir + "/flip.parquet";
      std::ofstream(p, std::ios::binary | std::ios::trunc) << d;
      try {
        parquet_rows(p);
      } catch (const Error& e) {
        ++refused;
        ASSERT_EQ(std::string(e.what()).rfind(p + ": ", 0), 0u) << e.what();
      }
    }
    EXPECT_GT(refused, static_cast<int>(orig.size() / 4)) << name;
  }
}

TEST(Parquet, FolderOfShardsLeavesTheCardOut) {
  const std::string dir = test::temp_dir("parquet-folder");
  make_dirs(dir + "/repo/data");
  std::ofstream(dir + "/repo/README.md") << "---\nlicense: mit\n---\n# A dataset card\n";
  // Two shards in name order: the second holds the later rows.
  std::ofstream(dir + "/repo/data/train-00001-of-00002.parquet", std::ios::binary) << read_file(fixture("chat_gzip.parquet"));
  std::ofstream(dir + "/repo/data/train-00000-of-00002.parquet", std::ios::binary) << read_file(fixture("chat_zstd_v2.parquet"));
  const ReadResult r = read_dataset(dir + "/repo");
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_EQ(r.files[0], dir + "/repo/data/train-00000-of-00002.parquet");
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.records.size(), 120u);
  EXPECT_EQ(r.kind, DatasetKind::Chat);
  // Each second-shard row repeats one of the first: reported with the first one's place.
  EXPECT_EQ(r.duplicates, 60);
  EXPECT_EQ(r.problems[0].message, "duplicate of " + dir + "/repo/data/train-00000-of-00002.parquet: row 1");
  // A folder of only notes is still read as text documents.
  make_dirs(dir + "/notes");
  std::ofstream(dir + "/notes/a.md") << "# Notes\nsome text\n";
  EXPECT_EQ(read_dataset(dir + "/notes").records.size(), 1u);
}

TEST(Parquet, ImportStreamsIntoTheStore) {
  const std::string dir = test::temp_dir("parquet-import");
  Workspace ws(dir + "/ws");
  ImportReport rep = import_dataset(ws, fixture("chat_zstd_v2.parquet"), "chat", {});
  ASSERT_EQ(rep.errors, 0);
  EXPECT_EQ(rep.imported, 60);
  EXPECT_EQ(rep.kind, "chat");
  const auto rows = read_rows(ws, rep.dataset_id, 0, 100);
  const auto want = datas(read_dataset(fixture("chat.jsonl")));
  ASSERT_EQ(rows.size(), want.size());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].data, want[i]);
  EXPECT_EQ(rows[59].source, fixture("chat_zstd_v2.parquet") + ": row 60");
  // Errors import nothing (the streamed rows roll back); a wrong kind too.
  rep = import_dataset(ws, fixture("mapped_snappy_v2.parquet"), "bad", {});
  EXPECT_EQ(rep.dataset_id, 0);
  EXPECT_GT(rep.errors, 0);
  ImportOptions k;
  k.kind = DatasetKind::Preference;
  rep = import_dataset(ws, fixture("chat_snappy.parquet"), "wrong", k);
  EXPECT_EQ(rep.dataset_id, 0);
  EXPECT_EQ(list_datasets(ws).size(), 1u);
  // With skip_invalid the valid rows of a mixed import are kept.
  const std::string mixed = dir + "/mixed";
  make_dirs(mixed);
  std::ofstream(mixed + "/a.parquet", std::ios::binary) << read_file(fixture("text_gzip.parquet"));
  std::ofstream(mixed + "/b.jsonl") << "{\"text\": \"\"}\n{\"text\": \"last\"}\n";
  ImportOptions s;
  s.skip_invalid = true;
  rep = import_dataset(ws, mixed, "mixed", s);
  EXPECT_EQ(rep.imported, 31);
  EXPECT_EQ(rep.errors, 1);
}

namespace {

// Rows DuckDB reads from `path` (one JSON object per line from tests/parquet/duckdb_read.mjs), or
// a reason it cannot run here.
std::string duckdb_dir() { return std::string(HONE_BIN_DIR) + "/../duckdb"; }

}  // namespace

TEST(Parquet, ExportReadsBackThroughHoneAndDuckDb) {
  const std::string dir = test::temp_dir("parquet-export");
  Workspace ws(dir + "/ws");
  const bool duck = file_exists(duckdb_dir() + "/node_modules/@duckdb/node-api/package.json") &&
                    test::run("node --version").code == 0;
  int checked_by_duckdb = 0;
  for (const char* src : {"chat.jsonl", "preference.jsonl", "text.jsonl", "lists.jsonl", "alpaca.jsonl"}) {
    SCOPED_TRACE(src);
    const ImportReport rep = import_dataset(ws, fixture(src), src, {});
    ASSERT_GT(rep.imported, 0);
    std::vector<json> want;
    for (const auto& r : read_rows(ws, rep.dataset_id, 0, 1000)) want.push_back(json::parse(r.data));
    for (const char* codec : {"snappy", "zstd", "gzip", "none"}) {
      SCOPED_TRACE(codec);
      ExportOptions eo;
      eo.parquet_codec = codec;
      const std::string out = dir + "/" + src + "." + codec + ".parquet";
      ASSERT_EQ(export_dataset(ws, rep.dataset_id, out, eo), static_cast<int64_t>(want.size()));
      EXPECT_FALSE(file_exists(out + ".tmp"));
      EXPECT_EQ(parquet_rows(out), want);
      // And it imports again to the same rows.
      const ReadResult back = read_dataset(out);
      ASSERT_EQ(back.records.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(json::parse(back.records[i].data), want[i]);
      if (duck) {
        const auto r = test::run("node " + test::shell_quote(test::source("tests/parquet/duckdb_read.mjs")) + " " +
                                 test::shell_quote(duckdb_dir()) + " " + test::shell_quote(out));
        ASSERT_EQ(r.code, 0) << r.err;
        std::vector<json> got;
        std::istringstream in(r.out);
        for (std::string l; std::getline(in, l);)
          if (!l.empty()) got.push_back(drop_nulls(json::parse(l)));
        EXPECT_EQ(got, want);
        ++checked_by_duckdb;
      }
    }
  }
  // Row groups are bounded: a small limit makes several, and they read back in order.
  ParquetSchemaBuilder sb;
  for (int i = 0; i < 1000; ++i) sb.add({{"text", "t" + std::to_string(i)}, {"n", i}}, "row");
  ParquetWriteOptions po;
  po.row_group_rows = 300;
  ParquetWriter w(dir + "/groups.parquet", sb, po);
  for (int i = 0; i < 1000; ++i) w.add({{"text", "t" + std::to_string(i)}, {"n", i}});
  w.finish();
  EXPECT_EQ(ParquetReader(dir + "/groups.parquet").num_row_groups(), 4u);
  EXPECT_EQ(parquet_rows(dir + "/groups.parquet")[999], json({{"text", "t999"}, {"n", 999}}));
  // A column that is a string in one row and a list in another cannot be one Parquet column.
  ParquetSchemaBuilder mixed;
  mixed.add({{"prompt", "a"}}, "row 1");
  EXPECT_THROW(mixed.add({{"prompt", json::array({"a"})}}, "row 2"), Error);
  if (!duck) GTEST_SKIP() << "DuckDB read-back skipped: @duckdb/node-api is not installed in " << duckdb_dir()
                          << " (run tests/parquet/setup.sh)";
  EXPECT_GT(checked_by_duckdb, 0);
}
