// Labelling candidate pairs: a prompt with responses (sampled by `hone-cli label generate` or
// imported from {"prompt", "responses": [...]} rows), labelled a | b | tie | both_bad | skip with a
// note, responses editable with the original kept in the row, and the result exported as
// preference pairs for DPO/ORPO and as ratings for KTO.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "store/workspace.h"

namespace hone {

struct CandidateRow {
  int64_t row_id = 0, position = 0;
  std::string data;   // canonical {"prompt", "responses", "original_responses"?}
  std::string label;  // "" when unlabelled
  std::string note, author;
  std::vector<int> edited;  // indices of responses that differ from the originals
};

std::vector<CandidateRow> list_candidates(Workspace& ws, int64_t dataset);
// Label of the row at `position` (0-based, as `dataset show` numbers them).
void label_candidate(Workspace& ws, int64_t dataset, int64_t position, const std::string& label, const std::string& note,
                     const std::string& author);
// Replaces response `which` (0 = a, 1 = b, ...) of the row; the first edit of a row keeps the
// responses as they were in "original_responses". Undoable like any row edit.
void edit_response(Workspace& ws, int64_t dataset, int64_t position, int which, const std::string& text,
                   const std::string& author);

struct LabelExportReport {
  int64_t pairs = 0, ratings = 0;                       // rows written to each file
  int64_t ties = 0, both_bad = 0, skipped = 0, unlabelled = 0;
};
// pairs_out: {"prompt","chosen","rejected"} for every row labelled a or b (ties and both_bad left
// out and counted). ratings_out ("" = not written): KTO rows {"prompt","completion","label"} for
// single responses labelled a (true) or both_bad (false), and both responses of a both_bad pair
// (false). Both files are written atomically.
LabelExportReport export_labels(Workspace& ws, int64_t dataset, const std::string& pairs_out, const std::string& ratings_out);

}  // namespace hone
