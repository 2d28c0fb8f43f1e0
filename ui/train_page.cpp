// Train page (see train_page.h): composes the form, the estimate and the run view, and starts,
// pauses, cancels and resumes runs through TrainJob. Workspace datasets travel in the run config as
// "dataset:NAME".
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train_page.h"

#include <QDir>
#include <QHBoxLayout>
#include <QMessageBox>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollArea>
#include <QSplitter>
#include <QVBoxLayout>
#include <climits>
#include <cstdlib>
#include <map>

#include "common/error.h"
#include "job.h"
#include "run_view.h"
#include "runs/demo.h"
#include "runs/run_launcher.h"
#include "store/runs.h"
#include "train/recipes.h"
#include "train_estimate.h"
#include "train_form.h"

namespace hone::ui {

TrainPage::TrainPage(QWidget* parent)
    : QWidget(parent), job_(new TrainJob(this)), demo_job_(new Job("building the demo model", this)) {
  auto* outer = new QHBoxLayout(this);
  auto* split = new QSplitter(Qt::Horizontal, this);
  outer->addWidget(split);

  // Left: the form with its estimate and advisor, scrollable.
  auto* form_host = new QWidget;
  auto* left = new QVBoxLayout(form_host);
  form_ = new TrainForm;
  estimate_ = new TrainEstimate;
  left->addWidget(form_);
  left->addWidget(estimate_);
  left->addStretch(1);
  auto* scroll = new QScrollArea;
  scroll->setWidget(form_host);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // the form wraps long rows instead
  scroll->setMinimumWidth(400);
  split->addWidget(scroll);

  // Right: the controls over the run view.
  auto* right_host = new QWidget;
  auto* right = new QVBoxLayout(right_host);
  auto* buttons = new QHBoxLayout;
  start_ = new QPushButton("Start");
  start_->setShortcut(QKeySequence("Ctrl+Return"));
  start_->setToolTip("Start training (Ctrl+Enter)");
  pause_ = new QPushButton("Pause");
  cancel_ = new QPushButton("Cancel");
  cancel_->setToolTip("Stop after the current step; a checkpoint is written so the run can resume.");
  for (auto* b : {start_, pause_, cancel_}) buttons->addWidget(b);
  buttons->addStretch(1);
  right->addLayout(buttons);
  view_ = new RunView;
  right->addWidget(view_, 1);
  split->addWidget(right_host);
  split->setStretchFactor(1, 1);

  connect(form_, &TrainForm::changed, this, &TrainPage::updateEstimate);
  connect(form_, &TrainForm::changed, this, [this] {
    // A refusal to start ("Tick at least one dataset.") does not outlive the change that answers it.
    if (!job_->running() && !demo_job_->running() && refused_) {
      view_->setStatus("Ready.");
      refused_ = false;
    }
  });
  connect(estimate_, &TrainEstimate::goalsChanged, this, &TrainPage::updateEstimate);
  connect(form_->inputs(), &TrainInputs::modelChanged, this, [this] { setRunningUi(job_->running()); });
  connect(form_->inputs(), &TrainInputs::problem, view_, &RunView::appendLog);
  connect(form_->inputs(), &TrainInputs::buildDemoRequested, this, [this] { buildDemoModel(); });
  connect(start_, &QPushButton::clicked, this, [this] { startTraining(true); });
  connect(pause_, &QPushButton::clicked, this, [this] {
    const bool pausing = !job_->paused();
    if (pausing) job_->pause();
    else job_->resume();
    pause_->setText(pausing ? "Resume" : "Pause");
    view_->setPaused(pausing);
    view_->setStatus(pausing ? "<b>Paused</b> (all state kept in memory; Resume continues, Cancel keeps a checkpoint)." : "Resumed.");
  });
  connect(cancel_, &QPushButton::clicked, this, [this] {
    job_->cancel();
    view_->setStatus("Cancelling after the current step…");
  });
  connect(job_, &TrainJob::progress, this, [this](const StepMetrics& m) { view_->showStep(m, job_->paused()); });
  connect(job_, &TrainJob::log, view_, &RunView::appendLog);
  connect(job_, &TrainJob::started, this, [this](qint64 id, const QString& dir) {
    view_->appendLog(QString("run %1 started in %2").arg(id).arg(dir));
  });
  connect(job_, &TrainJob::finished, this, &TrainPage::onFinished);
  // The demo's base: the log follows its pre-training; then the form takes the model and its data.
  connect(demo_job_, &Job::progress, this, [this](qint64, qint64, const QString& line) { view_->appendLog(line); });
  connect(demo_job_, &Job::finished, this, [this](const QVariant& v) {
    if (v.toString().isEmpty()) {
      view_->setStatus("Building the demo model was cancelled.");
      return;
    }
    view_->setStatus("Demo model ready.");
    form_->inputs()->setWorkspace(workspace_);  // lists (and ticks) the demo's dataset
    setModelFolder(v.toString());
  });
  connect(demo_job_, &Job::failed, this, [this](const QString& e) { view_->setStatus("Building the demo model failed: " + e); });
  connect(demo_job_, &Job::stopped, this, [this] {
    view_->setBusy(false);
    form_->inputs()->setDemoBusy(false);
    setRunningUi(job_->running());
  });
  setRunningUi(false);
  updateEstimate();
}

void TrainPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  form_->inputs()->setWorkspace(dir);
}

void TrainPage::setModelFolder(const QString& dir) { form_->inputs()->setModelFolder(dir); }
QString TrainPage::modelFolder() const { return form_->inputs()->modelFolder(); }
void TrainPage::showNote(const QString& note) {
  if (!job_->running()) view_->setStatus(note.toHtmlEscaped());
}
void TrainPage::refreshDatasets() { form_->inputs()->refreshDatasets(); }
RunConfig TrainPage::config() const { return form_->config(); }
void TrainPage::setConfig(const RunConfig& c) { form_->setConfig(c); }
QString TrainPage::configJson() const { return QString::fromStdString(config().to_json().dump(2)); }

void TrainPage::updateEstimate() {
  estimate_->update(form_->config(), form_->inputs()->modelConfig(), form_->processes(), form_->inputs()->tickedRows());
}

void TrainPage::buildDemoModel(int64_t pretrain_steps) {
  if (workspace_.isEmpty() || job_->running() || demo_job_->running()) return;
  const std::string ws = workspace_.toStdString();
  form_->inputs()->setDemoBusy(true);
  start_->setEnabled(false);
  view_->reset("Building the demo model (pre-training a small base on synthetic text)…");
  view_->setBusy(true);
  demo_job_->start([ws, pretrain_steps](Job::Context& ctx) -> QVariant {
    DemoBaseOptions o;
    o.workspace = ws;
    o.pretrain_steps = pretrain_steps;
    DemoHooks h;
    h.log = [&ctx](const std::string& s) { ctx.progress(0, 0, QString::fromStdString(s)); };
    h.stop_requested = [&ctx] { return ctx.cancelled(); };
    DemoBase base;
    try {
      base = build_demo_base(o, h);
    } catch (const Interrupted&) {
      return QString();
    }
    Workspace w(ws);
    ensure_demo_dataset(w, DemoData::Skills, o.seed, base.rebuilt);
    ensure_demo_dataset(w, DemoData::Preferences, o.seed, base.rebuilt);
    ensure_demo_dataset(w, DemoData::SkillsTest, o.seed, base.rebuilt);
    ensure_demo_dataset(w, DemoData::SkillsChoice, o.seed, base.rebuilt);
    return QString::fromStdString(base.dir);
  });
}

bool TrainPage::startTraining(bool ask) {
  if (!form_->inputs()->modelUsable()) {
    refuse("Cannot start: " + form_->inputs()->modelProblem());
    return false;
  }
  if (ask && estimate_->wontFit() &&
      QMessageBox::question(this, "Not enough memory",
                            "The estimate says this run will not fit in this machine's memory:\n\n" +
                                estimate_->estimateText().remove(QRegularExpression("<[^>]*>")) +
                                "\n\nStart anyway? The system may start swapping or end the run.") != QMessageBox::Yes)
    return false;
  if (workspace_.isEmpty()) {
    refuse("Open a workspace first (File > Open Workspace).");
    return false;
  }
  if (form_->inputs()->tickedDatasets().isEmpty()) {
    refuse("Tick at least one dataset.");
    return false;
  }
  QString err;
  if (!job_->start(workspace_, form_->config(), &err, form_->processes())) {
    refuse("Cannot start: " + err);
    return false;
  }
  view_->reset("Preparing data…");
  setRunningUi(true);
  return true;
}

namespace {

// The steps a run recorded up to its newest checkpoint (where a resume continues), as the plots
// take them: its loss, learning rate, gradient norm, held-out loss and the recipe's own metrics.
std::vector<StepMetrics> recorded_steps(Workspace& ws, int64_t id, const RunConfig& cfg) {
  const std::string ck = last_checkpoint(ws, id);
  const size_t at = ck.rfind("step-");
  const int64_t upto = at == std::string::npos ? INT64_MAX : std::atoll(ck.c_str() + at + 5);
  std::map<int64_t, StepMetrics> by_step;
  std::vector<std::string> names = {"loss", "lr", "grad_norm", "eval_loss"};
  const RecipeInfo* r = find_recipe(cfg.recipe);
  if (r) names.insert(names.end(), r->plot_hints.begin(), r->plot_hints.end());
  for (const auto& name : names)
    for (const auto& p : run_metric(ws, id, name)) {
      if (p.step > upto) continue;
      StepMetrics& m = by_step[p.step];
      m.step = p.step;
      m.scalars.push_back({name, p.value});
      if (r) m.plot_hints = r->plot_hints;
    }
  std::vector<StepMetrics> out;
  for (auto& [step, m] : by_step)
    if (m.has("loss")) out.push_back(std::move(m));
  for (auto& m : out) m.total_steps = cfg.max_steps > 0 ? cfg.max_steps : out.back().step;
  return out;
}

}  // namespace

bool TrainPage::resumeRun(qint64 run_id) {
  // The form shows the run's own settings (what the resumed run trains with) and the plots its
  // curve so far.
  std::vector<StepMetrics> history;
  try {
    Workspace ws(workspace_.toStdString());
    const RunConfig cfg = recorded_run_config(ws, run_id);
    form_->setConfig(cfg);
    history = recorded_steps(ws, run_id, cfg);
  } catch (const std::exception& e) {
    view_->setStatus(QString("Cannot resume: ") + e.what());
    return false;
  }
  QString err;
  if (!job_->resume(workspace_, run_id, &err, form_->processes())) {
    view_->setStatus("Cannot resume: " + err);
    return false;
  }
  view_->reset("Preparing data…");
  view_->showHistory(history);
  setRunningUi(true);
  view_->appendLog(QString("resuming run %1 from its newest checkpoint").arg(run_id));
  return true;
}

void TrainPage::refuse(const QString& why) {
  view_->setStatus(why);
  refused_ = true;
}

void TrainPage::onFinished(const QString& status, const QString& error, const QString& output) {
  setRunningUi(false);
  view_->showFinished(status, error, output);
  Q_EMIT runFinished(status);
}

void TrainPage::setRunningUi(bool running) {
  const bool ok = form_->inputs()->modelUsable() && !demo_job_->running();
  start_->setEnabled(!running && ok);
  start_->setToolTip(ok ? "Start training (Ctrl+Enter)" : form_->inputs()->modelProblem());
  pause_->setEnabled(running && job_->pausable());
  pause_->setToolTip(job_->pausable() ? QString() : "This run cannot pause; Cancel keeps a checkpoint.");
  cancel_->setEnabled(running);
  pause_->setText("Pause");
}

bool TrainPage::selectMethod(const QString& key) {
  if (find_method(key.toStdString())) return form_->selectRecipe("sft") && form_->selectMethod(key);
  // A recipe, with LoRA (which every recipe trains with): the method first, so that the recipe is offered.
  if (!find_recipe(key.toStdString()) || !form_->selectMethod("lora")) return false;
  return form_->selectRecipe(key);
}

bool TrainPage::methodEnabled(const QString& key) const {
  const RecipeInfo& sft = recipe_info("sft");
  if (find_method(key.toStdString())) return form_->dataProblem(sft).isEmpty() && sft.allows(key.toStdString());
  const RecipeInfo* r = find_recipe(key.toStdString());
  return r && form_->dataProblem(*r).isEmpty();
}

bool TrainPage::modelUsable() const { return form_->inputs()->modelUsable(); }
bool TrainPage::demoOffered() const { return form_->inputs()->demoOffered(); }
QString TrainPage::modelProblem() const { return form_->inputs()->modelProblem(); }
bool TrainPage::startEnabled() const { return start_->isEnabled(); }
QString TrainPage::runName() const { return form_->runName(); }
void TrainPage::selectDataset(const QString& name, bool on) { form_->inputs()->selectDataset(name, on); }
void TrainPage::selectOnlyDataset(const QString& name) { form_->inputs()->selectOnlyDataset(name); }
void TrainPage::setMaxSteps(int steps) { form_->setMaxSteps(steps); }
void TrainPage::setProcesses(int n) { form_->setProcesses(n); }
bool TrainPage::pauseEnabled() const { return pause_->isEnabled(); }
int TrainPage::lossPointCount() const { return view_->lossPointCount(); }
QStringList TrainPage::methodMetricNames() const { return view_->methodMetricNames(); }
void TrainPage::showMethodMetrics() { view_->showMethodMetrics(); }
QString TrainPage::statusText() const { return view_->statusText(); }
QString TrainPage::logText() const { return view_->logText(); }
QString TrainPage::advice() const { return estimate_->advice(); }

}  // namespace hone::ui
