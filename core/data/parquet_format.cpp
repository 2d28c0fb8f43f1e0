// Thrift compact protocol and Parquet footer/page headers, written from the format specs
// (thrift's compact protocol description, apache/parquet-format's parquet.thrift). Every length
// and count is checked against the bytes that are really there: the footer is untrusted input.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/parquet_format.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <functional>

#include "common/error.h"

namespace hone::parquet {
namespace {

// Compact protocol type numbers.
enum { kStop = 0, kTrue = 1, kFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6, kDouble = 7, kBinary = 8,
       kListT = 9, kSet = 10, kMapT = 11, kStruct = 12 };

constexpr int kMaxDepth = 32;  // nesting deeper than any real footer: refused, not recursed into

class ThriftReader {
 public:
  ThriftReader(const uint8_t* p, size_t n) : p_(p), end_(p + n), begin_(p) {}
  size_t used() const { return static_cast<size_t>(p_ - begin_); }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("thrift: " + what + " at byte " + std::to_string(used()));
  }
  uint8_t byte() {
    if (p_ >= end_) fail("unexpected end of data");
    return *p_++;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  int64_t zigzag() {
    const uint64_t v = varint();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  int32_t i32() {
    const int64_t v = zigzag();
    if (v < INT32_MIN || v > INT32_MAX) fail("i32 out of range");
    return static_cast<int32_t>(v);
  }
  std::string binary() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("string of " + std::to_string(n) + " bytes runs past the end");
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // List header: element type and count (each element takes at least one byte, so a count above
  // the bytes left is a lie caught before any loop or allocation trusts it).
  size_t list(int* elem) {
    const uint8_t h = byte();
    uint64_t n = h >> 4;
    if (n == 15) n = varint();
    *elem = h & 0x0f;
    if (n > static_cast<uint64_t>(end_ - p_)) fail("list of " + std::to_string(n) + " elements runs past the end");
    return static_cast<size_t>(n);
  }
  bool boolean(int type) { return type == kTrue; }  // a bool field's value is its type

  // Walks a struct: `on(id, type)` reads the fields it knows and returns false for the others,
  // which are skipped.
  void read_struct(const std::function<bool(int id, int type)>& on, int depth = 0) {
    if (depth > kMaxDepth) fail("structs nested too deep");
    int last = 0;
    for (;;) {
      const uint8_t h = byte();
      const int type = h & 0x0f;
      if (type == kStop) return;
      const int delta = h >> 4;
      const int id = delta ? last + delta : static_cast<int>(zigzag());
      last = id;
      if (!on(id, type)) skip(type, depth + 1);
    }
  }
  void skip(int type, int depth) {
    if (depth > kMaxDepth) fail("values nested too deep");
    switch (type) {
      case kTrue: case kFalse: return;
      case kByte: byte(); return;
      case kI16: case kI32: case kI64: varint(); return;
      case kDouble: need(8); p_ += 8; return;
      case kBinary: binary(); return;
      case kListT: case kSet: {
        int elem = 0;
        const size_t n = list(&elem);
        for (size_t i = 0; i < n; ++i) elem == kTrue || elem == kFalse ? (void)byte() : skip(elem, depth + 1);
        return;
      }
      case kMapT: {
        const uint64_t n = varint();
        if (n == 0) return;
        if (n > static_cast<uint64_t>(end_ - p_)) fail("map runs past the end");
        const uint8_t kv = byte();
        for (uint64_t i = 0; i < n; ++i) {
          skip(kv >> 4, depth + 1);
          skip(kv & 0x0f, depth + 1);
        }
        return;
      }
      case kStruct: read_struct([](int, int) { return false; }, depth); return;
      default: fail("unknown field type " + std::to_string(type));
    }
  }
  void expect(int type, int want, const char* what) {
    if (type != want && !(want == kTrue && type == kFalse)) fail(std::string(what) + " has the wrong thrift type");
  }

 private:
  void need(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail("unexpected end of data");
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
};

// Reads a list<T> field, one element at a time through `each`.
void read_list(ThriftReader& r, int type, int want_elem, const char* what, const std::function<void()>& each) {
  r.expect(type, kListT, what);
  int elem = 0;
  const size_t n = r.list(&elem);
  if (n && elem != want_elem) r.fail(std::string(what) + " holds the wrong element type");
  for (size_t i = 0; i < n; ++i) each();
}

void parse_logical(ThriftReader& r, SchemaElement& s) {
  r.read_struct([&](int id, int type) {
    if (type != kStruct) return false;
    if (id == 1) s.logical_string = true;
    else if (id == 2) s.logical_map = true;
    else if (id == 3) s.logical_list = true;
    else if (id == 4 || id == 12) s.logical_string = true;  // ENUM and JSON are strings too
    else if (id == 5) s.logical_decimal = true;
    if (id == 5) {
      r.read_struct([&](int f, int t) {
        if (f == 1 && t == kI32) s.scale = r.i32();
        else if (f == 2 && t == kI32) s.precision = r.i32();
        else return false;
        return true;
      });
      return true;
    }
    if (id == 10) {  // INTEGER {1: i8 bitWidth, 2: bool isSigned}
      r.read_struct([&](int f, int t) {
        if (f == 1 && t == kByte) s.int_bits = static_cast<int8_t>(r.byte());
        else if (f == 2 && (t == kTrue || t == kFalse)) s.int_signed = r.boolean(t);
        else return false;
        return true;
      });
      return true;
    }
    return false;  // an empty struct (or one we ignore) is skipped
  });
}

SchemaElement parse_schema_element(ThriftReader& r) {
  SchemaElement s;
  r.read_struct([&](int id, int type) {
    switch (id) {
      case 1: r.expect(type, kI32, "SchemaElement.type"); s.type = r.i32(); return true;
      case 2: r.expect(type, kI32, "SchemaElement.type_length"); s.type_length = r.i32(); return true;
      case 3: r.expect(type, kI32, "SchemaElement.repetition_type"); s.repetition = r.i32(); return true;
      case 4: r.expect(type, kBinary, "SchemaElement.name"); s.name = r.binary(); return true;
      case 5: r.expect(type, kI32, "SchemaElement.num_children"); s.num_children = r.i32(); return true;
      case 6: r.expect(type, kI32, "SchemaElement.converted_type"); s.converted = r.i32(); return true;
      case 7: r.expect(type, kI32, "SchemaElement.scale"); s.scale = r.i32(); return true;
      case 8: r.expect(type, kI32, "SchemaElement.precision"); s.precision = r.i32(); return true;
      case 10: r.expect(type, kStruct, "SchemaElement.logicalType"); parse_logical(r, s); return true;
      default: return false;
    }
  });
  if (s.type < -1 || s.type > kFixedLenByteArray) r.fail("schema element \"" + s.name + "\" has unknown type " + std::to_string(s.type));
  if (s.repetition < 0 || s.repetition > kRepeated) r.fail("schema element \"" + s.name + "\" has unknown repetition");
  if (s.num_children < 0) r.fail("schema element \"" + s.name + "\" has a negative child count");
  return s;
}

ColumnMeta parse_column_meta(ThriftReader& r) {
  ColumnMeta c;
  r.read_struct([&](int id, int type) {
    switch (id) {
      case 1: r.expect(type, kI32, "ColumnMetaData.type"); c.type = r.i32(); return true;
      case 3:
        read_list(r, type, kBinary, "ColumnMetaData.path_in_schema", [&] { c.path.push_back(r.binary()); });
        return true;
      case 4: r.expect(type, kI32, "ColumnMetaData.codec"); c.codec = r.i32(); return true;
      case 5: r.expect(type, kI64, "ColumnMetaData.num_values"); c.num_values = r.zigzag(); return true;
      case 6: r.expect(type, kI64, "ColumnMetaData.total_uncompressed_size"); c.total_uncompressed = r.zigzag(); return true;
      case 7: r.expect(type, kI64, "ColumnMetaData.total_compressed_size"); c.total_compressed = r.zigzag(); return true;
      case 9: r.expect(type, kI64, "ColumnMetaData.data_page_offset"); c.data_page_offset = r.zigzag(); return true;
      case 11: r.expect(type, kI64, "ColumnMetaData.dictionary_page_offset"); c.dictionary_page_offset = r.zigzag(); return true;
      default: return false;
    }
  });
  return c;
}

RowGroupMeta parse_row_group(ThriftReader& r) {
  RowGroupMeta g;
  r.read_struct([&](int id, int type) {
    if (id == 1) {
      read_list(r, type, kStruct, "RowGroup.columns", [&] {
        ColumnMeta c;
        bool have = false;
        r.read_struct([&](int f, int t) {
          if (f == 1 && t == kBinary) r.fail("column chunks in other files (file_path) are not supported");
          if (f != 3) return false;
          r.expect(t, kStruct, "ColumnChunk.meta_data");
          c = parse_column_meta(r);
          have = true;
          return true;
        });
        if (!have) r.fail("a column chunk has no metadata");
        g.columns.push_back(std::move(c));
      });
      return true;
    }
    if (id == 3) {
      r.expect(type, kI64, "RowGroup.num_rows");
      g.num_rows = r.zigzag();
      return true;
    }
    return false;
  });
  return g;
}

}  // namespace

const char* codec_name(int codec) {
  switch (codec) {
    case kUncompressed: return "UNCOMPRESSED";
    case kSnappy: return "SNAPPY";
    case kGzip: return "GZIP";
    case 3: return "LZO";
    case 4: return "BROTLI";
    case 5: return "LZ4";
    case kZstd: return "ZSTD";
    case 7: return "LZ4_RAW";
  }
  return "unknown";
}

const char* encoding_name(int e) {
  switch (e) {
    case kPlain: return "PLAIN";
    case kPlainDictionary: return "PLAIN_DICTIONARY";
    case kRle: return "RLE";
    case kBitPacked: return "BIT_PACKED";
    case kDeltaBinaryPacked: return "DELTA_BINARY_PACKED";
    case kDeltaLengthByteArray: return "DELTA_LENGTH_BYTE_ARRAY";
    case kDeltaByteArray: return "DELTA_BYTE_ARRAY";
    case kRleDictionary: return "RLE_DICTIONARY";
    case kByteStreamSplit: return "BYTE_STREAM_SPLIT";
  }
  return "unknown";
}

FileMeta parse_file_meta(const uint8_t* p, size_t n) {
  ThriftReader r(p, n);
  FileMeta m;
  r.read_struct([&](int id, int type) {
    switch (id) {
      case 2: read_list(r, type, kStruct, "FileMetaData.schema", [&] { m.schema.push_back(parse_schema_element(r)); }); return true;
      case 3: r.expect(type, kI64, "FileMetaData.num_rows"); m.num_rows = r.zigzag(); return true;
      case 4: read_list(r, type, kStruct, "FileMetaData.row_groups", [&] { m.row_groups.push_back(parse_row_group(r)); }); return true;
      default: return false;
    }
  });
  return m;
}

PageHeader parse_page_header(const uint8_t* p, size_t n, size_t* used) {
  ThriftReader r(p, n);
  PageHeader h;
  r.read_struct([&](int id, int type) {
    switch (id) {
      case 1: r.expect(type, kI32, "PageHeader.type"); h.type = r.i32(); return true;
      case 2: r.expect(type, kI32, "PageHeader.uncompressed_page_size"); h.uncompressed_size = r.i32(); return true;
      case 3: r.expect(type, kI32, "PageHeader.compressed_page_size"); h.compressed_size = r.i32(); return true;
      case 5:    // DataPageHeader {1: num_values, 2: encoding, 3: def encoding, 4: rep encoding}
      case 7:    // DictionaryPageHeader {1: num_values, 2: encoding} (its 3 is a bool, is_sorted)
        r.expect(type, kStruct, id == 5 ? "PageHeader.data_page_header" : "PageHeader.dictionary_page_header");
        r.read_struct([&](int f, int t) {
          if (t != kI32 || f < 1 || f > (id == 5 ? 4 : 2)) return false;
          const int v = r.i32();
          if (f == 1) h.num_values = v;
          else if (f == 2) h.encoding = v;
          else if (f == 3) h.def_encoding = v;
          else h.rep_encoding = v;
          return true;
        });
        return true;
      case 8:  // DataPageHeaderV2
        r.expect(type, kStruct, "PageHeader.data_page_header_v2");
        r.read_struct([&](int f, int t) {
          if (f == 7 && (t == kTrue || t == kFalse)) {
            h.v2_compressed = r.boolean(t);
            return true;
          }
          if (t != kI32) return false;
          const int64_t v = r.i32();
          if (f == 1) h.num_values = v;
          else if (f == 2) h.num_nulls = v;
          else if (f == 3) h.num_rows = v;
          else if (f == 4) h.encoding = static_cast<int>(v);
          else if (f == 5) h.def_bytes = v;
          else if (f == 6) h.rep_bytes = v;
          else return false;
          return true;
        });
        return true;
      default: return false;
    }
  });
  *used = r.used();
  return h;
}

// --- writer ---

void ThriftWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void ThriftWriter::field(int id, int type) {
  const int delta = id - last_.back();
  if (delta > 0 && delta <= 15) {
    out += static_cast<char>((delta << 4) | type);
  } else {
    out += static_cast<char>(type);
    varint(static_cast<uint64_t>((static_cast<int64_t>(id) << 1) ^ (static_cast<int64_t>(id) >> 63)));
  }
  last_.back() = id;
}

void ThriftWriter::i32(int id, int32_t v) {
  field(id, kI32);
  varint(static_cast<uint32_t>((v << 1) ^ (v >> 31)));
}
void ThriftWriter::i64(int id, int64_t v) {
  field(id, kI64);
  varint(static_cast<uint64_t>((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)));
}
void ThriftWriter::raw_string(const std::string& s) {
  varint(s.size());
  out += s;
}
void ThriftWriter::str(int id, const std::string& s) {
  field(id, kBinary);
  raw_string(s);
}
void ThriftWriter::boolean(int id, bool v) { field(id, v ? kTrue : kFalse); }
void ThriftWriter::begin_struct(int id) {
  field(id, kStruct);
  last_.push_back(0);
}
void ThriftWriter::begin_element_struct() { last_.push_back(0); }
void ThriftWriter::end_struct() {
  out += static_cast<char>(kStop);
  if (last_.size() > 1) last_.pop_back();
}
void ThriftWriter::list_header(int id, int elem_type, size_t n) {
  field(id, kListT);
  if (n < 15) {
    out += static_cast<char>((n << 4) | elem_type);
  } else {
    out += static_cast<char>(0xf0 | elem_type);
    varint(n);
  }
}

// --- codecs ---

std::string decompress(int codec, const uint8_t* p, size_t n, size_t size) {
  std::string out;
  if (codec == kUncompressed) {
    if (n != size) throw Error("an uncompressed page holds " + std::to_string(n) + " bytes, its header says " + std::to_string(size));
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  if (codec == kSnappy) {
    size_t len = 0;
    if (snappy_uncompressed_length(reinterpret_cast<const char*>(p), n, &len) != SNAPPY_OK || len != size ||
        snappy_validate_compressed_buffer(reinterpret_cast<const char*>(p), n) != SNAPPY_OK)
      throw Error("damaged snappy data (or not the " + std::to_string(size) + " bytes its header says)");
    out.resize(size);
    if (snappy_uncompress(reinterpret_cast<const char*>(p), n, out.data(), &len) != SNAPPY_OK || len != size)
      throw Error("damaged snappy data");
    return out;
  }
  // Streaming codecs: the output grows as bytes come out, up to the size the header promises.
  auto grow = [&](size_t have) {
    const size_t next = std::min(size, std::max<size_t>(have * 2, std::min<size_t>(size, 1 << 16)));
    out.resize(next);
  };
  if (codec == kGzip) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 32) != Z_OK) throw Error("zlib would not start");
    z.next_in = const_cast<Bytef*>(p);
    z.avail_in = static_cast<uInt>(n);
    size_t have = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      if (have == out.size()) {
        if (out.size() == size) break;
        grow(have);
      }
      z.next_out = reinterpret_cast<Bytef*>(out.data() + have);
      z.avail_out = static_cast<uInt>(out.size() - have);
      rc = inflate(&z, Z_NO_FLUSH);
      have = out.size() - z.avail_out;
      if (rc != Z_OK && rc != Z_STREAM_END) break;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END || have != size)
      throw Error("damaged gzip data (or not the " + std::to_string(size) + " bytes its header says)");
    return out;
  }
  if (codec == kZstd) {
    ZSTD_DStream* z = ZSTD_createDStream();
    ZSTD_initDStream(z);
    ZSTD_inBuffer in{p, n, 0};
    size_t have = 0, rc = 1;
    for (;;) {
      if (have == out.size() && out.size() < size) grow(have);
      ZSTD_outBuffer o{out.data(), out.size(), have};
      const size_t before = in.pos;
      rc = ZSTD_decompressStream(z, &o, &in);
      const bool moved = o.pos != have || in.pos != before;
      have = o.pos;
      if (ZSTD_isError(rc) || (rc == 0 && in.pos == in.size) || !moved) break;
    }
    ZSTD_freeDStream(z);
    if (ZSTD_isError(rc) || rc != 0 || in.pos != in.size || have != size)
      throw Error("damaged zstd data (or not the " + std::to_string(size) + " bytes its header says)");
    return out;
  }
  throw Error(std::string("compression ") + codec_name(codec) + " is not supported (UNCOMPRESSED, SNAPPY, GZIP, ZSTD are)");
}

std::string compress(int codec, const std::string& in) {
  std::string out;
  if (codec == kUncompressed) return in;
  if (codec == kSnappy) {
    size_t len = snappy_max_compressed_length(in.size());
    out.resize(len);
    if (snappy_compress(in.data(), in.size(), out.data(), &len) != SNAPPY_OK) throw Error("snappy compression failed");
    out.resize(len);
    return out;
  }
  if (codec == kZstd) {
    out.resize(ZSTD_compressBound(in.size()));
    const size_t len = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(len)) throw Error(std::string("zstd compression failed: ") + ZSTD_getErrorName(len));
    out.resize(len);
    return out;
  }
  if (codec == kGzip) {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw Error("zlib would not start");
    out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw Error("gzip compression failed");
    return out;
  }
  throw Error(std::string("cannot write compression ") + codec_name(codec));
}

}  // namespace hone::parquet
