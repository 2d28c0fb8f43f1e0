// DatasetsPage (see datasets_page.h). Reads for painting go through RowsModel's GUI-thread
// connection (a page at a time); everything that scans a dataset runs as a Job with its own
// connection.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "datasets_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QDoubleSpinBox>
#include <QDialogButtonBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include "common/error.h"
#include "common/files.h"
#include "data/pairs.h"
#include "data/sequences.h"
#include "import_dialog.h"
#include "job.h"
#include "look.h"
#include "row_editor.h"
#include "rows_model.h"
#include "store/datasets.h"
#include "tokenizer/tokenizer.h"

namespace hone::ui {

using nlohmann::json;

namespace {
QPushButton* button(const QString& text, const QString& tip, QLayout* lay) {
  auto* b = new QPushButton(text);
  b->setToolTip(tip);
  lay->addWidget(b);
  return b;
}

std::string blankRow(const QString& kind) {
  if (kind == "chat") return R"({"messages":[{"role":"user","content":""},{"role":"assistant","content":""}]})";
  if (kind == "preference") return R"({"prompt":"","chosen":"","rejected":""})";
  if (kind == "candidates") return R"({"prompt":"","responses":["",""]})";
  if (kind == "prompts") return R"({"prompt":""})";
  return R"({"text":""})";
}
}  // namespace

DatasetsPage::DatasetsPage(QWidget* parent)
    : QWidget(parent), job_(new Job("dataset", this)), stats_job_(new Job("statistics", this)), tok_job_(new Job("tokenizer", this)) {
  auto* lay = new QHBoxLayout(this);
  auto* split = new QSplitter(Qt::Horizontal);
  lay->addWidget(split);

  // Left: the datasets.
  auto* left = new QWidget;
  auto* ll = new QVBoxLayout(left);
  ll->setContentsMargins(0, 0, 0, 0);
  list_ = new QTableWidget(0, 4);
  list_->setObjectName("datasets");
  list_->setHorizontalHeaderLabels({"Name", "Kind", "Rows", "Created"});
  list_->setSelectionBehavior(QAbstractItemView::SelectRows);
  list_->setSelectionMode(QAbstractItemView::SingleSelection);
  list_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  list_->verticalHeader()->hide();
  list_->horizontalHeader()->setStretchLastSection(true);
  ll->addWidget(list_, 1);
  auto* lb = new QHBoxLayout;
  auto* imp = button("Import…", "Import a file or folder (also: drop it on the window)", lb);
  auto* ren = button("Rename…", "Rename the selected dataset", lb);
  auto* del = button("Delete", "Delete the selected dataset and its labels", lb);
  ll->addLayout(lb);
  auto* lb2 = new QHBoxLayout;
  auto* exp = button("Export…", "Write the dataset as JSONL (labels applied)", lb2);
  auto* spl = button("Split…", "Make train and validation datasets from it (seeded)", lb2);
  auto* lab = button("Label",
                     "Open a candidates or preference dataset on the Label page (for a prompts dataset, Generate… there "
                     "samples candidates)",
                     lb2);
  ll->addLayout(lb2);
  split->addWidget(left);

  // Right: rows, statistics, template preview.
  tabs_ = new QTabWidget;
  auto* rowsTab = new QWidget;
  auto* rl = new QVBoxLayout(rowsTab);
  auto* sr = new QHBoxLayout;
  search_ = new QLineEdit;
  search_->setPlaceholderText("Search rows (Enter filters the table to the matches)");
  search_->setClearButtonEnabled(true);
  sr->addWidget(search_, 1);
  filter_info_ = new QLabel;
  sr->addWidget(filter_info_);
  delete_matching_ = button("Delete matches", "Delete every row the filter shows", sr);
  delete_matching_->setEnabled(false);
  rl->addLayout(sr);
  table_ = new QTableView;
  table_->setObjectName("rows");
  model_ = new RowsModel(this);
  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setWordWrap(false);
  // Fixed row heights: the header never measures a million rows.
  table_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
  table_->verticalHeader()->setDefaultSectionSize(22);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->horizontalHeader()->setDefaultSectionSize(260);
  table_->horizontalHeader()->setStretchLastSection(true);
  rl->addWidget(table_, 1);
  auto* rb = new QHBoxLayout;
  auto* add = button("Add", "Add a row after the selected one", rb);
  auto* dup = button("Duplicate", "Copy the selected row below it", rb);
  auto* edit = button("Edit…", "Edit the selected row (or double-click it)", rb);
  auto* delr = button("Delete", "Delete the selected rows", rb);
  auto* und = button("Undo", "Revert the newest edit of this dataset (Ctrl+Z)", rb);
  und->setShortcut(QKeySequence::Undo);
  auto* red = button("Redo", "Apply the edit just undone again (Ctrl+Shift+Z)", rb);
  red->setShortcut(QKeySequence::Redo);
  rb->addStretch();
  status_ = new QLabel;
  rb->addWidget(status_);
  rl->addLayout(rb);
  tabs_->addTab(rowsTab, "Rows");

  auto* statsTab = new QWidget;
  auto* sl = new QVBoxLayout(statsTab);
  auto* sf = new QFormLayout;
  stats_model_ = new QLineEdit;
  stats_model_->setPlaceholderText("Model folder whose tokenizer counts the tokens");
  sf->addRow("Tokenizer of", stats_model_);
  max_len_ = new QSpinBox;
  max_len_->setRange(16, 1 << 20);
  max_len_->setValue(1024);
  max_len_->setToolTip("Rows longer than this many tokens would be truncated in training");
  sf->addRow("Max length", max_len_);
  templated_ = new QCheckBox("Count the tokens as training sees them (with the chat template)");
  templated_->setChecked(true);
  templated_->setToolTip("On: chat rows rendered with the template of the preview tab, preference rows as prompt + the "
                         "longer answer, as max sequence length cuts them. Off: the rows' plain text.");
  sf->addRow("", templated_);
  sl->addLayout(sf);
  auto* compute = new QPushButton("Compute statistics");
  auto* crow = new QHBoxLayout;
  crow->addWidget(compute, 1);
  stats_cancel_ = new QPushButton("Cancel");
  stats_cancel_->setEnabled(false);
  crow->addWidget(stats_cancel_);
  sl->addLayout(crow);
  connect(stats_cancel_, &QPushButton::clicked, stats_job_, &Job::cancel);
  connect(stats_job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString&) {
    stats_text_->setText(QString("Counting… %1 of %2 rows").arg(done).arg(total));
  });
  connect(stats_job_, &Job::stopped, this, [this] { stats_cancel_->setEnabled(false); });
  hist_ = new QCustomPlot;
  hist_->setMinimumHeight(240);
  hist_->xAxis->setLabel("tokens per row");
  hist_->yAxis->setLabel("rows");
  sl->addWidget(hist_, 1);
  stats_text_ = new QLabel;
  stats_text_->setWordWrap(true);
  stats_text_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  sl->addWidget(stats_text_);
  tabs_->addTab(statsTab, "Statistics");

  auto* prevTab = new QWidget;
  auto* pl = new QVBoxLayout(prevTab);
  auto* pf = new QFormLayout;
  preview_model_ = new QLineEdit;
  preview_model_->setPlaceholderText("Model folder (tokenizer.json / tokenizer.model and its chat template)");
  pf->addRow("Model", preview_model_);
  preview_format_ = new QComboBox;
  preview_format_->addItem("The model's own (its Jinja template)", "");
  for (const auto& n : chat_format_names()) preview_format_->addItem(qs(n), qs(n));
  pf->addRow("Chat template", preview_format_);
  preview_row_ = new QSpinBox;
  preview_row_->setRange(0, 0);
  pf->addRow("Row", preview_row_);
  preview_max_len_ = new QSpinBox;
  preview_max_len_->setRange(16, 1 << 20);
  preview_max_len_->setValue(1024);
  pf->addRow("Max length", preview_max_len_);
  pl->addLayout(pf);
  preview_counts_ = new QLabel("Choose a model folder to see how a row is tokenized.");
  preview_counts_->setWordWrap(true);
  pl->addWidget(preview_counts_);
  preview_ = new QTextBrowser;
  preview_->setFont(monoFont());
  pl->addWidget(preview_, 1);
  tabs_->addTab(prevTab, "Template preview");
  split->addWidget(tabs_);
  split->setStretchFactor(1, 3);

  connect(list_, &QTableWidget::itemSelectionChanged, this, &DatasetsPage::openSelected);
  connect(imp, &QPushButton::clicked, this, [this] { importFile(QString()); });
  connect(ren, &QPushButton::clicked, this, &DatasetsPage::renameSelected);
  connect(del, &QPushButton::clicked, this, &DatasetsPage::deleteSelected);
  connect(exp, &QPushButton::clicked, this, &DatasetsPage::exportSelected);
  connect(spl, &QPushButton::clicked, this, &DatasetsPage::splitSelected);
  connect(lab, &QPushButton::clicked, this, [this] {
    if (!currentDataset().isEmpty()) Q_EMIT labelRequested(currentDataset());
  });
  connect(search_, &QLineEdit::returnPressed, this, [this] { search(search_->text()); });
  connect(search_, &QLineEdit::textChanged, this, [this](const QString& t) {
    if (t.isEmpty() && model_->filtered()) search(QString());
  });
  connect(delete_matching_, &QPushButton::clicked, this, &DatasetsPage::deleteMatching);
  connect(add, &QPushButton::clicked, this, [this] { addRow(false); });
  connect(dup, &QPushButton::clicked, this, [this] { addRow(true); });
  connect(edit, &QPushButton::clicked, this, [this] { editRow(table_->currentIndex().row()); });
  connect(table_, &QTableView::doubleClicked, this, [this](const QModelIndex& i) { editRow(i.row()); });
  connect(delr, &QPushButton::clicked, this, [this] {
    QList<int> rows;
    for (const auto& i : table_->selectionModel()->selectedRows()) rows << i.row();
    deleteRows(rows);
  });
  connect(und, &QPushButton::clicked, this, [this] { undo(); });
  connect(red, &QPushButton::clicked, this, [this] { redo(); });
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& i) {
    const qint64 p = model_->positionAt(i.row());
    if (p >= 0) preview_row_->setValue(static_cast<int>(p));
  });
  connect(compute, &QPushButton::clicked, this, &DatasetsPage::computeStats);
  connect(max_len_, &QSpinBox::valueChanged, this, [this] {
    if (!token_lengths_.isEmpty()) computeStats();
  });
  connect(stats_model_, &QLineEdit::editingFinished, this, [this] {
    setTokenizerFolder(stats_model_->text());
    Q_EMIT modelChosen(stats_model_->text().trimmed());
  });
  connect(preview_model_, &QLineEdit::editingFinished, this, [this] {
    setTokenizerFolder(preview_model_->text());
    Q_EMIT modelChosen(preview_model_->text().trimmed());
  });
  connect(preview_format_, &QComboBox::currentIndexChanged, this, &DatasetsPage::renderPreview);
  connect(preview_row_, &QSpinBox::valueChanged, this, &DatasetsPage::renderPreview);
  connect(preview_max_len_, &QSpinBox::valueChanged, this, &DatasetsPage::renderPreview);
  connect(tok_job_, &Job::stopped, this, [this] {
    if (tok_pending_ && *tok_pending_) tok_ = *tok_pending_;
    tok_pending_.reset();
    if (tok_) renderPreview();
  });
  connect(tok_job_, &Job::failed, this, [this](const QString& e) {
    preview_counts_->setText("Cannot load the tokenizer: " + e);
    preview_->clear();
  });
  connect(job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString& text) {
    status_->setText(total > 0 ? QString("%1 %2 of %3").arg(text).arg(done).arg(total) : text);
  });
  connect(job_, &Job::failed, this, [this](const QString& e) {
    busy(false, QString());
    QMessageBox::warning(this, "Dataset", e);
  });
  connect(stats_job_, &Job::failed, this, [this](const QString& e) { stats_text_->setText("Statistics failed: " + e); });
  connect(stats_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    token_lengths_.clear();
    for (const auto& x : m.value("lengths").toList()) token_lengths_ << x.toLongLong();
    // Histogram: 40 equal bins from 0 to the longest row.
    hist_->clearPlottables();
    QString tokens;
    if (!token_lengths_.isEmpty()) {
      const qint64 mx = std::max<qint64>(1, token_lengths_.back());
      const int bins = 40;
      const double w = double(mx) / bins;
      QVector<double> keys(bins), counts(bins, 0);
      for (int i = 0; i < bins; ++i) keys[i] = (i + 0.5) * w;
      for (qint64 n : token_lengths_) counts[std::min(bins - 1, int(n / w))] += 1;
      auto* bars = new QCPBars(hist_->xAxis, hist_->yAxis);
      bars->setWidth(w * 0.9);
      bars->setData(keys, counts, true);
      hist_->xAxis->setRange(0, mx * 1.02);
      hist_->yAxis->setRange(0, *std::max_element(counts.begin(), counts.end()) * 1.1);
      const qint64 over = token_lengths_.end() - std::upper_bound(token_lengths_.begin(), token_lengths_.end(), qint64(max_len_->value()));
      auto q = [&](double f) { return token_lengths_[static_cast<int>(f * (token_lengths_.size() - 1))]; };
      tokens = QString("<br>Tokens per row: min %1, median %2, p90 %3, p99 %4, max %5.<br><b>%6 rows (%7%) are longer than %8 "
                       "tokens</b> and would be truncated.")
                   .arg(token_lengths_.front()).arg(q(0.5)).arg(q(0.9)).arg(q(0.99)).arg(token_lengths_.back())
                   .arg(over).arg(100.0 * over / token_lengths_.size(), 0, 'f', 1).arg(max_len_->value());
    }
    hist_->replot();
    stats_text_->setText(QString("%1 rows, %2 characters, %3 labelled, <b>%4 duplicate rows</b>.%5<br>Longest rows (position: "
                                 "characters): %6")
                             .arg(m.value("rows").toLongLong()).arg(m.value("chars").toLongLong())
                             .arg(m.value("labelled").toLongLong()).arg(m.value("duplicates").toLongLong())
                             .arg(tokens, m.value("longest").toString()));
  });
}

DatasetsPage::~DatasetsPage() = default;

void DatasetsPage::busy(bool on, const QString& what) { status_->setText(on ? what : QString()); }

void DatasetsPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  guarded(this, "Datasets", [&] { model_->open(dir, 0); });
  refresh();
}

QString DatasetsPage::statisticsModelFolder() const { return stats_model_->text().trimmed(); }

void DatasetsPage::setModelFolder(const QString& dir, const QString& previous) {
  if (dir.isEmpty()) return;
  for (QLineEdit* e : {preview_model_, stats_model_})
    if (e->text().isEmpty() || e->text() == previous) e->setText(dir);
}

void DatasetsPage::setTokenizerFolder(const QString& dir) {
  preview_model_->setText(dir);
  stats_model_->setText(dir);
  tok_dir_.clear();  // asked for explicitly: (re)load even the same folder
  loadTokenizer();
}

void DatasetsPage::refresh() {
  if (workspace_.isEmpty()) return;
  const QString keep = currentDataset();
  guarded(this, "Datasets", [&] {
    Workspace ws(ss(workspace_));
    auto all = list_datasets(ws);
    list_->blockSignals(true);
    list_->setRowCount(0);
    for (const auto& d : all) {
      const int r = list_->rowCount();
      list_->insertRow(r);
      auto* name = new QTableWidgetItem(qs(d.name));
      name->setData(Qt::UserRole, qint64(d.id));
      list_->setItem(r, 0, name);
      list_->setItem(r, 1, new QTableWidgetItem(qs(d.kind)));
      auto* rows = new QTableWidgetItem;
      rows->setData(Qt::DisplayRole, qint64(d.rows));
      list_->setItem(r, 2, rows);
      list_->setItem(r, 3, new QTableWidgetItem(qs(d.created_at.substr(0, 16)).replace('T', ' ')));
    }
    list_->blockSignals(false);
    list_->resizeColumnsToContents();
  });
  if (!keep.isEmpty() && !selectDataset(keep)) openSelected();
  if (list_->rowCount() && list_->selectedItems().isEmpty()) list_->selectRow(0);
  Q_EMIT datasetsChanged();
}

int DatasetsPage::datasetCount() const { return list_->rowCount(); }

QString DatasetsPage::currentDataset() const {
  const auto sel = list_->selectedItems();
  return sel.isEmpty() ? QString() : list_->item(sel.first()->row(), 0)->text();
}

bool DatasetsPage::selectDataset(const QString& name) {
  for (int r = 0; r < list_->rowCount(); ++r)
    if (list_->item(r, 0)->text() == name) {
      if (currentDataset() == name) return true;
      list_->selectRow(r);
      return true;
    }
  return false;
}

void DatasetsPage::openSelected() {
  const auto sel = list_->selectedItems();
  const qint64 id = sel.isEmpty() ? 0 : list_->item(sel.first()->row(), 0)->data(Qt::UserRole).toLongLong();
  if (id == model_->datasetId() && id) {
    // The same dataset after a refresh: reloaded only when rows came or went elsewhere, so that a
    // refresh does not throw the view back to the top.
    const qint64 rows = list_->item(sel.first()->row(), 2)->data(Qt::DisplayRole).toLongLong();
    if (!model_->filtered() && rows != model_->rowCount()) guarded(this, "Datasets", [&] { model_->reload(); });
    return;
  } else {
    search_->blockSignals(true);
    search_->clear();
    search_->blockSignals(false);
    redo_.clear();
    guarded(this, "Datasets", [&] { model_->open(workspace_, id); });
  }
  filter_info_->clear();
  delete_matching_->setEnabled(false);
  preview_row_->setRange(0, std::max(0, model_->rowCount() - 1));
  renderPreview();
}

void DatasetsPage::importFile(const QString& path) {
  if (workspace_.isEmpty()) return;
  auto* d = new ImportDialog(workspace_, path, this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  connect(d, &QDialog::accepted, this, [this, d] {
    const qint64 id = d->importedId();
    refresh();
    for (int r = 0; r < list_->rowCount(); ++r)
      if (list_->item(r, 0)->data(Qt::UserRole).toLongLong() == id) list_->selectRow(r);
  });
  d->open();
}

void DatasetsPage::renameSelected() {
  const QString cur = currentDataset();
  if (cur.isEmpty()) return;
  const QString n = QInputDialog::getText(this, "Rename dataset", "New name", QLineEdit::Normal, cur).trimmed();
  if (n.isEmpty() || n == cur) return;
  guarded(this, "Rename", [&] {
    Workspace ws(ss(workspace_));
    rename_dataset(ws, find_dataset(ws, ss(cur)).id, ss(n));
  });
  refresh();
  selectDataset(n);
}

void DatasetsPage::deleteSelected() {
  const QString cur = currentDataset();
  if (cur.isEmpty()) return;
  if (QMessageBox::question(this, "Delete dataset",
                            QString("Delete dataset \"%1\" with its rows, labels and edit history? Runs that trained on it "
                                    "keep their own copy of the data.").arg(cur)) != QMessageBox::Yes)
    return;
  guarded(this, "Delete", [&] {
    model_->open(workspace_, 0);
    Workspace ws(ss(workspace_));
    delete_dataset(ws, find_dataset(ws, ss(cur)).id);
  });
  refresh();
}

void DatasetsPage::exportSelected() {
  const QString cur = currentDataset();
  if (cur.isEmpty() || job_->running()) return;
  const QString out = QFileDialog::getSaveFileName(this, "Export dataset", cur + ".jsonl", "JSON Lines (*.jsonl)");
  if (out.isEmpty()) return;
  const QString ws = workspace_;
  busy(true, "Exporting…");
  disconnect(job_, &Job::finished, this, nullptr);
  connect(job_, &Job::finished, this, [this, out](const QVariant& v) {
    busy(false, QString());
    status_->setText(QString("Wrote %1 rows to %2").arg(v.toLongLong()).arg(out));
  });
  job_->start([ws, cur, out](Job::Context&) -> QVariant {
    Workspace w(ss(ws));
    return qint64(export_dataset(w, find_dataset(w, ss(cur)).id, ss(out)));
  });
}

void DatasetsPage::splitSelected() {
  const QString cur = currentDataset();
  if (cur.isEmpty() || job_->running()) return;
  QDialog d(this);
  d.setWindowTitle("Split into train and validation");
  auto* f = new QFormLayout(&d);
  auto* frac = new QDoubleSpinBox;
  frac->setRange(0.01, 0.9);
  frac->setSingleStep(0.05);
  frac->setValue(0.1);
  auto* seed = new QSpinBox;
  seed->setRange(0, 1 << 30);
  f->addRow("Validation fraction", frac);
  f->addRow("Seed", seed);
  f->addRow(new QLabel(QString("Makes \"%1-train\" and \"%1-validation\". A row's side depends only on the seed and the "
                               "row, so edits elsewhere do not move it.").arg(cur)));
  f->addRow(dialogButtons(&d));
  if (d.exec() != QDialog::Accepted) return;
  const QString ws = workspace_;
  const double fraction = frac->value();
  const uint64_t s = static_cast<uint64_t>(seed->value());
  busy(true, "Splitting…");
  disconnect(job_, &Job::finished, this, nullptr);
  connect(job_, &Job::finished, this, [this](const QVariant& v) {
    busy(false, QString());
    status_->setText(v.toString());
    refresh();
  });
  job_->start([ws, cur, fraction, s](Job::Context&) -> QVariant {
    Workspace w(ss(ws));
    const DatasetInfo src = find_dataset(w, ss(cur));
    QStringList made;
    for (const char* part : {"train", "validation"}) {
      ExportOptions o;
      o.split = part;
      o.seed = s;
      o.fraction = fraction;
      const std::string tmp = join_path(w.dir(), ".split-" + std::to_string(src.id) + "-" + part + ".jsonl");
      export_dataset(w, src.id, tmp, o);
      ImportReport rep;
      try {
        rep = import_dataset(w, tmp, src.name + "-" + part, {});
      } catch (...) {
        std::filesystem::remove(tmp);
        throw;
      }
      std::filesystem::remove(tmp);
      if (rep.dataset_id <= 0) throw Error(std::string("the ") + part + " part is empty; choose another fraction");
      made << QString("%1-%2: %3 rows").arg(qs(src.name), part).arg(rep.imported);
    }
    return made.join(", ");
  });
}

bool DatasetsPage::updateRow(int view_row, const std::string& canonical_json) {
  const DatasetRow r = model_->rowAt(view_row);
  if (!r.id) return false;
  const bool ok = guarded(this, "Edit row", [&] { update_row(*model_->workspace(), r.id, canonical_json, "gui"); });
  if (ok) redo_.clear();
  if (ok) model_->reload();
  renderPreview();
  return ok;
}

void DatasetsPage::editRow(int view_row) {
  const DatasetRow r = model_->rowAt(view_row);
  if (!r.id) return;
  RowEditor e(model_->kind(), r.data, this);
  if (e.exec() == QDialog::Accepted) updateRow(view_row, e.rowJson());
}

void DatasetsPage::addRow(bool duplicate) {
  if (!model_->datasetId()) return;
  const int cur = table_->currentIndex().row();
  const DatasetRow base = model_->rowAt(cur);
  if (duplicate && !base.id) return;
  std::string data = duplicate ? base.data : blankRow(model_->kind());
  if (!duplicate) {
    RowEditor e(model_->kind(), data, this);
    if (e.exec() != QDialog::Accepted) return;
    data = e.rowJson();
  }
  const qint64 pos = base.id ? base.position + 1 : model_->rowCount();
  if (guarded(this, "Add row", [&] { insert_row(*model_->workspace(), model_->datasetId(), pos, data, "gui"); })) {
    redo_.clear();
    model_->reload();
    const int r = model_->rowOfPosition(pos);
    if (r >= 0) table_->selectRow(r);
    refresh();
  }
}

bool DatasetsPage::deleteRows(const QList<int>& view_rows) {
  QList<int> rows = view_rows;
  std::sort(rows.begin(), rows.end(), std::greater<int>());
  QList<qint64> ids;
  for (int r : rows)
    if (qint64 id = model_->rowAt(r).id) ids << id;
  if (ids.isEmpty()) return false;
  const bool ok = guarded(this, "Delete rows", [&] {
    for (qint64 id : ids) delete_row(*model_->workspace(), id, "gui");
  });
  redo_.clear();
  model_->reload();
  refresh();
  return ok;
}

bool DatasetsPage::undo() {
  if (!model_->datasetId()) return false;
  bool did = false;
  guarded(this, "Undo", [&] {
    const Revision r = last_revision(*model_->workspace(), model_->datasetId());
    did = hone::undo(*model_->workspace(), model_->datasetId());
    if (did) redo_.push_back(r);
  });
  status_->setText(did ? "Undone" : "Nothing to undo");
  model_->reload();
  refresh();
  return did;
}

bool DatasetsPage::redo() {
  if (!model_->datasetId() || redo_.empty()) {
    status_->setText("Nothing to redo");
    return false;
  }
  const Revision r = redo_.back();
  const bool ok = guarded(this, "Redo", [&] { redo_revision(*model_->workspace(), model_->datasetId(), r, "gui"); });
  if (ok) redo_.pop_back();
  status_->setText(ok ? "Redone" : "Cannot redo");
  model_->reload();
  refresh();
  return ok;
}

void DatasetsPage::search(const QString& needle) {
  if (!model_->datasetId() || job_->running()) return;
  if (needle.isEmpty()) {
    model_->clearFilter();
    filter_info_->clear();
    delete_matching_->setEnabled(false);
    return;
  }
  const QString ws = workspace_;
  const qint64 id = model_->datasetId();
  busy(true, "Searching…");
  disconnect(job_, &Job::finished, this, nullptr);
  connect(job_, &Job::finished, this, [this, needle](const QVariant& v) {
    busy(false, QString());
    QVector<qint64> pos;
    for (const auto& x : v.toList()) pos << x.toLongLong();
    model_->setFilter(pos);
    filter_info_->setText(QString("%1 rows match \"%2\"").arg(pos.size()).arg(needle));
    delete_matching_->setEnabled(!pos.isEmpty());
  });
  job_->start([ws, id, needle](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    QVariantList out;
    int64_t from = 0;
    while (!ctx.cancelled()) {
      auto rows = search_rows(w, id, ss(needle), from, 5000);
      for (const auto& r : rows) out << qint64(r.position);
      if (rows.size() < 5000) break;
      from = rows.back().position + 1;
      ctx.progress(out.size(), 0, "Searching");
    }
    return out;
  });
}

void DatasetsPage::deleteMatching() {
  if (!model_->filtered() || job_->running()) return;
  const int n = model_->rowCount();
  if (QMessageBox::question(this, "Delete matches", QString("Delete all %1 rows that match the filter?").arg(n)) != QMessageBox::Yes)
    return;
  QList<int> rows;
  for (int i = 0; i < n; ++i) rows << i;
  deleteRows(rows);
  search(search_->text());
}

void DatasetsPage::computeStats() {
  if (!model_->datasetId() || stats_job_->running()) return;
  const QString ws = workspace_, tokdir = stats_model_->text().trimmed();
  const QString forced = preview_format_->currentData().toString();
  const bool templated = templated_->isChecked();
  const qint64 id = model_->datasetId();
  stats_text_->setText("Counting…");
  stats_cancel_->setEnabled(true);
  stats_job_->start([ws, id, tokdir, forced, templated](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    std::unique_ptr<Tokenizer> tok;
    if (!tokdir.isEmpty()) tok = load_tokenizer(ss(tokdir));
    StatsOptions o;
    o.tok = tok.get();
    if (tok && templated) o.format = resolve_chat_template(tok->config(), forced.isEmpty() ? "auto" : ss(forced));
    o.progress = [&ctx](int64_t done, int64_t total) {
      ctx.progress(done, total);
      return !ctx.cancelled();
    };
    DatasetStats st = dataset_stats(w, id, o);
    QVariantMap m;
    m["rows"] = qint64(st.rows);
    m["chars"] = qint64(st.chars);
    m["labelled"] = qint64(st.labelled);
    m["duplicates"] = qint64(st.duplicates);
    QVariantList lens;
    for (auto n : st.token_lengths) lens << qint64(n);
    m["lengths"] = lens;
    QStringList longest;
    for (auto& [p, n] : st.longest) longest << QString("%1: %2").arg(p).arg(n);
    m["longest"] = longest.join(", ");
    return m;
  });
}

void DatasetsPage::showTab(int index) { tabs_->setCurrentIndex(index); }

QString DatasetsPage::statsText() const { return stats_text_->text(); }

void DatasetsPage::loadTokenizer() {
  const QString dir = preview_model_->text().trimmed();
  if (dir.isEmpty() || dir == tok_dir_ || tok_job_->running()) return;
  tok_.reset();
  tok_dir_ = dir;
  preview_counts_->setText("Loading the tokenizer…");
  // Parsing a large tokenizer.json takes a while; the result is handed over when the job ends.
  auto slot = std::make_shared<std::shared_ptr<Tokenizer>>();
  tok_pending_ = slot;
  tok_job_->start([dir, slot](Job::Context&) -> QVariant {
    *slot = std::shared_ptr<Tokenizer>(load_tokenizer(ss(dir)));
    return true;
  });
}

void DatasetsPage::previewRow(int view_row) {
  const qint64 p = model_->positionAt(view_row);
  if (p >= 0) preview_row_->setValue(static_cast<int>(p));
  renderPreview();
}

QString DatasetsPage::previewFormat() const {
  if (!tok_) return QString();
  const QString forced = preview_format_->currentData().toString();
  try {
    return qs(resolve_chat_template(tok_->config(), forced.isEmpty() ? "auto" : ss(forced)).name());
  } catch (const std::exception&) {
    return "unusable";  // renderPreview shows why
  }
}

void DatasetsPage::renderPreview() {
  preview_trained_ = preview_masked_ = 0;
  if (!tok_ || !model_->datasetId()) {
    if (!tok_) loadTokenizer();  // does nothing for a folder already tried
    return;
  }
  const qint64 pos = preview_row_->value();
  DatasetRow r;
  guarded(this, "Preview", [&] {
    auto rows = read_rows(*model_->workspace(), model_->datasetId(), pos, pos + 1);
    if (!rows.empty()) r = rows.front();
  });
  if (!r.id) {
    preview_->clear();
    return;
  }
  const QString forced = preview_format_->currentData().toString();
  const int64_t max_len = preview_max_len_->value();
  Sequence seq;
  QString what;
  try {
    const ChatTemplate f = resolve_chat_template(tok_->config(), forced.isEmpty() ? "auto" : ss(forced));
    const QString kind = model_->kind();
    if (kind == "chat") {
      TokenizeStats st;
      Conversation c{record_messages(r.data), r.source};
      auto s = tokenize_conversations(*tok_, f, {c}, max_len, true, &st);
      if (!s.empty()) seq = s.front();
      what = "a chat row: the loss is on the assistant replies (and their end-of-turn tokens)";
    } else if (kind == "preference" || kind == "candidates") {
      PreferencePair p;
      if (kind == "preference") p = preference_from_record(r.data, r.source);
      else {
        json j = json::parse(r.data);
        p.prompt = j["prompt"].is_string() ? std::vector<ChatMessage>{{"user", j["prompt"].get<std::string>()}}
                                           : std::vector<ChatMessage>{};
        if (j["prompt"].is_array())
          for (const auto& m : j["prompt"]) p.prompt.push_back({m.value("role", "user"), m.value("content", "")});
        p.chosen = {{"assistant", j["responses"][0].get<std::string>()}};
      }
      seq = tokenize_completion(*tok_, f, p.prompt, p.chosen, max_len);
      what = kind == "preference" ? "the chosen answer of a pair: the loss (log-probabilities) is on the answer only"
                                  : "response A of a candidates row: the loss is on the response only";
    } else {
      TokenizeStats st;
      json j = json::parse(r.data);
      auto s = pack_documents(*tok_, {j.value("text", "")}, max_len, &st, false);
      if (!s.empty()) seq = s.front();
      what = "a text row (continued pre-training): every token is trained";
    }
  } catch (const std::exception& e) {
    preview_counts_->setText(QString("Row %1 cannot be tokenized: %2").arg(pos).arg(e.what()));
    preview_->clear();
    return;
  }
  // Each token is a span; neighbours alternate two shades so boundaries show (Qt's rich text has
  // no inline borders): trained tokens green, masked ones grey.
  QString html = "<div style='line-height: 180%'>";
  const bool dark = palette().color(QPalette::Base).lightness() < 128;
  const char* trained_bg[2] = {dark ? "#1e5631" : "#c8f0d0", dark ? "#2d7a47" : "#9fdcb0"};
  const char* masked_bg[2] = {dark ? "#3a3a3a" : "#ececec", dark ? "#505050" : "#d2d2d2"};
  for (size_t i = 0; i < seq.ids.size(); ++i) {
    const bool trained = i < seq.loss_mask.size() && seq.loss_mask[i];
    (trained ? preview_trained_ : preview_masked_)++;
    QString t = qs(tok_->decode({seq.ids[i]}, false)).toHtmlEscaped();
    t.replace(' ', "&middot;").replace('\n', "&#8629;<br>");
    if (t.isEmpty()) t = qs(tok_->id_to_token(seq.ids[i])).toHtmlEscaped();
    html += QString("<span title='id %1' style='background:%2'>%3</span>")
                .arg(seq.ids[i]).arg(trained ? trained_bg[i % 2] : masked_bg[i % 2], t);
  }
  html += "</div>";
  preview_->setHtml(html);
  preview_counts_->setText(QString("Row %1 with the %2 template, %3. <b>%4 tokens: %5 trained</b> (green), %6 masked (grey).")
                               .arg(pos).arg(previewFormat(), what).arg(seq.ids.size()).arg(preview_trained_).arg(preview_masked_));
}

}  // namespace hone::ui
