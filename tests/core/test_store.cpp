// Workspace store: every import format (good and malformed samples), all-or-nothing imports with
// a real rollback, exact round-trips of awkward text, edits with undo, labels, the seeded split,
// export, runs and metrics, migration from schema version 1, and interrupted-run detection;
// prompts datasets, verdicts per annotator, rankings, identical pairs, verdict sets merged across
// workspaces and Cohen's kappa against a hand count.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/crash.h"
#include "common/error.h"
#include "common/files.h"
#include "data/examples.h"
#include "store/datasets.h"
#include "store/labels.h"
#include "store/runs.h"
#include "store/schema.h"
#include "test_support.h"

using namespace hone;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

json row_json(const Record& r) { return json::parse(r.data); }

bool has_problem(const ReadResult& r, const std::string& where_suffix, const std::string& field, const std::string& msg) {
  for (const auto& p : r.problems)
    if (p.where.size() >= where_suffix.size() &&
        p.where.compare(p.where.size() - where_suffix.size(), where_suffix.size(), where_suffix) == 0 && p.field == field &&
        p.message.find(msg) != std::string::npos)
      return true;
  return false;
}

std::string dump_problems(const ReadResult& r) {
  std::string s;
  for (const auto& p : r.problems) s += p.text() + "\n";
  return s;
}

}  // namespace

TEST(Formats, EachFormatIsDetectedAndCanonicalised) {
  auto d = test::temp_dir("formats");
  struct Case {
    std::string file, text, kind, format;
    json first;
  };
  std::vector<Case> cases = {
      {"alpaca.jsonl", R"({"instruction":"Add","input":"2 and 3","output":"5","system":"Be brief."})" "\n", "chat", "alpaca",
       {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Add\n\n2 and 3"}},
                      {{"role", "assistant"}, {"content", "5"}}}}}},
      {"sharegpt.jsonl", R"({"conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello"}]})" "\n", "chat",
       "sharegpt", {{"messages", {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "hello"}}}}}},
      {"messages.json", R"([{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}])", "chat", "messages",
       {{"messages", {{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "a"}}}}}},
      {"pc.jsonl", R"({"prompt":"2+2=","completion":"4"})" "\n", "chat", "prompt-completion",
       {{"messages", {{{"role", "user"}, {"content", "2+2="}}, {{"role", "assistant"}, {"content", "4"}}}}}},
      {"pref.jsonl", R"({"prompt":"Sky?","chosen":"blue","rejected":"green"})" "\n", "preference", "preference",
       {{"prompt", "Sky?"}, {"chosen", "blue"}, {"rejected", "green"}}},
      // TRL's implicit prompt: the shared first messages become the prompt.
      {"pref_conv.jsonl",
       R"({"chosen":[{"role":"user","content":"Sky?"},{"role":"assistant","content":"blue"}],"rejected":[{"role":"user","content":"Sky?"},{"role":"assistant","content":"green"}]})" "\n",
       "preference", "preference",
       {{"prompt", {{{"role", "user"}, {"content", "Sky?"}}}}, {"chosen", {{{"role", "assistant"}, {"content", "blue"}}}},
        {"rejected", {{{"role", "assistant"}, {"content", "green"}}}}}},
      {"text.jsonl", R"({"text":"Once upon a time."})" "\n", "text", "text", {{"text", "Once upon a time."}}},
      {"notes.md", "# Title\n\nBody text.\n", "text", "text", {{"text", "# Title\n\nBody text.\n"}}},
      // CSV: quoted separators, doubled quotes and a newline inside a cell.
      {"data.csv", "instruction,output\n\"Say \"\"hi\"\", please\",\"hi,\nthere\"\nx,y\n", "chat", "alpaca",
       {{"messages", {{{"role", "user"}, {"content", "Say \"hi\", please"}}, {{"role", "assistant"}, {"content", "hi,\nthere"}}}}}},
      {"data.tsv", "prompt\tcompletion\nq1\ta1\n", "chat", "prompt-completion",
       {{"messages", {{{"role", "user"}, {"content", "q1"}}, {{"role", "assistant"}, {"content", "a1"}}}}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    ReadResult r = read_dataset(write(d, c.file, c.text));
    EXPECT_EQ(r.errors, 0) << dump_problems(r);
    ASSERT_FALSE(r.records.empty());
    EXPECT_EQ(dataset_kind_name(r.kind), c.kind);
    EXPECT_EQ(example_format_name(r.format), c.format);
    EXPECT_EQ(row_json(r.records[0]), c.first);
  }
  // The CSV's second record starts on line 4 (the first spans lines 2-3).
  ReadResult csv = read_dataset(d + "/data.csv");
  ASSERT_EQ(csv.records.size(), 2u);
  EXPECT_EQ(csv.records[1].source, d + "/data.csv:4");
}

TEST(Formats, FieldMapAndFolders) {
  auto d = test::temp_dir("fieldmap");
  auto p = write(d, "qa.jsonl", R"({"question":"Why?","answer":"Because."})" "\n");
  ReadOptions o;
  o.field_map = parse_field_map("question=instruction,answer=output");
  ReadResult r = read_dataset(p, o);
  ASSERT_EQ(r.errors, 0) << dump_problems(r);
  EXPECT_EQ(example_format_name(r.format), std::string("alpaca"));
  EXPECT_THROW(parse_field_map("question"), Error);
  // Unmapped, the same file cannot be recognised and says how to fix it.
  ReadResult bad = read_dataset(p);
  EXPECT_TRUE(has_problem(bad, "qa.jsonl:1", "", "--map")) << dump_problems(bad);

  std::string folder = d + "/docs";
  ASSERT_EQ(std::system(("mkdir -p '" + folder + "/sub'").c_str()), 0);
  write(folder, "b.txt", "second");
  write(folder, "a.md", "first");
  write(folder + "/sub", "c.txt", "third");
  write(folder, "skip.bin", "ignored");
  ReadResult f = read_dataset(folder);
  ASSERT_EQ(f.records.size(), 3u);
  EXPECT_EQ(row_json(f.records[0])["text"], "first");
  EXPECT_EQ(row_json(f.records[2])["text"], "third");
}

TEST(Formats, MalformedRowsAreNamedByLineAndField) {
  auto d = test::temp_dir("malformed");
  std::string text =
      R"({"instruction":"ok","output":"fine"})" "\n"                                          // 1 good
      R"({"instruction":"x","output":"   "})" "\n"                                            // 2 empty response
      "{\"instruction\": \"broken\"\n"                                                         // 3 malformed JSON
      "\n"                                                                                      // 4 blank: ignored
      R"({"instruction":"ok","output":"fine"})" "\n"                                          // 5 duplicate of 1
      "{\"instruction\":\"bad \xff byte\",\"output\":\"y\"}\n"                                // 6 invalid UTF-8
      R"({"instruction":"x"})" "\n";                                                           // 7 missing output
  ReadResult r = read_dataset(write(d, "a.jsonl", text));
  EXPECT_TRUE(has_problem(r, "a.jsonl:2", "output", "empty response")) << dump_problems(r);
  EXPECT_TRUE(has_problem(r, "a.jsonl:3", "", "malformed JSON at column 25: the line ends before the JSON is complete"))
      << dump_problems(r);
  EXPECT_TRUE(has_problem(r, "a.jsonl:5", "", "duplicate of"));
  EXPECT_TRUE(has_problem(r, "a.jsonl:6", "", "invalid UTF-8"));
  EXPECT_TRUE(has_problem(r, "a.jsonl:7", "output", "missing"));
  EXPECT_EQ(r.errors, 4);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(r.records.size(), 2u);  // rows 1 and 5

  ReadResult roles = read_dataset(write(d, "roles.jsonl",
      R"({"messages":[{"role":"user","content":"q"},{"role":"robot","content":"a"}]})" "\n"
      R"({"conversations":[{"from":"alien","value":"q"}]})" "\n"));
  EXPECT_TRUE(has_problem(roles, "roles.jsonl:1", "messages[1].role", "unknown role \"robot\"")) << dump_problems(roles);

  ReadResult sg = read_dataset(write(d, "sg.jsonl", R"({"conversations":[{"from":"alien","value":"q"}]})" "\n"));
  EXPECT_TRUE(has_problem(sg, "sg.jsonl:1", "conversations[0].from", "unknown role")) << dump_problems(sg);

  ReadResult same = read_dataset(write(d, "pref.jsonl", R"({"prompt":"p","chosen":"same","rejected":"same"})" "\n"));
  EXPECT_TRUE(has_problem(same, "pref.jsonl:1", "rejected", "identical")) << dump_problems(same);

  ReadOptions small;
  small.max_row_bytes = 64;
  ReadResult big = read_dataset(write(d, "big.jsonl", "{\"text\":\"" + std::string(100, 'x') + "\"}\n"), small);
  EXPECT_TRUE(has_problem(big, "big.jsonl:1", "", "oversized row")) << dump_problems(big);

  ReadResult csv = read_dataset(write(d, "bad.csv", "instruction,output\na,b,c\n\"open,x\n"));
  EXPECT_TRUE(has_problem(csv, "bad.csv:2", "", "has 3 fields")) << dump_problems(csv);
  EXPECT_TRUE(has_problem(csv, "bad.csv:3", "", "unterminated")) << dump_problems(csv);

  ReadResult arr = read_dataset(write(d, "arr.json", "[\n{\"text\":\"a\"},\n{\"text\": }\n]"));
  EXPECT_TRUE(has_problem(arr, "arr.json:3", "", "malformed JSON")) << dump_problems(arr);

  // Training reads through the same checks and stops at the first error, naming it.
  try {
    read_conversations(d + "/a.jsonl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:2: output: empty response"), std::string::npos) << e.what();
  }
}

// Prompts come in three forms and a text file's lines; what the detector cannot place is named
// with the keys it found, short enough for a problem list.
TEST(Formats, PromptsDatasets) {
  auto d = test::temp_dir("prompts");
  ReadResult r = read_dataset(write(d, "p.jsonl",
      R"({"prompt":"What is 2+2?"})" "\n"
      R"({"prompt":"Name a colour","completion":""})" "\n"
      R"({"prompt":"Say hi","completion":null})" "\n"));
  EXPECT_EQ(r.kind, DatasetKind::Prompts) << dump_problems(r);
  ASSERT_EQ(r.records.size(), 3u) << dump_problems(r);
  EXPECT_EQ(row_json(r.records[1]), json({{"prompt", "Name a colour"}}));
  ReadResult m = read_dataset(write(d, "m.jsonl",
      R"({"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hello?"}]})" "\n"
      R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]})" "\n"));
  EXPECT_EQ(m.kind, DatasetKind::Prompts);
  EXPECT_EQ(row_json(m.records[0])["prompt"].size(), 2u);
  EXPECT_TRUE(has_problem(m, "m.jsonl:2", "messages", "the last message must be the user's")) << dump_problems(m);
  // A prompt/completion file with real answers is still chat data.
  ReadResult pc = read_dataset(write(d, "pc.jsonl", R"({"prompt":"q","completion":"a"})" "\n"));
  EXPECT_EQ(pc.kind, DatasetKind::Chat);
  // One prompt per line of a text file, blank lines skipped, each named by its line.
  ReadOptions po;
  po.format = ExampleFormat::Prompts;
  ReadResult t = read_dataset(write(d, "p.txt", "First question\n\n  \nSecond question\r\nThird\n"), po);
  ASSERT_EQ(t.records.size(), 3u) << dump_problems(t);
  EXPECT_EQ(t.records[1].source.substr(t.records[1].source.size() - 8), "/p.txt:4");
  EXPECT_EQ(row_json(t.records[1]), json({{"prompt", "Second question"}}));
  // The workspace imports a text file as prompts when asked for that kind.
  Workspace ws(d + "/ws");
  ImportOptions io;
  io.kind = DatasetKind::Prompts;
  auto rep = import_dataset(ws, d + "/p.txt", "qs", io);
  EXPECT_EQ(rep.imported, 3);
  EXPECT_EQ(find_dataset(ws, "qs").kind, "prompts");
  // Unknown keys: the message names them and what would fit.
  ReadResult u = read_dataset(write(d, "u.jsonl", R"({"q":"x","a":"y"})" "\n"));
  ASSERT_EQ(u.problems.size(), 1u);
  EXPECT_NE(u.problems[0].message.find("no known fields (found \"a\", \"q\")"), std::string::npos) << u.problems[0].message;
  EXPECT_NE(u.problems[0].message.find("prompt"), std::string::npos);
}

namespace {
// A candidates dataset of `rows` imported into a workspace.
int64_t import_rows(Workspace& ws, const std::string& dir, const std::string& name, const std::vector<json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  auto rep = import_dataset(ws, write(dir, name + ".jsonl", text), name, {});
  EXPECT_GT(rep.dataset_id, 0) << (rep.problems.empty() ? "" : rep.problems[0].text());
  return rep.dataset_id;
}
}  // namespace

// Found by fuzzing (tests/fuzz/regressions/dataset): a number beyond a double ("1e999") made
// nlohmann throw out_of_range, not parse_error, and that aborted the whole import; now it is that
// row's problem, as any malformed JSON is.
TEST(Formats, NumbersOutOfRangeAreARowProblem) {
  const std::string d = test::temp_dir("formats-range");
  ReadResult l = read_dataset(write(d, "n.jsonl", "{\"text\":\"a\"}\n{\"text\":\"b\",\"n\":1e999}\n{\"text\":\"c\"}\n"));
  EXPECT_EQ(l.records.size(), 2u);
  EXPECT_TRUE(has_problem(l, "n.jsonl:2", "", "the number 1e999 is out of range")) << dump_problems(l);
  ReadResult a = read_dataset(write(d, "n.json", "[{\"text\":\"a\"}, {\"text\": -1e999}]"));
  EXPECT_TRUE(a.records.empty());
  EXPECT_TRUE(has_problem(a, "n.json", "", "out of range")) << dump_problems(a);
  EXPECT_NE(json_problem("[1e400]").find("out of range"), std::string::npos) << json_problem("[1e400]");
  // A row nested 30,000 deep overflowed the stack where a row's JSON was copied or printed.
  ReadResult deep = read_dataset(write(d, "deep.jsonl", "{\"text\":\"a\"}\n{\"prompt\":" + std::string(600, '[') + std::string(600, ']') + "}\n"));
  EXPECT_EQ(deep.records.size(), 1u);
  EXPECT_TRUE(has_problem(deep, "deep.jsonl:2", "", "nested more than 512 levels deep")) << dump_problems(deep);
}

// Rankings give every better-worse pair; an identical pair is left out and cannot be preferred;
// a plain preference dataset is reviewed with keep / flip / drop; two sources are tallied.
TEST(Labels, RankingsIdenticalPairsReviewAndSources) {
  auto d = test::temp_dir("labels");
  Workspace ws(d + "/ws");
  const int64_t c = import_rows(ws, d, "cands", {
      {{"prompt", "p0"}, {"responses", {"one", "two", "three\n", "three"}}},
      {{"prompt", "p1"}, {"responses", {"same  answer", "same answer "}}},
      {{"prompt", "p2"}, {"responses", {"x", "y"}}, {"sources", {"run-a", "run-b"}}},
      {{"prompt", "p3"}, {"responses", {"y", "x"}}, {"sources", {"run-b", "run-a"}}},
  });
  auto rows = list_candidates(ws, c);
  EXPECT_EQ(rows[0].identical, (std::vector<std::pair<int, int>>{{2, 3}}));
  EXPECT_EQ(rows[1].identical.size(), 1u);
  EXPECT_THROW(label_candidate(ws, c, 1, "a", "", "ann"), Error);  // identical: neither is better
  label_candidate(ws, c, 1, "tie", "", "ann");
  label_candidate(ws, c, 0, "ranked", "", "ann", {0, 2, 3, 1});
  EXPECT_THROW(label_candidate(ws, c, 0, "ranked", "", "ann", {0, 0}), Error);
  EXPECT_THROW(label_candidate(ws, c, 0, "ranked", "", "ann", {0, 4}), Error);
  label_candidate(ws, c, 2, "b", "", "ann");  // run-b preferred
  label_candidate(ws, c, 3, "a", "", "ann");  // run-b preferred again
  const LabelExportReport r = export_labels(ws, c, d + "/pairs.jsonl", "");
  // Ranking A > C > D > B: AC AD AB CD CB DB, CD identical -> 5 pairs; plus rows 2 and 3.
  EXPECT_EQ(r.pairs, 7);
  EXPECT_EQ(r.identical, 1);
  EXPECT_EQ(r.ties, 1);
  EXPECT_EQ(r.wins.at("run-b"), 2);
  EXPECT_EQ(r.compared.at("run-a"), 2);
  EXPECT_EQ(r.summary(), "7 pairs; left out: 1 tie, 1 identical");
  auto out = read_dataset(d + "/pairs.jsonl");
  ASSERT_EQ(out.records.size(), 7u) << dump_problems(out);
  EXPECT_EQ(row_json(out.records[0]), json({{"prompt", "p0"}, {"chosen", "one"}, {"rejected", "three\n"}}));
  EXPECT_EQ(row_json(out.records[2]), json({{"prompt", "p0"}, {"chosen", "one"}, {"rejected", "two"}}));

  // Paging under filters.
  EXPECT_EQ(count_label_rows(ws, c, "all"), 4);
  EXPECT_EQ(count_label_rows(ws, c, "unlabelled"), 0);
  label_candidate(ws, c, 3, "none", "", "ann");
  EXPECT_EQ(count_label_rows(ws, c, "unlabelled"), 1);
  EXPECT_EQ(page_label_rows(ws, c, "unlabelled", 0, 10)[0].position, 3);
  EXPECT_EQ(filtered_index(ws, c, "labelled", 2), 2);
  EXPECT_EQ(filtered_index(ws, c, "labelled", 3), -1);
  EXPECT_EQ(next_unlabelled(ws, c, 0), 3);
  EXPECT_EQ(label_progress(ws, c).labelled, 3);

  // Review of plain pairs: keep, flip (swapped on export), drop and skip (left out).
  const int64_t p = import_rows(ws, d, "pairs", {
      {{"prompt", "q0"}, {"chosen", "good"}, {"rejected", "bad"}},
      {{"prompt", "q1"}, {"chosen", "worse"}, {"rejected", "better"}},
      {{"prompt", "q2"}, {"chosen", "c"}, {"rejected", "r"}},
      {{"prompt", "q3"}, {"chosen", "c"}, {"rejected", "r"}},
      {{"prompt", "q4"}, {"chosen", "c4"}, {"rejected", "r4"}},
  });
  label_candidate(ws, p, 0, "keep", "", "ann");
  label_candidate(ws, p, 1, "flip", "", "ann");
  label_candidate(ws, p, 2, "drop", "", "ann");
  label_candidate(ws, p, 3, "skip", "", "ann");
  const LabelExportReport pr = export_labels(ws, p, d + "/reviewed.jsonl", "");
  EXPECT_EQ(pr.summary(), "3 pairs; left out: 1 dropped, 1 skipped");
  auto reviewed = read_dataset(d + "/reviewed.jsonl");
  ASSERT_EQ(reviewed.records.size(), 3u);
  EXPECT_EQ(row_json(reviewed.records[1]), json({{"prompt", "q1"}, {"chosen", "better"}, {"rejected", "worse"}}));
  EXPECT_EQ(export_dataset(ws, p, d + "/exported.jsonl"), 3);  // the same rows through the dataset export
}

// Two annotators label the same candidates in two workspaces; one's verdict set merges into the
// other's workspace and Cohen's kappa is the hand count's: 9 rows judged by both (the skipped one
// left out), 6 agree: p_o = 6/9; ann gave a 5, b 3, tie 1; bob a 4, b 5:
// p_e = (5*4 + 3*5) / 81 = 35/81; kappa = (54/81 - 35/81) / (46/81) = 19/46.
TEST(Labels, VerdictSetsMergeAndKappaMatchesAHandCount) {
  auto d = test::temp_dir("kappa");
  std::vector<json> rows;
  for (int i = 0; i < 10; ++i) rows.push_back({{"prompt", "p" + std::to_string(i)}, {"responses", {"x" + std::to_string(i), "y"}}});
  rows.push_back(rows[0]);  // the same row twice: told apart by its occurrence
  Workspace w1(d + "/one"), w2(d + "/two");
  const int64_t c1 = import_rows(w1, d, "cands", rows), c2 = import_rows(w2, d, "cands", rows);
  const std::vector<std::string> ann = {"a", "a", "b", "b", "a", "tie", "a", "b", "a", "skip", "b"};
  const std::vector<std::string> bob = {"a", "b", "b", "b", "a", "a", "a", "b", "b", "skip"};
  for (size_t i = 0; i < ann.size(); ++i) label_candidate(w1, c1, int64_t(i), ann[i], "", "ann");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // bob's verdicts are the newer ones
  for (size_t i = 0; i < bob.size(); ++i) label_candidate(w2, c2, int64_t(i), bob[i], i == 5 ? "A rambles" : "", "bob");
  EXPECT_THROW(label_agreement(w1, c1), Error);  // one annotator: nothing to compare
  EXPECT_EQ(export_verdicts(w2, c2, d + "/bob.jsonl"), 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  MergeReport m = merge_verdicts(w1, c1, d + "/bob.jsonl");
  EXPECT_EQ(m.added, 10);
  EXPECT_EQ(m.unmatched, 0);
  EXPECT_EQ(m.annotators, std::vector<std::string>{"bob"});
  EXPECT_EQ(merge_verdicts(w1, c1, d + "/bob.jsonl").kept, 10);  // merging again changes nothing
  // Bob's queue in this workspace: the one row he has not judged (the repeated one, position 10).
  EXPECT_EQ(count_label_rows(w1, c1, "mine", "bob"), 1);
  EXPECT_EQ(count_label_rows(w1, c1, "mine", "ann"), 0);
  EXPECT_EQ(count_label_rows(w1, c1, "unlabelled"), 0);
  EXPECT_EQ(page_label_rows(w1, c1, "mine", 0, 5, "bob").at(0).position, 10);
  EXPECT_EQ(filtered_index(w1, c1, "mine", 10, "bob"), 0);
  EXPECT_EQ(next_unlabelled(w1, c1, -1, "bob"), 10);
  EXPECT_EQ(next_unlabelled(w1, c1, -1), -1);
  Agreement g = label_agreement(w1, c1);
  EXPECT_EQ(g.a, "ann");
  EXPECT_EQ(g.b, "bob");
  EXPECT_EQ(g.both, 9);
  EXPECT_EQ(g.agree, 6);
  EXPECT_NEAR(g.observed, 6.0 / 9, 1e-12);
  EXPECT_NEAR(g.expected, 35.0 / 81, 1e-12);
  EXPECT_NEAR(g.kappa, 19.0 / 46, 1e-12);
  ASSERT_EQ(g.disagreements.size(), 3u);
  EXPECT_EQ(g.disagreements[1].position, 5);
  EXPECT_EQ(g.disagreements[1].a, "tie");
  EXPECT_EQ(g.disagreements[1].b, "a");
  // Each verdict is kept; the row's label is the newest: bob's, given after ann's (a merged verdict
  // keeps its own time).
  auto r5 = label_row_at(w1, c1, 5);
  EXPECT_EQ(r5.verdicts, 2);
  EXPECT_EQ(r5.label, "a");
  EXPECT_EQ(r5.author, "bob");
  EXPECT_EQ(verdict_of(w1, c1, 5, "bob").note, "A rambles");
  EXPECT_EQ(verdict_of(w1, c1, 5, "ann").label, "tie");
  // A malformed verdict file merges nothing.
  write(d, "bad.jsonl", "{\"key\":\"x\",\"annotator\":\"eve\",\"label\":\"a\"}\n{oops\n");
  EXPECT_THROW(merge_verdicts(w1, c1, d + "/bad.jsonl"), Error);
  EXPECT_EQ(label_row_at(w1, c1, 0).verdicts, 2);
}

TEST(Store, ImportIsAllOrNothing) {
  auto d = test::temp_dir("import");
  Workspace ws(d + "/ws");
  auto bad = write(d, "bad.jsonl", R"({"prompt":"a","completion":"b"})" "\n" R"({"prompt":"c"})" "\n");
  ImportReport r = import_dataset(ws, bad, "bad", {});
  EXPECT_EQ(r.dataset_id, 0);
  EXPECT_EQ(r.errors, 1);
  EXPECT_TRUE(list_datasets(ws).empty());
  ImportOptions skip;
  skip.skip_invalid = true;
  ImportReport s = import_dataset(ws, bad, "bad", skip);
  EXPECT_GT(s.dataset_id, 0);
  EXPECT_EQ(s.imported, 1);
  EXPECT_THROW(import_dataset(ws, bad, "bad", skip), Error);  // the name is taken

  // A failure inside the transaction (here a trigger aborting the 3rd insert, as a full disk
  // would) leaves no dataset and no rows behind.
  ws.db().exec(
      "CREATE TEMP TRIGGER fail_third BEFORE INSERT ON rows WHEN NEW.position = 2 "
      "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END");
  std::string lines;
  for (int i = 0; i < 5; ++i) lines += json({{"text", "doc " + std::to_string(i)}}).dump() + "\n";
  EXPECT_THROW(import_dataset(ws, write(d, "five.jsonl", lines), "five", {}), Error);
  EXPECT_EQ(list_datasets(ws).size(), 1u);
  Stmt c = ws.db().prepare("SELECT COUNT(*) FROM rows");
  ASSERT_TRUE(c.step());
  EXPECT_EQ(c.i64(0), 1);  // only the row of "bad"
  ws.db().exec("DROP TRIGGER fail_third");

  ImportOptions want_pref;
  want_pref.kind = DatasetKind::Preference;
  ImportReport k = import_dataset(ws, d + "/five.jsonl", "five", want_pref);
  EXPECT_EQ(k.dataset_id, 0);
  ASSERT_FALSE(k.problems.empty());
  EXPECT_NE(k.problems[0].message.find("not preference"), std::string::npos);
}

// While a file is being read the workspace stays writable by others: a training process records
// metrics into it and waits at most the busy timeout (10 s) for SQLite's write lock, and reading a
// 1M-row file takes longer than that. Only the inserts at the end hold the lock.
TEST(Store, ImportLetsOthersWriteWhileItReads) {
  auto d = test::temp_dir("import-lock");
  Workspace ws(d + "/ws");
  std::string lines;
  for (int i = 0; i < 5000; ++i) lines += json({{"text", "doc " + std::to_string(i)}}).dump() + "\n";
  const std::string file = write(d, "many.jsonl", lines);
  Workspace other(d + "/ws");
  int64_t written_while_reading = 0;
  ImportOptions io;
  io.progress = [&](int64_t done, int64_t total) {
    if (total == 0 && written_while_reading == 0) {  // still reading (the total is not known yet)
      // An immediate write transaction from another connection: SQLITE_BUSY if the import held the lock.
      other.db().exec("BEGIN IMMEDIATE");
      written_while_reading = create_dataset(other, "written meanwhile", DatasetKind::Text, "test");
      other.db().exec("COMMIT");
    }
    return done >= 0;
  };
  ImportReport r = import_dataset(ws, file, "many", io);
  EXPECT_EQ(r.imported, 5000);
  EXPECT_GT(written_while_reading, 0);
  EXPECT_EQ(list_datasets(ws).size(), 2u);
}

TEST(Store, AwkwardTextRoundTripsExactly) {
  auto d = test::temp_dir("roundtrip");
  Workspace ws(d + "/ws");
  std::vector<std::string> texts = {"it's \"quoted\" '; DROP TABLE rows; --",
                                    std::string("nul\0inside", 10),
                                    "emoji 🦙👍🏽 and ünïcödé",
                                    "Robert'); DELETE FROM datasets WHERE ('1'='1",
                                    std::string(1 << 20, 'z') + "end"};
  std::string lines;
  for (const auto& t : texts) lines += json({{"text", t}}).dump() + "\n";
  auto rep = import_dataset(ws, write(d, "awkward.jsonl", lines), "awk'ward \"name\"", {});
  ASSERT_GT(rep.dataset_id, 0);
  auto rows = read_rows(ws, rep.dataset_id, 0, 100);
  ASSERT_EQ(rows.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(json::parse(rows[i].data)["text"].get<std::string>(), texts[i]);
  EXPECT_EQ(find_dataset(ws, "awk'ward \"name\"").id, rep.dataset_id);
  // Export and re-import: identical again.
  export_dataset(ws, rep.dataset_id, d + "/out.jsonl");
  auto back = read_dataset(d + "/out.jsonl");
  ASSERT_EQ(back.records.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(row_json(back.records[i])["text"].get<std::string>(), texts[i]);
  // Search binds the needle: SQL in it is just text.
  EXPECT_EQ(search_rows(ws, rep.dataset_id, "DROP TABLE", 0, 10).size(), 1u);
  EXPECT_EQ(search_rows(ws, rep.dataset_id, "'1'='1", 0, 10).size(), 1u);
  EXPECT_EQ(search_rows(ws, rep.dataset_id, "🦙", 0, 10).size(), 1u);
  EXPECT_EQ(search_rows(ws, rep.dataset_id, "\"quoted\"", 0, 10).size(), 1u);
}

TEST(Store, EditsUndoLabelsSplitAndExport) {
  auto d = test::temp_dir("edits");
  Workspace ws(d + "/ws");
  std::string lines;
  for (int i = 0; i < 4; ++i)
    lines += json({{"prompt", "p" + std::to_string(i)}, {"chosen", "c" + std::to_string(i)}, {"rejected", "r" + std::to_string(i)}}).dump() + "\n";
  auto rep = import_dataset(ws, write(d, "pairs.jsonl", lines), "pairs", {});
  ASSERT_GT(rep.dataset_id, 0);
  const int64_t ds = rep.dataset_id;
  auto prompts = [&] {
    std::string s;
    for (auto& r : read_rows(ws, ds, 0, 100)) s += json::parse(r.data)["prompt"].get<std::string>() + " ";
    return s;
  };
  auto rows = read_rows(ws, ds, 0, 100);
  const int64_t id_new = insert_row(ws, ds, 1, R"({"prompt":"new","chosen":"a","rejected":"b"})", "tester");
  EXPECT_EQ(prompts(), "p0 new p1 p2 p3 ");
  update_row(ws, rows[2].id, R"({"prompt":"P2","chosen":"x","rejected":"y"})", "tester");
  delete_row(ws, rows[0].id, "tester");
  EXPECT_EQ(prompts(), "new p1 P2 p3 ");
  EXPECT_THROW(update_row(ws, rows[1].id, R"({"prompt":"p","chosen":"s","rejected":"s"})", "t"), Error);  // identical pair
  EXPECT_THROW(update_row(ws, rows[1].id, R"({"text":"wrong kind"})", "t"), Error);
  auto page = read_rows(ws, ds, 1, 3);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].position, 1);

  EXPECT_TRUE(undo(ws, ds));
  EXPECT_EQ(prompts(), "p0 new p1 P2 p3 ");
  EXPECT_EQ(read_rows(ws, ds, 0, 1)[0].id, rows[0].id);  // the deleted row is back with its id
  EXPECT_TRUE(undo(ws, ds));
  EXPECT_TRUE(undo(ws, ds));
  EXPECT_EQ(prompts(), "p0 p1 p2 p3 ");
  EXPECT_FALSE(undo(ws, ds));
  (void)id_new;
  EXPECT_EQ(last_revision(ws, ds).id, 0);

  // Redo: a caller keeps what it undid (last_revision before each undo) and re-applies it newest
  // first; each redo is an ordinary, undoable edit.
  insert_row(ws, ds, 1, R"({"prompt":"new","chosen":"a","rejected":"b"})", "tester");
  update_row(ws, rows[2].id, R"({"prompt":"P2","chosen":"x","rejected":"y"})", "tester");
  delete_row(ws, rows[0].id, "tester");
  std::vector<Revision> undone;
  for (int i = 0; i < 3; ++i) {
    undone.push_back(last_revision(ws, ds));
    ASSERT_TRUE(undo(ws, ds));
  }
  EXPECT_EQ(undone[0].op, "delete");
  EXPECT_EQ(undone[1].op, "update");
  EXPECT_EQ(json::parse(undone[1].after)["prompt"], "P2");
  EXPECT_EQ(json::parse(undone[1].before)["prompt"], "p2");
  EXPECT_EQ(undone[2].op, "insert");
  EXPECT_EQ(undone[2].position, 1);
  EXPECT_EQ(prompts(), "p0 p1 p2 p3 ");
  for (auto it = undone.rbegin(); it != undone.rend(); ++it) redo_revision(ws, ds, *it, "tester");
  EXPECT_EQ(prompts(), "new p1 P2 p3 ");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(undo(ws, ds));
  EXPECT_EQ(prompts(), "p0 p1 p2 p3 ");
  EXPECT_FALSE(undo(ws, ds));

  set_label(ws, rows[0].id, "chosen", "ann");
  set_label(ws, rows[1].id, "rejected", "ann");  // the annotator preferred the stored "rejected"
  set_label(ws, rows[2].id, "tie", "ann");
  set_label(ws, rows[3].id, "skip", "bob");
  set_label(ws, rows[3].id, "", "bob");  // cleared
  EXPECT_THROW(set_label(ws, rows[0].id, "maybe", "ann"), Error);
  EXPECT_EQ(read_rows(ws, ds, 1, 2)[0].label, "rejected");
  EXPECT_EQ(export_dataset(ws, ds, d + "/pairs_out.jsonl"), 3);  // the tie is left out
  std::vector<json> out;
  for (auto& l : read_dataset(d + "/pairs_out.jsonl").records) out.push_back(row_json(l));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1], json({{"prompt", "p1"}, {"chosen", "r1"}, {"rejected", "c1"}}));  // swapped by its label

  // The split depends only on (seed, row id): stable across edits, about the asked fraction.
  int val = 0;
  for (int64_t id = 1; id <= 10000; ++id) val += in_validation(id, 7, 0.1);
  EXPECT_NEAR(val, 1000, 120);
  EXPECT_EQ(in_validation(42, 7, 0.1), in_validation(42, 7, 0.1));
  int differ = 0;
  for (int64_t id = 1; id <= 1000; ++id) differ += in_validation(id, 7, 0.5) != in_validation(id, 8, 0.5);
  EXPECT_GT(differ, 300);  // another seed gives another split
  const int64_t tr = export_dataset(ws, ds, d + "/tr.jsonl", {"train", 3, 0.5});
  const int64_t va = export_dataset(ws, ds, d + "/va.jsonl", {"validation", 3, 0.5});
  EXPECT_EQ(tr + va, 3);
}

TEST(Store, MigratesFromVersionOne) {
  auto d = test::temp_dir("migrate");
  ASSERT_EQ(std::system(("mkdir -p '" + d + "/ws'").c_str()), 0);
  {
    Db db(d + "/ws/hone.db");
    migrate(db, 1);
    ASSERT_EQ(db.user_version(), 1);
    db.exec("INSERT INTO datasets (id, name, kind, format, source) VALUES (1, 'old', 'preference', 'preference', 'x')");
    db.exec("INSERT INTO rows (dataset_id, position, data) VALUES (1, 0, '{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}')");
    db.exec("INSERT INTO runs (name, method, base_model, config, run_dir, status) VALUES ('r', 'lora', 'm', '{}', '/nowhere', 'completed')");
    db.exec("INSERT INTO metrics VALUES (1, 1, 'loss', 2.5, 0)");
  }
  {
    // Version 2 brought labels; version 3 rebuilds that table and `datasets` (wider kind and
    // label checks): a label set under version 2 must survive, and so must the rows.
    Db db(d + "/ws/hone.db");
    migrate(db, 2);
    db.exec("INSERT INTO labels (row_id, label, author) VALUES (1, 'rejected', 'v2')");
  }
  Workspace ws(d + "/ws");
  EXPECT_EQ(ws.db().user_version(), kSchemaVersion);
  EXPECT_EQ(read_rows(ws, 1, 0, 1).at(0).label, "rejected");
  {
    Stmt fk = ws.db().prepare("PRAGMA foreign_keys");
    ASSERT_TRUE(fk.step());
    EXPECT_EQ(fk.i64(0), 1);  // switched back on after the rebuild
  }
  auto ds = list_datasets(ws);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].rows, 1);
  auto row = read_rows(ws, 1, 0, 1).at(0);
  set_label(ws, row.id, "chosen", "ann");  // a table added by version 2
  EXPECT_EQ(read_rows(ws, 1, 0, 1).at(0).label, "chosen");
  RunInfo r = get_run(ws, 1);
  EXPECT_EQ(r.notes, "");
  EXPECT_DOUBLE_EQ(run_metric(ws, 1, "loss").at(0).value, 2.5);
  // A database from a newer Hone is refused, not damaged.
  ws.db().set_user_version(kSchemaVersion + 1);
  EXPECT_THROW(Workspace again(d + "/ws"), Error);
}

TEST(Store, RunsMetricsAndInterruptedDetection) {
  auto d = test::temp_dir("runs");
  int64_t dead = 0, alive = 0;
  auto lock_alive = d + "/alive.lock";
  RunLock held(lock_alive);  // this process is "training" that run
  {
    Workspace ws(d + "/ws");
    NewRun nr{"a", "lora", "sft", "/m", "[\"d.jsonl\"]", R"({"lr":0.001,"lora":{"r":8}})", d + "/ws/runs/a"};
    dead = create_run(ws, nr, "running");
    alive = create_run(ws, nr, "running");
    set_run_lock(ws, dead, d + "/dead.lock");  // never locked: its process is gone
    set_run_lock(ws, alive, lock_alive);
    MetricsWriter mw(ws, dead, 4, 1e9);
    for (int s = 1; s <= 10; ++s) mw.add(s, "loss", 3.0 / s);
    // 8 points went out in two batches of 4; the last 2 are still buffered.
    EXPECT_EQ(run_metric(ws, dead, "loss").size(), 8u);
    mw.flush();
    EXPECT_EQ(run_metric(ws, dead, "loss").size(), 10u);
    mw.add(10, "loss", 0.25);  // a resumed run repeating a step replaces the point
    mw.flush();
    EXPECT_DOUBLE_EQ(run_metric(ws, dead, "loss").back().value, 0.25);
    add_artifact(ws, dead, "checkpoint", 10, d, 123);
  }
  Workspace ws(d + "/ws");
  EXPECT_EQ(get_run(ws, dead).status, "interrupted");
  EXPECT_EQ(get_run(ws, alive).status, "running");
  EXPECT_EQ(last_checkpoint(ws, dead), d);
  finish_run(ws, alive, "completed", "", R"({"final_loss":0.5})");
  EXPECT_EQ(json::parse(get_run(ws, alive).final_metrics)["final_loss"], 0.5);
  EXPECT_FALSE(get_run(ws, alive).ended_at.empty());
  rename_run(ws, alive, "renamed");
  set_run_notes(ws, alive, "good one");
  EXPECT_EQ(get_run(ws, alive).name, "renamed");
  delete_run(ws, dead);
  EXPECT_TRUE(run_metric(ws, dead, "loss").empty());  // metrics go with the run
  EXPECT_EQ(list_runs(ws).size(), 1u);
}

// A crash helper opens the workspace naming the cause of its run's death: that run is marked
// interrupted with that error in the one update (a reader never sees the generic reason first);
// other dead runs get the generic one, and a cause for a run still held changes nothing.
TEST(Store, ReapingRecordsAGivenCauseInTheSameUpdate) {
  auto d = test::temp_dir("reap-cause");
  auto lock_alive = d + "/alive.lock";
  RunLock held(lock_alive);
  int64_t crashed = 0, other = 0, alive = 0;
  {
    Workspace ws(d + "/ws");
    NewRun nr{"a", "lora", "sft", "/m", "[\"d.jsonl\"]", "{}", d + "/ws/runs/a"};
    crashed = create_run(ws, nr, "running");
    other = create_run(ws, nr, "paused");
    alive = create_run(ws, nr, "running");
    set_run_lock(ws, crashed, d + "/crashed.lock");
    write_file_atomic(d + "/other.lock", "pid 4242\n");  // its holder's pid, as RunLock writes it
    set_run_lock(ws, other, d + "/other.lock");
    set_run_lock(ws, alive, lock_alive);
  }
  const std::string why = "the training process crashed (SIGSEGV); crash report: /r.txt";
  Workspace ws(d + "/ws", {{crashed, why}, {alive, "not this one"}});
  ASSERT_EQ(ws.reaped().size(), 2u);
  EXPECT_EQ(get_run(ws, crashed).status, "interrupted");
  EXPECT_EQ(get_run(ws, crashed).error, why);
  EXPECT_EQ(get_run(ws, other).status, "interrupted");
  EXPECT_EQ(get_run(ws, other).error, "the training process (pid 4242) ended without finishing the run");
  for (const auto& r : ws.reaped()) EXPECT_EQ(r.pid, r.id == other ? 4242 : 0);
  EXPECT_EQ(get_run(ws, alive).status, "running");
  EXPECT_EQ(get_run(ws, alive).error, "");
}

// Opening a workspace removes what killed processes left half-written in run folders nobody holds
// (a checkpoint's .tmp-step-N, a pruned one's .del-step-N, an atomic write's NAME.tmp-PID of a
// dead process) and lists it; a live run's folder, and a temporary file whose writer lives, are
// left alone.
TEST(Store, OpeningRemovesHalfWrittenFilesOfDeadRuns) {
  auto d = test::temp_dir("cleanup");
  const std::string dead = d + "/ws/runs/dead", live = d + "/ws/runs/live", elsewhere = d + "/elsewhere";
  {
    Workspace ws(d + "/ws");
    create_run(ws, NewRun{"e", "lora", "sft", "/m", "[]", "{}", elsewhere}, "failed");  // a --run-dir outside runs/
  }
  for (const auto& r : {dead, live, elsewhere}) make_dirs(r + "/checkpoints/.tmp-step-000005");
  make_dirs(dead + "/checkpoints/step-000004");
  write_file_atomic(dead + "/checkpoints/step-000004/trainer_state.json", "{}");
  write_file_atomic(dead + "/config.json.tmp-999999999", "half");  // no such pid
  make_dirs(dead + "/checkpoints/.del-step-000002/model");  // a pruned checkpoint, removal cut short
  write_file_atomic(dead + "/checkpoints/.del-step-000002/optimizer.safetensors", "x");
  write_file_atomic(dead + "/metrics.jsonl.tmp-" + std::to_string(::getpid()), "mine");  // a live writer
  RunLock held(live + "/run.lock");
  Workspace ws(d + "/ws");
  EXPECT_FALSE(fs::exists(dead + "/checkpoints/.tmp-step-000005"));
  EXPECT_FALSE(fs::exists(elsewhere + "/checkpoints/.tmp-step-000005"));
  EXPECT_FALSE(fs::exists(dead + "/config.json.tmp-999999999"));
  EXPECT_TRUE(fs::exists(dead + "/checkpoints/step-000004/trainer_state.json"));
  EXPECT_TRUE(fs::exists(dead + "/metrics.jsonl.tmp-" + std::to_string(::getpid())));
  EXPECT_FALSE(fs::exists(dead + "/checkpoints/.del-step-000002"));
  EXPECT_TRUE(fs::exists(live + "/checkpoints/.tmp-step-000005"));
  ASSERT_EQ(ws.cleaned().size(), 4u);
  int removing = 0;
  for (const auto& c : ws.cleaned()) {
    removing += c.find(".del-step-000002, an old checkpoint its process did not finish removing") != std::string::npos;
    EXPECT_NE(c.find("did not finish"), std::string::npos) << c;
  }
  EXPECT_EQ(removing, 1);
}

// Another connection holds the write lock past the busy timeout (an import of millions of rows,
// a schema upgrade): the metrics writer keeps its points and writes them at a later flush instead
// of failing the training run; any other write says so as DbBusy naming the workspace.
TEST(Store, MetricsWaitOutAnotherWritersLock) {
  auto d = test::temp_dir("busy");
  Workspace ws(d + "/ws");
  const int64_t id = create_run(ws, NewRun{"a", "lora", "sft", "/m", "[]", "{}", d + "/ws/runs/a"}, "running");
  ws.db().set_busy_timeout(50);
  MetricsWriter mw(ws, id, 1000, 1e9);
  {
    Db other(ws.db_path());
    other.exec("BEGIN IMMEDIATE");
    mw.add(1, "loss", 2.0);
    mw.add(2, "loss", 1.5);
    EXPECT_NO_THROW(mw.flush());
    EXPECT_EQ(mw.pending(), 2u);
    try {
      rename_run(ws, id, "b");
      ADD_FAILURE() << "a write went through another connection's write lock";
    } catch (const DbBusy& e) {
      EXPECT_NE(std::string(e.what()).find(ws.db_path()), std::string::npos) << e.what();
    }
    other.exec("COMMIT");
  }
  mw.add(3, "loss", 1.0);
  mw.flush();
  EXPECT_EQ(mw.pending(), 0u);
  EXPECT_EQ(run_metric(ws, id, "loss").size(), 3u);
}

// A fatal signal that lands while a thread is inside malloc must still end the process with its
// report: the handler starts the recovering helper without taking any lock (glibc's fork takes
// every malloc arena lock in its atfork handlers, and a process crashing inside malloc deadlocked
// there; a CI run hung on it). Forty processes hammering the allocator from three threads, each
// sent SIGSEGV at a different moment; each must die of SIGSEGV within 10 s.
TEST(Crash, AFatalSignalInsideMallocStillEndsTheProcess) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizer build: malloc is ASan's, not glibc's whose fork-time locks this is about, and a
  // signal landing before the handler is installed is answered by ASan's own (exit 1, not SIGSEGV).
  GTEST_SKIP() << "glibc's malloc is replaced by ASan's in this build";
#endif
  const std::string dir = test::temp_dir("crash-malloc");
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);  // forty "fatal SIGSEGV" lines say nothing
      if (null >= 0) ::dup2(null, 2);
      install_crash_handler("hone-test", "/bin/true");  // the helper: any program that exits
      set_crash_workspace(dir);
      set_crash_run(1);
      auto churn = [](unsigned seed) {
        std::vector<void*> live(64, nullptr);
        for (unsigned i = seed;; i = i * 1103515245u + 12345u) {
          void*& slot = live[(i >> 8) % live.size()];
          std::free(slot);
          slot = std::malloc(16 + (i >> 12) % 200000);  // small (tcache, arena) and large (mmap) blocks
        }
      };
      std::thread a(churn, 1u), b(churn, 2u);
      churn(3u);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + trial % 7 * 4));
    ::kill(pid, SIGSEGV);
    bool hung = false;
    const int st = test::wait_bounded(pid, 10, hung);
    ASSERT_FALSE(hung) << "the process was still alive 10 s after SIGSEGV: the crash handler hung";
    ASSERT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGSEGV);
  }
}

// Five processes write one workspace at once, from its creation on (so they race through the
// schema's creation too): two "training runs" recording metrics and checkpoints, an importer that
// imports and deletes datasets, a labeller labelling and editing rows, and a front end that reopens
// the workspace, lists, reads and saves rows. Each does a few hundred operations; none may see a
// constraint failure or "database is locked", and afterwards every row each wrote is there once.
namespace {

void worker_train(const std::string& ws_dir, int k) {
  Workspace ws(ws_dir);
  const std::string run_dir = ws.runs_dir() + "/w" + std::to_string(k);
  make_dirs(run_dir);
  RunLock lock(run_dir + "/run.lock");
  NewRun nr{"w" + std::to_string(k), "lora", "sft", "/m", "[]", "{}", run_dir};
  const int64_t id = create_run(ws, nr, "queued");
  set_run_lock(ws, id, lock.path());
  set_run_status(ws, id, "running");
  MetricsWriter mw(ws, id, 6, 1e9);
  for (int s = 1; s <= 300; ++s) {
    mw.add(s, "loss", 1.0 / s);
    mw.add(s, "lr", 1e-3);
    if (s % 50 == 0) {
      mw.flush();
      add_artifact(ws, id, "checkpoint", s, run_dir, 1);
    }
  }
  mw.flush();
  finish_run(ws, id, "completed", "", R"({"final_loss":0.1})");
}

void worker_import(const std::string& ws_dir, const std::string& scratch) {
  Workspace ws(ws_dir);
  std::string rows;
  for (int r = 0; r < 10; ++r) rows += json({{"instruction", "q" + std::to_string(r)}, {"output", "a"}}).dump() + "\n";
  const std::string file = write(scratch, "import.jsonl", rows);
  for (int i = 0; i < 60; ++i) {
    const ImportReport rep = import_dataset(ws, file, "imp-" + std::to_string(i), {});
    if (rep.imported != 10) throw Error("import " + std::to_string(i) + " took " + std::to_string(rep.imported) + " rows");
    if (i % 3 == 0) delete_dataset(ws, rep.dataset_id);
  }
}

void worker_label(const std::string& ws_dir, const std::string& scratch) {
  Workspace ws(ws_dir);
  std::string rows;
  for (int r = 0; r < 200; ++r)
    rows += json({{"prompt", "p" + std::to_string(r)}, {"chosen", "good"}, {"rejected", "bad"}}).dump() + "\n";
  const ImportReport rep = import_dataset(ws, write(scratch, "pairs.jsonl", rows), "pairs", {});
  const auto all = read_rows(ws, rep.dataset_id, 0, 200);
  for (const auto& r : all) set_label(ws, r.id, r.position % 2 ? "chosen" : "rejected", "ann");
  for (int i = 0; i < 100; ++i)
    update_row(ws, all[static_cast<size_t>(i)].id,
               json({{"prompt", "edited " + std::to_string(i)}, {"chosen", "good"}, {"rejected", "bad"}}).dump(), "ann");
}

void worker_front_end(const std::string& ws_dir) {
  auto ws = std::make_unique<Workspace>(ws_dir);
  const int64_t saved = create_dataset(*ws, "saved", DatasetKind::Chat, "playground");
  for (int i = 0; i < 150; ++i) {
    if (i % 10 == 0) ws = std::make_unique<Workspace>(ws_dir);  // the pages open it again and again
    (void)list_runs(*ws);
    for (const auto& d : list_datasets(*ws)) (void)read_rows(*ws, d.id, 0, 5);
    ws->reap_dead_runs();
    insert_row(*ws, saved, i,
               json({{"messages", {{{"role", "user"}, {"content", "hi " + std::to_string(i)}}, {{"role", "assistant"}, {"content", "hello"}}}}}).dump(),
               "gui");
  }
}

int64_t count(Workspace& ws, const std::string& sql) {
  Stmt s = ws.db().prepare(sql);
  return s.step() ? s.i64(0) : -1;
}

}  // namespace

TEST(StoreConcurrency, FiveProcessesWriteOneWorkspaceAndLoseNothing) {
  const std::string d = test::temp_dir("concurrent"), ws_dir = d + "/ws";
  std::vector<std::function<void()>> jobs = {
      [&] { worker_train(ws_dir, 1); },         [&] { worker_train(ws_dir, 2); }, [&] { worker_import(ws_dir, d); },
      [&] { worker_label(ws_dir, d); },         [&] { worker_front_end(ws_dir); }};
  std::vector<pid_t> pids;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const pid_t p = ::fork();
    ASSERT_GE(p, 0);
    if (p == 0) {
      int code = 0;
      try {
        jobs[j]();
      } catch (const std::exception& e) {
        std::ofstream(d + "/worker-" + std::to_string(j) + ".err") << e.what();
        code = 1;
      }
      ::_exit(code);
    }
    pids.push_back(p);
  }
  for (size_t j = 0; j < pids.size(); ++j) {
    bool hung = false;
    const int st = test::wait_bounded(pids[j], 240, hung);
    EXPECT_FALSE(hung) << "worker " << j;
    const std::string err = d + "/worker-" + std::to_string(j) + ".err";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "worker " << j << ": " << (file_exists(err) ? read_file(err) : "");
  }
  Workspace ws(ws_dir);
  {
    Stmt s = ws.db().prepare("PRAGMA integrity_check");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(0), "ok");
    Stmt fk = ws.db().prepare("PRAGMA foreign_key_check");
    EXPECT_FALSE(fk.step()) << "dangling reference in " << fk.text(0);
  }
  // Every row written, once.
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM runs WHERE status = 'completed'"), 2);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM metrics"), 2 * 300 * 2);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM artifacts"), 2 * 6);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM datasets WHERE name LIKE 'imp-%'"), 40);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM rows r JOIN datasets d ON d.id = r.dataset_id WHERE d.name LIKE 'imp-%'"), 400);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM labels"), 200);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM rows r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'pairs' AND r.data LIKE '%edited%'"), 100);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM rows r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'saved'"), 150);
  EXPECT_EQ(count(ws, "SELECT COUNT(DISTINCT position) FROM rows r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'saved'"), 150);
  EXPECT_EQ(count(ws, "SELECT COUNT(*) FROM datasets"), 42);
}
