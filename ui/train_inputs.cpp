// The model and datasets of the Train page's form (see train_inputs.h). Only config.json and
// tokenizer_config.json are read on the GUI thread (small files); the dataset list is one query.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "train_inputs.h"

#include <QDir>
#include <QFileInfo>
#include <QFileDialog>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSettings>
#include <QTimer>
#include <QVBoxLayout>

#include "common/files.h"
#include "common/json_file.h"
#include "look.h"
#include "common/hub_cache.h"
#include "runs/demo.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "tokenizer/chat_template.h"

namespace hone::ui {

TrainInputs::TrainInputs(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  lay->setContentsMargins(0, 0, 0, 0);
  auto* mb = groupBox(lay, "Base model");
  auto* mrow = new QHBoxLayout;
  model_ = new QLineEdit;
  model_->setPlaceholderText("a model folder, or a hub name from the Hugging Face cache (ORG/NAME)");
  model_->setToolTip("A Hugging Face model folder (config.json, *.safetensors, tokenizer), or ORG/NAME[@REV] of a model "
                     "in the Hugging Face cache (download one on the Models page).");
  auto* browse = new QPushButton("Browse…");
  mrow->addWidget(model_, 1);
  mrow->addWidget(browse);
  mb->addLayout(mrow);
  model_info_ = new QLabel("No model chosen.");
  model_info_->setWordWrap(true);
  model_info_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  mb->addWidget(model_info_);
  build_demo_ = new QPushButton("Build the demo model (about 2 minutes)");
  build_demo_->setToolTip("Pre-trains a small base model on synthetic text in this workspace and imports its datasets "
                          "(demo-skills, demo-preferences); nothing is downloaded.");
  mb->addWidget(build_demo_);
  connect(build_demo_, &QPushButton::clicked, this, &TrainInputs::buildDemoRequested);
  auto* db = groupBox(lay, "Datasets (workspace)");
  datasets_ = new QListWidget;
  datasets_->setMaximumHeight(110);
  datasets_->setToolTip("Tick the datasets to train on; import more on the Datasets page or with hone-cli dataset import.");
  db->addWidget(datasets_);

  connect(browse, &QPushButton::clicked, this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, "Base model folder", model_->text());
    if (!d.isEmpty()) setModelFolder(d);
  });
  connect(model_, &QLineEdit::editingFinished, this, &TrainInputs::updateModelSummary);
  // While typing, the summary follows after a pause, so it never describes the previous model.
  auto* typing = new QTimer(this);
  typing->setSingleShot(true);
  typing->setInterval(400);
  connect(model_, &QLineEdit::textEdited, typing, qOverload<>(&QTimer::start));
  connect(typing, &QTimer::timeout, this, &TrainInputs::updateModelSummary);
  connect(datasets_, &QListWidget::itemChanged, this, &TrainInputs::datasetsChanged);
}

void TrainInputs::setWorkspace(const QString& dir) {
  workspace_ = dir;
  datasets_->clear();
  // Offered until the workspace has the demo's model.
  build_demo_->setVisible(!QDir(QString::fromStdString(demo_base_dir(dir.toStdString()))).exists());
  if (model_->text().isEmpty()) updateModelSummary();  // its hint depends on the demo being offered
  refreshDatasets();
}

bool TrainInputs::demoOffered() const { return !build_demo_->isHidden(); }

void TrainInputs::setDemoBusy(bool busy) { build_demo_->setEnabled(!busy); }

void TrainInputs::refreshDatasets() {
  QStringList ticked = tickedDatasets();
  const bool first_fill = datasets_->count() == 0;
  datasets_->blockSignals(true);
  datasets_->clear();
  if (!workspace_.isEmpty()) {
    try {
      Workspace ws(workspace_.toStdString());
      for (const auto& d : list_datasets(ws)) {
        auto* it = new QListWidgetItem(QString("%1  (%2, %3 rows)").arg(QString::fromStdString(d.name), QString::fromStdString(d.kind)).arg(d.rows));
        it->setData(Qt::UserRole, QString::fromStdString(d.name));
        it->setData(Qt::UserRole + 1, QString::fromStdString(d.kind));
        int64_t examples = d.rows;
        // A candidates dataset trains on the pairs its verdicts make (a ranking of four: six), which
        // the advisor should count, not its rows; counted here for sets up to 5000 rows (a read of
        // every row), above that its labelled rows stand in.
        if (d.kind == "candidates")
          examples = d.rows <= 5000 ? export_labels(ws, d.id, "", "").pairs : label_progress(ws, d.id).labelled;
        it->setData(Qt::UserRole + 2, static_cast<qlonglong>(examples));
        it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
        it->setCheckState(Qt::Unchecked);
        datasets_->addItem(it);
      }
    } catch (const std::exception& e) {
      Q_EMIT problem(QString("cannot read the workspace: ") + e.what());
    }
  }
  // The demo workspace: its dataset is ticked so that Start works at once.
  if (first_fill) ticked << "demo-skills";
  for (int i = 0; i < datasets_->count(); ++i)
    if (ticked.contains(datasets_->item(i)->data(Qt::UserRole).toString())) datasets_->item(i)->setCheckState(Qt::Checked);
  datasets_->blockSignals(false);
  Q_EMIT datasetsChanged();
}

QStringList TrainInputs::tickedDatasets() const {
  QStringList out;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) out << datasets_->item(i)->data(Qt::UserRole).toString();
  return out;
}

QStringList TrainInputs::tickedKinds() const {
  QStringList out;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) out << datasets_->item(i)->data(Qt::UserRole + 1).toString();
  return out;
}

int64_t TrainInputs::tickedRows() const {
  int64_t n = 0;
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->checkState() == Qt::Checked) n += datasets_->item(i)->data(Qt::UserRole + 2).toLongLong();
  return n;
}

void TrainInputs::selectDataset(const QString& name, bool on) {
  for (int i = 0; i < datasets_->count(); ++i)
    if (datasets_->item(i)->data(Qt::UserRole).toString() == name) datasets_->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
}

void TrainInputs::selectOnlyDataset(const QString& name) {
  datasets_->blockSignals(true);
  for (int i = 0; i < datasets_->count(); ++i)
    datasets_->item(i)->setCheckState(datasets_->item(i)->data(Qt::UserRole).toString() == name ? Qt::Checked : Qt::Unchecked);
  datasets_->blockSignals(false);
  Q_EMIT datasetsChanged();
}

void TrainInputs::tickDataRefs(const std::vector<std::string>& refs) {
  QStringList names;
  for (const auto& r : refs)
    if (r.rfind("dataset:", 0) == 0) names << QString::fromStdString(r.substr(8));
  datasets_->blockSignals(true);
  for (int i = 0; i < datasets_->count(); ++i)
    datasets_->item(i)->setCheckState(names.contains(datasets_->item(i)->data(Qt::UserRole).toString()) ? Qt::Checked : Qt::Unchecked);
  datasets_->blockSignals(false);
  Q_EMIT datasetsChanged();
}

void TrainInputs::setModelFolder(const QString& dir) {
  model_->setText(dir);
  updateModelSummary();
}

void TrainInputs::recheckModel() {
  // Only when the answer may differ: the name resolves elsewhere now, or its config came or went.
  const QString now = modelFolder();
  if (now != checked_folder_ || QFileInfo::exists(now + "/config.json") != model_ok_) updateModelSummary();
}

QString TrainInputs::modelRef() const { return model_->text().trimmed(); }

QString TrainInputs::modelFolder() const {
  // A hub name stands for its snapshot folder in the cache (as on the command line).
  try {
    return QString::fromStdString(resolve_model_dir(model_->text().trimmed().toStdString()));
  } catch (const std::exception&) {
    return model_->text().trimmed();
  }
}

bool TrainInputs::isDemoModel() const {
  if (workspace_.isEmpty() || model_->text().isEmpty()) return false;
  const QString demo = QDir(QString::fromStdString(demo_base_dir(workspace_.toStdString()))).canonicalPath();
  return !demo.isEmpty() && QDir(modelFolder()).canonicalPath() == demo;
}

void TrainInputs::updateModelSummary() {
  model_ok_ = false;
  checked_folder_ = modelFolder();
  const QString typed = model_->text().trimmed();
  std::string dir = typed.toStdString();
  auto refuse = [this](const QString& why) {
    model_problem_ = why;
    model_info_->setText(QString("<span style='color:#c0392b'>%1</span>").arg(why.toHtmlEscaped()));
    Q_EMIT modelChanged();
  };
  if (dir.empty()) {
    // First launch: say what to do, the demo being the way to try Hone without a download.
    model_info_->setText(build_demo_->isHidden() ? "No model chosen."
                                                 : "No model chosen. Choose a Hugging Face model folder, or build the demo "
                                                   "model below to try Hone (nothing is downloaded).");
    model_problem_ = "No model chosen.";
    Q_EMIT modelChanged();
    return;
  }
  // A hub name: its snapshot in the Hugging Face cache, offline.
  QString hub_note;
  try {
    dir = resolve_model_dir(dir);
  } catch (const std::exception& e) {
    return refuse(QString::fromUtf8(e.what()).replace("`hone-cli hub download", "the Models page or `hone-cli hub download"));
  }
  if (dir != typed.toStdString()) hub_note = "from the Hugging Face cache (" + QString::fromStdString(dir).section('/', -1).left(12) + ") · ";
  const QString folder = QString::fromStdString(dir);
  // What training will need, checked before Start is offered: config, weights and a tokenizer.
  const QDir d(folder);
  if (!d.exists()) return refuse("Not a folder: " + folder);
  if (!d.exists("config.json")) return refuse("No config.json in " + folder + ": not a Hugging Face model folder.");
  if (d.entryList({"*.safetensors"}, QDir::Files).isEmpty())
    return refuse("No *.safetensors weights in " + folder + " (only safetensors are read; .bin pickles are not).");
  if (!d.exists("tokenizer.json") && !d.exists("tokenizer.model"))
    return refuse("No tokenizer.json or tokenizer.model in " + folder + ".");
  try {
    auto cfg = parse_model_config(read_json_file(join_path(dir, "config.json")), join_path(dir, "config.json"));
    model_cfg_ = cfg;
    const int64_t params = cfg.parameter_count();
    QString tmpl = "none";
    const std::string tc = join_path(dir, "tokenizer_config.json");
    if (file_exists(tc)) {
      auto j = read_json_file(tc);
      if (j.contains("chat_template") && j["chat_template"].is_string())
        tmpl = QString("its own (%1-like)").arg(chat_format_name(detect_chat_format(j["chat_template"].get<std::string>())));
    }
    model_info_->setText(hub_note + QString("%1 · %2 parameters · %3 layers · hidden %4 · %5 heads (%6 kv) · vocab %7 · chat template %8")
                             .arg(QString::fromStdString(cfg.model_type))
                             .arg(params >= 1e9 ? QString::number(params / 1e9, 'f', 2) + "B" : QString::number(params / 1e6, 'f', 1) + "M")
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
  Q_EMIT modelChanged();
}

}  // namespace hone::ui
