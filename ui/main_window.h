// Hone's main window: a sidebar of pages (Datasets, Label, Train, Runs, Playground, Export), the
// open workspace with recent ones, settings, window state kept across restarts, and an About box
// with the versions of Qt, libtorch, the device, BLAS and threads.
#pragma once
#include <QMainWindow>

class QListWidget;
class QStackedWidget;
class QMenu;

namespace hone::ui {

class TrainPage;
class RunsPage;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  // Opens `workspace` (created if missing); empty: the last one used, else the default workspace.
  explicit MainWindow(const QString& workspace = QString(), QWidget* parent = nullptr);
  QString aboutText() const;
  int pageCount() const;
  void showPage(int index);
  void openWorkspace(const QString& dir);
  QString workspace() const { return workspace_; }
  TrainPage* trainPage() const { return train_; }
  RunsPage* runsPage() const { return runs_; }
  // The process was asked to end (SIGTERM, SIGINT, SIGHUP): a training run stops within a layer,
  // writes a checkpoint and is recorded as interrupted; then readyToQuit() (at once when idle).
  void stopForSignal();

 Q_SIGNALS:
  void readyToQuit();

 protected:
  void closeEvent(QCloseEvent* e) override;

 private:
  void showAbout();
  void showSettings();
  void rebuildRecentMenu();
  QListWidget* sidebar_ = nullptr;
  QStackedWidget* pages_ = nullptr;
  QMenu* recent_ = nullptr;
  TrainPage* train_ = nullptr;
  RunsPage* runs_ = nullptr;
  QString workspace_;
};

}  // namespace hone::ui
