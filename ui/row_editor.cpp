// RowEditor (see row_editor.h). The form and the JSON tab edit the same row; switching tabs carries
// the edit across. Fields whose value is not plain text (a conversational prompt) stay in JSON.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "row_editor.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTabWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "data/records.h"
#include "look.h"

namespace hone::ui {

using nlohmann::json;

RowEditor::RowEditor(const QString& kind, const std::string& canonical_json, QWidget* parent)
    : QDialog(parent), kind_(kind), result_(canonical_json) {
  setWindowTitle("Edit row");
  resize(760, 560);
  auto* lay = new QVBoxLayout(this);
  tabs_ = new QTabWidget(this);
  auto* form = new QWidget;
  auto* fl = new QVBoxLayout(form);
  if (kind == "chat") {
    auto* row = new QHBoxLayout;
    messages_ = new QListWidget;
    messages_->setObjectName("messages");
    auto* side = new QVBoxLayout;
    const std::pair<const char*, std::function<void()>> buttons[] = {
        {"Add", [this] { addMessage(msgs_.isEmpty() || msgs_.back().role != "user" ? "user" : "assistant", ""); }},
        {"Remove", [this] { removeMessage(current_); }},
        {"Up", [this] { moveMessage(current_, -1); }},
        {"Down", [this] { moveMessage(current_, 1); }}};
    for (const auto& [name, fn] : buttons) {
      auto* b = new QPushButton(name);
      connect(b, &QPushButton::clicked, this, fn);
      side->addWidget(b);
    }
    side->addStretch();
    row->addWidget(messages_, 1);
    row->addLayout(side);
    fl->addLayout(row, 1);
    role_ = new QComboBox;
    role_->addItems({"system", "user", "assistant"});
    content_ = new QPlainTextEdit;
    content_->setFont(monoFont());
    fl->addWidget(new QLabel("Role"));
    fl->addWidget(role_);
    fl->addWidget(new QLabel("Content"));
    fl->addWidget(content_, 2);
    connect(messages_, &QListWidget::currentRowChanged, this, [this](int i) {
      syncMessage();
      showMessage(i);
    });
    connect(role_, &QComboBox::currentTextChanged, this, [this] { syncMessage(); });
    connect(content_, &QPlainTextEdit::textChanged, this, [this] { syncMessage(); });
  } else {
    field_names_ = kind == "preference" ? QStringList{"prompt", "chosen", "rejected"}
                   : kind == "text"     ? QStringList{"text"}
                                        : QStringList{"prompt"};
    if (kind == "candidates") {
      const json j = json::parse(canonical_json);
      for (size_t i = 0; i < j["responses"].size(); ++i) field_names_ << QString("response %1").arg(QChar('A' + int(i)));
    }
    for (const QString& f : field_names_) {
      fl->addWidget(new QLabel(f));
      auto* e = new QPlainTextEdit;
      e->setFont(monoFont());
      e->setObjectName(f);
      fields_ << e;
      fl->addWidget(e, 1);
    }
  }
  tabs_->addTab(form, "Form");
  json_ = new QPlainTextEdit;
  json_->setFont(monoFont());
  tabs_->addTab(json_, "JSON");
  lay->addWidget(tabs_, 1);
  problems_ = new QLabel;
  problems_->setWordWrap(true);
  problems_->setStyleSheet("color: #c0392b");
  lay->addWidget(problems_);
  auto* bb = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  lay->addWidget(bb);
  connect(bb, &QDialogButtonBox::accepted, this, [this] { tryAccept(); });
  connect(bb, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
    if (i == 1) json_->setPlainText(QString::fromStdString(json::parse(fromForm()).dump(2)));
    else {
      try {
        loadForm(json::parse(json_->toPlainText().toStdString()).dump());
      } catch (const std::exception& e) {
        problems_->setText(QString::fromStdString(json_problem(json_->toPlainText().toStdString(), e.what())));
        tabs_->setCurrentIndex(1);
      }
    }
  });
  loadForm(canonical_json);
}

void RowEditor::loadForm(const std::string& text) {
  const json j = json::parse(text);
  if (messages_) {
    msgs_.clear();
    for (const auto& m : j.value("messages", json::array()))
      msgs_.push_back({QString::fromStdString(m.value("role", "user")), QString::fromStdString(m.value("content", ""))});
    current_ = -1;
    messages_->blockSignals(true);
    messages_->clear();
    for (const auto& m : msgs_) messages_->addItem(m.role + ": " + m.content.left(80));
    messages_->blockSignals(false);
    messages_->setCurrentRow(msgs_.isEmpty() ? -1 : 0);
    showMessage(msgs_.isEmpty() ? -1 : 0);
    return;
  }
  for (int i = 0; i < fields_.size(); ++i) {
    const QString f = field_names_[i];
    json v = f.startsWith("response ") ? j["responses"][size_t(i - 1)] : j[f.toStdString()];
    fields_[i]->setPlainText(v.is_string() ? QString::fromStdString(v.get<std::string>()) : QString::fromStdString(v.dump()));
    // A structured value (a conversational prompt) is edited on the JSON tab.
    fields_[i]->setReadOnly(!v.is_string());
  }
}

std::string RowEditor::fromForm() const {
  json j = json::parse(result_);
  if (messages_) {
    json ms = json::array();
    for (const auto& m : msgs_) ms.push_back({{"role", m.role.toStdString()}, {"content", m.content.toStdString()}});
    j["messages"] = ms;
    return j.dump();
  }
  for (int i = 0; i < fields_.size(); ++i) {
    if (fields_[i]->isReadOnly()) continue;
    const QString f = field_names_[i];
    const std::string v = fields_[i]->toPlainText().toStdString();
    if (f.startsWith("response ")) j["responses"][size_t(i - 1)] = v;
    else j[f.toStdString()] = v;
  }
  return j.dump();
}

void RowEditor::syncMessage() {
  if (current_ < 0 || current_ >= msgs_.size()) return;
  msgs_[current_] = {role_->currentText(), content_->toPlainText()};
  if (auto* it = messages_->item(current_)) it->setText(msgs_[current_].role + ": " + msgs_[current_].content.left(80));
}

void RowEditor::showMessage(int i) {
  current_ = -1;  // no sync while the fields are filled
  const bool ok = i >= 0 && i < msgs_.size();
  role_->setEnabled(ok);
  content_->setEnabled(ok);
  role_->setCurrentText(ok ? msgs_[i].role : "user");
  content_->setPlainText(ok ? msgs_[i].content : QString());
  current_ = ok ? i : -1;
}

int RowEditor::messageCount() const { return msgs_.size(); }

void RowEditor::setMessage(int i, const QString& role, const QString& text) {
  messages_->setCurrentRow(i);
  role_->setCurrentText(role);
  content_->setPlainText(text);
}

void RowEditor::addMessage(const QString& role, const QString& text) {
  syncMessage();
  msgs_.push_back({role, text});
  messages_->addItem(role + ": " + text.left(80));
  messages_->setCurrentRow(msgs_.size() - 1);
}

void RowEditor::removeMessage(int i) {
  if (i < 0 || i >= msgs_.size()) return;
  current_ = -1;
  msgs_.removeAt(i);
  delete messages_->takeItem(i);
  showMessage(messages_->currentRow());
}

void RowEditor::moveMessage(int i, int delta) {
  const int j = i + delta;
  if (i < 0 || j < 0 || i >= msgs_.size() || j >= msgs_.size()) return;
  syncMessage();
  msgs_.swapItemsAt(i, j);
  for (int k : {i, j}) messages_->item(k)->setText(msgs_[k].role + ": " + msgs_[k].content.left(80));
  messages_->setCurrentRow(j);
}

bool RowEditor::tryAccept() {
  std::string text;
  try {
    text = tabs_->currentIndex() == 1 ? json::parse(json_->toPlainText().toStdString()).dump() : fromForm();
  } catch (const std::exception& e) {
    problems_->setText(QString::fromStdString(json_problem(json_->toPlainText().toStdString(), e.what())));
    return false;
  }
  DatasetKind k;
  if (!dataset_kind_from_name(kind_.toStdString(), &k)) return false;
  std::string canonical;
  auto problems = validate_record(k, text, &canonical);
  QStringList msgs;
  for (const auto& p : problems)
    if (p.error) msgs << QString::fromStdString((p.field.empty() ? "" : p.field + ": ") + p.message);
  if (!msgs.isEmpty()) {
    problems_->setText(msgs.join("\n"));
    return false;
  }
  result_ = canonical;
  accept();
  return true;
}

}  // namespace hone::ui
