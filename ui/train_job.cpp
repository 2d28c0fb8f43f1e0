// TrainJob: the worker thread opens its own workspace connection (SQLite connections stay on
// one thread) and starts or resumes the run through the launcher hone-cli uses (store/run_launcher.h).
#include "train_job.h"

#include "job.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "store/run_launcher.h"
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
  if (running()) control_ = 1;
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

bool TrainJob::start(const QString& workspace_dir, const QString& config_json, qint64 resume_run, QString* error) {
  if (running()) {
    if (error) *error = "a run is already in progress";
    return false;
  }
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
  const std::string ws_dir = workspace_dir.toStdString();
  return job_->start([this, cfg, ws_dir, resume_run](Job::Context& ctx) -> QVariant {
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
