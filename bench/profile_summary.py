#!/usr/bin/python3
"""Summarises a chrome-trace written by `hone-cli bench --profile FILE`: self time per operator
(time inside an op minus the ops it called), largest first, with its share of the traced step.
--classes groups the time by op class instead (docs/performance.md): each operator's self time
goes to the class of its nearest enclosing operator that has one, Hone's forward scopes
(hone::linear, hone::lora, ...) and backward nodes (CppNode<FrozenLinearFn>, ...) naming them.

usage: profile_summary.py FILE [--top N] [--classes]"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import sys
from collections import defaultdict


# (substring of an operator's name, class), first match wins.
CLASSES = [
    # FrozenLoraFn (the frozen layer and its adapter's B half in one node) is mostly the frozen
    # GEMM: its backward counts there, its forward under hone::linear; "LoRA" keeps the A half.
    ("hone::linear", "base GEMMs, forward"), ("FrozenLinearFn", "base GEMMs, backward"),
    ("FrozenLoraFn", "base GEMMs, backward"),
    ("MmBackward", "base GEMMs, backward"), ("AddmmBackward", "base GEMMs, backward"),
    ("hone::lora", "LoRA"), ("Lora", "LoRA"),
    ("hone::attention", "attention"), ("BlockedAttentionFn", "attention"),
    ("hone::head", "head and loss"), ("Head", "head and loss"),
    ("hone::norm", "norms, RoPE, activation"), ("hone::rope", "norms, RoPE, activation"),
    ("hone::activation", "norms, RoPE, activation"), ("RmsNormFn", "norms, RoPE, activation"),
    ("RopeFn", "norms, RoPE, activation"), ("GatedActFn", "norms, RoPE, activation"),
    ("hone::optimizer", "optimizer"),
    ("aten::to", "conversions and copies"), ("aten::_to_copy", "conversions and copies"),
    ("aten::copy_", "conversions and copies"), ("aten::clone", "conversions and copies"),
    ("aten::contiguous", "conversions and copies"),
]


def op_class(name):
    for key, cls in CLASSES:
        if key in name:
            return cls
    return None


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    with open(path) as f:
        ev = json.load(f)
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    classes = "--classes" in sys.argv
    spans = defaultdict(list)  # per thread: (start, end, name)
    for e in ev:
        if e.get("ph") == "X":
            spans[e.get("tid")].append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"]))
    self_t, count = defaultdict(float), defaultdict(int)
    total = 0.0  # time covered by top-level events: the denominator of each share
    for tid, s in spans.items():
        s.sort(key=lambda x: (x[0], -x[1]))
        stack = []  # [end, name, child_time, start, class of it or its nearest classed ancestor]
        def pop():
            end, name, child, start, cls = stack.pop()
            self_t[(cls or "other: embedding, residual adds, views, allocation") if classes else name] += (end - start) - child
            if stack:
                stack[-1][2] += end - start
        for start, end, name in s:
            while stack and stack[-1][0] <= start:
                pop()
            if not stack:
                total += end - start
            stack.append([end, name, 0.0, start, op_class(name) or (stack[-1][4] if stack else None)])
        while stack:
            pop()
    for e in ev:
        if e.get("ph") == "X":
            count[e["name"]] += 1
    if classes:
        print(f"{'op class':52} {'ms':>9} {'share':>6}")
        for name, t in sorted(self_t.items(), key=lambda x: -x[1]):
            print(f"{name[:52]:52} {t / 1000:9.1f} {100 * t / total:5.1f}%")
        print(f"{'traced top-level time':52} {total / 1000:9.1f}")
        return
    print(f"{'operator':48} {'calls':>6} {'self ms':>9} {'share':>6}")
    for name, t in sorted(self_t.items(), key=lambda x: -x[1])[:top]:
        print(f"{name[:48]:48} {count[name]:6d} {t / 1000:9.1f} {100 * t / total:5.1f}%")
    print(f"{'traced top-level time':48} {'':6} {total / 1000:9.1f}")


if __name__ == "__main__":
    main()
