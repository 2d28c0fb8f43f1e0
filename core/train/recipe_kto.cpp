// KTO recipe (Ethayarajh et al. 2024, as TRL): unpaired ratings. Each example is the rated
// completion plus a mismatched one (this prompt with the next example's completion) whose
// policy-minus-reference log-ratio, averaged over the micro-batch and clamped at 0, estimates the
// KL term z. Desirable: w_d (1 - s(beta (r - z))); undesirable: w_u (1 - s(beta (z - r))).
#include <cmath>

#include "train/pair_recipe.h"
#include "train/preference_loss.h"

namespace hone {
namespace {

class KtoRecipe : public PairRecipe {
 public:
  std::string name() const override { return "kto"; }
  bool needs_reference() const override { return true; }
  std::vector<std::string> plot_hints() const override { return {"rewards/chosen", "rewards/rejected", "kl"}; }

  void prepare(const RunConfig& cfg, const Tokenizer& tok, const LogFn& log) override {
    cfg_ = cfg;
    PairRecipe::prepare(cfg, tok, log);
    int64_t nd = 0, nu = 0;
    for (const auto& e : train_) (e.desirable ? nd : nu)++;
    if (log) log("kto: " + std::to_string(nd) + " desirable and " + std::to_string(nu) + " undesirable examples");
    // TRL's guidance: desirable_weight * n_d / (undesirable_weight * n_u) within [1, 4/3].
    const double ratio = nu ? (cfg.desirable_weight * nd) / (cfg.undesirable_weight * nu) : INFINITY;
    if (log && (nd == 0 || nu == 0 || ratio < 1.0 || ratio > 4.0 / 3.0))
      log("warning: kto classes are imbalanced (weighted desirable/undesirable = " + std::to_string(ratio).substr(0, 5) +
          "); set desirable_weight and undesirable_weight so that it lies in [1, 1.33]");
  }

  std::vector<double> counts(const std::vector<size_t>& idx) const override {
    double d = 0, u = 0;
    for (auto i : idx) (ex()[i].desirable ? d : u) += 1;
    return {static_cast<double>(idx.size()), d, u};
  }

  MicroLoss loss(RecipeEnv& env, const std::vector<size_t>& idx, const std::vector<double>& step_counts) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    Batch b = batch_of(idx, env.pad_id, eval_split());
    at::Tensor ref = reference_logps(env, idx, b, eval_split());  // [2B]: rated, then mismatched
    // The policy's gradient flows through the rated completions only; the KL rows are detached.
    std::vector<const Sequence*> rated, mism;
    for (auto i : idx) rated.push_back(&ex()[i].a), mism.push_back(&ex()[i].b);
    Batch br = collate(rated, env.pad_id), bm = collate(mism, env.pad_id);
    SeqLogps pol = sequence_logps(env.model, br, env.dev, env.autocast);  // [B]
    at::Tensor pol_kl;
    {
      at::NoGradGuard ng;
      pol_kl = sequence_logps(env.model, bm, env.dev, env.autocast).logps;  // [B]
    }
    auto desirable = at::empty({B}, at::kBool);
    for (int64_t k = 0; k < B; ++k) desirable[k] = ex()[idx[static_cast<size_t>(k)]].desirable;
    desirable = desirable.to(env.dev);
    auto t = kto_loss(pol.logps, ref.narrow(0, 0, B), desirable, pol_kl, ref.narrow(0, B, B), cfg_.beta,
                      cfg_.desirable_weight, cfg_.undesirable_weight);
    const double n = std::max(1.0, step_counts.at(0)), nd = step_counts.at(1), nu = step_counts.at(2);
    MicroLoss out;
    out.loss = t.losses.sum() / n;
    at::NoGradGuard ng;
    auto dmask = desirable.to(at::kFloat), umask = 1 - dmask;
    auto plp = pol.logps.detach();
    out.scalars.push_back({"kl", t.kl * static_cast<double>(B) / n});
    if (nd > 0) {
      out.scalars.push_back({"rewards/chosen", (t.rewards * dmask).sum().item<double>() / nd});
      out.scalars.push_back({"logps/chosen", (plp * dmask).sum().item<double>() / nd});
    }
    if (nu > 0) {
      out.scalars.push_back({"rewards/rejected", (t.rewards * umask).sum().item<double>() / nu});
      out.scalars.push_back({"logps/rejected", (plp * umask).sum().item<double>() / nu});
    }
    return out;
  }

 protected:
  std::vector<PairExample> build(const RunConfig& cfg, const Tokenizer& tok, const ChatTemplate& f,
                                 const std::vector<std::string>& files) override {
    std::vector<Rating> all;
    for (const auto& file : files) {
      auto r = read_ratings(file);
      all.insert(all.end(), r.begin(), r.end());
    }
    std::vector<PairExample> out;
    for (size_t i = 0; i < all.size(); ++i) {
      // The mismatched completion: the next rating's (a fixed pairing, so that precomputed
      // reference log-probs stay valid across batches and resumes).
      const auto& other = all[(i + 1) % all.size()];
      PairExample e;
      e.desirable = all[i].desirable;
      if (make_example(tok, f, cfg, all[i].prompt, all[i].completion, other.completion, &e)) out.push_back(std::move(e));
    }
    return out;
  }

 private:
  RunConfig cfg_;
};

}  // namespace

std::unique_ptr<Recipe> make_kto_recipe() { return std::make_unique<KtoRecipe>(); }

}  // namespace hone
