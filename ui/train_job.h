// The GUI's handle on one training run: runs the core's train() as a Job (job.h), records it in
// the workspace, and turns the core's progress callback into queued Qt signals. Pause, resume and
// cancel are flags the callback reads; the GUI thread never waits on training.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMetaType>
#include <QObject>
#include <QString>
#include <atomic>

#include "job.h"
#include "train/trainer.h"  // torch-free: StepMetrics travels in the progress signal

namespace hone::ui {


class TrainJob : public QObject {
  Q_OBJECT
 public:
  explicit TrainJob(QObject* parent = nullptr);
  ~TrainJob() override;  // cancels a running job and waits for its thread

  // Starts training `cfg` in the workspace. Returns false (with `error`) when the config is invalid
  // or a job is already running; data problems arrive later through finished("failed", ...).
  // processes > 1 trains data-parallel: `hone-cli launch --nproc N -- train ...` runs beside the
  // GUI (each process holds its own model and needs its own threads), and rank 0's event lines
  // (runs/run_events.h) feed the same signals. Pause needs every rank to wait, so it is not offered then.
  bool start(const QString& workspace_dir, const RunConfig& cfg, QString* error, int processes = 1);
  // Continues the recorded run from its newest checkpoint, with its own config.
  bool resume(const QString& workspace_dir, qint64 run_id, QString* error, int processes = 1);
  void pause();
  void resume();
  void cancel();
  // A stop because the session is ending (SIGTERM, logout): like cancel(), recorded as interrupted.
  void interrupt();
  bool running() const;
  Job* worker() const { return job_; }
  bool paused() const { return control_ == 1; }
  bool pausable() const { return true; }  // several processes pause through hone-cli launch (SIGUSR2)

 Q_SIGNALS:
  void started(qint64 run_id, const QString& run_dir);
  void progress(const hone::StepMetrics& m);  // the core's own step record, queued to the GUI
  void log(const QString& line);
  // status: completed | cancelled | failed (error says why); output: adapter/ or model/ folder.
  void finished(const QString& status, const QString& error, const QString& output);

 private:
  bool launch(const QString& workspace_dir, const RunConfig& cfg, qint64 resume_run, QString* error, int processes);
  QVariant runLaunched(Job::Context& ctx, const std::string& ws_dir, const std::string& config_json, qint64 resume_run,
                       int processes);
  Job* job_;
  std::atomic<int> control_{0};  // 0 continue, 1 pause, 2 cancel
  std::atomic<bool> interrupted_{false};
  std::atomic<int> processes_{1};
};

}  // namespace hone::ui

Q_DECLARE_METATYPE(hone::StepMetrics)
