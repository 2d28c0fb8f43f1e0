// Shared by the GUI test executables: a fresh work folder per test, screenshots saved into the build
// folder for review, and a meter of how long the event loop was ever blocked.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QTimer>
#include <QtTest/QtTest>

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

}  // namespace gui_test
