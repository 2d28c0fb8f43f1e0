// The run view (see run_view.h): the plots follow the steps TrainJob reports; replots are queued,
// so a burst of steps costs one repaint.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "run_view.h"

#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QScrollBar>
#include <QTabWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "look.h"
#include "train/overfit_check.h"

namespace hone::ui {
namespace {

QCustomPlot* make_plot(const QString& y_label, QWidget* parent) {
  auto* p = new QCustomPlot(parent);
  p->xAxis->setLabel("step");
  p->yAxis->setLabel(y_label);
  p->setMinimumHeight(180);
  return p;
}

}  // namespace

RunView::RunView(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  progress_ = new QProgressBar;
  progress_->setFormat("%v / %m steps");
  lay->addWidget(progress_);
  status_ = new QLabel("Idle.");
  status_->setObjectName("status");
  // Long messages wrap instead of widening the page (which clipped the form's Browse button).
  status_->setWordWrap(true);
  status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  lay->addWidget(status_);
  overfit_ = new QLabel;
  overfit_->setObjectName("overfitWarning");
  overfit_->setWordWrap(true);
  overfit_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  overfit_->setStyleSheet("QLabel { color: #c0392b; }");
  overfit_->hide();
  lay->addWidget(overfit_);
  tabs_ = new QTabWidget;
  loss_plot_ = make_plot("loss", tabs_);
  loss_plot_->addGraph();  // 0: raw training loss
  loss_plot_->graph(0)->setPen(QPen(QColor(160, 160, 160)));
  loss_plot_->graph(0)->setName("loss");
  loss_plot_->addGraph();  // 1: smoothed
  loss_plot_->graph(1)->setPen(QPen(QColor(31, 119, 180), 2));
  loss_plot_->graph(1)->setName("loss (smoothed)");
  loss_plot_->addGraph();  // 2: eval
  loss_plot_->graph(2)->setPen(QPen(QColor(214, 39, 40), 2));
  loss_plot_->graph(2)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
  loss_plot_->graph(2)->setName("eval loss");
  loss_plot_->graph(2)->removeFromLegend();  // listed once a run has held-out data
  placeLegendBelow(loss_plot_);
  lr_plot_ = make_plot("learning rate", tabs_);
  lr_plot_->addGraph();
  grad_plot_ = make_plot("grad norm", tabs_);
  grad_plot_->addGraph();
  tabs_->addTab(loss_plot_, "Loss");
  tabs_->addTab(lr_plot_, "Learning rate");
  tabs_->addTab(grad_plot_, "Grad norm");
  // What the recipe reports beside the loss (DPO: reward margin and accuracy), one graph per name.
  method_plot_ = make_plot("method metrics", tabs_);
  tabs_->addTab(method_plot_, "Method metrics");
  lay->addWidget(tabs_, 3);
  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  lay->addWidget(log_, 1);
}

void RunView::clearPlots() {
  for (auto* p : {loss_plot_, lr_plot_, grad_plot_})
    for (int g = 0; g < p->graphCount(); ++g) p->graph(g)->data()->clear();
  loss_plot_->graph(2)->removeFromLegend();
  method_plot_->clearGraphs();
  method_graphs_.clear();
  placeLegendBelow(method_plot_);
  have_smooth_ = false;
  train_loss_.clear();
  eval_loss_.clear();
  overfit_->clear();
  overfit_->hide();
}

void RunView::reset(const QString& status) {
  clearPlots();
  log_->clear();
  status_->setText(status);
  progress_->setFormat("%v / %m steps");
}

void RunView::showHistory(const std::vector<StepMetrics>& steps) {
  for (const auto& m : steps) addPoints(m);
  if (!steps.empty()) {
    progress_->setMaximum(static_cast<int>(steps.back().total_steps));
    progress_->setValue(static_cast<int>(steps.back().step));
  }
  for (auto* plot : {loss_plot_, lr_plot_, grad_plot_, method_plot_}) {
    plot->rescaleAxes();
    plot->replot(QCustomPlot::rpQueuedReplot);
  }
}

void RunView::addPoints(const StepMetrics& p) {
  const double loss = p.loss();
  smooth_ = have_smooth_ ? 0.9 * smooth_ + 0.1 * loss : loss;
  have_smooth_ = true;
  loss_plot_->graph(0)->addData(p.step, loss);
  loss_plot_->graph(1)->addData(p.step, smooth_);
  train_loss_.emplace_back(p.step, loss);
  if (p.has_eval()) {
    loss_plot_->graph(2)->addData(p.step, p.get("eval_loss"));
    loss_plot_->graph(2)->addToLegend();
    eval_loss_.emplace_back(p.step, p.get("eval_loss"));
    const OverfitWarning w = check_overfitting(train_loss_, eval_loss_);
    overfit_->setText(QString::fromStdString(w.message));
    overfit_->setVisible(w.warn);
  }
  lr_plot_->graph(0)->addData(p.step, p.get("lr"));
  grad_plot_->graph(0)->addData(p.step, p.get("grad_norm"));
  static const QColor kColors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(148, 103, 189)};
  // The recipe's metrics, and the scores of the run's evaluation suites (eval/<suite>/<metric>).
  std::vector<std::string> shown = p.plot_hints;
  for (const auto& x : p.scalars)
    if (x.name.rfind("eval/", 0) == 0) shown.push_back(x.name);
  for (const auto& name : shown) {
    if (!p.has(name)) continue;
    const QString n = QString::fromStdString(name);
    if (!method_graphs_.contains(n)) {
      // Shares (0..1, e.g. rewards/accuracies) on the right axis, so that they do not flatten margins.
      const bool share = n.endsWith("accuracies") || (n.startsWith("eval/") && !n.endsWith("/loss"));
      if (share) {
        method_plot_->yAxis2->setVisible(true);
        method_plot_->yAxis2->setLabel("share");
      }
      auto* g = method_plot_->addGraph(method_plot_->xAxis, share ? method_plot_->yAxis2 : method_plot_->yAxis);
      g->setName(n);
      g->setPen(QPen(kColors[method_graphs_.size() % 4], 2));
      if (n.startsWith("eval/")) g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));  // a few points per run
      method_graphs_.insert(n, g);
      placeLegendBelow(method_plot_);
    }
    method_graphs_[n]->addData(p.step, p.get(name));
  }
}

void RunView::showStep(const StepMetrics& p, bool paused) {
  progress_->setMaximum(static_cast<int>(p.total_steps));
  progress_->setValue(static_cast<int>(p.step));
  addPoints(p);
  const double loss = p.loss();
  for (auto* plot : {loss_plot_, lr_plot_, grad_plot_, method_plot_}) {
    plot->rescaleAxes();
    plot->replot(QCustomPlot::rpQueuedReplot);  // coalesces bursts of steps into one repaint
  }
  status_->setText(QString(paused ? "<b>Paused</b> · " : "") +
                   QString("step %1/%2 · epoch %3 · loss %4 · %5 tokens/s · elapsed %6 · ETA %7 · RAM %8, peak %9")
                       .arg(p.step)
                       .arg(p.total_steps)
                       .arg(p.epoch, 0, 'f', 2)
                       .arg(loss, 0, 'f', 4)
                       .arg(p.get("tokens_per_s"), 0, 'f', 0)
                       .arg(humanTime(p.get("elapsed_s")), humanTime(p.eta_s), humanBytes(static_cast<double>(p.rss_bytes)))
                       .arg(humanBytes(static_cast<double>(std::max(p.peak_rss_bytes, p.rss_bytes)))));
}

void RunView::showFinished(const QString& status, const QString& error, const QString& output) {
  // The curves and the progress stay as the run left them (a cancelled run's too): the next run
  // starts from a clean view (reset()).
  progress_->setFormat("%v / %m steps");
  QString s = "Run " + status;
  if (!error.isEmpty()) s += ": " + error;
  if (!output.isEmpty()) s += " · output " + output;
  status_->setText(s);
  appendLog(s);
}

void RunView::setStatus(const QString& s) { status_->setText(s); }
QString RunView::overfitText() const { return overfit_->isHidden() ? QString() : overfit_->text(); }
void RunView::setBusy(bool busy) {
  progress_->setRange(0, busy ? 0 : 1);
  progress_->setValue(0);
}
void RunView::setPaused(bool paused) { progress_->setFormat(paused ? "Paused at %v / %m steps" : "%v / %m steps"); }
void RunView::appendLog(const QString& line) {
  log_->appendPlainText(line);
  log_->verticalScrollBar()->setValue(log_->verticalScrollBar()->maximum());  // the newest line in view
}
int RunView::lossPointCount() const { return loss_plot_->graph(0)->dataCount(); }
QStringList RunView::methodMetricNames() const { return method_graphs_.keys(); }
void RunView::showMethodMetrics() { tabs_->setCurrentWidget(method_plot_); }
QString RunView::statusText() const { return status_->text(); }
QString RunView::logText() const { return log_->toPlainText(); }

}  // namespace hone::ui
