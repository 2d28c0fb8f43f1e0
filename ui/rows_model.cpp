// RowsModel (see rows_model.h). A page read is one indexed query of 256 rows (about a millisecond),
// which keeps every paint on the GUI thread short however large the dataset is.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "rows_model.h"

#include <QRegularExpression>

#include <nlohmann/json.hpp>

#include "look.h"

namespace hone::ui {

namespace {
constexpr qint64 kPage = 256;
constexpr int kMaxPages = 64;

QString oneLine(const std::string& s, int max = 160) {
  QString q = QString::fromStdString(s.size() > 4 * size_t(max) ? s.substr(0, 4 * size_t(max)) : s);
  q.replace('\n', QStringLiteral(" ⏎ "));
  if (q.size() > max) q = q.left(max) + QStringLiteral("…");
  return q;
}

std::string textOf(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // a conversational prompt or reply
    std::string out;
    for (const auto& m : v) out += (out.empty() ? "" : " | ") + m.value("role", "") + ": " + m.value("content", "");
    return out;
  }
  return v.dump();
}
}  // namespace

RowsModel::RowsModel(QObject* parent) : QAbstractTableModel(parent) {}
RowsModel::~RowsModel() = default;

QStringList RowsModel::columns(const QString& kind) {
  if (kind == "chat") return {"Prompt", "Reply", "Turns", "Source"};
  if (kind == "preference") return {"Prompt", "Chosen", "Rejected", "Label"};
  if (kind == "candidates") return {"Prompt", "Response A", "Response B", "Label"};
  if (kind == "prompts") return {"Prompt", "Turns", "Source"};
  return {"Text", "Chars", "Source"};
}

QStringList RowsModel::cells(const QString& kind, const DatasetRow& r) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.data);
  } catch (const std::exception&) {
    return {oneLine(r.data)};
  }
  const QString label = QString::fromStdString(r.label);
  if (kind == "chat") {
    std::string prompt, reply;
    int turns = 0;
    for (const auto& m : j.value("messages", nlohmann::json::array())) {
      const std::string role = m.value("role", "");
      if (role == "assistant") ++turns, reply = m.value("content", "");
      else if (role == "user" && prompt.empty()) prompt = m.value("content", "");
    }
    return {oneLine(prompt), oneLine(reply), QString::number(turns), QString::fromStdString(r.source)};
  }
  if (kind == "preference")
    return {oneLine(textOf(j["prompt"])), oneLine(textOf(j["chosen"])), oneLine(textOf(j["rejected"])), label};
  if (kind == "candidates") {
    const auto& rs = j["responses"];
    return {oneLine(textOf(j["prompt"])), rs.size() > 0 ? oneLine(textOf(rs[0])) : QString(),
            rs.size() > 1 ? oneLine(textOf(rs[1])) : QString(), label};
  }
  if (kind == "prompts") {
    const auto& p = j["prompt"];
    return {oneLine(textOf(p)), QString::number(p.is_array() ? p.size() : 1), QString::fromStdString(r.source)};
  }
  const std::string t = j.value("text", "");
  return {oneLine(t), QString::number(t.size()), QString::fromStdString(r.source)};
}

void RowsModel::open(const QString& workspace, qint64 dataset_id) {
  beginResetModel();
  cache_.clear();
  lru_.clear();
  filtered_ = false;
  filter_.clear();
  dataset_ = 0;
  rows_ = 0;
  kind_.clear();
  if (dataset_id > 0) {
    if (!ws_ || qs(ws_->dir()) != workspace) ws_ = std::make_unique<Workspace>(ss(workspace));
    DatasetInfo d = find_dataset(*ws_, std::to_string(dataset_id));
    dataset_ = d.id;
    rows_ = d.rows;
    kind_ = qs(d.kind);
  }
  endResetModel();
}

void RowsModel::reload() {
  if (!dataset_) return;
  beginResetModel();
  cache_.clear();
  lru_.clear();
  Stmt s = ws_->db().prepare("SELECT COUNT(*) FROM rows WHERE dataset_id = ?");
  s.bind(1, static_cast<int64_t>(dataset_));
  rows_ = s.step() ? s.i64(0) : 0;
  if (filtered_) {  // positions past the end left the dataset
    QVector<qint64> keep;
    for (qint64 p : filter_)
      if (p < rows_) keep.push_back(p);
    filter_ = keep;
  }
  endResetModel();
}

void RowsModel::setFilter(const QVector<qint64>& positions) {
  beginResetModel();
  filtered_ = true;
  filter_ = positions;
  endResetModel();
}

void RowsModel::clearFilter() {
  beginResetModel();
  filtered_ = false;
  filter_.clear();
  endResetModel();
}

qint64 RowsModel::positionAt(int row) const {
  if (row < 0) return -1;
  if (filtered_) return row < filter_.size() ? filter_[row] : -1;
  return row < rows_ ? row : -1;
}

int RowsModel::rowOfPosition(qint64 pos) const {
  if (!filtered_) return pos < rows_ ? static_cast<int>(pos) : -1;
  return static_cast<int>(filter_.indexOf(pos));
}

const RowsModel::Page* RowsModel::page(qint64 index) const {
  auto it = cache_.find(index);
  if (it != cache_.end()) {
    lru_.removeOne(index);
    lru_.push_back(index);
    return &it.value();
  }
  Page p;
  for (auto& r : read_rows(*ws_, dataset_, index * kPage, (index + 1) * kPage)) {
    p.cells.push_back(cells(kind_, r));
    p.rows.push_back(std::move(r));
  }
  ++pages_read_;
  if (lru_.size() >= kMaxPages) cache_.remove(lru_.takeFirst());
  lru_.push_back(index);
  return &cache_.insert(index, std::move(p)).value();
}

DatasetRow RowsModel::rowAt(int row) {
  const qint64 pos = positionAt(row);
  if (pos < 0 || !ws_) return {};
  const Page* p = page(pos / kPage);
  const qint64 i = pos % kPage;
  return i < p->rows.size() ? p->rows[i] : DatasetRow{};
}

int RowsModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid()) return 0;
  return filtered_ ? filter_.size() : static_cast<int>(std::min<qint64>(rows_, INT_MAX));
}

int RowsModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() || !dataset_ ? 0 : columns(kind_).size();
}

QVariant RowsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || (role != Qt::DisplayRole && role != Qt::ToolTipRole)) return {};
  const qint64 pos = positionAt(index.row());
  if (pos < 0) return {};
  try {
    const Page* p = page(pos / kPage);
    const qint64 i = pos % kPage;
    if (i >= p->cells.size()) return {};
    if (role == Qt::ToolTipRole) return QString::fromStdString(p->rows[i].source);
    return p->cells[i].value(index.column());
  } catch (const std::exception&) {
    return QStringLiteral("(unreadable)");  // a store error must not escape into Qt's paint code
  }
}

QVariant RowsModel::headerData(int section, Qt::Orientation o, int role) const {
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  if (o == Qt::Vertical) {
    // A row imported from a file is numbered by its line there (the numbers the import report and
    // an editor show); a row added in the app has none and shows "+". The tooltip names both.
    const qint64 pos = positionAt(section);
    QString source;
    if (pos >= 0 && ws_) {
      const Page* p = page(pos / kPage);
      if (pos % kPage < p->rows.size()) source = QString::fromStdString(p->rows[int(pos % kPage)].source);
    }
    static const QRegularExpression line(":(\\d+)$");
    const auto m = line.match(source);
    if (role == Qt::ToolTipRole)
      return QString("Row %1 (hone-cli's 0-based position)%2").arg(pos).arg(source.isEmpty() ? QString(" · added in Hone") : " · " + source);
    if (m.hasMatch()) return m.captured(1);
    return source.isEmpty() ? QString("+") : QString::number(pos + 1);  // a JSON array's element: its order
  }
  if (role == Qt::ToolTipRole) return {};
  return columns(kind_).value(section);
}

}  // namespace hone::ui
