// Dataset storage. Rows keep dense positions so that a page is a range scan on
// (dataset_id, position); inserting or deleting in the middle shifts the positions after it.
// Every edit writes a revision (before/after JSON) so that undo can invert it.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/datasets.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/error.h"
#include "common/files.h"
#include "data/pairs.h"
#include "data/parquet.h"
#include "store/labels.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hone {
namespace {

using json = nlohmann::json;

DatasetRow row_from(Stmt& s) {
  DatasetRow r;
  r.id = s.i64(0);
  r.position = s.i64(1);
  r.data = s.text(2);
  r.source = s.text(3);
  r.label = s.is_null(4) ? "" : s.text(4);
  return r;
}

// A row's label is its newest verdict (one per annotator since schema version 5).
const char* kRowCols =
    "SELECT r.id, r.position, r.data, r.source, "
    "(SELECT label FROM labels WHERE row_id = r.id ORDER BY at DESC, rowid DESC LIMIT 1) FROM rows r ";

DatasetKind kind_of_dataset(Workspace& ws, int64_t dataset) {
  Stmt s = ws.db().prepare("SELECT kind FROM datasets WHERE id = ?");
  s.bind(1, dataset);
  if (!s.step()) throw Error("no dataset with id " + std::to_string(dataset));
  DatasetKind k = DatasetKind::Chat;
  dataset_kind_from_name(s.text(0), &k);
  return k;
}

std::string checked(Workspace& ws, int64_t dataset, const std::string& data) {
  std::string canonical;
  auto problems = validate_record(kind_of_dataset(ws, dataset), data, &canonical);
  if (!problems.empty()) {
    std::string msg = "invalid row for this dataset";
    for (const auto& p : problems) msg += "; " + (p.field.empty() ? "" : p.field + ": ") + p.message;
    throw Error(msg);
  }
  return canonical;
}

struct RowAt {
  int64_t dataset = 0, position = 0;
  std::string data;
};

RowAt row_at(Workspace& ws, int64_t row_id) {
  Stmt s = ws.db().prepare("SELECT dataset_id, position, data FROM rows WHERE id = ?");
  s.bind(1, row_id);
  if (!s.step()) throw Error("no row with id " + std::to_string(row_id));
  return {s.i64(0), s.i64(1), s.text(2)};
}

void shift(Workspace& ws, int64_t dataset, int64_t from, int64_t by) {
  Stmt s = ws.db().prepare("UPDATE rows SET position = position + ? WHERE dataset_id = ? AND position >= ?");
  s.bind(1, by).bind(2, dataset).bind(3, from).run();
}

void revision(Workspace& ws, int64_t dataset, int64_t row_id, const char* op, int64_t pos, const std::string* before,
              const std::string* after, const std::string& author) {
  Stmt s = ws.db().prepare(
      "INSERT INTO revisions (dataset_id, row_id, op, position, before, after, author, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, dataset).bind(2, row_id).bind(3, op).bind(4, pos);
  before ? s.bind(5, *before) : s.bind_null(5);
  after ? s.bind(6, *after) : s.bind_null(6);
  s.bind(7, author).bind(8, utc_now()).run();
}

// Applied by the public edit functions and, inverted, by undo.
void do_insert(Workspace& ws, int64_t dataset, int64_t position, int64_t row_id, const std::string& data,
               const std::string& source) {
  shift(ws, dataset, position, 1);
  Stmt s = ws.db().prepare("INSERT INTO rows (id, dataset_id, position, data, source) VALUES (?, ?, ?, ?, ?)");
  row_id > 0 ? s.bind(1, row_id) : s.bind_null(1);
  s.bind(2, dataset).bind(3, position).bind(4, data).bind(5, source).run();
}

void do_delete(Workspace& ws, int64_t dataset, int64_t row_id, int64_t position) {
  Stmt s = ws.db().prepare("DELETE FROM rows WHERE id = ?");
  s.bind(1, row_id).run();
  shift(ws, dataset, position + 1, -1);
}

int64_t row_count(Workspace& ws, int64_t dataset) {
  Stmt s = ws.db().prepare("SELECT COUNT(*) FROM rows WHERE dataset_id = ?");
  s.bind(1, dataset);
  s.step();
  return s.i64(0);
}

uint64_t mix(uint64_t x) {  // splitmix64 finaliser: a well-spread hash of the row id and seed
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string lower_ascii(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

ImportReport import_dataset(Workspace& ws, const std::string& path, const std::string& name, const ImportOptions& opt) {
  if (name.empty()) throw Error("a dataset needs a name");
  {
    Stmt s = ws.db().prepare("SELECT 1 FROM datasets WHERE name = ?");
    s.bind(1, name);
    if (s.step()) throw Error("a dataset named \"" + name + "\" already exists in " + ws.dir());
  }
  ReadOptions ro = opt.read;
  // Asked for prompts, a text file is read a prompt per line (rather than as one document).
  if (opt.kind == DatasetKind::Prompts && ro.format == ExampleFormat::Auto) ro.format = ExampleFormat::Prompts;
  // Rows are read first into an unnamed spool file (memory stays at about one Parquet row group,
  // never the whole file), then inserted in one transaction. Holding SQLite's write lock only for
  // the inserts matters: a training process records its metrics into the same workspace and waits
  // at most the busy timeout (10 s) for the lock; a 1M-row Parquet file takes ~15 s to read.
  std::unique_ptr<FILE, int (*)(FILE*)> spool(std::tmpfile(), &std::fclose);
  if (!spool) throw Error("import of " + path + ": cannot create a temporary file");
  auto put = [&](const std::string& x) {
    const uint64_t n = x.size();
    if (std::fwrite(&n, sizeof n, 1, spool.get()) != 1 || std::fwrite(x.data(), 1, x.size(), spool.get()) != x.size())
      throw Error("import of " + path + ": cannot write the temporary file (disk full?); nothing was imported");
  };
  int64_t pos = 0;
  ExampleFormat first_format = ExampleFormat::Auto;
  bool wrong_kind = false;
  ReadResult rr = read_dataset_stream(path, ro, [&](Record&& r, ExampleFormat fmt) {
    if (wrong_kind) return;  // keep reading: the report lists every problem
    if (pos == 0) {
      first_format = fmt;
      if (opt.kind && *opt.kind != kind_of(fmt)) {
        wrong_kind = true;
        return;
      }
    }
    put(r.data);
    put(r.source);
    ++pos;
    // The total is not known while reading, so it is given as 0.
    if (opt.progress && pos % 2048 == 0 && !opt.progress(pos, 0)) throw Error("import of " + path + " cancelled; nothing was imported");
  });
  ImportReport rep;
  rep.rows_read = rr.rows_read;
  rep.errors = rr.errors;
  rep.duplicates = rr.duplicates;
  rep.kind = dataset_kind_name(rr.kind);
  rep.format = example_format_name(rr.format);
  rep.problems = std::move(rr.problems);
  if (opt.kind && *opt.kind != rr.kind && rr.format != ExampleFormat::Auto) {
    rep.problems.insert(rep.problems.begin(), {path, "", std::string("rows are ") + dataset_kind_name(rr.kind) +
                                                             " data, not " + dataset_kind_name(*opt.kind), true});
    ++rep.errors;
    return rep;
  }
  if ((rep.errors > 0 && !opt.skip_invalid) || pos == 0) {
    if (pos == 0 && rep.errors == 0) {
      rep.problems.push_back({path, "", "no rows to import", true});
      rep.errors = 1;
    }
    return rep;
  }
  Transaction t(ws.db());
  {  // again under the write lock: another process may have imported this name while we read
    Stmt s = ws.db().prepare("SELECT 1 FROM datasets WHERE name = ?");
    s.bind(1, name);
    if (s.step()) throw Error("a dataset named \"" + name + "\" already exists in " + ws.dir() + " (another process imported it meanwhile)");
  }
  Stmt d = ws.db().prepare("INSERT INTO datasets (name, kind, format, source, created_at) VALUES (?, ?, ?, ?, ?)");
  d.bind(1, name).bind(2, std::string(dataset_kind_name(kind_of(first_format)))).bind(3, std::string(example_format_name(first_format)));
  d.bind(4, path).bind(5, utc_now()).run();
  const int64_t dataset_id = ws.db().last_insert_id();
  Stmt ins = ws.db().prepare("INSERT INTO rows (dataset_id, position, data, source) VALUES (?, ?, ?, ?)");
  std::rewind(spool.get());
  auto get = [&](std::string* x) {
    uint64_t n = 0;
    if (std::fread(&n, sizeof n, 1, spool.get()) != 1 || n > (1ull << 32)) throw Error("import of " + path + ": the temporary file is damaged");
    x->resize(n);
    if (n && std::fread(x->data(), 1, n, spool.get()) != n) throw Error("import of " + path + ": the temporary file is damaged");
  };
  std::string data, source;
  for (int64_t i = 0; i < pos; ++i) {
    get(&data);
    get(&source);
    ins.bind(1, dataset_id).bind(2, i).bind(3, data).bind(4, source);
    ins.run();
    ins.reset();
    // A cancelled import rolls back as a whole (the transaction's destructor): nothing half-imported.
    if (opt.progress && ((i + 1) % 2048 == 0 || i + 1 == pos) && !opt.progress(i + 1, pos))
      throw Error("import of " + path + " cancelled; nothing was imported");
  }
  t.commit();
  rep.dataset_id = dataset_id;
  rep.imported = pos;
  return rep;
}

int64_t create_dataset(Workspace& ws, const std::string& name, DatasetKind kind, const std::string& source) {
  if (name.empty()) throw Error("a dataset needs a name");
  Stmt q = ws.db().prepare("SELECT 1 FROM datasets WHERE name = ?");
  q.bind(1, name);
  if (q.step()) throw Error("a dataset named \"" + name + "\" already exists in " + ws.dir());
  const char* format = kind == DatasetKind::Chat         ? "messages"
                       : kind == DatasetKind::Preference ? "preference"
                       : kind == DatasetKind::Text       ? "text"
                                                         : "candidates";
  Stmt d = ws.db().prepare("INSERT INTO datasets (name, kind, format, source, created_at) VALUES (?, ?, ?, ?, ?)");
  d.bind(1, name).bind(2, std::string(dataset_kind_name(kind))).bind(3, std::string(format)).bind(4, source).bind(5, utc_now()).run();
  return ws.db().last_insert_id();
}

std::vector<DatasetInfo> list_datasets(Workspace& ws) {
  std::vector<DatasetInfo> out;
  Stmt s = ws.db().prepare(
      "SELECT d.id, d.name, d.kind, d.format, d.source, d.created_at, "
      "(SELECT COUNT(*) FROM rows r WHERE r.dataset_id = d.id) FROM datasets d ORDER BY d.id");
  while (s.step()) out.push_back({s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.i64(6)});
  return out;
}

DatasetInfo find_dataset(Workspace& ws, const std::string& key) {
  for (auto& d : list_datasets(ws))
    if (d.name == key || std::to_string(d.id) == key) return d;
  throw Error("no dataset \"" + key + "\" in " + ws.dir() + " (hone-cli dataset list shows them)");
}

void rename_dataset(Workspace& ws, int64_t id, const std::string& name) {
  Stmt s = ws.db().prepare("UPDATE datasets SET name = ? WHERE id = ?");
  s.bind(1, name).bind(2, id).run();
}

void delete_dataset(Workspace& ws, int64_t id) {
  Transaction t(ws.db());
  Stmt s = ws.db().prepare("DELETE FROM datasets WHERE id = ?");
  s.bind(1, id).run();
  t.commit();
}

void replace_dataset(Workspace& ws, int64_t old_id, int64_t replacement) {
  Transaction t(ws.db());
  std::string name;
  {
    Stmt q = ws.db().prepare("SELECT name FROM datasets WHERE id = ?");
    q.bind(1, old_id);
    if (!q.step()) throw Error("no dataset with id " + std::to_string(old_id) + " in " + ws.dir());
    name = q.text(0);
  }
  ws.db().prepare("DELETE FROM datasets WHERE id = ?").bind(1, old_id).run();
  ws.db().prepare("UPDATE datasets SET name = ? WHERE id = ?").bind(1, name).bind(2, replacement).run();
  if (ws.db().changes() != 1) throw Error("no dataset with id " + std::to_string(replacement) + " in " + ws.dir());
  t.commit();
}

std::vector<DatasetRow> read_rows(Workspace& ws, int64_t dataset, int64_t begin, int64_t end) {
  std::vector<DatasetRow> out;
  Stmt s = ws.db().prepare(std::string(kRowCols) +
                           "WHERE r.dataset_id = ? AND r.position >= ? AND r.position < ? ORDER BY r.position");
  s.bind(1, dataset).bind(2, begin).bind(3, end);
  while (s.step()) out.push_back(row_from(s));
  return out;
}

std::vector<DatasetRow> search_rows(Workspace& ws, int64_t dataset, const std::string& needle, int64_t from, int64_t limit) {
  std::vector<DatasetRow> out;
  // instr() on lower() avoids LIKE's wildcard escaping; the needle is bound, never spliced.
  Stmt s = ws.db().prepare(std::string(kRowCols) +
                           "WHERE r.dataset_id = ? AND r.position >= ? AND instr(lower(r.data), ?) > 0 "
                           "ORDER BY r.position LIMIT ?");
  // Rows are stored as JSON text, so the needle is matched in its JSON-escaped form (quotes, newlines).
  const std::string quoted = json(needle).dump();
  s.bind(1, dataset).bind(2, from).bind(3, lower_ascii(quoted.substr(1, quoted.size() - 2))).bind(4, limit);
  while (s.step()) out.push_back(row_from(s));
  return out;
}

int64_t insert_row(Workspace& ws, int64_t dataset, int64_t position, const std::string& data, const std::string& author) {
  const std::string c = checked(ws, dataset, data);
  Transaction t(ws.db());
  position = std::clamp<int64_t>(position, 0, row_count(ws, dataset));
  do_insert(ws, dataset, position, 0, c, "edited");
  const int64_t id = ws.db().last_insert_id();
  revision(ws, dataset, id, "insert", position, nullptr, &c, author);
  t.commit();
  return id;
}

void update_row(Workspace& ws, int64_t row_id, const std::string& data, const std::string& author) {
  RowAt r = row_at(ws, row_id);
  const std::string c = checked(ws, r.dataset, data);
  Transaction t(ws.db());
  Stmt s = ws.db().prepare("UPDATE rows SET data = ? WHERE id = ?");
  s.bind(1, c).bind(2, row_id).run();
  revision(ws, r.dataset, row_id, "update", r.position, &r.data, &c, author);
  t.commit();
}

void delete_row(Workspace& ws, int64_t row_id, const std::string& author) {
  RowAt r = row_at(ws, row_id);
  Transaction t(ws.db());
  do_delete(ws, r.dataset, row_id, r.position);
  revision(ws, r.dataset, row_id, "delete", r.position, &r.data, nullptr, author);
  t.commit();
}

bool undo(Workspace& ws, int64_t dataset) {
  Transaction t(ws.db());
  Stmt s = ws.db().prepare(
      "SELECT id, row_id, op, position, before FROM revisions WHERE dataset_id = ? ORDER BY id DESC LIMIT 1");
  s.bind(1, dataset);
  if (!s.step()) return false;
  const int64_t rev = s.i64(0), row_id = s.i64(1), pos = s.i64(3);
  const std::string op = s.text(2), before = s.is_null(4) ? "" : s.text(4);
  if (op == "insert") {
    do_delete(ws, dataset, row_id, pos);
  } else if (op == "delete") {
    do_insert(ws, dataset, pos, row_id, before, "edited");  // the row comes back with its old id
  } else {
    Stmt u = ws.db().prepare("UPDATE rows SET data = ? WHERE id = ?");
    u.bind(1, before).bind(2, row_id).run();
  }
  Stmt d = ws.db().prepare("DELETE FROM revisions WHERE id = ?");
  d.bind(1, rev).run();
  t.commit();
  return true;
}

Revision last_revision(Workspace& ws, int64_t dataset) {
  Stmt s = ws.db().prepare(
      "SELECT id, row_id, op, position, before, after FROM revisions WHERE dataset_id = ? ORDER BY id DESC LIMIT 1");
  s.bind(1, dataset);
  Revision r;
  if (!s.step()) return r;
  r.id = s.i64(0);
  r.row_id = s.i64(1);
  r.op = s.text(2);
  r.position = s.i64(3);
  r.before = s.is_null(4) ? "" : s.text(4);
  r.after = s.is_null(5) ? "" : s.text(5);
  return r;
}

void redo_revision(Workspace& ws, int64_t dataset, const Revision& r, const std::string& author) {
  if (r.op == "insert") insert_row(ws, dataset, r.position, r.after, author);
  else if (r.op == "update") update_row(ws, r.row_id, r.after, author);
  else if (r.op == "delete") delete_row(ws, r.row_id, author);
  else throw Error("nothing to redo");
}

void set_label(Workspace& ws, int64_t row_id, const std::string& label, const std::string& author, const std::string& note,
               const std::string& ranking) {
  RowAt r = row_at(ws, row_id);
  const DatasetKind kind = kind_of_dataset(ws, r.dataset);
  if (kind != DatasetKind::Preference && kind != DatasetKind::Candidates)
    throw Error("row " + std::to_string(row_id) + " is not a preference pair or a candidate pair");
  if (label.empty()) {
    Stmt s = ws.db().prepare("DELETE FROM labels WHERE row_id = ? AND author = ?");
    s.bind(1, row_id).bind(2, author).run();
    return;
  }
  if (kind == DatasetKind::Preference && label != "chosen" && label != "rejected" && label != "tie" && label != "skip" &&
      label != "drop")
    throw Error("label must be chosen (keep), rejected (flip), tie, drop or skip (got \"" + label + "\")");
  if (kind == DatasetKind::Candidates && label != "a" && label != "b" && label != "tie" && label != "both_bad" &&
      label != "skip" && label != "ranked")
    throw Error("label must be a, b, tie, both_bad, skip or ranked (got \"" + label + "\")");
  if ((label == "ranked") != !ranking.empty()) throw Error("a ranking goes with the label ranked, and only with it");
  if (kind == DatasetKind::Candidates && label == "b" && json::parse(r.data)["responses"].size() < 2)
    throw Error("row " + std::to_string(r.position) + " has one response: label it a (good) or both_bad");
  Stmt s = ws.db().prepare(
      "INSERT INTO labels (row_id, label, author, at, note, ranking) VALUES (?, ?, ?, ?, ?, ?) "
      "ON CONFLICT(row_id, author) DO UPDATE SET label = excluded.label, at = excluded.at, note = excluded.note, "
      "ranking = excluded.ranking");
  s.bind(1, row_id).bind(2, label).bind(3, author).bind(4, utc_now()).bind(5, note).bind(6, ranking).run();
}

bool in_validation(int64_t row_id, uint64_t seed, double fraction) {
  const uint64_t h = mix(mix(seed) ^ static_cast<uint64_t>(row_id));
  return static_cast<double>(h >> 11) / static_cast<double>(1ull << 53) < fraction;
}

DatasetStats dataset_stats(Workspace& ws, int64_t dataset, const Tokenizer* tok, int longest) {
  StatsOptions o;
  o.tok = tok;
  o.longest = longest;
  return dataset_stats(ws, dataset, o);
}

namespace {
// Tokens of a row as training sees it (see StatsOptions::format).
int64_t templated_length(const Tokenizer& tok, const ChatTemplate& f, DatasetKind kind, const std::string& data) {
  auto n = [&](const std::vector<ChatMessage>& m) { return static_cast<int64_t>(tokenize_chat(tok, f, m, false).ids.size()); };
  if (kind == DatasetKind::Chat) return n(record_messages(data));
  if (kind == DatasetKind::Text) return static_cast<int64_t>(tok.encode(json::parse(data).value("text", ""), false).ids.size()) + 1;
  if (kind == DatasetKind::Choice) {  // the question with its longest choice, as the default format scores it
    json j = json::parse(data);
    int64_t best = 0;
    for (const auto& c : j["choices"])
      best = std::max<int64_t>(best, static_cast<int64_t>(tok.encode((j.contains("context") ? j["context"].get<std::string>() + "\n" : "") + "Question: " + j.value("question", "") +
                                                                        "\nAnswer: " + c.get<std::string>(), false).ids.size()));
    return best;
  }
  std::vector<ChatMessage> prompt;
  std::vector<std::vector<ChatMessage>> answers;
  if (kind == DatasetKind::Preference) {
    PreferencePair p = preference_from_record(data, "");
    prompt = p.prompt;
    answers = {p.chosen, p.rejected};
  } else {
    json j = json::parse(data);
    if (j["prompt"].is_string()) prompt.push_back({"user", j["prompt"].get<std::string>()});
    else
      for (const auto& m : j["prompt"]) prompt.push_back({m.value("role", "user"), m.value("content", "")});
    for (const auto& r : j["responses"]) answers.push_back({{"assistant", r.get<std::string>()}});
  }
  int64_t best = 0;
  for (const auto& a : answers) {
    std::vector<ChatMessage> m = prompt;
    m.insert(m.end(), a.begin(), a.end());
    best = std::max(best, n(m));
  }
  return best;
}
}  // namespace

DatasetStats dataset_stats(Workspace& ws, int64_t dataset, const StatsOptions& o) {
  const Tokenizer* tok = o.tok;
  const int longest = o.longest;
  const int64_t total = row_count(ws, dataset);
  DatasetStats st;
  Stmt s = ws.db().prepare(std::string(kRowCols) + "WHERE r.dataset_id = ? ORDER BY r.position");
  s.bind(1, dataset);
  const DatasetKind kind = kind_of_dataset(ws, dataset);
  std::vector<std::pair<int64_t, int64_t>> lens;
  std::unordered_set<size_t> seen;  // 64-bit hashes: a false duplicate needs a collision
  while (s.step()) {
    DatasetRow r = row_from(s);
    ++st.rows;
    st.labelled += !r.label.empty();
    st.duplicates += !seen.insert(std::hash<std::string>()(r.data)).second;
    json j = json::parse(r.data);
    std::string text;  // the row's visible text, for length statistics
    auto add = [&](const json& v) {
      if (v.is_string()) text += v.get<std::string>() + "\n";
      else if (v.is_array())
        for (const auto& m : v) text += m.value("content", "") + "\n";
    };
    if (kind == DatasetKind::Chat) add(j["messages"]);
    else if (kind == DatasetKind::Text) add(j["text"]);
    else if (kind == DatasetKind::Choice) {
      add(j.value("context", "")), add(j["question"]);
      for (const auto& c : j["choices"]) add(c);
    } else if (kind == DatasetKind::Candidates) {
      add(j["prompt"]);
      for (const auto& r : j["responses"]) add(r.is_string() ? r : json::array({r}).front());
    } else add(j["prompt"]), add(j["chosen"]), add(j["rejected"]);
    st.chars += static_cast<int64_t>(text.size());
    lens.emplace_back(r.position, static_cast<int64_t>(text.size()));
    if (tok && o.format) st.token_lengths.push_back(templated_length(*tok, *o.format, kind, r.data));
    else if (tok) st.token_lengths.push_back(static_cast<int64_t>(tok->encode(text, false).ids.size()));
    if (o.progress && (st.rows % 1000 == 0 || st.rows == total) && !o.progress(st.rows, total))
      throw Error("statistics cancelled");
  }
  std::sort(st.token_lengths.begin(), st.token_lengths.end());
  std::stable_sort(lens.begin(), lens.end(), [](auto& a, auto& b) { return a.second > b.second; });
  lens.resize(std::min<size_t>(lens.size(), static_cast<size_t>(std::max(0, longest))));
  st.longest = lens;
  return st;
}

namespace {

// The rows an export writes, in order, as their JSON text: the split's rows, with preference labels
// applied ("rejected" swaps the pair; tie, drop and skip leave the row out).
void for_export_rows(Workspace& ws, int64_t dataset, const ExportOptions& opt, const std::function<void(std::string&&, const DatasetRow&)>& each) {
  const DatasetKind kind = kind_of_dataset(ws, dataset);
  Stmt s = ws.db().prepare(std::string(kRowCols) + "WHERE r.dataset_id = ? ORDER BY r.position");
  s.bind(1, dataset);
  while (s.step()) {
    DatasetRow r = row_from(s);
    if (!opt.split.empty() && in_validation(r.id, opt.seed, opt.fraction) != (opt.split == "validation")) continue;
    std::string line = r.data;
    if (kind == DatasetKind::Preference && !r.label.empty()) {
      if (r.label == "tie" || r.label == "skip" || r.label == "drop") continue;
      if (r.label == "rejected") {
        json j = json::parse(r.data);
        std::swap(j["chosen"], j["rejected"]);
        line = j.dump();
      }
    }
    each(std::move(line), r);
  }
}

bool parquet_path(const std::string& p) {
  std::string e = std::filesystem::path(p).extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".parquet";
}

}  // namespace

int64_t export_dataset(Workspace& ws, int64_t dataset, const std::string& out_path, const ExportOptions& opt) {
  if (!opt.split.empty() && opt.split != "train" && opt.split != "validation")
    throw Error("split must be train or validation");
  int64_t n = 0;
  if (parquet_path(out_path)) {
    // Two passes over the stored rows: the first settles each column's type, the second writes.
    ParquetSchemaBuilder schema;
    for_export_rows(ws, dataset, opt, [&](std::string&& line, const DatasetRow& r) {
      schema.add(json::parse(line), "row " + std::to_string(r.position) + " (" + r.source + ")");
    });
    ParquetWriteOptions po;
    po.codec = opt.parquet_codec;
    ParquetWriter w(out_path, schema, po);
    for_export_rows(ws, dataset, opt, [&](std::string&& line, const DatasetRow&) {
      w.add(json::parse(line));
      ++n;
    });
    w.finish();
    return n;
  }
  AtomicWriter w(out_path);
  for_export_rows(ws, dataset, opt, [&](std::string&& line, const DatasetRow&) {
    line += "\n";
    w.write(line.data(), line.size());
    ++n;
  });
  w.commit();
  return n;
}

std::vector<std::string> materialize_datasets(Workspace& ws, const std::vector<std::string>& refs, const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& r : refs) {
    if (r.rfind("dataset:", 0) != 0) {
      out.push_back(r);
      continue;
    }
    DatasetInfo d = find_dataset(ws, r.substr(8));
    std::string safe;  // a file name from the dataset name
    for (char c : d.name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const std::string path = join_path(dir, std::to_string(d.id) + "-" + safe + ".jsonl");
    if (d.kind == "candidates") {
      // Labelled candidates train as the pairs their verdicts make (a or b, rankings); ties,
      // both_bad, identical, skipped and unlabelled rows are left out, each checked as a pair
      // here, so that no training error can point into this internal file.
      const LabelExportReport rep = export_labels(ws, d.id, path, "");
      if (rep.pairs == 0)
        throw Error("dataset \"" + d.name + "\" has no pair to train on yet (" + rep.summary() +
                    "): label some on the Label page or with hone-cli label set");
    } else {
      export_dataset(ws, d.id, path);
    }
    out.push_back(path);
  }
  return out;
}

}  // namespace hone
