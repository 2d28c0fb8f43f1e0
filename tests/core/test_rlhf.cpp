// RLHF tests. Reward models: the Bradley-Terry loss by hand, the score taken at the last real token
// whatever the padding, a reward model that learns a trivially separable preference and ranks
// held-out pairs it never saw, its files in PEFT's SEQ_CLS form, exact resume with the score head,
// `hone-cli reward score`, its export as a PEFT adapter, and the refusals. Rule rewards by hand.
// GRPO: group advantages and the clipped objective with its KL term against an independent PyTorch
// script (tests/reference/policy_reference.py), KL 0 when the policy is the reference, rollouts
// reproducible from a seed, one step climbing the advantage-weighted log-likelihood, the metrics of a
// run, and exact resume mid-run. (That GRPO learns a task: hone-cli demo --method grpo.)
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "export/export.h"
#include "model/checkpoint.h"
#include "model/reward_head.h"
#include "model/value_head.h"
#include "model/safetensors.h"
#include "train/reward_scorer.h"
#include "test_support.h"
#include "peft/lora.h"
#include "train/policy_loss.h"
#include "train/rollout.h"
#include "train/rule_reward.h"
#include "train/run_config.h"
#include "train/trainer.h"

using namespace hone;
using nlohmann::json;

namespace {

// All-linear LoRA of rank r (alpha 2r), its B drawn from N(0, b_std) so that the adapter already
// changes the outputs and both of its matrices get gradients.
LoraConfig attach_random_lora(CausalLM& m, int64_t r, double b_std) {
  LoraConfig c;
  c.r = r;
  c.alpha = 2.0 * static_cast<double>(r);
  c.targets = {"all-linear"};
  attach_lora(m, c, 1);
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters())
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, b_std);
  return c;
}

const char* kWords[] = {"apple", "river", "stone", "cloud", "lamp", "garden", "tiger", "piano",
                        "candle", "forest", "mirror", "ocean", "violin", "meadow", "harbor", "pepper"};

struct Fixture {
  std::string dir, model, pairs;
  Fixture() {
    dir = test::temp_dir("rlhf");
    model = dir + "/base";
    auto r = test::run(std::string(HONE_CLI) + " init-model --preset tiny --tokenizer builtin --out " + test::shell_quote(model) +
                       " --seed 3");
    if (r.code != 0) throw std::runtime_error(r.err);
    // Chosen: a description of the word asked about; rejected: a refusal. The first 12 words only:
    // the last 4 are held out for the scorer.
    pairs = dir + "/pairs.jsonl";
    std::ofstream f(pairs);
    for (int i = 0; i < 96; ++i) {
      const std::string w = kWords[i % 12];
      f << json({{"prompt", "Describe the " + w + "."},
                 {"chosen", "The " + w + " is lovely and bright."},
                 {"rejected", i % 2 ? "I refuse to talk about that." : "No."}})
               .dump()
        << "\n";
    }
  }
};

Fixture& fx() {
  static Fixture f;
  return f;
}

RunConfig reward_config() {
  RunConfig c = default_run_config("lora");
  c.name = "rm";
  c.base_model = fx().model;
  c.recipe = "reward";
  c.train_data = {fx().pairs};
  c.batch_size = 8;
  c.lr = 3e-3;
  c.max_steps = 30;
  c.max_seq_len = 64;
  c.schedule = "constant";
  c.lora.r = 8;
  c.lora.alpha = 16;
  c.lora.targets = {"all-linear"};
  c.eval_fraction = 0.1;
  c.eval_every = 30;
  c.seed = 4;
  return c;
}

// Trains `c` in `dir`, keeping every step's metrics (and the log lines, when asked for).
TrainResult train_recording(const RunConfig& c, const std::string& dir, std::vector<StepMetrics>* steps,
                            std::vector<std::string>* logs = nullptr) {
  return train(c, {dir, "", [steps](const StepMetrics& m) {
                     steps->push_back(m);
                     return Control::Continue;
                   },
                   [logs](const std::string& l) {
                     if (logs) logs->push_back(l);
                   }});
}

}  // namespace

TEST(Reward, BradleyTerryLossByHand) {
  auto l = bradley_terry_loss(torch::tensor({1.0f, 0.0f, 2.0f}), torch::tensor({0.0f, 1.0f, 2.0f}));
  EXPECT_NEAR(l[0].item<double>(), 0.31326169, 1e-6);  // log(1 + e^-1)
  EXPECT_NEAR(l[1].item<double>(), 1.31326169, 1e-6);  // log(1 + e^1)
  EXPECT_NEAR(l[2].item<double>(), 0.69314718, 1e-6);  // log 2
}

TEST(Reward, ScoresTheLastRealTokenWhateverThePadding) {
  auto lm = load_model(fx().model);
  attach_score_head(lm.model, 1, 0.5);
  lm.model->eval();
  torch::NoGradGuard ng;
  const std::vector<int64_t> a = {5, 17, 42, 9}, b = {7, 8, 9, 10, 11, 12, 13};
  // Alone, by hand: the hidden state at the last position times the head.
  auto h = lm.model->hidden(torch::tensor(a).unsqueeze(0)).squeeze(0);  // [4, H]
  const double by_hand = (h[3] * score_weight(lm.model)[0]).sum().item<double>();
  // In a right-padded batch next to a longer row.
  auto ids = torch::zeros({2, 7}, torch::kLong), mask = torch::zeros({2, 7}, torch::kLong);
  ids[0].narrow(0, 0, 4).copy_(torch::tensor(a));
  mask[0].narrow(0, 0, 4).fill_(1);
  ids[1].copy_(torch::tensor(b));
  mask[1].fill_(1);
  auto r = reward_scores(lm.model, ids, mask);
  EXPECT_NEAR(r[0].item<double>(), by_hand, 1e-5);
  auto hb = lm.model->hidden(torch::tensor(b).unsqueeze(0)).squeeze(0);
  EXPECT_NEAR(r[1].item<double>(), (hb[6] * score_weight(lm.model)[0]).sum().item<double>(), 1e-5);
}

TEST(Reward, LearnsASeparablePreferenceAndRanksUnseenPairs) {
  RunConfig c = reward_config();
  const std::string dir = test::temp_dir("rm-learn");
  std::vector<StepMetrics> steps;
  auto r = train_recording(c, dir, &steps);
  ASSERT_EQ(r.status, "completed") << r.error;
  const double first = steps.front().loss(), last = steps.back().loss();
  EXPECT_NEAR(first, std::log(2.0), 0.3);  // an untrained head scores both alike
  EXPECT_LT(last, 0.1);
  EXPECT_GE(scalar_value(r.final_scalars, "eval_accuracy", 0), 0.99);
  EXPECT_NEAR(steps.back().get("margin"), steps.back().get("rewards/chosen") - steps.back().get("rewards/rejected"), 1e-6);
  // The files: PEFT's sequence-classification adapter with the head as modules_to_save.
  const json cfg = test::load_json(dir + "/adapter/adapter_config.json");
  EXPECT_EQ(cfg["task_type"], "SEQ_CLS");
  EXPECT_EQ(cfg["modules_to_save"], json::array({"score"}));
  SafetensorsFile st(dir + "/adapter/adapter_model.safetensors");
  const auto* head = st.find("base_model.model.score.weight");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{1, load_model_config(fx().model).hidden_size}));
  // Reloaded through the scorer, it ranks pairs about words it never saw.
  RewardScorer rs(dir);
  for (int i = 12; i < 16; ++i) {
    const std::string w = kWords[i];
    const double good = rs.score({{"user", "Describe the " + w + "."}}, {{"assistant", "The " + w + " is lovely and bright."}});
    const double bad = rs.score({{"user", "Describe the " + w + "."}}, {{"assistant", "I refuse to talk about that."}});
    EXPECT_GT(good, bad + 1.0) << w;
  }
  // It exports as its PEFT adapter (head included); a merged or GGUF model has no place for the head.
  EXPECT_THROW(export_run({dir, "merged", "f32", dir + "-merged"}), Error);
  ExportResult peft = export_run({dir, "peft", "", dir + "-peft"});
  EXPECT_TRUE(peft.check.passed) << peft.check.summary;
  EXPECT_EQ(test::load_json(dir + "-peft/adapter_config.json")["task_type"], "SEQ_CLS");
}

TEST(Reward, ResumeWithTheScoreHeadIsExact) {
  RunConfig c = reward_config();
  c.max_steps = 8;
  c.save_every = 5;
  c.eval_every = 0;
  c.eval_fraction = 0;
  const std::string full_dir = test::temp_dir("rm-resume-full");
  auto full = train(c, {full_dir, "", nullptr, nullptr});
  ASSERT_EQ(full.status, "completed") << full.error;
  const std::string second = test::temp_dir("rm-resume-second");
  auto resumed = train(c, {second, full_dir + "/checkpoints/step-000005", nullptr, nullptr});
  ASSERT_EQ(resumed.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(resumed.losses[i], full.losses[5 + i], 1e-6) << "step " << 6 + i;
  SafetensorsFile a(full_dir + "/adapter/adapter_model.safetensors"), b(second + "/adapter/adapter_model.safetensors");
  const auto* ha = a.find("base_model.model.score.weight");
  const auto* hb = b.find("base_model.model.score.weight");
  ASSERT_TRUE(ha && hb);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.data(*ha)), ha->end - ha->begin),
            std::string(reinterpret_cast<const char*>(b.data(*hb)), hb->end - hb->begin));
}

TEST(Reward, CliScoresTextsAndADataset) {
  RunConfig c = reward_config();
  c.max_steps = 20;
  c.eval_fraction = 0;
  c.eval_every = 0;
  const std::string dir = test::temp_dir("rm-cli");
  ASSERT_EQ(train(c, {dir, "", nullptr, nullptr}).status, "completed");
  const std::string cli = std::string(HONE_CLI) + " reward score --run " + test::shell_quote(dir);
  auto good = test::run(cli + " --prompt 'Describe the ocean.' --response 'The ocean is lovely and bright.' --json");
  auto bad = test::run(cli + " --prompt 'Describe the ocean.' --response 'No.' --json");
  ASSERT_EQ(good.code, 0) << good.err;
  ASSERT_EQ(bad.code, 0) << bad.err;
  EXPECT_GT(json::parse(good.out)["reward"].get<double>(), json::parse(bad.out)["reward"].get<double>());
  EXPECT_EQ(json::parse(good.out)["chat_format"], "chatml");
  // A preference dataset in a workspace: one line per pair, then the accuracy.
  const std::string ws = test::temp_dir("rm-cli-ws");
  auto imp = test::run(std::string(HONE_CLI) + " dataset import " + test::shell_quote(fx().pairs) + " --name pairs --workspace " +
                       test::shell_quote(ws));
  ASSERT_EQ(imp.code, 0) << imp.err;
  auto ds = test::run(cli + " --dataset pairs --limit 10 --json --workspace " + test::shell_quote(ws));
  ASSERT_EQ(ds.code, 0) << ds.err;
  const json last = json::parse(ds.out.substr(ds.out.rfind("\n{") + 1));
  EXPECT_EQ(last["pairs"], 10);
  EXPECT_GE(last["accuracy"].get<double>(), 0.9);
  // Not a reward model: refused by name.
  auto text = test::run(std::string(HONE_CLI) + " reward score --run " + test::shell_quote(fx().dir) + " --text hi");
  EXPECT_NE(text.code, 0);
}

TEST(Reward, RefusesFullFineTuning) {
  json j = reward_config().to_json();
  j["method"] = "full";
  try {
    parse_run_config(j, "rm.json", "");
    ADD_FAILURE() << "a full reward model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LoRA or QLoRA"), std::string::npos) << e.what();
  }
}

// --- rule rewards ---------------------------------------------------------------------------------

TEST(RuleRewards, EachRuleAndTheirWeightedSum) {
  RuleReward r(json::parse(R"([
      {"type": "exact", "weight": 2.0},
      {"type": "regex", "pattern": "^[A-Z]+$", "weight": 0.5},
      {"type": "json", "schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}},
      {"type": "length", "min_chars": 2, "max_chars": 6, "weight": 0.25}])"),
               "test");
  EXPECT_DOUBLE_EQ(r.max_score(), 3.75);
  EXPECT_EQ(r.scores("  GARDEN \n", "GARDEN"), (std::vector<double>{1, 1, 0, 1}));  // trimmed; 6 characters
  EXPECT_DOUBLE_EQ(r.score("  GARDEN \n", "GARDEN"), 2.75);
  EXPECT_EQ(r.scores("garden!", "GARDEN"), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(r.scores(R"({"name": "Ada", "age": 36})", ""), (std::vector<double>{0, 0, 1, 0}));
  EXPECT_EQ(r.scores(R"({"name": "Ada", "age": -1})", ""), (std::vector<double>{0, 0, 0, 0}));  // minimum
  EXPECT_EQ(r.scores(R"({"age": 3})", ""), (std::vector<double>{0, 0, 0, 0}));                 // required
  EXPECT_EQ(r.scores("{not json", "")[2], 0.0);
  EXPECT_EQ(r.scores("", "")[0], 0.0);  // no reference: exact never matches
  EXPECT_EQ(r.scores("héllo", "")[3], 1.0);  // characters, not bytes: 5
  RuleReward ci(json::parse(R"([{"type": "exact", "ignore_case": true}])"), "test");
  EXPECT_DOUBLE_EQ(ci.score("Paris", "paris"), 1.0);
  // Similarity, by hand: 1 - edits / the longer length, over characters.
  RuleReward sim(json::parse(R"([{"type": "similarity", "weight": 2.0}])"), "test");
  EXPECT_DOUBLE_EQ(sim.score(" wupn wupn ", "wupn wupn"), 2.0);       // trimmed, equal
  EXPECT_DOUBLE_EQ(sim.scores("wupn wuvn", "wupn wupn")[0], 1.0 - 1.0 / 9);  // one substitution in 9
  EXPECT_DOUBLE_EQ(sim.scores("kitten", "sitting")[0], 1.0 - 3.0 / 7);  // k->s, e->i, +g
  EXPECT_DOUBLE_EQ(sim.scores("ljon", "kinh")[0], 0.0);  // 4 edits: the shared 'n' is not in place
  EXPECT_DOUBLE_EQ(sim.scores("héllo", "hello")[0], 0.8);               // é is one character
  EXPECT_DOUBLE_EQ(sim.scores("", "abc")[0], 0.0);
  EXPECT_DOUBLE_EQ(sim.scores("abc", "")[0], 0.0);  // no reference
  EXPECT_DOUBLE_EQ(edit_similarity("", ""), 1.0);
  RuleReward sim_ci(json::parse(R"([{"type": "similarity", "ignore_case": true}])"), "test");
  EXPECT_DOUBLE_EQ(sim_ci.score("PARIS", "paris"), 1.0);
  // Mistakes are named with the rule's index.
  for (const char* bad : {R"([{"type": "fuzzy"}])", R"([{"type": "regex"}])", R"([{"type": "regex", "pattern": "(["}])",
                          R"([{"type": "length", "min_chars": 5, "max_chars": 2}])", R"([{"type": "exact", "wieght": 1}])"}) {
    try {
      RuleReward x(json::parse(bad), "cfg.json");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json: rewards[0]"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(json_matches_schema(json::parse("[1, 2]"), json::parse(R"({"type": "array", "items": {"type": "integer"}, "maxItems": 2})")));
  EXPECT_FALSE(json_matches_schema(json::parse(R"({"a": 1, "b": 2})"),
                                   json::parse(R"({"type": "object", "properties": {"a": {}}, "additionalProperties": false})")));
}

// --- GRPO -----------------------------------------------------------------------------------------

namespace {

// A run config the parser must refuse with a message containing `what`.
void refused(const json& k, const std::string& what) {
  try {
    parse_run_config(k, "run.json", "");
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// A reference script's matrix (a JSON list of rows) as a float tensor [rows, cols].
torch::Tensor mat(const json& j) {
  std::vector<float> flat;
  int64_t rows = 0, cols = 0;
  for (const auto& row : j) {
    cols = static_cast<int64_t>(row.size());
    ++rows;
    for (const auto& x : row) flat.push_back(x.get<float>());
  }
  return torch::tensor(flat).view({rows, cols});
}

}  // namespace

TEST(Grpo, ObjectiveMatchesThePyTorchReference) {
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/policy_reference.py")));
  ASSERT_EQ(r.code, 0) << r.err;
  const json ref = json::parse(r.out);
  const int64_t G = ref["G"].get<int64_t>();
  auto adv = group_advantages(torch::tensor(ref["rewards"].get<std::vector<float>>()), G);
  const auto want_adv = ref["advantages"].get<std::vector<double>>();
  for (size_t i = 0; i < want_adv.size(); ++i) EXPECT_NEAR(adv[static_cast<int64_t>(i)].item<double>(), want_adv[i], 1e-5) << i;
  EXPECT_EQ(adv.narrow(0, 3, 3).abs().sum().item<double>(), 0.0);  // a group without spread teaches nothing
  auto logps = mat(ref["logps"]).set_requires_grad(true);
  auto terms = grpo_loss(logps, mat(ref["old"]), mat(ref["ref"]), adv, mat(ref["mask"]), ref["beta"].get<double>(),
                         ref["eps"].get<double>());
  const auto want_seq = ref["per_sequence"].get<std::vector<double>>();
  for (size_t i = 0; i < want_seq.size(); ++i)
    EXPECT_NEAR(terms.per_sequence[static_cast<int64_t>(i)].item<double>(), want_seq[i], 1e-5) << i;
  EXPECT_LT((terms.kl - mat(ref["kl"])).abs().max().item<double>(), 1e-6);
  terms.per_sequence.mean().backward();
  EXPECT_LT((logps.grad() - mat(ref["grad"])).abs().max().item<double>(), 1e-6);
  EXPECT_GT(terms.clipped.sum().item<double>(), 0);  // the inputs exercise the clipping
}

TEST(Grpo, KlIsZeroWhenThePolicyIsTheReference) {
  auto lp = torch::tensor({{-1.0f, -2.0f, -0.5f}, {-0.1f, -3.0f, 0.0f}});
  auto mask = torch::tensor({{1.0f, 1.0f, 1.0f}, {1.0f, 1.0f, 0.0f}});
  auto t = grpo_loss(lp, lp, lp, torch::tensor({1.0f, -1.0f}), mask, 0.5, 0.2);
  EXPECT_EQ(t.kl.abs().sum().item<double>(), 0.0);
  // And through a model: the reference pass (adapters off) of a freshly attached adapter (B = 0).
  auto lm = load_model(fx().model);
  LoraConfig c;
  c.targets = {"all-linear"};
  attach_lora(lm.model, c, 1);
  Rollout r;
  r.prompt = {5, 6, 7};
  r.completion = {8, 9, 10, 11};
  torch::NoGradGuard ng;
  auto pol = completion_logps(lm.model, {r}, 0, torch::kCPU, false);
  set_lora_enabled(lm.model, false);
  auto refp = completion_logps(lm.model, {r}, 0, torch::kCPU, false);
  auto k = grpo_loss(pol.logps, pol.logps, refp.logps, torch::tensor({1.0f}), pol.mask, 0.1, 0.2);
  EXPECT_LT(k.kl.abs().max().item<double>(), 1e-7);
}

TEST(Grpo, CompletionLogProbsAreTheModelsOwn) {
  auto lm = load_model(fx().model);
  lm.model->eval();
  Rollout a, b;
  a.prompt = {5, 6, 7};
  a.completion = {8, 9};
  b.prompt = {11, 12};
  b.completion = {13, 14, 15, 16};
  torch::NoGradGuard ng;
  auto t = completion_logps(lm.model, {a, b}, 0, torch::kCPU, false);
  ASSERT_EQ(t.logps.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(t.mask[0].sum().item<double>(), 2);
  // By hand for row b: log_softmax of the logits at the position before each completion token.
  auto ids = torch::tensor(std::vector<int64_t>{11, 12, 13, 14, 15, 16}).unsqueeze(0);
  auto logp = torch::log_softmax(lm.model->forward(ids).squeeze(0), -1);  // [6, V]
  for (int64_t t2 = 0; t2 < 4; ++t2)
    EXPECT_NEAR(t.logps[1][t2].item<double>(), logp[1 + t2][13 + t2].item<double>(), 1e-5) << t2;
  // Sampled at temperature 0.7: the log-probabilities of the logits divided by 0.7.
  auto cool = completion_logps(lm.model, {a, b}, 0, torch::kCPU, false, false, 0.7);
  auto logp_cool = torch::log_softmax(lm.model->forward(ids).squeeze(0) / 0.7, -1);  // [6, V]
  for (int64_t t2 = 0; t2 < 4; ++t2)
    EXPECT_NEAR(cool.logps[1][t2].item<double>(), logp_cool[1 + t2][13 + t2].item<double>(), 1e-5) << t2;
  EXPECT_GT((cool.logps[1] - t.logps[1]).abs().max().item<double>(), 1e-3);
}

namespace {

RolloutSettings rollout_settings(int64_t group, int64_t max_new_tokens, double temperature) {
  RolloutSettings s;
  s.group = group;
  s.max_new_tokens = max_new_tokens;
  s.temperature = temperature;
  return s;
}

}  // namespace

TEST(Grpo, RolloutsAreReproducibleFromASeed) {
  auto lm = load_model(fx().model);
  RolloutSettings s = rollout_settings(4, 10, 1.0);
  s.stop_ids = {3};
  auto once = [&](uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    std::vector<std::vector<int32_t>> out;
    for (const auto& r : sample_group(lm.model, {5, 6, 7}, s, gen)) out.push_back(r.completion);
    return out;
  };
  const auto a = once(7), b = once(7), c = once(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const auto& x : a) EXPECT_LE(x.size(), 10u);
  // The group's rows differ from each other (sampled, not copied).
  EXPECT_FALSE(a[0] == a[1] && a[1] == a[2] && a[2] == a[3]);
}

// Several prompts of different lengths in one batch, padded on the left: each row continues as its
// prompt alone does. Greedy, the completions are those of one prompt at a time; and each token's
// log-probability under the model (completion_logps, unpadded) is the one the batch sampled from.
TEST(Grpo, PromptsOfDifferentLengthsSampleInOneBatchAsTheyDoAlone) {
  auto lm = load_model(fx().model);
  RolloutSettings s = rollout_settings(2, 8, 0.0);
  const std::vector<std::vector<int32_t>> prompts = {{5, 6, 7}, {9, 10, 11, 12, 13, 14}, {20}};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto batch = sample_prompts(lm.model, prompts, s, gen);
  ASSERT_EQ(batch.size(), 6u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto alone = sample_group(lm.model, prompts[i], s, gen);
    for (size_t g = 0; g < 2; ++g) {
      EXPECT_EQ(batch[i * 2 + g].prompt, prompts[i]);
      EXPECT_EQ(batch[i * 2 + g].completion, alone[g].completion) << "prompt " << i;
      EXPECT_EQ(batch[i * 2 + g].completion.size(), 8u);
    }
  }
  // Sampled at temperature 1: the batch's rows are distributed as their own prompt's. Checked
  // through the first token, whose log-probability must match the prompt's own next-token
  // distribution (a shifted position or a leaked pad would change it).
  s.temperature = 1.0;
  auto sampled = sample_prompts(lm.model, prompts, s, gen);
  torch::NoGradGuard ng;
  lm.model->eval();
  auto lp = completion_logps(lm.model, sampled, 0, torch::kCPU, false);
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> p64(prompts[i].begin(), prompts[i].end());
    auto logits = lm.model->forward(torch::tensor(p64).unsqueeze(0)).squeeze(0);  // [P, V]
    auto logp = torch::log_softmax(logits[static_cast<int64_t>(p64.size()) - 1], -1);
    const int64_t first = sampled[i * 2].completion[0];
    EXPECT_NEAR(lp.logps[static_cast<int64_t>(i) * 2][0].item<double>(), logp[first].item<double>(), 1e-5);
  }
}

namespace {

// A small GRPO run over a random model: the reward is only there to be computed.
RunConfig grpo_config() {
  RunConfig c = default_run_config("lora");
  c.name = "grpo";
  c.base_model = fx().model;
  c.recipe = "grpo";
  c.train_data = {fx().dir + "/prompts.jsonl"};
  if (!file_exists(c.train_data[0])) {
    std::ofstream f(c.train_data[0]);
    for (int i = 0; i < 64; ++i)
      f << json({{"instruction", std::string("Name the ") + kWords[i % 16] + "."}, {"output", kWords[i % 16]}}).dump() << "\n";
  }
  // About half of a random model's 6-token completions are at most 10 characters: groups differ.
  c.rewards = json::parse(R"([{"type": "length", "max_chars": 10}])");
  c.num_generations = 8;
  c.max_new_tokens = 6;
  c.batch_size = 4;
  c.lr = 5e-3;
  c.beta = 0.04;
  c.schedule = "constant";
  c.max_seq_len = 64;
  c.lora.r = 8;
  c.lora.alpha = 16;
  c.lora.dropout = 0;
  c.lora.targets = {"all-linear"};
  c.seed = 2;
  return c;
}

}  // namespace

TEST(Grpo, OneStepClimbsTheAdvantageWeightedLogLikelihood) {
  // Rollout, log-probs and objective composed as the recipe composes them, with rewards set by
  // hand. One small plain gradient step on the loss must raise what GRPO maximises to first order,
  // sum_i A_i * mean_t log p(token_t of completion i): by about lr x |gradient|^2. (Single
  // completions may move either way: they share the parameters.)
  auto lm = load_model(fx().model);
  attach_random_lora(lm.model, 8, 0.02);
  RolloutSettings s;
  s.group = 6;
  s.max_new_tokens = 5;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto rows = sample_group(lm.model, {5, 6, 7, 8}, s, gen);
  auto adv = group_advantages(torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 1.0f}), 6);
  auto objective = [&](const TokenLogps& t) { return (adv * (t.logps.sum(1) / t.mask.sum(1))).sum().item<double>(); };
  auto before = completion_logps(lm.model, rows, 0, torch::kCPU, false);
  const double j0 = objective(before);
  auto t = grpo_loss(before.logps, before.logps.detach(), {}, adv, before.mask, 0.0, 0.2);
  t.per_sequence.mean().backward();
  const double lr = 1e-3;
  double g2 = 0;
  {
    torch::NoGradGuard ng;
    for (auto& p : lm.model->parameters())
      if (p.grad().defined()) {
        g2 += p.grad().pow(2).sum().item<double>();
        p.sub_(p.grad() * lr);
      }
  }
  ASSERT_GT(g2, 0);
  torch::NoGradGuard ng;
  const double j1 = objective(completion_logps(lm.model, rows, 0, torch::kCPU, false));
  // The loss is -J/N (N = 6 completions): the step changes J by lr * N * |grad|^2 to first order.
  EXPECT_GT(j1 - j0, 0);
  EXPECT_NEAR(j1 - j0, lr * 6 * g2, 0.2 * lr * 6 * g2);
}

TEST(Grpo, ARunReportsItsMetrics) {
  RunConfig c = grpo_config();
  c.max_steps = 3;
  c.eval_fraction = 0.1;
  c.eval_every = 3;
  std::vector<StepMetrics> steps;
  auto r = train_recording(c, test::temp_dir("grpo-metrics"), &steps);
  ASSERT_EQ(r.status, "completed") << r.error;
  for (const char* m : {"reward", "reward_std", "kl", "entropy", "clip_ratio", "policy_loss", "completion_length"})
    EXPECT_FALSE(std::isnan(steps.back().get(m))) << m;
  EXPECT_GT(steps.back().get("kl"), 0.0);  // after two updates the policy has left the reference
  EXPECT_GT(steps.back().get("entropy"), 0.0);
  EXPECT_LE(steps.back().get("completion_length"), static_cast<double>(c.max_new_tokens));
  EXPECT_GE(steps.back().get("reward"), 0.0);
  EXPECT_FALSE(std::isnan(steps.back().get("eval_reward")));  // greedy completions of the held-out prompts
}

TEST(Grpo, ResumeMidRunIsExact) {
  RunConfig c = grpo_config();
  c.max_steps = 6;
  c.save_every = 4;
  const std::string full_dir = test::temp_dir("grpo-resume-full");
  auto full = train(c, {full_dir, "", nullptr, nullptr});
  ASSERT_EQ(full.status, "completed") << full.error;
  auto resumed = train(c, {test::temp_dir("grpo-resume-second"), full_dir + "/checkpoints/step-000004", nullptr, nullptr});
  ASSERT_EQ(resumed.status, "completed") << resumed.error;
  ASSERT_EQ(resumed.losses.size(), 2u);
  // The rollouts are sampled again from the restored generator: same completions, same rewards.
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(resumed.losses[i], full.losses[4 + i], 1e-6) << "step " << 5 + i;
  EXPECT_NEAR(scalar_value(resumed.final_scalars, "reward"), scalar_value(full.final_scalars, "reward"), 1e-9);
}

TEST(Grpo, TakesItsRewardFromATrainedRewardModel) {
  // A reward model of the fixture's pairs (descriptions beat refusals) scores GRPO's completions.
  RunConfig rm = reward_config();
  rm.max_steps = 10;
  rm.eval_fraction = 0;
  rm.eval_every = 0;
  const std::string rm_dir = test::temp_dir("grpo-rm-reward");
  ASSERT_EQ(train(rm, {rm_dir, "", nullptr, nullptr}).status, "completed");
  RunConfig c = grpo_config();
  c.rewards = json::array();
  c.reward_model = rm_dir;
  c.max_steps = 2;
  std::vector<StepMetrics> steps;
  auto r = train_recording(c, test::temp_dir("grpo-rm"), &steps);
  ASSERT_EQ(r.status, "completed") << r.error;
  // Real-valued scores: a group's completions differ, so their spread is not 0 as with 0/1 rules
  // that none of a random model's completions meets.
  EXPECT_GT(steps[0].get("reward_std"), 0.0);
  EXPECT_NE(steps[0].get("reward"), 0.0);
}

TEST(Grpo, StartingFromAnAdapterMakesItTheReference) {
  // A first run moves an adapter away from the base; a second starts from it with beta > 0. Its
  // first step samples from that adapter and compares with it: the KL is 0. (With the adapters
  // switched off as the reference it would be the distance to the base.)
  RunConfig a = grpo_config();
  a.max_steps = 3;
  const std::string first = test::temp_dir("grpo-init-first");
  ASSERT_EQ(train(a, {first, "", nullptr, nullptr}).status, "completed");
  RunConfig b = grpo_config();
  b.max_steps = 1;
  b.init_adapter = first + "/adapter";
  std::vector<StepMetrics> steps;
  std::vector<std::string> logs;
  auto r = train_recording(b, test::temp_dir("grpo-init-second"), &steps, &logs);
  ASSERT_EQ(r.status, "completed") << r.error;
  EXPECT_LT(std::abs(steps[0].get("kl")), 1e-7);
  bool said = false;
  for (const auto& l : logs) said |= l.find("reference: the starting adapter") != std::string::npos;
  EXPECT_TRUE(said);
  // The same start with the bare base as the reference is measurably away from it.
  auto lm = load_model(fx().model);
  load_peft_adapter(lm.model, first + "/adapter");
  Rollout ro;
  ro.prompt = {5, 6, 7};
  ro.completion = {8, 9, 10, 11};
  torch::NoGradGuard ng;
  auto pol = completion_logps(lm.model, {ro}, 0, torch::kCPU, false);
  set_lora_enabled(lm.model, false);
  auto base = completion_logps(lm.model, {ro}, 0, torch::kCPU, false);
  EXPECT_GT((pol.logps - base.logps).abs().max().item<double>(), 1e-4);
}

TEST(Grpo, ConfigRefusals) {
  json j = grpo_config().to_json();
  json k = j;
  k["rewards"] = json::array();
  refused(k, "needs \"rewards\"");
  k = j;
  k["num_generations"] = 1;
  refused(k, "num_generations");
  k = j;
  k["method"] = "full";
  refused(k, "LoRA or QLoRA");
  k = j;
  k["rewards"] = json::parse(R"([{"type": "regex", "pattern": 3}])");
  refused(k, "rewards[0]");
}

// --- PPO ------------------------------------------------------------------------------------------

TEST(Ppo, TokenRewardsGaeAndTheKlControllerByHand) {
  // Rewards: -0.1 x (old - ref) per token, and the score on the last real token.
  auto mask = torch::tensor({{1.0f, 1.0f, 1.0f}, {1.0f, 1.0f, 0.0f}});
  auto r = ppo_token_rewards(torch::tensor({1.0f, 2.0f}), torch::tensor({{-1.0f, -2.0f, -3.0f}, {-0.5f, -1.0f, 0.0f}}),
                             torch::tensor({{-1.5f, -2.0f, -2.0f}, {-0.5f, -0.5f, 0.0f}}), mask, 0.1);
  auto want_r = torch::tensor({{-0.05f, 0.0f, 1.1f}, {0.0f, 2.05f, 0.0f}});
  EXPECT_LT((r - want_r).abs().max().item<double>(), 1e-6) << r;
  // GAE with gamma 0.9, lambda 0.5 (gamma x lambda = 0.45), worked by hand; the second row's
  // padding (reward 5, value 9) must not leak in.
  //   row 1, rewards [0, 0, 1], values [0.5, 0.6, 0.8]:
  //     t2: delta = 1 - 0.8 = 0.2                A = 0.2
  //     t1: delta = 0.9 x 0.8 - 0.6 = 0.12       A = 0.12 + 0.45 x 0.2 = 0.21
  //     t0: delta = 0.9 x 0.6 - 0.5 = 0.04       A = 0.04 + 0.45 x 0.21 = 0.1345
  //   row 2, rewards [0, 2], values [1.0, 1.5]:
  //     t1: delta = 2 - 1.5 = 0.5                A = 0.5
  //     t0: delta = 0.9 x 1.5 - 1.0 = 0.35       A = 0.35 + 0.45 x 0.5 = 0.575
  auto g = gae(torch::tensor({{0.0f, 0.0f, 1.0f}, {0.0f, 2.0f, 5.0f}}), torch::tensor({{0.5f, 0.6f, 0.8f}, {1.0f, 1.5f, 9.0f}}),
               mask, 0.9, 0.5);
  auto want_a = torch::tensor({{0.1345f, 0.21f, 0.2f}, {0.575f, 0.5f, 0.0f}});
  auto want_ret = torch::tensor({{0.6345f, 0.81f, 1.0f}, {1.575f, 2.0f, 0.0f}});
  EXPECT_LT((g.advantages - want_a).abs().max().item<double>(), 1e-6) << g.advantages;
  EXPECT_LT((g.returns - want_ret).abs().max().item<double>(), 1e-6) << g.returns;
  // Whitened over the five real tokens: mean 0, unbiased std 1, padding 0.
  auto w = whiten(g.advantages, mask);
  EXPECT_NEAR(w.masked_select(mask > 0).mean().item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(w.masked_select(mask > 0).std().item<double>(), 1.0, 1e-4);
  EXPECT_EQ(w[1][2].item<double>(), 0.0);
  // Adaptive KL: kl 9 against target 6 is 50% over, clipped to 20%; 64 sequences of a 10000 horizon.
  EXPECT_NEAR(adaptive_kl_coef(0.1, 9.0, 6.0, 64, 10000), 0.1 * (1 + 0.2 * 64 / 10000.0), 1e-12);
  EXPECT_NEAR(adaptive_kl_coef(0.1, 5.4, 6.0, 100, 1000), 0.1 * (1 - 0.1 * 0.1), 1e-12);
}

TEST(Ppo, ObjectiveMatchesThePyTorchReference) {
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/ppo_reference.py")));
  ASSERT_EQ(r.code, 0) << r.err;
  const json ref = json::parse(r.out);
  auto close = [](const torch::Tensor& a, const torch::Tensor& b, double tol) { return (a - b).abs().max().item<double>() < tol; };
  const auto mask = mat(ref["mask"]), old = mat(ref["old"]), old_v = mat(ref["old_values"]);
  auto rewards = ppo_token_rewards(torch::tensor(ref["scores"].get<std::vector<float>>()), old, mat(ref["ref"]), mask,
                                   ref["kl_coef"].get<double>());
  EXPECT_TRUE(close(rewards, mat(ref["rewards"]), 1e-6)) << rewards;
  auto g = gae(rewards, old_v, mask, ref["gamma"].get<double>(), ref["lambda"].get<double>());
  EXPECT_TRUE(close(g.advantages, mat(ref["advantages"]), 1e-5)) << g.advantages;
  EXPECT_TRUE(close(g.returns, mat(ref["returns"]), 1e-5)) << g.returns;
  auto adv = whiten(g.advantages, mask);
  EXPECT_TRUE(close(adv, mat(ref["whitened"]), 1e-5)) << adv;
  auto logps = mat(ref["logps"]).set_requires_grad(true), values = mat(ref["values"]).set_requires_grad(true);
  auto t = ppo_loss(logps, old, values, old_v, adv, g.returns, mask, ref["eps"].get<double>(), ref["value_clip"].get<double>());
  EXPECT_TRUE(close(t.policy, mat(ref["policy"]), 1e-5));
  EXPECT_TRUE(close(t.value, mat(ref["value"]), 1e-5));
  EXPECT_TRUE(close(t.clipped, mat(ref["clipped"]), 0.5));
  EXPECT_GT(t.clipped.sum().item<double>(), 0);        // the inputs exercise the policy clipping
  EXPECT_GT(t.value_clipped.sum().item<double>(), 0);  // and the value clipping
  auto loss = (t.policy.sum() + ref["value_coef"].get<double>() * t.value.sum()) / mask.sum();
  EXPECT_NEAR(loss.item<double>(), ref["loss"].get<double>(), 1e-6);
  loss.backward();
  EXPECT_TRUE(close(logps.grad(), mat(ref["grad_logps"]), 1e-6)) << logps.grad();
  EXPECT_TRUE(close(values.grad(), mat(ref["grad_values"]), 1e-6)) << values.grad();
}

TEST(Ppo, ValuesAreTheHeadOnTheHiddenStateThatPredictsEachToken) {
  auto lm = load_model(fx().model);
  attach_value_head(lm.model);
  torch::Tensor w, b;
  for (auto& p : lm.model->named_parameters()) {
    if (p.key() == "v_head.summary.weight") w = p.value();
    if (p.key() == "v_head.summary.bias") b = p.value();
  }
  ASSERT_TRUE(w.defined() && b.defined());
  EXPECT_EQ(w.abs().sum().item<double>(), 0.0);  // zero-initialised: values start at 0
  {
    torch::NoGradGuard ng;
    w.normal_(0, 0.1);
    b.fill_(0.25);
  }
  Rollout ro;
  ro.prompt = {5, 6, 7};
  ro.completion = {8, 9};
  Rollout shorter = ro;
  shorter.completion = {8};
  auto t = completion_logps(lm.model, {ro, shorter}, 0, torch::kCPU, false, /*values=*/true);  // [2, 2]
  torch::NoGradGuard ng;
  auto h = lm.model->hidden(torch::tensor({5, 6, 7, 8, 9}, torch::kLong).unsqueeze(0)).squeeze(0);  // [5, H]
  // Token 8 is sampled in the state after the prompt (position 2), token 9 after 8 (position 3).
  for (int64_t k = 0; k < 2; ++k) {
    const double want = (h[2 + k] * w[0]).sum().item<double>() + 0.25;
    EXPECT_NEAR(t.values[0][k].item<double>(), want, 1e-4) << k;
  }
  EXPECT_NEAR(t.values[1][0].item<double>(), t.values[0][0].item<double>(), 1e-4);
  EXPECT_EQ(t.values[1][1].item<double>(), 0.0);  // off the mask
}

// The critic adapter (value_model "adapter"): its values are the head on the hidden states of the
// base with the critic's matrices in place of the policy's, computed here by a second model that
// holds them as its ordinary adapter; the policy's log-probs ignore the critic; the value loss
// reaches the critic and the head only; and a checkpointed backward recomputes with the critic.
TEST(Ppo, TheCriticAdapterIsASecondModelOnTheSameBase) {
  auto lm = load_model(fx().model);
  const LoraConfig lc = attach_random_lora(lm.model, 4, 0.1);
  attach_value_head(lm.model);
  {
    torch::NoGradGuard ng;
    for (auto& p : lm.model->named_parameters())
      if (p.key().rfind("v_head.", 0) == 0) p.value().normal_(0, 0.1);
  }
  EXPECT_GT(attach_critic_lora(lm.model), 0);
  Rollout ro;
  ro.prompt = {5, 6, 7};
  ro.completion = {8, 9, 10};
  Rollout shorter = ro;
  shorter.completion = {8};
  auto before = completion_logps(lm.model, {ro, shorter}, 0, torch::kCPU, false);
  // The critic starts as the policy's copy; move it away, and check the policy has not moved.
  std::map<std::string, torch::Tensor> critic;
  {
    torch::NoGradGuard ng;
    for (auto& p : lm.model->named_parameters())
      if (p.key().find(".critic_") != std::string::npos) {
        p.value().add_(torch::randn_like(p.value()) * 0.1);
        critic[p.key()] = p.value().detach().clone();
      }
  }
  ASSERT_FALSE(critic.empty());
  auto after = completion_logps(lm.model, {ro, shorter}, 0, torch::kCPU, false);
  EXPECT_TRUE(torch::equal(before.logps, after.logps));

  torch::Tensor w, b;
  for (auto& p : lm.model->named_parameters()) {
    if (p.key() == "v_head.summary.weight") w = p.value();
    if (p.key() == "v_head.summary.bias") b = p.value();
  }
  auto v = critic_values(lm.model, {ro, shorter}, 0, torch::kCPU, false);  // [2, 3]
  // The reference: a second model whose policy adapter holds the critic's matrices.
  auto ref = load_model(fx().model);
  attach_lora(ref.model, lc, 1);
  {
    torch::NoGradGuard ng;
    for (auto& p : ref.model->named_parameters()) {
      std::string k = p.key();
      for (auto [from, to] : {std::make_pair(".lora_A.", ".critic_A."), std::make_pair(".lora_B.", ".critic_B.")})
        if (auto at = k.find(from); at != std::string::npos) k.replace(at, std::string(from).size(), to);
      if (critic.count(k)) p.value().copy_(critic[k]);
    }
    auto h = ref.model->hidden(torch::tensor({5, 6, 7, 8, 9, 10}, torch::kLong).unsqueeze(0)).squeeze(0);  // [6, H]
    for (int64_t k = 0; k < 3; ++k) {
      const double want = (h[2 + k] * w[0]).sum().item<double>() + b[0].item<double>();
      EXPECT_NEAR(v[0][k].item<double>(), want, 1e-5) << k;
    }
    EXPECT_NEAR(v[1][0].item<double>(), v[0][0].item<double>(), 1e-5);
    EXPECT_EQ(v[1][1].item<double>(), 0.0);  // off the mask
  }
  // Gradients: the critic and the head, never the policy's adapter.
  auto grads = [&](bool checkpointing) {
    lm.model->zero_grad();
    lm.model->gradient_checkpointing = checkpointing;
    lm.model->train();
    critic_values(lm.model, {ro, shorter}, 0, torch::kCPU, false).pow(2).sum().backward();
    std::map<std::string, torch::Tensor> g;
    for (auto& p : lm.model->named_parameters())
      if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
    return g;
  };
  auto plain = grads(false), ckpt = grads(true);
  size_t critic_grads = 0;
  for (auto& [k, g] : plain) {
    EXPECT_EQ(k.find(".lora_"), std::string::npos) << k;
    if (k.find(".critic_A.") != std::string::npos && g.abs().sum().item<double>() > 0) ++critic_grads;
  }
  EXPECT_GT(critic_grads, 0u);
  EXPECT_TRUE(plain.count("v_head.summary.weight"));
  // With each layer recomputed in the backward pass, the same gradients (the recompute must run
  // the critic's matrices, not the policy's).
  ASSERT_EQ(plain.size(), ckpt.size());
  for (auto& [k, g] : plain) {
    ASSERT_TRUE(ckpt.count(k)) << k;
    EXPECT_TRUE(torch::allclose(g, ckpt[k], 1e-5, 1e-6)) << k;
  }
}

namespace {

RunConfig ppo_config() {
  RunConfig c = grpo_config();
  c.name = "ppo";
  c.recipe = "ppo";
  c.num_generations = 2;
  c.ppo_epochs = 3;
  c.lr = 2e-3;
  c.beta = 0.05;
  c.lora.dropout = 0.1;  // PPO turns it off: the first update's ratio must be exactly 1
  return c;
}

}  // namespace

TEST(Ppo, ARunReportsItsMetricsAndKeepsTheValueHeadBesideTheAdapter) {
  RunConfig c = ppo_config();
  c.value_model = "adapter";
  c.max_steps = 3;
  c.eval_fraction = 0.1;
  c.eval_every = 3;
  std::vector<StepMetrics> steps;
  const std::string dir = test::temp_dir("ppo-metrics");
  auto r = train_recording(c, dir, &steps);
  ASSERT_EQ(r.status, "completed") << r.error;
  ASSERT_EQ(steps.size(), 3u);
  for (const char* m : {"reward", "kl", "kl_coef", "entropy", "value", "completion_length", "policy_loss", "value_loss",
                        "clip_fraction", "value_clip_fraction", "approx_kl", "eval_reward"})
    EXPECT_FALSE(std::isnan(steps.back().get(m))) << m;
  EXPECT_EQ(steps[0].get("kl"), 0.0);        // the first rollouts come from the reference itself
  EXPECT_GT(steps.back().get("kl"), 0.0);    // later ones from a policy that has moved
  EXPECT_GT(steps.back().get("approx_kl"), 0.0);  // later updates move away from the sampling policy
  EXPECT_EQ(steps.back().get("kl_coef"), 0.05);   // fixed without kl_target
  EXPECT_GT(steps.back().get("value_loss"), 0.0);
  EXPECT_LE(steps.back().get("completion_length"), static_cast<double>(c.max_new_tokens));
  // The value head is saved beside the policy adapter, which stays a plain causal-LM adapter.
  SafetensorsFile vh(dir + "/adapter/value_head.safetensors");
  ASSERT_NE(vh.find("v_head.summary.weight"), nullptr);
  ASSERT_NE(vh.find("v_head.summary.bias"), nullptr);
  EXPECT_EQ(vh.find("v_head.summary.weight")->shape, (std::vector<int64_t>{1, load_model_config(fx().model).hidden_size}));
  SafetensorsFile ad(dir + "/adapter/adapter_model.safetensors");
  for (const auto& t : ad.tensors()) EXPECT_EQ(t.name.find("v_head"), std::string::npos) << t.name;
  EXPECT_EQ(read_json_file(dir + "/adapter/adapter_config.json")["task_type"], "CAUSAL_LM");
  // The critic adapter is in the value model's file, not the adapter.
  size_t critic_tensors = 0;
  for (const auto& t : vh.tensors()) critic_tensors += t.name.find(".critic_") != std::string::npos;
  for (const auto& t : ad.tensors()) EXPECT_EQ(t.name.find("critic"), std::string::npos) << t.name;
  EXPECT_GT(critic_tensors, 0u);
  auto lm = load_model(fx().model);
  EXPECT_NO_THROW(load_peft_adapter(lm.model, dir + "/adapter"));
  attach_value_head(lm.model);
  attach_critic_lora(lm.model);
  load_value_head(lm.model, dir + "/adapter");
  bool trained = false;
  double critic_vs_policy = 0;
  std::map<std::string, torch::Tensor> params;
  for (auto& p : lm.model->named_parameters()) params[p.key()] = p.value();
  for (auto& [k, t] : params) {
    if (k == "v_head.summary.weight") trained = t.abs().sum().item<double>() > 0;
    if (auto at = k.find(".critic_B."); at != std::string::npos)
      critic_vs_policy += (t - params.at(k.substr(0, at) + ".lora_B." + k.substr(at + 10))).abs().sum().item<double>();
  }
  EXPECT_TRUE(trained);
  EXPECT_GT(critic_vs_policy, 0.0);  // the critic trained apart from the policy
  // The value head alone ("head") keeps the file to the head.
  c.value_model = "head";
  c.eval_every = 0;
  const std::string head_dir = test::temp_dir("ppo-head");
  auto rh = train_recording(c, head_dir, &steps);
  ASSERT_EQ(rh.status, "completed") << rh.error;
  SafetensorsFile hf(head_dir + "/adapter/value_head.safetensors");
  EXPECT_EQ(hf.tensors().size(), 2u);
}

TEST(Ppo, ResumeMidRunIsExactWithTheAdaptiveKlCoefficient) {
  RunConfig c = ppo_config();
  c.value_model = "adapter";  // the critic's adapter is restored from value_head.safetensors too
  c.max_steps = 5;
  c.save_every = 3;
  c.kl_target = 0.01;  // far below what the policy reaches: the coefficient climbs every step
  c.kl_horizon = 50;
  const std::string full_dir = test::temp_dir("ppo-resume-full");
  std::vector<StepMetrics> full_steps, resumed_steps;
  auto full = train_recording(c, full_dir, &full_steps);
  ASSERT_EQ(full.status, "completed") << full.error;
  EXPECT_GT(full_steps.back().get("kl_coef"), full_steps[1].get("kl_coef"));
  auto st = read_json_file(full_dir + "/checkpoints/step-000003/trainer_state.json");
  EXPECT_NEAR(st["recipe_state"]["kl_coef"].get<double>(), full_steps[3].get("kl_coef"), 1e-12);
  auto resumed = train(c, {test::temp_dir("ppo-resume-second"), full_dir + "/checkpoints/step-000003",
                           [&](const StepMetrics& m) {
                             resumed_steps.push_back(m);
                             return Control::Continue;
                           },
                           nullptr});
  ASSERT_EQ(resumed.status, "completed") << resumed.error;
  ASSERT_EQ(resumed.losses.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(resumed.losses[i], full.losses[3 + i], 1e-6) << "step " << 4 + i;
    for (const char* m : {"reward", "kl", "kl_coef", "value_loss", "approx_kl"})
      EXPECT_NEAR(resumed_steps[i].get(m), full_steps[3 + i].get(m), 1e-6) << m << " at step " << 4 + i;
  }
}

TEST(Ppo, StoppingPartWayThroughAStepRollsItsUpdatesBack) {
  // A step takes ppo_epochs optimizer updates. Stopped in its second update, the run keeps the
  // checkpoint of the last finished step: its adapter, value head and optimizer state must be
  // exactly those of an uninterrupted run at that step, not partly updated.
  RunConfig c = ppo_config();
  c.max_steps = 2;
  c.save_every = 1;
  // Stop requests are polled in forward passes and between micro-batches; those with gradients on
  // happen only in the updates, the same number in each.
  int64_t done = 0;
  std::vector<int64_t> grad_polls(3, 0);
  auto counting = [&] {
    if (at::GradMode::is_enabled()) ++grad_polls[static_cast<size_t>(done)];
    return false;
  };
  TrainOptions o;
  o.on_progress = [&](const StepMetrics&) {
    ++done;
    return Control::Continue;
  };
  const std::string full_dir = test::temp_dir("ppo-stop-full");
  o.run_dir = full_dir;
  o.stop_requested = counting;
  auto full = train(c, o);
  ASSERT_EQ(full.status, "completed") << full.error;
  // The first step's polls: one before its rollouts, then the same number in each update. (The
  // poll after a step's report falls into the next step's count.)
  ASSERT_EQ((grad_polls[0] - 1) % c.ppo_epochs, 0) << grad_polls[0];
  const int64_t per_update = (grad_polls[0] - 1) / c.ppo_epochs;
  ASSERT_GT(per_update, 2);
  done = 0;
  int64_t polls = 0;
  // In the second step: the poll after step 1's report, the one before the rollouts, the first
  // update's, then the second update's second poll (inside its forward pass).
  auto stop_in_second_update = [&] {
    if (done == 1 && at::GradMode::is_enabled()) ++polls;
    return done == 1 && polls > 2 + per_update + 1;
  };
  const std::string dir = test::temp_dir("ppo-stop");
  o.run_dir = dir;
  o.stop_requested = stop_in_second_update;
  auto r = train(c, o);
  EXPECT_EQ(r.status, "cancelled");
  EXPECT_EQ(r.steps, 1);
  EXPECT_FALSE(file_exists(dir + "/checkpoints/step-000002"));
  for (const char* f : {"adapter/adapter_model.safetensors", "adapter/value_head.safetensors", "optimizer.safetensors"})
    EXPECT_EQ(read_file(dir + "/checkpoints/step-000001/" + f), read_file(full_dir + "/checkpoints/step-000001/" + f)) << f;
}

TEST(Ppo, ConfigRefusals) {
  json j = ppo_config().to_json();
  json k = j;
  k["ppo_epochs"] = 0;
  refused(k, "ppo_epochs");
  k = j;
  k["value_model"] = "separate";
  refused(k, "value_model");
  k = j;
  k["gae_lambda"] = 1.5;
  refused(k, "gae_lambda");
  k = j;
  k["kl_target"] = 6;
  k["beta"] = 0;
  refused(k, "kl_target");
  k = j;
  k["method"] = "full";
  refused(k, "LoRA or QLoRA");
  k = j;
  k["rewards"] = json::array();
  refused(k, "ppo needs \"rewards\"");
  k = j;
  k["num_generations"] = 1;  // one completion per prompt is fine for PPO (the value head is the baseline)
  EXPECT_NO_THROW(parse_run_config(k, "run.json", ""));
}
