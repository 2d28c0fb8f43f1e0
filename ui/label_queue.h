// The Label page's queue: a list model over a preference or candidates dataset's rows under a
// filter, read a page at a time (store/labels.h), so that a 100k-row dataset opens at once. Each
// line is plain text: row number, verdict and the prompt's start, with Markdown marks removed.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QAbstractListModel>
#include <QHash>
#include <QList>
#include <memory>

#include "store/labels.h"

namespace hone::ui {

class LabelQueue : public QAbstractListModel {
  Q_OBJECT
 public:
  explicit LabelQueue(QObject* parent = nullptr);
  ~LabelQueue() override;
  // Opens a dataset (own connection on this thread) under a filter; id 0 closes.
  // `annotator`: whose verdicts the filter "mine" leaves out.
  void open(const QString& workspace, qint64 dataset_id, const QString& kind, const QString& filter,
            const QString& annotator = QString());
  void reload();  // count and cache re-read after a verdict or an edit
  qint64 datasetId() const { return dataset_; }
  QString kind() const { return kind_; }
  QString filter() const { return filter_; }
  // The row at a queue index (through the cache); row_id 0 when out of range.
  CandidateRow rowAt(int index) const;
  int indexOfPosition(qint64 position) const;  // -1 when the filter hides it
  Workspace* workspace() { return ws_.get(); }
  qint64 pagesRead() const { return pages_read_; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role) const override;

  static QString verdictText(const CandidateRow& r, const QString& kind);
  static QString plainText(const QString& markdown);  // "**B** `x`" -> "B x"

 private:
  const QList<CandidateRow>* page(qint64 n) const;
  std::unique_ptr<Workspace> ws_;
  qint64 dataset_ = 0, count_ = 0;
  QString kind_, filter_ = "all", annotator_;
  mutable QHash<qint64, QList<CandidateRow>> cache_;
  mutable QList<qint64> lru_;
  mutable qint64 pages_read_ = 0;
};

}  // namespace hone::ui
