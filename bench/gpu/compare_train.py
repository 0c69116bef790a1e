#!/usr/bin/env python3
"""The LoRA / QLoRA training benchmark's table: `sensecf lm bench-train --json`
lines beside bench/gpu/hf_finetune.py's, one row per run, with sensecf's
tokens/s over transformers + PEFT's for the same quant and checkpointing.

    python3 bench/gpu/compare_train.py sensecf-train.jsonl hf-train.jsonl
"""
import json
import sys


def rows(paths):
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            print(f"(no {path})")


def key(r):
    return r.get("quant", "none"), bool(r.get("gradient_checkpointing", False))


def main():
    runs = list(rows(sys.argv[1:]))
    hf = {key(r): r for r in runs if r.get("impl") != "sensecf" and "tokens_per_s" in r}
    print("| impl | quant | grad. ckpt | batch x seq (loss tokens) | step ms | tokens/s | TFLOP/s | MFU | "
          "peak device GiB | vs transformers+peft |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        quant, ckpt = key(r)
        if "tokens_per_s" not in r:
            print(f"| {r.get('impl')} | {quant} | {'on' if ckpt else 'off'} | | | | | | | "
                  f"{r.get('skipped') or r.get('failed') or 'no result'} |")
            continue
        ref = hf.get((quant, ckpt))
        ratio = f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}x" if ref and r.get("impl") == "sensecf" else ""
        peak = r.get("peak_device_gib")
        print(f"| {r['impl']} | {quant} | {'on' if ckpt else 'off'} | {r['batch']} x {r['seq_len']} "
              f"({r['completion_len']}) | {r['step_ms']:.1f} | {r['tokens_per_s']:.0f} | {r['tflop_per_s']:.1f} | "
              f"{100 * r['mfu']:.1f}% | {'-' if peak is None else f'{peak:.2f}'} | {ratio} |")


if __name__ == "__main__":
    main()
