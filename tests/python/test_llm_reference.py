"""The C++ Llama/Mistral forward pass against an independent NumPy implementation.

The NumPy model below is written from transformers' modeling_llama.py /
modeling_mistral.py semantics (llm.md section 1), in float64, reading the
checkpoint with nothing but json/struct/numpy. It checks `sensecf lm logits` on
random tiny checkpoints made by `sensecf lm init-tiny`: Llama with llama3 RoPE
scaling and grouped-query attention, Mistral with a sliding window shorter than
the sequence. (Goldens from transformers itself: tests/golden/llm/, produced
where transformers is installed.)
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import h5py
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


def forward(cfg, w, ids):
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
    h = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = (x @ w[p + "self_attn.q_proj.weight"].T).reshape(T, H, D).transpose(1, 0, 2)
        k = (x @ w[p + "self_attn.k_proj.weight"].T).reshape(T, K, D).transpose(1, 0, 2)
        v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(T, K, D).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // K, axis=0)  # kv head j serves query heads j*n_rep .. (j+1)*n_rep-1
        v = np.repeat(v, H // K, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(D)
        s = np.where(allowed[None], s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        h = h + a.transpose(1, 0, 2).reshape(T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        y = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        g = y @ w[p + "mlp.gate_proj.weight"].T
        h = h + ((g / (1 + np.exp(-g))) * (y @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


def check(family, text):
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, family)
        subprocess.run([BIN, "lm", "init-tiny", "--family", family, "--out", model, "--seed", "3",
                        "--log.level", "warn"], check=True)
        out = os.path.join(d, "logits.h5")
        subprocess.run([BIN, "lm", "logits", "--model", model, "--text", text, "--out", out, "--log.level", "warn"],
                       check=True)
        with open(os.path.join(model, "config.json")) as f:
            cfg = json.load(f)
        with h5py.File(out, "r") as f:
            got = f["logits"][:]
            ids = f["input_ids"][:]
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


def main():
    text = ("A 81-year-old patient showed low deep sleep (30.1%), REM 15.4% and glucose 210.8 mg/dL; "
            "suggest changes that reduce stress.")
    check("llama", text)
    check("mistral", text)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
