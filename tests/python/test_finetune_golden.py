"""`sensecf lm finetune` against an independent NumPy trainer.

The reference (tests/python/lora_numpy.py) is written apart from sensecf, in
NumPy float64 with the backward pass by hand (no autograd): the Llama forward
pass of test_llm_reference.py (transformers' semantics) with PEFT's LoRA
branch y = x W^T + s (x A^T) B^T on every projection, the mean next-token
cross-entropy over the completion tokens of all examples and its gradient
with respect to every A and B, then clip_grad_norm_, torch.optim.AdamW's
update and transformers' linear schedule. sensecf trains the same adapter
(r 4, all seven projections, dropout 0, one optimiser step = every example:
batch 3 x gradient accumulation 2 over 6 examples, so the data order does not
matter) for 3 steps in float32.

Checked: the loss of each step (the first is the base model's: B = 0 makes a
fresh adapter a no-op) to 1e-5 relative, the trained A and B, and that the
saved adapter read back by `lm logits --adapter` gives the reference logits.
(lora_numpy's gradients equal torch.autograd's to 3e-15 on this model.)

The initial A (kaiming-uniform from sensecf's seed) is read from a 1-step run:
with B = 0, A has a zero gradient in step 1, so AdamW leaves it unchanged.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lora_numpy  # noqa: E402
from lora_numpy import PROJECTIONS  # noqa: E402
from test_llm_reference import BIN, forward, inv_freq, read_safetensors  # noqa: E402
R, ALPHA, LR, STEPS = 4, 8.0, 1e-2, 3
EXAMPLES = [("steps 4200, glucose 180. change:", " steps 6000"),
            ("deep sleep 12%, REM 20%. change:", " deep sleep 18%"),
            ("glucose 210 mg/dL, TIR 45%. change:", " glucose 150 mg/dL"),
            ("steps 900. change:", " steps 5000, TIR 70%"),
            ("age 71, steps 3000, glucose 160. change:", " steps 7000"),
            ("REM 10%. change:", " REM 21%")]


def run(*args):
    p = subprocess.run([BIN, *args, "--log.level", "warn"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


def token_ids(tokenizer, text, special):
    out = run("lm", "tokenize", "--tokenizer", tokenizer, "--text", text, *(["--add-special"] if special else []))
    return json.loads(out.strip().splitlines()[-1])


def finetune(model, data, out, steps):
    run("lm", "finetune", "--model", model, "--data", data, "--out", out, "--max-steps", str(steps), "--r", str(R),
        "--alpha", str(ALPHA), "--dropout", "0", "--batch-size", "3", "--grad-accum", "2", "--eval-fraction", "0",
        "--lr", str(LR), "--schedule", "linear", "--save-every", "0", "--lm.dtype", "float32")
    with open(os.path.join(out, "train_curve.csv")) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    return losses, read_safetensors(os.path.join(out, "adapter_model.safetensors"))


def peft_name(module, which):
    return f"base_model.model.{module}.lora_{which}.weight"


def main():
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "tiny-llama")
        run("lm", "init-tiny", "--family", "llama", "--out", model)
        data = os.path.join(d, "train.jsonl")
        with open(data, "w") as f:
            for prompt, completion in EXAMPLES:
                f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
        _, initial = finetune(model, data, os.path.join(d, "one-step"), 1)
        losses, trained = finetune(model, data, os.path.join(d, "three-steps"), STEPS)

        with open(os.path.join(model, "config.json")) as f:
            cfg = json.load(f)
        w = read_safetensors(os.path.join(model, "model.safetensors"))
        tokenizer = os.path.join(model, "tokenizer.json")
        vocab = json.load(open(tokenizer))
        eos_ids = [t["id"] for t in vocab["added_tokens"] if t["content"] in ("<|end_of_text|>", "</s>")]
        assert eos_ids, "the tiny tokenizer has no EOS token"
        examples = []
        for prompt, completion in EXAMPLES:
            p = token_ids(tokenizer, prompt, True)  # BOS + prompt
            c = token_ids(tokenizer, completion, False)
            examples.append((p + c + [eos_ids[0]], len(p)))

        lora, params = {}, []
        for layer in range(cfg["num_hidden_layers"]):
            for proj in PROJECTIONS:
                m = f"model.layers.{layer}.{proj}"
                a = initial[peft_name(m, "A")].copy()
                b = np.zeros_like(initial[peft_name(m, "B")])
                lora[m] = (a, b)
                params += [a, b]
        opt = lora_numpy.AdamW(params)
        freqs = inv_freq(cfg)
        ref = []
        for step in range(STEPS):
            total, n, grads = lora_numpy.loss_and_grads(cfg, w, freqs, lora, ALPHA / R, examples)
            flat = [g / n for m in lora for g in grads[m]]
            lora_numpy.clip_grad_norm(flat, 1.0)
            opt.step(flat, LR * max(0.0, (STEPS - step) / STEPS))
            ref.append(total / n)

        failures = []
        for step, (ours, theirs) in enumerate(zip(losses, ref), 1):
            rel = abs(ours - theirs) / abs(theirs)
            print(f"step {step}: loss sensecf {ours:.9f}  reference {theirs:.9f}  rel {rel:.2e}")
            if rel > 1e-5:
                failures.append(f"step {step}: loss {ours} vs {theirs} (rel {rel:.2e} > 1e-5)")
        if len(losses) != STEPS:
            failures.append(f"{len(losses)} curve rows, expected {STEPS}")
        worst = 0.0
        for m, (a, b) in lora.items():
            for which, theirs in (("A", a), ("B", b)):
                ours = trained[peft_name(m, which)]
                err = np.abs(ours - theirs).max() / LR  # in units of one step's learning rate
                worst = max(worst, err)
        print(f"trained A/B: largest difference {worst:.2e} x lr")
        if worst > 1e-3:
            failures.append(f"trained adapter differs by {worst:.2e} x lr (> 1e-3)")
        # The saved adapter, read back by `lm logits --adapter`, gives what this file's model computes with the
        # A and B of that file: the trained adapter is a PEFT adapter like any other.
        saved = {m: (trained[peft_name(m, "A")], trained[peft_name(m, "B")], ALPHA / R) for m in lora}
        ids = examples[0][0]
        out = os.path.join(d, "logits.npy")
        run("lm", "logits", "--model", model, "--adapter", os.path.join(d, "three-steps"),
            "--ids", ",".join(map(str, ids)), "--out", out)
        want = forward(cfg, w, np.asarray(ids), saved)
        diff = np.abs(np.load(out) - want).max()
        print(f"trained adapter read back: max |lm logits - reference| = {diff:.2e}")
        if not diff <= 1e-4:
            failures.append(f"lm logits with the trained adapter differ from the reference by {diff:.2e}")
        if not losses[-1] < losses[0]:
            failures.append(f"the loss did not fall: {losses}")
        if failures:
            print("\n".join(failures))
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
