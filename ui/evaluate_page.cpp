// EvaluatePage (see evaluate_page.h). Thin over the core: store queries on the GUI thread (small),
// run_eval and run_pairwise on a Job; the results table, chart and per-example view are
// ScoreBoard and ExampleCompare.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "evaluate_page.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "example_compare.h"
#include "job.h"
#include "look.h"
#include "runs/evaluate.h"
#include "pairwise_list.h"
#include "score_board.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "train/eval_stats.h"

namespace hone::ui {

using nlohmann::json;

namespace {

QString folderName(const std::string& dir) { return QFileInfo(QDir::cleanPath(qs(dir))).fileName(); }

QString key(const EvalTarget& t) { return qs(eval_target_json(t).dump()); }

EvalTarget targetOf(const QString& key) {
  const json j = json::parse(ss(key));
  EvalTarget t;
  if (j.contains("run")) t.run_id = j["run"].get<int64_t>();
  t.model_dir = j.value("model", "");
  t.adapter_dir = j.value("adapter", "");
  return t;
}

QListWidgetItem* checkItem(QListWidget* list, const QString& text, const QString& data, bool on) {
  auto* it = new QListWidgetItem(text, list);
  it->setData(Qt::UserRole, data);
  it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
  it->setCheckState(on ? Qt::Checked : Qt::Unchecked);
  return it;
}

QSet<QString> checkedData(const QListWidget* list) {
  QSet<QString> out;
  for (int i = 0; i < list->count(); ++i)
    if (list->item(i)->checkState() == Qt::Checked) out << list->item(i)->data(Qt::UserRole).toString();
  return out;
}

}  // namespace

EvaluatePage::EvaluatePage(QWidget* parent) : QWidget(parent), job_(new Job("evaluation", this)) {
  auto* lay = new QVBoxLayout(this);
  auto* choose = new QHBoxLayout;
  suites_ = new QListWidget;
  suites_->setObjectName("suitesList");
  suites_->setToolTip("Choice datasets are scored by log-likelihood, chat datasets by generated answers (or held-out "
                      "loss), text datasets by held-out loss");
  targets_ = new QListWidget;
  targets_->setObjectName("targetsList");
  targets_->setToolTip("Base models of the recorded runs, completed runs (their adapter or model) and model folders");
  auto* add_model = new QPushButton("Add model folder…");
  auto* tbox = new QVBoxLayout;
  {
    auto* g = new QGroupBox("Suites");
    auto* gl = new QVBoxLayout(g);
    gl->addWidget(suites_);
    choose->addWidget(g, 3);
    auto* t = new QGroupBox("Targets");
    t->setLayout(tbox);
    tbox->addWidget(targets_);
    tbox->addWidget(add_model, 0, Qt::AlignLeft);
    choose->addWidget(t, 4);
  }
  auto* opts = new QGroupBox("Options");
  auto* form = new QFormLayout(opts);
  chat_mode_ = new QComboBox;
  chat_mode_->addItem("Generated answers", "generate");
  chat_mode_->addItem("Held-out loss", "loss");
  chat_mode_->setToolTip("Chat suites: greedy answers against each row's last reply (exact match, contains, ROUGE-L, chrF), "
                         "or the loss on the replies");
  choice_format_ = new QComboBox;
  choice_format_->addItems({"plain", "raw", "chat"});
  choice_format_->setToolTip("Choice suites: plain is lm-evaluation-harness's zero-shot prompt (Question: … Answer:), raw "
                             "continues the question itself (HellaSwag-style), chat puts the question in the target's chat "
                             "template. A model fine-tuned on chat data is best measured in chat format: plain text is not "
                             "what it was tuned on, and a base model the other way round (docs/evaluation.md)");
  max_new_ = new QSpinBox;
  max_new_->setRange(1, 4096);
  max_new_->setValue(64);
  limit_ = new QSpinBox;
  limit_->setRange(0, 10000000);
  limit_->setSpecialValueText("All");
  limit_->setToolTip("Score the first N rows of each suite (a limited suite is another suite: it compares only with "
                     "evaluations of the same rows)");
  form->addRow("Score chat suites by", chat_mode_);
  form->addRow("Choice format", choice_format_);
  form->addRow("Max new tokens", max_new_);
  form->addRow("Limit rows", limit_);
  auto* buttons = new QHBoxLayout;
  evaluate_ = new QPushButton("Evaluate");
  evaluate_->setObjectName("evaluateButton");
  evaluate_->setToolTip("Score every ticked suite on every ticked target; each result is stored as it completes");
  blind_ = new QPushButton("Blind pairwise…");
  blind_->setObjectName("pairwiseButton");
  blind_->setToolTip("Two ticked targets answer one ticked chat suite; you judge the answers blind on the Label page");
  cancel_ = new QPushButton("Cancel");
  cancel_->setObjectName("cancelButton");
  cancel_->setEnabled(false);
  buttons->addWidget(evaluate_);
  buttons->addWidget(blind_);
  buttons->addWidget(cancel_);
  form->addRow(buttons);
  choose->addWidget(opts, 3);
  // The lists take the height of the options beside them: the results need the room below.
  auto* choose_area = new QWidget;
  choose_area->setLayout(choose);
  choose->setContentsMargins(0, 0, 0, 0);
  choose_area->setMaximumHeight(opts->sizeHint().height());
  lay->addWidget(choose_area);

  auto* statusRow = new QHBoxLayout;
  status_ = new QLabel("Tick suites and targets, then Evaluate.");
  status_->setObjectName("statusLabel");
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  progress_ = new QProgressBar;
  progress_->setMaximumWidth(220);
  progress_->setVisible(false);
  open_label_ = new QPushButton;
  open_label_->setVisible(false);
  statusRow->addWidget(status_, 1);
  statusRow->addWidget(open_label_);
  statusRow->addWidget(progress_);
  lay->addLayout(statusRow);

  scores_ = new ScoreBoard(this);
  examples_ = new ExampleCompare;
  pairwise_ = new PairwiseList;
  auto* results = new QWidget;
  auto* rl = new QVBoxLayout(results);
  rl->setContentsMargins(0, 0, 0, 0);
  auto* rtop = new QHBoxLayout;
  rtop->addWidget(new QLabel("<b>Results</b> (the newest evaluation of each target on each suite)"));
  rtop->addStretch(1);
  auto* csv = new QPushButton("Export CSV…");
  auto* png = new QPushButton("Export PNG…");
  rtop->addWidget(csv);
  rtop->addWidget(png);
  rl->addLayout(rtop);
  scores_->table()->setMinimumHeight(110);  // two targets stay readable when the pairwise list shows
  rl->addWidget(scores_->table(), 2);
  rl->addWidget(pairwise_, 1);
  auto* bottom = new QSplitter(Qt::Horizontal);
  bottom->addWidget(scores_->chartPanel());
  bottom->addWidget(examples_);
  bottom->setStretchFactor(0, 2);
  bottom->setStretchFactor(1, 3);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(results);
  split->addWidget(bottom);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 3);
  split->setSizes({200, 600});  // a few targets need a few rows; the chart and examples need height
  lay->addWidget(split, 1);

  connect(add_model, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Model folder (config.json, safetensors, tokenizer)");
    if (!d.isEmpty()) addModelFolder(d);
  });
  connect(evaluate_, &QPushButton::clicked, this, [this] { startEvaluate(); });
  connect(blind_, &QPushButton::clicked, this, [this] { startBlindPairwise(); });
  connect(cancel_, &QPushButton::clicked, job_, &Job::cancel);
  connect(open_label_, &QPushButton::clicked, this, [this] { Q_EMIT labelRequested(blind_set_); });
  connect(csv, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export results", "evaluations.csv", "CSV (*.csv)");
    if (!f.isEmpty() && !exportCsv(f)) status_->setText("Cannot write " + f);
  });
  connect(png, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, "Export chart", "evaluations.png", "PNG image (*.png)");
    if (!f.isEmpty() && !exportPng(f)) status_->setText("Cannot write " + f);
  });
  connect(scores_, &ScoreBoard::suiteChosen, examples_, &ExampleCompare::setSuite);
  connect(job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString& text) {
    progress_->setRange(0, int(std::max<qint64>(total, 1)));
    progress_->setValue(int(done));
    if (!text.isEmpty()) status_->setText(text);
  });
  connect(job_, &Job::failed, this, [this](const QString& e) { status_->setText("Failed: " + e); });
  connect(job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    if (m.contains("blind") && m["cancelled"].toBool()) {
      status_->setText("Blind pairwise cancelled; nothing stored.");
    } else if (m.contains("blind")) {
      blind_set_ = m["blind"].toString();
      status_->setText(QString("Label the blind set %1 on the Label page; the win rate appears here when every row is labelled.")
                           .arg(blind_set_));
      open_label_->setText(QString("Label %1").arg(blind_set_));
      open_label_->setVisible(true);
      Q_EMIT datasetsChanged();
    } else {
      const int stored = m["stored"].toInt();
      const QStringList failed = m["failed"].toStringList();
      QString s = m["cancelled"].toBool()
                      ? QString("Cancelled after %1 stored evaluation(s); the one in progress stored nothing.").arg(stored)
                      : QString("Done: %1 evaluation(s) stored.").arg(stored);
      if (!failed.isEmpty()) s += QString(" %1 failed: %2").arg(failed.size()).arg(failed.join("; "));
      status_->setText(s);
      refresh();
      // The per-example view moves to what was just scored: its suite, base against the newest run.
      try {
        Workspace ws(ss(workspace_));
        const auto evals = list_evals(ws);
        for (auto it = evals.rbegin(); it != evals.rend(); ++it) {
          if (it->kind == "pairwise") continue;
          const std::string variant = eval_variant(*it);
          examples_->setSuite(qs(it->suite + (variant.empty() ? "" : " (" + variant + ")")), qs(it->kind));
          break;
        }
      } catch (const std::exception&) {
      }
      return;
    }
    refresh();
  });
  connect(job_, &Job::stopped, this, [this] { setBusy(false); });
}

// The blind set this page made has all its labels: its result replaces the instruction.
void EvaluatePage::noteBlindResult(const std::vector<EvalRecord>& evals) {
  for (const auto& e : evals) {
    if (blind_set_.isEmpty() || e.kind != "pairwise" || e.status != "completed") continue;
    const json st = json::parse(e.settings, nullptr, false);
    if (!st.is_object() || qs(st.value("labels", "")) != blind_set_) continue;
    const json m = json::parse(e.metrics, nullptr, false);
    if (m.is_object() && m.contains("win_rate_a")) {
      const Score w = score_from_json(m["win_rate_a"]);
      status_->setText(QString("Blind set %1 labelled: %2 won %3 [%4, %5] of %6 comparisons (ties count half).")
                           .arg(blind_set_, qs(e.target_label.substr(0, e.target_label.find(" vs "))))
                           .arg(w.value, 0, 'f', 3)
                           .arg(w.lo, 0, 'f', 3)
                           .arg(w.hi, 0, 'f', 3)
                           .arg(w.n));
    }
    open_label_->setVisible(false);
    blind_set_.clear();
  }
}

void EvaluatePage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  shown_.clear();
  pairwise_->forget();
  blind_set_.clear();
  open_label_->setVisible(false);
  refresh();
}

QString EvaluatePage::statusText() const { return status_->text(); }
QString EvaluatePage::targetLabel(const QString& target) const { return labels_.value(target); }
bool EvaluatePage::exportCsv(const QString& path) const { return scores_->exportCsv(path); }
bool EvaluatePage::exportPng(const QString& path) { return scores_->exportPng(path); }

void EvaluatePage::refresh() {
  if (workspace_.isEmpty()) return;
  const QSet<QString> suites_on = checkedData(suites_), targets_on = checkedData(targets_);
  try {
    Workspace ws(ss(workspace_));
    const auto datasets = list_datasets(ws);
    const auto runs = list_runs(ws);
    std::vector<EvalRecord> evals = list_evals(ws);
    // The window refreshes the page in view whenever the store changes (every step of a run
    // training elsewhere): the lists and tables are rebuilt only when what they show changed, so
    // that a scrolled table or a selection stays put. Blind sets are looked at each time.
    std::string sig = ss(extra_models_.join('\n'));
    for (const auto& d : datasets) sig += "\nd" + std::to_string(d.id) + d.name + d.kind + std::to_string(d.rows);
    for (const auto& r : runs) sig += "\nr" + std::to_string(r.id) + r.name + r.status + r.base_model;
    for (const auto& e : evals) sig += "\ne" + std::to_string(e.id) + e.status + e.metrics;
    if (sig == shown_) {
      pairwise_->update(ws, evals, labels_);
      noteBlindResult(evals);
      return;
    }
    suites_->clear();
    for (const auto& d : datasets)
      if (d.kind == "choice" || d.kind == "chat" || d.kind == "text")
        checkItem(suites_, QString("%1  (%2, %3 rows)").arg(qs(d.name), qs(d.kind)).arg(d.rows), qs(d.name),
                  suites_on.contains(qs(d.name)))
            ->setData(Qt::UserRole + 1, qs(d.kind));
    // Targets: each base model of the recorded runs, model folders (added here or evaluated
    // before, from here or hone-cli), then the completed runs.
    QStringList bases, models;
    QList<QPair<QString, QString>> items;  // key, list text
    labels_.clear();
    for (const auto& r : runs)
      if (!r.base_model.empty() && !bases.contains(qs(r.base_model))) bases << qs(r.base_model);
    for (const auto& b : bases) {
      EvalTarget t;
      t.model_dir = ss(b);
      items << qMakePair(key(t), "Base: " + folderName(t.model_dir));
    }
    for (const auto& d : extra_models_) models << d;
    for (const auto& e : evals) {
      if (e.kind == "pairwise") continue;
      const EvalTarget t = targetOf(qs(e.target));
      if (t.run_id <= 0 && !(bases.contains(qs(t.model_dir)) && t.adapter_dir.empty())) models << qs(e.target);
    }
    for (const auto& m : models) {
      const EvalTarget t = m.startsWith('{') ? targetOf(m) : EvalTarget{0, ss(m), ""};
      const QString k = key(t);
      if (std::any_of(items.begin(), items.end(), [&](const auto& p) { return p.first == k; })) continue;
      items << qMakePair(k, t.adapter_dir.empty() ? (bases.contains(qs(t.model_dir)) ? "Base: " : "Model: ") + folderName(t.model_dir)
                                                  : QString("Adapter %1 over %2").arg(folderName(t.adapter_dir), folderName(t.model_dir)));
    }
    for (const auto& [k, text] : items) labels_[k] = text;
    for (const auto& r : runs) {
      EvalTarget t;
      t.run_id = r.id;
      labels_[key(t)] = QString("Run %1 %2").arg(r.id).arg(qs(r.name));
      if (r.status == "completed")
        items << qMakePair(key(t), QString("Run %1 %2 (%3 %4)").arg(r.id).arg(qs(r.name), qs(r.method), qs(r.recipe)));
    }
    targets_->clear();
    QStringList order;
    for (const auto& [k, text] : items) {
      // The tooltip names the folder or run folder: two bases of one name are told apart there.
      const EvalTarget t = targetOf(k);
      QString tip = t.run_id > 0 ? QString("run %1").arg(t.run_id) : qs(t.model_dir);
      for (const auto& r : runs)
        if (r.id == t.run_id) tip += ": " + qs(r.run_dir);
      if (!t.adapter_dir.empty()) tip += " + adapter " + qs(t.adapter_dir);
      checkItem(targets_, text, k, targets_on.contains(k))->setToolTip(tip);
      order << k;
    }
    // The newest completed evaluation of each (target, suite, kind): a chat suite scored both by
    // answers and by loss keeps both.
    // Settings that change the numbers (format, template, length, rows) make another measurement:
    // such a result gets a column of its own ("quiz (chat format)") instead of replacing the other.
    std::map<std::string, EvalRecord> newest;
    std::vector<EvalRecord> scored;
    for (EvalRecord e : evals) {
      if (e.kind == "pairwise" || e.status != "completed") continue;
      const std::string variant = eval_variant(e);
      if (!variant.empty()) e.suite += " (" + variant + ")";
      scored.push_back(e);
      EvalRecord& n = newest[e.target + "\n" + e.suite + "\n" + e.kind];
      if (e.id > n.id) n = e;
      if (!labels_.contains(qs(e.target))) labels_[qs(e.target)] = qs(e.target_label);
    }
    std::vector<EvalRecord> latest;
    for (auto& [k, e] : newest) latest.push_back(e);
    scores_->setEvaluations(latest, labels_, order);
    examples_->setEvaluations(workspace_, scored, labels_);
    pairwise_->update(ws, evals, labels_);
    noteBlindResult(evals);
    shown_ = sig;
  } catch (const std::exception& e) {
    status_->setText(QString("Cannot read the workspace: ") + e.what());
  }
}

QList<EvaluatePage::Pick> EvaluatePage::checkedSuites() const {
  QList<Pick> out;
  for (int i = 0; i < suites_->count(); ++i)
    if (suites_->item(i)->checkState() == Qt::Checked)
      out << Pick{suites_->item(i)->data(Qt::UserRole).toString(), suites_->item(i)->data(Qt::UserRole + 1).toString()};
  return out;
}

QStringList EvaluatePage::checkedTargets() const {
  QStringList out;
  for (int i = 0; i < targets_->count(); ++i)
    if (targets_->item(i)->checkState() == Qt::Checked) out << targets_->item(i)->data(Qt::UserRole).toString();
  return out;
}

bool EvaluatePage::setSuiteChecked(const QString& name, bool on) {
  for (int i = 0; i < suites_->count(); ++i)
    if (suites_->item(i)->data(Qt::UserRole).toString() == name) {
      suites_->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
      return true;
    }
  return false;
}

bool EvaluatePage::setTargetChecked(const QString& target, bool on) {
  QString k;
  try {
    k = key(parse_eval_target(ss(target)));
  } catch (const std::exception&) {
    return false;
  }
  for (int i = 0; i < targets_->count(); ++i)
    if (targets_->item(i)->data(Qt::UserRole).toString() == k) {
      targets_->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
      return true;
    }
  return false;
}

void EvaluatePage::addModelFolder(const QString& dir) {
  if (!extra_models_.contains(dir)) extra_models_ << dir;
  refresh();
  setTargetChecked(dir, true);
}

void EvaluatePage::setOptions(const QString& chat_mode, const QString& choice_format, int max_new_tokens, int limit) {
  chat_mode_->setCurrentIndex(std::max(0, chat_mode_->findData(chat_mode)));
  choice_format_->setCurrentIndex(std::max(0, choice_format_->findText(choice_format)));
  max_new_->setValue(max_new_tokens);
  limit_->setValue(limit);
}

void EvaluatePage::setBusy(bool busy) {
  evaluate_->setEnabled(!busy);
  blind_->setEnabled(!busy);
  cancel_->setEnabled(busy);
  progress_->setVisible(busy);
  if (busy) progress_->setRange(0, 0);
}

bool EvaluatePage::startEvaluate() {
  if (workspace_.isEmpty() || job_->running()) return false;
  struct Pair {
    EvalRequest req;
    QString what;
  };
  std::vector<Pair> plan;
  for (const auto& s : checkedSuites())
    for (const auto& t : checkedTargets()) {
      EvalRequest r;
      r.suite = ss(s.suite);
      r.target = targetOf(t);
      r.mode = s.kind == "chat" ? ss(chat_mode_->currentData().toString()) : "";  // others: by the suite's kind
      r.choice_format = ss(choice_format_->currentText());
      r.max_new_tokens = max_new_->value();
      r.limit = limit_->value();
      plan.push_back({r, QString("%1 on %2").arg(s.suite, labels_.value(t, t))});
    }
  if (plan.empty()) {
    status_->setText("Tick at least one suite and one target.");
    return false;
  }
  const QString ws = workspace_;
  setBusy(true);
  blind_set_.clear();
  open_label_->setVisible(false);
  status_->setText(QString("Evaluating %1 pair(s)…").arg(plan.size()));
  return job_->start([ws, plan](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    const qint64 n = qint64(plan.size());
    int stored = 0;
    bool cancelled = false;
    QStringList failed;
    for (qint64 i = 0; i < n && !cancelled; ++i) {
      const Pair& p = plan[size_t(i)];
      ctx.progress(i * 1000, n * 1000, p.what + ": loading");
      try {
        run_eval(w, p.req, [&](int64_t done, int64_t total) {
          ctx.progress(i * 1000 + (total > 0 ? done * 1000 / total : 0), n * 1000, QString("%1: %2/%3").arg(p.what).arg(done).arg(total));
          return !ctx.cancelled();
        });
        ++stored;
      } catch (const Interrupted&) {
        cancelled = true;  // run_eval stored nothing for this pair
      } catch (const std::exception& e) {
        failed << p.what + ": " + QString::fromUtf8(e.what());  // the other pairs still run
      }
      cancelled = cancelled || ctx.cancelled();
    }
    return QVariantMap{{"stored", stored}, {"cancelled", cancelled}, {"failed", failed}};
  });
}

bool EvaluatePage::startBlindPairwise() {
  if (workspace_.isEmpty() || job_->running()) return false;
  const auto suites = checkedSuites();
  const auto targets = checkedTargets();
  if (suites.size() != 1 || suites[0].kind != "chat" || targets.size() != 2) {
    status_->setText("Blind pairwise: tick exactly one chat suite and two targets.");
    return false;
  }
  PairwiseRequest r;
  r.suite = ss(suites[0].suite);
  r.a = targetOf(targets[0]);
  r.b = targetOf(targets[1]);
  r.human = true;
  r.max_new_tokens = max_new_->value();
  r.limit = limit_->value();
  const QString ws = workspace_;
  setBusy(true);
  status_->setText(QString("Answering %1 with %2 and %3…").arg(suites[0].suite, labels_.value(targets[0]), labels_.value(targets[1])));
  return job_->start([ws, r](Job::Context& ctx) -> QVariant {
    Workspace w(ss(ws));
    try {
      const EvalOutcome o = run_pairwise(w, r, [&](int64_t done, int64_t total) {
        ctx.progress(done, total, QString("Blind pairwise answers: %1/%2").arg(done).arg(total));
        return !ctx.cancelled();
      });
      return QVariantMap{{"blind", qs(json::parse(o.record.settings).value("labels", ""))}, {"eval", qint64(o.eval_id)}};
    } catch (const Interrupted&) {
      return QVariantMap{{"blind", QString()}, {"cancelled", true}};  // run_pairwise stored nothing
    }
  });
}

}  // namespace hone::ui
