#!/usr/bin/python3
"""Summarises a chrome-trace written by `hone-cli bench --profile FILE`: self time per operator
(time inside an op minus the ops it called), largest first, with its share of the traced step.

usage: profile_summary.py FILE [--top N]"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    with open(path) as f:
        ev = json.load(f)
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    spans = defaultdict(list)  # per thread: (start, end, name)
    for e in ev:
        if e.get("ph") == "X":
            spans[e.get("tid")].append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"]))
    self_t, count = defaultdict(float), defaultdict(int)
    total = 0.0  # time covered by top-level events: the denominator of each share
    for tid, s in spans.items():
        s.sort(key=lambda x: (x[0], -x[1]))
        stack = []  # [end, name, child_time]
        def pop():
            end, name, child, start = stack.pop()
            self_t[name] += (end - start) - child
            if stack:
                stack[-1][2] += end - start
        for start, end, name in s:
            while stack and stack[-1][0] <= start:
                pop()
            if not stack:
                total += end - start
            stack.append([end, name, 0.0, start])
        while stack:
            pop()
    for e in ev:
        if e.get("ph") == "X":
            count[e["name"]] += 1
    print(f"{'operator':48} {'calls':>6} {'self ms':>9} {'share':>6}")
    for name, t in sorted(self_t.items(), key=lambda x: -x[1])[:top]:
        print(f"{name[:48]:48} {count[name]:6d} {t / 1000:9.1f} {100 * t / total:5.1f}%")
    print(f"{'traced top-level time':48} {'':6} {total / 1000:9.1f}")


if __name__ == "__main__":
    main()
