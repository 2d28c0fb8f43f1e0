// One reusable background job for the desktop app: a function runs on its own worker thread with a
// cancel flag and a progress callback; its result, failure or cancellation come back as queued
// signals, so the GUI thread never waits. Training, import, statistics, candidate generation and
// the playground all run through it. Exceptions never escape the worker: they become failed().
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QObject>
#include <QString>
#include <QVariant>
#include <atomic>
#include <functional>
#include <thread>

namespace hone::ui {

class Job : public QObject {
  Q_OBJECT
 public:
  // What the work function sees: the cancel flag and a progress reporter (thread-safe).
  class Context {
   public:
    bool cancelled() const { return job_->cancel_; }
    void progress(qint64 done, qint64 total, const QString& text = QString()) const {
      Q_EMIT job_->progress(done, total, text);
    }
    Job* job() const { return job_; }

   private:
    friend class Job;
    explicit Context(Job* j) : job_(j) {}
    Job* job_;
  };
  using Work = std::function<QVariant(Context&)>;

  explicit Job(const QString& name, QObject* parent = nullptr);
  ~Job() override;  // cancels and waits: a job must not outlive what it works on

  // Starts the work; false when this job is already running.
  bool start(Work work);
  void cancel();
  bool running() const { return running_; }
  bool cancelRequested() const { return cancel_; }
  QString name() const { return name_; }

  // Jobs running anywhere in the app (for the quit prompt).
  static QList<Job*> runningJobs();

 Q_SIGNALS:
  void progress(qint64 done, qint64 total, const QString& text);
  void finished(const QVariant& result);  // the work returned (also when it saw the cancel flag)
  void failed(const QString& error);      // it threw
  void stopped();                         // after finished or failed: the job is idle again

 private:
  QString name_;
  std::thread thread_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> running_{false};
};

}  // namespace hone::ui
