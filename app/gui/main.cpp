// hone: the desktop app. Opens the main window on a workspace (argument, else the last one, else
// the default/demo workspace). `hone --bench-ui` measures how long the event loop ever stalls
// while a run trains from the Train page (target < 100 ms), and prints one JSON line.
#include <QApplication>
#include <QDir>
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

#include "common/runtime.h"
#include "main_window.h"
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

}  // namespace

int main(int argc, char** argv) {
  hone::tune_blas_kernel(argv);
  bool bench = false;
  QString model, workspace;
  int steps = 200;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bench-ui")) bench = true;
    else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--help")) {
      std::cout << "usage: hone [WORKSPACE]\n       hone --bench-ui --model DIR [--steps N]   (set QT_QPA_PLATFORM=offscreen without a display)\n";
      return 0;
    } else if (argv[i][0] != '-') workspace = argv[i];
  }
  QApplication app(argc, argv);
  QApplication::setApplicationName("Hone");
  QApplication::setOrganizationName("Hone");
  // Settings > Threads applies from the next start, the same way HONE_THREADS does for hone-cli.
  const int threads = QSettings().value("settings/threads", 0).toInt();
  if (threads > 0 && !std::getenv("HONE_THREADS")) ::setenv("HONE_THREADS", std::to_string(threads).c_str(), 1);
  hone::init_runtime();
  if (bench) {
    if (model.isEmpty()) {
      std::cerr << "error: --bench-ui needs --model DIR\n";
      return 2;
    }
    return bench_ui(app, model, steps);
  }
  hone::ui::MainWindow w(workspace);
  w.show();
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
