"""LoRA adapters both ways against PEFT, with fixtures PEFT itself produced.

tests/golden/llm/make_goldens.py (run where transformers and peft are
installed: the GPU kit runs it) records, for the tiny checkpoint of
`sensecf lm init-tiny --seed 3`:

  (a) PEFT's logits for the adapter `sensecf lm init-adapter` writes with the
      recorded arguments (deterministic): PEFT reads what sensecf writes;
  (b) an adapter PEFT wrote itself (peft-<family>/: every projection, random B,
      rsLoRA, a rank and an alpha pattern) with PEFT's logits for it: sensecf
      reads what PEFT writes.

This test re-creates both and requires `sensecf lm logits --adapter` (unmerged
and merged) to give PEFT's logits within 1e-4, and the adapter to move the
logits by far more than that (so a silently ignored adapter fails).

Exit 77 (skipped, with the reason) while no fixture has been produced.
"""
import os
import sys

import numpy as np

from llm_fixtures import check_fixtures, load_fixture, run

TOLERANCE = 1e-4


def logits(work, model, ids, adapter=None, merge=False):
    out = os.path.join(work, "logits.npy")
    extra = ["--adapter", adapter] if adapter else []
    if merge:
        extra.append("--merge-adapter")
    run("lm", "logits", "--model", model, "--ids", ",".join(map(str, ids)), "--out", out, *extra, "--log.level", "warn")
    return np.load(out)


def max_diff(label, got, rows):
    worst = 0.0
    for t, row in rows.items():
        worst = max(worst, float(np.max(np.abs(got[int(t)] - np.asarray(row)))))
    assert np.isfinite(worst), f"{label}: non-finite logits"
    assert worst <= TOLERANCE, f"{label}: logits differ from the reference's by {worst:.3g} > {TOLERANCE}"
    return worst


def compare(label, got, rows, base_rows):
    effect = max(float(np.max(np.abs(np.asarray(row) - np.asarray(base_rows[t])))) for t, row in rows.items())
    assert effect > 100 * TOLERANCE, f"{label}: the adapter barely moves PEFT's logits ({effect:.2e}); fixture is useless"
    worst = max_diff(label, got, rows)
    print(f"{label}: max abs diff {worst:.2e} (the adapter moves logits by {effect:.2e})")


def check_family(path, work):
    fx, model = load_fixture(path, work)
    family = fx["family"]

    worst = max_diff(f"{family} base model (no adapter) vs transformers", logits(work, model, fx["ids"]),
                     fx["base_logits_rows"])
    print(f"{family} base model (no adapter) vs transformers: max abs diff {worst:.2e}")

    ours = os.path.join(work, family + "-sensecf-adapter")
    run("lm", "init-adapter", "--model", model, "--out", ours, *fx["sensecf_adapter_args"], "--log.level", "warn")
    theirs = os.path.join(os.path.dirname(path), fx["peft_adapter_dir"])
    for merge in (False, True):
        how = "merged" if merge else "unmerged"
        compare(f"{family} sensecf-written adapter, PEFT's logits vs ours ({how})",
                logits(work, model, fx["ids"], ours, merge), fx["sensecf_adapter_logits_rows"], fx["base_logits_rows"])
        compare(f"{family} PEFT-written adapter (peft {fx['peft']}), PEFT's logits vs ours ({how})",
                logits(work, model, fx["ids"], theirs, merge), fx["peft_adapter_logits_rows"], fx["base_logits_rows"])


def main():
    return check_fixtures(lambda name: name.startswith("peft-"), check_family, "PEFT")


if __name__ == "__main__":
    sys.exit(main())
