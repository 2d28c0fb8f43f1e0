// ScoreBoard (see score_board.h). Values come from the stored metrics as they are, so the table,
// the chart, the CSV and `hone-cli eval show` agree to the last digit.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "score_board.h"

#include <QComboBox>
#include <QFile>
#include <QEvent>
#include <QFontMetrics>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSignalBlocker>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <qcustomplot.h>

#include "look.h"
#include "train/eval_stats.h"

namespace hone::ui {

using nlohmann::json;

namespace {
// A CSV field, quoted when it holds a comma, a quote or a line break.
QString csvField(const QString& s) {
  if (!s.contains(',') && !s.contains('"') && !s.contains('\n')) return s;
  return '"' + QString(s).replace("\"", "\"\"") + '"';
}
QString num(double v) { return QString::number(v, 'g', 10); }
}  // namespace

QString scoreText(const json& m) {
  const Score s = score_from_json(m);
  char buf[128];
  // The same wording as hone-cli eval: a score stored without an interval prints without one.
  if (s.lo == s.hi && s.lo == 0 && s.value != 0) std::snprintf(buf, sizeof buf, "%.4g n=%lld", s.value, static_cast<long long>(s.n));
  else std::snprintf(buf, sizeof buf, "%.3f [%.3f, %.3f] n=%lld", s.value, s.lo, s.hi, static_cast<long long>(s.n));
  return QString::fromLatin1(buf);
}

QString ScoreBoard::Column::title() const { return suite + " · " + metric; }

ScoreBoard::ScoreBoard(QObject* parent) : QObject(parent) {
  table_ = new QTableWidget;
  table_->setObjectName("resultsTable");
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setWordWrap(false);
  table_->horizontalHeader()->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
  table_->verticalHeader()->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
  table_->setToolTip("The newest evaluation of each target on each suite: value [95% interval] n=examples");
  chart_panel_ = new QWidget;
  auto* lay = new QVBoxLayout(chart_panel_);
  lay->setContentsMargins(0, 0, 0, 0);
  auto* top = new QHBoxLayout;
  metric_ = new QComboBox;
  metric_->setObjectName("chartMetric");
  metric_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  metric_->setMinimumContentsLength(18);
  metric_->setToolTip("The suite and metric to chart across targets");
  top->addWidget(new QLabel("Chart"));
  top->addWidget(metric_);
  top->addStretch(1);
  lay->addLayout(top);
  plot_ = new QCustomPlot;
  plot_->installEventFilter(this);
  plot_->setObjectName("scoreChart");
  plot_->setMinimumSize(320, 220);
  lay->addWidget(plot_, 1);
  rebuildChart();  // the empty chart says what goes there
  connect(metric_, &QComboBox::currentIndexChanged, this, [this] {
    rebuildChart();
    const int c = metric_->currentIndex();
    if (c >= 0 && c < int(cols_.size())) Q_EMIT suiteChosen(cols_[size_t(c)].suite, cols_[size_t(c)].kind);
  });
  connect(table_, &QTableWidget::currentCellChanged, this, [this](int, int col) {
    if (col >= 0 && col < int(cols_.size())) setChartColumn(cols_[size_t(col)].title());
  });
}

ScoreBoard::~ScoreBoard() = default;

void ScoreBoard::setEvaluations(const std::vector<EvalRecord>& evals, const QMap<QString, QString>& labels, const QStringList& order) {
  const QString keep = chartColumn();
  rows_.clear();
  cols_.clear();
  cells_.clear();
  // Rows: the targets in the page's order, then any other target that has a score.
  QStringList keys;
  for (const auto& k : order)
    for (const auto& e : evals)
      if (QString::fromStdString(e.target) == k && !keys.contains(k)) keys << k;
  for (const auto& e : evals)
    if (!keys.contains(QString::fromStdString(e.target))) keys << QString::fromStdString(e.target);
  // Columns: each suite's metrics as stored (by name).
  std::vector<EvalRecord> by_id = evals;
  std::sort(by_id.begin(), by_id.end(), [](const EvalRecord& a, const EvalRecord& b) { return a.id < b.id; });
  for (const auto& e : by_id) {
    const json m = json::parse(e.metrics, nullptr, false);
    if (!m.is_object()) continue;
    for (auto it = m.begin(); it != m.end(); ++it) {
      const Column c{QString::fromStdString(e.suite), QString::fromStdString(e.kind), QString::fromStdString(it.key())};
      const bool seen = std::any_of(cols_.begin(), cols_.end(), [&](const Column& x) {
        return x.suite == c.suite && x.kind == c.kind && x.metric == c.metric;
      });
      if (!seen) cols_.push_back(c);
    }
  }
  QStringList suite_order;  // a suite's columns side by side, suites in the order first evaluated
  for (const auto& c : cols_)
    if (!suite_order.contains(c.suite)) suite_order << c.suite;
  std::stable_sort(cols_.begin(), cols_.end(),
                   [&](const Column& a, const Column& b) { return suite_order.indexOf(a.suite) < suite_order.indexOf(b.suite); });
  cells_.assign(size_t(keys.size()), std::vector<Cell>(cols_.size()));
  for (int r = 0; r < keys.size(); ++r) {
    rows_ << labels.value(keys[r], keys[r]);
    for (const auto& e : evals) {
      if (QString::fromStdString(e.target) != keys[r]) continue;
      const json m = json::parse(e.metrics, nullptr, false);
      if (!m.is_object()) continue;
      for (size_t c = 0; c < cols_.size(); ++c)
        if (cols_[c].suite == QString::fromStdString(e.suite) && cols_[c].kind == QString::fromStdString(e.kind) &&
            m.contains(cols_[c].metric.toStdString()))
          cells_[size_t(r)][c] = Cell{true, m[cols_[c].metric.toStdString()], e.id};
    }
  }
  {
    const QSignalBlocker block(table_);
    table_->clear();
    table_->setRowCount(int(rows_.size()));
    table_->setColumnCount(int(cols_.size()));
    QStringList headers;
    for (const auto& c : cols_) headers << c.title();
    table_->setHorizontalHeaderLabels(headers);
    table_->setVerticalHeaderLabels(rows_);
    for (int r = 0; r < rows_.size(); ++r)
      for (int c = 0; c < int(cols_.size()); ++c) {
        const Cell& cell = cells_[size_t(r)][size_t(c)];
        auto* item = new QTableWidgetItem(cell.present ? scoreText(cell.score) : QString("–"));
        if (cell.present) item->setToolTip(QString("evaluation %1 (hone-cli eval show %1)").arg(cell.eval_id));
        table_->setItem(r, c, item);
      }
    table_->resizeColumnsToContents();
  }
  {
    const QSignalBlocker block(metric_);
    metric_->clear();
    for (const auto& c : cols_) metric_->addItem(c.title());
    metric_->setCurrentIndex(std::max(0, metric_->findText(keep)));
  }
  rebuildChart();
}

QStringList ScoreBoard::columns() const {
  QStringList out;
  for (const auto& c : cols_) out << c.title();
  return out;
}

QStringList ScoreBoard::rowLabels() const { return rows_; }

bool ScoreBoard::setChartColumn(const QString& column) {
  const int i = metric_->findText(column);
  if (i < 0) return false;
  metric_->setCurrentIndex(i);
  return true;
}

QString ScoreBoard::chartColumn() const { return metric_->currentText(); }

QString ScoreBoard::chartSuite() const {
  const int c = metric_->currentIndex();
  return c >= 0 && c < int(cols_.size()) ? cols_[size_t(c)].suite : QString();
}

void ScoreBoard::rebuildChart() {
  plot_->clearPlottables();
  plot_->clearItems();
  const int c = metric_->currentIndex();
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  plot_->xAxis->setTicker(ticker);
  plot_->xAxis->grid()->setVisible(false);
  if (c < 0 || c >= int(cols_.size())) {
    auto* hint = new QCPItemText(plot_);
    hint->position->setType(QCPItemPosition::ptAxisRectRatio);
    hint->position->setCoords(0.5, 0.5);
    hint->setText("Evaluate a suite to chart its scores here");
    hint->setColor(Qt::gray);
    plot_->yAxis->setLabel(QString());
    plot_->yAxis->setRange(0, 1);
    plot_->xAxis->setRange(0, 1);
    plot_->replot();
    return;
  }
  auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars->setWidth(0.55);
  bars->setPen(QPen(QColor(31, 119, 180)));
  bars->setBrush(QColor(31, 119, 180, 150));
  auto* whiskers = new QCPErrorBars(plot_->xAxis, plot_->yAxis);
  whiskers->setDataPlottable(bars);
  whiskers->setWhiskerWidth(14);
  whiskers->setPen(QPen(QColor(40, 40, 40), 1.5));
  QVector<double> x, y, minus, plus;
  double top = 0, bottom = 0;
  bool bounded = true;  // every value and interval inside [0, 1]: a proportion-like axis
  for (int r = 0; r < rows_.size(); ++r) {
    const Cell& cell = cells_[size_t(r)][size_t(c)];
    if (!cell.present) continue;
    const Score s = score_from_json(cell.score);
    const double k = x.size() + 1;
    x << k;
    y << s.value;
    // A score stored without an interval (lo = hi = 0) gets no whisker.
    const bool has_ci = !(s.lo == 0 && s.hi == 0 && s.value != 0);
    minus << (has_ci ? s.value - s.lo : 0);
    plus << (has_ci ? s.hi - s.value : 0);
    ticker->addTick(k, rows_[r]);
    top = std::max({top, s.value, has_ci ? s.hi : s.value});
    bottom = std::min({bottom, s.value, has_ci ? s.lo : s.value});
    bounded = bounded && s.value >= 0 && s.value <= 1 && s.hi <= 1;
    auto* label = new QCPItemText(plot_);
    label->position->setType(QCPItemPosition::ptPlotCoords);
    label->position->setCoords(k + 0.3, s.value);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    label->setText(QString::number(s.value, 'g', 3));
    label->setClipToAxisRect(true);
  }
  bars->setData(x, y);
  whiskers->setData(minus, plus);
  plot_->yAxis->setLabel(cols_[size_t(c)].title());
  plot_->xAxis->setRange(0.4, x.size() + 0.8);
  if (bounded) plot_->yAxis->setRange(0, 1.05);
  else plot_->yAxis->setRange(bottom, top > bottom ? top * 1.08 : bottom + 1);
  fitTickLabels();
  plot_->replot();
}

// Target names turn when, side by side, they would be wider than a bar's share of the chart (the
// neighbours' names overlapped under a narrow chart with three targets). Run again on every
// resize: the chart's width is only known once it is laid out.
void ScoreBoard::fitTickLabels() {
  const int bars = std::max(1, int(plot_->xAxis->range().size() - 1.2 + 0.5));
  const QFontMetrics fm(plot_->xAxis->tickLabelFont());
  int widest = 0;
  for (const auto& r : rows_) widest = std::max(widest, fm.horizontalAdvance(r));
  const int share = std::max(1, (plot_->width() - 80) / bars);
  plot_->xAxis->setTickLabelRotation(bars > 1 && widest + 8 > share ? 30 : 0);
}

bool ScoreBoard::eventFilter(QObject* watched, QEvent* event) {
  if (watched == plot_ && event->type() == QEvent::Resize) {
    const double before = plot_->xAxis->tickLabelRotation();
    fitTickLabels();
    if (plot_->xAxis->tickLabelRotation() != before) plot_->replot(QCustomPlot::rpQueuedReplot);
  }
  return QObject::eventFilter(watched, event);
}

bool ScoreBoard::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  QTextStream out(&f);
  out << "target,suite,metric,value,lo,hi,n\n";
  for (int r = 0; r < rows_.size(); ++r)
    for (size_t c = 0; c < cols_.size(); ++c) {
      const Cell& cell = cells_[size_t(r)][c];
      if (!cell.present) continue;
      const Score s = score_from_json(cell.score);
      out << csvField(rows_[r]) << ',' << csvField(cols_[c].suite) << ',' << csvField(cols_[c].metric) << ',' << num(s.value)
          << ',' << num(s.lo) << ',' << num(s.hi) << ',' << s.n << '\n';
    }
  return f.error() == QFile::NoError;
}

bool ScoreBoard::exportPng(const QString& path) { return plot_->savePng(path, 1000, 600); }

}  // namespace hone::ui
