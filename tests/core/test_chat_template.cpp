// Chat templates: renderings equal the strings of hf-compat.md §3 exactly; detection from real
// tokenizer_config.json files; the assistant mask covers exactly the replies and their end token.
// SPDX-License-Identifier: GPL-3.0-or-later
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "test_support.h"
#include "common/files.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

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

namespace {
const char* const kR1Bos = "<｜begin▁of▁sentence｜>";
const char* const kR1Eos = "<｜end▁of▁sentence｜>";
const std::vector<ChatMessage> kThinkingTurns = {
    {"system", "Answer briefly."},
    {"user", "Is 7 prime?"},
    {"assistant", "<think>\nDivisors of 7: 1 and 7.\n</think>\n\nYes."},
    {"user", "And 9?"},
    {"assistant", "<think>\n9 = 3 * 3.\n</think>\n\nNo."}};

// The text Python's jinja2 renders, through tests/reference/jinja_reference.py.
std::string jinja2_text(const std::string& tmpl, const nlohmann::json& vars, const std::string& tag) {
  const std::string dir = test::temp_dir("jinja2-" + tag);
  write_file_atomic(dir + "/cases.json", nlohmann::json::array({{{"template", tmpl}, {"vars", vars}, {"now", 0}}}).dump());
  auto r = test::run(std::string(HONE_PYTHON) + " " + test::shell_quote(test::source("tests/reference/jinja_reference.py")) + " " +
                     test::shell_quote(dir + "/cases.json") + " " + test::shell_quote(dir + "/out.json"));
  if (r.code != 0) throw std::runtime_error(r.err);
  const auto out = nlohmann::json::parse(read_file(dir + "/out.json"));
  if (out[0].contains("error")) throw std::runtime_error(out[0]["error"].get<std::string>());
  return out[0]["text"].get<std::string>();
}
}  // namespace

TEST(ChatTemplate, TemplatesThatCutRepliesAreMaskedOnWhatSurvives) {
  // DeepSeek-R1-Distill prints only what follows each reply's last </think>: the text is jinja2's,
  // and each span is the part of the reply the template printed plus its end-of-sentence token.
  const std::string src = read_file(test::source("tests/data/chat_templates/deepseek-r1-distill-qwen.jinja"));
  ChatTemplate r1 = resolve_chat_template(config_with(src, kR1Bos, kR1Eos));
  const RenderedChat r = render_chat(r1, kThinkingTurns, false);
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : kThinkingTurns) msgs.push_back({{"role", m.role}, {"content", m.content}});
  EXPECT_EQ(r.text, jinja2_text(src, {{"messages", msgs}, {"add_generation_prompt", false}, {"bos_token", kR1Bos}, {"eos_token", kR1Eos}}, "t"));
  EXPECT_EQ(span_texts(r), (std::vector<std::string>{std::string("\n\nYes.") + kR1Eos, std::string("\n\nNo.") + kR1Eos}));
  // A reply whose tail repeats the text before it ("...>" before "<｜Assistant｜>"'s ">"): only
  // what the template printed of the reply, not a byte more.
  const std::vector<ChatMessage> tricky = {{"user", "Tag?"}, {"assistant", "<think>x</think>>b"}};
  EXPECT_EQ(span_texts(render_chat(r1, tricky, false)), (std::vector<std::string>{std::string(">b") + kR1Eos}));
  // A reply that is all thinking prints nothing of it: an empty span, the rendering unharmed.
  const RenderedChat empty = render_chat(r1, {{"user", "Hm?"}, {"assistant", "<think>only thinking</think>"}}, false);
  EXPECT_EQ(span_texts(empty), (std::vector<std::string>{kR1Eos}));
  // keep_final: the final reply is written whole after the generation prompt (which opened
  // "<think>\n" already), earlier ones as the template prints them.
  r1.keep_final_thinking = true;
  const RenderedChat kept = render_chat(r1, kThinkingTurns, false);
  const std::string prompt = render_chat(r1, {kThinkingTurns.begin(), kThinkingTurns.end() - 1}, true).text;
  EXPECT_EQ(kept.text, prompt + "9 = 3 * 3.\n</think>\n\nNo." + kR1Eos);
  EXPECT_EQ(span_texts(kept), (std::vector<std::string>{std::string("\n\nYes.") + kR1Eos, std::string("9 = 3 * 3.\n</think>\n\nNo.") + kR1Eos}));
}

TEST(ChatTemplate, Qwen3ReasoningContentIsPartOfTheReplyWherePrinted) {
  // reasoning_content held apart: Qwen3 prints it for replies after the last user turn, inside its
  // own "<think>\n...\n</think>\n\n"; the span runs from the generation prompt's end, as when the
  // thinking is inside the content. Before the last user turn the template drops it.
  const ChatTemplate qwen3 = resolve_chat_template(config_with(shared_template("qwen3"), "", "<|im_end|>"));
  std::vector<ChatMessage> conv = {{"user", "Is 7 prime?"}, {"assistant", "Yes.", "Divisors of 7: 1 and 7."},
                                   {"user", "And 9?"}, {"assistant", "No.", "9 = 3 * 3."}};
  const RenderedChat r = render_chat(qwen3, conv, false);
  EXPECT_EQ(span_texts(r), (std::vector<std::string>{"Yes.<|im_end|>", "<think>\n9 = 3 * 3.\n</think>\n\nNo.<|im_end|>"}));
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : conv) {
    msgs.push_back({{"role", m.role}, {"content", m.content}});
    if (m.reasoning_content) msgs.back()["reasoning_content"] = *m.reasoning_content;
  }
  EXPECT_EQ(r.text, jinja2_text(shared_template("qwen3"), {{"messages", msgs}, {"add_generation_prompt", false}, {"eos_token", "<|im_end|>"}}, "q3"));
  // The same through `hone-cli template --json`, with Qwen3's real tokenizer: the masked tokens
  // decode to the spans.
  const std::string dir = test::temp_dir("q3-reasoning");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    write_file_atomic(dir + "/" + f, read_file(test::shared(std::string("tokenizers/qwen3/") + f)));
  write_file_atomic(dir + "/messages.json", msgs.dump());
  auto out = test::run(std::string(HONE_CLI) + " template --model " + dir + " --messages " + dir + "/messages.json --json");
  ASSERT_EQ(out.code, 0) << out.err;
  const auto j = nlohmann::json::parse(out.out);
  EXPECT_EQ(j["text"], r.text);
  auto tok = load_tokenizer(dir);
  std::string masked;
  const auto ids = j["ids"].get<std::vector<int32_t>>();
  const auto mask = j["assistant_mask"].get<std::vector<int>>();
  for (size_t i = 0; i < ids.size(); ++i)
    if (mask[i]) masked += tok->decode({ids[i]});
  EXPECT_EQ(masked, "Yes.<|im_end|><think>\n9 = 3 * 3.\n</think>\n\nNo.<|im_end|>");
}

TEST(ChatTemplate, CliRendersTheR1DistillConversationAsJinja2WithAMask) {
  // The case the issue reported: `hone-cli template --json` on a DeepSeek-R1-Distill-Qwen folder
  // (its template over Qwen's tokenizer files, its begin/end-of-sentence strings).
  const std::string src = read_file(test::source("tests/data/chat_templates/deepseek-r1-distill-qwen.jinja"));
  const std::string dir = test::temp_dir("r1-cli");
  // Qwen's tokenizer with DeepSeek's turn markers added as special tokens, as the R1-Distill-Qwen
  // checkpoints have them (else BPE merges "｜>" with the reply's first bytes).
  auto tj = nlohmann::json::parse(read_file(test::shared("tokenizers/qwen3/tokenizer.json")));
  int next_id = 0;
  for (const auto& a : tj["added_tokens"]) next_id = std::max(next_id, a["id"].get<int>() + 1);
  for (const char* t : {kR1Bos, kR1Eos, "<｜User｜>", "<｜Assistant｜>"})
    tj["added_tokens"].push_back({{"id", next_id++}, {"content", t}, {"single_word", false}, {"lstrip", false},
                                  {"rstrip", false}, {"normalized", false}, {"special", true}});
  write_file_atomic(dir + "/tokenizer.json", tj.dump());
  write_file_atomic(dir + "/tokenizer_config.json",
                    nlohmann::json({{"chat_template", src}, {"bos_token", kR1Bos}, {"eos_token", kR1Eos}}).dump());
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : kThinkingTurns) msgs.push_back({{"role", m.role}, {"content", m.content}});
  write_file_atomic(dir + "/messages.json", msgs.dump());
  const std::string want = jinja2_text(src, {{"messages", msgs}, {"add_generation_prompt", false}, {"bos_token", kR1Bos}, {"eos_token", kR1Eos}}, "cli");
  auto out = test::run(std::string(HONE_CLI) + " template --model " + dir + " --messages " + dir + "/messages.json --json");
  ASSERT_EQ(out.code, 0) << out.err;
  const auto j = nlohmann::json::parse(out.out);
  EXPECT_EQ(j["text"], want);
  auto tok = load_tokenizer(dir);
  std::string masked;  // each run of masked tokens decoded whole (a character may span tokens)
  const auto ids = j["ids"].get<std::vector<int32_t>>();
  const auto mask = j["assistant_mask"].get<std::vector<int>>();
  ASSERT_EQ(ids.size(), mask.size());
  std::vector<int32_t> run;
  for (size_t i = 0; i <= ids.size(); ++i) {
    if (i < ids.size() && mask[i]) {
      run.push_back(ids[i]);
    } else if (!run.empty()) {
      masked += tok->decode(run);
      run.clear();
    }
  }
  EXPECT_EQ(masked, std::string("\n\nYes.") + kR1Eos + "\n\nNo." + kR1Eos);
  // --thinking keep_final: the last reply whole.
  auto kept = test::run(std::string(HONE_CLI) + " template --model " + dir + " --messages " + dir + "/messages.json --json --thinking keep_final");
  ASSERT_EQ(kept.code, 0) << kept.err;
  const auto k = nlohmann::json::parse(kept.out);
  EXPECT_NE(k["text"].get<std::string>().find("<think>\n9 = 3 * 3.\n</think>\n\nNo."), std::string::npos) << k["text"];
}
