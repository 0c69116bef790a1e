#!/usr/bin/env python3
"""pytorch_model.bin files written by real torch.save, read by sensecf.

The reference is the system Python's torch (Debian python3-torch): it writes
the archives, and every tensor sensecf reads back is compared bit for bit with
what torch holds. sensecf's side runs through `sensecf lm convert` (whose
safetensors output this file decodes with its own reader written from the
safetensors specification, as test_safetensors_golden.py does) and `sensecf lm
logits`. Checked:

  1. a state dict with F32, F16, BF16 and F64 tensors, an int64 buffer, a
     transposed (non-contiguous) tensor, a slice with a storage offset, two
     tensors sharing one storage, a 0-dim and an empty tensor; also saved with
     pickle protocol 4 and with nn.Parameter values;
  2. a sharded directory (pytorch_model-0000i-of-00002.bin + index);
  3. refused with a clear message: the legacy format
     (_use_new_zipfile_serialization=False), a nested checkpoint
     ({"state_dict": ..., "epoch": ...}), and a pickle that would run os.system
     (and does not: the file it would create stays absent);
  4. a tiny real model (`sensecf lm init-tiny`) re-saved as pytorch_model.bin,
     half of its matrices as transposed views: `lm logits` gives identical
     logits on both directories, and `lm convert` gives back tensors
     bit-identical to the original model.safetensors.

Skips (exit 77) only when the system Python has no torch.

    SENSECF_BIN=build/cpu-release/bin/sensecf /usr/bin/python3 tests/python/test_torch_bin_golden.py
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError as e:
    print(f"SKIP: the system Python has no torch ({e}); install python3-torch", file=sys.stderr)
    sys.exit(77)

import h5py

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2), "F64": (np.float64, 8),
             "I64": (np.int64, 8), "I32": (np.int32, 4), "U8": (np.uint8, 1), "BOOL": (np.bool_, 1)}
TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
ST_TO_TORCH = {v: k for k, v in TORCH_TO_ST.items()}


def fail(message):
    print("FAIL:", message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def read_safetensors(path):
    """{name: (dtype name, shape, raw little-endian bytes)}, validating the layout rules."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    check(8 + n <= len(data), f"{path}: header length {n} past the end")
    header = json.loads(data[8:8 + n])
    buffer = data[8 + n:]
    out, covered = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            check(entry.get("format") == "pt", f"{path}: metadata {entry}")
            continue
        begin, end = entry["data_offsets"]
        numel = int(np.prod(entry["shape"], dtype=np.int64)) if entry["shape"] else 1
        check(end - begin == numel * ST_DTYPES[entry["dtype"]][1], f"{path}: {name}: byte span")
        out[name] = (entry["dtype"], list(entry["shape"]), buffer[begin:end])
        covered += end - begin
    check(covered == len(buffer), f"{path}: tensors cover {covered} of {len(buffer)} bytes")
    return out


def read_checkpoint(directory):
    """All tensors of a safetensors directory (single file or shards)."""
    directory = Path(directory)
    if (directory / "model.safetensors").exists():
        return read_safetensors(directory / "model.safetensors")
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    merged = {}
    for shard in sorted(set(index["weight_map"].values())):
        part = read_safetensors(directory / shard)
        check(all(index["weight_map"][k] == shard for k in part), f"{shard}: tensors not mapped to it")
        merged.update(part)
    check(set(merged) == set(index["weight_map"]), f"{directory}: index and shards disagree")
    return merged


def torch_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def to_torch(dtype, shape, raw):
    np_type = ST_DTYPES[dtype][0]
    array = np.frombuffer(raw, dtype=np.dtype(np_type).newbyteorder("<")).reshape(shape).copy()
    t = torch.from_numpy(array)
    return t.view(torch.bfloat16) if dtype == "BF16" else t


def expect_same(got, want, where):
    """got: read_checkpoint output; want: {name: torch tensor}. Bit-identical, same dtype and shape."""
    check(sorted(got) == sorted(want), f"{where}: tensors {sorted(got)}, expected {sorted(want)}")
    for name, t in want.items():
        dtype, shape, raw = got[name]
        check(dtype == TORCH_TO_ST[t.dtype], f"{where}: {name}: dtype {dtype}, expected {TORCH_TO_ST[t.dtype]}")
        check(shape == list(t.shape), f"{where}: {name}: shape {shape}, expected {list(t.shape)}")
        check(raw == torch_bytes(t), f"{where}: {name}: bytes differ")


def sensecf(*args, expect_ok=True):
    run = subprocess.run([BIN, *args, "--log.level", "warn"], capture_output=True, text=True)
    if expect_ok and run.returncode != 0:
        fail(f"sensecf {' '.join(args)} exited {run.returncode}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return run


def convert(model, out):
    sensecf("lm", "convert", "--model", str(model), "--out", str(out))
    return read_checkpoint(out)


def expect_refused(model, out, fragments):
    run = sensecf("lm", "convert", "--model", str(model), "--out", str(out), expect_ok=False)
    text = run.stdout + run.stderr
    check(run.returncode == 1, f"{model}: exit code {run.returncode}, expected 1:\n{text}")
    for fragment in fragments:
        check(fragment in text, f"{model}: message lacks {fragment!r}:\n{text}")
    check(not Path(out).exists() or not any(Path(out).iterdir()), f"{out}: written although refused")


def views_state_dict():
    torch.manual_seed(5)
    base = torch.randn(4, 6)
    return OrderedDict([
        ("f32", torch.randn(3, 5)),
        ("f16", torch.randn(7).half()),
        ("bf16", torch.randn(2, 3).to(torch.bfloat16)),
        ("f64", torch.randn(2, 2, 2, dtype=torch.float64)),
        ("buffer.i64", torch.tensor([-3, 1 << 40, 7])),
        ("transposed", base.t()),              # stride (1, 6)
        ("slice", base[1:3]),                  # storage offset 6, shares base's storage
        ("column", base[:, 2]),                # stride 6, offset 2
        ("base", base),
        ("scalar", torch.tensor(2.75, dtype=torch.float64)),
        ("empty", torch.zeros(0, 4, dtype=torch.float16)),
    ])


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def check_state_dicts(tmp):
    sd = views_state_dict()
    check(not sd["transposed"].is_contiguous() and sd["slice"].storage_offset() == 6, "fixture views")
    check(sd["slice"].data_ptr() != sd["base"].data_ptr(), "fixture offset")
    single = tmp / "single"
    single.mkdir()
    torch.save(sd, single / "pytorch_model.bin")
    expect_same(convert(single, tmp / "single-out"), sd, "single")

    proto4 = tmp / "proto4"
    proto4.mkdir()
    params = OrderedDict((k, torch.nn.Parameter(v, requires_grad=False) if v.is_floating_point() else v)
                         for k, v in sd.items())
    torch.save(params, proto4 / "pytorch_model.bin", pickle_protocol=4)
    expect_same(convert(proto4, tmp / "proto4-out"), sd, "protocol 4, parameters")

    sharded = tmp / "sharded"
    sharded.mkdir()
    names = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[:5], "pytorch_model-00002-of-00002.bin": names[5:]}
    weight_map = {}
    for file, keys in shards.items():
        torch.save(OrderedDict((k, sd[k]) for k in keys), sharded / file)
        weight_map.update({k: file for k in keys})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    (sharded / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    expect_same(convert(sharded, tmp / "sharded-out"), sd, "sharded")
    print(f"state dicts: {len(sd)} tensors (4 float dtypes, views, shared storage, 0-dim, empty) read "
          "bit-identically from single, protocol-4 and sharded pytorch_model.bin")

    legacy = tmp / "legacy"
    legacy.mkdir()
    torch.save(sd, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    expect_refused(legacy, tmp / "legacy-out",
                   ["written in torch.save's legacy format", "torch.save(torch.load("])

    nested = tmp / "nested"
    nested.mkdir()
    torch.save({"state_dict": sd, "epoch": 3}, nested / "pytorch_model.bin")
    expect_refused(nested, tmp / "nested-out", ["holds a checkpoint dict, not a state dict: its key 'state_dict'",
                                                "['state_dict']"])

    evil = tmp / "evil"
    evil.mkdir()
    marker = tmp / "pwned"
    torch.save({"w": Evil(marker)}, evil / "pytorch_model.bin")
    expect_refused(evil, tmp / "evil-out", ["refusing to run pickle global", "system", "a state dict never needs it"])
    check(not marker.exists(), "the pickle's os.system ran")
    print("refused with a message: legacy format, nested checkpoint, os.system global (not run)")


def check_tiny_model(tmp):
    original = tmp / "tiny"
    sensecf("lm", "init-tiny", "--family", "llama", "--out", str(original), "--seed", "4")
    tensors = read_checkpoint(original)
    state = OrderedDict()
    for i, (name, (dtype, shape, raw)) in enumerate(sorted(tensors.items())):
        t = to_torch(dtype, shape, raw)
        if t.dim() == 2 and i % 2 == 0:
            t = t.t().contiguous().t()  # same values, transposed strides
            check(not t.is_contiguous(), f"{name}: fixture not strided")
        state[name] = t
    as_bin = tmp / "tiny-bin"
    as_bin.mkdir()
    torch.save(state, as_bin / "pytorch_model.bin")
    for f in original.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, as_bin / f.name)

    logits = {}
    for label, model in (("safetensors", original), ("pytorch_model.bin", as_bin)):
        out = tmp / f"logits-{label}.h5"
        sensecf("lm", "logits", "--model", str(model), "--ids", "1,5,9,2,7,3", "--out", str(out))
        with h5py.File(out, "r") as f:
            logits[label] = f["logits"][:]
    check(logits["safetensors"].shape[0] == 6, f"logits shape {logits['safetensors'].shape}")
    check(np.array_equal(logits["safetensors"], logits["pytorch_model.bin"]),
          f"logits differ by {np.abs(logits['safetensors'] - logits['pytorch_model.bin']).max():.3e}")

    converted = tmp / "tiny-converted"
    got = convert(as_bin, converted)
    expect_same(got, {k: to_torch(*v) for k, v in tensors.items()}, "tiny converted")
    check((converted / "config.json").read_bytes() == (original / "config.json").read_bytes(), "config.json differs")
    check((converted / "tokenizer.json").exists(), "tokenizer.json not copied")
    print(f"tiny llama: {len(tensors)} tensors; logits identical from safetensors and pytorch_model.bin; "
          "lm convert gives back bit-identical safetensors")


def main():
    check(Path(BIN).exists(), f"sensecf binary {BIN} does not exist (set SENSECF_BIN)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        check_state_dicts(tmp)
        check_tiny_model(tmp)
    print(f"torch.save golden (torch {torch.__version__}): ok")


if __name__ == "__main__":
    main()
