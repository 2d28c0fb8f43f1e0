// TrainJob: the worker thread opens its own workspace connection (SQLite connections stay on
// one thread) and starts or resumes the run through the launcher hone-cli uses (runs/run_launcher.h);
// several processes run as `hone-cli launch`, whose event lines are read with the core's decoder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train_job.h"

#include "job.h"

#include <signal.h>

#include <QCoreApplication>
#include <QDir>
#include <QProcess>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "runs/run_events.h"
#include "runs/run_launcher.h"
#include "train/trainer.h"

namespace hone::ui {

TrainJob::TrainJob(QObject* parent) : QObject(parent), job_(new Job("training", this)) {
  qRegisterMetaType<hone::StepMetrics>();
  connect(job_, &Job::finished, this, [this](const QVariant& v) {
    const QStringList r = v.toStringList();
    Q_EMIT finished(r.value(0), r.value(1), r.value(2));
  });
  connect(job_, &Job::failed, this, [this](const QString& e) { Q_EMIT finished("failed", e, QString()); });
}

TrainJob::~TrainJob() {
  // The worker reads control_ and emits this object's signals: it must have stopped before this
  // object's members go, which is before ~QObject would delete job_ as a child.
  cancel();
  delete job_;
}

bool TrainJob::running() const { return job_->running(); }

void TrainJob::pause() {
  if (running() && pausable()) control_ = 1;
}
void TrainJob::resume() {
  if (running() && control_ == 1) control_ = 0;
}
void TrainJob::cancel() {
  if (running()) control_ = 2;
}
void TrainJob::interrupt() {
  if (!running()) return;
  interrupted_ = true;
  control_ = 2;
}

// Data-parallel: hone-cli launch runs the ranks; this thread relays rank 0's JSON lines and the
// launcher's and ranks' stderr, and passes Cancel on as SIGUSR1 (a stop recorded as cancelled), a
// session's end as SIGTERM (interrupted), and Pause and Resume as SIGUSR2 (a toggle), which the
// launcher forwards to every rank; the ranks pause and resume together.
QVariant TrainJob::runLaunched(Job::Context& ctx, const std::string& ws_dir, const std::string& config_json, qint64 resume_run,
                               int processes) {
  const QString cli = QDir(QCoreApplication::applicationDirPath()).filePath("hone-cli");
  QStringList args = {"launch", "--nproc", QString::number(processes), "--"};
  std::string cfg_path;
  if (resume_run > 0) {
    args << "runs" << "resume" << QString::number(resume_run);
  } else {
    QDir().mkpath(QString::fromStdString(join_path(ws_dir, "runs")));
    cfg_path = join_path(ws_dir, "runs/.launch-" + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr)) + ".json");
    write_file_atomic(cfg_path, config_json);
    args << "train" << "--config" << QString::fromStdString(cfg_path);
  }
  args << "--workspace" << QString::fromStdString(ws_dir) << "--json";
  QProcess p;
  p.start(cli, args);
  if (!p.waitForStarted(10000)) throw Error("cannot start " + cli.toStdString() + ": " + p.errorString().toStdString());
  Q_EMIT log(QString("hone-cli %1").arg(args.join(' ')));
  QByteArray out, err;
  QStringList err_lines;
  RunEvent done;
  bool have_done = false;
  bool signalled = false, pause_sent = false;
  auto relay = [&] {
    out += p.readAllStandardOutput();
    err += p.readAllStandardError();
    for (int nl; (nl = out.indexOf('\n')) >= 0;) {
      const std::string line = out.left(nl).toStdString();
      out.remove(0, nl + 1);
      RunEvent e;
      if (!parse_run_event_line(line, &e)) continue;
      if (e.kind == RunEvent::Kind::Step) Q_EMIT progress(e.step);
      else if (e.kind == RunEvent::Kind::Log) Q_EMIT log(QString::fromStdString(e.message));
      else if (e.kind == RunEvent::Kind::Started) {
        Q_EMIT started(e.run_id, QString::fromStdString(e.run_dir));
      } else if (e.kind == RunEvent::Kind::Done) {
        done = std::move(e);
        have_done = true;
      }
    }
    for (int nl; (nl = err.indexOf('\n')) >= 0;) {
      const QString line = QString::fromUtf8(err.left(nl)).trimmed();
      err.remove(0, nl + 1);
      if (line.isEmpty()) continue;
      err_lines << line;
      Q_EMIT log(line);
    }
  };
  for (;;) {
    p.waitForReadyRead(100);
    relay();
    if (!signalled && (control_ == 2 || ctx.cancelled())) {
      ::kill(static_cast<pid_t>(p.processId()), interrupted_ ? SIGTERM : SIGUSR1);
      signalled = true;
    } else if (!signalled && (control_ == 1) != pause_sent) {
      ::kill(static_cast<pid_t>(p.processId()), SIGUSR2);
      pause_sent = !pause_sent;
    }
    if (p.state() == QProcess::NotRunning) {
      relay();
      break;
    }
  }
  if (!cfg_path.empty()) ::unlink(cfg_path.c_str());
  if (!have_done) {
    QString why = err_lines.isEmpty() ? QString("hone-cli launch exited with status %1").arg(p.exitCode()) : err_lines.last();
    if (why.startsWith("error: ")) why = why.mid(7);
    throw Error(why.toStdString());
  }
  const std::string& status = done.status;
  return QStringList{QString::fromStdString(status == "stopped_early" ? "completed" : status),
                     QString::fromStdString(done.result.error), QString::fromStdString(done.result.output_dir)};
}

bool TrainJob::start(const QString& workspace_dir, const RunConfig& cfg, QString* error, int processes) {
  try {
    validate_run_config(cfg, "run config");
  } catch (const std::exception& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  return launch(workspace_dir, cfg, 0, error, processes);
}

bool TrainJob::resume(const QString& workspace_dir, qint64 run_id, QString* error, int processes) {
  return launch(workspace_dir, RunConfig(), run_id, error, processes);  // the run's own config, from the store
}

bool TrainJob::launch(const QString& workspace_dir, const RunConfig& cfg, qint64 resume_run, QString* error, int processes) {
  if (running()) {
    if (error) *error = "a run is already in progress";
    return false;
  }
  control_ = 0;
  interrupted_ = false;
  processes_ = std::max(1, processes);
  const std::string ws_dir = workspace_dir.toStdString();
  if (processes > 1) {
    const std::string text = resume_run > 0 ? std::string() : cfg.to_json().dump(2);
    return job_->start([this, ws_dir, text, resume_run, processes](Job::Context& ctx) -> QVariant {
      return runLaunched(ctx, ws_dir, text, resume_run, processes);
    });
  }
  return job_->start([this, cfg, ws_dir, resume_run](Job::Context& ctx) -> QVariant {
    Workspace ws(ws_dir);
    LaunchSpec spec;
    spec.cfg = cfg;
    spec.resume_run = resume_run;
    LaunchHooks h;
    h.on_started = [this](int64_t id, const std::string& dir, const RunPlan&) {
      Q_EMIT started(id, QString::fromStdString(dir));
    };
    h.on_log = [this](const std::string& s) { Q_EMIT log(QString::fromStdString(s)); };
    // Cancel takes effect between micro-batches (and between layers), not only at a step's end.
    h.stop_requested = [this, &ctx] { return control_ == 2 || ctx.cancelled(); };
    h.stop_status = [this] { return std::string(interrupted_ ? "interrupted" : "cancelled"); };
    h.on_progress = [this, &ctx](const StepMetrics& m) {
      if (!m.paused) Q_EMIT progress(m);
      const int c = ctx.cancelled() ? 2 : control_.load();
      return c == 2 ? Control::Cancel : c == 1 ? Control::Pause : Control::Continue;
    };
    LaunchResult lr = launch_run(ws, spec, h);
    const TrainResult& r = lr.result;
    return QStringList{QString::fromStdString(r.status == "stopped_early" ? "completed" : r.status),
                       QString::fromStdString(r.error), QString::fromStdString(r.output_dir)};
  });
}

}  // namespace hone::ui
