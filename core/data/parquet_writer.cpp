// The Parquet writer used by dataset export: a schema inferred from the rows (every field
// optional, lists in the 3-level LIST layout that pyarrow, DuckDB and datasets read), rows shredded
// into repetition/definition levels, one PLAIN data page v1 per column chunk, bounded row groups.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <cstring>

#include "common/error.h"
#include "common/files.h"
#include "data/parquet.h"
#include "data/parquet_format.h"

namespace hone {

using json = nlohmann::json;
using namespace parquet;

struct ParquetSchemaBuilder::Node {
  enum Kind { Unknown, String, Int, Real, Bool, List, Struct } kind = Unknown;
  std::string name;
  std::vector<std::unique_ptr<Node>> fields;
  std::unique_ptr<Node> elem;

  Node* field(const std::string& n) {
    for (auto& f : fields)
      if (f->name == n) return f.get();
    fields.push_back(std::make_unique<Node>());
    fields.back()->name = n;
    return fields.back().get();
  }
};

namespace {

using Node = ParquetSchemaBuilder::Node;

const char* kind_name(Node::Kind k) {
  switch (k) {
    case Node::String: return "a string";
    case Node::Int: return "an integer";
    case Node::Real: return "a number";
    case Node::Bool: return "a boolean";
    case Node::List: return "a list";
    case Node::Struct: return "an object";
    case Node::Unknown: break;
  }
  return "null";
}

void merge(Node& n, const json& v, const std::string& field, const std::string& where) {
  Node::Kind k = Node::Unknown;
  if (v.is_null()) return;
  if (v.is_string()) k = Node::String;
  else if (v.is_boolean()) k = Node::Bool;
  else if (v.is_number_integer()) k = Node::Int;
  else if (v.is_number()) k = Node::Real;
  else if (v.is_array()) k = Node::List;
  else k = Node::Struct;
  // Integers and numbers share a column as doubles.
  if ((n.kind == Node::Real && k == Node::Int) || (n.kind == Node::Int && k == Node::Real)) k = Node::Real;
  if (n.kind != Node::Unknown && n.kind != k && !(n.kind == Node::Real && k == Node::Real))
    throw Error(where + ": field \"" + field + "\" is " + kind_name(k) + " here but " + kind_name(n.kind) +
                " in earlier rows; a Parquet column holds one type (export this dataset as JSONL)");
  n.kind = k;
  if (k == Node::List) {
    if (!n.elem) n.elem = std::make_unique<Node>(), n.elem->name = "element";
    for (const auto& x : v) merge(*n.elem, x, field + "[]", where);
  } else if (k == Node::Struct) {
    for (auto it = v.begin(); it != v.end(); ++it) merge(*n.field(it.key()), it.value(), field + "." + it.key(), where);
  }
}

struct Column {
  const Node* node;
  std::vector<std::string> path;
  int max_def = 0, max_rep = 0;
  int type = kByteArray;
  std::vector<uint16_t> rep, def;
  std::string values;
  std::vector<uint8_t> bools;
};

int bits(int v) {
  int w = 0;
  while (v) ++w, v >>= 1;
  return w;
}

// Levels as RLE runs only (a valid use of the hybrid encoding: runs of equal levels are the
// common case), behind the 4-byte length that data page v1 puts before them.
void put_levels(const std::vector<uint16_t>& lv, int max, std::string& out) {
  ThriftWriter w;  // only for its varint
  const int width = (bits(max) + 7) / 8;
  for (size_t i = 0; i < lv.size();) {
    size_t j = i;
    while (j < lv.size() && lv[j] == lv[i]) ++j;
    w.varint(static_cast<uint64_t>(j - i) << 1);
    for (int b = 0; b < width; ++b) w.out += static_cast<char>((lv[i] >> (8 * b)) & 0xff);
    i = j;
  }
  const uint32_t len = static_cast<uint32_t>(w.out.size());
  out.append(reinterpret_cast<const char*>(&len), 4);
  out += w.out;
}

struct ChunkMeta {
  int64_t offset = 0, num_values = 0, uncompressed = 0, compressed = 0;
};

}  // namespace

ParquetSchemaBuilder::ParquetSchemaBuilder() : root_(std::make_unique<Node>()) { root_->kind = Node::Struct; }
ParquetSchemaBuilder::~ParquetSchemaBuilder() = default;

void ParquetSchemaBuilder::add(const json& row, const std::string& where) {
  if (!row.is_object()) throw Error(where + ": a row must be a JSON object to be written as Parquet");
  for (auto it = row.begin(); it != row.end(); ++it) merge(*root_->field(it.key()), it.value(), it.key(), where);
}

struct ParquetWriter::Impl {
  std::string path;
  int codec = kSnappy;
  ParquetWriteOptions opt;
  const Node* root = nullptr;
  Node fallback;  // the schema when there were no rows: one text column
  std::unique_ptr<AtomicWriter> out;
  int64_t offset = 0, rows = 0, group_rows = 0;
  size_t group_bytes = 0;
  std::vector<Column> cols;
  std::vector<std::pair<int64_t, std::vector<ChunkMeta>>> groups;  // rows, chunks

  void write(const std::string& s) {
    out->write(s.data(), s.size());
    offset += static_cast<int64_t>(s.size());
  }

  void add_columns(const Node& n, std::vector<std::string> path, int def, int rep) {
    path.push_back(n.name);
    if (n.kind == Node::Struct) {
      for (const auto& f : n.fields) add_columns(*f, path, def + 1, rep);
    } else if (n.kind == Node::List) {
      path.push_back("list");
      add_columns(*n.elem, path, def + 2, rep + 1);
    } else {
      Column c;
      c.node = &n;
      c.path = path;
      c.max_def = def + 1;
      c.max_rep = rep;
      c.type = n.kind == Node::Int ? kInt64 : n.kind == Node::Real ? kDouble : n.kind == Node::Bool ? kBoolean : kByteArray;
      cols.push_back(std::move(c));
    }
  }

  // Leaves under `n` get (rep, def): n is null (or an empty list) at this level.
  void nulls(const Node& n, size_t& col, int rep, int def) {
    if (n.kind == Node::Struct) {
      for (const auto& f : n.fields) nulls(*f, col, rep, def);
    } else if (n.kind == Node::List) {
      nulls(*n.elem, col, rep, def);
    } else {
      cols[col].rep.push_back(static_cast<uint16_t>(rep));
      cols[col].def.push_back(static_cast<uint16_t>(def));
      ++col;
    }
  }

  // `col` walks the leaves in schema order; def is the level of n's parent, rep_depth the number
  // of lists above n.
  void shred(const Node& n, const json* v, size_t& col, int rep, int def, int rep_depth) {
    if (!v || v->is_null()) return nulls(n, col, rep, def);
    if (n.kind == Node::Struct) {
      for (const auto& f : n.fields) {
        auto it = v->find(f->name);
        shred(*f, it == v->end() ? nullptr : &*it, col, rep, def + 1, rep_depth);
      }
    } else if (n.kind == Node::List) {
      if (v->empty()) return nulls(*n.elem, col, rep, def + 1);
      const size_t first = col;
      for (size_t i = 0; i < v->size(); ++i) {
        col = first;
        shred(*n.elem, &(*v)[i], col, i == 0 ? rep : rep_depth + 1, def + 2, rep_depth + 1);
      }
    } else {
      Column& c = cols[col++];
      c.rep.push_back(static_cast<uint16_t>(rep));
      c.def.push_back(static_cast<uint16_t>(def + 1));
      if (c.type == kByteArray) {
        const std::string& s = v->get_ref<const std::string&>();
        const uint32_t len = static_cast<uint32_t>(s.size());
        c.values.append(reinterpret_cast<const char*>(&len), 4);
        c.values += s;
      } else if (c.type == kInt64) {
        const int64_t x = v->get<int64_t>();
        c.values.append(reinterpret_cast<const char*>(&x), 8);
      } else if (c.type == kDouble) {
        const double x = v->get<double>();
        c.values.append(reinterpret_cast<const char*>(&x), 8);
      } else {
        c.bools.push_back(v->get<bool>() ? 1 : 0);
      }
    }
  }

  void flush() {
    if (group_rows == 0) return;
    std::vector<ChunkMeta> chunks;
    for (Column& c : cols) {
      std::string page;
      if (c.max_rep) put_levels(c.rep, c.max_rep, page);
      put_levels(c.def, c.max_def, page);
      if (c.type == kBoolean) {
        std::string packed((c.bools.size() + 7) / 8, '\0');
        for (size_t i = 0; i < c.bools.size(); ++i) packed[i >> 3] = static_cast<char>(packed[i >> 3] | (c.bools[i] << (i & 7)));
        page += packed;
      } else {
        page += c.values;
      }
      const std::string body = compress(codec, page);
      ThriftWriter h;
      h.i32(1, kDataPage);
      h.i32(2, static_cast<int32_t>(page.size()));
      h.i32(3, static_cast<int32_t>(body.size()));
      h.begin_struct(5);
      h.i32(1, static_cast<int32_t>(c.def.size()));
      h.i32(2, kPlain);
      h.i32(3, kRle);
      h.i32(4, kRle);
      h.end_struct();
      h.end_struct();
      ChunkMeta m;
      m.offset = offset;
      m.num_values = static_cast<int64_t>(c.def.size());
      m.uncompressed = static_cast<int64_t>(h.out.size() + page.size());
      m.compressed = static_cast<int64_t>(h.out.size() + body.size());
      if (page.size() > static_cast<size_t>(INT32_MAX) || body.size() > static_cast<size_t>(INT32_MAX))
        throw Error(path + ": a column chunk passed 2 GiB; lower the row group size");
      write(h.out);
      write(body);
      chunks.push_back(m);
      c.rep.clear();
      c.def.clear();
      c.values.clear();
      c.bools.clear();
    }
    groups.emplace_back(group_rows, std::move(chunks));
    group_rows = 0;
    group_bytes = 0;
  }

  void schema_elements(ThriftWriter& w, const Node& n, bool root) {
    w.begin_element_struct();
    const bool group = n.kind == Node::Struct || n.kind == Node::List;
    if (!group) w.i32(1, n.kind == Node::Int ? kInt64 : n.kind == Node::Real ? kDouble : n.kind == Node::Bool ? kBoolean : kByteArray);
    if (!root) w.i32(3, kOptional);
    w.str(4, root ? "schema" : n.name);
    if (n.kind == Node::Struct) w.i32(5, static_cast<int32_t>(n.fields.size()));
    if (n.kind == Node::List) w.i32(5, 1);
    if (n.kind == Node::String || n.kind == Node::Unknown) w.i32(6, kUtf8);
    if (n.kind == Node::List) w.i32(6, kList);
    if (n.kind == Node::String || n.kind == Node::Unknown || n.kind == Node::List) {
      w.begin_struct(10);  // LogicalType: STRING (1) or LIST (3), each an empty struct
      w.begin_struct(n.kind == Node::List ? 3 : 1);
      w.end_struct();
      w.end_struct();
    }
    w.end_struct();
    if (n.kind == Node::Struct)
      for (const auto& f : n.fields) schema_elements(w, *f, false);
    if (n.kind == Node::List) {
      w.begin_element_struct();
      w.i32(3, kRepeated);
      w.str(4, "list");
      w.i32(5, 1);
      w.end_struct();
      schema_elements(w, *n.elem, false);
    }
  }

  static size_t count_elements(const Node& n) {
    size_t k = 1;
    if (n.kind == Node::Struct)
      for (const auto& f : n.fields) k += count_elements(*f);
    if (n.kind == Node::List) k += 1 + count_elements(*n.elem);
    return k;
  }

  void footer() {
    ThriftWriter w;
    w.i32(1, 1);
    w.list_header(2, kTStruct, count_elements(*root));
    schema_elements(w, *root, true);
    w.i64(3, rows);
    w.list_header(4, kTStruct, groups.size());
    for (const auto& [n, chunks] : groups) {
      w.begin_element_struct();
      w.list_header(1, kTStruct, chunks.size());
      int64_t total = 0;
      for (size_t c = 0; c < chunks.size(); ++c) {
        const ChunkMeta& m = chunks[c];
        total += m.uncompressed;
        w.begin_element_struct();
        w.i64(2, m.offset);
        w.begin_struct(3);
        w.i32(1, cols[c].type);
        w.list_header(2, kTI32, 2);
        w.varint(static_cast<uint64_t>(kPlain) << 1);
        w.varint(static_cast<uint64_t>(kRle) << 1);
        w.list_header(3, kTBinary, cols[c].path.size());
        for (const auto& p : cols[c].path) w.raw_string(p);
        w.i32(4, codec);
        w.i64(5, m.num_values);
        w.i64(6, m.uncompressed);
        w.i64(7, m.compressed);
        w.i64(9, m.offset);
        w.end_struct();
        w.end_struct();
      }
      w.i64(2, total);
      w.i64(3, n);
      w.end_struct();
    }
    w.str(6, std::string("hone ") + HONE_VERSION);
    w.end_struct();
    write(w.out);
    const uint32_t len = static_cast<uint32_t>(w.out.size());
    write(std::string(reinterpret_cast<const char*>(&len), 4) + "PAR1");
  }
};

ParquetWriter::ParquetWriter(const std::string& path, const ParquetSchemaBuilder& schema, const ParquetWriteOptions& opt)
    : impl_(new Impl) {
  Impl& m = *impl_;
  m.path = path;
  m.opt = opt;
  if (opt.codec == "snappy") m.codec = kSnappy;
  else if (opt.codec == "zstd") m.codec = kZstd;
  else if (opt.codec == "gzip") m.codec = kGzip;
  else if (opt.codec == "none" || opt.codec == "uncompressed") m.codec = kUncompressed;
  else throw Error("unknown Parquet compression \"" + opt.codec + "\" (snappy, zstd, gzip or none)");
  m.root = &schema.root();
  if (m.root->fields.empty()) {  // no rows: a valid file still needs a column
    m.fallback.kind = Node::Struct;
    m.fallback.field("text")->kind = Node::String;
    m.root = &m.fallback;
  }
  for (const auto& f : m.root->fields) m.add_columns(*f, {}, 0, 0);
  m.out = std::make_unique<AtomicWriter>(path);
  m.write("PAR1");
}

ParquetWriter::~ParquetWriter() = default;

void ParquetWriter::add(const json& row) {
  Impl& m = *impl_;
  size_t col = 0;
  size_t before = 0;
  for (const auto& c : m.cols) before += c.values.size() + c.bools.size() + 4 * c.def.size();
  for (const auto& f : m.root->fields) {
    auto it = row.find(f->name);
    m.shred(*f, it == row.end() ? nullptr : &*it, col, 0, 0, 0);
  }
  size_t after = 0;
  for (const auto& c : m.cols) after += c.values.size() + c.bools.size() + 4 * c.def.size();
  m.group_bytes += after - before;
  ++m.rows;
  ++m.group_rows;
  if (m.group_bytes >= m.opt.row_group_bytes || static_cast<size_t>(m.group_rows) >= m.opt.row_group_rows) m.flush();
}

void ParquetWriter::finish() {
  Impl& m = *impl_;
  m.flush();
  m.footer();
  m.out->commit();
}

}  // namespace hone
