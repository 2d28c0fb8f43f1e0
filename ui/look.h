// The app's shared look and small GUI helpers: Fusion style with a dark palette when the desktop's
// is dark, a monospace font for tokens and code, fields that take the mouse wheel only when focused,
// and a guard that turns an exception from a store call into a message instead of a crash.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QDialogButtonBox>
#include <QFont>
#include <QString>
#include <functional>
#include <string>

class QApplication;
class QDialog;
class QCustomPlot;
class QVBoxLayout;
class QWidget;

namespace hone::ui {

void applyLook(QApplication& app);
QFont monoFont();
// Spin boxes and combo boxes ignore the wheel unless focused (so scrolling a form changes nothing).
void installWheelGuard(QApplication& app);

inline QString qs(const std::string& s) { return QString::fromStdString(s); }
inline std::string ss(const QString& s) { return s.toStdString(); }

// The dialog's button row, its accept/reject buttons wired to the dialog's accept() and reject().
QDialogButtonBox* dialogButtons(QDialog* d, QDialogButtonBox::StandardButtons b = QDialogButtonBox::Ok | QDialogButtonBox::Cancel);

// Runs fn; an exception is shown in a warning box titled `what` and false is returned.
bool guarded(QWidget* parent, const QString& what, const std::function<void()>& fn);

// A plot's legend in a row of its own under the axes (so it never covers the curves) while it has
// entries; without any it leaves the layout, where an empty legend squeezed the axes to a strip.
void placeLegendBelow(QCustomPlot* plot);

// A titled group box added to `parent`, and the vertical layout inside it.
QVBoxLayout* groupBox(QVBoxLayout* parent, const QString& title);

// "1.5 GB" (binary units), "42 s", "7 min", "1.5 h".
QString humanBytes(double b);
QString humanTime(double seconds);

}  // namespace hone::ui
