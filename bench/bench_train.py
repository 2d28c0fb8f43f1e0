#!/usr/bin/python3
"""Eager PyTorch counterpart of `hone-cli bench`: the same Llama-shaped model (RMSNorm, rotate-half
RoPE, attention, SwiGLU), LoRA on every projection (PEFT init), AdamW, random tokens; prints one JSON
object with tokens_per_s (median step). Run with Debian's /usr/bin/python3 (python3-torch).

usage: bench_train.py [--preset qwen2.5-0.5b|qwen2.5-1.5b|llama-3.2-1b] [--tie] [--hidden 512 --layers 8 --heads 8 --kv-heads 8 --ffn 1408 --vocab 8000
                       --seq 256 --batch 4 --rank 16 --steps 6 --method lora|full --threads N]
                       [--device cpu|cuda] [--bf16]
--threads 0 keeps PyTorch's default thread count (what a plain script gets). --bf16 runs forward and
loss under bf16 autocast (torch.autocast on the device: what a user does on a CPU with AVX512-BF16 or
AMX, or on a GPU). --device cuda trains on the GPU and reports peak_gpu_mb
(torch.cuda.max_memory_allocated)."""
# SPDX-License-Identifier: GPL-3.0-or-later
import argparse
import contextlib
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoraLinear(nn.Module):
    def __init__(self, i, o, r, alpha, lora):
        super().__init__()
        self.base = nn.Linear(i, o, bias=False)
        nn.init.normal_(self.base.weight, std=0.02)
        self.lora = lora
        if lora:
            self.base.weight.requires_grad_(False)
            self.A = nn.Parameter(torch.empty(r, i).uniform_(-1 / math.sqrt(i), 1 / math.sqrt(i)))
            self.B = nn.Parameter(torch.zeros(o, r))
            self.s = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.lora:
            y = y + (x @ self.A.t() @ self.B.t()) * self.s
        return y


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Layer(nn.Module):
    def __init__(self, a, lora):
        super().__init__()
        H, hd = a.hidden, a.hidden // a.heads
        mk = lambda i, o: LoraLinear(i, o, a.rank, 2 * a.rank, lora)
        self.q, self.k, self.v, self.o = mk(H, a.heads * hd), mk(H, a.kv_heads * hd), mk(H, a.kv_heads * hd), mk(a.heads * hd, H)
        self.g, self.u, self.d = mk(H, a.ffn), mk(H, a.ffn), mk(a.ffn, H)
        self.n1, self.n2 = RMSNorm(H), RMSNorm(H)
        self.nh, self.nkv, self.hd = a.heads, a.kv_heads, hd

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        rot = lambda t: torch.cat([-t[..., self.hd // 2:], t[..., : self.hd // 2]], -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, 1)
            v = v.repeat_interleave(self.nh // self.nkv, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, -1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, -1))
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self, a, lora):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList(Layer(a, lora) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden)
        self.head = nn.Linear(a.hidden, a.vocab, bias=False)
        if a.tie:  # the head is the embedding (Qwen2.5 0.5B-3B, Llama 3.2 1B/3B)
            self.head.weight = self.emb.weight
        if lora:
            for p in (self.emb.weight, self.head.weight, self.norm.w):
                p.requires_grad_(False)
            for l in self.layers:
                l.n1.w.requires_grad_(False)
                l.n2.w.requires_grad_(False)
        hd = a.hidden // a.heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        fr = torch.outer(torch.arange(a.seq).float(), inv)
        emb = torch.cat([fr, fr], -1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)

    def forward(self, ids):
        x = self.emb(ids)
        for l in self.layers:
            x = l(x, self.cos, self.sin, self.mask)
        return self.head(self.norm(x))


PRESETS = {"qwen2.5-0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864, vocab=151936),
           "qwen2.5-1.5b": dict(hidden=1536, layers=28, heads=12, kv_heads=2, ffn=8960, vocab=151936),
           "llama-3.2-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192, vocab=128256)}


def blas_core():
    """OpenBLAS's kernel set in this process (None if the BLAS is not OpenBLAS)."""
    import ctypes
    with open("/proc/self/maps") as f:
        libs = {l.split()[-1] for l in f if "openblas" in l and ".so" in l}
    for path in sorted(libs):
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return None


def main():
    p = argparse.ArgumentParser()
    defaults = {"hidden": 512, "layers": 8, "heads": 8, "kv_heads": 8, "ffn": 1408, "vocab": 8000, "seq": 256, "batch": 4,
                "rank": 16, "steps": 6, "threads": 0}
    for k in defaults:
        p.add_argument("--" + k.replace("_", "-"), type=int, default=None)
    p.add_argument("--method", default="lora", choices=["lora", "full"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--tie", action="store_true")
    p.add_argument("--preset", choices=sorted(PRESETS))
    a = p.parse_args()
    # As hone-cli bench --preset: the published shape, tied head, seq 512, batch 1, 3 steps;
    # explicit options still win.
    if a.preset:
        defaults.update(PRESETS[a.preset], seq=512, batch=1, steps=3)
        a.tie = True
    for k, d in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, d)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    m = Model(a, a.method == "lora").to(dev)
    m.cos, m.sin, m.mask = m.cos.to(dev), m.sin.to(dev), m.mask.to(dev)
    opt = torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=1e-4)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    times = []
    for _ in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.batch, a.seq)).to(dev)
        sync()
        t = time.time()
        with torch.autocast(a.device, dtype=torch.bfloat16) if a.bf16 else contextlib.nullcontext():
            logits = m(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, a.vocab).float(), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in m.parameters() if q.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.time() - t)
    step = statistics.median(times[1:])
    out = {"impl": "pytorch-eager", "torch": torch.__version__, "method": a.method, "threads": torch.get_num_threads(),
           "blas_core": blas_core(), "tokens_per_s": a.batch * a.seq / step, "step_s": step, "device": a.device,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "tie": a.tie,
           "autocast": "bf16" if a.bf16 else None}
    if a.device == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 1048576.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
