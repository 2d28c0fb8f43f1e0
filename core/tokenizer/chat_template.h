// Chat templates of the Llama family rendered natively (no Jinja): the format is recognised from
// the checkpoint's chat_template and can be overridden. Rendering yields token ids plus a mask of
// assistant tokens, used for assistant-only loss.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hone {

// Raw: no markers at all, prompt text then completion + EOS (TRL's plain prompt/completion form).
enum class ChatFormat { Llama3, ChatML, Mistral, Llama2, Zephyr, Gemma, Alpaca, Raw };

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
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
ChatTokens tokenize_chat(const Tokenizer& tok, ChatFormat f, const std::vector<ChatMessage>& msgs,
                         bool add_generation_prompt);
// Token strings that end an assistant turn in this format (generation stops on them).
std::vector<std::string> end_of_turn_tokens(ChatFormat f, const std::string& eos);

}  // namespace hone
