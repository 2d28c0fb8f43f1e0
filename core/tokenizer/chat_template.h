// Chat templates: the checkpoint's own chat_template executed by the Jinja engine (jinja.h), or a
// named family rendering written natively (llama3, chatml, mistral, ...), the fallback for
// checkpoints without one and what `--template NAME` picks. Rendering yields the text, the byte
// ranges of assistant replies, and then token ids with a mask of assistant tokens (assistant-only loss).
// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hone {

// Raw: no markers at all, prompt text then completion + EOS (TRL's plain prompt/completion form).
enum class ChatFormat { Llama3, ChatML, Mistral, Llama2, Zephyr, Gemma, Phi3, Alpaca, Raw };

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
  // An assistant turn's thinking held apart from its content (Qwen3's and DeepSeek's chat format);
  // passed to templates that read it, and given to a family rendering as <think>...</think>.
  std::optional<std::string> reasoning_content;
};

struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> assistant_spans;  // byte ranges: reply + its end-of-turn token
};

struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant_mask;  // 1 where the token belongs to an assistant reply
  RenderedChat rendered;
};

// The system text the Alpaca format uses when a conversation has none.
extern const char* const kAlpacaPreamble;

const char* chat_format_name(ChatFormat f);
bool chat_format_from_name(const std::string& name, ChatFormat* out);
std::vector<std::string> chat_format_names();
// Recognises the family from a Jinja chat_template; Alpaca when empty or unrecognised.
ChatFormat detect_chat_format(const std::string& chat_template);

// bos/eos: the tokenizer's own strings (used by the Mistral, Llama-2, Zephyr and Alpaca formats).
RenderedChat render_chat(ChatFormat f, const std::vector<ChatMessage>& msgs, bool add_generation_prompt,
                         const std::string& bos = "<s>", const std::string& eos = "</s>");
// Token strings that end an assistant turn in this format (generation stops on them).
std::vector<std::string> end_of_turn_tokens(ChatFormat f, const std::string& eos);

namespace jinja {
class Template;
}
struct TokenizerConfig;

// The template a run, a generator or a preview uses. Converts from a ChatFormat (a family rendering).
struct ChatTemplate {
  ChatTemplate(ChatFormat f = ChatFormat::Alpaca) : family(f) {}  // NOLINT: a family is a template
  ChatFormat family;                              // the rendering, or the family a Jinja template resembles
  std::shared_ptr<const jinja::Template> jinja;   // set: the checkpoint's own template is executed
  std::string bos, eos;                           // the tokenizer's strings ("" : "<s>" and "</s>")
  std::vector<std::string> end_of_turn;           // extra strings that end an assistant turn (Jinja)
  // Training data with thinking: false renders exactly what the template gives (templates such as
  // DeepSeek-R1's drop "<think>...</think>" from every reply); true keeps the final reply whole
  // after the generation prompt, as the model writes it (the run config's "thinking": "keep_final").
  bool keep_final_thinking = false;
  std::string name() const;                       // "checkpoint" or the family's name
  std::string describe() const;                   // for logs: "the checkpoint's own (chatml-like)" or the name
  bool is_jinja() const { return jinja != nullptr; }
};

// "auto": the checkpoint's chat_template executed as Jinja when it has one (a template that does
// not parse is an error naming its line and column), else the Alpaca rendering; "checkpoint":
// the checkpoint's template, an error when there is none; a family name: that rendering.
ChatTemplate resolve_chat_template(const TokenizerConfig& cfg, const std::string& name = "auto");
// The family the checkpoint's template resembles, with the end-of-turn markers its text holds,
// without parsing it (exports use it for stop tokens, so that they never fail on a template).
ChatTemplate family_chat_template(const TokenizerConfig& cfg);
std::vector<std::string> chat_template_names();  // "auto", "checkpoint" and the family names

// Renders with the template. For a Jinja template the assistant spans come from its
// {% generation %} blocks when it has them, else from renderings with marked replies: each reply
// as the template printed it (its reasoning_content included where printed), from where the
// generation prompt ends when the template rewrites the reply's start (Qwen3's thinking), or the
// part of the reply that survives when the template cuts it (DeepSeek-R1 keeps what follows the
// last </think>), plus the end-of-turn token that follows it. Never fails where the template
// renders: a reply the template leaves out entirely gets an empty span.
RenderedChat render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool add_generation_prompt);
ChatTokens tokenize_chat(const Tokenizer& tok, const ChatTemplate& t, const std::vector<ChatMessage>& msgs,
                         bool add_generation_prompt);
std::vector<std::string> end_of_turn_tokens(const ChatTemplate& t, const std::string& eos);
// Messages as JSON with any fields a template reads (tool_calls, reasoning_content, ...), tools, and
// extra variables (enable_thinking, ...), rendered as transformers' apply_chat_template renders
// them. A family rendering reads role and content only. Throws naming the message that is malformed.
std::string render_chat_json(const ChatTemplate& t, const nlohmann::ordered_json& messages, bool add_generation_prompt,
                             const nlohmann::ordered_json& tools = nullptr, const nlohmann::ordered_json& extra = nullptr);

}  // namespace hone
