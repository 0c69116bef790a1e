"""The C++ Llama/Mistral forward pass against an independent NumPy implementation.

The NumPy model below is written from transformers' modeling_llama.py /
modeling_mistral.py semantics (llm.md section 1), in float64, reading the
checkpoint with nothing but json/struct/numpy. It checks `sensecf lm logits` on
random tiny checkpoints made by `sensecf lm init-tiny`: Llama with llama3 RoPE
scaling and grouped-query attention, Mistral with a sliding window shorter than
the sequence. (Goldens from transformers itself: tests/golden/llm/, produced
where transformers is installed.)

LoRA: `sensecf lm logits --adapter` against the same NumPy model with PEFT's
LoRA applied by this file (llm.md section 3): adapter_config.json read here,
target modules resolved with Python's own `re` as PEFT's
check_target_module_exists / get_pattern_key do, y = x W^T + s (x A^T) B^T with
s = alpha / r (alpha / sqrt(r) with use_rslora). Adapters come from
`sensecf lm init-adapter` and from this file's own safetensors writer (rslora +
rank_pattern/alpha_pattern, a regex target_modules, the in-memory
`lora_A.default.weight` key form); where the system Python has torch, one is
also saved as adapter_model.bin with torch.save, as PEFT's
safe_serialization=False does.
"""
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(buf[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return out


def inv_freq(cfg):
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / d))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        inv_l = np.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = np.where(medium, smoothed, inv_l)
    return inv.astype(np.float32).astype(np.float64)


def rms_norm(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def write_safetensors(path, tensors):
    """A plain F32 safetensors writer (header unpadded, tensors in name order)."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj"]


def peft_targets(acfg, n_layers):
    """module name -> (r, alpha) of every LoRA-targeted projection, by PEFT's rules."""
    targets = acfg.get("target_modules")
    if targets is None:
        targets = ["q_proj", "v_proj"]
    layers = acfg.get("layers_to_transform")
    if isinstance(layers, int):
        layers = [layers]
    out = {}
    for i in range(n_layers):
        for proj in PROJECTIONS:
            key = f"model.layers.{i}.{proj}"
            if isinstance(targets, str):
                hit = targets.lower() == "all-linear" or re.fullmatch(targets, key) is not None
            elif key in targets:
                hit = True
            else:
                hit = any(key.endswith("." + t) for t in targets)
                if hit and layers:
                    hit = int(re.match(r".*?\.[^.]*\.(\d+)\.", key).group(1)) in layers
            if not hit:
                continue

            def pattern(patterns, default):
                for k, v in (patterns or {}).items():
                    if re.match(rf"(.*\.)?({k})$", key):
                        return v
                return default

            out[key] = (pattern(acfg.get("rank_pattern"), acfg["r"]), pattern(acfg.get("alpha_pattern"),
                                                                              acfg["lora_alpha"]))
    return out


def read_lora(adapter_dir, n_layers):
    """module name -> (A [r, in], B [out, r], scaling), checked against the config."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    assert acfg["peft_type"] == "LORA" and acfg.get("bias", "none") == "none"
    path = os.path.join(adapter_dir, "adapter_model.safetensors")
    if os.path.exists(path):
        tensors = read_safetensors(path)
    else:
        import torch
        tensors = {k: v.double().numpy() for k, v in torch.load(os.path.join(adapter_dir, "adapter_model.bin")).items()}
    tensors = {k.replace(".default.weight", ".weight"): v for k, v in tensors.items()}
    lora = {}
    for key, (r, alpha) in peft_targets(acfg, n_layers).items():
        a = tensors.pop(f"base_model.model.{key}.lora_A.weight")
        b = tensors.pop(f"base_model.model.{key}.lora_B.weight")
        assert a.shape[0] == r and b.shape[1] == r, (key, a.shape, b.shape, r)
        lora[key] = (a, b, alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r)
    assert not tensors, f"tensors the config does not explain: {sorted(tensors)[:3]}"
    return lora


def forward(cfg, w, ids, lora=None):
    T = len(ids)
    H, K = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    pos = np.arange(T, dtype=np.float64)
    freqs = pos[:, None] * inv_freq(cfg)[None, :]
    emb = np.concatenate([freqs, freqs], -1)
    cos, sin = np.cos(emb), np.sin(emb)
    q_i, k_i = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = k_i <= q_i
    window = cfg.get("sliding_window")
    if window:
        allowed &= k_i > q_i - window
    lora = lora or {}

    def linear(x, module):  # PEFT LoRA: x W^T + s (x A^T) B^T
        y = x @ w[module + ".weight"].T
        if module in lora:
            a, b, scaling = lora[module]
            y = y + scaling * ((x @ a.T) @ b.T)
        return y

    h = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = linear(x, p + "self_attn.q_proj").reshape(T, H, D).transpose(1, 0, 2)
        k = linear(x, p + "self_attn.k_proj").reshape(T, K, D).transpose(1, 0, 2)
        v = linear(x, p + "self_attn.v_proj").reshape(T, K, D).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // K, axis=0)  # kv head j serves query heads j*n_rep .. (j+1)*n_rep-1
        v = np.repeat(v, H // K, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(D)
        s = np.where(allowed[None], s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        h = h + linear(a.transpose(1, 0, 2).reshape(T, H * D), p + "self_attn.o_proj")
        y = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(y, p + "mlp.gate_proj")
        h = h + linear((g / (1 + np.exp(-g))) * linear(y, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


def token_ids(model, text):
    """The ids `lm logits --text` used: `lm tokenize` shares its tokenizer and defaults."""
    out = subprocess.run([BIN, "lm", "tokenize", "--tokenizer", os.path.join(model, "tokenizer.json"), "--text", text],
                         check=True, capture_output=True, text=True).stdout
    return np.asarray(json.loads(out), dtype=np.int64)


def check(family, text):
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, family)
        subprocess.run([BIN, "lm", "init-tiny", "--family", family, "--out", model, "--seed", "3",
                        "--log.level", "warn"], check=True)
        out = os.path.join(d, "logits.npy")
        subprocess.run([BIN, "lm", "logits", "--model", model, "--text", text, "--out", out, "--log.level", "warn"],
                       check=True)
        with open(os.path.join(model, "config.json")) as f:
            cfg = json.load(f)
        got, ids = np.load(out), token_ids(model, text)
        want = forward(cfg, read_safetensors(os.path.join(model, "model.safetensors")), ids)
        diff = np.abs(got - want).max()
        print(f"{family}: {len(ids)} tokens, vocab {got.shape[1]}, max |C++ - NumPy| = {diff:.2e}")
        if cfg.get("sliding_window"):
            assert len(ids) > cfg["sliding_window"], "the text must be longer than the sliding window"
        if family == "llama":
            assert (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3"
            assert cfg["num_key_value_heads"] < cfg["num_attention_heads"]
        if not diff <= 1e-4:
            raise AssertionError(f"{family}: logits differ from the reference by {diff:.3e} (> 1e-4)")


def handmade_adapter(adapter_dir, cfg, acfg, seed, in_memory_keys=False, torch_save=False):
    """Writes adapter_config.json and random A/B for it with this file's own writer."""
    os.makedirs(adapter_dir)
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(acfg, f, indent=2)
    rng = np.random.default_rng(seed)
    E, I = cfg["hidden_size"], cfg["intermediate_size"]
    D = cfg.get("head_dim") or E // cfg["num_attention_heads"]
    QD, KD = cfg["num_attention_heads"] * D, cfg["num_key_value_heads"] * D
    in_out = {"q_proj": (E, QD), "k_proj": (E, KD), "v_proj": (E, KD), "o_proj": (QD, E), "gate_proj": (E, I),
              "up_proj": (E, I), "down_proj": (I, E)}
    tensors = {}
    suffix = ".default.weight" if in_memory_keys else ".weight"
    for key, (r, _) in peft_targets(acfg, cfg["num_hidden_layers"]).items():
        n_in, n_out = in_out[key.rsplit(".", 1)[1]]
        tensors[f"base_model.model.{key}.lora_A{suffix}"] = rng.uniform(-1, 1, (r, n_in)) / math.sqrt(n_in)
        tensors[f"base_model.model.{key}.lora_B{suffix}"] = rng.normal(0, 0.05, (n_out, r))
    if torch_save:
        import torch
        torch.save({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()},
                   os.path.join(adapter_dir, "adapter_model.bin"))
    else:
        write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), tensors)


def check_lora(family, text, name, make_adapter, merge=False):
    """`sensecf lm logits --adapter` vs the NumPy model with the adapter applied here."""
    with tempfile.TemporaryDirectory() as d:
        model, adapter = os.path.join(d, family), os.path.join(d, "adapter")
        subprocess.run([BIN, "lm", "init-tiny", "--family", family, "--out", model, "--seed", "5",
                        "--log.level", "warn"], check=True)
        with open(os.path.join(model, "config.json")) as f:
            cfg = json.load(f)
        make_adapter(model, adapter, cfg)
        out = os.path.join(d, "logits.npy")
        subprocess.run([BIN, "lm", "logits", "--model", model, "--adapter", adapter, "--text", text, "--out", out,
                        "--log.level", "warn"] + (["--merge-adapter"] if merge else []), check=True)
        got, ids = np.load(out), token_ids(model, text)
        w = read_safetensors(os.path.join(model, "model.safetensors"))
        lora = read_lora(adapter, cfg["num_hidden_layers"])
        want = forward(cfg, w, ids, lora)
        base = forward(cfg, w, ids)
        diff, effect = np.abs(got - want).max(), np.abs(want - base).max()
        print(f"{family} + {name}{' (merged)' if merge else ''}: {len(lora)} LoRA modules, "
              f"max |C++ - NumPy| = {diff:.2e} (the adapter moves logits by up to {effect:.2e})")
        if not effect > 1e-2:
            raise AssertionError(f"{family} + {name}: the adapter barely changes the logits ({effect:.2e})")
        if not diff <= 1e-4:
            raise AssertionError(f"{family} + {name}: logits differ from the reference by {diff:.3e} (> 1e-4)")


def init_adapter(*flags):
    def make(model, adapter, cfg):
        subprocess.run([BIN, "lm", "init-adapter", "--model", model, "--out", adapter, "--init", "random",
                        "--log.level", "warn", *flags], check=True)
    return make


def handmade(acfg, in_memory_keys=False, torch_save=False):
    def make(model, adapter, cfg):
        handmade_adapter(adapter, cfg, dict({"peft_type": "LORA", "bias": "none", "task_type": "CAUSAL_LM"}, **acfg),
                         seed=11, in_memory_keys=in_memory_keys, torch_save=torch_save)
    return make


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def main():
    text = ("A 81-year-old patient showed low deep sleep (30.1%), REM 15.4% and glucose 210.8 mg/dL; "
            "suggest changes that reduce stress.")
    check("llama", text)
    check("mistral", text)
    all_linear = init_adapter("--targets", "all-linear", "--r", "8", "--alpha", "16", "--seed", "4")
    check_lora("llama", text, "all-linear r=8 (init-adapter)", all_linear)
    check_lora("llama", text, "all-linear r=8 (init-adapter)", all_linear, merge=True)
    check_lora("mistral", text, "q_proj,v_proj r=4 (init-adapter)",
               init_adapter("--targets", "q_proj,v_proj", "--r", "4", "--alpha", "8", "--seed", "5"))
    rslora = handmade({"r": 8, "lora_alpha": 16, "use_rslora": True,
                       "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"],
                       "rank_pattern": {"model.layers.1.self_attn.k_proj": 2, "v_proj": 4, "mlp.down_proj": 12},
                       "alpha_pattern": {"o_proj": 24}})
    regex = handmade({"r": 6, "lora_alpha": 12, "target_modules": r".*\.(0\.self_attn\.(q|k)_proj|1\.mlp\.\w+_proj)"},
                     in_memory_keys=True)
    for family in ("llama", "mistral"):
        check_lora(family, text, "rslora + rank_pattern/alpha_pattern", rslora)
        check_lora(family, text, "regex target_modules (lora_A.default.weight keys)", regex)
    if have_torch():
        pickled = handmade({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"],
                            "layers_to_transform": [1]}, torch_save=True)
        check_lora("llama", text, "layers_to_transform [1], adapter_model.bin from torch.save", pickled)
    else:
        print("skipped the adapter_model.bin case: the system Python has no torch")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
