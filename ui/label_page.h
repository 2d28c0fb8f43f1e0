// Label page: candidate pairs (a prompt with two sampled responses) judged by keyboard. Prompt
// above, responses side by side (Markdown and code rendered), a queue with filters and progress.
// Keys: 1/A left better, 2/B right better, T tie, X both bad, S skip, E edit a response (the
// original is kept), N note, Ctrl+Z undo, arrows move. Rows with one response are rated up (1/A)
// or down (2/B/X) for KTO. Every verdict is written at once. "Generate candidates" samples new
// rows in the background; "Train DPO on these" opens the Train page on the dataset.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

#include "store/labels.h"

class QComboBox;
class QLabel;
class QListWidget;
class QProgressBar;
class QPushButton;
class QTextBrowser;

namespace hone::ui {

class Job;

class LabelPage : public QWidget {
  Q_OBJECT
 public:
  explicit LabelPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void setModelFolder(const QString& dir);  // default model for "Generate candidates"
  void refresh();                           // datasets and the queue, keeping the place

  // For tests and the shell.
  bool openDataset(const QString& name);
  QString currentDataset() const;
  int currentPosition() const;  // row position shown, -1 when none
  int labelledCount() const;
  int queueSize() const;
  void setFilter(const QString& which);  // all | unlabelled | labelled | skipped
  bool verdict(const QString& label);    // a | b | tie | both_bad | skip on the shown row
  bool editResponse(int which, const QString& text);
  bool setNote(const QString& note);
  bool undo();
  void move(int delta);
  Job* generator() const { return gen_job_; }
  QString statusText() const;
  // Samples candidates for `source` (dataset name) with a model folder or a run folder.
  bool generateCandidates(const QString& source, const QString& model_dir, const QString& run_dir, int n, const QString& name,
                          int max_new_tokens = 64, int limit = 0);  // limit: first N prompts (0 = all)

 Q_SIGNALS:
  void trainRequested(const QString& dataset, const QString& method);
  void datasetsChanged();

 protected:
  void keyPressEvent(QKeyEvent* e) override;
  void showEvent(QShowEvent* e) override;  // the queue takes the keyboard
  bool eventFilter(QObject* o, QEvent* e) override;

 private:
  bool handleKey(QKeyEvent* e);
  void loadQueue();                   // the dataset read from the store
  void rebuildQueue(int keep_pos = -2);  // the queue from what is in memory (-2: keep the shown row)
  void reloadRow(qint64 position);
  void show(int queue_index);
  void updateProgress();
  void openGenerateDialog();
  const CandidateRow* current() const;

  QString workspace_, model_dir_;
  QComboBox* dataset_;
  QComboBox* filter_;
  QListWidget* queue_;
  QLabel* progress_text_;
  QProgressBar* progress_;
  QTextBrowser* prompt_;
  QTextBrowser* left_;
  QTextBrowser* right_;
  QLabel* left_title_;
  QLabel* right_title_;
  QLabel* note_;
  QLabel* status_;
  QPushButton* train_;
  QProgressBar* gen_progress_;
  QPushButton* gen_cancel_;
  Job* gen_job_;
  qint64 dataset_id_ = 0;
  std::vector<CandidateRow> rows_;
  QList<int> shown_;  // indices into rows_ that the filter shows
  struct UndoStep {
    bool edit = false;
    qint64 position = 0;
    std::string label, note;
  };
  QList<UndoStep> undo_;
  QString pending_note_;
};

}  // namespace hone::ui
