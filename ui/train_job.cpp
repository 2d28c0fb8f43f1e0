// TrainJob: the worker thread opens its own workspace connection (SQLite connections stay on
// one thread) and records the run exactly as hone-cli does (store/run_recorder.h).
#include "train_job.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/run_recorder.h"
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
  running_ = true;
  const std::string ws_dir = workspace_dir.toStdString();
  thread_ = std::thread([this, cfg, ws_dir, resume_run]() mutable {
    QString status = "failed", err, output;
    try {
      Workspace ws(ws_dir);
      TrainOptions opt;
      int64_t id = resume_run;
      if (resume_run > 0) {
        RunInfo info = get_run(ws, resume_run);
        cfg = parse_run_config(nlohmann::json::parse(info.config), "run " + std::to_string(resume_run));
        opt.run_dir = info.run_dir;
        opt.resume_from = last_checkpoint(ws, resume_run);
        if (opt.resume_from.empty()) throw Error("run " + std::to_string(resume_run) + " has no checkpoint to resume from");
      } else {
        char stamp[32];
        std::time_t now = std::time(nullptr);
        std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
        opt.run_dir = join_path(ws.runs_dir(), cfg.name + "-" + stamp);
        const auto refs = cfg.train_data;
        cfg.train_data = materialize_datasets(ws, cfg.train_data, join_path(opt.run_dir, "data"));
        cfg.eval_data = materialize_datasets(ws, cfg.eval_data, join_path(opt.run_dir, "data"));
        id = record_new_run(ws, cfg, refs, opt.run_dir);
      }
      RunRecorder rec(ws, id, opt.run_dir);
      Q_EMIT started(id, QString::fromStdString(opt.run_dir));
      opt.on_log = [this](const std::string& s) { Q_EMIT log(QString::fromStdString(s)); };
      opt.on_progress = [this](const StepMetrics& m) {
        if (!m.paused) Q_EMIT progress(m);
        const int c = control_;
        return c == 2 ? Control::Cancel : c == 1 ? Control::Pause : Control::Continue;
      };
      TrainResult r = rec.train(cfg, opt);
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
