#!/usr/bin/env python3
# Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from files in the tree and
# ../shared/testdata, cut down to a few KB each, plus small safetensors, GGUF and SentencePiece
# files written here from their format specs. Standard library only (SentencePiece seeds need
# python3-sentencepiece and are left out without it). Run it from anywhere; it replaces what it
# writes and leaves other files (copied Hone fixtures, see corpus/README.md) alone.
# SPDX-License-Identifier: GPL-3.0-or-later
import csv
import io
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "testdata", "tokenizers"))
DATA = os.path.join(ROOT, "tests", "data")


def out(target, name, content):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(content)


def dumps(j, indent=None):
    return json.dumps(j, ensure_ascii=False, indent=indent)


# --- safetensors (https://github.com/huggingface/safetensors, format section) ---------------------

def safetensors(tensors, metadata=None, pad=True):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_safetensors_seeds():
    f32 = struct.pack("<6f", 0.5, -1.0, 2.0, 0.0, 3.5, -0.25)
    out("safetensors", "two_f32.safetensors",
        safetensors([("model.embed_tokens.weight", "F32", [2, 3], f32),
                     ("model.norm.weight", "F32", [2], struct.pack("<2f", 1, 1))], {"format": "pt"}))
    out("safetensors", "dtypes.safetensors", safetensors([
        ("a.bf16", "BF16", [4], struct.pack("<4H", 0x3f80, 0xbf80, 0x4000, 0)),
        ("b.f16", "F16", [2, 2], struct.pack("<4H", 0x3c00, 0xbc00, 0x4000, 0)),
        ("c.i64", "I64", [1], struct.pack("<q", -7)),
        ("d.u8", "U8", [3], b"\x01\x02\x03"),
        ("e.bool", "BOOL", [1], b"\x01"),
        ("f.f8", "F8_E4M3", [2], b"\x38\xb8"),
        ("g.f64", "F64", [], struct.pack("<d", 3.25)),
        ("h.empty", "F32", [0, 4], b""),
    ], {"format": "pt", "note": "every dtype"}))
    out("safetensors", "lora_adapter.safetensors", safetensors([
        ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "F32", [1, 4], struct.pack("<4f", 0.1, 0.2, 0.3, 0.4)),
        ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "F32", [4, 1], struct.pack("<4f", 0, 0, 0, 0)),
    ], None, pad=False))


# --- GGUF (llama.cpp's docs/gguf.md) ---------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
          I64: "<q", F64: "<d"}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gvalue(t, v):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def f16(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def gguf(kv, tensors, alignment=32):
    # tensors: (name, ggml type, shape innermost first, raw bytes)
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, t, v in kv:
        b += gstr(k) + struct.pack("<I", t) + gvalue(t, v)
    off, datas = 0, []
    for name, ty, shape, raw in tensors:
        b += gstr(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        b += struct.pack("<IQ", ty, off)
        padded = raw + b"\0" * ((alignment - len(raw) % alignment) % alignment)
        datas.append(padded)
        off += len(padded)
    b += b"\0" * ((alignment - len(b) % alignment) % alignment)
    return b + b"".join(datas)


def write_gguf_seeds():
    kv = [("general.architecture", STRING, "llama"), ("general.name", STRING, "tiny"),
          ("general.alignment", U32, 32), ("llama.block_count", U32, 1), ("llama.context_length", U64, 128),
          ("llama.rope.freq_base", F32, 10000.0), ("llama.attention.layer_norm_rms_epsilon", F64, 1e-5),
          ("x.u8", U8, 7), ("x.i8", I8, -7), ("x.u16", U16, 700), ("x.i16", I16, -700), ("x.i32", I32, -70000),
          ("x.i64", I64, -7000000000), ("x.bool", BOOL, True),
          ("tokenizer.ggml.model", STRING, "gpt2"),
          ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<s>", "</s>", "a", "b", "ab"])),
          ("tokenizer.ggml.scores", ARRAY, (F32, [0.0, 0.0, -1.0, -2.0, -3.0])),
          ("tokenizer.ggml.token_type", ARRAY, (I32, [3, 3, 1, 1, 1])),
          ("tokenizer.ggml.merges", ARRAY, (STRING, ["a b"])),
          ("x.bytes", ARRAY, (U8, [1, 2, 3]))]
    q8 = struct.pack("<H", f16(0.5)) + bytes((k * 7) & 0xff for k in range(32))
    tensors = [("token_embd.weight", 0, [4, 2], struct.pack("<8f", *range(8))),
               ("blk.0.attn_q.weight", 1, [2, 2], struct.pack("<4H", *(f16(x) for x in (1, -1, 0.5, 2)))),
               ("blk.0.ffn_up.weight", 8, [32, 1], q8),
               ("output_norm.weight", 30, [2], struct.pack("<2H", 0x3f80, 0x4000))]
    out("gguf", "tiny_all_types.gguf", gguf(kv, tensors))
    out("gguf", "metadata_only.gguf", gguf(kv[:3], []))
    lora_kv = [("general.architecture", STRING, "llama"), ("general.type", STRING, "adapter"),
               ("adapter.type", STRING, "lora"), ("adapter.lora.alpha", F32, 16.0)]
    out("gguf", "lora.gguf", gguf(lora_kv, [("blk.0.attn_q.weight.lora_a", 0, [4, 1], struct.pack("<4f", 1, 2, 3, 4)),
                                            ("blk.0.attn_q.weight.lora_b", 0, [1, 4], struct.pack("<4f", 0, 0, 0, 0))]))


# --- SentencePiece models (trained here on a few lines) ----------------------------------------------

def write_spm_seeds():
    try:
        import sentencepiece as spm
    except ImportError:
        print("make_corpus: no sentencepiece module: spm_model seeds left as they are", file=sys.stderr)
        return
    text = ("Hello world. The quick brown fox jumps over the lazy dog.\n"
            "Tokenizers split words into pieces; numbers 12345 too.\n"
            "Ünïcödé text, 你好 世界, and emoji 👍 stay.\n") * 20
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "text.txt")
        with open(src, "w") as f:
            f.write(text)
        for kind, size in (("unigram", 100), ("bpe", 360)):
            prefix = os.path.join(d, kind)
            spm.SentencePieceTrainer.train(input=src, model_prefix=prefix, vocab_size=size, model_type=kind,
                                           byte_fallback=(kind == "bpe"), minloglevel=2, normalization_rule_name="identity",
                                           hard_vocab_limit=False)
            with open(prefix + ".model", "rb") as f:
                out("spm_model", kind + ".model", f.read())


# --- tokenizer.json: the real files cut to a few hundred tokens --------------------------------------

def cut_tokenizer(name, keep_ids=400, keep_merges=300, keep_added=24):
    j = json.load(open(os.path.join(SHARED, name, "tokenizer.json"), encoding="utf-8"))
    m = j["model"]
    vocab = {t: i for t, i in m["vocab"].items() if i < keep_ids}
    merges = []
    for mg in m["merges"]:
        a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
            if len(merges) >= keep_merges:
                break
    m["vocab"], m["merges"] = vocab, merges
    specials = [t for t in j["added_tokens"] if t.get("special")]
    j["added_tokens"] = specials[:keep_added]
    return j


def write_tokenizer_json_seeds():
    bases = {n: cut_tokenizer(n) for n in ("qwen3", "mistral", "gemma3")}
    for n, j in bases.items():
        out("tokenizer_json", n + ".json", dumps(j))
    # The variants the tokenizer tests build (tests/data/tokenizers/variants.json), on the cut files.
    variants = json.load(open(os.path.join(DATA, "tokenizers", "variants.json"), encoding="utf-8"))
    for vname, v in variants.items():
        if vname.startswith("_") or not (v.get("patch") or v.get("model_patch")):
            continue
        j = json.loads(json.dumps(bases[v["base"]]))
        for k, val in v.get("patch", {}).items():
            j[k] = val
        j["model"].update(v.get("model_patch", {}))
        out("tokenizer_json", vname + ".json", dumps(j))


# --- tokenizer_config.json and chat templates -------------------------------------------------------

def write_tokenizer_config_seeds():
    for n in ("qwen3", "mistral", "gemma3"):
        j = json.load(open(os.path.join(SHARED, n, "tokenizer_config.json"), encoding="utf-8"))
        if "added_tokens_decoder" in j:
            items = list(j["added_tokens_decoder"].items())[:24]
            j["added_tokens_decoder"] = dict(items)
        out("tokenizer_config", n + ".json", dumps(j, 2))
        if isinstance(j.get("chat_template"), str):
            out("jinja", n + ".jinja", j["chat_template"])
    # The array form of chat_template that some checkpoints use.
    out("tokenizer_config", "template_list.json", dumps({
        "bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False, "legacy": False,
        "model_max_length": 32768, "tokenizer_class": "LlamaTokenizer",
        "chat_template": [{"name": "default", "template": open(os.path.join(DATA, "chat_templates", "zephyr.jinja")).read()},
                          {"name": "tool_use", "template": "{{ messages | tojson }}"}]}, 2))


def write_jinja_seeds():
    d = os.path.join(DATA, "chat_templates")
    for f in sorted(os.listdir(d)):
        if f.endswith(".jinja"):
            out("jinja", f, open(os.path.join(d, f), encoding="utf-8").read())
    feats = json.load(open(os.path.join(DATA, "jinja_features.json"), encoding="utf-8"))
    for i, case in enumerate(feats):
        out("jinja", "feature_%02d.jinja" % i, case["template"])


# --- datasets: the Parquet fixtures' JSONL, and the same rows as JSON, CSV and TSV ------------------

def rows_of(name, n=6):
    with open(os.path.join(DATA, "parquet", name), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()][:n]


def delimited(rows, sep):
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    s = io.StringIO()
    w = csv.writer(s, delimiter=sep, lineterminator="\n")
    w.writerow(keys)
    for r in rows:
        w.writerow([v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in (r.get(k, "") for k in keys)])
    return s.getvalue()


def write_dataset_seeds():
    for name in ("alpaca", "chat", "lists", "mapped", "preference", "text"):
        rows = rows_of(name + ".jsonl")
        out("dataset", name + ".jsonl", "".join(dumps(r) + "\n" for r in rows))
    out("dataset", "alpaca.json", dumps(rows_of("alpaca.jsonl", 4), 1))
    out("dataset", "alpaca.csv", delimited(rows_of("alpaca.jsonl", 4), ","))
    out("dataset", "preference.tsv", delimited(rows_of("preference.jsonl", 4), "\t"))
    out("dataset", "chat.csv", delimited(rows_of("chat.jsonl", 3), ","))
    # The other example formats records.h lists, a few rows each.
    more = {
        "sharegpt.jsonl": [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}],
        "prompt_completion.jsonl": [{"prompt": "2+2=", "completion": "4"},
                                    {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hey"}]}],
        "candidates.jsonl": [{"prompt": "Name a colour", "responses": ["red", "blue", "green"]}],
        "choice.jsonl": [{"question": "2+2?", "choices": ["3", "4", "5"], "answer": 1},
                         {"question": "Capital of France?", "choices": ["Paris", "Rome"], "answer": "A", "context": "Europe"}],
        "prompts.jsonl": [{"prompt": "Write a haiku"}, {"messages": [{"role": "user", "content": "Hi"}]}],
        "preference_conv.jsonl": [{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                                   "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away"}]}],
    }
    for name, rows in more.items():
        out("dataset", name, "".join(dumps(r) + "\n" for r in rows))
    out("dataset", "notes.txt", "One line of text.\nAnother line.\n")


def write_parquet_seeds():
    d = os.path.join(DATA, "parquet")
    for f in sorted(os.listdir(d)):
        if f.endswith(".parquet") and os.path.getsize(os.path.join(d, f)) <= 16384:
            with open(os.path.join(d, f), "rb") as src:
                out("parquet", f, src.read())


# --- model config.json: the shapes of the architectures Hone reads ---------------------------------

def write_model_config_seeds():
    base = {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
            "torch_dtype": "float32", "tie_word_embeddings": False}
    configs = {
        "llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192}},
        "mistral": {"model_type": "mistral", "sliding_window": 4096},
        "qwen2": {"model_type": "qwen2", "tie_word_embeddings": True, "eos_token_id": [2, 3]},
        "qwen3": {"model_type": "qwen3", "head_dim": 32, "attention_bias": False},
        "gemma": {"model_type": "gemma", "hidden_activation": "gelu_pytorch_tanh", "head_dim": 16},
        "gemma2": {"model_type": "gemma2", "query_pre_attn_scalar": 16, "attn_logit_softcapping": 50.0,
                   "final_logit_softcapping": 30.0, "sliding_window": 128},
        "gemma3": {"model_type": "gemma3_text", "rope_local_base_freq": 10000.0, "sliding_window": 128,
                   "layer_types": ["sliding_attention", "full_attention"], "rope_scaling": {"rope_type": "linear", "factor": 8.0}},
        "phi3": {"model_type": "phi3", "original_max_position_embeddings": 256,
                 "rope_scaling": {"type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8}},
    }
    for name, extra in configs.items():
        c = dict(base)
        c.update(extra)
        out("model_config", name + ".json", dumps(c, 2))


# --- adapter_config.json as PEFT writes it ------------------------------------------------------------

def write_peft_seeds():
    cfg = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "org/model", "bias": "none",
           "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layers_pattern": None,
           "layers_to_transform": None, "lora_alpha": 32, "lora_dropout": 0.05, "modules_to_save": None,
           "peft_type": "LORA", "r": 16, "rank_pattern": {}, "revision": None,
           "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False}
    out("peft_config", "peft.json", dumps(cfg, 2))
    cfg.update({"r": 8, "lora_alpha": 16.0, "use_rslora": True, "target_modules": "all-linear", "lora_dropout": 0.0})
    out("peft_config", "rslora.json", dumps(cfg, 2))


# --- the hub's revision answer (/api/models/ID/revision/REV?blobs=true) ----------------------------

def write_hub_seeds():
    sha = "0123456789abcdef0123456789abcdef01234567"
    lfs = lambda n, size: {"rfilename": n, "blobId": "aa" * 20, "size": size,
                          "lfs": {"sha256": ("%064x" % (size * 7919)), "size": size, "pointerSize": 134}}
    small = lambda n, size: {"rfilename": n, "blobId": ("%040x" % (size * 31)), "size": size}
    model = {"_id": "65f0", "id": "org/name", "private": False, "gated": False, "disabled": False,
             "lastModified": "2024-09-18T15:51:53.000Z", "sha": sha, "library_name": "transformers",
             "tags": ["safetensors", "llama", "text-generation"], "pipeline_tag": "text-generation",
             "siblings": [small(".gitattributes", 1519), small("README.md", 4210), small("config.json", 704),
                          small("generation_config.json", 189), lfs("model.safetensors", 988097824),
                          small("special_tokens_map.json", 414), lfs("tokenizer.json", 11422654),
                          small("tokenizer_config.json", 9675), lfs("pytorch_model.bin", 988190000)],
             "usedStorage": 1976287824}
    out("hub_plan", "model.json", dumps(model, 1))
    sharded = dict(model, gated="manual", siblings=[small("config.json", 704), small("model.safetensors.index.json", 23950),
                                                     lfs("model-00001-of-00002.safetensors", 4994000000),
                                                     lfs("model-00002-of-00002.safetensors", 2120000000),
                                                     small("tokenizer_config.json", 50500), small("chat_template.jinja", 4100)])
    out("hub_plan", "sharded_gated.json", dumps(sharded))
    dataset = {"_id": "66a1", "id": "org/data", "sha": sha.upper(), "private": False,
               "siblings": [small(".gitattributes", 2307), small("README.md", 1200),
                            lfs("data/train-00000-of-00001.parquet", 1048576), small("train.jsonl", 40960),
                            lfs("data/test.json", 2048)]}
    out("hub_plan", "dataset.json", dumps(dataset, 1))
    out("hub_plan", "pickle_only.json", dumps(dict(model, siblings=[small("config.json", 704), lfs("pytorch_model.bin", 1000)])))


# --- run configs: docs/run-config.md's keys, every recipe --------------------------------------------

def write_run_config_seeds():
    # Every key, as Hone writes a run's config.json (RunConfig::to_json), paths made relative.
    full = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_eps": 1e-08, "base_dtype": "auto", "base_model": "base",
            "batch_size": 4, "beta": 0.1, "bucket_by_length": False, "chat_template": "chatml", "clip_epsilon": 0.2,
            "data_format": "auto", "desirable_weight": 1.0, "device": "auto", "early_stopping_patience": 0, "epochs": 1.0,
            "eval_data": [], "eval_every": 0, "eval_fraction": 0.0, "eval_max_new_tokens": 32, "eval_suites": [],
            "eval_suites_every": 0, "gae_gamma": 1.0, "gae_lambda": 0.95, "grad_accum": 1, "gradient_checkpointing": False,
            "init_adapter": "", "keep_checkpoints": 2, "kl_horizon": 10000, "kl_target": 0.0, "label_smoothing": 0.0,
            "lora": {"alpha": 16.0, "dropout": 0.0, "r": 8, "rslora": False, "targets": ["all-linear"]},
            "loss_on": "assistant", "loss_type": "sigmoid", "lr": 0.005, "max_grad_norm": 1.0, "max_new_tokens": 64,
            "max_seq_len": 64, "max_steps": 1, "method": "lora", "mixed_precision": "auto", "mlp_recompute": False,
            "name": "run", "num_generations": 4, "packing": True, "ppo_epochs": 4, "precompute_ref_log_probs": False,
            "recipe": "sft", "reward_model": "", "rewards": [], "save_every": 0, "save_every_minutes": 10.0,
            "schedule": "constant", "seed": 0, "temperature": 1.0, "threads": 0, "top_p": 1.0,
            "train_data": ["data/train.jsonl"], "undesirable_weight": 1.0, "value_clip": 0.2, "value_coef": 0.1,
            "value_model": "head", "warmup_ratio": 0.0, "warmup_steps": 0, "weight_decay": 0.0}
    length = [{"type": "length", "max_chars": 10}]
    recipes = {
        "sft": {},
        "cpt": {"recipe": "cpt", "method": "full", "lr": 2e-5, "packing": False},
        "dpo": {"recipe": "dpo", "loss_type": "ipo", "precompute_ref_log_probs": True},
        "orpo": {"recipe": "orpo", "beta": 0.2},
        "kto": {"recipe": "kto", "desirable_weight": 3.0},
        "reward": {"recipe": "reward"},
        "grpo": {"recipe": "grpo", "rewards": length},
        "ppo": {"recipe": "ppo", "rewards": length + [{"type": "regex", "pattern": "^[0-9]+$", "weight": 0.5}],
                "value_model": "adapter", "kl_target": 6.0},
        "qlora": {"method": "qlora", "lora": {"r": 64, "alpha": 16, "dropout": 0.1, "targets": ["q_proj", "v_proj"], "rslora": True}},
    }
    for name, extra in recipes.items():
        c = dict(full)
        c.update(extra)
        out("run_config", name + ".json", dumps(c, 2))
    # What a person writes: a few keys, the rest defaulted.
    out("run_config", "minimal.json", dumps({"base_model": "org/model@main", "train_data": "train.jsonl",
                                              "recipe": "grpo", "rewards": [{"type": "exact", "weight": 1},
                                                                            {"type": "json", "schema": {"type": "object"}}]}, 2))


def main():
    write_safetensors_seeds()
    write_gguf_seeds()
    write_spm_seeds()
    write_tokenizer_json_seeds()
    write_tokenizer_config_seeds()
    write_jinja_seeds()
    write_dataset_seeds()
    write_parquet_seeds()
    write_model_config_seeds()
    write_peft_seeds()
    write_hub_seeds()
    write_run_config_seeds()


if __name__ == "__main__":
    main()
