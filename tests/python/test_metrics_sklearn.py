#!/usr/bin/env python3
"""Golden test: `sensecf score` against scikit-learn.

Generates prediction sets with numpy (random scores, heavy ties, all-positive
predictions, all-negative predictions, imbalanced labels, perfect and inverted
rankings), writes each as a CSV, runs `$SENSECF_BIN score --predictions F --json`
and checks accuracy, precision, recall, f1 (pos_label=1, zero_division=0,
prediction = score > 0.5) and roc_auc_score against scikit-learn within 1e-12.
A set with one class only must give auc = null (scikit-learn raises there).
Also checks that a malformed CSV fails with the file name and line number.

Run with the system Python (Debian's numpy and scikit-learn):
    SENSECF_BIN=build/bin/sensecf /usr/bin/python3 tests/python/test_metrics_sklearn.py
Prints a table; exits 1 on any mismatch.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.metrics import (accuracy_score, f1_score, precision_score, recall_score,
                             roc_auc_score)

TOLERANCE = 1e-12
KEYS = ("accuracy", "precision", "recall", "f1", "auc")


def make_cases(rng):
    """(name, y_true, score) triples covering the edge cases of each metric."""
    cases = []
    n = 1000
    y = rng.integers(0, 2, n)
    cases.append(("random", y, rng.random(n)))
    cases.append(("ties_1_decimal", y, np.round(rng.random(n), 1)))
    cases.append(("ties_2_levels", y, rng.choice([0.25, 0.75], n)))
    informative = np.clip(0.5 * y + 0.5 * rng.random(n) - 0.1, 0, 1)
    cases.append(("informative", y, informative))
    cases.append(("informative_ties", y, np.round(informative, 1)))
    cases.append(("all_predicted_positive", y, 0.6 + 0.4 * rng.random(n)))
    cases.append(("all_predicted_negative", y, 0.5 * rng.random(n)))  # precision 0/0 -> 0
    cases.append(("exactly_half", y, np.full(n, 0.5)))               # 0.5 predicts 0; AUC 0.5
    y_rare = (rng.random(n) < 0.03).astype(int)
    cases.append(("imbalanced_3pct", y_rare, np.clip(0.3 * y_rare + 0.7 * rng.random(n), 0, 1)))
    y_common = (rng.random(n) < 0.95).astype(int)
    cases.append(("imbalanced_95pct", y_common, np.round(rng.random(n), 2)))
    cases.append(("perfect", y, y * 0.5 + 0.25))
    cases.append(("inverted", y, 0.75 - y * 0.5))
    cases.append(("tiny", np.array([0, 1, 1]), np.array([0.2, 0.6, 0.6])))
    cases.append(("extreme_scores", y, rng.choice([0.0, 1.0, 1e-300, 1.0 - 1e-16], n)))
    cases.append(("one_class_only", np.ones(50, dtype=int), rng.random(50)))
    return cases


def reference(y, s):
    pred = (s > 0.5).astype(int)
    ref = {
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
    }
    ref["auc"] = roc_auc_score(y, s) if len(np.unique(y)) == 2 else None
    return ref


def write_csv(path, y, s, rng):
    # Extra columns and a shuffled column order: the reader must find them by name.
    cols = ["row", "y_true", "score", "note"]
    order = list(rng.permutation(len(cols)))
    with open(path, "w") as f:
        f.write(",".join(cols[i] for i in order) + "\n")
        for i, (yi, si) in enumerate(zip(y, s)):
            values = [str(i), str(int(yi)), repr(float(si)), "x"]
            f.write(",".join(values[i] for i in order) + "\n")


def run_score(binary, path):
    proc = subprocess.run([binary, "score", "--predictions", path, "--json"],
                          capture_output=True, text=True)
    return proc


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOLERANCE


def main():
    binary = os.environ.get("SENSECF_BIN")
    if not binary or not os.path.exists(binary):
        print(f"SENSECF_BIN is not set or does not exist: {binary!r}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(20240531)
    failures = []
    with tempfile.TemporaryDirectory(prefix="sensecf_score_") as tmp:
        print(f"{'case':<24} {'n':>5}  " + "  ".join(f"{k:>22}" for k in KEYS))
        for name, y, s in make_cases(rng):
            path = os.path.join(tmp, f"{name}.csv")
            write_csv(path, y, s, rng)
            proc = run_score(binary, path)
            if proc.returncode != 0:
                failures.append(f"{name}: exit code {proc.returncode}: {proc.stderr.strip()}")
                continue
            try:
                got = json.loads(proc.stdout)
            except json.JSONDecodeError as e:
                failures.append(f"{name}: stdout is not JSON ({e}): {proc.stdout!r}")
                continue
            ref = reference(y, s)
            if got.get("n") != len(y):
                failures.append(f"{name}: n = {got.get('n')}, expected {len(y)}")
            cells = []
            for k in KEYS:
                ok = close(got.get(k), ref[k])
                cells.append(f"{str(got.get(k))[:20]:>20} {'ok' if ok else 'XX'}")
                if not ok:
                    failures.append(f"{name}: {k} = {got.get(k)!r}, scikit-learn {ref[k]!r}")
            print(f"{name:<24} {len(y):>5}  " + "  ".join(cells))

        # A malformed file must fail and say where.
        bad = os.path.join(tmp, "malformed.csv")
        with open(bad, "w") as f:
            f.write("y_true,score\n1,0.9\n0,0.2\n1,not-a-number\n")
        proc = run_score(binary, bad)
        where = f"{bad}:4"
        if proc.returncode == 0 or where not in proc.stderr:
            failures.append(f"malformed CSV: exit code {proc.returncode}, expected != 0 and "
                            f"{where!r} in stderr; stderr: {proc.stderr.strip()!r}")
        else:
            message = next(line for line in proc.stderr.splitlines() if where in line)
            print(f"malformed CSV rejected: {message.strip()}")

        missing = os.path.join(tmp, "missing_column.csv")
        with open(missing, "w") as f:
            f.write("y,score\n1,0.9\n")
        proc = run_score(binary, missing)
        if proc.returncode == 0 or missing not in proc.stderr or "y_true" not in proc.stderr:
            failures.append(f"missing column: exit code {proc.returncode}; stderr: {proc.stderr.strip()!r}")

    if failures:
        print(f"\nFAILED: {len(failures)} mismatch(es) against scikit-learn:", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print("\nall metrics agree with scikit-learn within", TOLERANCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
