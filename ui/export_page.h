// Export page: a completed run written as a PEFT adapter or a merged Hugging Face model (F32, BF16,
// F16) into a folder, with a size estimate, progress on a worker, and the export check's verdict
// (green when the reloaded artifact matches the run, red with the reason when not).
#pragma once
#include <QWidget>

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
  void setFormat(const QString& format, const QString& dtype = QString());  // peft | merged
  void setDestination(const QString& dir);
  bool startExport();
  Job* job() const { return job_; }
  QString resultText() const;
  bool lastPassed() const { return passed_; }

 private:
  void updateEstimate();

  QString workspace_;
  QComboBox* run_;
  QComboBox* format_;
  QComboBox* dtype_;
  QLineEdit* out_;
  QLabel* estimate_;
  QLabel* result_;
  QPushButton* export_;
  QPushButton* open_;
  Job* job_;
  bool passed_ = false;
};

}  // namespace hone::ui
