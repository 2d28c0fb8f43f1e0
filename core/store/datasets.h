// Datasets in the workspace: import (one transaction), paged reads, edits with undo through stored
// revisions, search, preference labels, a seeded train/validation split, statistics and export to
// the JSONL forms TRL and Axolotl read.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/records.h"
#include "store/workspace.h"

namespace hone {

class Tokenizer;

struct DatasetInfo {
  int64_t id = 0;
  std::string name, kind, format, source, created_at;
  int64_t rows = 0;
};

struct DatasetRow {
  int64_t id = 0, position = 0;
  std::string data, source;
  std::string label;  // preference label ("" when none)
};

struct ImportReport {
  int64_t dataset_id = 0;  // 0 when nothing was imported
  int64_t imported = 0, rows_read = 0, errors = 0, duplicates = 0;
  std::string kind, format;
  std::vector<Problem> problems;
};

struct ImportOptions {
  ReadOptions read;
  std::optional<DatasetKind> kind;  // expected kind; a mismatch is an error
  bool skip_invalid = false;        // import the valid rows and report the rest
  // Called while rows are stored (done, total); false cancels and rolls the import back (throws).
  std::function<bool(int64_t done, int64_t total)> progress;
};

// Reads, validates and imports. Without skip_invalid any error imports nothing (the report lists
// the problems and dataset_id stays 0). Throws only for an unreadable path or a taken name.
ImportReport import_dataset(Workspace& ws, const std::string& path, const std::string& name, const ImportOptions& opt);

// An empty dataset to add rows to (the Playground's saved conversations); throws when the name is taken.
int64_t create_dataset(Workspace& ws, const std::string& name, DatasetKind kind, const std::string& source);

std::vector<DatasetInfo> list_datasets(Workspace& ws);
// By numeric id or by name; throws naming what was asked for when there is no such dataset.
DatasetInfo find_dataset(Workspace& ws, const std::string& id_or_name);
void rename_dataset(Workspace& ws, int64_t id, const std::string& name);
void delete_dataset(Workspace& ws, int64_t id);
// In one transaction: dataset `replacement` takes old_id's name and old_id is deleted, so a reader
// (a run starting meanwhile, another process) sees the old rows or the new ones, never neither.
void replace_dataset(Workspace& ws, int64_t old_id, int64_t replacement);

// Rows with position in [begin, end), in order. Positions are dense 0..rows-1.
std::vector<DatasetRow> read_rows(Workspace& ws, int64_t dataset, int64_t begin, int64_t end);
// Rows whose JSON contains `needle` (case-insensitive for ASCII), from position `from`, at most `limit`.
std::vector<DatasetRow> search_rows(Workspace& ws, int64_t dataset, const std::string& needle, int64_t from, int64_t limit);

// Edits validate the row for the dataset's kind (throwing with the problems) and record a revision.
int64_t insert_row(Workspace& ws, int64_t dataset, int64_t position, const std::string& data, const std::string& author);
void update_row(Workspace& ws, int64_t row_id, const std::string& data, const std::string& author);
void delete_row(Workspace& ws, int64_t row_id, const std::string& author);
// Reverts the newest revision of the dataset; false when there is none left.
bool undo(Workspace& ws, int64_t dataset);

// One recorded edit (what undo would revert). `before`/`after` are "" where the op has none.
struct Revision {
  int64_t id = 0, row_id = 0, position = 0;
  std::string op;  // insert | update | delete
  std::string before, after;
};
// The newest revision of the dataset, or id 0 when there is none. A caller keeps the revisions it
// undid to redo them: re-applying one is an ordinary edit (recorded again, undoable again).
Revision last_revision(Workspace& ws, int64_t dataset);
void redo_revision(Workspace& ws, int64_t dataset, const Revision& r, const std::string& author);

// `author`'s verdict on a row (one per annotator; the row's label is the newest). Preference:
// chosen (the stored chosen answer is better), rejected (the stored rejected one is), tie, drop,
// skip. Candidates (store/labels.h): a, b, tie, both_bad, skip, ranked (with `ranking`, a JSON list
// of response indices, best first). An empty label clears it; `note` is the labeller's comment.
void set_label(Workspace& ws, int64_t row_id, const std::string& label, const std::string& author,
               const std::string& note = "", const std::string& ranking = "");

// Row ids of the validation part: each row falls there with probability `fraction`, decided by a
// hash of (seed, row id), so the split survives edits elsewhere in the dataset.
bool in_validation(int64_t row_id, uint64_t seed, double fraction);

struct DatasetStats {
  int64_t rows = 0, chars = 0, labelled = 0;
  int64_t duplicates = 0;  // rows whose JSON equals an earlier row's
  std::vector<int64_t> token_lengths;               // per row, sorted (empty without a tokenizer)
  std::vector<std::pair<int64_t, int64_t>> longest;  // (row position, chars), longest first
};
DatasetStats dataset_stats(Workspace& ws, int64_t dataset, const Tokenizer* tok, int longest = 5);

struct StatsOptions {
  const Tokenizer* tok = nullptr;
  int longest = 5;
  // With a chat format, token lengths are those of the training sequences, which is what
  // max_seq_len cuts: a chat row rendered with the template; a preference or candidates row as its
  // prompt with its longest answer. Without one, the rows' plain text is counted.
  std::optional<ChatTemplate> format;
  std::function<bool(int64_t done, int64_t total)> progress;  // false cancels (throws)
};
DatasetStats dataset_stats(Workspace& ws, int64_t dataset, const StatsOptions& o);

// Export as JSONL: chat -> {"messages"}, preference -> {"prompt","chosen","rejected"} (labels applied:
// "rejected" swaps the pair, tie, drop and skip are left out), text -> {"text"}. Written atomically.
// With `split`, only rows of that part ("train" or "validation", seed and fraction as above).
// An out_path ending in .parquet writes the same rows as Parquet (messages as
// list<struct<role, content>>, strings, lists; data/parquet.h), which datasets' load_dataset reads.
struct ExportOptions {
  std::string split;  // "" = all rows
  uint64_t seed = 0;
  double fraction = 0.1;
  std::string parquet_codec = "snappy";  // snappy, zstd, gzip or none
};
int64_t export_dataset(Workspace& ws, int64_t dataset, const std::string& out_path, const ExportOptions& opt = {});

// Run configs may name workspace datasets as "dataset:NAME" (or "dataset:ID"). Each such entry is
// exported to <dir>/<name>.jsonl and replaced by that path, so a run keeps the exact data it
// trained on even when the dataset is edited later. A candidates dataset becomes the preference
// pairs its labels choose (store/labels.h). Other entries are returned unchanged.
std::vector<std::string> materialize_datasets(Workspace& ws, const std::vector<std::string>& refs, const std::string& dir);

}  // namespace hone
