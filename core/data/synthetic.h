// Synthetic skills for the demo: small tasks a few-million-parameter model can learn on a CPU in
// minutes, with held-out inputs so that exact-match accuracy measures generalisation.
// SPDX-License-Identifier: GPL-3.0-or-later
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

// Skills over 4-letter words: encode (each letter -> the next one), capitalise, say twice, put in
// brackets. Each answer letter sits at a fixed distance from its source letter, which the demo's
// small base model learns within its time budget. (Reversal and spelling out with dashes, where
// that distance changes along the answer, were tried: the base does not learn reversal in time,
// and spelling out does not survive NF4 quantization of a 128-wide model.)
// Words are drawn from disjoint pools for `split` "train" and "test"; the same seed gives the same set.
std::vector<SkillExample> make_skill_examples(int count, const std::string& split, uint64_t seed);

// A plausible wrong answer for each skill: the rejected side of the demo's preference pairs
// (encode shifted the other way, capitalise left as it was, repeat said once, the wrong brackets).
std::string skill_wrong_answer(const SkillExample& e);

}  // namespace hone
