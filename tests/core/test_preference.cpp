// Preference recipes: DPO (each loss type), ORPO and KTO losses against an independent PyTorch
// script (tests/reference/preference_reference.py); reference log-probs with adapters off equal the
// base model's; prompt masking of pairs; the precomputed reference gives the live losses; resume
// mid-DPO is exact; ORPO and KTO train; a dataset of the wrong kind fails naming both kinds.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "data/pairs.h"
#include "model/checkpoint.h"
#include "peft/lora.h"
#include "test_support.h"
#include "train/batches.h"
#include "train/logps.h"
#include "train/preference_loss.h"
#include "train/trainer.h"

using namespace hone;
using nlohmann::json;

namespace {

std::string q(const std::string& s) { return test::shell_quote(s); }

at::Tensor vec(const json& a) {
  std::vector<double> v = a.get<std::vector<double>>();
  return at::tensor(v, at::kDouble);
}

void expect_close(const at::Tensor& got, const json& want, double tol, const std::string& what) {
  auto w = want.get<std::vector<double>>();
  ASSERT_EQ(got.numel(), static_cast<int64_t>(w.size())) << what;
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), w[i], tol) << what << " [" << i << "]";
}

const json& reference() {
  static json j;
  if (!j.is_null()) return j;
  auto r = test::run(std::string(HONE_PYTHON) + " " + q(test::source("tests/reference/preference_reference.py")));
  if (r.code) throw std::runtime_error("reference script failed: " + r.err);
  j = json::parse(r.out);
  return j;
}

// A small model with the built-in tokenizer and preference data about word case, made once.
struct Fixture {
  std::string dir, model, pairs, chat, ratings;
};
const Fixture& fixture() {
  static Fixture f;
  if (!f.dir.empty()) return f;
  f.dir = test::temp_dir("preference");
  f.model = f.dir + "/base";
  auto r = test::run(std::string(HONE_CLI) + " init-model --preset small --tokenizer builtin --out " + q(f.model) + " --seed 3");
  if (r.code) throw std::runtime_error(r.err);
  const char* words[] = {"table", "model", "chair", "green", "apple", "river", "stone", "light", "plant", "cloud", "bread", "glass"};
  std::string pairs, chat, ratings;
  int i = 0;
  for (const char* w : words) {
    std::string up(w);
    for (auto& c : up) c = static_cast<char>(c - 'a' + 'A');
    pairs += json({{"prompt", std::string("Shout the word ") + w + "."}, {"chosen", up + "!"}, {"rejected", std::string(w) + "."}}).dump() + "\n";
    chat += json({{"instruction", std::string("Shout ") + w}, {"output", up}}).dump() + "\n";
    ratings += json({{"prompt", std::string("Shout the word ") + w + "."}, {"completion", i % 2 ? up + "!" : std::string(w)},
                     {"label", i % 2 == 1}}).dump() + "\n";
    ++i;
  }
  f.pairs = f.dir + "/pairs.jsonl";
  f.chat = f.dir + "/chat.jsonl";
  f.ratings = f.dir + "/ratings.jsonl";
  write_file_atomic(f.pairs, pairs);
  write_file_atomic(f.chat, chat);
  write_file_atomic(f.ratings, ratings);
  return f;
}

RunConfig dpo_config(const std::string& recipe = "dpo") {
  RunConfig c = default_run_config("lora");
  c.recipe = recipe;
  c.base_model = fixture().model;
  c.train_data = {recipe == "kto" ? fixture().ratings : fixture().pairs};
  c.chat_template = "chatml";
  c.batch_size = 4;
  c.lr = 5e-3;
  c.schedule = "constant";
  c.lora.r = 8;
  c.lora.alpha = 16;
  c.lora.dropout = 0.0;
  c.max_steps = 6;
  c.max_seq_len = 64;
  c.bucket_by_length = false;
  return c;
}

}  // namespace

TEST(PreferenceLoss, DpoEachLossTypeMatchesTheReference) {
  const json& ref = reference();
  const auto& in = ref["inputs"];
  auto pc = vec(in["pi_c"]), pr = vec(in["pi_r"]), rc = vec(in["ref_c"]), rr = vec(in["ref_r"]);
  auto lc = vec(in["lengths_c"]), lr = vec(in["lengths_r"]);
  const double beta = in["beta"], eps = in["label_smoothing"];
  for (const char* lt : {"sigmoid", "robust", "hinge", "ipo"}) {
    const std::string t = lt;
    DpoTerms d = t == "ipo" ? dpo_loss(pc / lc, pr / lr, rc / lc, rr / lr, beta, t, 0.0)
                            : dpo_loss(pc, pr, rc, rr, beta, t, t == "hinge" ? 0.0 : eps);
    expect_close(d.losses, ref["dpo"][t]["losses"], 1e-12, t + " losses");
    expect_close(d.chosen_rewards, ref["dpo"][t]["chosen_rewards"], 1e-12, t + " chosen rewards");
    expect_close(d.rejected_rewards, ref["dpo"][t]["rejected_rewards"], 1e-12, t + " rejected rewards");
  }
  EXPECT_THROW(dpo_loss(pc, pr, rc, rr, beta, "exo", 0.0), Error);
}

TEST(PreferenceLoss, DpoSigmoidByHand) {
  // One pair with h = 2: L = -log sigmoid(0.2) = log(1 + e^-0.2).
  auto t = dpo_loss(at::tensor({-1.0}, at::kDouble), at::tensor({-3.0}, at::kDouble), at::tensor({-2.0}, at::kDouble),
                    at::tensor({-2.0}, at::kDouble), 0.1, "sigmoid", 0.0);
  EXPECT_NEAR(t.losses.item<double>(), std::log1p(std::exp(-0.2)), 1e-12);
  EXPECT_NEAR(t.chosen_rewards.item<double>(), 0.1, 1e-12);
  EXPECT_NEAR(t.rejected_rewards.item<double>(), -0.1, 1e-12);
}

TEST(PreferenceLoss, OrpoMatchesTheReference) {
  const json& ref = reference();
  const auto& in = ref["inputs"];
  auto avg_c = vec(in["pi_c"]) / vec(in["lengths_c"]), avg_r = vec(in["pi_r"]) / vec(in["lengths_r"]);
  OrpoTerms o = orpo_odds_ratio(avg_c, avg_r, in["beta"].get<double>());
  expect_close(o.losses, ref["orpo"]["losses"], 1e-12, "orpo losses");
  expect_close(o.ratio, ref["orpo"]["ratio"], 1e-12, "orpo ratio");
  expect_close(o.log_odds, ref["orpo"]["log_odds"], 1e-12, "orpo log odds");
}

TEST(PreferenceLoss, KtoMatchesTheReference) {
  const json& k = reference()["kto"];
  const auto& in = k["inputs"];
  auto d = in["desirable"].get<std::vector<bool>>();
  auto des = at::empty({static_cast<int64_t>(d.size())}, at::kBool);
  for (size_t i = 0; i < d.size(); ++i) des[static_cast<int64_t>(i)] = static_cast<bool>(d[i]);
  KtoTerms t = kto_loss(vec(in["pi"]), vec(in["ref"]), des, vec(in["pi_kl"]), vec(in["ref_kl"]), 0.1,
                        in["desirable_weight"].get<double>(), in["undesirable_weight"].get<double>());
  expect_close(t.losses, k["losses"], 1e-12, "kto losses");
  expect_close(t.rewards, k["rewards"], 1e-12, "kto rewards");
  EXPECT_NEAR(t.kl, k["kl"].get<double>(), 1e-12);
}

TEST(PreferenceData, PromptTokensAreMasked) {
  auto tok = load_tokenizer(fixture().model);
  auto s = tokenize_completion(*tok, ChatFormat::ChatML, {{"user", "Shout the word table."}}, {{"assistant", "TABLE!"}}, 512);
  auto head = tokenize_chat(*tok, ChatFormat::ChatML, {{"user", "Shout the word table."}}, true);
  ASSERT_GT(s.ids.size(), head.ids.size());
  for (size_t i = 0; i < head.ids.size(); ++i) EXPECT_EQ(s.loss_mask[i], 0) << "prompt token " << i << " has loss";
  std::vector<int32_t> done;
  for (size_t i = 0; i < s.ids.size(); ++i)
    if (s.loss_mask[i]) done.push_back(s.ids[i]);
  // Exactly the completion and its end-of-turn marker.
  EXPECT_EQ(tok->decode(done, false).rfind("TABLE!<|im_end|>", 0), 0u) << tok->decode(done, false);
  // Cut short: what fits of the completion keeps its mask; nothing of it fitting leaves none.
  auto cut = tokenize_completion(*tok, ChatFormat::ChatML, {{"user", "Shout the word table."}}, {{"assistant", "TABLE!"}},
                                 static_cast<int64_t>(head.ids.size()));
  for (auto m : cut.loss_mask) EXPECT_EQ(m, 0);
}

TEST(PreferenceData, WrongKindNamesBothKinds) {
  try {
    read_preference_pairs(fixture().chat, "dpo");
    FAIL() << "chat rows were accepted as preference pairs";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(fixture().chat), std::string::npos) << m;
    EXPECT_NE(m.find("chat"), std::string::npos) << m;
    EXPECT_NE(m.find("preference pairs"), std::string::npos) << m;
  }
  RunConfig c = dpo_config();
  c.train_data = {fixture().chat};
  EXPECT_THROW(train(c, {test::temp_dir("wrongkind"), "", nullptr, nullptr}), Error);
}

TEST(PreferenceData, RatingsReadWithLinesAndFromPairs) {
  auto r = read_ratings(fixture().ratings);
  ASSERT_EQ(r.size(), 12u);
  EXPECT_FALSE(r[0].desirable);
  EXPECT_TRUE(r[1].desirable);
  EXPECT_NE(r[1].source.find(":2"), std::string::npos);
  auto u = read_ratings(fixture().pairs);  // pairs unpaired: a desirable and an undesirable rating each
  ASSERT_EQ(u.size(), 24u);
  EXPECT_TRUE(u[0].desirable);
  EXPECT_FALSE(u[1].desirable);
  const std::string bad = test::temp_dir("badrating") + "/r.jsonl";
  write_file_atomic(bad, R"({"prompt":"a","completion":"b","label":true})" "\n" R"({"prompt":"a","completion":"b","label":"yes"})" "\n");
  try {
    read_ratings(bad);
    FAIL() << "a string label was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":2: label"), std::string::npos) << e.what();
  }
}

TEST(PreferenceRef, AdaptersOffGiveTheBaseModelsLogProbs) {
  auto tok = load_tokenizer(fixture().model);
  auto base = load_model(fixture().model), tuned = load_model(fixture().model);
  LoraConfig lc;
  lc.targets = {"all-linear"};
  attach_lora(tuned.model, lc, 1);
  {
    at::NoGradGuard ng;  // non-zero B, so that the adapters change the outputs
    for (auto& p : tuned.model->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
  }
  std::vector<Sequence> seqs = {
      tokenize_completion(*tok, ChatFormat::ChatML, {{"user", "Shout the word table."}}, {{"assistant", "TABLE!"}}, 64),
      tokenize_completion(*tok, ChatFormat::ChatML, {{"user", "Shout the word river."}}, {{"assistant", "river."}}, 64)};
  Batch b = collate(seqs, {0, 1}, 0);
  at::NoGradGuard ng;
  auto want = sequence_logps(base.model, b, at::kCPU, false).logps;
  auto on = sequence_logps(tuned.model, b, at::kCPU, false).logps;
  set_lora_enabled(tuned.model, false);
  auto off = sequence_logps(tuned.model, b, at::kCPU, false).logps;
  set_lora_enabled(tuned.model, true);
  EXPECT_TRUE(at::allclose(off, want, 1e-5, 1e-5)) << off << want;
  EXPECT_GT((on - want).abs().max().item<double>(), 1e-3) << "the adapters changed nothing; the test proves nothing";
  // The log-prob is a sum over completion tokens only: recomputed by hand from the logits.
  auto logits = base.model->forward(b.ids, b.attention_mask);
  auto lsm = at::log_softmax(logits, -1);
  double by_hand = 0;
  for (int64_t t = 1; t < b.ids.size(1); ++t)
    if (b.labels[0][t].item<int64_t>() != -100) by_hand += lsm[0][t - 1][b.labels[0][t].item<int64_t>()].item<double>();
  EXPECT_NEAR(want[0].item<double>(), by_hand, 1e-4);
}

// Prefix sharing (pair_sequence_logps) against the plain pass: three pairs whose prompts differ in
// length and whose completions differ in length and in their first tokens; log-probs, token counts
// and every adapter gradient equal to 1e-5 (of its largest entry), on a GQA reference checkpoint and on one with sliding
// windows and soft-capping (Gemma 2); a batch without a shared prompt falls back.
TEST(PreferenceRef, PrefixSharingEqualsThePlainPassInValuesAndGradients) {
  for (const std::string name : {"llama_gqa_llama3rope_f32", "gemma2_softcap_sliding_f32"}) {
    SCOPED_TRACE(name);
    const std::string dir = std::string(HONE_TEST_WORK) + "/ref/" + name;
    auto lm = load_model(dir);
    LoraConfig lc;
    lc.targets = {"all-linear"};
    attach_lora(lm.model, lc, 2);
    {
      at::NoGradGuard ng;
      for (auto& p : lm.model->named_parameters())
        if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
    }
    const int64_t V = lm.model->config.vocab_size;
    // Rows: chosen 0..2, rejected 0..2; prompt lengths 5, 9, 2; completions of 1 to 7 tokens.
    const std::vector<std::vector<int64_t>> prompt = {{3, 14, 15, 92, 65}, {35, 89, 79, 32, 38, 46, 26, 43, 38}, {27, 18}};
    const std::vector<std::vector<int64_t>> chosen = {{5, 9, 2, 6}, {5, 3, 5, 8, 9, 7, 9}, {3}}, rejected = {{8, 4, 6}, {2, 6, 4}, {3, 3, 8, 3, 2}};
    const int64_t T = 16;
    auto ids = at::zeros({6, T}, at::kLong), am = at::zeros({6, T}, at::kLong), labels = at::full({6, T}, -100, at::kLong);
    for (int64_t r = 0; r < 6; ++r) {
      const auto& pr = prompt[static_cast<size_t>(r % 3)];
      const auto& co = r < 3 ? chosen[static_cast<size_t>(r)] : rejected[static_cast<size_t>(r - 3)];
      int64_t t = 0;
      for (auto x : pr) ids[r][t] = x % V, am[r][t++] = 1;
      for (auto x : co) ids[r][t] = x % V, labels[r][t] = x % V, am[r][t++] = 1;
    }
    Batch b;
    b.ids = ids;
    b.attention_mask = am;
    b.labels = labels;
    auto grads = [&](bool share) {
      lm.model->zero_grad();
      SeqLogps s = share ? pair_sequence_logps(lm.model, b, at::kCPU, false) : sequence_logps(lm.model, b, at::kCPU, false);
      (s.logps * at::arange(1, 7, at::kFloat)).sum().backward();  // a different weight per row
      std::vector<at::Tensor> out = {s.logps.detach(), s.tokens, s.logits_mean};
      for (auto& p : lm.model->parameters())
        if (p.requires_grad()) out.push_back(p.grad().clone());
      return out;
    };
    const auto plain = grads(false), shared = grads(true);
    ASSERT_EQ(plain.size(), shared.size());
    EXPECT_TRUE(at::allclose(plain[0], shared[0], 1e-5, 1e-5)) << plain[0] << shared[0];
    EXPECT_TRUE(at::equal(plain[1], shared[1]));
    EXPECT_TRUE(at::allclose(plain[2], shared[2], 1e-5, 1e-5));
    double worst = 0;  // relative to each gradient's largest entry
    for (size_t k = 3; k < plain.size(); ++k)
      worst = std::max(worst, (plain[k] - shared[k]).abs().max().item<double>() / std::max(1e-12, plain[k].abs().max().item<double>()));
    EXPECT_LT(worst, 1e-5);
    EXPECT_GT(plain[3].abs().max().item<double>(), 1e-4);  // the gradients are not all zero
  }
  // No shared prompt (the two rows of a pair differ from the first token): the plain pass.
  auto lm = load_model(fixture().model);
  Batch b;
  b.ids = at::tensor({1, 2, 3, 4, 5, 6}, at::kLong).view({2, 3});
  b.attention_mask = at::ones({2, 3}, at::kLong);
  b.labels = b.ids.clone();
  at::NoGradGuard ng;
  EXPECT_TRUE(at::equal(pair_sequence_logps(lm.model, b, at::kCPU, false).logps, sequence_logps(lm.model, b, at::kCPU, false).logps));
}

TEST(PreferenceTrain, PrecomputedReferenceGivesTheLiveLosses) {
  RunConfig c = dpo_config();
  c.max_steps = 4;
  auto live = train(c, {test::temp_dir("dpo-live"), "", nullptr, nullptr});
  c.precompute_ref_log_probs = true;
  const std::string d = test::temp_dir("dpo-pre");
  auto pre = train(c, {d, "", nullptr, nullptr});
  ASSERT_EQ(live.status, "completed") << live.error;
  ASSERT_EQ(pre.status, "completed") << pre.error;
  EXPECT_TRUE(file_exists(d + "/reference_logps.json"));
  ASSERT_EQ(live.losses.size(), pre.losses.size());
  for (size_t i = 0; i < live.losses.size(); ++i) EXPECT_NEAR(pre.losses[i], live.losses[i], 1e-5) << "step " << i + 1;
  // The first step's loss is log 2 for every loss type's sigmoid: policy == reference before any update.
  EXPECT_NEAR(live.losses[0], std::log(2.0), 1e-5);
}

TEST(PreferenceTrain, DpoLearnsAndReportsTrlMetrics) {
  RunConfig c = dpo_config();
  c.max_steps = 12;
  std::vector<StepMetrics> steps;
  auto r = train(c, {test::temp_dir("dpo-learn"), "", [&](const StepMetrics& m) {
                       steps.push_back(m);
                       return Control::Continue;
                     }, nullptr});
  ASSERT_EQ(r.status, "completed") << r.error;
  ASSERT_EQ(steps.size(), 12u);
  for (const char* n : {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                        "logps/rejected", "logits/chosen", "logits/rejected", "loss", "lr", "grad_norm"})
    EXPECT_TRUE(steps.back().has(n)) << n;
  EXPECT_LT(r.losses.back(), r.losses.front() - 0.05);
  EXPECT_GT(steps.back().get("rewards/margins"), 0.0);
  // Margin = chosen - rejected, and the loss is the batch mean of -log sigmoid(margin) (beta folded in).
  EXPECT_NEAR(steps.back().get("rewards/margins"), steps.back().get("rewards/chosen") - steps.back().get("rewards/rejected"), 1e-6);
}

TEST(PreferenceTrain, ResumeMidDpoIsExact) {
  RunConfig c = dpo_config();
  c.max_steps = 8;
  c.save_every = 3;
  c.grad_accum = 2;
  c.batch_size = 2;
  const std::string full_dir = test::temp_dir("dpo-resume-full");
  auto full = train(c, {full_dir, "", nullptr, nullptr});
  ASSERT_EQ(full.status, "completed") << full.error;
  auto resumed = train(c, {test::temp_dir("dpo-resume-second"), full_dir + "/checkpoints/step-000006", nullptr, nullptr});
  ASSERT_EQ(resumed.losses.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(resumed.losses[i], full.losses[6 + i], 1e-6) << "step " << 7 + i;
}

TEST(PreferenceTrain, OrpoAndKtoTrain) {
  for (const char* recipe : {"orpo", "kto"}) {
    RunConfig c = dpo_config(recipe);
    c.max_steps = 10;
    StepMetrics last;  // holds every name any step reported (a KTO batch may lack one class)
    std::vector<std::string> logs;
    auto r = train(c, {test::temp_dir(std::string("pref-") + recipe), "", [&](const StepMetrics& m) {
                         for (const auto& x : m.scalars) set_scalar(last.scalars, x.name, x.value);
                         return Control::Continue;
                       }, [&](const std::string& s) { logs.push_back(s); }});
    ASSERT_EQ(r.status, "completed") << recipe << ": " << r.error;
    EXPECT_LT(r.losses.back(), r.losses.front()) << recipe;
    if (std::string(recipe) == "orpo") {
      for (const char* n : {"nll_loss", "log_odds_ratio", "log_odds_chosen", "rewards/chosen", "rewards/margins"}) EXPECT_TRUE(last.has(n)) << n;
    } else {
      for (const char* n : {"kl", "rewards/chosen", "rewards/rejected"}) EXPECT_TRUE(last.has(n)) << n;
      bool counted = false;
      for (const auto& l : logs) counted |= l.find("6 desirable and 6 undesirable") != std::string::npos;
      EXPECT_TRUE(counted);
    }
  }
}

TEST(PreferenceTrain, KtoWarnsWhenClassesAreImbalanced) {
  RunConfig c = dpo_config("kto");
  c.max_steps = 1;
  c.desirable_weight = 3.0;  // 3 * 6 / (1 * 6) = 3 > 4/3
  std::vector<std::string> logs;
  train(c, {test::temp_dir("kto-imbalance"), "", nullptr, [&](const std::string& s) { logs.push_back(s); }});
  bool warned = false;
  for (const auto& l : logs) warned |= l.find("imbalanced") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(PreferenceTrain, FullFineTuningUsesAFrozenCopy) {
  RunConfig c = default_run_config("full");
  RunConfig d = dpo_config();
  c.recipe = "dpo";
  c.base_model = d.base_model;
  c.train_data = d.train_data;
  c.chat_template = "chatml";
  c.max_steps = 3;
  c.lr = 1e-4;
  c.max_seq_len = 64;
  auto r = train(c, {test::temp_dir("dpo-full"), "", nullptr, nullptr});
  ASSERT_EQ(r.status, "completed") << r.error;
  EXPECT_NEAR(r.losses[0], std::log(2.0), 1e-5);  // policy == frozen reference at step 1
  EXPECT_LT(r.losses.back(), r.losses.front());
}

TEST(PreferenceTrain, AStartingAdapterIsTheReference) {
  RunConfig c = dpo_config();
  c.max_steps = 4;
  const std::string first = test::temp_dir("dpo-first");
  auto a = train(c, {first, "", nullptr, nullptr});
  ASSERT_EQ(a.status, "completed") << a.error;
  // Continuing from that adapter: the policy equals the reference at step 1, so the loss is log 2;
  // had the reference been the base model, the trained adapter would already have a margin.
  c.init_adapter = first + "/adapter";
  c.max_steps = 2;
  const std::string second = test::temp_dir("dpo-second");
  std::vector<std::string> logs;
  auto b = train(c, {second, "", nullptr, [&](const std::string& s) { logs.push_back(s); }});
  ASSERT_EQ(b.status, "completed") << b.error;
  EXPECT_NEAR(b.losses[0], std::log(2.0), 1e-5);
  EXPECT_LT(a.losses.back(), std::log(2.0) - 0.01) << "the first run learnt nothing; the test proves nothing";
  EXPECT_TRUE(file_exists(second + "/reference_logps.json"));
  bool said = false;
  for (const auto& l : logs) said |= l.find("the starting adapter, frozen") != std::string::npos;
  EXPECT_TRUE(said);
}
