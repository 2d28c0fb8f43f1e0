// Labelling (see labels.h). Verdicts live in `labels`, one per (row, annotator); the row's label
// is the newest. Pages are range scans on (dataset_id, position) so that a 100k-row dataset opens
// as fast as a small one.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "store/labels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "common/utf8.h"
#include "data/records.h"
#include "store/datasets.h"
#include "store/sqlite.h"

namespace hone {

using nlohmann::json;

namespace {

struct DatasetKindName {
  std::string name, kind;
};

DatasetKindName labelled_dataset(Workspace& ws, int64_t dataset) {
  // One row by key (list_datasets would count every dataset's rows: slow beside 100k of them).
  Stmt s = ws.db().prepare("SELECT name, kind FROM datasets WHERE id = ?");
  s.bind(1, dataset);
  if (!s.step()) throw Error("no dataset with id " + std::to_string(dataset));
  DatasetKindName d{s.text(0), s.text(1)};
  if (d.kind != "candidates" && d.kind != "preference")
    throw Error("dataset \"" + d.name + "\" holds " + d.kind +
                " rows, not pairs to label (import {\"prompt\", \"responses\"} or {\"prompt\", \"chosen\", \"rejected\"} rows, "
                "or generate candidates for a prompts dataset)");
  return d;
}

// The newest verdict of a row.
const char* kNewest = "(SELECT rowid FROM labels WHERE row_id = r.id ORDER BY at DESC, rowid DESC LIMIT 1)";

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  for (const auto& m : v) out += m.value("role", "") + ": " + m.value("content", "") + "\n";
  return out;
}

std::vector<int> parse_ranking(const std::string& s) {
  std::vector<int> out;
  if (s.empty()) return out;
  try {
    for (const auto& x : json::parse(s)) out.push_back(x.get<int>());
  } catch (const json::exception&) {
  }
  return out;
}

void fill_derived(CandidateRow& c, const std::string& kind) {
  json j = json::parse(c.data);
  if (kind == "preference") {
    c.responses = 2;
    if (collapse_whitespace(text_of(j["chosen"])) == collapse_whitespace(text_of(j["rejected"]))) c.identical.push_back({0, 1});
    return;
  }
  const json& rs = j["responses"];
  c.responses = static_cast<int>(rs.size());
  // Each response's text once (rows are read a page at a time on the GUI thread), then compared.
  std::vector<std::string> text;
  for (const auto& r : rs) text.push_back(collapse_whitespace(text_of(r)));
  for (size_t a = 0; a < text.size(); ++a)
    for (size_t b = a + 1; b < text.size(); ++b)
      if (text[a] == text[b]) c.identical.push_back({static_cast<int>(a), static_cast<int>(b)});
  if (j.contains("original_responses"))
    for (size_t i = 0; i < rs.size(); ++i)
      if (rs[i] != j["original_responses"][i]) c.edited.push_back(static_cast<int>(i));
}

std::vector<CandidateRow> query_rows(Workspace& ws, int64_t dataset, const std::string& kind, const std::string& where,
                                     int64_t a, int64_t b, bool range) {
  Stmt s = ws.db().prepare(
      std::string("SELECT r.id, r.position, r.data, l.label, l.note, l.author, l.ranking, "
                  "(SELECT COUNT(*) FROM labels WHERE row_id = r.id) FROM rows r LEFT JOIN labels l ON l.rowid = ") +
      kNewest + " WHERE r.dataset_id = ?" + where + (range ? " AND r.position >= ? AND r.position < ? ORDER BY r.position"
                                                           : " ORDER BY r.position LIMIT ? OFFSET ?"));
  s.bind(1, dataset);
  if (range) s.bind(2, a).bind(3, b);
  else s.bind(2, b).bind(3, a);
  std::vector<CandidateRow> out;
  while (s.step()) {
    CandidateRow c;
    c.row_id = s.i64(0);
    c.position = s.i64(1);
    c.data = s.text(2);
    if (!s.is_null(3)) c.label = s.text(3), c.note = s.text(4), c.author = s.text(5), c.ranking = parse_ranking(s.text(6));
    c.verdicts = static_cast<int>(s.i64(7));
    fill_derived(c, kind);
    out.push_back(std::move(c));
  }
  return out;
}

// A row's identity across workspaces: its prompt and responses as generated (or imported).
std::string row_key(const std::string& data) {
  json j = json::parse(data);
  json k = json::object();
  k["prompt"] = j.value("prompt", json());
  if (j.contains("responses")) k["responses"] = j.contains("original_responses") ? j["original_responses"] : j["responses"];
  if (j.contains("chosen")) k["chosen"] = j["chosen"], k["rejected"] = j["rejected"];
  const std::string d = k.dump();
  uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  for (unsigned char ch : d) h = (h ^ ch) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

bool same_response(const std::string& a, const std::string& b) {
  if (a == b) return true;
  try {
    return collapse_whitespace(text_of(json::parse(a))) == collapse_whitespace(text_of(json::parse(b)));
  } catch (const json::exception&) {
    return collapse_whitespace(a) == collapse_whitespace(b);
  }
}

namespace {

int64_t dataset_rows(Workspace& ws, int64_t dataset) {
  Stmt n = ws.db().prepare("SELECT COUNT(*) FROM rows WHERE dataset_id = ?");
  n.bind(1, dataset);
  n.step();
  return n.i64(0);
}

// A filter as sorted positions, read from the verdicts' side (CROSS JOIN keeps SQLite from
// scanning the dataset's rows first), so its cost follows how much is labelled, not the
// dataset's size. `complement`: the filter is every row except `positions` (unlabelled: not
// judged by anyone; mine: not judged by `annotator`); otherwise exactly `positions`.
struct FilterSet {
  bool all = false, complement = false;
  std::vector<int64_t> positions;
};

FilterSet filter_set(Workspace& ws, int64_t dataset, const std::string& f, const std::string& annotator) {
  FilterSet out;
  if (f == "all" || f.empty()) {
    out.all = true;
    return out;
  }
  if (f == "mine") {
    if (annotator.empty()) throw Error("the filter mine needs an annotator's name");
    Stmt s = ws.db().prepare(
        "SELECT r.position FROM labels l CROSS JOIN rows r ON r.id = l.row_id WHERE l.author = ? AND r.dataset_id = ? "
        "ORDER BY r.position");
    s.bind(1, annotator).bind(2, dataset);
    while (s.step()) out.positions.push_back(s.i64(0));
    out.complement = true;
    return out;
  }
  if (f != "unlabelled" && f != "labelled" && f != "skipped")
    throw Error("filter must be all, unlabelled, mine, labelled or skipped (got \"" + f + "\")");
  Stmt s = ws.db().prepare(
      "SELECT r.position, (SELECT label FROM labels WHERE row_id = r.id ORDER BY at DESC, rowid DESC LIMIT 1) "
      "FROM (SELECT DISTINCT row_id FROM labels) k CROSS JOIN rows r ON r.id = k.row_id WHERE r.dataset_id = ? "
      "ORDER BY r.position");
  s.bind(1, dataset);
  while (s.step()) {
    const bool skip = s.text(1) == "skip";
    if (f == "unlabelled" || (f == "skipped") == skip) out.positions.push_back(s.i64(0));
  }
  out.complement = f == "unlabelled";
  return out;
}

bool contains(const std::vector<int64_t>& sorted, int64_t p) { return std::binary_search(sorted.begin(), sorted.end(), p); }

}  // namespace

int64_t count_label_rows(Workspace& ws, int64_t dataset, const std::string& filter, const std::string& annotator) {
  labelled_dataset(ws, dataset);
  const FilterSet f = filter_set(ws, dataset, filter, annotator);
  if (f.all) return dataset_rows(ws, dataset);
  const auto n = static_cast<int64_t>(f.positions.size());
  return f.complement ? dataset_rows(ws, dataset) - n : n;
}

std::vector<CandidateRow> page_label_rows(Workspace& ws, int64_t dataset, const std::string& filter, int64_t offset,
                                          int64_t limit, const std::string& annotator) {
  const std::string kind = labelled_dataset(ws, dataset).kind;
  const FilterSet f = filter_set(ws, dataset, filter, annotator);
  // Unfiltered, a page is a position range (an index range scan, however deep).
  if (f.all) return query_rows(ws, dataset, kind, "", offset, offset + limit, true);
  std::vector<CandidateRow> out;
  if (f.complement) {
    // The offset-th row outside the set: step over the set's positions before it; walk on to the
    // page's last such row; then one range read, leaving out the set's rows.
    int64_t p = offset;
    for (int64_t q : f.positions) {
      if (q > p) break;
      ++p;
    }
    const int64_t total = dataset_rows(ws, dataset);
    int64_t last = p, taken = 0;
    for (int64_t q = p; q < total && taken < limit; ++q)
      if (!contains(f.positions, q)) last = q, ++taken;
    if (taken == 0) return out;
    for (auto& r : query_rows(ws, dataset, kind, "", p, last + 1, true))
      if (!contains(f.positions, r.position)) out.push_back(std::move(r));
    return out;
  }
  for (int64_t k = offset; k < offset + limit && k < static_cast<int64_t>(f.positions.size()); ++k) {
    const int64_t pos = f.positions[static_cast<size_t>(k)];
    for (auto& r : query_rows(ws, dataset, kind, "", pos, pos + 1, true)) out.push_back(std::move(r));
  }
  return out;
}

int64_t filtered_index(Workspace& ws, int64_t dataset, const std::string& filter, int64_t position, const std::string& annotator) {
  labelled_dataset(ws, dataset);
  const FilterSet f = filter_set(ws, dataset, filter, annotator);
  if (position < 0 || position >= dataset_rows(ws, dataset)) return -1;
  if (f.all) return position;
  const auto it = std::lower_bound(f.positions.begin(), f.positions.end(), position);
  const bool in_set = it != f.positions.end() && *it == position;
  if (f.complement) return in_set ? -1 : position - static_cast<int64_t>(it - f.positions.begin());
  return in_set ? static_cast<int64_t>(it - f.positions.begin()) : -1;
}

CandidateRow label_row_at(Workspace& ws, int64_t dataset, int64_t position) {
  const std::string kind = labelled_dataset(ws, dataset).kind;
  auto rows = query_rows(ws, dataset, kind, "", position, position + 1, true);
  if (rows.empty()) throw Error("dataset " + std::to_string(dataset) + " has no row " + std::to_string(position));
  return rows[0];
}

int64_t next_unlabelled(Workspace& ws, int64_t dataset, int64_t after, const std::string& annotator) {
  Stmt s = ws.db().prepare(
      "SELECT r.position FROM rows r WHERE r.dataset_id = ? AND r.position > ? AND NOT EXISTS (SELECT 1 FROM labels WHERE "
      "row_id = r.id AND (? = '' OR author = ?)) ORDER BY r.position LIMIT 1");
  s.bind(1, dataset).bind(2, after).bind(3, annotator).bind(4, annotator);
  return s.step() ? s.i64(0) : -1;
}

std::vector<CandidateRow> list_candidates(Workspace& ws, int64_t dataset) {
  const std::string kind = labelled_dataset(ws, dataset).kind;
  return query_rows(ws, dataset, kind, "", 0, std::numeric_limits<int64_t>::max(), true);
}

LabelProgress label_progress(Workspace& ws, int64_t dataset) {
  labelled_dataset(ws, dataset);
  LabelProgress p;
  Stmt n = ws.db().prepare("SELECT COUNT(*) FROM rows WHERE dataset_id = ?");
  n.bind(1, dataset);
  n.step();
  p.rows = n.i64(0);
  // Over the verdicts, not the rows: as quick on 100k unlabelled rows as on 100.
  Stmt s = ws.db().prepare(
      "SELECT COUNT(*), SUM(v.newest = 'skip') FROM (SELECT (SELECT label FROM labels WHERE row_id = l.row_id ORDER BY at DESC, "
      "rowid DESC LIMIT 1) AS newest FROM labels l CROSS JOIN rows r ON r.id = l.row_id WHERE r.dataset_id = ? GROUP BY l.row_id) v");
  s.bind(1, dataset);
  s.step();
  p.skipped = s.is_null(1) ? 0 : s.i64(1);
  p.labelled = s.i64(0) - p.skipped;
  return p;
}

Verdict verdict_of(Workspace& ws, int64_t dataset, int64_t position, const std::string& annotator) {
  Stmt s = ws.db().prepare(
      "SELECT l.label, l.note, l.ranking FROM labels l JOIN rows r ON r.id = l.row_id WHERE r.dataset_id = ? AND "
      "r.position = ? AND l.author = ?");
  s.bind(1, dataset).bind(2, position).bind(3, annotator);
  Verdict v;
  if (s.step()) v.label = s.text(0), v.note = s.text(1), v.ranking = parse_ranking(s.text(2));
  return v;
}

void label_candidate(Workspace& ws, int64_t dataset, int64_t position, const std::string& label_in, const std::string& note,
                     const std::string& annotator, const std::vector<int>& ranking) {
  const std::string kind = labelled_dataset(ws, dataset).kind;
  const CandidateRow row = label_row_at(ws, dataset, position);
  std::string label = label_in == "none" ? "" : label_in;
  if (kind == "preference") {
    if (label == "keep") label = "chosen";
    if (label == "flip") label = "rejected";
  }
  const std::string where = "row " + std::to_string(position);
  if (kind == "candidates" && (label == "a" || label == "b") && row.responses >= 2 &&
      std::find(row.identical.begin(), row.identical.end(), std::make_pair(0, 1)) != row.identical.end())
    throw Error(where + ": responses A and B are identical; one cannot be better (label it tie, both_bad or skip, or edit one)");
  if (kind == "candidates" && (label == "a" || label == "b") && row.responses > 2)
    throw Error(where + " has " + std::to_string(row.responses) +
                " responses: rank them best first (such as cab) or name the best and the worst (a,d)");
  if (kind == "candidates" && label == "b" && row.responses < 2)
    throw Error(where + " has one response: label it a (good) or both_bad");
  std::string rank_json;
  if (!ranking.empty()) {
    if (kind != "candidates") throw Error(where + ": only candidates rows take a ranking");
    std::set<int> seen;
    for (int k : ranking)
      if (k < 0 || k >= row.responses || !seen.insert(k).second)
        throw Error(where + ": a ranking lists distinct responses among its " + std::to_string(row.responses));
    if (ranking.size() < 2) throw Error(where + ": a ranking orders at least two responses");
    rank_json = json(ranking).dump();
    label = "ranked";
  }
  set_label(ws, row.row_id, label, annotator, note, rank_json);
}

void edit_response(Workspace& ws, int64_t dataset, int64_t position, int which, const std::string& text,
                   const std::string& author) {
  if (labelled_dataset(ws, dataset).kind != "candidates") throw Error("only candidates rows have responses to edit");
  auto rows = read_rows(ws, dataset, position, position + 1);
  if (rows.empty()) throw Error("dataset " + std::to_string(dataset) + " has no row " + std::to_string(position));
  json j = json::parse(rows[0].data);
  if (which < 0 || which >= static_cast<int>(j["responses"].size()))
    throw Error("row " + std::to_string(position) + " has " + std::to_string(j["responses"].size()) + " responses; no response " +
                std::string(1, static_cast<char>('a' + std::max(0, which))));
  if (!j.contains("original_responses")) j["original_responses"] = j["responses"];
  j["responses"][static_cast<size_t>(which)] = text;
  update_row(ws, rows[0].id, j.dump(), author);  // validated, and a revision keeps the previous text too
}

std::string LabelExportReport::summary() const {
  // Ratings are KTO's: a summary of what a pair recipe trains on leaves them to the caller.
  std::string s = std::to_string(pairs) + " pair" + (pairs == 1 ? "" : "s");
  std::string out;
  auto add = [&](int64_t n, const char* what) {
    if (n) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(ties, "tie"), add(both_bad, "both bad"), add(identical, "identical"), add(dropped, "dropped"), add(skipped, "skipped");
  add(unlabelled, "unlabelled"), add(invalid, "invalid");
  return out.empty() ? s : s + "; left out: " + out;
}

LabelExportReport export_labels(Workspace& ws, int64_t dataset, const std::string& pairs_out, const std::string& ratings_out) {
  const std::string kind = labelled_dataset(ws, dataset).kind;
  LabelExportReport rep;
  std::string pairs, ratings;
  auto pair = [&](const json& prompt, const json& chosen, const json& rejected) {
    if (same_response(chosen.dump(), rejected.dump())) return ++rep.identical, false;
    json row = {{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}};
    std::string canonical;
    if (!validate_record(DatasetKind::Preference, row.dump(), &canonical).empty()) return ++rep.invalid, false;
    pairs += canonical + "\n";
    ++rep.pairs;
    return true;
  };
  for (const auto& c : list_candidates(ws, dataset)) {
    json j = json::parse(c.data);
    if (c.label == "skip") {
      ++rep.skipped;
      continue;
    }
    if (c.label == "tie") {
      ++rep.ties;
      continue;
    }
    if (c.label == "drop") {
      ++rep.dropped;
      continue;
    }
    if (kind == "preference") {  // unlabelled rows train as imported
      if (c.label == "rejected") pair(j["prompt"], j["rejected"], j["chosen"]);
      else pair(j["prompt"], j["chosen"], j["rejected"]);
      continue;
    }
    const json& rs = j["responses"];
    const json sources = j.value("sources", json::array());
    auto rating = [&](const json& completion, bool good) {
      ratings += json({{"prompt", j["prompt"]}, {"completion", completion}, {"label", good}}).dump() + "\n";
      ++rep.ratings;
    };
    auto scored = [&](size_t win, size_t lose) {
      if (!pair(j["prompt"], rs[win], rs[lose]) || sources.size() != rs.size()) return;
      const std::string w = sources[win].get<std::string>(), l = sources[lose].get<std::string>();
      if (w == l) return;
      ++rep.wins[w];
      ++rep.compared[w];
      ++rep.compared[l];
    };
    if (c.label.empty()) {
      ++rep.unlabelled;
    } else if (c.label == "both_bad") {
      ++rep.both_bad;
      for (const auto& r : rs) rating(r, false);
    } else if (rs.size() < 2) {  // "a" on a single response: a thumbs-up
      rating(rs[0], true);
    } else if (c.label == "ranked") {
      // Every (better, worse) pair of the order, as InstructGPT derives comparisons from a ranking.
      for (size_t x = 0; x < c.ranking.size(); ++x)
        for (size_t y = x + 1; y < c.ranking.size(); ++y) scored(static_cast<size_t>(c.ranking[x]), static_cast<size_t>(c.ranking[y]));
    } else {
      const size_t win = c.label == "a" ? 0 : 1;
      scored(win, 1 - win);
    }
  }
  if (!pairs_out.empty()) write_file_atomic(pairs_out, pairs);
  if (!ratings_out.empty()) write_file_atomic(ratings_out, ratings);
  return rep;
}

int64_t export_verdicts(Workspace& ws, int64_t dataset, const std::string& out, const std::string& annotator) {
  const auto ds = labelled_dataset(ws, dataset);
  Stmt s = ws.db().prepare(
      "SELECT r.position, r.data, l.author, l.label, l.ranking, l.note, l.at FROM labels l JOIN rows r ON r.id = l.row_id "
      "WHERE r.dataset_id = ? ORDER BY r.position, l.author");
  s.bind(1, dataset);
  // Occurrence numbers tell apart rows that are the same text (a dataset may repeat a prompt).
  std::unordered_map<std::string, int64_t> occurrences;
  std::unordered_map<int64_t, int64_t> occurrence_of;
  {
    Stmt all = ws.db().prepare("SELECT position, data FROM rows WHERE dataset_id = ? ORDER BY position");
    all.bind(1, dataset);
    while (all.step()) occurrence_of[all.i64(0)] = occurrences[row_key(all.text(1))]++;
  }
  std::string text;
  int64_t n = 0;
  while (s.step()) {
    if (!annotator.empty() && s.text(2) != annotator) continue;
    json line = {{"dataset", ds.name}, {"position", s.i64(0)},          {"key", row_key(s.text(1))},
                 {"occurrence", occurrence_of[s.i64(0)]},                {"annotator", s.text(2)},
                 {"label", s.text(3)},   {"note", s.text(5)},            {"at", s.text(6)}};
    if (!s.text(4).empty()) line["ranking"] = json::parse(s.text(4));
    text += line.dump() + "\n";
    ++n;
  }
  write_file_atomic(out, text);
  return n;
}

MergeReport merge_verdicts(Workspace& ws, int64_t dataset, const std::string& path) {
  labelled_dataset(ws, dataset);
  std::map<std::pair<std::string, int64_t>, int64_t> rows;  // (key, occurrence) -> row id
  {
    std::unordered_map<std::string, int64_t> occ;
    Stmt all = ws.db().prepare("SELECT id, data FROM rows WHERE dataset_id = ? ORDER BY position");
    all.bind(1, dataset);
    while (all.step()) {
      const std::string k = row_key(all.text(1));
      rows[{k, occ[k]++}] = all.i64(0);
    }
  }
  const std::string text = read_file(path);
  MergeReport rep;
  std::set<std::string> names;
  Transaction t(ws.db());
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error&) {
      throw Error(where + ": not a verdict line (malformed JSON); nothing was merged");
    }
    if (!j.is_object() || !j.contains("key") || !j.contains("label") || !j.contains("annotator") || !j["key"].is_string() ||
        !j["label"].is_string() || !j["annotator"].is_string())
      throw Error(where + ": a verdict line needs key, annotator and label (written by hone-cli label export-verdicts); nothing was merged");
    auto it = rows.find({j["key"].get<std::string>(), j.value("occurrence", int64_t{0})});
    if (it == rows.end()) {
      ++rep.unmatched;
      continue;
    }
    const std::string who = j["annotator"].get<std::string>(), at = j.value("at", std::string());
    Stmt cur = ws.db().prepare("SELECT at FROM labels WHERE row_id = ? AND author = ?");
    cur.bind(1, it->second).bind(2, who);
    const bool exists = cur.step();
    if (exists && cur.text(0) >= at) {
      ++rep.kept;
      continue;
    }
    std::string ranking;
    if (j.contains("ranking")) ranking = j["ranking"].dump();
    try {
      set_label(ws, it->second, j["label"].get<std::string>(), who, j.value("note", std::string()), ranking);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what() + "; nothing was merged");
    }
    Stmt when = ws.db().prepare("UPDATE labels SET at = ? WHERE row_id = ? AND author = ?");  // keeps the verdict's own time
    when.bind(1, at.empty() ? utc_now() : at).bind(2, it->second).bind(3, who).run();
    ++(exists ? rep.updated : rep.added);
    names.insert(who);
  }
  t.commit();
  rep.annotators.assign(names.begin(), names.end());
  return rep;
}

Agreement label_agreement(Workspace& ws, int64_t dataset, const std::string& a_in, const std::string& b_in) {
  labelled_dataset(ws, dataset);
  Agreement g;
  {
    Stmt s = ws.db().prepare(
        "SELECT l.author, COUNT(*) FROM labels l JOIN rows r ON r.id = l.row_id WHERE r.dataset_id = ? GROUP BY l.author "
        "ORDER BY COUNT(*) DESC, l.author");
    s.bind(1, dataset);
    while (s.step()) g.annotators.push_back({s.text(0), s.i64(1)});
  }
  g.a = a_in, g.b = b_in;
  if (g.a.empty() || g.b.empty()) {
    if (g.annotators.size() < 2)
      throw Error("agreement compares two annotators, and this dataset has verdicts from " +
                  (g.annotators.empty() ? std::string("none yet") : "one (" + g.annotators[0].first + ")") +
                  ": merge a teammate's verdicts first (they export theirs with Team > Export my verdicts or hone-cli label "
                  "export-verdicts; you add them with Team > Merge verdicts or hone-cli label merge)");
    // With more than two, the two who judged the most rows (annotators is sorted that way).
    g.a = g.annotators[0].first, g.b = g.annotators[1].first;
    if (g.a > g.b) std::swap(g.a, g.b);
  }
  if (g.a == g.b) throw Error("agreement compares two different annotators");
  auto category = [](const std::string& label, const std::string& ranking) {
    if (label != "ranked") return label;
    auto r = parse_ranking(ranking);
    return "best:" + (r.empty() ? std::string("?") : std::to_string(r[0]));
  };
  Stmt s = ws.db().prepare(
      "SELECT r.position, x.label, x.ranking, y.label, y.ranking FROM rows r JOIN labels x ON x.row_id = r.id AND x.author = ? "
      "JOIN labels y ON y.row_id = r.id AND y.author = ? WHERE r.dataset_id = ? ORDER BY r.position");
  s.bind(1, g.a).bind(2, g.b).bind(3, dataset);
  std::vector<std::pair<std::string, std::string>> pairs;
  std::set<std::string> cats;
  while (s.step()) {
    const std::string x = category(s.text(1), s.text(2)), y = category(s.text(3), s.text(4));
    if (x == "skip" || y == "skip") continue;  // no verdict to compare
    pairs.push_back({x, y});
    cats.insert(x), cats.insert(y);
    if (x != y) g.disagreements.push_back({s.i64(0), x, y});
  }
  g.categories.assign(cats.begin(), cats.end());
  const size_t k = g.categories.size();
  g.confusion.assign(k, std::vector<int64_t>(k, 0));
  auto idx = [&](const std::string& c) {
    return static_cast<size_t>(std::lower_bound(g.categories.begin(), g.categories.end(), c) - g.categories.begin());
  };
  for (const auto& [x, y] : pairs) ++g.confusion[idx(x)][idx(y)];
  g.both = static_cast<int64_t>(pairs.size());
  if (g.both == 0) {
    g.kappa = std::nan("");
    return g;
  }
  // Cohen (1960): kappa = (p_o - p_e) / (1 - p_e), p_e from each annotator's own label frequencies.
  const double n = static_cast<double>(g.both);
  for (size_t i = 0; i < k; ++i) {
    g.agree += g.confusion[i][i];
    double ra = 0, cb = 0;
    for (size_t j = 0; j < k; ++j) ra += static_cast<double>(g.confusion[i][j]), cb += static_cast<double>(g.confusion[j][i]);
    g.expected += (ra / n) * (cb / n);
  }
  g.observed = static_cast<double>(g.agree) / n;
  g.kappa = g.expected >= 1.0 ? std::nan("") : (g.observed - g.expected) / (1.0 - g.expected);
  return g;
}

}  // namespace hone
