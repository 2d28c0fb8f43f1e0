// Look and helpers (see look.h).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "look.h"

#include <QAbstractSpinBox>
#include <QApplication>
#include <QComboBox>
#include <QCoreApplication>
#include <QDialog>
#include <QEvent>
#include <QFontDatabase>
#include <QGroupBox>
#include <QMessageBox>
#include <QPalette>
#include <QStyleFactory>
#include <QVBoxLayout>
#include <exception>
#include <qcustomplot.h>

namespace hone::ui {

void applyLook(QApplication& app) {
  const QPalette sys = app.palette();
  const bool dark = sys.color(QPalette::Window).lightness() < 128;
  app.setStyle(QStyleFactory::create("Fusion"));
  if (!dark) return;
  // The desktop runs a dark theme: Fusion with a matching dark palette (Fusion's own is light).
  QPalette p;
  const QColor base(30, 31, 34), window(43, 45, 48), text(220, 221, 222), accent(61, 142, 201);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::Highlight, accent);
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, accent.lighter(130));
  p.setColor(QPalette::PlaceholderText, text.darker(160));
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
    p.setColor(QPalette::Disabled, role, text.darker(190));
  app.setPalette(p);
}

QFont monoFont() {
  QFont f = QFontDatabase::systemFont(QFontDatabase::FixedFont);
  f.setStyleHint(QFont::Monospace);
  return f;
}

namespace {
class WheelGuard : public QObject {
 public:
  using QObject::QObject;
  bool eventFilter(QObject* o, QEvent* e) override {
    if (e->type() == QEvent::Wheel) {
      auto* w = qobject_cast<QWidget*>(o);
      if (w && (qobject_cast<QAbstractSpinBox*>(w) || qobject_cast<QComboBox*>(w)) && !w->hasFocus()) {
        // Handed to the parent, so the form around the field scrolls instead of the value changing.
        if (w->parentWidget()) QCoreApplication::sendEvent(w->parentWidget(), e);
        return true;
      }
    }
    return false;
  }
};
}  // namespace

void installWheelGuard(QApplication& app) { app.installEventFilter(new WheelGuard(&app)); }

QDialogButtonBox* dialogButtons(QDialog* d, QDialogButtonBox::StandardButtons b) {
  auto* bb = new QDialogButtonBox(b, d);
  QObject::connect(bb, &QDialogButtonBox::accepted, d, &QDialog::accept);
  QObject::connect(bb, &QDialogButtonBox::rejected, d, &QDialog::reject);
  return bb;
}

bool guarded(QWidget* parent, const QString& what, const std::function<void()>& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    QMessageBox::warning(parent, what, QString::fromUtf8(e.what()));
  } catch (...) {
    QMessageBox::warning(parent, what, "unknown error");
  }
  return false;
}

QString humanBytes(double b) {
  const char* u[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1024 && i < 4) b /= 1024, ++i;
  return QString::number(b, 'f', b < 10 ? 1 : 0) + " " + u[i];
}

QString humanTime(double s) {
  if (s < 90) return QString::number(static_cast<int>(s)) + " s";
  if (s < 5400) return QString::number(static_cast<int>(s / 60)) + " min";
  return QString::number(s / 3600, 'f', 1) + " h";
}

QVBoxLayout* groupBox(QVBoxLayout* parent, const QString& title) {
  auto* box = new QGroupBox(title);
  parent->addWidget(box);
  return new QVBoxLayout(box);
}

void placeLegendBelow(QCustomPlot* p) {
  const bool placed = p->plotLayout()->hasElement(1, 0) && p->plotLayout()->element(1, 0) == p->legend;
  const bool want = p->legend->itemCount() > 0;
  if (want && !placed) {
    p->legend->setVisible(true);
    p->legend->setFillOrder(QCPLegend::foColumnsFirst);
    p->plotLayout()->addElement(1, 0, p->legend);
    p->plotLayout()->setRowStretchFactor(1, 0.001);
  } else if (!want && placed) {
    p->plotLayout()->take(p->legend);
    p->plotLayout()->simplify();
    p->legend->setVisible(false);
  }
}

}  // namespace hone::ui
