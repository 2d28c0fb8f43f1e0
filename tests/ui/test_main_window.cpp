// GUI tests (offscreen): the shell and About box; training from the Train page with live plot
// points while the event loop keeps running, then cancel; overlaying two runs on the Runs page;
// method availability and the advisor. Each test saves a screenshot into the build folder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QComboBox>
#include <QDir>
#include <QMessageBox>
#include <QPushButton>
#include <QElapsedTimer>
#include <QSettings>
#include <QStandardPaths>
#include <QTimer>
#include <QtTest/QtTest>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gui_test_support.h"
#include "main_window.h"
#include "runs_page.h"
#include "store/datasets.h"
#include "store/runs.h"
#include "train_form.h"
#include "train_page.h"

namespace {

QString work(const QString& name) { return gui_test::work("gui-" + name); }
using gui_test::screenshot;
using gui_test::StallMeter;

}  // namespace

class TestMainWindow : public QObject {
  Q_OBJECT
  QString model_, data_;

  // A workspace holding the "numbers" dataset; the window's Train page has the model and it ticked.
  QString numbersWorkspace(const QString& name) {
    const QString ws = work(name);
    hone::Workspace w(ws.toStdString());
    if (hone::import_dataset(w, data_.toStdString(), "numbers", {}).dataset_id <= 0) qFatal("import failed");
    return ws;
  }
  // A workspace holding "pairs", n preference rows (a right answer and "No.").
  QString pairsWorkspace(const QString& name, int n) {
    const QString ws = work(name);
    const std::string pairs = (ws + "/pairs.jsonl").toStdString();
    {
      std::ofstream f(pairs);
      for (int i = 0; i < n; ++i)
        f << nlohmann::json({{"prompt", "Say number " + std::to_string(i)}, {"chosen", "Number " + std::to_string(i) + "."},
                             {"rejected", "No."}}).dump() << "\n";
    }
    hone::Workspace w(ws.toStdString());
    if (hone::import_dataset(w, pairs, "pairs", {}).dataset_id <= 0) qFatal("import failed");
    return ws;
  }
  // The window shown, its Train page on the test model.
  hone::ui::TrainPage* shownTrainPage(hone::ui::MainWindow& w) {
    w.show();
    if (!QTest::qWaitForWindowExposed(&w)) qFatal("window not exposed");
    auto* tp = w.trainPage();
    tp->setModelFolder(model_);
    return tp;
  }
  hone::ui::TrainPage* readyTrainPage(hone::ui::MainWindow& w) {
    auto* tp = shownTrainPage(w);
    tp->selectDataset("numbers", true);
    return tp;
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings in a test location
    QCoreApplication::setOrganizationName("HoneTest");
    const QString d = work("fixture");
    model_ = d + "/model";
    const QString cmd = QString("%1 init-model --preset tiny --tokenizer builtin --out '%2' --seed 5 > /dev/null").arg(HONE_CLI, model_);
    QCOMPARE(std::system(cmd.toUtf8().constData()), 0);
    data_ = d + "/numbers.jsonl";
    std::ofstream f(data_.toStdString());
    for (int i = 0; i < 200; ++i)
      f << nlohmann::json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}}).dump() << "\n";
  }

  // Closed on the Runs page with 123 steps in the Train form: it reopens there, the form as it was.
  // The Help menu lists the shortcuts and finds the docs.
  void reopensWhereItWasClosed() {
    const QString ws = work("reopen");
    {
      hone::ui::MainWindow w(ws);
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      w.trainPage()->setMaxSteps(123);
      w.showPage(hone::ui::MainWindow::Runs);
      w.close();
    }
    {
      hone::ui::MainWindow w(ws);
      w.show();
      QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Runs));
      QVERIFY2(w.trainPage()->configJson().contains("\"max_steps\": 123"), qPrintable(w.trainPage()->configJson()));
      w.showPage(hone::ui::MainWindow::Train);
      w.close();  // later tests start on the Train page
    }
    const QString keys = hone::ui::MainWindow::shortcutsText();
    QVERIFY(keys.contains("Ctrl+2") && keys.contains("Label") && keys.contains("rank them best first"));
    QVERIFY(QFile::exists(hone::ui::MainWindow::docsDir() + "/labelling.md"));
  }

  void pagesAndAbout() {
    hone::ui::MainWindow w(work("about"));
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QCOMPARE(w.pageCount(), 8);  // Datasets ... Export, Models
    const QString about = w.aboutText();
    QVERIFY2(about.contains("libtorch"), qPrintable(about));
    QVERIFY2(about.contains(qVersion()), qPrintable(about));
    QVERIFY2(about.contains("threads"), qPrintable(about));
    QVERIFY2(about.contains("GPL-3.0-or-later"), qPrintable(about));
    QVERIFY(QFile::exists(w.workspace() + "/hone.db"));
    screenshot(w, "main-window");
  }

  // First launch from the desktop menu: no argument, no $HONE_WORKSPACE, no last workspace. The
  // workspace is created in the XDG data folder and the Train page offers the demo. A crash report
  // left there by an earlier run is shown once.
  void firstLaunchUsesTheXdgDataFolderAndOffersTheDemo() {
    const QByteArray saved_ws = qgetenv("HONE_WORKSPACE"), saved_xdg = qgetenv("XDG_DATA_HOME");
    const QString xdg = work("xdg-data");
    QDir(xdg).removeRecursively();
    qunsetenv("HONE_WORKSPACE");
    qputenv("XDG_DATA_HOME", xdg.toUtf8());
    QSettings().remove("workspace/last");
    QSettings().remove("train/model");  // as on a machine where Hone never ran
    {
      hone::ui::MainWindow w;
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      QCOMPARE(w.workspace(), xdg + "/hone");
      QVERIFY(QFile::exists(xdg + "/hone/hone.db"));
      QVERIFY(w.trainPage()->demoOffered());
      QVERIFY2(w.trainPage()->modelProblem() == "No model chosen.", qPrintable(w.trainPage()->modelProblem()));
      QVERIFY(!w.findChild<QMessageBox*>("crashNotice"));
      screenshot(w, "first-launch");
    }
    // A report as the crash handler writes it (core/common/crash.cpp).
    QDir().mkpath(xdg + "/hone/crash-reports");
    const QString report = xdg + "/hone/crash-reports/crash-20261201-101500-4242.txt";
    {
      std::ofstream f(report.toStdString());
      f << "Hone crash report\nprogram: hone 0.1.0\nsignal: 11 (SIGSEGV)\npid: 4242\nrun in progress: 7 (marked interrupted)\n";
    }
    {
      hone::ui::MainWindow w;
      w.show();
      QVERIFY(QTest::qWaitForWindowExposed(&w));
      auto* box = w.findChild<QMessageBox*>("crashNotice");
      QVERIFY(box);
      QVERIFY2(box->text().contains("SIGSEGV") && box->text().contains(report) && box->text().contains("Run 7 was marked interrupted"),
               qPrintable(box->text()));
      QVERIFY(!box->isModal() || box->windowModality() != Qt::ApplicationModal);
      screenshot(w, "crash-notice");
    }
    {
      hone::ui::MainWindow w;  // shown once
      QVERIFY(!w.findChild<QMessageBox*>("crashNotice"));
    }
    if (saved_ws.isEmpty()) qunsetenv("HONE_WORKSPACE");
    else qputenv("HONE_WORKSPACE", saved_ws);
    if (saved_xdg.isEmpty()) qunsetenv("XDG_DATA_HOME");
    else qputenv("XDG_DATA_HOME", saved_xdg);
    QSettings().remove("workspace/last");
  }

  void methodsAndAdvisor() {
    hone::ui::MainWindow w(numbersWorkspace("advisor"));
    auto* tp = w.trainPage();
    tp->selectDataset("numbers", true);
    QVERIFY(tp->methodEnabled("lora"));
    QVERIFY(tp->methodEnabled("qlora"));
    QVERIFY(!tp->methodEnabled("cpt"));  // no raw-text dataset ticked
    QVERIFY(!tp->methodEnabled("dpo"));  // needs preference pairs, the reason in its tooltip
    QVERIFY(tp->methodEnabled("ppo"));   // as GRPO, from the chat data
    QVERIFY(!tp->methodEnabled("reward"));  // needs preference pairs
    QVERIFY(tp->methodEnabled("grpo"));  // prompts and answers from the chat data
    QVERIFY(tp->selectMethod("grpo"));
    const auto cfg = nlohmann::json::parse(tp->configJson().toStdString());
    QCOMPARE(QString::fromStdString(cfg["recipe"].get<std::string>()), QString("grpo"));
    QCOMPARE(QString::fromStdString(cfg["rewards"][0]["type"].get<std::string>()), QString("exact"));
    QCOMPARE(cfg["num_generations"].get<int>(), 4);
    QCOMPARE(cfg["beta"].get<double>(), 0.0);
    QVERIFY(tp->selectMethod("ppo"));
    const auto ppo = nlohmann::json::parse(tp->configJson().toStdString());
    QCOMPARE(QString::fromStdString(ppo["recipe"].get<std::string>()), QString("ppo"));
    QCOMPARE(ppo["ppo_epochs"].get<int>(), 4);
    QCOMPARE(ppo["kl_target"].get<double>(), 0.0);
    QCOMPARE(QString::fromStdString(ppo["value_model"].get<std::string>()), QString("head"));  // the value head on the policy
    QCOMPARE(ppo["beta"].get<double>(), 0.05);
    QCOMPARE(ppo["num_generations"].get<int>(), 2);
    QVERIFY(tp->selectMethod("lora"));
    QVERIFY2(tp->advice().contains("may help"), qPrintable(tp->advice()));  // 200 rows: between 100 and 500
    tp->selectDataset("numbers", false);
    QVERIFY2(tp->advice().contains("few-shot"), qPrintable(tp->advice()));
  }

  void trainFromTheTrainPageThenCancel() {
    const QString ws = numbersWorkspace("train");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(100000);  // far more than the test waits for: it cancels
    StallMeter stall;
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() >= 5, 120000);
    screenshot(w, "train-page");
    const int before = tp->lossPointCount();
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() > before, 60000);  // points keep arriving
    // The Runs page follows the running run: its curve grows as the store records steps.
    {
      w.showPage(hone::ui::MainWindow::Runs);
      auto* rp = w.runsPage();
      hone::Workspace db(ws.toStdString());
      rp->selectRuns({hone::list_runs(db).front().id});
      const int shown = rp->plottedPointCount();
      QTRY_VERIFY_WITH_TIMEOUT((w.checkForChanges(), rp->plottedPointCount() > shown), 60000);
      QVERIFY(tp->job()->running());
      w.showPage(hone::ui::MainWindow::Train);
    }
    tp->job()->cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!tp->job()->running(), 60000);
    QTRY_VERIFY_WITH_TIMEOUT(tp->statusText().contains("cancelled"), 5000);
    QVERIFY(tp->lossPointCount() >= before);  // Cancel keeps the curve drawn so far
    QVERIFY2(stall.worst < 1000, qPrintable(QString("event loop stalled %1 ms").arg(stall.worst)));
    qInfo("longest event-loop stall while training: %lld ms", stall.worst);
    hone::Workspace db(ws.toStdString());
    auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].status), QString("cancelled"));
    QVERIFY(hone::run_metric(db, runs[0].id, "loss").size() >= 5);
    // Cancelled with a checkpoint written on the way out: offered for resume, saying what it restores.
    auto* rp = w.runsPage();
    rp->refresh();
    rp->selectRuns({runs[0].id});
    QVERIFY(rp->resumeEnabled());
    QVERIFY2(rp->resumeTip().contains("optimizer moments, data position"), qPrintable(rp->resumeTip()));
  }

  // Two data-parallel processes from the Train page (hone-cli launch beside the GUI): rank 0's
  // steps feed the plots, Pause is offered (it reaches the ranks as SIGUSR2 through the launcher),
  // and the one run recorded completes with the global batch in its metrics.
  void trainOnTwoProcessesFromTheTrainPage() {
    const QString ws = numbersWorkspace("procs");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(6);
    tp->setProcesses(2);
    StallMeter stall;
    QVERIFY(tp->startTraining());
    QVERIFY(tp->pauseEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(!tp->job()->running(), 180000);
    QTRY_VERIFY_WITH_TIMEOUT(tp->statusText().contains("completed"), 5000);
    QCOMPARE(tp->lossPointCount(), 6);
    QVERIFY2(stall.worst < 1000, qPrintable(QString("event loop stalled %1 ms").arg(stall.worst)));
    hone::Workspace db(ws.toStdString());
    auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));  // the other rank recorded nothing
    QCOMPARE(QString::fromStdString(runs[0].status), QString("completed"));
    QCOMPARE(int(hone::run_metric(db, runs[0].id, "loss").size()), 6);
    QVERIFY(QFile::exists(QString::fromStdString(runs[0].run_dir) + "/adapter/adapter_model.safetensors"));
    QVERIFY2(tp->logText().contains("distributed: rank 0 of 2"), qPrintable(tp->logText()));
  }

  // DPO from the Train page: the method plot shows the recipe's reward margin and accuracy, and
  // the Runs page offers the metrics the run recorded.
  void dpoFromTheTrainPage() {
    const QString ws = pairsWorkspace("dpo", 24);
    hone::ui::MainWindow w(ws);
    auto* tp = shownTrainPage(w);
    tp->selectDataset("pairs", true);
    QVERIFY(!tp->methodEnabled("lora"));  // instruction tuning needs chat data
    QVERIFY(tp->selectMethod("dpo"));
    QVERIFY2(tp->configJson().contains("\"recipe\": \"dpo\""), qPrintable(tp->configJson()));
    tp->setMaxSteps(6);
    QSignalSpy done(tp, &hone::ui::TrainPage::runFinished);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, 120000);
    QCOMPARE(done.last().at(0).toString(), QString("completed"));
    const QStringList plotted = tp->methodMetricNames();
    QVERIFY2(plotted.contains("rewards/margins") && plotted.contains("rewards/accuracies"), qPrintable(plotted.join(",")));
    tp->showMethodMetrics();
    screenshot(w, "train-page-dpo");
    auto* rp = w.runsPage();
    rp->refresh();
    rp->selectRuns({1});
    QVERIFY2(rp->metricChoices().contains("rewards/margins"), qPrintable(rp->metricChoices().join(",")));
    QVERIFY(rp->metricChoices().contains("loss"));
    QVERIFY(!rp->resumeEnabled());  // a completed run does not resume
    QVERIFY2(rp->resumeTip().contains("completed"), qPrintable(rp->resumeTip()));
  }

  // Method and recipe are two choices: QLoRA + DPO, which the run config always allowed, starts
  // and completes from the GUI, and the run is recorded as both.
  void qloraDpoFromTheTrainPage() {
    const QString ws = pairsWorkspace("qlora-dpo", 16);
    hone::ui::MainWindow w(ws);
    auto* tp = shownTrainPage(w);
    tp->selectOnlyDataset("pairs");
    QCOMPARE(tp->form()->recipe(), QString("dpo"));  // the first recipe the preference data trains
    QVERIFY(tp->form()->selectMethod("qlora"));
    QVERIFY(!tp->form()->recipeEnabled("sft"));
    QCOMPARE(QString::fromStdString(tp->config().method), QString("qlora"));
    QCOMPARE(QString::fromStdString(tp->config().recipe), QString("dpo"));
    QCOMPARE(tp->config().lora.r, 64);  // QLoRA's own defaults under DPO's learning rate
    QCOMPARE(tp->config().lr, 5e-5);
    tp->setMaxSteps(3);
    QSignalSpy done(tp, &hone::ui::TrainPage::runFinished);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, 120000);
    QCOMPARE(done.last().at(0).toString(), QString("completed"));
    hone::Workspace db(ws.toStdString());
    const auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].method), QString("qlora"));
    QCOMPARE(QString::fromStdString(runs[0].recipe), QString("dpo"));
    screenshot(w, "train-page-qlora-dpo");
  }

  // Resume shows the run's own settings in the form, whatever the form held before.
  void resumeShowsTheRunsOwnSettings() {
    const QString ws = numbersWorkspace("resume");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(100000);
    auto* thinking = tp->findChild<QComboBox*>("thinking");
    QVERIFY(thinking);
    thinking->setCurrentIndex(thinking->findData("keep_final"));
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() >= 2, 120000);
    tp->job()->cancel();
    QTRY_VERIFY_WITH_TIMEOUT(tp->statusText().contains("cancelled"), 60000);  // the run's end reached the page
    const hone::RunConfig ran = tp->config();
    QCOMPARE(QString::fromStdString(ran.thinking), QString("keep_final"));
    thinking->setCurrentIndex(thinking->findData("template"));
    // Another run being prepared: other method, steps, data.
    QVERIFY(tp->selectMethod("qlora"));
    tp->setMaxSteps(7);
    tp->selectDataset("numbers", false);
    QCOMPARE(tp->config().max_steps, 7);
    hone::Workspace db(ws.toStdString());
    const int64_t id = hone::list_runs(db).front().id;
    QVERIFY(tp->resumeRun(id));
    const hone::RunConfig shown = tp->config();
    QCOMPARE(QString::fromStdString(shown.method), QString("lora"));
    QCOMPARE(shown.max_steps, ran.max_steps);
    QCOMPARE(shown.lora.r, ran.lora.r);
    QCOMPARE(QString::fromStdString(shown.name), QString::fromStdString(ran.name));
    QCOMPARE(QString::fromStdString(shown.thinking), QString("keep_final"));  // from the run's recorded config
    QVERIFY(shown.train_data == std::vector<std::string>{"dataset:numbers"});
    // The plot shows the run's curve up to its checkpoint, then the new steps after it.
    const int history = tp->lossPointCount();
    QVERIFY2(history >= 2, qPrintable(QString::number(history)));
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() > history, 120000);  // it trains again
    tp->job()->cancel();
    QTRY_VERIFY_WITH_TIMEOUT(!tp->job()->running(), 60000);
  }

  // A reward model on the pairs, then GRPO and PPO on chat prompts, all started from the Train
  // page; each plots its own metrics (the recipe's plot hints).
  void rewardModelGrpoAndPpoFromTheTrainPage() {
    const QString ws = work("rl");
    {
      const std::string pairs = (ws + "/pairs.jsonl").toStdString(), chat = (ws + "/chat.jsonl").toStdString();
      std::ofstream f(pairs), g(chat);
      for (int i = 0; i < 24; ++i) {
        f << nlohmann::json({{"prompt", "Say number " + std::to_string(i)}, {"chosen", "Number " + std::to_string(i) + "."},
                             {"rejected", "No."}}).dump() << "\n";
        g << nlohmann::json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}})
                 .dump()
          << "\n";
      }
      f.close();
      g.close();
      hone::Workspace w(ws.toStdString());
      if (hone::import_dataset(w, pairs, "pairs", {}).dataset_id <= 0) qFatal("import failed");
      if (hone::import_dataset(w, chat, "chat", {}).dataset_id <= 0) qFatal("import failed");
    }
    hone::ui::MainWindow w(ws);
    auto* tp = shownTrainPage(w);
    const std::vector<std::tuple<QString, QString, QStringList>> runs = {{"pairs", "reward", {"accuracy", "margin"}},
                                                                         {"chat", "grpo", {"reward", "kl"}},
                                                                         {"chat", "ppo", {"reward", "kl", "value_loss"}}};
    for (const auto& [data, method, metrics] : runs) {
      tp->selectOnlyDataset(data);
      QVERIFY2(tp->selectMethod(method), qPrintable(method));
      tp->setMaxSteps(3);
      QSignalSpy done(tp, &hone::ui::TrainPage::runFinished);
      QVERIFY(tp->startTraining());
      QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, 120000);
      QCOMPARE(done.last().at(0).toString(), QString("completed"));
      const QStringList plotted = tp->methodMetricNames();
      for (const auto& m : metrics) QVERIFY2(plotted.contains(m), qPrintable(method + ": " + plotted.join(",")));
      tp->showMethodMetrics();
      screenshot(w, "train-page-" + method);
    }
  }

  // Quitting while a run trains asks first; "Yes" cancels the run (with its checkpoint) and the
  // window closes once the worker has stopped, the GUI thread never waiting on it.
  void quitWhileTrainingAsksThenCancels() {
    const QString ws = numbersWorkspace("quit");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(100000);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() >= 3, 120000);
    QString asked;
    auto answer = [&](QMessageBox::StandardButton b) {
      QTimer::singleShot(100, [&asked, b] {
        auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
        if (!box) return;
        asked = box->text();
        box->button(b)->click();
      });
    };
    answer(QMessageBox::No);
    w.close();
    QVERIFY2(asked.contains("training"), qPrintable(asked));
    QVERIFY(w.isVisible());  // "No": nothing stops
    QVERIFY(tp->job()->running());
    asked.clear();
    StallMeter stall;
    answer(QMessageBox::Yes);
    w.close();
    QVERIFY(!asked.isEmpty());
    QTRY_VERIFY_WITH_TIMEOUT(!w.isVisible(), 60000);
    QVERIFY(!tp->job()->running());
    QVERIFY2(stall.worst < 1000, qPrintable(QString("event loop stalled %1 ms").arg(stall.worst)));
    hone::Workspace db(ws.toStdString());
    auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].status), QString("cancelled"));
    QVERIFY(!hone::last_checkpoint(db, runs[0].id).empty());
  }

  // A window destroyed while its run trains (the app torn down without the quit prompt) stops the
  // worker before the objects it uses are gone, and the run ends recorded as cancelled.
  void destroyingTheWindowWhileTrainingStopsTheWorkerFirst() {
    const QString ws = numbersWorkspace("destroy");
    {
      hone::ui::MainWindow w(ws);
      auto* tp = readyTrainPage(w);
      tp->setMaxSteps(100000);
      QVERIFY(tp->startTraining());
      QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() >= 2, 120000);
    }
    hone::Workspace db(ws.toStdString());
    auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].status), QString("cancelled"));
  }

  // What SIGTERM does in the app (app/gui/main.cpp polls the signal and calls stopForSignal): the
  // run stops, keeps a checkpoint and is recorded as interrupted, then the window says it may quit.
  void signalStopsTrainingWithACheckpoint() {
    const QString ws = numbersWorkspace("signal");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(100000);
    QSignalSpy quit(&w, &hone::ui::MainWindow::readyToQuit);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(tp->lossPointCount() >= 3, 120000);
    w.stopForSignal();
    QTRY_VERIFY_WITH_TIMEOUT(quit.count() == 1, 60000);
    hone::Workspace db(ws.toStdString());
    auto runs = hone::list_runs(db);
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].status), QString("interrupted"));
    QVERIFY(!hone::last_checkpoint(db, runs[0].id).empty());
  }

  void overlayTwoRunsOnTheRunsPage() {
    const QString ws = numbersWorkspace("runs");
    hone::ui::MainWindow w(ws);
    auto* tp = readyTrainPage(w);
    tp->setMaxSteps(6);
    QSignalSpy done(tp, &hone::ui::TrainPage::runFinished);
    for (int i = 0; i < 2; ++i) {
      QVERIFY(tp->startTraining());
      QTRY_VERIFY_WITH_TIMEOUT(done.count() == i + 1, 120000);
      QCOMPARE(done.last().at(0).toString(), QString("completed"));
      tp->setMaxSteps(8);  // the second run differs in max_steps
    }
    auto* rp = w.runsPage();
    rp->refresh();
    QCOMPARE(rp->rowCount(), 2);
    rp->selectRuns({1, 2});
    QCOMPARE(rp->plottedRunCount(), 2);
    QVERIFY2(rp->configDiffText().contains("max_steps"), qPrintable(rp->configDiffText()));
    QVERIFY2(!rp->configDiffText().contains("batch_size"), qPrintable(rp->configDiffText()));  // only keys that differ
    // Both trained on dataset:numbers: their data does not show as a difference (the copies in each
    // run's folder have different paths).
    QVERIFY2(!rp->configDiffText().contains("train_data"), qPrintable(rp->configDiffText()));
    QVERIFY(rp->commandFor(1).startsWith("hone-cli train --config "));
    QVERIFY(rp->exportCsv(ws + "/runs.csv"));
    QFile csv(ws + "/runs.csv");
    QVERIFY(csv.open(QIODevice::ReadOnly));
    QCOMPARE(csv.readAll().count('\n'), 1 + 6 + 8);  // header + one row per step of each run
    QVERIFY(rp->exportPng(ws + "/runs.png"));
    w.showPage(3);
    screenshot(w, "runs-page");
  }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
