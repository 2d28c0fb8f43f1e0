// The Train page's form over a RunConfig (see train_form.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train_form.h"

#include <QAbstractSpinBox>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSettings>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QThread>
#include <QVBoxLayout>
#include <algorithm>

#include "train/recipes.h"

namespace hone::ui {
namespace {

QDoubleSpinBox* dspin(double lo, double hi, int dec, double step, const QString& tip) {
  auto* s = new QDoubleSpinBox;
  s->setRange(lo, hi);
  s->setDecimals(dec);
  s->setSingleStep(step);
  s->setToolTip(tip);
  return s;
}

QSpinBox* ispin(int lo, int hi, const QString& tip) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  s->setToolTip(tip);
  return s;
}

// A combo box whose items carry a name (Qt::UserRole) and can be greyed out with a reason.
QComboBox* choices(const std::vector<std::pair<std::string, std::string>>& items) {
  auto* c = new QComboBox;
  auto* m = new QStandardItemModel(c);
  for (const auto& [name, label] : items) {
    auto* it = new QStandardItem(QString::fromStdString(label));
    it->setData(QString::fromStdString(name), Qt::UserRole);
    m->appendRow(it);
  }
  c->setModel(m);
  return c;
}

QStandardItem* item_of(const QComboBox* c, const QString& name) {
  auto* m = static_cast<QStandardItemModel*>(c->model());
  for (int r = 0; r < m->rowCount(); ++r)
    if (m->item(r)->data(Qt::UserRole).toString() == name) return m->item(r);
  return nullptr;
}

}  // namespace

TrainForm::TrainForm(QWidget* parent) : QWidget(parent), inputs_(new TrainInputs) {
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  lay->addWidget(inputs_);
  auto* hp_box = new QGroupBox("Method and hyper-parameters");
  form_ = new QFormLayout(hp_box);
  // A label too long for the pane puts its field on the next line instead of widening the form.
  form_->setRowWrapPolicy(QFormLayout::WrapLongRows);
  std::vector<std::pair<std::string, std::string>> methods, recipes;
  for (const auto& m : method_table()) methods.emplace_back(m.name, m.label);
  for (const auto& r : recipe_table()) recipes.emplace_back(r.name, r.label);
  method_ = choices(methods);
  method_->setToolTip("How the model trains. Greyed-out entries say why in their tooltip.");
  recipe_ = choices(recipes);
  recipe_->setToolTip("What it learns from which data. Greyed-out entries say why in their tooltip.");
  for (auto* c : {method_, recipe_}) {
    // Long names must not widen the form past its scroll area (Browse was clipped).
    c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    c->setMinimumContentsLength(18);
  }
  form_->addRow("Method", method_);
  form_->addRow("Recipe", recipe_);
  name_ = new QLineEdit;
  name_->setToolTip("Run name (suggested from the data and method until you type one); the run's folder is "
                    "runs/<name>-<date-time> in the workspace.");
  connect(name_, &QLineEdit::textEdited, this, [this] { name_edited_ = !name_->text().trimmed().isEmpty(); });
  form_->addRow("Run name", name_);
  lr_ = dspin(1e-7, 1.0, 7, 1e-5, "Peak learning rate (AdamW). LoRA: ~2e-4; QLoRA: ~2e-4; full fine-tuning: ~2e-5.");
  form_->addRow("Learning rate", lr_);
  beta_ = dspin(0, 10, 3, 0.05, "");
  loss_type_ = new QComboBox;
  loss_type_->addItems({"sigmoid", "ipo", "hinge", "robust"});
  loss_type_->setToolTip("DPO loss: sigmoid (the paper's), ipo (squared, resists overfitting), hinge (SLiC), robust (noisy labels).");
  rewards_ = new QLineEdit;
  rewards_->setToolTip("Rule rewards as JSON, summed with their weights: exact (the row's answer), similarity (to it, 0..1), regex (\"pattern\"), "
                       "json (optional \"schema\"), length (\"min_chars\", \"max_chars\"). [] with a reward model only.");
  reward_model_ = new QLineEdit;
  reward_model_->setPlaceholderText("optional: a reward run's folder (recipe reward)");
  generations_ = ispin(1, 64, "Completions sampled per prompt: GRPO compares them within the group (at least 2); "
                              "PPO's critic is its baseline (1 is enough).");
  new_tokens_ = ispin(1, 4096, "Longest completion sampled, in tokens.");
  ppo_epochs_ = ispin(1, 64, "PPO: optimizer updates over each batch of rollouts (TRL's num_ppo_epochs).");
  kl_target_ = dspin(0, 1000, 2, 0.5, "PPO: adapt the KL coefficient towards this KL per completion; 0 keeps it fixed.");
  value_model_ = new QComboBox;
  value_model_->addItem("value head on the policy", "head");
  value_model_->addItem("critic adapter", "adapter");
  value_model_->setToolTip("PPO's critic: a LoRA adapter of its own on the shared base plus a value head (TRL's PPOv2), "
                           "or the value head alone on the policy's features (one forward pass cheaper per update).");
  // The recipe's own fields, each shown when the recipe reads its key (train/recipes.h).
  recipe_fields_ = {{"beta", beta_},           {"loss_type", loss_type_},     {"rewards", rewards_},
                    {"reward_model", reward_model_}, {"num_generations", generations_}, {"max_new_tokens", new_tokens_},
                    {"ppo_epochs", ppo_epochs_}, {"kl_target", kl_target_},   {"value_model", value_model_}};
  const char* field_labels[] = {"Beta", "DPO loss", "Rewards", "Reward model", "Samples per prompt",
                                "Max new tokens", "Updates per batch", "KL target", "Value model"};
  for (size_t i = 0; i < recipe_fields_.size(); ++i) form_->addRow(field_labels[i], recipe_fields_[i].second);
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
  thinking_ = new QComboBox;
  thinking_->setObjectName("thinking");
  thinking_->addItem("As the chat template prints it", "template");
  thinking_->addItem("Keep the final reply's thinking", "keep_final");
  thinking_->setToolTip("<p>Replies with &lt;think&gt;...&lt;/think&gt; or reasoning_content. As printed: train on what the "
                        "model's chat template renders (DeepSeek-R1-Distill's drops every reply's thinking, Qwen3's keeps "
                        "the last turn's). Keep: the final reply is trained whole after the generation prompt, thinking "
                        "included, as reasoning traces are distilled (run config \"thinking\": \"keep_final\").</p>");
  save_every_ = ispin(0, 1000000, "Write a checkpoint every N steps (0: only at the end); needed to resume.");
  eval_fraction_ = dspin(0, 0.5, 3, 0.01, "Share of the training rows held out for evaluation loss and perplexity.");
  seed_ = ispin(0, 1 << 30, "Random seed: same seed and data give the same run on the CPU.");
  checkpointing_ = new QCheckBox("Gradient checkpointing");
  checkpointing_->setToolTip("Recompute each layer in the backward pass: much less activation memory, ~30% slower.");
  mlp_recompute_ = new QCheckBox("Recompute the MLP's up projection");
  mlp_recompute_->setObjectName("mlpRecompute");
  mlp_recompute_->setToolTip("Keep one [tokens, ffn] tensor less per layer by running the up projection again in backward:\n"
                             "about 10% less peak memory on Qwen2.5-0.5B at 512 tokens with an fp32 base, 5-15% slower. Exact.\n"
                             "Over a bf16 base, whose kept activations are bf16 already, it saves next to nothing.");
  base_dtype_ = new QComboBox;
  base_dtype_->addItem("auto", "auto");
  base_dtype_->addItem("bf16 (half the memory)", "bf16");
  base_dtype_->addItem("fp32 (exact)", "f32");
  base_dtype_->setToolTip("How the frozen base is stored for LoRA and QLoRA. bf16 halves it and runs its matrix products on "
                          "the CPU's bf16 unit with fp32 accumulation (about 2x faster on AVX512-BF16/AMX CPUs); auto picks "
                          "it there for bases over 256 MB, and for LoRA on other AVX-512 CPUs, which widen it to fp32 per product at "
                          "the fp32 base's speed. Over a bf16 base, attention's products run in bf16 too and the "
                          "activations kept for backward (SwiGLU's, attention's inputs) are bf16: about 15% less peak "
                          "memory (run config bf16_activations: \"off\" keeps them fp32).");
  for (auto [label, w] : std::vector<std::pair<const char*, QWidget*>>{
           {"Max steps", steps_}, {"Epochs", epochs_}, {"Batch size", batch_}, {"Grad accumulation", accum_},
           {"Processes", processes_}, {"Max sequence length", seq_}, {"LoRA rank", rank_}, {"LoRA alpha", alpha_},
           {"LoRA dropout", dropout_}, {"Warm-up steps", warmup_}, {"Schedule", schedule_}, {"Checkpoint every", save_every_},
           {"Eval fraction", eval_fraction_}, {"Seed", seed_}, {"Thinking in replies", thinking_}, {"", checkpointing_},
           {"", mlp_recompute_}, {"Base weights", base_dtype_}})
    form_->addRow(label, w);
  auto* preset = new QPushButton("Reset to the recipe's defaults");
  preset->setToolTip("The recipe's preset for this method (e.g. LoRA lr 2e-4, r 16, alpha 32; QLoRA r 64, alpha 16; "
                     "DPO lr 5e-5), or the demo's on the demo model.");
  form_->addRow("", preset);
  lay->addWidget(hp_box);

  // Only a focused field takes the mouse wheel (the app's wheel guard); Tab and clicks still focus.
  for (auto* w : findChildren<QAbstractSpinBox*>()) w->setFocusPolicy(Qt::StrongFocus);
  for (auto* w : findChildren<QComboBox*>()) w->setFocusPolicy(Qt::StrongFocus);
  auto emit_changed = [this] {
    if (!filling_) Q_EMIT changed();
  };
  for (auto* s : findChildren<QSpinBox*>()) connect(s, &QSpinBox::valueChanged, this, emit_changed);
  for (auto* s : findChildren<QDoubleSpinBox*>()) connect(s, &QDoubleSpinBox::valueChanged, this, emit_changed);
  for (auto* c : findChildren<QCheckBox*>()) connect(c, &QCheckBox::toggled, this, emit_changed);
  for (auto* c : {base_dtype_, loss_type_, value_model_, schedule_, thinking_})
    connect(c, &QComboBox::currentIndexChanged, this, emit_changed);
  for (auto* e : {rewards_, reward_model_}) connect(e, &QLineEdit::textChanged, this, emit_changed);
  connect(method_, &QComboBox::currentIndexChanged, this, &TrainForm::onChoiceChanged);
  connect(recipe_, &QComboBox::currentIndexChanged, this, &TrainForm::onChoiceChanged);
  connect(preset, &QPushButton::clicked, this, &TrainForm::applyPreset);
  connect(steps_, &QSpinBox::valueChanged, this, [this] {
    if (!filling_) steps_edited_ = true;
  });
  connect(inputs_, &TrainInputs::datasetsChanged, this, [this] {
    if (filling_) return;  // setConfig brings the form into line itself
    followDataForSteps();
    updateAvailability();
    suggestName();
    Q_EMIT changed();
  });
  connect(inputs_, &TrainInputs::modelChanged, this, [this] {
    // The form keeps the user's values; only moving onto or off the demo's model swaps the preset.
    if (filling_) return;
    if (inputs_->isDemoModel() != preset_demo_) applyPreset();
    Q_EMIT changed();
  });
  applyPreset();
}

QString TrainForm::recipe() const { return recipe_->currentData(Qt::UserRole).toString(); }
QString TrainForm::method() const { return method_->currentData(Qt::UserRole).toString(); }
QString TrainForm::runName() const { return name_->text().trimmed(); }
int TrainForm::processes() const { return processes_->value(); }
void TrainForm::setProcesses(int n) { processes_->setValue(n); }
void TrainForm::setMaxSteps(int steps) { steps_->setValue(steps); }

RunConfig TrainForm::config() const {
  RunConfig c = base_;
  c.name = runName().isEmpty() ? "run" : runName().toStdString();
  c.base_model = inputs_->modelRef().toStdString();  // a hub name stays a name (the loaders resolve it)
  c.method = method().toStdString();
  c.recipe = recipe().toStdString();
  // The ticked workspace datasets, and any files the shown config named (they have no tick).
  std::vector<std::string> data;
  for (const auto& d : inputs_->tickedDatasets()) data.push_back("dataset:" + d.toStdString());
  for (const auto& p : base_.train_data)
    if (p.rfind("dataset:", 0) != 0) data.push_back(p);
  c.train_data = data;
  c.lr = lr_->value();
  c.beta = beta_->value();
  c.loss_type = loss_type_->currentText().toStdString();
  const std::string rewards = rewards_->text().toStdString();
  c.rewards = nlohmann::json::parse(rewards, nullptr, false);
  if (c.rewards.is_discarded()) c.rewards = rewards;  // the run config's check names the mistake
  c.reward_model = reward_model_->text().trimmed().toStdString();
  c.num_generations = generations_->value();
  c.max_new_tokens = new_tokens_->value();
  c.ppo_epochs = ppo_epochs_->value();
  c.kl_target = kl_target_->value();
  c.value_model = value_model_->currentData().toString().toStdString();
  c.max_steps = steps_->value();
  c.epochs = epochs_->value();
  c.batch_size = batch_->value();
  c.grad_accum = accum_->value();
  c.max_seq_len = seq_->value();
  c.warmup_steps = warmup_->value();
  c.schedule = schedule_->currentText().toStdString();
  c.thinking = thinking_->currentData().toString().toStdString();
  c.save_every = save_every_->value();
  c.eval_fraction = eval_fraction_->value();
  c.seed = static_cast<uint64_t>(seed_->value());
  c.gradient_checkpointing = checkpointing_->isChecked();
  c.mlp_recompute = mlp_recompute_->isChecked();
  c.device = QSettings().value("settings/device", "auto").toString().toStdString();
  if (c.method == "full") {
    c.base_dtype = "auto";  // full training keeps every weight in fp32; there is no adapter
  } else {
    c.base_dtype = base_dtype_->currentData().toString().toStdString();
    c.lora.r = rank_->value();
    c.lora.alpha = alpha_->value();
    c.lora.dropout = dropout_->value();
  }
  return c;
}

void TrainForm::setConfig(const RunConfig& c) {
  filling_ = true;
  base_ = c;
  if (auto* m = item_of(method_, QString::fromStdString(c.method))) method_->setCurrentIndex(m->row());
  if (auto* r = item_of(recipe_, QString::fromStdString(c.recipe))) recipe_->setCurrentIndex(r->row());
  if (!c.name.empty()) {
    name_->setText(QString::fromStdString(c.name));
    name_edited_ = false;  // decided below: a suggested name keeps following the form
  }
  if (!c.base_model.empty() && inputs_->modelRef().toStdString() != c.base_model)
    inputs_->setModelFolder(QString::fromStdString(c.base_model));
  if (!c.train_data.empty()) inputs_->tickDataRefs(c.train_data);
  lr_->setValue(c.lr);
  beta_->setValue(c.beta);
  loss_type_->setCurrentText(QString::fromStdString(c.loss_type));
  rewards_->setText(QString::fromStdString(c.rewards.dump()));
  reward_model_->setText(QString::fromStdString(c.reward_model));
  generations_->setValue(static_cast<int>(c.num_generations));
  new_tokens_->setValue(static_cast<int>(c.max_new_tokens));
  ppo_epochs_->setValue(static_cast<int>(c.ppo_epochs));
  kl_target_->setValue(c.kl_target);
  value_model_->setCurrentIndex(std::max(0, value_model_->findData(QString::fromStdString(c.value_model))));
  steps_->setValue(static_cast<int>(c.max_steps));
  epochs_->setValue(c.epochs);
  batch_->setValue(static_cast<int>(c.batch_size));
  accum_->setValue(static_cast<int>(c.grad_accum));
  seq_->setValue(static_cast<int>(c.max_seq_len));
  rank_->setValue(static_cast<int>(c.lora.r));
  alpha_->setValue(c.lora.alpha);
  dropout_->setValue(c.lora.dropout);
  warmup_->setValue(static_cast<int>(c.warmup_steps));
  schedule_->setCurrentText(QString::fromStdString(c.schedule));
  thinking_->setCurrentIndex(std::max(0, thinking_->findData(QString::fromStdString(c.thinking))));
  save_every_->setValue(static_cast<int>(c.save_every));
  eval_fraction_->setValue(c.eval_fraction);
  seed_->setValue(static_cast<int>(c.seed));
  checkpointing_->setChecked(c.gradient_checkpointing);
  mlp_recompute_->setChecked(c.mlp_recompute);
  base_dtype_->setCurrentIndex(std::max(0, base_dtype_->findData(QString::fromStdString(c.base_dtype))));
  filling_ = false;
  steps_edited_ = true;  // a whole config (a run's, a file's) keeps its steps
  preset_demo_ = inputs_->isDemoModel();
  showRecipeFields();
  updateAvailability();
  if (!c.name.empty()) name_edited_ = QString::fromStdString(c.name) != suggestedName();
  suggestName();
  Q_EMIT changed();
}

void TrainForm::applyPreset() {
  const RunConfig cur = config();
  preset_demo_ = inputs_->isDemoModel();
  RunConfig p = preset_run_config(cur.recipe, cur.method, preset_demo_);
  // What the preset does not decide: the model and data, the name, the memory settings, the reward
  // model and, for a recipe that reads them, rule rewards already written.
  p.base_model = cur.base_model;
  p.init_adapter = cur.init_adapter;  // the starting adapter goes with the model
  p.train_data = cur.train_data;
  p.eval_data = cur.eval_data;
  p.gradient_checkpointing = cur.gradient_checkpointing;
  p.mlp_recompute = cur.mlp_recompute;
  if (cur.method != "full") p.base_dtype = cur.base_dtype;
  p.device = cur.device;
  p.reward_model = cur.reward_model;
  if (recipe_info(cur.recipe).rl && cur.rewards.is_array() && !cur.rewards.empty()) p.rewards = cur.rewards;
  // The demo preset's step count fits the demo's datasets; on other data the steps follow the
  // epochs (800 steps over a 30-row dataset would be hundreds of passes).
  if (preset_demo_ && !demoDataOnly()) p.max_steps = preset_run_config(cur.recipe, cur.method, false).max_steps;
  const bool edited = name_edited_;
  const QString name = name_->text();
  setConfig(p);  // p.name is empty: the name stays
  steps_edited_ = false;  // the preset's, free to follow the data
  name_edited_ = edited;
  name_->setText(name);
  suggestName();
}

bool TrainForm::demoDataOnly() const {
  for (const QString& d : inputs_->tickedDatasets())
    if (!d.startsWith("demo-")) return false;
  return true;
}

void TrainForm::followDataForSteps() {
  if (steps_edited_ || !preset_demo_) return;
  const RunConfig cur = config();
  filling_ = true;  // not the user's edit
  steps_->setValue(int(preset_run_config(cur.recipe, cur.method, demoDataOnly()).max_steps));
  filling_ = false;
}

void TrainForm::onChoiceChanged() {
  if (filling_) return;
  applyPreset();
}

void TrainForm::showRecipeFields() {
  const RecipeInfo* r = find_recipe(recipe().toStdString());
  if (!r) return;
  for (const auto& [key, field] : recipe_fields_) {
    const ConfigKey* k = nullptr;
    for (const auto& rk : r->keys)
      if (rk.name == key) k = &rk;
    form_->setRowVisible(field, k != nullptr);
    if (!k) continue;
    field->setToolTip(QString::fromStdString(k->help));
    if (key == "beta")
      if (auto* l = qobject_cast<QLabel*>(form_->labelForField(field))) l->setText(k->label.empty() ? "Beta" : QString::fromStdString(k->label));
  }
  const bool lora = method() != "full";
  for (QWidget* w : {static_cast<QWidget*>(rank_), static_cast<QWidget*>(alpha_), static_cast<QWidget*>(dropout_),
                     static_cast<QWidget*>(base_dtype_)})
    w->setEnabled(lora);  // full training keeps every weight in fp32 and has no adapter
}

void TrainForm::updateAvailability() {
  QString first_enabled;
  const std::string method_now = method().toStdString();
  for (const auto& r : recipe_table()) {
    QString why = dataProblem(r);
    if (why.isEmpty() && !r.allows(method_now))
      why = QString::fromStdString(r.label + " trains " + method_labels(r.methods) + " adapters (" + r.methods_why +
                                   "): choose one of them as the method.");
    auto* it = item_of(recipe_, QString::fromStdString(r.name));
    it->setEnabled(why.isEmpty());
    it->setToolTip(why.isEmpty() ? QString::fromStdString(r.summary) : why);
    if (why.isEmpty() && first_enabled.isEmpty()) first_enabled = QString::fromStdString(r.name);
  }
  // Keep the choice on a recipe the data allows (a preference dataset ticked: DPO, the first that reads it).
  if (!item_of(recipe_, recipe())->isEnabled() && !first_enabled.isEmpty())
    recipe_->setCurrentIndex(item_of(recipe_, first_enabled)->row());
  const RecipeInfo& r = recipe_info(recipe().toStdString());
  for (const auto& m : method_table()) {
    auto* it = item_of(method_, QString::fromStdString(m.name));
    it->setEnabled(r.allows(m.name));
    it->setToolTip(r.allows(m.name) ? QString::fromStdString(m.summary)
                                    : QString::fromStdString(r.label + " trains " + method_labels(r.methods) + ": " + r.methods_why + "."));
  }
  if (!item_of(method_, method())->isEnabled()) method_->setCurrentIndex(item_of(method_, QString::fromStdString(r.methods.front()))->row());
  showRecipeFields();
}

QString TrainForm::dataProblem(const RecipeInfo& r) const {
  for (const auto& k : inputs_->tickedKinds())
    if (!r.reads_kind(k.toStdString()))
      return QString::fromStdString(r.label + " trains on " + r.data_help + "; untick the " + k.toStdString() + " data.");
  return QString();
}

bool TrainForm::selectRecipe(const QString& name) {
  auto* it = item_of(recipe_, name);
  if (!it || !it->isEnabled()) return false;
  recipe_->setCurrentIndex(it->row());
  return true;
}

bool TrainForm::selectMethod(const QString& name) {
  auto* it = item_of(method_, name);
  if (!it || !it->isEnabled()) return false;
  method_->setCurrentIndex(it->row());
  return true;
}

bool TrainForm::recipeEnabled(const QString& name) const {
  auto* it = item_of(recipe_, name);
  return it && it->isEnabled();
}

bool TrainForm::methodEnabled(const QString& name) const {
  auto* it = item_of(method_, name);
  return it && it->isEnabled();
}

QString TrainForm::suggestedName() const {
  const QStringList data = inputs_->tickedDatasets();
  // SFT runs are named by their method (notes-lora), the others by their recipe (pairs-dpo).
  const QString key = recipe() == "sft" ? method() : method() == "lora" ? recipe() : method() + "-" + recipe();
  QString n = (data.isEmpty() ? QString("run") : data.size() > 1 ? data.first() + "-and-more" : data.first()) + "-" + key;
  return n.replace(QRegularExpression("[^A-Za-z0-9_.-]"), "-");
}

void TrainForm::suggestName() {
  if (!name_edited_) name_->setText(suggestedName());
}

}  // namespace hone::ui
