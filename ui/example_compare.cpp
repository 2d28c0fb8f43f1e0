// ExampleCompare (see example_compare.h). An evaluation's examples never change once stored, so
// each is read from the store once and kept while the evaluation is listed.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "example_compare.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSignalBlocker>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <set>

#include "look.h"
#include "store/workspace.h"

namespace hone::ui {

using nlohmann::json;

namespace {

const QColor kRight(200, 235, 200), kWrong(245, 205, 205);

// One line of table text; the whole text stays in the tooltip.
QTableWidgetItem* textItem(const QString& s) {
  QString line = s;
  line.replace('\n', " ⏎ ");
  auto* it = new QTableWidgetItem(line.size() > 300 ? line.left(300) + "…" : line);
  it->setToolTip(s.size() > 2000 ? s.left(2000) + "…" : s);
  return it;
}

QString str(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return QString();
  return it->is_string() ? qs(it->get<std::string>()) : qs(it->dump());
}

// The continuation a choice example picked (or the right one), without the delimiter's space.
QString choiceText(const json& e, const char* index_key) {
  const auto& c = e.value("continuations", json::array());
  const int64_t i = e.value(index_key, int64_t(-1));
  if (i < 0 || i >= int64_t(c.size()) || !c[size_t(i)].is_string()) return QString();
  return qs(c[size_t(i)].get<std::string>()).trimmed();
}

}  // namespace

bool exampleCorrect(const QString& kind, const json& e) {
  if (kind == "choice") return e.value("correct", false);
  if (kind == "generate") {
    const auto& m = e.value("metrics", json::object());
    if (!m.is_object() || m.empty()) return false;
    const auto it = m.find("exact_match");
    const json& v = it != m.end() ? *it : m.begin().value();
    return v.is_number() && v.get<double>() >= 0.5;
  }
  return false;
}

ExampleCompare::ExampleCompare(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  auto* top = new QHBoxLayout;
  suite_ = new QComboBox;
  suite_->setObjectName("exampleSuite");
  suite_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  suite_->setMinimumContentsLength(16);
  suite_->setToolTip("The suite whose examples to compare (a chat suite scored both ways is listed twice)");
  a_ = new QComboBox;
  a_->setObjectName("exampleA");
  b_ = new QComboBox;
  b_->setObjectName("exampleB");
  for (auto* c : {a_, b_}) {
    c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    c->setMinimumContentsLength(16);
  }
  filter_ = new QComboBox;
  filter_->setObjectName("exampleFilter");
  filter_->addItem("All rows", AllRows);
  filter_->addItem("A wrong, B right", AWrongBRight);
  filter_->addItem("A right, B wrong", ARightBWrong);
  top->addWidget(new QLabel("Suite"));
  top->addWidget(suite_);
  top->addWidget(new QLabel("A"));
  top->addWidget(a_, 1);
  top->addWidget(new QLabel("B"));
  top->addWidget(b_, 1);
  top->addWidget(filter_);
  lay->addLayout(top);
  summary_ = new QLabel;
  summary_->setObjectName("exampleSummary");
  lay->addWidget(summary_);
  table_ = new QTableWidget(0, 5);
  table_->setHorizontalHeaderLabels({"Row", "Prompt", "Reference", "A", "B"});
  table_->setObjectName("examplesTable");
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setWordWrap(false);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->horizontalHeader()->setStretchLastSection(true);
  lay->addWidget(table_, 1);
  connect(suite_, &QComboBox::currentIndexChanged, this, [this] { fillEvalCombos(); });
  connect(a_, &QComboBox::currentIndexChanged, this, [this] { rebuild(); });
  connect(b_, &QComboBox::currentIndexChanged, this, [this] { rebuild(); });
  connect(filter_, &QComboBox::currentIndexChanged, this, [this] { rebuild(); });
}

void ExampleCompare::setEvaluations(const QString& workspace, const std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels) {
  const QString keep_suite = suite_->currentData().toString();
  const qint64 keep_a = evalA(), keep_b = evalB();
  if (workspace != workspace_) cache_.clear();
  workspace_ = workspace;
  evals_ = evals;
  std::sort(evals_.begin(), evals_.end(), [](const EvalRecord& x, const EvalRecord& y) { return x.id > y.id; });  // newest first
  labels_ = labels;
  std::set<qint64> ids;
  for (const auto& e : evals_) ids.insert(e.id);
  for (auto it = cache_.begin(); it != cache_.end();) it = ids.count(it->first) ? std::next(it) : cache_.erase(it);
  {
    const QSignalBlocker block(suite_);
    suite_->clear();
    QStringList seen;
    for (const auto& e : evals_) {
      const QString key = qs(e.suite) + "\n" + qs(e.kind);  // suite and kind: what A and B must share
      if (seen.contains(key)) continue;
      seen << key;
      suite_->addItem(QString("%1 (%2)").arg(qs(e.suite), qs(e.kind)), key);
    }
    suite_->setCurrentIndex(std::max(0, suite_->findData(keep_suite)));
  }
  const bool same_suite = suite_->currentData().toString() == keep_suite;
  fillEvalCombos();
  if (same_suite && keep_a && keep_b) setPair(keep_a, keep_b);  // a refresh keeps what was chosen
}

bool ExampleCompare::setSuite(const QString& suite, const QString& kind) {
  const int i = suite_->findData(suite + "\n" + kind);
  if (i < 0) return false;
  if (i == suite_->currentIndex()) fillEvalCombos();
  else suite_->setCurrentIndex(i);
  return true;
}

void ExampleCompare::fillEvalCombos() {
  const QString key = suite_->currentData().toString();
  const QString suite = key.section('\n', 0, 0), kind = key.section('\n', 1);
  QList<const EvalRecord*> of;
  for (const auto& e : evals_)
    if (qs(e.suite) == suite && qs(e.kind) == kind) of << &e;
  {
    const QSignalBlocker ba(a_), bb(b_);
    a_->clear();
    b_->clear();
    for (const auto* e : of) {
      const QString t = QString("#%1 %2").arg(e->id).arg(labels_.value(qs(e->target), qs(e->target_label)));
      a_->addItem(t, qint64(e->id));
      b_->addItem(t, qint64(e->id));
      const QString tip = QString("%1, %2").arg(qs(e->created_at), qs(e->settings));
      a_->setItemData(a_->count() - 1, tip, Qt::ToolTipRole);
      b_->setItemData(b_->count() - 1, tip, Qt::ToolTipRole);
    }
    // Default: the newest base model (a model folder without an adapter) against the newest run;
    // without both, the two newest evaluations.
    int ia = -1, ib = -1;
    for (int i = 0; i < of.size(); ++i) {
      const json t = json::parse(of[i]->target, nullptr, false);
      if (ia < 0 && t.is_object() && t.contains("model") && !t.contains("adapter")) ia = i;
      if (ib < 0 && of[i]->run_id > 0) ib = i;
    }
    if (ia < 0 || ib < 0) {
      ib = 0;
      ia = of.size() > 1 ? 1 : 0;
    }
    a_->setCurrentIndex(ia);
    b_->setCurrentIndex(ib);
  }
  const bool scored = kind != "loss";
  filter_->setEnabled(scored);
  filter_->setToolTip(scored ? "Rows where one evaluation is right and the other wrong" : "Held-out loss has no right or wrong answers");
  if (!scored) {
    const QSignalBlocker bf(filter_);
    filter_->setCurrentIndex(AllRows);
  }
  rebuild();
}

bool ExampleCompare::setPair(qint64 a, qint64 b) {
  const int ia = a_->findData(a), ib = b_->findData(b);
  if (ia < 0 || ib < 0) return false;
  {
    const QSignalBlocker ba(a_), bb(b_);
    a_->setCurrentIndex(ia);
    b_->setCurrentIndex(ib);
  }
  rebuild();
  return true;
}

qint64 ExampleCompare::evalA() const { return a_->currentData().toLongLong(); }
qint64 ExampleCompare::evalB() const { return b_->currentData().toLongLong(); }

void ExampleCompare::setFilter(Filter f) { filter_->setCurrentIndex(filter_->findData(int(f))); }

QList<qint64> ExampleCompare::shownRows() const { return shown_; }

const std::vector<json>& ExampleCompare::examplesOf(qint64 id) {
  auto it = cache_.find(id);
  if (it != cache_.end()) return it->second;
  std::vector<json> out;
  try {
    Workspace ws(ss(workspace_));
    for (const auto& e : eval_examples(ws, id)) out.push_back(json::parse(e, nullptr, false));
  } catch (const std::exception& e) {
    summary_->setText(QString("Cannot read evaluation %1: %2").arg(id).arg(e.what()));
  }
  return cache_[id] = std::move(out);
}

void ExampleCompare::rebuild() {
  table_->setRowCount(0);
  shown_.clear();
  const QString kind = suite_->currentData().toString().section('\n', 1);
  const qint64 a = evalA(), b = evalB();
  if (!a || !b || workspace_.isEmpty()) {
    summary_->setText(evals_.empty() ? "No evaluation yet: the examples of two evaluations of a suite are compared here." : "");
    return;
  }
  std::map<int64_t, const json*> rows_a, rows_b;
  for (const auto& e : examplesOf(a))
    if (e.is_object()) rows_a[e.value("row", int64_t(-1))] = &e;
  for (const auto& e : examplesOf(b))
    if (e.is_object()) rows_b[e.value("row", int64_t(-1))] = &e;
  std::set<int64_t> rows;
  for (const auto& [r, e] : rows_a) rows.insert(r);
  for (const auto& [r, e] : rows_b) rows.insert(r);
  QStringList headers{"Row"};
  if (kind == "choice") headers << "Question" << "Answer" << "A chose" << "B chose";
  else if (kind == "generate") headers << "Prompt" << "Reference" << "A answered" << "B answered";
  else headers << "Tokens" << "" << "A loss" << "B loss";
  table_->setHorizontalHeaderLabels(headers);
  const auto f = Filter(filter_->currentData().toInt());
  int a_right = 0, b_right = 0, a_only = 0, b_only = 0, both = 0;
  for (const int64_t r : rows) {
    const json* ea = rows_a.count(r) ? rows_a[r] : nullptr;
    const json* eb = rows_b.count(r) ? rows_b[r] : nullptr;
    const bool ca = ea && exampleCorrect(kind, *ea), cb = eb && exampleCorrect(kind, *eb);
    if (ea && eb) {
      ++both;
      a_right += ca, b_right += cb, b_only += !ca && cb, a_only += ca && !cb;
    }
    if (f == AWrongBRight && !(ea && eb && !ca && cb)) continue;
    if (f == ARightBWrong && !(ea && eb && ca && !cb)) continue;
    const json& any = ea ? *ea : *eb;
    const int row = table_->rowCount();
    table_->insertRow(row);
    table_->setItem(row, 0, new QTableWidgetItem(QString::number(r)));
    QTableWidgetItem* cells[4] = {};
    if (kind == "choice") {
      cells[0] = textItem(str(any, "context"));
      cells[1] = textItem(choiceText(any, "answer"));
      cells[2] = textItem(ea ? choiceText(*ea, "prediction") : QString());
      cells[3] = textItem(eb ? choiceText(*eb, "prediction") : QString());
    } else if (kind == "generate") {
      cells[0] = textItem(str(any, "prompt"));
      cells[1] = textItem(str(any, "reference"));
      cells[2] = textItem(ea ? str(*ea, "answer") : QString());
      cells[3] = textItem(eb ? str(*eb, "answer") : QString());
    } else {
      cells[0] = textItem(str(any, "tokens"));
      cells[1] = textItem(QString());
      cells[2] = textItem(ea ? QString::number(ea->value("loss", 0.0), 'f', 4) : QString());
      cells[3] = textItem(eb ? QString::number(eb->value("loss", 0.0), 'f', 4) : QString());
    }
    if (kind != "loss") {
      // Dark text on the light tint, whichever palette the app runs with.
      if (ea) cells[2]->setBackground(ca ? kRight : kWrong), cells[2]->setForeground(Qt::black);
      if (eb) cells[3]->setBackground(cb ? kRight : kWrong), cells[3]->setForeground(Qt::black);
    }
    for (int k = 0; k < 4; ++k) table_->setItem(row, k + 1, cells[k]);
    shown_ << r;
  }
  table_->resizeColumnsToContents();
  for (int c = 1; c < table_->columnCount(); ++c) table_->setColumnWidth(c, std::min(table_->columnWidth(c), 320));
  if (kind == "loss") summary_->setText(QString("%1 rows; lower loss is better").arg(rows.size()));
  else
    summary_->setText(QString("%1 rows in both: A right %2, B right %3; A wrong and B right %4, A right and B wrong %5")
                          .arg(both).arg(a_right).arg(b_right).arg(b_only).arg(a_only));
}

}  // namespace hone::ui
