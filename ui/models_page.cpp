// Models page (models_page.h): the hub cache listed, the hub searched, downloads with progress.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "models_page.h"

#include <QCheckBox>
#include <QDesktopServices>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QUrl>
#include <QVBoxLayout>
#include <atomic>

#include "common/hub_cache.h"
#include "hub/hub_download.h"
#include "hub/hub_models.h"
#include "job.h"
#include "look.h"

namespace hone::ui {
namespace {

enum CachedCol { kName = 0, kKind, kArch, kParams, kSize, kRevision, kStatus, kCachedCols };  // status last: it may be long
enum ResultCol { rModel = 0, rArch, rDownloads, rUpdated, rNote, kResultCols };

QString bytesText(qint64 b) {
  if (b >= (qint64(1) << 30)) return QString::number(double(b) / (1 << 30), 'f', 2) + " GiB";
  if (b >= (1 << 20)) return QString::number(double(b) / (1 << 20), 'f', 1) + " MiB";
  return QString::number(double(b) / 1024, 'f', 0) + " KiB";
}

QString paramsText(qint64 p) {
  if (p <= 0) return "-";
  if (p >= 1000000000) return QString::number(p / 1e9, 'f', 2) + "B";
  if (p >= 10000000) return QString::number(p / 1e6, 'f', 0) + "M";
  return QString::number(p / 1e6, 'f', 2) + "M";
}

QTableWidget* makeTable(const QStringList& headers) {
  auto* t = new QTableWidget(0, headers.size());
  t->setHorizontalHeaderLabels(headers);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->setSelectionMode(QAbstractItemView::SingleSelection);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->verticalHeader()->setVisible(false);
  t->horizontalHeader()->setStretchLastSection(true);
  return t;
}

QTableWidgetItem* item(const QString& s, const QString& tip = QString()) {
  auto* i = new QTableWidgetItem(s);
  if (!tip.isEmpty()) i->setToolTip(tip);
  return i;
}

}  // namespace

ModelsPage::ModelsPage(QWidget* parent)
    : QWidget(parent),
      list_job_(new Job("model list", this)),
      search_job_(new Job("hub search", this)),
      download_job_(new Job("hub download (its partial files are kept and resume next time)", this)) {
  auto* lay = new QVBoxLayout(this);
  auto* top = new QHBoxLayout;
  cache_label_ = new QLabel;
  cache_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  token_label_ = new QLabel;
  auto* token_btn = new QPushButton("Token…");
  token_btn->setToolTip("A Hugging Face access token for gated and private models, kept where other hub tools read it");
  auto* refresh_btn = new QPushButton("Refresh");
  top->addWidget(cache_label_, 1);
  top->addWidget(token_label_);
  top->addWidget(token_btn);
  top->addWidget(refresh_btn);
  lay->addLayout(top);

  auto* split = new QSplitter(Qt::Vertical);
  auto* cached_box = new QWidget;
  auto* cl = new QVBoxLayout(cached_box);
  cl->setContentsMargins(0, 0, 0, 0);
  auto* cached_lay = groupBox(cl, "In the Hugging Face cache (shared with transformers, llama.cpp and other tools)");
  cached_ = makeTable({"Name", "Kind", "Architecture", "Parameters", "Size", "Revision", "Hone can load it"});
  cached_lay->addWidget(cached_, 1);
  auto* crow = new QHBoxLayout;
  use_ = new QPushButton("Use for Training");
  use_->setToolTip("Sets the Train page's base model to this hub name (resolved from the cache, offline)");
  open_ = new QPushButton("Open Folder");
  remove_ = new QPushButton("Remove…");
  crow->addWidget(use_);
  crow->addWidget(open_);
  crow->addStretch(1);
  crow->addWidget(remove_);
  cached_lay->addLayout(crow);
  split->addWidget(cached_box);

  auto* hub_box = new QWidget;
  auto* hl = new QVBoxLayout(hub_box);
  hl->setContentsMargins(0, 0, 0, 0);
  auto* hub_lay = groupBox(hl, "From the hub");
  auto* srow = new QHBoxLayout;
  query_ = new QLineEdit;
  query_->setPlaceholderText("search text-generation models (qwen2.5 0.5b, smollm2, llama 3.2 1b…)");
  all_archs_ = new QCheckBox("All architectures");
  all_archs_->setToolTip("Also list models whose architecture Hone does not load");
  search_btn_ = new QPushButton("Search");
  srow->addWidget(query_, 1);
  srow->addWidget(all_archs_);
  srow->addWidget(search_btn_);
  hub_lay->addLayout(srow);
  results_ = makeTable({"Model", "Architecture", "Downloads", "Updated", ""});
  hub_lay->addWidget(results_, 1);
  auto* drow = new QHBoxLayout;
  name_ = new QLineEdit;
  name_->setPlaceholderText("ORG/NAME or ORG/NAME@REVISION");
  dataset_ = new QCheckBox("Dataset repo");
  download_btn_ = new QPushButton("Download");
  download_btn_->setToolTip("Config, safetensors, tokenizer and generation files, README and licence (no pickled weights); "
                            "each file is checked against its hash before it enters the cache");
  cancel_ = new QPushButton("Cancel");
  cancel_->setEnabled(false);
  drow->addWidget(name_, 1);
  drow->addWidget(dataset_);
  drow->addWidget(download_btn_);
  drow->addWidget(cancel_);
  hub_lay->addLayout(drow);
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(false);
  progress_->setVisible(false);
  hub_lay->addWidget(progress_);
  status_ = new QLabel;
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  hub_lay->addWidget(status_);
  split->addWidget(hub_box);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  lay->addWidget(split, 1);

  connect(refresh_btn, &QPushButton::clicked, this, &ModelsPage::refresh);
  connect(token_btn, &QPushButton::clicked, this, &ModelsPage::setToken);
  connect(search_btn_, &QPushButton::clicked, this, [this] { search(query_->text()); });
  connect(query_, &QLineEdit::returnPressed, this, [this] { search(query_->text()); });
  connect(results_, &QTableWidget::itemSelectionChanged, this, [this] {
    const auto rows = results_->selectionModel()->selectedRows();
    if (!rows.isEmpty()) {
      name_->setText(results_->item(rows.first().row(), rModel)->text());
      dataset_->setChecked(false);
    }
  });
  connect(results_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) {
    download(results_->item(row, rModel)->text(), false);
  });
  connect(download_btn_, &QPushButton::clicked, this, [this] { download(name_->text(), dataset_->isChecked()); });
  connect(name_, &QLineEdit::returnPressed, this, [this] { download(name_->text(), dataset_->isChecked()); });
  connect(cancel_, &QPushButton::clicked, this, &ModelsPage::cancelDownload);
  connect(cached_, &QTableWidget::itemSelectionChanged, this, [this] {
    updateButtons();
    // The name goes to the download field too: Download then resumes or updates it.
    const auto rows = cached_->selectionModel()->selectedRows();
    if (!rows.isEmpty() && !download_job_->running()) {
      const QString id = cached_->item(rows.first().row(), kName)->text();
      const bool dataset = cached_->item(rows.first().row(), kName)->data(Qt::UserRole + 1).toString() == "dataset";
      name_->setText(dataset ? id.mid(QString("datasets/").size()) : id);
      dataset_->setChecked(dataset);
    }
  });
  connect(cached_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) { useForTraining(cached_->item(row, kName)->text()); });
  connect(use_, &QPushButton::clicked, this, [this] { useForTraining(selectedCached()); });
  connect(open_, &QPushButton::clicked, this, [this] {
    const auto rows = cached_->selectionModel()->selectedRows();
    if (!rows.isEmpty())
      QDesktopServices::openUrl(QUrl::fromLocalFile(cached_->item(rows.first().row(), kName)->data(Qt::UserRole).toString()));
  });
  connect(remove_, &QPushButton::clicked, this, &ModelsPage::removeSelected);

  connect(list_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantList rows = v.toList();
    const QString keep = selectedCached();
    cached_->setRowCount(0);
    for (const auto& rv : rows) {
      const QVariantMap m = rv.toMap();
      const int r = cached_->rowCount();
      cached_->insertRow(r);
      const bool model = m["type"] == "model";
      auto* name = item(m["id"].toString(), m["snapshot"].toString());
      name->setData(Qt::UserRole, m["snapshot"]);
      name->setData(Qt::UserRole + 1, m["type"]);
      cached_->setItem(r, kName, name);
      cached_->setItem(r, kKind, item(model ? "model" : "dataset"));
      cached_->setItem(r, kArch, item(m["architecture"].toString()));
      cached_->setItem(r, kParams, item(model ? paramsText(m["parameters"].toLongLong()) : QString()));
      QString size = bytesText(m["bytes"].toLongLong());
      if (m["incomplete"].toLongLong() > 0) size += " (+" + bytesText(m["incomplete"].toLongLong()) + " partial)";
      cached_->setItem(r, kSize, item(size));
      auto* st = item(!model ? "" : m["loadable"].toBool() ? "yes" : "no: " + m["why_not"].toString(), m["why_not"].toString());
      if (model && !m["loadable"].toBool()) st->setForeground(QColor("#c0392b"));
      cached_->setItem(r, kStatus, st);
      cached_->setItem(r, kRevision, item(m["refs"].toString().isEmpty() ? m["commit"].toString().left(12)
                                                                         : m["refs"].toString() + " (" + m["commit"].toString().left(12) + ")"));
      if (m["id"].toString() == keep) cached_->selectRow(r);
    }
    cached_->resizeColumnsToContents();
    cached_->horizontalHeader()->setSectionResizeMode(kStatus, QHeaderView::Stretch);  // the reason may be long
    if (rows.isEmpty())
      status_->setText(status_->text().isEmpty() ? "The cache is empty: search the hub below, or type a name (ORG/NAME) and Download."
                                                 : status_->text());
    updateButtons();
  });
  connect(list_job_, &Job::failed, this, [this](const QString& e) { status_->setText("Cannot read the cache: " + e); });
  connect(list_job_, &Job::stopped, this, [this] {
    if (refresh_again_) {
      refresh_again_ = false;
      refresh();
    }
  });
  connect(search_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantList hits = v.toList();
    results_->setRowCount(0);
    for (const auto& hv : hits) {
      const QVariantMap h = hv.toMap();
      const int r = results_->rowCount();
      results_->insertRow(r);
      results_->setItem(r, rModel, item(h["id"].toString()));
      results_->setItem(r, rArch, item(h["model_type"].toString()));
      results_->setItem(r, rDownloads, item(QLocale().toString(h["downloads"].toLongLong())));
      results_->setItem(r, rUpdated, item(h["updated"].toString()));
      QString note = h["gated"].toBool() ? "gated: needs a token and accepted conditions" : "";
      if (!h["supported"].toBool()) note += QString(note.isEmpty() ? "" : "; ") + "not an architecture Hone loads";
      results_->setItem(r, rNote, item(note));
    }
    results_->resizeColumnsToContents();
    results_->horizontalHeader()->setSectionResizeMode(rNote, QHeaderView::Stretch);
    status_->setText(hits.isEmpty() ? "No text-generation models match." : QString("%1 models; select one and Download.").arg(hits.size()));
  });
  connect(search_job_, &Job::failed, this, [this](const QString& e) { status_->setText("Search failed: " + e); });
  connect(search_job_, &Job::stopped, this, [this] { search_btn_->setEnabled(true); });
  connect(download_job_, &Job::progress, this, [this](qint64 done, qint64 total, const QString& text) {
    progress_->setValue(total > 0 ? int(1000 * done / total) : 0);
    status_->setText(text);
  });
  connect(download_job_, &Job::finished, this, [this](const QVariant& v) {
    const QVariantMap m = v.toMap();
    if (m["cancelled"].toBool()) {
      status_->setText("Download cancelled; the partial files stay in the cache and the next Download resumes them.");
    } else {
      status_->setText(QString("Downloaded %1: %2 files (%3 already cached, %4 resumed), %5 fetched in %6 s.%7")
                           .arg(m["ref"].toString())
                           .arg(m["files"].toInt())
                           .arg(m["reused"].toInt())
                           .arg(m["resumed"].toInt())
                           .arg(bytesText(m["fetched"].toLongLong()))
                           .arg(m["seconds"].toDouble(), 0, 'f', 1)
                           .arg(m["dataset"].toBool() ? " Import it on the Datasets page (Import…, then its name " + m["ref"].toString() +
                                                            " as the source), or hone-cli dataset import " + m["ref"].toString() + "."
                                                      : " Select it above and Use for Training."));
      progress_->setValue(1000);
    }
    refresh();
  });
  connect(download_job_, &Job::failed, this, [this](const QString& e) {
    status_->setText("<span style='color:#c0392b'>" + e.toHtmlEscaped().replace("\n", "<br>") + "</span>");
    refresh();  // partial files show in the size column
  });
  connect(download_job_, &Job::stopped, this, [this] {
    download_btn_->setEnabled(true);
    cancel_->setEnabled(false);
    progress_->setVisible(false);
  });
  updateToken();
  updateButtons();
}

QString ModelsPage::statusText() const { return status_->text(); }

void ModelsPage::updateToken() {
  const auto s = hub::HubSettings::from_env();
  cache_label_->setText("Cache: " + qs(s.cache) + (s.offline ? "  (HF_HUB_OFFLINE: no downloads)" : ""));
  cache_label_->setToolTip("HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; endpoint " + qs(s.endpoint));
  token_label_->setText(s.token.empty() ? "No token (gated models need one)"
                                        : "Token from " + (s.token_source == "HF_TOKEN" ? QString("HF_TOKEN") : QString("the token file")));
  token_label_->setToolTip(s.token_source.empty() ? qs(hub::token_file_path()) : qs(s.token_source));
}

void ModelsPage::setToken() {
  bool ok = false;
  const bool saved = QFileInfo::exists(qs(hub::token_file_path()));
  const QString t = QInputDialog::getText(this, "Hugging Face token",
                                          QString("Access token (a read token from huggingface.co/settings/tokens).\n") +
                                              (saved ? "A token is saved; a new one replaces it, an empty one removes it.\n" : "") +
                                              "Saved to " + qs(hub::token_file_path()) + ", where other hub tools read it too.",
                                          QLineEdit::Password, QString(), &ok);
  if (!ok) return;
  if (t.trimmed().isEmpty()) {
    // An empty answer removes the saved token, which other hub tools use too: only when confirmed.
    if (!QFileInfo::exists(qs(hub::token_file_path()))) return;
    if (QMessageBox::question(this, "Remove the token",
                              "Remove the saved token (" + qs(hub::token_file_path()) +
                                  ")? Other Hugging Face tools on this computer use it too.") != QMessageBox::Yes)
      return;
  }
  guarded(this, "Save the token", [&] { hub::save_token(t.toStdString()); });
  updateToken();
}

void ModelsPage::refresh() {
  updateToken();
  if (list_job_->running()) {
    refresh_again_ = true;
    return;
  }
  const std::string cache = hub_cache_dir();
  list_job_->start([cache](Job::Context&) -> QVariant {
    QVariantList out;
    for (const auto& e : hub::list_cached(cache)) {
      QString refs;
      for (const auto& r : e.refs) refs += (refs.isEmpty() ? "" : ",") + qs(r);
      out << QVariantMap{{"type", qs(e.ref.type)},
                         {"id", qs(e.ref.type == "dataset" ? "datasets/" + e.ref.id : e.ref.id)},
                         {"snapshot", qs(e.snapshot)},
                         {"commit", qs(e.commit)},
                         {"refs", refs},
                         {"architecture", qs(e.architecture)},
                         {"parameters", qint64(e.parameters)},
                         {"bytes", qint64(e.bytes)},
                         {"incomplete", qint64(e.incomplete_bytes)},
                         {"loadable", e.loadable},
                         {"why_not", qs(e.why_not)}};
    }
    return out;
  });
}

void ModelsPage::search(const QString& query) {
  if (query.trimmed().isEmpty() || search_job_->running()) return;
  query_->setText(query);
  search_btn_->setEnabled(false);
  status_->setText("Searching the hub for \"" + query.trimmed() + "\"…");
  const auto settings = hub::HubSettings::from_env();
  const std::string q = query.trimmed().toStdString();
  const bool all = all_archs_->isChecked();
  search_job_->start([settings, q, all](Job::Context&) -> QVariant {
    hub::HubClient c(settings);
    QVariantList out;
    for (const auto& h : hub::search_models(c, q, 30, all))
      out << QVariantMap{{"id", qs(h.id)},           {"model_type", qs(h.model_type)}, {"downloads", qint64(h.downloads)},
                         {"updated", qs(h.updated)}, {"gated", h.gated},               {"supported", h.supported}};
    return out;
  });
}

bool ModelsPage::download(const QString& ref_text, bool dataset) {
  if (download_job_->running()) return false;
  HubRef ref;
  if (!parse_hub_ref(ref_text.trimmed().toStdString(), &ref)) {
    status_->setText("<span style='color:#c0392b'>\"" + ref_text.trimmed().toHtmlEscaped() +
                     "\" is not a hub name: ORG/NAME or ORG/NAME@REVISION.</span>");
    return false;
  }
  if (dataset) ref.type = "dataset";
  name_->setText(ref_text.trimmed());
  dataset_->setChecked(ref.type == "dataset");
  const auto settings = hub::HubSettings::from_env();
  download_btn_->setEnabled(false);
  cancel_->setEnabled(true);
  progress_->setValue(0);
  progress_->setVisible(true);
  status_->setText("Asking the hub for " + qs(ref.text()) + "…");
  return download_job_->start([settings, ref](Job::Context& ctx) -> QVariant {
    hub::HubClient c(settings);
    hub::DownloadRequest req;
    req.ref = ref;
    hub::DownloadPlan plan = hub::plan_download(c, req);
    std::atomic<bool> cancel{false};
    const QString total_text = bytesText(plan.bytes_total);
    auto progress = [&](const hub::DownloadProgress& p) {
      cancel = ctx.cancelled();  // the page's Cancel, seen within a progress tick (0.2 s)
      QString text = QString("%1: %2 of %3 · files %4/%5")
                         .arg(qs(ref.text()))
                         .arg(bytesText(p.bytes_done))
                         .arg(total_text)
                         .arg(p.files_done)
                         .arg(p.files_total);
      if (p.rate > 0) text += " · " + bytesText(qint64(p.rate)) + "/s";
      if (p.eta_s >= 0) text += QString(" · %1 s left").arg(qint64(p.eta_s));
      ctx.progress(p.bytes_done, p.bytes_total, text);
    };
    hub::DownloadResult r = hub::run_download(c, req, plan, progress, &cancel);
    return QVariantMap{{"ref", qs(ref.text())},         {"cancelled", r.cancelled}, {"files", r.files},
                       {"reused", r.reused},            {"resumed", r.resumed},     {"fetched", qint64(r.bytes_fetched)},
                       {"seconds", r.seconds},          {"dataset", ref.type == "dataset"}};
  });
}

void ModelsPage::cancelDownload() {
  if (!download_job_->running()) return;
  download_job_->cancel();
  status_->setText("Cancelling…");
}

QString ModelsPage::selectedCached() const {
  const auto rows = cached_->selectionModel()->selectedRows();
  return rows.isEmpty() ? QString() : cached_->item(rows.first().row(), kName)->text();
}

void ModelsPage::updateButtons() {
  const auto rows = cached_->selectionModel()->selectedRows();
  const bool any = !rows.isEmpty();
  const bool model = any && cached_->item(rows.first().row(), kName)->data(Qt::UserRole + 1).toString() == "model";
  const bool loadable = model && cached_->item(rows.first().row(), kStatus)->text() == "yes";
  use_->setEnabled(loadable);
  use_->setToolTip(loadable ? "Sets the Train page's base model to this hub name"
                   : model  ? "Hone cannot load this model: " + cached_->item(rows.first().row(), kStatus)->toolTip()
                            : "Select a cached model");
  open_->setEnabled(any);
  remove_->setEnabled(any && !download_job_->running());
}

bool ModelsPage::useForTraining(const QString& id) {
  for (int r = 0; r < cached_->rowCount(); ++r)
    if (cached_->item(r, kName)->text() == id && cached_->item(r, kStatus)->text() == "yes") {
      Q_EMIT useForTrainingRequested(id);
      return true;
    }
  return false;
}

void ModelsPage::removeSelected() {
  const QString id = selectedCached();
  if (id.isEmpty()) return;
  if (QMessageBox::question(this, "Remove from the cache",
                            "Delete " + id + " from the Hugging Face cache? Other programs that use it will have to download it again.") !=
      QMessageBox::Yes)
    return;
  HubRef ref;
  if (!parse_hub_ref(id.toStdString(), &ref)) return;
  guarded(this, "Remove " + id, [&] {
    const qint64 freed = hub::remove_cached(ref, hub_cache_dir());
    status_->setText("Removed " + id + " (" + bytesText(freed) + " freed).");
  });
  refresh();
}

}  // namespace hone::ui
