// hone: the desktop app. Opens the main window on a workspace (argument or --workspace, else
// $HONE_WORKSPACE, else the last one, else the default/demo workspace), on the page --open names. `hone --bench-ui` measures how long the event loop ever stalls
// while a run trains from the Train page (target < 100 ms), and prints one JSON line.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QApplication>
#include <QDir>
#include <QScrollBar>
#include <QTableView>
#include <QFileInfo>
#include <QElapsedTimer>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/crash.h"
#include "common/runtime.h"
#include "datasets_page.h"
#include "look.h"
#include "main_window.h"
#include "rows_model.h"
#include "store/datasets.h"
#include "train_page.h"

namespace {

int bench_ui(QApplication& app, const QString& model, int steps) {
  QStandardPaths::setTestModeEnabled(true);  // leave the user's settings alone
  QTemporaryDir tmp;
  const QString ws = tmp.path() + "/ws";
  {
    std::ofstream f((tmp.path() + "/data.jsonl").toStdString());
    for (int i = 0; i < 500; ++i)
      f << nlohmann::json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}}).dump()
        << "\n";
  }
  {
    hone::Workspace w(ws.toStdString());
    hone::import_dataset(w, (tmp.path() + "/data.jsonl").toStdString(), "bench", {});
  }
  hone::ui::MainWindow w(ws);
  w.show();
  auto* tp = w.trainPage();
  tp->setModelFolder(model);
  tp->selectDataset("bench", true);
  tp->setMaxSteps(steps);
  QElapsedTimer clock;
  clock.start();
  qint64 last = 0, worst = 0;
  int ticks = 0;
  QTimer t;
  QObject::connect(&t, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed();
    worst = std::max(worst, now - last);
    last = now;
    ++ticks;
  });
  QObject::connect(tp, &hone::ui::TrainPage::runFinished, [&](const QString& status) {
    std::cout << nlohmann::json({{"longest_stall_ms", worst}, {"timer_ticks", ticks}, {"seconds", clock.elapsed() / 1000.0},
                                 {"steps", steps}, {"points_plotted", tp->lossPointCount()}, {"status", status.toStdString()}})
                     .dump()
              << std::endl;
    app.exit(status == "completed" ? 0 : 1);
  });
  t.start(10);
  last = clock.elapsed();
  if (!tp->startTraining()) {
    std::cerr << "error: " << tp->statusText().toStdString() << "\n";
    return 1;
  }
  return app.exec();
}

// The Datasets page over `rows` rows of a text dataset, scrolled end to end in 200 jumps: the
// longest event-loop stall (target < 100 ms at 1M rows) and the pages the table read.
int bench_rows(QApplication& app, int64_t rows) {
  QStandardPaths::setTestModeEnabled(true);
  QTemporaryDir tmp;
  const QString ws = tmp.path() + "/ws";
  QElapsedTimer fill;
  fill.start();
  {
    hone::Workspace w(ws.toStdString());
    const int64_t id = hone::create_dataset(w, "bench-rows", hone::DatasetKind::Text, "bench");
    w.db().exec("BEGIN");
    hone::Stmt ins = w.db().prepare("INSERT INTO rows (dataset_id, position, data, source) VALUES (?, ?, ?, ?)");
    for (int64_t i = 0; i < rows; ++i) {
      ins.bind(1, id).bind(2, i).bind(3, nlohmann::json({{"text", "row " + std::to_string(i) + " of a large corpus"}}).dump())
          .bind(4, std::string("bench"));
      ins.run();
      ins.reset();
    }
    w.db().exec("COMMIT");
  }
  const double fill_s = fill.elapsed() / 1000.0;
  hone::ui::MainWindow w(ws);
  w.show();
  w.showPage(hone::ui::MainWindow::Datasets);
  auto* dp = w.datasetsPage();
  dp->selectDataset("bench-rows");
  QElapsedTimer clock;
  clock.start();
  qint64 last = 0, worst = 0;
  QTimer t;
  QObject::connect(&t, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed();
    worst = std::max(worst, now - last);
    last = now;
  });
  t.start(10);
  auto* bar = dp->table()->verticalScrollBar();
  int k = 0;
  QTimer step;
  QObject::connect(&step, &QTimer::timeout, [&] {
    bar->setValue(static_cast<int>(static_cast<qint64>(bar->maximum()) * k / 200));
    if (++k > 200) {
      step.stop();
      std::cout << nlohmann::json({{"rows", rows}, {"longest_stall_ms", worst}, {"scroll_seconds", clock.elapsed() / 1000.0},
                                   {"pages_read", dp->rows()->pagesRead()}, {"fill_seconds", fill_s}})
                       .dump()
                << std::endl;
      app.exit(0);
    }
  });
  step.start(15);
  last = clock.elapsed();
  return app.exec();
}

}  // namespace

int main(int argc, char** argv) {
  hone::tune_blas_kernel(argv);
  bool bench = false;
  QString model, workspace, open, import_file;
  int steps = 200;
  long long bench_rows_n = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bench-ui")) bench = true;
    else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rows") && i + 1 < argc) bench_rows_n = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--workspace") && i + 1 < argc) workspace = argv[++i];
    else if (!std::strcmp(argv[i], "--open") && i + 1 < argc) open = argv[++i];
    else if (!std::strcmp(argv[i], "--help")) {
      std::cout << "usage: hone [--workspace DIR | DIR] [--open PAGE[:DATASET]] [FILE]\n"
                   "       hone --bench-ui --model DIR [--steps N]   (set QT_QPA_PLATFORM=offscreen without a display)\n"
                   "       hone --bench-ui --rows N                  (the Datasets table scrolled over N rows)\n\n"
                   "--open: datasets[:NAME], label[:NAME], train, runs, evaluate, playground or export.\n"
                   "A dataset FILE (.jsonl .json .csv .tsv .txt .md) opens the import wizard on it.\n"
                   "The workspace defaults to $HONE_WORKSPACE, else the last one used, else ~/.local/share/hone.\n";
      return 0;
    } else if (argv[i][0] != '-') {
      // A folder is a workspace; a file is a dataset to import (the desktop entry passes files).
      const QString a = QString::fromLocal8Bit(argv[i]);
      if (QFileInfo(a).isFile()) import_file = a;
      else workspace = a;
    }
  }
  QApplication app(argc, argv);
  QApplication::setApplicationName("Hone");
  QApplication::setOrganizationName("Hone");
  // A crash writes a report into the open workspace; hone-cli beside hone marks the run interrupted.
  hone::install_crash_handler("hone", QDir(QCoreApplication::applicationDirPath()).filePath("hone-cli").toStdString());
  // Settings > Threads applies from the next start, the same way HONE_THREADS does for hone-cli.
  const int threads = QSettings().value("settings/threads", 0).toInt();
  if (threads > 0 && !std::getenv("HONE_THREADS")) ::setenv("HONE_THREADS", std::to_string(threads).c_str(), 1);
  hone::init_runtime();
  if (bench && bench_rows_n > 0) return bench_rows(app, bench_rows_n);
  if (bench) {
    if (model.isEmpty()) {
      std::cerr << "error: --bench-ui needs --model DIR\n";
      return 2;
    }
    return bench_ui(app, model, steps);
  }
  hone::ui::applyLook(app);
  hone::ui::installWheelGuard(app);
  hone::ui::MainWindow w(workspace);
  w.show();
  if (!open.isEmpty()) w.openLocation(open);
  if (!import_file.isEmpty()) {
    w.showPage(hone::ui::MainWindow::Datasets);
    w.datasetsPage()->importFile(import_file);
  }
  // SIGTERM (logout, shutdown), SIGINT and SIGHUP end a training run with a checkpoint instead of
  // losing it: the handler only sets a flag, which the event loop polls.
  static volatile sig_atomic_t stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = [](int sig) { stop_signal = sig; };
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  QObject::connect(&w, &hone::ui::MainWindow::readyToQuit, &app, &QApplication::quit);
  QTimer poll;
  bool stopping = false;
  QObject::connect(&poll, &QTimer::timeout, [&] {
    if (stop_signal && !stopping) {
      stopping = true;
      w.stopForSignal();
    }
  });
  poll.start(200);
  return app.exec();
}
