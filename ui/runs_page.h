// Runs page: the workspace's runs in a sortable, filterable table; several selected runs overlay
// one metric (legend per run, smoothing, log scale, x = step / tokens / time); the config keys
// that differ; PNG and CSV export; resume, rename, annotate, delete; "copy as command".
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QSlider;
class QTableWidget;
class QTextEdit;
class QPushButton;
class QCustomPlot;

namespace hone::ui {

class RunsPage : public QWidget {
  Q_OBJECT
 public:
  explicit RunsPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void refresh();

  // For tests and the shell.
  void selectRuns(const QList<qint64>& ids);
  int plottedRunCount() const;  // graphs with at least one point
  int plottedPointCount() const;
  QStringList metricChoices() const;  // what the selected runs recorded
  QString configDiffText() const;
  QString commandFor(qint64 id) const;
  bool exportPng(const QString& path);
  bool exportCsv(const QString& path) const;
  int rowCount() const;
  QStringList scoreColumns() const;  // "suite · metric" headers of the evaluation columns
  QString overfitText() const;       // the warning for the selected runs ("" when none)
  bool resumeEnabled() const;  // the selected run has a checkpoint and may resume
  QString resumeTip() const;   // what a resume restores, or why there is none

 Q_SIGNALS:
  void resumeRequested(qint64 run_id);

 private:
  QList<qint64> selectedIds() const;
  void updateOverlay();
  void applyFilter();

  QString workspace_;
  QLineEdit* filter_;
  QTableWidget* table_;
  QComboBox* metric_;
  QComboBox* xaxis_;
  QSlider* smoothing_;
  QCheckBox* log_scale_;
  QCustomPlot* plot_;
  QTextEdit* diff_;
  QPushButton* resume_;
  QLabel* overfit_;
  QStringList score_cols_;
};

}  // namespace hone::ui
