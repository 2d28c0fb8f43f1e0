#!/usr/bin/python3
"""Reference ids for Hone's SentencePiece path: encodes each line of a JSON list of strings with
Google's own sentencepiece Python module. usage: spm_reference.py MODEL STRINGS_JSON"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
texts = json.load(open(sys.argv[2], encoding="utf-8"))
print(json.dumps({"ids": [sp.encode(t) for t in texts], "decoded": [sp.decode(sp.encode(t)) for t in texts],
                  "bos": sp.bos_id(), "eos": sp.eos_id(), "vocab": sp.get_piece_size()}))
