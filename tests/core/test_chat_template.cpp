// Chat templates: renderings equal the strings of hf-compat.md §3 exactly; detection from real
// tokenizer_config.json files; the assistant mask covers exactly the replies and their end token.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"

using namespace hone;

namespace {
const std::vector<ChatMessage> kConv = {
    {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
const std::vector<ChatMessage> kOne = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}};
std::string render(ChatFormat f, const std::vector<ChatMessage>& m, bool gen) { return render_chat(f, m, gen).text; }
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
