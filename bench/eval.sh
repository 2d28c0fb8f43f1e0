#!/usr/bin/env bash
# Evaluation throughput (issue 36's targets): a 200-prompt generate suite with 32 new tokens and a
# 1,000-question choice suite (3 choices each) on the demo's base model, and smaller suites on a
# model of Qwen2.5-0.5B's shape (random weights, the Qwen3 tokenizer from ../shared/testdata).
# Prints seconds, prompts/s and choices/s. Run it on a quiet machine (nothing else building).
# usage: bench/eval.sh [BUILD_DIR] [DEMO_WORKSPACE]   (the workspace needs the demo's base: hone-cli demo)
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=${1:-build}
demo_ws=${2:-${HONE_WORKSPACE:-$HOME/.local/share/hone}}
cli=$build/bin/hone-cli
base=$demo_ws/demo/skills-base
[[ -d $base ]] || { echo "no demo base in $demo_ws (run: $cli demo --workspace $demo_ws)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import json, random, sys
w = sys.argv[1]
r = random.Random(7)
word = lambda: "".join(r.choice("abcdefghijklmnopqrstuvwxy") for _ in range(4))
ops = [("Encode the word %s.", lambda s: "".join(chr(ord(c) + 1) for c in s)), ("Capitalise the word %s.", str.upper),
       ("Say this word twice: %s.", lambda s: s + " " + s), ("Put the word %s in brackets.", lambda s: "[" + s + "]")]
def write(name, rows):
    open(f"{w}/{name}.jsonl", "w").write("".join(json.dumps(x) + "\n" for x in rows))
gen, mc = [], []
for i in range(1000):
    q, f = ops[i % 4]
    s = word()
    if i < 200: gen.append({"instruction": q % s, "output": f(s)})
    mc.append({"question": q % s, "choices": [f(s), f(word()), f(s[::-1])], "answer": 0})
write("gen200", gen); write("choice1000", mc); write("gen32", gen[:32]); write("choice100", mc[:100])
PY
ws=$work/ws
for s in gen200 choice1000 gen32 choice100; do $cli dataset import "$work/$s.jsonl" --name $s --workspace "$ws" > /dev/null; done
run() {  # suite model extra... -> "seconds"
  local t0 t1
  t0=$(date +%s.%N)
  $cli eval run --suite "$1" --model "$2" "${@:3}" --json --workspace "$ws" > "$work/out.json"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
report() {  # label seconds count unit
  printf '%-44s %7.2f s  %8.1f %s/s\n' "$1" "$2" "$(echo "$3 / $2" | bc -l)" "$4"
}
report "demo model: generate 200 prompts x 32 tokens" "$(run gen200 "$base" --max-new-tokens 32)" 200 prompts
report "demo model: choice 1000 questions (3000)" "$(run choice1000 "$base")" 3000 choices
q=$work/qwen
mkdir -p "$q.like"
cat > "$q.like/config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
 "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
 "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true,
 "torch_dtype": "bfloat16", "hidden_act": "silu", "bos_token_id": 151643, "eos_token_id": 151645}
JSON
$cli init-model --like "$q.like" --tokenizer "$(dirname "$0")/../../shared/testdata/tokenizers/qwen3" --out "$q" --dtype bf16 > /dev/null
report "Qwen2.5-0.5B shape: generate 32 prompts x 32 tokens" "$(run gen32 "$q" --max-new-tokens 32)" 32 prompts
report "Qwen2.5-0.5B shape: choice 100 questions (300)" "$(run choice100 "$q")" 300 choices
