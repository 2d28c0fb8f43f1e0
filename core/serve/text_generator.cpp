// TextGenerator (see text_generator.h): run-output loader + chat template + KV-cache generation,
// decoding incrementally so a caller can stream text (an incomplete UTF-8 character is held back).
// SPDX-License-Identifier: GPL-3.0-or-later
#include "serve/text_generator.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>

#include "common/error.h"
#include "model/generate.h"
#include "peft/lora.h"
#include "train/run_output.h"

namespace hone {

namespace {

// One loaded model shared by every generator over the same base (the Playground's two sides: the
// base and a LoRA run over it held one copy each, twice the memory). It holds at most one adapter;
// a generator without one switches it off for its replies, under the lock, so replies over one
// shared model take turns.
struct SharedModel {
  RunModel rm;
  std::string adapter_key;  // the adapter loaded into rm's model ("" none)
  std::mutex mu;
};

std::string path_key(const std::string& dir) {
  if (dir.empty()) return dir;
  std::error_code ec;
  const auto c = std::filesystem::weakly_canonical(dir, ec);
  return ec ? dir : c.string();
}

std::mutex registry_mu;
std::map<std::string, std::weak_ptr<SharedModel>>& registry() {
  static std::map<std::string, std::weak_ptr<SharedModel>> r;  // base folder (+ "|nf4") -> live model
  return r;
}

// The live model over `base` (NF4-quantized or not) when there is one that has `adapter` or no
// adapter yet (the adapter is then loaded into it); else a new one, registered when none was.
std::shared_ptr<SharedModel> shared_model(const std::string& base, const std::string& adapter, bool nf4) {
  const std::string key = path_key(base) + (nf4 ? "|nf4" : ""), want = path_key(adapter);
  std::shared_ptr<SharedModel> s;
  {
    std::lock_guard<std::mutex> lk(registry_mu);
    if (auto it = registry().find(key); it != registry().end()) s = it->second.lock();
  }
  if (s) {
    std::lock_guard<std::mutex> lk(s->mu);
    if (want.empty() || s->adapter_key == want) return s;
    if (s->adapter_key.empty()) {
      load_peft_adapter(s->rm.lm.model, adapter);
      s->adapter_key = want;
      return s;
    }
  }
  // None, or it holds another adapter: a model of its own (one model carries one adapter).
  auto fresh = std::make_shared<SharedModel>();
  fresh->rm = load_with_adapter(base, adapter, nf4);
  fresh->adapter_key = want;
  std::lock_guard<std::mutex> lk(registry_mu);
  auto& slot = registry()[key];
  if (!slot.lock()) slot = fresh;
  return fresh;
}

}  // namespace

struct TextGenerator::Impl {
  std::shared_ptr<SharedModel> model;
  bool with_adapter = false;  // this generator's replies run with the shared model's adapter on
  std::unique_ptr<Tokenizer> tok;
  ChatTemplate format = ChatFormat::ChatML;
  std::string description;
};

TextGenerator::TextGenerator() : impl_(std::make_unique<Impl>()) {}
TextGenerator::~TextGenerator() = default;

std::unique_ptr<TextGenerator> TextGenerator::open(const std::string& model_dir, const std::string& adapter_dir, bool nf4) {
  std::unique_ptr<TextGenerator> g(new TextGenerator());
  g->impl_->model = shared_model(model_dir, adapter_dir, nf4);
  g->impl_->with_adapter = !adapter_dir.empty();
  g->impl_->tok = load_tokenizer(model_dir);
  g->impl_->format = resolve_chat_template(g->impl_->tok->config());
  g->impl_->description = adapter_dir.empty() ? "base model " + model_dir : "adapter " + adapter_dir + " over " + model_dir;
  return g;
}

std::unique_ptr<TextGenerator> TextGenerator::open_run(const std::string& run_dir) {
  std::unique_ptr<TextGenerator> g(new TextGenerator());
  const RunModel d = describe_run_output(run_dir);
  if (d.method == "full") {  // a model of its own
    g->impl_->model = std::make_shared<SharedModel>();
    g->impl_->model->rm = load_run_output(run_dir);
  } else {  // its adapter over its base, shared with a side showing that base (load_run_output's loading)
    g->impl_->model = shared_model(d.base_model, d.adapter_dir, d.method == "qlora");
    g->impl_->with_adapter = true;
  }
  g->impl_->tok = load_tokenizer(d.method == "full" ? d.lm.dir : d.base_model);
  g->impl_->format = resolve_chat_template(g->impl_->tok->config());
  g->impl_->description = d.method + " " + d.recipe + " run " + run_dir;
  return g;
}

const void* TextGenerator::model_identity() const { return impl_->model->rm.lm.model.get(); }

const ChatTemplate& TextGenerator::format() const { return impl_->format; }
void TextGenerator::set_format(const std::string& name) { impl_->format = resolve_chat_template(impl_->tok->config(), name); }
std::string TextGenerator::description() const { return impl_->description; }

std::string TextGenerator::render(const std::vector<ChatMessage>& msgs) const {
  return render_chat(impl_->format, msgs, true).text;
}

GenerationOutput TextGenerator::reply(const std::vector<ChatMessage>& msgs, const GenerationSettings& s,
                                      const TextCallback& on_text) {
  if (msgs.empty()) throw Error("generate: the conversation is empty");
  if (s.max_new_tokens < 1 || s.temperature < 0 || s.top_p <= 0 || s.top_p > 1 || s.top_k < 0 || s.repetition_penalty <= 0)
    throw Error("generate: sampling settings out of range");
  const Tokenizer& tok = *impl_->tok;
  SamplingParams p;
  p.max_new_tokens = s.max_new_tokens;
  p.temperature = s.temperature;
  p.top_p = s.top_p;
  p.top_k = s.top_k;
  p.repetition_penalty = s.repetition_penalty;
  p.seed = s.seed;
  for (const auto& t : end_of_turn_tokens(impl_->format, tok.config().eos_token)) {
    const int32_t id = tok.token_to_id(t);
    if (id >= 0) p.stop_ids.push_back(id);
  }
  std::lock_guard<std::mutex> turn(impl_->model->mu);  // a model shared with another generator: one reply at a time
  auto& model = impl_->model->rm.lm.model;
  if (impl_->model->adapter_key.size()) set_lora_enabled(model, impl_->with_adapter);
  for (auto e : model->config.eos_token_ids) p.stop_ids.push_back(e);
  if (tok.eos_id() >= 0) p.stop_ids.push_back(tok.eos_id());
  const auto ids = tokenize_chat(tok, impl_->format, msgs, true).ids;
  GenerationOutput out;
  out.prompt_tokens = static_cast<int64_t>(ids.size());
  std::vector<int32_t> gen;
  size_t sent = 0;  // bytes of the reply handed to on_text
  // Streaming decodes a short window, not the whole reply, per token (that was quadratic in the
  // reply's length): tokens [prefix, read) were sent; the text of [prefix, end) minus that of
  // [prefix, read) is what the new tokens add. Decoding both from the same first token keeps a
  // tokenizer's treatment of a leading space the same on both sides.
  size_t prefix = 0, read = 0;
  auto window = [&](size_t a, size_t b) {
    return tok.decode(std::vector<int32_t>(gen.begin() + static_cast<std::ptrdiff_t>(a), gen.begin() + static_cast<std::ptrdiff_t>(b)), true);
  };
  const auto t0 = std::chrono::steady_clock::now();
  at::NoGradGuard ng;
  model->eval();
  std::vector<int64_t> stops = p.stop_ids;
  generate(model, std::vector<int64_t>(ids.begin(), ids.end()), p, [&](int64_t id) {
    for (auto st : stops)
      if (id == st) return true;  // generation ends on it; its text is not part of the reply
    gen.push_back(static_cast<int32_t>(id));
    const std::string before = window(prefix, read), now = window(prefix, gen.size());
    // A character whose bytes are split over tokens waits for the rest.
    if (now.size() >= 3 && now.compare(now.size() - 3, 3, "\xEF\xBF\xBD") == 0) return true;
    std::string piece;
    if (now.size() >= before.size() && now.compare(0, before.size(), before) == 0) {
      piece = now.substr(before.size());
    } else {  // the window's text changed behind what was sent: fall back to the whole reply
      const std::string text = tok.decode(gen, true);
      piece = text.size() > sent ? text.substr(sent) : std::string();
    }
    prefix = read;
    read = gen.size();
    if (!piece.empty()) {
      sent += piece.size();
      if (on_text && !on_text(piece)) {
        out.stopped = true;
        return false;
      }
    }
    return true;
  });
  out.text = tok.decode(gen, true);
  if (on_text && !out.stopped && out.text.size() > sent) on_text(out.text.substr(sent));
  out.tokens = static_cast<int64_t>(gen.size());
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace hone
