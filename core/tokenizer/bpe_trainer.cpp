// Byte-level BPE training: count adjacent symbol pairs over pre-tokenized words (weighted by word
// frequency), merge the most frequent pair (ties: smallest pair of strings), repeat.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "tokenizer/bpe_trainer.h"

#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/files.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pretokenizer.h"

namespace hone {
namespace {

const char* kPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* kSpecials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

// Project-written text for the built-in tokenizer: plain English about the task Hone serves.
const char* kCorpus = R"(Fine-tuning adapts a pre-trained language model to your own data. You pick a base model,
a dataset and a method, then train and compare the results. Instruction tuning teaches the model to follow
instructions and answer questions in a consistent format. Continued pre-training on raw text adapts the model to
a domain such as law, medicine or the code of your company. LoRA trains small low-rank adapters while the base
weights stay frozen, so it needs far less memory than full fine-tuning. QLoRA stores the frozen weights in four
bits and trains the same adapters. Preference alignment with DPO uses pairs of a chosen and a rejected answer.
The user asks a question and the assistant answers it. What is the capital of France? The capital of France is
Paris. Add 12 and 30. The answer is 42. Reverse the word table: elbat. Sort the numbers 9 3 7 1: 1 3 7 9.
Translate hello into French: bonjour. Count the letters in the word model: 5. Repeat after me: the quick brown
fox jumps over the lazy dog. Summarise the text in one sentence. Write a short poem about the sea. Explain why the
sky is blue. The model learns from examples, and the loss falls as training goes on. Evaluate on held-out data to
see whether the model generalises, and stop early when the validation loss rises again.)";

}  // namespace

std::string train_bytelevel_tokenizer_json(const std::string& corpus, int num_merges) {
  // Word frequencies over byte-mapped pre-tokens.
  Regex re(kPattern);
  std::map<std::string, int> freq;
  for (auto [b, e] : re.find_all(corpus)) freq[corpus.substr(b, e - b)]++;
  std::vector<std::string> vocab;  // id -> token string (mapped bytes)
  std::map<std::string, int> ids;
  for (int b = 0; b < 256; ++b) {
    ids[byte_to_unicode(static_cast<uint8_t>(b))] = static_cast<int>(vocab.size());
    vocab.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
  }
  struct Word {
    std::vector<int> sym;
    int n;
  };
  std::vector<Word> words;
  for (auto& kv : freq) {
    Word w{{}, kv.second};
    for (unsigned char c : kv.first) w.sym.push_back(ids[byte_to_unicode(c)]);
    words.push_back(std::move(w));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < num_merges; ++m) {
    std::map<std::pair<int, int>, long> counts;
    for (const auto& w : words)
      for (size_t i = 0; i + 1 < w.sym.size(); ++i) counts[{w.sym[i], w.sym[i + 1]}] += w.n;
    std::pair<int, int> best{-1, -1};
    long best_n = 1;  // a pair must occur at least twice to be worth a token
    for (const auto& kv : counts) {
      if (kv.second > best_n ||
          (kv.second == best_n && best.first >= 0 &&
           std::make_pair(vocab[kv.first.first], vocab[kv.first.second]) < std::make_pair(vocab[best.first], vocab[best.second]))) {
        best = kv.first;
        best_n = kv.second;
      }
    }
    if (best.first < 0) break;
    const std::string merged = vocab[best.first] + vocab[best.second];
    int nid;
    auto it = ids.find(merged);
    if (it != ids.end()) nid = it->second;
    else {
      nid = static_cast<int>(vocab.size());
      ids[merged] = nid;
      vocab.push_back(merged);
    }
    merges.emplace_back(vocab[best.first], vocab[best.second]);
    for (auto& w : words) {
      std::vector<int> out;
      for (size_t i = 0; i < w.sym.size(); ++i) {
        if (i + 1 < w.sym.size() && w.sym[i] == best.first && w.sym[i + 1] == best.second) {
          out.push_back(nid);
          ++i;
        } else {
          out.push_back(w.sym[i]);
        }
      }
      w.sym = std::move(out);
    }
  }
  nlohmann::json v = nlohmann::json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  nlohmann::json mj = nlohmann::json::array();
  for (auto& m : merges) mj.push_back({m.first, m.second});
  nlohmann::json added = nlohmann::json::array();
  int next = static_cast<int>(vocab.size());
  for (const char* s : kSpecials)
    added.push_back({{"id", next++}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  nlohmann::json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", kPattern}}}, {"behavior", "Isolated"}, {"invert", false}}, bl}}}},
      {"post_processor", bl},
      {"decoder", bl},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", v}, {"merges", mj}}}};
  return j.dump(1);
}

void write_builtin_tokenizer(const std::string& dir, int merges) {
  ::mkdir(dir.c_str(), 0755);
  write_file_atomic(join_path(dir, "tokenizer.json"), train_bytelevel_tokenizer_json(kCorpus, merges));
  nlohmann::json cfg = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"bos_token", nullptr},
      {"eos_token", "<|im_end|>"},
      {"pad_token", "<|endoftext|>"},
      {"add_bos_token", false},
      {"model_max_length", 2048},
      {"clean_up_tokenization_spaces", false},
      {"chat_template",
       "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
       "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"}};
  write_file_atomic(join_path(dir, "tokenizer_config.json"), cfg.dump(2) + "\n");
}

}  // namespace hone
