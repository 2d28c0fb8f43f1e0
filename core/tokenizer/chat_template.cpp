// Native renderers for the chat formats of hf-compat.md §3. Each appends text piece by piece and
// records where assistant replies (with their closing token) start and end.
#include "tokenizer/chat_template.h"

#include "common/error.h"

namespace hone {

const char* const kAlpacaPreamble =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

namespace {

struct Names {
  ChatFormat f;
  const char* name;
};
constexpr Names kNames[] = {{ChatFormat::Llama3, "llama3"}, {ChatFormat::ChatML, "chatml"}, {ChatFormat::Mistral, "mistral"},
                            {ChatFormat::Llama2, "llama2"}, {ChatFormat::Zephyr, "zephyr"}, {ChatFormat::Gemma, "gemma"},
                            {ChatFormat::Alpaca, "alpaca"}, {ChatFormat::Raw, "raw"}};

struct Builder {
  RenderedChat r;
  void text(const std::string& s) { r.text += s; }
  void reply(const std::string& lead, const std::string& content, const std::string& close, const std::string& tail) {
    // lead: text that belongs to the reply but precedes it (Llama-2's space); close: end-of-turn token.
    size_t b = r.text.size();
    r.text += lead + content + close;
    r.assistant_spans.emplace_back(b, r.text.size());
    r.text += tail;
  }
};

void check_roles(const std::vector<ChatMessage>& m) {
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& r = m[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      throw Error("message " + std::to_string(i + 1) + ": unknown role '" + r + "' (use system, user or assistant)");
    if (r == "system" && i != 0) throw Error("message " + std::to_string(i + 1) + ": a system message must come first");
  }
}

}  // namespace

const char* chat_format_name(ChatFormat f) {
  for (const auto& n : kNames)
    if (n.f == f) return n.name;
  return "?";
}

bool chat_format_from_name(const std::string& name, ChatFormat* out) {
  for (const auto& n : kNames)
    if (name == n.name) {
      *out = n.f;
      return true;
    }
  return false;
}

std::vector<std::string> chat_format_names() {
  std::vector<std::string> v;
  for (const auto& n : kNames) v.push_back(n.name);
  return v;
}

ChatFormat detect_chat_format(const std::string& t) {
  auto has = [&](const char* s) { return t.find(s) != std::string::npos; };
  if (has("<|start_header_id|>")) return ChatFormat::Llama3;
  if (has("<|im_start|>")) return ChatFormat::ChatML;
  if (has("<start_of_turn>")) return ChatFormat::Gemma;
  if (has("<<SYS>>")) return ChatFormat::Llama2;
  if (has("[INST]")) return ChatFormat::Mistral;
  if (has("<|user|>") && has("<|assistant|>")) return ChatFormat::Zephyr;
  return ChatFormat::Alpaca;
}

RenderedChat render_chat(ChatFormat f, const std::vector<ChatMessage>& msgs, bool gen, const std::string& bos,
                         const std::string& eos) {
  check_roles(msgs);
  Builder b;
  std::string system;
  size_t start = 0;
  if (!msgs.empty() && msgs[0].role == "system") {
    system = msgs[0].content;
    start = 1;
  }
  const bool has_system = start == 1;
  switch (f) {
    case ChatFormat::Llama3: {
      b.text("<|begin_of_text|>");
      for (const auto& m : msgs) {
        b.text("<|start_header_id|>" + m.role + "<|end_header_id|>\n\n");
        if (m.role == "assistant") b.reply("", m.content, "<|eot_id|>", "");
        else b.text(m.content + "<|eot_id|>");
      }
      if (gen) b.text("<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    }
    case ChatFormat::ChatML: {
      for (const auto& m : msgs) {
        b.text("<|im_start|>" + m.role + "\n");
        if (m.role == "assistant") b.reply("", m.content, "<|im_end|>", "\n");
        else b.text(m.content + "<|im_end|>\n");
      }
      if (gen) b.text("<|im_start|>assistant\n");
      break;
    }
    case ChatFormat::Mistral: {
      b.text(bos);
      bool first_user = true;
      for (size_t i = start; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (m.role == "user") {
          std::string u = m.content;
          if (first_user && has_system) u = system + "\n\n" + u;
          first_user = false;
          b.text("[INST] " + u + " [/INST]");
        } else {
          b.reply("", m.content, eos, "");
        }
      }
      break;
    }
    case ChatFormat::Llama2: {
      bool first_user = true;
      for (size_t i = start; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (m.role == "user") {
          std::string u = m.content;
          if (first_user && has_system) u = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + u;
          first_user = false;
          b.text(bos + "[INST] " + u + " [/INST]");
        } else {
          b.reply(" ", m.content + " ", eos, "");
        }
      }
      break;
    }
    case ChatFormat::Zephyr: {
      for (const auto& m : msgs) {
        b.text("<|" + m.role + "|>\n");
        if (m.role == "assistant") b.reply("", m.content, eos, "\n");
        else b.text(m.content + eos + "\n");
      }
      if (gen) b.text("<|assistant|>\n");
      break;
    }
    case ChatFormat::Gemma: {
      b.text("<bos>");
      bool first_user = true;
      for (size_t i = start; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (m.role == "user") {
          std::string u = m.content;
          if (first_user && has_system) u = system + "\n\n" + u;
          first_user = false;
          b.text("<start_of_turn>user\n" + u + "<end_of_turn>\n");
        } else {
          b.text("<start_of_turn>model\n");
          b.reply("", m.content, "<end_of_turn>", "\n");
        }
      }
      if (gen) b.text("<start_of_turn>model\n");
      break;
    }
    case ChatFormat::Alpaca: {
      b.text((has_system ? system : std::string(kAlpacaPreamble)) + "\n\n");
      for (size_t i = start; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (m.role == "user") b.text("### Instruction:\n" + m.content + "\n\n### Response:\n");
        else b.reply("", m.content, eos, "\n\n");
      }
      break;
    }
    case ChatFormat::Raw: {
      for (const auto& m : msgs) {
        if (m.role == "assistant") b.reply("", m.content, eos, "");
        else b.text(m.content);
      }
      break;
    }
  }
  return b.r;
}

ChatTokens tokenize_chat(const Tokenizer& tok, ChatFormat f, const std::vector<ChatMessage>& msgs, bool gen) {
  const std::string bos = tok.config().bos_token.empty() ? "<s>" : tok.config().bos_token;
  const std::string eos = tok.config().eos_token.empty() ? "</s>" : tok.config().eos_token;
  ChatTokens out;
  out.rendered = render_chat(f, msgs, gen, bos, eos);
  // Chat formats write their own BOS; Alpaca and Raw (base models) take the tokenizer's default specials.
  Encoding enc = tok.encode(out.rendered.text, f == ChatFormat::Alpaca || f == ChatFormat::Raw);
  out.ids = enc.ids;
  out.assistant_mask.assign(enc.ids.size(), 0);
  for (size_t i = 0; i < enc.ids.size(); ++i) {
    auto [tb, te] = enc.offsets[i];
    if (te <= tb) continue;  // post-processor specials
    for (const auto& s : out.rendered.assistant_spans)
      if (tb < s.second && te > s.first) {
        out.assistant_mask[i] = 1;
        break;
      }
  }
  return out;
}

std::vector<std::string> end_of_turn_tokens(ChatFormat f, const std::string& eos) {
  switch (f) {
    case ChatFormat::Llama3: return {"<|eot_id|>", "<|end_of_text|>"};
    case ChatFormat::ChatML: return {"<|im_end|>", "<|endoftext|>"};
    case ChatFormat::Gemma: return {"<end_of_turn>", "<eos>"};
    default: return {eos};
  }
}

}  // namespace hone
