"""`sensecf lm finetune` against PEFT's training, with fixtures PEFT produced.

tests/golden/llm/make_goldens.py (run where transformers and peft are
installed: the GPU kit runs it) records, for the tiny checkpoint of
`sensecf lm init-tiny --seed 3` and each family, a 10-step training run of a
PEFT model in float32 on the CPU: a starting adapter PEFT wrote
(train-<family>/init/: random A and B, llama plain, mistral with rsLoRA and a
rank pattern), the examples (train-<family>/train.jsonl), and per step the
loss, the gradient norm before clipping and the learning rate of a plain
PyTorch loop (torch.optim.AdamW, transformers' linear warmup schedule,
clip_grad_norm_), then the logits of the trained adapter and the adapter itself
(train-<family>/final/).

This test trains the same adapter with `sensecf lm finetune --init-adapter`
(batch 4 x gradient accumulation 2 over the 8 examples: each step sees every
example, so the data order does not matter; dropout 0) and requires, step by
step:
  loss       within 1e-5 relative of PEFT's,
  grad norm  within 1e-4 relative,
  lr         within 1e-12 (the same schedule),
and the trained adapter's A and B within 1e-5 of PEFT's, its logits within 1e-4
of PEFT's, while training moved PEFT's logits by far more than that (so an
adapter that did not train, or trained something else, fails).

Exit 77 (skipped, with the reason) while no fixture has been produced.
"""
import csv
import os
import sys

import numpy as np

from llm_fixtures import check_fixtures, load_fixture, run
from test_llm_reference import read_safetensors

LOSS_RTOL, NORM_RTOL, LR_ATOL, WEIGHT_ATOL, LOGITS_ATOL = 1e-5, 1e-4, 1e-12, 1e-5, 1e-4


def curve(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def logits(work, model, ids, adapter):
    out = os.path.join(work, "logits.npy")
    run("lm", "logits", "--model", model, "--ids", ",".join(map(str, ids)), "--adapter", adapter, "--out", out,
        "--log.level", "warn")
    return np.load(out)


def rows_diff(got, rows):
    return max(float(np.max(np.abs(got[int(t)] - np.asarray(row)))) for t, row in rows.items())


def check_family(path, work):
    fx, model = load_fixture(path, work)
    family, train = fx["family"], fx["train"]
    folder = os.path.join(os.path.dirname(path), fx["folder"])
    out = os.path.join(work, family + "-trained")
    run("lm", "finetune", "--model", model, "--data", os.path.join(folder, "train.jsonl"),
        "--init-adapter", os.path.join(folder, "init"), "--out", out,
        "--max-steps", str(train["steps"]), "--batch-size", str(train["batch_size"]),
        "--grad-accum", str(train["grad_accum"]), "--lr", repr(train["lr"]), "--schedule", "linear",
        "--warmup-ratio", repr(train["warmup_ratio"]), "--max-grad-norm", repr(train["max_grad_norm"]),
        "--weight-decay", "0", "--dropout", "0", "--eval-fraction", "0", "--save-every", "0", "--resume", "false",
        "--log.level", "warn")
    points = curve(os.path.join(out, "train_curve.csv"))
    assert len(points) == train["steps"], f"{family}: {len(points)} curve points, PEFT's run has {train['steps']}"

    worst = {"loss": 0.0, "grad_norm": 0.0, "lr": 0.0}
    for step, p in enumerate(points):
        for key, tol, relative in (("loss", LOSS_RTOL, True), ("grad_norm", NORM_RTOL, True), ("lr", LR_ATOL, False)):
            ours, theirs = float(p[key]), fx[key][step]
            diff = abs(ours - theirs) / (abs(theirs) if relative else 1.0)
            worst[key] = max(worst[key], diff)
            assert diff <= tol, (f"{family} step {step + 1}: {key} {ours!r} vs PEFT's {theirs!r} "
                                 f"({'relative ' if relative else ''}difference {diff:.3g} > {tol})")
    moved = fx["loss"][0] - fx["loss"][-1]
    assert moved > 100 * LOSS_RTOL * abs(fx["loss"][0]), f"{family}: PEFT's loss barely moved ({moved:.3g})"

    ours_w = read_safetensors(os.path.join(out, "adapter_model.safetensors"))
    theirs_w = read_safetensors(os.path.join(folder, "final", "adapter_model.safetensors"))
    start_w = read_safetensors(os.path.join(folder, "init", "adapter_model.safetensors"))
    assert sorted(ours_w) == sorted(theirs_w), (f"{family}: the trained adapter's tensors differ in name from PEFT's: "
                                                f"{sorted(set(ours_w) ^ set(theirs_w))[:4]}")
    weight_diff = max(float(np.max(np.abs(ours_w[k] - theirs_w[k]))) for k in theirs_w)
    weight_moved = max(float(np.max(np.abs(theirs_w[k] - start_w[k]))) for k in theirs_w)
    assert weight_diff <= WEIGHT_ATOL, f"{family}: trained A/B differ from PEFT's by {weight_diff:.3g} > {WEIGHT_ATOL}"
    assert weight_moved > 100 * WEIGHT_ATOL, f"{family}: PEFT's training barely moved A/B ({weight_moved:.3g})"

    got = logits(work, model, fx["ids"], out)
    logits_diff = rows_diff(got, fx["final_logits_rows"])
    logits_moved = max(float(np.max(np.abs(np.asarray(row) - np.asarray(fx["init_logits_rows"][t]))))
                       for t, row in fx["final_logits_rows"].items())
    assert np.isfinite(logits_diff) and logits_diff <= LOGITS_ATOL, (
        f"{family}: the trained adapter's logits differ from PEFT's by {logits_diff:.3g} > {LOGITS_ATOL}")
    assert logits_moved > 100 * LOGITS_ATOL, f"{family}: training barely moved PEFT's logits ({logits_moved:.3g})"
    print(f"{family} (peft {fx['peft']}, {train['steps']} steps): loss rel diff {worst['loss']:.2e}, grad norm "
          f"{worst['grad_norm']:.2e}, lr {worst['lr']:.1e}; A/B {weight_diff:.2e} (training moved them by "
          f"{weight_moved:.2e}); logits {logits_diff:.2e} (moved by {logits_moved:.2e}); "
          f"PEFT's loss {fx['loss'][0]:.5f} -> {fx['loss'][-1]:.5f}")


def main():
    return check_fixtures(lambda name: name.startswith("train-"), check_family, "PEFT training")


if __name__ == "__main__":
    sys.exit(main())
