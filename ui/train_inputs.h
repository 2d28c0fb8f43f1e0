// What a run trains on, the top of the Train page's form: the base model folder with its summary
// (refused with the reason when training could not use it; the demo model offered when the
// workspace has none) and the workspace datasets to tick, each with its kind and rows.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QStringList>
#include <QWidget>

#include "model/config.h"

namespace hone::ui {

class TrainInputs : public QWidget {
  Q_OBJECT
 public:
  explicit TrainInputs(QWidget* parent = nullptr);

  void setWorkspace(const QString& dir);
  void refreshDatasets();  // ticks survive (the window refreshes when the workspace changes elsewhere)
  void setModelFolder(const QString& dir);
  QString modelFolder() const;  // the folder (a hub name resolved from the cache)
  QString modelRef() const;     // as typed: a folder or a hub name (what a run config records)
  // Checks the model again (a hub name downloaded or removed meanwhile, a folder changed on disk).
  void recheckModel();
  bool modelUsable() const { return model_ok_; }
  QString modelProblem() const { return model_problem_; }
  const ModelConfig* modelConfig() const { return model_ok_ ? &model_cfg_ : nullptr; }
  bool isDemoModel() const;  // the workspace's demo base (its own presets apply)
  bool demoOffered() const;  // the "Build the demo model" button is shown (no demo model yet)
  void setDemoBusy(bool busy);

  QStringList tickedDatasets() const;
  QStringList tickedKinds() const;  // the ticked datasets' kinds (chat, text, preference, candidates)
  int64_t tickedRows() const;
  void selectDataset(const QString& name, bool on);
  void selectOnlyDataset(const QString& name);
  // Ticks exactly the datasets these run-config entries name as dataset:NAME.
  void tickDataRefs(const std::vector<std::string>& refs);

 Q_SIGNALS:
  void modelChanged();     // usable or not, another model or none
  void datasetsChanged();  // the ticks or the list
  void buildDemoRequested();
  void problem(const QString& message);  // for the page's log (an unreadable workspace)

 private:
  void updateModelSummary();
  QString checked_folder_;  // what the last check resolved the field to
  QString workspace_;
  QLineEdit* model_;
  QLabel* model_info_;
  QPushButton* build_demo_;
  QListWidget* datasets_;
  ModelConfig model_cfg_;
  bool model_ok_ = false;
  QString model_problem_ = "No model chosen.";
};

}  // namespace hone::ui
