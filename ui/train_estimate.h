// The Train page's estimate and advisor: the memory a run will take (the core's plan, the one
// `hone-cli train --dry-run` prints) with what would fit when it will not, the time at this
// machine's measured GEMM rate, and the fine-tuning advisor (prompting, RAG or fine-tuning, from
// the data's size and the user's goals). All of it computed from the form's RunConfig.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

#include "model/config.h"
#include "train/run_config.h"

class QCheckBox;
class QLabel;

namespace hone::ui {

class TrainEstimate : public QWidget {
  Q_OBJECT
 public:
  explicit TrainEstimate(QWidget* parent = nullptr);

  // model: the chosen model's config (nullptr: none usable); rows: the ticked datasets' rows.
  void update(const RunConfig& cfg, const ModelConfig* model, int processes, int64_t rows);
  bool wontFit() const { return wont_fit_; }
  QString estimateText() const;
  QString advice() const;

 Q_SIGNALS:
  void goalsChanged();  // an advisor checkbox changed: the page calls update() again

 private:
  QLabel* estimate_;
  QCheckBox* goal_prototype_;
  QCheckBox* goal_changing_;
  QCheckBox* goal_format_;
  QCheckBox* goal_volume_;
  QLabel* advice_;
  bool wont_fit_ = false;
  double gemm_gflops_ = 0;  // measured on this machine in the background at start-up
};

}  // namespace hone::ui
