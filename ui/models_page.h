// Models page: the Hugging Face cache (what is there, its architecture, size and whether Hone can
// load it, and why not), the hub's search, downloads into the cache with progress and cancel (a
// cancelled download resumes next time), the hub token, and "Use for Training". The listing,
// search and download run on Jobs; the GUI thread never waits on the network or the disk.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>

class QCheckBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace hone::ui {

class Job;

class ModelsPage : public QWidget {
  Q_OBJECT
 public:
  explicit ModelsPage(QWidget* parent = nullptr);

  void refresh();  // re-reads the cache (on a worker)
  void search(const QString& query);
  // ORG/NAME[@REV]; a dataset repo when `dataset`.
  bool download(const QString& ref, bool dataset = false);
  void cancelDownload();
  // The cached model's row selected and "Use for Training" pressed.
  bool useForTraining(const QString& id);

  // For tests.
  QTableWidget* cachedTable() const { return cached_; }
  QTableWidget* resultsTable() const { return results_; }
  Job* listJob() const { return list_job_; }
  Job* searchJob() const { return search_job_; }
  Job* downloadJob() const { return download_job_; }
  QProgressBar* progressBar() const { return progress_; }
  QString statusText() const;

 Q_SIGNALS:
  void useForTrainingRequested(const QString& ref);

 private:
  void updateToken();
  void setToken();
  void removeSelected();
  QString selectedCached() const;
  void updateButtons();

  QLabel* cache_label_;
  QLabel* token_label_;
  QTableWidget* cached_;
  QPushButton* use_;
  QPushButton* remove_;
  QPushButton* open_;
  QLineEdit* query_;
  QCheckBox* all_archs_;
  QPushButton* search_btn_;
  QTableWidget* results_;
  QLineEdit* name_;
  QCheckBox* dataset_;
  QPushButton* download_btn_;
  QPushButton* cancel_;
  QProgressBar* progress_;
  QLabel* status_;
  Job* list_job_;
  Job* search_job_;
  Job* download_job_;
  bool refresh_again_ = false;
};

}  // namespace hone::ui
