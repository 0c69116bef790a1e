#!/usr/bin/python3
"""Two sensecf builds side by side: per-query speed and identical CFs, every baseline method.

Runs `sensecf explain --threads 1` of both binaries on the same data, model and
test queries (a run_parity.py work directory: C.csv, M, and M_free, the
like-for-like copy NICE and CFNOW are timed on there) and prints, per method,
the median `seconds` per query of each build and whether every CF row is the same.
Needs no reference implementation; the README's "before/after" lines come from it.

    /usr/bin/python3 bench/parity/compare_builds.py OLD/bin/sensecf build/cpu-release/bin/sensecf \\
        --work results/parity/work
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile

METHODS = {  # method: (model directory in the work dir, queries)
    "nice-none": ("M_free", 100), "nice-sparsity": ("M_free", 100), "nice-proximity": ("M_free", 100),
    "dice-random": ("M", 100), "dice-genetic": ("M", 20), "dice-kdtree": ("M", 100),
    "cfnow-greedy": ("M_free", 20), "cfnow-random": ("M_free", 20),
}


def explain(binary, work, method, out):
    model, limit = METHODS[method]
    cmd = [binary, "explain", "--method", method, "--clf", os.path.join(work, model), "--data",
           os.path.join(work, "C.csv"), "--queries", "test", "--limit", str(limit), "--threads", "1", "--out", out]
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"compare_builds: {' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    with open(out) as f:
        rows = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows if r["cf_index"] in ("0", "")]
    for r in rows:
        r.pop("seconds")
    return statistics.median(seconds), rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--work", required=True, help="a run_parity.py work directory (C.csv, M, M_free)")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    print("| method | old median s/query | new median s/query | new/old | CFs |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            old_s, old_rows = explain(args.old, args.work, method, os.path.join(tmp, "old.csv"))
            new_s, new_rows = explain(args.new, args.work, method, os.path.join(tmp, "new.csv"))
            same = "identical" if old_rows == new_rows else "DIFFERENT"
            print(f"| {method} | {old_s * 1e6:.1f} us | {new_s * 1e6:.1f} us | {new_s / old_s:.2f} | {same} |")


if __name__ == "__main__":
    main()
