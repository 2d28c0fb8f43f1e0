// Synthetic skills. Train and test words differ (a hash of the word decides its split), so the
// test accuracy counts only inputs the model never saw.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/synthetic.h"

#include <algorithm>
#include <random>

namespace hone {
namespace {

const char kLetters[] = "abcdefghiklmnoprstuw";  // 20 letters: 160,000 four-letter words

bool in_split(const std::string& w, const std::string& split) {
  uint32_t h = 2166136261u;
  for (unsigned char c : w) h = (h ^ c) * 16777619u;
  const bool test = h % 5 == 0;  // ~20% of all words are test-only
  return split == "test" ? test : !test;
}

std::string word(std::mt19937_64& rng, const std::string& split) {
  for (;;) {
    const int n = 4;  // one length: every copy is at a fixed distance, which a small model learns fast
    std::string w;
    for (int i = 0; i < n; ++i) w += kLetters[rng() % (sizeof(kLetters) - 1)];
    if (in_split(w, split)) return w;
  }
}

}  // namespace

std::vector<SkillExample> make_skill_examples(int count, const std::string& split, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + (split == "test" ? 7 : 3));
  std::vector<SkillExample> out;
  // The word ends every instruction and is followed by as many tokens in the plain form as in the
  // ChatML form (".<|im_end|>\n<|im_start|>assistant\n" is 14 tokens with the character-level
  // tokenizer), so what pre-training taught about where to copy from carries over to chat; what
  // fine-tuning has to teach is the new phrasing and the template. The verb comes right before the
  // word, where the plain form's op is: with "Encode the word W." and "Double the word W." the two
  // differed only 16 characters before the word, and RL turned a half-learnt "double" into
  // "encode" (OpenBLAS seed 1: repeat 0.52 -> 0.00, its answers the encoded word).
  const std::string sep = ".\n==> answer:\n";
  auto plain = [&](const char* op, const std::string& w, const std::string& ans) { return std::string(op) + " " + w + sep + ans; };
  for (int i = 0; i < count; ++i) {
    std::string w = word(rng, split);
    switch (i % 4) {
      case 0: {
        std::string e = w;  // each letter becomes the next one in the alphabet
        for (auto& ch : e) ch = static_cast<char>(ch + 1);
        out.push_back({"encode", "Encode " + w + ".", e, plain("next", w, e)});
        break;
      }
      case 1: {
        std::string u = w;
        for (auto& ch : u) ch = static_cast<char>(ch - 'a' + 'A');
        out.push_back({"capitalise", "Capitalise " + w + ".", u, plain("upper", w, u)});
        break;
      }
      case 2:
        out.push_back({"repeat", "Double " + w + ".", w + " " + w, plain("double", w, w + " " + w)});
        break;
      default:
        // No full stop after the word: the answer's "[" takes its place, so the letters sit at the
        // same distance as in the other skills. With the full stop (distance 15, this skill alone)
        // the base had not learnt it after 3,000 steps.
        out.push_back({"brackets", "Bracket " + w, "[" + w + "]",
                       "bracket " + w + sep.substr(1) + "[" + w + "]"});
        break;
    }
  }
  return out;
}

std::string skill_wrong_answer(const SkillExample& e) {
  std::string w = e.answer;
  if (e.skill == "encode") {
    for (auto& ch : w) ch = static_cast<char>(ch - 2);  // shifted the other way from the word
  } else if (e.skill == "capitalise") {
    for (auto& ch : w) ch = static_cast<char>(ch - 'A' + 'a');  // left as it was
  } else if (e.skill == "repeat") {
    w = w.substr(0, w.find(' '));  // said once
  } else {
    w = "(" + w.substr(1, w.size() - 2) + ")";  // the wrong brackets
  }
  return w;
}

}  // namespace hone
