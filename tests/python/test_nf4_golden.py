"""NF4 (QLoRA's 4-bit base weights) against an independent NumPy re-implementation.

The NumPy side is written here from bitsandbytes' documented semantics
(llm.md 3.3): the 16-value NF4 table; per block of 64 consecutive weights of
the flattened matrix, absmax = max |w| and each weight -> the nearest table
value of w / absmax; dequantised = table[index] * absmax. Double quantisation:
absmax minus its mean, blockwise (256) 8-bit against the signed dynamic map
(create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)), rebuilt
here from its definition.

Checked: `sensecf lm logits --quant nf4|nf4-dq` on tiny Llama and Mistral
checkpoints equal the NumPy forward pass of test_llm_reference.py run on the
NumPy-dequantised projection weights (1e-4, as for the dense model); and the
quantisation error itself is what it should be (NF4 logits differ from the
dense ones: the test would catch a --quant that does nothing).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_llm_reference import BIN, forward, read_safetensors, token_ids  # noqa: E402

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=np.float32)
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def dynamic_map():
    data = []
    for i in range(7):
        bounds = np.linspace(0.1, 1.0, 2 ** i + 1).astype(np.float32)
        means = (bounds[:-1] + bounds[1:]) / np.float32(2)
        scale = np.float32(10.0 ** (i - 6))
        data += list(scale * means) + list(-(scale * means))
    data += [np.float32(0), np.float32(1)]
    assert len(data) == 256
    return np.sort(np.array(data, dtype=np.float32))


def blockwise(values, block, code):
    """(indices, scales): nearest code value of v / max|v| per block."""
    n = values.size
    padded = np.zeros(-(-n // block) * block, dtype=np.float32)
    padded[:n] = values
    blocks = padded.reshape(-1, block)
    scale = np.abs(blocks).max(1)
    scaled = np.clip(blocks / np.where(scale > 0, scale, 1)[:, None], -1, 1)
    index = np.abs(scaled[..., None] - code[None, None, :]).argmin(-1)
    return index.reshape(-1)[:n], scale


def nf4_roundtrip(w, double_quant):
    flat = w.astype(np.float32).reshape(-1)
    index, absmax = blockwise(flat, 64, NF4)
    if double_quant:
        code = dynamic_map()
        offset = np.float32(absmax.mean())
        q, scale2 = blockwise(absmax - offset, 256, code)
        absmax = code[q] * np.repeat(scale2, 256)[:absmax.size] + offset
    return (NF4[index] * np.repeat(absmax, 64)[:flat.size]).astype(np.float32).reshape(w.shape).astype(np.float64)


def logits(model, text, out, *flags):
    subprocess.run([BIN, "lm", "logits", "--model", model, "--text", text, "--out", out, "--log.level", "warn",
                    *flags], check=True)
    return np.load(out)


def check(family, text):
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, family)
        subprocess.run([BIN, "lm", "init-tiny", "--family", family, "--out", model, "--seed", "3",
                        "--log.level", "warn"], check=True)
        import json
        with open(os.path.join(model, "config.json")) as f:
            cfg = json.load(f)
        weights = read_safetensors(os.path.join(model, "model.safetensors"))
        ids = token_ids(model, text)
        dense = logits(model, text, os.path.join(d, "dense.npy"))
        for quant, double_quant in (("nf4", False), ("nf4-dq", True)):
            w = dict(weights)
            for name in w:
                if name.rsplit(".", 2)[-2] in PROJECTIONS:
                    w[name] = nf4_roundtrip(w[name], double_quant)
            want = forward(cfg, w, ids)
            got = logits(model, text, os.path.join(d, quant + ".npy"), "--quant", quant)
            diff = np.abs(got - want).max()
            moved = np.abs(got - dense).max()
            print(f"{family} {quant}: max |C++ - NumPy| = {diff:.2e}; NF4 vs dense logits differ by {moved:.2e}")
            if not diff <= 1e-4:
                raise AssertionError(f"{family} {quant}: logits differ from the NumPy NF4 reference by {diff:.3e}")
            if not moved > 1e-3:
                raise AssertionError(f"{family} {quant}: the logits equal the dense model's: nothing was quantised")


def main():
    text = "A 67-year-old patient: deep sleep 14.2%, steps 3,120, glucose 188 mg/dL, TIR 52%."
    check("llama", text)
    check("mistral", text)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
