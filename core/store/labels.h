// Labelling: verdicts on preference data, one per row and annotator. Candidates datasets (a
// prompt with 1-8+ responses, sampled by `hone-cli label generate` or imported) take a | b | tie |
// both_bad | skip, or a ranking of their responses; plain preference datasets are reviewed (keep =
// chosen, flip = rejected, tie, drop, skip). Rows are read a page at a time; the result is exported
// as preference pairs for DPO/ORPO and ratings for KTO, with every row that cannot train counted;
// verdict sets move between workspaces and two annotators' agreement is Cohen's kappa.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "store/workspace.h"

namespace hone {

struct CandidateRow {
  int64_t row_id = 0, position = 0;
  std::string data;   // canonical row: {"prompt", "responses", ...} or {"prompt", "chosen", "rejected"}
  // The row's verdict: the newest of any annotator's ("" when unlabelled).
  std::string label;
  std::string note, author;
  std::vector<int> ranking;  // label "ranked": response indices, best first
  int verdicts = 0;          // annotators who judged the row
  std::vector<int> edited;   // indices of responses that differ from the originals
  // Responses that read the same after whitespace is normalised (candidates: index pairs; a
  // preference row: {0, 1} when chosen equals rejected). Such a pair teaches nothing.
  std::vector<std::pair<int, int>> identical;
  int responses = 0;  // candidates: how many; preference: 2
};

// Whitespace-normalised equality (runs of spaces, tabs and newlines count as one space; ends trimmed).
bool same_response(const std::string& a_json, const std::string& b_json);

// Rows under a filter: all | unlabelled (nobody's verdict) | mine (no verdict of `annotator`: a
// second annotator's queue) | labelled (newest verdict not a skip) | skipped.
int64_t count_label_rows(Workspace& ws, int64_t dataset, const std::string& filter, const std::string& annotator = "");
std::vector<CandidateRow> page_label_rows(Workspace& ws, int64_t dataset, const std::string& filter, int64_t offset,
                                          int64_t limit, const std::string& annotator = "");
// Index of `position` among the rows under `filter` (-1 when the filter hides it).
int64_t filtered_index(Workspace& ws, int64_t dataset, const std::string& filter, int64_t position,
                       const std::string& annotator = "");
CandidateRow label_row_at(Workspace& ws, int64_t dataset, int64_t position);
// The first row after `after` that nobody (or, named, `annotator`) has judged (-1 when none).
int64_t next_unlabelled(Workspace& ws, int64_t dataset, int64_t after, const std::string& annotator = "");
std::vector<CandidateRow> list_candidates(Workspace& ws, int64_t dataset);  // every row (the CLI)

struct LabelProgress {
  int64_t rows = 0, labelled = 0, skipped = 0;
};
LabelProgress label_progress(Workspace& ws, int64_t dataset);

// One annotator's verdict on a row.
struct Verdict {
  std::string label, note;
  std::vector<int> ranking;
};
Verdict verdict_of(Workspace& ws, int64_t dataset, int64_t position, const std::string& annotator);

// Sets `annotator`'s verdict on the row at `position` (0-based). Candidates: a, b, tie, both_bad,
// skip, or ranked with `ranking` (2 or more distinct response indices, best first; the ones left
// out are not compared). Preference: keep | chosen, flip | rejected, tie, drop, skip. "" or
// "none" clears the verdict. A or b on two identical responses is refused.
void label_candidate(Workspace& ws, int64_t dataset, int64_t position, const std::string& label, const std::string& note,
                     const std::string& annotator, const std::vector<int>& ranking = {});
// Replaces response `which` (0 = a, 1 = b, ...) of the row; the first edit of a row keeps the
// responses as they were in "original_responses". Undoable like any row edit.
void edit_response(Workspace& ws, int64_t dataset, int64_t position, int which, const std::string& text,
                   const std::string& author);

struct LabelExportReport {
  int64_t pairs = 0, ratings = 0;  // rows written to each file
  int64_t ties = 0, both_bad = 0, skipped = 0, dropped = 0, unlabelled = 0;
  int64_t identical = 0;  // pairs left out because both sides read the same
  int64_t invalid = 0;    // pairs left out because they would not pass the preference checks
  // Two-source candidates: how often each source's response was chosen, and compared.
  std::map<std::string, int64_t> wins, compared;
  std::string summary() const;  // "12 pairs; left out: 3 ties, 1 identical, 4 unlabelled" (ratings not named)
};
// pairs_out ("" = count only): {"prompt","chosen","rejected"} for each pair a verdict makes: a or b
// on two responses; for a ranking every (better, worse) pair of its order; a preference row as
// reviewed (flip swaps it; tie, drop and skip leave it out; unlabelled rows keep the stored
// order). ratings_out ("" = not written): KTO rows {"prompt","completion","label"} for single
// responses labelled a (true) or both_bad (false), and the responses of a both_bad pair (false).
// Pairs of identical texts are left out and counted. Both files are written atomically.
LabelExportReport export_labels(Workspace& ws, int64_t dataset, const std::string& pairs_out, const std::string& ratings_out);

// Verdict sets: every verdict of the dataset (or one annotator's) as JSONL, each line naming its
// row by a hash of the row as generated (edits to responses do not change it) and its occurrence.
int64_t export_verdicts(Workspace& ws, int64_t dataset, const std::string& out, const std::string& annotator = "");
struct MergeReport {
  int64_t added = 0, updated = 0, kept = 0;  // kept: the workspace's verdict was as new or newer
  int64_t unmatched = 0;                     // lines whose row is not in this dataset
  std::vector<std::string> annotators;
};
// Adds another workspace's verdict set in one transaction; the newer verdict of an annotator wins.
MergeReport merge_verdicts(Workspace& ws, int64_t dataset, const std::string& path);

struct Agreement {
  std::string a, b;  // the two annotators compared
  std::vector<std::pair<std::string, int64_t>> annotators;  // every annotator and their verdict count
  int64_t both = 0, agree = 0;                               // rows both judged; of those, the same verdict
  double observed = 0, expected = 0, kappa = 0;              // kappa is NaN when expected agreement is 1
  std::vector<std::string> categories;
  std::vector<std::vector<int64_t>> confusion;  // [a's category][b's category]
  struct Row {
    int64_t position = 0;
    std::string a, b;
  };
  std::vector<Row> disagreements;
};
// Cohen's kappa between two annotators (named, else the two with the most verdicts) over the rows
// both judged. A ranking counts as its first choice ("best:N"); skips are left out.
Agreement label_agreement(Workspace& ws, int64_t dataset, const std::string& a = "", const std::string& b = "");

}  // namespace hone
