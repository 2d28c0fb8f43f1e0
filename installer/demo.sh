#!/usr/bin/env bash
# Headless demo on a built-in checkpoint (no download): makes a small Llama-shaped model with
# Hone's own tokenizer, then inspects, tokenizes, scores and generates with hone-cli.
# usage: installer/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
cli="$build/bin/hone-cli"
ws=${HONE_WORKSPACE:-${XDG_DATA_HOME:-$HOME/.local/share}/hone}
model="$ws/demo/base-model"
mkdir -p "$ws/demo"

step() { printf '\n== %s\n' "$*"; }
step "This machine"
"$cli" inspect --system
if [[ ! -f $model/model.safetensors ]]; then
  step "Creating the demo base model in $model"
  "$cli" init-model --preset small --tokenizer builtin --out "$model" --seed 0
fi
step "The model"
"$cli" inspect --model "$model"
step "Tokenizing"
"$cli" tokenize --tokenizer "$model" --text "The capital of France is Paris."
step "Scoring a sentence (per-token negative log-likelihood; a random model scores about ln(vocab))"
"$cli" score --model "$model" --text "The capital of France is Paris." --timing
step "Generating (the model is untrained, so expect noise until the training issue lands)"
"$cli" generate --model "$model" --prompt "What is fine-tuning?" --chat --max-new-tokens 24 --temperature 0.8 --seed 1
