// RLHF tests. Reward models: the Bradley-Terry loss by hand, the score taken at the last real token
// whatever the padding, a reward model that learns a trivially separable preference and ranks
// held-out pairs it never saw, its files in PEFT's SEQ_CLS form, exact resume with the score head,
// `hone-cli reward score`, its export as a PEFT adapter, and the refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "export/export.h"
#include "model/checkpoint.h"
#include "model/reward_head.h"
#include "model/safetensors.h"
#include "serve/reward_scorer.h"
#include "test_support.h"
#include "train/run_config.h"
#include "train/trainer.h"

using namespace hone;
using nlohmann::json;

namespace {

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
  auto r = train(c, {dir, "", [&](const StepMetrics& m) {
                       steps.push_back(m);
                       return Control::Continue;
                     },
                     nullptr});
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
