// hone: the desktop app. Opens the main window.
#include <QApplication>

#include "common/runtime.h"
#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("Hone");
  QApplication::setOrganizationName("Hone");
  hone::init_runtime();
  hone::ui::MainWindow w;
  w.show();
  return app.exec();
}
