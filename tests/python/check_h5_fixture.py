#!/usr/bin/env python3
"""Independent reader for the HDF5 fixtures written by tests/unit/test_store.cpp.

Reads the file with h5py (not sensecf) and checks attributes, the compound
table's dtype and every value. Exits non-zero on any mismatch.

    check_h5_fixture.py FILE              the plain table fixture
    check_h5_fixture.py --results FILE    the results file of ResultsKeepValidityColumnsAndAnswers:
                                          /metrics/cf's validity_returned and parse_rate, and the
                                          per-query answer text of /counterfactuals/<key>/answer
"""
import math
import sys

import h5py
import numpy as np


def check_results(path):
    with h5py.File(path, "r") as f:
        cf = f["/metrics/cf"][...]
        names = cf.dtype.names
        for column in ("validity", "coverage", "validity_returned", "parse_rate"):
            assert column in names and cf.dtype[column] == np.float64, (column, cf.dtype)
        assert names.index("validity_returned") == names.index("validity") + 1, names
        methods = [m.decode() for m in cf["method"]]
        assert methods == ["llm:tiny:zero-shot+constrained", "nice"], methods
        assert cf["validity"].tolist() == [1 / 3, 1 / 3], cf["validity"]
        assert cf["coverage"].tolist() == [2 / 3, 2 / 3], cf["coverage"]
        assert cf["validity_returned"].tolist() == [0.5, 0.5], cf["validity_returned"]
        assert cf["parse_rate"][0] == 0.75 and math.isnan(cf["parse_rate"][1]), cf["parse_rate"]
        g = f["/counterfactuals/00000000000000aa"]
        ds = g["answer"]
        assert ds.shape == (3,), ds.shape
        assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8", ds.dtype
        answers = ds.asstr()[...].tolist()
        want = ["deep_pct: 18.0", "", "deep_pct = 35 %\nage: 70 \u2014 unchanged \u2713"]
        assert answers == want, (answers, want)
        assert g["found"][...].tolist() == [1, 0, 1]
    print(f"h5py read {len(answers)} answers and {len(cf)} CF metric rows from {path}: ok")


if len(sys.argv) == 3 and sys.argv[1] == "--results":
    check_results(sys.argv[2])
    sys.exit(0)

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
