// Export page: a completed run written as a PEFT adapter, a merged Hugging Face model, GGUF (model
// or LoRA adapter) or for Ollama, in the data types each format takes, into a folder; with a size
// estimate, progress on a worker, and the export check's verdict (green when the reloaded artifact
// matches the run, red with the reason when not).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace hone::ui {

class Job;

class ExportPage : public QWidget {
  Q_OBJECT
 public:
  explicit ExportPage(QWidget* parent = nullptr);
  void setWorkspace(const QString& dir);
  void refresh();  // the runs offered

  // For tests and the shell.
  bool selectRun(const QString& run_dir);
  // peft | merged | gguf | gguf-lora | ollama; dtype as hone-cli export --dtype takes it
  void setFormat(const QString& format, const QString& dtype = QString());
  void setDestination(const QString& dir);
  bool startExport();
  Job* job() const { return job_; }
  QString resultText() const;
  bool lastPassed() const { return passed_; }

 private:
  void updateEstimate();
  void fillDtypes();  // the data types the chosen format takes

  QString workspace_;
  QComboBox* run_;
  QComboBox* format_;
  QComboBox* dtype_;
  QCheckBox* base_;
  QCheckBox* calibrate_;
  QLineEdit* out_;
  QLabel* estimate_;
  QLabel* result_;
  QPushButton* export_;
  QPushButton* open_;
  Job* job_;
  bool passed_ = false;
};

}  // namespace hone::ui
