#!/usr/bin/python3
"""Independent reference for Hone's multiple-choice scoring, written from lm-evaluation-harness's
definition of multiple_choice tasks: the prompt strings (plain "Question: ...\\nAnswer:" with " choice",
raw "question" with " choice", chat: ChatML user turn with the assistant turn opened and "choice"),
_encode_pair (trailing whitespace of the context moves to the continuation; the continuation's tokens
are those of the whole string after the context's own encoding), each choice's summed log-probability
under a plain PyTorch forward pass (llama_reference.py), acc (argmax) and acc_norm (argmax of
log-prob / characters of the choice). Token ids come from `hone-cli tokenize` (Hone's tokenizer is
checked against reference ids elsewhere); everything else is computed here.
Run with Debian's /usr/bin/python3 (python3-torch).

usage: choice_reference.py MODEL_DIR SUITE_JSONL HONE_CLI FORMAT
prints {"rows": [{"context", "continuations", "logprobs", "prediction", "prediction_norm"}...]}
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import forward, load_folder  # noqa: E402


def encode(cli, model, text, special):
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        args = [cli, "tokenize", "--tokenizer", model, "--text-file", path] + (["--add-special"] if special else [])
        out = subprocess.run(args, check=True, capture_output=True).stdout
    finally:
        os.unlink(path)
    return json.loads(out)["ids"]


def prompt(row, fmt):
    q, ctx = row["question"], row.get("context", "")
    if fmt == "plain":
        return (ctx + "\n" if ctx else "") + "Question: " + q + "\nAnswer:", [" " + c for c in row["choices"]]
    if fmt == "raw":
        return (ctx + "\n" if ctx else "") + q, [" " + c for c in row["choices"]]
    user = (ctx + "\n\n" if ctx else "") + q
    return "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n", list(row["choices"])


def encode_pair(cli, model, context, continuation, special):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(cli, model, context + continuation, special)
    ctx = encode(cli, model, context, special)
    return ctx, whole[len(ctx):]


def main():
    model, suite, cli, fmt = sys.argv[1:5]
    cfg, W = load_folder(model)
    rows = [json.loads(l) for l in open(suite) if l.strip()]
    out = []
    for row in rows:
        context, conts = prompt(row, fmt)
        lps = []
        for c in conts:
            ctx, cont = encode_pair(cli, model, context, c, fmt != "chat")
            ids = ctx + cont
            with torch.no_grad():
                logp = torch.log_softmax(forward(cfg, W, ids).double(), -1)  # [T, V]
            lps.append(sum(logp[len(ctx) - 1 + k, t].item() for k, t in enumerate(cont)))
        norm = [lp / len(ch) for lp, ch in zip(lps, row["choices"])]
        out.append({"context": context, "continuations": conts, "logprobs": lps,
                    "prediction": max(range(len(lps)), key=lambda i: lps[i]),
                    "prediction_norm": max(range(len(norm)), key=lambda i: norm[i])})
    print(json.dumps({"rows": out}))


if __name__ == "__main__":
    main()
