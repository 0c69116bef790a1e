#!/usr/bin/env python3
"""Goldens for the Llama/Mistral port and its LoRA adapters, from Hugging Face
transformers and PEFT themselves.

Run where transformers, peft and torch are installed (the GPU machine: the GPU
kit, scripts/device/gpu-check, runs it), with a sensecf binary on PATH or in
SENSECF_BIN:

    python3 tests/golden/llm/make_goldens.py --out tests/golden/llm/fixtures

For each family it makes the tiny random checkpoint with `sensecf lm init-tiny`
(deterministic for the seed), loads it with AutoModelForCausalLM in float32 on
the CPU and writes

  <family>.json       the input ids, logits rows of a forward pass over them,
                      the greedy continuation from `generate`, single and as a
                      left-padded batch (tests/python/test_llm_transformers_golden.py);
  peft-<family>.json  PEFT's logits for (a) an adapter sensecf writes
                      (`lm init-adapter`, deterministic for its seed), loaded by
                      PeftModel.from_pretrained, and (b) an adapter PEFT writes
                      itself, saved beside it as peft-<family>/
                      (adapter_config.json, adapter_model.safetensors)
                      (tests/python/test_llm_peft_golden.py);
  train-<family>.json PEFT's training curve: an adapter PEFT wrote (saved as
                      train-<family>/init/) trained for 10 AdamW steps on
                      train-<family>/train.jsonl by a plain PyTorch loop over
                      the PEFT model (torch.optim.AdamW, transformers' linear
                      warmup schedule, clip_grad_norm_); the loss, gradient
                      norm and learning rate of each step, the logits of the
                      trained adapter, and the trained adapter itself
                      (train-<family>/final/)
                      (tests/python/test_finetune_peft_golden.py).

The fixtures are small (a few hundred KB in all). Nothing here is compared: the
tests do that, in CI, without transformers or PEFT.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM

TEXT = ("A 81-year-old patient showed low deep sleep (30.1%), REM 15.4% and glucose 210.8 mg/dL; "
        "suggest changes that reduce stress.")
SEED = 3
# The adapter sensecf writes for the PEFT golden: every projection, rsLoRA off,
# random B so that it changes the logits. The test re-runs the same command.
SENSECF_ADAPTER_ARGS = ["--r", "8", "--alpha", "16", "--targets", "all-linear", "--init", "random", "--seed", "5"]
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def until_eos(row, eos):
    """New tokens up to and including the first eos (transformers pads after it)."""
    return row[: row.index(eos) + 1] if eos in row else row


def load_hf(model_dir):
    """transformers >= 4.56 takes dtype=, older ones torch_dtype=."""
    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                    attn_implementation="eager").eval()


def rows_of(logits, ids):
    return {str(t): logits[t].tolist() for t in (0, len(ids) // 2, len(ids) - 1)}


def transformers_fixture(family, model_dir, ids):
    model = load_hf(model_dir)
    eos = model.config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x).logits[0]
        greedy = model.generate(x, max_new_tokens=16, do_sample=False, pad_token_id=eos)[0, len(ids):]
        # A batch of two prompts of different lengths, left-padded with eos as `lm generate` does.
        short = ids[: len(ids) // 3]
        width = len(ids)
        batch = torch.tensor([ids, [eos] * (width - len(short)) + short])
        mask = torch.tensor([[1] * width, [0] * (width - len(short)) + [1] * len(short)])
        batched = model.generate(batch, attention_mask=mask, max_new_tokens=16, do_sample=False,
                                 pad_token_id=eos)[:, width:]
    print(f"{family}: {len(ids)} ids, greedy {greedy.tolist()}")
    return {"family": family, "seed": SEED, "text": TEXT, "ids": ids, "eos": eos,
            "logits_rows": rows_of(logits, ids),
            "greedy_16": until_eos(greedy.tolist(), eos),
            "batch_ids": [ids, short],
            "batch_greedy_16": [until_eos(row, eos) for row in batched.tolist()],
            "transformers": transformers.__version__, "torch": torch.__version__}


def peft_fixture(family, model_dir, ids, out_dir, work, sensecf):
    import peft
    from peft import LoraConfig, PeftModel, get_peft_model

    x = torch.tensor([ids])
    with torch.no_grad():
        base_logits = load_hf(model_dir)(x).logits[0]

    # (a) sensecf writes, PEFT reads.
    ours = os.path.join(work, family + "-sensecf-adapter")
    subprocess.run([sensecf, "lm", "init-adapter", "--model", model_dir, "--out", ours, *SENSECF_ADAPTER_ARGS,
                    "--log.level", "warn"], check=True)
    model = PeftModel.from_pretrained(load_hf(model_dir), ours).eval()
    with torch.no_grad():
        read_logits = model(x).logits[0]
    effect_a = float((read_logits - base_logits).abs().max())

    # (b) PEFT writes (B random too, rsLoRA, a rank and an alpha pattern), sensecf reads.
    torch.manual_seed(7)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=PROJECTIONS, lora_dropout=0.0, bias="none",
                        use_rslora=True, rank_pattern={"v_proj": 4}, alpha_pattern={"down_proj": 8},
                        init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(load_hf(model_dir), config).eval()
    with torch.no_grad():
        written_logits = model(x).logits[0]
    effect_b = float((written_logits - base_logits).abs().max())
    written = os.path.join(out_dir, f"peft-{family}")
    save_adapter(model, written)
    print(f"{family}: PEFT reads sensecf's adapter (moves logits by {effect_a:.3g}); "
          f"PEFT's adapter written to {written} (moves logits by {effect_b:.3g})")
    return {"family": family, "seed": SEED, "ids": ids,
            "sensecf_adapter_args": SENSECF_ADAPTER_ARGS,
            "sensecf_adapter_logits_rows": rows_of(read_logits, ids),
            "peft_adapter_dir": f"peft-{family}",
            "peft_adapter_logits_rows": rows_of(written_logits, ids),
            "base_logits_rows": rows_of(base_logits, ids),
            "peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__}


# The PEFT training curve (train_fixture). 8 examples, one optimiser step =
# every example (sensecf: batch 4 x gradient accumulation 2), so the data
# order does not matter; dropout 0, so nothing random happens while training.
TRAIN_EXAMPLES = [
    ("A 52-year-old participant slept 6.1 h with deep sleep 11.2% and REM 17.9%; steps 4200. Change:",
     " deep sleep 16.0%, steps 7000"),
    ("glucose 182 mg/dL, time in range 48%. Change:", " glucose 140 mg/dL, time in range 70%"),
    ("steps 900. Change:", " steps 5200"),
    ("REM 12.4%, light sleep 61.0%, awake 9.8%, steps 3100, glucose 160 mg/dL. Change:",
     " REM 19.0%, awake 5.0%"),
    ("age 71, gender female, medication yes; deep sleep 8.0%. Change:", " deep sleep 14.5%"),
    ("time in range 35%, glucose variability 41%. Change:", " time in range 62%, glucose variability 30%"),
    ("steps 12000, deep sleep 21%, REM 22%. Change:", " none needed"),
    ("light sleep 70%, steps 2500. Change:", " light sleep 58%, steps 6500, REM 20%"),
]
TRAIN = {"steps": 10, "lr": 2e-3, "warmup_ratio": 0.2, "max_grad_norm": 1.0, "batch_size": 4, "grad_accum": 2}
# The starting adapter PEFT writes: llama plain, mistral with rsLoRA and a rank pattern.
TRAIN_LORA = {"llama": dict(r=8, lora_alpha=16),
              "mistral": dict(r=8, lora_alpha=16, use_rslora=True, rank_pattern={"v_proj": 4})}


def train_examples(model_dir):
    """Each example as `lm finetune` documents plain examples (llm/train/data.h):
    BOS (the tokenizer's template prefix) + prompt + completion + the first EOS
    id of config.json, with the prompt's length; tokenized by Hugging Face's
    tokenizers library."""
    import tokenizers
    tok = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    eos = config["eos_token_id"]
    eos = eos[0] if isinstance(eos, list) else eos
    out = []
    for prompt, completion in TRAIN_EXAMPLES:
        p = tok.encode(prompt, add_special_tokens=True).ids
        if p[0] != config["bos_token_id"]:
            raise RuntimeError(f"the tokenizer's template does not start with bos_token_id: {p[:3]}")
        out.append((p + tok.encode(completion, add_special_tokens=False).ids + [eos], len(p)))
    return out


def train_fixture(family, model_dir, ids, out_dir):
    import peft
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import get_linear_schedule_with_warmup

    folder = os.path.join(out_dir, f"train-{family}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "train.jsonl"), "w") as f:
        for prompt, completion in TRAIN_EXAMPLES:
            f.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")

    # The starting adapter: PEFT's random init for A and B (B scaled down so the
    # tiny model's loss stays moderate), saved and loaded back as trainable.
    torch.manual_seed(11)
    config = LoraConfig(target_modules=PROJECTIONS, lora_dropout=0.0, bias="none", init_lora_weights=False,
                        task_type="CAUSAL_LM", **TRAIN_LORA[family])
    model = get_peft_model(load_hf(model_dir), config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.1)
    init = os.path.join(folder, "init")
    save_adapter(model, init)
    model = PeftModel.from_pretrained(load_hf(model_dir), init, is_trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError("PeftModel.from_pretrained(is_trainable=True) left no trainable parameter")
    x = torch.tensor([ids])
    with torch.no_grad():
        init_logits = model(x).logits[0]

    examples = train_examples(model_dir)
    n_loss = sum(len(e) - max(p, 1) for e, p in examples)
    steps = TRAIN["steps"]
    warmup = math.ceil(TRAIN["warmup_ratio"] * steps)
    optimizer = torch.optim.AdamW(params, lr=TRAIN["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    losses, norms, lrs = [], [], []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for e, p in examples:  # one example per forward: no padding at all
            t = torch.tensor([e])
            logits = model(input_ids=t).logits[0].float()
            start = max(p, 1)
            loss = torch.nn.functional.cross_entropy(logits[start - 1:len(e) - 1], t[0, start:], reduction="sum")
            (loss / n_loss).backward()
            total += float(loss)
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, TRAIN["max_grad_norm"])))
        lrs.append(optimizer.param_groups[0]["lr"])
        losses.append(total / n_loss)
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        final_logits = model(x).logits[0]
    save_adapter(model, os.path.join(folder, "final"))
    print(f"{family}: PEFT training curve {[round(v, 4) for v in losses]}")
    return {"family": family, "seed": SEED, "ids": ids, "folder": f"train-{family}", "train": TRAIN,
            "lora": TRAIN_LORA[family], "examples_ids": [e for e, _ in examples],
            "prompt_lens": [p for _, p in examples], "loss": losses, "grad_norm": norms, "lr": lrs,
            "init_logits_rows": rows_of(init_logits, ids), "final_logits_rows": rows_of(final_logits, ids),
            "peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__}


def save_adapter(model, folder):
    """save_pretrained, keeping only what an adapter is (it may add a README.md model card)."""
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    for name in os.listdir(folder):
        if name not in ("adapter_config.json", "adapter_model.safetensors"):
            os.remove(os.path.join(folder, name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "fixtures"))
    ap.add_argument("--bin", default=os.environ.get("SENSECF_BIN", "sensecf"))
    ap.add_argument("--skip-peft", action="store_true", help="only the transformers fixtures")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    failures = []
    for family in ("llama", "mistral"):
        with tempfile.TemporaryDirectory() as work:
            model_dir = os.path.join(work, family)
            subprocess.run([args.bin, "lm", "init-tiny", "--family", family, "--out", model_dir, "--seed", str(SEED)],
                           check=True)
            ids = json.loads(subprocess.run([args.bin, "lm", "tokenize", "--tokenizer",
                                             os.path.join(model_dir, "tokenizer.json"), "--text", TEXT],
                                            check=True, capture_output=True, text=True).stdout)
            steps = [(f"{family}.json", lambda: transformers_fixture(family, model_dir, ids))]
            if not args.skip_peft:
                steps.append((f"peft-{family}.json",
                              lambda: peft_fixture(family, model_dir, ids, args.out, work, args.bin)))
                steps.append((f"train-{family}.json", lambda: train_fixture(family, model_dir, ids, args.out)))
            # Each fixture on its own: one that fails (a library change) does not cost the others.
            for name, make in steps:
                try:
                    fixture = make()
                except Exception as e:  # noqa: BLE001 - reported and counted below
                    failures.append(f"{name}: {type(e).__name__}: {e}")
                    print(f"FAILED {name}: {type(e).__name__}: {e}")
                    continue
                with open(os.path.join(args.out, name), "w") as f:
                    json.dump(fixture, f)
    if failures:
        raise SystemExit("make_goldens: " + "; ".join(failures))


if __name__ == "__main__":
    main()
