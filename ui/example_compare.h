// The Evaluate page's per-example view: two stored evaluations of one suite (A and B) side by side,
// row by row, with a filter for the rows where one is right and the other wrong. Aggregates hide
// which questions changed; this shows them.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMap>
#include <QWidget>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "store/evals.h"

class QComboBox;
class QLabel;
class QTableWidget;

namespace hone::ui {

// Whether an example of an evaluation of `kind` counts as right: a choice example's `correct`; a
// generated answer's exact_match >= 0.5 (its first metric when it has no exact_match). Loss
// examples have no right or wrong (false).
bool exampleCorrect(const QString& kind, const nlohmann::json& example);

class ExampleCompare : public QWidget {
  Q_OBJECT
 public:
  enum Filter { AllRows = 0, AWrongBRight, ARightBWrong };
  explicit ExampleCompare(QWidget* parent = nullptr);
  // `evals`: the completed, non-pairwise evaluations (any order); `labels` names their targets.
  void setEvaluations(const QString& workspace, const std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels);

  // For tests and the shell.
  bool setSuite(const QString& suite, const QString& kind);  // picks the default A and B
  bool setPair(qint64 a, qint64 b);
  qint64 evalA() const;
  qint64 evalB() const;
  void setFilter(Filter f);
  QList<qint64> shownRows() const;  // the suite row of each table row
  QTableWidget* table() const { return table_; }

 private:
  void fillEvalCombos();
  void rebuild();
  const std::vector<nlohmann::json>& examplesOf(qint64 id);

  QString workspace_;
  std::vector<EvalRecord> evals_;
  QMap<QString, QString> labels_;
  std::map<qint64, std::vector<nlohmann::json>> cache_;  // examples read from the store, by evaluation
  QComboBox* suite_;
  QComboBox* a_;
  QComboBox* b_;
  QComboBox* filter_;
  QLabel* summary_;
  QTableWidget* table_;
  QList<qint64> shown_;
};

}  // namespace hone::ui
