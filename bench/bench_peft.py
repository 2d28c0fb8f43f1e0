#!/usr/bin/env python3
"""The Hugging Face counterpart of `hone-cli bench --device cuda`: transformers' LlamaForCausalLM
of the same shape (random weights), LoRA on every projection through PEFT, QLoRA through
bitsandbytes' NF4 when it is installed, AdamW, random tokens. Prints one JSON object with
tokens_per_s (median step) and peak_gpu_mb (torch.cuda.max_memory_allocated). Exits with status 3,
saying what is missing, when transformers or peft (or bitsandbytes for qlora) is not installed.

usage: bench_peft.py --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192 --vocab 128256
                     --seq 512 --batch 4 --rank 16 --steps 6 --method lora|qlora [--bf16] [--tie]"""
# SPDX-License-Identifier: GPL-3.0-or-later
import argparse
import json
import statistics
import sys
import time

import torch


def main():
    p = argparse.ArgumentParser()
    for k, d in [("hidden", 2048), ("layers", 16), ("heads", 32), ("kv-heads", 8), ("ffn", 8192), ("vocab", 128256),
                 ("seq", 512), ("batch", 4), ("rank", 16), ("steps", 6)]:
        p.add_argument("--" + k, type=int, default=d)
    p.add_argument("--method", default="lora", choices=["lora", "qlora"])
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--tie", action="store_true")
    a = p.parse_args()
    try:
        import peft
        import transformers
    except ImportError as e:
        print(f"bench_peft.py: {e.name} is not installed", file=sys.stderr)
        sys.exit(3)
    cfg = transformers.LlamaConfig(hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                                   num_key_value_heads=a.kv_heads, intermediate_size=a.ffn, vocab_size=a.vocab,
                                   max_position_embeddings=a.seq, tie_word_embeddings=a.tie)
    torch.manual_seed(0)
    if a.method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            print("bench_peft.py: bitsandbytes is not installed (needed for qlora)", file=sys.stderr)
            sys.exit(3)
        model = transformers.LlamaForCausalLM(cfg)
        # Quantize the random model the way from_pretrained(quantization_config=nf4) would load it.
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            del model
            q = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                bnb_4bit_compute_dtype=torch.bfloat16 if a.bf16 else torch.float32)
            model = transformers.LlamaForCausalLM.from_pretrained(d, quantization_config=q, device_map={"": 0},
                                                                  torch_dtype=torch.float32)
        torch.cuda.reset_peak_memory_stats()
    else:
        model = transformers.LlamaForCausalLM(cfg).to("cuda")
    lc = peft.LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, target_modules="all-linear")
    model = peft.get_peft_model(model, lc)
    model.train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    times = []
    for _ in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.batch, a.seq), device="cuda")
        torch.cuda.synchronize()
        t = time.time()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.time() - t)
    step = statistics.median(times[1:])
    print(json.dumps({"impl": "pytorch-peft", "torch": torch.__version__, "transformers": transformers.__version__,
                      "peft": peft.__version__, "method": a.method, "tokens_per_s": a.batch * a.seq / step, "step_s": step,
                      "peak_gpu_mb": torch.cuda.max_memory_allocated() / 1048576.0}))


if __name__ == "__main__":
    main()
