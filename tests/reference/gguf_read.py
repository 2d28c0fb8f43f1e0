#!/usr/bin/env python3
"""Independent GGUF reader for the export tests, written from the format description alone
(ggml's gguf.h as summarised in hf-compat.md section 8), not from Hone's C++ reader.

usage: gguf_read.py FILE.gguf [--hf DIR] [--tokenizer DIR] [--lora-peft DIR] [--dump DIR] [--expect-mix SCHEME]

Prints one JSON object: the header, every key (arrays summarised), every tensor (type, shape
outermost first, offset), whether offsets are aligned, and with
  --hf DIR         the largest difference between each GGUF tensor (dequantized, Q/K order and Gemma
                   norms turned back) and the Hugging Face safetensors of DIR;
  --tokenizer DIR  whether tokens / merges / token types agree with DIR's tokenizer.json;
  --lora-peft DIR  for an adapter GGUF: the largest difference between lora_a / lora_b (B's rows turned
                   back for llama q/k) and the PEFT adapter in DIR, and alpha/r against PEFT's scale;
  --dump DIR       every tensor dequantized, as raw little-endian f32 in DIR/<tensor name>.f32;
  --expect-mix S   the type llama-quantize's rules give each tensor under S (q4_k_m, q5_k_m, q6_k), written
                   here from llama.cpp's rules, against the file's types, and the bytes that layout takes.

The quantized blocks (Q8_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) are decoded from ggml's block structs
(ggml-common.h), vectorised over blocks, in float32 in the order ggml's reference decoder multiplies.
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import math
import struct
import sys

import numpy as np

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("truncated at %d" % self.p)
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n).decode("utf-8")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et = self.unpack("<I")
            n = self.unpack("<Q")
            return [self.value(et) for _ in range(n)]
        return self.unpack(SCALARS[t])


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    magic = r.take(4)
    assert magic == b"GGUF", "magic %r" % magic
    version = r.unpack("<I")
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        t = r.unpack("<I")
        kv[k] = r.value(t)
    align = kv.get("general.alignment", 32)
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.unpack("<I")
        ne = [r.unpack("<Q") for _ in range(nd)]
        typ = r.unpack("<I")
        off = r.unpack("<Q")
        infos.append({"name": name, "type": typ, "shape": list(reversed(ne)), "offset": off})
    start = (r.p + align - 1) // align * align
    return version, kv, infos, data, start, align


def f16(raw, at):  # [nb, 1] float32 from the fp16 at byte `at` of each block
    return raw[:, at:at + 2].copy().view("<f2").astype(np.float32)


def q8_0(raw):  # d (f16), qs[32] int8
    return raw[:, 2:].copy().view(np.int8).astype(np.float32) * f16(raw, 0)


def five_bit(qh, qs):  # qh: u32 per block, qs[16]: values j and j+16 share byte j
    j = np.arange(16, dtype=np.uint32)
    lo = (qs & 0xF).astype(np.uint32) | (((qh[:, None] >> j) & 1) << 4)
    hi = (qs >> 4).astype(np.uint32) | (((qh[:, None] >> (j + 16)) & 1) << 4)
    return np.concatenate([lo, hi], axis=1).astype(np.float32)  # [nb, 32]


def q5_0(raw):  # d, qh[4], qs[16]; x = (q - 16) d
    qh = raw[:, 2:6].copy().view("<u4")[:, 0]
    return (five_bit(qh, raw[:, 6:22]) - 16) * f16(raw, 0)


def q5_1(raw):  # d, m, qh[4], qs[16]; x = q d + m
    qh = raw[:, 4:8].copy().view("<u4")[:, 0]
    return five_bit(qh, raw[:, 8:24]) * f16(raw, 0) + f16(raw, 2)


def k_scales(sc):  # scales[12] -> 8 six-bit scales and 8 six-bit mins per block
    s = sc.astype(np.uint32)
    d = np.zeros((sc.shape[0], 8), np.uint32)
    m = np.zeros((sc.shape[0], 8), np.uint32)
    d[:, :4], m[:, :4] = s[:, 0:4] & 63, s[:, 4:8] & 63
    d[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    m[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return d.astype(np.float32), m.astype(np.float32)


def k_affine(raw, five):  # Q4_K: d, dmin, scales[12], qs[128]; Q5_K adds qh[32] before qs
    d, dmin = f16(raw, 0), f16(raw, 2)
    sc, mn = k_scales(raw[:, 4:16])
    qs = raw[:, 48:176] if five else raw[:, 16:144]
    out = []
    for c in range(4):  # 64 values per 32 bytes: sub-block 2c low nibbles, 2c+1 high
        for half in range(2):
            q = ((qs[:, 32 * c:32 * c + 32] >> (4 * half)) & 0xF).astype(np.float32)
            if five:
                q = q + ((raw[:, 16:48] >> (2 * c + half)) & 1).astype(np.float32) * 16
            j = 2 * c + half
            out.append((d * sc[:, j:j + 1]) * q - dmin * mn[:, j:j + 1])
    return np.concatenate(out, axis=1)


def q6_k(raw):  # ql[128], qh[64], scales[16] int8, d; x = d * scale * (q - 32), 16 values a scale
    ql, qh = raw[:, :128], raw[:, 128:192]
    sc = raw[:, 192:208].copy().view(np.int8).astype(np.float32)
    d = f16(raw, 208)
    y = np.zeros((raw.shape[0], 256), np.float32)
    for h in range(2):
        l4, h2 = ql[:, 64 * h:64 * h + 64], qh[:, 32 * h:32 * h + 32]
        parts = [(l4[:, :32] & 0xF) | (((h2 >> 0) & 3) << 4), (l4[:, 32:] & 0xF) | (((h2 >> 2) & 3) << 4),
                 (l4[:, :32] >> 4) | (((h2 >> 4) & 3) << 4), (l4[:, 32:] >> 4) | (((h2 >> 6) & 3) << 4)]
        for k, q in enumerate(parts):
            e = 128 * h + 32 * k  # first value of these 32; its scales are e/16 and e/16 + 1
            scale = np.repeat(sc[:, e // 16:e // 16 + 2], 16, axis=1)
            y[:, e:e + 32] = (d * scale) * (q.astype(np.float32) - 32)
    return y


# type id -> (values a block, bytes a block); decoders for the quantized ones
BLOCKS = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 6: (32, 22), 7: (32, 24), 12: (256, 144), 13: (256, 176),
          14: (256, 210)}
DECODERS = {8: q8_0, 6: q5_0, 7: q5_1, 12: lambda r: k_affine(r, False), 13: lambda r: k_affine(r, True), 14: q6_k}
NAMES = {0: "f32", 1: "f16", 30: "bf16", 8: "q8_0", 6: "q5_0", 7: "q5_1", 12: "q4_k", 13: "q5_k", 14: "q6_k"}


def mix_type(scheme, name, shape, n_layer, has_output):
    """llama-quantize's choice for one tensor (dense models; llama.cpp's src/llama-quant.cpp rules)."""
    if len(shape) < 2:
        return "f32"
    if not name.endswith("weight") or "_norm.weight" in name:
        return "f16"
    ne0 = shape[-1]
    base = {"q4_k_m": "q4_k", "q5_k_m": "q5_k", "q6_k": "q6_k"}[scheme]
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        return "q8_0" if ne0 % 256 else "q6_k"
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1

    def more(i, n):
        return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2
    t = base
    if ("attn_v.weight" in name or "ffn_down" in name) and scheme in ("q4_k_m", "q5_k_m") and more(layer, n_layer):
        t = "q6_k"
    elif "attn_qkv.weight" in name:
        t = {"q4_k_m": "q5_k", "q5_k_m": "q6_k"}.get(scheme, t)
    if ne0 % 256:
        t = {"q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0"}[t]
        if ne0 % 32:
            t = "f16"
    return t


def dequant(info, data, start):
    n = int(np.prod(info["shape"]))
    o = start + info["offset"]
    t = info["type"]
    if t == 0:
        a = np.frombuffer(data, dtype="<f4", count=n, offset=o)
    elif t == 1:
        a = np.frombuffer(data, dtype="<f2", count=n, offset=o).astype(np.float32)
    elif t == 30:
        u = np.frombuffer(data, dtype="<u2", count=n, offset=o).astype(np.uint32) << 16
        a = u.view(np.float32)
    elif t in BLOCKS:
        elems, nbytes = BLOCKS[t]
        nb = n // elems
        raw = np.frombuffer(data, dtype=np.uint8, count=nb * nbytes, offset=o).reshape(nb, nbytes)
        a = DECODERS[t](raw).reshape(-1)
    else:
        raise ValueError("type %d" % t)
    return np.array(a, dtype=np.float32).reshape(info["shape"])


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        buf = data[8 + n + b:8 + n + e]
        dt = {"F32": "<f4", "F16": "<f2", "BF16": "bf16"}[v["dtype"]]
        if dt == "bf16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(buf, dtype=dt).astype(np.float32)
        out[k] = a.reshape(v["shape"])
    return out


def hf_name(g, arch=None):
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if g in fixed:
        return fixed[g]
    parts = g.split(".")
    layer, rest = parts[1], ".".join(parts[2:])
    names = {"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
             "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
             "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
             "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias",
             "attn_v.bias": "self_attn.v_proj.bias", "ffn_gate.weight": "mlp.gate_proj.weight",
             "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
             "attn_q_norm.weight": "self_attn.q_norm.weight", "attn_k_norm.weight": "self_attn.k_norm.weight",
             "attn_qkv.weight": "self_attn.qkv_proj.weight"}
    if arch in ("gemma2", "gemma3", "olmo2"):  # llama.cpp's names for the sandwich (OLMo 2: post-) norms
        names.update({"post_attention_norm.weight": "post_attention_layernorm.weight",
                      "ffn_norm.weight": "pre_feedforward_layernorm.weight",
                      "post_ffw_norm.weight": "post_feedforward_layernorm.weight"})
    if arch == "phi3":  # one fused gate | up tensor
        names["ffn_up.weight"] = "mlp.gate_up_proj.weight"
    return "model.layers.%s.%s" % (layer, names[rest])


# llama.cpp graphs that rotate adjacent pairs: the converter interleaves each head's Q/K rows for them.
PERMUTED = ("llama", "granite", "smollm3")


def llama_permute(w, n_head):
    # Meta's order from HF's: each head's rows [2, d/2] -> [d/2, 2] (interleaved pairs)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    args = sys.argv[1:]
    path = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    version, kv, infos, data, start, align = read_gguf(path)
    out = {"version": version, "n_kv": len(kv), "n_tensors": len(infos), "alignment": align,
           "aligned": all(i["offset"] % align == 0 for i in infos) and start % align == 0,
           "data_start": start, "file_size": len(data),
           "keys": {k: (v if not isinstance(v, list) else "[%d]" % len(v)) for k, v in kv.items()},
           "tensors": [{"name": i["name"], "type": i["type"], "shape": i["shape"], "offset": i["offset"]} for i in infos]}
    # every tensor's bytes inside the file
    end_ok = True
    total = 0
    for i in infos:
        n = int(np.prod(i["shape"]))
        elems, nb = BLOCKS[i["type"]]
        nbytes = n // elems * nb
        total += nbytes
        end_ok = end_ok and start + i["offset"] + nbytes <= len(data)
    out["inside_file"] = end_ok
    out["tensor_bytes"] = total
    arch = kv.get("general.architecture")
    if "--dump" in opts:
        for i in infos:
            dequant(i, data, start).astype("<f4").tofile("%s/%s.f32" % (opts["--dump"], i["name"]))
    if "--expect-mix" in opts:
        n_layer = kv[arch + ".block_count"]
        has_output = any(i["name"] == "output.weight" for i in infos)
        expected_bytes, wrong = 0, []
        for i in infos:
            t = mix_type(opts["--expect-mix"], i["name"], i["shape"], n_layer, has_output)
            tid = [k for k, v in NAMES.items() if v == t][0]
            elems, nb = BLOCKS[tid]
            expected_bytes += int(np.prod(i["shape"])) // elems * nb
            if NAMES[i["type"]] != t:
                wrong.append("%s: %s, rules say %s" % (i["name"], NAMES[i["type"]], t))
        out["mix_expected_bytes"] = expected_bytes
        out["mix_wrong_types"] = wrong
        out["types"] = {NAMES[t]: sum(1 for i in infos if i["type"] == t) for t in sorted({i["type"] for i in infos})}
    if "--hf" in opts:
        import glob
        hf = {}
        for f in sorted(glob.glob(opts["--hf"] + "/*.safetensors")):
            hf.update(read_safetensors(f))
        cfg = json.load(open(opts["--hf"] + "/config.json"))
        worst, worst_name = 0.0, ""
        for i in infos:
            if i["name"].startswith("rope_factors_"):
                continue  # Phi-3's longrope factors come from config.json, not a tensor
            g = dequant(i, data, start)
            name = hf_name(i["name"], arch)
            w = hf[name] if name in hf else None
            if w is None and name == "lm_head.weight":
                w = hf["model.embed_tokens.weight"]
            w = w.astype(np.float32)
            if arch in PERMUTED and name.endswith("q_proj.weight"):
                w = llama_permute(w, cfg["num_attention_heads"])
            if arch in PERMUTED and name.endswith("k_proj.weight"):
                w = llama_permute(w, cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
            if arch in ("gemma", "gemma2", "gemma3") and name.endswith("norm.weight"):
                w = w + 1.0
            d = float(np.max(np.abs(g - w))) / max(1e-30, float(np.max(np.abs(w))))
            if d > worst:
                worst, worst_name = d, i["name"]
        out["max_rel_diff_vs_hf"] = worst
        out["worst_tensor"] = worst_name
        out["hf_tensors"] = len(hf)
    if "--tokenizer" in opts:
        tj = json.load(open(opts["--tokenizer"] + "/tokenizer.json"))
        vocab = {v: k for k, v in tj["model"]["vocab"].items()}
        for a in tj.get("added_tokens", []):
            vocab[a["id"]] = a["content"]
        toks = kv["tokenizer.ggml.tokens"]
        out["tokens_agree"] = all(toks[i] == vocab[i] for i in range(len(toks)) if i in vocab)
        out["n_tokens"] = len(toks)
        merges = tj["model"].get("merges", [])
        merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        if "tokenizer.ggml.merges" in kv:
            out["merges_agree"] = kv["tokenizer.ggml.merges"] == merges
        types = kv["tokenizer.ggml.token_type"]
        special = {a["id"] for a in tj.get("added_tokens", []) if a.get("special")}
        out["specials_are_control"] = all(types[i] == 3 for i in special if i < len(types))
    if "--lora-peft" in opts:
        d = opts["--lora-peft"]
        cfg = json.load(open(d + "/adapter_config.json"))
        peft = read_safetensors(d + "/adapter_model.safetensors")
        base_cfg = json.load(open(opts["--base-config"])) if "--base-config" in opts else {}
        r = cfg["r"]
        scale = cfg["lora_alpha"] / (math.sqrt(r) if cfg.get("use_rslora") else r)
        out["gguf_scale"] = kv["adapter.lora.alpha"] / r
        out["peft_scale"] = scale
        worst = 0.0
        for i in infos:
            g = dequant(i, data, start)
            base = i["name"][: -len(".lora_a")]
            hn = "base_model.model." + hf_name(base, arch)[: -len(".weight")]
            w = peft[hn + (".lora_A.weight" if i["name"].endswith("lora_a") else ".lora_B.weight")]
            if arch in PERMUTED and i["name"].endswith("lora_b") and ("attn_q" in base or "attn_k" in base):
                heads = base_cfg["num_attention_heads"] if "attn_q" in base else base_cfg.get("num_key_value_heads")
                w = llama_permute(w, heads)
            worst = max(worst, float(np.max(np.abs(g - w))))
        out["max_abs_diff_vs_peft"] = worst
    print(json.dumps(out))


if __name__ == "__main__":
    main()
