// LabelPage (see label_page.h). What is shown is always what the store holds: after each write
// the queue re-reads its count and pages (LabelQueue), never the whole dataset.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "label_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QListWidget>
#include <QMenu>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTextBrowser>
#include <QToolButton>
#include <QVBoxLayout>
#include <cmath>
#include <nlohmann/json.hpp>

#include "job.h"
#include "label_queue.h"
#include "look.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "train/eval_stats.h"

namespace hone::ui {

using nlohmann::json;

namespace {
QString asMarkdown(const json& v) {
  if (v.is_string()) return qs(v.get<std::string>());
  QString out;  // a conversational prompt: each turn under its role
  for (const auto& m : v) out += QString("**%1:** %2\n\n").arg(qs(m.value("role", "")), qs(m.value("content", "")));
  return out;
}

// Exactly what trains: every character and line break (a conversation: each turn under its role).
QString asPlainText(const json& v) {
  if (v.is_string()) return qs(v.get<std::string>());
  QString out;
  for (const auto& m : v) out += QString("%1: %2\n\n").arg(qs(m.value("role", "")), qs(m.value("content", "")));
  return out;
}

QString letter(int k) { return QString(QChar('A' + k)); }

QPushButton* flatButton(const QString& text, QLayout* lay) {
  auto* b = new QPushButton(text);
  b->setFocusPolicy(Qt::NoFocus);  // keys belong to the labeller
  lay->addWidget(b);
  return b;
}
}  // namespace

QString LabelPage::annotator() {
  const QString s = QSettings().value("settings/annotator").toString().trimmed();
  if (!s.isEmpty()) return s;
  const QString user = qEnvironmentVariable("USER");
  return user.isEmpty() ? "me" : user;
}

LabelPage::LabelPage(QWidget* parent) : QWidget(parent), model_(new LabelQueue(this)), gen_job_(new Job("candidates", this)) {
  setFocusPolicy(Qt::StrongFocus);
  auto* lay = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  dataset_ = new QComboBox;
  dataset_->setMinimumWidth(180);
  dataset_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  dataset_->setMinimumContentsLength(18);
  dataset_->setToolTip("Candidates (a prompt with sampled responses) and preference pairs to review");
  filter_ = new QComboBox;
  filter_->addItem("All rows", "all");
  filter_->addItem("Unlabelled", "unlabelled");
  filter_->addItem("Not judged by me", "mine");
  filter_->addItem("Labelled", "labelled");
  filter_->addItem("Skipped", "skipped");
  top->addWidget(new QLabel("Dataset"));
  top->addWidget(dataset_, 1);
  top->addWidget(new QLabel("Show"));
  top->addWidget(filter_);
  progress_ = new QProgressBar;
  progress_->setMaximumWidth(140);
  progress_->setTextVisible(false);
  progress_text_ = new QLabel;
  top->addWidget(progress_);
  top->addWidget(progress_text_);
  // The actions on a second row: at 1024 pixels one row would squeeze the dataset's name.
  auto* actions = new QHBoxLayout;
  auto* gen = new QPushButton("Generate…");
  gen->setToolTip("Sample responses to a dataset's prompts with one or two models or runs, as a new dataset to label");
  auto* exp = new QPushButton("Export…");
  exp->setToolTip("Write the pairs that can train as DPO/ORPO JSONL (and the ratings as KTO JSONL beside it)");
  auto* team = new QToolButton;
  team->setText("Team");
  team->setPopupMode(QToolButton::InstantPopup);
  team->setToolTip("Verdict sets from other annotators, and how far two annotators agree");
  auto* teamMenu = new QMenu(team);
  team->setMenu(teamMenu);
  train_ = new QPushButton("Train DPO on these");
  train_->setToolTip("Count the pairs that can train (ties, identical, skipped and unlabelled rows are left out), then open "
                     "the Train page with this dataset and DPO chosen");
  actions->addWidget(gen);
  actions->addWidget(exp);
  actions->addWidget(team);
  actions->addWidget(train_);
  actions->addStretch();
  connect(exp, &QPushButton::clicked, this, [this] {
    if (!model_->datasetId()) return;
    const QString out = QFileDialog::getSaveFileName(this, "Export labelled pairs", workspace_ + "/" + currentDataset() + "-pairs.jsonl",
                                                     "JSON Lines (*.jsonl)");
    if (out.isEmpty()) return;
    QString ratings = out;
    ratings.replace(QRegularExpression("(-pairs)?\\.jsonl$"), "-ratings.jsonl");
    guarded(this, "Export", [&] {
      const LabelExportReport r = export_labels(*model_->workspace(), model_->datasetId(), ss(out), ss(ratings));
      status_->setText(QString("Wrote %1 to %2, and %3 KTO ratings to %4").arg(qs(r.summary()), out).arg(r.ratings).arg(ratings));
    });
  });
  teamMenu->addAction("Export my verdicts…", this, [this] {
    const QString out = QFileDialog::getSaveFileName(this, "Export verdicts",
                                                     workspace_ + "/" + currentDataset() + "-verdicts-" + annotator() + ".jsonl",
                                                     "JSON Lines (*.jsonl)");
    if (!out.isEmpty()) exportVerdicts(out);
  });
  teamMenu->addAction("Merge verdicts…", this, [this] {
    const QString in = QFileDialog::getOpenFileName(this, "Merge another annotator's verdicts", workspace_, "JSON Lines (*.jsonl)");
    if (!in.isEmpty()) mergeVerdicts(in);
  });
  teamMenu->addAction("Agreement…", this, &LabelPage::openAgreementDialog);
  lay->addLayout(top);
  lay->addLayout(actions);
  tally_ = new QLabel;
  tally_->setObjectName("tally");
  tally_->setWordWrap(true);
  tally_->setVisible(false);
  lay->addWidget(tally_);
  // The generation's progress in a box of its own, hidden whole when idle (no empty gap).
  auto* genbox = new QWidget;
  auto* genrow = new QHBoxLayout(genbox);
  genrow->setContentsMargins(0, 0, 0, 0);
  gen_progress_ = new QProgressBar;
  gen_cancel_ = new QPushButton("Cancel");
  genrow->addWidget(gen_progress_, 1);
  genrow->addWidget(gen_cancel_);
  genbox->setVisible(false);
  lay->addWidget(genbox);

  auto* split = new QSplitter(Qt::Horizontal);
  queue_ = new QListView;
  queue_->setObjectName("queue");
  queue_->setModel(model_);
  queue_->setUniformItemSizes(true);  // a 100k-row list lays out without measuring every row
  queue_->installEventFilter(this);
  split->addWidget(queue_);
  auto* main = new QWidget;
  auto* ml = new QVBoxLayout(main);
  ml->setContentsMargins(0, 0, 0, 0);
  ml->addWidget(new QLabel("<b>Prompt</b>"));
  prompt_ = new QTextBrowser;
  prompt_->setMaximumHeight(140);
  prompt_->setFocusPolicy(Qt::NoFocus);
  ml->addWidget(prompt_);
  banner_ = new QLabel;
  banner_->setObjectName("banner");
  banner_->setWordWrap(true);
  banner_->setStyleSheet("QLabel { background: #fff4d6; color: #6b4e00; padding: 4px; border-radius: 3px; }");
  banner_->setVisible(false);
  ml->addWidget(banner_);
  grid_ = new QGridLayout;
  for (int k = 0; k < 8; ++k) {
    auto* t = new QLabel;
    auto* b = new QTextBrowser;
    b->setFocusPolicy(Qt::NoFocus);  // keys belong to the labeller, not to text scrolling
    b->setOpenExternalLinks(false);
    titles_ << t;
    panes_ << b;
  }
  ml->addLayout(grid_, 1);
  note_ = new QLabel;
  note_->setWordWrap(true);
  ml->addWidget(note_);
  // Verdicts on one row, the other actions on the next: at 1024 pixels one row would clip them.
  auto* keys = new QHBoxLayout;
  for (int k = 0; k < 5; ++k) verdict_buttons_ << flatButton(QString(), keys);
  keys->addStretch();
  ml->addLayout(keys);
  auto* more = new QHBoxLayout;
  auto* editb = flatButton("Edit (E)", more);
  auto* noteb = flatButton("Note (N)", more);
  auto* undob = flatButton("Undo (Ctrl+Z)", more);
  more->addStretch();
  markdown_ = new QCheckBox("Render Markdown");
  markdown_->setFocusPolicy(Qt::NoFocus);
  markdown_->setToolTip("Show the texts as Markdown (headings, lists, code). Off, they show exactly as they will train: "
                        "every character and line break");
  markdown_->setChecked(QSettings().value("label/markdown", false).toBool());
  more->addWidget(markdown_);
  ml->addLayout(more);
  connect(markdown_, &QCheckBox::toggled, this, [this](bool on) {
    QSettings().setValue("label/markdown", on);
    showRow();  // the same row again: a ranking being typed stays
  });
  status_ = new QLabel;
  status_->setWordWrap(true);
  ml->addWidget(status_);
  split->addWidget(main);
  queue_->setMinimumWidth(220);
  split->setStretchFactor(1, 3);
  split->setSizes({300, 800});
  lay->addWidget(split, 1);

  for (auto* b : verdict_buttons_)
    connect(b, &QPushButton::clicked, this, [this, b] {
      const QString v = b->property("verdict").toString();
      if (v == "save-ranking") saveRanking();
      else verdict(v);
    });
  connect(dataset_, &QComboBox::currentIndexChanged, this, [this] {
    if (!currentDataset().isEmpty())
      QSettings().setValue("label/dataset/" + QString(workspace_).replace('/', '|'), currentDataset());
    undo_.clear();
    status_->clear();  // a message about another dataset would mislead
    loadQueue(-1);
  });
  connect(filter_, &QComboBox::currentIndexChanged, this, [this] { loadQueue(); });
  connect(queue_->selectionModel(), &QItemSelectionModel::currentChanged, this, [this] { showRow(); });
  connect(gen, &QPushButton::clicked, this, &LabelPage::openGenerateDialog);
  connect(train_, &QPushButton::clicked, this, &LabelPage::trainOnThese);
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
  connect(gen_job_, &Job::stopped, this, [this] { gen_progress_->parentWidget()->setVisible(false); });
  connect(gen_job_, &Job::failed, this, [this](const QString& e) { status_->setText("Generating candidates failed: " + e); });
  connect(gen_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    if (m.value("cancelled").toBool()) {
      status_->setText("Generation cancelled; nothing stored.");
      return;
    }
    refresh();
    openDataset(m.value("name").toString());
    const qint64 same = m.value("identical").toLongLong(), again = m.value("resampled").toLongLong();
    QString text = QString("Stored %1 candidate rows as \"%2\".").arg(m.value("rows").toLongLong()).arg(m.value("name").toString());
    if (again) text += QString(" %1 responses were drawn again for repeating another.").arg(again);
    if (same)
      text += QString(" %1 rows still hold responses that read the same: they are marked and cannot be preferred (a higher "
                      "temperature or a second source gives more varied candidates).")
                  .arg(same);
    status_->setText(text);
    Q_EMIT datasetsChanged();
  });
}

void LabelPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  model_->open(QString(), 0, QString(), QString());
  undo_.clear();
  refresh();
}

void LabelPage::setModelFolder(const QString& dir) { model_dir_ = dir; }
QString LabelPage::statusText() const { return status_->text(); }
QString LabelPage::tallyText() const { return tally_->isHidden() ? QString() : tally_->text(); }

void LabelPage::refresh() {
  if (workspace_.isEmpty()) return;
  // The dataset shown, else the one last labelled in this workspace (kept across restarts).
  const QString keep = currentDataset().isEmpty()
                           ? QSettings().value("label/dataset/" + QString(workspace_).replace('/', '|')).toString()
                           : currentDataset();
  guarded(this, "Label", [&] {
    Workspace ws(ss(workspace_));
    dataset_->blockSignals(true);
    dataset_->clear();
    for (const auto& d : list_datasets(ws))
      if (d.kind == "candidates" || d.kind == "preference")
        dataset_->addItem(QString("%1  (%2, %3 rows)").arg(qs(d.name), qs(d.kind)).arg(d.rows),
                          QVariantList{qs(d.name), qs(d.kind)});
    int i = -1;
    for (int k = 0; k < dataset_->count(); ++k)
      if (dataset_->itemData(k).toList().value(0).toString() == keep) i = k;
    dataset_->setCurrentIndex(i >= 0 ? i : 0);
    dataset_->blockSignals(false);
  });
  loadQueue(currentDataset() == keep ? -2 : -1);
}

bool LabelPage::openDataset(const QString& name) {
  auto find = [&] {
    for (int k = 0; k < dataset_->count(); ++k)
      if (dataset_->itemData(k).toList().value(0).toString() == name) return k;
    return -1;
  };
  if (find() < 0) refresh();
  const int i = find();
  if (i < 0) return false;
  if (dataset_->currentIndex() != i) dataset_->setCurrentIndex(i);  // loads the queue
  else loadQueue();
  return true;
}

QString LabelPage::currentDataset() const { return dataset_->currentData().toList().value(0).toString(); }
QString LabelPage::currentKind() const { return dataset_->currentData().toList().value(1).toString(); }

void LabelPage::setFilter(const QString& which) {
  const int i = filter_->findData(which);
  if (i >= 0) filter_->setCurrentIndex(i);
}

void LabelPage::loadQueue(qint64 keep_pos) {
  if (keep_pos == -2) keep_pos = currentPosition();
  const QString name = currentDataset();
  ranking_.clear();
  bool ok = guarded(this, "Label", [&] {
    qint64 id = 0;
    if (!name.isEmpty()) {
      Workspace ws(ss(workspace_));
      id = find_dataset(ws, ss(name)).id;
    }
    model_->open(workspace_, id, currentKind(), filter_->currentData().toString(), annotator());
  });
  if (!ok) model_->open(QString(), 0, QString(), QString());
  if (!model_->datasetId()) {
    prompt_->setMarkdown(dataset_->count() == 0
                             ? "Nothing to label yet. Import a file of prompts (one per line, or `{\"prompt\"}` rows) on the "
                               "Datasets page, then **Generate…** samples responses to choose between; a preference dataset "
                               "(`{\"prompt\", \"chosen\", \"rejected\"}`) opens here for review."
                             : QString());
  }
  int index = keep_pos >= 0 ? model_->indexOfPosition(keep_pos) : -1;
  if (index < 0 && model_->datasetId()) {  // the first unlabelled row, else the first
    const qint64 next = next_unlabelled(*model_->workspace(), model_->datasetId(), -1, nextFor());
    index = next >= 0 ? model_->indexOfPosition(next) : -1;
    if (index < 0 && model_->rowCount() > 0) index = 0;
  }
  select(index);
  updateProgress();
  train_->setEnabled(model_->datasetId() > 0);
  if (isVisible()) queue_->setFocus();  // verdict keys work at once after choosing a dataset or filter
}

void LabelPage::select(int index) {
  if (index >= 0 && index < model_->rowCount()) {
    const QModelIndex mi = model_->index(index);
    queue_->setCurrentIndex(mi);
    queue_->scrollTo(mi);
  } else {
    queue_->setCurrentIndex(QModelIndex());
  }
  showRow();
}

void LabelPage::updateProgress() {
  LabelProgress p;
  if (model_->datasetId()) p = label_progress(*model_->workspace(), model_->datasetId());
  progress_labelled_ = int(p.labelled);
  progress_->setRange(0, std::max<int>(1, int(p.rows)));
  progress_->setValue(int(p.labelled));
  progress_text_->setText(QString("%1 / %2 labelled").arg(p.labelled).arg(p.rows));
  updateTally(p.rows);
}

void LabelPage::updateTally(qint64 rows) {
  // Candidates from two sources: which one the verdicts prefer so far ("compare my two runs by
  // labelling"). Read from every row, so only for sets of up to 5000 rows (hone-cli label export
  // tallies any size).
  tally_->setVisible(false);
  if (currentKind() != "candidates" || rows == 0 || rows > 5000) return;
  guarded(this, "Label", [&] {
    Workspace& ws = *model_->workspace();
    const json first = json::parse(label_row_at(ws, model_->datasetId(), 0).data);
    if (!first.contains("sources")) return;
    // With one response from each source per row, each comparison is a row of its own: the
    // Wilson interval holds. A ranking of more gives several related pairs per row: no interval.
    const bool independent = first["responses"].size() == 2;
    const LabelExportReport r = export_labels(ws, model_->datasetId(), "", "");
    QStringList parts;
    for (const auto& [source, n] : r.compared) {
      const int64_t won = r.wins.count(source) ? r.wins.at(source) : 0;
      QString part = QString("<b>%1</b> preferred in %2 of %3 comparisons (%4%").arg(qs(source).toHtmlEscaped()).arg(won).arg(n)
                         .arg(n ? 100.0 * double(won) / double(n) : 0.0, 0, 'f', 0);
      if (r.compared.size() == 2 && independent) {
        const Score s = proportion_score(won, n);
        part += QString(", 95% CI %1-%2%").arg(100 * s.lo, 0, 'f', 0).arg(100 * s.hi, 0, 'f', 0);
      }
      parts << part + ")";
    }
    tally_->setText(parts.isEmpty() ? QString("Two sources: no verdict between them yet.") : "Two sources: " + parts.join("; ") + ".");
    tally_->setVisible(true);
  });
}

int LabelPage::labelledCount() const { return progress_labelled_; }
int LabelPage::queueSize() const { return model_->rowCount(); }
int LabelPage::currentPosition() const { return shown_.row_id ? int(shown_.position) : -1; }
QString LabelPage::responseText(int k) const { return k >= 0 && k < panes_.size() ? panes_[k]->toPlainText() : QString(); }
void LabelPage::setRenderMarkdown(bool on) { markdown_->setChecked(on); }

bool LabelPage::identicalShown() const { return shown_.row_id && !shown_.identical.empty(); }
bool LabelPage::preferButtonsEnabled() const { return verdict_buttons_[0]->isVisible() && verdict_buttons_[0]->isEnabled(); }
// (With more than two responses the first button saves a ranking: disabled when all read the same.)

void LabelPage::showRow() {
  const int qi = queue_->currentIndex().isValid() ? queue_->currentIndex().row() : -1;
  const qint64 before = shown_.row_id;
  shown_ = qi >= 0 ? model_->rowAt(qi) : CandidateRow{};
  // The view may announce the same current row again after a reset: a ranking being typed stays.
  if (shown_.row_id != before) ranking_.clear();
  while (grid_->count()) grid_->takeAt(0);
  for (int r = 0; r < 8; ++r) grid_->setRowStretch(r, 0);  // a row of four left its stretch behind
  for (int k = 0; k < 8; ++k) titles_[k]->setVisible(false), panes_[k]->setVisible(false);
  banner_->setVisible(false);
  const bool pref = currentKind() == "preference";
  if (!shown_.row_id) {
    if (model_->datasetId())
      prompt_->setMarkdown(model_->rowCount() == 0 && filter_->currentData() == "all" ? "This dataset has no rows."
                                                                                       : "Nothing left under this filter.");
    note_->clear();
    for (auto* b : verdict_buttons_) b->setVisible(false);
    return;
  }
  json j = json::parse(shown_.data);
  const bool md = markdown_->isChecked();
  auto put = [md](QTextBrowser* b, const json& v) {
    if (md) b->setMarkdown(asMarkdown(v));
    else b->setPlainText(asPlainText(v));
  };
  put(prompt_, j["prompt"]);
  std::vector<json> rs;
  QStringList names;
  if (pref) {
    rs = {j["chosen"], j["rejected"]};
    names = {"A: chosen as stored", "B: rejected as stored"};
  } else {
    for (const auto& r : j["responses"]) rs.push_back(r);
    for (size_t k = 0; k < rs.size(); ++k) names << letter(int(k));
  }
  const int n = int(rs.size());
  const int cols = n <= 2 ? n : n <= 4 ? 2 : 4;
  for (int k = 0; k < n && k < 8; ++k) {
    QString extra;
    if (std::find(shown_.edited.begin(), shown_.edited.end(), k) != shown_.edited.end()) extra += "  (edited)";
    for (const auto& [x, y] : shown_.identical)
      if (x == k || y == k) extra += QString("  <span style='color:#a06000'>= %1</span>").arg(letter(x == k ? y : x));
    titles_[k]->setText(QString("<b>%1</b>%2").arg(names[k], extra));
    put(panes_[k], rs[size_t(k)]);
    grid_->addWidget(titles_[k], (k / cols) * 2, k % cols);
    grid_->addWidget(panes_[k], (k / cols) * 2 + 1, k % cols);
    grid_->setRowStretch((k / cols) * 2 + 1, 1);
    titles_[k]->setVisible(true);
    panes_[k]->setVisible(true);
  }
  if (n == 1) titles_[0]->setText(titles_[0]->text() + " — 1/A good, 2/B/X bad");
  // The verdict keys this row takes.
  QList<QPair<QString, QString>> acts;
  if (pref) acts = {{"Keep (K/1)", "keep"}, {"Flip (F/2)", "flip"}, {"Tie (T)", "tie"}, {"Drop (D)", "drop"}, {"Skip (S)", "skip"}};
  else if (n > 2)
    acts = {{"Save ranking (Enter)", "save-ranking"}, {"Tie (T)", "tie"}, {"Both bad (X)", "both_bad"}, {"Skip (S)", "skip"}};
  else if (n == 2)
    acts = {{"A better (1)", "a"}, {"B better (2)", "b"}, {"Tie (T)", "tie"}, {"Both bad (X)", "both_bad"}, {"Skip (S)", "skip"}};
  else acts = {{"Good (1)", "a"}, {"Bad (2)", "both_bad"}, {"Skip (S)", "skip"}};
  for (int k = 0; k < verdict_buttons_.size(); ++k) {
    auto* b = verdict_buttons_[k];
    b->setVisible(k < acts.size());
    if (k >= acts.size()) continue;
    b->setText(acts[k].first);
    b->setProperty("verdict", acts[k].second);
    const QString v = acts[k].second;
    // Two identical texts: neither can be better.
    b->setEnabled(!(n == 2 && !shown_.identical.empty() && (v == "a" || v == "b" || v == "keep" || v == "flip")));
  }
  int distinct = 0;  // responses that differ from every earlier one
  for (int k = 0; k < n; ++k) {
    bool dup = false;
    for (const auto& [x, y] : shown_.identical) dup = dup || (y == k && x < k);
    distinct += !dup;
  }
  if (n > 2 && distinct < 2) {
    for (auto* b : verdict_buttons_)
      if (b->property("verdict") == "save-ranking") b->setEnabled(false);
    banner_->setText(QString("All %1 responses read the same (whitespace aside): there is nothing to prefer. Tie, both bad or "
                             "skip it, or edit one (E). A higher temperature or a second source gives more varied candidates.")
                         .arg(n));
    banner_->setVisible(true);
  } else if (n == 2 && !shown_.identical.empty()) {
    banner_->setText("A and B read the same (whitespace aside): neither can be better. Tie, both bad or skip it, or edit one (E).");
    banner_->setVisible(true);
  } else if (n > 2) {
    QString same;
    for (const auto& [x, y] : shown_.identical) same += QString(" %1 = %2;").arg(letter(x), letter(y));
    banner_->setText(QString("Rank: press %1 in order, best first (the last one follows); Enter saves a partial order, such as "
                             "best then worst. Backspace takes back a pick.%2")
                         .arg(n <= 8 ? QString("1-%1").arg(n) : QString("the digits"))
                         .arg(same.isEmpty() ? QString() : " Identical:" + same + " their pair is left out of training."));
    banner_->setVisible(true);
  }
  QString verdict = LabelQueue::verdictText(shown_, currentKind());
  note_->setText(QString("Row %1: <b>%2</b>%3%4")
                     .arg(shown_.position)
                     .arg(verdict.toHtmlEscaped())
                     .arg(shown_.verdicts > 1 ? QString(" (newest of %1 annotators' verdicts, by %2)").arg(shown_.verdicts).arg(qs(shown_.author).toHtmlEscaped())
                                              : QString())
                     .arg(shown_.note.empty() ? QString() : " — note: " + qs(shown_.note).toHtmlEscaped()));
}

// Whose verdicts "next" skips: anyone's, or mine while the queue shows the rows I have not judged.
std::string LabelPage::nextFor() const { return filter_->currentData() == "mine" ? ss(annotator()) : std::string(); }

bool LabelPage::write(const std::string& label, const std::vector<int>& ranking, const std::string& note) {
  if (!shown_.row_id || !model_->datasetId()) return false;
  const qint64 pos = shown_.position;
  Verdict before;
  const bool ok = guarded(this, "Label", [&] {
    Workspace& ws = *model_->workspace();
    before = verdict_of(ws, model_->datasetId(), pos, ss(annotator()));
    label_candidate(ws, model_->datasetId(), pos, label, note, ss(annotator()), ranking);
  });
  if (!ok) return false;
  undo_ << UndoStep{false, pos, before};
  pending_note_.clear();
  return true;
}

bool LabelPage::verdict(const QString& label) {
  if (!shown_.row_id) return false;
  QString l = label;
  const bool pref = currentKind() == "preference";
  if (pref && (l == "a" || l == "chosen")) l = "keep";
  if (pref && (l == "b" || l == "rejected")) l = "flip";
  if (!pref && shown_.responses < 2 && l == "b") l = "both_bad";  // single response: "right is better" reads as "bad"
  if (!pref && shown_.responses < 2 && l == "tie") return false;
  if (!pref && shown_.responses > 2 && (l == "a" || l == "b")) {
    status_->setText("This row has " + QString::number(shown_.responses) + " responses: rank them with the digits, best first.");
    return false;
  }
  if (shown_.responses == 2 && !shown_.identical.empty() && (l == "a" || l == "b" || l == "keep" || l == "flip")) {
    status_->setText(QString("Row %1: the two responses are identical; one cannot be better (T, X, S, or E to edit one).").arg(shown_.position));
    return false;
  }
  const std::string note = pending_note_.isEmpty() ? shown_.note : ss(pending_note_);
  const qint64 pos = shown_.position;
  if (!write(ss(l), {}, note)) return false;
  status_->setText(QString("Row %1: %2 (saved as %3)").arg(pos).arg(l, annotator()));
  afterWrite(pos, true);
  return true;
}

bool LabelPage::rank(const QList<int>& order) {
  ranking_ = order;
  return saveRanking();
}

bool LabelPage::saveRanking() {
  if (!shown_.row_id || shown_.responses <= 2) return false;
  if (ranking_.size() == shown_.responses - 1)  // the last one follows
    for (int k = 0; k < shown_.responses; ++k)
      if (!ranking_.contains(k)) ranking_ << k;
  if (ranking_.size() < 2) {
    status_->setText("Pick at least the best and the worst response (digits, best first).");
    return false;
  }
  std::vector<int> r(ranking_.begin(), ranking_.end());
  const qint64 pos = shown_.position;
  QString text;
  for (int k : r) text += (text.isEmpty() ? "" : " > ") + letter(k);
  if (!write("ranked", r, pending_note_.isEmpty() ? shown_.note : ss(pending_note_))) return false;
  status_->setText(QString("Row %1: %2 (saved as %3)").arg(pos).arg(text, annotator()));
  afterWrite(pos, true);
  return true;
}

void LabelPage::afterWrite(qint64 pos, bool advance) {
  const int from = queue_->currentIndex().row();
  model_->reload();
  updateProgress();
  int next = -1;
  if (advance) {  // the following row that still needs a verdict, as the filter shows it
    const qint64 p = next_unlabelled(*model_->workspace(), model_->datasetId(), pos, nextFor());
    if (p >= 0) next = model_->indexOfPosition(p);
    if (next < 0) next = std::min(from + (filter_->currentData() == "all" ? 1 : 0), model_->rowCount() - 1);
  } else {
    next = model_->indexOfPosition(pos);
    if (next < 0) next = std::min(from, model_->rowCount() - 1);
  }
  select(next);
}

bool LabelPage::editResponse(int which, const QString& text) {
  if (!shown_.row_id) return false;
  const qint64 pos = shown_.position;
  const bool ok = guarded(this, "Edit response", [&] {
    edit_response(*model_->workspace(), model_->datasetId(), pos, which, ss(text), ss(annotator()));
  });
  if (ok) {
    undo_ << UndoStep{true, pos, {}};
    afterWrite(pos, false);
  }
  return ok;
}

bool LabelPage::setNote(const QString& note) {
  if (!shown_.row_id) return false;
  if (shown_.label.empty()) {  // saved with the verdict
    pending_note_ = note;
    note_->setText(note_->text() + " — note (saved with the verdict): " + note.toHtmlEscaped());
    return true;
  }
  const qint64 pos = shown_.position;
  if (!write(shown_.label, shown_.ranking, ss(note))) return false;
  afterWrite(pos, false);
  return true;
}

bool LabelPage::undo() {
  if (undo_.isEmpty() || !model_->datasetId()) return false;
  const UndoStep s = undo_.takeLast();
  const bool ok = guarded(this, "Undo", [&] {
    Workspace& ws = *model_->workspace();
    if (s.edit) hone::undo(ws, model_->datasetId());
    else label_candidate(ws, model_->datasetId(), s.position, s.before.label.empty() ? "none" : s.before.label, s.before.note,
                         ss(annotator()), s.before.ranking);
  });
  model_->reload();
  updateProgress();
  const int i = model_->indexOfPosition(s.position);
  select(i >= 0 ? i : std::min(queue_->currentIndex().row(), model_->rowCount() - 1));
  status_->setText(QString("Undone on row %1").arg(s.position));
  return ok;
}

void LabelPage::move(int delta) {
  const int i = queue_->currentIndex().row() + delta;
  if (i >= 0 && i < model_->rowCount()) select(i);
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
    if (k->key() != Qt::Key_Up && k->key() != Qt::Key_Down && k->key() != Qt::Key_PageUp && k->key() != Qt::Key_PageDown &&
        handleKey(k))
      return true;
  }
  return QWidget::eventFilter(o, e);
}

bool LabelPage::handleKey(QKeyEvent* e) {
  if (e->matches(QKeySequence::Undo)) return undo(), true;
  if (e->modifiers() & (Qt::ControlModifier | Qt::AltModifier | Qt::MetaModifier)) return false;
  const bool pref = currentKind() == "preference";
  const bool many = !pref && shown_.responses > 2;
  if (many && ((e->key() >= Qt::Key_1 && e->key() <= Qt::Key_8) || e->key() == Qt::Key_Return || e->key() == Qt::Key_Enter) &&
      !preferButtonsEnabled()) {
    status_->setText(QString("Row %1: the responses read the same; there is nothing to rank (T, X, S, or E to edit one).").arg(shown_.position));
    return true;
  }
  if (many && e->key() >= Qt::Key_1 && e->key() <= Qt::Key_8) {
    const int k = e->key() - Qt::Key_1;
    if (k < shown_.responses && !ranking_.contains(k)) ranking_ << k;
    if (ranking_.size() >= shown_.responses - 1) return saveRanking(), true;
    QString text;
    for (int x : ranking_) text += (text.isEmpty() ? "" : " > ") + letter(x);
    status_->setText("Ranking so far: " + text + "  (Enter saves; Backspace takes back)");
    return true;
  }
  switch (e->key()) {
    case Qt::Key_Return:
    case Qt::Key_Enter: return many ? (saveRanking(), true) : false;
    case Qt::Key_Backspace:
      if (!ranking_.isEmpty()) ranking_.removeLast();
      status_->setText(ranking_.isEmpty() ? QString() : "Ranking so far: " + QString::number(ranking_.size()) + " picked");
      return true;
    case Qt::Key_Escape: ranking_.clear(), status_->clear(); return true;
    case Qt::Key_1:
    case Qt::Key_A: return verdict(pref ? "keep" : "a"), true;
    case Qt::Key_K: return pref ? (verdict("keep"), true) : false;
    case Qt::Key_2:
    case Qt::Key_B: return verdict(pref ? "flip" : "b"), true;
    case Qt::Key_F: return pref ? (verdict("flip"), true) : false;
    case Qt::Key_D: return pref ? (verdict("drop"), true) : false;
    case Qt::Key_T: return verdict("tie"), true;
    case Qt::Key_X: return pref ? false : (verdict("both_bad"), true);
    case Qt::Key_S: return verdict("skip"), true;
    case Qt::Key_Left:
    case Qt::Key_Up: return move(-1), true;
    case Qt::Key_Right:
    case Qt::Key_Down: return move(1), true;
    case Qt::Key_E: {
      if (!shown_.row_id || pref) return true;
      json j = json::parse(shown_.data);
      int which = 0;
      if (j["responses"].size() > 1) {
        QStringList letters;
        for (size_t k = 0; k < j["responses"].size(); ++k) letters << letter(int(k));
        bool ok = false;
        const QString s = QInputDialog::getItem(this, "Edit a response", "Which response?", letters, 0, false, &ok);
        if (!ok) return true;
        which = int(letters.indexOf(s));
      }
      const json& r = j["responses"][size_t(which)];
      QDialog d(this);
      d.setWindowTitle(QString("Edit response %1 (the original is kept)").arg(letter(which)));
      d.resize(700, 480);
      auto* l = new QVBoxLayout(&d);
      auto* t = new QPlainTextEdit(r.is_string() ? qs(r.get<std::string>()) : qs(r.dump(2)));
      t->setFont(monoFont());
      l->addWidget(t);
      l->addWidget(dialogButtons(&d));
      if (d.exec() == QDialog::Accepted) editResponse(which, t->toPlainText());
      return true;
    }
    case Qt::Key_N: {
      if (!shown_.row_id) return true;
      bool ok = false;
      const QString n = QInputDialog::getMultiLineText(this, "Note", "Why (kept with the verdict):", qs(shown_.note), &ok);
      if (ok) setNote(n);
      return true;
    }
    default: return false;
  }
}

QString LabelPage::trainOnThese() {
  if (!model_->datasetId()) return QString();
  LabelExportReport r;
  if (!guarded(this, "Train DPO", [&] { r = export_labels(*model_->workspace(), model_->datasetId(), "", ""); })) return QString();
  const QString summary = qs(r.summary());
  if (r.pairs == 0) {
    status_->setText("Nothing can train yet: " + summary + ". Prefer one response on some rows first.");
    return summary;
  }
  // Start from what wrote the candidates: its base, and its adapter (also the frozen reference).
  TrainingStart start;
  guarded(this, "Train DPO", [&] {
    start = training_start_for(find_dataset(*model_->workspace(), ss(currentDataset())).source);
  });
  QString msg = QString("DPO on \"%1\": %2").arg(currentDataset(), summary);
  if (!start.base_model.empty())
    msg += QString("; starting from %1%2").arg(qs(start.label), start.init_adapter.empty() ? QString() : QString(" (its adapter is the reference)"));
  status_->setText(msg + ".");
  Q_EMIT trainRequested(currentDataset(), "dpo", msg, qs(start.base_model), qs(start.init_adapter));
  return summary;
}

bool LabelPage::exportVerdicts(const QString& path) {
  int64_t n = 0;
  const bool ok = guarded(this, "Export verdicts", [&] { n = export_verdicts(*model_->workspace(), model_->datasetId(), ss(path)); });
  if (ok) status_->setText(QString("Wrote %1 verdicts to %2").arg(n).arg(path));
  return ok;
}

QString LabelPage::mergeVerdicts(const QString& path) {
  MergeReport m;
  if (!model_->datasetId() ||
      !guarded(this, "Merge verdicts", [&] { m = merge_verdicts(*model_->workspace(), model_->datasetId(), ss(path)); }))
    return QString();
  QStringList who;
  for (const auto& a : m.annotators) who << qs(a);
  const QString text = QString("Merged %1 new and %2 newer verdicts%3; kept %4; %5 lines matched no row here")
                           .arg(m.added)
                           .arg(m.updated)
                           .arg(who.isEmpty() ? QString() : " from " + who.join(", "))
                           .arg(m.kept)
                           .arg(m.unmatched);
  status_->setText(text);
  loadQueue();
  return text;
}

QString LabelPage::agreementText() {
  if (!model_->datasetId()) return QString();
  Agreement g;
  QString err;
  try {
    g = label_agreement(*model_->workspace(), model_->datasetId());
  } catch (const std::exception& e) {
    QString m = QString::fromUtf8(e.what());
    if (!m.isEmpty()) m[0] = m[0].toUpper();
    if (!m.endsWith('.')) m += '.';
    return m;
  }
  QString t = QString("%1 and %2 both judged %3 rows and agree on %4: observed %5, expected by chance %6, Cohen's kappa %7.")
                  .arg(qs(g.a), qs(g.b))
                  .arg(g.both)
                  .arg(g.agree)
                  .arg(g.observed, 0, 'f', 3)
                  .arg(g.expected, 0, 'f', 3)
                  .arg(std::isnan(g.kappa) ? QString("undefined (one label throughout)") : QString::number(g.kappa, 'f', 3));
  if (!g.disagreements.empty()) t += QString(" They differ on %1 rows.").arg(g.disagreements.size());
  return t;
}

void LabelPage::openAgreementDialog() {
  if (!model_->datasetId()) return;
  QDialog d(this);
  d.setWindowTitle("Agreement between annotators");
  d.resize(620, 420);
  auto* l = new QVBoxLayout(&d);
  auto* head = new QLabel(agreementText());
  head->setWordWrap(true);
  l->addWidget(head);
  auto* list = new QListWidget;
  auto* listTitle = new QLabel("Rows where they differ (double-click to open):");
  listTitle->setVisible(false);
  list->setVisible(false);
  try {
    Agreement g = label_agreement(*model_->workspace(), model_->datasetId());
    listTitle->setVisible(true);
    list->setVisible(true);
    for (const auto& r : g.disagreements) {
      auto* it = new QListWidgetItem(QString("Row %1: %2 says %3, %4 says %5").arg(r.position).arg(qs(g.a), qs(r.a), qs(g.b), qs(r.b)));
      it->setData(Qt::UserRole, qint64(r.position));
      list->addItem(it);
    }
  } catch (const std::exception&) {
  }
  l->addWidget(listTitle);
  l->addWidget(list, 1);
  connect(list, &QListWidget::itemDoubleClicked, &d, [&](QListWidgetItem* it) {
    setFilter("all");
    select(model_->indexOfPosition(it->data(Qt::UserRole).toLongLong()));
    d.accept();
  });
  auto* bb = new QDialogButtonBox(QDialogButtonBox::Close);
  connect(bb, &QDialogButtonBox::rejected, &d, &QDialog::reject);
  l->addWidget(bb);
  d.exec();
}

bool LabelPage::generateCandidates(const CandidateRequest& req) {
  if (gen_job_->running() || workspace_.isEmpty()) return false;
  last_request_ = req;
  last_request_.name.clear();  // a name is for one dataset
  const QString ws = workspace_;
  gen_progress_->parentWidget()->setVisible(true);
  gen_progress_->setRange(0, 0);
  gen_progress_->setFormat("Loading the model…");
  status_->clear();
  return gen_job_->start([ws, req](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    CandidateOutcome o = make_candidate_dataset(w, req, [&ctx](int64_t done, int64_t total) {
      ctx.progress(done, total);
      return !ctx.cancelled();
    });
    return QVariantMap{{"cancelled", o.cancelled},
                       {"rows", qint64(o.rows)},
                       {"name", qs(o.name)},
                       {"resampled", qint64(o.resampled)},
                       {"identical", qint64(o.identical_rows)}};
  });
}

bool LabelPage::generateCandidates(const QString& source, const QString& model_dir, const QString& run_dir, int n,
                                   const QString& name, int max_new_tokens, int limit) {
  CandidateRequest r;
  r.dataset = ss(source);
  r.model_dir = ss(model_dir);
  r.run_dir = ss(run_dir);
  r.n = n;
  r.name = ss(name);
  r.max_new_tokens = max_new_tokens;
  r.limit = limit;
  return generateCandidates(r);
}

void LabelPage::openGenerateDialog() {
  if (workspace_.isEmpty()) return;
  QDialog d(this);
  d.setWindowTitle("Generate candidates");
  auto* f = new QFormLayout(&d);
  auto* src = new QComboBox;
  auto* runA = new QComboBox;
  auto* runB = new QComboBox;
  runA->addItem("None: the model folder as it is", QString());
  runB->addItem("None: one source", QString());
  guarded(this, "Generate", [&] {
    Workspace ws(ss(workspace_));
    for (const auto& ds : list_datasets(ws))
      if (ds.kind == "prompts" || ds.kind == "chat" || ds.kind == "preference" || ds.kind == "candidates")
        src->addItem(QString("%1  (%2, %3 rows)").arg(qs(ds.name), qs(ds.kind)).arg(ds.rows), qs(ds.name));
    for (const auto& r : list_runs(ws))
      if (r.status == "completed") {
        const QString t = QString("#%1 %2 (%3)").arg(r.id).arg(qs(r.name), qs(r.method));
        runA->addItem(t, qs(r.run_dir));
        runB->addItem(t, qs(r.run_dir));
      }
  });
  for (int k = 0; k < src->count(); ++k)  // prompts datasets first in mind: pick the newest one
    if (src->itemText(k).contains("(prompts,")) src->setCurrentIndex(k);
  // The previous request's choices (kept when it failed, so a retry starts from them).
  const CandidateRequest defaults = last_request_;
  if (!defaults.dataset.empty()) {
    if (const int i = src->findData(qs(defaults.dataset)); i >= 0) src->setCurrentIndex(i);
    if (const int i = runA->findData(qs(defaults.run_dir)); i >= 0) runA->setCurrentIndex(i);
    if (const int i = runB->findData(qs(defaults.second.run_dir)); i >= 0) runB->setCurrentIndex(i);
  }
  auto* model = new QLineEdit(defaults.model_dir.empty() ? model_dir_ : qs(defaults.model_dir));
  model->setPlaceholderText("a model folder (the Train page's base model)");
  auto* browse = new QPushButton("Browse…");
  auto* mrow = new QHBoxLayout;
  mrow->addWidget(model, 1);
  mrow->addWidget(browse);
  connect(browse, &QPushButton::clicked, &d, [&] {
    const QString m = QFileDialog::getExistingDirectory(&d, "Model folder", model->text());
    if (!m.isEmpty()) model->setText(m);
  });
  auto* n = new QSpinBox;
  n->setRange(2, 8);
  n->setValue(defaults.n);
  n->setToolTip("Responses per prompt; with two sources half come from each. More than two are ranked by keyboard");
  auto* temp = new QDoubleSpinBox;
  temp->setRange(0, 2);
  temp->setSingleStep(0.1);
  temp->setValue(defaults.temperature);
  temp->setToolTip("Higher gives more varied responses (0 = greedy: every response the same)");
  auto* topp = new QDoubleSpinBox;
  topp->setRange(0.05, 1);
  topp->setSingleStep(0.05);
  topp->setValue(defaults.top_p);
  auto* topk = new QSpinBox;
  topk->setRange(0, 100000);
  topk->setValue(defaults.top_k);
  topk->setSpecialValueText("off");
  auto* maxnew = new QSpinBox;
  maxnew->setRange(8, 4096);
  maxnew->setValue(defaults.max_new_tokens);
  auto* seed = new QSpinBox;
  seed->setRange(0, 1 << 30);
  seed->setValue(int(defaults.seed));
  auto* limit = new QSpinBox;
  limit->setRange(0, 1000000);
  limit->setValue(defaults.dataset.empty() ? 50 : int(defaults.limit));
  limit->setSpecialValueText("All");
  limit->setToolTip("Prompts from the start of the dataset to answer (each takes a few seconds on a CPU)");
  auto* name = new QLineEdit;
  name->setPlaceholderText("default: <dataset>-candidates");
  f->addRow("Prompts from", src);
  f->addRow("Model folder (A)", mrow);
  f->addRow("Or a run (A)", runA);
  f->addRow("Second source (B)", runB);
  f->addRow("Responses per prompt", n);
  f->addRow("Temperature", temp);
  f->addRow("Top-p", topp);
  f->addRow("Top-k", topk);
  f->addRow("Max new tokens", maxnew);
  f->addRow("Seed", seed);
  f->addRow("First prompts", limit);
  f->addRow("New dataset name", name);
  f->addRow(dialogButtons(&d));
  // A name already taken is said here, with the dialog still open on the choices made.
  for (;;) {
    if (d.exec() != QDialog::Accepted || src->currentData().toString().isEmpty()) return;
    bool taken = false;
    guarded(this, "Generate", [&] {
      Workspace ws(ss(workspace_));
      for (const auto& ds : list_datasets(ws)) taken = taken || qs(ds.name) == name->text().trimmed();
    });
    if (!taken) break;
    QMessageBox::warning(&d, "Generate candidates", QString("A dataset named \"%1\" already exists; choose another name "
                                                            "(or leave it empty for the next free one).")
                                                        .arg(name->text().trimmed()));
  }
  CandidateRequest r;
  r.dataset = ss(src->currentData().toString());
  r.model_dir = ss(model->text().trimmed());
  r.run_dir = ss(runA->currentData().toString());
  r.second.run_dir = ss(runB->currentData().toString());
  r.n = n->value();
  if (!r.second.empty() && r.n % 2) r.n += 1;  // half from each source
  r.temperature = temp->value();
  r.top_p = topp->value();
  r.top_k = topk->value();
  r.max_new_tokens = maxnew->value();
  r.seed = uint64_t(seed->value());
  r.limit = limit->value();
  r.name = ss(name->text().trimmed());
  generateCandidates(r);
}

}  // namespace hone::ui
