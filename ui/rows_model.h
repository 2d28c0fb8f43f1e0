// Table model over a dataset's rows in SQLite with lazy paging: pages of 256 rows are read on demand
// by position (an indexed range query) and kept in a small LRU cache, so a 1M-row dataset scrolls
// without loading it. A filter shows only given positions (search results from a worker).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QAbstractTableModel>
#include <QHash>
#include <QList>
#include <QStringList>
#include <QVector>
#include <memory>

#include "store/datasets.h"

namespace hone::ui {

class RowsModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  explicit RowsModel(QObject* parent = nullptr);
  ~RowsModel() override;
  // Opens a dataset (its own SQLite connection on this thread); id 0 closes.
  void open(const QString& workspace, qint64 dataset_id);
  void reload();  // row count and cache refreshed after an edit or an outside change
  void setFilter(const QVector<qint64>& positions);
  void clearFilter();
  bool filtered() const { return filtered_; }
  qint64 datasetId() const { return dataset_; }
  QString kind() const { return kind_; }
  qint64 positionAt(int row) const;
  int rowOfPosition(qint64 pos) const;  // -1 when filtered out
  // The stored row at a view row (read through the cache); id 0 when out of range.
  DatasetRow rowAt(int row);
  Workspace* workspace() { return ws_.get(); }
  qint64 pagesRead() const { return pages_read_; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation o, int role) const override;

  // One-line text of each column for a canonical row of a kind (also used by the Label page).
  static QStringList cells(const QString& kind, const DatasetRow& r);
  static QStringList columns(const QString& kind);

 private:
  struct Page {
    QVector<DatasetRow> rows;
    QVector<QStringList> cells;
  };
  const Page* page(qint64 index) const;

  std::unique_ptr<Workspace> ws_;
  qint64 dataset_ = 0, rows_ = 0;
  QString kind_;
  bool filtered_ = false;
  QVector<qint64> filter_;
  mutable QHash<qint64, Page> cache_;
  mutable QList<qint64> lru_;
  mutable qint64 pages_read_ = 0;
};

}  // namespace hone::ui
