#!/usr/bin/env python3
"""Independent reader for the HDF5 fixture written by tests/unit/test_store.cpp.

Reads the file with h5py (not sensecf) and checks attributes, the compound
table's dtype and every value. Exits non-zero on any mismatch.
"""
import sys

import h5py
import numpy as np

path = sys.argv[1]
with h5py.File(path, "r") as f:
    attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    assert attrs["format_version"] == "1", attrs
    assert attrs["config"] == "[data]\nlabel = high_stress\n", attrs
    t = f["/metrics/clf"][...]
    assert t.dtype.names == ("key", "seed", "f1"), t.dtype
    assert t.dtype["key"].kind == "S" and t.dtype["key"].itemsize == 17, t.dtype
    assert t.dtype["seed"] == np.int64 and t.dtype["f1"] == np.float64, t.dtype
    assert [k.decode() for k in t["key"]] == ["0123456789abcdef", "k2", "k3"], t["key"]
    assert t["seed"].tolist() == [1, -7, 3], t["seed"]
    assert t["f1"].tolist() == [0.5, 0.25, 1e-300], t["f1"]
    assert f["/metrics/clf"].chunks == (4,), f["/metrics/clf"].chunks
    assert f["/metrics/clf"].maxshape == (None,)
print(f"h5py read {len(t)} rows from {path}: ok")
