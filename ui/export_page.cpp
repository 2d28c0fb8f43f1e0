// ExportPage (see export_page.h): the form builds an ExportSpec; export_run (core/export) writes and
// checks on a Job.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "export_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDesktopServices>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QUrl>
#include <QVBoxLayout>

#include "common/files.h"
#include "common/json_file.h"
#include "model/config.h"
#include "export/export.h"
#include "export/gguf_mix.h"
#include "job.h"
#include "look.h"
#include "store/runs.h"

namespace hone::ui {

ExportPage::ExportPage(QWidget* parent) : QWidget(parent), job_(new Job("export", this)) {
  auto* lay = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  run_ = new QComboBox;
  run_->setToolTip("A completed run of this workspace");
  format_ = new QComboBox;
  format_->addItem("PEFT adapter (adapter_config.json + adapter_model.safetensors)", "peft");
  format_->addItem("Merged model, Hugging Face layout (config, safetensors, tokenizer)", "merged");
  format_->addItem("GGUF for llama.cpp (merged model, one file)", "gguf");
  format_->addItem("GGUF LoRA adapter for llama.cpp, with its base as GGUF and a Modelfile", "gguf-lora");
  format_->addItem("Ollama (GGUF + Modelfile with the chat template and stop tokens)", "ollama");
  dtype_ = new QComboBox;
  base_ = new QCheckBox("Write the base model as GGUF too (the weights the adapter was trained on)");
  base_->setChecked(true);
  calibrate_ = new QCheckBox("Calibrate the quantization on the run's own training data");
  // Rich text, so that Qt wraps the tooltip instead of drawing one window-wide line.
  calibrate_->setToolTip("<p>Weights each block's rounding by how much the fine-tuned model uses each input column "
                         "(mean squared activation over up to 64 rows of the run's data), like llama.cpp's imatrix.</p>");
  auto* orow = new QHBoxLayout;
  out_ = new QLineEdit;
  out_->setPlaceholderText("A new or empty folder");
  auto* browse = new QPushButton("Browse…");
  orow->addWidget(out_, 1);
  orow->addWidget(browse);
  form->addRow("Run", run_);
  form->addRow("Format", format_);
  form->addRow("Data type", dtype_);
  form->addRow("", base_);
  form->addRow("", calibrate_);
  form->addRow("Destination", orow);
  estimate_ = new QLabel;
  form->addRow("Size", estimate_);
  lay->addLayout(form);
  auto* brow = new QHBoxLayout;
  export_ = new QPushButton("Export and check");
  open_ = new QPushButton("Open folder");
  open_->setEnabled(false);
  brow->addWidget(export_);
  brow->addWidget(open_);
  brow->addStretch();
  lay->addLayout(brow);
  result_ = new QLabel("Every export is reloaded and compared with the run before it is called done.");
  result_->setWordWrap(true);
  result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  lay->addWidget(result_);
  lay->addStretch();

  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Export into", out_->text());
    if (!d.isEmpty()) out_->setText(d);
  });
  connect(run_, &QComboBox::currentIndexChanged, this, &ExportPage::updateEstimate);
  connect(format_, &QComboBox::currentIndexChanged, this, &ExportPage::updateEstimate);
  connect(dtype_, &QComboBox::currentIndexChanged, this, &ExportPage::updateEstimate);
  connect(dtype_, &QComboBox::currentIndexChanged, this, [this] {
    const QString d = dtype_->currentData().toString();
    calibrate_->setVisible(d.startsWith("q") && d != "q8_0");  // q8_0 keeps llama.cpp's plain rule
  });
  connect(format_, &QComboBox::currentIndexChanged, this, [this] { fillDtypes(); });
  // A verdict on another run or format would mislead: it clears once the choice changes.
  for (QComboBox* c : {run_, format_, dtype_})
    connect(c, &QComboBox::currentIndexChanged, this, [this] {
      if (!job_->running()) result_->clear();
    });
  connect(export_, &QPushButton::clicked, this, [this] { startExport(); });
  connect(open_, &QPushButton::clicked, this, [this] { QDesktopServices::openUrl(QUrl::fromLocalFile(out_->text())); });
  connect(job_, &Job::progress, this, [this](qint64, qint64, const QString& stage) { result_->setText(stage + "…"); });
  connect(job_, &Job::failed, this, [this](const QString& e) {
    passed_ = false;
    result_->setText("<span style='color:#c0392b'>Export failed: " + e.toHtmlEscaped() + "</span>");
  });
  connect(job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    passed_ = m.value("passed").toBool();
    open_->setEnabled(true);
    QString html = QString("Wrote %1 (%2, %3 MB) to %4.<br>").arg(m.value("format").toString(), m.value("dtype").toString())
                       .arg(m.value("bytes").toLongLong() / 1e6, 0, 'f', 1).arg(out_->text().toHtmlEscaped());
    for (const auto& n : m.value("notes").toStringList()) html += "Note: " + n.toHtmlEscaped() + "<br>";
    html += QString("<b style='color:%1'>Export check %2</b>").arg(passed_ ? "#2e8b57" : "#c0392b", m.value("summary").toString().toHtmlEscaped());
    result_->setText(html);
  });
  connect(job_, &Job::stopped, this, [this] { export_->setEnabled(true); });
  fillDtypes();
}

void ExportPage::fillDtypes() {
  const QString f = format_->currentData().toString();
  dtype_->blockSignals(true);
  dtype_->clear();
  if (f == "merged") dtype_->addItem("As the base is stored", "");
  guarded(this, "Export", [&] {
    for (const auto& d : export_dtypes(ss(f))) {
      const QString label = d == "q8_0"     ? "Q8_0 (8-bit blocks)"
                            : d == "q6_k"   ? "Q6_K (6-bit K-quant)"
                            : d == "q5_k_m" ? "Q5_K_M (llama.cpp's 5-bit mixture)"
                            : d == "q4_k_m" ? "Q4_K_M (llama.cpp's 4-bit mixture, Ollama's default)"
                                            : qs(d).toUpper();
      dtype_->addItem(label, qs(d));
    }
  });
  dtype_->setEnabled(f != "peft");
  dtype_->blockSignals(false);
  base_->setVisible(f == "gguf-lora");
  const QString d = dtype_->currentData().toString();
  calibrate_->setVisible(d.startsWith("q") && d != "q8_0");
  updateEstimate();
}

void ExportPage::setWorkspace(const QString& dir) {
  workspace_ = dir;
  refresh();
}

void ExportPage::refresh() {
  if (workspace_.isEmpty() || job_->running()) return;
  const QString keep = run_->currentData().toString();
  run_->blockSignals(true);
  run_->clear();
  guarded(this, "Export", [&] {
    Workspace ws(ss(workspace_));
    for (const auto& r : list_runs(ws))
      if (r.status == "completed" || r.status == "stopped_early")
        run_->addItem(QString("#%1 %2 (%3 %4)").arg(r.id).arg(qs(r.name), qs(r.method), qs(r.recipe)), qs(r.run_dir));
  });
  const int i = run_->findData(keep);
  run_->setCurrentIndex(i >= 0 ? i : run_->count() - 1);  // the newest run by default
  run_->blockSignals(false);
  updateEstimate();
}

bool ExportPage::selectRun(const QString& run_dir) {
  const int i = run_->findData(run_dir);
  if (i >= 0) run_->setCurrentIndex(i);
  return i >= 0;
}

void ExportPage::setFormat(const QString& format, const QString& dtype) {
  format_->setCurrentIndex(std::max(0, format_->findData(format)));
  fillDtypes();
  dtype_->setCurrentIndex(std::max(0, dtype_->findData(dtype)));
}

void ExportPage::setDestination(const QString& dir) { out_->setText(dir); }
QString ExportPage::resultText() const { return result_->text(); }

void ExportPage::updateEstimate() {
  const QString run = run_->currentData().toString();
  if (run.isEmpty()) {
    estimate_->setText("No completed run in this workspace yet.");
    return;
  }
  // From the files on disk: the adapter's size, or the base's weights re-cast to the chosen dtype.
  auto bytes_of = [](const QString& dir) {
    qint64 n = 0;
    for (const auto& f : QDir(dir).entryInfoList({"*.safetensors"}, QDir::Files)) n += f.size();
    return n;
  };
  QString text;
  const QString fmt = format_->currentData().toString();
  if (fmt == "peft") {
    text = QString("about %1 MB (the adapter)").arg(bytes_of(run + "/adapter") / 1e6, 0, 'f', 1);
  } else if (fmt != "merged") {
    guarded(this, "Export", [&] {
      // GGUF: every tensor at the type the scheme gives it (core/export, from the config alone); a
      // LoRA GGUF adds its adapter in f32 and, without the base, is only that.
      QString model = run + "/model";
      if (!QDir(model).exists()) model = qs(read_json_file(ss(run + "/config.json")).value("base_model", ""));
      const QString dt = dtype_->currentData().toString();
      const double adapter = bytes_of(run + "/adapter");
      double total = fmt == "gguf-lora" ? adapter : 0;
      if (fmt != "gguf-lora" || base_->isChecked())
        total += static_cast<double>(gguf_model_bytes(load_model_config(ss(model)), ss(dt)));
      text = QString("about %1 MB").arg(total / 1e6, 0, 'f', 1);
    });
  } else {
    guarded(this, "Export", [&] {
      // A full fine-tune's own model/, else the run's base: as stored, or parameters x the dtype's bytes.
      QString model = run + "/model";
      if (!QDir(model).exists()) model = qs(read_json_file(ss(run + "/config.json")).value("base_model", ""));
      const QString dt = dtype_->currentData().toString();
      if (dt.isEmpty()) {
        text = QString("about %1 MB (the base's storage dtype)").arg(bytes_of(model) / 1e6, 0, 'f', 1);
      } else {
        const int64_t params = load_model_config(ss(model)).parameter_count();
        text = QString("about %1 MB (%2 parameters x %3 bytes)").arg(params * (dt == "f32" ? 4.0 : 2.0) / 1e6, 0, 'f', 1)
                   .arg(params).arg(dt == "f32" ? 4 : 2);
      }
    });
  }
  estimate_->setText(text);
}

bool ExportPage::startExport() {
  if (job_->running()) return false;
  ExportSpec spec;
  spec.run_dir = ss(run_->currentData().toString());
  spec.format = ss(format_->currentData().toString());
  spec.dtype = spec.format == "peft" ? "" : ss(dtype_->currentData().toString());
  spec.include_base = base_->isChecked();
  spec.calibrate = !calibrate_->isHidden() && calibrate_->isChecked();
  spec.out_dir = ss(out_->text().trimmed());
  if (spec.run_dir.empty() || spec.out_dir.empty()) {
    result_->setText("Choose a run and a destination folder.");
    return false;
  }
  passed_ = false;
  open_->setEnabled(false);
  export_->setEnabled(false);
  return job_->start([spec](Job::Context& ctx) -> QVariant {
    ExportResult r = export_run(spec, [&ctx](const std::string& stage) { ctx.progress(0, 0, qs(stage)); });
    QStringList notes;
    for (const auto& n : r.notes) notes << qs(n);
    return QVariantMap{{"passed", r.check.passed}, {"summary", qs(r.check.summary)}, {"format", qs(r.format)},
                       {"dtype", qs(r.dtype)}, {"bytes", qint64(r.bytes)}, {"notes", notes}};
  });
}

}  // namespace hone::ui
