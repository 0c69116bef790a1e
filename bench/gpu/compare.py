#!/usr/bin/env python3
"""The GPU decode table: `sensecf lm bench --json` runs (one file per variant,
e.g. CUDA graph on and off) side by side with bench/gpu/hf_generate.py's
transformers run on the same shapes. Prints markdown.

    python3 bench/gpu/compare.py --hf hf.jsonl ours-graph.jsonl ours-eager.jsonl
"""
import argparse
import json
import os


def read(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf", required=True)
    ap.add_argument("ours", nargs="+")
    args = ap.parse_args()
    hf_rows = read(args.hf)
    copy = next((r["copy_gb_per_s"] for r in hf_rows if "copy_gb_per_s" in r), None)
    hf = {r["batch"]: r for r in hf_rows if "batch" in r}
    print("| impl | batch | prefill tok/s | decode tok/s | step ms | GB/s | of 4.8 TB/s | of measured copy | vs transformers |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    def line(label, r, speedup):
        of_copy = f"{100 * r['decode_gb_per_s'] / copy:.0f}%" if copy else "-"
        print(f"| {label} | {r['batch']} | {r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.1f} | "
              f"{r['decode_step_ms']:.2f} | {r['decode_gb_per_s']:.0f} | {100 * r['decode_gb_per_s'] / 4800:.0f}% | "
              f"{of_copy} | {speedup} |")

    for path in args.ours:
        for r in read(path):
            ref = hf.get(r["batch"])
            speedup = f"{r['decode_tokens_per_s'] / ref['decode_tokens_per_s']:.2f}x" if ref else "-"
            line(f"sensecf ({os.path.basename(path).removesuffix('.jsonl')})", r, speedup)
    for b, r in sorted(hf.items()):
        line(f"transformers {r.get('transformers', '')}", r, "1.00x")
    if copy:
        print(f"\nmeasured device-to-device copy: {copy:.0f} GB/s (read + write)")


if __name__ == "__main__":
    main()
