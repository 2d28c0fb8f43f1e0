// The serving layer (core/serve): TextGenerator's replies, and generators over one base sharing a
// single loaded copy of it (the Playground's base beside a LoRA run over that base).
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "model/checkpoint.h"
#include "peft/lora.h"
#include "serve/text_generator.h"
#include "test_support.h"

using namespace hone;

namespace {

struct Folders {
  std::string base, adapter, other_adapter;
};

// A tiny base and two LoRA adapters over it with non-zero B (so that each changes the replies).
const Folders& folders() {
  static const Folders f = [] {
    Folders x;
    const std::string d = test::temp_dir("serve");
    x.base = d + "/base";
    auto r = test::cli("init-model --preset tiny --tokenizer builtin --out " + test::shell_quote(x.base) + " --seed 3");
    if (r.code != 0) throw std::runtime_error("init-model failed: " + r.err);
    for (int k = 0; k < 2; ++k) {
      auto lm = load_model(x.base);
      LoraConfig c;
      c.r = 4;
      c.alpha = 8;
      attach_lora(lm.model, c, 5 + static_cast<uint64_t>(k));
      {
        torch::NoGradGuard ng;
        torch::manual_seed(11 + k);
        for (auto& p : lm.model->named_parameters())
          if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.5);
      }
      const std::string out = d + (k == 0 ? "/adapter" : "/other");
      save_peft_adapter(lm.model, c, x.base, out);
      (k == 0 ? x.adapter : x.other_adapter) = out;
    }
    return x;
  }();
  return f;
}

GenerationSettings greedy() {
  GenerationSettings g;
  g.temperature = 0;
  g.max_new_tokens = 12;
  return g;
}

std::string say(TextGenerator& g) { return g.reply({{"user", "hello there"}}, greedy()).text; }

}  // namespace

// Each reply alone (one model per generator, nothing else loaded), then the same generators side
// by side, opened in both orders: the base and its adapter share one model and still give their
// own replies; a second adapter over the same base gets a model of its own.
TEST(TextGenerator, BaseAndAdapterShareOneModelAndKeepTheirReplies) {
  const auto& f = folders();
  std::string base_alone, tuned_alone, other_alone;
  {
    auto b = TextGenerator::open(f.base);
    base_alone = say(*b);
  }
  {
    auto t = TextGenerator::open(f.base, f.adapter);
    tuned_alone = say(*t);
  }
  {
    auto o = TextGenerator::open(f.base, f.other_adapter);
    other_alone = say(*o);
  }
  ASSERT_NE(base_alone, tuned_alone);  // the adapters do change the replies
  ASSERT_NE(tuned_alone, other_alone);
  for (bool base_first : {true, false}) {
    SCOPED_TRACE(base_first ? "base opened first" : "adapter opened first");
    std::unique_ptr<TextGenerator> b, t;
    if (base_first) {
      b = TextGenerator::open(f.base);
      t = TextGenerator::open(f.base, f.adapter);
    } else {
      t = TextGenerator::open(f.base, f.adapter);
      b = TextGenerator::open(f.base);
    }
    EXPECT_EQ(b->model_identity(), t->model_identity());
    auto o = TextGenerator::open(f.base, f.other_adapter);
    EXPECT_NE(o->model_identity(), t->model_identity());
    // Replies from two threads at once take turns on the shared model.
    std::string rb, rt;
    std::thread x([&] { rb = say(*b); }), y([&] { rt = say(*t); });
    x.join();
    y.join();
    EXPECT_EQ(rb, base_alone);
    EXPECT_EQ(rt, tuned_alone);
    EXPECT_EQ(say(*o), other_alone);
    EXPECT_EQ(say(*b), base_alone);
  }
  // What streams, piece by piece (a window of tokens decoded per step), adds up to the reply.
  {
    auto t = TextGenerator::open(f.base, f.adapter);
    GenerationSettings g = greedy();
    g.max_new_tokens = 40;
    std::string streamed;
    int pieces = 0;
    const auto out = t->reply({{"user", "Ünïcödé 你好 👍🏽 hello"}}, g, [&](const std::string& p) {
      streamed += p;
      ++pieces;
      return true;
    });
    EXPECT_EQ(streamed, out.text);
    EXPECT_GT(pieces, 1);
  }
  // Once every generator over it is gone, the next one loads it afresh, without the adapter.
  auto b2 = TextGenerator::open(f.base);
  EXPECT_EQ(say(*b2), base_alone);
}
