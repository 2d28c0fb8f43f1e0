#!/usr/bin/env python3
"""GGUF quantization report: exports a run at f16 and at each quantized type (with and without
--calibrate for the K-quant mixtures), then runs every file in llama.cpp (node-llama-cpp, through
tests/interop/llama_cpp_probe.mjs) on held-out text and reports, per type: file size, the time Hone
took to write the file (quantization included), mean NLL per token on the held-out rows, its gap to
f16, and next-token agreement with the f16 file (the share of positions whose most likely token is
the same).

usage: bench/quant_report.py --run RUN_DIR --heldout FILE.jsonl [--rows 40] [--max-tokens 128]
                             [--types q8_0,q6_k,q5_k_m,q4_k_m] [--work DIR] [--cli build/bin/hone-cli]
                             [--node-llama-cpp build/interop]

FILE.jsonl holds {"text": ...} rows the run did not train on. Prints a Markdown table and writes
report.json in the work folder. Measure on a quiet machine: the write times are wall-clock.
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def export(cli, run, dtype, out, calibrate):
    cmd = [cli, "export", "--run", run, "--format", "gguf", "--dtype", dtype, "--out", out, "--json"]
    if calibrate:
        cmd.append("--calibrate")
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    done = [l for l in lines if l.get("event") == "done"]
    if not done:
        sys.exit("export %s failed (exit %d): %s" % (dtype, p.returncode, p.stderr[-2000:]))
    d = done[0]
    gguf = [f for f in d["files"] if f.endswith(".gguf")][0]
    return d, os.path.join(out, gguf)


def probe(node_dir, work, model, texts=None, prompts=None):
    path = os.path.join(work, "probe.json")
    with open(path, "w") as f:
        json.dump({"model": model, "texts": texts or [], "prompts": prompts or [], "top": 1}, f)
    env = dict(os.environ, HONE_NODE_LLAMA_CPP=node_dir)
    p = subprocess.run(["node", os.path.join(ROOT, "tests/interop/llama_cpp_probe.mjs"), path], capture_output=True,
                       text=True, env=env)
    if p.returncode != 0:
        sys.exit("llama.cpp probe failed on %s: %s" % (model, p.stderr[-2000:]))
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--types", default="q8_0,q6_k,q5_k_m,q4_k_m")
    ap.add_argument("--work", default="/tmp/hone-quant-report")
    ap.add_argument("--cli", default=os.path.join(ROOT, "build/bin/hone-cli"))
    ap.add_argument("--node-llama-cpp", default=os.path.join(ROOT, "build/interop"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    texts = []
    with open(a.heldout) as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= a.rows:
                break
    variants = [("f16", False)]
    for t in a.types.split(","):
        variants.append((t, False))
        if t != "q8_0":
            variants.append((t, True))
    rows, ref = [], None
    prompts = None
    for dtype, cal in variants:
        name = dtype + ("-calibrated" if cal else "")
        out = os.path.join(a.work, name)
        subprocess.run(["rm", "-rf", out])
        d, path = export(a.cli, a.run, dtype, out, cal)
        if prompts is None:  # llama.cpp's own tokenization of the held-out rows, cut to max-tokens
            toks = probe(a.node_llama_cpp, a.work, path, texts=texts)["tokens"]
            prompts = [t[: a.max_tokens] for t in toks if len(t) >= 2]
        got = probe(a.node_llama_cpp, a.work, path, prompts=prompts)
        nll, n, argmax = 0.0, 0, []
        for rows_p in got["positions"]:
            for r in rows_p:
                argmax.append(r["argmax"] if r else None)
                if r and "next_p" in r:
                    nll += -math.log(max(r["next_p"], 1e-30))
                    n += 1
        row = {"type": name, "bytes": os.path.getsize(path), "write_s": d["quantize_seconds"], "mean_nll": nll / n,
               "positions": n, "tensor_types": d["tensor_types"], "check": d["check"]["passed"],
               "check_max_logit_diff": d["check"]["max_logit_diff"], "calibration_rows": d["calibration_rows"]}
        if ref is None:
            ref = (row, argmax)
        same = sum(1 for x, y in zip(argmax, ref[1]) if x is not None and x == y)
        row["agreement_vs_f16"] = same / max(1, sum(1 for x in ref[1] if x is not None))
        row["nll_gap_vs_f16"] = row["mean_nll"] - ref[0]["mean_nll"]
        rows.append(row)
        print("%s done: %.1f MB, NLL %.4f" % (name, row["bytes"] / 1e6, row["mean_nll"]), file=sys.stderr)
    with open(os.path.join(a.work, "report.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print("| type | file MB | write s | mean NLL | gap vs f16 | next token = f16 | export check |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.1f | %.2f | %.4f | %+.4f | %.1f%% | %s (%.3g) |" % (
            r["type"], r["bytes"] / 1e6, r["write_s"], r["mean_nll"], r["nll_gap_vs_f16"], 100 * r["agreement_vs_f16"],
            "passed" if r["check"] else "FAILED", r["check_max_logit_diff"]))
    print("\n%d held-out rows, %d positions; llama.cpp via node-llama-cpp (f32 KV cache, 1 thread)" % (len(prompts), rows[0]["positions"]))


if __name__ == "__main__":
    main()
