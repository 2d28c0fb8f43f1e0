// Label page: every preference dataset judged by keyboard. Candidates: a prompt and 1-8 sampled
// responses; with two, 1/A left better, 2/B right better, T tie, X both bad, S skip; with more,
// digits rank them best first (Enter saves a partial order such as best and worst). Plain
// preference pairs are reviewed: K/1 keep, F/2 flip, T tie, D drop, S skip. Two responses that
// read the same are shown as identical and cannot be preferred. E edits a response (the original
// is kept), N adds a note, Ctrl+Z undoes, arrows move. The queue is read a page at a time
// (LabelQueue). Each verdict is the annotator's (Settings) and is written at once; verdict sets
// export and merge across workspaces, and the Team menu shows two annotators' agreement.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

#include "serve/candidate_dataset.h"
#include "store/labels.h"

class QCheckBox;
class QComboBox;
class QGridLayout;
class QLabel;
class QListView;
class QProgressBar;
class QPushButton;
class QTextBrowser;

namespace hone::ui {

class Job;
class LabelQueue;

class LabelPage : public QWidget {
  Q_OBJECT
 public:
  explicit LabelPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void setModelFolder(const QString& dir);  // default model for "Generate candidates"
  QString modelFolder() const { return model_dir_; }
  void refresh();                           // datasets and the queue, keeping the place

  // For tests and the shell.
  bool openDataset(const QString& name);
  QString currentDataset() const;
  QString currentKind() const;
  int currentPosition() const;  // row position shown, -1 when none
  int labelledCount() const;
  int queueSize() const;
  void setFilter(const QString& which);  // all | unlabelled | mine (not judged by me) | labelled | skipped
  // a | b | tie | both_bad | skip (candidates), keep | flip | tie | drop | skip (preference).
  bool verdict(const QString& label);
  bool rank(const QList<int>& order);  // candidates with more than two responses, best first
  bool editResponse(int which, const QString& text);
  bool setNote(const QString& note);
  bool undo();
  void move(int delta);
  bool identicalShown() const;       // the shown row's responses include an identical pair
  QString responseText(int k) const;  // response k as its pane shows it
  void setRenderMarkdown(bool on);
  bool preferButtonsEnabled() const;  // "A better"/"B better" (or keep/flip) can be pressed
  Job* generator() const { return gen_job_; }
  LabelQueue* queue() const { return model_; }
  QString statusText() const;
  QString tallyText() const;
  static QString annotator();  // Settings' name, else the login name
  // Samples candidates in the background (the Generate dialog fills the request).
  bool generateCandidates(const CandidateRequest& r);
  bool generateCandidates(const QString& source, const QString& model_dir, const QString& run_dir, int n, const QString& name,
                          int max_new_tokens = 64, int limit = 0);  // limit: first N prompts (0 = all)
  // "Train DPO on these": counts the pairs that can train and what is left out, then asks the
  // window for the Train page (nothing is asked when no pair can train). Returns the counts' text.
  QString trainOnThese();
  QString agreementText();                       // Cohen's kappa and the rows two annotators differ on
  bool exportVerdicts(const QString& path);      // every verdict of the dataset
  QString mergeVerdicts(const QString& path);    // the merge's report ("" on failure)

 Q_SIGNALS:
  // base_model / init_adapter: what wrote the candidates ("" when unknown: the Train page keeps its own).
  void trainRequested(const QString& dataset, const QString& method, const QString& summary, const QString& base_model,
                      const QString& init_adapter);
  void datasetsChanged();

 protected:
  void keyPressEvent(QKeyEvent* e) override;
  void showEvent(QShowEvent* e) override;  // the queue takes the keyboard
  bool eventFilter(QObject* o, QEvent* e) override;

 private:
  bool handleKey(QKeyEvent* e);
  void loadQueue(qint64 keep_pos = -2);  // -2: keep the shown row; -1: the first unlabelled
  void select(int index);
  void showRow();
  void afterWrite(qint64 pos, bool advance);
  void updateProgress();
  void updateTally(qint64 rows);
  void openGenerateDialog();
  void openAgreementDialog();
  bool saveRanking();
  bool write(const std::string& label, const std::vector<int>& ranking, const std::string& note);
  std::string nextFor() const;

  QString workspace_, model_dir_;
  QComboBox* dataset_;
  QComboBox* filter_;
  QListView* queue_;
  LabelQueue* model_;
  QLabel* progress_text_;
  QProgressBar* progress_;
  QTextBrowser* prompt_;
  QGridLayout* grid_;
  QList<QLabel*> titles_;
  QList<QTextBrowser*> panes_;
  QLabel* banner_;
  QLabel* tally_;  // two-source candidates: which source the verdicts prefer
  QCheckBox* markdown_;  // render the texts as Markdown (off: exactly as they train)
  QLabel* note_;
  QLabel* status_;
  QList<QPushButton*> verdict_buttons_;
  QPushButton* train_;
  QProgressBar* gen_progress_;
  QPushButton* gen_cancel_;
  Job* gen_job_;
  CandidateRow shown_;  // the row on screen (row_id 0: none)
  int progress_labelled_ = 0;
  QList<int> ranking_;  // digits pressed so far on a row of more than two responses
  struct UndoStep {
    bool edit = false;
    qint64 position = 0;
    Verdict before;  // this annotator's verdict before the change
  };
  QList<UndoStep> undo_;
  QString pending_note_;
  CandidateRequest last_request_;  // the Generate dialog starts from the previous choices
};

}  // namespace hone::ui
