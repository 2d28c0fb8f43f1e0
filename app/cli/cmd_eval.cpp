// hone-cli eval: evaluate runs and models on workspace suites (multiple choice, generated answers,
// held-out loss), pairwise comparisons judged by a model or blind by a person, and the stored
// results side by side (core/runs/evaluate.h does the work).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "runs/evaluate.h"
#include "train/eval_stats.h"

namespace hone::cli {

const char* const kEvalUsage = R"(usage: hone-cli eval <action> [options]   (every action takes --workspace DIR)

  run --suite NAME (--run ID | --model DIR [--adapter DIR]) [--metric M ...] [--mode generate|loss]
      [--format plain|raw|chat] [--max-new-tokens N] [--limit N] [--template NAME] [--json]
        scores one target on one suite and stores the result. The suite's kind decides how:
        choice rows by log-likelihood (acc, acc_norm; --format: the prompt as "Question: ...\nAnswer:",
        the question as the text to continue (raw), or in the model's chat template), chat rows by greedy answers against their last reply
        (--metric exact_match contains rouge_l chrf json_valid regex:PATTERN json_schema:FILE; default
        the first four) or by held-out loss (--mode loss), text rows by held-out loss and perplexity.
  pairwise --suite NAME --a TARGET --b TARGET (--judge TARGET | --human) [--max-new-tokens N]
      [--limit N] [--seed S] [--name LABELSET] [--json]
        both targets answer each prompt of a chat suite; a judge model picks A, B or tie in both
        orders (a win needs both), or --human makes a blind label set (sides shuffled, sources
        hidden) to label on the Label page or with hone-cli label set; eval show then gives the
        win rate. TARGET: run:ID, a run id, or a model folder.
  list [--json]                          every stored evaluation
  show ID [--json]                       metrics with 95% intervals and n, settings, examples
  compare ID ID... [--csv] [--json]      metrics side by side

Scores are stated with 95% confidence intervals (Wilson for proportions, bootstrap for means) and
the number of examples; docs/evaluation.md defines each metric.
)";

namespace {

using json = nlohmann::json;

int64_t parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) throw Error("\"" + s + "\" is not an evaluation id");
  return std::stoll(s);
}

EvalTarget target_of(const Args& a) {
  EvalTarget t;
  if (a.has("run") && a.has("model")) throw Error("eval run: give either --run ID or --model DIR, not both");
  if (a.has("run")) t = parse_eval_target("run:" + a.get("run"));
  else if (a.has("model")) t.model_dir = a.get("model");
  else throw Error("eval run: name a target with --run ID or --model DIR");
  t.adapter_dir = a.get("adapter");
  if (!t.adapter_dir.empty() && t.run_id > 0) throw Error("eval run: --adapter goes with --model (a run brings its own)");
  return t;
}

// "0.930 [0.863, 0.966] n=100"
std::string score_text(const json& m) {
  const Score s = score_from_json(m);
  char buf[128];
  if (s.lo == s.hi && s.lo == 0 && s.value != 0) std::snprintf(buf, sizeof buf, "%.4g n=%lld", s.value, static_cast<long long>(s.n));
  else std::snprintf(buf, sizeof buf, "%.3f [%.3f, %.3f] n=%lld", s.value, s.lo, s.hi, static_cast<long long>(s.n));
  return buf;
}

void print_progress(int64_t done, int64_t total) {
  std::fprintf(stderr, "\r  %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
  if (done == total) std::fprintf(stderr, "\n");
}

void print_metrics(const json& metrics) {
  for (auto& [k, v] : metrics.items()) std::printf("  %-22s %s\n", k.c_str(), score_text(v).c_str());
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

int cmd_eval(const Args& a) {
  const std::string& action = a.action();
  const bool as_json = a.flag("json");
  Workspace ws = open_workspace(a.get("workspace", default_workspace()));
  const bool tty = !as_json && isatty(2);
  EvalProgressFn progress = [&](int64_t d, int64_t t) {
    if (tty) print_progress(d, t);
    return true;
  };
  if (action == "run") {
    EvalRequest r;
    r.suite = a.require("suite");
    r.target = target_of(a);
    r.mode = a.get("mode");
    r.metrics = a.all("metric");
    r.choice_format = a.get("format", "plain");
    r.max_new_tokens = a.integer("max-new-tokens", 64);
    r.limit = a.integer("limit", 0);
    r.chat_template = a.get("template");
    EvalOutcome o = run_eval(ws, r, progress);
    if (as_json) {
      std::cout << json({{"eval_id", o.eval_id}, {"suite", o.record.suite}, {"kind", o.record.kind},
                         {"target", json::parse(o.record.target)}, {"target_label", o.record.target_label},
                         {"metrics", o.metrics}, {"seconds", o.record.seconds}, {"examples", o.examples}})
                       .dump()
                << "\n";
      return 0;
    }
    const std::string variant = eval_variant(o.record);
    std::printf("evaluation %lld: %s on %s (%s%s, %.1f s)\n", static_cast<long long>(o.eval_id), o.record.target_label.c_str(),
                o.record.suite.c_str(), o.record.kind.c_str(), variant.empty() ? "" : (", " + variant).c_str(), o.record.seconds);
    print_metrics(o.metrics);
    const json st = json::parse(o.record.settings);
    if (st.contains("warning")) std::printf("note: %s\n", st["warning"].get<std::string>().c_str());
    return 0;
  }
  if (action == "pairwise") {
    PairwiseRequest r;
    r.suite = a.require("suite");
    r.a = parse_eval_target(a.require("a"));
    r.b = parse_eval_target(a.require("b"));
    r.human = a.flag("human");
    if (a.has("judge")) r.judge = parse_eval_target(a.get("judge"));
    if (r.human == !r.judge.empty()) throw Error("eval pairwise: give either --judge TARGET or --human");
    r.max_new_tokens = a.integer("max-new-tokens", 64);
    r.limit = a.integer("limit", 0);
    r.seed = static_cast<uint64_t>(a.integer("seed", 0));
    r.labels_name = a.get("name");
    EvalOutcome o = run_pairwise(ws, r, progress);
    if (as_json) {
      json j = eval_json(ws, o.record, true);
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::printf("evaluation %lld: %s on %s\n", static_cast<long long>(o.eval_id), o.record.target_label.c_str(), o.record.suite.c_str());
    if (r.human) {
      std::printf("blind label set: %s (%zu pairs). Label it on the Label page or with hone-cli label set; then\n"
                  "hone-cli eval show %lld gives the win rate.\n",
                  json::parse(o.record.settings).value("labels", "").c_str(), o.examples.size(), static_cast<long long>(o.eval_id));
    } else {
      print_metrics(o.metrics);
      if (o.metrics.contains("position_consistency") && o.metrics["position_consistency"]["value"].get<double>() < 0.5)
        std::printf("note: the judge changed its verdict when the answers swapped places on most prompts (position\n"
                    "consistency below 0.5); its win rate says little. A stronger judge, or --human, would tell more.\n");
    }
    return 0;
  }
  if (action == "list") {
    auto evals = list_evals(ws);
    json out = json::array();
    if (!as_json) std::printf("%-4s %-8s %-22s %-34s %-16s %s\n", "ID", "KIND", "SUITE", "TARGET", "STATUS", "SCORE (SETTINGS)");
    for (const auto& e0 : evals) {
      const EvalRecord e = e0.status == "awaiting_labels" ? refresh_pairwise(ws, e0.id) : e0;
      if (as_json) {
        out.push_back(eval_json(ws, e, false));
        continue;
      }
      const json m = json::parse(e.metrics);
      const std::string key = headline_metric(e);
      const std::string first = key.empty() ? "-" : key + " " + score_text(m[key]);
      const std::string variant = eval_variant(e);
      std::printf("%-4lld %-8s %-22s %-34s %-16s %s%s\n", static_cast<long long>(e.id), e.kind.c_str(), e.suite.substr(0, 22).c_str(),
                  e.target_label.substr(0, 34).c_str(), e.status.c_str(), first.c_str(), variant.empty() ? "" : ("  (" + variant + ")").c_str());
    }
    if (as_json) std::cout << out.dump() << "\n";
    return 0;
  }
  if (action == "show") {
    if (a.positional().empty()) throw Error("eval show: missing evaluation id");
    const EvalRecord e = refresh_pairwise(ws, parse_id(a.positional()[0]));
    const json j = eval_json(ws, e, true);
    if (as_json) {
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::printf("evaluation %lld: %s on %s (%s, suite %s)\n  status %s, settings %s\n", static_cast<long long>(e.id),
                e.target_label.c_str(), e.suite.c_str(), e.kind.c_str(), e.suite_hash.c_str(), e.status.c_str(), e.settings.c_str());
    if (j.contains("labels")) std::printf("  blind label set: %s\n", j["labels"].get<std::string>().c_str());
    print_metrics(j["metrics"]);
    // The first examples in a line each (--json has them all, whole).
    auto one_line = [](std::string t, size_t max) {
      for (auto& c : t)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      return t.size() > max ? t.substr(0, max) + "..." : t;
    };
    const json& ex = j.contains("examples") ? j["examples"] : json::array();
    if (!ex.empty()) std::printf("  first examples (--json lists all %zu):\n", ex.size());
    for (size_t i = 0; i < ex.size() && i < 5; ++i) {
      const json& x = ex[i];
      std::string line;
      if (e.kind == "choice") {
        const auto& conts = x["continuations"];
        const int64_t p = x["prediction"], a = x["answer"];
        line = "picked" + one_line(conts[static_cast<size_t>(p)].get<std::string>(), 40) + (p == a ? " (right)" : " (wrong; answer" + one_line(conts[static_cast<size_t>(a)].get<std::string>(), 40) + ")");
      } else if (e.kind == "generate") {
        line = one_line(x["prompt"].get<std::string>(), 50) + " -> " + one_line(x["answer"].get<std::string>(), 40) + "  (reference: " +
               one_line(x["reference"].get<std::string>(), 40) + ")";
      } else if (e.kind == "loss") {
        char b[96];
        std::snprintf(b, sizeof b, "%lld tokens, loss %.4f", static_cast<long long>(x["tokens"].get<int64_t>()), x["loss"].get<double>());
        line = b;
      } else {
        line = one_line(x.value("prompt", ""), 40) + ": a " + one_line(x.value("answer_a", ""), 30) + " | b " + one_line(x.value("answer_b", ""), 30) +
               (x.contains("winner") ? "  -> " + x["winner"].get<std::string>() : "");
      }
      std::printf("  row %lld: %s\n", static_cast<long long>(x.value("row", int64_t(i))), line.c_str());
    }
    return 0;
  }
  if (action == "compare") {
    if (a.positional().size() < 2) throw Error("eval compare: name two or more evaluation ids");
    std::vector<EvalRecord> es;
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& p : a.positional()) {
      es.push_back(refresh_pairwise(ws, parse_id(p)));
      const json m = json::parse(es.back().metrics);
      for (auto& [k, v] : m.items())
        if (seen.insert(k).second) names.push_back(k);
    }
    if (as_json) {
      json out = json::array();
      for (const auto& e : es) out.push_back(eval_json(ws, e, false));
      std::cout << out.dump() << "\n";
      return 0;
    }
    const bool csv = a.flag("csv");
    if (csv) {
      std::printf("eval_id,suite,suite_hash,settings,target");
      for (const auto& n : names) std::printf(",%s,%s_lo,%s_hi,%s_n", n.c_str(), n.c_str(), n.c_str(), n.c_str());
      std::printf("\n");
    }
    for (const auto& e : es) {
      const json m = json::parse(e.metrics);
      if (csv) {
        std::printf("%lld,%s,%s,%s,%s", static_cast<long long>(e.id), csv_cell(e.suite).c_str(), e.suite_hash.c_str(),
                    csv_cell(eval_variant(e)).c_str(), csv_cell(e.target_label).c_str());
        for (const auto& n : names) {
          if (!m.contains(n)) {
            std::printf(",,,,");
            continue;
          }
          const Score s = score_from_json(m[n]);
          std::printf(",%.6g,%.6g,%.6g,%lld", s.value, s.lo, s.hi, static_cast<long long>(s.n));
        }
        std::printf("\n");
        continue;
      }
      const std::string variant = eval_variant(e);
      std::printf("%lld  %s on %s (suite %s%s)\n", static_cast<long long>(e.id), e.target_label.c_str(), e.suite.c_str(), e.suite_hash.c_str(),
                  variant.empty() ? "" : (", " + variant).c_str());
      for (const auto& n : names)
        if (m.contains(n)) std::printf("  %-22s %s\n", n.c_str(), score_text(m[n]).c_str());
    }
    std::set<std::string> hashes, variants;
    for (const auto& e : es) hashes.insert(e.suite + "@" + e.suite_hash), variants.insert(eval_variant(e));
    if (hashes.size() > 1 && !csv)
      std::printf("note: these evaluations ran on different suites or suite contents; their scores do not compare directly.\n");
    else if (variants.size() > 1 && !csv)
      std::printf("note: these evaluations used different settings (format, template, length or rows); their scores do not compare directly.\n");
    return 0;
  }
  throw Error("eval: unknown action \"" + action + "\" (run, pairwise, list, show, compare)");
}

}  // namespace hone::cli
