// GUI tests of the Evaluate page (offscreen) on real tiny models: a base model folder and a run
// trained from it, a 12-question choice suite and an 8-row chat suite. Scores shown against the
// stored ones, the chart's whiskers against the intervals, the per-example filter against the
// stored examples, CSV export, a failure in the status line; a blind pairwise set labelled by
// keyboard on the Label page and its win rate. Screenshots go into the build folder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest/QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>
#include <random>
#include <set>

#include "evaluate_page.h"
#include "example_compare.h"
#include "gui_test_support.h"
#include "job.h"
#include "label_page.h"
#include "main_window.h"
#include "pairwise_list.h"
#include "runs/evaluate.h"
#include "score_board.h"
#include "runs_page.h"
#include "run_view.h"
#include "store/datasets.h"
#include "store/evals.h"
#include "store/labels.h"
#include "store/runs.h"

using nlohmann::json;

namespace {

QString work(const QString& name) { return gui_test::work("evaluate-" + name); }
using gui_test::screenshot;

const char* kWords[] = {"red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "fish", "bird", "rain", "snow"};

void writeLines(const QString& path, const std::vector<std::string>& lines) {
  std::ofstream f(path.toStdString());
  for (const auto& l : lines) f << l << "\n";
}

int cli(const QString& args) { return std::system(QString("%1 %2 > /dev/null").arg(HONE_CLI, args).toUtf8().constData()); }

// The cell text the page should show, written here independently of the page's own formatting.
QString expectedCell(const json& m) {
  return QString::asprintf("%.3f [%.3f, %.3f] n=%lld", m["value"].get<double>(), m["ci95"][0].get<double>(),
                           m["ci95"][1].get<double>(), static_cast<long long>(m["n"].get<int64_t>()));
}

QListWidgetItem* itemStartingWith(QListWidget* list, const QString& text) {
  for (int i = 0; i < list->count(); ++i)
    if (list->item(i)->text().startsWith(text)) return list->item(i);
  return nullptr;
}

void uncheckAll(QListWidget* list) {
  for (int i = 0; i < list->count(); ++i) list->item(i)->setCheckState(Qt::Unchecked);
}

int rowWithHeader(QTableWidget* t, const QString& h) {
  for (int r = 0; r < t->rowCount(); ++r)
    if (t->verticalHeaderItem(r) && t->verticalHeaderItem(r)->text() == h) return r;
  return -1;
}

int columnWithHeader(QTableWidget* t, const QString& h) {
  for (int c = 0; c < t->columnCount(); ++c)
    if (t->horizontalHeaderItem(c) && t->horizontalHeaderItem(c)->text() == h) return c;
  return -1;
}

}  // namespace

class TestEvaluate : public QObject {
  Q_OBJECT
  QString fixture_, base_;

  // A workspace with the suites "quiz" (choice) and "numbers" (chat), the text "teach", and run 1
  // "tuned": full fine-tuning of the base on "teach" (60 steps of a 2-layer model: about a second),
  // so that the run answers some questions differently from its base.
  QString workspace(const QString& name) {
    const QString ws = work(name);
    if (cli(QString("dataset import '%1/quiz.jsonl' --name quiz --workspace '%2'").arg(fixture_, ws)) != 0 ||
        cli(QString("dataset import '%1/numbers.jsonl' --name numbers --workspace '%2'").arg(fixture_, ws)) != 0 ||
        cli(QString("dataset import '%1/teach.jsonl' --name teach --workspace '%2'").arg(fixture_, ws)) != 0)
      qFatal("dataset import failed");
    const QString cfg = ws + "/tuned.json";
    writeLines(cfg, {json({{"name", "tuned"}, {"base_model", base_.toStdString()}, {"method", "full"}, {"recipe", "cpt"},
                           {"train_data", {"dataset:teach"}}, {"max_steps", 60}, {"batch_size", 4}, {"lr", 0.003},
                           {"max_seq_len", 32}, {"packing", false}, {"seed", 1}})
                          .dump()});
    if (cli(QString("train --config '%1' --workspace '%2'").arg(cfg, ws)) != 0) qFatal("training the tuned run failed");
    return ws;
  }

  hone::ui::EvaluatePage* shownEvaluatePage(hone::ui::MainWindow& w) {
    w.resize(1400, 900);
    w.show();
    if (!QTest::qWaitForWindowExposed(&w)) qFatal("window not exposed");
    w.showPage(hone::ui::MainWindow::Evaluate);
    return w.evaluatePage();
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("HoneTestEvaluate");
    fixture_ = work("fixture");
    base_ = fixture_ + "/base";
    QCOMPARE(cli(QString("init-model --preset tiny --tokenizer builtin --out '%1' --seed 5").arg(base_)), 0);
    std::vector<std::string> quiz, numbers, teach;
    for (int i = 0; i < 12; ++i) {
      const std::string w = kWords[i];
      std::vector<std::string> choices = {kWords[(i + 1) % 12], kWords[(i + 5) % 12]};
      choices.insert(choices.begin() + i % 3, w);  // the word itself is the answer
      quiz.push_back(json({{"question", "Which word is " + w + "?"}, {"choices", choices}, {"answer", i % 3}}).dump());
      teach.push_back(json({{"text", "Question: Which word is " + w + "?\nAnswer: " + w}}).dump());
    }
    for (int i = 0; i < 8; ++i)
      numbers.push_back(json({{"messages",
                               {{{"role", "user"}, {"content", "Say number " + std::to_string(i)}},
                                {{"role", "assistant"}, {"content", "Number " + std::to_string(i) + "."}}}}})
                            .dump());
    writeLines(fixture_ + "/quiz.jsonl", quiz);
    writeLines(fixture_ + "/numbers.jsonl", numbers);
    writeLines(fixture_ + "/teach.jsonl", teach);
  }

  void evaluateTwoTargetsOnTwoSuites() {
    const QString ws = workspace("scores");
    hone::ui::MainWindow w(ws);
    auto* ep = shownEvaluatePage(w);
    QCOMPARE(w.pageName(hone::ui::MainWindow::Evaluate), QString("Evaluate"));
    auto* suites = ep->findChild<QListWidget*>("suitesList");
    auto* targets = ep->findChild<QListWidget*>("targetsList");
    QVERIFY(suites && targets);
    QCOMPARE(suites->count(), 3);  // quiz, numbers and the text dataset teach
    QVERIFY(itemStartingWith(suites, "quiz  (choice, 12 rows)"));
    QVERIFY(itemStartingWith(suites, "teach  (text, 12 rows)"));
    QCOMPARE(targets->count(), 2);
    QCOMPARE(targets->item(0)->text(), QString("Base: base"));
    QCOMPARE(targets->item(1)->text(), QString("Run 1 tuned (full cpt)"));
    itemStartingWith(suites, "quiz")->setCheckState(Qt::Checked);
    itemStartingWith(suites, "numbers")->setCheckState(Qt::Checked);
    targets->item(0)->setCheckState(Qt::Checked);
    targets->item(1)->setCheckState(Qt::Checked);
    ep->setOptions("generate", "plain", 16, 0);
    auto* status = ep->findChild<QLabel*>("statusLabel");
    QTest::mouseClick(ep->findChild<QPushButton*>("evaluateButton"), Qt::LeftButton);
    QTRY_VERIFY2_WITH_TIMEOUT(status->text().startsWith("Done"), qPrintable(status->text()), 120000);
    QCOMPARE(status->text(), QString("Done: 4 evaluation(s) stored."));

    hone::Workspace db(ws.toStdString());
    const auto evals = hone::list_evals(db);
    QCOMPARE(evals.size(), size_t(4));
    auto* table = ep->findChild<QTableWidget*>("resultsTable");
    QVERIFY(table);
    QCOMPARE(table->rowCount(), 2);
    QCOMPARE(table->columnCount(), 2 + 4);  // acc, acc_norm; exact_match, contains, rouge_l, chrf
    hone::EvalRecord quiz_base, quiz_run;
    for (const auto& e : evals) {
      QCOMPARE(QString::fromStdString(e.status), QString("completed"));
      const QString label = e.run_id == 1 ? "Run 1 tuned" : "Base: base";
      QCOMPARE(ep->targetLabel(QString::fromStdString(e.target)), label);
      const int row = rowWithHeader(table, label);
      QVERIFY2(row >= 0, qPrintable(label));
      const json m = json::parse(e.metrics);
      QCOMPARE(int(m.size()), e.kind == "choice" ? 2 : 4);
      for (auto it = m.begin(); it != m.end(); ++it) {
        // Settings other than the defaults name the column (16 new tokens here, not 64).
        const std::string variant = hone::eval_variant(e);
        QCOMPARE(QString::fromStdString(variant), QString(e.kind == "generate" ? "16 new tokens" : ""));
        const QString col = QString::fromStdString(e.suite + (variant.empty() ? "" : " (" + variant + ")") + " · " + it.key());
        const int c = columnWithHeader(table, col);
        QVERIFY2(c >= 0, qPrintable(col));
        QCOMPARE(table->item(row, c)->text(), expectedCell(it.value()));
      }
      if (e.suite == "quiz") (e.run_id == 1 ? quiz_run : quiz_base) = e;
    }
    QVERIFY(quiz_base.id > 0 && quiz_run.id > 0);

    // The chart: one bar per target, whiskers at the ends of each interval.
    QVERIFY(ep->scores()->setChartColumn("quiz · acc"));
    auto* plot = ep->findChild<QCustomPlot*>("scoreChart");
    QVERIFY(plot);
    QCOMPARE(plot->yAxis->label(), QString("quiz · acc"));
    QCPErrorBars* whiskers = nullptr;
    QCPBars* bars = nullptr;
    for (int i = 0; i < plot->plottableCount(); ++i) {
      if (auto* e = qobject_cast<QCPErrorBars*>(plot->plottable(i))) whiskers = e;
      if (auto* b = qobject_cast<QCPBars*>(plot->plottable(i))) bars = b;
    }
    QVERIFY(whiskers && bars);
    QCOMPARE(whiskers->dataCount(), 2);
    QCOMPARE(bars->dataCount(), 2);
    auto ticker = plot->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
    QVERIFY(ticker);
    for (int i = 0; i < 2; ++i) {
      const double key = bars->data()->at(i)->key;
      const QString label = ticker->ticks().value(key);
      const hone::EvalRecord& e = label == "Run 1 tuned" ? quiz_run : quiz_base;
      QVERIFY2(label == "Run 1 tuned" || label == "Base: base", qPrintable(label));
      const json acc = json::parse(e.metrics)["acc"];
      const double v = acc["value"], lo = acc["ci95"][0], hi = acc["ci95"][1];
      QVERIFY(hi > lo);
      QCOMPARE(bars->data()->at(i)->value, v);
      QCOMPARE(whiskers->data()->at(i).errorMinus, v - lo);
      QCOMPARE(whiskers->data()->at(i).errorPlus, hi - v);
    }

    // Per example: base (A) against the run (B) on the choice suite, the rows filtered as the stored
    // examples say.
    auto* ex = ep->examples();
    QVERIFY(ex->setSuite("quiz", "choice"));
    QCOMPARE(ex->evalA(), qint64(quiz_base.id));  // the default pair: the base, then the newest run
    QCOMPARE(ex->evalB(), qint64(quiz_run.id));
    const auto ea = hone::eval_examples(db, quiz_base.id), eb = hone::eval_examples(db, quiz_run.id);
    QCOMPARE(ea.size(), size_t(12));
    QCOMPARE(eb.size(), size_t(12));
    QList<qint64> a_wrong_b_right, a_right_b_wrong;
    for (size_t i = 0; i < ea.size(); ++i) {
      const json a = json::parse(ea[i]), b = json::parse(eb[i]);
      QCOMPARE(a["row"].get<int64_t>(), b["row"].get<int64_t>());
      if (!a["correct"].get<bool>() && b["correct"].get<bool>()) a_wrong_b_right << a["row"].get<int64_t>();
      if (a["correct"].get<bool>() && !b["correct"].get<bool>()) a_right_b_wrong << a["row"].get<int64_t>();
    }
    // Training changed some answers; without that the filters below would prove nothing.
    QVERIFY2(!a_wrong_b_right.isEmpty() || !a_right_b_wrong.isEmpty(), "the run answers every question as its base does");
    auto* filter = ep->findChild<QComboBox*>("exampleFilter");
    auto* rows = ep->findChild<QTableWidget*>("examplesTable");
    QVERIFY(filter && rows);
    QCOMPARE(rows->rowCount(), 12);  // all rows
    filter->setCurrentIndex(filter->findText("A wrong, B right"));
    QCOMPARE(ex->shownRows(), a_wrong_b_right);
    QCOMPARE(rows->rowCount(), int(a_wrong_b_right.size()));
    for (int r = 0; r < rows->rowCount(); ++r) {
      const json b = json::parse(eb[size_t(a_wrong_b_right[r])]);
      const std::string chosen = b["continuations"][b["prediction"].get<size_t>()];
      QCOMPARE(rows->item(r, 4)->text(), QString::fromStdString(chosen).trimmed());  // B chose
      QCOMPARE(rows->item(r, 4)->text(), rows->item(r, 2)->text());                 // the right answer
      QVERIFY(rows->item(r, 1)->text().contains(QString("Which word is %1?").arg(kWords[a_wrong_b_right[r]])));
      QCOMPARE(rows->item(r, 2)->text(), QString(kWords[a_wrong_b_right[r]]));
    }
    filter->setCurrentIndex(filter->findText("A right, B wrong"));
    QCOMPARE(ex->shownRows(), a_right_b_wrong);
    QCOMPARE(rows->rowCount(), int(a_right_b_wrong.size()));
    filter->setCurrentIndex(filter->findText("A wrong, B right"));

    // CSV: one line per (target, suite, metric), values as stored.
    const QString csv = ws + "/scores.csv";
    QVERIFY(ep->exportCsv(csv));
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.takeFirst(), QString("target,suite,metric,value,lo,hi,n"));
    std::set<QString> expected;
    for (const auto& e : evals) {
      const json m = json::parse(e.metrics);
      for (auto it = m.begin(); it != m.end(); ++it)
        expected.insert(QString("%1,%2,%3,%4,%5,%6,%7")
                            .arg(e.run_id == 1 ? "Run 1 tuned" : "Base: base",
                                 QString::fromStdString(e.suite + (e.kind == "generate" ? " (16 new tokens)" : "")),
                                 QString::fromStdString(it.key()))
                            .arg(it.value()["value"].get<double>(), 0, 'g', 10)
                            .arg(it.value()["ci95"][0].get<double>(), 0, 'g', 10)
                            .arg(it.value()["ci95"][1].get<double>(), 0, 'g', 10)
                            .arg(it.value()["n"].get<int64_t>()));
    }
    QCOMPARE(std::set<QString>(lines.begin(), lines.end()), expected);
    QCOMPARE(int(expected.size()), 12);
    QVERIFY(ep->exportPng(ws + "/chart.png"));
    QCOMPARE(QImage(ws + "/chart.png").width(), 1000);
    QVERIFY(ep->scores()->setChartColumn("quiz · acc_norm"));  // where the two differ, for the screenshot
    screenshot(w, "evaluate-page");

    // A refresh with nothing new keeps the place in the examples; an evaluation made by hone-cli
    // appears when the window notices the change.
    rows->setCurrentCell(1, 1);
    ep->refresh();
    QCOMPARE(rows->currentRow(), 1);
    QCOMPARE(cli(QString("eval run --suite teach --model '%1' --workspace '%2'").arg(base_, ws)), 0);
    w.checkForChanges();
    QTRY_VERIFY(columnWithHeader(table, "teach · loss") >= 0);
    const hone::EvalRecord teach = hone::list_evals(db).back();
    QCOMPARE(table->item(rowWithHeader(table, "Base: base"), columnWithHeader(table, "teach · loss"))->text(),
             expectedCell(json::parse(teach.metrics)["loss"]));
    QCOMPARE(table->item(rowWithHeader(table, "Run 1 tuned"), columnWithHeader(table, "teach · loss"))->text(), QString("–"));

    // A target that cannot load fails in the status line; nothing is stored for it.
    uncheckAll(suites);
    uncheckAll(targets);
    QVERIFY(ep->setSuiteChecked("quiz", true));
    ep->addModelFolder(ws + "/no-such-model");
    QVERIFY(itemStartingWith(targets, "Model: no-such-model"));
    QTest::mouseClick(ep->findChild<QPushButton*>("evaluateButton"), Qt::LeftButton);
    QTRY_VERIFY2_WITH_TIMEOUT(status->text().startsWith("Done"), qPrintable(status->text()), 60000);
    QVERIFY2(status->text().contains("0 evaluation(s) stored") && status->text().contains("1 failed") &&
                 status->text().contains("does not exist"),
             qPrintable(status->text()));
    QCOMPARE(hone::list_evals(db).size(), size_t(5));

    // Cancel at the first progress report: what was stored is whole (every example of its suite),
    // the pair in progress left nothing, and the status line says how many were stored. (On a
    // tiny model all four pairs may finish before the cancel arrives; then all four are stored.)
    uncheckAll(targets);
    QVERIFY(ep->setSuiteChecked("numbers", true));
    QVERIFY(ep->setTargetChecked(base_, true));
    QVERIFY(ep->setTargetChecked("run:1", true));
    auto* cancel = ep->findChild<QPushButton*>("cancelButton");
    QMetaObject::Connection once = connect(ep->job(), &hone::ui::Job::progress, cancel, [&] {
      if (cancel->isEnabled()) QTest::mouseClick(cancel, Qt::LeftButton);
      disconnect(once);
    });
    QTest::mouseClick(ep->findChild<QPushButton*>("evaluateButton"), Qt::LeftButton);
    QTRY_VERIFY2_WITH_TIMEOUT(!ep->job()->running() && !cancel->isEnabled(), qPrintable(status->text()), 60000);
    const auto after = hone::list_evals(db);
    const int stored = int(after.size()) - 5;
    if (status->text().startsWith("Cancelled"))
      QCOMPARE(status->text(), QString("Cancelled after %1 stored evaluation(s); the one in progress stored nothing.").arg(stored));
    else
      QCOMPARE(status->text(), QString("Done: 4 evaluation(s) stored."));
    QVERIFY(stored >= 0 && stored <= 4);
    for (size_t i = 5; i < after.size(); ++i)
      QCOMPARE(hone::eval_examples(db, after[i].id).size(), size_t(after[i].suite == "quiz" ? 12 : 8));
    qInfo("cancelled after %d of 4 pairs", stored);
  }

  // The blind set made by the page's button, labelled with the Label page's keys; the win rate
  // appears on the Evaluate page once every row has a label.
  void blindPairwiseLabelledByKeyboard() {
    const QString ws = workspace("blind");
    hone::ui::MainWindow w(ws);
    auto* ep = shownEvaluatePage(w);
    QVERIFY(ep->setSuiteChecked("numbers", true));
    QVERIFY(ep->setTargetChecked(base_, true));
    QVERIFY(ep->setTargetChecked("run:1", true));
    ep->setOptions("generate", "plain", 12, 0);
    auto* status = ep->findChild<QLabel*>("statusLabel");
    QTest::mouseClick(ep->findChild<QPushButton*>("pairwiseButton"), Qt::LeftButton);
    QTRY_VERIFY2_WITH_TIMEOUT(!ep->blindSet().isEmpty(), qPrintable(status->text()), 120000);
    QCOMPARE(ep->blindSet(), QString("numbers-blind-1"));
    QCOMPARE(status->text(), QString("Label the blind set numbers-blind-1 on the Label page; the win rate appears here "
                                     "when every row is labelled."));
    hone::Workspace db(ws.toStdString());
    auto evals = hone::list_evals(db);
    QCOMPARE(evals.size(), size_t(1));
    const int64_t id = evals[0].id;
    QCOMPARE(QString::fromStdString(evals[0].status), QString("awaiting_labels"));
    auto* pairs = ep->pairwise()->table();
    QTRY_COMPARE(pairs->rowCount(), 1);
    QVERIFY2(pairs->item(0, 4)->text().startsWith("awaiting labels (0 of 8)"), qPrintable(pairs->item(0, 4)->text()));
    QCOMPARE(pairs->item(0, 2)->text(), QString("Base: base"));
    QCOMPARE(pairs->item(0, 3)->text(), QString("Run 1 tuned"));

    // "Label numbers-blind-1" opens the Label page on the set.
    QPushButton* open = nullptr;
    for (auto* b : ep->findChildren<QPushButton*>())
      if (b->text() == "Label numbers-blind-1" && b->isVisible()) open = b;
    QVERIFY(open);
    QTest::mouseClick(open, Qt::LeftButton);
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Label));
    auto* lp = w.labelPage();
    QCOMPARE(lp->currentDataset(), QString("numbers-blind-1"));
    QCOMPARE(lp->queueSize(), 8);
    // Half the rows, then a look at the Evaluate page: still awaiting, nothing recomputed.
    const std::vector<Qt::Key> keys = {Qt::Key_A, Qt::Key_B, Qt::Key_1, Qt::Key_T, Qt::Key_A, Qt::Key_S, Qt::Key_X, Qt::Key_2};
    const std::vector<std::string> want = {"a", "b", "a", "tie", "a", "skip", "both_bad", "b"};
    for (int i = 0; i < 4; ++i) QTest::keyClick(lp, keys[size_t(i)]);
    w.showPage(hone::ui::MainWindow::Evaluate);
    QVERIFY2(pairs->item(0, 4)->text().startsWith("awaiting labels (4 of 8)"), qPrintable(pairs->item(0, 4)->text()));
    QCOMPARE(QString::fromStdString(hone::get_eval(db, id).status), QString("awaiting_labels"));
    QVERIFY(w.openLocation("label:numbers-blind-1"));
    QCOMPARE(lp->currentPosition(), 4);  // the first unlabelled row
    for (int i = 4; i < 8; ++i) QTest::keyClick(lp, keys[size_t(i)]);
    const auto cands = hone::list_candidates(db, hone::find_dataset(db, "numbers-blind-1").id);
    QCOMPARE(cands.size(), size_t(8));
    for (size_t i = 0; i < 8; ++i) QCOMPARE(cands[i].label, want[i]);
    screenshot(w, "label-page-blind-pairwise");

    // The win rate the labels imply: a's wins 1, ties and both-bad 0.5, skip left out. "a" names
    // the response shown first; the stored example says which target that was.
    const auto examples = hone::eval_examples(db, id);
    QCOMPARE(examples.size(), size_t(8));
    double sum = 0;
    int n = 0, a_wins = 0, b_wins = 0, ties = 0;
    for (size_t i = 0; i < 8; ++i) {
      const int a_is = json::parse(examples[i])["a_is"].get<int>();
      if (want[i] == "skip") continue;
      ++n;
      if (want[i] == "tie" || want[i] == "both_bad") {
        sum += 0.5, ++ties;
      } else if ((want[i] == "a") == (a_is == 0)) {
        sum += 1, ++a_wins;
      } else {
        ++b_wins;
      }
    }
    QCOMPARE(n, 7);
    w.showPage(hone::ui::MainWindow::Evaluate);  // the page recomputes the labelled set
    const hone::EvalRecord done = hone::get_eval(db, id);
    QCOMPARE(QString::fromStdString(done.status), QString("completed"));
    const json m = json::parse(done.metrics);
    QCOMPARE(m["win_rate_a"]["value"].get<double>(), sum / n);
    QCOMPARE(m["win_rate_a"]["n"].get<int64_t>(), int64_t(7));
    QCOMPARE(m["a_wins"]["value"].get<double>(), double(a_wins) / n);
    QCOMPARE(m["b_wins"]["value"].get<double>(), double(b_wins) / n);
    QCOMPARE(m["ties"]["value"].get<double>(), double(ties) / n);
    // The same as the core computes it again, and as `eval show` prints it.
    const hone::EvalRecord again = hone::refresh_pairwise(db, id);
    QCOMPARE(json::parse(again.metrics)["win_rate_a"]["value"].get<double>(), sum / n);
    const json shown = hone::eval_json(db, again, true);
    QCOMPARE(shown["examples"].size(), size_t(8));  // sides revealed once labelled
    QVERIFY2(pairs->item(0, 4)->text().startsWith("completed"), qPrintable(pairs->item(0, 4)->text()));
    QCOMPARE(pairs->item(0, 5)->text(), expectedCell(m["win_rate_a"]));
    QVERIFY(pairs->item(0, 5)->text().endsWith("n=7"));
    // The instruction to label the set gave way to its result.
    QVERIFY2(status->text().startsWith("Blind set numbers-blind-1 labelled:") &&
                 status->text().contains(QString::number(sum / n, 'f', 3)) && status->text().contains("of 7 comparisons"),
             qPrintable(status->text()));
    // Looking again changes nothing in the store: a change is what the window polls for, and it
    // would refresh the page again.
    auto dataVersion = [&] {
      hone::Stmt s = db.db().prepare("PRAGMA data_version");
      return s.step() ? s.i64(0) : -1;
    };
    const int64_t before = dataVersion();
    ep->refresh();
    ep->refresh();
    QCOMPARE(dataVersion(), before);
    screenshot(w, "evaluate-page-pairwise");
  }

  // The run from issue 36's example (30 rows, 300 steps, a full fine-tune that memorises them):
  // the Runs page shows the overfitting warning and the run's suite score as a column; the Train
  // page's run view shows the same warning from the same curves.
  void runsPageShowsScoresAndTheOverfittingWarning() {
    const QString d = gui_test::work("runs-scores");
    const QString ws = d + "/ws", model = d + "/m";
    auto sh = [&](const QString& cmd) {
      QProcess p;
      p.start("/bin/sh", {"-c", cmd});
      QVERIFY(p.waitForFinished(300000));
      QVERIFY2(p.exitCode() == 0, qPrintable(cmd + "\n" + p.readAllStandardError()));
    };
    sh(QString("%1 init-model --preset tiny --tokenizer builtin --out '%2' --seed 4 > /dev/null").arg(HONE_CLI, model));
    QFile train(d + "/train.jsonl"), held(d + "/held.jsonl"), quiz(d + "/quiz.jsonl");
    QVERIFY(train.open(QIODevice::WriteOnly) && held.open(QIODevice::WriteOnly) && quiz.open(QIODevice::WriteOnly));
    const char* words[] = {"apple", "river", "stone", "cloud", "green", "light", "north", "table", "music", "glass"};
    std::mt19937 rng(1);  // unrelated word strings: the held-out rows share nothing to learn with the training rows
    auto phrase = [&](int, int n) {
      QStringList w;
      for (int k = 0; k < n; ++k) w << words[rng() % 10];
      return w.join(' ');
    };
    for (int i = 0; i < 40; ++i) {
      const QJsonObject row{{"instruction", "Tell me about " + phrase(i, 3) + "."}, {"output", phrase(i * 5 + 1, 6)}};
      (i < 30 ? train : held).write(QJsonDocument(row).toJson(QJsonDocument::Compact) + "\n");
    }
    for (int i = 0; i < 6; ++i)
      quiz.write(QJsonDocument(QJsonObject{{"question", "Tell me about " + phrase(i, 3) + "."},
                                           {"choices", QJsonArray{phrase(i * 5 + 1, 6), phrase(i + 2, 6)}},
                                           {"answer", 0}})
                     .toJson(QJsonDocument::Compact) + "\n");
    train.close(), held.close(), quiz.close();
    QFile cfg(d + "/run.json");
    QVERIFY(cfg.open(QIODevice::WriteOnly));
    cfg.write(QJsonDocument(QJsonObject{{"name", "memorise"}, {"base_model", model}, {"recipe", "sft"}, {"method", "full"},
                                        {"train_data", d + "/train.jsonl"}, {"eval_data", d + "/held.jsonl"}, {"max_steps", 300},
                                        {"batch_size", 4}, {"lr", 3e-3}, {"eval_every", 25}})
                  .toJson());
    cfg.close();
    sh(QString("%1 train --config '%2/run.json' --workspace '%3' > /dev/null").arg(HONE_CLI, d, ws));
    sh(QString("%1 dataset import '%2/quiz.jsonl' --name quiz --workspace '%3' > /dev/null").arg(HONE_CLI, d, ws));
    sh(QString("%1 eval run --suite quiz --run 1 --workspace '%2' > /dev/null").arg(HONE_CLI, ws));

    hone::ui::MainWindow w(ws);
    w.resize(1400, 900);
    w.show();
    w.showPage(hone::ui::MainWindow::Runs);
    auto* runs = w.runsPage();
    runs->refresh();
    QCOMPARE(runs->scoreColumns(), QStringList{"quiz · acc"});
    runs->selectRuns({1});
    QVERIFY2(runs->overfitText().contains("held-out loss rose"), qPrintable(runs->overfitText()));
    // The warning's figures are the run's own: its best held-out loss and where it was.
    hone::Workspace store(ws.toStdString());
    std::vector<std::pair<int64_t, double>> tl, el;
    for (const auto& p : hone::run_metric(store, 1, "loss")) tl.emplace_back(p.step, p.value);
    for (const auto& p : hone::run_metric(store, 1, "eval_loss")) el.emplace_back(p.step, p.value);
    const auto best = std::min_element(el.begin(), el.end(), [](auto& a, auto& b) { return a.second < b.second; });
    QVERIFY(el.back().second > best->second * 1.05);
    QVERIFY2(runs->overfitText().contains(QString("at step %1").arg(best->first)), qPrintable(runs->overfitText()));
    auto* table = runs->findChild<QTableWidget*>();
    QVERIFY(table);
    const auto evals = hone::list_evals(store);
    QCOMPARE(evals.size(), size_t(1));
    const double acc = nlohmann::json::parse(evals[0].metrics)["acc"]["value"].get<double>();
    QVERIFY2(table->item(0, table->columnCount() - 1)->text().startsWith(QString::number(acc, 'f', 3)),
             qPrintable(table->item(0, table->columnCount() - 1)->text()));
    gui_test::screenshot(w, "runs-page-scores-overfitting");
    // The Train page's view of the same curves.
    hone::ui::RunView view;
    std::vector<hone::StepMetrics> steps;
    for (const auto& [s, v] : tl) {
      hone::StepMetrics m;
      m.step = s;
      m.total_steps = 300;
      m.scalars.push_back({"loss", v});
      for (const auto& [es, ev] : el)
        if (es == s) m.scalars.push_back({"eval_loss", ev});
      steps.push_back(m);
    }
    view.showHistory(steps);
    QVERIFY2(view.overfitText().contains(QString("at step %1").arg(best->first)), qPrintable(view.overfitText()));
  }
};

QTEST_MAIN(TestEvaluate)
#include "test_evaluate.moc"
