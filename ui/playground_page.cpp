// PlaygroundPage (see playground_page.h). Each side owns its loaded model (kept while its source is
// unchanged) and a Job; streamed text arrives through the job's progress signal.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "playground_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "job.h"
#include "look.h"
#include "serve/text_generator.h"
#include "store/datasets.h"
#include "store/runs.h"

namespace hone::ui {

struct PlaygroundPage::Side {
  Job* job = nullptr;
  std::shared_ptr<TextGenerator> gen;
  QString loaded_key;  // model|run the generator was opened from
  // What the running job opens (or reuses), adopted when it stops; shared with the worker.
  std::shared_ptr<std::shared_ptr<TextGenerator>> pending;
  QString pending_key;
  std::vector<ChatMessage> history;
  QString streaming;   // the reply being received
  QString error;
};

PlaygroundPage::PlaygroundPage(QWidget* parent) : QWidget(parent) {
  auto* lay = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  auto* mrow = new QHBoxLayout;
  model_ = new QLineEdit;
  model_->setPlaceholderText("Base model folder (config.json, safetensors, tokenizer)");
  connect(model_, &QLineEdit::editingFinished, this, [this] { Q_EMIT modelChosen(model_->text().trimmed()); });
  auto* browse = new QPushButton("Browse…");
  mrow->addWidget(model_, 1);
  mrow->addWidget(browse);
  form->addRow("Base model", mrow);
  auto* srow = new QHBoxLayout;
  for (int s = 0; s < 2; ++s) {
    source_[s] = new QComboBox;
    source_[s]->setMinimumWidth(260);
    srow->addWidget(new QLabel(s == 0 ? "Left" : "Right"));
    srow->addWidget(source_[s], 1);
  }
  form->addRow("Compare", srow);
  auto* prow = new QHBoxLayout;
  temperature_ = new QDoubleSpinBox;
  temperature_->setRange(0, 2);
  temperature_->setSingleStep(0.1);
  temperature_->setValue(0.7);
  temperature_->setToolTip("0: greedy (the most likely token each time)");
  top_p_ = new QDoubleSpinBox;
  top_p_->setRange(0.05, 1);
  top_p_->setSingleStep(0.05);
  top_p_->setValue(0.95);
  max_new_ = new QSpinBox;
  max_new_->setRange(1, 8192);
  max_new_->setValue(256);
  seed_ = new QSpinBox;
  seed_->setRange(0, 1 << 30);
  seed_->setToolTip("Both sides sample with this seed");
  chat_ = new QCheckBox("Chat (keep the conversation)");
  for (auto [label, w] : std::initializer_list<std::pair<const char*, QWidget*>>{
           {"Temperature", temperature_}, {"Top-p", top_p_}, {"Max new tokens", max_new_}, {"Seed", seed_}}) {
    prow->addWidget(new QLabel(label));
    prow->addWidget(w);
  }
  prow->addWidget(chat_);
  prow->addStretch();
  form->addRow("Sampling", prow);
  system_ = new QLineEdit;
  system_->setPlaceholderText("Optional system message");
  form->addRow("System", system_);
  lay->addLayout(form);
  auto* outs = new QHBoxLayout;
  for (int s = 0; s < 2; ++s) {
    auto* col = new QVBoxLayout;
    info_[s] = new QLabel;
    info_[s]->setWordWrap(true);
    out_[s] = new QTextBrowser;
    out_[s]->setObjectName(s == 0 ? "left" : "right");
    col->addWidget(info_[s]);
    col->addWidget(out_[s], 1);
    outs->addLayout(col);
  }
  lay->addLayout(outs, 1);
  prompt_ = new QPlainTextEdit;
  prompt_->setPlaceholderText("Prompt (Ctrl+Enter sends)");
  prompt_->setMaximumHeight(110);
  lay->addWidget(prompt_);
  auto* brow = new QHBoxLayout;
  send_ = new QPushButton("Send");
  send_->setShortcut(QKeySequence("Ctrl+Return"));
  stop_ = new QPushButton("Stop");
  stop_->setEnabled(false);
  auto* clear = new QPushButton("New conversation");
  auto* save = new QPushButton("Save as dataset row…");
  save->setToolTip("Store one side's conversation (its answer corrected if you like) as a row of a chat dataset");
  for (auto* b : {send_, stop_, clear, save}) brow->addWidget(b);
  brow->addStretch();
  lay->addLayout(brow);

  for (int s = 0; s < 2; ++s) {
    sides_[s] = std::make_unique<Side>();
    sides_[s]->job = new Job(QString("generation %1").arg(s), this);
    connect(sides_[s]->job, &Job::progress, this, [this, s](qint64, qint64, const QString& piece) {
      sides_[s]->streaming += piece;
      redraw(s);
    });
    connect(sides_[s]->job, &Job::finished, this, [this, s](const QVariant& v) {
      const QVariantMap m = v.toMap();
      auto& sd = *sides_[s];
      sd.history.push_back({"assistant", ss(m.value("text").toString())});
      sd.streaming.clear();
      info_[s]->setText(QString("%1 — %2 tokens in %3 s (%4 tokens/s)%5")
                            .arg(m.value("who").toString()).arg(m.value("tokens").toLongLong())
                            .arg(m.value("seconds").toDouble(), 0, 'f', 1)
                            .arg(m.value("seconds").toDouble() > 0 ? m.value("tokens").toDouble() / m.value("seconds").toDouble() : 0, 0, 'f', 1)
                            .arg(m.value("stopped").toBool() ? ", stopped" : ""));
      redraw(s);
    });
    connect(sides_[s]->job, &Job::failed, this, [this, s](const QString& e) {
      sides_[s]->streaming.clear();
      if (!sides_[s]->history.empty() && sides_[s]->history.back().role == "user") sides_[s]->history.pop_back();
      info_[s]->setText("<span style='color:#c0392b'>" + e.toHtmlEscaped() + "</span>");
      redraw(s);
    });
    connect(sides_[s]->job, &Job::stopped, this, [this, s] {
      auto& sd = *sides_[s];
      if (sd.pending && *sd.pending) {
        sd.gen = *sd.pending;
        sd.loaded_key = sd.pending_key;
      }
      sd.pending.reset();
      // Both sides may have stopped by the time the first notice arrives: report the pair once.
      if (!busy() && generating_) {
        generating_ = false;
        send_->setEnabled(true);
        stop_->setEnabled(false);
        Q_EMIT generationFinished();
      }
    });
  }
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Base model folder", model_->text());
    if (!d.isEmpty()) {
      model_->setText(d);
      Q_EMIT modelChosen(d);
    }
  });
  connect(send_, &QPushButton::clicked, this, [this] { send(); });
  connect(stop_, &QPushButton::clicked, this, &PlaygroundPage::stop);
  connect(clear, &QPushButton::clicked, this, [this] {
    for (int s = 0; s < 2; ++s) {
      sides_[s]->history.clear();
      redraw(s);
    }
  });
  connect(save, &QPushButton::clicked, this, &PlaygroundPage::openSaveDialog);
}

PlaygroundPage::~PlaygroundPage() {
  for (auto& s : sides_) s->job->cancel();
}

void PlaygroundPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  refresh();
}

QString PlaygroundPage::modelFolder() const { return model_->text().trimmed(); }

void PlaygroundPage::setModelFolder(const QString& dir, const QString& previous) {
  if (!dir.isEmpty() && (model_->text().isEmpty() || model_->text() == previous)) model_->setText(dir);
}

void PlaygroundPage::refresh() {
  if (workspace_.isEmpty()) return;
  for (int s = 0; s < 2; ++s) {
    const QString keep = source_[s]->currentData().toString();
    source_[s]->blockSignals(true);
    source_[s]->clear();
    source_[s]->addItem("Base model", QString());
    guarded(this, "Playground", [&] {
      Workspace ws(ss(workspace_));
      for (const auto& r : list_runs(ws))
        if (r.status == "completed" || r.status == "stopped_early")
          source_[s]->addItem(QString("Run #%1 %2 (%3 %4)").arg(r.id).arg(qs(r.name), qs(r.method), qs(r.recipe)), qs(r.run_dir));
    });
    int i = source_[s]->findData(keep);
    if (i < 0) i = s == 1 && source_[s]->count() > 1 ? source_[s]->count() - 1 : 0;  // right: the newest run
    source_[s]->setCurrentIndex(i);
    source_[s]->blockSignals(false);
  }
}

bool PlaygroundPage::setSource(int side, const QString& run_dir) {
  const int i = source_[side]->findData(run_dir);
  if (i < 0) return false;
  source_[side]->setCurrentIndex(i);
  return true;
}

QString PlaygroundPage::sourceOf(int side) const { return source_[side]->currentData().toString(); }
void PlaygroundPage::setPrompt(const QString& text) { prompt_->setPlainText(text); }
void PlaygroundPage::setSampling(double t, int max_new, int seed) {
  temperature_->setValue(t);
  max_new_->setValue(max_new);
  seed_->setValue(seed);
}
void PlaygroundPage::setChatMode(bool on) { chat_->setChecked(on); }
bool PlaygroundPage::busy() const { return sides_[0]->job->running() || sides_[1]->job->running(); }
Job* PlaygroundPage::job(int side) const { return sides_[side]->job; }
QString PlaygroundPage::statusOf(int side) const { return info_[side]->text(); }

void PlaygroundPage::stop() {
  for (auto& s : sides_) s->job->cancel();
}

bool PlaygroundPage::send() {
  const QString text = prompt_->toPlainText().trimmed();
  if (text.isEmpty() || busy()) return false;
  if (model_->text().trimmed().isEmpty() && !workspace_.isEmpty()) {
    // A run names its base: the base side needs no folder chosen by hand.
    guarded(this, "Playground", [&] {
      Workspace ws(ss(workspace_));
      for (int s = 0; s < 2 && model_->text().trimmed().isEmpty(); ++s)
        for (const auto& r : list_runs(ws))
          if (!sourceOf(s).isEmpty() && qs(r.run_dir) == sourceOf(s) && !r.base_model.empty()) model_->setText(qs(r.base_model));
    });
  }
  if (model_->text().trimmed().isEmpty() && (sourceOf(0).isEmpty() || sourceOf(1).isEmpty())) {
    info_[0]->setText("Choose a base model folder first (or a run on both sides).");
    return false;
  }
  for (int s = 0; s < 2; ++s) {
    auto& sd = *sides_[s];
    if (!chat_->isChecked()) sd.history.clear();
    if (sd.history.empty() && !system_->text().trimmed().isEmpty()) sd.history.push_back({"system", ss(system_->text().trimmed())});
    sd.history.push_back({"user", ss(text)});
    startSide(s, sd.history);
  }
  prompt_->clear();
  generating_ = true;
  send_->setEnabled(false);
  stop_->setEnabled(true);
  return true;
}

void PlaygroundPage::startSide(int s, const std::vector<ChatMessage>& msgs) {
  auto& sd = *sides_[s];
  const QString run = sourceOf(s), model = model_->text().trimmed();
  const QString key = run.isEmpty() ? "model:" + model : "run:" + run;
  GenerationSettings g;
  g.temperature = temperature_->value();
  g.top_p = top_p_->value();
  g.max_new_tokens = max_new_->value();
  g.seed = static_cast<uint64_t>(seed_->value());
  sd.streaming.clear();
  info_[s]->setText(sd.loaded_key == key ? "Generating…" : "Loading the model…");
  redraw(s);
  auto slot = std::make_shared<std::shared_ptr<TextGenerator>>(sd.loaded_key == key ? sd.gen : nullptr);
  sd.pending = slot;
  sd.pending_key = key;
  const QString who = run.isEmpty() ? "base model" : source_[s]->currentText();
  sd.job->start([slot, run, model, msgs, g, who](Job::Context& ctx) -> QVariant {
    if (!*slot) *slot = run.isEmpty() ? TextGenerator::open(ss(model)) : TextGenerator::open_run(ss(run));
    GenerationOutput o = (*slot)->reply(msgs, g, [&ctx](const std::string& piece) {
      ctx.progress(0, 0, qs(piece));
      return !ctx.cancelled();
    });
    return QVariantMap{{"text", qs(o.text)}, {"tokens", qint64(o.tokens)}, {"seconds", o.seconds}, {"stopped", o.stopped},
                       {"who", who}};
  });
}

void PlaygroundPage::redraw(int s) {
  const auto& sd = *sides_[s];
  QString md;
  for (const auto& m : sd.history) {
    if (m.role == "system") continue;
    md += QString("**%1**\n\n%2\n\n").arg(m.role == "user" ? "You" : "Model", qs(m.content));
  }
  if (!sd.streaming.isEmpty() || sides_[s]->job->running()) md += "**Model**\n\n" + sd.streaming + " ▍\n\n";
  out_[s]->setMarkdown(md);
  out_[s]->moveCursor(QTextCursor::End);
}

QString PlaygroundPage::answer(int s) const {
  const auto& h = sides_[s]->history;
  return !h.empty() && h.back().role == "assistant" ? qs(h.back().content) : QString();
}

bool PlaygroundPage::saveConversation(int s, const QString& dataset, const QString& corrected) {
  std::vector<ChatMessage> msgs = sides_[s]->history;
  if (msgs.empty() || msgs.back().role != "assistant") return false;
  if (!corrected.isEmpty()) msgs.back().content = ss(corrected);
  nlohmann::json j = {{"messages", nlohmann::json::array()}};
  for (const auto& m : msgs) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
  const bool ok = guarded(this, "Save conversation", [&] {
    Workspace ws(ss(workspace_));
    int64_t id = 0;
    for (const auto& d : list_datasets(ws))
      if (d.name == ss(dataset)) {
        if (d.kind != "chat") throw Error("dataset \"" + d.name + "\" holds " + d.kind + " rows; choose a chat dataset");
        id = d.id;
      }
    if (!id) id = create_dataset(ws, ss(dataset), DatasetKind::Chat, "playground");
    insert_row(ws, id, INT64_MAX, j.dump(), "playground");
  });
  if (ok) Q_EMIT datasetsChanged();
  return ok;
}

void PlaygroundPage::openSaveDialog() {
  int side = 1;
  if (answer(0).isEmpty() && answer(1).isEmpty()) {
    QMessageBox::information(this, "Save", "Generate an answer first.");
    return;
  }
  QDialog d(this);
  d.setWindowTitle("Save as a dataset row");
  d.resize(640, 460);
  auto* f = new QFormLayout(&d);
  auto* which = new QComboBox;
  which->addItem("Left", 0);
  which->addItem("Right", 1);
  which->setCurrentIndex(answer(1).isEmpty() ? 0 : 1);
  auto* name = new QLineEdit("playground");
  auto* text = new QPlainTextEdit(answer(which->currentData().toInt()));
  connect(which, &QComboBox::currentIndexChanged, &d, [&] { text->setPlainText(answer(which->currentData().toInt())); });
  f->addRow("Conversation of", which);
  f->addRow("Chat dataset", name);
  f->addRow("Answer (correct it if you like)", text);
  f->addRow(dialogButtons(&d, QDialogButtonBox::Save | QDialogButtonBox::Cancel));
  if (d.exec() != QDialog::Accepted) return;
  side = which->currentData().toInt();
  if (saveConversation(side, name->text().trimmed(), text->toPlainText()))
    info_[side]->setText(QString("Saved to dataset \"%1\".").arg(name->text().trimmed()));
}

}  // namespace hone::ui
