// Main window shell: pages, workspace handling (open, new, recent), settings and window state in
// QSettings. Datasets, Label, Playground and Export pages arrive with their issues.
#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QDialog>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSpinBox>
#include <QStackedWidget>
#include <QStatusBar>

#include "common/runtime.h"
#include "runs_page.h"
#include "store/workspace.h"
#include "train_page.h"

namespace hone::ui {

MainWindow::MainWindow(const QString& workspace, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("Hone");
  resize(1280, 800);
  auto* central = new QWidget(this);
  auto* lay = new QHBoxLayout(central);
  lay->setContentsMargins(6, 6, 6, 6);
  sidebar_ = new QListWidget(central);
  sidebar_->setFixedWidth(150);
  pages_ = new QStackedWidget(central);
  train_ = new TrainPage(pages_);
  runs_ = new RunsPage(pages_);
  const char* names[] = {"Datasets", "Label", "Train", "Runs", "Playground", "Export"};
  for (int i = 0; i < 6; ++i) {
    const QString n = names[i];
    sidebar_->addItem(QString("%1  (Ctrl+%2)").arg(n).arg(i + 1));
    QWidget* page = nullptr;
    if (n == "Train") page = train_;
    else if (n == "Runs") page = runs_;
    else {
      auto* l = new QLabel(QString("<h2>%1</h2><p>This page arrives with a later release. "
                                   "Until then: <code>hone-cli dataset</code> imports, shows and exports datasets.</p>").arg(n), pages_);
      l->setAlignment(Qt::AlignTop | Qt::AlignLeft);
      l->setTextFormat(Qt::RichText);
      page = l;
    }
    page->setObjectName(QString("page_%1").arg(n.toLower()));
    pages_->addWidget(page);
  }
  lay->addWidget(sidebar_);
  lay->addWidget(pages_, 1);
  setCentralWidget(central);
  connect(sidebar_, &QListWidget::currentRowChanged, pages_, &QStackedWidget::setCurrentIndex);
  connect(sidebar_, &QListWidget::currentRowChanged, this, [this](int i) {
    if (pages_->widget(i) == runs_) runs_->refresh();
  });
  connect(train_, &TrainPage::runFinished, runs_, &RunsPage::refresh);
  connect(runs_, &RunsPage::resumeRequested, this, [this](qint64 id) {
    showPage(2);
    train_->resumeRun(id);
  });

  auto* file = menuBar()->addMenu("&File");
  file->addAction("&New Workspace…", QKeySequence::New, this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, "Folder for the new workspace");
    if (!d.isEmpty()) openWorkspace(d);
  });
  file->addAction("&Open Workspace…", QKeySequence::Open, this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, "Workspace folder (holds hone.db)", workspace_);
    if (!d.isEmpty()) openWorkspace(d);
  });
  recent_ = file->addMenu("Open &Recent");
  file->addSeparator();
  file->addAction("&Settings…", QKeySequence::Preferences, this, &MainWindow::showSettings);
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);
  auto* view = menuBar()->addMenu("&View");
  for (int i = 0; i < 6; ++i)
    view->addAction(QString("Page %1").arg(i + 1), QKeySequence(QString("Ctrl+%1").arg(i + 1)), this, [this, i] { showPage(i); });
  auto* help = menuBar()->addMenu("&Help");
  help->addAction("&About Hone", this, &MainWindow::showAbout);

  QSettings st;
  restoreGeometry(st.value("window/geometry").toByteArray());
  restoreState(st.value("window/state").toByteArray());
  QString ws = workspace;
  if (ws.isEmpty()) ws = st.value("workspace/last").toString();
  if (ws.isEmpty()) ws = QString::fromStdString(Workspace::default_dir());  // first launch: the demo's workspace
  openWorkspace(ws);
  // The demo's base model, when `hone-cli demo` has built it, is the default model to train.
  const QString demo_model = QDir(workspace_).filePath("demo/skills-base");
  if (QDir(demo_model).exists()) train_->setModelFolder(st.value("train/model", demo_model).toString());
  else if (st.contains("train/model")) train_->setModelFolder(st.value("train/model").toString());
  sidebar_->setCurrentRow(2);
  statusBar()->showMessage("Workspace " + workspace_);
}

void MainWindow::openWorkspace(const QString& dir) {
  try {
    Workspace ws(dir.toStdString());  // creates, migrates and recovers interrupted runs
  } catch (const std::exception& e) {
    QMessageBox::warning(this, "Cannot open workspace", e.what());
    return;
  }
  workspace_ = dir;
  train_->setWorkspace(dir);
  runs_->setWorkspace(dir);
  QSettings st;
  st.setValue("workspace/last", dir);
  QStringList recent = st.value("workspace/recent").toStringList();
  recent.removeAll(dir);
  recent.prepend(dir);
  while (recent.size() > 8) recent.removeLast();
  st.setValue("workspace/recent", recent);
  rebuildRecentMenu();
  setWindowTitle("Hone — " + QDir(dir).dirName());
  statusBar()->showMessage("Workspace " + dir);
}

void MainWindow::rebuildRecentMenu() {
  recent_->clear();
  for (const QString& d : QSettings().value("workspace/recent").toStringList())
    recent_->addAction(d, this, [this, d] { openWorkspace(d); });
}

void MainWindow::stopForSignal() {
  auto* job = train_->job();
  if (!job->running()) {
    Q_EMIT readyToQuit();
    return;
  }
  connect(job, &TrainJob::finished, this, [this] { Q_EMIT readyToQuit(); }, Qt::QueuedConnection);
  job->interrupt();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (train_->job()->running() &&
      QMessageBox::question(this, "Training in progress", "A run is training. Cancel it and quit? It keeps a checkpoint to resume from.") !=
          QMessageBox::Yes) {
    e->ignore();
    return;
  }
  QSettings st;
  st.setValue("window/geometry", saveGeometry());
  st.setValue("window/state", saveState());
  QMainWindow::closeEvent(e);
}

int MainWindow::pageCount() const { return pages_->count(); }
void MainWindow::showPage(int index) { sidebar_->setCurrentRow(index); }

QString MainWindow::aboutText() const {
  auto s = hone::system_info(false);
  return QString("Hone %1\nQt %2\nlibtorch %3\ndevice %4\nBLAS %5%6\nthreads %7 of %8 cores")
      .arg(HONE_VERSION, qVersion(), QString::fromStdString(s.libtorch_version), QString::fromStdString(s.device),
           QString::fromStdString(s.blas.empty() ? std::string("unknown") : s.blas),
           s.blas_is_reference ? QString(" (slow reference build)")
                               : s.blas_core.empty() ? QString() : QString(", %1 kernels").arg(QString::fromStdString(s.blas_core)))
      .arg(s.threads)
      .arg(s.cores);
}

void MainWindow::showAbout() { QMessageBox::about(this, "About Hone", aboutText()); }

void MainWindow::showSettings() {
  QDialog d(this);
  d.setWindowTitle("Settings");
  auto* form = new QFormLayout(&d);
  QSettings st;
  auto* threads = new QSpinBox;
  threads->setRange(0, 256);
  threads->setValue(st.value("settings/threads", 0).toInt());
  threads->setToolTip("libtorch threads for training (0: automatic; takes effect at the next start, as HONE_THREADS)");
  auto* device = new QLineEdit(QString::fromStdString(hone::system_info(false).device));
  device->setReadOnly(true);
  device->setToolTip("Training device found at start-up");
  auto* models = new QLineEdit(st.value("settings/models_dir").toString());
  models->setToolTip("Folder the model chooser opens first");
  form->addRow("Device", device);
  form->addRow("Threads", threads);
  form->addRow("Models folder", models);
  auto* bb = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  form->addRow(bb);
  connect(bb, &QDialogButtonBox::accepted, &d, &QDialog::accept);
  connect(bb, &QDialogButtonBox::rejected, &d, &QDialog::reject);
  if (d.exec() == QDialog::Accepted) {
    st.setValue("settings/threads", threads->value());
    st.setValue("settings/models_dir", models->text());
  }
}

}  // namespace hone::ui
