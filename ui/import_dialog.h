// Import wizard: a file or folder (picked, typed or dropped), the detected format and kind with a
// preview of the first rows, an optional field mapping, and the validation report; a click on a
// problem shows its line in the file. Reading and importing run as jobs with progress and cancel.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QDialog>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace hone::ui {

class Job;

class ImportDialog : public QDialog {
  Q_OBJECT
 public:
  ImportDialog(const QString& workspace, const QString& path = QString(), QWidget* parent = nullptr);
  void setPath(const QString& path);  // and checks it
  qint64 importedId() const { return imported_; }

  // For tests and the shell.
  QString summaryText() const;
  QString fieldsText() const;  // the first row's field names, a hint for the mapping
  int problemCount() const;
  int previewRows() const;
  void showProblem(int i);        // what a click on a problem does
  QString focusedLine() const;    // the file line shown for the selected problem
  // Replaces the selected problem's line in the file (the first fix keeps the file as it was in
  // FILE.orig; the new file is written beside it and renamed over it), then checks again.
  bool fixLine(const QString& text);
  void check();                   // reads the path again with the form's options
  void startImport();
  Job* job() const { return job_; }
  void setName(const QString& n);
  void setFormat(const QString& f);  // "auto", "prompts", ...
  void setSkipInvalid(bool on);

 Q_SIGNALS:
  void checked();  // a check finished (ok or not)

 private:
  QString workspace_;
  QLineEdit* path_;
  void updateDefaultName();  // the name field follows the source until the user types a name
  QLineEdit* name_;
  QComboBox* format_;
  QLineEdit* field_map_;
  QCheckBox* skip_invalid_;
  QLabel* fields_;
  QLabel* summary_;
  QTableWidget* preview_;
  QListWidget* problems_;
  QPlainTextEdit* source_;
  QLineEdit* fix_;
  QPushButton* fix_button_;
  QString fix_path_;
  int fix_line_ = 0;
  QProgressBar* progress_;
  QPushButton* import_;
  QPushButton* cancel_;
  Job* job_;
  QStringList problem_where_;
  bool valid_ = false;
  qint64 imported_ = 0;
  enum class Doing { Nothing, Check, Import } doing_ = Doing::Nothing;
};

}  // namespace hone::ui
