// The Evaluate page's pairwise comparisons: each one's targets, status (with the labelling progress
// of a blind set) and the win rate of A with its interval. A blind set labelled since the last look
// gets its win rate recomputed here (runs/evaluate.h refresh_pairwise).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QGroupBox>
#include <QMap>
#include <map>
#include <string>
#include <vector>

#include "store/evals.h"

class QTableWidget;

namespace hone::ui {

class PairwiseList : public QGroupBox {
  Q_OBJECT
 public:
  explicit PairwiseList(QWidget* parent = nullptr);
  // Recomputes blind evaluations whose labels changed (updating `evals`), then lists the pairwise
  // ones; hidden while there are none. `labels` names targets by their target JSON.
  void update(Workspace& ws, std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels);
  void forget() { label_prints_.clear(); }  // another workspace
  QTableWidget* table() const { return table_; }

 private:
  QTableWidget* table_;
  std::map<long long, std::string> label_prints_;  // blind evaluation -> its labels when last recomputed
};

}  // namespace hone::ui
