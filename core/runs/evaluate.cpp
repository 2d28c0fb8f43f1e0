// Evaluations of workspace suites (see evaluate.h): load the target, score with train/eval_suite,
// summarise with train/eval_stats, store with store/evals.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs/evaluate.h"

#include <chrono>
#include <filesystem>
#include <random>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/runs.h"
#include "train/eval_stats.h"
#include "train/eval_suite.h"
#include "train/run_output.h"
#include "train/text_metrics.h"

namespace hone {
namespace {

using json = nlohmann::json;

// A target ready to answer: the model, its tokenizer and chat template.
struct LoadedTarget {
  RunModel rm;
  std::unique_ptr<Tokenizer> tok;
  ChatTemplate tmpl = ChatFormat::ChatML;
};

LoadedTarget load_target(Workspace& ws, const EvalTarget& t, const std::string& chat_template) {
  LoadedTarget l;
  if (t.run_id > 0) {
    const RunInfo run = get_run(ws, t.run_id);
    if (run.status != "completed")
      throw Error("run " + std::to_string(t.run_id) + " is " + run.status + ": only a completed run has an output to evaluate");
    l.rm = load_run_output(run.run_dir);
    l.tok = load_tokenizer(l.rm.method == "full" ? l.rm.lm.dir : l.rm.base_model);
  } else {
    if (!is_directory(t.model_dir)) throw Error("model folder " + t.model_dir + " does not exist");
    l.rm = load_with_adapter(t.model_dir, t.adapter_dir, false);
    l.tok = load_tokenizer(t.model_dir);
  }
  l.tmpl = resolve_chat_template(l.tok->config(), chat_template.empty() ? "auto" : chat_template);
  return l;
}

struct Suite {
  DatasetInfo info;
  DatasetKind kind = DatasetKind::Chat;
  std::vector<DatasetRow> rows;
  std::string hash;
};

Suite load_suite(Workspace& ws, const std::string& name, int64_t limit) {
  Suite s;
  s.info = find_dataset(ws, name);
  if (!dataset_kind_from_name(s.info.kind, &s.kind)) throw Error("dataset " + s.info.name + " has an unknown kind");
  const int64_t n = limit > 0 ? std::min(limit, s.info.rows) : s.info.rows;
  if (n == 0) throw Error("suite " + s.info.name + " has no rows");
  s.rows = read_rows(ws, s.info.id, 0, n);
  s.hash = dataset_hash(ws, s.info.id, n);  // the rows scored: a --limit run is another suite
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The prompt of a chat row for pairwise answers: the messages before its last assistant reply, or
// the whole conversation when it ends with the user's turn.
std::vector<ChatMessage> prompt_of(const std::string& data) {
  std::vector<ChatMessage> m = record_messages(data);
  while (!m.empty() && m.back().role == "assistant") m.pop_back();
  if (m.empty()) throw Error("a pairwise row needs a prompt");
  return m;
}

json messages_json(const std::vector<ChatMessage>& m) {
  json a = json::array();
  for (const auto& x : m) a.push_back({{"role", x.role}, {"content", x.content}});
  return a;
}

std::vector<std::string> answers_of(Workspace& ws, const EvalTarget& t, const std::vector<std::vector<ChatMessage>>& prompts,
                                    int64_t max_new_tokens, const EvalProgressFn& progress) {
  LoadedTarget l = load_target(ws, t, "");
  return greedy_answers(l.rm.lm.model, *l.tok, l.tmpl, prompts, max_new_tokens, progress);
}

std::string blind_set_name(Workspace& ws, const std::string& suite) {
  std::set<std::string> taken;
  for (const auto& d : list_datasets(ws)) taken.insert(d.name);
  for (int k = 1;; ++k) {
    const std::string n = suite + "-blind-" + std::to_string(k);
    if (!taken.count(n)) return n;
  }
}

}  // namespace

EvalTarget parse_eval_target(const std::string& s) {
  EvalTarget t;
  std::string id = s.rfind("run:", 0) == 0 ? s.substr(4) : s;
  if (!id.empty() && id.find_first_not_of("0123456789") == std::string::npos) {
    t.run_id = std::stoll(id);
    return t;
  }
  if (s.rfind("run:", 0) == 0) throw Error("\"" + s + "\" is not run:ID");
  t.model_dir = s;
  return t;
}

json eval_target_json(const EvalTarget& t) {
  if (t.run_id > 0) return {{"run", t.run_id}};
  json j = {{"model", t.model_dir}};
  if (!t.adapter_dir.empty()) j["adapter"] = t.adapter_dir;
  return j;
}

std::string eval_target_label(Workspace& ws, const EvalTarget& t) {
  if (t.run_id > 0) {
    std::string name;
    try {
      name = get_run(ws, t.run_id).name;
    } catch (const Error&) {
    }
    return "run " + std::to_string(t.run_id) + (name.empty() ? "" : " " + name);
  }
  const std::string base = std::filesystem::path(t.model_dir).filename().string();
  return t.adapter_dir.empty() ? "model " + base : "adapter " + std::filesystem::path(t.adapter_dir).filename().string() + " over " + base;
}

EvalOutcome run_eval(Workspace& ws, const EvalRequest& r, const EvalProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (r.target.empty()) throw Error("eval: no target (a run or a model folder)");
  if (r.max_new_tokens < 1) throw Error("eval: --max-new-tokens must be at least 1");
  if (r.limit < 0) throw Error("eval: --limit must be 0 (all rows) or more");
  if (r.max_len < 2) throw Error("eval: max_len must be at least 2 tokens");
  if (!r.mode.empty() && r.mode != "generate" && r.mode != "loss" && r.mode != "choice")
    throw Error("eval: --mode must be generate or loss (chat suites), not \"" + r.mode + "\"");
  Suite suite = load_suite(ws, r.suite, r.limit);
  std::string mode = r.mode;
  if (mode.empty())
    mode = suite.kind == DatasetKind::Choice ? "choice" : suite.kind == DatasetKind::Text ? "loss" : suite.kind == DatasetKind::Chat ? "generate" : "";
  const bool fits = (mode == "choice" && suite.kind == DatasetKind::Choice) ||
                    (mode == "generate" && suite.kind == DatasetKind::Chat) ||
                    (mode == "loss" && (suite.kind == DatasetKind::Chat || suite.kind == DatasetKind::Text));
  if (!fits)
    throw Error("suite " + suite.info.name + " is a " + suite.info.kind + " dataset: " +
                (mode.empty() ? std::string("evaluate choice, chat or text datasets")
                              : "it cannot be evaluated as " + mode));
  ChoiceFormat cf;
  if (!choice_format_from_name(r.choice_format, &cf)) throw Error("eval: choice format must be plain, raw or chat");
  // Metrics are checked before the model loads (seconds on a large one).
  std::unique_ptr<AnswerMetrics> am;
  if (mode == "generate") am = std::make_unique<AnswerMetrics>(r.metrics);
  const std::vector<std::string> fixed = mode == "choice" ? std::vector<std::string>{"acc", "acc_norm"}
                                                           : std::vector<std::string>{"loss", "perplexity"};
  if (mode != "generate")
    for (const auto& m : r.metrics)
      if (std::find(fixed.begin(), fixed.end(), m) == fixed.end())
        throw Error("unknown metric \"" + m + "\" for a " + mode + " evaluation (" + fixed[0] + ", " + fixed[1] + ")");

  LoadedTarget l = load_target(ws, r.target, r.chat_template);
  CausalLM& m = l.rm.lm.model;
  EvalOutcome out;
  json settings = {{"mode", mode}, {"limit", r.limit}, {"chat_template", r.chat_template.empty() ? "auto" : r.chat_template}};
  // A run scored on the data it trained on measures memory, not skill: said beside the result.
  if (r.target.run_id > 0) {
    const json used = json::parse(get_run(ws, r.target.run_id).datasets, nullptr, false);
    if (used.is_array())
      for (const auto& d : used)
        if (d.is_string() && (d.get<std::string>() == "dataset:" + suite.info.name || d.get<std::string>() == "dataset:" + std::to_string(suite.info.id)))
          settings["warning"] = "run " + std::to_string(r.target.run_id) + " trained on " + suite.info.name +
                                ": this scores its training data, not held-out data";
  }
  if (mode == "choice") {
    std::vector<ChoiceQuestion> qs;
    for (const auto& row : suite.rows) qs.push_back(choice_question(row.data));
    const auto res = score_choices(m, *l.tok, l.tmpl, qs, cf, progress);
    int64_t k = 0, kn = 0;
    for (size_t i = 0; i < res.size(); ++i) {
      k += res[i].correct, kn += res[i].correct_norm;
      out.examples.push_back({{"row", suite.rows[i].position}, {"context", res[i].prompt.context},
                              {"continuations", res[i].prompt.continuations}, {"choice_logprobs", res[i].logprobs},
                              {"prediction", res[i].prediction}, {"prediction_norm", res[i].prediction_norm},
                              {"answer", qs[i].answer}, {"correct", res[i].correct}, {"correct_norm", res[i].correct_norm}});
    }
    const int64_t n = static_cast<int64_t>(res.size());
    out.metrics["acc"] = score_json(proportion_score(k, n));
    out.metrics["acc_norm"] = score_json(proportion_score(kn, n));
    settings["choice_format"] = choice_format_name(cf);
  } else if (mode == "generate") {
    std::vector<GenerateItem> items;
    std::vector<std::vector<ChatMessage>> prompts;
    for (const auto& row : suite.rows) {
      items.push_back(generate_item(row.data));
      prompts.push_back(items.back().prompt);
    }
    const auto answers = greedy_answers(m, *l.tok, l.tmpl, prompts, r.max_new_tokens, progress);
    std::vector<std::vector<double>> cols(am->names().size());
    for (size_t i = 0; i < items.size(); ++i) {
      const auto s = am->score(answers[i], items[i].reference);
      json mj = json::object();
      for (size_t k = 0; k < s.size(); ++k) cols[k].push_back(s[k]), mj[am->names()[k]] = s[k];
      out.examples.push_back({{"row", suite.rows[i].position}, {"prompt", items[i].prompt.back().content},
                              {"messages", messages_json(items[i].prompt)}, {"answer", answers[i]},
                              {"reference", items[i].reference}, {"metrics", mj}});
    }
    for (size_t k = 0; k < cols.size(); ++k) {
      int64_t hits = 0;
      for (double v : cols[k]) hits += v > 0.5;
      out.metrics[am->names()[k]] =
          score_json(am->binary(k) ? proportion_score(hits, static_cast<int64_t>(cols[k].size())) : bounded_mean_score(cols[k]));
    }
    settings["metrics"] = am->names();
    settings["max_new_tokens"] = r.max_new_tokens;
  } else {
    std::vector<std::string> data;
    for (const auto& row : suite.rows) data.push_back(row.data);
    const auto losses = heldout_loss(m, *l.tok, l.tmpl, suite.kind, data, r.max_len, progress);
    std::vector<double> nll, tokens;
    for (size_t i = 0; i < losses.size(); ++i) {
      if (losses[i].tokens == 0) continue;  // nothing scored (a row cut to one token)
      nll.push_back(losses[i].nll);
      tokens.push_back(static_cast<double>(losses[i].tokens));
      out.examples.push_back({{"row", suite.rows[i].position}, {"tokens", losses[i].tokens}, {"nll", losses[i].nll},
                              {"loss", losses[i].nll / static_cast<double>(losses[i].tokens)}});
    }
    if (nll.empty()) throw Error("suite " + suite.info.name + ": no row has a token to score");
    const Score s = ratio_score(nll, tokens);
    out.metrics["loss"] = score_json(s);
    out.metrics["perplexity"] = score_json(exp_score(s));
    settings["max_len"] = r.max_len;
  }
  EvalRecord& rec = out.record;
  rec.kind = mode;
  rec.suite = suite.info.name;
  rec.suite_id = suite.info.id;
  rec.suite_hash = suite.hash;
  rec.target = eval_target_json(r.target).dump();
  rec.target_label = eval_target_label(ws, r.target);
  rec.run_id = r.target.run_id;
  rec.settings = settings.dump();
  rec.metrics = out.metrics.dump();
  rec.seconds = seconds_since(t0);
  std::vector<std::string> ex;
  for (const auto& e : out.examples) ex.push_back(e.dump());
  out.eval_id = rec.id = save_eval(ws, rec, ex);
  return out;
}

EvalOutcome run_pairwise(Workspace& ws, const PairwiseRequest& r, const EvalProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  if (r.a.empty() || r.b.empty()) throw Error("eval pairwise: --a and --b name the two targets");
  if (!r.human && r.judge.empty()) throw Error("eval pairwise: name a judge (a run or a model folder) or ask for --human");
  Suite suite = load_suite(ws, r.suite, r.limit);
  if (suite.kind != DatasetKind::Chat) throw Error("suite " + suite.info.name + " is a " + suite.info.kind + " dataset: pairwise prompts come from a chat dataset");
  std::vector<std::vector<ChatMessage>> prompts;
  for (const auto& row : suite.rows) prompts.push_back(prompt_of(row.data));
  const int64_t n = static_cast<int64_t>(prompts.size());
  // Progress over the whole job: answers of a, answers of b, then the judge's two orders.
  auto phase = [&](int64_t k, int64_t phases) -> EvalProgressFn {
    return [=](int64_t done, int64_t total) { return !progress || progress(k * n + done * n / std::max<int64_t>(total, 1), phases * n); };
  };
  const int64_t phases = r.human ? 2 : 3;
  const auto answers_a = answers_of(ws, r.a, prompts, r.max_new_tokens, phase(0, phases));
  const auto answers_b = answers_of(ws, r.b, prompts, r.max_new_tokens, phase(1, phases));
  EvalOutcome out;
  EvalRecord& rec = out.record;
  rec.kind = "pairwise";
  rec.suite = suite.info.name;
  rec.suite_id = suite.info.id;
  rec.suite_hash = suite.hash;
  json target = {{"a", eval_target_json(r.a)}, {"b", eval_target_json(r.b)}};
  rec.target_label = eval_target_label(ws, r.a) + " vs " + eval_target_label(ws, r.b);
  json settings = {{"max_new_tokens", r.max_new_tokens}, {"limit", r.limit}};
  std::vector<std::string> ex;
  if (r.human) {
    // The blind set: each row's two answers in a shuffled order, with nothing naming their source.
    std::mt19937_64 rng(r.seed ? r.seed : std::random_device{}());
    const std::string name = r.labels_name.empty() ? blind_set_name(ws, suite.info.name) : r.labels_name;
    const std::string dir = join_path(ws.dir(), "blind");
    make_dirs(dir);
    const std::string file = join_path(dir, "pairs-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + ".jsonl");
    std::string lines;
    for (int64_t i = 0; i < n; ++i) {
      const int a_is = static_cast<int>(rng() & 1);  // index of a's answer among the responses
      json resp = json::array({a_is == 0 ? answers_a[i] : answers_b[i], a_is == 0 ? answers_b[i] : answers_a[i]});
      for (auto& x : resp)
        if (x.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) x = "(no answer)";
      const auto& p = prompts[static_cast<size_t>(i)];
      json pj = p.size() == 1 && p[0].role == "user" ? json(p[0].content) : messages_json(p);
      lines += json({{"prompt", pj}, {"responses", resp}}).dump() + "\n";
      ex.push_back(json({{"row", suite.rows[i].position}, {"prompt", p.back().content}, {"answer_a", answers_a[i]},
                         {"answer_b", answers_b[i]}, {"a_is", a_is}})
                       .dump());
    }
    write_file_atomic(file, lines);
    ImportOptions io;
    io.kind = DatasetKind::Candidates;
    ImportReport rep = import_dataset(ws, file, name, io);
    std::filesystem::remove(file);
    if (rep.dataset_id == 0) throw Error("eval pairwise: the blind set could not be stored: " + (rep.problems.empty() ? std::string("?") : rep.problems[0].text()));
    rec.status = "awaiting_labels";
    rec.labels_id = rep.dataset_id;
    target["judge"] = "human";
    settings["labels"] = name;
  } else {
    // The judge sees the question and both answers and is asked for A, B or tie; its verdict is the
    // likelier of the three replies. Both orders, so that a preference for a position cancels.
    LoadedTarget j = load_target(ws, r.judge, "");
    // The request as the targets saw it: one message as it is, a conversation as "role: text" lines.
    auto request = [&](size_t i) {
      if (prompts[i].size() == 1) return prompts[i][0].content;
      std::string t;
      for (const auto& m : prompts[i]) t += (t.empty() ? "" : "\n") + m.role + ": " + m.content;
      return t;
    };
    auto question = [&](size_t i, const std::string& first, const std::string& second) {
      ChoiceQuestion q;
      q.question = "You are judging two answers to the same request. Which answer is better: more correct, more "
                   "helpful, and following the request?\n\n[Request]\n" + request(i) +
                   "\n\n[Answer A]\n" + first + "\n\n[Answer B]\n" + second +
                   "\n\nReply with A if answer A is better, B if answer B is better, or tie.";
      q.choices = {"A", "B", "tie"};
      return q;
    };
    std::vector<ChoiceQuestion> qs;
    for (size_t i = 0; i < prompts.size(); ++i) qs.push_back(question(i, answers_a[i], answers_b[i]));
    for (size_t i = 0; i < prompts.size(); ++i) qs.push_back(question(i, answers_b[i], answers_a[i]));
    const auto verdicts = score_choices(j.rm.lm.model, *j.tok, j.tmpl, qs, ChoiceFormat::Chat, phase(2, phases));
    const char* names[] = {"A", "B", "tie"};
    std::vector<double> win;
    int64_t wa = 0, wb = 0, ties = 0, consistent = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ab = verdicts[static_cast<size_t>(i)].prediction, ba = verdicts[static_cast<size_t>(n + i)].prediction;
      // In the swapped order "B" names a: a wins when both orders point at it.
      std::string winner = "tie";
      if (ab == 0 && ba == 1) winner = "a";
      else if (ab == 1 && ba == 0) winner = "b";
      consistent += (ab == 0 && ba == 1) || (ab == 1 && ba == 0) || (ab == 2 && ba == 2);
      wa += winner == "a", wb += winner == "b", ties += winner == "tie";
      win.push_back(winner == "a" ? 1.0 : winner == "b" ? 0.0 : 0.5);
      ex.push_back(json({{"row", suite.rows[i].position}, {"prompt", prompts[i].back().content}, {"answer_a", answers_a[i]},
                         {"answer_b", answers_b[i]}, {"verdict_ab", names[ab]}, {"verdict_ba", names[ba]},
                         {"logprobs_ab", verdicts[static_cast<size_t>(i)].logprobs},
                         {"logprobs_ba", verdicts[static_cast<size_t>(n + i)].logprobs}, {"winner", winner}})
                       .dump());
    }
    out.metrics["win_rate_a"] = score_json(bounded_mean_score(win));
    out.metrics["a_wins"] = score_json(proportion_score(wa, n));
    out.metrics["b_wins"] = score_json(proportion_score(wb, n));
    out.metrics["ties"] = score_json(proportion_score(ties, n));
    out.metrics["position_consistency"] = score_json(proportion_score(consistent, n));
    target["judge"] = eval_target_json(r.judge);
    settings["judge"] = eval_target_label(ws, r.judge);
  }
  rec.target = target.dump();
  rec.settings = settings.dump();
  rec.metrics = out.metrics.dump();
  rec.seconds = seconds_since(t0);
  for (const auto& e : ex) out.examples.push_back(json::parse(e));
  try {
    out.eval_id = rec.id = save_eval(ws, rec, ex);
  } catch (...) {
    if (rec.labels_id > 0) delete_dataset(ws, rec.labels_id);  // no blind set without its evaluation
    throw;
  }
  return out;
}

EvalRecord refresh_pairwise(Workspace& ws, int64_t eval_id) {
  EvalRecord rec = get_eval(ws, eval_id);
  if (rec.kind != "pairwise" || rec.labels_id <= 0) return rec;
  const auto examples = eval_examples(ws, eval_id);
  std::vector<CandidateRow> rows;
  try {
    rows = list_candidates(ws, rec.labels_id);
  } catch (const Error&) {
    return rec;  // the set was deleted: the last result stands
  }
  std::vector<double> win;
  int64_t wa = 0, wb = 0, ties = 0, skipped = 0, unlabelled = 0;
  for (size_t i = 0; i < examples.size() && i < rows.size(); ++i) {
    const json e = json::parse(examples[i]);
    const std::string& lab = rows[i].label;
    if (lab.empty()) {
      ++unlabelled;
      continue;
    }
    if (lab == "skip") {
      ++skipped;
      continue;
    }
    std::string winner = "tie";
    if (lab == "a" || lab == "b") winner = (lab == "a") == (e.value("a_is", 0) == 0) ? "a" : "b";
    wa += winner == "a", wb += winner == "b", ties += winner == "tie";
    win.push_back(winner == "a" ? 1.0 : winner == "b" ? 0.0 : 0.5);
  }
  json m = json::object();
  const int64_t n = static_cast<int64_t>(win.size());
  if (n > 0) {
    m["win_rate_a"] = score_json(bounded_mean_score(win));
    m["a_wins"] = score_json(proportion_score(wa, n));
    m["b_wins"] = score_json(proportion_score(wb, n));
    m["ties"] = score_json(proportion_score(ties, n));
  }
  const std::string status = unlabelled == 0 ? "completed" : "awaiting_labels";
  set_eval_metrics(ws, eval_id, m.dump(), status);
  rec.metrics = m.dump();
  rec.status = status;
  return rec;
}

std::string eval_variant(const EvalRecord& r) {
  const json s = json::parse(r.settings, nullptr, false);
  if (!s.is_object()) return "";
  std::vector<std::string> parts;
  const std::string f = s.value("choice_format", "plain");
  if (r.kind == "choice" && f != "plain") parts.push_back(f + " format");
  if (r.kind == "loss" && s.value("max_len", int64_t{1024}) != 1024) parts.push_back("rows cut at " + std::to_string(s.value("max_len", int64_t{0})) + " tokens");
  if ((r.kind == "generate" || r.kind == "pairwise") && s.value("max_new_tokens", int64_t{64}) != 64)
    parts.push_back(std::to_string(s.value("max_new_tokens", int64_t{0})) + " new tokens");
  if (s.value("chat_template", std::string("auto")) != "auto") parts.push_back("template " + s.value("chat_template", std::string()));
  const int64_t limit = s.value("limit", int64_t{0});
  if (limit > 0) parts.push_back(limit == 1 ? std::string("first row") : "first " + std::to_string(limit) + " rows");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string headline_metric(const EvalRecord& r) {
  const json m = json::parse(r.metrics, nullptr, false);
  if (!m.is_object() || m.empty()) return "";
  for (const char* k : {"acc", "exact_match", "loss", "win_rate_a"})
    if (m.contains(k)) return k;
  return m.begin().key();
}

json eval_json(Workspace& ws, const EvalRecord& r, bool with_examples) {
  json j = {{"eval_id", r.id},
            {"kind", r.kind},
            {"suite", r.suite},
            {"suite_hash", r.suite_hash},
            {"target", json::parse(r.target)},
            {"target_label", r.target_label},
            {"status", r.status},
            {"settings", json::parse(r.settings)},
            {"variant", eval_variant(r)},
            {"metrics", json::parse(r.metrics)},
            {"seconds", r.seconds},
            {"created_at", r.created_at}};
  if (r.labels_id > 0) {
    try {
      j["labels"] = find_dataset(ws, std::to_string(r.labels_id)).name;
    } catch (const Error&) {
    }
  }
  // A blind set's answers and sides stay hidden until every row is labelled.
  if (with_examples && r.status != "awaiting_labels") {
    j["examples"] = json::array();
    for (const auto& e : eval_examples(ws, r.id)) j["examples"].push_back(json::parse(e));
  }
  return j;
}

}  // namespace hone
