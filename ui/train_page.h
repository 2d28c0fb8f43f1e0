// Train page: base model folder with its summary, workspace datasets, method (unavailable ones
// disabled with the reason), hyper-parameters with per-method presets and tooltips, a memory and
// time estimate, the fine-tuning advisor, and Start / Pause / Cancel with live plots and a log.
#pragma once
#include <QMap>
#include <QStringList>
#include <QWidget>
#include <vector>

#include "model/config.h"
#include "train_job.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QProcess;
class QCustomPlot;
class QCPGraph;

namespace hone::ui {

class TrainPage : public QWidget {
  Q_OBJECT
 public:
  explicit TrainPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void setModelFolder(const QString& dir);
  void refreshDatasets();

  // For tests and the shell.
  QString configJson() const;  // the run config the form describes
  // Same as pressing Start; false when it cannot start. With ask, an estimate that does not fit in
  // memory asks first.
  bool startTraining(bool ask = false);
  bool modelUsable() const { return model_ok_; }
  bool demoOffered() const;  // the "Build the demo model" button is shown (no demo model yet)
  QString modelProblem() const { return model_problem_; }
  bool startEnabled() const;
  QString runName() const;
  void setPreferenceSettings(double beta, const QString& loss_type);
  bool resumeRun(qint64 run_id);  // continues a recorded run from its newest checkpoint
  void selectDataset(const QString& name, bool on);
  void selectOnlyDataset(const QString& name);
  void setMaxSteps(int steps);
  void setProcesses(int n);  // data-parallel processes for the next run
  bool pauseEnabled() const;
  bool selectMethod(const QString& key);  // false when that method is unavailable (greyed out)
  TrainJob* job() { return job_; }
  int lossPointCount() const;
  QStringList methodMetricNames() const;
  void showMethodMetrics();  // brings the method-metrics plot to the front  // recipe metrics plotted so far (DPO: rewards/margins, ...)
  QString statusText() const;
  QString logText() const;
  bool methodEnabled(const QString& key) const;
  QString advice() const;

 Q_SIGNALS:
  void runFinished(const QString& status);

 private:
  void onMethodChanged();
  void applyPreset();
  void updateModelSummary();
  void updateEstimate();
  void updateAdvisor();
  void updateAvailability();
  void onProgress(const hone::StepMetrics& p);
  void onFinished(const QString& status, const QString& error, const QString& output);
  void setRunningUi(bool running);
  void resetRunView();

  QString workspace_;
  TrainJob* job_;
  // form
  QLineEdit* model_;
  QLabel* model_info_;
  QListWidget* datasets_;
  QComboBox* method_;
  QLineEdit* name_;
  QDoubleSpinBox* lr_;
  QDoubleSpinBox* beta_;
  QComboBox* loss_type_;
  QLabel* beta_label_;
  QLabel* loss_type_label_;
  QLineEdit* rewards_;       // grpo, ppo: rule rewards (JSON)
  QLineEdit* reward_model_;  // grpo, ppo: a reward run's folder
  QSpinBox* generations_;
  QSpinBox* new_tokens_;
  std::vector<QLabel*> rl_rows_;
  QSpinBox* ppo_epochs_;        // ppo: updates over each batch of rollouts
  QDoubleSpinBox* kl_target_;   // ppo: adaptive KL target (0: fixed coefficient)
  QComboBox* value_model_;      // ppo: critic adapter or value head on the policy
  std::vector<QLabel*> ppo_rows_;
  QSpinBox* steps_;
  QDoubleSpinBox* epochs_;
  QSpinBox* batch_;
  QSpinBox* accum_;
  QSpinBox* processes_;  // data-parallel processes (hone-cli launch); not part of the run config
  QSpinBox* seq_;
  QSpinBox* rank_;
  QDoubleSpinBox* alpha_;
  QDoubleSpinBox* dropout_;
  QSpinBox* warmup_;
  QComboBox* schedule_;
  QSpinBox* save_every_;
  QDoubleSpinBox* eval_fraction_;
  QSpinBox* seed_;
  QCheckBox* checkpointing_;
  QCheckBox* mlp_recompute_;
  QComboBox* base_dtype_;  // run config base_dtype: auto | bf16 | f32
  QLabel* estimate_;
  // advisor
  QCheckBox* goal_prototype_;
  QCheckBox* goal_changing_;
  QCheckBox* goal_format_;
  QCheckBox* goal_volume_;
  QLabel* advice_;
  // run
  QPushButton* start_;
  QPushButton* pause_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  QPlainTextEdit* log_;
  QCustomPlot* loss_plot_;
  QCustomPlot* lr_plot_;
  QCustomPlot* grad_plot_;
  QCustomPlot* method_plot_;
  QMap<QString, QCPGraph*> method_graphs_;  // recipe metric name -> its graph
  double smooth_ = 0;
  bool have_smooth_ = false;
  bool model_ok_ = false;
  QString model_problem_ = "No model chosen.";
  bool wont_fit_ = false;
  bool name_edited_ = false;
  bool preset_demo_ = false;  // the form holds the demo's recipe
  void suggestName();
  bool isDemoModel() const;
  hone::ModelConfig model_cfg_;  // of the chosen model, when model_params_ > 0
  int64_t model_params_ = 0;
  int64_t model_layers_ = 0, model_hidden_ = 0, model_vocab_ = 0;
  double gemm_gflops_ = 0;  // measured on this machine in the background at start-up
  QPushButton* build_demo_ = nullptr;
  void buildDemoModel();
};

}  // namespace hone::ui
