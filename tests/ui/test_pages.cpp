// GUI tests of the data pages (offscreen): the import wizard with a bad line, fixing a row and
// undoing it, labelling candidate pairs by keyboard, the template preview's trained/masked counts
// against the core and a real tokenizer, the playground against hone-cli generate, scrolling a
// 1M-row dataset, the Train page's model checks, --open, $HONE_WORKSPACE and outside changes.
// Every page is saved as a screenshot in the build folder.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <QAbstractItemView>
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QScrollArea>
#include <QDir>
#include <QElapsedTimer>
#include <QProcess>
#include <QScrollBar>
#include <QStandardPaths>
#include <QTableView>
#include <QTimer>
#include <QWheelEvent>
#include <QtTest/QtTest>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/sequences.h"
#include "datasets_page.h"
#include "export_page.h"
#include "import_dialog.h"
#include "job.h"
#include "label_page.h"
#include "look.h"
#include "gui_test_support.h"
#include "main_window.h"
#include "playground_page.h"
#include "row_editor.h"
#include "rows_model.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/runs.h"
#include "tokenizer/tokenizer.h"
#include "train_page.h"

using nlohmann::json;

namespace {

QString work(const QString& name) { return gui_test::work("pages-" + name); }
using gui_test::screenshot;
using gui_test::StallMeter;

void writeLines(const QString& path, const std::vector<std::string>& lines) {
  std::ofstream f(path.toStdString());
  for (const auto& l : lines) f << l << "\n";
}

std::string chatRow(const std::string& q, const std::string& a) {
  return json({{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}}).dump();
}

int64_t importInto(const QString& ws, const QString& file, const QString& name) {
  hone::Workspace w(ws.toStdString());
  return hone::import_dataset(w, file.toStdString(), name.toStdString(), {}).dataset_id;
}

}  // namespace

class TestPages : public QObject {
  Q_OBJECT
  QString model_;

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("HoneTestPages");
    const QString d = work("fixture");
    model_ = d + "/model";
    const QString cmd = QString("%1 init-model --preset tiny --tokenizer builtin --out '%2' --seed 5 > /dev/null").arg(HONE_CLI, model_);
    QCOMPARE(std::system(cmd.toUtf8().constData()), 0);
  }

  // A JSONL file with a bad line 4: the wizard reports it with its line, shows that line, refuses
  // a plain import and imports the five valid rows when asked to leave the bad one out.
  void importThroughTheWizard() {
    const QString ws = work("import");
    hone::Workspace(ws.toStdString());
    const QString file = ws + "/qa.jsonl";
    writeLines(file, {R"({"instruction":"one","output":"1"})", R"({"instruction":"two","output":"2"})",
                      R"({"instruction":"three","output":"3"})", R"({"instruction":"four"})",
                      R"({"instruction":"five","output":"5"})", R"({"instruction":"six","output":"6"})"});
    hone::ui::ImportDialog d(ws);
    QSignalSpy checked(&d, &hone::ui::ImportDialog::checked);
    d.show();
    d.setPath(file);
    QTRY_VERIFY_WITH_TIMEOUT(checked.count() >= 1, 20000);
    QVERIFY2(d.summaryText().contains("alpaca") && d.summaryText().contains("5 valid") &&
                 d.summaryText().contains("1 with errors"),
             qPrintable(d.summaryText()));
    QCOMPARE(d.previewRows(), 5);
    QVERIFY2(d.fieldsText().contains("instruction, output"), qPrintable(d.fieldsText()));
    QVERIFY(d.problemCount() >= 1);
    d.showProblem(0);
    QVERIFY2(d.focusedLine().contains("4") && d.focusedLine().contains("four"), qPrintable(d.focusedLine()));
    screenshot(d, "import-wizard");
    d.setName("qa");
    d.setSkipInvalid(true);
    d.startImport();
    QTRY_VERIFY_WITH_TIMEOUT(d.result() == QDialog::Accepted, 20000);
    hone::Workspace w(ws.toStdString());
    const auto info = hone::find_dataset(w, "qa");
    QCOMPARE(info.rows, int64_t(5));
    QCOMPARE(d.importedId(), qint64(info.id));
    // The table numbers rows by their lines in the file: the one after the left-out line 4 is 5.
    hone::ui::RowsModel rows;
    rows.open(ws, info.id);
    QCOMPARE(rows.headerData(2, Qt::Vertical, Qt::DisplayRole).toString(), QString("3"));
    QCOMPARE(rows.headerData(3, Qt::Vertical, Qt::DisplayRole).toString(), QString("5"));
    QVERIFY(rows.headerData(3, Qt::Vertical, Qt::ToolTipRole).toString().startsWith("Row 3 (hone-cli's 0-based position)"));

    // A malformed line, said in plain words, corrected in the wizard's line view and checked again.
    const QString broken = ws + "/broken.jsonl";
    writeLines(broken, {R"({"instruction":"one","output":"1"})", R"({"instruction":"two","output":"2",})"});
    hone::ui::ImportDialog f(ws, broken);
    QSignalSpy fchecked(&f, &hone::ui::ImportDialog::checked);
    QTRY_VERIFY_WITH_TIMEOUT(fchecked.count() >= 1, 20000);
    QCOMPARE(f.problemCount(), 1);
    auto* list = f.findChild<QListWidget*>("problems");
    QVERIFY2(list->item(0)->text().contains("broken.jsonl:2: malformed JSON at column 35: unexpected '}' in an object key; expected string literal (a comma before the closing brace?)"),
             qPrintable(list->item(0)->text()));
    f.showProblem(0);
    auto* fix = f.findChild<QLineEdit*>("fixLine");
    QCOMPARE(fix->text(), QString(R"({"instruction":"two","output":"2",})"));
    QVERIFY(f.fixLine(R"({"instruction":"two","output":"2"})"));
    QTRY_VERIFY_WITH_TIMEOUT(fchecked.count() >= 2, 20000);
    QVERIFY2(f.summaryText().contains("2 valid, 0 with errors"), qPrintable(f.summaryText()));
    QVERIFY(QFile::exists(broken + ".orig"));
    QFile fixedFile(broken);
    QVERIFY(fixedFile.open(QIODevice::ReadOnly));
    QCOMPARE(fixedFile.readAll(), QByteArray("{\"instruction\":\"one\",\"output\":\"1\"}\n{\"instruction\":\"two\",\"output\":\"2\"}\n"));
  }

  // Fixing a row through the row editor's message list, then undoing it, in the store itself.
  void fixABadRowAndUndoIt() {
    const QString ws = work("edit");
    writeLines(ws + "/chat.jsonl", {chatRow("2+2?", "4"), chatRow("3+3?", "five"), chatRow("4+4?", "8")});
    QVERIFY(importInto(ws, ws + "/chat.jsonl", "sums") > 0);
    hone::ui::MainWindow w(ws);
    w.show();
    w.showPage(hone::ui::MainWindow::Datasets);
    auto* dp = w.datasetsPage();
    QVERIFY(dp->selectDataset("sums"));
    QCOMPARE(dp->rows()->rowCount(), 3);
    const hone::DatasetRow bad = dp->rows()->rowAt(1);
    hone::ui::RowEditor e("chat", bad.data);
    QCOMPARE(e.messageCount(), 2);
    {
      hone::ui::RowEditor empty("chat", bad.data);  // a row without messages is refused, with the reason
      empty.removeMessage(1);
      empty.removeMessage(0);
      QCOMPARE(empty.messageCount(), 0);
      QVERIFY(!empty.tryAccept());
    }
    e.setMessage(1, "assistant", "6");
    e.addMessage("user", "and 5+5?");
    e.addMessage("assistant", "10");
    e.moveMessage(3, -1);  // reorder, then back
    e.moveMessage(2, 1);
    e.removeMessage(3);
    e.removeMessage(2);
    QCOMPARE(e.messageCount(), 2);
    QVERIFY(e.tryAccept());
    QVERIFY(dp->updateRow(1, e.rowJson()));
    screenshot(w, "datasets-page");
    {
      hone::Workspace s(ws.toStdString());
      auto rows = hone::read_rows(s, hone::find_dataset(s, "sums").id, 1, 2);
      QCOMPARE(hone::record_messages(rows[0].data)[1].content, std::string("6"));
    }
    QVERIFY(dp->undo());
    hone::Workspace s(ws.toStdString());
    auto rows = hone::read_rows(s, hone::find_dataset(s, "sums").id, 1, 2);
    QCOMPARE(hone::record_messages(rows[0].data)[1].content, std::string("five"));
    QCOMPARE(QString::fromStdString(rows[0].data), QString::fromStdString(bad.data));
    QVERIFY(dp->redo());  // the fix again
    rows = hone::read_rows(s, hone::find_dataset(s, "sums").id, 1, 2);
    QCOMPARE(hone::record_messages(rows[0].data)[1].content, std::string("6"));
    QVERIFY(!dp->redo());
    // Deleting a row, undoing and redoing the delete.
    QVERIFY(dp->deleteRows({0}));
    QCOMPARE(dp->rows()->rowCount(), 2);
    QVERIFY(dp->undo());
    QCOMPARE(dp->rows()->rowCount(), 3);
    QVERIFY(dp->redo());
    QCOMPARE(dp->rows()->rowCount(), 2);
    QVERIFY(dp->undo());
    QCOMPARE(dp->rows()->rowCount(), 3);
    rows = hone::read_rows(s, hone::find_dataset(s, "sums").id, 0, 1);
    QCOMPARE(hone::record_messages(rows[0].data)[0].content, std::string("2+2?"));
    // Search filters the table on a worker; deleting a filtered row leaves the others.
    dp->search("4+4");
    QTRY_VERIFY_WITH_TIMEOUT(dp->rows()->filtered() && !dp->worker()->running(), 10000);
    QCOMPARE(dp->rows()->rowCount(), 1);
    QCOMPARE(dp->rows()->positionAt(0), qint64(2));
  }

  // Four verdicts by keyboard (1, B, T, X), a note, undo (Ctrl+Z), and skip; each checked in the store.
  void labelFourPairsWithTheKeyboard() {
    const QString ws = work("label");
    std::vector<std::string> rows;
    for (int i = 0; i < 5; ++i)
      rows.push_back(json({{"prompt", "Question " + std::to_string(i)}, {"responses", {"Answer A" + std::to_string(i), "**B** `" + std::to_string(i) + "`"}}}).dump());
    rows.push_back(json({{"prompt", "Rate me"}, {"responses", {"Only answer"}}}).dump());
    writeLines(ws + "/cands.jsonl", rows);
    QVERIFY(importInto(ws, ws + "/cands.jsonl", "cands") > 0);
    hone::ui::MainWindow w(ws);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.openLocation("label:cands"));
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Label));
    auto* lp = w.labelPage();
    QCOMPARE(lp->currentPosition(), 0);
    QTest::keyClick(lp, Qt::Key_1);
    QTest::keyClick(lp, Qt::Key_B);
    QTest::keyClick(lp, Qt::Key_T);
    QTest::keyClick(lp, Qt::Key_X);
    QCOMPARE(lp->labelledCount(), 4);
    auto labels = [&] {
      hone::Workspace s(ws.toStdString());
      std::vector<std::string> out;
      for (const auto& c : hone::list_candidates(s, hone::find_dataset(s, "cands").id)) out.push_back(c.label);
      return out;
    };
    QCOMPARE(labels(), (std::vector<std::string>{"a", "b", "tie", "both_bad", "", ""}));
    QCOMPARE(lp->currentPosition(), 4);
    QTest::keyClick(lp, Qt::Key_Z, Qt::ControlModifier);  // takes back "both bad" on row 3
    QCOMPARE(labels(), (std::vector<std::string>{"a", "b", "tie", "", "", ""}));
    QCOMPARE(lp->currentPosition(), 3);
    QVERIFY(lp->setNote("both are wrong"));
    QTest::keyClick(lp, Qt::Key_S);  // skip, with the note
    {
      hone::Workspace s(ws.toStdString());
      auto c = hone::list_candidates(s, hone::find_dataset(s, "cands").id);
      QCOMPARE(c[3].label, std::string("skip"));
      QCOMPARE(c[3].note, std::string("both are wrong"));
    }
    QVERIFY(lp->editResponse(0, "Answer A4, corrected"));
    QTest::keyClick(lp, Qt::Key_A);
    // The single-response row: 2 means "bad" (a KTO thumbs-down).
    QCOMPARE(lp->currentPosition(), 5);
    QTest::keyClick(lp, Qt::Key_2);
    QCOMPARE(labels(), (std::vector<std::string>{"a", "b", "tie", "skip", "a", "both_bad"}));
    screenshot(w, "label-page");
    hone::Workspace s(ws.toStdString());
    auto c = hone::list_candidates(s, hone::find_dataset(s, "cands").id);
    QCOMPARE(c[4].edited, std::vector<int>{0});
    // The labelled candidates train DPO: the Train page gets the dataset with DPO chosen.
    QSignalSpy train(lp, &hone::ui::LabelPage::trainRequested);
    // The counts come before the run exists: three pairs train, the rest is named.
    QCOMPARE(lp->trainOnThese(), QString("3 pairs; left out: 1 tie, 1 both bad, 1 skipped"));
    QCOMPARE(train.count(), 1);
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Train));
    w.trainPage()->setModelFolder(model_);
    QVERIFY(w.trainPage()->methodEnabled("dpo"));
    QVERIFY(!w.trainPage()->methodEnabled("lora"));
    QVERIFY2(w.trainPage()->configJson().contains("\"dataset:cands\""), qPrintable(w.trainPage()->configJson()));
  }

  // The preview's counts against the core's mask and against a hand count with a real tokenizer
  // (Qwen3's tokenizer.json, ChatML): the reply's tokens plus <|im_end|> are trained.
  void templatePreviewCountsMatchTheCore() {
    const QString tokdir = QString(HONE_SHARED_TESTDATA) + "/tokenizers/qwen3";
    if (!QFile::exists(tokdir + "/tokenizer.json")) QSKIP("no ../shared/testdata/tokenizers/qwen3");
    const QString ws = work("preview");
    const std::string reply = "The capital of France is Paris.";
    writeLines(ws + "/chat.jsonl", {chatRow("What is the capital of France?", reply), chatRow("Hi", "Hello!")});
    QVERIFY(importInto(ws, ws + "/chat.jsonl", "geo") > 0);
    hone::ui::MainWindow w(ws);
    w.show();
    w.showPage(hone::ui::MainWindow::Datasets);
    auto* dp = w.datasetsPage();
    QVERIFY(dp->selectDataset("geo"));
    dp->setTokenizerFolder(tokdir);  // a tokenizer folder is enough for the preview
    QTRY_VERIFY_WITH_TIMEOUT(dp->previewTrained() > 0, 20000);
    dp->previewRow(0);
    auto tok = hone::load_tokenizer(tokdir.toStdString());
    // Qwen3's own chat_template, executed as Jinja: the last reply gets its (empty) thinking block,
    // which the plain ChatML rendering lacks; the block is not part of the reply's mask.
    QCOMPARE(dp->previewFormat(), QString("checkpoint"));
    auto ct = hone::tokenize_chat(*tok, hone::resolve_chat_template(tok->config()),
                                  {{"user", "What is the capital of France?"}, {"assistant", reply}}, false);
    QVERIFY(ct.rendered.text.find("<|im_start|>assistant\n<think>\n\n</think>\n\n") != std::string::npos);
    int trained = 0;
    for (auto m : ct.assistant_mask) trained += m;
    QCOMPARE(dp->previewTrained(), trained);
    QCOMPARE(dp->previewMasked(), int(ct.ids.size()) - trained);
    // By hand: the reply's own tokens and its end-of-turn token.
    QCOMPARE(dp->previewTrained(), int(tok->encode(reply, false).ids.size()) + 1);
    dp->showTab(2);
    screenshot(w, "template-preview");
    // Statistics on a worker: rows, duplicates and the token histogram with this tokenizer.
    dp->showTab(1);
    dp->computeStats();
    QTRY_VERIFY_WITH_TIMEOUT(dp->statsText().contains("Tokens per row"), 20000);
    QVERIFY2(dp->statsText().contains("2 rows") && dp->statsText().contains("0 duplicate rows"), qPrintable(dp->statsText()));
    // Counted as training sees them: the longest row is row 0 with its template, as the preview shows it.
    const int row0 = dp->previewTrained() + dp->previewMasked();
    QVERIFY2(dp->statsText().contains(QString("max %1.").arg(row0)), qPrintable(dp->statsText()));
    screenshot(w, "dataset-statistics");
  }

  // Both sides on the base model, greedy: the same answer on each side, equal to what hone-cli
  // generate prints for the same prompt; then the answer is saved as a chat dataset row.
  void playgroundGeneratesOnATinyModel() {
    const QString ws = work("playground");
    hone::ui::MainWindow w(ws);
    w.show();
    w.showPage(hone::ui::MainWindow::Playground);
    auto* pg = w.playgroundPage();
    pg->setModelFolder(model_);
    QCOMPARE(pg->sourceOf(0), QString());
    pg->setSampling(0.0, 12, 3);
    pg->setPrompt("Say number 7");
    StallMeter stall;
    QSignalSpy done(pg, &hone::ui::PlaygroundPage::generationFinished);
    QVERIFY(pg->send());
    QTRY_VERIFY2_WITH_TIMEOUT(done.count() == 1, qPrintable(pg->statusOf(0) + " | " + pg->statusOf(1)), 60000);
    QVERIFY2(stall.worst < 1000, qPrintable(QString("event loop stalled %1 ms").arg(stall.worst)));
    QCOMPARE(pg->answer(0), pg->answer(1));
    QProcess cli;
    cli.start(HONE_CLI, {"generate", "--model", model_, "--prompt", "Say number 7", "--chat", "--max-new-tokens", "12"});
    QVERIFY(cli.waitForFinished(60000));
    const QString expected = QString::fromUtf8(cli.readAllStandardOutput());
    QVERIFY2(expected.startsWith(pg->answer(0)) && expected.trimmed() == pg->answer(0).trimmed(),
             qPrintable("cli: [" + expected + "] playground: [" + pg->answer(0) + "]"));
    screenshot(w, "playground");
    QVERIFY(pg->saveConversation(1, "kept", "Number 7."));
    hone::Workspace s(ws.toStdString());
    auto d = hone::find_dataset(s, "kept");
    QCOMPARE(d.kind, std::string("chat"));
    auto rows = hone::read_rows(s, d.id, 0, 1);
    QCOMPARE(hone::record_messages(rows[0].data).back().content, std::string("Number 7."));
  }

  // The newcomer's path end to end: import a JSONL file with the wizard, fix a row, generate
  // candidates from its prompts, label them by keyboard, train DPO on them from the Train page, and
  // compare the base model with the tuned run side by side in the Playground.
  void newcomerImportsLabelsTrainsAndCompares() {
    const QString ws = work("newcomer");
    std::vector<std::string> lines;
    for (int i = 0; i < 6; ++i) lines.push_back(json({{"instruction", "Say number " + std::to_string(i)}, {"output", "Number " + std::to_string(i) + "."}}).dump());
    lines[2] = R"({"instruction":"Say number 2","output":"Numbr 2"})";  // the row to fix
    writeLines(ws + "/numbers.jsonl", lines);
    hone::ui::MainWindow w(ws);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.showPage(hone::ui::MainWindow::Datasets);
    {
      hone::ui::ImportDialog d(ws, ws + "/numbers.jsonl");
      QSignalSpy checked(&d, &hone::ui::ImportDialog::checked);
      QTRY_VERIFY_WITH_TIMEOUT(checked.count() >= 1, 20000);
      d.startImport();
      QTRY_VERIFY_WITH_TIMEOUT(d.result() == QDialog::Accepted, 20000);
    }
    auto* dp = w.datasetsPage();
    dp->refresh();
    QVERIFY(dp->selectDataset("numbers"));
    hone::ui::RowEditor e("chat", dp->rows()->rowAt(2).data);
    e.setMessage(1, "assistant", "Number 2.");
    QVERIFY(e.tryAccept());
    QVERIFY(dp->updateRow(2, e.rowJson()));
    // Candidates from the model, in the background.
    w.showPage(hone::ui::MainWindow::Label);
    auto* lp = w.labelPage();
    QSignalSpy made(lp->generator(), &hone::ui::Job::stopped);
    QVERIFY(lp->generateCandidates("numbers", model_, QString(), 2, "numbers-candidates", 6));
    // (The spy counts in the worker thread; the page's queued handlers run after it.)
    QTRY_VERIFY2_WITH_TIMEOUT(made.count() == 1 && lp->currentDataset() == "numbers-candidates", qPrintable(lp->statusText()), 60000);
    QCOMPARE(lp->queueSize(), 6);
    for (int i = 0; i < 6; ++i) QTest::keyClick(lp, i % 2 ? Qt::Key_2 : Qt::Key_1);
    QCOMPARE(lp->labelledCount(), 6);
    // Train DPO on these.
    QVERIFY(lp->trainOnThese().startsWith("6 pairs"));
    auto* tp = w.trainPage();
    QCOMPARE(w.currentPage(), int(hone::ui::MainWindow::Train));
    tp->setModelFolder(model_);
    QVERIFY(tp->selectMethod("dpo"));
    tp->setMaxSteps(3);
    QSignalSpy trained(tp, &hone::ui::TrainPage::runFinished);
    QVERIFY(tp->startTraining());
    QTRY_VERIFY_WITH_TIMEOUT(trained.count() == 1, 120000);
    QCOMPARE(trained.last().at(0).toString(), QString("completed"));
    // Base on the left, the DPO run on the right, same seed and settings.
    w.showPage(hone::ui::MainWindow::Playground);
    auto* pg = w.playgroundPage();
    pg->refresh();
    hone::Workspace s(ws.toStdString());
    const auto runs = hone::list_runs(s);
    QCOMPARE(runs.size(), size_t(1));
    QVERIFY(pg->setSource(0, QString()));
    QVERIFY(pg->setSource(1, QString::fromStdString(runs[0].run_dir)));
    pg->setModelFolder(model_);
    pg->setSampling(0.0, 8, 1);
    pg->setPrompt("Say number 3");
    QSignalSpy done(pg, &hone::ui::PlaygroundPage::generationFinished);
    QVERIFY(pg->send());
    QTRY_VERIFY2_WITH_TIMEOUT(done.count() == 1, qPrintable(pg->statusOf(0) + " | " + pg->statusOf(1)), 60000);
    QVERIFY2(pg->statusOf(1).contains("dpo"), qPrintable(pg->statusOf(1)));
    QVERIFY2(pg->statusOf(0).contains("base model"), qPrintable(pg->statusOf(0)));
    screenshot(w, "playground-base-vs-dpo");
    // Export the DPO run as a merged model from the Export page; the check passes.
    w.showPage(hone::ui::MainWindow::Export);
    auto* ep = w.exportPage();
    QVERIFY(ep->selectRun(QString::fromStdString(runs[0].run_dir)));
    ep->setFormat("merged", "f32");
    ep->setDestination(ws + "/exported");
    QVERIFY(ep->startExport());
    QTRY_VERIFY2_WITH_TIMEOUT(!ep->job()->running() && ep->resultText().contains("Export check"), qPrintable(ep->resultText()), 60000);
    QVERIFY2(ep->lastPassed(), qPrintable(ep->resultText()));
    QVERIFY(QFile::exists(ws + "/exported/model.safetensors"));
    // The same run for Ollama: Q8_0 GGUF + Modelfile, checked through the GGUF reader.
    ep->setFormat("ollama", "q8_0");
    ep->setDestination(ws + "/ollama");
    QVERIFY(ep->startExport());
    QTRY_VERIFY2_WITH_TIMEOUT(!ep->job()->running() && ep->resultText().contains("Export check"), qPrintable(ep->resultText()), 60000);
    QVERIFY2(ep->lastPassed(), qPrintable(ep->resultText()));
    QVERIFY2(ep->resultText().contains("q8_0"), qPrintable(ep->resultText()));
    QVERIFY(QFile::exists(ws + "/ollama/Modelfile"));
    screenshot(w, "export-page");
  }

  // The model chosen on the Train page is offered on the others; one typed on another page stays
  // there and is offered onwards.
  void aModelChosenOnOnePageIsOfferedOnTheOthers() {
    const QString ws = work("share");
    hone::ui::MainWindow w(ws);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.trainPage()->setModelFolder(model_);
    QTRY_COMPARE(w.playgroundPage()->modelFolder(), model_);
    QCOMPARE(w.labelPage()->modelFolder(), model_);
    QCOMPARE(w.datasetsPage()->statisticsModelFolder(), model_);
    // A copy of the model chosen in the Playground: the Label page's Generate dialog gets it,
    // the Train page keeps its own.
    const QString other = work("share-model");
    QDir(other).removeRecursively();
    QCOMPARE(std::system(QString("cp -r '%1' '%2'").arg(model_, other).toUtf8().constData()), 0);
    Q_EMIT w.playgroundPage()->modelChosen(other);
    QCOMPARE(w.labelPage()->modelFolder(), other);
    QCOMPARE(w.datasetsPage()->statisticsModelFolder(), other);  // it still held the previous offer
    QCOMPARE(w.trainPage()->modelFolder(), model_);
  }

  // A million rows (written straight into SQLite), scrolled end to end through the table.
  void scrollingAMillionRows() {
    const QString ws = work("million");
    gui_test::fillDataset(ws, "big", hone::DatasetKind::Text, 1000000,
                          [](int64_t i) { return json({{"text", "row " + std::to_string(i) + " of a large corpus"}}).dump(); });
    hone::ui::MainWindow w(ws);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.showPage(hone::ui::MainWindow::Datasets);
    auto* dp = w.datasetsPage();
    QVERIFY(dp->selectDataset("big"));
    QCOMPARE(dp->rows()->rowCount(), 1000000);
    auto* bar = dp->table()->verticalScrollBar();
    StallMeter stall;
    QElapsedTimer t;
    t.start();
    for (int k = 0; k <= 200; ++k) {
      bar->setValue(static_cast<int>(static_cast<qint64>(bar->maximum()) * k / 200));
      QTest::qWait(15);
    }
    QCOMPARE(bar->value(), bar->maximum());
    const QModelIndex last = dp->rows()->index(999999, 0);
    QVERIFY2(dp->rows()->data(last, Qt::DisplayRole).toString().contains("row 999999"),
             qPrintable(dp->rows()->data(last, Qt::DisplayRole).toString()));
    qInfo("1M rows scrolled end to end in %lld ms: longest event-loop stall %lld ms, %lld pages read", t.elapsed(), stall.worst,
          dp->rows()->pagesRead());
    QVERIFY2(stall.worst < 1000, qPrintable(QString("event loop stalled %1 ms").arg(stall.worst)));
    QVERIFY(dp->rows()->pagesRead() < 1000);  // pages, not the dataset
  }

  // Start is offered only for a folder that can train; the reasons are readable.
  void trainPageRefusesUnusableModels() {
    const QString ws = work("models");
    hone::ui::MainWindow w(ws);
    auto* tp = w.trainPage();
    const QString empty = ws + "/empty";
    QDir().mkpath(empty);
    tp->setModelFolder(empty);
    QVERIFY(!tp->startEnabled());
    QVERIFY2(tp->modelProblem().contains("config.json"), qPrintable(tp->modelProblem()));
    const QString only = ws + "/only-config";
    QDir().mkpath(only);
    QFile::copy(model_ + "/config.json", only + "/config.json");
    tp->setModelFolder(only);
    QVERIFY(!tp->startEnabled());
    QVERIFY2(tp->modelProblem().contains("safetensors"), qPrintable(tp->modelProblem()));
    const QString corrupt = ws + "/corrupt";
    QDir().mkpath(corrupt);
    for (const QString& f : QDir(model_).entryList(QDir::Files)) QFile::copy(model_ + "/" + f, corrupt + "/" + f);
    QFile::remove(corrupt + "/config.json");
    writeLines(corrupt + "/config.json", {"{\"model_type\": \"llama\", "});
    tp->setModelFolder(corrupt);
    QVERIFY(!tp->startEnabled());
    QVERIFY2(tp->modelProblem().contains("not valid JSON") && !tp->modelProblem().contains("[json.exception"),
             qPrintable(tp->modelProblem()));
    tp->setModelFolder(model_);
    QVERIFY(tp->modelUsable());
    // Recomputing the MLP is offered and lowers the memory estimate (one [tokens, ffn] tensor per
    // layer less in the core's plan).
    auto* recompute = tp->findChild<QCheckBox*>("mlpRecompute");
    auto* estimate = tp->findChild<QLabel*>("estimate");
    QVERIFY(recompute && estimate);
    const QString plain = estimate->text();
    recompute->setChecked(true);
    QVERIFY2(estimate->text() != plain, qPrintable(plain));
    recompute->setChecked(false);
    QCOMPARE(estimate->text(), plain);
    if (auto* area = tp->findChild<QScrollArea*>()) {  // the form's lower half, where the setting sits
      w.show();
      area->ensureWidgetVisible(recompute);
      screenshot(w, "train-page-memory-settings");
    }
    // Scrolling over an unfocused combo box leaves its value alone (the app's wheel guard).
    hone::ui::installWheelGuard(*qApp);
    QComboBox* schedule = nullptr;
    for (auto* c : tp->findChildren<QComboBox*>())
      if (c->findText("cosine") >= 0) schedule = c;
    QVERIFY(schedule);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    const QString before = schedule->currentText();
    QWheelEvent wheel(QPointF(5, 5), schedule->mapToGlobal(QPointF(5, 5)), QPoint(), QPoint(0, -120), Qt::NoButton, Qt::NoModifier,
                      Qt::NoScrollPhase, false);
    QApplication::sendEvent(schedule, &wheel);
    QCOMPARE(schedule->currentText(), before);
  }

  // On the demo's model the form takes the demo's own recipe; the run name follows data and method.
  void demoModelGetsTheDemoRecipe() {
    const QString ws = work("demo-recipe");
    QDir().mkpath(ws + "/demo/skills-base");
    for (const QString& f : QDir(model_).entryList(QDir::Files)) QFile::copy(model_ + "/" + f, ws + "/demo/skills-base/" + f);
    writeLines(ws + "/chat.jsonl", {chatRow("a", "b"), chatRow("c", "d")});
    QVERIFY(importInto(ws, ws + "/chat.jsonl", "notes") > 0);
    hone::ui::MainWindow w(ws);
    auto* tp = w.trainPage();
    tp->setModelFolder(ws + "/demo/skills-base");
    tp->selectOnlyDataset("notes");
    QVERIFY(tp->selectMethod("lora"));
    auto cfg = json::parse(tp->configJson().toStdString());
    QCOMPARE(cfg["lr"].get<double>(), 3e-3);
    QCOMPARE(cfg["max_seq_len"].get<int>(), 96);
    QCOMPARE(cfg["batch_size"].get<int>(), 16);
    QCOMPARE(QString::fromStdString(cfg["name"]), QString("notes-lora"));
    tp->setModelFolder(model_);  // any other model: the method's general preset
    cfg = json::parse(tp->configJson().toStdString());
    QCOMPARE(cfg["lr"].get<double>(), 2e-4);
  }

  // "Build the demo model" builds the demo's base and datasets in a job, and on that base the Train
  // page's settings are the ones `hone-cli demo` trains with (both read the recipe table): the run
  // configs the CLI recorded match the form's, key for key, but for the steps (shortened here).
  void demoBuiltInTheAppTrainsWithTheCliDemosSettings() {
    const QString ws = work("demo-build");
    hone::ui::MainWindow w(ws);
    auto* tp = w.trainPage();
    QVERIFY(tp->demoOffered());
    tp->buildDemoModel(20);  // 20 pre-training steps: the pipeline, not a learnt base
    QVERIFY(tp->demoJob()->running());
    QVERIFY(!tp->startEnabled());
    // The job's signals reach the page queued, after its running flag has dropped: wait for them.
    QTRY_VERIFY2_WITH_TIMEOUT(tp->statusText().contains("Demo model ready"), qPrintable(tp->statusText()), 120000);
    QTRY_VERIFY_WITH_TIMEOUT(tp->startEnabled(), 5000);
    QVERIFY(!tp->demoOffered());
    QVERIFY(tp->modelUsable());
    const QString base = ws + "/demo/skills-base";
    QCOMPARE(QDir(QString::fromStdString(tp->config().base_model)).canonicalPath(), QDir(base).canonicalPath());
    QVERIFY(tp->config().train_data == std::vector<std::string>{"dataset:demo-skills"});
    for (const auto& [method, data] : std::vector<std::pair<QString, QString>>{{"lora", "demo-skills"}, {"dpo", "demo-preferences"}}) {
      tp->selectOnlyDataset(data);
      QVERIFY(tp->selectMethod(method));
      nlohmann::json form = tp->config().to_json();
      // The same demo from the command line, on the same cached base (its stamp: seed 0, 20 steps).
      const QString out = ws + "/cli-" + method + ".json";
      const QString cmd = QString("%1 demo --workspace '%2' --method %3 --pretrain-steps 20 --steps 2 --json > '%4'")
                              .arg(HONE_CLI, ws, method, out);
      QCOMPARE(std::system(cmd.toUtf8().constData()), 0);
      QFile f(out);
      QVERIFY(f.open(QIODevice::ReadOnly));
      QVERIFY2(!f.readAll().contains("pre-training"), "the base the app built is the one the CLI reuses");
      hone::Workspace db(ws.toStdString());
      nlohmann::json cli;
      for (const auto& r : hone::list_runs(db))
        if (r.name == "demo-" + method.toStdString()) cli = json::parse(r.config);
      QVERIFY(!cli.is_null());
      for (auto* j : {&form, &cli})
        for (const char* k : {"name", "train_data", "max_steps", "base_model"}) j->erase(k);
      QCOMPARE(QString::fromStdString(form.dump(1)), QString::fromStdString(cli.dump(1)));
    }
    screenshot(w, "train-page-demo-built");
  }

  // $HONE_WORKSPACE picks the workspace; a dataset imported by another process appears without a
  // restart; every page is saved as a screenshot.
  void workspaceFromTheEnvironmentAndOutsideChanges() {
    const QString ws = work("env");
    qputenv("HONE_WORKSPACE", ws.toUtf8());
    hone::ui::MainWindow w;
    qunsetenv("HONE_WORKSPACE");
    QCOMPARE(w.workspace(), ws);
    QVERIFY2(w.windowTitle().contains("pages-env"), qPrintable(w.windowTitle()));
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    w.showPage(hone::ui::MainWindow::Datasets);
    QCOMPARE(w.datasetsPage()->datasetCount(), 0);
    writeLines(ws + "/late.jsonl", {chatRow("a", "b")});
    QCOMPARE(QProcess::execute(HONE_CLI, {"dataset", "import", ws + "/late.jsonl", "--name", "late", "--workspace", ws}), 0);
    w.checkForChanges();
    QCOMPARE(w.datasetsPage()->datasetCount(), 1);
    QVERIFY(!w.openLocation("nowhere"));
    for (int i = 0; i < w.pageCount(); ++i) {
      w.showPage(i);
      QTest::qWait(50);
      screenshot(w, "page-" + w.pageName(i).toLower());
    }
  }
};

QTEST_MAIN(TestPages)
#include "test_pages.moc"
