// Hone's main window: a sidebar of pages (Datasets, Label, Train, Runs, Evaluate, Playground,
// Export), the open workspace with recent ones, settings, window state kept across restarts, an
// About box with the versions of Qt, libtorch, the device, BLAS and threads; datasets dropped on
// the window are imported; pages follow changes other processes make to the workspace; quitting
// while jobs run asks, then cancels them without blocking.
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <QMainWindow>
#include <memory>

class QListWidget;
class QStackedWidget;
class QMenu;
class QTimer;

namespace hone {
class Workspace;
}

namespace hone::ui {

class DatasetsPage;
class EvaluatePage;
class ExportPage;
class LabelPage;
class ModelsPage;
class PlaygroundPage;
class TrainPage;
class RunsPage;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  enum Page { Datasets = 0, Label, Train, Runs, Evaluate, Playground, Export, Models };
  // Opens `workspace` (created if missing); empty: $HONE_WORKSPACE, else the last one used, else
  // the default workspace.
  explicit MainWindow(const QString& workspace = QString(), QWidget* parent = nullptr);
  ~MainWindow() override;
  QString aboutText() const;
  int pageCount() const;
  void showPage(int index);
  int currentPage() const;
  QString pageName(int index) const;
  void openWorkspace(const QString& dir);
  QString workspace() const { return workspace_; }
  // "label:NAME", "datasets:NAME", "train", "runs", "evaluate", "playground", "export" (the --open argument);
  // false with a status message when there is no such page or dataset.
  bool openLocation(const QString& where);
  TrainPage* trainPage() const { return train_; }
  RunsPage* runsPage() const { return runs_; }
  EvaluatePage* evaluatePage() const { return evaluate_; }
  DatasetsPage* datasetsPage() const { return datasets_; }
  LabelPage* labelPage() const { return label_; }
  PlaygroundPage* playgroundPage() const { return playground_; }
  ExportPage* exportPage() const { return export_; }
  ModelsPage* modelsPage() const { return models_; }
  // The process was asked to end (SIGTERM, SIGINT, SIGHUP): a training run stops within a layer,
  // writes a checkpoint and is recorded as interrupted; then readyToQuit() (at once when idle).
  void stopForSignal();
  // Checks the workspace for changes made elsewhere (hone-cli, another window) now; also on a timer.
  void checkForChanges();

 Q_SIGNALS:
  void readyToQuit();

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  void reportEarlierCrash();  // the newest unseen crash report of the workspace, shown once
  void showAbout();
  void showShortcuts();
  void showDocs();

 public:
  static QString shortcutsText();  // the Help menu's list
  static QString docsDir();        // "" when the docs are not beside this build

 private:
  void showSettings();
  void rebuildRecentMenu();
  void refreshPage(int index);
  void shareModelFolder(const QString& dir);
  QListWidget* sidebar_ = nullptr;
  QStackedWidget* pages_ = nullptr;
  QMenu* recent_ = nullptr;
  DatasetsPage* datasets_ = nullptr;
  LabelPage* label_ = nullptr;
  TrainPage* train_ = nullptr;
  RunsPage* runs_ = nullptr;
  EvaluatePage* evaluate_ = nullptr;
  PlaygroundPage* playground_ = nullptr;
  QString shared_model_;  // the model folder last offered to every page
  ExportPage* export_ = nullptr;
  ModelsPage* models_ = nullptr;
  QString workspace_;
  std::unique_ptr<Workspace> watch_;  // a connection that only reads PRAGMA data_version
  qint64 data_version_ = -1;
  QTimer* poll_ = nullptr;
  bool quitting_ = false;
};

}  // namespace hone::ui
