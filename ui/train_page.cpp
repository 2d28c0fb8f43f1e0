// Train page. The form builds a run config (train/run_config.h) with workspace datasets named as
// "dataset:NAME"; TrainJob trains it on a worker thread and the plots follow its progress signals.
#include "train_page.h"

#include <unistd.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QThread>
#include <QAbstractSpinBox>
#include <QMessageBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QVBoxLayout>
#include <QCoreApplication>
#include <QDir>
#include <QSettings>
#include <QRegularExpression>
#include <QFutureWatcher>
#include <QProcess>
#include <QtConcurrent/QtConcurrent>
#include <cmath>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include "common/files.h"
#include "common/runtime.h"
#include "model/gemm_info.h"
#include "common/json_file.h"
#include "model/config.h"
#include "store/datasets.h"
#include "tokenizer/chat_template.h"
#include "train/run_config.h"
#include "train/memory_plan.h"

namespace hone::ui {
namespace {

struct MethodInfo {
  const char* key;
  const char* label;
};
constexpr MethodInfo kMethods[] = {{"lora", "LoRA (instruction tuning)"},
                                   {"qlora", "QLoRA, 4-bit NF4 base (instruction tuning)"},
                                   {"full", "Full fine-tuning (instruction tuning)"},
                                   {"cpt", "Continued pre-training (LoRA, raw text)"},
                                   {"dpo", "DPO (LoRA, preference pairs or labelled candidates)"},
                                   {"orpo", "ORPO (LoRA, preference pairs or labelled candidates)"},
                                   {"kto", "KTO (LoRA, thumbs-up/down ratings or pairs)"},
                                   {"reward", "Reward model (LoRA + score head, preference pairs)"},
                                   {"grpo", "GRPO (LoRA, rule rewards or a reward model; prompts from chat data)"},
                                   {"ppo", "PPO (LoRA + value head, rule rewards or a reward model; prompts from chat data)"}};

QString human_bytes(double b) {
  const char* u[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1024 && i < 4) b /= 1024, ++i;
  return QString::number(b, 'f', b < 10 ? 1 : 0) + " " + u[i];
}

QString human_time(double s) {
  if (s < 90) return QString::number(static_cast<int>(s)) + " s";
  if (s < 5400) return QString::number(static_cast<int>(s / 60)) + " min";
  return QString::number(s / 3600, 'f', 1) + " h";
}

QCustomPlot* make_plot(const QString& y_label, QWidget* parent) {
  auto* p = new QCustomPlot(parent);
  p->xAxis->setLabel("step");
  p->yAxis->setLabel(y_label);
  p->setMinimumHeight(180);
  return p;
}

}  // namespace

TrainPage::TrainPage(QWidget* parent) : QWidget(parent), job_(new TrainJob(this)) {
  auto* outer = new QHBoxLayout(this);
  auto* split = new QSplitter(Qt::Horizontal, this);
  outer->addWidget(split);

  // Left: the form, scrollable.
  auto* form_host = new QWidget;
  auto* left = new QVBoxLayout(form_host);
  auto* model_box = new QGroupBox("Base model");
  auto* mb = new QVBoxLayout(model_box);
  auto* mrow = new QHBoxLayout;
  model_ = new QLineEdit;
  model_->setPlaceholderText("folder with config.json, *.safetensors and tokenizer files");
  model_->setToolTip("A Hugging Face model folder as downloaded from the hub (nothing is fetched).");
  auto* browse = new QPushButton("Browse…");
  mrow->addWidget(model_, 1);
  mrow->addWidget(browse);
  mb->addLayout(mrow);
  model_info_ = new QLabel("No model chosen.");
  model_info_->setWordWrap(true);
  model_info_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  mb->addWidget(model_info_);
  build_demo_ = new QPushButton("Build the demo model (about 4 minutes)");
  build_demo_->setToolTip("Runs hone-cli demo in this workspace: a small base model, its dataset and a first LoRA run, nothing downloaded.");
  mb->addWidget(build_demo_);
  connect(build_demo_, &QPushButton::clicked, this, &TrainPage::buildDemoModel);
  left->addWidget(model_box);

  auto* data_box = new QGroupBox("Datasets (workspace)");
  auto* db = new QVBoxLayout(data_box);
  datasets_ = new QListWidget;
  datasets_->setMaximumHeight(110);
  datasets_->setToolTip("Tick the datasets to train on; import more on the Datasets page or with hone-cli dataset import.");
  db->addWidget(datasets_);
  left->addWidget(data_box);

  auto* hp_box = new QGroupBox("Method and hyper-parameters");
  auto* form = new QFormLayout(hp_box);
  method_ = new QComboBox;
  auto* mm = new QStandardItemModel(method_);
  for (const auto& m : kMethods) {
    auto* it = new QStandardItem(m.label);
    it->setData(m.key, Qt::UserRole);
    mm->appendRow(it);
  }
  method_->setModel(mm);
  // Long method names must not widen the form past its scroll area (Browse was clipped).
  method_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  method_->setMinimumContentsLength(18);
  method_->setToolTip("Training method. Greyed-out entries say why in their tooltip.");
  form->addRow("Method", method_);
  name_ = new QLineEdit;
  name_->setToolTip("Run name (suggested from the data and method until you type one); the run's folder is "
                    "runs/<name>-<date-time> in the workspace.");
  connect(name_, &QLineEdit::textEdited, this, [this] { name_edited_ = !name_->text().trimmed().isEmpty(); });
  form->addRow("Run name", name_);
  auto dspin = [](double lo, double hi, int dec, double step, const QString& tip) {
    auto* s = new QDoubleSpinBox;
    s->setRange(lo, hi);
    s->setDecimals(dec);
    s->setSingleStep(step);
    s->setToolTip(tip);
    return s;
  };
  auto ispin = [](int lo, int hi, const QString& tip) {
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setToolTip(tip);
    return s;
  };
  lr_ = dspin(1e-7, 1.0, 7, 1e-5, "Peak learning rate (AdamW). LoRA: ~2e-4; QLoRA: ~2e-4; full fine-tuning: ~2e-5.");
  steps_ = ispin(0, 10000000, "Optimizer steps; 0 trains for the number of epochs instead.");
  epochs_ = dspin(0.01, 100, 2, 0.5, "Passes over the training data (used when max steps is 0).");
  batch_ = ispin(1, 4096, "Sequences per micro-batch. Memory grows with batch x sequence length.");
  accum_ = ispin(1, 1024, "Micro-batches per optimizer step: effective batch = batch x accumulation.");
  processes_ = ispin(1, std::max(1, QThread::idealThreadCount()),
                     "Data-parallel processes on this machine (hone-cli launch, docs/scale-out.md). Each process holds "
                     "its own copy of the model and takes batch-size rows of every step, so a step sees batch x "
                     "processes rows and the threads are shared among them. Pause is not available with more than one; "
                     "Cancel still keeps a checkpoint. Resume a run with the same number.");
  processes_->setValue(1);
  seq_ = ispin(8, 131072, "Longest sequence in tokens; longer examples are cut.");
  rank_ = ispin(1, 1024, "LoRA rank r: adapter size; 8-64 is typical.");
  alpha_ = dspin(0.1, 4096, 1, 1, "LoRA alpha: the update is scaled by alpha / r.");
  dropout_ = dspin(0, 0.9, 2, 0.05, "Dropout on the LoRA branch.");
  warmup_ = ispin(0, 1000000, "Steps of linear warm-up before the schedule.");
  schedule_ = new QComboBox;
  schedule_->addItems({"cosine", "linear", "constant"});
  schedule_->setToolTip("Learning-rate schedule after warm-up.");
  save_every_ = ispin(0, 1000000, "Write a checkpoint every N steps (0: only at the end); needed to resume.");
  eval_fraction_ = dspin(0, 0.5, 3, 0.01, "Share of the training rows held out for evaluation loss and perplexity.");
  seed_ = ispin(0, 1 << 30, "Random seed: same seed and data give the same run on the CPU.");
  checkpointing_ = new QCheckBox("Gradient checkpointing");
  checkpointing_->setToolTip("Recompute each layer in the backward pass: much less activation memory, ~30% slower.");
  mlp_recompute_ = new QCheckBox("Recompute the MLP's up projection");
  mlp_recompute_->setObjectName("mlpRecompute");
  mlp_recompute_->setToolTip("Keep one [tokens, ffn] tensor less per layer by running the up projection again in backward:\n"
                             "about 10% less peak memory on Qwen2.5-0.5B at 512 tokens, 5-15% slower. Exact.");
  beta_ = dspin(0, 10, 3, 0.05, "DPO/KTO: strength of the pull toward the reference model (TRL's beta; 0.1 is usual). "
                                "ORPO: weight of the odds-ratio term (lambda). GRPO: weight of the per-token KL to the "
                                "reference (0 drops it).");
  loss_type_ = new QComboBox;
  loss_type_->addItems({"sigmoid", "ipo", "hinge", "robust"});
  loss_type_->setToolTip("DPO loss: sigmoid (the paper's), ipo (squared, resists overfitting), hinge (SLiC), robust (noisy labels).");
  form->addRow("Learning rate", lr_);
  beta_label_ = new QLabel("Beta");
  loss_type_label_ = new QLabel("DPO loss");
  form->addRow(beta_label_, beta_);
  form->addRow(loss_type_label_, loss_type_);
  // GRPO: what the completions are scored by, and how many are sampled per prompt.
  rewards_ = new QLineEdit(R"([{"type": "exact", "weight": 1.0}])");
  rewards_->setToolTip("Rule rewards as JSON, summed with their weights: exact (the row's answer), similarity (to it, 0..1), regex (\"pattern\"), "
                       "json (optional \"schema\"), length (\"min_chars\", \"max_chars\"). [] with a reward model only.");
  reward_model_ = new QLineEdit;
  reward_model_->setPlaceholderText("optional: a reward run's folder (recipe reward)");
  generations_ = ispin(1, 64, "Completions sampled per prompt: GRPO compares them within the group (at least 2); "
                              "PPO's critic is its baseline (1 is enough).");
  new_tokens_ = ispin(1, 4096, "Longest completion sampled, in tokens.");
  rl_rows_ = {new QLabel("Rewards"), new QLabel("Reward model"), new QLabel("Completions per prompt"), new QLabel("Max new tokens")};
  form->addRow(rl_rows_[0], rewards_);
  form->addRow(rl_rows_[1], reward_model_);
  form->addRow(rl_rows_[2], generations_);
  form->addRow(rl_rows_[3], new_tokens_);
  // PPO: its epochs over each batch of rollouts, and the KL coefficient's control.
  ppo_epochs_ = ispin(1, 64, "PPO: optimizer updates over each batch of rollouts (TRL's num_ppo_epochs).");
  kl_target_ = dspin(0, 1000, 2, 0.5, "PPO: adapt the KL coefficient towards this KL per completion; 0 keeps it fixed.");
  value_model_ = new QComboBox;
  value_model_->addItem("value head on the policy", "head");
  value_model_->addItem("critic adapter", "adapter");
  value_model_->setToolTip("PPO's critic: a LoRA adapter of its own on the shared base plus a value head (TRL's PPOv2), "
                           "or the value head alone on the policy's features (one forward pass cheaper per update).");
  ppo_rows_ = {new QLabel("Updates per batch"), new QLabel("Adaptive KL target"), new QLabel("Value model")};
  form->addRow(ppo_rows_[0], ppo_epochs_);
  form->addRow(ppo_rows_[1], kl_target_);
  form->addRow(ppo_rows_[2], value_model_);
  form->addRow("Max steps", steps_);
  form->addRow("Epochs", epochs_);
  form->addRow("Batch size", batch_);
  form->addRow("Grad accumulation", accum_);
  form->addRow("Processes", processes_);
  form->addRow("Max sequence length", seq_);
  form->addRow("LoRA rank", rank_);
  form->addRow("LoRA alpha", alpha_);
  form->addRow("LoRA dropout", dropout_);
  form->addRow("Warm-up steps", warmup_);
  form->addRow("Schedule", schedule_);
  form->addRow("Checkpoint every", save_every_);
  form->addRow("Eval fraction", eval_fraction_);
  form->addRow("Seed", seed_);
  form->addRow("", checkpointing_);
  form->addRow("", mlp_recompute_);
  base_dtype_ = new QComboBox;
  base_dtype_->addItem("auto", "auto");
  base_dtype_->addItem("bf16 (half the memory)", "bf16");
  base_dtype_->addItem("fp32 (exact)", "f32");
  base_dtype_->setToolTip("How the frozen base is stored for LoRA and QLoRA. bf16 halves it and runs its matrix products on "
                          "the CPU's bf16 unit with fp32 accumulation (about 2x faster on AVX512-BF16/AMX CPUs); auto picks "
                          "it there for bases over 256 MB.");
  form->addRow("Base weights", base_dtype_);
  auto* preset = new QPushButton("Reset to method defaults");
  preset->setToolTip("The defaults for this method (e.g. LoRA lr 2e-4, r 16, alpha 32; QLoRA r 64, alpha 16).");
  form->addRow("", preset);
  estimate_ = new QLabel;
  estimate_->setObjectName("estimate");
  estimate_->setWordWrap(true);
  estimate_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  form->addRow("Estimate", estimate_);
  left->addWidget(hp_box);

  auto* adv_box = new QGroupBox("Should you fine-tune? (advisor)");
  auto* ab = new QVBoxLayout(adv_box);
  goal_prototype_ = new QCheckBox("This is a prototype");
  goal_changing_ = new QCheckBox("The model must know facts that change often");
  goal_format_ = new QCheckBox("I need a consistent output format, persona or style");
  goal_volume_ = new QCheckBox("High volume, cost matters");
  for (auto* c : {goal_prototype_, goal_changing_, goal_format_, goal_volume_}) ab->addWidget(c);
  advice_ = new QLabel;
  advice_->setWordWrap(true);
  advice_->setObjectName("advice");
  ab->addWidget(advice_);
  left->addWidget(adv_box);
  left->addStretch(1);
  auto* scroll = new QScrollArea;
  scroll->setWidget(form_host);
  scroll->setWidgetResizable(true);
  scroll->setMinimumWidth(380);
  split->addWidget(scroll);

  // Right: controls, progress, plots, log.
  auto* right_host = new QWidget;
  auto* right = new QVBoxLayout(right_host);
  auto* buttons = new QHBoxLayout;
  start_ = new QPushButton("Start");
  start_->setShortcut(QKeySequence("Ctrl+Return"));
  start_->setToolTip("Start training (Ctrl+Enter)");
  pause_ = new QPushButton("Pause");
  cancel_ = new QPushButton("Cancel");
  cancel_->setToolTip("Stop after the current step; a checkpoint is written so the run can resume.");
  buttons->addWidget(start_);
  buttons->addWidget(pause_);
  buttons->addWidget(cancel_);
  buttons->addStretch(1);
  right->addLayout(buttons);
  progress_ = new QProgressBar;
  progress_->setFormat("%v / %m steps");
  right->addWidget(progress_);
  status_ = new QLabel("Idle.");
  status_->setObjectName("status");
  // Long messages wrap instead of widening the page (which clipped the form's Browse button).
  status_->setWordWrap(true);
  status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  right->addWidget(status_);
  auto* tabs = new QTabWidget;
  loss_plot_ = make_plot("loss", tabs);
  loss_plot_->addGraph();  // 0: raw training loss
  loss_plot_->graph(0)->setPen(QPen(QColor(160, 160, 160)));
  loss_plot_->graph(0)->setName("loss");
  loss_plot_->addGraph();  // 1: smoothed
  loss_plot_->graph(1)->setPen(QPen(QColor(31, 119, 180), 2));
  loss_plot_->graph(1)->setName("loss (smoothed)");
  loss_plot_->addGraph();  // 2: eval
  loss_plot_->graph(2)->setPen(QPen(QColor(214, 39, 40), 2));
  loss_plot_->graph(2)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
  loss_plot_->graph(2)->setName("eval loss");
  loss_plot_->legend->setVisible(true);
  // The legend sits in its own row under the plot, so it never hides the curves.
  loss_plot_->plotLayout()->addElement(1, 0, loss_plot_->legend);
  loss_plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  loss_plot_->plotLayout()->setRowStretchFactor(1, 0.001);
  lr_plot_ = make_plot("learning rate", tabs);
  lr_plot_->addGraph();
  grad_plot_ = make_plot("grad norm", tabs);
  grad_plot_->addGraph();
  tabs->addTab(loss_plot_, "Loss");
  tabs->addTab(lr_plot_, "Learning rate");
  tabs->addTab(grad_plot_, "Grad norm");
  // What the recipe reports beside the loss (DPO: reward margin and accuracy), one graph per name.
  method_plot_ = make_plot("method metrics", tabs);
  method_plot_->legend->setVisible(true);
  method_plot_->plotLayout()->addElement(1, 0, method_plot_->legend);
  method_plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  method_plot_->plotLayout()->setRowStretchFactor(1, 0.001);
  tabs->addTab(method_plot_, "Method metrics");
  right->addWidget(tabs, 3);
  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  right->addWidget(log_, 1);
  split->addWidget(right_host);
  split->setStretchFactor(1, 1);

  connect(browse, &QPushButton::clicked, this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, "Base model folder", model_->text());
    if (!d.isEmpty()) setModelFolder(d);
  });
  connect(model_, &QLineEdit::editingFinished, this, &TrainPage::updateModelSummary);
  connect(method_, &QComboBox::currentIndexChanged, this, &TrainPage::onMethodChanged);
  connect(preset, &QPushButton::clicked, this, &TrainPage::applyPreset);
  connect(datasets_, &QListWidget::itemChanged, this, [this] {
    updateAvailability();
    updateAdvisor();
    updateEstimate();
  });
  for (auto* c : {goal_prototype_, goal_changing_, goal_format_, goal_volume_})
    connect(c, &QCheckBox::toggled, this, &TrainPage::updateAdvisor);
  for (auto* s : {steps_, batch_, accum_, seq_, rank_, processes_})
    connect(s, &QSpinBox::valueChanged, this, &TrainPage::updateEstimate);
  connect(epochs_, &QDoubleSpinBox::valueChanged, this, &TrainPage::updateEstimate);
  connect(checkpointing_, &QCheckBox::toggled, this, &TrainPage::updateEstimate);
  connect(mlp_recompute_, &QCheckBox::toggled, this, &TrainPage::updateEstimate);
  connect(base_dtype_, &QComboBox::currentIndexChanged, this, &TrainPage::updateEstimate);
  connect(start_, &QPushButton::clicked, this, [this] { startTraining(true); });
  connect(name_, &QLineEdit::textChanged, this, [this] { setRunningUi(job_->running()); });
  // Only a focused field takes the mouse wheel (the app's wheel guard); Tab and clicks still focus.
  for (auto* w : findChildren<QAbstractSpinBox*>()) w->setFocusPolicy(Qt::StrongFocus);
  for (auto* w : findChildren<QComboBox*>()) w->setFocusPolicy(Qt::StrongFocus);
  connect(pause_, &QPushButton::clicked, this, [this] {
    if (job_->paused()) {
      job_->resume();
      pause_->setText("Pause");
      progress_->setFormat("%v / %m steps");
      status_->setText("Resumed.");
    } else {
      job_->pause();
      pause_->setText("Resume");
      progress_->setFormat("Paused at %v / %m steps");
      status_->setText("<b>Paused</b> (all state kept in memory; Resume continues, Cancel keeps a checkpoint).");
    }
  });
  connect(cancel_, &QPushButton::clicked, this, [this] {
    job_->cancel();
    status_->setText("Cancelling after the current step…");
  });
  connect(job_, &TrainJob::progress, this, &TrainPage::onProgress);
  connect(job_, &TrainJob::log, this, [this](const QString& s) { log_->appendPlainText(s); });
  connect(job_, &TrainJob::started, this, [this](qint64 id, const QString& dir) {
    log_->appendPlainText(QString("run %1 started in %2").arg(id).arg(dir));
  });
  connect(job_, &TrainJob::finished, this, &TrainPage::onFinished);
  applyPreset();
  setRunningUi(false);
  // The time estimate uses this machine's GEMM rate, measured once off the GUI thread.
  // (QtConcurrent's pool is waited for at exit, so the task never outlives the application.)
  auto* watcher = new QFutureWatcher<double>(this);
  connect(watcher, &QFutureWatcher<double>::finished, this, [this, watcher] {
    gemm_gflops_ = watcher->result();
    updateEstimate();
  });
  watcher->setFuture(QtConcurrent::run([] { return hone::measure_f32_gemm_gflops(512, 8); }));
}

void TrainPage::buildDemoModel() {
  if (workspace_.isEmpty() || job_->running()) return;
  auto* p = new QProcess(this);
  const QString cli = QDir(QCoreApplication::applicationDirPath()).filePath("hone-cli");
  p->setProcessChannelMode(QProcess::MergedChannels);
  connect(p, &QProcess::readyRead, this, [this, p] {
    while (p->canReadLine()) log_->appendPlainText(QString::fromUtf8(p->readLine()).trimmed());
  });
  connect(p, &QProcess::finished, this, [this, p](int code) {
    build_demo_->setEnabled(true);
    start_->setEnabled(!job_->running());
    status_->setText(code == 0 ? "Demo model ready." : "Building the demo model failed (see the log).");
    if (code == 0) {
      build_demo_->setVisible(false);
      setModelFolder(QDir(workspace_).filePath("demo/skills-base"));
      refreshDatasets();
    }
    p->deleteLater();
  });
  build_demo_->setEnabled(false);
  start_->setEnabled(false);
  status_->setText("Building the demo model…");
  p->start(cli, {"demo", "--workspace", workspace_});
}

bool TrainPage::demoOffered() const { return !build_demo_->isHidden(); }

void TrainPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  datasets_->clear();
  // Offered until the workspace has the demo's model.
  build_demo_->setVisible(!QDir(QDir(dir).filePath("demo/skills-base")).exists());
  if (model_->text().isEmpty()) updateModelSummary();  // its hint depends on the demo being offered
  refreshDatasets();
}

void TrainPage::refreshDatasets() {
  // Ticks survive a refresh (the window refreshes when the workspace changes elsewhere).
  QStringList ticked;
  const bool first_fill = datasets_->count() == 0;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) ticked << datasets_->item(i)->data(Qt::UserRole).toString();
  datasets_->blockSignals(true);
  datasets_->clear();
  if (!workspace_.isEmpty()) {
    try {
      Workspace ws(workspace_.toStdString());
      for (const auto& d : list_datasets(ws)) {
        auto* it = new QListWidgetItem(QString("%1  (%2, %3 rows)").arg(QString::fromStdString(d.name), QString::fromStdString(d.kind)).arg(d.rows));
        it->setData(Qt::UserRole, QString::fromStdString(d.name));
        it->setData(Qt::UserRole + 1, QString::fromStdString(d.kind));
        it->setData(Qt::UserRole + 2, static_cast<qlonglong>(d.rows));
        it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
        it->setCheckState(Qt::Unchecked);
        datasets_->addItem(it);
      }
    } catch (const std::exception& e) {
      log_->appendPlainText(QString("cannot read the workspace: ") + e.what());
    }
  }
  // The demo workspace: its dataset is ticked so that Start works at once.
  if (first_fill) ticked << "demo-skills";
  for (int i = 0; i < datasets_->count(); ++i)
    if (ticked.contains(datasets_->item(i)->data(Qt::UserRole).toString())) datasets_->item(i)->setCheckState(Qt::Checked);
  datasets_->blockSignals(false);
  updateAvailability();
  updateAdvisor();
  updateEstimate();
}

void TrainPage::selectDataset(const QString& name, bool on) {
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->data(Qt::UserRole).toString() == name) datasets_->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
}

void TrainPage::selectOnlyDataset(const QString& name) {
  datasets_->blockSignals(true);
  for (int i = 0; i < datasets_->count(); ++i)
    datasets_->item(i)->setCheckState(datasets_->item(i)->data(Qt::UserRole).toString() == name ? Qt::Checked : Qt::Unchecked);
  datasets_->blockSignals(false);
  updateAvailability();
  updateAdvisor();
  updateEstimate();
}

void TrainPage::setMaxSteps(int steps) { steps_->setValue(steps); }
void TrainPage::setProcesses(int n) { processes_->setValue(n); }
bool TrainPage::pauseEnabled() const { return pause_->isEnabled(); }

void TrainPage::setModelFolder(const QString& dir) {
  model_->setText(dir);
  updateModelSummary();
}

void TrainPage::updateModelSummary() {
  model_params_ = 0;
  model_ok_ = false;
  const std::string dir = model_->text().toStdString();
  auto refuse = [this](const QString& why) {
    model_problem_ = why;
    model_info_->setText(QString("<span style='color:#c0392b'>%1</span>").arg(why.toHtmlEscaped()));
    setRunningUi(job_->running());
  };
  if (dir.empty()) {
    // First launch: say what to do, the demo being the way to try Hone without a download.
    model_info_->setText(build_demo_->isHidden() ? "No model chosen."
                                                 : "No model chosen. Choose a Hugging Face model folder, or build the demo "
                                                   "model below to try Hone (nothing is downloaded).");
    model_problem_ = "No model chosen.";
    setRunningUi(job_->running());
    return;
  }
  // What training will need, checked before Start is offered: config, weights and a tokenizer.
  const QDir d(model_->text());
  if (!d.exists()) return refuse("Not a folder: " + model_->text());
  if (!d.exists("config.json")) return refuse("No config.json in " + model_->text() + ": not a Hugging Face model folder.");
  if (d.entryList({"*.safetensors"}, QDir::Files).isEmpty())
    return refuse("No *.safetensors weights in " + model_->text() + " (only safetensors are read; .bin pickles are not).");
  if (!d.exists("tokenizer.json") && !d.exists("tokenizer.model"))
    return refuse("No tokenizer.json or tokenizer.model in " + model_->text() + ".");
  try {
    // Only config.json and tokenizer_config.json are read: quick on the GUI thread.
    auto cfg = parse_model_config(read_json_file(join_path(dir, "config.json")), join_path(dir, "config.json"));
    model_cfg_ = cfg;
    model_params_ = cfg.parameter_count();
    model_layers_ = cfg.num_layers;
    model_hidden_ = cfg.hidden_size;
    model_vocab_ = cfg.vocab_size;
    QString tmpl = "none";
    const std::string tc = join_path(dir, "tokenizer_config.json");
    if (file_exists(tc)) {
      auto j = read_json_file(tc);
      if (j.contains("chat_template") && j["chat_template"].is_string())
        tmpl = QString("its own (%1-like)").arg(chat_format_name(detect_chat_format(j["chat_template"].get<std::string>())));
    }
    model_info_->setText(QString("%1 · %2 parameters · %3 layers · hidden %4 · %5 heads (%6 kv) · vocab %7 · chat template %8")
                             .arg(QString::fromStdString(cfg.model_type))
                             .arg(model_params_ >= 1e9 ? QString::number(model_params_ / 1e9, 'f', 2) + "B"
                                                       : QString::number(model_params_ / 1e6, 'f', 1) + "M")
                             .arg(cfg.num_layers)
                             .arg(cfg.hidden_size)
                             .arg(cfg.num_heads)
                             .arg(cfg.num_kv_heads)
                             .arg(cfg.vocab_size)
                             .arg(tmpl));
  } catch (const std::exception& e) {
    QString why = QString::fromUtf8(e.what());
    if (why.contains("parse_error")) why = "config.json is not valid JSON (" + why.section("]", 1).trimmed() + ")";
    return refuse("Cannot use this model: " + why);
  }
  model_ok_ = true;
  model_problem_.clear();
  QSettings().setValue("train/model", model_->text());
  setRunningUi(job_->running());
  // The form keeps the user's values; only moving onto or off the demo's model swaps the recipe.
  if (isDemoModel() != preset_demo_) applyPreset();
  updateEstimate();
}

bool TrainPage::isDemoModel() const {
  if (workspace_.isEmpty() || model_->text().isEmpty()) return false;
  const QString demo = QDir(QDir(workspace_).filePath("demo/skills-base")).canonicalPath();
  return !demo.isEmpty() && QDir(model_->text()).canonicalPath() == demo;
}

QString TrainPage::runName() const { return name_->text().trimmed(); }

void TrainPage::suggestName() {
  if (name_edited_) return;
  QStringList data;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) data << datasets_->item(i)->data(Qt::UserRole).toString();
  const QString key = method_->currentData(Qt::UserRole).toString();
  QString n = (data.isEmpty() ? QString("run") : data.size() > 1 ? data.first() + "-and-more" : data.first()) + "-" + key;
  n.replace(QRegularExpression("[^A-Za-z0-9_.-]"), "-");
  name_->setText(n);
}

void TrainPage::setPreferenceSettings(double beta, const QString& loss_type) {
  beta_->setValue(beta);
  loss_type_->setCurrentText(loss_type);
}

void TrainPage::onMethodChanged() {
  applyPreset();
  suggestName();
  updateEstimate();
}

void TrainPage::applyPreset() {
  const QString key = method_->currentData(Qt::UserRole).toString();
  const std::string m = key == "qlora" || key == "full" ? key.toStdString() : "lora";
  RunConfig d = default_run_config(m == "lora" || m == "qlora" || m == "full" ? m : "lora");
  // Preference alignment moves a tuned model a little: LoRA runs use 5e-5 (SFT's 2e-4 overshoots).
  const bool preference = key == "dpo" || key == "orpo" || key == "kto";
  if (preference) d.lr = 5e-5;
  // A reward model's score head starts from scratch: SFT-like rates (TRL's LoRA examples use 1e-4).
  if (key == "reward") d.lr = 1e-4;
  // GRPO: small steps on a policy that already answers sometimes; no KL by default (TRL's too).
  if (key == "grpo") d.lr = 1e-5, d.beta = 0.0, d.batch_size = 4;
  // PPO: the same small steps, several of them per batch, held near the reference by a KL term.
  if (key == "ppo") d.lr = 1e-5, d.beta = 0.05, d.batch_size = 8, d.num_generations = 2;
  const bool rl = key == "grpo" || key == "ppo";
  // The demo's base is tiny and trained from scratch: its own recipe (hone-cli demo) converges in
  // minutes where the general presets look noisy and slow.
  preset_demo_ = isDemoModel();
  if (preset_demo_) {
    d.max_seq_len = 96;
    d.warmup_steps = 10;
    d.lora.dropout = 0.0;
    d.schedule = "cosine";
    if (preference || key == "reward") d.lr = 2e-3, d.batch_size = 8, d.max_steps = key == "reward" ? 200 : 500;
    // As hone-cli demo --method grpo|ppo runs them (after its supervised warm-up).
    else if (key == "grpo") d.lr = 5e-4, d.max_steps = 300, d.num_generations = 8, d.max_new_tokens = 12, d.schedule = "constant";
    else if (key == "ppo") d.lr = 2e-4, d.max_steps = 400, d.max_new_tokens = 12, d.schedule = "constant";
    else d.lr = key == "full" ? 5e-4 : 3e-3, d.batch_size = 16, d.max_steps = 800;
  }
  beta_->setValue(key == "orpo" ? 0.1 : d.beta);
  loss_type_->setCurrentText(QString::fromStdString(d.loss_type));
  beta_->setVisible(preference || rl);
  beta_label_->setVisible(preference || rl);
  generations_->setMinimum(key == "grpo" ? 2 : 1);
  generations_->setValue(static_cast<int>(d.num_generations));
  new_tokens_->setValue(static_cast<int>(d.max_new_tokens));
  for (QWidget* w : {static_cast<QWidget*>(rewards_), static_cast<QWidget*>(reward_model_),
                     static_cast<QWidget*>(generations_), static_cast<QWidget*>(new_tokens_)})
    w->setVisible(rl);
  for (QLabel* l : rl_rows_) l->setVisible(rl);
  ppo_epochs_->setValue(static_cast<int>(d.ppo_epochs));
  kl_target_->setValue(d.kl_target);
  value_model_->setCurrentIndex(std::max(0, value_model_->findData(QString::fromStdString(d.value_model))));
  ppo_epochs_->setVisible(key == "ppo");
  kl_target_->setVisible(key == "ppo");
  value_model_->setVisible(key == "ppo");
  for (QLabel* l : ppo_rows_) l->setVisible(key == "ppo");
  loss_type_->setVisible(key == "dpo");
  loss_type_label_->setVisible(key == "dpo");
  beta_label_->setText(key == "orpo" ? "Lambda (odds ratio)" : rl ? "KL coefficient (beta)" : "Beta");
  lr_->setValue(d.lr);
  steps_->setValue(static_cast<int>(d.max_steps));
  epochs_->setValue(d.epochs);
  batch_->setValue(static_cast<int>(d.batch_size));
  accum_->setValue(static_cast<int>(d.grad_accum));
  seq_->setValue(static_cast<int>(d.max_seq_len));
  rank_->setValue(static_cast<int>(d.lora.r));
  alpha_->setValue(d.lora.alpha);
  dropout_->setValue(d.lora.dropout);
  warmup_->setValue(static_cast<int>(d.warmup_steps));
  schedule_->setCurrentText(QString::fromStdString(d.schedule));
  save_every_->setValue(static_cast<int>(d.save_every));
  eval_fraction_->setValue(d.eval_fraction);
  seed_->setValue(static_cast<int>(d.seed));
  const bool lora = key != "full";
  rank_->setEnabled(lora);
  alpha_->setEnabled(lora);
  dropout_->setEnabled(lora);
  base_dtype_->setEnabled(lora);  // full training keeps every weight in fp32
}

void TrainPage::updateAvailability() {
  bool chat = false, text = false, pref = false, any = false;
  for (int i = 0; i < datasets_->count(); ++i) {
    auto* it = datasets_->item(i);
    if (it->checkState() != Qt::Checked) continue;
    any = true;
    const QString k = it->data(Qt::UserRole + 1).toString();
    chat |= k == "chat";
    text |= k == "text";
    pref |= k == "preference" || k == "candidates";
  }
  auto* mm = static_cast<QStandardItemModel*>(method_->model());
  for (int r = 0; r < mm->rowCount(); ++r) {
    auto* it = mm->item(r);
    const QString key = it->data(Qt::UserRole).toString();
    QString why;
    const bool preference = key == "dpo" || key == "orpo" || key == "kto" || key == "reward";
    if ((key == "grpo" || key == "ppo") && any && !chat)
      why = QString(key == "grpo" ? "GRPO" : "PPO") + " takes its prompts (and reference answers) from an instruction or chat dataset.";
    else if (key == "grpo" || key == "ppo")
      why.clear();
    else if (preference && (!any || !pref || chat || text))
      why = QString(key == "reward" ? "A reward model learns" : "Preference alignment needs") +
            " from preference pairs only: a dataset of prompt/chosen/rejected rows, or candidates labelled on the Label page.";
    else if (preference)
      why.clear();
    else if (key == "cpt" && any && !text)
      why = "Continued pre-training needs a raw-text dataset.";
    else if (key != "cpt" && !preference && any && !chat)
      why = "Instruction tuning needs an instruction or chat dataset.";
    else if (!preference && key != "cpt" && any && pref)
      why = "Preference data trains DPO, ORPO, KTO or a reward model; untick it for instruction tuning.";
    it->setEnabled(why.isEmpty());
    it->setToolTip(why.isEmpty() ? QString() : why);
  }
  // A preference dataset ticked: a preference method is what the user is after.
  if (pref && !chat && !text && !mm->item(method_->currentIndex())->data(Qt::UserRole).toString().contains(QRegularExpression("^(dpo|orpo|kto|reward)$")))
    selectMethod("dpo");
  suggestName();
  // Keep the selection on an enabled method.
  if (!mm->item(method_->currentIndex())->isEnabled())
    for (int r = 0; r < mm->rowCount(); ++r)
      if (mm->item(r)->isEnabled()) {
        method_->setCurrentIndex(r);
        break;
      }
}

bool TrainPage::selectMethod(const QString& key) {
  auto* mm = static_cast<QStandardItemModel*>(method_->model());
  for (int r = 0; r < mm->rowCount(); ++r)
    if (mm->item(r)->data(Qt::UserRole).toString() == key && mm->item(r)->isEnabled()) {
      method_->setCurrentIndex(r);
      return true;
    }
  return false;
}

bool TrainPage::methodEnabled(const QString& key) const {
  auto* mm = static_cast<QStandardItemModel*>(method_->model());
  for (int r = 0; r < mm->rowCount(); ++r)
    if (mm->item(r)->data(Qt::UserRole).toString() == key) return mm->item(r)->isEnabled();
  return false;
}

void TrainPage::updateEstimate() {
  wont_fit_ = false;
  if (model_params_ <= 0) {
    estimate_->setText("Choose a model for a memory and time estimate.");
    return;
  }
  const QString key = method_->currentData(Qt::UserRole).toString();
  const bool full = key == "full";
  const double P = static_cast<double>(model_params_);
  // Memory: the core's plan (train/memory_plan.h), the one `hone-cli train --dry-run` prints.
  const bool recipe_key = key == "cpt" || key == "dpo" || key == "orpo" || key == "kto" || key == "reward" || key == "grpo" || key == "ppo";
  RunConfig rc = default_run_config(recipe_key ? "lora" : key.toStdString());
  rc.recipe = recipe_key ? key.toStdString() : "sft";
  rc.batch_size = batch_->value();
  rc.max_seq_len = seq_->value();
  rc.gradient_checkpointing = checkpointing_->isChecked();
  rc.mlp_recompute = mlp_recompute_->isChecked();
  rc.lora.r = rank_->value();
  rc.num_generations = generations_->value();
  rc.base_dtype = full ? "f32" : base_dtype_->currentData().toString().toStdString();
  rc.device = QSettings().value("settings/device", "auto").toString() == "cuda" ? "cuda" : "cpu";
  const double ram = physical_memory_bytes();
  MemoryPlan plan;
  try {
    plan = plan_memory(model_cfg_, rc, processes_->value(), ram);
  } catch (const std::exception& e) {
    estimate_->setText(QString("<span style='color:#c0392b'>%1</span>").arg(QString::fromStdString(e.what()).toHtmlEscaped()));
    return;
  }
  const double tokens = static_cast<double>(batch_->value()) * seq_->value() * (key == "dpo" || key == "orpo" || key == "kto" || key == "reward" ? 2 : 1);
  const double procs = processes_->value();
  // Time: (4 or 6) x params FLOPs per token at 60% of this machine's measured GEMM rate (training
  // reaches 55-80% of it here; until the measurement arrives, 40 GFLOP/s per core).
  const double flops_per_token = (full ? 6 : 4) * P + (key == "dpo" || key == "kto" ? 2 * P : 0);  // + reference forward
  const double steps = steps_->value() > 0 ? steps_->value() : 0;
  const double rate = gemm_gflops_ > 0 ? 0.6 * gemm_gflops_ * 1e9 : 40e9 * std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  const double secs = steps * accum_->value() * tokens * procs * flops_per_token / rate;
  QString s = QString::fromStdString(plan.summary()) + " of " + human_bytes(ram) + " RAM";
  if (steps > 0) s += QString("; about %1 for %2 steps at full sequence length").arg(human_time(secs)).arg(steps);
  wont_fit_ = plan.total > 0.85 * ram;
  if (wont_fit_) {
    QStringList fixes;
    for (const auto& f : plan.fixes) fixes << QString::fromStdString(f).toHtmlEscaped();
    s = "<b style='color:#c0392b'>Will not fit in memory.</b> " + s + "<br>Would fit or help: " + fixes.join("; ") + ".";
  }
  estimate_->setText(s);
}

void TrainPage::updateAdvisor() {
  int64_t n = 0;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) n += datasets_->item(i)->data(Qt::UserRole + 2).toLongLong();
  QStringList why;
  QString rec;
  if (goal_changing_->isChecked()) {
    rec = "Use retrieval (RAG), not fine-tuning";
    why << "facts that change often belong in a search index the model reads at answer time; a fine-tuned model would need retraining with every change";
  } else if (goal_prototype_->isChecked()) {
    rec = "Start with prompt engineering";
    why << "for a prototype, a good prompt with a few examples is faster to iterate than training runs";
  } else if (n < 100) {
    rec = "Use few-shot prompting";
    why << QString("%1 examples are too few to fine-tune on; put the best of them in the prompt").arg(n);
  } else if (n < 500) {
    rec = "Fine-tuning may help; collect more data";
    why << QString("%1 examples: results are usually unstable below about 500 good examples").arg(n);
  } else {
    rec = "Fine-tuning is likely worth it";
    why << QString("%1 examples: enough for fine-tuning to pay off if they are good").arg(n);
  }
  if (goal_format_->isChecked())
    why << "a consistent format, persona or style is what fine-tuning does best";
  if (goal_volume_->isChecked())
    why << "at high volume, fine-tuning a smaller model to do this one task usually costs less than prompting a large one";
  advice_->setText(QString("<b>%1.</b><br>Why: %2.").arg(rec, why.join("; ")));
}

QString TrainPage::advice() const { return advice_->text(); }

QString TrainPage::configJson() const {
  const QString key = method_->currentData(Qt::UserRole).toString();
  const bool recipe_key =
      key == "cpt" || key == "dpo" || key == "orpo" || key == "kto" || key == "reward" || key == "grpo" || key == "ppo";
  const std::string method = recipe_key ? "lora" : key.toStdString();
  nlohmann::json j;
  j["name"] = name_->text().trimmed().isEmpty() ? "run" : name_->text().trimmed().toStdString();
  j["base_model"] = model_->text().toStdString();
  j["method"] = method;
  j["recipe"] = recipe_key ? key.toStdString() : "sft";
  nlohmann::json data = nlohmann::json::array();
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked)
      data.push_back("dataset:" + datasets_->item(i)->data(Qt::UserRole).toString().toStdString());
  j["train_data"] = data;
  j["lr"] = lr_->value();
  j["max_steps"] = steps_->value();
  j["epochs"] = epochs_->value();
  j["batch_size"] = batch_->value();
  j["grad_accum"] = accum_->value();
  j["max_seq_len"] = seq_->value();
  j["warmup_steps"] = warmup_->value();
  j["schedule"] = schedule_->currentText().toStdString();
  j["save_every"] = save_every_->value();
  j["eval_fraction"] = eval_fraction_->value();
  j["seed"] = seed_->value();
  j["gradient_checkpointing"] = checkpointing_->isChecked();
  j["mlp_recompute"] = mlp_recompute_->isChecked();
  if (method != "full") j["base_dtype"] = base_dtype_->currentData().toString().toStdString();
  j["device"] = QSettings().value("settings/device", "auto").toString().toStdString();
  if (key == "dpo" || key == "orpo" || key == "kto" || key == "grpo" || key == "ppo") j["beta"] = beta_->value();
  if (key == "grpo" || key == "ppo") {
    try {
      j["rewards"] = nlohmann::json::parse(rewards_->text().toStdString());
    } catch (const std::exception&) {
      j["rewards"] = rewards_->text().toStdString();  // the run config's check names the mistake
    }
    if (!reward_model_->text().trimmed().isEmpty()) j["reward_model"] = reward_model_->text().trimmed().toStdString();
    j["num_generations"] = generations_->value();
    j["max_new_tokens"] = new_tokens_->value();
  }
  if (key == "ppo") {
    j["ppo_epochs"] = ppo_epochs_->value();
    j["kl_target"] = kl_target_->value();
    j["value_model"] = value_model_->currentData().toString().toStdString();
  }
  if (key == "dpo") j["loss_type"] = loss_type_->currentText().toStdString();
  if (method != "full") j["lora"] = {{"r", rank_->value()}, {"alpha", alpha_->value()}, {"dropout", dropout_->value()}};
  return QString::fromStdString(j.dump(2));
}

bool TrainPage::startTraining(bool ask) {
  if (!model_ok_) {
    status_->setText("Cannot start: " + model_problem_);
    return false;
  }
  if (ask && wont_fit_ &&
      QMessageBox::question(this, "Not enough memory",
                            "The estimate says this run will not fit in this machine's memory:\n\n" +
                                estimate_->text().remove(QRegularExpression("<[^>]*>")) +
                                "\n\nStart anyway? The system may start swapping or end the run.") != QMessageBox::Yes)
    return false;
  if (workspace_.isEmpty()) {
    status_->setText("Open a workspace first (File > Open Workspace).");
    return false;
  }
  bool any = false;
  for (int i = 0; i < datasets_->count(); ++i) any |= datasets_->item(i)->checkState() == Qt::Checked;
  if (!any) {
    status_->setText("Tick at least one dataset.");
    return false;
  }
  QString err;
  if (!job_->start(workspace_, configJson(), 0, &err, processes_->value())) {
    status_->setText("Cannot start: " + err);
    return false;
  }
  resetRunView();
  return true;
}

bool TrainPage::resumeRun(qint64 run_id) {
  QString err;
  if (!job_->start(workspace_, QString(), run_id, &err, processes_->value())) {
    status_->setText("Cannot resume: " + err);
    return false;
  }
  resetRunView();
  log_->appendPlainText(QString("resuming run %1 from its newest checkpoint").arg(run_id));
  return true;
}

void TrainPage::resetRunView() {
  for (auto* p : {loss_plot_, lr_plot_, grad_plot_})
    for (int g = 0; g < p->graphCount(); ++g) p->graph(g)->data()->clear();
  method_plot_->clearGraphs();
  method_graphs_.clear();
  have_smooth_ = false;
  log_->clear();
  status_->setText("Preparing data…");
  setRunningUi(true);
}

void TrainPage::onProgress(const StepMetrics& p) {
  progress_->setMaximum(static_cast<int>(p.total_steps));
  progress_->setValue(static_cast<int>(p.step));
  const double loss = p.loss();
  smooth_ = have_smooth_ ? 0.9 * smooth_ + 0.1 * loss : loss;
  have_smooth_ = true;
  loss_plot_->graph(0)->addData(p.step, loss);
  loss_plot_->graph(1)->addData(p.step, smooth_);
  if (p.has_eval()) loss_plot_->graph(2)->addData(p.step, p.get("eval_loss"));
  lr_plot_->graph(0)->addData(p.step, p.get("lr"));
  grad_plot_->graph(0)->addData(p.step, p.get("grad_norm"));
  static const QColor kColors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(148, 103, 189)};
  for (const auto& name : p.plot_hints) {
    if (!p.has(name)) continue;
    const QString n = QString::fromStdString(name);
    if (!method_graphs_.contains(n)) {
      // Shares (0..1, e.g. rewards/accuracies) on the right axis, so that they do not flatten margins.
      const bool share = n.endsWith("accuracies");
      if (share) {
        method_plot_->yAxis2->setVisible(true);
        method_plot_->yAxis2->setLabel("share");
      }
      auto* g = method_plot_->addGraph(method_plot_->xAxis, share ? method_plot_->yAxis2 : method_plot_->yAxis);
      g->setName(n);
      g->setPen(QPen(kColors[method_graphs_.size() % 4], 2));
      method_graphs_.insert(n, g);
    }
    method_graphs_[n]->addData(p.step, p.get(name));
  }
  for (auto* plot : {loss_plot_, lr_plot_, grad_plot_, method_plot_}) {
    plot->rescaleAxes();
    plot->replot(QCustomPlot::rpQueuedReplot);  // coalesces bursts of steps into one repaint
  }
  status_->setText(QString(job_->paused() ? "<b>Paused</b> · " : "") + QString("step %1/%2 · epoch %3 · loss %4 · %5 tokens/s · elapsed %6 · ETA %7 · RAM %8, peak %9")
                       .arg(p.step)
                       .arg(p.total_steps)
                       .arg(p.epoch, 0, 'f', 2)
                       .arg(loss, 0, 'f', 4)
                       .arg(p.get("tokens_per_s"), 0, 'f', 0)
                       .arg(human_time(p.get("elapsed_s")), human_time(p.eta_s), human_bytes(static_cast<double>(p.rss_bytes)))
                       .arg(human_bytes(static_cast<double>(std::max(p.peak_rss_bytes, p.rss_bytes)))));
}

void TrainPage::onFinished(const QString& status, const QString& error, const QString& output) {
  setRunningUi(false);
  progress_->setFormat("%v / %m steps");
  if (status == "failed" || status == "cancelled" || status == "interrupted") {
    // The run's curves stay on the Runs page; here the next run starts from a clean view.
    for (auto* p : {loss_plot_, lr_plot_, grad_plot_}) {
      for (int g = 0; g < p->graphCount(); ++g) p->graph(g)->data()->clear();
      p->replot();
    }
    method_plot_->clearGraphs();
    method_graphs_.clear();
    method_plot_->replot();
    progress_->setValue(0);
    progress_->setMaximum(1);
  }
  QString s = "Run " + status;
  if (!error.isEmpty()) s += ": " + error;
  if (!output.isEmpty()) s += " · output " + output;
  status_->setText(s);
  log_->appendPlainText(s);
  Q_EMIT runFinished(status);
}

bool TrainPage::startEnabled() const { return start_->isEnabled(); }

void TrainPage::setRunningUi(bool running) {
  start_->setEnabled(!running && model_ok_);
  start_->setToolTip(model_ok_ ? "Start training (Ctrl+Enter)" : model_problem_);
  pause_->setEnabled(running && job_->pausable());
  pause_->setToolTip(job_->pausable() ? QString() : "A run on several processes cannot pause; Cancel keeps a checkpoint.");
  cancel_->setEnabled(running);
  pause_->setText("Pause");
}

int TrainPage::lossPointCount() const { return loss_plot_->graph(0)->dataCount(); }
QStringList TrainPage::methodMetricNames() const { return method_graphs_.keys(); }
void TrainPage::showMethodMetrics() {
  if (auto* tabs = qobject_cast<QTabWidget*>(method_plot_->parentWidget() ? method_plot_->parentWidget()->parentWidget() : nullptr))
    tabs->setCurrentWidget(method_plot_);
}
QString TrainPage::statusText() const { return status_->text(); }
QString TrainPage::logText() const { return log_->toPlainText(); }

}  // namespace hone::ui
