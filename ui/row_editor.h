// Row editor: a chat row as a list of messages (role and text; add, remove, move up and down), a
// preference row as prompt / chosen / rejected, a candidates row as prompt and responses, a text row
// as text, and any row as its JSON. The result is validated by the core before it is accepted.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QDialog>
#include <string>

class QComboBox;
class QListWidget;
class QPlainTextEdit;
class QTabWidget;
class QLabel;

namespace hone::ui {

class RowEditor : public QDialog {
  Q_OBJECT
 public:
  RowEditor(const QString& kind, const std::string& canonical_json, QWidget* parent = nullptr);
  std::string rowJson() const { return result_; }  // canonical, valid for the kind once accepted

  // For tests: the chat editor's messages.
  int messageCount() const;
  void setMessage(int i, const QString& role, const QString& text);
  void addMessage(const QString& role, const QString& text);
  void removeMessage(int i);
  void moveMessage(int i, int delta);
  bool tryAccept();  // validates; false (with the problems shown) when invalid

 private:
  std::string fromForm() const;
  void loadForm(const std::string& json);
  void syncMessage();
  void showMessage(int i);

  QString kind_;
  std::string result_;
  QTabWidget* tabs_;
  QPlainTextEdit* json_;
  QLabel* problems_;
  // chat
  QListWidget* messages_ = nullptr;
  QComboBox* role_ = nullptr;
  QPlainTextEdit* content_ = nullptr;
  struct Msg {
    QString role, content;
  };
  QList<Msg> msgs_;
  int current_ = -1;
  // other kinds: one text box per field
  QList<QPlainTextEdit*> fields_;
  QStringList field_names_;
};

}  // namespace hone::ui
