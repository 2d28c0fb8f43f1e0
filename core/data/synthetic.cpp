// Synthetic skills. Train and test words differ (a hash of the word decides its split), so the
// test accuracy counts only inputs the model never saw.
#include "data/synthetic.h"

#include <algorithm>
#include <random>

namespace hone {
namespace {

const char kLetters[] = "abcdefghiklmnoprstuw";

bool in_split(const std::string& w, const std::string& split) {
  uint32_t h = 2166136261u;
  for (unsigned char c : w) h = (h ^ c) * 16777619u;
  const bool test = h % 5 == 0;  // ~20% of all words are test-only
  return split == "test" ? test : !test;
}

std::string word(std::mt19937_64& rng, const std::string& split) {
  for (;;) {
    int n = 3 + static_cast<int>(rng() % 2);  // 3-4 letters: copies stay at near-fixed offsets
    std::string w;
    for (int i = 0; i < n; ++i) w += kLetters[rng() % (sizeof(kLetters) - 1)];
    if (in_split(w, split)) return w;
  }
}

}  // namespace

std::vector<SkillExample> make_skill_examples(int count, const std::string& split, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + (split == "test" ? 7 : 3));
  std::vector<SkillExample> out;
  for (int i = 0; i < count; ++i) {
    std::string w = word(rng, split);
    switch (i % 4) {
      case 0: {
        std::string r(w.rbegin(), w.rend());
        out.push_back({"reverse", "Reverse the word " + w + ".", r, "reverse " + w + " = " + r});
        break;
      }
      case 1: {
        std::string u = w;
        for (auto& ch : u) ch = static_cast<char>(ch - 'a' + 'A');
        out.push_back({"capitalise", "Write " + w + " in capital letters.", u, "upper " + w + " = " + u});
        break;
      }
      case 2:
        out.push_back({"repeat", "Say " + w + " twice.", w + " " + w, "twice " + w + " = " + w + " " + w});
        break;
      default:
        out.push_back({"count", "How many letters are in " + w + "?", std::to_string(w.size()),
                       "count " + w + " = " + std::to_string(w.size())});
        break;
    }
  }
  return out;
}

}  // namespace hone
