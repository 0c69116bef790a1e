#!/usr/bin/env python3
"""Goldens for the Llama/Mistral port, from Hugging Face transformers itself.

Run where transformers and torch are installed (e.g. the GPU machine), with a
sensecf binary on PATH or in SENSECF_BIN:

    python3 tests/golden/llm/make_goldens.py --out tests/golden/llm/fixtures

For each family it makes the tiny random checkpoint with `sensecf lm init-tiny`
(deterministic for the seed), loads it with AutoModelForCausalLM in float32,
and writes <family>.json: the input ids, the last position's logits of a
forward pass over them, and the greedy continuation from `generate`. The
fixtures are small (a few KB); tests/python/test_llm_transformers_golden.py
compares `sensecf lm logits` / `lm generate` against them (max abs diff <= 1e-4,
equal greedy ids) and skips, saying so, while they are absent.
"""
import argparse
import json
import os
import subprocess
import tempfile

import torch
from transformers import AutoModelForCausalLM

TEXT = ("A 81-year-old patient showed low deep sleep (30.1%), REM 15.4% and glucose 210.8 mg/dL; "
        "suggest changes that reduce stress.")


def until_eos(row, eos):
    """New tokens up to and including the first eos (transformers pads after it)."""
    return row[: row.index(eos) + 1] if eos in row else row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "fixtures"))
    ap.add_argument("--bin", default=os.environ.get("SENSECF_BIN", "sensecf"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for family in ("llama", "mistral"):
        with tempfile.TemporaryDirectory() as d:
            model_dir = os.path.join(d, family)
            subprocess.run([args.bin, "lm", "init-tiny", "--family", family, "--out", model_dir, "--seed", "3"],
                           check=True)
            ids = json.loads(subprocess.run([args.bin, "lm", "tokenize", "--tokenizer",
                                             os.path.join(model_dir, "tokenizer.json"), "--text", TEXT],
                                            check=True, capture_output=True, text=True).stdout)
            model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                         attn_implementation="eager").eval()
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
            fixture = {"family": family, "seed": 3, "text": TEXT, "ids": ids, "eos": eos,
                       "logits_rows": {str(t): logits[t].tolist() for t in (0, len(ids) // 2, len(ids) - 1)},
                       "greedy_16": until_eos(greedy.tolist(), eos),
                       "batch_ids": [ids, short],
                       "batch_greedy_16": [until_eos(row, eos) for row in batched.tolist()],
                       "transformers": __import__("transformers").__version__,
                       "torch": torch.__version__}
            with open(os.path.join(args.out, f"{family}.json"), "w") as f:
                json.dump(fixture, f)
            print(f"{family}: {len(ids)} ids, greedy {greedy}")


if __name__ == "__main__":
    main()
