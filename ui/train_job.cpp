// TrainJob: the worker thread opens its own workspace connection (SQLite connections stay on
// one thread) and starts or resumes the run through the launcher hone-cli uses (store/run_launcher.h).
#include "train_job.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "store/run_launcher.h"
#include "train/trainer.h"

namespace hone::ui {

TrainJob::TrainJob(QObject* parent) : QObject(parent) { qRegisterMetaType<hone::StepMetrics>(); }

TrainJob::~TrainJob() {
  cancel();
  join();
}

void TrainJob::join() {
  if (thread_.joinable()) thread_.join();
}

void TrainJob::pause() {
  if (running_) control_ = 1;
}
void TrainJob::resume() {
  if (running_ && control_ == 1) control_ = 0;
}
void TrainJob::cancel() {
  if (running_) control_ = 2;
}
void TrainJob::interrupt() {
  if (!running_) return;
  interrupted_ = true;
  control_ = 2;
}

bool TrainJob::start(const QString& workspace_dir, const QString& config_json, qint64 resume_run, QString* error) {
  if (running_) {
    if (error) *error = "a run is already in progress";
    return false;
  }
  join();  // the previous run's thread has finished; reap it
  RunConfig cfg;
  if (resume_run <= 0) {  // a resumed run reads its own config from the store
    try {
      cfg = parse_run_config(nlohmann::json::parse(config_json.toStdString()), "run config");
    } catch (const std::exception& e) {
      if (error) *error = QString::fromStdString(e.what());
      return false;
    }
  }
  control_ = 0;
  interrupted_ = false;
  running_ = true;
  const std::string ws_dir = workspace_dir.toStdString();
  thread_ = std::thread([this, cfg, ws_dir, resume_run]() {
    QString status = "failed", err, output;
    try {
      Workspace ws(ws_dir);
      LaunchSpec spec;
      spec.cfg = cfg;
      spec.resume_run = resume_run;
      LaunchHooks h;
      h.on_started = [this](int64_t id, const std::string& dir, const RunPlan& plan) {
        if (!plan.resumed.empty()) Q_EMIT log(QString::fromStdString("resuming from " + plan.resumed));
        Q_EMIT started(id, QString::fromStdString(dir));
      };
      h.on_log = [this](const std::string& s) { Q_EMIT log(QString::fromStdString(s)); };
      // Cancel takes effect between micro-batches, not only at the end of a step.
      h.stop_requested = [this] { return control_ == 2; };
      h.stop_status = [this] { return std::string(interrupted_ ? "interrupted" : "cancelled"); };
      h.on_progress = [this](const StepMetrics& m) {
        if (!m.paused) Q_EMIT progress(m);
        const int c = control_;
        return c == 2 ? Control::Cancel : c == 1 ? Control::Pause : Control::Continue;
      };
      LaunchResult lr = launch_run(ws, spec, h);
      const TrainResult& r = lr.result;
      status = QString::fromStdString(r.status == "stopped_early" ? "completed" : r.status);
      err = QString::fromStdString(r.error);
      output = QString::fromStdString(r.output_dir);
    } catch (const std::exception& e) {
      status = "failed";
      err = QString::fromStdString(e.what());
    }
    running_ = false;
    Q_EMIT finished(status, err, output);
  });
  return true;
}

}  // namespace hone::ui
