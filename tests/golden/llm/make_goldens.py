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
                      (tests/python/test_llm_peft_golden.py).

The fixtures are small (a few hundred KB in all). Nothing here is compared: the
tests do that, in CI, without transformers or PEFT.
"""
import argparse
import json
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
    shutil.rmtree(written, ignore_errors=True)
    model.save_pretrained(written, safe_serialization=True)
    # Only what an adapter is: save_pretrained may add a README.md model card.
    for name in os.listdir(written):
        if name not in ("adapter_config.json", "adapter_model.safetensors"):
            os.remove(os.path.join(written, name))
    print(f"{family}: PEFT reads sensecf's adapter (moves logits by {effect_a:.3g}); "
          f"PEFT's adapter written to {written} (moves logits by {effect_b:.3g})")
    return {"family": family, "seed": SEED, "ids": ids,
            "sensecf_adapter_args": SENSECF_ADAPTER_ARGS,
            "sensecf_adapter_logits_rows": rows_of(read_logits, ids),
            "peft_adapter_dir": f"peft-{family}",
            "peft_adapter_logits_rows": rows_of(written_logits, ids),
            "base_logits_rows": rows_of(base_logits, ids),
            "peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__}


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
