#!/usr/bin/env python3
"""A small evaluator of Go's text/template, for checking Hone's Ollama Modelfile templates without
Ollama: the subset those templates use (text/template's documented rules, written here from them):
actions {{ }} with the trim markers {{- and -}}; range over .Messages; if / else if / else / end;
variables ($x := v, $x = v, visible in nested blocks); fields .Role and .Content; the functions eq
and not; string literals; true / false. Truthiness: empty string, false and nil are false.

usage: go_template.py TEMPLATE_FILE MESSAGES_JSON   -> prints the rendered text (no trailing newline)
       go_template.py --batch CASES_JSON              -> [{"template", "messages"}, ...] in, rendered texts out (JSON)
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import re
import shlex
import sys

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def tokenize(src):
    """Text and action tokens, with trim markers applied to the neighbouring text."""
    out = []
    pos = 0
    for m in ACTION.finditer(src):
        text = src[pos:m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        out.append(("text", text))
        out.append(("action", m.group(2).strip(), bool(m.group(3))))
        pos = m.end()
    out.append(("text", src[pos:]))
    # a right trim marker trims the text that follows
    for i, t in enumerate(out):
        if t[0] == "action" and t[2] and i + 1 < len(out) and out[i + 1][0] == "text":
            out[i + 1] = ("text", out[i + 1][1].lstrip(" \t\r\n"))
    return [t if t[0] == "text" else ("action", t[1]) for t in out]


def parse(tokens, i=0):
    """Nodes up to the action that ends the block ("end", "else", "else if ..."): (nodes, next, terminator)."""
    nodes = []
    while i < len(tokens):
        t = tokens[i]
        i += 1
        if t[0] == "text":
            if t[1]:
                nodes.append(("text", t[1]))
            continue
        a = t[1]
        if a == "end" or a == "else" or a.startswith("else if "):
            return nodes, i, a
        if a.startswith("if "):
            branches = []
            body, i, term = parse(tokens, i)
            branches.append((a[3:].strip(), body))
            while term != "end":
                if term is None:
                    raise ValueError("unterminated if")
                cond = term[len("else if "):].strip() if term.startswith("else if ") else None
                body, i, term = parse(tokens, i)
                branches.append((cond, body))
            nodes.append(("if", branches))
        elif a.startswith("range "):
            body, i, term = parse(tokens, i)
            if term != "end":
                raise ValueError("range without end")
            nodes.append(("range", a[len("range "):].strip(), body))
        else:
            nodes.append(("action", a))
    return nodes, i, None


class Scope:
    def __init__(self, parent=None):
        self.vars = {}
        self.parent = parent

    def find(self, name):
        s = self
        while s is not None:
            if name in s.vars:
                return s
            s = s.parent
        raise KeyError("undefined variable " + name)


def value(tok, dot, scope):
    if tok.startswith('"'):
        return json.loads(tok)
    if tok == "true":
        return True
    if tok == "false":
        return False
    if tok.startswith("$"):
        return scope.find(tok).vars[tok]
    if tok.startswith("."):
        cur = dot
        for part in tok[1:].split("."):
            if part:
                cur = cur[part]
        return cur
    raise ValueError("cannot evaluate " + tok)


def evaluate(expr, dot, scope):
    words = shlex.split(expr, posix=False)
    if words[0] == "eq":
        return value(words[1], dot, scope) == value(words[2], dot, scope)
    if words[0] == "not":
        return not evaluate(" ".join(words[1:]), dot, scope)
    if len(words) == 1:
        return value(words[0], dot, scope)
    raise ValueError("unsupported expression " + expr)


def run(nodes, dot, scope, out):
    for n in nodes:
        if n[0] == "text":
            out.append(n[1])
        elif n[0] == "action":
            a = n[1]
            m = re.match(r"^(\$\w+)\s*(:?=)\s*(.*)$", a)
            if m:
                v = evaluate(m.group(3), dot, scope)
                if m.group(2) == ":=":
                    scope.vars[m.group(1)] = v
                else:
                    scope.find(m.group(1)).vars[m.group(1)] = v
            else:
                v = evaluate(a, dot, scope)
                out.append("" if v is None else str(v))
        elif n[0] == "if":
            for cond, body in n[1]:
                if cond is None or evaluate(cond, dot, scope):
                    run(body, dot, Scope(scope), out)
                    break
        elif n[0] == "range":
            for item in evaluate(n[1], dot, scope):
                run(n[2], item, Scope(scope), out)


def render(template, messages):
    nodes, _, term = parse(tokenize(template))
    if term is not None:
        raise ValueError("unexpected {{ %s }}" % term)
    out = []
    run(nodes, {"Messages": messages}, Scope(), out)
    return "".join(out)


def ollama_messages(msgs):
    return [{"Role": m["role"], "Content": m["content"]} for m in msgs]


if __name__ == "__main__":
    if sys.argv[1] == "--batch":
        cases = json.load(open(sys.argv[2], encoding="utf-8"))
        print(json.dumps([render(c["template"], ollama_messages(c["messages"])) for c in cases]))
        sys.exit(0)
    tmpl = open(sys.argv[1], encoding="utf-8").read()
    msgs = [{"Role": m["role"], "Content": m["content"]} for m in json.load(open(sys.argv[2], encoding="utf-8"))]
    sys.stdout.write(render(tmpl, msgs))
