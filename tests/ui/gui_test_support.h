// Shared by the GUI test executables: a fresh work folder per test, screenshots saved into the build
// folder for review, a meter of how long the event loop was ever blocked, and large datasets
// written straight into the store.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QTimer>
#include <QtTest/QtTest>
#include <functional>
#include <string>

#include "store/datasets.h"
#include "store/sqlite.h"

namespace gui_test {

// <build>/test-work/<name>-<pid>, emptied.
inline QString work(const QString& name) {
  QString d = QString(HONE_TEST_WORK) + "/" + name + "-" + QString::number(QCoreApplication::applicationPid());
  QDir(d).removeRecursively();
  QDir().mkpath(d);
  return d;
}

inline void screenshot(QWidget& w, const QString& name) {
  QDir().mkpath(HONE_TEST_WORK);
  QVERIFY(w.grab().save(QString(HONE_TEST_WORK) + "/screenshot-" + name + ".png"));
}

// Largest gap between ticks of a 10 ms timer: how long the event loop was blocked.
struct StallMeter {
  QTimer timer;
  QElapsedTimer clock;
  qint64 last = 0, worst = 0;
  StallMeter() {
    clock.start();
    QObject::connect(&timer, &QTimer::timeout, [this] {
      const qint64 now = clock.elapsed();
      worst = std::max(worst, now - last);
      last = now;
    });
    timer.start(10);
  }
};

// A dataset of `rows` rows written straight into SQLite in one transaction (far faster than an
// import, for tests of how the pages cope with size); row i is row(i), its source big.jsonl:i+1.
inline void fillDataset(const QString& workspace, const std::string& name, hone::DatasetKind kind, int64_t rows,
                        const std::function<std::string(int64_t)>& row) {
  hone::Workspace s(workspace.toStdString());
  const int64_t id = hone::create_dataset(s, name, kind, "test");
  s.db().exec("BEGIN");
  hone::Stmt ins = s.db().prepare("INSERT INTO rows (dataset_id, position, data, source) VALUES (?, ?, ?, ?)");
  for (int64_t i = 0; i < rows; ++i) {
    ins.bind(1, id).bind(2, i).bind(3, row(i)).bind(4, std::string("big.jsonl:") + std::to_string(i + 1));
    ins.run();
    ins.reset();
  }
  s.db().exec("COMMIT");
}

}  // namespace gui_test
