// Chat templates: renderings equal the strings of hf-compat.md §3 exactly; detection from real
// tokenizer_config.json files; the assistant mask covers exactly the replies and their end token.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "test_support.h"
#include "common/files.h"
#include "tokenizer/chat_template.h"

using namespace hone;

namespace {
const std::vector<ChatMessage> kConv = {
    {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
const std::vector<ChatMessage> kOne = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}};
std::string render(ChatFormat f, const std::vector<ChatMessage>& m, bool gen) { return render_chat(f, m, gen).text; }
std::vector<std::string> span_texts(const RenderedChat& r) {
  std::vector<std::string> v;
  for (auto [b, e] : r.assistant_spans) v.push_back(r.text.substr(b, e - b));
  return v;
}
}  // namespace

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render(ChatFormat::Llama3, kOne, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>"
            "\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
  std::vector<ChatMessage> q = {{"user", "U"}};
  EXPECT_EQ(render(ChatFormat::Llama3, q, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, ChatML) {
  EXPECT_EQ(render(ChatFormat::ChatML, kOne, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n");
  std::vector<ChatMessage> q = {{"user", "U"}};
  EXPECT_EQ(render(ChatFormat::ChatML, q, true), "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Mistral) {
  std::vector<ChatMessage> m = {{"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  EXPECT_EQ(render(ChatFormat::Mistral, m, true), "<s>[INST] U1 [/INST]A1</s>[INST] U2 [/INST]");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render(ChatFormat::Llama2, kConv, true),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(render(ChatFormat::Zephyr, kOne, false), "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\nA</s>\n");
}

TEST(ChatTemplate, Phi3) {
  // Phi-3's turns close with <|end|>; its checkpoints' template is recognised by that marker.
  EXPECT_EQ(render(ChatFormat::Phi3, kOne, false), "<|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\nA<|end|>\n");
  EXPECT_EQ(span_texts(render_chat(ChatFormat::Phi3, kOne, false)), (std::vector<std::string>{"A<|end|>"}));
  EXPECT_EQ(detect_chat_format(read_file(test::source("tests/data/chat_templates/phi-3.jinja"))), ChatFormat::Phi3);
  EXPECT_EQ(detect_chat_format(read_file(test::source("tests/data/chat_templates/zephyr.jinja"))), ChatFormat::Zephyr);
  EXPECT_EQ(end_of_turn_tokens(ChatFormat::Phi3, "<|endoftext|>"), (std::vector<std::string>{"<|end|>", "<|endoftext|>"}));
}

TEST(ChatTemplate, Gemma) {
  std::vector<ChatMessage> m = {{"user", "U"}, {"assistant", "A"}};
  EXPECT_EQ(render(ChatFormat::Gemma, m, false), "<bos><start_of_turn>user\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n");
  EXPECT_EQ(render(ChatFormat::Gemma, kOne, false),
            "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n");
}

TEST(ChatTemplate, AlpacaForBaseModels) {
  std::vector<ChatMessage> m = {{"user", "Add 2 and 3."}, {"assistant", "5"}};
  EXPECT_EQ(render(ChatFormat::Alpaca, m, false),
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\nAdd 2 and 3.\n\n### Response:\n5</s>\n\n");
}

TEST(ChatTemplate, AssistantSpansCoverReplyAndEndToken) {
  auto r = render_chat(ChatFormat::ChatML, kConv, true);
  ASSERT_EQ(r.assistant_spans.size(), 1u);
  auto [b, e] = r.assistant_spans[0];
  EXPECT_EQ(r.text.substr(b, e - b), "A1<|im_end|>");
}

TEST(ChatTemplate, DetectedFromRealTokenizerConfigs) {
  EXPECT_EQ(detect_chat_format(load_tokenizer_config(test::shared("tokenizers/qwen3")).chat_template), ChatFormat::ChatML);
  EXPECT_EQ(detect_chat_format(load_tokenizer_config(test::shared("tokenizers/gemma3")).chat_template), ChatFormat::Gemma);
  EXPECT_EQ(detect_chat_format(load_tokenizer_config(test::shared("tokenizers/mistral")).chat_template), ChatFormat::Alpaca);
  EXPECT_EQ(detect_chat_format("{{ '<|start_header_id|>' }}"), ChatFormat::Llama3);
  EXPECT_EQ(detect_chat_format("{% if x %}<<SYS>>{% endif %}[INST]"), ChatFormat::Llama2);
  EXPECT_EQ(detect_chat_format("[INST] {{ m }} [/INST]"), ChatFormat::Mistral);
  EXPECT_EQ(detect_chat_format("<|user|>\n<|assistant|>"), ChatFormat::Zephyr);
}

TEST(ChatTemplate, MaskSelectsExactlyTheAssistantTokens) {
  struct Case {
    const char* tok;
    ChatFormat f;
    const char* want;  // decoded masked tokens
  };
  for (const auto& c : {Case{"qwen3", ChatFormat::ChatML, "Fine, thanks!<|im_end|>Bye.<|im_end|>"},
                        Case{"gemma3", ChatFormat::Gemma, "Fine, thanks!<end_of_turn>Bye.<end_of_turn>"},
                        Case{"mistral", ChatFormat::Mistral, "Fine, thanks!</s>Bye.</s>"}}) {
    auto tok = load_tokenizer(test::shared(std::string("tokenizers/") + c.tok));
    std::vector<ChatMessage> m = {{"user", "How are you?"}, {"assistant", "Fine, thanks!"}, {"user", "Bye"}, {"assistant", "Bye."}};
    auto ct = tokenize_chat(*tok, c.f, m, false);
    ASSERT_EQ(ct.ids.size(), ct.assistant_mask.size());
    std::vector<int32_t> sel;
    for (size_t i = 0; i < ct.ids.size(); ++i)
      if (ct.assistant_mask[i]) sel.push_back(ct.ids[i]);
    std::string got;
    for (auto id : sel) got += tok->decode({id});
    // SentencePiece-style pieces carry their leading space; compare without spaces introduced there.
    std::string want = c.want;
    auto strip = [](std::string s) {
      s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
      return s;
    };
    EXPECT_EQ(strip(got), strip(want)) << c.tok;
    // The rendering round-trips (Mistral's legacy tokenizer adds a space after <s>, as in HF).
    if (c.f != ChatFormat::Mistral) EXPECT_EQ(tok->decode(ct.ids), ct.rendered.text) << c.tok;
  }
}

TEST(ChatTemplate, RolesAreValidated) {
  std::vector<ChatMessage> bad = {{"user", "x"}, {"robot", "y"}};
  try {
    render_chat(ChatFormat::ChatML, bad, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("message 2"), std::string::npos);
  }
  std::vector<ChatMessage> late_system = {{"user", "x"}, {"system", "y"}};
  EXPECT_THROW(render_chat(ChatFormat::ChatML, late_system, false), Error);
}

// ---- The checkpoint's own template, executed by the Jinja engine (tokenizer/jinja.h)

namespace {
TokenizerConfig config_with(const std::string& tmpl, const std::string& bos = "", const std::string& eos = "") {
  TokenizerConfig c;
  c.chat_template = tmpl;
  c.bos_token = bos;
  c.eos_token = eos;
  return c;
}
std::string shared_template(const std::string& fam) {
  return test::load_json(test::shared("tokenizers/" + fam + "/tokenizer_config.json")).at("chat_template").get<std::string>();
}
const std::vector<ChatMessage> kTwoTurns = {
    {"system", "You are terse."}, {"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "  And 3+3?  "}, {"assistant", " 6\n"}};
}  // namespace

TEST(ChatTemplate, AutoExecutesTheCheckpointsTemplate) {
  // Qwen2.5 adds a default system prompt that the family rendering (ChatML) does not have.
  const std::string qwen25 = read_file(test::source("tests/data/chat_templates/qwen2.5-instruct.jinja"));
  ChatTemplate t = resolve_chat_template(config_with(qwen25, "", "<|im_end|>"));
  ASSERT_TRUE(t.is_jinja());
  EXPECT_EQ(t.name(), "checkpoint");
  EXPECT_EQ(t.family, ChatFormat::ChatML);
  const std::string text = render_chat(t, {{"user", "Hi"}}, true).text;
  EXPECT_EQ(text,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  // A family name still overrides it; without a template, auto falls back to Alpaca.
  EXPECT_FALSE(resolve_chat_template(config_with(qwen25), "chatml").is_jinja());
  EXPECT_EQ(resolve_chat_template(config_with("")).family, ChatFormat::Alpaca);
  EXPECT_THROW(resolve_chat_template(config_with(""), "checkpoint"), Error);
  EXPECT_THROW(resolve_chat_template(config_with(qwen25), "nosuch"), Error);
  // A template that does not parse is an error naming its line and column.
  try {
    resolve_chat_template(config_with("{% for m in messages %}\n{{ m.content + }}{% endfor %}"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, JinjaAssistantSpansByHand) {
  // Each reply's content as the template printed it (trimmed by Gemma 3 and Llama 3.2, as it is by
  // Qwen3), plus the end-of-turn token after it.
  const ChatTemplate qwen3 = resolve_chat_template(config_with(shared_template("qwen3"), "", "<|im_end|>"));
  EXPECT_EQ(span_texts(render_chat(qwen3, kTwoTurns, false)), (std::vector<std::string>{"4<|im_end|>", " 6\n<|im_end|>"}));
  const ChatTemplate gemma3 = resolve_chat_template(config_with(shared_template("gemma3"), "<bos>", "<eos>"));
  EXPECT_EQ(span_texts(render_chat(gemma3, kTwoTurns, false)), (std::vector<std::string>{"4<end_of_turn>", "6<end_of_turn>"}));
  const ChatTemplate llama = resolve_chat_template(
      config_with(read_file(test::source("tests/data/chat_templates/llama-3.2-instruct.jinja")), "<|begin_of_text|>", "<|eot_id|>"));
  EXPECT_EQ(span_texts(render_chat(llama, kTwoTurns, false)), (std::vector<std::string>{"4<|eot_id|>", "6<|eot_id|>"}));
  // Qwen3 moves thinking out of the content: the last reply is everything after the generation
  // prompt (its thinking included); the earlier one, whose thinking the template drops, is its answer.
  const std::vector<ChatMessage> think = {{"user", "Is 7 prime?"},
                                          {"assistant", "<think>\nDivisors of 7: 1 and 7.\n</think>\n\nYes."},
                                          {"user", "And 9?"},
                                          {"assistant", "<think>\n9 = 3 * 3.\n</think>\n\nNo."}};
  EXPECT_EQ(span_texts(render_chat(qwen3, think, false)),
            (std::vector<std::string>{"Yes.<|im_end|>", "<think>\n9 = 3 * 3.\n</think>\n\nNo.<|im_end|>"}));
  // A template with {% generation %} blocks marks its own replies.
  const ChatTemplate gen = resolve_chat_template(config_with(
      "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}!{% endgeneration %}"
      "{% else %}{{ m.content }}{% endif %}{% endfor %}"));
  EXPECT_EQ(span_texts(render_chat(gen, {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}}, false)),
            (std::vector<std::string>{"b!", "d!"}));
}

TEST(ChatTemplate, JinjaMaskOnEveryTestTemplate) {
  // Every template in the test data, over the test conversations: each assistant span holds the
  // reply's text and ends on an end-of-turn string, and, with the family's own tokenizer (where its
  // turn markers are special tokens), the tokens under the mask decode to the spans.
  std::vector<std::pair<std::string, std::string>> tpls = {{"qwen3", shared_template("qwen3")}, {"gemma3", shared_template("gemma3")}};
  for (const char* f : {"llama-3.2-instruct", "qwen2.5-instruct", "phi-3", "mistral-instruct", "llama-3-instruct", "llama-2-chat",
                        "zephyr", "gemma-it", "chatml"})
    tpls.emplace_back(f, read_file(test::source(std::string("tests/data/chat_templates/") + f + ".jinja")));
  auto qwen_tok = load_tokenizer(test::shared("tokenizers/qwen3"));
  auto gemma_tok = load_tokenizer(test::shared("tokenizers/gemma3"));
  auto tokenizer_for = [&](const std::string& n) -> const Tokenizer* {
    if (n == "qwen3" || n == "qwen2.5-instruct" || n == "chatml") return qwen_tok.get();
    if (n == "gemma3" || n == "gemma-it") return gemma_tok.get();
    return nullptr;
  };
  int checked = 0, token_checked = 0;
  for (const auto& [name, src] : tpls) {
    const ChatTemplate t = resolve_chat_template(config_with(src, "<s>", "</s>"));
    for (const auto& conv : {kTwoTurns, std::vector<ChatMessage>{{"user", "Hello!"}, {"assistant", "Hi. How can I help?"}}}) {
      SCOPED_TRACE(name);
      const RenderedChat r = render_chat(t, conv, false);
      const auto spans = span_texts(r);
      std::vector<std::string> replies;
      for (const auto& m : conv)
        if (m.role == "assistant") replies.push_back(m.content);
      ASSERT_EQ(spans.size(), replies.size());
      for (size_t i = 0; i < spans.size(); ++i) {
        std::string core = replies[i];
        core.erase(0, core.find_first_not_of(" \n"));
        core.erase(core.find_last_not_of(" \n") + 1);
        EXPECT_NE(spans[i].find(core), std::string::npos) << spans[i];
        bool ends = false;
        for (const auto& e : end_of_turn_tokens(t, "</s>")) ends = ends || (spans[i].size() >= e.size() && spans[i].compare(spans[i].size() - e.size(), e.size(), e) == 0);
        EXPECT_TRUE(ends) << spans[i];
      }
      ++checked;
      // Tokens: those under the mask are exactly the spans' text.
      const Tokenizer* tok = tokenizer_for(name);
      if (!tok) continue;
      ChatTokens ct = tokenize_chat(*tok, t, conv, false);
      std::string masked, want;
      for (size_t i = 0; i < ct.ids.size(); ++i)
        if (ct.assistant_mask[i]) masked += tok->decode({ct.ids[i]});
      for (const auto& s : spans) want += s;
      EXPECT_EQ(masked, want);
      ++token_checked;
    }
  }
  EXPECT_EQ(checked, 22);
  EXPECT_EQ(token_checked, 10);
}
