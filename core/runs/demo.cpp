// The demo's base model and datasets (see demo.h). Pre-training is the table's cpt recipe with its
// demo preset (train/recipes.cpp), full training of a freshly initialised model.
// SPDX-License-Identifier: GPL-3.0-or-later
#include "runs/demo.h"

#include <filesystem>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/json_file.h"
#include "data/synthetic.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "store/datasets.h"
#include "tokenizer/bpe_trainer.h"
#include "train/recipes.h"

namespace hone {
namespace {

// Bumped whenever the synthetic data changes, so that cached base models are rebuilt
// (2: the brackets skill lost its full stop; 3: documents of one to three examples, half after a
// line of random text, and instructions with the verb right before the word, "Double W.").
constexpr int kDemoVersion = 3;

// The cached base is reused only if it was built by this version of the demo's data with the same
// seed and settings (hone_demo.json); otherwise its skills would not match the fine-tuning data,
// or a shortened test build would stand in for the real one. 0 steps stands for the adaptive default.
nlohmann::json stamp_of(const DemoBaseOptions& o) {
  return {{"demo_version", kDemoVersion}, {"seed", o.seed}, {"pretrain_steps", o.pretrain_steps}, {"pretrain_lr", o.pretrain_lr}};
}

// A line of 1-24 random letters, spaces and punctuation, ended by a newline: text the skills may
// follow, as a chat template's header precedes an instruction.
std::string random_line(std::mt19937_64& rng) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,:!?<>|_";
  std::string s;
  for (size_t n = 1 + rng() % 24; n > 0; --n) s += kChars[rng() % (sizeof(kChars) - 1)];
  return s + "\n";
}

// Share of probes the base completes in the plain pre-training form ("op word.\n==> answer:\n" ->
// answer), greedy. Tells whether pre-training has taught the skills yet.
double plain_accuracy(CausalLM& m, const Tokenizer& tok, const std::vector<SkillExample>& probes) {
  int ok = 0;
  std::mt19937_64 rng(12345);  // the same random lines at every probe
  for (size_t i = 0; i < probes.size(); ++i) {
    const SkillExample& e = probes[i];
    // A third of the probes come after another example and a third after a line of random text,
    // as skills sit in the pre-training documents.
    const std::string before = i % 3 == 1 ? probes[i - 1].plain + "\n" : i % 3 == 2 ? random_line(rng) : std::string();
    const std::string prefix = before + e.plain.substr(0, e.plain.size() - e.answer.size());
    // Encoded as pre-training encoded its documents (with BOS).
    const std::vector<int32_t> ids = tok.encode(prefix, true).ids;
    SamplingParams p;
    p.max_new_tokens = static_cast<int>(e.answer.size());
    auto r = generate(m, std::vector<int64_t>(ids.begin(), ids.end()), p);
    ok += tok.decode(std::vector<int32_t>(r.tokens.begin(), r.tokens.end()), true) == e.answer;
  }
  m->train();
  return probes.empty() ? 0 : static_cast<double>(ok) / probes.size();
}

}  // namespace

std::string demo_base_dir(const std::string& workspace) { return join_path(join_path(workspace, "demo"), "skills-base"); }

bool demo_base_cached(const DemoBaseOptions& o) {
  const std::string base = demo_base_dir(o.workspace), stamp = join_path(base, "hone_demo.json");
  return file_exists(join_path(base, "model.safetensors")) && file_exists(stamp) && read_json_file(stamp) == stamp_of(o);
}

DemoBase build_demo_base(const DemoBaseOptions& o, const DemoHooks& hooks) {
  auto say = [&](const std::string& s) {
    if (hooks.log) hooks.log(s);
  };
  const std::string demo = join_path(o.workspace, "demo");
  make_dirs(demo);
  // One process builds the base at a time; a second demo on the workspace waits, then finds it built.
  FileLock lock(join_path(demo, "demo.lock"), FileLock::Mode::Try);
  std::unique_ptr<FileLock> waited;
  if (!lock.held()) {
    say("another process is building the demo's base model in " + demo + "; waiting for it...");
    waited = std::make_unique<FileLock>(join_path(demo, "demo.lock"), FileLock::Mode::Wait);
  }
  std::error_code ec;
  DemoBase out;
  out.dir = demo_base_dir(o.workspace);
  if (!o.rebuild && demo_base_cached(o)) return out;
  out.rebuilt = true;

  const std::string init = join_path(demo, "init");
  make_dirs(init);
  write_builtin_tokenizer(init, 0);  // one token per character: the skills work on letters
  auto tok = load_tokenizer(init);
  nlohmann::json cj = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 128},
                       {"intermediate_size", 384}, {"num_hidden_layers", 4}, {"num_attention_heads", 8},
                       {"num_key_value_heads", 8}, {"vocab_size", static_cast<int64_t>(tok->vocab_size())},
                       {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
                       {"tie_word_embeddings", false}, {"eos_token_id", tok->eos_id()}};
  {
    CausalLM m(parse_model_config(cj, "demo"));
    init_weights(m, o.seed, 0.02, 1.0);  // unit-scale embeddings: a small model leaves its plateau sooner
    save_model(m, init);
  }
  // Documents of one to three examples, one per line, half of them after a line of random text, so
  // that a skill starts anywhere in its sequence and after anything. With every document a single
  // example the base tied its skills to the start of the text: any prefix ("ok. double kmst.")
  // broke them (0-1 of 5 words on three seeds), and packing alone still left "ok. " breaking them.
  // Chat fine-tuning, where the instruction comes after the template's header, then had to build
  // the skills anew and learnt "say it twice" late or never on some seeds (docs/reliability.md).
  std::string corpus;
  {
    const auto ex = make_skill_examples(40000, "train", o.seed + 1);
    std::mt19937_64 rng(o.seed * 131 + 17);
    for (size_t i = 0; i < ex.size();) {
      std::string doc = rng() % 2 ? random_line(rng) : std::string();
      for (size_t n = 1 + rng() % 3; n > 0 && i < ex.size(); --n) {
        if (!doc.empty() && doc.back() != '\n') doc += "\n";
        doc += ex[i++].plain;
      }
      corpus += nlohmann::json({{"text", doc}}).dump() + "\n";
    }
  }
  write_file_atomic(join_path(demo, "pretrain.jsonl"), corpus);
  // Full training on plain text, one document per sequence (no example is cut at a block edge,
  // and short sequences make each step cheap; copying letters is learnt after ~1,000 steps) at a
  // constant rate: the jump from copying nothing to copying letters comes late and needs the full
  // rate to finish; a cosine decay left it half-learnt.
  RunConfig pc = preset_run_config("cpt", "full", true);
  pc.name = "demo-pretrain";
  pc.base_model = init;
  pc.train_data = {join_path(demo, "pretrain.jsonl")};
  pc.lr = o.pretrain_lr;
  // The step at which the model leaves its plateau varies between runs and machines (600 to 1,300
  // steps seen; thread count and BLAS kernels change the arithmetic). So pre-training goes on in
  // rounds of 200 steps until the base completes 95% of 40 plain-text probes, up to 3,200 steps;
  // pretrain_steps N trains exactly N.
  const bool fixed = o.pretrain_steps > 0;
  pc.max_steps = fixed ? o.pretrain_steps : 800;
  pc.save_every = fixed ? 0 : 200;
  pc.seed = o.seed;
  auto probes = make_skill_examples(40, "train", o.seed + 9);
  TrainOptions po;
  po.run_dir = join_path(demo, "pretrain-run");
  std::filesystem::remove_all(po.run_dir, ec);
  po.stop_requested = hooks.stop_requested;
  po.on_progress = [&](const StepMetrics& s) {
    if (s.step % 250 == 0 || s.step == s.total_steps)
      say("  step " + std::to_string(s.step) + "/" + std::to_string(s.total_steps) + "  loss " + std::to_string(s.loss()).substr(0, 6));
    return Control::Continue;
  };
  say("pre-training the base model (full training on plain text, " +
      (fixed ? std::to_string(pc.max_steps) + " steps" : std::string("until it has learnt the skills")) + ")...");
  TrainResult pr;
  for (;;) {
    pr = train(pc, po);
    if (pr.status == "cancelled") throw Interrupted();
    if (pr.status != "completed") throw Error("pre-training failed: " + pr.error);
    if (fixed) break;
    auto probe = load_model(pr.output_dir);
    const double acc = plain_accuracy(probe.model, *tok, probes);
    say("  base after " + std::to_string(pc.max_steps) + " steps: " + std::to_string(acc).substr(0, 4) + " of plain-text probes");
    if (acc >= 0.95 || pc.max_steps >= 3200 || pr.last_checkpoint.empty()) break;
    po.resume_from = pr.last_checkpoint;
    pc.max_steps += 200;
  }
  std::filesystem::remove_all(out.dir, ec);
  std::filesystem::rename(pr.output_dir, out.dir, ec);
  if (ec) throw file_error(out.dir, "cannot move the pre-trained model: " + ec.message());
  write_file_atomic(join_path(out.dir, "hone_demo.json"), stamp_of(o).dump() + "\n");
  return out;
}

std::string ensure_demo_dataset(Workspace& ws, DemoData which, uint64_t seed, bool replace) {
  const char* names[] = {"demo-skills", "demo-preferences", "demo-skills-test", "demo-skills-choice"};
  const char* files[] = {"skills-train.jsonl", "skills-preferences.jsonl", "skills-test.jsonl", "skills-choice.jsonl"};
  const std::string name = names[static_cast<int>(which)];
  const std::string file = join_path(join_path(ws.dir(), "demo"), files[static_cast<int>(which)]);
  // Instruction rows for the skills (SFT trains on them; GRPO/PPO take prompts and answers), pairs
  // of the right and a plausible wrong answer, or the held-out suites (seed + 2: the words the demo
  // has always tested on, disjoint from the training words).
  std::string rows;
  if (which == DemoData::SkillsChoice) {
    const auto ex = make_skill_examples(200, "test", seed + 4);
    for (size_t i = 0; i < ex.size(); ++i) {
      const auto& e = ex[i];
      const auto& other = ex[(i + 4) % ex.size()];  // the same skill (the order cycles through the four), another word
      std::vector<std::string> choices = {e.answer, skill_wrong_answer(e), other.answer};
      const size_t at = (i * 7 + seed) % 3;  // where the right answer goes
      std::swap(choices[0], choices[at]);
      rows += nlohmann::json({{"question", e.instruction}, {"choices", choices}, {"answer", at}}).dump() + "\n";
    }
  } else {
    const bool test = which == DemoData::SkillsTest;
    const auto ex = test ? make_skill_examples(100, "test", seed + 2)
                         : make_skill_examples(which == DemoData::Skills ? 4000 : 2000, "train", seed + 3);
    for (const auto& e : ex)
      rows += (which != DemoData::Preferences
                   ? nlohmann::json({{"instruction", e.instruction}, {"output", e.answer}})
                   : nlohmann::json({{"prompt", e.instruction}, {"chosen", e.answer}, {"rejected", skill_wrong_answer(e)}}))
                  .dump() +
              "\n";
  }
  // Two demos on one workspace: the file and the dataset are written by one at a time.
  FileLock lock(join_path(join_path(ws.dir(), "demo"), "demo.lock"), FileLock::Mode::Wait);
  // The same rows already imported (by another demo on this workspace, say) are kept even when
  // `replace` asks: replacing them would pull the dataset from under a demo already using it.
  const bool same_rows = file_exists(file) && read_file(file) == rows;
  if (!same_rows) write_file_atomic(file, rows);
  // Runs keep their own copy of the rows they trained on, so replacing the dataset loses nothing;
  // it is replaced in one step, so a run starting in another process finds old rows or new ones.
  int64_t old_id = 0;
  const std::string temp = name + ".replacing";
  for (const auto& d : list_datasets(ws)) {
    if (d.name == temp) delete_dataset(ws, d.id);  // left by a process killed mid-way
    if (d.name != name) continue;
    if (!replace || same_rows) return name;
    old_id = d.id;
  }
  if (!old_id) {
    import_dataset(ws, file, name, {});
    return name;
  }
  const ImportReport rep = import_dataset(ws, file, temp, {});
  if (rep.dataset_id <= 0) throw Error("demo: cannot import " + file);
  replace_dataset(ws, old_id, rep.dataset_id);
  return name;
}

WarmupDecision next_warmup(const std::vector<WarmupRound>& rounds, double until, int64_t step, int64_t max_steps) {
  if (rounds.empty()) throw Error("next_warmup: no round probed yet");
  const WarmupRound& last = rounds.back();
  WarmupDecision d;
  if (last.worst >= until || last.steps + step > max_steps) {
    d.start = last.steps;
    d.why = last.worst >= until ? "passed" : "cap";
    return d;
  }
  d.next = last.steps + step;
  return d;
}

}  // namespace hone
