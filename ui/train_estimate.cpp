// The estimate and advisor panel (see train_estimate.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train_estimate.h"

#include <unistd.h>

#include <QCheckBox>
#include <QFutureWatcher>
#include <QLabel>
#include <QRegularExpression>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrent>
#include <algorithm>

#include "look.h"
#include "model/gemm_info.h"
#include "train/memory_plan.h"
#include "train/recipes.h"

namespace hone::ui {

TrainEstimate::TrainEstimate(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  auto* eb = groupBox(lay, "Estimate");
  estimate_ = new QLabel("Choose a model for a memory and time estimate.");
  estimate_->setObjectName("estimate");
  estimate_->setWordWrap(true);
  estimate_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  eb->addWidget(estimate_);
  auto* ab = groupBox(lay, "Should you fine-tune? (advisor)");
  goal_prototype_ = new QCheckBox("This is a prototype");
  goal_changing_ = new QCheckBox("The model must know facts that change often");
  goal_format_ = new QCheckBox("I need a consistent output format, persona or style");
  goal_volume_ = new QCheckBox("High volume, cost matters");
  for (auto* c : {goal_prototype_, goal_changing_, goal_format_, goal_volume_}) {
    ab->addWidget(c);
    connect(c, &QCheckBox::toggled, this, &TrainEstimate::goalsChanged);
  }
  advice_ = new QLabel;
  advice_->setWordWrap(true);
  advice_->setObjectName("advice");
  ab->addWidget(advice_);

  // The time estimate uses this machine's GEMM rate, measured once off the GUI thread.
  // (QtConcurrent's pool is waited for at exit, so the task never outlives the application.)
  auto* watcher = new QFutureWatcher<double>(this);
  connect(watcher, &QFutureWatcher<double>::finished, this, [this, watcher] {
    gemm_gflops_ = watcher->result();
    Q_EMIT goalsChanged();  // the page recomputes with the measured rate
  });
  watcher->setFuture(QtConcurrent::run([] { return hone::measure_f32_gemm_gflops(512, 8); }));
}

void TrainEstimate::update(const RunConfig& cfg, const ModelConfig* model, int processes, int64_t rows) {
  // Advisor: prompting, retrieval or fine-tuning, from the data's size and the goals.
  QStringList why;
  QString rec;
  if (goal_changing_->isChecked()) {
    rec = "Use retrieval (RAG), not fine-tuning";
    why << "facts that change often belong in a search index the model reads at answer time; a fine-tuned model would need retraining with every change";
  } else if (goal_prototype_->isChecked()) {
    rec = "Start with prompt engineering";
    why << "for a prototype, a good prompt with a few examples is faster to iterate than training runs";
  } else if (rows < 100) {
    rec = "Use few-shot prompting";
    why << QString("%1 examples are too few to fine-tune on; put the best of them in the prompt").arg(rows);
  } else if (rows < 500) {
    rec = "Fine-tuning may help; collect more data";
    why << QString("%1 examples: results are usually unstable below about 500 good examples").arg(rows);
  } else {
    rec = "Fine-tuning is likely worth it";
    why << QString("%1 examples: enough for fine-tuning to pay off if they are good").arg(rows);
  }
  if (goal_format_->isChecked()) why << "a consistent format, persona or style is what fine-tuning does best";
  if (goal_volume_->isChecked())
    why << "at high volume, fine-tuning a smaller model to do this one task usually costs less than prompting a large one";
  QString text = QString("<b>%1.</b><br>Why: %2.").arg(rec, why.join("; "));
  // Many passes over a small dataset memorise it: the held-out loss rises while the training loss
  // falls (a 30-row, 300-step run ended at training loss 0.24 and held-out 4.97).
  if (rows > 0) {
    const double seen = cfg.max_steps > 0 ? static_cast<double>(cfg.max_steps * cfg.batch_size * cfg.grad_accum * processes) : 0;
    const double epochs = seen > 0 ? seen / static_cast<double>(rows) : cfg.epochs;
    if (rows < 2000 && epochs > 5)
      text += QString("<br><span style='color:#c0392b'><b>Overfitting risk:</b> about %1 passes over %2 examples; a small dataset "
                      "seen this often is memorised. 1-3 epochs are usual; hold some data out (eval fraction) to watch the "
                      "held-out loss.</span>")
                  .arg(epochs, 0, 'f', 0)
                  .arg(rows);
  }
  advice_->setText(text);

  wont_fit_ = false;
  if (!model) {
    estimate_->setText("Choose a model for a memory and time estimate.");
    return;
  }
  const RecipeInfo* recipe = find_recipe(cfg.recipe);
  if (!recipe) return;
  RunConfig rc = cfg;
  rc.device = cfg.device == "cuda" ? "cuda" : "cpu";
  const double ram = physical_memory_bytes();
  MemoryPlan plan;
  try {
    plan = plan_memory(*model, rc, processes, ram);
  } catch (const std::exception& e) {
    estimate_->setText(QString("<span style='color:#c0392b'>%1</span>").arg(QString::fromStdString(e.what()).toHtmlEscaped()));
    return;
  }
  const double P = static_cast<double>(model->parameter_count());
  const double tokens = static_cast<double>(cfg.batch_size) * static_cast<double>(cfg.max_seq_len) * (recipe->pairs ? 2 : 1);
  // Time: (4 or 6) x params FLOPs per token (+ the reference's forward) at 60% of this machine's
  // measured GEMM rate (training reaches 55-80% of it here; until the measurement arrives, 40
  // GFLOP/s per core).
  const double flops_per_token = (cfg.method == "full" ? 6 : 4) * P + (recipe->reference ? 2 * P : 0);
  const double steps = cfg.max_steps > 0 ? static_cast<double>(cfg.max_steps) : 0;
  const double rate = gemm_gflops_ > 0 ? 0.6 * gemm_gflops_ * 1e9 : 40e9 * std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  const double secs = steps * static_cast<double>(cfg.grad_accum) * tokens * processes * flops_per_token / rate;
  QString s = QString::fromStdString(plan.summary()) + " of " + humanBytes(ram) + " RAM";
  if (steps > 0) s += QString("; about %1 for %2 steps at full sequence length").arg(humanTime(secs)).arg(steps);
  wont_fit_ = plan.total > 0.85 * ram;
  if (wont_fit_) {
    QStringList fixes;
    for (const auto& f : plan.fixes) fixes << QString::fromStdString(f).toHtmlEscaped();
    s = "<b style='color:#c0392b'>Will not fit in memory.</b> " + s + "<br>Would fit or help: " + fixes.join("; ") + ".";
  }
  estimate_->setText(s);
}

QString TrainEstimate::estimateText() const { return estimate_->text(); }
QString TrainEstimate::advice() const { return advice_->text(); }

}  // namespace hone::ui
