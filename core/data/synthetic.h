// Synthetic skills for the demo: small tasks a few-million-parameter model can learn on a CPU in
// minutes, with held-out inputs so that exact-match accuracy measures generalisation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hone {

struct SkillExample {
  std::string skill;
  std::string instruction;  // chat form, for fine-tuning and evaluation
  std::string answer;
  std::string plain;        // the same fact in plain text, for pre-training the base
};

// Skills over 3-4 letter words: reverse, capitalise, say twice, count the letters.
// Words are drawn from disjoint pools for `split` "train" and "test"; the same seed gives the same set.
std::vector<SkillExample> make_skill_examples(int count, const std::string& split, uint64_t seed);

}  // namespace hone
