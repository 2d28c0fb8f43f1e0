// The Train page's view of the run in progress: progress bar, status line, live plots (loss raw,
// smoothed and held-out; learning rate; gradient norm; the recipe's own metrics from its plot
// hints) and the log. It only shows what TrainJob reports.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMap>
#include <QStringList>
#include <QWidget>
#include <vector>

#include "train/metrics.h"

class QCPGraph;
class QCustomPlot;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QTabWidget;

namespace hone::ui {

class RunView : public QWidget {
  Q_OBJECT
 public:
  explicit RunView(QWidget* parent = nullptr);

  void reset(const QString& status);  // a new run: empty plots and log
  void showStep(const hone::StepMetrics& m, bool paused);
  // Steps recorded earlier (a resumed run's), drawn before its new ones arrive.
  void showHistory(const std::vector<hone::StepMetrics>& steps);
  // A run ended: a failed, cancelled or interrupted run's curves leave the view (the Runs page keeps them).
  void showFinished(const QString& status, const QString& error, const QString& output);
  void setStatus(const QString& s);
  void setPaused(bool paused);  // the progress bar says so
  void setBusy(bool busy);      // work without steps to count (the demo's base): a moving bar
  void appendLog(const QString& line);

  int lossPointCount() const;
  QStringList methodMetricNames() const;  // the recipe's metrics plotted so far (DPO: rewards/margins, ...)
  void showMethodMetrics();               // brings the method-metrics plot to the front
  QString statusText() const;
  QString overfitText() const;  // the overfitting warning shown ("" when none)
  QString logText() const;

 private:
  void clearPlots();
  void addPoints(const hone::StepMetrics& m);
  QProgressBar* progress_;
  QLabel* status_;
  QTabWidget* tabs_;
  QCustomPlot* loss_plot_;
  QCustomPlot* lr_plot_;
  QCustomPlot* grad_plot_;
  QCustomPlot* method_plot_;
  QMap<QString, QCPGraph*> method_graphs_;  // recipe metric name -> its graph
  QPlainTextEdit* log_;
  QLabel* overfit_;
  std::vector<std::pair<int64_t, double>> train_loss_, eval_loss_;  // for the overfitting check
  double smooth_ = 0;
  bool have_smooth_ = false;
};

}  // namespace hone::ui
