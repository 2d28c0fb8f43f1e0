// hone: the desktop app. Opens the main window.
#include <QApplication>
#include <QSettings>
#include <cstdlib>
#include <string>

#include "common/runtime.h"
#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("Hone");
  QApplication::setOrganizationName("Hone");
  // Settings > Threads applies from the next start, the same way HONE_THREADS does for hone-cli.
  const int threads = QSettings().value("settings/threads", 0).toInt();
  if (threads > 0 && !std::getenv("HONE_THREADS")) ::setenv("HONE_THREADS", std::to_string(threads).c_str(), 1);
  hone::init_runtime();
  hone::ui::MainWindow w;
  w.show();
  return app.exec();
}
