// Datasets page: the workspace's datasets (import, rename, delete, export, split), an editable table
// over the selected one with lazy paging, search as a filter, add / duplicate / edit / delete rows,
// bulk delete of a filter's result and undo; statistics with a token-length histogram; and the
// template preview: a row rendered with a model's chat template, token boundaries shown, the tokens
// the loss is computed on coloured apart from the masked ones.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QWidget>
#include <memory>
#include <vector>

#include "store/datasets.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableView;
class QTableWidget;
class QTextBrowser;

namespace hone {
class Tokenizer;
}

namespace hone::ui {

class Job;
class RowsModel;

class DatasetsPage : public QWidget {
  Q_OBJECT
 public:
  explicit DatasetsPage(QWidget* parent = nullptr);
  ~DatasetsPage() override;
  void setWorkspace(const QString& dir);
  // Tokenizer and chat template for statistics and preview: taken when the fields are empty or
  // still hold `previous` (the model another page offered before), so a folder typed here stays.
  void setModelFolder(const QString& dir, const QString& previous = QString());
  QString statisticsModelFolder() const;
  void setTokenizerFolder(const QString& dir);  // replaces the statistics' and preview's model, loads it
  void refresh();                           // the dataset list, keeping the selection

  // For tests and the shell.
  bool selectDataset(const QString& name);
  QString currentDataset() const;
  int datasetCount() const;
  RowsModel* rows() const { return model_; }
  QTableView* table() const { return table_; }
  void importFile(const QString& path);  // opens the import wizard on it
  bool updateRow(int view_row, const std::string& canonical_json);
  bool deleteRows(const QList<int>& view_rows);
  bool undo();
  bool redo();  // re-applies the newest undone edit (a new edit clears what can be redone)
  void search(const QString& needle);  // filter: on a worker, then the table shows the matches
  Job* worker() const { return job_; }
  void computeStats();
  QString statsText() const;
  void previewRow(int view_row);
  void showTab(int index);  // 0 rows, 1 statistics, 2 template preview
  int previewTrained() const { return preview_trained_; }
  int previewMasked() const { return preview_masked_; }
  QString previewFormat() const;
  Job* tokenizerJob() const { return tok_job_; }

 Q_SIGNALS:
  void datasetsChanged();
  void labelRequested(const QString& dataset);  // "Label" on a candidates dataset
  void modelChosen(const QString& dir);          // a model folder typed or chosen here, for the other pages

 private:
  void openSelected();
  void addRow(bool duplicate);
  void editRow(int view_row);
  void exportSelected();
  void splitSelected();
  void renameSelected();
  void deleteSelected();
  void deleteMatching();
  void loadTokenizer();
  void renderPreview();
  void busy(bool on, const QString& what);

  QString workspace_, model_dir_;
  QTableWidget* list_;
  QTabWidget* tabs_;
  QTableView* table_;
  RowsModel* model_;
  QLineEdit* search_;
  QLabel* filter_info_;
  QPushButton* delete_matching_;
  QLabel* status_;
  Job* job_;       // search, export, split, bulk delete
  Job* stats_job_;
  Job* tok_job_;
  // statistics
  QLineEdit* stats_model_;
  QSpinBox* max_len_;
  QCheckBox* templated_;
  QPushButton* stats_cancel_;
  QCustomPlot* hist_;
  QLabel* stats_text_;
  QVector<qint64> token_lengths_;
  // preview
  QLineEdit* preview_model_;
  QComboBox* preview_format_;
  QSpinBox* preview_row_;
  QSpinBox* preview_max_len_;
  QTextBrowser* preview_;
  QLabel* preview_counts_;
  std::shared_ptr<Tokenizer> tok_;
  std::shared_ptr<std::shared_ptr<Tokenizer>> tok_pending_;  // filled by the loading job
  QString tok_dir_;
  int preview_trained_ = 0, preview_masked_ = 0;
  std::vector<Revision> redo_;  // edits undone here, newest last
};

}  // namespace hone::ui
