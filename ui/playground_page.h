// Playground: one prompt sent to two models side by side (the base model, or what a run produced),
// tokens streaming in on workers with the same seed and sampling settings on both sides; chat mode
// keeps each side's conversation in the model's template; Stop ends both; a conversation, or a
// corrected answer, is saved as a row of a chat dataset.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>
#include <memory>
#include <vector>

#include "tokenizer/chat_template.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTextBrowser;

namespace hone {
class TextGenerator;
}

namespace hone::ui {

class Job;

class PlaygroundPage : public QWidget {
  Q_OBJECT
 public:
  explicit PlaygroundPage(QWidget* parent = nullptr);
  ~PlaygroundPage() override;
  void setWorkspace(const QString& dir);
  // The base folder, taken when empty or still holding `previous` (another page's earlier offer).
  void setModelFolder(const QString& dir, const QString& previous = QString());
  QString modelFolder() const;
  void refresh();  // the runs offered on each side

  // For tests and the shell. Side 0 is left, 1 right; source "" = the base model, else a run folder.
  bool setSource(int side, const QString& run_dir);
  QString sourceOf(int side) const;
  void setPrompt(const QString& text);
  void setSampling(double temperature, int max_new_tokens, int seed);
  void setChatMode(bool on);
  bool send();
  void stop();
  bool busy() const;
  QString answer(int side) const;  // the reply shown on that side (the last one in chat mode)
  Job* job(int side) const;
  QString statusOf(int side) const;  // the line above that side's output
  // Appends side's conversation (with `answer` replacing its last reply when given) to a chat dataset,
  // created when missing.
  bool saveConversation(int side, const QString& dataset, const QString& corrected = QString());

 Q_SIGNALS:
  void generationFinished();  // both sides idle again
  void modelChosen(const QString& dir);  // a base folder typed or chosen here, for the other pages
  void datasetsChanged();

 private:
  struct Side;
  void startSide(int side, const std::vector<ChatMessage>& msgs);
  void redraw(int side);
  void openSaveDialog();

  QString workspace_;
  QLineEdit* model_;
  QComboBox* source_[2];
  QDoubleSpinBox* temperature_;
  QDoubleSpinBox* top_p_;
  QSpinBox* max_new_;
  QSpinBox* seed_;
  QCheckBox* chat_;
  QLineEdit* system_;
  QPlainTextEdit* prompt_;
  QPushButton* send_;
  QPushButton* stop_;
  QTextBrowser* out_[2];
  QLabel* info_[2];
  std::unique_ptr<Side> sides_[2];
  bool generating_ = false;
};

}  // namespace hone::ui
