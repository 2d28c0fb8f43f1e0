// hone-cli dataset: import, list, show, validate, stats and export workspace datasets.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "store/datasets.h"
#include "tokenizer/tokenizer.h"

namespace hone::cli {

const char* const kDatasetUsage = R"(usage: hone-cli dataset <action> [options]   (every action takes --workspace DIR)

  import FILE|FOLDER|ORG/NAME --name N [--format F] [--kind K] [--map SRC=DST,...] [--skip-invalid] [--json]
      ORG/NAME: a dataset repo in the Hugging Face cache (hone-cli hub download --dataset); --name
      defaults to NAME.
      FILE: .jsonl .json .parquet .csv .tsv .txt .md; a FOLDER's files in name order (Parquet shards
      too; beside data files, README.md and other .md files are left out).
      F: auto alpaca sharegpt messages prompt-completion preference text candidates choice prompts;
      K: chat preference text candidates choice prompts (choice: multiple-choice questions, an eval
      suite; prompts: questions to sample candidates for; a text file as prompts: one per line).
      Any problem imports nothing unless --skip-invalid, which imports the valid rows.
  validate FILE|FOLDER [--format F] [--map ...] [--json]   check without importing
  list [--json]
  show ID|NAME [--rows A:B] [--json]                       rows A..B-1 (default 0:10)
  stats ID|NAME [--tokenizer MODEL_DIR] [--json]           counts, token lengths, longest rows
  export ID|NAME --out FILE [--split train|validation] [--seed S] [--val-fraction F] [--compression C]
      JSONL in the form TRL and Axolotl read: messages / prompt,chosen,rejected / text; FILE.parquet
      writes the same rows as Parquet (C: snappy (default), zstd, gzip, none).
)";
namespace {


ReadOptions read_options(const Args& a) {
  ReadOptions o;
  if (a.has("format") && !example_format_from_name(a.get("format"), &o.format))
    throw Error("unknown --format \"" + a.get("format") + "\" (auto, alpaca, sharegpt, messages, prompt-completion, preference, text, candidates, choice, prompts)");
  if (a.has("map")) o.field_map = parse_field_map(a.get("map"));
  return o;
}

nlohmann::json problems_json(const std::vector<Problem>& ps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ps)
    out.push_back({{"where", p.where}, {"field", p.field}, {"message", p.message}, {"severity", p.error ? "error" : "warning"}});
  return out;
}

// Errors first (up to 50), then a few warnings: a big file can hold thousands of duplicates.
void print_problems(const std::vector<Problem>& ps) {
  for (bool errors : {true, false}) {
    const size_t max = errors ? 50 : 5;
    size_t n = 0;
    for (const auto& p : ps)
      if (p.error == errors && n++ < max) std::cerr << (p.error ? "error: " : "warning: ") << p.text() << "\n";
    if (n > max) std::cerr << "... and " << n - max << " more " << (errors ? "errors" : "warnings") << "\n";
  }
}

std::string preview(const std::string& s, size_t n) {
  std::string out;
  for (char c : s) out += c == '\n' ? ' ' : c;
  if (out.size() > n) {
    size_t cut = n;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
    out = out.substr(0, cut) + "...";
  }
  return out;
}

}  // namespace

int cmd_dataset(const Args& a) {
  const std::string& action = a.action();
  const bool json = a.flag("json");
  auto pos = [&](const char* what) {
    if (a.positional().empty()) throw Error("dataset " + action + ": missing " + what);
    return a.positional()[0];
  };

  if (action == "validate") {
    ReadResult r = read_dataset(resolve_dataset_path(pos("FILE")), read_options(a));
    if (json) {
      std::cout << nlohmann::json({{"rows", r.rows_read}, {"valid", r.records.size()}, {"errors", r.errors},
                                   {"duplicates", r.duplicates}, {"kind", dataset_kind_name(r.kind)},
                                   {"format", example_format_name(r.format)}, {"problems", problems_json(r.problems)}})
                       .dump()
                << "\n";
    } else {
      print_problems(r.problems);
      std::cout << r.rows_read << " rows, " << r.records.size() << " valid, " << r.errors << " errors, " << r.duplicates
                << " duplicates; format " << example_format_name(r.format) << " (" << dataset_kind_name(r.kind) << ")\n";
    }
    return r.errors ? 1 : 0;
  }

  Workspace ws = open_workspace(a.get("workspace", default_workspace()));
  if (action == "import") {
    ImportOptions o;
    o.read = read_options(a);
    o.skip_invalid = a.flag("skip-invalid");
    if (a.has("kind")) {
      DatasetKind k;
      if (!dataset_kind_from_name(a.get("kind"), &k)) throw Error("unknown --kind \"" + a.get("kind") + "\" (chat, preference, text, candidates, choice, prompts)");
      o.kind = k;
    }
    // A hub dataset's name is the default name (ORG/NAME -> NAME); a file needs --name.
    HubRef hub;
    const std::string src = resolve_dataset_path(pos("FILE"));
    const bool from_hub = src != pos("FILE") && parse_hub_ref(pos("FILE"), &hub);
    const std::string name = a.has("name") || !from_hub ? a.require("name") : hub.id.substr(hub.id.find('/') + 1);
    ImportReport r = import_dataset(ws, src, name, o);
    if (json) {
      std::cout << nlohmann::json({{"dataset_id", r.dataset_id}, {"imported", r.imported}, {"rows", r.rows_read},
                                   {"errors", r.errors}, {"duplicates", r.duplicates}, {"kind", r.kind},
                                   {"format", r.format}, {"problems", problems_json(r.problems)}})
                       .dump()
                << "\n";
    } else {
      print_problems(r.problems);
      if (r.dataset_id)
        std::cout << "imported " << r.imported << " of " << r.rows_read << " rows as dataset " << r.dataset_id << " \""
                  << a.get("name") << "\" (" << r.kind << ", " << r.format << ")"
                  << (r.errors ? "; skipped " + std::to_string(r.errors) + " invalid" : "")
                  << (r.duplicates ? "; " + std::to_string(r.duplicates) + " duplicates" : "") << "\n";
      else
        std::cerr << "nothing imported: " << r.errors << " problem(s)" << (r.errors ? " (--skip-invalid imports the valid rows)" : "") << "\n";
    }
    return r.dataset_id ? 0 : 1;
  }
  if (action == "list") {
    auto ds = list_datasets(ws);
    if (json) {
      nlohmann::json out = nlohmann::json::array();
      for (auto& d : ds)
        out.push_back({{"id", d.id}, {"name", d.name}, {"kind", d.kind}, {"format", d.format}, {"rows", d.rows},
                       {"source", d.source}, {"created_at", d.created_at}});
      std::cout << out.dump() << "\n";
    } else {
      std::printf("%-5s %-24s %-11s %-18s %9s  %s\n", "ID", "NAME", "KIND", "FORMAT", "ROWS", "CREATED");
      for (auto& d : ds)
        std::printf("%-5lld %-24s %-11s %-18s %9lld  %s\n", static_cast<long long>(d.id), d.name.c_str(), d.kind.c_str(),
                    d.format.c_str(), static_cast<long long>(d.rows), d.created_at.c_str());
    }
    return 0;
  }
  DatasetInfo d = find_dataset(ws, pos("ID or NAME"));
  if (action == "show") {
    int64_t b = 0, e = 10;
    if (a.has("rows")) {
      const std::string r = a.get("rows");
      size_t c = r.find(':');
      try {
        b = c == 0 ? 0 : std::stoll(r.substr(0, c));
        e = c == std::string::npos ? b + 1 : (c + 1 == r.size() ? d.rows : std::stoll(r.substr(c + 1)));
      } catch (const std::exception&) {
        throw Error("--rows must be A:B (e.g. 0:10)");
      }
    }
    auto rows = read_rows(ws, d.id, b, e);
    if (json) {
      nlohmann::json out = {{"id", d.id}, {"name", d.name}, {"kind", d.kind}, {"format", d.format}, {"rows", d.rows}};
      out["items"] = nlohmann::json::array();
      for (auto& r : rows) {
        nlohmann::json it = {{"row_id", r.id}, {"position", r.position}, {"source", r.source}, {"data", nlohmann::json::parse(r.data)}};
        if (!r.label.empty()) it["label"] = r.label;
        out["items"].push_back(it);
      }
      std::cout << out.dump() << "\n";
    } else {
      std::cout << "dataset " << d.id << " \"" << d.name << "\": " << d.rows << " rows, " << d.kind << " (" << d.format << ")\n";
      for (auto& r : rows)
        std::cout << r.position << "  " << preview(r.data, 110) << (r.label.empty() ? "" : "  [" + r.label + "]") << "\n";
    }
    return 0;
  }
  if (action == "stats") {
    std::unique_ptr<Tokenizer> tok;
    if (a.has("tokenizer")) tok = load_tokenizer(a.get("tokenizer"));
    DatasetStats st = dataset_stats(ws, d.id, tok.get());
    auto pct = [&](double q) {
      return st.token_lengths.empty() ? 0 : st.token_lengths[static_cast<size_t>(q * (st.token_lengths.size() - 1))];
    };
    nlohmann::json out = {{"id", d.id}, {"rows", st.rows}, {"chars", st.chars}, {"labelled", st.labelled}, {"duplicates", st.duplicates}};
    if (!st.token_lengths.empty())
      out["tokens"] = {{"min", st.token_lengths.front()}, {"p50", pct(0.5)}, {"p90", pct(0.9)}, {"p99", pct(0.99)},
                       {"max", st.token_lengths.back()}};
    out["longest"] = nlohmann::json::array();
    for (auto& [p, n] : st.longest) out["longest"].push_back({{"position", p}, {"chars", n}});
    if (json) {
      std::cout << out.dump() << "\n";
    } else {
      std::cout << "dataset " << d.id << " \"" << d.name << "\": " << st.rows << " rows, " << st.chars << " characters";
      if (d.kind == "preference" || d.kind == "candidates") std::cout << ", " << st.labelled << " labelled";
      if (st.duplicates) std::cout << ", " << st.duplicates << " duplicate rows";
      std::cout << "\n";
      if (out.contains("tokens"))
        std::cout << "tokens per row: min " << out["tokens"]["min"] << ", median " << out["tokens"]["p50"] << ", p90 "
                  << out["tokens"]["p90"] << ", p99 " << out["tokens"]["p99"] << ", max " << out["tokens"]["max"] << "\n";
      std::cout << "longest rows (position: characters):";
      for (auto& [p, n] : st.longest) std::cout << " " << p << ": " << n;
      std::cout << "\n";
    }
    return 0;
  }
  if (action == "export") {
    ExportOptions eo;
    eo.split = a.get("split");
    eo.seed = static_cast<uint64_t>(a.integer("seed", 0));
    eo.fraction = a.number("val-fraction", 0.1);
    eo.parquet_codec = a.get("compression", "snappy");
    const std::string out = a.require("out");
    int64_t n = export_dataset(ws, d.id, out, eo);
    if (json) std::cout << nlohmann::json({{"rows", n}, {"out", out}}).dump() << "\n";
    else std::cout << "wrote " << n << " rows to " << out << "\n";
    return 0;
  }
  throw Error("unknown dataset action \"" + action + "\" (import, validate, list, show, stats, export)");
}

}  // namespace hone::cli
