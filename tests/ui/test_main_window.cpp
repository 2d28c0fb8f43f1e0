// GUI smoke test (offscreen): the shell shows its pages and the About text names the versions.
// Saves a screenshot into the build folder for review.
#include <QDir>
#include <QtTest/QtTest>

#include "main_window.h"

class TestMainWindow : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void pagesAndAbout() {
    hone::ui::MainWindow w;
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QCOMPARE(w.pageCount(), 6);
    const QString about = w.aboutText();
    QVERIFY2(about.contains("libtorch"), qPrintable(about));
    QVERIFY2(about.contains(qVersion()), qPrintable(about));
    QVERIFY2(about.contains("threads"), qPrintable(about));
    QDir().mkpath(HONE_TEST_WORK);
    QVERIFY(w.grab().save(QString(HONE_TEST_WORK) + "/screenshot-main-window.png"));
  }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
