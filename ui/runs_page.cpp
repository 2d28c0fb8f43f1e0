// Runs page over the store (store/runs.h). Metric series of a few runs are small queries, read on
// the GUI thread when the selection changes.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs_page.h"

#include "runs/run_launcher.h"

#include <QSignalBlocker>
#include <QDir>

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QTableWidget>
#include <QTextEdit>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include "common/error.h"
#include "look.h"
#include "store/evals.h"
#include "runs/evaluate.h"
#include "store/runs.h"
#include "train/eval_stats.h"
#include "train/overfit_check.h"

namespace hone::ui {
namespace {

enum Col { kId, kName, kMethod, kRecipe, kModel, kStatus, kStarted, kFinal, kCols };

// Numeric sort for the id and loss columns.
struct NumItem : QTableWidgetItem {
  using QTableWidgetItem::QTableWidgetItem;
  bool operator<(const QTableWidgetItem& o) const override {
    return data(Qt::UserRole).toDouble() < o.data(Qt::UserRole).toDouble();
  }
};

void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>* out) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    (*out)[prefix] = j.dump();
  }
}

const QColor kPalette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                           QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};

}  // namespace

RunsPage::RunsPage(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  filter_ = new QLineEdit;
  filter_->setPlaceholderText("Filter by name, status, method or model");
  filter_->setClearButtonEnabled(true);
  auto* refresh_btn = new QPushButton("Refresh");
  refresh_btn->setShortcut(QKeySequence::Refresh);
  top->addWidget(filter_, 1);
  top->addWidget(refresh_btn);
  lay->addLayout(top);

  auto* split = new QSplitter(Qt::Vertical);
  table_ = new QTableWidget(0, kCols);
  table_->setHorizontalHeaderLabels({"ID", "Name", "Method", "Recipe", "Base model", "Status", "Started", "Final loss"});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSortingEnabled(true);
  table_->horizontalHeader()->setSectionResizeMode(kModel, QHeaderView::Stretch);
  table_->verticalHeader()->hide();
  split->addWidget(table_);

  auto* bottom = new QWidget;
  auto* bl = new QVBoxLayout(bottom);
  auto* controls = new QHBoxLayout;
  metric_ = new QComboBox;
  metric_->addItems({"loss", "eval_loss", "lr", "grad_norm", "tokens_per_s", "eval_ppl"});
  metric_->setToolTip("Metric to overlay for the selected runs");
  xaxis_ = new QComboBox;
  xaxis_->addItems({"step", "tokens", "time"});
  xaxis_->setToolTip("x axis: optimizer step, tokens seen (step x tokens per step), or seconds since the start");
  smoothing_ = new QSlider(Qt::Horizontal);
  smoothing_->setRange(0, 99);
  smoothing_->setValue(60);
  smoothing_->setToolTip("Exponential moving average weight (0 = raw)");
  log_scale_ = new QCheckBox("log y");
  controls->addWidget(new QLabel("Metric"));
  controls->addWidget(metric_);
  controls->addWidget(new QLabel("x"));
  controls->addWidget(xaxis_);
  controls->addWidget(new QLabel("Smoothing"));
  controls->addWidget(smoothing_, 1);
  controls->addWidget(log_scale_);
  bl->addLayout(controls);
  overfit_ = new QLabel;
  overfit_->setObjectName("overfitWarning");
  overfit_->setWordWrap(true);
  overfit_->setStyleSheet("QLabel { color: #c0392b; }");
  overfit_->hide();
  bl->addWidget(overfit_);
  auto* mid = new QSplitter(Qt::Horizontal);
  plot_ = new QCustomPlot;
  plot_->setMinimumHeight(220);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  diff_ = new QTextEdit;
  diff_->setReadOnly(true);
  diff_->setPlaceholderText("Select runs to see the config keys that differ and their final metrics.");
  mid->addWidget(plot_);
  mid->addWidget(diff_);
  mid->setStretchFactor(0, 2);
  bl->addWidget(mid, 1);
  auto* actions = new QHBoxLayout;
  auto* png = new QPushButton("Export chart…");
  auto* csv = new QPushButton("Export CSV…");
  auto* copy = new QPushButton("Copy as command");
  copy->setToolTip("The hone-cli command that reproduces the selected run from its config");
  auto* resume = resume_ = new QPushButton("Resume");
  resume->setToolTip("Continue an interrupted or cancelled run from its newest checkpoint");
  resume->setEnabled(false);
  auto* rename = new QPushButton("Rename…");
  auto* notes = new QPushButton("Notes…");
  auto* del = new QPushButton("Delete");
  for (auto* b : {png, csv, copy, resume, rename, notes, del}) actions->addWidget(b);
  // The actions on a run are offered once one is selected (rename and notes: exactly one).
  for (auto* b : {copy, rename, notes, del}) b->setEnabled(false);
  connect(table_, &QTableWidget::itemSelectionChanged, this, [this, copy, rename, notes, del] {
    const int n = int(selectedIds().size());
    copy->setEnabled(n == 1);
    rename->setEnabled(n == 1);
    notes->setEnabled(n == 1);
    del->setEnabled(n >= 1);
  });
  actions->addStretch(1);
  bl->addLayout(actions);
  split->addWidget(bottom);
  split->setStretchFactor(1, 2);
  lay->addWidget(split, 1);

  connect(refresh_btn, &QPushButton::clicked, this, &RunsPage::refresh);
  connect(filter_, &QLineEdit::textChanged, this, &RunsPage::applyFilter);
  connect(table_, &QTableWidget::itemSelectionChanged, this, &RunsPage::updateOverlay);
  connect(metric_, &QComboBox::currentIndexChanged, this, &RunsPage::updateOverlay);
  connect(xaxis_, &QComboBox::currentIndexChanged, this, &RunsPage::updateOverlay);
  connect(smoothing_, &QSlider::valueChanged, this, &RunsPage::updateOverlay);
  connect(log_scale_, &QCheckBox::toggled, this, &RunsPage::updateOverlay);
  connect(png, &QPushButton::clicked, this, [this] {
    QString f = QFileDialog::getSaveFileName(this, "Export chart", "runs.png", "PNG image (*.png);;PDF (*.pdf)");
    if (!f.isEmpty()) exportPng(f);
  });
  connect(csv, &QPushButton::clicked, this, [this] {
    QString f = QFileDialog::getSaveFileName(this, "Export metrics", "runs.csv", "CSV (*.csv)");
    if (!f.isEmpty()) exportCsv(f);
  });
  connect(copy, &QPushButton::clicked, this, [this] {
    auto ids = selectedIds();
    if (!ids.isEmpty()) QApplication::clipboard()->setText(commandFor(ids.first()));
  });
  connect(resume, &QPushButton::clicked, this, [this] {
    auto ids = selectedIds();
    if (!ids.isEmpty()) Q_EMIT resumeRequested(ids.first());
  });
  connect(rename, &QPushButton::clicked, this, [this] {
    auto ids = selectedIds();
    if (ids.isEmpty()) return;
    guarded(this, "Rename run", [&] {
      Workspace ws(workspace_.toStdString());
      bool ok = false;
      QString n = QInputDialog::getText(this, "Rename run", "Name", QLineEdit::Normal,
                                        QString::fromStdString(get_run(ws, ids.first()).name), &ok);
      if (ok && !n.trimmed().isEmpty()) rename_run(ws, ids.first(), n.trimmed().toStdString());
    });
    refresh();
  });
  connect(notes, &QPushButton::clicked, this, [this] {
    auto ids = selectedIds();
    if (ids.isEmpty()) return;
    guarded(this, "Run notes", [&] {
      Workspace ws(workspace_.toStdString());
      bool ok = false;
      QString n = QInputDialog::getMultiLineText(this, "Run notes", "Notes", QString::fromStdString(get_run(ws, ids.first()).notes), &ok);
      if (ok) set_run_notes(ws, ids.first(), n.toStdString());
    });
    updateOverlay();
  });
  connect(del, &QPushButton::clicked, this, [this] {
    auto ids = selectedIds();
    if (ids.isEmpty()) return;
    QMessageBox box(QMessageBox::Question, "Delete runs",
                    QString("Delete %1 run(s)? Their folders hold the adapters, checkpoints and logs.").arg(ids.size()),
                    QMessageBox::NoButton, this);
    auto* files = box.addButton("Delete records and folders", QMessageBox::DestructiveRole);
    auto* record = box.addButton("Delete records, keep folders", QMessageBox::AcceptRole);
    box.addButton(QMessageBox::Cancel);
    box.exec();
    if (box.clickedButton() != files && box.clickedButton() != record) return;
    guarded(this, "Delete runs", [&] {
      Workspace ws(workspace_.toStdString());
      for (auto id : ids) {
        const RunInfo info = get_run(ws, id);
        if (info.status == "running") throw Error("run " + std::to_string(id) + " is training; cancel it first");
        delete_run(ws, id);
        // Only a folder inside this workspace's runs/ is removed: a record can name any path.
        const QString dir = QDir(QString::fromStdString(info.run_dir)).canonicalPath();
        const QString runs = QDir(QString::fromStdString(ws.runs_dir())).canonicalPath();
        if (box.clickedButton() == files && !dir.isEmpty() && !runs.isEmpty() && dir.startsWith(runs + "/"))
          QDir(dir).removeRecursively();
      }
    });
    refresh();
  });
}

void RunsPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  refresh();
}

void RunsPage::refresh() {
  const auto keep = selectedIds();
  // The sort follows its column by name: score columns come and go as evaluations arrive.
  const int sorted_col = table_->horizontalHeader()->sortIndicatorSection();
  const Qt::SortOrder sorted_order = table_->horizontalHeader()->sortIndicatorOrder();
  const QString sorted_by = table_->horizontalHeaderItem(sorted_col) ? table_->horizontalHeaderItem(sorted_col)->text() : QString();
  table_->setSortingEnabled(false);
  table_->setRowCount(0);
  if (workspace_.isEmpty()) return;
  try {
    Workspace ws(workspace_.toStdString());
    // Each run's newest score on each suite (and settings: a chat-format or part-suite result is
    // a column of its own), by the kind's headline metric; sortable like the loss column.
    std::map<std::pair<int64_t, QString>, Score> scores;
    score_cols_.clear();
    for (const auto& e : completed_run_evals(ws)) {  // newest first: the first of each key stays
      if (e.kind == "pairwise") continue;
      const std::string key = headline_metric(e), variant = eval_variant(e);
      if (key.empty()) continue;
      const QString col = QString::fromStdString(e.suite + (variant.empty() ? "" : " (" + variant + ")") + " · " + key);
      if (!score_cols_.contains(col)) score_cols_ << col;
      scores.emplace(std::make_pair(e.run_id, col), score_from_json(nlohmann::json::parse(e.metrics)[key]));
    }
    score_cols_.sort();
    table_->setColumnCount(kCols + static_cast<int>(score_cols_.size()));
    QStringList headers = {"ID", "Name", "Method", "Recipe", "Base model", "Status", "Started", "Final loss"};
    table_->setHorizontalHeaderLabels(headers + score_cols_);
    for (int c = 0; c < score_cols_.size(); ++c) {
      table_->horizontalHeaderItem(kCols + c)->setToolTip(score_cols_[c] + ": the run's newest evaluation on this suite, value [95% interval] n (Evaluate page)");
      table_->horizontalHeader()->setSectionResizeMode(kCols + c, QHeaderView::ResizeToContents);
    }
    for (const auto& r : list_runs(ws)) {
      const int row = table_->rowCount();
      table_->insertRow(row);
      auto* id = new NumItem(QString::number(r.id));
      id->setData(Qt::UserRole, static_cast<double>(r.id));
      table_->setItem(row, kId, id);
      table_->setItem(row, kName, new QTableWidgetItem(QString::fromStdString(r.name)));
      table_->setItem(row, kMethod, new QTableWidgetItem(QString::fromStdString(r.method)));
      table_->setItem(row, kRecipe, new QTableWidgetItem(QString::fromStdString(r.recipe)));
      table_->setItem(row, kModel, new QTableWidgetItem(QString::fromStdString(r.base_model)));
      table_->setItem(row, kStatus, new QTableWidgetItem(QString::fromStdString(r.status)));
      table_->setItem(row, kStarted, new QTableWidgetItem(QString::fromStdString(r.started_at.substr(0, 19)).replace('T', ' ')));
      auto fin = nlohmann::json::parse(r.final_metrics);
      auto* loss = new NumItem(fin.contains("final_loss") ? QString::number(fin["final_loss"].get<double>(), 'f', 4) : "-");
      loss->setData(Qt::UserRole, fin.contains("final_loss") ? fin["final_loss"].get<double>() : 1e300);
      table_->setItem(row, kFinal, loss);
      for (int c = 0; c < score_cols_.size(); ++c) {
        auto it = scores.find({r.id, score_cols_[c]});
        auto* cell = new NumItem(it == scores.end() ? "-"
                                                    : QString("%1 [%2, %3] n=%4")
                                                          .arg(it->second.value, 0, 'f', 3)
                                                          .arg(it->second.lo, 0, 'f', 2)
                                                          .arg(it->second.hi, 0, 'f', 2)
                                                          .arg(it->second.n));
        cell->setData(Qt::UserRole, it == scores.end() ? -1e300 : it->second.value);
        table_->setItem(row, kCols + c, cell);
      }
    }
  } catch (const std::exception& e) {
    diff_->setPlainText(QString("cannot read the workspace: ") + e.what());
  }
  int col = kId;
  for (int c = 0; c < table_->columnCount(); ++c)
    if (table_->horizontalHeaderItem(c) && table_->horizontalHeaderItem(c)->text() == sorted_by) col = c;
  table_->setSortingEnabled(true);
  table_->sortItems(col, sorted_by.isEmpty() ? Qt::AscendingOrder : sorted_order);
  applyFilter();
  selectRuns(keep);
}

void RunsPage::applyFilter() {
  const QString f = filter_->text().trimmed();
  for (int r = 0; r < table_->rowCount(); ++r) {
    bool show = f.isEmpty();
    for (int c : {kName, kMethod, kRecipe, kModel, kStatus})
      show = show || table_->item(r, c)->text().contains(f, Qt::CaseInsensitive);
    table_->setRowHidden(r, !show);
  }
}

QList<qint64> RunsPage::selectedIds() const {
  QList<qint64> ids;
  for (const auto& idx : table_->selectionModel()->selectedRows())
    ids << table_->item(idx.row(), kId)->text().toLongLong();
  std::sort(ids.begin(), ids.end());
  return ids;
}

void RunsPage::selectRuns(const QList<qint64>& ids) {
  table_->clearSelection();
  for (int r = 0; r < table_->rowCount(); ++r)
    if (ids.contains(table_->item(r, kId)->text().toLongLong()))
      table_->selectionModel()->select(table_->model()->index(r, 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
  updateOverlay();
}

int RunsPage::rowCount() const { return table_->rowCount(); }
QStringList RunsPage::scoreColumns() const { return score_cols_; }
QString RunsPage::overfitText() const { return overfit_->isHidden() ? QString() : overfit_->text(); }
bool RunsPage::resumeEnabled() const { return resume_->isEnabled(); }
QString RunsPage::resumeTip() const { return resume_->toolTip(); }

QStringList RunsPage::metricChoices() const {
  QStringList out;
  for (int i = 0; i < metric_->count(); ++i) out << metric_->itemText(i);
  return out;
}

void RunsPage::updateOverlay() {
  plot_->clearGraphs();
  diff_->clear();
  const auto ids = selectedIds();
  resume_->setEnabled(false);
  overfit_->hide();
  if (ids.isEmpty() || workspace_.isEmpty()) {
    resume_->setToolTip("Select a run to resume");
    placeLegendBelow(plot_);
    plot_->replot();
    return;
  }
  const double alpha = smoothing_->value() / 100.0;
  try {
    Workspace ws(workspace_.toStdString());
    {
      // The metric list is what the selected runs recorded (a DPO run adds rewards/margins, ...).
      QStringList names;
      for (auto id : ids)
        for (const auto& n : metric_names(ws, id))
          if (!names.contains(QString::fromStdString(n))) names << QString::fromStdString(n);
      if (names.isEmpty()) names << "loss";
      const QString cur = metric_->currentText();
      QSignalBlocker block(metric_);
      metric_->clear();
      metric_->addItems(names);
      metric_->setCurrentIndex(std::max(0, static_cast<int>(names.indexOf(cur.isEmpty() ? "loss" : cur))));
    }
    const std::string metric = metric_->currentText().toStdString();
    // Held-out loss rising while the training loss falls, for any selected run.
    QStringList warnings;
    for (auto id : ids) {
      auto series = [&](const char* name) {
        std::vector<std::pair<int64_t, double>> out;
        for (const auto& p : run_metric(ws, id, name)) out.emplace_back(p.step, p.value);
        return out;
      };
      const OverfitWarning w = check_overfitting(series("loss"), series("eval_loss"));
      if (w.warn) warnings << QString("Run %1: %2").arg(id).arg(QString::fromStdString(w.message));
    }
    overfit_->setText(warnings.join("\n"));
    overfit_->setVisible(!warnings.isEmpty());
    // Resume is offered only where the launcher would accept it (runs/run_launcher.h).
    try {
      const std::string ck = resumable_checkpoint(ws, ids.first());
      resume_->setEnabled(true);
      resume_->setToolTip(QString::fromStdString("Continue from " + ck +
                                                 ": its weights, optimizer moments, data position and random state"));
    } catch (const std::exception& e) {
      resume_->setToolTip(QString("Cannot resume: ") + e.what());
    }
    std::vector<std::map<std::string, std::string>> cfgs;
    std::vector<RunInfo> runs;
    int color = 0;
    for (auto id : ids) {
      RunInfo r = get_run(ws, id);
      runs.push_back(r);
      // The data as the run was asked for it (dataset:NAME), not the copies in each run's folder,
      // whose paths differ for every run; a config this version no longer reads is shown as stored.
      nlohmann::json cfg;
      try {
        cfg = recorded_run_config(ws, id).to_json();
      } catch (const std::exception&) {
        cfg = nlohmann::json::parse(r.config);
      }
      cfgs.emplace_back();
      flatten(cfg, "", &cfgs.back());
      const double tokens_per_step = cfg.value("batch_size", 1) * cfg.value("grad_accum", 1) * cfg.value("max_seq_len", 1);
      auto pts = run_metric(ws, id, metric);
      auto times = xaxis_->currentText() == "time" ? run_metric(ws, id, "elapsed_s") : std::vector<MetricPoint>{};
      std::map<int64_t, double> t_at;
      for (auto& t : times) t_at[t.step] = t.value;
      auto* g = plot_->addGraph();
      g->setName(QString("%1 %2").arg(id).arg(QString::fromStdString(r.name)));
      g->setPen(QPen(kPalette[color++ % 8], 2));
      double s = 0;
      bool first = true;
      for (auto& p : pts) {
        if (!std::isfinite(p.value)) continue;
        s = first ? p.value : alpha * s + (1 - alpha) * p.value;
        first = false;
        double x = static_cast<double>(p.step);
        if (xaxis_->currentText() == "tokens") x *= tokens_per_step;
        else if (xaxis_->currentText() == "time") x = t_at.count(p.step) ? t_at[p.step] : p.wall;
        g->addData(x, s);
      }
    }
    plot_->xAxis->setLabel(xaxis_->currentText() == "time" ? "seconds" : xaxis_->currentText());
    plot_->yAxis->setLabel(metric_->currentText());
    if (log_scale_->isChecked()) {
      // Log ticks labelled at every decade and its 2x/5x points, so values below 1 are readable.
      plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
      auto t = QSharedPointer<QCPAxisTickerLog>::create();
      t->setSubTickCount(8);
      t->setTickCount(6);
      plot_->yAxis->setTicker(t);
      plot_->yAxis->setNumberFormat("gb");
      plot_->yAxis->setNumberPrecision(3);
    } else {
      plot_->yAxis->setScaleType(QCPAxis::stLinear);
      plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
      plot_->yAxis->setNumberFormat("gb");
      plot_->yAxis->setNumberPrecision(6);
    }
    plot_->rescaleAxes();
    placeLegendBelow(plot_);
    plot_->replot();
    // Config keys that differ, then final metrics and notes.
    QString html = "<b>Config keys that differ</b><table cellspacing=6><tr><th align=left>key</th>";
    for (auto& r : runs) html += QString("<th align=left>run %1</th>").arg(r.id);
    html += "</tr>";
    std::map<std::string, bool> keys;
    for (auto& c : cfgs)
      for (auto& kv : c) keys[kv.first] = true;
    int differing = 0;
    for (auto& kv : keys) {
      if (kv.first == "name") continue;
      bool same = true;
      for (size_t i = 1; i < cfgs.size(); ++i) same = same && cfgs[i].count(kv.first) && cfgs[0].count(kv.first) && cfgs[i][kv.first] == cfgs[0][kv.first];
      if (same && cfgs.size() > 1) continue;
      if (cfgs.size() == 1 && kv.first.find('.') == std::string::npos && false) continue;
      ++differing;
      html += "<tr><td>" + QString::fromStdString(kv.first).toHtmlEscaped() + "</td>";
      for (auto& c : cfgs) html += "<td>" + QString::fromStdString(c.count(kv.first) ? c[kv.first] : "-").toHtmlEscaped() + "</td>";
      html += "</tr>";
    }
    html += "</table>";
    if (cfgs.size() > 1 && differing == 0) html += "<p>(identical configs)</p>";
    html += "<b>Final metrics</b><ul>";
    for (auto& r : runs) {
      auto fin = nlohmann::json::parse(r.final_metrics);
      QStringList parts;
      if (fin.contains("final_loss")) parts << QString("final loss %1").arg(fin["final_loss"].get<double>(), 0, 'f', 4);
      if (fin.contains("best_eval_loss")) parts << QString("best eval loss %1").arg(fin["best_eval_loss"].get<double>(), 0, 'f', 4);
      if (fin.contains("steps")) parts << QString("%1 steps").arg(fin["steps"].get<int64_t>());
      if (fin.contains("seconds")) parts << QString("%1 s").arg(fin["seconds"].get<double>(), 0, 'f', 1);
      if (fin.contains("trainable_params")) parts << QString("%L1 trainable parameters").arg(fin["trainable_params"].get<int64_t>());
      html += QString("<li>run %1 (%2): %3").arg(r.id).arg(QString::fromStdString(r.status), parts.join(" · "));
      if (!r.error.empty()) html += " — " + QString::fromStdString(r.error).toHtmlEscaped();
      if (!r.notes.empty()) html += "<br><i>" + QString::fromStdString(r.notes).toHtmlEscaped() + "</i>";
      html += "</li>";
    }
    html += "</ul>";
    diff_->setHtml(html);
  } catch (const std::exception& e) {
    diff_->setPlainText(QString("cannot read the runs: ") + e.what());
  }
}

int RunsPage::plottedRunCount() const {
  int n = 0;
  for (int g = 0; g < plot_->graphCount(); ++g) n += plot_->graph(g)->dataCount() > 0;
  return n;
}

int RunsPage::plottedPointCount() const {
  int n = 0;
  for (int g = 0; g < plot_->graphCount(); ++g) n += plot_->graph(g)->dataCount();
  return n;
}

QString RunsPage::configDiffText() const { return diff_->toPlainText(); }

QString RunsPage::commandFor(qint64 id) const {
  Workspace ws(workspace_.toStdString());
  RunInfo r = get_run(ws, id);
  auto quote = [](const std::string& s) { return "'" + QString::fromStdString(s).replace("'", "'\\''") + "'"; };
  return QString("hone-cli train --config %1 --workspace %2").arg(quote(r.run_dir + "/config.json"), quote(workspace_.toStdString()));
}

bool RunsPage::exportPng(const QString& path) {
  if (path.endsWith(".pdf", Qt::CaseInsensitive)) return plot_->savePdf(path);
  return plot_->savePng(path, 1200, 700);
}

bool RunsPage::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  QTextStream out(&f);
  out << "run,name,metric,step,value\n";
  Workspace ws(workspace_.toStdString());
  const std::string metric = metric_->currentText().toStdString();
  for (auto id : selectedIds()) {
    RunInfo r = get_run(ws, id);
    for (auto& p : run_metric(ws, id, metric))
      out << id << "," << QString::fromStdString(r.name).replace(',', ' ') << "," << metric_->currentText() << "," << p.step << ","
          << QString::number(p.value, 'g', 10) << "\n";
  }
  return true;
}

}  // namespace hone::ui
