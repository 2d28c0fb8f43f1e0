// LabelPage (see label_page.h). The queue is the candidates dataset read once (list_candidates) and
// re-read after each write, so what is shown is always what the store holds.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "label_page.h"

#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QSplitter>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "job.h"
#include "look.h"
#include "serve/candidate_dataset.h"
#include "store/datasets.h"
#include "store/runs.h"

namespace hone::ui {

using nlohmann::json;

namespace {
QString asMarkdown(const json& v) {
  if (v.is_string()) return qs(v.get<std::string>());
  QString out;  // a conversational prompt: each turn under its role
  for (const auto& m : v) out += QString("**%1:** %2\n\n").arg(qs(m.value("role", "")), qs(m.value("content", "")));
  return out;
}

QString labelText(const std::string& l, bool single) {
  if (l.empty()) return "unlabelled";
  if (single) return l == "a" ? "good" : l == "both_bad" ? "bad" : qs(l);
  if (l == "a") return "A better";
  if (l == "b") return "B better";
  if (l == "both_bad") return "both bad";
  return qs(l);
}
}  // namespace

LabelPage::LabelPage(QWidget* parent) : QWidget(parent), gen_job_(new Job("candidates", this)) {
  setFocusPolicy(Qt::StrongFocus);
  auto* lay = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  dataset_ = new QComboBox;
  dataset_->setMinimumWidth(220);
  dataset_->setToolTip("Candidates datasets: a prompt with sampled responses to judge");
  filter_ = new QComboBox;
  filter_->addItem("All rows", "all");
  filter_->addItem("Unlabelled", "unlabelled");
  filter_->addItem("Labelled", "labelled");
  filter_->addItem("Skipped", "skipped");
  top->addWidget(new QLabel("Dataset"));
  top->addWidget(dataset_);
  top->addWidget(new QLabel("Show"));
  top->addWidget(filter_);
  progress_ = new QProgressBar;
  progress_->setMaximumWidth(220);
  progress_text_ = new QLabel;
  top->addWidget(progress_);
  top->addWidget(progress_text_);
  top->addStretch();
  auto* gen = new QPushButton("Generate candidates…");
  gen->setToolTip("Sample responses to a dataset's prompts with a model or a run's adapter, as a new dataset to label");
  train_ = new QPushButton("Train DPO on these");
  train_->setToolTip("Open the Train page with this dataset and DPO chosen (pairs labelled A or B train)");
  auto* exp = new QPushButton("Export…");
  exp->setToolTip("Write the pairs labelled A or B as DPO/ORPO JSONL (and the ratings as KTO JSONL beside it)");
  top->addWidget(gen);
  top->addWidget(exp);
  top->addWidget(train_);
  connect(exp, &QPushButton::clicked, this, [this] {
    if (!dataset_id_) return;
    const QString out = QFileDialog::getSaveFileName(this, "Export labelled pairs", currentDataset() + "-pairs.jsonl",
                                                     "JSON Lines (*.jsonl)");
    if (out.isEmpty()) return;
    QString ratings = out;
    ratings.replace(QRegularExpression("(-pairs)?\\.jsonl$"), "-ratings.jsonl");
    guarded(this, "Export", [&] {
      Workspace ws(ss(workspace_));
      const LabelExportReport r = export_labels(ws, dataset_id_, ss(out), ss(ratings));
      status_->setText(QString("Wrote %1 pairs to %2 and %3 ratings to %4 (%5 ties, %6 both bad, %7 skipped, %8 unlabelled left out)")
                           .arg(r.pairs).arg(out).arg(r.ratings).arg(ratings).arg(r.ties).arg(r.both_bad).arg(r.skipped).arg(r.unlabelled));
    });
  });
  lay->addLayout(top);
  auto* genrow = new QHBoxLayout;
  gen_progress_ = new QProgressBar;
  gen_cancel_ = new QPushButton("Cancel");
  genrow->addWidget(gen_progress_, 1);
  genrow->addWidget(gen_cancel_);
  gen_progress_->setVisible(false);
  gen_cancel_->setVisible(false);
  lay->addLayout(genrow);

  auto* split = new QSplitter(Qt::Horizontal);
  queue_ = new QListWidget;
  queue_->setObjectName("queue");
  queue_->installEventFilter(this);
  split->addWidget(queue_);
  auto* main = new QWidget;
  auto* ml = new QVBoxLayout(main);
  ml->setContentsMargins(0, 0, 0, 0);
  ml->addWidget(new QLabel("<b>Prompt</b>"));
  prompt_ = new QTextBrowser;
  prompt_->setMaximumHeight(160);
  ml->addWidget(prompt_);
  auto* sides = new QHBoxLayout;
  auto* lcol = new QVBoxLayout;
  auto* rcol = new QVBoxLayout;
  left_title_ = new QLabel;
  right_title_ = new QLabel;
  left_ = new QTextBrowser;
  right_ = new QTextBrowser;
  for (auto* b : {prompt_, left_, right_}) {
    b->setFocusPolicy(Qt::NoFocus);  // keys belong to the labeller, not to text scrolling
    b->setOpenExternalLinks(false);
  }
  lcol->addWidget(left_title_);
  lcol->addWidget(left_, 1);
  rcol->addWidget(right_title_);
  rcol->addWidget(right_, 1);
  sides->addLayout(lcol);
  sides->addLayout(rcol);
  ml->addLayout(sides, 1);
  note_ = new QLabel;
  note_->setWordWrap(true);
  ml->addWidget(note_);
  auto* keys = new QHBoxLayout;
  const std::pair<const char*, const char*> acts[] = {{"A better (1)", "a"},  {"B better (2)", "b"}, {"Tie (T)", "tie"},
                                                      {"Both bad (X)", "both_bad"}, {"Skip (S)", "skip"}};
  for (const auto& [text, label] : acts) {
    auto* b = new QPushButton(text);
    b->setFocusPolicy(Qt::NoFocus);
    const QString l = label;
    connect(b, &QPushButton::clicked, this, [this, l] { verdict(l); });
    keys->addWidget(b);
  }
  auto* editb = new QPushButton("Edit (E)");
  auto* noteb = new QPushButton("Note (N)");
  auto* undob = new QPushButton("Undo (Ctrl+Z)");
  for (auto* b : {editb, noteb, undob}) {
    b->setFocusPolicy(Qt::NoFocus);
    keys->addWidget(b);
  }
  ml->addLayout(keys);
  status_ = new QLabel;
  ml->addWidget(status_);
  split->addWidget(main);
  split->setStretchFactor(1, 4);
  lay->addWidget(split, 1);

  connect(dataset_, &QComboBox::currentIndexChanged, this, [this] { loadQueue(); });
  connect(filter_, &QComboBox::currentIndexChanged, this, [this] { rebuildQueue(); });
  connect(queue_, &QListWidget::currentRowChanged, this, [this](int i) { show(i); });
  connect(gen, &QPushButton::clicked, this, &LabelPage::openGenerateDialog);
  connect(train_, &QPushButton::clicked, this, [this] {
    if (!currentDataset().isEmpty()) Q_EMIT trainRequested(currentDataset(), "dpo");
  });
  connect(editb, &QPushButton::clicked, this, [this] {
    QKeyEvent e(QEvent::KeyPress, Qt::Key_E, Qt::NoModifier, "e");
    handleKey(&e);
  });
  connect(noteb, &QPushButton::clicked, this, [this] {
    QKeyEvent e(QEvent::KeyPress, Qt::Key_N, Qt::NoModifier, "n");
    handleKey(&e);
  });
  connect(undob, &QPushButton::clicked, this, [this] { undo(); });
  connect(gen_cancel_, &QPushButton::clicked, gen_job_, &Job::cancel);
  connect(gen_job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString& t) {
    gen_progress_->setRange(0, total > 0 ? int(total) : 0);
    gen_progress_->setValue(int(done));
    gen_progress_->setFormat(total > 0 ? QString("Generating: %1 of %2 prompts").arg(done).arg(total) : t);
  });
  connect(gen_job_, &Job::stopped, this, [this] {
    gen_progress_->setVisible(false);
    gen_cancel_->setVisible(false);
  });
  connect(gen_job_, &Job::failed, this, [this](const QString& e) { status_->setText("Generating candidates failed: " + e); });
  connect(gen_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    if (m.value("cancelled").toBool()) {
      status_->setText("Generation cancelled; nothing stored.");
      return;
    }
    status_->setText(QString("Stored %1 candidate rows as \"%2\".").arg(m.value("rows").toLongLong()).arg(m.value("name").toString()));
    refresh();
    openDataset(m.value("name").toString());
    Q_EMIT datasetsChanged();
  });
}

void LabelPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  dataset_id_ = 0;
  refresh();
}

void LabelPage::setModelFolder(const QString& dir) { model_dir_ = dir; }
QString LabelPage::statusText() const { return status_->text(); }

void LabelPage::refresh() {
  if (workspace_.isEmpty()) return;
  const QString keep = currentDataset();
  guarded(this, "Label", [&] {
    Workspace ws(ss(workspace_));
    dataset_->blockSignals(true);
    dataset_->clear();
    for (const auto& d : list_datasets(ws))
      if (d.kind == "candidates") dataset_->addItem(QString("%1  (%2 rows)").arg(qs(d.name)).arg(d.rows), qs(d.name));
    const int i = dataset_->findData(keep);
    dataset_->setCurrentIndex(i >= 0 ? i : 0);
    dataset_->blockSignals(false);
  });
  if (dataset_->count() == 0) {
    prompt_->setMarkdown("No candidates dataset yet. **Generate candidates…** samples two responses to each prompt of a "
                         "dataset; a file of `{\"prompt\", \"responses\": [...]}` rows can also be imported on the Datasets page.");
  }
  loadQueue();
}

bool LabelPage::openDataset(const QString& name) {
  const int i = dataset_->findData(name);
  if (i < 0) {
    refresh();
    if (dataset_->findData(name) < 0) return false;
  }
  dataset_->setCurrentIndex(dataset_->findData(name));
  loadQueue();
  return true;
}

QString LabelPage::currentDataset() const { return dataset_->currentData().toString(); }

void LabelPage::setFilter(const QString& which) {
  const int i = filter_->findData(which);
  if (i >= 0) filter_->setCurrentIndex(i);
}

void LabelPage::loadQueue() {
  const int keep_pos = currentPosition();
  rows_.clear();
  dataset_id_ = 0;
  const QString name = currentDataset();
  if (!name.isEmpty())
    guarded(this, "Label", [&] {
      Workspace ws(ss(workspace_));
      dataset_id_ = find_dataset(ws, ss(name)).id;
      rows_ = list_candidates(ws, dataset_id_);
    });
  rebuildQueue(keep_pos);
}

void LabelPage::reloadRow(qint64 position) {
  // One row re-read after a write, instead of the whole dataset (labelling stays instant on a
  // large candidates set).
  for (auto& r : rows_)
    if (r.position == position)
      guarded(this, "Label", [&] {
        Workspace ws(ss(workspace_));
        Stmt s = ws.db().prepare(
            "SELECT r.data, l.label, l.note, l.author FROM rows r LEFT JOIN labels l ON l.row_id = r.id WHERE r.id = ?");
        s.bind(1, r.row_id);
        if (!s.step()) return;
        r.data = s.text(0);
        r.label = s.is_null(1) ? "" : s.text(1);
        r.note = s.is_null(2) ? "" : s.text(2);
        r.author = s.is_null(3) ? "" : s.text(3);
        r.edited.clear();
        json j = json::parse(r.data);
        if (j.contains("original_responses"))
          for (size_t i = 0; i < j["responses"].size(); ++i)
            if (j["responses"][i] != j["original_responses"][i]) r.edited.push_back(static_cast<int>(i));
      });
}

void LabelPage::rebuildQueue(int keep_pos) {
  if (keep_pos == -2) keep_pos = currentPosition();
  shown_.clear();
  const QString f = filter_->currentData().toString();
  queue_->blockSignals(true);
  queue_->clear();
  int select = -1;
  for (int i = 0; i < int(rows_.size()); ++i) {
    const auto& r = rows_[size_t(i)];
    const bool keep = f == "all" || (f == "unlabelled" && r.label.empty()) || (f == "skipped" && r.label == "skip") ||
                      (f == "labelled" && !r.label.empty() && r.label != "skip");
    if (!keep) continue;
    json j = json::parse(r.data);
    QString p = asMarkdown(j["prompt"]).simplified();
    if (p.size() > 60) p = p.left(60) + "…";
    queue_->addItem(QString("%1  [%2]  %3").arg(r.position).arg(labelText(r.label, j["responses"].size() < 2), p));
    if (r.position == keep_pos) select = shown_.size();
    shown_ << i;
  }
  queue_->blockSignals(false);
  if (select < 0 && !shown_.isEmpty()) {
    select = 0;  // the first unlabelled row, else the first
    for (int k = 0; k < shown_.size(); ++k)
      if (rows_[size_t(shown_[k])].label.empty()) {
        select = k;
        break;
      }
  }
  queue_->setCurrentRow(select);
  show(select);
  updateProgress();
  train_->setEnabled(dataset_id_ > 0);
  if (isVisible()) queue_->setFocus();  // verdict keys work at once after choosing a dataset or filter
}

void LabelPage::updateProgress() {
  const int done = labelledCount();
  progress_->setRange(0, std::max<int>(1, int(rows_.size())));
  progress_->setValue(done);
  progress_text_->setText(QString("%1 / %2 labelled").arg(done).arg(rows_.size()));
}

int LabelPage::labelledCount() const {
  int n = 0;
  for (const auto& r : rows_) n += !r.label.empty() && r.label != "skip";
  return n;
}

int LabelPage::queueSize() const { return shown_.size(); }

const CandidateRow* LabelPage::current() const {
  const int i = queue_->currentRow();
  return i >= 0 && i < shown_.size() ? &rows_[size_t(shown_[i])] : nullptr;
}

int LabelPage::currentPosition() const {
  const auto* c = current();
  return c ? int(c->position) : -1;
}

void LabelPage::show(int qi) {
  const CandidateRow* c = qi >= 0 && qi < shown_.size() ? &rows_[size_t(shown_[qi])] : nullptr;
  if (!c) {
    if (dataset_id_) prompt_->setMarkdown(rows_.empty() ? "This dataset has no rows." : "Nothing left under this filter.");
    left_->clear();
    right_->clear();
    left_title_->clear();
    right_title_->clear();
    note_->clear();
    return;
  }
  json j = json::parse(c->data);
  const auto& rs = j["responses"];
  const bool single = rs.size() < 2;
  prompt_->setMarkdown(asMarkdown(j["prompt"]));
  auto edited = [&](int k) { return std::find(c->edited.begin(), c->edited.end(), k) != c->edited.end() ? "  (edited)" : ""; };
  left_title_->setText(single ? QString("<b>Response</b>%1 — 1/A good, 2/B/X bad").arg(edited(0))
                              : QString("<b>A</b>%1").arg(edited(0)));
  left_->setMarkdown(rs.size() > 0 ? asMarkdown(rs[0]) : QString());
  right_title_->setVisible(!single);
  right_->setVisible(!single);
  right_title_->setText(QString("<b>B</b>%1").arg(edited(1)));
  right_->setMarkdown(single ? QString() : asMarkdown(rs[1]));
  note_->setText(QString("Row %1: <b>%2</b>%3").arg(c->position).arg(labelText(c->label, single))
                     .arg(c->note.empty() ? QString() : " — note: " + qs(c->note).toHtmlEscaped()));
}

bool LabelPage::verdict(const QString& label) {
  const CandidateRow* c = current();
  if (!c || !dataset_id_) return false;
  json j = json::parse(c->data);
  QString l = label;
  if (j["responses"].size() < 2 && l == "b") l = "both_bad";  // single response: "right is better" reads as "bad"
  if (j["responses"].size() < 2 && l == "tie") return false;
  const UndoStep step{false, c->position, c->label, c->note};
  const std::string note = pending_note_.isEmpty() ? c->note : ss(pending_note_);
  const qint64 pos = c->position;
  const bool ok = guarded(this, "Label", [&] {
    Workspace ws(ss(workspace_));
    label_candidate(ws, dataset_id_, pos, ss(l), note, "gui");
  });
  if (!ok) return false;
  undo_ << step;
  pending_note_.clear();
  status_->setText(QString("Row %1: %2 (saved)").arg(pos).arg(l));
  // Next: the following row that still needs a verdict under the filter.
  const int from = queue_->currentRow();
  reloadRow(pos);
  rebuildQueue();
  int next = -1;
  for (int k = 0; k < shown_.size(); ++k)
    if (rows_[size_t(shown_[k])].position > pos && rows_[size_t(shown_[k])].label.empty()) {
      next = k;
      break;
    }
  if (next < 0) next = std::min(from + (filter_->currentData() == "all" ? 1 : 0), int(shown_.size()) - 1);
  queue_->setCurrentRow(next);
  return true;
}

bool LabelPage::editResponse(int which, const QString& text) {
  const CandidateRow* c = current();
  if (!c) return false;
  const qint64 pos = c->position;
  const bool ok = guarded(this, "Edit response", [&] {
    Workspace ws(ss(workspace_));
    edit_response(ws, dataset_id_, pos, which, ss(text), "gui");
  });
  if (ok) {
    undo_ << UndoStep{true, pos, {}, {}};
    reloadRow(pos);
    rebuildQueue();
  }
  return ok;
}

bool LabelPage::setNote(const QString& note) {
  const CandidateRow* c = current();
  if (!c) return false;
  if (c->label.empty()) {  // saved with the verdict
    pending_note_ = note;
    note_->setText(note_->text() + " — note (saved with the verdict): " + note.toHtmlEscaped());
    return true;
  }
  const UndoStep step{false, c->position, c->label, c->note};
  const qint64 pos = c->position;
  const std::string label = c->label;
  const bool ok = guarded(this, "Note", [&] {
    Workspace ws(ss(workspace_));
    label_candidate(ws, dataset_id_, pos, label, ss(note), "gui");
  });
  if (ok) {
    undo_ << step;
    reloadRow(pos);
    rebuildQueue();
  }
  return ok;
}

bool LabelPage::undo() {
  if (undo_.isEmpty() || !dataset_id_) return false;
  const UndoStep s = undo_.takeLast();
  const bool ok = guarded(this, "Undo", [&] {
    Workspace ws(ss(workspace_));
    if (s.edit) hone::undo(ws, dataset_id_);
    else label_candidate(ws, dataset_id_, s.position, s.label.empty() ? "none" : s.label, s.note, "gui");
  });
  reloadRow(s.position);
  rebuildQueue();
  for (int k = 0; k < shown_.size(); ++k)
    if (rows_[size_t(shown_[k])].position == s.position) queue_->setCurrentRow(k);
  status_->setText(QString("Undone on row %1").arg(s.position));
  return ok;
}

void LabelPage::move(int delta) {
  const int i = queue_->currentRow() + delta;
  if (i >= 0 && i < queue_->count()) queue_->setCurrentRow(i);
}

void LabelPage::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  queue_->setFocus();
}

void LabelPage::keyPressEvent(QKeyEvent* e) {
  if (!handleKey(e)) QWidget::keyPressEvent(e);
}

bool LabelPage::eventFilter(QObject* o, QEvent* e) {
  if (o == queue_ && e->type() == QEvent::KeyPress) {
    auto* k = static_cast<QKeyEvent*>(e);
    if (k->key() != Qt::Key_Up && k->key() != Qt::Key_Down && handleKey(k)) return true;
  }
  return QWidget::eventFilter(o, e);
}

bool LabelPage::handleKey(QKeyEvent* e) {
  if (e->matches(QKeySequence::Undo)) return undo(), true;
  if (e->modifiers() & (Qt::ControlModifier | Qt::AltModifier | Qt::MetaModifier)) return false;
  switch (e->key()) {
    case Qt::Key_1:
    case Qt::Key_A: return verdict("a"), true;
    case Qt::Key_2:
    case Qt::Key_B: return verdict("b"), true;
    case Qt::Key_T: return verdict("tie"), true;
    case Qt::Key_X: return verdict("both_bad"), true;
    case Qt::Key_S: return verdict("skip"), true;
    case Qt::Key_Left:
    case Qt::Key_Up: return move(-1), true;
    case Qt::Key_Right:
    case Qt::Key_Down: return move(1), true;
    case Qt::Key_E: {
      const CandidateRow* c = current();
      if (!c) return true;
      json j = json::parse(c->data);
      int which = 0;
      if (j["responses"].size() > 1) {
        bool ok = false;
        const QString s = QInputDialog::getItem(this, "Edit a response", "Which response?", {"A", "B"}, 0, false, &ok);
        if (!ok) return true;
        which = s == "B";
      }
      QDialog d(this);
      d.setWindowTitle(QString("Edit response %1 (the original is kept)").arg(QChar('A' + which)));
      d.resize(700, 480);
      auto* l = new QVBoxLayout(&d);
      auto* t = new QPlainTextEdit(qs(j["responses"][size_t(which)].get<std::string>()));
      t->setFont(monoFont());
      l->addWidget(t);
      l->addWidget(dialogButtons(&d));
      if (d.exec() == QDialog::Accepted) editResponse(which, t->toPlainText());
      return true;
    }
    case Qt::Key_N: {
      const CandidateRow* c = current();
      if (!c) return true;
      bool ok = false;
      const QString n = QInputDialog::getMultiLineText(this, "Note", "Why (kept with the label):", qs(c->note), &ok);
      if (ok) setNote(n);
      return true;
    }
    default: return false;
  }
}

bool LabelPage::generateCandidates(const QString& source, const QString& model_dir, const QString& run_dir, int n,
                                   const QString& name, int max_new_tokens, int limit) {
  if (gen_job_->running() || workspace_.isEmpty()) return false;
  CandidateRequest r;
  r.dataset = ss(source);
  r.model_dir = ss(model_dir);
  r.run_dir = ss(run_dir);
  r.n = n;
  r.name = ss(name);
  r.max_new_tokens = max_new_tokens;
  r.limit = limit;
  const QString ws = workspace_;
  gen_progress_->setVisible(true);
  gen_cancel_->setVisible(true);
  gen_progress_->setRange(0, 0);
  gen_progress_->setFormat("Loading the model…");
  return gen_job_->start([ws, r](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    CandidateOutcome o = make_candidate_dataset(w, r, [&ctx](int64_t done, int64_t total) {
      ctx.progress(done, total);
      return !ctx.cancelled();
    });
    return QVariantMap{{"cancelled", o.cancelled}, {"rows", qint64(o.rows)}, {"name", qs(o.name)}};
  });
}

void LabelPage::openGenerateDialog() {
  if (workspace_.isEmpty()) return;
  QDialog d(this);
  d.setWindowTitle("Generate candidates");
  auto* f = new QFormLayout(&d);
  auto* src = new QComboBox;
  auto* run = new QComboBox;
  run->addItem("None: the model folder as it is", QString());
  guarded(this, "Generate", [&] {
    Workspace ws(ss(workspace_));
    for (const auto& ds : list_datasets(ws))
      if (ds.kind != "text") src->addItem(QString("%1  (%2, %3 rows)").arg(qs(ds.name), qs(ds.kind)).arg(ds.rows), qs(ds.name));
    for (const auto& r : list_runs(ws))
      if (r.status == "completed") run->addItem(QString("#%1 %2 (%3)").arg(r.id).arg(qs(r.name), qs(r.method)), qs(r.run_dir));
  });
  auto* model = new QLineEdit(model_dir_);
  auto* browse = new QPushButton("Browse…");
  auto* mrow = new QHBoxLayout;
  mrow->addWidget(model, 1);
  mrow->addWidget(browse);
  connect(browse, &QPushButton::clicked, &d, [&] {
    const QString m = QFileDialog::getExistingDirectory(&d, "Model folder", model->text());
    if (!m.isEmpty()) model->setText(m);
  });
  auto* n = new QSpinBox;
  n->setRange(1, 8);
  n->setValue(2);
  auto* maxnew = new QSpinBox;
  maxnew->setRange(8, 4096);
  maxnew->setValue(128);
  auto* limit = new QSpinBox;
  limit->setRange(0, 1000000);
  limit->setValue(50);
  limit->setSpecialValueText("All");
  limit->setToolTip("Prompts from the start of the dataset to answer (each takes a few seconds on a CPU)");
  auto* name = new QLineEdit;
  name->setPlaceholderText("default: <dataset>-candidates");
  f->addRow("Prompts from", src);
  f->addRow("Model folder", mrow);
  f->addRow("Or a run's output", run);
  f->addRow("Responses per prompt", n);
  f->addRow("Max new tokens", maxnew);
  f->addRow("First prompts", limit);
  f->addRow("New dataset name", name);
  f->addRow(dialogButtons(&d));
  if (d.exec() != QDialog::Accepted || src->currentData().toString().isEmpty()) return;
  generateCandidates(src->currentData().toString(), model->text().trimmed(), run->currentData().toString(), n->value(),
                     name->text().trimmed(), maxnew->value(), limit->value());
}

}  // namespace hone::ui
