// Job (see job.h). The thread of a finished job is reaped at the next start or in the destructor.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "job.h"

#include <QMutex>
#include <QSet>
#include <exception>

namespace hone::ui {

namespace {
QMutex g_mu;
QSet<Job*> g_running;
}  // namespace

Job::Job(const QString& name, QObject* parent) : QObject(parent), name_(name) {}

Job::~Job() {
  cancel_ = true;
  if (thread_.joinable()) thread_.join();
  QMutexLocker l(&g_mu);
  g_running.remove(this);
}

QList<Job*> Job::runningJobs() {
  QMutexLocker l(&g_mu);
  return QList<Job*>(g_running.begin(), g_running.end());
}

bool Job::start(Work work) {
  if (running_) return false;
  if (thread_.joinable()) thread_.join();  // the previous run has returned; reap it
  cancel_ = false;
  running_ = true;
  {
    QMutexLocker l(&g_mu);
    g_running.insert(this);
  }
  thread_ = std::thread([this, work = std::move(work)] {
    Context ctx(this);
    QVariant result;
    QString error;
    bool ok = true;
    try {
      result = work(ctx);
    } catch (const std::exception& e) {
      ok = false;
      error = QString::fromUtf8(e.what());
    } catch (...) {
      ok = false;
      error = "unknown error";
    }
    {
      QMutexLocker l(&g_mu);
      g_running.remove(this);
    }
    running_ = false;
    if (ok) Q_EMIT finished(result);
    else Q_EMIT failed(error);
    Q_EMIT stopped();
  });
  return true;
}

void Job::cancel() {
  if (running_) cancel_ = true;
}

}  // namespace hone::ui
