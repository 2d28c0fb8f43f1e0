// The Parquet reader: footer and schema, column chunks decoded page by page (v1 and v2 data pages,
// dictionary pages, PLAIN / RLE-bit-packed / dictionary / DELTA_* / BYTE_STREAM_SPLIT values), and
// rows assembled from repetition and definition levels (Dremel record assembly) into JSON.
// The file is untrusted: each count, length and offset is checked against the bytes really present
// before it sizes a loop or an allocation.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/parquet.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "common/utf8.h"
#include "data/parquet_format.h"

namespace hone {
namespace {

using json = nlohmann::json;
using namespace parquet;

constexpr int64_t kMaxChunkValues = int64_t(1) << 28;  // levels of one column chunk (see docs/parquet.md)
constexpr int64_t kMaxPageBytes = int64_t(1) << 30;
constexpr int kMaxSchemaDepth = 32;

// A column chunk's non-null values. Integers and booleans as int64 (INT32 sign-extended),
// FLOAT/DOUBLE as double, byte arrays back to back in one buffer with their end offsets.
struct Values {
  std::vector<int64_t> ints;
  std::vector<double> reals;
  std::string bytes;
  std::vector<size_t> ends;
  size_t size(int type) const {
    return type == kFloat || type == kDouble ? reals.size()
           : type == kByteArray || type == kFixedLenByteArray || type == kInt96 ? ends.size() : ints.size();
  }
  void add_bytes(const void* p, size_t n) {
    bytes.append(static_cast<const char*>(p), n);
    ends.push_back(bytes.size());
  }
  std::string_view at(size_t i) const {
    const size_t b = i ? ends[i - 1] : 0;
    return std::string_view(bytes.data() + b, ends[i] - b);
  }
};

struct ColumnData {
  std::vector<uint16_t> rep, def;  // empty when the column has no such levels
  size_t entries = 0;
  Values values;
};

// What a leaf's values become in JSON.
enum class As { String, Signed, Unsigned32, Unsigned64, Bool, Real, Decimal };

struct Node {
  SchemaElement e;
  std::vector<int> children;
  int def = 0, rep = 0;
  int leaf = -1;
  std::string path;
};

struct Leaf {
  int node = 0;
  int type = 0, type_length = 0;
  int max_def = 0, max_rep = 0;
  As as = As::String;
  int scale = 0;
  std::string name;  // dotted path, for messages
};

// The JSON shape of the schema: structs, lists and leaves, with the definition level at which each
// is present and, for lists, the level at which they have elements and their repetition level.
struct Shape {
  enum Kind { Struct, List, Value } kind = Value;
  int null_def = 0;            // d < null_def: this value is null
  int elem_def = 0, rep = 0;   // lists: d < elem_def: empty; rep: the list's repetition level
  std::vector<std::pair<std::string, int>> fields;
  int elem = -1, leaf = -1;
};

struct Step {
  int shape;
  const std::string* key;  // for a struct: the field the path continues into
  int list_slot;           // for a list: index into the leaf's element counters
};

int bit_width(uint64_t v) {
  int w = 0;
  while (v) {
    ++w;
    v >>= 1;
  }
  return w;
}

// Little-endian bit reader over a checked range, LSB first as Parquet packs bits.
uint64_t unpack(const uint8_t* p, size_t bit, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; ++i, ++bit) v |= static_cast<uint64_t>((p[bit >> 3] >> (bit & 7)) & 1) << i;
  return v;
}

struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
  size_t left() const { return static_cast<size_t>(end - p); }
};

// The error context: "FILE: column C, row group G: ".
struct Where {
  const std::string* file;
  const std::string* column;
  size_t group;
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(*file + ": column \"" + *column + "\", row group " + std::to_string(group + 1) + ": " + msg);
  }
};

uint64_t read_varint(Cursor& c, const Where& w) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (c.p >= c.end) w.fail("encoded values end in the middle of a number");
    const uint8_t b = *c.p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  w.fail("a varint is longer than 10 bytes");
}

int64_t read_zigzag(Cursor& c, const Where& w) {
  const uint64_t v = read_varint(c, w);
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// The RLE / bit-packed hybrid (levels, dictionary indices, RLE booleans): n values of `width` bits.
template <typename T>
void rle_decode(Cursor c, int width, size_t n, T* out, uint64_t max_value, const Where& w, const char* what) {
  if (width > 32) w.fail(std::string(what) + ": bit width " + std::to_string(width) + " is over 32");
  const size_t value_bytes = (static_cast<size_t>(width) + 7) / 8;
  size_t got = 0;
  while (got < n) {
    if (c.p >= c.end) w.fail(std::string(what) + ": the encoded data ends after " + std::to_string(got) + " of " + std::to_string(n) + " values");
    const uint64_t h = read_varint(c, w);
    if (h & 1) {  // bit-packed groups of 8
      const uint64_t groups = h >> 1;
      if (groups > c.left()) w.fail(std::string(what) + ": a bit-packed run is longer than the data");
      const size_t count = static_cast<size_t>(groups) * 8, take = std::min(count, n - got);
      const size_t bytes = std::min(static_cast<size_t>(groups) * width, c.left());
      if ((take * width + 7) / 8 > c.left()) w.fail(std::string(what) + ": a bit-packed run is longer than the data");
      for (size_t i = 0; i < take; ++i) {
        const uint64_t v = unpack(c.p, i * width, width);
        if (v > max_value) w.fail(std::string(what) + " " + std::to_string(v) + " is out of range (at most " + std::to_string(max_value) + ")");
        out[got++] = static_cast<T>(v);
      }
      c.p += bytes;
    } else {
      const uint64_t count = h >> 1;
      if (value_bytes > c.left()) w.fail(std::string(what) + ": an RLE run is cut off");
      uint64_t v = 0;
      for (size_t i = 0; i < value_bytes; ++i) v |= static_cast<uint64_t>(c.p[i]) << (8 * i);
      c.p += value_bytes;
      if (v > max_value) w.fail(std::string(what) + " " + std::to_string(v) + " is out of range (at most " + std::to_string(max_value) + ")");
      const size_t take = static_cast<size_t>(std::min<uint64_t>(count, n - got));
      std::fill(out + got, out + got + take, static_cast<T>(v));
      got += take;
    }
  }
}

// DELTA_BINARY_PACKED: n integers; `c` is left just past the encoded block data (DELTA_LENGTH_BYTE_ARRAY
// keeps its bytes after it).
std::vector<int64_t> delta_decode(Cursor& c, size_t n, bool is32, const Where& w) {
  const uint64_t block = read_varint(c, w), minis = read_varint(c, w), total = read_varint(c, w);
  const int64_t first = read_zigzag(c, w);
  if (block == 0 || block % 128 || block > (1u << 20) || minis == 0 || block % minis || (block / minis) % 32)
    w.fail("DELTA_BINARY_PACKED header is damaged (block " + std::to_string(block) + ", miniblocks " + std::to_string(minis) + ")");
  if (total != n) w.fail("DELTA_BINARY_PACKED holds " + std::to_string(total) + " values, the page needs " + std::to_string(n));
  const size_t per_mini = static_cast<size_t>(block / minis);
  std::vector<int64_t> out;
  out.reserve(std::min<size_t>(n, c.left() * 8 + 1));
  if (n == 0) return out;
  uint64_t prev = static_cast<uint64_t>(first);
  out.push_back(first);
  while (out.size() < n) {
    const uint64_t min_delta = static_cast<uint64_t>(read_zigzag(c, w));
    if (minis > c.left()) w.fail("DELTA_BINARY_PACKED block header is cut off");
    const uint8_t* widths = c.p;
    c.p += minis;
    for (uint64_t m = 0; m < minis && out.size() < n; ++m) {
      const int bw = widths[m];
      if (bw > 64) w.fail("DELTA_BINARY_PACKED bit width " + std::to_string(bw) + " is over 64");
      const size_t bytes = per_mini * bw / 8;
      if (bytes > c.left()) w.fail("DELTA_BINARY_PACKED miniblock is cut off");
      for (size_t i = 0; i < per_mini && out.size() < n; ++i) {
        prev += min_delta + unpack(c.p, i * bw, bw);  // wraps as the spec's arithmetic does
        out.push_back(is32 ? static_cast<int32_t>(prev) : static_cast<int64_t>(prev));
      }
      c.p += bytes;
    }
  }
  return out;
}

size_t byte_width(int type, int type_length) {
  switch (type) {
    case kInt32: case kFloat: return 4;
    case kInt64: case kDouble: return 8;
    case kInt96: return 12;
    case kFixedLenByteArray: return static_cast<size_t>(type_length);
  }
  return 0;
}

void store_fixed(const uint8_t* p, int type, size_t width, Values& v) {
  switch (type) {
    case kInt32: { int32_t x; std::memcpy(&x, p, 4); v.ints.push_back(x); break; }
    case kInt64: { int64_t x; std::memcpy(&x, p, 8); v.ints.push_back(x); break; }
    case kFloat: { float x; std::memcpy(&x, p, 4); v.reals.push_back(x); break; }
    case kDouble: { double x; std::memcpy(&x, p, 8); v.reals.push_back(x); break; }
    default: v.add_bytes(p, width);
  }
}

// PLAIN values (data pages and dictionary pages).
void decode_plain(Cursor c, const Leaf& leaf, size_t n, Values& v, const Where& w) {
  if (leaf.type == kBoolean) {
    if ((n + 7) / 8 > c.left()) w.fail("PLAIN booleans are cut off");
    for (size_t i = 0; i < n; ++i) v.ints.push_back((c.p[i >> 3] >> (i & 7)) & 1);
    return;
  }
  if (leaf.type == kByteArray) {
    for (size_t i = 0; i < n; ++i) {
      if (c.left() < 4) w.fail("PLAIN byte array " + std::to_string(i) + " of " + std::to_string(n) + " is cut off");
      uint32_t len;
      std::memcpy(&len, c.p, 4);
      c.p += 4;
      if (len > c.left()) w.fail("PLAIN byte array of " + std::to_string(len) + " bytes runs past its page (" + std::to_string(c.left()) + " bytes left)");
      v.add_bytes(c.p, len);
      c.p += len;
    }
    return;
  }
  const size_t width = byte_width(leaf.type, leaf.type_length);
  if (width == 0 || n > c.left() / width) w.fail("PLAIN values are cut off (" + std::to_string(n) + " values of " + std::to_string(width) + " bytes, " + std::to_string(c.left()) + " bytes in the page)");
  for (size_t i = 0; i < n; ++i) store_fixed(c.p + i * width, leaf.type, width, v);
}

void append_from(const Values& dict, int type, size_t i, Values& v) {
  if (type == kFloat || type == kDouble) v.reals.push_back(dict.reals[i]);
  else if (type == kByteArray || type == kFixedLenByteArray || type == kInt96) {
    const auto s = dict.at(i);
    v.add_bytes(s.data(), s.size());
  } else v.ints.push_back(dict.ints[i]);
}

void decode_values(Cursor c, int encoding, const Leaf& leaf, size_t n, const Values* dict, Values& v, const Where& w) {
  switch (encoding) {
    case kPlain: decode_plain(c, leaf, n, v, w); return;
    case kPlainDictionary:
    case kRleDictionary: {
      if (!dict) w.fail("a dictionary-encoded page comes without a dictionary page");
      if (c.left() < 1) {
        if (n) w.fail("dictionary indices are missing");
        return;
      }
      const int width = *c.p++;
      const size_t dn = dict->size(leaf.type);
      std::vector<uint32_t> idx(n);
      rle_decode(c, width, n, idx.data(), dn ? dn - 1 : 0, w, "dictionary index");
      if (n && dn == 0) w.fail("dictionary index 0 is out of range (the dictionary is empty)");
      for (uint32_t i : idx) append_from(*dict, leaf.type, i, v);
      return;
    }
    case kRle: {
      if (leaf.type != kBoolean) break;
      if (c.left() < 4) w.fail("RLE booleans are cut off");
      uint32_t len;
      std::memcpy(&len, c.p, 4);
      c.p += 4;
      if (len > c.left()) w.fail("RLE booleans run past their page");
      std::vector<uint8_t> b(n);
      rle_decode(Cursor{c.p, c.p + len}, 1, n, b.data(), 1, w, "boolean");
      for (uint8_t x : b) v.ints.push_back(x);
      return;
    }
    case kDeltaBinaryPacked: {
      if (leaf.type != kInt32 && leaf.type != kInt64) break;
      for (int64_t x : delta_decode(c, n, leaf.type == kInt32, w)) v.ints.push_back(x);
      return;
    }
    case kDeltaLengthByteArray: {
      if (leaf.type != kByteArray) break;
      const auto lens = delta_decode(c, n, true, w);
      for (int64_t len : lens) {
        if (len < 0 || static_cast<uint64_t>(len) > c.left()) w.fail("DELTA_LENGTH_BYTE_ARRAY length " + std::to_string(len) + " runs past the page");
        v.add_bytes(c.p, static_cast<size_t>(len));
        c.p += len;
      }
      return;
    }
    case kDeltaByteArray: {
      if (leaf.type != kByteArray && leaf.type != kFixedLenByteArray) break;
      const auto prefix = delta_decode(c, n, true, w);
      const auto lens = delta_decode(c, n, true, w);
      std::string last;
      for (size_t i = 0; i < n; ++i) {
        if (prefix[i] < 0 || static_cast<uint64_t>(prefix[i]) > last.size()) w.fail("DELTA_BYTE_ARRAY prefix " + std::to_string(prefix[i]) + " is longer than the previous value");
        if (lens[i] < 0 || static_cast<uint64_t>(lens[i]) > c.left()) w.fail("DELTA_BYTE_ARRAY suffix runs past the page");
        last.resize(static_cast<size_t>(prefix[i]));
        last.append(reinterpret_cast<const char*>(c.p), static_cast<size_t>(lens[i]));
        c.p += lens[i];
        v.add_bytes(last.data(), last.size());
      }
      return;
    }
    case kByteStreamSplit: {
      const size_t width = byte_width(leaf.type, leaf.type_length);
      if (width == 0 || leaf.type == kInt96) break;
      if (n > c.left() / width) w.fail("BYTE_STREAM_SPLIT values are cut off");
      std::vector<uint8_t> tmp(width);
      for (size_t i = 0; i < n; ++i) {
        for (size_t b = 0; b < width; ++b) tmp[b] = c.p[b * n + i];
        store_fixed(tmp.data(), leaf.type, width, v);
      }
      return;
    }
  }
  w.fail(std::string("encoding ") + encoding_name(encoding) + " (" + std::to_string(encoding) + ") is not supported for this column's type");
}

// Levels of one page; returns how many of the n entries hold a value (def == max_def).
size_t decode_levels(Cursor c, bool v1_prefixed, int max, size_t n, std::vector<uint16_t>& out, const Where& w,
                     const char* what, const uint8_t** after) {
  if (max == 0) {
    *after = c.p;
    return n;
  }
  Cursor body = c;
  if (v1_prefixed) {
    if (c.left() < 4) w.fail(std::string(what) + " levels are cut off");
    uint32_t len;
    std::memcpy(&len, c.p, 4);
    if (len > c.left() - 4) w.fail(std::string(what) + " levels claim " + std::to_string(len) + " bytes, the page has " + std::to_string(c.left() - 4));
    body = Cursor{c.p + 4, c.p + 4 + len};
  }
  const size_t base = out.size();
  out.resize(base + n);
  rle_decode(body, bit_width(static_cast<uint64_t>(max)), n, out.data() + base, static_cast<uint64_t>(max), w, what);
  *after = v1_prefixed ? body.end : c.end;
  size_t full = 0;
  for (size_t i = base; i < out.size(); ++i) full += out[i] == max;
  return full;
}

std::string dotted(const std::vector<std::string>& p) {
  std::string s;
  for (const auto& x : p) s += (s.empty() ? "" : ".") + x;
  return s;
}

}  // namespace

struct ParquetReader::Impl {
  std::string path;
  FILE* f = nullptr;
  uint64_t file_size = 0, data_end = 0;
  FileMeta meta;
  std::vector<Node> nodes;
  std::vector<Leaf> leaves;
  std::vector<Shape> shapes;
  std::vector<std::vector<Step>> paths;  // per leaf: root struct -> ... -> value
  std::vector<int> list_slots;           // per leaf: how many lists its path crosses

  [[noreturn]] void fail(const std::string& msg) const { throw Error(path + ": " + msg); }

  void read_at(uint64_t off, size_t n, void* out) const {
    if (off > data_end || n > data_end - off) fail("a read at byte " + std::to_string(off) + " runs past the data");
    if (fseeko(f, static_cast<off_t>(off), SEEK_SET) != 0 || fread(out, 1, n, f) != n) fail("cannot read " + std::to_string(n) + " bytes at " + std::to_string(off));
  }

  int build_node(size_t& i, int depth, int def, int rep, const std::string& prefix) {
    if (depth > kMaxSchemaDepth) fail("the schema is nested deeper than " + std::to_string(kMaxSchemaDepth));
    if (i >= meta.schema.size()) fail("the schema ends before its groups' children do");
    const int id = static_cast<int>(nodes.size());
    nodes.push_back({meta.schema[i++], {}, def, rep, -1, ""});
    Node& n0 = nodes[id];
    if (depth > 0) {
      if (n0.e.repetition != kRequired) ++n0.def;
      if (n0.e.repetition == kRepeated) ++n0.rep;
      n0.path = prefix.empty() ? n0.e.name : prefix + "." + n0.e.name;
    }
    const int kids = n0.e.num_children;
    const bool group = n0.e.type < 0;
    if (group != (kids > 0) && depth > 0) fail("schema element \"" + n0.e.name + "\" is " + (group ? "a group without children" : "a value with children"));
    if (static_cast<size_t>(kids) > meta.schema.size() - i) fail("schema element \"" + n0.e.name + "\" claims more children than the schema holds");
    const int d = nodes[id].def, r = nodes[id].rep;
    const std::string p = nodes[id].path;
    for (int k = 0; k < kids; ++k) {
      const int c = build_node(i, depth + 1, d, r, p);
      nodes[id].children.push_back(c);
    }
    if (!group) {
      Node& n = nodes[id];
      n.leaf = static_cast<int>(leaves.size());
      Leaf l;
      l.node = id;
      l.type = n.e.type;
      l.type_length = n.e.type_length;
      l.max_def = n.def;
      l.max_rep = n.rep;
      l.name = n.path;
      l.scale = n.e.scale;
      const int ct = n.e.converted;
      if (n.e.type == kInt96) fail("column \"" + n.path + "\" is INT96 (an old timestamp form), which is not supported");
      if (n.e.type == kFixedLenByteArray && (n.e.type_length <= 0 || n.e.type_length > (1 << 20)))
        fail("column \"" + n.path + "\" has a fixed length of " + std::to_string(n.e.type_length));
      if (ct == kDecimal || n.e.logical_decimal) l.as = As::Decimal;
      else if (n.e.type == kBoolean) l.as = As::Bool;
      else if (n.e.type == kFloat || n.e.type == kDouble) l.as = As::Real;
      else if (n.e.type == kInt32 || n.e.type == kInt64) {
        const bool u = ct == kUint8 || ct == kUint16 || ct == kUint32 || ct == kUint64 || (n.e.int_bits && !n.e.int_signed);
        l.as = !u ? As::Signed : n.e.type == kInt32 ? As::Unsigned32 : As::Unsigned64;
      } else l.as = As::String;  // BYTE_ARRAY / FIXED: UTF-8 text (checked), whatever the annotation
      leaves.push_back(l);
    }
    return id;
  }

  // The JSON shape of node `id`; as_element: it is the repeated node of a list, so present with
  // the list's element.
  int build_shape(int id, bool as_element) {
    const Node& n = nodes[id];
    const int s = static_cast<int>(shapes.size());
    shapes.push_back({});
    if (n.e.repetition == kRepeated && !as_element) {  // a bare repeated field: a list of it
      shapes[s].kind = Shape::List;
      shapes[s].null_def = n.def - 1;
      shapes[s].elem_def = n.def;
      shapes[s].rep = n.rep;
      const int e = build_shape(id, true);
      shapes[s].elem = e;
      return s;
    }
    shapes[s].null_def = n.def;
    const bool list = n.e.converted == kList || n.e.logical_list || n.e.converted == kMap || n.e.logical_map ||
                      n.e.converted == kMapKeyValue;
    if (n.e.type >= 0) {
      shapes[s].kind = Shape::Value;
      shapes[s].leaf = n.leaf;
      return s;
    }
    if (list && n.e.repetition != kRepeated) {
      if (n.children.size() != 1 || nodes[n.children[0]].e.repetition != kRepeated)
        fail("list column \"" + n.path + "\" does not hold exactly one repeated field");
      const Node& r = nodes[n.children[0]];
      shapes[s].kind = Shape::List;
      shapes[s].elem_def = r.def;
      shapes[s].rep = r.rep;
      // The spec's backward-compatibility rules: a repeated value, a repeated group of several
      // fields, or one named "array" / "<list>_tuple" is the element itself (2-level lists);
      // otherwise its one child is (the 3-level LIST layout). Maps become lists of key/value structs.
      const bool two_level = r.e.type >= 0 || r.children.size() > 1 || r.e.name == "array" ||
                             r.e.name == n.e.name + "_tuple" || n.e.converted == kMap || n.e.logical_map;
      const int e = two_level ? build_shape(n.children[0], true) : build_shape(r.children[0], false);
      shapes[s].elem = e;
      return s;
    }
    shapes[s].kind = Shape::Struct;
    for (int c : n.children) {
      const int cs = build_shape(c, false);
      shapes[s].fields.emplace_back(nodes[c].e.name, cs);
    }
    return s;
  }

  void collect_paths(int s, std::vector<Step>& path, int lists) {
    Shape& sh = shapes[s];
    if (sh.kind == Shape::Value) {
      path.push_back({s, nullptr, -1});
      paths[sh.leaf] = path;
      list_slots[sh.leaf] = lists;
      path.pop_back();
    } else if (sh.kind == Shape::Struct) {
      for (auto& [name, c] : sh.fields) {
        path.push_back({s, &name, -1});
        collect_paths(c, path, lists);
        path.pop_back();
      }
    } else {
      path.push_back({s, nullptr, lists});
      collect_paths(sh.elem, path, lists + 1);
      path.pop_back();
    }
  }

  void open() {
    f = std::fopen(path.c_str(), "rb");
    if (!f) fail("cannot open");
    if (fseeko(f, 0, SEEK_END) != 0) fail("cannot seek");
    file_size = static_cast<uint64_t>(ftello(f));
    data_end = file_size;
    if (file_size < 12) fail("too short to be a Parquet file (" + std::to_string(file_size) + " bytes)");
    char head[4], tail[8];
    read_at(0, 4, head);
    read_at(file_size - 8, 8, tail);
    if (std::memcmp(head, "PAR1", 4) != 0 || std::memcmp(tail + 4, "PAR1", 4) != 0)
      fail(std::memcmp(tail + 4, "PARE", 4) == 0 ? "encrypted Parquet files are not supported" : "not a Parquet file (no PAR1 magic at both ends; truncated?)");
    uint32_t footer_len;
    std::memcpy(&footer_len, tail, 4);
    if (footer_len == 0 || footer_len > file_size - 12)
      fail("the footer length (" + std::to_string(footer_len) + " bytes) does not fit in the file (" + std::to_string(file_size) + " bytes)");
    std::vector<uint8_t> footer(footer_len);
    read_at(file_size - 8 - footer_len, footer_len, footer.data());
    data_end = file_size - 8 - footer_len;
    try {
      meta = parse_file_meta(footer.data(), footer.size());
    } catch (const Error& e) {
      fail(std::string("damaged footer: ") + e.what());
    }
    if (meta.schema.empty()) fail("the footer has no schema");
    size_t i = 0;
    build_node(i, 0, 0, 0, "");
    if (i != meta.schema.size()) fail("the schema has elements outside its root");
    paths.resize(leaves.size());
    list_slots.resize(leaves.size());
    build_shape(0, false);
    std::vector<Step> p;
    collect_paths(0, p, 0);
    int64_t rows = 0;
    for (size_t g = 0; g < meta.row_groups.size(); ++g) {
      const auto& rg = meta.row_groups[g];
      if (rg.columns.size() != leaves.size())
        fail("row group " + std::to_string(g + 1) + " has " + std::to_string(rg.columns.size()) + " columns, the schema " + std::to_string(leaves.size()));
      if (rg.num_rows < 0) fail("row group " + std::to_string(g + 1) + " has a negative row count");
      for (size_t c = 0; c < leaves.size(); ++c) {
        const auto& cm = rg.columns[c];
        if (cm.type != leaves[c].type || dotted(cm.path) != dotted_schema_path(leaves[c]))
          fail("column \"" + leaves[c].name + "\", row group " + std::to_string(g + 1) + ": the chunk's metadata does not match the schema");
      }
      rows += rg.num_rows;
    }
    if (rows != meta.num_rows) fail("the row groups hold " + std::to_string(rows) + " rows, the footer says " + std::to_string(meta.num_rows));
  }

  // path_in_schema lists every node below the root, repeated groups included.
  std::string dotted_schema_path(const Leaf& l) const { return nodes[l.node].path; }

  void read_chunk(size_t g, size_t c, ColumnData& out) {
    const ColumnMeta& cm = meta.row_groups[g].columns[c];
    const Leaf& leaf = leaves[c];
    const Where w{&path, &leaf.name, g};
    int64_t start = cm.data_page_offset;
    if (cm.dictionary_page_offset > 0 && cm.dictionary_page_offset < start) start = cm.dictionary_page_offset;
    if (start < 4 || cm.total_compressed <= 0 || static_cast<uint64_t>(start) > data_end ||
        static_cast<uint64_t>(cm.total_compressed) > data_end - static_cast<uint64_t>(start))
      w.fail("the column chunk (at byte " + std::to_string(start) + ", " + std::to_string(cm.total_compressed) + " bytes) lies outside the file's data");
    if (cm.num_values < 0 || cm.num_values > kMaxChunkValues) w.fail("the chunk claims " + std::to_string(cm.num_values) + " values");
    std::vector<uint8_t> buf(static_cast<size_t>(cm.total_compressed));
    read_at(static_cast<uint64_t>(start), buf.size(), buf.data());
    Cursor cur{buf.data(), buf.data() + buf.size()};
    Values dict;
    bool have_dict = false;
    const size_t want = static_cast<size_t>(cm.num_values);
    while (out.entries < want) {
      if (cur.left() == 0) w.fail("the chunk ends after " + std::to_string(out.entries) + " of its " + std::to_string(want) + " values");
      size_t used = 0;
      PageHeader h;
      try {
        h = parse_page_header(cur.p, cur.left(), &used);
      } catch (const Error& e) {
        w.fail(std::string("damaged page header: ") + e.what());
      }
      cur.p += used;
      if (h.compressed_size < 0 || static_cast<uint64_t>(h.compressed_size) > cur.left())
        w.fail("a page claims " + std::to_string(h.compressed_size) + " bytes, the chunk has " + std::to_string(cur.left()) + " left");
      if (h.uncompressed_size < 0 || h.uncompressed_size > kMaxPageBytes) w.fail("a page claims an uncompressed size of " + std::to_string(h.uncompressed_size));
      const Cursor body{cur.p, cur.p + h.compressed_size};
      cur.p += h.compressed_size;
      if (h.type == kIndexPage) continue;
      if (h.type == kDictionaryPage) {
        if (have_dict || out.entries) w.fail("a second dictionary page, or one after the data");
        if (h.num_values < 0 || static_cast<uint64_t>(h.num_values) > static_cast<uint64_t>(h.uncompressed_size) * 8)
          w.fail("the dictionary page claims " + std::to_string(h.num_values) + " values");
        std::string data = page_body(cm.codec, body, static_cast<size_t>(h.uncompressed_size), w);
        decode_plain(Cursor{reinterpret_cast<const uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()) + data.size()},
                     leaf, static_cast<size_t>(h.num_values), dict, w);
        have_dict = true;
        continue;
      }
      if (h.type != kDataPage && h.type != kDataPageV2) w.fail("unknown page type " + std::to_string(h.type));
      if (h.num_values < 0 || static_cast<uint64_t>(h.num_values) > want - out.entries)
        w.fail("a page claims " + std::to_string(h.num_values) + " values, the chunk has " + std::to_string(want - out.entries) + " left");
      const size_t n = static_cast<size_t>(h.num_values);
      std::string data;
      Cursor levels{}, values{};
      if (h.type == kDataPage) {
        if ((leaf.max_rep && h.rep_encoding != kRle) || (leaf.max_def && h.def_encoding != kRle))
          w.fail("levels in an encoding other than RLE (the deprecated BIT_PACKED) are not supported");
        data = page_body(cm.codec, body, static_cast<size_t>(h.uncompressed_size), w);
        levels = Cursor{reinterpret_cast<const uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
      } else {
        if (h.rep_bytes < 0 || h.def_bytes < 0 || static_cast<uint64_t>(h.rep_bytes) + static_cast<uint64_t>(h.def_bytes) > body.left() ||
            h.rep_bytes + h.def_bytes > h.uncompressed_size)
          w.fail("a v2 page's level lengths (" + std::to_string(h.rep_bytes) + " + " + std::to_string(h.def_bytes) + " bytes) do not fit in it");
        const uint8_t* vp = body.p + h.rep_bytes + h.def_bytes;
        const size_t vsize = static_cast<size_t>(h.uncompressed_size - h.rep_bytes - h.def_bytes);
        if (h.v2_compressed) data = page_body(cm.codec, Cursor{vp, body.end}, vsize, w);
        else data = page_body(kUncompressed, Cursor{vp, body.end}, vsize, w);
        levels = Cursor{body.p, vp};
      }
      const uint8_t* after = levels.p;
      if (h.type == kDataPage) {
        decode_levels(levels, true, leaf.max_rep, n, out.rep, w, "repetition", &after);
        const size_t full = decode_levels(Cursor{after, levels.end}, true, leaf.max_def, n, out.def, w, "definition", &after);
        values = Cursor{after, levels.end};
        decode_values(values, h.encoding, leaf, full, have_dict ? &dict : nullptr, out.values, w);
      } else {
        decode_levels(Cursor{levels.p, levels.p + h.rep_bytes}, false, leaf.max_rep, n, out.rep, w, "repetition", &after);
        const size_t full = decode_levels(Cursor{levels.p + h.rep_bytes, levels.end}, false, leaf.max_def, n, out.def, w, "definition", &after);
        values = Cursor{reinterpret_cast<const uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
        decode_values(values, h.encoding, leaf, full, have_dict ? &dict : nullptr, out.values, w);
      }
      out.entries += n;
    }
  }

  std::string page_body(int codec, Cursor body, size_t size, const Where& w) {
    try {
      return decompress(codec, body.p, body.left(), size);
    } catch (const Error& e) {
      w.fail(e.what());
    }
  }

  json value_json(const Leaf& l, const Values& v, size_t i, const Where& w) const {
    switch (l.as) {
      case As::Bool: return v.ints[i] != 0;
      case As::Real: return v.reals[i];
      case As::Signed: return v.ints[i];
      case As::Unsigned32: return static_cast<uint32_t>(v.ints[i]);
      case As::Unsigned64: return static_cast<uint64_t>(v.ints[i]);
      case As::Decimal: {
        long double x = 0;
        if (l.type == kInt32 || l.type == kInt64) {
          x = static_cast<long double>(v.ints[i]);
        } else {  // big-endian two's complement
          const auto b = v.at(i);
          for (unsigned char c : b) x = x * 256 + c;
          if (!b.empty() && (static_cast<unsigned char>(b[0]) & 0x80)) x -= std::pow(2.0L, 8.0L * b.size());
        }
        return static_cast<double>(x / std::pow(10.0L, l.scale));
      }
      case As::String: {
        const auto s = v.at(i);
        std::string str(s);
        size_t bad = 0;
        if (!utf8_valid(str, &bad)) w.fail("value " + std::to_string(i + 1) + " is not valid UTF-8 text (byte " + std::to_string(bad) + ")");
        return json(std::move(str));
      }
    }
    return nullptr;
  }
};

ParquetReader::ParquetReader(const std::string& path) : impl_(new Impl) {
  impl_->path = path;
  try {
    impl_->open();
  } catch (...) {
    if (impl_->f) std::fclose(impl_->f);
    impl_->f = nullptr;
    throw;
  }
}

ParquetReader::~ParquetReader() {
  if (impl_ && impl_->f) std::fclose(impl_->f);
}

int64_t ParquetReader::num_rows() const { return impl_->meta.num_rows; }
size_t ParquetReader::num_row_groups() const { return impl_->meta.row_groups.size(); }
std::vector<std::string> ParquetReader::columns() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->leaves) out.push_back(l.name);
  return out;
}

namespace {
// A null field is left out, as a JSON row would leave it out (a Parquet schema has every column in
// every row); nulls inside lists stay, since they hold a place.
void drop_nulls(json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      if (it->is_null()) it = j.erase(it);
      else drop_nulls(*it++);
    }
  } else if (j.is_array()) {
    for (auto& x : j) drop_nulls(x);
  }
}
}  // namespace

bool ParquetReader::read_row_group(size_t g, const std::function<bool(json&)>& on_row) {
  Impl& m = *impl_;
  if (g >= m.meta.row_groups.size()) throw Error(m.path + ": no row group " + std::to_string(g + 1));
  const size_t nleaves = m.leaves.size();
  std::vector<ColumnData> cols(nleaves);
  for (size_t c = 0; c < nleaves; ++c) m.read_chunk(g, c, cols[c]);
  const int64_t rows = m.meta.row_groups[g].num_rows;
  std::vector<size_t> at(nleaves, 0), val(nleaves, 0);
  std::vector<std::vector<int64_t>> idx(nleaves);
  for (size_t c = 0; c < nleaves; ++c) idx[c].assign(static_cast<size_t>(m.list_slots[c]), 0);
  for (int64_t r = 0; r < rows; ++r) {
    json row = json::object();
    for (size_t c = 0; c < nleaves; ++c) {
      const Leaf& leaf = m.leaves[c];
      const Where w{&m.path, &leaf.name, g};
      ColumnData& col = cols[c];
      if (at[c] >= col.entries) w.fail("the column ends at row " + std::to_string(r + 1) + " of the row group's " + std::to_string(rows));
      if (!col.rep.empty() && col.rep[at[c]] != 0) w.fail("a row starts with repetition level " + std::to_string(col.rep[at[c]]));
      const auto& steps = m.paths[c];
      bool first = true;
      while (at[c] < col.entries && (first || (!col.rep.empty() && col.rep[at[c]] != 0))) {
        first = false;
        const int rl = col.rep.empty() ? 0 : col.rep[at[c]];
        const int dl = col.def.empty() ? leaf.max_def : col.def[at[c]];
        ++at[c];
        json* slot = &row;
        for (size_t s = 0; s < steps.size(); ++s) {
          const Shape& sh = m.shapes[steps[s].shape];
          if (s > 0 && dl < sh.null_def) break;  // null here (slot stays null)
          if (sh.kind == Shape::Struct) {
            if (!slot->is_object()) *slot = json::object();
            slot = &(*slot)[*steps[s].key];
          } else if (sh.kind == Shape::List) {
            if (!slot->is_array()) *slot = json::array();
            if (dl < sh.elem_def) break;  // an empty list
            int64_t& i = idx[c][static_cast<size_t>(steps[s].list_slot)];
            i = rl < sh.rep ? 0 : rl == sh.rep ? i + 1 : i;
            if (static_cast<size_t>(i) > slot->size()) w.fail("repetition levels skip a list element");
            if (static_cast<size_t>(i) == slot->size()) slot->push_back(nullptr);
            slot = &(*slot)[static_cast<size_t>(i)];
          } else {
            if (val[c] >= col.values.size(leaf.type)) w.fail("more non-null levels than values");
            *slot = m.value_json(leaf, col.values, val[c]++, w);
          }
        }
      }
    }
    drop_nulls(row);
    if (!on_row(row)) return false;
  }
  for (size_t c = 0; c < nleaves; ++c)
    if (at[c] != cols[c].entries || val[c] != cols[c].values.size(m.leaves[c].type))
      Where{&m.path, &m.leaves[c].name, g}.fail("the column holds more values than the row group's " + std::to_string(rows) + " rows");
  return true;
}

bool ParquetReader::read_all(const std::function<bool(json&)>& on_row) {
  for (size_t g = 0; g < num_row_groups(); ++g)
    if (!read_row_group(g, on_row)) return false;
  return true;
}

}  // namespace hone
