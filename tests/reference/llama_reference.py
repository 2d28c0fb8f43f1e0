#!/usr/bin/python3
"""Independent reference for Hone's decoder: writes random Llama-family checkpoints in the Hugging
Face layout (with its own safetensors writer) and golden per-token NLL / top-1 from a plain PyTorch
re-implementation of transformers' LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
Qwen3ForCausalLM (q_norm/k_norm per head before RoPE), GemmaForCausalLM, Gemma2ForCausalLM
(sandwich norms, soft-capping, alternating sliding layers, query_pre_attn_scalar),
Gemma3ForCausalLM (text; q/k norms, a local RoPE base for sliding layers), Phi3ForCausalLM
(fused qkv and gate_up projections, longrope), SmolLM3ForCausalLM (no RoPE on the layers
no_rope_layers marks 0), Olmo2ForCausalLM (no norm before the blocks; norms after attention and MLP;
q/k norms over the whole projection) and GraniteForCausalLM (embedding, residual, attention and
logit multipliers) forward passes; and the text model of Gemma3ForConditionalGeneration written
in its multimodal layout (language_model.model.*, a vision tower and projector beside it).
Run with Debian's /usr/bin/python3 (python3-torch).

usage: llama_reference.py OUT_DIR
       llama_reference.py --score MODEL_DIR IDS_JSON   (prints {"nll": [...], "top1": [...]})
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import math
import os
import struct
import sys

import torch

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors, order=None):
    names = order or list(tensors)
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for n in names:
        t = tensors[n].contiguous()
        # bytes via a uint8 view keeps bf16 exact (numpy has no bf16)
        raw = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[n] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Independent reader: 8-byte length, JSON header, raw little-endian buffer."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    back = {v: k for k, v in DT.items()}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=back[info["dtype"]]) if e > b else torch.empty(0, dtype=back[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


GEMMA3_TEXT_DEFAULTS = {  # transformers' Gemma3TextConfig defaults (a multimodal text_config omits them)
    "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "query_pre_attn_scalar": 256,
    "sliding_window": 4096, "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6, "tie_word_embeddings": True}


def text_model(cfg, W):
    """Gemma3ForConditionalGeneration: its language model's config and weights (vision tower dropped)."""
    if cfg.get("model_type") != "gemma3":
        return cfg, W
    tc = dict(GEMMA3_TEXT_DEFAULTS)
    tc.update(cfg["text_config"])
    tc["model_type"] = "gemma3_text"
    out = {}
    for k, v in W.items():
        for p in ("language_model.model.", "model.language_model."):
            if k.startswith(p):
                out["model." + k[len(p):]] = v
    return tc, out


def load_folder(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    W = {}
    for f in files:
        W.update(read_safetensors(os.path.join(d, f)))
    return text_model(cfg, W)


def rms_norm(x, w, eps, gemma):
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if gemma:
        return (y * (1.0 + w.float())).to(x.dtype)
    return w * y.to(x.dtype)


def inv_freq_for(cfg, hd, seq_len=0):
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) in ("longrope", "su"):
        # transformers' _compute_longrope_parameters: long factors past the original context
        orig = cfg.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=torch.float32)
        return 1.0 / (ext * cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        orig = rs["original_max_position_embeddings"]
        out = []
        for f in inv.tolist():
            wl = 2 * math.pi / f
            if wl < orig / hi:
                out.append(f)
            elif wl > orig / lo:
                out.append(f / factor)
            else:
                s = (orig / wl - lo) / (hi - lo)
                out.append((1 - s) * f / factor + s * f)
        inv = torch.tensor(out, dtype=torch.float32)
    elif rs and rs.get("rope_type", rs.get("type")) == "linear":
        inv = inv / rs["factor"]
    return inv


def forward(cfg, W, ids):
    """Logits [T, V] in fp32 for a single sequence, computed in fp32."""
    mt = cfg["model_type"]
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    gemma = mt in ("gemma", "gemma2", "gemma3_text")
    sandwich = mt in ("gemma2", "gemma3_text")
    T = len(ids)
    w = {k: v.float() for k, v in W.items()}
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    if gemma:
        x = x * torch.tensor(H ** 0.5, dtype=x.dtype)
    granite = mt == "granite"
    if granite:  # GraniteModel: inputs_embeds * embedding_multiplier
        x = x * cfg.get("embedding_multiplier", 1.0)
    residual_mult = cfg.get("residual_multiplier", 1.0) if granite else 1.0
    olmo2 = mt == "olmo2"
    pos = torch.arange(T).float()

    def cos_sin(inv, attention_factor=1.0):
        fr = torch.outer(pos, inv)
        emb = torch.cat([fr, fr], -1)
        return emb.cos() * attention_factor, emb.sin() * attention_factor

    rs = cfg.get("rope_scaling") or {}
    att_factor = 1.0
    if rs.get("rope_type", rs.get("type")) in ("longrope", "su"):
        orig = cfg.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        factor = cfg["max_position_embeddings"] / orig
        att_factor = rs.get("attention_factor") or (1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig)))
    global_cs = cos_sin(inv_freq_for(cfg, hd, T), att_factor)
    local_cs = global_cs
    if cfg.get("rope_local_base_freq"):  # Gemma 3: sliding layers use their own base, unscaled
        local_cs = cos_sin(inv_freq_for({"rope_theta": cfg["rope_local_base_freq"]}, hd))

    def rope(t, cs):  # t [h, T, hd]
        cos, sin = cs
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat([-t2, t1], -1) * sin

    causal = torch.full((T, T), float("-inf")).triu(1)
    windowed = causal.clone()
    sw = cfg.get("sliding_window") if mt in ("mistral", "phi3", "gemma2", "gemma3_text") else None
    if sw:
        i = torch.arange(T).view(-1, 1)
        j = torch.arange(T).view(1, -1)
        windowed = windowed.masked_fill(j <= i - sw, float("-inf"))
    L = cfg["num_hidden_layers"]
    if "layer_types" in cfg:
        sliding = [t == "sliding_attention" for t in cfg["layer_types"]]
    elif mt == "gemma2":
        sliding = [not bool(l % 2) for l in range(L)]  # Gemma2DecoderLayer.is_sliding
    elif mt == "gemma3_text":
        pat = cfg.get("sliding_window_pattern", 6)
        sliding = [bool((l + 1) % pat) for l in range(L)]
    else:
        sliding = [True] * L  # Mistral, Phi-3: the window (if any) on every layer
    if mt == "smollm3":  # SmolLM3: no_rope_layers[l] == 0 leaves layer l unrotated
        use_rope = [bool(v) for v in cfg.get("no_rope_layers") or
                    [int((l + 1) % cfg.get("no_rope_layer_interval", 4) != 0) for l in range(L)]]
    else:
        use_rope = [True] * L
    scale = cfg["query_pre_attn_scalar"] ** -0.5 if sandwich else 1.0 / math.sqrt(hd)
    if granite:
        scale = cfg.get("attention_multiplier", scale)  # GraniteAttention.scaling
    softcap = cfg.get("attn_logit_softcapping") if sandwich else None
    act = cfg.get("hidden_activation") if gemma else cfg.get("hidden_act", "silu")
    for l in range(L):
        p = f"model.layers.{l}."
        mask = windowed if sliding[l] else causal
        cs = local_cs if sliding[l] else global_cs
        h = x if olmo2 else rms_norm(x, w[p + "input_layernorm.weight"], eps, gemma)

        def lin(name, inp):
            y = inp @ w[p + name + ".weight"].t()
            if p + name + ".bias" in w:
                y = y + w[p + name + ".bias"]
            return y

        if mt == "phi3":  # Phi3Attention: one qkv_proj, sliced q | k | v
            qkv = lin("self_attn.qkv_proj", h)
            q = qkv[:, : nh * hd].view(T, nh, hd)
            k = qkv[:, nh * hd: nh * hd + nkv * hd].view(T, nkv, hd)
            v = qkv[:, nh * hd + nkv * hd:].view(T, nkv, hd).transpose(0, 1)
        elif olmo2:  # Olmo2Attention: q_norm / k_norm over the whole projection, then the heads
            q = rms_norm(lin("self_attn.q_proj", h), w[p + "self_attn.q_norm.weight"], eps, False).view(T, nh, hd)
            k = rms_norm(lin("self_attn.k_proj", h), w[p + "self_attn.k_norm.weight"], eps, False).view(T, nkv, hd)
            v = lin("self_attn.v_proj", h).view(T, nkv, hd).transpose(0, 1)
        else:
            q = lin("self_attn.q_proj", h).view(T, nh, hd)
            k = lin("self_attn.k_proj", h).view(T, nkv, hd)
            v = lin("self_attn.v_proj", h).view(T, nkv, hd).transpose(0, 1)
        if mt in ("qwen3", "gemma3_text"):  # q_norm / k_norm over head_dim, then RoPE
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps, gemma)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps, gemma)
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        if use_rope[l]:
            q, k = rope(q, cs), rope(k, cs)
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        att = (q @ k.transpose(-1, -2)) * scale
        if softcap:
            att = torch.tanh(att / softcap) * softcap
        att = torch.softmax(att + mask, -1)
        o = (att @ v).transpose(0, 1).reshape(T, nh * hd)
        attn_out = lin("self_attn.o_proj", o)
        if sandwich:
            x = x + rms_norm(attn_out, w[p + "post_attention_layernorm.weight"], eps, True)
            h = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps, True)
        elif olmo2:
            x = x + rms_norm(attn_out, w[p + "post_attention_layernorm.weight"], eps, False)
            h = x
        else:
            x = x + attn_out * residual_mult
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, gemma)
        if mt == "phi3":  # Phi3MLP: gate_up_proj, chunked gate | up
            g, up = lin("mlp.gate_up_proj", h).chunk(2, dim=-1)
        else:
            g, up = lin("mlp.gate_proj", h), lin("mlp.up_proj", h)
        a = torch.nn.functional.gelu(g, approximate="tanh") if act == "gelu_pytorch_tanh" else torch.nn.functional.silu(g)
        m = lin("mlp.down_proj", a * up)
        if sandwich:
            m = rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps, True)
        if olmo2:
            m = rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps, False)
        x = x + m * residual_mult
    x = rms_norm(x, w["model.norm.weight"], eps, gemma)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    logits = x @ head.t()
    if sandwich and cfg.get("final_logit_softcapping"):
        cap = cfg["final_logit_softcapping"]
        logits = torch.tanh(logits / cap) * cap
    if granite:  # GraniteForCausalLM: logits / logits_scaling
        logits = logits / cfg.get("logits_scaling", 1.0)
    return logits


def make_weights(cfg, gen, dtype):
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    mt = cfg["model_type"]
    gemma = mt in ("gemma", "gemma2", "gemma3_text")
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    o_bias = cfg.get("attention_bias", False) and cfg["model_type"] != "qwen2"
    W = {}

    def rnd(*shape, std=0.08):
        return (torch.randn(*shape, generator=gen) * std).to(dtype)

    def norm(n):
        base = 0.0 if gemma else 1.0
        return (base + torch.randn(n, generator=gen) * 0.1).to(dtype)

    W["model.embed_tokens.weight"] = rnd(V, H, std=0.5)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        if mt != "olmo2":
            W[p + "input_layernorm.weight"] = norm(H)
        if mt == "phi3":
            W[p + "self_attn.qkv_proj.weight"] = rnd((nh + 2 * nkv) * hd, H)
        else:
            W[p + "self_attn.q_proj.weight"] = rnd(nh * hd, H)
            W[p + "self_attn.k_proj.weight"] = rnd(nkv * hd, H)
            W[p + "self_attn.v_proj.weight"] = rnd(nkv * hd, H)
        W[p + "self_attn.o_proj.weight"] = rnd(H, nh * hd)
        if qkv_bias:
            W[p + "self_attn.q_proj.bias"] = rnd(nh * hd, std=0.1)
            W[p + "self_attn.k_proj.bias"] = rnd(nkv * hd, std=0.1)
            W[p + "self_attn.v_proj.bias"] = rnd(nkv * hd, std=0.1)
        if o_bias:
            W[p + "self_attn.o_proj.bias"] = rnd(H, std=0.1)
        if mt in ("qwen3", "gemma3_text"):
            W[p + "self_attn.q_norm.weight"] = norm(hd)
            W[p + "self_attn.k_norm.weight"] = norm(hd)
        if mt == "olmo2":
            W[p + "self_attn.q_norm.weight"] = norm(nh * hd)
            W[p + "self_attn.k_norm.weight"] = norm(nkv * hd)
            W[p + "post_feedforward_layernorm.weight"] = norm(H)
        W[p + "post_attention_layernorm.weight"] = norm(H)
        if mt in ("gemma2", "gemma3_text"):
            W[p + "pre_feedforward_layernorm.weight"] = norm(H)
            W[p + "post_feedforward_layernorm.weight"] = norm(H)
        if mt == "phi3":
            W[p + "mlp.gate_up_proj.weight"] = rnd(2 * I, H)
        else:
            W[p + "mlp.gate_proj.weight"] = rnd(I, H)
            W[p + "mlp.up_proj.weight"] = rnd(I, H)
        W[p + "mlp.down_proj.weight"] = rnd(H, I)
    W["model.norm.weight"] = norm(H)
    if not cfg.get("tie_word_embeddings"):
        W["lm_head.weight"] = rnd(V, H, std=0.2)
    return W


VARIANTS = [
    # name, dtype, shards, config
    ("llama_gqa_llama3rope_f32", torch.float32, 1, {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 300,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False, "max_position_embeddings": 256,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}}),
    ("qwen2_bias_tied_bf16", torch.bfloat16, 1, {
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 48, "intermediate_size": 80,
        "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2, "vocab_size": 260,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True, "max_position_embeddings": 256}),
    ("mistral_window_f16", torch.float16, 1, {
        "model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 200,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 7, "max_position_embeddings": 256}),
    ("gemma_headdim_tied_f32", torch.float32, 1, {
        "model_type": "gemma", "architectures": ["GemmaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 24,
        "vocab_size": 220, "rms_norm_eps": 1e-6, "hidden_act": "gelu", "hidden_activation": "gelu_pytorch_tanh",
        "tie_word_embeddings": True, "max_position_embeddings": 256}),
    ("qwen3_qknorm_headdim_tied_f32", torch.float32, 1, {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 48, "intermediate_size": 80,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "attention_bias": False, "vocab_size": 240, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "max_position_embeddings": 256}),
    ("gemma2_softcap_sliding_f32", torch.float32, 1, {
        "model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "query_pre_attn_scalar": 24, "attn_logit_softcapping": 1.5, "final_logit_softcapping": 2.5,
        "sliding_window": 5, "vocab_size": 230, "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh",
        "rope_theta": 10000.0, "tie_word_embeddings": True, "max_position_embeddings": 256}),
    ("gemma3_localrope_qknorm_f32", torch.float32, 1, {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "query_pre_attn_scalar": 16, "sliding_window": 6, "sliding_window_pattern": 3, "vocab_size": 210,
        "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 4.0},
        "attn_logit_softcapping": None, "final_logit_softcapping": None,
        "tie_word_embeddings": True, "max_position_embeddings": 256}),
    ("phi3_fused_longrope_f32", torch.float32, 1, {
        "model_type": "phi3", "architectures": ["Phi3ForCausalLM"], "hidden_size": 48, "intermediate_size": 72,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 250,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 9, "hidden_act": "silu",
        "max_position_embeddings": 512, "original_max_position_embeddings": 16,
        "rope_scaling": {"type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5],
                         "long_factor": [1.0, 1.5, 2.5, 4.0, 7.0, 11.0]},
        "tie_word_embeddings": False}),
    ("smollm3_nope_tied_f32", torch.float32, 1, {
        "model_type": "smollm3", "architectures": ["SmolLM3ForCausalLM"], "hidden_size": 48, "intermediate_size": 80,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 230,
        "rms_norm_eps": 1e-6, "rope_theta": 5000000.0, "no_rope_layers": [1, 1, 1, 0], "no_rope_layer_interval": 4,
        "tie_word_embeddings": True, "attention_bias": False, "max_position_embeddings": 256}),
    ("olmo2_postnorm_wholeqknorm_f32", torch.float32, 1, {
        "model_type": "olmo2", "architectures": ["Olmo2ForCausalLM"], "hidden_size": 48, "intermediate_size": 80,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 210,
        "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "tie_word_embeddings": False, "attention_bias": False,
        "max_position_embeddings": 256}),
    ("granite_multipliers_tied_f32", torch.float32, 1, {
        "model_type": "granite", "architectures": ["GraniteForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 220,
        "rms_norm_eps": 1e-5, "rope_theta": 10000000.0, "embedding_multiplier": 12.0, "residual_multiplier": 0.22,
        "attention_multiplier": 0.0625, "logits_scaling": 8.0, "tie_word_embeddings": True, "attention_bias": False,
        "max_position_embeddings": 256}),
    ("gemma3_multimodal_layout_f32", torch.float32, 1, {
        # Gemma3ForConditionalGeneration as the 4B+ checkpoints lay it out: text_config lists only
        # what differs from Gemma3TextConfig's defaults (head_dim 256, query_pre_attn_scalar 256,
        # local base 10000, sliding_window_pattern 6, rms_norm_eps 1e-6 come from them).
        "model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 7,
                        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 448,
                        "sliding_window": 5, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 16, "image_size": 8, "patch_size": 4,
                          "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32},
        "mm_tokens_per_image": 4, "boi_token_index": 236, "eoi_token_index": 237, "image_token_index": 238}),
    ("llama_attnbias_sharded_f32", torch.float32, 3, {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4, "head_dim": 8,
        "attention_bias": True, "vocab_size": 150, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "rope_scaling": {"type": "linear", "factor": 2.0}, "max_position_embeddings": 256}),
]


def score(model_dir, ids_json):
    cfg, W = load_folder(model_dir)
    ids = json.load(open(ids_json))
    with torch.no_grad():
        logits = forward(cfg, W, ids)
    logp = torch.log_softmax(logits, -1)
    nll = [-logp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
    print(json.dumps({"nll": nll, "top1": logits.argmax(-1).tolist()}))


def write_lora_reference(d, cfg, W, ids, gen):
    """A PEFT-format adapter (r=4, alpha=8, q/v/o projections) and the NLL of the adapted model,
    computed by merging W + (alpha/r) * B @ A."""
    r, alpha = 4, 8.0
    ad = os.path.join(d, "adapter")
    os.makedirs(ad, exist_ok=True)
    A, W2 = {}, dict(W)
    for l in range(cfg["num_hidden_layers"]):
        for proj in ("q_proj", "v_proj", "o_proj"):
            key = f"model.layers.{l}.self_attn.{proj}"
            out_f, in_f = W[key + ".weight"].shape
            a = torch.randn(r, in_f, generator=gen) * 0.2
            b = torch.randn(out_f, r, generator=gen) * 0.2
            A[f"base_model.model.{key}.lora_A.weight"] = a
            A[f"base_model.model.{key}.lora_B.weight"] = b
            W2[key + ".weight"] = W[key + ".weight"] + (alpha / r) * (b @ a)
    write_safetensors(os.path.join(ad, "adapter_model.safetensors"), A)
    with open(os.path.join(ad, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
                   "target_modules": ["q_proj", "v_proj", "o_proj"], "bias": "none", "fan_in_fan_out": False,
                   "use_rslora": False, "use_dora": False, "base_model_name_or_path": "reference"}, f)
    with torch.no_grad():
        logits = forward(cfg, W2, ids)
    logp = torch.log_softmax(logits, -1)
    nll = [-logp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
    with open(os.path.join(ad, "golden.json"), "w") as f:
        json.dump({"ids": ids, "nll": nll}, f)


def main():
    if sys.argv[1] == "--score":
        return score(sys.argv[2], sys.argv[3])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    index = []
    for i, (name, dtype, shards, cfg) in enumerate(VARIANTS):
        gen = torch.Generator().manual_seed(1234 + i)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg = dict(cfg, torch_dtype={torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype])
        if cfg["model_type"] == "gemma3":  # the text model's weights under the multimodal prefixes
            tcfg, _ = text_model(cfg, {})
            Wt = make_weights(tcfg, gen, dtype)
            W = {"language_model." + k: v for k, v in Wt.items()}
            vc = cfg["vision_config"]
            W["vision_tower.vision_model.embeddings.patch_embedding.weight"] = torch.randn(
                vc["hidden_size"], 3, vc["patch_size"], vc["patch_size"], generator=gen).to(dtype)
            W["vision_tower.vision_model.post_layernorm.weight"] = torch.ones(vc["hidden_size"], dtype=dtype)
            W["multi_modal_projector.mm_input_projection_weight"] = torch.randn(
                vc["hidden_size"], tcfg["hidden_size"], generator=gen).to(dtype)
        else:
            W = make_weights(cfg, gen, dtype)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        names = list(W)
        if shards == 1:
            write_safetensors(os.path.join(d, "model.safetensors"), W, names)
        else:
            per = math.ceil(len(names) / shards)
            wm = {}
            for s in range(shards):
                part = names[s * per:(s + 1) * per]
                fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
                write_safetensors(os.path.join(d, fn), {n: W[n] for n in part}, part)
                wm.update({n: fn for n in part})
            total = sum(t.numel() * t.element_size() for t in W.values())
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f)
        T = 24
        fcfg, fW = text_model(cfg, W)
        ids = torch.randint(0, fcfg["vocab_size"], (T,), generator=gen).tolist()
        with torch.no_grad():
            logits = forward(fcfg, fW, ids)
        logp = torch.log_softmax(logits, -1)
        nll = [-logp[t, ids[t + 1]].item() for t in range(T - 1)]
        top2 = torch.topk(logits, 2, dim=-1).values
        golden = {"ids": ids, "nll": nll, "mean_nll": sum(nll) / len(nll), "top1": logits.argmax(-1).tolist(),
                  "top1_margin": (top2[:, 0] - top2[:, 1]).tolist()}
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f)
        if name == "llama_gqa_llama3rope_f32":
            write_lora_reference(d, cfg, W, ids, gen)
        index.append(name)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()
