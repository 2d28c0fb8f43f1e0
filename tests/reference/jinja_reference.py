#!/usr/bin/env python3
"""Reference renderer for Hone's Jinja engine: Python's jinja2 configured as transformers
configures it for chat templates (an immutable sandbox, trim_blocks, lstrip_blocks, loop
controls, a {% generation %} block, and its tojson, raise_exception and strftime_now).

Reads a JSON list of cases from the file named by argv[1]:
  {"template": TEXT, "vars": {...}, "now": EPOCH_SECONDS}
and writes a JSON list to argv[2], one entry per case:
  {"text": RENDERED, "generation_spans": [[start_byte, end_byte], ...]}  or  {"error": MESSAGE}
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import datetime
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Generation blocks are written between two private markers, removed afterwards, so that the
# byte offsets of what they produced can be measured on the final text.
G_OPEN, G_CLOSE = "\x00<gen>\x00", "\x00</gen>\x00"


class GenerationBlocks(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

    def _mark(self, caller):
        return G_OPEN + caller() + G_CLOSE


def spans_of(marked):
    out, spans, pos = b"", [], 0
    while True:
        i = marked.find(G_OPEN, pos)
        if i < 0:
            out += marked[pos:].encode()
            return out.decode(), spans
        out += marked[pos:i].encode()
        j = marked.find(G_CLOSE, i)
        inner = marked[i + len(G_OPEN):j]
        start = len(out)
        out += inner.encode()
        spans.append([start, len(out)])
        pos = j + len(G_CLOSE)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    cases = json.load(open(sys.argv[1], encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlocks, loopcontrols])
    env.filters["tojson"] = tojson
    results = []
    for case in cases:
        now = datetime.datetime.fromtimestamp(case.get("now", 0))

        def raise_exception(message):
            raise jinja2.exceptions.TemplateError(message)

        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: now.strftime(fmt)
        try:
            text = env.from_string(case["template"]).render(**case["vars"])
            text, spans = spans_of(text)
            results.append({"text": text, "generation_spans": spans})
        except Exception as e:  # the C++ engine must fail on the same cases
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
