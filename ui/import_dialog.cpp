// ImportDialog (see import_dialog.h). The check reads the whole path on the worker with the same
// reader the import uses, so the report shown is the report the import would give.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "import_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QSaveFile>
#include <QRegularExpression>
#include <QScrollBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBlock>
#include <QTextCursor>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include "common/hub_cache.h"
#include "data/parquet.h"
#include "data/records.h"
#include "job.h"
#include "look.h"
#include "rows_model.h"
#include "store/datasets.h"

namespace hone::ui {

namespace {
// A file or folder as typed, or a hub dataset name (ORG/NAME, datasets/ORG/NAME) as its snapshot
// in the Hugging Face cache; *error says why a name is not there.
QString resolvedSource(const QString& typed, QString* error) {
  try {
    return QString::fromStdString(resolve_dataset_path(typed.trimmed().toStdString()));
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return typed.trimmed();
  }
}

// The default dataset name: a hub repo's NAME (typed as a name, or a path inside its cache
// folder, whose file and snapshot names say nothing), else the file's base name.
QString defaultName(const QString& typed, const QString& resolved) {
  std::string hub = hub_name_of_path(resolved.toStdString());
  if (hub.empty()) {
    HubRef r;
    if (parse_hub_ref(typed.trimmed().toStdString(), &r) && resolved != typed.trimmed()) hub = r.id;
  }
  if (!hub.empty()) return QString::fromStdString(hub.substr(hub.find('/') + 1));
  return QFileInfo(resolved).completeBaseName();
}
}  // namespace

ImportDialog::ImportDialog(const QString& workspace, const QString& path, QWidget* parent)
    : QDialog(parent), workspace_(workspace), job_(new Job("import", this)) {
  setWindowTitle("Import dataset");
  resize(980, 700);
  auto* lay = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  auto* prow = new QHBoxLayout;
  path_ = new QLineEdit;
  path_->setPlaceholderText("A .jsonl, .json, .parquet, .csv, .tsv, .txt or .md file, a folder of them, or a cached hub dataset (ORG/NAME)");
  auto* file = new QPushButton("File…");
  auto* folder = new QPushButton("Folder…");
  prow->addWidget(path_, 1);
  prow->addWidget(file);
  prow->addWidget(folder);
  form->addRow("Source", prow);
  name_ = new QLineEdit;
  form->addRow("Name", name_);
  format_ = new QComboBox;
  format_->addItem("Detect", "auto");
  for (const char* f : {"alpaca", "sharegpt", "messages", "prompt-completion", "preference", "text", "candidates", "choice", "prompts"})
    format_->addItem(f, f);
  format_->setToolTip("Row format; Detect recognises it from the first row's fields. \"prompts\" reads a text file "
                      "as one prompt per line (questions to sample candidate responses for)");
  form->addRow("Format", format_);
  field_map_ = new QLineEdit;
  field_map_->setPlaceholderText("source=expected, e.g. question=instruction,answer=output");
  field_map_->setToolTip("Renames the file's fields to the ones the format expects: alpaca instruction, input, output; "
                         "prompt_completion prompt, completion; preference prompt, chosen, rejected; text text; "
                         "messages messages; sharegpt conversations; candidates prompt, responses");
  form->addRow("Field mapping", field_map_);
  fields_ = new QLabel;
  fields_->setWordWrap(true);
  form->addRow("", fields_);
  skip_invalid_ = new QCheckBox("Import the valid rows and leave out the invalid ones");
  form->addRow("", skip_invalid_);
  lay->addLayout(form);
  summary_ = new QLabel("Choose a file or folder.");
  summary_->setWordWrap(true);
  summary_->setObjectName("summary");
  lay->addWidget(summary_);
  auto* split = new QSplitter(Qt::Vertical);
  preview_ = new QTableWidget;
  preview_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  preview_->horizontalHeader()->setStretchLastSection(true);
  split->addWidget(preview_);
  auto* bottom = new QSplitter(Qt::Horizontal);
  problems_ = new QListWidget;
  problems_->setObjectName("problems");
  source_ = new QPlainTextEdit;
  source_->setReadOnly(true);
  source_->setFont(monoFont());
  source_->setLineWrapMode(QPlainTextEdit::NoWrap);
  source_->setPlaceholderText("Click a problem to see its line in the file");
  bottom->addWidget(problems_);
  auto* sourceBox = new QWidget;
  auto* sl = new QVBoxLayout(sourceBox);
  sl->setContentsMargins(0, 0, 0, 0);
  sl->addWidget(source_, 1);
  auto* fixRow = new QHBoxLayout;
  fix_ = new QLineEdit;
  fix_->setObjectName("fixLine");
  fix_->setFont(monoFont());
  fix_->setPlaceholderText("The selected problem's line, to correct here");
  fix_button_ = new QPushButton("Save line && check again");
  fix_button_->setToolTip("Writes the corrected line into the file (the first fix keeps the original as FILE.orig) and "
                          "checks the file again");
  fixRow->addWidget(fix_, 1);
  fixRow->addWidget(fix_button_);
  sl->addLayout(fixRow);
  fix_->setEnabled(false);
  fix_button_->setEnabled(false);
  bottom->addWidget(sourceBox);
  split->addWidget(bottom);
  lay->addWidget(split, 1);
  progress_ = new QProgressBar;
  progress_->setVisible(false);
  lay->addWidget(progress_);
  auto* bb = new QDialogButtonBox;
  import_ = bb->addButton("Import", QDialogButtonBox::AcceptRole);
  cancel_ = bb->addButton(QDialogButtonBox::Cancel);
  import_->setEnabled(false);
  lay->addWidget(bb);

  connect(file, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Dataset file", path_->text(),
                                                   "Datasets (*.jsonl *.json *.parquet *.csv *.tsv *.txt *.md);;All files (*)");
    if (!f.isEmpty()) setPath(f);
  });
  connect(folder, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getExistingDirectory(this, "Folder of dataset files", path_->text());
    if (!f.isEmpty()) setPath(f);
  });
  connect(name_, &QLineEdit::textEdited, this, [this] { name_->setProperty("auto", false); });  // the user's name stays
  connect(path_, &QLineEdit::editingFinished, this, [this] {
    updateDefaultName();
    check();
  });
  connect(format_, &QComboBox::currentIndexChanged, this, &ImportDialog::check);
  connect(field_map_, &QLineEdit::editingFinished, this, &ImportDialog::check);
  connect(skip_invalid_, &QCheckBox::toggled, this, [this] {
    import_->setEnabled(!job_->running() && (valid_ || (skip_invalid_->isChecked() && previewRows() > 0)));
  });
  connect(problems_, &QListWidget::currentRowChanged, this, &ImportDialog::showProblem);
  connect(fix_button_, &QPushButton::clicked, this, [this] { fixLine(fix_->text()); });
  connect(fix_, &QLineEdit::returnPressed, this, [this] { fixLine(fix_->text()); });
  connect(import_, &QPushButton::clicked, this, &ImportDialog::startImport);
  connect(cancel_, &QPushButton::clicked, this, [this] {
    if (job_->running()) job_->cancel();  // the import rolls back; the dialog stays open
    else reject();
  });
  connect(job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString& text) {
    progress_->setVisible(true);
    progress_->setRange(0, total > 0 ? 1000 : 0);
    if (total > 0) progress_->setValue(static_cast<int>(1000 * done / total));
    progress_->setFormat(!text.isEmpty() ? text : total > 0 ? QString("%1 of %2 rows").arg(done).arg(total) : QString("%1 rows").arg(done));
  });
  connect(job_, &Job::failed, this, [this](const QString& e) {
    progress_->setVisible(false);
    summary_->setText((job_->cancelRequested() ? "Cancelled: " : "Failed: ") + e);
    import_->setEnabled(valid_);
    if (doing_ == Doing::Check) Q_EMIT checked();
    doing_ = Doing::Nothing;
  });
  connect(job_, &Job::finished, this, [this](const QVariant& v) {
    progress_->setVisible(false);
    const QVariantMap m = v.toMap();
    if (doing_ == Doing::Import) {
      doing_ = Doing::Nothing;
      imported_ = m.value("id").toLongLong();
      if (imported_ > 0) {
        accept();
        return;
      }
      summary_->setText("Nothing was imported: " + m.value("why").toString());
      import_->setEnabled(valid_);
      return;
    }
    doing_ = Doing::Nothing;
    const qint64 rows = m.value("rows").toLongLong(), errors = m.value("errors").toLongLong();
    valid_ = errors == 0 && rows > 0;
    summary_->setText(QString("%1 format, %2 data: %3 rows read, %4 valid, %5 with errors, %6 duplicates%7")
                          .arg(m.value("format").toString(), m.value("kind").toString())
                          .arg(m.value("read").toLongLong())
                          .arg(rows)
                          .arg(errors)
                          .arg(m.value("duplicates").toLongLong())
                          .arg(errors ? ". Fix the file, map its fields, or tick the box to import the valid rows."
                               : m.value("kind") == "text" && QRegularExpression("\\.(txt|md)$").match(path_->text().toLower()).hasMatch()
                                   ? ". A text file is one document; choose the format \"prompts\" to read one prompt per line."
                                   : "."));
    const QString found = m.value("fields").toString();
    fields_->setText(found.isEmpty() ? QString() : "Fields in the file's first row: " + found);
    const QString kind = m.value("kind").toString();
    const QStringList cols = RowsModel::columns(kind);
    const QStringList rowsJson = m.value("preview").toStringList();
    preview_->clear();
    preview_->setColumnCount(cols.size());
    preview_->setHorizontalHeaderLabels(cols);
    preview_->setRowCount(rowsJson.size());
    // Places are shown from the chosen folder (or the file's own folder) down, the whole path in
    // the tooltip: a hub dataset's cache path would otherwise fill the preview.
    const QString chosen = resolvedSource(path_->text(), nullptr);
    const QString prefix = (QFileInfo(chosen).isDir() ? QDir(chosen).absolutePath() : QFileInfo(chosen).absolutePath()) + "/";
    const int source_col = cols.indexOf("Source");
    for (int r = 0; r < rowsJson.size(); ++r) {
      DatasetRow row;
      row.data = rowsJson[r].toStdString();
      row.source = m.value("sources").toStringList().value(r).toStdString();
      const QStringList c = RowsModel::cells(kind, row);
      // Numbered by the file's lines (a Parquet file's rows), as the Datasets table will number them.
      const QRegularExpressionMatch lm = QRegularExpression(":(?: row )?(\\d+)$").match(QString::fromStdString(row.source));
      preview_->setVerticalHeaderItem(r, new QTableWidgetItem(lm.hasMatch() ? lm.captured(1) : QString::number(r + 1)));
      for (int k = 0; k < c.size(); ++k) {
        auto* item = new QTableWidgetItem(c[k]);
        if (k == source_col && c[k].startsWith(prefix)) {
          item->setText(c[k].mid(prefix.size()));
          item->setToolTip(c[k]);
        }
        preview_->setItem(r, k, item);
      }
    }
    problems_->clear();
    problem_where_ = m.value("where").toStringList();
    const QStringList texts = m.value("problems").toStringList();
    for (int i = 0; i < texts.size(); ++i) {
      auto* it = new QListWidgetItem(texts[i]);
      it->setToolTip(texts[i]);  // the whole message when the list cuts it off
      if (m.value("warnings").toList().value(i).toBool()) it->setForeground(QColor(180, 120, 0));
      else it->setForeground(QColor(192, 57, 43));
      problems_->addItem(it);
    }
    import_->setEnabled(valid_ || (skip_invalid_->isChecked() && rows > 0));
    Q_EMIT checked();
  });
  if (!path.isEmpty()) setPath(path);
}

void ImportDialog::setName(const QString& n) { name_->setText(n); }
void ImportDialog::setFormat(const QString& f) {
  const int i = format_->findData(f);
  if (i >= 0) format_->setCurrentIndex(i);  // checks again
}
void ImportDialog::setSkipInvalid(bool on) { skip_invalid_->setChecked(on); }


void ImportDialog::setPath(const QString& path) {
  path_->setText(path);
  updateDefaultName();
  check();
}

void ImportDialog::updateDefaultName() {
  if (name_->text().isEmpty() || name_->property("auto").toBool()) {
    name_->setText(defaultName(path_->text(), resolvedSource(path_->text(), nullptr)));
    name_->setProperty("auto", true);
  }
}

namespace {
ReadOptions readOptions(const QString& format, const QString& map) {
  ReadOptions o;
  if (!example_format_from_name(format.toStdString(), &o.format)) o.format = ExampleFormat::Auto;
  if (!map.trimmed().isEmpty()) o.field_map = parse_field_map(map.trimmed().toStdString());
  return o;
}
}  // namespace

namespace {
// The field names of a file's first row (JSON Lines keys, a CSV/TSV header or a Parquet file's
// top-level columns), as a hint for the field mapping; "" for a folder, a JSON array or anything
// unreadable.
QString firstRowFields(const QString& path) {
  if (QFileInfo(path).suffix().toLower() == "parquet") {
    try {
      QStringList keys;  // from the footer alone: no rows are read
      for (const auto& c : ParquetReader(path.toStdString()).columns()) {
        const QString top = QString::fromStdString(c.substr(0, c.find('.')));
        if (!keys.contains(top)) keys << top;
      }
      return keys.join(", ");
    } catch (const std::exception&) {
      return QString();
    }
  }
  QFile f(path);
  if (!QFileInfo(path).isFile() || !f.open(QIODevice::ReadOnly)) return QString();
  QByteArray line;
  while (!f.atEnd() && line.trimmed().isEmpty()) line = f.readLine(1 << 20);
  line = line.trimmed();
  if (line.startsWith('{')) {
    try {
      QStringList keys;
      const nlohmann::json row = nlohmann::json::parse(line.toStdString());  // outlives the loop over its items
      for (const auto& [k, v] : row.items()) keys << QString::fromStdString(k);
      return keys.join(", ");
    } catch (const std::exception&) {
      return QString();
    }
  }
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == "csv" || suffix == "tsv") return QString::fromUtf8(line).split(suffix == "tsv" ? '\t' : ',').join(", ");
  return QString();
}
}  // namespace

void ImportDialog::check() {
  QString hub_error;
  const QString path = resolvedSource(path_->text(), &hub_error);
  if (path.isEmpty() || job_->running()) return;
  if (!hub_error.isEmpty()) {
    valid_ = false;
    import_->setEnabled(false);
    summary_->setText(hub_error.replace("`hone-cli hub download --dataset", "the Models page (Dataset repo) or `hone-cli hub download --dataset"));
    return;
  }
  valid_ = false;
  import_->setEnabled(false);
  summary_->setText("Reading " + path + " …");
  const QString fmt = format_->currentData().toString(), map = field_map_->text();
  doing_ = Doing::Check;
  job_->start([path, fmt, map](Job::Context& ctx) -> QVariant {
    ctx.progress(0, 0, "Reading");
    qint64 valid = 0;
    // Streamed: only the previewed rows are kept, so checking a million-row file holds one Parquet
    // row group (or the one text file) at a time rather than every record.
    std::vector<Record> first;
    ReadResult rr = read_dataset_stream(path.toStdString(), readOptions(fmt, map), [&](Record&& r, ExampleFormat) {
      if (first.size() < 50) first.push_back(std::move(r));
      ++valid;
    });
    rr.records = std::move(first);
    QVariantMap m;
    m["kind"] = QString(dataset_kind_name(rr.kind));
    m["format"] = QString(example_format_name(rr.format));
    m["read"] = qint64(rr.rows_read);
    m["rows"] = valid;
    m["errors"] = qint64(rr.errors);
    m["duplicates"] = qint64(rr.duplicates);
    QStringList preview, sources, problems, where;
    QVariantList warnings;
    for (size_t i = 0; i < rr.records.size() && i < 50; ++i) {
      preview << QString::fromStdString(rr.records[i].data);
      sources << QString::fromStdString(rr.records[i].source);
    }
    for (size_t i = 0; i < rr.problems.size() && i < 2000; ++i) {
      problems << QString::fromStdString(rr.problems[i].text());
      where << QString::fromStdString(rr.problems[i].where);
      warnings << !rr.problems[i].error;
    }
    m["fields"] = firstRowFields(path);
    m["preview"] = preview;
    m["sources"] = sources;
    m["problems"] = problems;
    m["where"] = where;
    m["warnings"] = warnings;
    return m;
  });
}

void ImportDialog::startImport() {
  if (job_->running()) return;
  const QString path = resolvedSource(path_->text(), nullptr), name = name_->text().trimmed();
  if (name.isEmpty()) {
    summary_->setText("Give the dataset a name.");
    return;
  }
  const QString fmt = format_->currentData().toString(), map = field_map_->text(), ws = workspace_;
  const bool skip = skip_invalid_->isChecked();
  import_->setEnabled(false);
  doing_ = Doing::Import;
  job_->start([=](Job::Context& ctx) -> QVariant {
    Workspace w(ws.toStdString());
    ImportOptions o;
    o.read = readOptions(fmt, map);
    o.skip_invalid = skip;
    o.progress = [&ctx](int64_t done, int64_t total) {
      ctx.progress(done, total);
      return !ctx.cancelled();
    };
    ctx.progress(0, 0, "Reading");
    ImportReport rep = import_dataset(w, path.toStdString(), name.toStdString(), o);
    QVariantMap m;
    m["id"] = qint64(rep.dataset_id);
    m["why"] = rep.problems.empty() ? QString("no valid rows") : QString::fromStdString(rep.problems.front().text());
    return m;
  });
}

bool ImportDialog::fixLine(const QString& text) {
  if (fix_path_.isEmpty() || fix_line_ < 1 || job_->running()) return false;
  QFile in(fix_path_);
  if (!in.open(QIODevice::ReadOnly)) {
    summary_->setText("Cannot read " + fix_path_ + " to fix it.");
    return false;
  }
  QByteArray data = in.readAll();
  in.close();
  // Find line fix_line_ (1-based) as the reader counts lines: by '\n'.
  qsizetype start = 0;
  for (int n = 1; n < fix_line_ && start >= 0; ++n) {
    start = data.indexOf('\n', start);
    if (start >= 0) ++start;
  }
  if (start < 0) {
    summary_->setText(QString("%1 has no line %2 any more; check it again.").arg(fix_path_).arg(fix_line_));
    return false;
  }
  qsizetype end = data.indexOf('\n', start);
  if (end < 0) end = data.size();
  if (end > start && data[end - 1] == '\r') --end;  // keep the file's own line ending
  QByteArray fixed = text.toUtf8();
  fixed.replace('\n', ' ');  // one line stays one line
  data.replace(start, end - start, fixed);
  const QString orig = fix_path_ + ".orig";
  if (!QFile::exists(orig) && !QFile::copy(fix_path_, orig)) {
    summary_->setText("Cannot keep the original as " + orig + "; nothing changed.");
    return false;
  }
  // Written beside it, then renamed over it: never a half-written file.
  QSaveFile out(fix_path_);
  if (!out.open(QIODevice::WriteOnly) || out.write(data) != data.size() || !out.commit()) {
    summary_->setText("Cannot write " + fix_path_ + ": " + out.errorString());
    return false;
  }
  const int line = fix_line_;
  // The view showed the line as it was: it waits for the new check's problems.
  source_->setPlainText(QString("Line %1 saved. Checking the file again…").arg(line));
  fix_->clear();
  fix_->setEnabled(false);
  fix_button_->setEnabled(false);
  check();
  summary_->setText(QString("Line %1 saved (the original file is kept as %2); checking again…").arg(line).arg(QFileInfo(orig).fileName()));
  return true;
}

QString ImportDialog::summaryText() const { return summary_->text(); }
QString ImportDialog::fieldsText() const { return fields_->text(); }
int ImportDialog::problemCount() const { return problems_->count(); }
int ImportDialog::previewRows() const { return preview_->rowCount(); }

void ImportDialog::showProblem(int i) {
  if (i < 0 || i >= problem_where_.size()) return;
  if (problems_->currentRow() != i) problems_->setCurrentRow(i);
  // where is "file:line" (or "file: element N" for JSON arrays, which has no line to show).
  const QString w = problem_where_[i];
  const int colon = w.lastIndexOf(':');
  bool ok = false;
  const int line = colon > 0 ? w.mid(colon + 1).toInt(&ok) : 0;
  fix_->clear();
  fix_->setEnabled(false);
  fix_button_->setEnabled(false);
  fix_path_.clear();
  fix_line_ = 0;
  if (!ok || line < 1) {
    source_->setPlainText(w);
    return;
  }
  QFile f(w.left(colon));
  if (!f.open(QIODevice::ReadOnly)) {
    source_->setPlainText("cannot open " + w.left(colon));
    return;
  }
  // Lines around the problem, numbered as the report numbers them.
  QStringList shown;
  int n = 0, focus = 0;
  while (!f.atEnd() && n < line + 5) {
    const QByteArray l = f.readLine();
    ++n;
    if (n == line && !l.contains('\0')) {  // the line itself, whole, to correct
      QString whole = QString::fromUtf8(l);
      while (whole.endsWith('\n') || whole.endsWith('\r')) whole.chop(1);
      const QString suffix = QFileInfo(w.left(colon)).suffix().toLower();
      if (suffix == "jsonl" || suffix == "json" || suffix == "txt" || suffix == "csv" || suffix == "tsv") {
        fix_->setText(whole);
        fix_->setCursorPosition(0);
        fix_->setEnabled(true);
        fix_button_->setEnabled(true);
        fix_path_ = w.left(colon);
        fix_line_ = line;
      }
    }
    if (n >= line - 5) {
      if (n == line) focus = shown.size();
      QString t = QString::fromUtf8(l).trimmed();
      if (t.size() > 400) t = t.left(400) + "…";
      shown << QString("%1%2  %3").arg(n == line ? "▶" : " ").arg(n, 6).arg(t);
    }
  }
  source_->setPlainText(shown.join('\n'));
  // The line selected from its end back to its start, so that the view shows where it begins.
  QTextCursor c(source_->document()->findBlockByNumber(focus));
  c.movePosition(QTextCursor::EndOfBlock);
  c.movePosition(QTextCursor::StartOfBlock, QTextCursor::KeepAnchor);
  source_->setTextCursor(c);
  source_->horizontalScrollBar()->setValue(0);
}

QString ImportDialog::focusedLine() const { return source_->textCursor().selectedText(); }

}  // namespace hone::ui
