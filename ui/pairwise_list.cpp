// PairwiseList (see pairwise_list.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "pairwise_list.h"

#include <QHeaderView>
#include <QTableWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "look.h"
#include "runs/evaluate.h"
#include "score_board.h"
#include "store/labels.h"

namespace hone::ui {

using nlohmann::json;

PairwiseList::PairwiseList(QWidget* parent) : QGroupBox("Pairwise comparisons", parent) {
  auto* lay = new QVBoxLayout(this);
  table_ = new QTableWidget(0, 6);
  table_->setObjectName("pairwiseTable");
  table_->setHorizontalHeaderLabels({"ID", "Suite", "A", "B", "Status", "Win rate of A"});
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setToolTip("Win rate of A: A's wins plus half the ties (and both-bad) over the rows labelled other than skip");
  lay->addWidget(table_);
  setVisible(false);
}

void PairwiseList::update(Workspace& ws, std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels) {
  table_->setRowCount(0);
  for (auto& e : evals) {
    if (e.kind != "pairwise") continue;
    int labelled = 0, rows = -1;
    if (e.labels_id > 0) {
      try {
        const auto cands = list_candidates(ws, e.labels_id);
        std::string print;
        for (const auto& r : cands) print += r.label + "\n", labelled += !r.label.empty();
        rows = int(cands.size());
        // refresh_pairwise writes, and a write makes the window refresh this page: only labels
        // that changed since the last look are worth it (then it settles).
        auto seen = label_prints_.find(e.id);
        if (seen == label_prints_.end() || seen->second != print) {
          label_prints_[e.id] = print;
          if (labelled == rows || e.status == "completed") e = refresh_pairwise(ws, e.id);
        }
      } catch (const std::exception&) {
        // the blind set was deleted: the stored result stands
      }
    }
    const json t = json::parse(e.target, nullptr, false);
    auto side = [&](const char* k) {
      if (!t.is_object() || !t.contains(k)) return QString();
      const QString key = qs(t[k].dump());
      return labels.value(key, key);
    };
    QString status = qs(e.status), win = "–";
    if (e.status == "awaiting_labels" && rows >= 0) status = QString("awaiting labels (%1 of %2)").arg(labelled).arg(rows);
    const json m = json::parse(e.metrics, nullptr, false);
    if (e.status == "completed" && m.is_object() && m.contains("win_rate_a")) win = scoreText(m["win_rate_a"]);
    const json settings = json::parse(e.settings, nullptr, false);
    if (settings.is_object() && settings.contains("labels")) status += ", blind set " + qs(settings.value("labels", ""));
    else if (settings.is_object() && settings.contains("judge")) status += ", judge " + qs(settings["judge"].dump());
    const int row = table_->rowCount();
    table_->insertRow(row);
    const QString cells[] = {QString::number(e.id), qs(e.suite), side("a"), side("b"), status, win};
    for (int c = 0; c < 6; ++c) table_->setItem(row, c, new QTableWidgetItem(cells[c]));
  }
  table_->resizeColumnsToContents();
  setVisible(table_->rowCount() > 0);
}

}  // namespace hone::ui
