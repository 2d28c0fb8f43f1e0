// Train page: the form over a RunConfig (train_form.h: model, datasets, method, recipe and
// hyper-parameters), its estimate and advisor (train_estimate.h), and the run view with Start /
// Pause / Cancel (run_view.h). Starting hands the form's RunConfig to TrainJob; Resume shows the
// recorded run's own settings in the form. Building the demo model is a job of its own.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>

#include "train/run_config.h"
#include "train_job.h"

class QPushButton;

namespace hone::ui {

class Job;
class RunView;
class TrainEstimate;
class TrainForm;

class TrainPage : public QWidget {
  Q_OBJECT
 public:
  explicit TrainPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void setModelFolder(const QString& dir);
  QString modelFolder() const;
  void showNote(const QString& note);  // in the run view's status line until a run starts
  void refreshDatasets();

  TrainForm* form() const { return form_; }
  RunConfig config() const;  // the run the form describes
  void setConfig(const RunConfig& c);
  QString configJson() const;  // config() as the JSON file hone-cli reads
  // Same as pressing Start; false when it cannot start. With ask, an estimate that does not fit in
  // memory asks first.
  bool startTraining(bool ask = false);
  bool resumeRun(qint64 run_id);  // shows the run's settings and continues it from its newest checkpoint
  // In the background: the demo's base and datasets (runs/demo.h); pretrain_steps 0 pre-trains
  // until the base has learnt the skills, as `hone-cli demo` does.
  void buildDemoModel(int64_t pretrain_steps = 0);
  Job* demoJob() const { return demo_job_; }

  // For tests and the shell. selectMethod/methodEnabled take a method (lora, qlora, full: with
  // the SFT recipe) or a recipe name (with LoRA).
  bool selectMethod(const QString& key);
  bool methodEnabled(const QString& key) const;  // whether the ticked data allows it
  bool modelUsable() const;
  bool demoOffered() const;  // the "Build the demo model" button is shown (no demo model yet)
  QString modelProblem() const;
  bool startEnabled() const;
  QString runName() const;
  void selectDataset(const QString& name, bool on);
  void selectOnlyDataset(const QString& name);
  void setMaxSteps(int steps);
  void setProcesses(int n);  // data-parallel processes for the next run
  bool pauseEnabled() const;
  TrainJob* job() { return job_; }
  int lossPointCount() const;
  QStringList methodMetricNames() const;  // recipe metrics plotted so far (DPO: rewards/margins, ...)
  void showMethodMetrics();               // brings the method-metrics plot to the front
  QString statusText() const;
  QString logText() const;
  QString advice() const;

 Q_SIGNALS:
  void runFinished(const QString& status);

 private:
  void updateEstimate();
  void onFinished(const QString& status, const QString& error, const QString& output);
  void setRunningUi(bool running);
  void refuse(const QString& why);  // Start refused: the status says why until the form changes

  QString workspace_;
  TrainJob* job_;
  Job* demo_job_;
  TrainForm* form_;
  TrainEstimate* estimate_;
  RunView* view_;
  QPushButton* start_;
  QPushButton* pause_;
  QPushButton* cancel_;
  bool refused_ = false;
};

}  // namespace hone::ui
