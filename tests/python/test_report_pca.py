#!/usr/bin/env python3
"""Golden test: Fig. 8's PCA coordinates (`sensecf report`) against scikit-learn.

Writes a results file with h5py alone, in the layout of src/store/results.cpp
(root attributes, compound tables /tasks, /metrics/cf, /metrics/clf,
/metrics/train, and /counterfactuals/<key> arrays), independent of sensecf's
writer and sweep. Runs `$SENSECF_BIN report --results F --out D`, reads fig8.csv
and, per method, rebuilds the panel's points from the HDF5 arrays (the factual
rows of the evenly spaced query subset i*n//N, then their found CFs) and compares
pc1, pc2 and the explained-variance ratios with
    StandardScaler().fit_transform(X) -> PCA(n_components=2, svd_solver="full")
up to the sign of each component, within TOLERANCE. Also checks the point set,
the classes (factual: 1 - target, CF: target), that a file that is not a results
file is refused with a clear message, and that the tables the rows feed exist.

Run with the system Python (Debian's numpy, scikit-learn, h5py):
    SENSECF_BIN=build/cpu-release/bin/sensecf /usr/bin/python3 tests/python/test_report_pca.py
    /usr/bin/python3 tests/python/test_report_pca.py --write-results R.h5   # only write the sample file
Exits 1 on any mismatch, printing the largest difference.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

TOLERANCE = 1e-9
FIG8_POINTS = 60  # < the largest task's n, so the subset rule is exercised
FEATURES = ["awake_pct", "deep_pct", "steps_mean", "glucose_mean", "tir_pct", "age", "gender"]
METHODS = ["dice-random", "nice", "cfnow-greedy", "llm:llama-3.1-8b:fine-tuned"]
SCENARIOS = ["positive", "negative", "dual"]


def s(n):
    return f"S{n}"


# Column lists of results.cpp (name, numpy type); strings are fixed-length, NUL-padded.
TASK_DTYPE = np.dtype([("key", s(17)), ("kind", s(16)), ("label", s(96)), ("method", s(32)),
                       ("scenario", s(12)), ("model", s(12)), ("seed", "<i8"), ("ratio", "<f8"),
                       ("status", s(8)), ("attempt", "<i8"), ("rank", "<i8"), ("host", s(64)),
                       ("device", s(24)), ("started", "<f8"), ("seconds", "<f8"), ("message", s(512))])
CF_DTYPE = np.dtype([("key", s(17)), ("method", s(32)), ("scenario", s(12)), ("purpose", s(12)),
                     ("seed", "<i8"), ("factual_class", "<i8"), ("n_queries", "<i8"), ("n_cfs", "<i8")] +
                    [(m, "<f8") for m in ("coverage", "validity", "validity_returned", "parse_rate",
                                          "distance", "sparsity", "plausibility", "ynn", "knn_distance",
                                          "violations", "redundancy", "seconds_per_query")])
CLF_DTYPE = np.dtype([("key", s(17)), ("kind", s(16)), ("model", s(12)), ("method", s(32)),
                      ("scenario", s(12)), ("seed", "<i8"), ("fraction", "<f8"), ("ratio", "<f8"),
                      ("n_train", "<i8"), ("n_added", "<i8"), ("n_wanted", "<i8")] +
                     [(m, "<f8") for m in ("accuracy", "precision", "recall", "f1", "auc")])
TRAIN_DTYPE = np.dtype([("key", s(17)), ("kind", s(16)), ("step", "<i8"), ("loss", "<f8"),
                        ("val_loss", "<f8")])


def table(f, path, dtype, rows):
    data = np.array(rows, dtype=dtype) if rows else np.zeros(0, dtype=dtype)
    f.create_dataset(path, data=data, maxshape=(None,), chunks=(64,))


def text_attr(obj, name, value):
    obj.attrs[name] = np.bytes_(value.encode())  # fixed-length, as sensecf writes them


def make_cfs(rng, n, shift):
    """Factual rows, CFs (NaN rows where none found), targets."""
    d = len(FEATURES)
    x = np.column_stack([rng.uniform(0, 30, n), rng.uniform(5, 25, n), rng.normal(400, 150, n),
                         rng.normal(140, 30, n), rng.uniform(20, 100, n), rng.integers(40, 80, n),
                         np.zeros(n)])  # gender constant: its z-score is 0 in both implementations
    target = rng.integers(0, 2, n)
    cf = x.copy()
    change = rng.random((n, d)) < 0.4
    change[:, 5:] = False  # immutables
    cf += change * rng.normal(shift, 1.0, (n, d)) * np.array([3, 2, 80, 15, 10, 0, 0])
    found = rng.random(n) < 0.75
    cf[~found] = np.nan
    return x, cf, target, found


def write_results(path, rng):
    tasks, cf_rows, clf_rows, arrays = [], [], [], {}
    key_no = [0]

    def key():
        key_no[0] += 1
        return f"{key_no[0]:016x}"

    def task(kind, method="", scenario="", seed=1, ratio=0.0, status="done", message=""):
        k = key()
        tasks.append((k, kind, f"{kind} {method} {scenario} seed={seed}", method, scenario, "nn", seed, ratio,
                      status, 1, 0, "node1", "cpu:2", 1.7e9, 1.5, message))
        return k

    for seed in (1, 2):
        for m_index, method in enumerate(METHODS):
            k = task("generate", method, "full", seed)
            n = 90 if m_index == 0 else 35 + 5 * m_index
            x, cf, target, found = make_cfs(rng, n, 0.3 * m_index)
            arrays[k] = dict(method=method, scenario="full", purpose="table3", seed=seed, x=x, cf=cf,
                             target=target, found=found)
            coverage = float(found.mean())
            parse_rate = 0.9 if method.startswith("llm:") else np.nan  # NaN: not applicable (a baseline)
            for cls in (-1, 0, 1):
                v = rng.uniform(0.4, 1.0) * coverage  # validity over all queries <= coverage
                cf_rows.append((k, method, "full", "table3", seed, cls, n, int(found.sum()), coverage, v,
                                v / coverage, parse_rate, rng.uniform(0.1, 2), rng.uniform(1, 5),
                                rng.uniform(0.3, 1), 0.8, 1.2, 0.0, 0.5, 0.01))
        full = rng.uniform(0.65, 0.75)
        clf_rows.append((task("train_clf", "", "full", seed), "train_clf", "nn", "", "full", seed, 0.0, 0.0,
                         1000, 0, 0, full, full, full, full, full))
        for scenario in SCENARIOS:
            reduced = full * rng.uniform(0.8, 0.9)
            clf_rows.append((task("train_clf", "", scenario, seed), "train_clf", "nn", "", scenario, seed, 0.5,
                             0.0, 800, 0, 0, reduced, reduced, reduced, reduced, reduced))
            for method in METHODS:
                for ratio in (0.2, 0.6, 1.0):
                    v = reduced * (1 + ratio * rng.uniform(0.02, 0.2))
                    clf_rows.append((task("augment", method, scenario, seed, ratio), "augment", "nn", method,
                                     scenario, seed, 0.5, ratio, 900, int(100 * ratio), int(100 * ratio),
                                     v, v, v, v, v))
        for model in ("nn", "xgb", "rf", "svm"):
            for reduction in (0.0, 0.1, 0.3, 0.5, 0.7):
                v = 0.7 - 0.1 * reduction + rng.normal(0, 0.01)
                clf_rows.append((task("fig1", "", "full", seed, reduction), "fig1", model, "", "full", seed,
                                 reduction, 0.0, 1000, 0, 0, v, v, v, v, v))
    task("finetune", "llm:llama-3.1-8b:fine-tuned", "full", 1, status="failed", message="CUDA out of memory")

    with h5py.File(path, "w") as f:
        text_attr(f, "format_version", "1")
        text_attr(f, "sensecf_version", "0.1.0")
        text_attr(f, "git_sha", "feedbeef")
        text_attr(f, "config", "[data]\nimmutable = age, gender   # config file\n"
                               "[sweep]\nmethods = " + ", ".join(METHODS) + "\n")
        text_attr(f, "config_hash", "0123456789abcdef")
        text_attr(f, "started", "2025-01-01T00:00:00Z")
        text_attr(f, "mpi_size", "4")
        text_attr(f, "hosts", "node1")
        text_attr(f, "slurm_job_id", "")
        table(f, "/tasks", TASK_DTYPE, tasks)
        table(f, "/metrics/cf", CF_DTYPE, cf_rows)
        table(f, "/metrics/clf", CLF_DTYPE, clf_rows)
        table(f, "/metrics/train", TRAIN_DTYPE, [])
        group = f.create_group("/counterfactuals")
        for k, a in arrays.items():
            g = group.create_group(k)
            n = len(a["target"])
            g["query_row"] = np.arange(1000, 1000 + n, dtype="<i8")
            g["factual"] = a["x"].astype("<f8")
            g["counterfactual"] = a["cf"].astype("<f8")
            g["target"] = a["target"].astype("<i8")
            g["probability"] = np.where(a["found"], 0.7, np.nan)
            g["valid"] = a["found"].astype("<i8")
            g["found"] = a["found"].astype("<i8")
            # The LLM's raw answer per query (variable-length UTF-8); empty for baselines.
            answers = [f"deep_pct: {c[1]:.1f}" if a["method"].startswith("llm:") and ok else ""
                       for c, ok in zip(a["cf"], a["found"])]
            g.create_dataset("answer", data=answers, dtype=h5py.string_dtype("utf-8"))
            text_attr(g, "features", json.dumps(FEATURES))
            for name in ("method", "scenario", "purpose"):
                text_attr(g, name, a[name])
            text_attr(g, "seed", str(a["seed"]))
    return arrays


def reference_panel(a, limit):
    n = len(a["target"])
    queries = list(range(n)) if n <= limit else [i * n // limit for i in range(limit)]
    points = {("factual", q): (a["x"][q], 1 - a["target"][q]) for q in queries}
    for q in queries:
        if a["found"][q]:
            points[("counterfactual", q)] = (a["cf"][q], a["target"][q])
    return points


def check_panel(method, rows, a, failures):
    expected = reference_panel(a, FIG8_POINTS)
    got_keys = [(r["point"], int(r["query"])) for r in rows]
    if sorted(got_keys) != sorted(expected.keys()):
        failures.append(f"{method}: fig8.csv has {len(got_keys)} points, expected {len(expected)} "
                        f"(the factual rows of queries i*n//N and their found CFs)")
        return 0.0
    for r, k in zip(rows, got_keys):
        if int(r["class"]) != expected[k][1]:
            failures.append(f"{method} {k}: class {r['class']}, expected {expected[k][1]}")
    x = np.array([expected[k][0] for k in got_keys])
    z = StandardScaler().fit_transform(x)
    pca = PCA(n_components=2, svd_solver="full").fit(z)
    ref = pca.transform(z)
    got = np.array([[float(r["pc1"]), float(r["pc2"])] for r in rows])
    worst = 0.0
    for c in range(2):
        sign = 1.0 if np.dot(got[:, c], ref[:, c]) >= 0 else -1.0
        diff = np.max(np.abs(got[:, c] - sign * ref[:, c]))
        worst = max(worst, diff)
        if not diff <= TOLERANCE:
            failures.append(f"{method}: pc{c + 1} differs from scikit-learn by up to {diff:.3e} "
                            f"(tolerance {TOLERANCE:g})")
        evr = float(rows[0][f"explained_pc{c + 1}"])
        if abs(evr - pca.explained_variance_ratio_[c]) > TOLERANCE:
            failures.append(f"{method}: explained_pc{c + 1} = {evr!r}, scikit-learn "
                            f"{pca.explained_variance_ratio_[c]!r}")
    return worst


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-results":
        write_results(sys.argv[2], np.random.default_rng(7))
        print(f"wrote {sys.argv[2]}")
        return 0
    binary = os.environ.get("SENSECF_BIN")
    if not binary or not os.path.exists(binary):
        print(f"SENSECF_BIN is not set or does not exist: {binary!r}", file=sys.stderr)
        return 1
    failures = []
    with tempfile.TemporaryDirectory(prefix="sensecf_report_") as tmp:
        results = os.path.join(tmp, "results.h5")
        arrays = write_results(results, np.random.default_rng(20250101))
        out = os.path.join(tmp, "report")
        proc = subprocess.run([binary, "report", "--results", results, "--out", out,
                               "--fig8-points", str(FIG8_POINTS), "--log.level", "warn"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"sensecf report failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}", file=sys.stderr)
            return 1
        printed = proc.stdout.split()
        if not printed or printed[-1] != os.path.join(out, "index.md"):
            failures.append(f"the command should print the paths it wrote, index.md last; got {printed[-3:]}")
        for name in ("table3.md", "table3.csv", "table3.tex", "table4.md", "fig1.csv", "fig6.csv", "fig7.csv",
                     "fig8.csv", "fig8.gp"):
            if not os.path.exists(os.path.join(out, name)):
                failures.append(f"{name} was not written")

        with open(os.path.join(out, "fig8.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        seed1 = {(a["method"]): a for k, a in arrays.items() if a["seed"] == 1}
        print(f"{'method':<32} {'points':>6}  max |diff| vs scikit-learn")
        for method in METHODS:
            panel = [r for r in rows if r["method"] == method]
            if not panel:
                failures.append(f"{method}: no rows in fig8.csv")
                continue
            if any(r["seed"] != "1" for r in panel):
                failures.append(f"{method}: fig8.csv should show seed 1 (the smallest)")
            worst = check_panel(method, panel, seed1[method], failures)
            print(f"{method:<32} {len(panel):>6}  {worst:.3e}")

        # A file that is not a results file must be refused with a clear message.
        other = os.path.join(tmp, "other.h5")
        with h5py.File(other, "w") as f:
            f["x"] = np.arange(3)
        proc = subprocess.run([binary, "report", "--results", other, "--out", out], capture_output=True, text=True)
        if proc.returncode == 0 or "not a sensecf results file" not in proc.stderr:
            failures.append(f"a non-results HDF5 file: exit {proc.returncode}, stderr {proc.stderr.strip()!r}")

    if failures:
        print(f"\nFAILED: {len(failures)} problem(s):", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print(f"\nFig. 8 PCA coordinates agree with scikit-learn within {TOLERANCE:g} (up to component signs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
