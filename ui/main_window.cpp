// Main window shell. Pages are placeholders until the desktop-app issues fill them.
#include "main_window.h"

#include <QApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QStackedWidget>
#include <QStatusBar>

#include "common/runtime.h"

namespace hone::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("Hone");
  resize(1100, 720);
  auto* central = new QWidget(this);
  auto* lay = new QHBoxLayout(central);
  sidebar_ = new QListWidget(central);
  sidebar_->setFixedWidth(170);
  pages_ = new QStackedWidget(central);
  const char* names[] = {"Datasets", "Label", "Train", "Runs", "Playground", "Export"};
  for (const char* n : names) {
    sidebar_->addItem(n);
    auto* page = new QLabel(QString("<h2>%1</h2><p>Coming with the next issues.</p>").arg(n), pages_);
    page->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    page->setObjectName(QString("page_%1").arg(QString(n).toLower()));
    pages_->addWidget(page);
  }
  lay->addWidget(sidebar_);
  lay->addWidget(pages_, 1);
  setCentralWidget(central);
  connect(sidebar_, &QListWidget::currentRowChanged, pages_, &QStackedWidget::setCurrentIndex);
  sidebar_->setCurrentRow(2);

  auto* file = menuBar()->addMenu("&File");
  file->addAction("&Quit", QKeySequence::Quit, qApp, &QApplication::quit);
  auto* help = menuBar()->addMenu("&Help");
  help->addAction("&About Hone", this, &MainWindow::showAbout);
  statusBar()->showMessage("Ready");
}

int MainWindow::pageCount() const { return pages_->count(); }
void MainWindow::showPage(int index) { sidebar_->setCurrentRow(index); }

QString MainWindow::aboutText() const {
  auto s = hone::system_info(false);
  return QString("Hone %1\nQt %2\nlibtorch %3\ndevice %4\nBLAS %5%6\nthreads %7 of %8 cores")
      .arg(HONE_VERSION, qVersion(), QString::fromStdString(s.libtorch_version), QString::fromStdString(s.device),
           QString::fromStdString(s.blas.empty() ? std::string("unknown") : s.blas),
           s.blas_is_reference ? " (slow reference build)" : "")
      .arg(s.threads)
      .arg(s.cores);
}

void MainWindow::showAbout() { QMessageBox::about(this, "About Hone", aboutText()); }

}  // namespace hone::ui
