#!/usr/bin/python3
"""Parity and speed harness: sensecf's CF baselines next to the original Python code.

Runs NICEx 0.2.3, dice-ml 0.12 and cfnow 0.0.6 (checked out by the user, found
through $SENSECF_PARITY_REFS, see bench/parity/README.md) and `sensecf explain`
on the same data (the synthetic cohort, or --dataset diabetes: scikit-learn's
diabetes data in raw units), the same trained NN (re-built here in numpy from
the model's nn.json) and the same query rows, then prints

  (a) a parity table: the CF metrics of docs/cf-metrics.md, computed by ONE
      Python implementation (this file) for both sides, and for NICE the number
      of queries whose CF is identical;
  (b) a speed table: median seconds per CF, ours (1 thread) vs theirs, ratio.

Writes parity.json and parity.md to --out. Never downloads anything; without
$SENSECF_PARITY_REFS it prints "skipped: ..." and exits 0.

    /usr/bin/python3 bench/parity/run_parity.py --sensecf build/h-parity/bin/sensecf \
        --queries 30 --n dice-genetic=15,cfnow-random=15 --out results/parity
"""
import os

# The references are single-threaded Python loops and `sensecf explain --threads 1`
# uses one thread: keep numpy's BLAS on one thread too (must precede the import).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHIMS = os.path.join(HERE, "shims")

METHODS = ["nice-none", "nice-sparsity", "nice-proximity", "dice-random", "dice-genetic", "dice-kdtree",
           "cfnow-greedy", "cfnow-random"]
REFERENCE_NAME = {"nice": "NICEx 0.2.3", "dice": "dice-ml 0.12", "cfnow": "cfnow 0.0.6"}
# NICE and CFNOW know no immutable features or permitted ranges; sensecf enforces
# both. Their like-for-like comparison uses a copy of the model whose schema has
# no immutables and unbounded continuous ranges (same network, same encoder).
FREE_FAMILIES = ("nice", "cfnow")
MODEL_TOL = 1e-5
GROUP = "participant_id"
# The data sets (--dataset): the label column and the `sensecf train-clf` data
# options. "synth" is `sensecf synth --seed S` (its defaults name the columns);
# "diabetes" is scikit-learn's diabetes data in raw units (ships with scikit-learn,
# no download): continuous immutable age, categorical sex (1/2), eight continuous
# measurements with 1, 2 or 4 decimals; label = target above its median; every
# row its own participant.
DATASETS = {
    "synth": {"label": "high_stress", "train_options": []},
    "diabetes": {"label": "progression_high",
                 "train_options": ["--label", "progression_high", "--categorical", "sex", "--immutable", "age",
                                   "--data.units", ""]},
}


def fnv1a64_hex(data):
    """FNV-1a, 64 bit, as meta.json's "files" records it (core/strings.h: sensecf's
    offset basis is 1469598103934665603, not the published 14695981039346656037)."""
    h = 1469598103934665603
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def record_file_checksum(model_dir, name):
    meta_path = os.path.join(model_dir, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    with open(os.path.join(model_dir, name), "rb") as f:
        data = f.read()
    if "files" in meta:
        meta["files"][name] = {"bytes": len(data), "fnv1a64": fnv1a64_hex(data)}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)


def skip(message):
    print("skipped: " + message)
    sys.exit(0)


def fail(message):
    print("run_parity: error: " + message, file=sys.stderr)
    sys.exit(1)


def family(method):
    return method.split("-")[0]


def parse_overrides(text):
    out = {}
    if not text:
        return out
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise SystemExit(f"--n expects METHOD=N[,METHOD=N...], got '{item}'")
        name, value = item.split("=", 1)
        if name not in METHODS:
            raise SystemExit(f"--n: unknown method '{name}' (methods: {', '.join(METHODS)})")
        out[name] = int(value)
    return out


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sensecf", required=True, help="the sensecf binary")
    ap.add_argument("--queries", type=int, default=30, help="test rows explained per method (default 30)")
    ap.add_argument("--n", default="", help="per-method overrides of --queries, e.g. dice-genetic=10,cfnow-random=10")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    ap.add_argument("--out", required=True, help="output directory (parity.json, parity.md, work/)")
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="synth",
                    help="synth: `sensecf synth --seed S` (default); diabetes: scikit-learn's diabetes data "
                         "in raw units (age immutable, sex categorical)")
    ap.add_argument("--seed", type=int, default=7, help="`sensecf synth` seed (default 7)")
    ap.add_argument("--clf-seed", type=int, default=None,
                    help="`sensecf train-clf --seed` (split, initialisation; default: train-clf's own)")
    ap.add_argument("--per-query", action="store_true",
                    help="print every compared query (identical, or the features that differ) under the tables")
    ap.add_argument("--query-timeout", type=float, default=300.0,
                    help="seconds one reference query may take before it is abandoned (default 300)")
    ap.add_argument("--budget", type=float, default=600.0,
                    help="seconds of reference time per method; later queries are dropped (default 600)")
    ap.add_argument("--ours-timeout", type=float, default=1800.0, help="seconds one `sensecf explain` may take")
    ap.add_argument("--no-all-threads", action="store_true", help="skip the extra all-threads run of sensecf")
    args = ap.parse_args()
    args.overrides = parse_overrides(args.n)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in args.methods:
        if m not in METHODS:
            raise SystemExit(f"--methods: unknown method '{m}' (methods: {', '.join(METHODS)})")
    return args


# ---------------------------------------------------------------------------------------------
# Environment: references and Python packages


def setup_references():
    refs = os.environ.get("SENSECF_PARITY_REFS", "")
    if not refs:
        skip("SENSECF_PARITY_REFS is not set (a folder with nice/, dice/, cfnow/ checkouts; "
             "see bench/parity/README.md)")
    missing = [d for d in ("nice", "dice", "cfnow") if not os.path.isdir(os.path.join(refs, d))]
    if missing:
        skip(f"SENSECF_PARITY_REFS={refs} lacks {', '.join(d + '/' for d in missing)} (see bench/parity/README.md)")
    need = {"numpy": "python3-numpy", "pandas": "python3-pandas", "sklearn": "python3-sklearn",
            "scipy": "python3-scipy", "tqdm": "python3-tqdm", "jsonschema": "python3-jsonschema"}
    absent = []
    for module, package in need.items():
        try:
            __import__(module)
        except ImportError:
            absent.append(package)
    if absent:
        skip("Python packages missing: apt-get install -y " + " ".join(absent))
    # Shims first (so that e.g. cfnow's `import nltk` can never trigger a download),
    # then the three checkouts; the same list goes to PYTHONPATH for child processes.
    paths = [SHIMS] + [os.path.join(refs, d) for d in ("nice", "dice", "cfnow")]
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH", "")] if p])
    found = {}
    for name, module, sub in (("nice", "nice", "nice"), ("dice", "dice_ml", "dice"), ("cfnow", "cfnow", "cfnow")):
        try:
            mod = __import__(module)
        except Exception as e:  # noqa: BLE001 - reported, never fatal for the other references
            found[name] = {"error": f"import {module} failed: {type(e).__name__}: {e}"}
            continue
        path = os.path.dirname(os.path.abspath(mod.__file__))
        if not path.startswith(os.path.abspath(os.path.join(refs, sub))):
            found[name] = {"error": f"import {module} resolved to {path}, not to {refs}/{sub}"}
            continue
        found[name] = {"path": path}
    return refs, found


# ---------------------------------------------------------------------------------------------
# sensecf


def run_sensecf(binary, args, timeout):
    start = time.perf_counter()
    try:
        p = subprocess.run([binary] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": f"timed out after {timeout} s", "wall": time.perf_counter() - start}
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "wall": time.perf_counter() - start}


def must(result, what):
    if result["rc"] != 0:
        tail = (result["stderr"] or result["stdout"]).strip().splitlines()[-15:]
        fail(f"{what} failed (rc {result['rc']}):\n  " + "\n  ".join(tail))
    return result


# ---------------------------------------------------------------------------------------------
# Data and model


def write_diabetes_csv(path, label):
    """scikit-learn's diabetes data in raw units as a sensecf CSV: participant_id (row
    number), the ten features as in the raw file (integral columns without decimals,
    the others as Python prints the float: 32.1, 4.0, 4.8598), and `label` = target
    above its median."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    bunch = load_diabetes(scaled=False)
    x, y = bunch.data, bunch.target
    names = list(bunch.feature_names)
    integral = [bool(np.all(x[:, j] == np.round(x[:, j]))) for j in range(x.shape[1])]
    high = (y > np.median(y)).astype(int)
    with open(path, "w") as f:
        f.write(",".join([GROUP] + names + [label]) + "\n")
        for i in range(x.shape[0]):
            cells = [str(int(v)) if integral[j] else repr(float(v)) for j, v in enumerate(x[i])]
            f.write(",".join([str(i + 1)] + cells + [str(high[i])]) + "\n")


class Problem:
    """Schema, data (category codes), train/test rows and the NN as a numpy function."""

    def __init__(self, work, model_dir, label):
        import numpy as np
        import pandas as pd
        self.np, self.pd = np, pd
        with open(os.path.join(model_dir, "schema.json")) as f:
            self.schema = json.load(f)
        with open(os.path.join(model_dir, "nn.json")) as f:
            nn = json.load(f)
        with open(os.path.join(model_dir, "meta.json")) as f:
            self.meta = json.load(f)
        self.features = self.schema["features"]
        self.names = [f["name"] for f in self.features]
        self.d = len(self.features)
        self.cat = [j for j, f in enumerate(self.features) if f["kind"] == "categorical"]
        self.cont = [j for j, f in enumerate(self.features) if f["kind"] != "categorical"]
        self.immutable = [j for j, f in enumerate(self.features) if f.get("immutable")]
        self.mutable_names = [self.names[j] for j in range(self.d) if j not in self.immutable]
        self.categories = {j: list(self.features[j]["categories"]) for j in self.cat}
        self.code_of = {j: {c: k for k, c in enumerate(self.categories[j])} for j in self.cat}

        # The network: encoder (standardise continuous, one-hot categorical in schema
        # order), Linear layers with ReLU between and a sigmoid at the end.
        enc = nn["encoder"]["features"]
        if [e["name"] for e in enc] != self.names:
            fail("nn.json's encoder features differ from schema.json's")
        self.enc = []
        width = 0
        for e in enc:
            if e["kind"] == "categorical":
                self.enc.append(("cat", width, int(e["n_categories"])))
                width += int(e["n_categories"])
            else:
                self.enc.append(("num", width, float(e["mean"]), float(e["std"])))
                width += 1
        self.n_inputs = width
        if "layers" not in nn or not nn["layers"]:
            fail(f"{model_dir}/nn.json has no 'layers' (weights); retrain with a sensecf that exports them")
        self.layers = [(np.asarray(l["weight"], dtype=np.float64), np.asarray(l["bias"], dtype=np.float64))
                       for l in nn["layers"]]
        if self.layers[0][0].shape[1] != width:
            fail(f"first layer takes {self.layers[0][0].shape[1]} inputs, the encoder gives {width}")
        self.n_calls = 0

        # Data: raw CSV, categorical columns as text -> codes.
        df = pd.read_csv(os.path.join(work, "C.csv"), dtype={self.names[j]: str for j in self.cat} | {GROUP: str})
        self.df = df
        x = np.zeros((len(df), self.d), dtype=np.float64)
        for j, name in enumerate(self.names):
            if j in self.cat:
                try:
                    x[:, j] = [self.code_of[j][v] for v in df[name]]
                except KeyError as e:
                    fail(f"category {e} of '{name}' is not in the model's schema")
            else:
                x[:, j] = df[name].astype(np.float64).to_numpy()
        self.x = x
        self.label = label
        self.y = df[label].astype(int).to_numpy()
        self.group = df[GROUP].astype(str).to_numpy()
        # Training bounds = schema bounds (learned from the training rows).
        self.lo = np.array([f.get("lower", 0.0) for f in self.features], dtype=np.float64)
        self.hi = np.array([f.get("upper", 0.0) for f in self.features], dtype=np.float64)
        self.allowed = {j: set(self.features[j].get("allowed", range(len(self.categories[j])))) for j in self.cat}
        r = self.hi - self.lo
        r[r == 0] = 1.0
        self.range = r

    # -- the black box
    def encode(self, x):
        np = self.np
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        out = np.zeros((x.shape[0], self.n_inputs), dtype=np.float64)
        for j, e in enumerate(self.enc):
            if e[0] == "num":
                out[:, e[1]] = (x[:, j] - e[2]) / e[3]
            else:
                col = x[:, j]
                for k in range(e[2]):
                    out[:, e[1] + k] = (col == k)
        return out

    def p1(self, x):
        np = self.np
        self.n_calls += 1
        h = self.encode(x)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i + 1 < len(self.layers):
                h = np.maximum(h, 0.0)
        z = h[:, 0]
        return 1.0 / (1.0 + np.exp(-z))

    def predict_proba(self, x):
        p = self.p1(x)
        return self.np.column_stack([1.0 - p, p])

    def predict(self, x):
        return (self.p1(x) > 0.5).astype(int)

    # -- rows of the data file as the references see them
    def frame(self, rows, with_label=False):
        """DataFrame of raw values (category text) for DiCE."""
        cols = self.names + ([self.label] if with_label else [])
        return self.df.iloc[list(rows)][cols].reset_index(drop=True)

    def codes_from_text_row(self, values):
        """A row of feature cells (text or numbers) in schema order -> codes."""
        out = []
        for j, v in enumerate(values):
            if j in self.cat:
                s = str(v)
                if s in self.code_of[j]:
                    out.append(float(self.code_of[j][s]))
                else:  # a numeric code
                    out.append(float(int(float(s))))
            else:
                out.append(float(v))
        return out


# ---------------------------------------------------------------------------------------------
# Metrics (docs/cf-metrics.md), one implementation for both sides


def changed(c, x):
    return abs(c - x) > 1e-9 * max(1.0, abs(x))


def cf_metrics(P, queries, results):
    """queries: [(x codes, target)], results: list of list of CF vectors (codes)."""
    np = P.np
    n_q = len(queries)
    n_cf = n_valid = 0
    dist = spars = plaus = viol = 0.0
    covered = 0
    for (x, t), cfs in zip(queries, results):
        any_valid = False
        for c in cfs:
            c = np.asarray(c, dtype=np.float64)
            n_cf += 1
            valid = int(P.p1(c)[0] > 0.5) == t
            n_valid += valid
            any_valid |= valid
            d2 = 0.0
            ham = 0
            for j in range(P.d):
                if j in P.cat:
                    ham += int(c[j] != x[j])
                else:
                    d2 += ((c[j] - x[j]) / P.range[j]) ** 2
            dist += math.sqrt(d2) + ham
            spars += sum(changed(c[j], x[j]) for j in range(P.d))
            inside = all((int(c[j]) == c[j] and int(c[j]) in P.allowed[j]) if j in P.cat
                         else (P.lo[j] <= c[j] <= P.hi[j]) for j in range(P.d))
            plaus += inside
            viol += sum(changed(c[j], x[j]) for j in P.immutable)
        covered += any_valid
    nan = float("nan")
    return {"queries": n_q, "cfs": n_cf, "coverage": covered / n_q if n_q else nan,
            "validity": n_valid / n_cf if n_cf else nan, "distance": dist / n_cf if n_cf else nan,
            "sparsity": spars / n_cf if n_cf else nan, "plausibility": plaus / n_cf if n_cf else nan,
            "immutables_changed": viol / n_cf if n_cf else nan}


# ---------------------------------------------------------------------------------------------
# Our side


def read_explain_csv(P, path):
    """sensecf explain CSV -> ordered list of {row, target, cfs, seconds, note}."""
    import pandas as pd
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = {}
    order = []
    for _, r in df.iterrows():
        row = int(r["row"])
        if row not in out:
            out[row] = {"row": row, "target": int(r["target"]), "cfs": [], "p1": [], "seconds": float(r["seconds"]),
                        "note": r.get("note", "")}
            order.append(row)
        if r["found"] == "1":
            out[row]["cfs"].append(P.codes_from_text_row([r[n] for n in P.names]))
            out[row]["p1"].append(float(r["probability"]) if r["probability"] != "" else float("nan"))
    return [out[k] for k in order]


SUMMARY_RE = re.compile(r"CFs for (\d+) of (\d+) queries in ([0-9.]+) s")
PREPARE_RE = re.compile(r"\(prepare ([0-9.]+) s\)")


def run_ours(args, P, method, model_dir, n, threads, tag):
    path = os.path.join(args.work, f"ours_{tag}_{method}_t{threads}.csv")
    res = run_sensecf(args.sensecf, ["explain", "--method", method, "--clf", model_dir, "--data",
                                     os.path.join(args.work, "C.csv"), "--limit", n, "--out", path, "--json",
                                     "--threads", threads], args.ours_timeout)
    info = {"tag": tag, "threads": threads, "command": f"{args.sensecf} explain --method {method} --clf {model_dir} "
            f"--data {os.path.join(args.work, 'C.csv')} --limit {n} --out {path} --json --threads {threads}",
            "process_wall_s": res["wall"]}
    if res["rc"] != 0:
        tail = (res["stderr"] or res["stdout"]).strip().splitlines()[-3:]
        info["error"] = f"sensecf explain rc {res['rc']}: " + " | ".join(tail)
        return info
    try:
        info["reported"] = json.loads(res["stdout"].strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        info["reported"] = None
    m = SUMMARY_RE.search(res["stderr"] + res["stdout"])
    p = PREPARE_RE.search(res["stderr"] + res["stdout"])
    if m:
        info["explain_total_s"] = float(m.group(3))
    if p:
        info["prepare_s"] = float(p.group(1))
    info["results"] = read_explain_csv(P, path)
    return info


# ---------------------------------------------------------------------------------------------
# Their side


class QueryTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise QueryTimeout()


class DiceModel:
    """sklearn-style model for dice-ml's 'sklearn' backend: DataFrame (category text) -> [[1-p, p]]."""

    def __init__(self, P):
        self.P = P

    def predict_proba(self, data):
        P, np = self.P, self.P.np
        if hasattr(data, "columns"):
            x = np.zeros((len(data), P.d), dtype=np.float64)
            for j, name in enumerate(P.names):
                col = data[name]
                if j in P.cat:
                    x[:, j] = [P.code_of[j][str(v)] if str(v) in P.code_of[j] else float(v) for v in col]
                else:
                    x[:, j] = col.astype(np.float64).to_numpy()
        else:
            x = np.asarray(data, dtype=np.float64)
        return P.predict_proba(x)

    def predict(self, data):
        return self.predict_proba(data).argmax(axis=1)


class CfnowSpace:
    """cfnow's tabular input: continuous 'num', 2-level categorical = one 0/1 'cat' column,
    k-level categorical = one-hot 'cat' columns named g<j>_<k> (has_ohe groups by the prefix
    before '_', so no other column name holds an underscore)."""

    def __init__(self, P):
        self.P = P
        self.cols = []     # (name, feature j, level k or None)
        self.types = {}
        for j in range(P.d):
            if j in P.cat and len(P.categories[j]) > 2:
                for k in range(len(P.categories[j])):
                    name = f"g{j}_{k}"
                    self.cols.append((name, j, k))
                    self.types[name] = "cat"
            else:
                name = f"f{j}"
                self.cols.append((name, j, None))
                self.types[name] = "cat" if j in P.cat else "num"
        self.names = [c[0] for c in self.cols]
        self.has_ohe = any(c[2] is not None for c in self.cols)

    def encode(self, x):
        return [float(x[j]) if k is None else float(x[j] == k) for _, j, k in self.cols]

    def decode(self, v):
        np = self.P.np
        v = np.asarray(v, dtype=np.float64)
        out = np.zeros((v.shape[0], self.P.d), dtype=np.float64)
        best = {}
        for i, (_, j, k) in enumerate(self.cols):
            if k is None:
                out[:, j] = v[:, i]
            else:
                if j not in best:
                    best[j] = np.full(v.shape[0], -np.inf)
                take = v[:, i] > best[j]
                out[take, j] = k
                best[j] = np.where(take, v[:, i], best[j])
        return out

    def predict_proba(self, data):
        np = self.P.np
        v = data.to_numpy(dtype=np.float64) if hasattr(data, "to_numpy") else np.asarray(data, dtype=np.float64)
        if v.ndim == 1:
            v = v[None, :]
        return self.P.predict_proba(self.decode(v))


def make_theirs(P, method, train_rows, log):
    """Returns explain(i, x_codes) -> list of CF vectors (codes), after a one-off set-up
    (excluded from the timing, like sensecf's `prepare`)."""
    np = P.np
    fam, variant = method.split("-", 1)
    if fam == "nice":
        from nice import NICE
        xtr = P.x[train_rows].copy()
        ytr = P.y[train_rows].copy()
        explainer = NICE(predict_fn=P.predict_proba, X_train=xtr, cat_feat=list(P.cat), y_train=ytr,
                         optimization=variant, justified_cf=True, distance_metric="HEOM", num_normalization="minmax")

        def explain(i, x):
            cf = explainer.explain(np.asarray(x, dtype=np.float64)[None, :].copy())
            return [list(np.asarray(cf, dtype=np.float64)[0])]
        return explain
    if fam == "dice":
        import dice_ml
        train_df = P.frame(train_rows, with_label=True)
        data = dice_ml.Data(dataframe=train_df, continuous_features=[P.names[j] for j in P.cont],
                             outcome_name=P.label)
        model = dice_ml.Model(model=DiceModel(P), backend="sklearn", model_type="classifier")
        exp = dice_ml.Dice(data, model, method=variant)

        def explain(i, x, query_df=None):
            kwargs = {}
            if variant == "random":
                kwargs["random_seed"] = i
            else:  # genetic/kdtree take no seed argument: seed the global generators
                random.seed(i)
                np.random.seed(i)
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    res = exp.generate_counterfactuals(query_df, total_CFs=1, desired_class="opposite",
                                                       features_to_vary=P.mutable_names, verbose=False, **kwargs)
            except Exception as e:  # noqa: BLE001
                if "No counterfactuals found" in str(e):
                    return []
                raise
            ex = res.cf_examples_list[0]
            df = ex.final_cfs_df_sparse if ex.final_cfs_df_sparse is not None and len(ex.final_cfs_df_sparse) else \
                ex.final_cfs_df
            if df is None or len(df) == 0:
                return []
            return [P.codes_from_text_row([df.iloc[k][n] for n in P.names]) for k in range(len(df))]
        return explain
    if fam == "cfnow":
        import pandas as pd
        from cfnow import find_tabular
        space = CfnowSpace(P)
        logging.getLogger().setLevel(logging.ERROR)

        def explain(i, x):
            np.random.seed(i)
            random.seed(i)
            factual = pd.Series(space.encode(x), index=space.names)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = find_tabular(factual=factual, model_predict_proba=space.predict_proba, count_cf=1,
                                   feat_types=dict(space.types), cf_strategy=variant, has_ohe=space.has_ohe)
            if len(res.cfs) == 0:
                return []
            # cfs are all CFs met, sorted by L1 (best first); count_cf=1 -> the best one.
            return [list(space.decode(np.asarray(res.cfs[0], dtype=np.float64)[None, :])[0])]
        return explain
    raise ValueError(method)


def run_theirs(args, P, method, rows, train_rows, log):
    info = {"reference": REFERENCE_NAME[family(method)], "results": [], "errors": 0}
    try:
        explain = make_theirs(P, method, train_rows, log)
    except Exception as e:  # noqa: BLE001
        info["error"] = f"set-up failed: {type(e).__name__}: {e}"
        info["traceback"] = traceback.format_exc()
        return info
    qdf = P.frame(rows) if family(method) == "dice" else None
    spent = 0.0
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i, row in enumerate(rows):
            if spent > args.budget:
                info["stopped"] = f"budget of {args.budget:g} s spent after {i} queries"
                break
            x = list(P.x[row])
            entry = {"row": int(row), "cfs": [], "note": ""}
            signal.setitimer(signal.ITIMER_REAL, args.query_timeout)
            start = time.perf_counter()
            try:
                if qdf is not None:
                    entry["cfs"] = explain(i, x, query_df=qdf.iloc[i:i + 1])
                else:
                    entry["cfs"] = explain(i, x)
            except QueryTimeout:
                entry["note"] = f"timeout ({args.query_timeout:g} s)"
            except Exception as e:  # noqa: BLE001
                entry["note"] = f"error: {type(e).__name__}: {e}"
                info["errors"] += 1
                if info["errors"] == 1:
                    info["first_traceback"] = traceback.format_exc()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            entry["seconds"] = time.perf_counter() - start
            spent += entry["seconds"]
            info["results"].append(entry)
            log(f"    theirs {method} query {i + 1}/{len(rows)}: {entry['seconds']:.3f} s "
                f"{'CF' if entry['cfs'] else 'no CF'} {entry['note']}")
    finally:
        signal.signal(signal.SIGALRM, old)
    if info["results"] and info["errors"] == len(info["results"]):
        note = info["results"][0]["note"]
        info["error"] = note[len("error: "):] if note.startswith("error: ") else note
    return info


# ---------------------------------------------------------------------------------------------
# Tables


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.{digits}f}"
    return str(v)


def fmt_s(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if v >= 1:
        return f"{v:.2f} s"
    if v >= 1e-3:
        return f"{v * 1e3:.2f} ms"
    return f"{v * 1e6:.1f} us"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def same_cf(a, b):
    if len(a) != len(b):
        return False
    if not a:
        return True
    return all(x == y for x, y in zip(a[0], b[0]))


def describe_query(P, row, o, t):
    """One compared query: 'identical', or which side has no CF, or the features that differ."""
    if same_cf(o, t):
        return f"row {row}: identical"
    if not o or not t:
        return f"row {row}: ours {'no CF' if not o else 'a CF'}, theirs {'no CF' if not t else 'a CF'}"
    diffs = [f"{P.names[j]} {o[0][j]:.10g} vs {t[0][j]:.10g}" for j in range(P.d) if o[0][j] != t[0][j]]
    return f"row {row}: " + ", ".join(diffs)


def first_difference(P, rows, ours, theirs, limit=5):
    out = [describe_query(P, row, o, t) for row, o, t in zip(rows, ours, theirs) if not same_cf(o, t)]
    return out[:limit]


def median(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    refs, found = setup_references()
    import numpy as np

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    args.sensecf = os.path.abspath(args.sensecf)
    if not os.access(args.sensecf, os.X_OK):
        fail(f"--sensecf {args.sensecf} is not an executable")
    args.out = os.path.abspath(args.out)
    args.work = os.path.join(args.out, "work")
    os.makedirs(args.work, exist_ok=True)
    csv_path = os.path.join(args.work, "C.csv")
    model_dir = os.path.join(args.work, "M")
    free_dir = os.path.join(args.work, "M_free")
    commands = []

    # 1. data and model
    log(f"== data ({args.dataset}) and model")
    dataset = DATASETS[args.dataset]
    steps = [["train-clf", "--data", csv_path, "--model", "nn", "--out", model_dir] + dataset["train_options"]
             + ([] if args.clf_seed is None else ["--seed", args.clf_seed])]
    if args.dataset == "synth":
        steps.insert(0, ["synth", "--out", csv_path, "--seed", args.seed])
    else:
        write_diabetes_csv(csv_path, dataset["label"])
        commands.append(f"(the {args.dataset} CSV written by run_parity.py: {csv_path})")
    for cmd in steps:
        commands.append(" ".join([args.sensecf] + [repr(c) if c == "" else str(c) for c in cmd]))
        must(run_sensecf(args.sensecf, cmd, 600), "sensecf " + cmd[0])
    # The like-for-like copy for NICE/CFNOW: same network, schema without immutables
    # and with unbounded continuous ranges (all codes allowed).
    shutil.rmtree(free_dir, ignore_errors=True)
    shutil.copytree(model_dir, free_dir)
    with open(os.path.join(model_dir, "schema.json")) as f:
        free_schema = json.load(f)
    for feat in free_schema["features"]:
        feat["immutable"] = False
        if feat["kind"] == "categorical":
            feat["allowed"] = list(range(len(feat["categories"])))
        else:
            feat["lower"], feat["upper"] = -1e300, 1e300
    with open(os.path.join(free_dir, "schema.json"), "w") as f:
        json.dump(free_schema, f, indent=2)
    # meta.json records every file's size and FNV-1a checksum and load_model refuses
    # an edited file: record the edited schema's, as a deliberate edit must.
    record_file_checksum(free_dir, "schema.json")

    P = Problem(args.work, model_dir, dataset["label"])

    # 2. train/test rows: the test rows are those `sensecf explain --queries test` lists;
    #    training rows = every row of a participant not among them (scenario "full").
    log("== test rows and model check")
    all_test = os.path.join(args.work, "test_rows_nice-none.csv")
    commands.append(f"{args.sensecf} explain --method nice-none --clf {model_dir} --data {csv_path} "
                    f"--queries test --limit 0 --out {all_test} --json")
    must(run_sensecf(args.sensecf, ["explain", "--method", "nice-none", "--clf", model_dir, "--data", csv_path,
                                    "--queries", "test", "--limit", 0, "--out", all_test, "--json"], 600),
         "sensecf explain (test rows)")
    test = read_explain_csv(P, all_test)
    test_rows = [q["row"] for q in test]
    test_groups = {P.group[r] for r in test_rows}
    train_rows = [r for r in range(len(P.y)) if P.group[r] not in test_groups]
    if set(train_rows) & set(test_rows) or len(train_rows) != P.meta.get("train_rows"):
        fail(f"re-derived {len(train_rows)} training rows, the model's meta.json says {P.meta.get('train_rows')}")
    if sorted(test_rows) != test_rows or len(test_rows) != P.meta.get("test_rows"):
        fail("the explain output's rows are not the model's sorted test rows")

    # Model check: our numpy network vs sensecf's probabilities of the CFs it wrote
    # (not training rows: NUNs with the query's immutable values), and the targets.
    ours_p = [p for q in test for p in q["p1"]]
    cf_x = np.array([c for q in test for c in q["cfs"]], dtype=np.float64)
    py_p = P.p1(cf_x)
    max_diff = float(np.max(np.abs(py_p - np.asarray(ours_p)))) if len(ours_p) else float("nan")
    q_p = P.p1(P.x[test_rows])
    target_mismatch = sum(int(q["target"]) != int(p <= 0.5) for q, p in zip(test, q_p))
    model_check = {"points": len(ours_p), "max_abs_diff_p1": max_diff, "tolerance": MODEL_TOL,
                   "target_mismatches": target_mismatch, "train_rows": len(train_rows), "test_rows": len(test_rows)}
    log(f"   model check: {len(ours_p)} points, max |p1 numpy - p1 sensecf| = {max_diff:.3g}; "
        f"{target_mismatch} target mismatches on {len(test_rows)} test rows")
    if not (max_diff <= MODEL_TOL) or target_mismatch:
        fail(f"the numpy re-build of the network disagrees with sensecf: max |dp1| = {max_diff:.3g} "
             f"(tolerance {MODEL_TOL}), {target_mismatch} target mismatches; nothing was compared")

    # 3. methods
    report = {"dataset": args.dataset, "references": {k: dict(v, name=REFERENCE_NAME[k]) for k, v in found.items()},
              "refs_dir": refs,
              "sensecf": args.sensecf, "model_check": model_check, "commands": commands, "methods": {},
              "python": sys.version.split()[0], "numpy": np.__version__}
    for method in args.methods:
        n = args.overrides.get(method, args.queries)
        fam = family(method)
        rows = test_rows[:n]
        log(f"== {method}: {len(rows)} queries")
        entry = {"n_requested": n, "rows": rows}
        like_dir = free_dir if fam in FREE_FAMILIES else model_dir
        like_tag = "free" if fam in FREE_FAMILIES else "default"
        ours = {"default": run_ours(args, P, method, model_dir, len(rows), 1, "default")}
        if fam in FREE_FAMILIES:
            ours["free"] = run_ours(args, P, method, free_dir, len(rows), 1, "free")
        if not args.no_all_threads:
            ours["all_threads"] = run_ours(args, P, method, like_dir, len(rows), 0, like_tag)
        for k, o in ours.items():
            log(f"   ours[{k}]: " + (o.get("error") or f"{o['process_wall_s']:.2f} s process wall"))
        ref_err = found[fam].get("error")
        if ref_err:
            theirs = {"reference": REFERENCE_NAME[fam], "error": ref_err, "results": []}
        else:
            theirs = run_theirs(args, P, method, rows, train_rows, log)
        entry["ours"] = ours
        entry["theirs"] = theirs
        # Common query subset (the reference may have stopped early on its budget).
        k = len(theirs["results"]) if theirs.get("results") else len(rows)
        entry["n_compared"] = k
        queries = [(list(P.x[r]), int(P.p1(P.x[r])[0] <= 0.5)) for r in rows[:k]]
        for name, o in ours.items():
            if "results" in o:
                got = [q["row"] for q in o["results"]]
                if got[:k] != rows[:k]:
                    o["error"] = f"sensecf explained rows {got[:5]}..., expected {rows[:5]}..."
                    continue
                o["metrics"] = cf_metrics(P, queries, [q["cfs"] for q in o["results"][:k]])
                o["median_s"] = median([q["seconds"] for q in o["results"][:k]])
                o["median_s_per_cf"] = median([q["seconds"] / max(1, len(q["cfs"])) for q in o["results"][:k]])
        if theirs.get("results") and not theirs.get("error"):
            theirs["metrics"] = cf_metrics(P, queries, [q["cfs"] for q in theirs["results"]])
            theirs["median_s"] = median([q["seconds"] for q in theirs["results"]])
            theirs["median_s_per_cf"] = median([q["seconds"] / max(1, len(q["cfs"])) for q in theirs["results"]])
            like = ours.get(like_tag, {})
            if "results" in like:
                o_cfs = [q["cfs"][:1] for q in like["results"][:k]]
                t_cfs = [q["cfs"][:1] for q in theirs["results"]]
                entry["identical"] = sum(same_cf(a, b) for a, b in zip(o_cfs, t_cfs))
                entry["first_differences"] = first_difference(P, rows[:k], o_cfs, t_cfs)
                entry["per_query"] = [describe_query(P, r, a, b) for r, a, b in zip(rows[:k], o_cfs, t_cfs)]
        report["methods"][method] = entry
        with open(os.path.join(args.out, "parity.json"), "w") as f:
            json.dump(report, f, indent=1, default=str)

    # 4. tables
    parity_rows = []
    speed_rows = []
    notes = []
    for method in args.methods:
        e = report["methods"][method]
        fam = family(method)
        like_tag = "free" if fam in FREE_FAMILIES else "default"
        sides = [("sensecf", e["ours"]["default"])]
        if "free" in e["ours"]:
            sides.append(("sensecf, no immutables/ranges", e["ours"]["free"]))
        sides.append((e["theirs"]["reference"], e["theirs"]))
        for label, s in sides:
            if s.get("error"):
                parity_rows.append([method, label, e["n_compared"], "error: " + s["error"][:120]] + [""] * 8)
                continue
            m = s["metrics"]
            ident = ""
            if label.startswith(REFERENCE_NAME[fam]) and "identical" in e:
                ident = f"{e['identical']}/{e['n_compared']}"
            note = s.get("stopped", "")
            if s is e["theirs"]:
                bad = [q["note"] for q in s["results"] if q["note"]]
                if bad:
                    note = (note + "; " if note else "") + f"{len(bad)} query notes, e.g. '{bad[0][:80]}'"
            parity_rows.append([method, label, m["queries"], m["cfs"], fmt(m["coverage"]), fmt(m["validity"]),
                                fmt(m["distance"]), fmt(m["sparsity"]), fmt(m["plausibility"]),
                                fmt(m["immutables_changed"]), ident, note])
        if e.get("first_differences"):
            notes.append(f"{method}: first differences (sensecf {like_tag} vs reference): "
                         + "; ".join(e["first_differences"][:3]))
        ours_like = e["ours"].get(like_tag, {})
        ours_all = e["ours"].get("all_threads", {})
        theirs = e["theirs"]
        o_med = ours_like.get("median_s_per_cf")
        t_med = theirs.get("median_s_per_cf")
        ratio = (t_med / o_med) if (o_med and t_med and o_med > 0) else None
        walls = "-"
        if ours_like.get("process_wall_s") is not None and not ours_like.get("error"):
            walls = f"{ours_like['process_wall_s']:.2f}"
            if ours_all and not ours_all.get("error"):
                walls += f" / {ours_all['process_wall_s']:.2f}"
        speed_rows.append([method, e["n_compared"],
                           "error" if ours_like.get("error") else fmt_s(o_med),
                           ("error: " + theirs["error"][:60]) if theirs.get("error") else fmt_s(t_med),
                           f"{ratio:.0f}x" if ratio and ratio >= 10 else (f"{ratio:.1f}x" if ratio else "-"),
                           "-" if ours_all.get("error") or not ours_all else fmt_s(ours_all.get("median_s_per_cf")),
                           walls,
                           "no immutables/ranges" if fam in FREE_FAMILIES else "features_to_vary = mutable"])
    parity_md = md_table(["method", "implementation", "queries", "CFs", "coverage", "validity", "distance",
                          "sparsity", "plausibility", "immutables changed", "identical CFs", "note"], parity_rows)
    speed_md = md_table(["method", "queries", "ours median s/CF (1 thread)", "theirs median s/CF", "ratio",
                         "ours median s/CF (all threads)", "ours process wall s, 1 / all threads", "setting"], speed_rows)
    mc = model_check
    header = (f"Model check: numpy re-build of the NN vs sensecf on {mc['points']} points: max |dp1| = "
              f"{mc['max_abs_diff_p1']:.2e} (tolerance {mc['tolerance']:g}); {mc['train_rows']} training / "
              f"{mc['test_rows']} test rows.")
    # Cross-check of this file's metric code against sensecf's own (its JSON on the
    # default runs; the no-immutables copy has unbounded ranges, so its distance differs).
    worst, checked = 0.0, 0
    for e in report["methods"].values():
        o = e["ours"].get("default", {})
        rep = (o.get("reported") or {}).get("all") or {}
        if "metrics" not in o or e["n_compared"] != e["n_requested"]:
            continue
        for key in ("coverage", "validity", "distance", "sparsity", "plausibility"):
            # This harness's validity is over the returned CFs: sensecf's validity_returned
            # (its `validity` counts a query without CF as invalid, docs/cf-metrics.md).
            their_key = "validity_returned" if key == "validity" and "validity_returned" in rep else key
            a, b = o["metrics"].get(key), rep.get(their_key)
            if isinstance(a, float) and isinstance(b, (int, float)) and not math.isnan(a):
                worst = max(worst, abs(a - b))
                checked += 1
    report["metric_cross_check"] = {"values": checked, "max_abs_diff": worst}
    header += (f" Metric cross-check: this harness's metrics vs sensecf's own JSON on the default runs: "
               f"max |diff| = {worst:.1e} over {checked} values.")
    per_query = ""
    if args.per_query:
        for method in args.methods:
            lines = report["methods"][method].get("per_query")
            if lines:
                per_query += (f"\n### {method}: every compared query (sensecf vs reference)\n\n"
                              + "\n".join("* " + line for line in lines) + "\n")
    text = (f"# sensecf vs the original Python baselines ({args.dataset} data)\n\n" + header
            + "\n\n## (a) Parity\n\n" + parity_md
            + "\n\n" + "\n".join("* " + n for n in notes) + ("\n" if notes else "")
            + "\n## (b) Speed\n\n" + speed_md + "\n" + per_query)
    report["parity_table"] = parity_md
    report["speed_table"] = speed_md
    with open(os.path.join(args.out, "parity.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    with open(os.path.join(args.out, "parity.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
