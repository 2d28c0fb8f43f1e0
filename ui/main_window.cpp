// Main window shell: pages, workspace handling (open, new, recent, $HONE_WORKSPACE), settings and
// window state in QSettings, drag and drop of datasets, change polling and the quit prompt.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QGuiApplication>
#include <QScreen>
#include <QSettings>
#include <QSpinBox>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTextBrowser>
#include <QThread>
#include <QTimer>
#include <QUrl>
#include <nlohmann/json.hpp>

#include "common/crash.h"
#include "common/runtime.h"
#include "datasets_page.h"
#include "evaluate_page.h"
#include "export_page.h"
#include "models_page.h"
#include "job.h"
#include "label_page.h"
#include "look.h"
#include "playground_page.h"
#include "runs_page.h"
#include "store/workspace.h"
#include "train/run_config.h"
#include "train_form.h"
#include "train_inputs.h"
#include "train_page.h"

// Resources of a static library are registered by hand, outside any namespace (Qt's rule).
static void initHoneResources() { Q_INIT_RESOURCE(hone); }

namespace hone::ui {

namespace {
const char* kPageNames[] = {"Datasets", "Label", "Train", "Runs", "Evaluate", "Playground", "Export", "Models"};
const char* kPageIcons[] = {"datasets", "label", "train", "runs", "evaluate", "playground", "export", "models"};
constexpr int kPages = int(sizeof kPageNames / sizeof kPageNames[0]);
}  // namespace

MainWindow::MainWindow(const QString& workspace, QWidget* parent) : QMainWindow(parent) {
  initHoneResources();
  QIcon app_icon;
  for (int s : {16, 32, 48, 64, 128, 256}) app_icon.addFile(QString(":/icons/hicolor/%1x%1/apps/hone.png").arg(s));
  setWindowIcon(app_icon);
  setWindowTitle("Hone");
  setAcceptDrops(true);
  resize(1280, 800);
  auto* central = new QWidget(this);
  auto* lay = new QHBoxLayout(central);
  lay->setContentsMargins(6, 6, 6, 6);
  sidebar_ = new QListWidget(central);
  sidebar_->setFixedWidth(170);
  sidebar_->setIconSize(QSize(24, 24));
  sidebar_->setSpacing(2);
  pages_ = new QStackedWidget(central);
  datasets_ = new DatasetsPage(pages_);
  label_ = new LabelPage(pages_);
  train_ = new TrainPage(pages_);
  runs_ = new RunsPage(pages_);
  evaluate_ = new EvaluatePage(pages_);
  playground_ = new PlaygroundPage(pages_);
  export_ = new ExportPage(pages_);
  models_ = new ModelsPage(pages_);
  for (int i = 0; i < kPages; ++i) {
    const QString n = kPageNames[i];
    auto* item = new QListWidgetItem(QIcon(QString(":/icons/pages/%1.png").arg(kPageIcons[i])), n);
    item->setToolTip(QString("%1 (Ctrl+%2)").arg(n).arg(i + 1));
    sidebar_->addItem(item);
    QWidget* page = nullptr;
    switch (i) {
      case Datasets: page = datasets_; break;
      case Label: page = label_; break;
      case Train: page = train_; break;
      case Runs: page = runs_; break;
      case Evaluate: page = evaluate_; break;
      case Playground: page = playground_; break;
      case Export: page = export_; break;
      default: page = models_;
    }
    page->setObjectName(QString("page_%1").arg(n.toLower()));
    pages_->addWidget(page);
  }
  lay->addWidget(sidebar_);
  lay->addWidget(pages_, 1);
  setCentralWidget(central);
  connect(sidebar_, &QListWidget::currentRowChanged, pages_, &QStackedWidget::setCurrentIndex);
  connect(sidebar_, &QListWidget::currentRowChanged, this, &MainWindow::refreshPage);
  connect(train_, &TrainPage::runFinished, runs_, &RunsPage::refresh);
  connect(train_, &TrainPage::runFinished, playground_, &PlaygroundPage::refresh);
  connect(runs_, &RunsPage::resumeRequested, this, [this](qint64 id) {
    showPage(Train);
    train_->resumeRun(id);
  });
  connect(train_->form()->inputs(), &TrainInputs::modelChanged, this, [this] {
    if (train_->modelUsable()) shareModelFolder(train_->modelFolder());
  });
  connect(datasets_, &DatasetsPage::modelChosen, this, &MainWindow::shareModelFolder);
  connect(models_, &ModelsPage::useForTrainingRequested, this, [this](const QString& ref) {
    showPage(Train);
    train_->setModelFolder(ref);  // the hub name; the Train page resolves it from the cache
    statusBar()->showMessage("Base model: " + ref + " from the Hugging Face cache", 10000);
  });
  connect(playground_, &PlaygroundPage::modelChosen, this, &MainWindow::shareModelFolder);
  connect(datasets_, &DatasetsPage::labelRequested, this, [this](const QString& name) { openLocation("label:" + name); });
  connect(label_, &LabelPage::trainRequested, this, [this](const QString& dataset, const QString& method, const QString& summary,
                                                          const QString& base, const QString& adapter) {
    showPage(Train);
    if (!base.isEmpty()) train_->setModelFolder(base);  // the model that wrote the candidates, not whatever the form held
    train_->refreshDatasets();
    train_->selectOnlyDataset(dataset);  // DPO trains on preference data alone
    if (!train_->selectMethod(method)) {
      statusBar()->showMessage("DPO is not available for the ticked datasets; see the method list's tooltips");
      return;
    }
    if (!base.isEmpty()) {
      RunConfig c = train_->config();
      c.init_adapter = adapter.toStdString();
      train_->setConfig(c);
    }
    statusBar()->showMessage(summary, 30000);  // what trains and what is left out, before the run exists
    train_->showNote(summary + ".");         // and on the page, where it stays until a run starts
  });
  auto datasetsChanged = [this] {
    train_->refreshDatasets();
    label_->refresh();
  };
  connect(datasets_, &DatasetsPage::datasetsChanged, this, [this] {
    if (!train_->job()->running()) train_->refreshDatasets();
  });
  connect(label_, &LabelPage::datasetsChanged, this, datasetsChanged);
  connect(playground_, &PlaygroundPage::datasetsChanged, this, [this] { datasets_->refresh(); });
  connect(evaluate_, &EvaluatePage::datasetsChanged, this, [this] {  // a blind set to label
    label_->refresh();
    if (!train_->job()->running()) train_->refreshDatasets();
  });
  connect(evaluate_, &EvaluatePage::labelRequested, this, [this](const QString& name) { openLocation("label:" + name); });

  auto* file = menuBar()->addMenu("&File");
  file->addAction("&Import Dataset…", QKeySequence("Ctrl+I"), this, [this] {
    showPage(Datasets);
    datasets_->importFile(QString());
  });
  file->addSeparator();
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
  auto* settings = file->addAction("&Settings…", this, &MainWindow::showSettings);
  // Ctrl+, where the platform names no Preferences key (most Linux desktops).
  QList<QKeySequence> prefs = QKeySequence::keyBindings(QKeySequence::Preferences);
  if (!prefs.contains(QKeySequence("Ctrl+,"))) prefs << QKeySequence("Ctrl+,");
  settings->setShortcuts(prefs);
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);
  auto* view = menuBar()->addMenu("&View");
  for (int i = 0; i < kPages; ++i)
    view->addAction(QIcon(QString(":/icons/pages/%1.png").arg(kPageIcons[i])), kPageNames[i],
                    QKeySequence(QString("Ctrl+%1").arg(i + 1)), this, [this, i] { showPage(i); });
  auto* help = menuBar()->addMenu("&Help");
  help->addAction("&Keyboard Shortcuts", QKeySequence("F1"), this, &MainWindow::showShortcuts);
  help->addAction("&Documentation", this, &MainWindow::showDocs);
  help->addSeparator();
  help->addAction("&About Hone", this, &MainWindow::showAbout);

  QSettings st;
  restoreGeometry(st.value("window/geometry").toByteArray());
  // Saved on a larger screen (or none saved and a large default): fit the one it opens on.
  if (const QScreen* screen = QGuiApplication::primaryScreen()) {
    const QRect avail = screen->availableGeometry();
    if (width() > avail.width() || height() > avail.height()) {
      resize(std::min(width(), avail.width()), std::min(height(), avail.height() - 40));  // room for a title bar
      move(avail.topLeft());
    }
  }
  restoreState(st.value("window/state").toByteArray());
  QString ws = workspace;
  if (ws.isEmpty()) ws = qEnvironmentVariable("HONE_WORKSPACE");
  if (ws.isEmpty()) ws = st.value("workspace/last").toString();
  if (ws.isEmpty()) ws = QString::fromStdString(Workspace::default_dir());  // first launch: the demo's workspace
  openWorkspace(ws);
  // The demo's base model, when `hone-cli demo` has built it, is the default model to train.
  const QString demo_model = QDir(workspace_).filePath("demo/skills-base");
  QString model = st.value("train/model").toString();
  // Another workspace's demo base (the last model used, from the settings) gives way to this one's.
  const bool other_demo = model.endsWith("/demo/skills-base") && QDir(model).canonicalPath() != QDir(demo_model).canonicalPath();
  if (QDir(demo_model).exists() && (model.isEmpty() || !QDir(model).exists() || other_demo)) model = demo_model;
  if (!model.isEmpty()) shareModelFolder(model);
  // Back on the page it was closed on (the Train page the first time).
  const int last = st.value("window/page", int(Train)).toInt();
  sidebar_->setCurrentRow(last >= 0 && last < kPages ? last : int(Train));
  poll_ = new QTimer(this);
  connect(poll_, &QTimer::timeout, this, &MainWindow::checkForChanges);
  poll_->start(1500);
}

MainWindow::~MainWindow() = default;

void MainWindow::shareModelFolder(const QString& dir) {
  // The model chosen on one page is offered on the others; a folder the user put in a page's own
  // field stays (the pages take the offer only over an empty field or the previous offer).
  if (dir.isEmpty() || dir == shared_model_) return;
  const QString previous = shared_model_;
  shared_model_ = dir;
  if (train_->modelFolder().trimmed().isEmpty()) train_->setModelFolder(dir);
  datasets_->setModelFolder(dir, previous);
  label_->setModelFolder(dir);
  playground_->setModelFolder(dir, previous);
}

void MainWindow::openWorkspace(const QString& dir) {
  try {
    Workspace ws(dir.toStdString());  // creates, migrates and recovers interrupted runs
    watch_ = std::make_unique<Workspace>(dir.toStdString());
    data_version_ = -1;
    checkForChanges();  // the baseline: later commits by other connections change it
  } catch (const std::exception& e) {
    QMessageBox::warning(this, "Cannot open workspace", e.what());
    return;
  }
  workspace_ = dir;
  set_crash_workspace(dir.toStdString());
  datasets_->setWorkspace(dir);
  label_->setWorkspace(dir);
  train_->setWorkspace(dir);
  {
    const QString form = QSettings().value("train/form/" + QString(dir).replace('/', '|')).toString();
    // Applied as presets are (no model or data required): a half-filled form comes back half-filled.
    if (!form.isEmpty()) try {
        const nlohmann::json j = nlohmann::json::parse(form.toStdString());
        RunConfig c = default_run_config(j.value("method", std::string("lora")));
        apply_config_json(c, j, "the saved Train form");
        train_->setConfig(c);
      } catch (const std::exception&) {
        // A form saved by another version, or naming what is gone: the page keeps its defaults.
      }
  }
  runs_->setWorkspace(dir);
  evaluate_->setWorkspace(dir);
  playground_->setWorkspace(dir);
  export_->setWorkspace(dir);
  QSettings st;
  st.setValue("workspace/last", dir);
  QStringList recent = st.value("workspace/recent").toStringList();
  recent.removeAll(dir);
  recent.prepend(dir);
  while (recent.size() > 8) recent.removeLast();
  st.setValue("workspace/recent", recent);
  rebuildRecentMenu();
  QString shown = QDir::cleanPath(dir);
  if (shown.startsWith(QDir::homePath() + "/")) shown = "~" + shown.mid(QDir::homePath().size());
  setWindowTitle(QString("%1 — Hone").arg(shown));
  statusBar()->showMessage("Workspace " + dir);
  reportEarlierCrash();
}

void MainWindow::reportEarlierCrash() {
  // The newest crash report not yet shown for this workspace (reports are named by UTC time).
  const QDir dir(QString::fromStdString(crash_reports_dir(workspace_.toStdString())));
  const QStringList reports = dir.entryList({"crash-*.txt"}, QDir::Files, QDir::Name);
  if (reports.isEmpty()) return;
  QSettings st;
  const QString key = "crash/seen/" + QString(workspace_).replace('/', '|');
  if (st.value(key).toString() >= reports.last()) return;
  st.setValue(key, reports.last());
  QFile f(dir.filePath(reports.last()));
  QString sig = "a fatal signal", run;
  if (f.open(QIODevice::ReadOnly)) {
    for (const QString& l : QString::fromUtf8(f.read(4096)).split('\n')) {
      if (l.startsWith("signal: ")) sig = l.mid(8).section('(', 1).section(')', 0, 0);
      if (l.startsWith("run in progress: ") && !l.endsWith("none")) run = l.mid(17).section(' ', 0, 0);
    }
  }
  QString text = QString("Hone stopped unexpectedly (%1). A crash report was saved to\n%2").arg(sig, f.fileName());
  if (!run.isEmpty()) text += QString("\n\nRun %1 was marked interrupted; resume it from its last checkpoint on the Runs page.").arg(run);
  statusBar()->showMessage(QString("Hone stopped unexpectedly last time; report: %1").arg(f.fileName()));
  auto* box = new QMessageBox(QMessageBox::Warning, "Hone stopped unexpectedly", text, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->setObjectName("crashNotice");
  box->open();  // asynchronous: the event loop runs on, and training can go on behind it
}

void MainWindow::checkForChanges() {
  if (!watch_) return;
  qint64 v = -1;
  try {
    Stmt s = watch_->db().prepare("PRAGMA data_version");
    if (s.step()) v = s.i64(0);
  } catch (const std::exception&) {
    return;
  }
  if (data_version_ >= 0 && v != data_version_) refreshPage(currentPage());
  data_version_ = v;
}

void MainWindow::refreshPage(int i) {
  // Only the page in view reads the store; the others refresh when shown.
  if (QApplication::activeModalWidget()) return;
  switch (i) {
    case Datasets: datasets_->refresh(); break;
    case Label: label_->refresh(); break;
    case Train:
      if (!train_->job()->running()) {
        train_->refreshDatasets();
        train_->form()->inputs()->recheckModel();  // a hub model downloaded or removed meanwhile
      }
      break;
    case Runs: runs_->refresh(); break;
    case Evaluate: evaluate_->refresh(); break;
    case Playground:
      if (!playground_->busy()) playground_->refresh();
      break;
    case Export: export_->refresh(); break;
    case Models: models_->refresh(); break;
    default: break;
  }
}

bool MainWindow::openLocation(const QString& where) {
  const QString page = where.section(':', 0, 0).toLower(), name = where.section(':', 1);
  for (int i = 0; i < kPages; ++i)
    if (page == QString(kPageNames[i]).toLower()) {
      showPage(i);
      if (name.isEmpty()) return true;
      bool ok = true;
      if (i == Label) ok = label_->openDataset(name);
      else if (i == Datasets) ok = datasets_->selectDataset(name);
      if (!ok) statusBar()->showMessage(QString("No dataset \"%1\" in this workspace").arg(name));
      return ok;
    }
  statusBar()->showMessage(QString("--open %1: no such page (datasets, label, train, runs, evaluate, playground, export)").arg(where));
  return false;
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (urls.isEmpty() || !urls.first().isLocalFile()) return;
  showPage(Datasets);
  datasets_->importFile(urls.first().toLocalFile());
  e->acceptProposedAction();
}

void MainWindow::rebuildRecentMenu() {
  recent_->clear();
  for (const QString& d : QSettings().value("workspace/recent").toStringList())
    recent_->addAction(d, this, [this, d] { openWorkspace(d); });
}

void MainWindow::stopForSignal() {
  auto* job = train_->job();
  quitting_ = true;
  for (Job* j : Job::runningJobs())
    if (j != job->worker()) j->cancel();
  if (!job->running()) {
    Q_EMIT readyToQuit();
    return;
  }
  connect(job, &TrainJob::finished, this, [this] { Q_EMIT readyToQuit(); }, Qt::QueuedConnection);
  job->interrupt();
}

void MainWindow::closeEvent(QCloseEvent* e) {
  const QList<Job*> running = Job::runningJobs();
  if (!running.isEmpty()) {
    if (!quitting_) {
      QStringList names;
      for (Job* j : running) names << j->name();
      const bool training = train_->job()->running();
      if (QMessageBox::question(this, "Work in progress",
                                QString("Still running: %1. Cancel and quit?%2")
                                    .arg(names.join(", "), training ? " The training run keeps a checkpoint to resume from." : "")) !=
          QMessageBox::Yes) {
        e->ignore();
        return;
      }
      quitting_ = true;
      train_->job()->cancel();
      for (Job* j : running) {
        j->cancel();
        // The window closes once the last job has stopped; the GUI thread does not wait.
        connect(j, &Job::stopped, this, [this] { QTimer::singleShot(0, this, &QWidget::close); }, Qt::QueuedConnection);
      }
      statusBar()->showMessage("Cancelling… Hone quits when the running work has stopped.");
    }
    // Quitting: work started meanwhile (a page refreshing after its job stopped) is cancelled too,
    // and the window looks again shortly, so the last job to stop is never missed.
    for (Job* j : running) j->cancel();
    QTimer::singleShot(200, this, &QWidget::close);
    e->ignore();
    return;
  }
  QSettings st;
  st.setValue("window/geometry", saveGeometry());
  st.setValue("window/state", saveState());
  st.setValue("window/page", currentPage());
  // The Train form as it was, for this workspace (its datasets and runs are this workspace's).
  st.setValue("train/form/" + QString(workspace_).replace('/', '|'), train_->configJson());
  QMainWindow::closeEvent(e);
}

int MainWindow::pageCount() const { return pages_->count(); }
void MainWindow::showPage(int index) { sidebar_->setCurrentRow(index); }
int MainWindow::currentPage() const { return sidebar_->currentRow(); }
QString MainWindow::pageName(int index) const { return index >= 0 && index < kPages ? kPageNames[index] : QString(); }

QString MainWindow::aboutText() const {
  auto s = hone::system_info(false);
  return QString("Hone %1\nWorkspace %9\nQt %2\nlibtorch %3\ndevice %4\nBLAS %5%6\nthreads %7 of %8 cores\n\n"
                 "Licensed under the GNU General Public License, version 3 or (at your option) any later "
                 "version (GPL-3.0-or-later): you may share and change it under its terms, and it comes with "
                 "no warranty. The licence text is the LICENSE file of the source and "
                 "/usr/share/common-licenses/GPL-3; /usr/share/doc/hone/copyright names every part's licence "
                 "(Qt 6: LGPL-3; QCustomPlot: GPL-3; libtorch, OpenBLAS, Gloo: BSD-3-clause; oneDNN, SentencePiece: "
                 "Apache-2.0; nlohmann/json: MIT).")
      .arg(HONE_VERSION, qVersion(), QString::fromStdString(s.libtorch_version), QString::fromStdString(s.device),
           QString::fromStdString(s.blas.empty() ? std::string("unknown") : s.blas),
           s.blas_is_reference ? QString(" (slow reference build)")
                               : s.blas_core.empty() ? QString() : QString(", %1 kernels").arg(QString::fromStdString(s.blas_core)))
      .arg(s.threads)
      .arg(s.cores)
      .arg(workspace_);
}

QString MainWindow::shortcutsText() {
  QString t = "<h3>Everywhere</h3><table cellspacing=4>";
  auto row = [&t](const QString& k, const QString& what) { t += QString("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(k, what); };
  for (int i = 0; i < kPages; ++i) row(QString("Ctrl+%1").arg(i + 1), QString("%1 page").arg(kPageNames[i]));
  row("Ctrl+I", "Import a dataset");
  row("Ctrl+N / Ctrl+O", "New / open a workspace");
  row("Ctrl+,", "Settings (threads, device, models folder, annotator name)");
  row("F1", "This list");
  row("Ctrl+Q", "Quit (running work is cancelled first, a run keeps its checkpoint)");
  t += "</table><h3>Datasets</h3><table cellspacing=4>";
  row("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo a row edit");
  t += "</table><h3>Label</h3><table cellspacing=4>";
  row("1 or A / 2 or B", "Response A / B is better (a single response: good / bad)");
  row("T, X, S", "Tie, both bad, skip");
  row("1-8, Enter, Backspace", "With more than two responses: rank them best first (the last follows); Enter saves a partial "
      "order such as best then worst; Backspace takes back a pick");
  row("K or 1, F or 2, T, D, S", "Reviewing preference pairs: keep, flip, tie, drop, skip");
  row("E, N", "Edit a response (the original is kept), add a note");
  row("Ctrl+Z", "Undo the last verdict or edit");
  row("Arrows", "Previous / next row");
  t += "</table><h3>Train, Playground, Runs</h3><table cellspacing=4>";
  row("Ctrl+Return", "Start training / send the prompt");
  row("F5", "Refresh the runs");
  t += "</table>";
  return t;
}

void MainWindow::showShortcuts() {
  auto* box = new QMessageBox(QMessageBox::NoIcon, "Keyboard shortcuts", shortcutsText(), QMessageBox::Close, this);
  box->setTextFormat(Qt::RichText);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

QString MainWindow::docsDir() {
  for (const QString& d : {QCoreApplication::applicationDirPath() + "/../share/doc/hone/docs", QString(HONE_DOCS_DIR)})
    if (QFileInfo::exists(d + "/store.md")) return QDir(d).canonicalPath();
  return QString();
}

void MainWindow::showDocs() {
  const QString dir = docsDir();
  if (dir.isEmpty()) {
    QMessageBox::information(this, "Documentation", "The documentation (docs/*.md) is not installed next to this build.");
    return;
  }
  QDialog* d = new QDialog(this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->setWindowTitle("Documentation");
  d->resize(900, 640);
  auto* lay = new QHBoxLayout(d);
  auto* list = new QListWidget;
  auto* view = new QTextBrowser;
  view->setOpenExternalLinks(true);
  view->setSearchPaths({dir});
  for (const QString& f : QDir(dir).entryList({"*.md"}, QDir::Files, QDir::Name)) list->addItem(f);
  list->setMaximumWidth(200);
  lay->addWidget(list);
  lay->addWidget(view, 1);
  connect(list, &QListWidget::currentTextChanged, view, [view, dir](const QString& f) {
    view->setSource(QUrl::fromLocalFile(dir + "/" + f), QTextDocument::MarkdownResource);
  });
  // The page about what the window shows (labelling on the Label page, and so on).
  static const char* const kPageDocs[] = {"store.md", "labelling.md", "run-config.md", "store.md", "evaluation.md", "run-config.md", "export.md", "hub.md"};
  const QString wanted = currentPage() >= 0 && currentPage() < int(std::size(kPageDocs)) ? kPageDocs[currentPage()] : "labelling.md";
  const auto found = list->findItems(wanted, Qt::MatchExactly);
  list->setCurrentRow(found.isEmpty() ? 0 : list->row(found.first()));
  d->show();
}

void MainWindow::showAbout() { QMessageBox::about(this, "About Hone", aboutText()); }

void MainWindow::showSettings() {
  QDialog d(this);
  d.setWindowTitle("Settings");
  auto* form = new QFormLayout(&d);
  QSettings st;
  const auto info = hone::system_info(false);
  auto* threads = new QSpinBox;
  threads->setRange(0, 256);
  threads->setSpecialValueText(QString("Automatic (%1 of %2 cores)").arg(info.threads).arg(info.cores));
  threads->setValue(st.value("settings/threads", 0).toInt());
  threads->setToolTip("Threads libtorch uses for training and generation. Automatic picks the physical cores. Takes "
                      "effect at the next start of Hone (like HONE_THREADS for hone-cli).");
  auto* device = new QComboBox;
  device->addItem(QString("Automatic (found: %1)").arg(QString::fromStdString(info.device)), "auto");
  device->addItem("CPU", "cpu");
  if (QString::fromStdString(info.device).startsWith("cuda")) device->addItem("CUDA GPU", "cuda");
  device->setCurrentIndex(std::max(0, device->findData(st.value("settings/device", "auto"))));
  device->setToolTip("Where runs started from the Train page train (the run config's device key).");
  auto* models = new QLineEdit(st.value("settings/models_dir").toString());
  models->setToolTip("Folder the model choosers open first");
  auto* annotator = new QLineEdit(LabelPage::annotator());
  annotator->setToolTip("Your name on the verdicts you give on the Label page (agreement between annotators compares names)");
  form->addRow("Training device", device);
  form->addRow("Threads", threads);
  form->addRow("Models folder", models);
  form->addRow("Annotator name", annotator);
  form->addRow(dialogButtons(&d));
  if (d.exec() == QDialog::Accepted) {
    st.setValue("settings/threads", threads->value());
    st.setValue("settings/device", device->currentData());
    st.setValue("settings/models_dir", models->text());
    st.setValue("settings/annotator", annotator->text().trimmed());
  }
}

}  // namespace hone::ui
