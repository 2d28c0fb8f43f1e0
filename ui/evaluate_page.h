// Evaluate page: tick suites (choice, chat and text datasets) and targets (base models, completed
// runs, model folders), score every pair on a worker, and read the stored results: a table with
// 95% intervals, a bar chart with whiskers, a row-by-row comparison of two evaluations, CSV and PNG
// export, and blind pairwise comparisons judged on the Label page.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMap>
#include <QWidget>
#include <string>
#include <vector>

#include "store/evals.h"

class QComboBox;
class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace hone::ui {

class ExampleCompare;
class Job;
class PairwiseList;
class ScoreBoard;

class EvaluatePage : public QWidget {
  Q_OBJECT
 public:
  explicit EvaluatePage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void refresh();  // suites, targets and stored evaluations, keeping what is ticked and chosen

  // For tests and the shell. A target is "run:N" or a model folder.
  bool setSuiteChecked(const QString& name, bool on);
  bool setTargetChecked(const QString& target, bool on);
  void addModelFolder(const QString& dir);
  // mode of chat suites: generate | loss; choice format: plain | raw | chat; limit 0 = all rows
  void setOptions(const QString& chat_mode, const QString& choice_format, int max_new_tokens, int limit);
  bool startEvaluate();       // every ticked (suite, target) pair
  bool startBlindPairwise();  // two ticked targets on one ticked chat suite
  Job* job() const { return job_; }
  QString statusText() const;
  QString blindSet() const { return blind_set_; }  // the blind set made last, "" when none
  QString targetLabel(const QString& target) const;  // as the results table names it
  ScoreBoard* scores() const { return scores_; }
  ExampleCompare* examples() const { return examples_; }
  PairwiseList* pairwise() const { return pairwise_; }
  bool exportCsv(const QString& path) const;
  bool exportPng(const QString& path);

 Q_SIGNALS:
  void labelRequested(const QString& dataset);  // open the blind set on the Label page
  void datasetsChanged();

 private:
  void noteBlindResult(const std::vector<EvalRecord>& evals);
  struct Pick {
    QString suite, kind;  // suite name and dataset kind
  };
  QList<Pick> checkedSuites() const;
  QStringList checkedTargets() const;  // target keys (eval_target_json dumps)
  void setBusy(bool busy);

  QString workspace_;
  QListWidget* suites_;
  QListWidget* targets_;
  QComboBox* chat_mode_;
  QComboBox* choice_format_;
  QSpinBox* max_new_;
  QSpinBox* limit_;
  QPushButton* evaluate_;
  QPushButton* blind_;
  QPushButton* cancel_;
  QPushButton* open_label_;
  QProgressBar* progress_;
  QLabel* status_;
  PairwiseList* pairwise_;
  ScoreBoard* scores_;
  ExampleCompare* examples_;
  Job* job_;
  QStringList extra_models_;           // model folders added by hand
  QMap<QString, QString> labels_;      // target key -> label in tables
  QString blind_set_;
  std::string shown_;  // what the lists and tables were built from (see refresh)
};

}  // namespace hone::ui
