// Hone's main window: a sidebar of pages (Datasets, Label, Train, Runs, Playground, Export) and
// an About box with the versions of Qt, libtorch, the device, BLAS and threads.
#pragma once
#include <QMainWindow>

class QListWidget;
class QStackedWidget;

namespace hone::ui {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  QString aboutText() const;
  int pageCount() const;
  void showPage(int index);

 private:
  void showAbout();
  QListWidget* sidebar_ = nullptr;
  QStackedWidget* pages_ = nullptr;
};

}  // namespace hone::ui
