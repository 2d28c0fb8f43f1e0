// Evaluation: task metrics and intervals against hand-computed values, the overfitting warning,
// multiple-choice scoring against an independent PyTorch reference written from
// lm-evaluation-harness's definitions (tests/reference/choice_reference.py), batched greedy answers
// against one-at-a-time generation, and pairwise evaluations (judge in both orders, blind labels).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "test_support.h"
#include "train/eval_stats.h"
#include "train/overfit_check.h"
#include "train/text_metrics.h"

using namespace hone;
using json = nlohmann::json;

namespace {

std::string q(const std::string& s) { return test::shell_quote(s); }

json cli_json(const std::string& args) {
  auto r = test::cli(args);
  EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
  return json::parse(r.out.substr(r.out.rfind('\n', r.out.size() - 2) == std::string::npos ? 0 : r.out.rfind('\n', r.out.size() - 2) + 1));
}

// A tiny random model and a workspace with the given rows imported as dataset `name`.
struct Fixture {
  std::string dir, ws, model;
};
Fixture fixture(const std::string& name, int seed) {
  Fixture f;
  f.dir = test::temp_dir(name);
  f.ws = f.dir + "/ws";
  f.model = f.dir + "/model";
  auto r = test::cli("init-model --preset tiny --tokenizer builtin --out " + q(f.model) + " --seed " + std::to_string(seed));
  EXPECT_EQ(r.code, 0) << r.err;
  return f;
}
void import_rows(const Fixture& f, const std::string& name, const std::vector<json>& rows) {
  std::string text;
  for (const auto& j : rows) text += j.dump() + "\n";
  const std::string file = f.dir + "/" + name + ".jsonl";
  write_file_atomic(file, text);
  auto r = test::cli("dataset import " + q(file) + " --name " + name + " --workspace " + q(f.ws));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
}

}  // namespace

TEST(TextMetrics, HandComputedValues) {
  EXPECT_TRUE(exact_match("  MFOG \n", "MFOG"));
  EXPECT_TRUE(exact_match("a  b\tc", "a b c"));
  EXPECT_FALSE(exact_match("mfog", "MFOG"));  // case is kept
  EXPECT_TRUE(contains_reference("the answer is Paris.", "Paris"));
  EXPECT_FALSE(contains_reference("anything", ""));
  // LCS of [the cat sat on mat] and [the cat is on the mat] is 4 words: P 4/5, R 4/6.
  EXPECT_NEAR(rouge_l_f1("The cat sat on mat", "the cat is on the mat"), 2 * 0.8 * (4.0 / 6) / (0.8 + 4.0 / 6), 1e-12);
  EXPECT_EQ(rouge_l_f1("", "x"), 0.0);
  // chrF of "abc" against "abd": orders 1-3 (4-6 too long for either): precision = recall =
  // (2/3 + 1/2 + 0) / 3, so F = the same.
  EXPECT_NEAR(chrf("abc", "abd"), (2.0 / 3 + 0.5 + 0) / 3, 1e-12);
  EXPECT_NEAR(chrf("a b c", "abc"), 1.0, 1e-12);  // whitespace is removed
  // precision 1 (every hyp n-gram is in the reference), recall: "ab" vs "abcd" orders 1-2: (2/4 + 1/3) / 2.
  const double r = (0.5 + 1.0 / 3) / 2;
  EXPECT_NEAR(chrf("ab", "abcd"), 5 * r / (4 * 1 + r), 1e-12);
  AnswerMetrics m({"exact_match", "json_valid", "regex:^[A-Z]+$", "rouge_l"});
  auto s = m.score("{\"a\": 1}", "{\"a\": 1}");
  EXPECT_EQ(s[0], 1.0);
  EXPECT_EQ(s[1], 1.0);
  EXPECT_EQ(s[2], 0.0);
  EXPECT_TRUE(m.binary(2));
  EXPECT_FALSE(m.binary(3));
  EXPECT_EQ(m.score("ABC", "x")[2], 1.0);
  EXPECT_THROW(AnswerMetrics({"bleu"}), std::exception);
}

TEST(EvalStats, WilsonAndBootstrapIntervals) {
  // Wilson, 8 of 10, z = 1.959964: centre 0.716740, half-width 0.226575.
  Score w = proportion_score(8, 10);
  EXPECT_NEAR(w.value, 0.8, 1e-12);
  EXPECT_NEAR(w.lo, 0.490165, 1e-5);
  EXPECT_NEAR(w.hi, 0.943315, 1e-5);
  EXPECT_EQ(w.n, 10);
  Score z = proportion_score(0, 100);  // 0 of 100: [0, z^2 / (n + z^2)]
  EXPECT_EQ(z.lo, 0.0);
  EXPECT_NEAR(z.hi, 3.841459 / (100 + 3.841459), 1e-5);
  std::vector<double> x;
  for (int i = 0; i < 100; ++i) x.push_back(i % 2);
  Score m = mean_score(x);
  EXPECT_NEAR(m.value, 0.5, 1e-12);
  // The normal approximation's interval is 0.5 +- 0.098; the bootstrap's lands near it.
  EXPECT_NEAR(m.lo, 0.402, 0.03);
  EXPECT_NEAR(m.hi, 0.598, 0.03);
  EXPECT_EQ(mean_score(x).lo, m.lo);  // seeded: the same interval every time
  Score c = mean_score(std::vector<double>(20, 0.25));
  EXPECT_EQ(c.lo, 0.25);
  EXPECT_EQ(c.hi, 0.25);
  // All ten values 0: the bootstrap's interval collapses; a bounded mean falls back on Wilson's.
  Score none = bounded_mean_score(std::vector<double>(10, 0.0));
  EXPECT_EQ(none.lo, 0.0);
  EXPECT_NEAR(none.hi, proportion_score(0, 10).hi, 1e-12);
  EXPECT_GT(none.hi, 0.25);
  Score ratio = ratio_score({2, 6}, {1, 3});  // token-weighted: 8 / 4
  EXPECT_NEAR(ratio.value, 2.0, 1e-12);
  EXPECT_NEAR(score_from_json(score_json(w)).hi, w.hi, 1e-15);
}

TEST(Overfit, WarnsWhenHeldOutLossRisesWhileTrainingLossFalls) {
  std::vector<std::pair<int64_t, double>> train, held;
  for (int s = 1; s <= 300; ++s) train.emplace_back(s, 3.0 * std::exp(-s / 60.0));
  const double ev[] = {3.0, 2.2, 2.0, 2.3, 2.9, 3.6, 4.97};  // steps 50..300
  for (int i = 0; i < 7; ++i) held.emplace_back(i == 0 ? 1 : i * 50, ev[i]);
  OverfitWarning w = check_overfitting(train, held);
  EXPECT_TRUE(w.warn);
  EXPECT_EQ(w.best_step, 100);
  EXPECT_NE(w.message.find("step 100"), std::string::npos) << w.message;
  // Held-out loss still falling, or rising for fewer evaluations than asked: no warning.
  std::vector<std::pair<int64_t, double>> good;
  for (int i = 0; i < 7; ++i) good.emplace_back(i * 50 + 1, 3.0 - 0.2 * i);
  EXPECT_FALSE(check_overfitting(train, good).warn);
  auto two = held;
  two.resize(5);
  two.push_back({250, 2.5});  // rose at 2 evaluations, then fell
  EXPECT_FALSE(check_overfitting(train, two).warn);
  // Training loss rising too (a diverging run, not overfitting).
  std::vector<std::pair<int64_t, double>> up;
  for (int s = 1; s <= 300; ++s) up.emplace_back(s, 1.0 + s / 100.0);
  EXPECT_FALSE(check_overfitting(up, held).warn);
}

TEST(ChoiceEval, MatchesTheReferenceInEachPromptFormat) {
  Fixture f = fixture("eval_choice", 5);
  std::vector<json> rows = {
      {{"question", "Which colour is the sky?"}, {"choices", {"blue", "green", "red"}}, {"answer", 0}},
      {{"question", "2 + 2 ="}, {"choices", {"3", "4", "five", "22"}}, {"answer", "B"}},
      {{"context", "Cats purr."}, {"question", "What do cats do?"}, {"choices", {"purr", "bark"}}, {"answer", 0}},
      // The raw format continues the question itself: its trailing space moves to each continuation.
      {{"question", "The word after cat is "}, {"choices", {"dog", "mouse", "a much longer choice"}}, {"answer", "c"}},
      {{"question", "Pick one.\n"}, {"choices", {"x", "yy"}}, {"answer", 1}},
  };
  import_rows(f, "mc", rows);
  for (const std::string fmt : {"plain", "raw", "chat"}) {
    SCOPED_TRACE(fmt);
    json got = cli_json("eval run --suite mc --model " + q(f.model) + " --format " + fmt + " --json --workspace " + q(f.ws));
    auto ref = test::run(std::string(HONE_PYTHON) + " " + q(test::source("tests/reference/choice_reference.py")) + " " + q(f.model) +
                         " " + q(f.dir + "/mc.jsonl") + " " + q(HONE_CLI) + " " + fmt);
    ASSERT_EQ(ref.code, 0) << ref.err;
    const json want = json::parse(ref.out)["rows"];
    ASSERT_EQ(got["examples"].size(), want.size());
    int acc = 0, acc_norm = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const json& g = got["examples"][i];
      EXPECT_EQ(g["context"], want[i]["context"]) << i;
      EXPECT_EQ(g["continuations"], want[i]["continuations"]) << i;
      ASSERT_EQ(g["choice_logprobs"].size(), want[i]["logprobs"].size());
      for (size_t c = 0; c < want[i]["logprobs"].size(); ++c)
        EXPECT_NEAR(g["choice_logprobs"][c].get<double>(), want[i]["logprobs"][c].get<double>(), 1e-4) << i << " " << c;
      EXPECT_EQ(g["prediction"], want[i]["prediction"]) << i;
      EXPECT_EQ(g["prediction_norm"], want[i]["prediction_norm"]) << i;
      const int answer = g["answer"].get<int>();
      EXPECT_EQ(answer, std::vector<int>({0, 1, 0, 2, 1})[i]);  // letters became indices
      acc += want[i]["prediction"].get<int>() == answer;
      acc_norm += want[i]["prediction_norm"].get<int>() == answer;
    }
    EXPECT_DOUBLE_EQ(got["metrics"]["acc"]["value"].get<double>(), acc / 5.0);
    EXPECT_DOUBLE_EQ(got["metrics"]["acc_norm"]["value"].get<double>(), acc_norm / 5.0);
    EXPECT_EQ(got["metrics"]["acc"]["n"], 5);
    const Score w = proportion_score(acc, 5);
    EXPECT_NEAR(got["metrics"]["acc"]["ci95"][0].get<double>(), w.lo, 1e-12);
  }
  // Each evaluation is stored with the suite's hash; compare lines them up.
  json list = cli_json("eval list --json --workspace " + q(f.ws));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]["suite_hash"], list[2]["suite_hash"]);
  auto cmp = test::cli("eval compare 1 2 3 --csv --workspace " + q(f.ws));
  EXPECT_EQ(cmp.code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("eval_id,suite,suite_hash,settings,target,acc,acc_lo,acc_hi,acc_n"), std::string::npos) << cmp.out;
  // A bad row is named by file, line and field; nothing is imported.
  write_file_atomic(f.dir + "/bad.jsonl", "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n"
                                          "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": \"C\"}\n");
  auto bad = test::cli("dataset import " + q(f.dir + "/bad.jsonl") + " --name bad --workspace " + q(f.ws));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE((bad.out + bad.err).find("bad.jsonl:2: answer: letter C is past the last of the 2 choices"), std::string::npos) << bad.out << bad.err;
}

TEST(GenerateEval, BatchedAnswersEqualOneAtATimeGeneration) {
  Fixture f = fixture("eval_generate", 6);
  std::vector<json> rows;
  const char* prompts[] = {"Encode the word abcd.", "Hi", "Say this word twice: mfog.", "A much longer prompt than the others, to pad.",
                           "Capitalise the word rest.", "x"};
  for (int i = 0; i < 6; ++i) rows.push_back({{"instruction", prompts[i]}, {"output", i == 1 ? "Hello" : "MFOG"}});
  import_rows(f, "gen", rows);
  json got = cli_json("eval run --suite gen --model " + q(f.model) + " --max-new-tokens 12 --json --workspace " + q(f.ws));
  ASSERT_EQ(got["examples"].size(), 6u);
  for (int i = 0; i < 6; ++i) {
    auto one = test::cli("generate --model " + q(f.model) + " --chat --prompt " + q(prompts[i]) + " --max-new-tokens 12");
    ASSERT_EQ(one.code, 0) << one.err;
    EXPECT_EQ(got["examples"][i]["answer"].get<std::string>() + "\n", one.out) << i;  // generate ends its output with a newline
    const std::string ans = got["examples"][i]["answer"], ref = got["examples"][i]["reference"];
    EXPECT_EQ(got["examples"][i]["metrics"]["exact_match"].get<double>(), exact_match(ans, ref) ? 1.0 : 0.0);
    EXPECT_NEAR(got["examples"][i]["metrics"]["chrf"].get<double>(), chrf(ans, ref), 1e-12);
  }
  for (const char* m : {"exact_match", "contains", "rouge_l", "chrf"}) EXPECT_EQ(got["metrics"][m]["n"], 6) << m;
  // Held-out loss: the token-weighted mean of the per-row losses, and its perplexity.
  json loss = cli_json("eval run --suite gen --mode loss --model " + q(f.model) + " --json --workspace " + q(f.ws));
  double nll = 0, tokens = 0;
  for (const auto& e : loss["examples"]) nll += e["nll"].get<double>(), tokens += e["tokens"].get<double>();
  EXPECT_NEAR(loss["metrics"]["loss"]["value"].get<double>(), nll / tokens, 1e-9);
  EXPECT_NEAR(loss["metrics"]["perplexity"]["value"].get<double>(), std::exp(nll / tokens), 1e-6);
  // A choice-only metric on a generate suite is refused before anything loads.
  auto wrong = test::cli("eval run --suite gen --metric acc --model " + q(f.model) + " --workspace " + q(f.ws));
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("unknown metric \"acc\""), std::string::npos) << wrong.err;
}

TEST(PairwiseEval, JudgeRecordsBothOrdersAndBlindLabelsGiveTheWinRate) {
  Fixture f = fixture("eval_pairwise", 7);
  const std::string other = f.dir + "/other";
  ASSERT_EQ(test::cli("init-model --preset tiny --tokenizer builtin --out " + q(other) + " --seed 8").code, 0);
  std::vector<json> rows;
  for (int i = 0; i < 6; ++i) rows.push_back({{"prompt", "Question " + std::to_string(i)}, {"completion", "Answer"}});
  import_rows(f, "prompts", rows);
  json judged = cli_json("eval pairwise --suite prompts --a " + q(f.model) + " --b " + q(other) + " --judge " + q(f.model) +
                         " --max-new-tokens 6 --json --workspace " + q(f.ws));
  ASSERT_EQ(judged["examples"].size(), 6u);
  double win = 0;
  for (const auto& e : judged["examples"]) {
    const std::string ab = e["verdict_ab"], ba = e["verdict_ba"], w = e["winner"];
    ASSERT_EQ(e["logprobs_ab"].size(), 3u);
    ASSERT_EQ(e["logprobs_ba"].size(), 3u);
    // a wins only when both orders point at it (A first, B when swapped).
    EXPECT_EQ(w, ab == "A" && ba == "B" ? "a" : ab == "B" && ba == "A" ? "b" : "tie");
    win += w == "a" ? 1 : w == "tie" ? 0.5 : 0;
  }
  EXPECT_NEAR(judged["metrics"]["win_rate_a"]["value"].get<double>(), win / 6, 1e-12);

  json blind = cli_json("eval pairwise --suite prompts --a " + q(f.model) + " --b " + q(other) +
                        " --human --seed 11 --max-new-tokens 6 --json --workspace " + q(f.ws));
  EXPECT_EQ(blind["status"], "awaiting_labels");
  const std::string set = blind["labels"];
  const int64_t id = blind["eval_id"];
  // The blind set shows the two answers in shuffled order and nothing about their sources.
  auto shown = test::cli("dataset show " + set + " --json --workspace " + q(f.ws));
  EXPECT_EQ(shown.out.find("model"), std::string::npos);
  EXPECT_FALSE(blind.contains("examples"));  // nothing reveals which side is which while labels are due
  const char* labels[] = {"a", "b", "a", "tie", "skip", "a"};
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(test::cli("label set " + set + " " + std::to_string(i) + " " + labels[i] + " --workspace " + q(f.ws)).code, 0);
    if (i == 2) {  // part-labelled: still waiting, still hidden
      json part = cli_json("eval show " + std::to_string(id) + " --json --workspace " + q(f.ws));
      EXPECT_EQ(part["status"], "awaiting_labels");
      EXPECT_FALSE(part.contains("examples"));
    }
  }
  json done = cli_json("eval show " + std::to_string(id) + " --json --workspace " + q(f.ws));
  EXPECT_EQ(done["status"], "completed");
  ASSERT_EQ(done["examples"].size(), 6u);
  double want = 0;
  int counted = 0, sides = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string l = labels[i];
    const int a_is = done["examples"][i]["a_is"];
    sides += a_is;
    if (l == "skip") continue;
    want += l == "tie" ? 0.5 : ((l == "a") == (a_is == 0) ? 1 : 0);
    ++counted;
  }
  EXPECT_GT(sides, 0);  // the sides were shuffled (seed 11), not all a first
  EXPECT_LT(sides, 6);
  EXPECT_NEAR(done["metrics"]["win_rate_a"]["value"].get<double>(), want / counted, 1e-12);
  EXPECT_EQ(done["metrics"]["win_rate_a"]["n"], counted);
}

TEST(TrainingEval, SuitesAreScoredDuringTheRunAsTheFinishedRunScores) {
  Fixture f = fixture("eval_training", 9);
  std::vector<json> train, mc, held;
  for (int i = 0; i < 12; ++i) train.push_back({{"instruction", "Say " + std::to_string(i)}, {"output", "It is " + std::to_string(i) + "."}});
  for (int i = 12; i < 16; ++i) held.push_back({{"instruction", "Say " + std::to_string(i)}, {"output", "It is " + std::to_string(i) + "."}});
  for (int i = 0; i < 8; ++i)
    mc.push_back({{"question", "What is " + std::to_string(i) + "?"}, {"choices", {"It is " + std::to_string(i) + ".", "No."}}, {"answer", 0}});
  import_rows(f, "numbers", train);
  import_rows(f, "quiz", mc);
  import_rows(f, "held", held);
  json cfg = {{"name", "suites"}, {"base_model", f.model}, {"recipe", "sft"}, {"method", "lora"}, {"train_data", "dataset:numbers"},
              {"max_steps", 4}, {"batch_size", 2}, {"lr", 1e-2}, {"eval_suites", {"dataset:quiz", "dataset:held"}},
              {"eval_suites_every", 2}, {"eval_max_new_tokens", 8}};
  write_file_atomic(f.dir + "/run.json", cfg.dump());
  auto r = test::cli("train --config " + q(f.dir + "/run.json") + " --workspace " + q(f.ws) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  // metrics.jsonl of the run folder: the suites' scores at steps 2 and 4.
  json runs = cli_json("runs list --json --workspace " + q(f.ws));
  ASSERT_EQ(runs.size(), 1u);
  const std::string dir = runs[0]["run_dir"];
  std::map<int, json> at;
  std::istringstream lines(read_file(dir + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    if (j.contains("eval/quiz/acc")) at[j["step"].get<int>()] = j;
  }
  ASSERT_EQ(at.size(), 2u);
  ASSERT_TRUE(at.count(2) && at.count(4));
  EXPECT_TRUE(at[4].contains("eval/held/exact_match"));
  EXPECT_TRUE(at[4].contains("eval/held/chrf"));
  // The end-of-run score is the finished run's: the same suite scored afterwards agrees.
  json after = cli_json("eval run --suite quiz --run " + std::to_string(runs[0]["id"].get<int>()) + " --json --workspace " + q(f.ws));
  EXPECT_DOUBLE_EQ(at[4]["eval/quiz/acc"].get<double>(), after["metrics"]["acc"]["value"].get<double>());
  EXPECT_DOUBLE_EQ(at[4]["eval/quiz/acc_norm"].get<double>(), after["metrics"]["acc_norm"]["value"].get<double>());
  // A suite the run trains on, or one that does not exist, is refused before the run starts.
  cfg["eval_suites"] = "dataset:numbers";
  write_file_atomic(f.dir + "/own.json", cfg.dump());
  auto own = test::cli("train --config " + q(f.dir + "/own.json") + " --workspace " + q(f.ws));
  EXPECT_NE(own.code, 0);
  EXPECT_NE(own.err.find("also in train_data"), std::string::npos) << own.err;
  cfg["eval_suites"] = "dataset:nope";
  write_file_atomic(f.dir + "/bad.json", cfg.dump());
  auto bad = test::cli("train --config " + q(f.dir + "/bad.json") + " --workspace " + q(f.ws));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("nope"), std::string::npos) << bad.err;
}
