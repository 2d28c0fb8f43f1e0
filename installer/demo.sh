#!/usr/bin/env bash
# Headless demo, nothing downloaded: this machine's set-up, then `hone-cli demo` (builds a small
# base model with Hone's own tokenizer, pre-trains it, fine-tunes it with LoRA on four skills and
# shows held-out accuracy before and after), then a chat answer from the fine-tuned adapter.
# usage: installer/demo.sh [BUILD_DIR]
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
build=${1:-build}
cli="$build/bin/hone-cli"
ws=${HONE_WORKSPACE:-${XDG_DATA_HOME:-$HOME/.local/share}/hone}

step() { printf '\n== %s\n' "$*"; }
step "This machine"
"$cli" inspect --system
step "Fine-tuning demo (workspace: $ws)"
"$cli" demo --workspace "$ws"
step "The fine-tuned model answering in chat form"
"$cli" generate --model "$ws/demo/skills-base" --adapter "$ws/runs/demo-lora/adapter" \
  --prompt "Capitalise tone." --chat --max-new-tokens 8
