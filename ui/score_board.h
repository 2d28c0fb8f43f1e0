// The Evaluate page's scores: the newest evaluation of each target on each suite as a table
// (rows = targets, columns = suite · metric, cells "0.930 [0.863, 0.966] n=100"), one column as a
// bar chart with its 95% intervals as whiskers, and both exported (CSV, PNG). The table and the
// chart are two widgets that the page lays out apart; this object keeps them in step.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMap>
#include <QStringList>
#include <QObject>
#include <nlohmann/json.hpp>
#include <vector>

#include "store/evals.h"

class QComboBox;
class QCustomPlot;
class QTableWidget;
class QWidget;

namespace hone::ui {

// "0.930 [0.863, 0.966] n=100" (as hone-cli eval prints it); a score without an interval "5.79 n=8".
QString scoreText(const nlohmann::json& metric);

class ScoreBoard : public QObject {
  Q_OBJECT
 public:
  explicit ScoreBoard(QObject* parent = nullptr);
  ~ScoreBoard() override;
  QTableWidget* table() const { return table_; }  // objectName resultsTable
  QWidget* chartPanel() const { return chart_panel_; }  // the column's combo over the chart (scoreChart)
  QCustomPlot* chart() const { return plot_; }

  // `evals`: one completed evaluation per (target, suite, kind); `labels` names each target (by its
  // target JSON); `order` lists the targets in the order of the rows.
  void setEvaluations(const std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels, const QStringList& order);

  // For tests and the shell.
  QStringList columns() const;  // "suite · metric"
  QStringList rowLabels() const;
  bool setChartColumn(const QString& column);
  QString chartColumn() const;
  QString chartSuite() const;  // the suite of the charted column
  bool exportCsv(const QString& path) const;  // target,suite,metric,value,lo,hi,n
  bool exportPng(const QString& path);

 Q_SIGNALS:
  void suiteChosen(const QString& suite, const QString& kind);  // a cell or the chart's column picked

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;  // the chart's resizes refit its labels

 private:
  void fitTickLabels();
  struct Column {
    QString suite, kind, metric;
    QString title() const;
  };
  struct Cell {
    bool present = false;
    nlohmann::json score;
    qint64 eval_id = 0;
  };
  void rebuildChart();

  QTableWidget* table_;
  QWidget* chart_panel_;
  QComboBox* metric_;
  QCustomPlot* plot_;
  QStringList rows_;  // target labels
  std::vector<Column> cols_;
  std::vector<std::vector<Cell>> cells_;  // [row][column]
};

}  // namespace hone::ui
