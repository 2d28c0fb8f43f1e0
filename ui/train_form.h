// The Train page's form: a view of one RunConfig. config() reads the widgets into it and
// setConfig() writes one into them, so presets, Resume, a recorded run's settings and "copy as
// command" all go through the same struct. The method (LoRA, QLoRA, full) and the recipe (SFT,
// DPO, ...) are two choices, offered as the recipe table allows (train/recipes.h); a recipe's own
// fields show when the recipe reads their keys. Fields the form has no widget for keep the values
// of the config it was last given.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>
#include <vector>

#include "train/recipes.h"
#include "train/run_config.h"
#include "train_inputs.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace hone::ui {

class TrainForm : public QWidget {
  Q_OBJECT
 public:
  explicit TrainForm(QWidget* parent = nullptr);

  TrainInputs* inputs() const { return inputs_; }
  RunConfig config() const;
  // Shows `c`: its model and dataset:NAME data too, unless they are empty.
  void setConfig(const RunConfig& c);
  // The recipe's preset for the method (the demo preset on the demo's base), keeping the model,
  // data, name and memory settings.
  void applyPreset();
  int processes() const;  // data-parallel processes (hone-cli launch); not part of the run config
  void setProcesses(int n);
  void setMaxSteps(int steps);
  void setPreferenceSettings(double beta, const QString& loss_type);

  QString recipe() const;
  QString method() const;
  bool selectRecipe(const QString& name);  // false when it is not offered for the ticked data
  bool selectMethod(const QString& name);  // false when the recipe does not train with it
  bool recipeEnabled(const QString& name) const;
  // "" when the recipe trains on every ticked dataset, else why not.
  QString dataProblem(const RecipeInfo& r) const;
  bool methodEnabled(const QString& name) const;
  QString runName() const;

 Q_SIGNALS:
  void changed();  // anything the estimate depends on

 private:
  void onChoiceChanged();
  void updateAvailability();
  void showRecipeFields();
  void suggestName();
  QString suggestedName() const;
  TrainInputs* inputs_;
  RunConfig base_;  // the values of fields without a widget
  QComboBox* method_;
  QComboBox* recipe_;
  QLineEdit* name_;
  QFormLayout* form_;
  QDoubleSpinBox* lr_;
  QDoubleSpinBox* beta_;
  QComboBox* loss_type_;
  QLineEdit* rewards_;       // grpo, ppo: rule rewards (JSON)
  QLineEdit* reward_model_;  // grpo, ppo: a reward run's folder
  QSpinBox* generations_;
  QSpinBox* new_tokens_;
  QSpinBox* ppo_epochs_;       // ppo: updates over each batch of rollouts
  QDoubleSpinBox* kl_target_;  // ppo: adaptive KL target (0: fixed coefficient)
  QComboBox* value_model_;     // ppo: critic adapter or value head on the policy
  QSpinBox* steps_;
  QDoubleSpinBox* epochs_;
  QSpinBox* batch_;
  QSpinBox* accum_;
  QSpinBox* processes_;
  QSpinBox* seq_;
  QSpinBox* rank_;
  QDoubleSpinBox* alpha_;
  QDoubleSpinBox* dropout_;
  QSpinBox* warmup_;
  QComboBox* schedule_;
  QComboBox* thinking_;  // run config "thinking"
  QSpinBox* save_every_;
  QDoubleSpinBox* eval_fraction_;
  QSpinBox* seed_;
  QCheckBox* checkpointing_;
  QCheckBox* mlp_recompute_;
  QComboBox* base_dtype_;  // auto | bf16 | f32
  // Rows a recipe shows when it reads their key: key -> its field.
  std::vector<std::pair<std::string, QWidget*>> recipe_fields_;
  bool name_edited_ = false;
  bool preset_demo_ = false;  // the form holds the demo's preset
  bool steps_edited_ = false; // the user set Max steps: presets leave it alone
  bool demoDataOnly() const;  // nothing ticked, or only the demo's own datasets
  void followDataForSteps();  // the demo's step count only on the demo's data
  bool filling_ = false;      // setConfig is writing the widgets: no presets, no signals
};

}  // namespace hone::ui
