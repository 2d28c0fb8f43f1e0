// Parquet's on-disk vocabulary: the Thrift compact protocol (read and write), the footer and page
// header structs Hone uses, the enums of the format spec, and the page codecs.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hone::parquet {

// Numbers as the format spec (parquet.thrift) assigns them.
enum Type { kBoolean = 0, kInt32 = 1, kInt64 = 2, kInt96 = 3, kFloat = 4, kDouble = 5, kByteArray = 6, kFixedLenByteArray = 7 };
enum Repetition { kRequired = 0, kOptional = 1, kRepeated = 2 };
enum Converted {
  kUtf8 = 0, kMap = 1, kMapKeyValue = 2, kList = 3, kEnum = 4, kDecimal = 5, kUint8 = 11, kUint16 = 12, kUint32 = 13,
  kUint64 = 14, kInt8 = 15, kInt16 = 16, kInt32c = 17, kInt64c = 18, kJson = 19
};
enum Encoding {
  kPlain = 0, kPlainDictionary = 2, kRle = 3, kBitPacked = 4, kDeltaBinaryPacked = 5, kDeltaLengthByteArray = 6,
  kDeltaByteArray = 7, kRleDictionary = 8, kByteStreamSplit = 9
};
enum Codec { kUncompressed = 0, kSnappy = 1, kGzip = 2, kZstd = 6 };
enum PageType { kDataPage = 0, kIndexPage = 1, kDictionaryPage = 2, kDataPageV2 = 3 };

const char* codec_name(int codec);
const char* encoding_name(int encoding);

struct SchemaElement {
  int type = -1;  // -1: a group
  int type_length = 0;
  int repetition = kRequired;
  std::string name;
  int num_children = 0;
  int converted = -1;
  int scale = 0, precision = 0;
  // From the newer LogicalType union: what matters for turning values into JSON.
  bool logical_string = false, logical_list = false, logical_map = false, logical_decimal = false;
  int int_bits = 0;  // logical INTEGER: 8..64, with int_signed
  bool int_signed = true;
};

struct ColumnMeta {
  int type = -1;
  std::vector<std::string> path;
  int codec = 0;
  int64_t num_values = 0, total_uncompressed = 0, total_compressed = 0;
  int64_t data_page_offset = -1, dictionary_page_offset = -1;
};

struct RowGroupMeta {
  std::vector<ColumnMeta> columns;
  int64_t num_rows = 0;
};

struct FileMeta {
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroupMeta> row_groups;
};

struct PageHeader {
  int type = -1;
  int64_t uncompressed_size = -1, compressed_size = -1;
  int64_t num_values = -1;
  int encoding = -1;
  int def_encoding = kRle, rep_encoding = kRle;
  // Data page v2: levels sit uncompressed before the values, with their byte lengths here.
  int64_t num_nulls = 0, num_rows = 0, def_bytes = 0, rep_bytes = 0;
  bool v2_compressed = true;
};

// Parsers throw hone::Error with a plain message ("thrift: ..."); the caller adds file and column.
FileMeta parse_file_meta(const uint8_t* p, size_t n);
// Parses a page header at p; *used receives its length in bytes.
PageHeader parse_page_header(const uint8_t* p, size_t n, size_t* used);

// Thrift compact protocol writer, just what the Parquet writer needs.
class ThriftWriter {
 public:
  std::string out;
  void field(int id, int type);  // field header; types as the compact protocol numbers them
  void i32(int id, int32_t v);
  void i64(int id, int64_t v);
  void str(int id, const std::string& s);
  void boolean(int id, bool v);
  void begin_struct(int id);
  void end_struct();  // stop byte, and back to the enclosing struct's field ids
  void list_header(int id, int elem_type, size_t n);
  void varint(uint64_t v);
  void raw_string(const std::string& s);
  void begin_element_struct();  // a struct inside a list
 private:
  std::vector<int> last_{0};
};
constexpr int kTI32 = 5, kTI64 = 6, kTBinary = 8, kTList = 9, kTStruct = 12;

// Decompresses a page body of `codec` into exactly `size` bytes; throws with a plain message when
// the data is damaged or does not make exactly that many bytes. The output grows only as bytes
// really come out, so a header lying about `size` cannot make it allocate that much up front.
std::string decompress(int codec, const uint8_t* p, size_t n, size_t size);
std::string compress(int codec, const std::string& in);

}  // namespace hone::parquet
