// GUI test of the Models page (offscreen) against the loopback hub: the cache listed with each
// model's architecture and whether Hone loads it, a search that leaves out other architectures, a
// download shown in progress (screenshot), cancelled, then resumed to the same bytes, and "Use for
// Training" putting the hub name on the Train page, which resolves it from the cache.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QLineEdit>
#include <QProgressBar>
#include <QStandardPaths>
#include <QTableWidget>
#include <QtTest/QtTest>

#include "../hub/loopback_hub.h"
#include "common/hub_cache.h"
#include "gui_test_support.h"
#include "job.h"
#include "main_window.h"
#include "models_page.h"
#include "train_page.h"

using namespace hone::test;

class TestModels : public QObject {
  Q_OBJECT

  static int rowOf(QTableWidget* t, const QString& name) {
    for (int r = 0; r < t->rowCount(); ++r)
      if (t->item(r, 0)->text() == name) return r;
    return -1;
  }
  static bool waitIdle(hone::ui::Job* j, int ms = 30000) {
    QElapsedTimer t;
    t.start();
    while (j->running() && t.elapsed() < ms) QTest::qWait(20);
    QTest::qWait(50);  // the queued finished/stopped signals
    return !j->running();
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("HoneTest");
  }

  void cacheSearchDownloadCancelResumeAndUse() {
    // A cached model first (gated/tiny-model, with the token), from a server without faults.
    HubServer plain("gui-plain");
    auto pre = plain.hub("hub download gated/tiny-model", "HF_TOKEN=hf_good");
    QVERIFY2(pre.code == 0, pre.err.c_str());
    // The page's downloads go to a server whose model.safetensors stalls half-way the first time.
    HubServer s("gui-stall", "--stall model.safetensors");
    qputenv("HF_ENDPOINT", ("http://127.0.0.1:" + std::to_string(s.port)).c_str());
    qputenv("HF_HUB_CACHE", plain.cache.c_str());
    qputenv("HF_HOME", (s.dir + "/hf-home").c_str());
    qunsetenv("HF_TOKEN");
    qunsetenv("HF_HUB_OFFLINE");

    hone::ui::MainWindow w(gui_test::work("models-ws"));
    w.resize(1180, 820);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.showPage(hone::ui::MainWindow::Models);
    auto* page = w.modelsPage();
    QVERIFY(waitIdle(page->listJob()));
    auto* cached = page->cachedTable();
    int r = rowOf(cached, "gated/tiny-model");
    QVERIFY2(r >= 0, "the cached model is not listed");
    QCOMPARE(cached->item(r, 2)->text(), QString("llama"));
    QCOMPARE(cached->item(r, 6)->text(), QString("yes"));

    page->search("tiny");
    QVERIFY(waitIdle(page->searchJob()));
    QVERIFY(rowOf(page->resultsTable(), "test-org/tiny-model") >= 0);
    QCOMPARE(rowOf(page->resultsTable(), "other-org/tiny-bert"), -1);  // not an architecture Hone loads

    gui_test::StallMeter meter;
    QVERIFY(page->download("test-org/tiny-model"));
    // The server sends half of model.safetensors and stalls: the bar shows it, the GUI stays live.
    QElapsedTimer t;
    t.start();
    while (page->progressBar()->value() < 400 && t.elapsed() < 20000) QTest::qWait(20);
    QVERIFY2(page->progressBar()->value() >= 400, qPrintable(page->statusText()));
    QVERIFY(page->downloadJob()->running());
    QVERIFY2(page->statusText().contains("of") && page->statusText().contains("files"), qPrintable(page->statusText()));
    gui_test::screenshot(w, "models");
    page->cancelDownload();
    QVERIFY(waitIdle(page->downloadJob(), 10000));
    QVERIFY2(page->statusText().contains("resumes"), qPrintable(page->statusText()));
    QVERIFY2(meter.worst < 500, qPrintable(QString("event loop blocked %1 ms").arg(meter.worst)));
    QVERIFY(waitIdle(page->listJob()));
    r = rowOf(cached, "test-org/tiny-model");
    QVERIFY(r >= 0);
    QVERIFY2(cached->item(r, 4)->text().contains("partial"), qPrintable(cached->item(r, 4)->text()));
    QVERIFY2(cached->item(r, 6)->text().contains("download it again to resume"), qPrintable(cached->item(r, 6)->text()));

    // Again: the stall was once; the rest of the file is fetched with a Range and checked.
    QVERIFY(page->download("test-org/tiny-model"));
    QVERIFY(waitIdle(page->downloadJob()));
    QVERIFY2(page->statusText().contains("1 resumed"), qPrintable(page->statusText()));
    QVERIFY(waitIdle(page->listJob()));
    r = rowOf(cached, "test-org/tiny-model");
    QVERIFY(r >= 0);
    QCOMPARE(cached->item(r, 6)->text(), QString("yes"));
    const std::string sha = py_hash(model_src("model.safetensors"), false);
    QVERIFY(hone::read_file(plain.cache + "/models--test-org--tiny-model/blobs/" + sha) == hone::read_file(model_src("model.safetensors")));

    QVERIFY(page->useForTraining("test-org/tiny-model"));
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Train));
    QVERIFY(w.trainPage()->modelUsable());
    QCOMPARE(w.trainPage()->modelFolder(), QString::fromStdString(hone::resolve_model_dir("test-org/tiny-model")));
    QVERIFY(w.trainPage()->modelFolder().contains("/snapshots/"));
    w.close();
  }
};

QTEST_MAIN(TestModels)
#include "test_models.moc"
