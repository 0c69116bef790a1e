"""`sensecf lm finetune` against PyTorch's own optimiser on an independent model.

The reference is written here, apart from sensecf: the Llama forward pass of
test_llm_reference.py (transformers' semantics), expressed in PyTorch ops in
float64, with PEFT's LoRA branch y = x W^T + s (x A^T) B^T on every projection;
the loss is the mean next-token cross-entropy over the completion tokens of all
examples; gradients by torch.autograd, then torch.nn.utils.clip_grad_norm_,
torch.optim.AdamW (the single-tensor path) and transformers' linear schedule
as a LambdaLR. sensecf trains the same adapter (r 4, all seven projections,
dropout 0, one optimiser step = every example: batch 3 x gradient accumulation
2 over 6 examples, so the data order does not matter) for 3 steps in float32.

Checked: the loss of each step (the first is the base model's: B = 0 makes a
fresh adapter a no-op) to 1e-5 relative, the trained A and B, and that the
saved adapter read back by `lm logits --adapter` gives the reference logits.

The initial A (kaiming-uniform from sensecf's seed) is read from a 1-step run:
with B = 0, A has a zero gradient in step 1, so AdamW leaves it unchanged.
Needs the system Python's torch; skipped (exit 77) without it.
"""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_llm_reference import BIN, inv_freq, read_safetensors  # noqa: E402

try:
    import torch
except ImportError:
    print("skipped: the system Python has no torch")
    sys.exit(77)

torch.set_default_dtype(torch.float64)
PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj"]
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


def rms_norm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def forward(cfg, w, ids, lora):
    T = len(ids)
    H, K = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * torch.from_numpy(inv_freq(cfg))[None, :]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = torch.cos(emb), torch.sin(emb)
    allowed = torch.arange(T)[None, :] <= torch.arange(T)[:, None]

    def linear(x, module):
        a, b = lora[module]
        return x @ w[module + ".weight"].T + (ALPHA / R) * ((x @ a.T) @ b.T)

    h = w["model.embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = linear(x, p + "self_attn.q_proj").reshape(T, H, D).transpose(0, 1)
        k = linear(x, p + "self_attn.k_proj").reshape(T, K, D).transpose(0, 1)
        v = linear(x, p + "self_attn.v_proj").reshape(T, K, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // K, 0)
        v = v.repeat_interleave(H // K, 0)
        s = (q @ k.transpose(1, 2) / math.sqrt(D)).masked_fill(~allowed[None], float("-inf"))
        a = torch.softmax(s, -1) @ v
        h = h + linear(a.transpose(0, 1).reshape(T, H * D), p + "self_attn.o_proj")
        y = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(y, p + "mlp.gate_proj")
        h = h + linear(torch.nn.functional.silu(g) * linear(y, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


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
        w = {k: torch.from_numpy(v) for k, v in read_safetensors(os.path.join(model, "model.safetensors")).items()}
        tokenizer = os.path.join(model, "tokenizer.json")
        examples = []
        for prompt, completion in EXAMPLES:
            p = token_ids(tokenizer, prompt, True)
            c = token_ids(tokenizer, completion, False)
            examples.append((p, c))
        vocab = json.load(open(tokenizer))
        eos_ids = [t["id"] for t in vocab["added_tokens"] if t["content"] in ("<|end_of_text|>", "</s>")]
        assert eos_ids, "the tiny tokenizer has no EOS token"

        lora, params = {}, []
        for layer in range(cfg["num_hidden_layers"]):
            for proj in PROJECTIONS:
                m = f"model.layers.{layer}.{proj}"
                a = torch.from_numpy(initial[peft_name(m, "A")]).clone().requires_grad_(True)
                b = torch.zeros(initial[peft_name(m, "B")].shape).requires_grad_(True)
                lora[m] = (a, b)
                params += [a, b]
        opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=False)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (STEPS - s) / STEPS))
        ref = []
        for _ in range(STEPS):
            total, n = 0.0, 0
            for p, c in examples:
                ids = p + c + [eos_ids[0]]
                logits = forward(cfg, w, ids, lora)
                targets = torch.tensor(ids[len(p):])
                total = total + torch.nn.functional.cross_entropy(logits[len(p) - 1:-1], targets, reduction="sum")
                n += len(ids) - len(p)
            loss = total / n
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            ref.append(loss.item())

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
            for which, t in (("A", a), ("B", b)):
                ours = trained[peft_name(m, which)]
                theirs = t.detach().numpy()
                err = np.abs(ours - theirs).max() / LR  # in units of one step's learning rate
                worst = max(worst, err)
        print(f"trained A/B: largest difference {worst:.2e} x lr")
        if worst > 1e-3:
            failures.append(f"trained adapter differs by {worst:.2e} x lr (> 1e-3)")
        # The saved adapter, read back by `lm logits --adapter`, gives what this file's model computes with the
        # A and B of that file: the trained adapter is a PEFT adapter like any other.
        saved = {m: (torch.from_numpy(trained[peft_name(m, "A")]), torch.from_numpy(trained[peft_name(m, "B")]))
                 for m in lora}
        ids = examples[0][0] + examples[0][1]
        out = os.path.join(d, "logits.npy")
        run("lm", "logits", "--model", model, "--adapter", os.path.join(d, "three-steps"),
            "--ids", ",".join(map(str, ids)), "--out", out)
        with torch.no_grad():
            want = forward(cfg, w, ids, saved).numpy()
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
