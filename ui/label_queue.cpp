// LabelQueue (see label_queue.h). Pages of 128 rows, eight kept.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "label_queue.h"

#include <QColor>
#include <QRegularExpression>
#include <nlohmann/json.hpp>

#include "look.h"

namespace hone::ui {

namespace {
constexpr qint64 kPage = 128;
constexpr int kPagesKept = 8;

QString promptText(const nlohmann::json& p) {
  if (p.is_string()) return qs(p.get<std::string>());
  QString out;  // a conversation: its last user turn is what the responses answer
  for (const auto& m : p)
    if (m.value("role", "") == "user") out = qs(m.value("content", ""));
  return out;
}
}  // namespace

LabelQueue::LabelQueue(QObject* parent) : QAbstractListModel(parent) {}
LabelQueue::~LabelQueue() = default;

void LabelQueue::open(const QString& workspace, qint64 dataset_id, const QString& kind, const QString& filter,
                      const QString& annotator) {
  beginResetModel();
  cache_.clear();
  lru_.clear();
  dataset_ = 0;
  count_ = 0;
  kind_ = kind;
  filter_ = filter.isEmpty() ? "all" : filter;
  annotator_ = annotator;
  if (dataset_id > 0) {
    if (!ws_ || ws_->dir() != ss(workspace)) ws_ = std::make_unique<Workspace>(ss(workspace));
    dataset_ = dataset_id;
    count_ = count_label_rows(*ws_, dataset_, ss(filter_), ss(annotator_));
  } else {
    ws_.reset();
  }
  endResetModel();
}

void LabelQueue::reload() {
  if (!dataset_) return;
  beginResetModel();
  cache_.clear();
  lru_.clear();
  count_ = count_label_rows(*ws_, dataset_, ss(filter_), ss(annotator_));
  endResetModel();
}

const QList<CandidateRow>* LabelQueue::page(qint64 n) const {
  auto it = cache_.find(n);
  if (it != cache_.end()) {
    lru_.removeOne(n);
    lru_.append(n);
    return &it.value();
  }
  QList<CandidateRow> rows;
  for (auto& r : page_label_rows(*ws_, dataset_, ss(filter_), n * kPage, kPage, ss(annotator_))) rows.append(std::move(r));
  ++pages_read_;
  if (lru_.size() >= kPagesKept) cache_.remove(lru_.takeFirst());
  lru_.append(n);
  return &cache_.insert(n, std::move(rows)).value();
}

CandidateRow LabelQueue::rowAt(int index) const {
  if (index < 0 || index >= count_ || !dataset_) return {};
  const auto* p = page(index / kPage);
  const int k = int(index % kPage);
  return k < p->size() ? p->at(k) : CandidateRow{};
}

int LabelQueue::indexOfPosition(qint64 position) const {
  if (!dataset_ || position < 0) return -1;
  return int(filtered_index(*ws_, dataset_, ss(filter_), position, ss(annotator_)));
}

int LabelQueue::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(count_); }

QString LabelQueue::plainText(const QString& markdown) {
  QString t = markdown;
  static const QRegularExpression marks(R"((\*\*|__|`{1,3}|^#{1,6}\s|^>\s|^\s*[-*+]\s))", QRegularExpression::MultilineOption);
  static const QRegularExpression links(R"(\[([^\]]*)\]\([^)]*\))");
  t.replace(links, "\\1");
  t.replace(marks, "");
  return t.simplified();
}

QString LabelQueue::verdictText(const CandidateRow& r, const QString& kind) {
  const std::string& l = r.label;
  if (l.empty()) return r.identical.empty() || kind == "preference" ? "unlabelled" : "identical";
  if (l == "skip") return "skipped";
  if (kind == "preference") {
    if (l == "chosen") return "kept";
    if (l == "rejected") return "flipped";
    if (l == "drop") return "dropped";
    return qs(l);
  }
  if (r.responses < 2) return l == "a" ? "good" : l == "both_bad" ? "bad" : qs(l);
  if (l == "a") return "A better";
  if (l == "b") return "B better";
  if (l == "both_bad") return "both bad";
  if (l == "ranked") {
    QString s;
    for (int k : r.ranking) s += (s.isEmpty() ? "" : ">") + QString(QChar('A' + k));
    return s;
  }
  return qs(l);
}

QVariant LabelQueue::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= count_) return {};
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole && role != Qt::ForegroundRole) return {};
  const CandidateRow r = rowAt(index.row());
  if (!r.row_id) return {};
  if (role == Qt::ForegroundRole) return r.label.empty() ? QVariant() : QVariant(QColor(110, 110, 110));
  QString p;
  try {
    p = plainText(promptText(nlohmann::json::parse(r.data)["prompt"]));
  } catch (const std::exception&) {
  }
  if (role == Qt::ToolTipRole) return p.left(600);
  if (p.size() > 60) p = p.left(60) + "…";
  return QString("%1  [%2]  %3").arg(r.position).arg(verdictText(r, kind_), p);
}

}  // namespace hone::ui
