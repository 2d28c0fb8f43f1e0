// Native renderers for the chat formats of hf-compat.md §3. Each appends text piece by piece and
// records where assistant replies (with their closing token) start and end.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/chat_template.h"

#include "common/error.h"
#include "tokenizer/jinja.h"

#include <algorithm>

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
                            {ChatFormat::Phi3, "phi3"},
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
  // Formats where every message is header(role) + content + close + tail, and the generation
  // prompt is the assistant's header (Llama 3, ChatML, Zephyr, Phi-3).
  template <class Header>
  void turns(const std::vector<ChatMessage>& msgs, Header header, const std::string& close, const std::string& tail, bool gen) {
    for (const auto& m : msgs) {
      text(header(m.role));
      if (m.role == "assistant") reply("", m.content, close, tail);
      else text(m.content + close + tail);
    }
    if (gen) text(header("assistant"));
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
  // Zephyr and Phi-3 write <|user|> either literally or as '<|' + role + '|>'; Phi-3 closes turns with <|end|>.
  if (has("<|assistant|>") && has("<|end|>")) return ChatFormat::Phi3;
  if (has("<|assistant|>") && (has("<|user|>") || has("'<|' + message"))) return ChatFormat::Zephyr;
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
    case ChatFormat::Llama3:
      b.text("<|begin_of_text|>");
      b.turns(msgs, [](const std::string& r) { return "<|start_header_id|>" + r + "<|end_header_id|>\n\n"; }, "<|eot_id|>", "", gen);
      break;
    case ChatFormat::ChatML:
      b.turns(msgs, [](const std::string& r) { return "<|im_start|>" + r + "\n"; }, "<|im_end|>", "\n", gen);
      break;
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
    case ChatFormat::Zephyr:
      b.turns(msgs, [](const std::string& r) { return "<|" + r + "|>\n"; }, eos, "\n", gen);
      break;
    case ChatFormat::Phi3:  // Zephyr's markers with <|end|> closing every turn
      b.turns(msgs, [](const std::string& r) { return "<|" + r + "|>\n"; }, "<|end|>", "\n", gen);
      break;
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

namespace {

// Turn-ending markers of the families Hone knows; a Jinja template's are those its text contains.
const char* const kTurnEnds[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>",
                                 "<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"};

// Private-use characters around a reply's content locate it in a rendering (no template prints them);
// a second pair marks its reasoning_content.
const std::string kOpen = "\xEE\x80\x80", kClose = "\xEE\x80\x81";     // U+E000, U+E001
const std::string kROpen = "\xEE\x80\x82", kRClose = "\xEE\x80\x83";   // U+E002, U+E003

// The variables apply_chat_template passes: messages, add_generation_prompt, the special tokens
// the tokenizer has (an unset one stays undefined), tools and documents (None without them).
jinja::Dict jinja_vars(const ChatTemplate& t, jinja::Value messages, bool gen, jinja::Value tools = jinja::Value::none()) {
  jinja::Dict v;
  v.set("messages", std::move(messages));
  v.set("add_generation_prompt", jinja::Value(gen));
  if (!t.bos.empty()) v.set("bos_token", jinja::Value(t.bos));
  if (!t.eos.empty()) v.set("eos_token", jinja::Value(t.eos));
  v.set("tools", std::move(tools));
  v.set("documents", jinja::Value::none());
  return v;
}

jinja::Dict jinja_vars(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen) {
  jinja::List list;
  for (const auto& m : msgs) {
    auto d = std::make_shared<jinja::Dict>();
    d->set("role", jinja::Value(m.role));
    d->set("content", jinja::Value(m.content));
    if (m.reasoning_content) d->set("reasoning_content", jinja::Value(*m.reasoning_content));
    list.emplace_back(d);
  }
  return jinja_vars(t, jinja::Value(std::move(list)), gen);
}

std::string render_text(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen) {
  return t.jinja->render(jinja_vars(t, msgs, gen)).text;
}

std::string without_marks(std::string s) {
  for (const std::string* mark : {&kOpen, &kClose, &kROpen, &kRClose})
    for (size_t p; (p = s.find(*mark)) != std::string::npos;) s.erase(p, mark->size());
  return s;
}

bool starts_with_at(const std::string& s, size_t at, const std::string& part) {
  return at <= s.size() && s.compare(at, part.size(), part) == 0 && at + part.size() <= s.size();
}

// Where assistant message i's reply lies in `text` (the unmarked rendering): [start, end) of what
// the template printed of it, before the end-of-turn token; `printed` false when the template left
// the whole turn out.
struct ReplySpan {
  size_t start = 0, end = 0;
  bool printed = true;
};
ReplySpan locate_reply(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen, size_t i,
                       const std::string& text) {
  constexpr size_t npos = std::string::npos;
  std::vector<ChatMessage> marked = msgs;
  marked[i].content = kOpen + msgs[i].content + kClose;
  if (msgs[i].reasoning_content) marked[i].reasoning_content = kROpen + *msgs[i].reasoning_content + kRClose;
  const std::string m = render_text(t, marked, gen);
  // The first opening mark and the last closing one that survived (content or reasoning).
  size_t p1 = npos, p2 = npos;
  bool reasoning_first = false;
  for (const std::string* mark : {&kOpen, &kROpen}) {
    const size_t p = m.find(*mark);
    if (p != npos && (p1 == npos || p < p1)) p1 = p, reasoning_first = mark == &kROpen;
  }
  for (const std::string* mark : {&kClose, &kRClose}) {
    const size_t p = m.rfind(*mark);
    if (p != npos && (p2 == npos || p > p2)) p2 = p + mark->size();
  }
  if (p1 == npos && p2 == npos) {
    // Nothing of the reply was printed (a template that drops some turns): an empty span where the
    // rendering of the messages before it ends, if that is where the text continues.
    const std::string before = render_text(t, std::vector<ChatMessage>(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i)), false);
    const size_t at = starts_with_at(text, 0, before) ? before.size() : 0;
    return {at, at, false};
  }
  size_t start = npos, end = npos;
  // What precedes the first opening mark (what follows the last closing one) is the same in the
  // real rendering, whatever the template did to the content (trim, for instance) between them.
  if (p1 != npos && p1 <= text.size() && m.compare(0, p1, text, 0, p1) == 0) start = p1;
  if (p2 != npos) {
    const size_t tail = m.size() - p2;
    if (tail <= text.size() && m.compare(p2, tail, text, text.size() - tail, tail) == 0) end = text.size() - tail;
  }
  // The reply as the model writes it starts where the generation prompt ends: when the template
  // rewrites the reply's start (Qwen3 moves thinking out of the content), or prints its reasoning
  // behind scaffolding of its own ("<think>\n"), that scaffolding belongs to the reply.
  if (start == npos || reasoning_first) {
    const std::string prompt =
        render_text(t, std::vector<ChatMessage>(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(i)), true);
    if (starts_with_at(text, 0, prompt) && (start == npos || prompt.size() <= start)) start = prompt.size();
  }
  if (start == npos && p2 != npos && end != npos) {
    // The template cut the reply's start (DeepSeek-R1 prints what follows the last </think>): the
    // printed part is a suffix of the content. Each position where the content's tail matches the
    // text before the closing mark is tried as the reply's start, longest first, by rendering with
    // the opening mark there; the right one keeps its mark and changes nothing else (a mark inside
    // "</think>" breaks the tag, and the template then prints something else).
    const std::string& c = msgs[i].content;
    const size_t close_at = m.rfind(kClose);
    if (close_at != npos) {
      size_t n = 0;  // length of the longest suffix of c that m shows right before the mark
      while (n < c.size() && n < close_at && c[c.size() - 1 - n] == m[close_at - 1 - n]) ++n;
      for (size_t k = c.size() - n; k <= c.size() && start == npos; ++k) {
        std::vector<ChatMessage> probe = msgs;
        probe[i].content = c.substr(0, k) + kOpen + c.substr(k) + kClose;
        const std::string r = render_text(t, probe, gen);
        const size_t q = r.find(kOpen);
        if (q != npos && without_marks(r) == text && r.compare(0, q, text, 0, q) == 0) start = q;
      }
    }
  }
  if (start == npos || end == npos || end < start)
    throw Error("chat template: cannot find where assistant message " + std::to_string(i + 1) +
                " is in the rendering; pick a family rendering instead (--template NAME or \"chat_template\" in the run config)");
  return {start, end, true};
}

// The end-of-turn token right after a reply belongs to it (Llama 2 puts a space before its </s>).
size_t past_end_of_turn(const ChatTemplate& t, const std::string& text, size_t end) {
  std::vector<std::string> ends = t.end_of_turn;
  if (!t.eos.empty()) ends.push_back(t.eos);
  size_t k = end;
  while (k < text.size() && text[k] == ' ') ++k;
  for (const auto& e : ends)
    if (text.compare(k, e.size(), e) == 0) return k + e.size();
  return end;
}

bool has_thinking(const ChatMessage& m) {
  return m.reasoning_content || m.content.find("</think>") != std::string::npos;
}

RenderedChat render_jinja(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen) {
  jinja::RenderResult full = t.jinja->render(jinja_vars(t, msgs, gen));
  RenderedChat out;
  out.text = std::move(full.text);
  const std::string& text = out.text;
  if (t.jinja->has_generation_blocks()) {
    out.assistant_spans = std::move(full.generation_spans);
    return out;
  }
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const ReplySpan s = locate_reply(t, msgs, gen, i, text);
    out.assistant_spans.emplace_back(s.start, s.printed ? past_end_of_turn(t, text, s.end) : s.end);
  }
  // keep_final_thinking: a final reply whose thinking the template dropped is written after the
  // generation prompt as it stands (minus what the prompt already opened, e.g. "<think>\n"),
  // followed by what the template prints after a reply (its end-of-turn token).
  const size_t last = msgs.size() - 1;
  if (!t.keep_final_thinking || gen || msgs.empty() || msgs[last].role != "assistant" || !has_thinking(msgs[last])) return out;
  const auto& span = out.assistant_spans.back();
  if (text.substr(span.first, span.second - span.first).find("</think>") != std::string::npos)
    return out;  // the template kept it (Qwen3's final turn)
  const std::vector<ChatMessage> before(msgs.begin(), msgs.end() - 1);
  RenderedChat kept = render_jinja(t, before, true);
  std::string reply = msgs[last].content;
  if (msgs[last].reasoning_content) reply = "<think>\n" + *msgs[last].reasoning_content + "\n</think>\n\n" + reply;
  for (size_t k = std::min(reply.size(), kept.text.size()); k > 0; --k)
    if (kept.text.compare(kept.text.size() - k, k, reply, 0, k) == 0) {
      reply.erase(0, k);
      break;
    }
  // What the template prints after the final reply's content: the text past its printed end.
  std::vector<ChatMessage> marked = msgs;
  marked[last].content = msgs[last].content + kClose;
  const std::string m = render_text(t, marked, false);
  const size_t c = m.rfind(kClose);
  const std::string after = c == std::string::npos ? std::string() : m.substr(c + kClose.size());
  const size_t start = kept.text.size();
  kept.text += reply + after;
  kept.assistant_spans.emplace_back(start, past_end_of_turn(t, kept.text, start + reply.size()));
  return kept;
}

}  // namespace

std::string ChatTemplate::name() const { return jinja ? "checkpoint" : chat_format_name(family); }
std::string ChatTemplate::describe() const {
  return jinja ? std::string("the checkpoint's own (") + chat_format_name(family) + "-like)" : name();
}

std::vector<std::string> chat_template_names() {
  std::vector<std::string> v = {"auto", "checkpoint"};
  for (const auto& n : chat_format_names()) v.push_back(n);
  return v;
}

ChatTemplate family_chat_template(const TokenizerConfig& cfg) {
  ChatTemplate t(detect_chat_format(cfg.chat_template));
  t.bos = cfg.bos_token;
  t.eos = cfg.eos_token;
  for (const char* e : kTurnEnds)
    if (cfg.chat_template.find(e) != std::string::npos) t.end_of_turn.push_back(e);
  return t;
}

ChatTemplate resolve_chat_template(const TokenizerConfig& cfg, const std::string& name) {
  ChatTemplate t;
  t.bos = cfg.bos_token;
  t.eos = cfg.eos_token;
  if (name.empty() || name == "auto" || name == "checkpoint") {
    if (cfg.chat_template.empty()) {
      if (name == "checkpoint")
        throw Error("the checkpoint has no chat_template (in tokenizer_config.json or chat_template.jinja); name a family instead");
      t.family = ChatFormat::Alpaca;
      return t;
    }
    t = family_chat_template(cfg);
    t.jinja = std::make_shared<const jinja::Template>(cfg.chat_template, cfg.chat_template_file.empty() ? "chat_template" : cfg.chat_template_file);
    return t;
  }
  if (!chat_format_from_name(name, &t.family)) {
    std::string all;
    for (const auto& n : chat_template_names()) all += (all.empty() ? "" : ", ") + n;
    throw Error("unknown chat template \"" + name + "\" (" + all + ")");
  }
  return t;
}

RenderedChat render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen) {
  if (t.jinja) return render_jinja(t, msgs, gen);
  // A family rendering has no place for reasoning_content: it goes before the content as the
  // reasoning models write it.
  std::vector<ChatMessage> flat = msgs;
  for (auto& m : flat)
    if (m.reasoning_content) m.content = "<think>\n" + *m.reasoning_content + "\n</think>\n\n" + m.content, m.reasoning_content.reset();
  return render_chat(t.family, flat, gen, t.bos.empty() ? "<s>" : t.bos, t.eos.empty() ? "</s>" : t.eos);
}

std::string render_chat_json(const ChatTemplate& t, const nlohmann::ordered_json& messages, bool gen,
                             const nlohmann::ordered_json& tools, const nlohmann::ordered_json& extra) {
  if (!messages.is_array()) throw Error("messages: expected a JSON array of {\"role\", \"content\"} objects");
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object() || !messages[i].contains("role") || !messages[i]["role"].is_string())
      throw Error("messages: message " + std::to_string(i + 1) + " is not an object with a string \"role\"");
  if (!t.jinja) {
    std::vector<ChatMessage> msgs;
    for (size_t i = 0; i < messages.size(); ++i) {
      const auto& c = messages[i].contains("content") ? messages[i]["content"] : nlohmann::ordered_json("");
      if (!c.is_string()) throw Error("messages: message " + std::to_string(i + 1) + ": the " + t.name() + " rendering takes text content only");
      msgs.push_back({messages[i]["role"].get<std::string>(), c.get<std::string>()});
    }
    return render_chat(t, msgs, gen).text;
  }
  jinja::Dict v = jinja_vars(t, jinja::from_json(messages), gen, tools.is_null() ? jinja::Value::none() : jinja::from_json(tools));
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) v.set(it.key(), jinja::from_json(it.value()));
  return t.jinja->render(v).text;
}

ChatTokens tokenize_chat(const Tokenizer& tok, const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen) {
  // The tokenizer's specials fill what the template lacks (a copy only then: this runs per row).
  ChatTemplate filled;
  const bool fill = t.bos.empty() || t.eos.empty();
  if (fill) {
    filled = t;
    if (filled.bos.empty()) filled.bos = tok.config().bos_token;
    if (filled.eos.empty()) filled.eos = tok.config().eos_token;
  }
  const ChatTemplate& u = fill ? filled : t;
  ChatTokens out;
  out.rendered = render_chat(u, msgs, gen);
  // Templates write their own BOS (transformers tokenizes a rendered chat without adding special
  // tokens); Alpaca and Raw (base models) take the tokenizer's default specials.
  const bool add_special = !u.jinja && (u.family == ChatFormat::Alpaca || u.family == ChatFormat::Raw);
  Encoding enc = tok.encode(out.rendered.text, add_special);
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

std::vector<std::string> end_of_turn_tokens(const ChatTemplate& t, const std::string& eos) {
  std::vector<std::string> v = end_of_turn_tokens(t.family, eos);
  for (const auto& e : t.end_of_turn)
    if (std::find(v.begin(), v.end(), e) == v.end()) v.push_back(e);
  return v;
}

std::vector<std::string> end_of_turn_tokens(ChatFormat f, const std::string& eos) {
  switch (f) {
    case ChatFormat::Llama3: return {"<|eot_id|>", "<|end_of_text|>"};
    case ChatFormat::ChatML: return {"<|im_end|>", "<|endoftext|>"};
    case ChatFormat::Gemma: return {"<end_of_turn>", "<eos>"};
    case ChatFormat::Phi3: return {"<|end|>", eos};
    default: return {eos};
  }
}

}  // namespace hone
