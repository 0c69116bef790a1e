#!/usr/bin/env python3
"""safetensors files exchanged with an independent implementation of the format.

Debian has no python3-safetensors, so this file carries its own reader and
writer, written from the specification (huggingface/safetensors README and
tensor.rs: 8-byte little-endian header length, JSON header, byte buffer; the
reference `validate` rules; the reference writer's padding and ordering) with
numpy for the tensor bytes. Both directions are checked:

  1. this script writes python.safetensors (header not padded, tensors in name
     order, so the data is unaligned) and the C++ test
     SafetensorsGolden.ReadFromPython reads it back through load_weights;
  2. SafetensorsGolden.WriteForPython writes ours.safetensors and a sharded
     checkpoint with sensecf's writer; this script validates every header rule
     and every value.

The C++ side runs from the unit test binary: $SENSECF_UNIT_TESTS, or
tests/unit_tests next to the bin/ of $SENSECF_BIN (the CTest layout).

    SENSECF_BIN=build/cpu-release/bin/sensecf /usr/bin/python3 tests/python/test_safetensors_golden.py
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# dtype name -> (numpy dtype, size); BF16 is read as uint16 and widened by hand.
DTYPES = {
    "BOOL": (np.bool_, 1), "U8": (np.uint8, 1), "I8": (np.int8, 1), "F8_E5M2": (np.uint8, 1),
    "F8_E4M3": (np.uint8, 1), "I16": (np.int16, 2), "U16": (np.uint16, 2), "F16": (np.float16, 2),
    "BF16": (np.uint16, 2), "I32": (np.int32, 4), "U32": (np.uint32, 4), "F32": (np.float32, 4),
    "F64": (np.float64, 8), "I64": (np.int64, 8), "U64": (np.uint64, 8),
}
# The reference's Dtype declaration order = alignment order.
ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
         "U64"]


def fail(message):
    print("FAIL:", message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def read_safetensors(path, expect_reference_layout=True):
    """Returns (metadata, {name: float64 or int array}, header entries in write order)."""
    data = Path(path).read_bytes()
    check(len(data) >= 8, f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    check(2 <= n <= 100_000_000 and 8 + n <= len(data), f"{path}: bad header length {n}")
    text = data[8:8 + n].decode("utf-8")
    header = json.loads(text, object_pairs_hook=lambda pairs: pairs)  # keeps key order and duplicates
    check(isinstance(header, list), f"{path}: header is not an object")
    keys = [k for k, _ in header]
    check(len(keys) == len(set(keys)), f"{path}: duplicate keys")
    buffer = data[8 + n:]
    metadata, entries = {}, []
    for name, entry in header:
        if name == "__metadata__":
            metadata = dict(entry)
            check(all(isinstance(v, str) for v in metadata.values()), f"{path}: metadata not str->str")
            continue
        entry = dict(entry)
        check(set(entry) == {"dtype", "shape", "data_offsets"}, f"{path}: {name}: keys {sorted(entry)}")
        check(entry["dtype"] in DTYPES, f"{path}: {name}: dtype {entry['dtype']}")
        check(all(isinstance(d, int) and d >= 0 for d in entry["shape"]), f"{path}: {name}: shape")
        begin, end = entry["data_offsets"]
        numel = int(np.prod(entry["shape"], dtype=np.int64)) if entry["shape"] else 1
        check(end - begin == numel * DTYPES[entry["dtype"]][1], f"{path}: {name}: byte span")
        entries.append((name, entry["dtype"], list(entry["shape"]), begin, end))
    # Reference validate: sorted by offset, contiguous from 0 to the end of the buffer.
    position = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        check(begin == position, f"{path}: {name} begins at {begin}, expected {position}")
        position = end
    check(position == len(buffer), f"{path}: tensors cover {position} of {len(buffer)} bytes")
    if expect_reference_layout:
        check(n % 8 == 0, f"{path}: header length {n} is not a multiple of 8")
        stripped = text.rstrip(" ")
        check(stripped.endswith("}") and len(text) - len(stripped) < 8, f"{path}: padding is not 0-7 spaces")
        check(keys[0] == "__metadata__" or "__metadata__" not in keys, f"{path}: __metadata__ is not first")
        written = list(entries)
        expected = sorted(written, key=lambda e: (-ORDER.index(e[1]), e[0]))
        check([e[0] for e in written] == [e[0] for e in expected],
              f"{path}: order {[e[0] for e in written]} is not dtype-descending then name")
        check([e[3] for e in written] == sorted(e[3] for e in written), f"{path}: offsets not in header order")
    tensors = {}
    for name, dtype, shape, begin, end in entries:
        np_type, _ = DTYPES[dtype]
        raw = np.frombuffer(buffer[begin:end], dtype=np.dtype(np_type).newbyteorder("<"))
        if dtype == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = (dtype, raw.reshape(shape))
    return metadata, tensors, entries


def write_python_file(path):
    """Our own writer: header unpadded, tensors in name order (valid, but not the reference layout)."""
    def values(shape):
        n = int(np.prod(shape)) if shape else 1
        return (np.arange(n, dtype=np.float64) * 0.5 - 3).reshape(shape)

    tensors = [
        ("p.bf16", "BF16", [2, 2, 2]),
        ("p.f16", "F16", [4]),
        ("p.f32", "F32", [2, 3]),
        ("p.scalar", "F32", []),
    ]
    header, chunks, offset = {"__metadata__": {"writer": "python"}}, [], 0
    for name, dtype, shape in tensors:
        v = values(shape)
        if dtype == "BF16":
            raw = (v.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        elif dtype == "F16":
            raw = v.astype("<f2").tobytes()
        else:
            raw = v.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if (8 + len(text)) % 4 == 0:
        text += b" "  # keep the data unaligned on purpose
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def expect_sensecf_values(tensors, where):
    def v(n, shape):
        return (np.arange(n, dtype=np.float64) * 0.5 - 3).reshape(shape)

    expected = {
        "model.embed_tokens.weight": ("F32", v(12, [3, 4])),
        "model.norm.weight": ("BF16", v(5, [5])),
        "lm_head.weight": ("F16", v(6, [2, 3])),
        "x.f64": ("F64", v(3, [3])),
        "x.i64": ("I64", np.array([-5, 1 << 40, 7])),
        "x.empty": ("F32", np.zeros((0, 4))),
        "x.scalar": ("F32", np.array(-3.0)),
    }
    check(sorted(tensors) == sorted(expected), f"{where}: tensors {sorted(tensors)}")
    for name, (dtype, values) in expected.items():
        got_dtype, got = tensors[name]
        check(got_dtype == dtype, f"{where}: {name} dtype {got_dtype}, expected {dtype}")
        check(got.shape == values.shape, f"{where}: {name} shape {got.shape}, expected {values.shape}")
        check(np.array_equal(got.astype(np.float64), values.astype(np.float64)), f"{where}: {name} values {got}")


def unit_tests_binary():
    explicit = os.environ.get("SENSECF_UNIT_TESTS")
    if explicit:
        return Path(explicit)
    binary = os.environ.get("SENSECF_BIN")
    if not binary:
        fail("set SENSECF_BIN (the sensecf binary; unit_tests is found next to its bin/) or SENSECF_UNIT_TESTS")
    return Path(binary).resolve().parent.parent / "tests" / "unit_tests"


def main():
    binary = unit_tests_binary()
    check(binary.exists(), f"unit test binary {binary} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        write_python_file(Path(tmp) / "python.safetensors")
        read_safetensors(Path(tmp) / "python.safetensors", expect_reference_layout=False)  # self-check
        env = dict(os.environ, SENSECF_ST_GOLDEN_DIR=tmp)
        run = subprocess.run([str(binary), "--gtest_filter=SafetensorsGolden.*"], env=env, capture_output=True,
                             text=True)
        print(run.stdout[-3000:])
        check(run.returncode == 0, f"unit_tests failed ({run.returncode}): {run.stderr[-2000:]}")
        check("[  PASSED  ] 2 tests" in run.stdout and "SKIPPED" not in run.stdout,
              "SafetensorsGolden tests did not both run and pass")

        metadata, tensors, _ = read_safetensors(Path(tmp) / "ours.safetensors")
        check(metadata == {"format": "pt", "writer": "sensecf"}, f"ours.safetensors metadata {metadata}")
        expect_sensecf_values(tensors, "ours.safetensors")

        shard_dir = Path(tmp) / "ours_sharded"
        index = json.loads((shard_dir / "model.safetensors.index.json").read_text())
        weight_map = index["weight_map"]
        shards = sorted(set(weight_map.values()))
        check(len(shards) > 1, f"expected several shards, got {shards}")
        check(all(s == f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i, s in enumerate(shards)),
              f"shard names {shards}")
        merged, total = {}, 0
        for shard in shards:
            meta, part, entries = read_safetensors(shard_dir / shard)
            check(meta.get("format") == "pt", f"{shard}: metadata {meta}")
            for name in part:
                check(weight_map.get(name) == shard, f"{shard}: {name} not mapped to it")
                check(name not in merged, f"{name} in two shards")
            merged.update(part)
            total += sum(end - begin for _, _, _, begin, end in entries)
        check(set(merged) == set(weight_map), "index and shards disagree")
        check(index["metadata"]["total_size"] == total, f"total_size {index['metadata']['total_size']} != {total}")
        expect_sensecf_values(merged, "ours_sharded")
    print("safetensors golden: python reader accepts sensecf's files, sensecf reads python's: ok")


if __name__ == "__main__":
    main()
