// GUI tests of the labelling loop (offscreen) on a real tiny model and a LoRA run trained from it:
// a prompts file imported through the wizard, four candidates per prompt from the run at the
// default sampling settings (identical pairs checked against an independent comparison), ranked
// by keyboard, "Train DPO on these" with its counts and a DPO run that completes; a plain
// preference dataset reviewed (a flip saved), an identical pair refused, a teammate's verdicts
// merged with their kappa, and a 100k-row dataset opened with its longest stall reported.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QComboBox>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QtTest/QtTest>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gui_test_support.h"
#include "import_dialog.h"
#include "job.h"
#include "label_page.h"
#include "label_queue.h"
#include "main_window.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/runs.h"
#include "train_page.h"

using nlohmann::json;

namespace {

QString work(const QString& name) { return gui_test::work("label-" + name); }
using gui_test::screenshot;

void writeLines(const QString& path, const std::vector<std::string>& lines) {
  std::ofstream f(path.toStdString());
  for (const auto& l : lines) f << l << "\n";
}

int cli(const QString& args) { return std::system(QString("%1 %2 > /dev/null").arg(HONE_CLI, args).toUtf8().constData()); }

// Whitespace-collapsed text, written here apart from the store's own comparison.
std::string squeeze(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

class TestLabel : public QObject {
  Q_OBJECT
  QString fixture_, model_, run_dir_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("HoneTestLabel");
    QSettings().setValue("settings/annotator", "ann");
    fixture_ = work("fixture");
    model_ = fixture_ + "/model";
    QCOMPARE(cli(QString("init-model --preset tiny --tokenizer builtin --out '%1' --seed 5").arg(model_)), 0);
    // The run candidates come from: LoRA on a few instruction rows (a stand-in for the demo's run).
    std::vector<std::string> teach;
    for (int i = 0; i < 8; ++i)
      teach.push_back(json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}}).dump());
    writeLines(fixture_ + "/teach.jsonl", teach);
    const QString ws = fixture_ + "/ws";
    QCOMPARE(cli(QString("dataset import '%1/teach.jsonl' --name teach --workspace '%2'").arg(fixture_, ws)), 0);
    writeLines(fixture_ + "/run.json", {json({{"name", "taught"}, {"base_model", model_.toStdString()}, {"method", "lora"},
                                              {"recipe", "sft"}, {"train_data", {"dataset:teach"}}, {"max_steps", 20},
                                              {"batch_size", 4}, {"lr", 0.003}, {"max_seq_len", 32}, {"seed", 1}})
                                            .dump()});
    QCOMPARE(cli(QString("train --config '%1/run.json' --workspace '%2'").arg(fixture_, ws)), 0);
    hone::Workspace w(ws.toStdString());
    run_dir_ = QString::fromStdString(hone::list_runs(w).at(0).run_dir);
  }

  // Done when: from an empty workspace, a prompts file, four candidates per prompt from a run at
  // the default settings with every identical pair flagged, ranked by keyboard, Train DPO on
  // these, and the run completes.
  void promptsToCandidatesToDpoRun() {
    const QString ws = work("loop");
    writeLines(ws + "/prompts.txt", {"Say number 1", "Say number 2", "", "Say number 3", "Say number 4", "Say number 5",
                                     "Say number 6"});
    hone::ui::MainWindow w(ws);
    w.resize(1024, 720);  // the smallest window the toolbar must fit
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    {
      hone::ui::ImportDialog d(ws, ws + "/prompts.txt");
      QSignalSpy checked(&d, &hone::ui::ImportDialog::checked);
      QTRY_VERIFY_WITH_TIMEOUT(checked.count() >= 1, 20000);
      QVERIFY2(d.summaryText().contains("choose the format \"prompts\""), qPrintable(d.summaryText()));
      d.setFormat("prompts");
      QTRY_VERIFY_WITH_TIMEOUT(checked.count() >= 2, 20000);
      QVERIFY2(d.summaryText().startsWith("prompts format, prompts data: 6 rows read, 6 valid"), qPrintable(d.summaryText()));
      d.startImport();
      QTRY_VERIFY_WITH_TIMEOUT(d.result() == QDialog::Accepted, 20000);
    }
    w.showPage(hone::ui::MainWindow::Label);
    auto* lp = w.labelPage();
    lp->refresh();
    // Nothing to label yet: the prompts dataset is not a preference dataset.
    QCOMPARE(lp->currentDataset(), QString());
    hone::CandidateRequest r;  // the defaults, as the Generate dialog opens
    r.dataset = "prompts";
    r.run_dir = run_dir_.toStdString();
    r.max_new_tokens = 8;
    QCOMPARE(r.n, 4);
    QSignalSpy made(lp->generator(), &hone::ui::Job::stopped);
    QVERIFY(lp->generateCandidates(r));
    QTRY_VERIFY2_WITH_TIMEOUT(made.count() == 1 && lp->currentDataset() == "prompts-candidates", qPrintable(lp->statusText()), 120000);
    QCOMPARE(lp->queueSize(), 6);
    QVERIFY2(lp->statusText().startsWith("Stored 6 candidate rows as \"prompts-candidates\"."), qPrintable(lp->statusText()));
    // Every pair that reads the same is flagged (checked here by an independent comparison).
    hone::Workspace s(ws.toStdString());
    const int64_t id = hone::find_dataset(s, "prompts-candidates").id;
    int identical = 0;
    for (const auto& c : hone::list_candidates(s, id)) {
      const json rs = json::parse(c.data)["responses"];
      QCOMPARE(int(rs.size()), 4);
      std::vector<std::pair<int, int>> same;
      for (int a = 0; a < 4; ++a)
        for (int b = a + 1; b < 4; ++b)
          if (squeeze(rs[a].get<std::string>()) == squeeze(rs[b].get<std::string>())) same.push_back({a, b});
      QCOMPARE(c.identical, same);
      identical += int(same.size());
    }
    qInfo("4 candidates x 6 prompts from the run at the default settings: %d identical pairs (flagged)", identical);
    screenshot(w, "label-four-candidates");
    // The toolbar fits a 1024-pixel window: its last button is whole and inside the page.
    QPushButton* train = nullptr;
    for (auto* b : lp->findChildren<QPushButton*>())
      if (b->text() == "Train DPO on these") train = b;
    QVERIFY(train && train->text() == "Train DPO on these");
    QVERIFY2(train->mapTo(lp, QPoint(train->width(), 0)).x() <= lp->width(),
             qPrintable(QString("button ends at %1 of %2").arg(train->mapTo(lp, QPoint(train->width(), 0)).x()).arg(lp->width())));
    QVERIFY(train->width() >= train->sizeHint().width());
    // No control of the two toolbar rows overlaps another or is narrower than it can draw itself.
    QList<QWidget*> bar;
    for (auto* c : lp->findChildren<QWidget*>())
      if ((qobject_cast<QComboBox*>(c) || qobject_cast<QAbstractButton*>(c)) && c->isVisible() && c->mapTo(lp, QPoint(0, 0)).y() < 90)
        bar << c;
    QVERIFY(bar.size() >= 6);
    for (int a = 0; a < bar.size(); ++a) {
      const QRect ra(bar[a]->mapTo(lp, QPoint(0, 0)), bar[a]->size());
      QVERIFY2(bar[a]->width() >= bar[a]->minimumSizeHint().width(), qPrintable(bar[a]->objectName() + " squeezed"));
      for (int b = a + 1; b < bar.size(); ++b)
        QVERIFY2(!ra.intersects(QRect(bar[b]->mapTo(lp, QPoint(0, 0)), bar[b]->size())),
                 qPrintable(QString("toolbar controls %1 and %2 overlap").arg(a).arg(b)));
    }
    // Rank each row by keyboard: three digits, best first; the fourth follows.
    for (int i = 0; i < 6; ++i) {
      QCOMPARE(lp->currentPosition(), i);
      for (int k = 0; k < 3; ++k) QTest::keyClick(lp, Qt::Key(Qt::Key_1 + (i + k) % 4));
    }
    QCOMPARE(lp->labelledCount(), 6);
    const auto rows = hone::list_candidates(s, id);
    QCOMPARE(rows[1].label, std::string("ranked"));
    QCOMPARE(rows[1].ranking, (std::vector<int>{1, 2, 3, 0}));
    QCOMPARE(rows[1].author, std::string("ann"));
    // Six pairs per full ranking, less the identical ones; the counts come before the run.
    const int pairs = 36 - identical;
    const QString summary = lp->trainOnThese();
    QVERIFY2(summary.startsWith(QString("%1 pairs").arg(pairs)), qPrintable(summary));
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Train));
    QVERIFY2(w.statusBar()->currentMessage().contains(summary), qPrintable(w.statusBar()->currentMessage()));
    QVERIFY2(w.trainPage()->statusText().contains(summary) && w.trainPage()->statusText().contains("starting from run"),
             qPrintable(w.trainPage()->statusText()));
    auto* tp = w.trainPage();
    // DPO starts from what wrote the candidates: the run's base, and its adapter as the reference.
    QCOMPARE(tp->modelFolder(), model_);
    QVERIFY2(tp->configJson().contains(QString("\"init_adapter\": \"%1/adapter\"").arg(run_dir_)), qPrintable(tp->configJson()));
    QVERIFY2(tp->configJson().contains("\"recipe\": \"dpo\""), qPrintable(tp->configJson()));
    tp->setMaxSteps(3);  // the only change to what "Train DPO on these" set up
    QSignalSpy trained(tp, &hone::ui::TrainPage::runFinished);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(trained.count() == 1, 120000);
    QCOMPARE(trained.last().at(0).toString(), QString("completed"));
    screenshot(w, "label-dpo-run");
    const auto runs = hone::list_runs(s);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(runs[0].status, std::string("completed"));
  }

  // A plain preference dataset in the Label page: F flips row 0 and the flip is what exports.
  // Identical candidates cannot be preferred; a teammate's verdicts merge and their kappa shows.
  void reviewIdenticalAgreement() {
    const QString ws = work("review");
    writeLines(ws + "/pairs.jsonl", {json({{"prompt", "2+2?"}, {"chosen", "5"}, {"rejected", "4"}}).dump(),
                                     json({{"prompt", "Capital of France?"}, {"chosen", "**Paris**"}, {"rejected", "Lyon"}}).dump()});
    writeLines(ws + "/same.jsonl", {json({{"prompt", "Say hi"}, {"responses", {"hi there", "hi  there\n"}}}).dump(),
                                    json({{"prompt", "Say bye"}, {"responses", {"bye", "goodbye"}}}).dump(),
                                    json({{"prompt", "Say yes"}, {"responses", {"yes", "yes", " yes", "yes\n"}}}).dump()});
    {
      hone::Workspace s(ws.toStdString());
      QVERIFY(hone::import_dataset(s, (ws + "/pairs.jsonl").toStdString(), "pairs", {}).dataset_id > 0);
      QVERIFY(hone::import_dataset(s, (ws + "/same.jsonl").toStdString(), "same", {}).dataset_id > 0);
    }
    hone::ui::MainWindow w(ws);
    w.resize(1024, 720);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openLocation("label:pairs"));
    auto* lp = w.labelPage();
    QCOMPARE(lp->currentKind(), QString("preference"));
    QCOMPARE(lp->currentPosition(), 0);
    QTest::keyClick(lp, Qt::Key_F);  // "4" is the right answer: flip
    QCOMPARE(lp->currentPosition(), 1);
    // Texts show exactly as they train unless Markdown is asked for.
    lp->setRenderMarkdown(false);
    QCOMPARE(lp->responseText(0), QString("**Paris**"));
    lp->setRenderMarkdown(true);
    QCOMPARE(lp->responseText(0), QString("Paris"));
    lp->setRenderMarkdown(false);
    QTest::keyClick(lp, Qt::Key_K);
    screenshot(w, "label-review-pairs");
    {
      hone::Workspace s(ws.toStdString());
      const int64_t id = hone::find_dataset(s, "pairs").id;
      QCOMPARE(hone::label_row_at(s, id, 0).label, std::string("rejected"));
      const auto rep = hone::export_labels(s, id, (ws + "/out.jsonl").toStdString(), "");
      QCOMPARE(rep.pairs, int64_t(2));
      std::ifstream f((ws + "/out.jsonl").toStdString());
      std::string first;
      std::getline(f, first);
      QCOMPARE(json::parse(first)["chosen"], json("4"));
    }
    // The queue lists plain text, not Markdown.
    QVERIFY(lp->queue()->data(lp->queue()->index(1), Qt::DisplayRole).toString().contains("Capital of France?"));
    QVERIFY(!lp->queue()->data(lp->queue()->index(1), Qt::ToolTipRole).toString().contains("**"));

    // Two responses that read the same: shown as such, the preference keys do nothing.
    QVERIFY(lp->openDataset("same"));
    QCOMPARE(lp->currentPosition(), 0);
    QVERIFY(lp->identicalShown());
    QVERIFY(!lp->preferButtonsEnabled());
    QTest::keyClick(lp, Qt::Key_1);
    QVERIFY2(lp->statusText().contains("identical"), qPrintable(lp->statusText()));
    QCOMPARE(lp->currentPosition(), 0);
    QCOMPARE(lp->labelledCount(), 0);
    screenshot(w, "label-identical-pair");
    QTest::keyClick(lp, Qt::Key_T);  // a tie is fine
    QTest::keyClick(lp, Qt::Key_1);  // row 1: A better
    QCOMPARE(lp->labelledCount(), 2);
    // Four responses that all read the same: nothing to rank.
    QCOMPARE(lp->currentPosition(), 2);
    QVERIFY(lp->identicalShown());
    QVERIFY(!lp->preferButtonsEnabled());
    QTest::keyClick(lp, Qt::Key_1);
    QTest::keyClick(lp, Qt::Key_2);
    QTest::keyClick(lp, Qt::Key_3);
    QVERIFY2(lp->statusText().contains("nothing to rank"), qPrintable(lp->statusText()));
    QCOMPARE(lp->labelledCount(), 2);
    QTest::keyClick(lp, Qt::Key_X);
    QCOMPARE(lp->labelledCount(), 3);

    // A teammate (bob) labelled the same rows in his own workspace; his verdicts merge here.
    const QString other = work("review-bob");
    {
      hone::Workspace b(other.toStdString());
      hone::ImportOptions dup;
      dup.skip_invalid = true;
      QVERIFY(hone::import_dataset(b, (ws + "/same.jsonl").toStdString(), "same", dup).dataset_id > 0);
      const int64_t id = hone::find_dataset(b, "same").id;
      hone::label_candidate(b, id, 0, "tie", "", "bob");
      hone::label_candidate(b, id, 1, "b", "", "bob");
      QCOMPARE(hone::export_verdicts(b, id, (other + "/bob.jsonl").toStdString()), int64_t(2));
    }
    QVERIFY2(lp->mergeVerdicts(other + "/bob.jsonl").startsWith("Merged 2 new"), qPrintable(lp->statusText()));
    // Both tie on row 0, differ on row 1: p_o = 1/2, p_e = (1/2)(1/2) + (1/2)(0) + 0 = 1/4 -> kappa 1/3.
    lp->setFilter("mine");  // ann has judged every row: nothing left in her own queue
    QCOMPARE(lp->queueSize(), 0);
    lp->setFilter("all");
    const QString agreement = lp->agreementText();
    QVERIFY2(agreement.contains("ann and bob both judged 2 rows and agree on 1") && agreement.contains("kappa 0.333"),
             qPrintable(agreement));

    // Two sources compared by labelling: x wins rows 0, 2 and 3, y row 1. By hand, Wilson (z 1.96)
    // for 3 of 4: (0.75 + 0.4802) / 1.9604 -/+ 1.96 sqrt(0.046875 + 0.060025) / 1.9604 = 30%-95%.
    writeLines(ws + "/two.jsonl", {json({{"prompt", "p0"}, {"responses", {"x0", "y0"}}, {"sources", {"x", "y"}}}).dump(),
                                   json({{"prompt", "p1"}, {"responses", {"y1", "x1"}}, {"sources", {"y", "x"}}}).dump(),
                                   json({{"prompt", "p2"}, {"responses", {"y2", "x2"}}, {"sources", {"y", "x"}}}).dump(),
                                   json({{"prompt", "p3"}, {"responses", {"x3", "y3"}}, {"sources", {"x", "y"}}}).dump()});
    {
      hone::Workspace s(ws.toStdString());
      QVERIFY(hone::import_dataset(s, (ws + "/two.jsonl").toStdString(), "two", {}).dataset_id > 0);
    }
    QVERIFY(lp->openDataset("two"));
    QCOMPARE(lp->tallyText(), QString("Two sources: no verdict between them yet."));
    for (auto k : {Qt::Key_1, Qt::Key_1, Qt::Key_2, Qt::Key_1}) QTest::keyClick(lp, k);
    QVERIFY2(lp->tallyText().contains("<b>x</b> preferred in 3 of 4 comparisons (75%, 95% CI 30-95%)") &&
                 lp->tallyText().contains("<b>y</b> preferred in 1 of 4 comparisons (25%, 95% CI 5-70%)"),
             qPrintable(lp->tallyText()));
    screenshot(w, "label-two-sources");
  }

  // 100,000 preference rows: the page opens and labels without reading the dataset; the longest
  // stall of the event loop is reported (not asserted: timing is a benchmark's business).
  void aHundredThousandRows() {
    const QString ws = work("big");
    gui_test::fillDataset(ws, "big", hone::DatasetKind::Preference, 100000, [](int64_t i) {
      return json({{"prompt", "Question " + std::to_string(i)}, {"chosen", "good " + std::to_string(i)}, {"rejected", "bad"}}).dump();
    });
    hone::ui::MainWindow w(ws);
    w.resize(1024, 720);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.showPage(hone::ui::MainWindow::Label);
    auto* lp = w.labelPage();
    // Each step runs on the GUI thread; its time is how long the window would not respond.
    QElapsedTimer t;
    qint64 worst = 0;
    QStringList steps;
    auto timed = [&](const char* what, const std::function<void()>& f) {
      t.start();
      f();
      QCoreApplication::processEvents();  // the repaint it causes counts too
      const qint64 ms = t.elapsed();
      worst = std::max(worst, ms);
      steps << QString("%1 %2 ms").arg(what).arg(ms);
    };
    timed("open", [&] { QVERIFY(lp->openDataset("big")); });
    QCOMPARE(lp->queueSize(), 100000);
    QCOMPARE(lp->currentPosition(), 0);
    for (int i = 0; i < 5; ++i) timed(i % 2 ? "flip" : "keep", [&] { QTest::keyClick(lp, i % 2 ? Qt::Key_F : Qt::Key_K); });
    timed("jump to the end", [&] { lp->move(99990); });
    QCOMPARE(lp->currentPosition(), 99995);
    timed("filter unlabelled", [&] { lp->setFilter("unlabelled"); });
    QCOMPARE(lp->queueSize(), 99995);
    QCOMPARE(lp->labelledCount(), 5);
    timed("verdict under the filter", [&] { QTest::keyClick(lp, Qt::Key_K); });
    QCOMPARE(lp->labelledCount(), 6);
    // Pages, not the dataset: a few dozen 128-row reads at most.
    QVERIFY2(lp->queue()->pagesRead() < 60, qPrintable(QString::number(lp->queue()->pagesRead())));
    qInfo("100k-row preference dataset: longest GUI-thread step %lld ms (%s); %lld pages of 128 rows read", worst,
          qPrintable(steps.join(", ")), lp->queue()->pagesRead());
    screenshot(w, "label-100k");
  }
};

QTEST_MAIN(TestLabel)
#include "test_label.moc"
